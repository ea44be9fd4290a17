//! The JSON shapes of `/api/v1`, with their OpenAPI schemas. Request types reject unknown
//! fields; none of them derives `Debug`, so a password cannot end up in a log by accident.

use bulwark_auth::manage::PermissionSpec;
use bulwark_auth::policy::{Role, Visibility};
use bulwark_auth::scope::Action;
use bulwark_auth::store::{Member, Membership, PersonalToken, Project, Robot, Team, User};
use bulwark_auth::{RobotPermission, manage::RuleInfo};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An OCI error body: `{"errors":[{"code","message"}]}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorsDto {
    pub errors: Vec<ErrorDto>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDto {
    /// `UNAUTHORIZED`, `DENIED`, `NAME_UNKNOWN`, `UNSUPPORTED`, ...
    pub code: String,
    pub message: String,
}

/// The authenticated caller.
#[derive(Serialize, ToSchema)]
pub struct MeDto {
    /// The user name, or the robot's full name (`robot$…`).
    pub name: String,
    pub kind: PrincipalKind,
    /// Whether the account is a system admin (always false for robots).
    pub system_admin: bool,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    User,
    Robot,
}

/// A user account.
#[derive(Serialize, ToSchema)]
pub struct UserDto {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub system_admin: bool,
    pub disabled: bool,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
}

impl From<User> for UserDto {
    fn from(u: User) -> Self {
        UserDto {
            id: u.id,
            name: u.name,
            email: u.email,
            system_admin: u.system_admin,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

/// A new user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserDto {
    /// `[a-z0-9][a-z0-9._-]{0,63}`
    #[schema(example = "alice")]
    pub name: String,
    /// 8 to 4096 characters.
    pub password: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub system_admin: bool,
}

/// Changes to a user; absent fields stay as they are. A user who is not a system admin may
/// change only their own password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserDto {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub system_admin: Option<bool>,
    #[serde(default)]
    pub email: Option<String>,
}

/// A team.
#[derive(Serialize, ToSchema)]
pub struct TeamDto {
    pub id: i64,
    pub name: String,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
}

impl From<Team> for TeamDto {
    fn from(t: Team) -> Self {
        TeamDto {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
        }
    }
}

/// A new team.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeamDto {
    /// `[a-z0-9][a-z0-9._-]{0,63}`
    #[schema(example = "devs")]
    pub name: String,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum VisibilityDto {
    Public,
    Private,
}

impl From<VisibilityDto> for Visibility {
    fn from(v: VisibilityDto) -> Self {
        match v {
            VisibilityDto::Public => Visibility::Public,
            VisibilityDto::Private => Visibility::Private,
        }
    }
}

impl From<Visibility> for VisibilityDto {
    fn from(v: Visibility) -> Self {
        match v {
            Visibility::Public => VisibilityDto::Public,
            Visibility::Private => VisibilityDto::Private,
        }
    }
}

/// A project.
#[derive(Serialize, ToSchema)]
pub struct ProjectDto {
    pub id: i64,
    pub name: String,
    pub visibility: VisibilityDto,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
}

impl From<Project> for ProjectDto {
    fn from(p: Project) -> Self {
        ProjectDto {
            id: p.id,
            name: p.name,
            visibility: p.visibility.into(),
            created_at: p.created_at,
        }
    }
}

/// A new project.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectDto {
    /// A valid first component of a repository name.
    #[schema(example = "team-a")]
    pub name: String,
    pub visibility: VisibilityDto,
}

/// Changes to a project.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProjectDto {
    pub visibility: VisibilityDto,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoleDto {
    Reader,
    Developer,
    Maintainer,
    Admin,
}

impl From<RoleDto> for Role {
    fn from(r: RoleDto) -> Self {
        match r {
            RoleDto::Reader => Role::Reader,
            RoleDto::Developer => Role::Developer,
            RoleDto::Maintainer => Role::Maintainer,
            RoleDto::Admin => Role::Admin,
        }
    }
}

impl From<Role> for RoleDto {
    fn from(r: Role) -> Self {
        match r {
            Role::Reader => RoleDto::Reader,
            Role::Developer => RoleDto::Developer,
            Role::Maintainer => RoleDto::Maintainer,
            Role::Admin => RoleDto::Admin,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MemberKind {
    User,
    Team,
}

impl MemberKind {
    pub fn parse(s: &str) -> Option<MemberKind> {
        match s {
            "user" => Some(MemberKind::User),
            "team" => Some(MemberKind::Team),
            _ => None,
        }
    }

    fn of(m: Member) -> MemberKind {
        match m {
            Member::User(_) => MemberKind::User,
            Member::Team(_) => MemberKind::Team,
        }
    }
}

/// A project member: a user or team and its role.
#[derive(Serialize, ToSchema)]
pub struct MemberDto {
    pub kind: MemberKind,
    pub name: String,
    pub role: RoleDto,
}

impl From<Membership> for MemberDto {
    fn from(m: Membership) -> Self {
        MemberDto {
            kind: MemberKind::of(m.member),
            name: m.name,
            role: m.role.into(),
        }
    }
}

/// Give a user or team a role in the project (or change it).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMemberDto {
    pub kind: MemberKind,
    pub name: String,
    pub role: RoleDto,
}

/// A per-repository rule: the user or team gets `role` on repositories matching `pattern`.
#[derive(Serialize, ToSchema)]
pub struct RuleDto {
    pub id: i64,
    #[schema(example = "team-a/app/*")]
    pub pattern: String,
    pub kind: MemberKind,
    pub name: String,
    pub role: RoleDto,
}

impl From<RuleInfo> for RuleDto {
    fn from(r: RuleInfo) -> Self {
        RuleDto {
            id: r.rule.id,
            pattern: r.rule.pattern.as_str().to_owned(),
            kind: MemberKind::of(r.rule.member),
            name: r.member_name,
            role: r.rule.role.into(),
        }
    }
}

/// A new per-repository rule; the pattern must start with `<project>/`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRuleDto {
    #[schema(example = "team-a/app/*")]
    pub pattern: String,
    pub kind: MemberKind,
    pub name: String,
    pub role: RoleDto,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
pub enum ActionDto {
    #[serde(rename = "pull")]
    Pull,
    #[serde(rename = "push")]
    Push,
    #[serde(rename = "delete")]
    Delete,
    #[serde(rename = "*")]
    All,
}

impl ActionDto {
    fn as_str(self) -> &'static str {
        match self {
            ActionDto::Pull => "pull",
            ActionDto::Push => "push",
            ActionDto::Delete => "delete",
            ActionDto::All => "*",
        }
    }
}

impl From<Action> for ActionDto {
    fn from(a: Action) -> Self {
        match a {
            Action::Pull => ActionDto::Pull,
            Action::Push => ActionDto::Push,
            Action::Delete => ActionDto::Delete,
            Action::All => ActionDto::All,
        }
    }
}

/// Actions on the repositories matching a pattern.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionDto {
    /// A glob over full repository names (`*`, `?`, `**`).
    #[schema(example = "team-a/*")]
    pub pattern: String,
    #[schema(example = json!(["pull", "push"]))]
    pub actions: Vec<ActionDto>,
}

impl PermissionDto {
    pub fn to_spec(&self) -> PermissionSpec {
        PermissionSpec {
            pattern: self.pattern.clone(),
            actions: self.actions.iter().map(|a| a.as_str().to_owned()).collect(),
        }
    }
}

impl From<RobotPermission> for PermissionDto {
    fn from(p: RobotPermission) -> Self {
        PermissionDto {
            pattern: p.pattern.as_str().to_owned(),
            actions: p.actions.into_iter().map(ActionDto::from).collect(),
        }
    }
}

/// A robot account.
#[derive(Serialize, ToSchema)]
pub struct RobotDto {
    pub id: i64,
    /// The login name: `robot$<project>+<short>` or, for a system robot, `robot$<short>`.
    #[schema(example = "robot$team-a+ci")]
    pub name: String,
    pub project: Option<String>,
    pub description: Option<String>,
    pub permissions: Vec<PermissionDto>,
    /// Seconds since the Unix epoch; absent: never expires.
    pub expires_at: Option<i64>,
    pub disabled: bool,
    pub created_at: i64,
    /// The secret, only in the answer to the creation; it is not stored and never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<Robot> for RobotDto {
    fn from(r: Robot) -> Self {
        RobotDto {
            id: r.id,
            name: r.name,
            project: r.project,
            description: r.description,
            permissions: r.permissions.into_iter().map(PermissionDto::from).collect(),
            expires_at: r.expires_at,
            disabled: r.disabled,
            created_at: r.created_at,
            secret: None,
        }
    }
}

/// A new robot account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRobotDto {
    /// The short name, `[a-z0-9][a-z0-9._-]{0,63}`.
    #[schema(example = "ci")]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// At least one entry; a project robot's patterns must start with `<project>/`.
    pub permissions: Vec<PermissionDto>,
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
}

/// Changes to a robot.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRobotDto {
    pub disabled: bool,
}

/// A personal access token (never the token itself, except in the answer to its creation).
#[derive(Serialize, ToSchema)]
pub struct TokenDto {
    /// The public id, also part of the token (`bwk_<id>_…`).
    pub id: String,
    pub name: String,
    /// Empty: the token may do everything its owner may.
    pub permissions: Vec<PermissionDto>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
    /// The token, only in the answer to the creation; it is not stored and never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl From<PersonalToken> for TokenDto {
    fn from(t: PersonalToken) -> Self {
        TokenDto {
            id: t.id,
            name: t.name,
            permissions: t.permissions.into_iter().map(PermissionDto::from).collect(),
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            created_at: t.created_at,
            token: None,
        }
    }
}

/// A new personal access token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenDto {
    #[schema(example = "laptop")]
    pub name: String,
    /// Restrict the token to these permissions (within its owner's rights); absent or empty:
    /// no restriction.
    #[serde(default)]
    pub permissions: Vec<PermissionDto>,
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
}

/// A repository.
#[derive(Serialize, ToSchema)]
pub struct RepositoryDto {
    #[schema(example = "team-a/app")]
    pub name: String,
}

/// A tag and the digest of the manifest it points to.
#[derive(Serialize, ToSchema)]
pub struct TagDto {
    #[schema(example = "latest")]
    pub name: String,
    pub digest: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RepositoriesQuery {
    /// Only repositories of this project.
    pub project: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RepositoryQuery {
    /// The full repository name, e.g. `team-a/app`.
    pub repository: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TagQuery {
    /// The full repository name.
    pub repository: String,
    pub tag: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ManifestQuery {
    /// The full repository name.
    pub repository: String,
    /// `sha256:<hex>`
    pub digest: String,
}
