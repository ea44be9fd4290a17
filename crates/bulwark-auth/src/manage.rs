//! Management operations: users, teams, projects, members, per-repository rules, robot accounts
//! and personal access tokens. Every operation checks the caller's permission before it looks
//! at anything else, then validates its input, then acts on the [`crate::store::AuthStore`].
//!
//! # Who may manage what
//!
//! | operation                                        | who                                      |
//! |--------------------------------------------------|------------------------------------------|
//! | users (create, list, change, delete), teams      | system admins                            |
//! | read one user                                    | system admins, the user themself         |
//! | change one's own password, manage one's tokens   | the user themself                        |
//! | create a project                                 | system admins; any user when [`ProjectCreation::Users`] |
//! | list and read projects                           | anyone authenticated (what they can see) |
//! | list project members                             | project members with any role            |
//! | members, rules, robots, visibility of a project  | project admins ([`ProjectPermission`])   |
//! | delete a project, system robots                  | system admins                            |
//!
//! *Managing* means a user who logged in with their password. Robots and personal access
//! tokens never manage anything, with one exception: a user authenticated by a personal access
//! token without a permission restriction may change their own password and manage their own
//! tokens. Registry access tokens (JWTs) carry repository scopes only and manage nothing.
//!
//! # Validation
//!
//! User, team and robot short names match `[a-z0-9][a-z0-9._-]{0,63}`; project names are valid
//! first components of a repository name; passwords have 8 to 4096 characters (and at most
//! 4096 bytes); robot and token permissions are [`RepoPattern`]s with a non-empty action list,
//! and a project robot's patterns (like a project's per-repository rules) stay inside the
//! project. Invalid input is [`AuthError::Invalid`] with a message meant for the client.
//!
//! Secrets (robot secrets, personal access tokens) are generated here and returned exactly
//! once, in [`CreatedRobot::secret`] and [`CreatedToken::token`]; the store keeps their
//! SHA-256 only.

use std::collections::HashMap;

use bulwark_oci::RepoName;

use crate::password::{ApiToken, MAX_PASSWORD_LEN, Secret, SecretHash, generate_secret};
use crate::policy::{
    Denied, Principal, ProjectPermission, RepoPattern, RobotPermission, Role, Visibility,
    authorize_project, project_role,
};
use crate::scope::Action;
use crate::service::{
    AuthError, AuthResult, AuthService, Caller, Credential, ProjectCreation, ROBOT_PREFIX,
    hash_blocking,
};
use crate::store::{
    Member, Membership, NewPersonalToken, NewRobot, NewUser, PersonalToken, Project, Robot,
    StoredRepoRule, Team, User,
};

/// Fewest characters in a password.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Most characters (and bytes) in a password.
pub const MAX_PASSWORD_CHARS: usize = MAX_PASSWORD_LEN;
/// Longest user, team or robot short name.
pub const MAX_SHORT_NAME: usize = 64;
/// Random bytes in a robot secret.
pub const ROBOT_SECRET_BYTES: usize = 32;
/// Longest robot description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Longest personal access token name, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 100;
/// Most entries in a robot's or token's permission list.
pub const MAX_PERMISSIONS: usize = 64;
/// Longest e-mail address (RFC 5321 path limit).
pub const MAX_EMAIL: usize = 254;

/// A new user, as requested.
#[derive(Debug, Clone)]
pub struct NewUserRequest {
    pub name: String,
    pub password: Secret,
    pub email: Option<String>,
    pub system_admin: bool,
}

/// Changes to a user; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub password: Option<Secret>,
    pub disabled: Option<bool>,
    pub system_admin: Option<bool>,
    pub email: Option<String>,
}

/// A project member or rule holder, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRef {
    User(String),
    Team(String),
}

impl MemberRef {
    fn label(&self) -> String {
        match self {
            MemberRef::User(n) => format!("user {n}"),
            MemberRef::Team(n) => format!("team {n}"),
        }
    }
}

/// One requested permission entry: a repository pattern and action names (`pull`, `push`,
/// `delete`, `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionSpec {
    pub pattern: String,
    pub actions: Vec<String>,
}

/// A new robot account, as requested; `name` is the short name.
#[derive(Debug, Clone, Default)]
pub struct NewRobotRequest {
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<PermissionSpec>,
    pub expires_in_secs: Option<u64>,
}

/// A robot just created, with its secret (shown once, never stored).
#[derive(Debug, Clone)]
pub struct CreatedRobot {
    pub robot: Robot,
    pub secret: Secret,
}

/// A new personal access token, as requested. An empty permission list means "everything the
/// owner may do".
#[derive(Debug, Clone, Default)]
pub struct NewTokenRequest {
    pub name: String,
    pub permissions: Vec<PermissionSpec>,
    pub expires_in_secs: Option<u64>,
}

/// A personal access token just created, with the token itself (shown once, never stored).
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub token: PersonalToken,
    pub secret: Secret,
}

/// A per-repository rule with the name of the user or team it binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    pub rule: StoredRepoRule,
    pub member_name: String,
}

// ---- validation ----

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::Invalid(msg.into())
}

/// A user, team or robot short name: `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn validate_short_name(what: &str, name: &str) -> AuthResult<()> {
    let b = name.as_bytes();
    let first_ok = b
        .first()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'));
    if first_ok && rest_ok && b.len() <= MAX_SHORT_NAME {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid {what} name {:?}: use 1 to {MAX_SHORT_NAME} characters of a-z 0-9 . _ -, \
             starting with a letter or digit",
            truncate(name)
        )))
    }
}

/// A project name: a valid first component of a repository name.
pub fn validate_project_name(name: &str) -> AuthResult<()> {
    let ok = !name.contains('/')
        && RepoName::parse(&format!("{name}/x")).is_ok_and(|r| r.project() == name);
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid project name {:?}: use lowercase letters and digits, separated by \
             single '.', '_', '__' or runs of '-'",
            truncate(name)
        )))
    }
}

/// A password: 8 to 4096 characters, at most 4096 bytes, not shaped like an API token (a
/// password shaped like one could never be used to log in).
pub fn validate_password(password: &Secret) -> AuthResult<()> {
    let p = password.expose();
    let chars = p.chars().count();
    if chars < MIN_PASSWORD_CHARS || p.len() > MAX_PASSWORD_CHARS {
        return Err(invalid(format!(
            "password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters \
             (at most {MAX_PASSWORD_LEN} bytes)"
        )));
    }
    if ApiToken::looks_like(p) {
        return Err(invalid(
            "password must not look like a personal access token (bwk_…)",
        ));
    }
    Ok(())
}

fn validate_email(email: &str) -> AuthResult<()> {
    let ok = email.len() <= MAX_EMAIL
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid e-mail address {:?}",
            truncate(email)
        )))
    }
}

fn validate_label(what: &str, value: &str, max_chars: usize) -> AuthResult<()> {
    let chars = value.chars().count();
    if chars == 0 || chars > max_chars || value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{what} must have 1 to {max_chars} characters and no control characters"
        )));
    }
    Ok(())
}

/// Parse and check a permission list; `inside`: the project the patterns must stay in.
pub fn parse_permissions(
    specs: &[PermissionSpec],
    inside: Option<&str>,
) -> AuthResult<Vec<RobotPermission>> {
    if specs.len() > MAX_PERMISSIONS {
        return Err(invalid(format!(
            "at most {MAX_PERMISSIONS} permission entries are allowed"
        )));
    }
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let pattern = RepoPattern::new(&spec.pattern).map_err(|e| invalid(e.to_string()))?;
        if let Some(project) = inside {
            check_inside(&pattern, project)?;
        }
        if spec.actions.is_empty() {
            return Err(invalid(format!(
                "permission for {:?} lists no actions (use pull, push, delete or *)",
                pattern.as_str()
            )));
        }
        let mut actions: Vec<Action> = Vec::with_capacity(spec.actions.len());
        for a in &spec.actions {
            let action = Action::parse(a).ok_or_else(|| {
                invalid(format!(
                    "unknown action {:?} (use pull, push, delete or *)",
                    truncate(a)
                ))
            })?;
            if !actions.contains(&action) {
                actions.push(action);
            }
        }
        actions.sort();
        out.push(RobotPermission { pattern, actions });
    }
    Ok(out)
}

/// Patterns of a project's rules and robots name repositories of that project only: the
/// project's single-component repository or anything under `<project>/`.
fn check_inside(pattern: &RepoPattern, project: &str) -> AuthResult<()> {
    let p = pattern.as_str();
    let inside = p == project
        || p.strip_prefix(project)
            .is_some_and(|rest| rest.starts_with('/'));
    if inside {
        Ok(())
    } else {
        Err(invalid(format!(
            "pattern {p:?} is outside project {project}: it must start with \"{project}/\""
        )))
    }
}

fn expiry(now: i64, expires_in_secs: Option<u64>) -> AuthResult<Option<i64>> {
    match expires_in_secs {
        None => Ok(None),
        Some(0) => Err(invalid("expires_in_secs must be positive")),
        Some(s) => Ok(Some(
            now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX)),
        )),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

// ---- permission checks ----

fn system_denied() -> AuthError {
    AuthError::Denied(Denied::System {
        what: "this operation",
    })
}

fn project_denied(project: &str, permission: ProjectPermission) -> AuthError {
    AuthError::Denied(Denied::Project {
        project: truncate(project),
        permission,
    })
}

/// A user who logged in with their password (the only kind of caller that manages).
fn is_manager(caller: &Caller) -> bool {
    matches!(caller.principal, Principal::User { .. })
        && caller.credential == Credential::Password
        && caller.restrict.is_empty()
        && caller.claims.is_none()
}

fn is_system_manager(caller: &Caller) -> bool {
    is_manager(caller) && caller.is_system_admin()
}

/// The user `name` acting for themself, by password or by an unrestricted personal token.
fn is_self(caller: &Caller, name: &str) -> bool {
    let Principal::User { name: own, .. } = &caller.principal else {
        return false;
    };
    own == name
        && matches!(
            caller.credential,
            Credential::Password | Credential::PersonalToken(_)
        )
        && caller.restrict.is_empty()
        && caller.claims.is_none()
}

fn require_system_admin(caller: &Caller) -> AuthResult<()> {
    if is_system_manager(caller) {
        Ok(())
    } else {
        Err(system_denied())
    }
}

fn require_self_or_admin(caller: &Caller, user: &str) -> AuthResult<()> {
    if is_self(caller, user) || is_system_manager(caller) {
        Ok(())
    } else {
        Err(system_denied())
    }
}

fn robot_name(project: Option<&str>, short: &str) -> String {
    match project {
        Some(p) => format!("{ROBOT_PREFIX}{p}+{short}"),
        None => format!("{ROBOT_PREFIX}{short}"),
    }
}

impl AuthService {
    // ---- helpers ----

    /// Check a project-management permission for a managing caller and load the project.
    async fn project_for(
        &self,
        caller: &Caller,
        project: &str,
        permission: ProjectPermission,
    ) -> AuthResult<Project> {
        if !is_manager(caller) {
            return Err(project_denied(project, permission));
        }
        let grants = self.grants(caller, project).await?;
        authorize_project(&caller.principal, &grants, permission)?;
        self.store()
            .project_by_name(project)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("project {}", truncate(project))))
    }

    /// Whether `caller` may see `project` (system admins: all; others: public projects and
    /// those where they hold a role or a rule; robots: also their own project).
    async fn may_see_project(&self, caller: &Caller, project: &str) -> AuthResult<bool> {
        if caller.is_system_admin() {
            return Ok(true);
        }
        if let Principal::Robot {
            project: Some(own), ..
        } = &caller.principal
            && own == project
        {
            return Ok(true);
        }
        let grants = self.grants(caller, project).await?;
        Ok(grants.visibility == Visibility::Public
            || project_role(&caller.principal, &grants).is_some()
            || (matches!(caller.principal, Principal::User { .. })
                && !grants.repo_rules.is_empty()))
    }

    async fn user_named(&self, name: &str) -> AuthResult<User> {
        self.store()
            .user_by_name(name)
            .await?
            .map(|c| c.user)
            .ok_or_else(|| AuthError::NotFound(format!("user {}", truncate(name))))
    }

    async fn team_named(&self, name: &str) -> AuthResult<Team> {
        self.store()
            .team_by_name(name)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("team {}", truncate(name))))
    }

    async fn resolve_member(&self, member: &MemberRef) -> AuthResult<Member> {
        Ok(match member {
            MemberRef::User(n) => Member::User(self.user_named(n).await?.id),
            MemberRef::Team(n) => Member::Team(self.team_named(n).await?.id),
        })
    }

    async fn robot_in(&self, project: Option<&str>, short: &str) -> AuthResult<Robot> {
        let name = robot_name(project, short);
        match self.store().robot_by_name(&name).await? {
            Some((robot, _)) if robot.project.as_deref() == project => Ok(robot),
            _ => Err(AuthError::NotFound(format!("robot {}", truncate(&name)))),
        }
    }

    // ---- users ----

    /// Create a user (system admins).
    pub async fn create_user(&self, caller: &Caller, req: NewUserRequest) -> AuthResult<User> {
        require_system_admin(caller)?;
        validate_short_name("user", &req.name)?;
        validate_password(&req.password)?;
        if let Some(e) = &req.email {
            validate_email(e)?;
        }
        let hash = hash_blocking(req.password).await?;
        let user = self
            .store()
            .create_user(NewUser {
                name: req.name,
                email: req.email,
                password_hash: Some(hash),
                system_admin: req.system_admin,
                created_at: self.now(),
            })
            .await?;
        tracing::info!(user = %user.name, system_admin = user.system_admin, by = %caller.subject(), "user created");
        Ok(user)
    }

    /// Every user (system admins).
    pub async fn list_users(&self, caller: &Caller) -> AuthResult<Vec<User>> {
        require_system_admin(caller)?;
        Ok(self.store().list_users().await?)
    }

    /// One user (system admins, or the user themself).
    pub async fn get_user(&self, caller: &Caller, name: &str) -> AuthResult<User> {
        require_self_or_admin(caller, name)?;
        self.user_named(name).await
    }

    /// Change a user. System admins may change anything; a user may change only their own
    /// password. Removing the last enabled system admin (disabling or demoting them) is a
    /// conflict.
    pub async fn update_user(
        &self,
        caller: &Caller,
        name: &str,
        changes: UserChanges,
    ) -> AuthResult<User> {
        let only_password =
            changes.disabled.is_none() && changes.system_admin.is_none() && changes.email.is_none();
        if !(is_system_manager(caller) || (only_password && is_self(caller, name))) {
            return Err(system_denied());
        }
        if let Some(p) = &changes.password {
            validate_password(p)?;
        }
        if let Some(e) = &changes.email {
            validate_email(e)?;
        }
        let user = self.user_named(name).await?;
        if let Some(e) = &changes.email
            && user.email.as_deref() != Some(e.as_str())
        {
            self.store().set_user_email(user.id, Some(e)).await?;
            tracing::info!(user = %user.name, by = %caller.subject(), "e-mail changed");
        }
        if let Some(p) = changes.password {
            let hash = hash_blocking(p).await?;
            self.store().set_password(user.id, &hash).await?;
            tracing::info!(user = %user.name, by = %caller.subject(), "password changed");
        }
        if let Some(admin) = changes.system_admin
            && admin != user.system_admin
        {
            self.store().set_system_admin(user.id, admin).await?;
            tracing::info!(user = %user.name, system_admin = admin, by = %caller.subject(), "system admin changed");
        }
        if let Some(disabled) = changes.disabled
            && disabled != user.disabled
        {
            self.store().set_user_disabled(user.id, disabled).await?;
            tracing::info!(user = %user.name, disabled, by = %caller.subject(), "user disabled changed");
        }
        self.user_named(name).await
    }

    /// Delete a user with their memberships, rules and tokens (system admins). Deleting the
    /// last enabled system admin is a conflict.
    pub async fn delete_user(&self, caller: &Caller, name: &str) -> AuthResult<()> {
        require_system_admin(caller)?;
        let user = self.user_named(name).await?;
        self.store().delete_user(user.id).await?;
        tracing::info!(user = %user.name, by = %caller.subject(), "user deleted");
        Ok(())
    }

    // ---- teams ----

    /// Create a team (system admins).
    pub async fn create_team(&self, caller: &Caller, name: &str) -> AuthResult<Team> {
        require_system_admin(caller)?;
        validate_short_name("team", name)?;
        let team = self.store().create_team(name, self.now()).await?;
        tracing::info!(team = %team.name, by = %caller.subject(), "team created");
        Ok(team)
    }

    /// Every team (system admins).
    pub async fn list_teams(&self, caller: &Caller) -> AuthResult<Vec<Team>> {
        require_system_admin(caller)?;
        Ok(self.store().list_teams().await?)
    }

    /// Delete a team with its memberships and rules (system admins).
    pub async fn delete_team(&self, caller: &Caller, name: &str) -> AuthResult<()> {
        require_system_admin(caller)?;
        let team = self.team_named(name).await?;
        self.store().delete_team(team.id).await?;
        tracing::info!(team = %team.name, by = %caller.subject(), "team deleted");
        Ok(())
    }

    /// The users of a team (system admins).
    pub async fn team_members(&self, caller: &Caller, team: &str) -> AuthResult<Vec<User>> {
        require_system_admin(caller)?;
        let team = self.team_named(team).await?;
        Ok(self.store().team_members(team.id).await?)
    }

    /// Add a user to a team; idempotent (system admins).
    pub async fn add_team_member(&self, caller: &Caller, team: &str, user: &str) -> AuthResult<()> {
        require_system_admin(caller)?;
        let team = self.team_named(team).await?;
        let user = self.user_named(user).await?;
        self.store().add_team_member(team.id, user.id).await?;
        tracing::info!(team = %team.name, user = %user.name, by = %caller.subject(), "team member added");
        Ok(())
    }

    /// Remove a user from a team; idempotent (system admins).
    pub async fn remove_team_member(
        &self,
        caller: &Caller,
        team: &str,
        user: &str,
    ) -> AuthResult<()> {
        require_system_admin(caller)?;
        let team = self.team_named(team).await?;
        let user = self.user_named(user).await?;
        self.store().remove_team_member(team.id, user.id).await?;
        tracing::info!(team = %team.name, user = %user.name, by = %caller.subject(), "team member removed");
        Ok(())
    }

    // ---- projects ----

    /// Whether `caller` may create projects (through the API, the CLI or a push).
    pub fn may_create_projects(&self, caller: &Caller) -> bool {
        is_system_manager(caller)
            || (is_manager(caller) && self.config().project_creation == ProjectCreation::Users)
    }

    /// Create a project (system admins, or any user when the configuration allows it). The
    /// creator becomes its admin.
    pub async fn create_project(
        &self,
        caller: &Caller,
        name: &str,
        visibility: Visibility,
    ) -> AuthResult<Project> {
        if !self.may_create_projects(caller) {
            return Err(system_denied());
        }
        validate_project_name(name)?;
        let project = self
            .store()
            .create_project(name, visibility, self.now())
            .await?;
        if let Some(id) = caller.user_id() {
            self.store()
                .set_member(project.id, Member::User(id), Role::Admin)
                .await?;
        }
        tracing::info!(project = %project.name, by = %caller.subject(), "project created");
        Ok(project)
    }

    /// The projects `caller` can see: all for system admins; public ones and those where the
    /// caller holds a role or a rule otherwise (a robot also sees its own project).
    pub async fn list_projects(&self, caller: &Caller) -> AuthResult<Vec<Project>> {
        if caller.is_anonymous() && caller.claims.is_none() {
            return Err(system_denied());
        }
        let all = self.store().list_projects().await?;
        if caller.is_system_admin() {
            return Ok(all);
        }
        let mut mine: Vec<String> = match &caller.principal {
            Principal::User { id, .. } => self
                .store()
                .projects_of_user(*id)
                .await?
                .into_iter()
                .map(|p| p.name)
                .collect(),
            _ => Vec::new(),
        };
        if let Principal::Robot {
            project: Some(p), ..
        } = &caller.principal
        {
            mine.push(p.clone());
        }
        Ok(all
            .into_iter()
            .filter(|p| p.visibility == Visibility::Public || mine.contains(&p.name))
            .collect())
    }

    /// One project, if `caller` can see it.
    pub async fn get_project(&self, caller: &Caller, name: &str) -> AuthResult<Project> {
        if !self.may_see_project(caller, name).await? {
            return Err(project_denied(name, ProjectPermission::ManagePolicies));
        }
        self.store()
            .project_by_name(name)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("project {}", truncate(name))))
    }

    /// Change a project's visibility (project admins).
    pub async fn set_project_visibility(
        &self,
        caller: &Caller,
        name: &str,
        visibility: Visibility,
    ) -> AuthResult<Project> {
        let mut project = self
            .project_for(caller, name, ProjectPermission::ManagePolicies)
            .await?;
        self.store()
            .set_project_visibility(project.id, visibility)
            .await?;
        project.visibility = visibility;
        tracing::info!(project = %name, ?visibility, by = %caller.subject(), "project visibility changed");
        Ok(project)
    }

    /// Check that `caller` may manage the policies of `project` (project admins) and load it.
    pub async fn manage_project_policies(
        &self,
        caller: &Caller,
        project: &str,
    ) -> AuthResult<Project> {
        self.project_for(caller, project, ProjectPermission::ManagePolicies)
            .await
    }

    /// Delete a project with its members, rules and robots, not its repositories (system
    /// admins).
    pub async fn delete_project(&self, caller: &Caller, name: &str) -> AuthResult<()> {
        require_system_admin(caller)?;
        let project = self
            .store()
            .project_by_name(name)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("project {}", truncate(name))))?;
        self.store().delete_project(project.id).await?;
        tracing::info!(project = %name, by = %caller.subject(), "project deleted");
        Ok(())
    }

    // ---- members ----

    /// The members of a project (anyone with a role in it, and system admins).
    pub async fn list_members(
        &self,
        caller: &Caller,
        project: &str,
    ) -> AuthResult<Vec<Membership>> {
        let grants = self.grants(caller, project).await?;
        let may = caller.is_system_admin()
            || (matches!(caller.principal, Principal::User { .. })
                && caller.claims.is_none()
                && grants.project_role().is_some());
        if !may {
            return Err(project_denied(project, ProjectPermission::ManageMembers));
        }
        let p = self
            .store()
            .project_by_name(project)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("project {}", truncate(project))))?;
        Ok(self.store().list_members(p.id).await?)
    }

    /// Give a user or team a role in a project, or change it (project admins).
    pub async fn set_member(
        &self,
        caller: &Caller,
        project: &str,
        member: &MemberRef,
        role: Role,
    ) -> AuthResult<()> {
        let p = self
            .project_for(caller, project, ProjectPermission::ManageMembers)
            .await?;
        let m = self.resolve_member(member).await?;
        self.store().set_member(p.id, m, role).await?;
        tracing::info!(project, member = %member.label(), %role, by = %caller.subject(), "member set");
        Ok(())
    }

    /// Take a user's or team's role in a project away (project admins).
    pub async fn remove_member(
        &self,
        caller: &Caller,
        project: &str,
        member: &MemberRef,
    ) -> AuthResult<()> {
        let p = self
            .project_for(caller, project, ProjectPermission::ManageMembers)
            .await?;
        let m = self.resolve_member(member).await?;
        if !self.store().remove_member(p.id, m).await? {
            return Err(AuthError::NotFound(format!(
                "{} in project {project}",
                member.label()
            )));
        }
        tracing::info!(project, member = %member.label(), by = %caller.subject(), "member removed");
        Ok(())
    }

    // ---- per-repository rules ----

    async fn rule_infos(&self, rules: Vec<StoredRepoRule>) -> AuthResult<Vec<RuleInfo>> {
        let mut teams: Option<HashMap<i64, String>> = None;
        let mut users: HashMap<i64, String> = HashMap::new();
        let mut out = Vec::with_capacity(rules.len());
        for rule in rules {
            let member_name = match rule.member {
                Member::User(id) => {
                    if let Some(n) = users.get(&id) {
                        n.clone()
                    } else {
                        let n = self
                            .store()
                            .user_by_id(id)
                            .await?
                            .map_or_else(|| format!("#{id}"), |u| u.name);
                        users.insert(id, n.clone());
                        n
                    }
                }
                Member::Team(id) => {
                    if teams.is_none() {
                        let all = self.store().list_teams().await?;
                        teams = Some(all.into_iter().map(|t| (t.id, t.name)).collect());
                    }
                    teams
                        .as_ref()
                        .and_then(|t| t.get(&id).cloned())
                        .unwrap_or_else(|| format!("#{id}"))
                }
            };
            out.push(RuleInfo { rule, member_name });
        }
        Ok(out)
    }

    /// The per-repository rules of a project (project admins).
    pub async fn list_repo_rules(
        &self,
        caller: &Caller,
        project: &str,
    ) -> AuthResult<Vec<RuleInfo>> {
        let p = self
            .project_for(caller, project, ProjectPermission::ManagePolicies)
            .await?;
        let rules = self.store().list_repo_rules(p.id).await?;
        self.rule_infos(rules).await
    }

    /// Add a per-repository rule: `member` gets `role` on repositories matching `pattern`,
    /// which must stay inside the project (project admins).
    pub async fn add_repo_rule(
        &self,
        caller: &Caller,
        project: &str,
        pattern: &str,
        member: &MemberRef,
        role: Role,
    ) -> AuthResult<RuleInfo> {
        let p = self
            .project_for(caller, project, ProjectPermission::ManagePolicies)
            .await?;
        let pattern = RepoPattern::new(pattern).map_err(|e| invalid(e.to_string()))?;
        check_inside(&pattern, project)?;
        let m = self.resolve_member(member).await?;
        let rule = self.store().add_repo_rule(p.id, &pattern, m, role).await?;
        tracing::info!(project, pattern = %pattern, member = %member.label(), %role, by = %caller.subject(), "repository rule added");
        let name = match member {
            MemberRef::User(n) | MemberRef::Team(n) => n.clone(),
        };
        Ok(RuleInfo {
            rule,
            member_name: name,
        })
    }

    /// Delete a per-repository rule of a project (project admins).
    pub async fn delete_repo_rule(
        &self,
        caller: &Caller,
        project: &str,
        id: i64,
    ) -> AuthResult<()> {
        let p = self
            .project_for(caller, project, ProjectPermission::ManagePolicies)
            .await?;
        if !self.store().delete_repo_rule(p.id, id).await? {
            return Err(AuthError::NotFound(format!(
                "rule {id} in project {project}"
            )));
        }
        tracing::info!(project, rule = id, by = %caller.subject(), "repository rule deleted");
        Ok(())
    }

    // ---- robots ----

    /// Check the right to manage the robots of `project` (`None`: system robots) and, for a
    /// project, that it exists.
    async fn robots_allowed(&self, caller: &Caller, project: Option<&str>) -> AuthResult<()> {
        match project {
            Some(p) => {
                self.project_for(caller, p, ProjectPermission::ManageRobots)
                    .await?;
            }
            None => require_system_admin(caller)?,
        }
        Ok(())
    }

    /// Create a robot account in `project` (project admins) or a system robot (`None`, system
    /// admins). Its name is `robot$<project>+<short>` or `robot$<short>`; the secret is
    /// returned once.
    pub async fn create_robot(
        &self,
        caller: &Caller,
        project: Option<&str>,
        req: NewRobotRequest,
    ) -> AuthResult<CreatedRobot> {
        self.robots_allowed(caller, project).await?;
        validate_short_name("robot", &req.name)?;
        if let Some(d) = &req.description {
            validate_label("description", d, MAX_DESCRIPTION_CHARS)?;
        }
        if req.permissions.is_empty() {
            return Err(invalid(
                "a robot needs at least one permission (pattern and actions)",
            ));
        }
        let permissions = parse_permissions(&req.permissions, project)?;
        let now = self.now();
        let expires_at = expiry(now, req.expires_in_secs)?;
        let secret = generate_secret(ROBOT_SECRET_BYTES)?;
        let name = robot_name(project, &req.name);
        let robot = self
            .store()
            .create_robot(NewRobot {
                name,
                project: project.map(str::to_owned),
                description: req.description,
                permissions,
                expires_at,
                secret_hash: SecretHash::of(secret.expose()),
                created_at: now,
            })
            .await?;
        tracing::info!(robot = %robot.name, by = %caller.subject(), "robot created");
        Ok(CreatedRobot { robot, secret })
    }

    /// The robots of `project` (project admins), or the system robots (`None`, system
    /// admins).
    pub async fn list_robots(
        &self,
        caller: &Caller,
        project: Option<&str>,
    ) -> AuthResult<Vec<Robot>> {
        self.robots_allowed(caller, project).await?;
        let mut robots = self.store().list_robots(project).await?;
        robots.retain(|r| r.project.as_deref() == project);
        Ok(robots)
    }

    /// Enable or disable a robot.
    pub async fn set_robot_disabled(
        &self,
        caller: &Caller,
        project: Option<&str>,
        short: &str,
        disabled: bool,
    ) -> AuthResult<Robot> {
        self.robots_allowed(caller, project).await?;
        let mut robot = self.robot_in(project, short).await?;
        self.store().set_robot_disabled(robot.id, disabled).await?;
        robot.disabled = disabled;
        tracing::info!(robot = %robot.name, disabled, by = %caller.subject(), "robot disabled changed");
        Ok(robot)
    }

    /// Replace a robot's secret; the new one is returned once.
    pub async fn regenerate_robot_secret(
        &self,
        caller: &Caller,
        project: Option<&str>,
        short: &str,
    ) -> AuthResult<CreatedRobot> {
        self.robots_allowed(caller, project).await?;
        let robot = self.robot_in(project, short).await?;
        let secret = generate_secret(ROBOT_SECRET_BYTES)?;
        self.store()
            .set_robot_secret(robot.id, &SecretHash::of(secret.expose()))
            .await?;
        tracing::info!(robot = %robot.name, by = %caller.subject(), "robot secret regenerated");
        Ok(CreatedRobot { robot, secret })
    }

    /// Delete a robot.
    pub async fn delete_robot(
        &self,
        caller: &Caller,
        project: Option<&str>,
        short: &str,
    ) -> AuthResult<()> {
        self.robots_allowed(caller, project).await?;
        let robot = self.robot_in(project, short).await?;
        self.store().delete_robot(robot.id).await?;
        tracing::info!(robot = %robot.name, by = %caller.subject(), "robot deleted");
        Ok(())
    }

    // ---- personal access tokens ----

    /// A user's tokens, revoked ones included (the user themself, or system admins).
    pub async fn list_tokens(&self, caller: &Caller, user: &str) -> AuthResult<Vec<PersonalToken>> {
        require_self_or_admin(caller, user)?;
        let u = self.user_named(user).await?;
        Ok(self.store().list_tokens(u.id).await?)
    }

    /// Create a personal access token for `user` (the user themself, or system admins). Names
    /// are unique among the user's live tokens. The token is returned once.
    pub async fn create_token(
        &self,
        caller: &Caller,
        user: &str,
        req: NewTokenRequest,
    ) -> AuthResult<CreatedToken> {
        require_self_or_admin(caller, user)?;
        validate_label("token name", &req.name, MAX_TOKEN_NAME_CHARS)?;
        let permissions = parse_permissions(&req.permissions, None)?;
        let now = self.now();
        let expires_at = expiry(now, req.expires_in_secs)?;
        let u = self.user_named(user).await?;
        let live = self.store().list_tokens(u.id).await?;
        if live.iter().any(|t| {
            t.name == req.name && t.revoked_at.is_none() && t.expires_at.is_none_or(|e| now < e)
        }) {
            return Err(AuthError::Conflict(format!(
                "user {user} already has a token named {:?}",
                req.name
            )));
        }
        let generated = ApiToken::generate()?;
        let token = self
            .store()
            .create_token(NewPersonalToken {
                id: generated.id,
                user_id: u.id,
                name: req.name,
                permissions,
                expires_at,
                secret_hash: generated.hash,
                created_at: now,
            })
            .await?;
        tracing::info!(user, token = %token.id, by = %caller.subject(), "personal access token created");
        Ok(CreatedToken {
            token,
            secret: generated.token,
        })
    }

    /// Revoke one of `user`'s tokens (the user themself, or system admins). Revoking a revoked
    /// token again succeeds.
    pub async fn revoke_token(&self, caller: &Caller, user: &str, id: &str) -> AuthResult<()> {
        require_self_or_admin(caller, user)?;
        let u = self.user_named(user).await?;
        match self.store().token_by_id(id).await? {
            Some((t, _)) if t.user_id == u.id => {}
            _ => {
                return Err(AuthError::NotFound(format!(
                    "token {} of user {user}",
                    truncate(id)
                )));
            }
        }
        self.store().revoke_token(id, self.now()).await?;
        tracing::info!(user, token = %id, by = %caller.subject(), "personal access token revoked");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        for ok in ["a", "0", "ci", "a.b_c-d", &"a".repeat(64)] {
            assert!(validate_short_name("user", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "_a",
            "A",
            "a b",
            "a/b",
            "a$b",
            "a:b",
            &"a".repeat(65),
        ] {
            assert!(validate_short_name("user", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn project_names() {
        for ok in ["team-a", "a", "a.b", "a__b", "a--b"] {
            assert!(validate_project_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "a/b", "-a", "a-", "a..b", "a b", "a___b"] {
            assert!(validate_project_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(validate_password(&Secret::new("12345678")).is_ok());
        assert!(validate_password(&Secret::new("1234567")).is_err());
        assert!(validate_password(&Secret::new("é".repeat(8))).is_ok());
        assert!(validate_password(&Secret::new("a".repeat(4096))).is_ok());
        assert!(validate_password(&Secret::new("a".repeat(4097))).is_err());
        // 4096 characters but more than 4096 bytes.
        assert!(validate_password(&Secret::new("é".repeat(4096))).is_err());
        let token = ApiToken::generate().unwrap();
        assert!(validate_password(&token.token).is_err());
    }

    #[test]
    fn permissions() {
        let spec = |p: &str, a: &[&str]| PermissionSpec {
            pattern: p.into(),
            actions: a.iter().map(|s| (*s).to_owned()).collect(),
        };
        let got = parse_permissions(
            &[spec("team-a/*", &["push", "pull", "pull"])],
            Some("team-a"),
        )
        .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].actions, vec![Action::Pull, Action::Push]);
        assert!(parse_permissions(&[spec("team-a", &["*"])], Some("team-a")).is_ok());
        assert!(parse_permissions(&[spec("team-ab/*", &["pull"])], Some("team-a")).is_err());
        assert!(parse_permissions(&[spec("**", &["pull"])], Some("team-a")).is_err());
        assert!(parse_permissions(&[spec("*/x", &["pull"])], Some("team-a")).is_err());
        assert!(parse_permissions(&[spec("**", &["pull"])], None).is_ok());
        assert!(parse_permissions(&[spec("team-a/*", &[])], None).is_err());
        assert!(parse_permissions(&[spec("team-a/*", &["admin"])], None).is_err());
        assert!(parse_permissions(&[spec("Team/*", &["pull"])], None).is_err());
    }

    #[test]
    fn expiries() {
        assert_eq!(expiry(100, None).ok(), Some(None));
        assert_eq!(expiry(100, Some(5)).ok(), Some(Some(105)));
        assert_eq!(expiry(100, Some(u64::MAX)).ok(), Some(Some(i64::MAX)));
        assert!(expiry(100, Some(0)).is_err());
    }
}
