//! The access-control port: what the metadata store keeps for users, teams, projects, members,
//! per-repository rules, robot accounts, personal access tokens and token signing keys.
//!
//! `bulwark-meta` implements [`AuthStore`] for SQLite and PostgreSQL. Secrets are stored only as
//! hashes (argon2id PHC strings for passwords, SHA-256 [`SecretHash`] for robot secrets and API
//! tokens); the store never sees a clear-text credential. Times are seconds since the epoch.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::password::SecretHash;
use crate::policy::{Grants, RepoPattern, RobotPermission, Role, Visibility};

/// Errors of the access-control store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique name is already taken, or a change would break a rule (e.g. removing the last
    /// system admin).
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("metadata store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// A local user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub system_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
}

/// A user and the argon2id PHC string of their password (`None`: password login disabled).
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub system_admin: bool,
    pub created_at: i64,
}

/// A group of users that can hold project roles and per-repository rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub visibility: Visibility,
    pub created_at: i64,
}

/// Who holds a project role or a per-repository rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Member {
    User(i64),
    Team(i64),
}

/// One project membership, with the member's display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub member: Member,
    pub name: String,
    pub role: Role,
}

/// A per-repository rule as stored: `member` holds `role` on repositories matching `pattern`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRepoRule {
    pub id: i64,
    pub project: String,
    pub pattern: RepoPattern,
    pub member: Member,
    pub role: Role,
}

/// A robot account. `name` is the full login name: `robot$<project>+<short>` for a project
/// robot, `robot$<short>` for a system robot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Robot {
    pub id: i64,
    pub name: String,
    pub project: Option<String>,
    pub description: Option<String>,
    pub permissions: Vec<RobotPermission>,
    pub expires_at: Option<i64>,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewRobot {
    pub name: String,
    pub project: Option<String>,
    pub description: Option<String>,
    pub permissions: Vec<RobotPermission>,
    pub expires_at: Option<i64>,
    pub secret_hash: SecretHash,
    pub created_at: i64,
}

/// A user's personal access token. It can do at most what its owner can, further limited to
/// `permissions` when that is not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalToken {
    /// The public id embedded in the token (`bwk_<id>_…`).
    pub id: String,
    pub user_id: i64,
    pub name: String,
    pub permissions: Vec<RobotPermission>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewPersonalToken {
    pub id: String,
    pub user_id: i64,
    pub name: String,
    pub permissions: Vec<RobotPermission>,
    pub expires_at: Option<i64>,
    pub secret_hash: SecretHash,
    pub created_at: i64,
}

/// A token signing key as persisted: PKCS#8 PEM of the private key. The newest key that is not
/// retired signs; retired keys verify until `valid_until`.
#[derive(Debug, Clone)]
pub struct StoredSigningKey {
    pub kid: String,
    pub private_pem: String,
    pub created_at: i64,
    pub valid_until: Option<i64>,
}

/// The access-control store. Every name lookup is exact and case-sensitive.
#[async_trait]
pub trait AuthStore: Send + Sync {
    // Users.
    async fn count_users(&self) -> StoreResult<u64>;
    /// `Conflict` when the name is taken.
    async fn create_user(&self, user: NewUser) -> StoreResult<User>;
    async fn user_by_name(&self, name: &str) -> StoreResult<Option<UserCredentials>>;
    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn set_password(&self, user_id: i64, password_hash: &str) -> StoreResult<()>;
    /// Replaces the user's password hash only while it is still `old` (a re-hash after login
    /// must not undo a password change made meanwhile); whether it did.
    async fn replace_password_hash(&self, user_id: i64, old: &str, new: &str) -> StoreResult<bool>;
    async fn set_user_email(&self, user_id: i64, email: Option<&str>) -> StoreResult<()>;
    async fn set_user_disabled(&self, user_id: i64, disabled: bool) -> StoreResult<()>;
    async fn set_system_admin(&self, user_id: i64, system_admin: bool) -> StoreResult<()>;
    /// Removes the user with their memberships, rules and tokens.
    async fn delete_user(&self, user_id: i64) -> StoreResult<()>;

    // Teams.
    async fn create_team(&self, name: &str, now: i64) -> StoreResult<Team>;
    async fn team_by_name(&self, name: &str) -> StoreResult<Option<Team>>;
    async fn list_teams(&self) -> StoreResult<Vec<Team>>;
    /// Removes the team with its memberships and rules.
    async fn delete_team(&self, team_id: i64) -> StoreResult<()>;
    /// Idempotent.
    async fn add_team_member(&self, team_id: i64, user_id: i64) -> StoreResult<()>;
    /// Idempotent.
    async fn remove_team_member(&self, team_id: i64, user_id: i64) -> StoreResult<()>;
    async fn team_members(&self, team_id: i64) -> StoreResult<Vec<User>>;

    // Projects.
    async fn create_project(
        &self,
        name: &str,
        visibility: Visibility,
        now: i64,
    ) -> StoreResult<Project>;
    async fn project_by_name(&self, name: &str) -> StoreResult<Option<Project>>;
    async fn list_projects(&self) -> StoreResult<Vec<Project>>;
    async fn set_project_visibility(
        &self,
        project_id: i64,
        visibility: Visibility,
    ) -> StoreResult<()>;
    /// Removes the project with its memberships, rules and robots (not its repositories).
    async fn delete_project(&self, project_id: i64) -> StoreResult<()>;

    // Members and rules.
    /// Insert or change the member's role.
    async fn set_member(&self, project_id: i64, member: Member, role: Role) -> StoreResult<()>;
    /// `false` when the member had no role.
    async fn remove_member(&self, project_id: i64, member: Member) -> StoreResult<bool>;
    async fn list_members(&self, project_id: i64) -> StoreResult<Vec<Membership>>;
    async fn add_repo_rule(
        &self,
        project_id: i64,
        pattern: &RepoPattern,
        member: Member,
        role: Role,
    ) -> StoreResult<StoredRepoRule>;
    async fn list_repo_rules(&self, project_id: i64) -> StoreResult<Vec<StoredRepoRule>>;
    /// `false` when no such rule exists in the project.
    async fn delete_repo_rule(&self, project_id: i64, rule_id: i64) -> StoreResult<bool>;
    /// Everything the policy needs to decide for `user_id` (`None`: anonymous or robot, which
    /// only need the visibility) in `project`: visibility, the user's direct role, the roles of
    /// the user's teams, and the repository rules bound to the user or their teams. A project
    /// that does not exist yields private grants with nothing in them.
    async fn grants(&self, user_id: Option<i64>, project: &str) -> StoreResult<Grants>;
    /// Projects in which the user has a direct or team role or a repository rule.
    async fn projects_of_user(&self, user_id: i64) -> StoreResult<Vec<Project>>;

    // Robots.
    async fn create_robot(&self, robot: NewRobot) -> StoreResult<Robot>;
    /// The robot and its secret hash.
    async fn robot_by_name(&self, name: &str) -> StoreResult<Option<(Robot, SecretHash)>>;
    /// `project: Some(p)`: the robots of `p`; `None`: every robot.
    async fn list_robots(&self, project: Option<&str>) -> StoreResult<Vec<Robot>>;
    async fn set_robot_disabled(&self, robot_id: i64, disabled: bool) -> StoreResult<()>;
    async fn set_robot_secret(&self, robot_id: i64, secret_hash: &SecretHash) -> StoreResult<()>;
    async fn delete_robot(&self, robot_id: i64) -> StoreResult<()>;

    // Personal access tokens.
    async fn create_token(&self, token: NewPersonalToken) -> StoreResult<PersonalToken>;
    async fn token_by_id(&self, id: &str) -> StoreResult<Option<(PersonalToken, SecretHash)>>;
    async fn list_tokens(&self, user_id: i64) -> StoreResult<Vec<PersonalToken>>;
    /// Sets `revoked_at` once; `false` when the token does not exist or was already revoked.
    async fn revoke_token(&self, id: &str, now: i64) -> StoreResult<bool>;

    // Token signing keys (shared by replicas).
    async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>>;
    /// Store a new key; it becomes the active one (the newest unretired).
    async fn add_signing_key(&self, key: StoredSigningKey) -> StoreResult<()>;
    /// Mark a key retired: it verifies until `valid_until` and never signs again.
    async fn retire_signing_key(&self, kid: &str, valid_until: i64) -> StoreResult<()>;
    /// Drop keys whose `valid_until` is before `now`.
    async fn prune_signing_keys(&self, now: i64) -> StoreResult<u64>;
}
