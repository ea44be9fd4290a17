//! AuthService behaviour over a real SQLite store: bootstrap, every credential kind, rate
//! limiting, permission checks with project creation on push, tokens, refresh and key sharing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bulwark_auth::policy::{RepoPattern, RobotPermission, Role, Visibility};
use bulwark_auth::scope::{Action, Scope};
use bulwark_auth::service::{
    AuthConfig, AuthError, AuthService, BOOTSTRAP_ADMIN, Caller, ProjectCreation,
};
use bulwark_auth::store::{AuthStore, Member, NewPersonalToken, NewRobot, NewUser};
use bulwark_auth::{ApiToken, Limit, RateLimitConfig, Secret, SecretHash, hash_password};
use bulwark_core::Clock;
use bulwark_meta::SqliteStore;
use bulwark_oci::RepoName;

const T0: i64 = 1_800_000_000;
const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<TestClock>,
    auth: AuthService,
}

impl Env {
    async fn new(config: AuthConfig) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("b.db")).await.unwrap());
        let clock = Arc::new(TestClock(AtomicI64::new(T0)));
        let auth = AuthService::new(store.clone(), clock.clone(), config)
            .await
            .unwrap();
        Env {
            _dir: dir,
            store,
            clock,
            auth,
        }
    }

    async fn default() -> Env {
        Env::new(AuthConfig::default()).await
    }

    fn advance(&self, secs: i64) {
        self.clock.0.fetch_add(secs, Ordering::SeqCst);
    }

    async fn user(&self, name: &str, password: &str) -> i64 {
        self.store
            .create_user(NewUser {
                name: name.into(),
                email: None,
                password_hash: Some(hash_password(password).unwrap()),
                system_admin: false,
                created_at: T0,
            })
            .await
            .unwrap()
            .id
    }

    async fn project(&self, name: &str, visibility: Visibility) -> i64 {
        self.store
            .create_project(name, visibility, T0)
            .await
            .unwrap()
            .id
    }

    async fn login(&self, user: &str, password: &str) -> Result<Caller, AuthError> {
        self.auth.login(user, password, IP).await
    }
}

fn repo(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

fn perm(pattern: &str, actions: &[Action]) -> RobotPermission {
    RobotPermission {
        pattern: RepoPattern::new(pattern).unwrap(),
        actions: actions.to_vec(),
    }
}

fn scope(s: &str) -> Scope {
    Scope::parse(s).unwrap()
}

async fn allowed(env: &Env, caller: &Caller, r: &str) -> Vec<Action> {
    env.auth
        .allowed(
            caller,
            &repo(r),
            &[Action::Pull, Action::Push, Action::Delete],
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn bootstrap_creates_one_admin_once() {
    let env = Env::default().await;
    let generated = env.auth.bootstrap(None).await.unwrap().expect("generated");
    assert!(generated.expose().len() >= 20);
    let admin = env
        .login(BOOTSTRAP_ADMIN, generated.expose())
        .await
        .unwrap();
    assert!(admin.is_system_admin());
    // A second start (or a racing replica) changes nothing, even with a password given.
    assert!(
        env.auth
            .bootstrap(Some(Secret::new("other-password")))
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        env.login(BOOTSTRAP_ADMIN, "other-password").await,
        Err(AuthError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn bootstrap_with_given_password_returns_nothing_to_show() {
    let env = Env::default().await;
    assert!(
        env.auth
            .bootstrap(Some(Secret::new("s3cret-admin-pw")))
            .await
            .unwrap()
            .is_none()
    );
    env.login(BOOTSTRAP_ADMIN, "s3cret-admin-pw").await.unwrap();
}

#[tokio::test]
async fn passwords_users_and_disabled_accounts() {
    let env = Env::default().await;
    let id = env.user("alice", "correct horse").await;
    let alice = env.login("alice", "correct horse").await.unwrap();
    assert_eq!(alice.subject(), "alice");
    assert!(!alice.is_system_admin());
    for (u, p) in [
        ("alice", "wrong"),
        ("bob", "correct horse"),
        ("Alice", "correct horse"),
    ] {
        assert!(
            matches!(env.login(u, p).await, Err(AuthError::InvalidCredentials)),
            "{u}/{p}"
        );
    }
    env.store.set_user_disabled(id, true).await.unwrap();
    // Even with the verification cached from the successful login above.
    assert!(matches!(
        env.login("alice", "correct horse").await,
        Err(AuthError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn a_hash_with_older_parameters_is_replaced_at_login() {
    let env = Env::default().await;
    let id = env.user("alice", "first password").await;
    // What the store held before the parameters changed (argon2id, 19 MiB × 2).
    let old = {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(19_456, 2, 1, None).unwrap();
        let argon2 =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        argon2
            .hash_password(b"first password", &salt)
            .unwrap()
            .to_string()
    };
    env.store.set_password(id, &old).await.unwrap();
    assert!(env.login("alice", "wrong password").await.is_err());
    let stored = || async {
        env.store
            .user_by_name("alice")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap()
    };
    assert_eq!(stored().await, old, "a failed login re-hashes nothing");

    env.login("alice", "first password").await.unwrap();
    let new = stored().await;
    assert!(new.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{new}");
    assert!(!bulwark_auth::needs_rehash(&new));
    env.login("alice", "first password").await.unwrap();
    assert_eq!(stored().await, new, "a current hash stays");

    // The re-hash never undoes a password change made meanwhile.
    let changed = hash_password("second password").unwrap();
    env.store.set_password(id, &changed).await.unwrap();
    assert!(
        !env.store
            .replace_password_hash(id, &old, "$argon2id$stale")
            .await
            .unwrap()
    );
    assert_eq!(stored().await, changed);
}

#[tokio::test]
async fn password_change_invalidates_the_cached_verification() {
    let env = Env::default().await;
    let id = env.user("alice", "first password").await;
    env.login("alice", "first password").await.unwrap();
    env.store
        .set_password(id, &hash_password("second password").unwrap())
        .await
        .unwrap();
    assert!(env.login("alice", "first password").await.is_err());
    env.login("alice", "second password").await.unwrap();
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_user() {
    let env = Env::new(AuthConfig {
        rate_limit: RateLimitConfig {
            per_user: Limit {
                max_failures: 3,
                window_secs: 60,
            },
            ..RateLimitConfig::default()
        },
        ..AuthConfig::default()
    })
    .await;
    env.user("alice", "correct horse").await;
    let mut limited = false;
    for _ in 0..6 {
        if let Err(AuthError::RateLimited(retry)) = env.login("alice", "nope").await {
            assert!(retry.0 >= 1);
            limited = true;
            break;
        }
    }
    assert!(limited, "never rate limited");
    // Even the right password waits until the window drains.
    assert!(matches!(
        env.login("alice", "correct horse").await,
        Err(AuthError::RateLimited(_))
    ));
    env.advance(120);
    env.login("alice", "correct horse").await.unwrap();
}

#[tokio::test]
async fn roles_decide_actions_and_anonymous_pulls_only_public() {
    let env = Env::default().await;
    let pid = env.project("team-a", Visibility::Private).await;
    env.project("open", Visibility::Public).await;
    for (name, role) in [
        ("rita", Role::Reader),
        ("dev", Role::Developer),
        ("max", Role::Maintainer),
    ] {
        let id = env.user(name, "password1").await;
        env.store
            .set_member(pid, Member::User(id), role)
            .await
            .unwrap();
    }
    env.user("outsider", "password1").await;
    let rita = env.login("rita", "password1").await.unwrap();
    let dev = env.login("dev", "password1").await.unwrap();
    let max = env.login("max", "password1").await.unwrap();
    let outsider = env.login("outsider", "password1").await.unwrap();
    let anon = Caller::anonymous();
    use Action::*;
    assert_eq!(allowed(&env, &rita, "team-a/app").await, vec![Pull]);
    assert_eq!(allowed(&env, &dev, "team-a/app").await, vec![Pull, Push]);
    assert_eq!(
        allowed(&env, &max, "team-a/app/deep").await,
        vec![Pull, Push, Delete]
    );
    assert!(allowed(&env, &outsider, "team-a/app").await.is_empty());
    assert!(allowed(&env, &anon, "team-a/app").await.is_empty());
    assert_eq!(allowed(&env, &anon, "open/app").await, vec![Pull]);
    assert_eq!(allowed(&env, &outsider, "open/app").await, vec![Pull]);
    let err = env
        .auth
        .authorize(&rita, &repo("team-a/app"), &[Pull, Push])
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Denied(_)), "{err:?}");
    let cap = env
        .auth
        .authorize(&dev, &repo("team-a/app"), &[Pull, Push])
        .await
        .unwrap();
    assert!(cap.permits(Push) && !cap.permits(Delete));
}

#[tokio::test]
async fn first_push_creates_a_private_project_owned_by_the_pusher() {
    let env = Env::default().await;
    env.user("alice", "password1").await;
    env.user("bob", "password1").await;
    let alice = env.login("alice", "password1").await.unwrap();
    let bob = env.login("bob", "password1").await.unwrap();
    // Reading does not create anything.
    assert!(allowed(&env, &alice, "fresh/app").await.is_empty());
    assert!(env.store.project_by_name("fresh").await.unwrap().is_none());
    env.auth
        .authorize(&alice, &repo("fresh/app"), &[Action::Pull, Action::Push])
        .await
        .unwrap();
    let p = env.store.project_by_name("fresh").await.unwrap().unwrap();
    assert_eq!(p.visibility, Visibility::Private);
    let members = env.store.list_members(p.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].name.as_str(), members[0].role),
        ("alice", Role::Admin)
    );
    // The project now exists: bob cannot take it over by pushing.
    assert!(
        env.auth
            .authorize(&bob, &repo("fresh/other"), &[Action::Push])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn project_creation_can_be_reserved_to_admins() {
    let env = Env::new(AuthConfig {
        project_creation: ProjectCreation::Admins,
        ..AuthConfig::default()
    })
    .await;
    env.user("alice", "password1").await;
    let alice = env.login("alice", "password1").await.unwrap();
    assert!(
        env.auth
            .authorize(&alice, &repo("fresh/app"), &[Action::Push])
            .await
            .is_err()
    );
    assert!(env.store.project_by_name("fresh").await.unwrap().is_none());
}

async fn robot(
    env: &Env,
    name: &str,
    project: Option<&str>,
    perms: Vec<RobotPermission>,
    expires_at: Option<i64>,
) -> String {
    let secret = format!("{name}-secret-value-0123456789");
    env.store
        .create_robot(NewRobot {
            name: name.into(),
            project: project.map(Into::into),
            description: None,
            permissions: perms,
            expires_at,
            secret_hash: SecretHash::of(&secret),
            created_at: T0,
        })
        .await
        .unwrap();
    secret
}

#[tokio::test]
async fn robots_get_exactly_their_permissions_until_they_expire() {
    let env = Env::default().await;
    env.project("team-a", Visibility::Private).await;
    let secret = robot(
        &env,
        "robot$team-a+ci",
        Some("team-a"),
        vec![
            perm("team-a/app/*", &[Action::Pull, Action::Push]),
            // Outside its project: never honoured.
            perm("team-b/*", &[Action::Pull]),
        ],
        Some(T0 + 100),
    )
    .await;
    assert!(env.login("robot$team-a+ci", "wrong").await.is_err());
    let ci = env.login("robot$team-a+ci", &secret).await.unwrap();
    assert_eq!(
        allowed(&env, &ci, "team-a/app/api").await,
        vec![Action::Pull, Action::Push]
    );
    assert!(allowed(&env, &ci, "team-a/other").await.is_empty());
    assert!(allowed(&env, &ci, "team-b/x").await.is_empty());
    env.advance(100);
    assert!(matches!(
        env.login("robot$team-a+ci", &secret).await,
        Err(AuthError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn personal_tokens_are_limited_by_owner_and_scopes_and_revocable() {
    let env = Env::default().await;
    let pid = env.project("team-a", Visibility::Private).await;
    let uid = env.user("alice", "password1").await;
    env.store
        .set_member(pid, Member::User(uid), Role::Maintainer)
        .await
        .unwrap();
    let new = ApiToken::generate().unwrap();
    env.store
        .create_token(NewPersonalToken {
            id: new.id.clone(),
            user_id: uid,
            name: "ci".into(),
            permissions: vec![perm("team-a/app", &[Action::Pull])],
            expires_at: None,
            secret_hash: new.hash,
            created_at: T0,
        })
        .await
        .unwrap();
    let token = new.token.expose();
    // Only with its owner's name.
    assert!(env.login("mallory", token).await.is_err());
    let caller = env.login("alice", token).await.unwrap();
    assert_eq!(
        allowed(&env, &caller, "team-a/app").await,
        vec![Action::Pull]
    );
    assert!(allowed(&env, &caller, "team-a/other").await.is_empty());
    // A token for a nonexistent project name cannot be used to create it.
    assert!(
        env.auth
            .authorize(&caller, &repo("elsewhere/app"), &[Action::Push])
            .await
            .is_err()
    );
    // Refresh tokens minted from the PAT die with it.
    let issued = env
        .auth
        .issue_token(&caller, &[scope("repository:team-a/app:pull")], true)
        .await
        .unwrap();
    let refresh = issued.refresh.expect("offline token");
    env.auth
        .refresh(
            refresh.token.expose(),
            &[scope("repository:team-a/app:pull")],
        )
        .await
        .unwrap();
    assert!(env.store.revoke_token(&new.id, T0 + 1).await.unwrap());
    assert!(matches!(
        env.login("alice", token).await,
        Err(AuthError::InvalidCredentials)
    ));
    assert!(matches!(
        env.auth.refresh(refresh.token.expose(), &[]).await,
        Err(AuthError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn tokens_grant_the_intersection_and_verify() {
    let env = Env::default().await;
    let pid = env.project("team-a", Visibility::Private).await;
    env.project("open", Visibility::Public).await;
    let uid = env.user("rita", "password1").await;
    env.store
        .set_member(pid, Member::User(uid), Role::Reader)
        .await
        .unwrap();
    let rita = env.login("rita", "password1").await.unwrap();
    let issued = env
        .auth
        .issue_token(
            &rita,
            &[
                scope("repository:team-a/app:pull,push"),
                scope("repository:secret/app:pull"),
                scope("registry:catalog:*"),
            ],
            false,
        )
        .await
        .unwrap();
    assert!(issued.refresh.is_none());
    assert_eq!(issued.access.len(), 1, "{:?}", issued.access);
    assert_eq!(issued.access[0].name, "team-a/app");
    assert_eq!(issued.access[0].actions, vec![Action::Pull]);

    let bearer = env
        .auth
        .verify_access_token(issued.token.token.expose())
        .await
        .unwrap();
    assert_eq!(bearer.subject(), "rita");
    assert!(
        env.auth
            .authorize(&bearer, &repo("team-a/app"), &[Action::Pull])
            .await
            .is_ok()
    );
    assert!(
        env.auth
            .authorize(&bearer, &repo("team-a/app"), &[Action::Push])
            .await
            .is_err()
    );
    // A token never reaches beyond its claims, even for public repositories.
    assert!(
        env.auth
            .authorize(&bearer, &repo("open/app"), &[Action::Pull])
            .await
            .is_err()
    );
    assert!(!env.auth.may_list_catalog(&bearer));

    // Anonymous: public pulls only, never a refresh token.
    let anon = env
        .auth
        .issue_token(
            &Caller::anonymous(),
            &[
                scope("repository:open/app:pull,push"),
                scope("repository:team-a/app:pull"),
            ],
            true,
        )
        .await
        .unwrap();
    assert!(anon.refresh.is_none());
    assert_eq!(anon.access.len(), 1);
    assert_eq!(anon.access[0].actions, vec![Action::Pull]);

    // Expired tokens are refused (past the leeway).
    env.advance(300 + 31);
    assert!(matches!(
        env.auth
            .verify_access_token(issued.token.token.expose())
            .await,
        Err(AuthError::Token(_))
    ));
}

#[tokio::test]
async fn admins_get_star_and_catalog() {
    let env = Env::default().await;
    env.auth
        .bootstrap(Some(Secret::new("admin-password")))
        .await
        .unwrap();
    let admin = env.login(BOOTSTRAP_ADMIN, "admin-password").await.unwrap();
    let issued = env
        .auth
        .issue_token(
            &admin,
            &[scope("repository:any/app:*"), scope("registry:catalog:*")],
            false,
        )
        .await
        .unwrap();
    assert_eq!(issued.access.len(), 2);
    assert!(issued.access[0].actions.contains(&Action::All));
    let bearer = env
        .auth
        .verify_access_token(issued.token.token.expose())
        .await
        .unwrap();
    assert!(env.auth.may_list_catalog(&bearer));
}

#[tokio::test]
async fn replicas_share_keys_and_rotation_keeps_old_tokens_valid() {
    let env = Env::default().await;
    let replica = AuthService::new(env.store.clone(), env.clock.clone(), AuthConfig::default())
        .await
        .unwrap();
    env.auth
        .bootstrap(Some(Secret::new("admin-password")))
        .await
        .unwrap();
    let admin = env.login(BOOTSTRAP_ADMIN, "admin-password").await.unwrap();
    let before = env
        .auth
        .issue_token(&admin, &[scope("repository:a/b:pull")], false)
        .await
        .unwrap();
    replica
        .verify_access_token(before.token.token.expose())
        .await
        .unwrap();
    env.auth.rotate_signing_key().await.unwrap();
    let after = env
        .auth
        .issue_token(&admin, &[scope("repository:a/b:pull")], false)
        .await
        .unwrap();
    // The rotating replica verifies both; the other one learns the new key when it meets it.
    env.auth
        .verify_access_token(before.token.token.expose())
        .await
        .unwrap();
    env.advance(10);
    replica
        .verify_access_token(after.token.token.expose())
        .await
        .unwrap();
    replica
        .verify_access_token(before.token.token.expose())
        .await
        .unwrap();
}
