//! The access-control service: authentication of every credential kind, the permission check
//! the server runs before dispatch, the Docker token endpoint's logic, bootstrap of the first
//! admin and the shared token signing keys. Management operations live in [`crate::manage`].
//!
//! # Credentials
//!
//! Basic credentials are routed by shape: a username starting with `robot$` is a robot account
//! (its secret is compared as a SHA-256 hash), a password shaped like `bwk_<id>_<secret>` is a
//! personal access token (the username must be its owner), anything else is a user password
//! (argon2id, verified on the blocking pool). Successful argon2 verifications are remembered
//! for a short time keyed by (stored hash, SHA-256 of the password), so clients that send Basic
//! on every request do not pay argon2 each time; changing the password changes the stored hash
//! and so invalidates the entry. Disabled users, disabled or expired robots and revoked or
//! expired tokens are re-checked on every request.
//!
//! Failed logins are rate limited per IP and per username ([`LoginLimiter`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bulwark_core::Clock;
use bulwark_oci::RepoName;
use sha2::{Digest as _, Sha256};

use crate::password::{ApiToken, PasswordError, Secret, generate_secret, hash_password};
use crate::policy::{Capability, Denied, Grants, Principal, RobotPermission, Role, Visibility};
use crate::ratelimit::{LoginLimiter, RateLimitConfig, RetryAfter};
use crate::scope::{Action, ActionSet, Resource, ResourceActions, Scope};
use crate::store::{
    AuthStore, Member, NewUser, StoreError, StoredSigningKey, User, UserCredentials,
};
use crate::token::{Claims, RefreshToken, SigningKey, Token, TokenError, TokenIssuer};

/// Prefix of every robot account name.
pub const ROBOT_PREFIX: &str = "robot$";
/// Name of the administrator created on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

const PASSWORD_CACHE_TTL_SECS: i64 = 300;
const PASSWORD_CACHE_MAX: usize = 4096;
/// How often a replica re-reads the shared signing keys when it meets an unknown key id.
const KEY_RELOAD_MIN_SECS: i64 = 5;

/// Who may create a project by pushing to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectCreation {
    /// Only system admins (through the API, the CLI or a push).
    Admins,
    /// Any enabled user; the creator becomes the project's admin.
    Users,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The `service` of the token challenge and the `aud` of access tokens.
    pub service: String,
    /// The `iss` of tokens.
    pub issuer: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub project_creation: ProjectCreation,
    pub rate_limit: RateLimitConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            service: "bulwark".into(),
            issuer: "bulwark".into(),
            access_ttl: Duration::from_secs(300),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            project_creation: ProjectCreation::Users,
            rate_limit: RateLimitConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong, unknown, disabled, expired or revoked credentials. Deliberately one variant, so
    /// a caller cannot tell which.
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("too many failed logins; retry in {} s", .0.0)]
    RateLimited(RetryAfter),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The request itself is malformed (bad scope, bad name, ...).
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(s) => AuthError::NotFound(s),
            StoreError::Conflict(s) => AuthError::Conflict(s),
            e @ StoreError::Backend(_) => AuthError::Store(e),
        }
    }
}

pub type AuthResult<T> = Result<T, AuthError>;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    None,
    Password,
    Robot,
    /// A personal access token, by id.
    PersonalToken(String),
    /// A registry access token (JWT).
    AccessToken,
}

/// An authenticated (or anonymous) caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub credential: Credential,
    /// A personal access token's permission list: the caller gets at most this (empty: no
    /// restriction beyond the owner's rights).
    pub restrict: Vec<RobotPermission>,
    /// The verified claims when the caller presented an access token; permission checks then
    /// use only the token's `access` claim.
    pub claims: Option<Claims>,
}

impl Caller {
    pub fn anonymous() -> Self {
        Caller {
            principal: Principal::Anonymous,
            credential: Credential::None,
            restrict: Vec::new(),
            claims: None,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.principal.is_anonymous()
    }

    pub fn is_system_admin(&self) -> bool {
        matches!(
            self.principal,
            Principal::User {
                system_admin: true,
                ..
            }
        ) && self.restrict.is_empty()
            && self.claims.is_none()
    }

    pub fn user_id(&self) -> Option<i64> {
        match self.principal {
            Principal::User { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The name to record in logs and audit entries (never a secret).
    pub fn subject(&self) -> &str {
        match &self.claims {
            Some(c) => &c.sub,
            None => self.principal.subject(),
        }
    }
}

/// The token endpoint's answer, in the shape Docker and OAuth2 clients expect.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: Token,
    pub refresh: Option<RefreshToken>,
    /// What was granted, per requested scope.
    pub access: Vec<ResourceActions>,
}

struct Keys {
    issuer: TokenIssuer,
    loaded_at: i64,
}

/// The access-control service. Share it behind an `Arc`.
pub struct AuthService {
    store: Arc<dyn AuthStore>,
    clock: Arc<dyn Clock>,
    config: AuthConfig,
    keys: RwLock<Keys>,
    limiter: LoginLimiter,
    password_cache: Mutex<HashMap<[u8; 32], i64>>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn internal(e: impl std::fmt::Display) -> AuthError {
    AuthError::Internal(e.to_string())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// Build an issuer from the stored keys: the newest unretired key signs, every other key still
/// valid verifies. `None` when there is no usable signing key.
fn issuer_from(
    config: &AuthConfig,
    stored: &[StoredSigningKey],
    now: i64,
) -> AuthResult<Option<TokenIssuer>> {
    let active = stored
        .iter()
        .filter(|k| k.valid_until.is_none())
        .max_by_key(|k| (k.created_at, k.kid.clone()));
    let Some(active) = active else {
        return Ok(None);
    };
    let key = SigningKey::from_pkcs8_pem(&active.private_pem)?;
    let mut issuer = TokenIssuer::new(config.issuer.clone(), key)
        .with_max_access_ttl(config.access_ttl)
        .with_max_refresh_ttl(config.refresh_ttl);
    for k in stored {
        if k.kid == active.kid || k.valid_until.is_some_and(|v| v < now) {
            continue;
        }
        let sk = SigningKey::from_pkcs8_pem(&k.private_pem)?;
        issuer.add_verification_key(
            sk.verifying_key().clone(),
            k.valid_until.unwrap_or(i64::MAX),
        );
    }
    Ok(Some(issuer))
}

impl AuthService {
    /// Load (or create, on first start) the shared signing key and build the service.
    pub async fn new(
        store: Arc<dyn AuthStore>,
        clock: Arc<dyn Clock>,
        config: AuthConfig,
    ) -> AuthResult<Self> {
        let now = clock.now();
        let issuer = Self::load_or_create_issuer(&*store, &config, now).await?;
        Ok(AuthService {
            limiter: LoginLimiter::new(config.rate_limit),
            store,
            clock,
            config,
            keys: RwLock::new(Keys {
                issuer,
                loaded_at: now,
            }),
            password_cache: Mutex::new(HashMap::new()),
        })
    }

    async fn load_or_create_issuer(
        store: &dyn AuthStore,
        config: &AuthConfig,
        now: i64,
    ) -> AuthResult<TokenIssuer> {
        store.prune_signing_keys(now).await?;
        if let Some(issuer) = issuer_from(config, &store.signing_keys().await?, now)? {
            return Ok(issuer);
        }
        let key = SigningKey::generate()?;
        let stored = StoredSigningKey {
            kid: key.kid().to_owned(),
            private_pem: key.to_pkcs8_pem()?.expose().to_owned(),
            created_at: now,
            valid_until: None,
        };
        match store.add_signing_key(stored).await {
            // Another replica may have won the race; reading back picks whichever is newest.
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        issuer_from(config, &store.signing_keys().await?, now)?
            .ok_or_else(|| internal("no token signing key after creating one"))
    }

    pub fn store(&self) -> &dyn AuthStore {
        &*self.store
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// On an empty store, create the `admin` system administrator with `password`, or a random
    /// one that is returned so the caller can show it once.
    pub async fn bootstrap(&self, password: Option<Secret>) -> AuthResult<Option<Secret>> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(p) => (p, false),
            None => (generate_secret(18)?, true),
        };
        let hash = hash_blocking(password.clone()).await?;
        let created = self
            .store
            .create_user(NewUser {
                name: BOOTSTRAP_ADMIN.into(),
                email: None,
                password_hash: Some(hash),
                system_admin: true,
                created_at: self.now(),
            })
            .await;
        match created {
            Ok(_) => Ok(generated.then_some(password)),
            // A concurrent replica bootstrapped first.
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Make a new signing key active; the old one keeps verifying until its tokens expire.
    pub async fn rotate_signing_key(&self) -> AuthResult<String> {
        let now = self.now();
        let key = SigningKey::generate()?;
        let kid = key.kid().to_owned();
        let (old_kid, valid_until) = {
            let keys = read(&self.keys);
            let lifetime = self
                .config
                .access_ttl
                .max(self.config.refresh_ttl)
                .as_secs()
                .saturating_add(crate::token::DEFAULT_LEEWAY_SECS);
            (
                keys.issuer.active_key().kid().to_owned(),
                now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX)),
            )
        };
        self.store
            .add_signing_key(StoredSigningKey {
                kid: kid.clone(),
                private_pem: key.to_pkcs8_pem()?.expose().to_owned(),
                created_at: now,
                valid_until: None,
            })
            .await?;
        self.store.retire_signing_key(&old_kid, valid_until).await?;
        self.reload_keys().await?;
        Ok(kid)
    }

    /// Re-read the shared signing keys (another replica may have rotated them).
    pub async fn reload_keys(&self) -> AuthResult<()> {
        let now = self.now();
        let issuer = Self::load_or_create_issuer(&*self.store, &self.config, now).await?;
        *write(&self.keys) = Keys {
            issuer,
            loaded_at: now,
        };
        Ok(())
    }

    /// The JWKS of every key that verifies tokens now.
    pub fn jwks(&self) -> AuthResult<serde_json::Value> {
        Ok(read(&self.keys).issuer.jwks(self.now())?)
    }

    // ---- authentication ----

    /// Authenticate HTTP Basic credentials from `ip`.
    pub async fn login(&self, username: &str, password: &str, ip: IpAddr) -> AuthResult<Caller> {
        let now = self.now();
        self.limiter
            .check_login(ip, username, now)
            .map_err(AuthError::RateLimited)?;
        match self.check_credentials(username, password, now).await {
            Ok(caller) => {
                self.limiter.login_succeeded(username);
                Ok(caller)
            }
            Err(AuthError::InvalidCredentials) => {
                self.limiter.login_failed(ip, username, now);
                tracing::info!(user = %username, %ip, "login failed");
                Err(AuthError::InvalidCredentials)
            }
            Err(e) => Err(e),
        }
    }

    async fn check_credentials(
        &self,
        username: &str,
        password: &str,
        now: i64,
    ) -> AuthResult<Caller> {
        if username.starts_with(ROBOT_PREFIX) {
            return self.check_robot(username, password, now).await;
        }
        if let Ok(token) = ApiToken::parse(password) {
            return self.check_personal_token(username, &token, now).await;
        }
        let Some(creds) = self.store.user_by_name(username).await? else {
            // Spend the same time as a real check so timing does not reveal unknown names.
            let _ = hash_blocking(Secret::new(password)).await;
            return Err(AuthError::InvalidCredentials);
        };
        let UserCredentials {
            user,
            password_hash,
        } = creds;
        let Some(phc) = password_hash else {
            return Err(AuthError::InvalidCredentials);
        };
        if !self.verify_cached(&phc, password, now).await? || user.disabled {
            return Err(AuthError::InvalidCredentials);
        }
        if crate::password::needs_rehash(&phc) {
            self.rehash(user.id, &user.name, &phc, password).await;
        }
        Ok(user_caller(&user, Credential::Password))
    }

    /// Re-hashes a verified password made with older parameters. The login succeeds whatever
    /// happens here: a failure only leaves the old hash, which keeps verifying.
    async fn rehash(&self, user_id: i64, name: &str, old: &str, password: &str) {
        let replaced = match hash_blocking(Secret::new(password)).await {
            Ok(new) => self
                .store
                .replace_password_hash(user_id, old, &new)
                .await
                .map_err(AuthError::from),
            Err(e) => Err(e),
        };
        match replaced {
            Ok(true) => {
                tracing::info!(user = %name, "password re-hashed with the current argon2id parameters")
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(user = %name, error = %e, "re-hashing the password failed"),
        }
    }

    async fn verify_cached(&self, phc: &str, password: &str, now: i64) -> AuthResult<bool> {
        let key: [u8; 32] = Sha256::new()
            .chain_update(phc.as_bytes())
            .chain_update([0u8])
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        let cached = || {
            let cache = self
                .password_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            cache.get(&key).is_some_and(|&until| now < until)
        };
        if cached() {
            return Ok(true);
        }
        let _slot = argon2_slot().await?;
        // Concurrent logins with the same password wait here for the first one's answer.
        if cached() {
            return Ok(true);
        }
        let phc_owned = phc.to_owned();
        let pw = Secret::new(password);
        let ok = tokio::task::spawn_blocking(move || {
            crate::password::verify_password(pw.expose(), &phc_owned)
        })
        .await
        .map_err(internal)??;
        if ok {
            let mut cache = self
                .password_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if cache.len() >= PASSWORD_CACHE_MAX {
                cache.retain(|_, until| now < *until);
                if cache.len() >= PASSWORD_CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(key, now.saturating_add(PASSWORD_CACHE_TTL_SECS));
        }
        Ok(ok)
    }

    async fn check_robot(&self, name: &str, secret: &str, now: i64) -> AuthResult<Caller> {
        let Some((robot, hash)) = self.store.robot_by_name(name).await? else {
            return Err(AuthError::InvalidCredentials);
        };
        let expired = robot.expires_at.is_some_and(|e| now >= e);
        if !hash.verify(secret) || robot.disabled || expired {
            return Err(AuthError::InvalidCredentials);
        }
        Ok(Caller {
            principal: Principal::Robot {
                id: robot.id,
                name: robot.name,
                project: robot.project,
                permissions: robot.permissions,
                expires_at: robot.expires_at,
            },
            credential: Credential::Robot,
            restrict: Vec::new(),
            claims: None,
        })
    }

    async fn check_personal_token(
        &self,
        username: &str,
        token: &ApiToken,
        now: i64,
    ) -> AuthResult<Caller> {
        let Some((pat, hash)) = self.store.token_by_id(token.id()).await? else {
            return Err(AuthError::InvalidCredentials);
        };
        if !token.matches(&hash)
            || pat.revoked_at.is_some()
            || pat.expires_at.is_some_and(|e| now >= e)
        {
            return Err(AuthError::InvalidCredentials);
        }
        let Some(user) = self.store.user_by_id(pat.user_id).await? else {
            return Err(AuthError::InvalidCredentials);
        };
        if user.disabled || user.name != username {
            return Err(AuthError::InvalidCredentials);
        }
        let mut caller = user_caller(&user, Credential::PersonalToken(pat.id));
        caller.restrict = pat.permissions;
        Ok(caller)
    }

    /// Authenticate a registry access token (a Bearer JWT).
    pub async fn verify_access_token(&self, token: &str) -> AuthResult<Caller> {
        let now = self.now();
        let result = read(&self.keys)
            .issuer
            .verify(token, &self.config.service, now);
        let claims = match result {
            Err(TokenError::UnknownKey) if self.keys_stale(now) => {
                // Another replica may have rotated; look again before refusing.
                self.reload_keys().await?;
                read(&self.keys)
                    .issuer
                    .verify(token, &self.config.service, now)?
            }
            other => other?,
        };
        Ok(Caller {
            principal: Principal::Anonymous,
            credential: Credential::AccessToken,
            restrict: Vec::new(),
            claims: Some(claims),
        })
    }

    fn keys_stale(&self, now: i64) -> bool {
        now.saturating_sub(read(&self.keys).loaded_at) >= KEY_RELOAD_MIN_SECS
    }

    // ---- authorisation ----

    /// The grants of `caller` in `project`.
    pub async fn grants(&self, caller: &Caller, project: &str) -> AuthResult<Grants> {
        Ok(self.store.grants(caller.user_id(), project).await?)
    }

    /// The actions among `requested` that `caller` may perform on `repo`.
    pub async fn allowed(
        &self,
        caller: &Caller,
        repo: &RepoName,
        requested: &[Action],
    ) -> AuthResult<Vec<Action>> {
        if let Some(claims) = &caller.claims {
            return Ok(requested
                .iter()
                .copied()
                .filter(|a| claims.capability(repo, &[*a]).is_ok())
                .collect());
        }
        let grants = self.grants(caller, repo.project()).await?;
        let now = self.now();
        let mut allowed = crate::policy::allowed(&caller.principal, &grants, repo, requested, now);
        if !caller.restrict.is_empty() {
            allowed.retain(|a| {
                caller
                    .restrict
                    .iter()
                    .any(|p| p.pattern.matches(repo) && permission_covers(&p.actions, *a))
            });
        }
        Ok(allowed)
    }

    /// Check that `caller` may perform every action in `required` on `repo`. A push to a
    /// project that does not exist yet creates it when the configuration lets this caller
    /// create projects.
    pub async fn authorize(
        &self,
        caller: &Caller,
        repo: &RepoName,
        required: &[Action],
    ) -> AuthResult<Capability> {
        if let Some(claims) = &caller.claims {
            return Ok(claims.capability(repo, required)?);
        }
        let mut allowed = self.allowed(caller, repo, required).await?;
        if required.contains(&Action::Push)
            && !allowed.contains(&Action::Push)
            && self.create_project_on_push(caller, repo.project()).await?
        {
            allowed = self.allowed(caller, repo, required).await?;
        }
        let missing: Vec<Action> = required
            .iter()
            .copied()
            .filter(|a| !permission_covers(&allowed, *a))
            .collect();
        if missing.is_empty() {
            Ok(Capability::new(repo.clone(), ActionSet::of(required)))
        } else {
            Err(Denied::Repository {
                repo: repo.clone(),
                missing,
            }
            .into())
        }
    }

    /// Whether `caller` may list the whole catalog.
    pub fn may_list_catalog(&self, caller: &Caller) -> bool {
        match &caller.claims {
            Some(c) => c.allows_catalog(),
            None => caller.is_system_admin(),
        }
    }

    async fn create_project_on_push(&self, caller: &Caller, project: &str) -> AuthResult<bool> {
        let Principal::User {
            id, system_admin, ..
        } = &caller.principal
        else {
            return Ok(false);
        };
        let may = *system_admin || self.config.project_creation == ProjectCreation::Users;
        if !may || self.store.project_by_name(project).await?.is_some() {
            return Ok(false);
        }
        if !caller.restrict.is_empty() {
            // A scoped token pushes only where its scopes point; it may still create the
            // project those scopes name.
            let Ok(probe) = RepoName::parse(&format!("{project}/x")) else {
                return Ok(false);
            };
            let mentions = caller.restrict.iter().any(|p| {
                p.pattern.as_str().starts_with(&format!("{project}/")) || p.pattern.matches(&probe)
            });
            if !mentions {
                return Ok(false);
            }
        }
        let created = match self
            .store
            .create_project(project, Visibility::Private, self.now())
            .await
        {
            Ok(p) => p,
            // Someone else created it meanwhile: their membership rules apply.
            Err(StoreError::Conflict(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if !*system_admin {
            self.store
                .set_member(created.id, Member::User(*id), Role::Admin)
                .await?;
        }
        tracing::info!(project, by = %caller.subject(), "project created on first push");
        Ok(true)
    }

    // ---- the token endpoint ----

    /// Issue an access token for `scopes` (granting their intersection with the caller's
    /// rights, possibly nothing) and, when `offline` and the caller logged in with
    /// credentials, a refresh token.
    pub async fn issue_token(
        &self,
        caller: &Caller,
        scopes: &[Scope],
        offline: bool,
    ) -> AuthResult<IssuedToken> {
        let mut access = Vec::new();
        for scope in scopes {
            let granted = match &scope.resource {
                Resource::Repository { name, .. } => {
                    let wanted = expand(&scope.actions);
                    let mut got = if wanted.contains(&Action::Push) {
                        // Project creation on push happens here, at token time, like a push
                        // with Basic credentials would do it at request time.
                        match self.authorize(caller, name, &[Action::Push]).await {
                            Ok(_) | Err(AuthError::Denied(_)) => {}
                            Err(e) => return Err(e),
                        }
                        self.allowed(caller, name, &wanted).await?
                    } else {
                        self.allowed(caller, name, &wanted).await?
                    };
                    if scope.actions.contains(&Action::All) && covers_all(&got) {
                        got.push(Action::All);
                    }
                    got.retain(|a| {
                        scope.actions.contains(a) || scope.actions.contains(&Action::All)
                    });
                    got
                }
                Resource::Catalog => {
                    if self.may_list_catalog(caller) {
                        vec![Action::All]
                    } else {
                        Vec::new()
                    }
                }
            };
            if !granted.is_empty() {
                access.push(scope.granted(&granted));
            }
        }
        let now = self.now();
        let subject = caller.subject().to_owned();
        let keys = read(&self.keys);
        let token = keys.issuer.issue(
            &subject,
            &self.config.service,
            access.clone(),
            now,
            self.config.access_ttl,
        )?;
        let refresh = match (offline, refresh_subject(caller)) {
            (true, Some(sub)) => Some(keys.issuer.issue_refresh(
                &sub,
                now,
                self.config.refresh_ttl,
            )?),
            _ => None,
        };
        Ok(IssuedToken {
            token,
            refresh,
            access,
        })
    }

    /// The OAuth2 `grant_type=refresh_token` flow: re-check the credential the refresh token
    /// stands for (the user still enabled, the robot alive, the personal token not revoked)
    /// and issue a new access token for `scopes`. The refresh token is returned unchanged.
    pub async fn refresh(&self, refresh_token: &str, scopes: &[Scope]) -> AuthResult<IssuedToken> {
        let now = self.now();
        let verified = read(&self.keys).issuer.verify_refresh(refresh_token, now);
        let claims = match verified {
            Err(TokenError::UnknownKey) if self.keys_stale(now) => {
                self.reload_keys().await?;
                read(&self.keys).issuer.verify_refresh(refresh_token, now)?
            }
            other => other?,
        };
        let caller = self.caller_for_refresh(&claims.sub, now).await?;
        self.issue_token(&caller, scopes, false).await
    }

    async fn caller_for_refresh(&self, sub: &str, now: i64) -> AuthResult<Caller> {
        let (kind, rest) = sub.split_once(':').ok_or(AuthError::InvalidCredentials)?;
        match kind {
            "user" => {
                let Some(creds) = self.store.user_by_name(rest).await? else {
                    return Err(AuthError::InvalidCredentials);
                };
                if creds.user.disabled {
                    return Err(AuthError::InvalidCredentials);
                }
                Ok(user_caller(&creds.user, Credential::Password))
            }
            "robot" => {
                let Some((robot, _)) = self.store.robot_by_name(rest).await? else {
                    return Err(AuthError::InvalidCredentials);
                };
                if robot.disabled || robot.expires_at.is_some_and(|e| now >= e) {
                    return Err(AuthError::InvalidCredentials);
                }
                Ok(Caller {
                    principal: Principal::Robot {
                        id: robot.id,
                        name: robot.name,
                        project: robot.project,
                        permissions: robot.permissions,
                        expires_at: robot.expires_at,
                    },
                    credential: Credential::Robot,
                    restrict: Vec::new(),
                    claims: None,
                })
            }
            "pat" => {
                let Some((pat, _)) = self.store.token_by_id(rest).await? else {
                    return Err(AuthError::InvalidCredentials);
                };
                if pat.revoked_at.is_some() || pat.expires_at.is_some_and(|e| now >= e) {
                    return Err(AuthError::InvalidCredentials);
                }
                let Some(user) = self.store.user_by_id(pat.user_id).await? else {
                    return Err(AuthError::InvalidCredentials);
                };
                if user.disabled {
                    return Err(AuthError::InvalidCredentials);
                }
                let mut caller = user_caller(&user, Credential::PersonalToken(pat.id));
                caller.restrict = pat.permissions;
                Ok(caller)
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }
}

fn user_caller(user: &User, credential: Credential) -> Caller {
    Caller {
        principal: Principal::User {
            id: user.id,
            name: user.name.clone(),
            system_admin: user.system_admin,
        },
        credential,
        restrict: Vec::new(),
        claims: None,
    }
}

/// The subject a refresh token carries, naming the credential to re-check on refresh.
fn refresh_subject(caller: &Caller) -> Option<String> {
    match (&caller.credential, &caller.principal) {
        (Credential::PersonalToken(id), _) => Some(format!("pat:{id}")),
        (Credential::Password, Principal::User { name, .. }) => Some(format!("user:{name}")),
        (Credential::Robot, Principal::Robot { name, .. }) => Some(format!("robot:{name}")),
        _ => None,
    }
}

fn covers_all(actions: &[Action]) -> bool {
    [Action::Pull, Action::Push, Action::Delete]
        .iter()
        .all(|a| actions.contains(a))
}

/// `*` stands for pull, push and delete.
fn expand(actions: &[Action]) -> Vec<Action> {
    let mut out: Vec<Action> = Vec::new();
    for a in actions {
        let add: &[Action] = if *a == Action::All {
            &[Action::Pull, Action::Push, Action::Delete]
        } else {
            std::slice::from_ref(a)
        };
        for x in add {
            if !out.contains(x) {
                out.push(*x);
            }
        }
    }
    out
}

fn permission_covers(granted: &[Action], action: Action) -> bool {
    granted.contains(&action)
        || granted.contains(&Action::All)
        || (action == Action::All && covers_all(granted))
}

/// argon2 takes 7 MiB and tens of milliseconds per hash: without a bound, a burst of logins
/// (or of guesses) runs one per request at once and the process grows by 7 MiB each.
static ARGON2_SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::sync::Semaphore::new(cores.clamp(1, 4))
});

async fn argon2_slot() -> AuthResult<tokio::sync::SemaphorePermit<'static>> {
    ARGON2_SLOTS.acquire().await.map_err(internal)
}

/// Hash a password on the blocking pool, at most a few at a time (see [`ARGON2_SLOTS`]).
pub async fn hash_blocking(password: Secret) -> AuthResult<String> {
    let _slot = argon2_slot().await?;
    tokio::task::spawn_blocking(move || hash_password(password.expose()))
        .await
        .map_err(internal)?
        .map_err(AuthError::from)
}
