//! The permission model: who may do what to which repository.
//!
//! # Roles
//!
//! | role         | repository actions        | project permissions                              |
//! |--------------|---------------------------|--------------------------------------------------|
//! | `Reader`     | pull                      | —                                                |
//! | `Developer`  | pull, push                | —                                                |
//! | `Maintainer` | pull, push, delete (`*`)  | manage tags                                      |
//! | `Admin`      | pull, push, delete (`*`)  | manage tags, members, robots, policies           |
//!
//! Roles are ordered by privilege (`Reader < Developer < Maintainer < Admin`); each includes
//! everything below it. `*` is granted exactly when pull, push and delete all are.
//!
//! # Decision rules ([`allowed`])
//!
//! The metadata store loads a [`Grants`] for the principal and the repository's project (the
//! first path component, [`RepoName::project`]). If `grants.project` is not that project, the
//! grants are ignored (fail closed): only a system admin gets anything.
//!
//! 1. **System admins** (`Principal::User { system_admin: true, .. }`) get every action on every
//!    repository, whatever the grants say.
//! 2. **Anonymous** gets `pull` on repositories of public projects, nothing else.
//! 3. **Robots** get only their explicit `(pattern, actions)` list: the union of the actions of
//!    every pattern that matches the repository. A robot bound to a project gets nothing outside
//!    that project, whatever its patterns say; a robot with `project: None` is a system robot
//!    whose patterns may match any project. An expired robot (`now >= expires_at`) gets nothing.
//!    Robots do not get the implicit pull on public projects and never get project permissions.
//! 4. **Users** get the actions of the higher of
//!    - their project role: the maximum of their direct role and their teams' roles, and
//!    - the role of the most specific per-repository rule matching the repository (see below),
//!
//!    plus `pull` on public projects. A per-repository rule *grants* a role on the
//!    repositories it matches in addition to the project role: it can never take away what the
//!    project role gives. Among rules, the most specific one decides, so a narrow rule can give
//!    *less* than a broad rule (`team-a/**` → Maintainer with `team-a/prod/*` → Reader leaves a
//!    Reader-only user on `team-a/prod/api`).
//!
//! # Patterns and specificity
//!
//! [`RepoPattern`]s are globs over the **full** repository name, project included
//! (`team-a/app/*`), with `/` as a separator: `?` matches one character other than `/`, `*` any
//! run of characters other than `/`, and `**` as a whole path component any number of
//! components (`team-a/**` matches `team-a/x` and `team-a/x/y`, not `team-a`). Only repository
//! name characters (`a-z 0-9 . _ - /`) and the wildcards are allowed; classes (`[..]`),
//! alternations (`{..}`) and escapes are rejected.
//!
//! When several per-repository rules match, the most specific wins, compared in this order:
//! 1. the longer literal prefix (characters before the first wildcard),
//! 2. an exact pattern (no wildcard) over a wildcard pattern,
//! 3. more literal (non-wildcard) characters in total,
//! 4. on a complete tie, the higher role (both rules are grants and apply equally, so the
//!    larger one is not lowered by an equally specific smaller one).
//!
//! # Capabilities
//!
//! [`authorize`] returns a [`Capability`] (repository + the actions checked) or [`Denied`].
//! `Capability` has no public constructor, so code that takes `&Capability` can only run after a
//! permission check. A verified access token can also mint one ([`crate::token::Claims`]).
//! [`authorize_project`] does the same for project-management permissions.

use std::fmt;

use bulwark_oci::RepoName;
use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::scope::{Action, ActionSet, canonical};

/// Longest pattern accepted.
pub const MAX_PATTERN_LEN: usize = 512;

/// A project role, ordered by privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Developer,
    Maintainer,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Reader, Role::Developer, Role::Maintainer, Role::Admin];

    /// Repository actions this role grants (`*` is implied when all three are present).
    pub fn actions(self) -> &'static [Action] {
        match self {
            Role::Reader => &[Action::Pull],
            Role::Developer => &[Action::Pull, Action::Push],
            Role::Maintainer | Role::Admin => &[Action::Pull, Action::Push, Action::Delete],
        }
    }

    /// Whether this role carries a project-management permission.
    pub fn permits(self, permission: ProjectPermission) -> bool {
        match permission {
            ProjectPermission::ManageTags => self >= Role::Maintainer,
            ProjectPermission::ManageMembers
            | ProjectPermission::ManageRobots
            | ProjectPermission::ManagePolicies => self == Role::Admin,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Developer => "developer",
            Role::Maintainer => "maintainer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Project-management permissions (management API, not the Docker token scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectPermission {
    /// Tag rules: immutability, retention, re-tagging. Maintainer and above.
    ManageTags,
    /// Add, remove and change members and team bindings. Admin.
    ManageMembers,
    /// Create, change and delete the project's robot accounts. Admin.
    ManageRobots,
    /// Visibility, per-repository rules and other project policies. Admin.
    ManagePolicies,
}

impl fmt::Display for ProjectPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProjectPermission::ManageTags => "manage_tags",
            ProjectPermission::ManageMembers => "manage_members",
            ProjectPermission::ManageRobots => "manage_robots",
            ProjectPermission::ManagePolicies => "manage_policies",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("empty repository pattern")]
    Empty,
    #[error("repository pattern longer than {MAX_PATTERN_LEN} bytes")]
    TooLong,
    #[error("repository pattern {0:?} contains a character other than a-z 0-9 . _ - / * ?")]
    InvalidChar(String),
    #[error("invalid repository pattern {0:?}: {1}")]
    Glob(String, String),
}

/// A glob over full repository names; see the module documentation for its syntax.
#[derive(Clone)]
pub struct RepoPattern {
    source: String,
    matcher: GlobMatcher,
    /// (literal prefix length, exact, literal character count): larger is more specific.
    specificity: (usize, bool, usize),
}

impl RepoPattern {
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        if pattern.is_empty() {
            return Err(PatternError::Empty);
        }
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(PatternError::TooLong);
        }
        let allowed = |c: char| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, '.' | '_' | '-' | '/' | '*' | '?')
        };
        if !pattern.chars().all(allowed) {
            return Err(PatternError::InvalidChar(
                pattern.chars().take(80).collect(),
            ));
        }
        let wildcard = |c: char| c == '*' || c == '?';
        let prefix = pattern.find(wildcard).unwrap_or(pattern.len());
        let literal = pattern.chars().filter(|&c| !wildcard(c)).count();
        let exact = prefix == pattern.len();
        let matcher = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(false)
            .build()
            .map_err(|e| PatternError::Glob(pattern.to_owned(), e.kind().to_string()))?
            .compile_matcher();
        Ok(RepoPattern {
            source: pattern.to_owned(),
            matcher,
            specificity: (prefix, exact, literal),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn matches(&self, repo: &RepoName) -> bool {
        self.matcher.is_match(repo.as_str())
    }
}

impl fmt::Debug for RepoPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoPattern({:?})", self.source)
    }
}

impl fmt::Display for RepoPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for RepoPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for RepoPattern {}

impl TryFrom<String> for RepoPattern {
    type Error = PatternError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RepoPattern::new(&s)
    }
}

impl From<RepoPattern> for String {
    fn from(p: RepoPattern) -> String {
        p.source
    }
}

impl Serialize for RepoPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for RepoPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RepoPattern::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A per-repository rule: `role` on the repositories `pattern` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRule {
    pub pattern: RepoPattern,
    pub role: Role,
}

/// One entry of a robot's (or personal access token's) permission list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotPermission {
    pub pattern: RepoPattern,
    pub actions: Vec<Action>,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User {
        id: i64,
        name: String,
        system_admin: bool,
    },
    Robot {
        id: i64,
        name: String,
        /// The project the robot belongs to; `None` for a system robot.
        project: Option<String>,
        permissions: Vec<RobotPermission>,
        /// Seconds since the epoch; the robot is dead from this instant on. `None`: never.
        expires_at: Option<i64>,
    },
}

impl Principal {
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Principal::Anonymous)
    }

    /// The token subject: the user or robot name, empty for anonymous.
    pub fn subject(&self) -> &str {
        match self {
            Principal::Anonymous => "",
            Principal::User { name, .. } | Principal::Robot { name, .. } => name,
        }
    }

    fn is_system_admin(&self) -> bool {
        matches!(
            self,
            Principal::User {
                system_admin: true,
                ..
            }
        )
    }
}

/// What the metadata store knows about a principal's standing in one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// The project these grants are about.
    pub project: String,
    pub visibility: Visibility,
    /// The principal's own membership role.
    pub direct_role: Option<Role>,
    /// Roles the principal holds through teams.
    pub team_roles: Vec<Role>,
    /// Per-repository rules that apply to the principal (directly or through a team).
    pub repo_rules: Vec<RepoRule>,
}

impl Grants {
    /// Grants with no roles and no rules (also right for a project that does not exist: use
    /// `Visibility::Private`).
    pub fn new(project: impl Into<String>, visibility: Visibility) -> Self {
        Grants {
            project: project.into(),
            visibility,
            direct_role: None,
            team_roles: Vec::new(),
            repo_rules: Vec::new(),
        }
    }

    /// The higher of the direct role and the team roles.
    pub fn project_role(&self) -> Option<Role> {
        self.direct_role
            .into_iter()
            .chain(self.team_roles.iter().copied())
            .max()
    }

    /// The role of the most specific rule matching `repo` (module docs give the order).
    pub fn rule_role(&self, repo: &RepoName) -> Option<Role> {
        self.repo_rules
            .iter()
            .filter(|r| r.pattern.matches(repo))
            .max_by_key(|r| (r.pattern.specificity, r.role))
            .map(|r| r.role)
    }

    fn applies_to(&self, repo: &RepoName) -> bool {
        self.project == repo.project()
    }
}

fn robot_expired(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_some_and(|e| now >= e)
}

fn permitted(principal: &Principal, grants: &Grants, repo: &RepoName, now: i64) -> ActionSet {
    match principal {
        Principal::User {
            system_admin: true, ..
        } => ActionSet::of(&[Action::All]),
        Principal::Anonymous => {
            if grants.applies_to(repo) && grants.visibility == Visibility::Public {
                ActionSet::of(&[Action::Pull])
            } else {
                ActionSet::EMPTY
            }
        }
        Principal::Robot {
            project,
            permissions,
            expires_at,
            ..
        } => {
            if robot_expired(*expires_at, now)
                || project.as_deref().is_some_and(|p| p != repo.project())
            {
                return ActionSet::EMPTY;
            }
            permissions
                .iter()
                .filter(|p| p.pattern.matches(repo))
                .fold(ActionSet::EMPTY, |acc, p| {
                    acc.union(ActionSet::of(&p.actions))
                })
        }
        Principal::User { .. } => {
            if !grants.applies_to(repo) {
                return ActionSet::EMPTY;
            }
            let role = grants.project_role().max(grants.rule_role(repo));
            let mut set = role.map_or(ActionSet::EMPTY, |r| ActionSet::of(r.actions()));
            if grants.visibility == Visibility::Public {
                set = set.union(ActionSet::of(&[Action::Pull]));
            }
            set
        }
    }
}

/// The requested actions that `principal` may perform on `repo` (the intersection of `requested`
/// and what the rules in the module documentation permit), sorted and deduplicated.
pub fn allowed(
    principal: &Principal,
    grants: &Grants,
    repo: &RepoName,
    requested: &[Action],
    now: i64,
) -> Vec<Action> {
    permitted(principal, grants, repo, now).filter(requested)
}

/// The principal's effective role in the grants' project for management purposes: `Admin` for
/// system admins, the project role for users, nothing for anonymous and robots.
pub fn project_role(principal: &Principal, grants: &Grants) -> Option<Role> {
    match principal {
        p if p.is_system_admin() => Some(Role::Admin),
        Principal::User { .. } => grants.project_role(),
        Principal::Anonymous | Principal::Robot { .. } => None,
    }
}

/// Proof that a permission check passed for `repo` and `actions`. Only [`authorize`] and
/// verified access tokens create one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    repo: RepoName,
    actions: ActionSet,
}

impl Capability {
    pub(crate) fn new(repo: RepoName, actions: ActionSet) -> Self {
        Capability { repo, actions }
    }

    pub fn repo(&self) -> &RepoName {
        &self.repo
    }

    /// The individual actions checked (`*` is reported as pull, push and delete).
    pub fn actions(&self) -> Vec<Action> {
        self.actions
            .filter(&[Action::Pull, Action::Push, Action::Delete])
    }

    pub fn permits(&self, action: Action) -> bool {
        self.actions.contains(action)
    }

    /// `Ok` if this capability covers `action`.
    pub fn require(&self, action: Action) -> Result<(), Denied> {
        if self.permits(action) {
            Ok(())
        } else {
            Err(Denied::Repository {
                repo: self.repo.clone(),
                missing: vec![action],
            })
        }
    }
}

/// Proof that a project-management permission check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectCapability {
    project: String,
    permission: ProjectPermission,
}

impl ProjectCapability {
    pub fn project(&self) -> &str {
        &self.project
    }

    pub fn permission(&self) -> ProjectPermission {
        self.permission
    }
}

fn list(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// A failed permission check. Whether it becomes a 401 challenge or a 403 depends on whether
/// the principal was authenticated, which the server knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("access to repository {repo} denied (missing {})", list(.missing))]
    Repository {
        repo: RepoName,
        missing: Vec<Action>,
    },
    #[error("access to project {project} denied (missing {permission})")]
    Project {
        project: String,
        permission: ProjectPermission,
    },
    /// Registry-wide operations (users, teams, the catalog) are for system administrators.
    #[error("{what} requires a system administrator")]
    System { what: &'static str },
}

/// Check that `principal` may perform every action in `required` on `repo`; on success the
/// returned [`Capability`] carries exactly `required`.
pub fn authorize(
    principal: &Principal,
    grants: &Grants,
    repo: &RepoName,
    required: &[Action],
    now: i64,
) -> Result<Capability, Denied> {
    let set = permitted(principal, grants, repo, now);
    check(set, repo, required)
}

pub(crate) fn check(
    permitted: ActionSet,
    repo: &RepoName,
    required: &[Action],
) -> Result<Capability, Denied> {
    let missing = canonical(required.iter().copied().filter(|&a| !permitted.contains(a)));
    if missing.is_empty() {
        Ok(Capability::new(repo.clone(), ActionSet::of(required)))
    } else {
        Err(Denied::Repository {
            repo: repo.clone(),
            missing,
        })
    }
}

/// Check a project-management permission (system admins: always; users: by project role, repo
/// rules do not count; anonymous and robots: never).
pub fn authorize_project(
    principal: &Principal,
    grants: &Grants,
    permission: ProjectPermission,
) -> Result<ProjectCapability, Denied> {
    if project_role(principal, grants).is_some_and(|r| r.permits(permission)) {
        Ok(ProjectCapability {
            project: grants.project.clone(),
            permission,
        })
    } else {
        Err(Denied::Project {
            project: grants.project.clone(),
            permission,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    fn repo(s: &str) -> RepoName {
        RepoName::parse(s).unwrap()
    }

    fn pat(s: &str) -> RepoPattern {
        RepoPattern::new(s).unwrap()
    }

    fn user() -> Principal {
        Principal::User {
            id: 1,
            name: "alice".into(),
            system_admin: false,
        }
    }

    const ALL4: &[Action] = &[Pull, Push, Delete, All];

    #[test]
    fn role_table() {
        assert!(Role::Reader < Role::Developer && Role::Maintainer < Role::Admin);
        assert_eq!(Role::Reader.actions(), &[Pull]);
        assert_eq!(Role::Developer.actions(), &[Pull, Push]);
        assert_eq!(Role::Maintainer.actions(), &[Pull, Push, Delete]);
        assert!(!Role::Developer.permits(ProjectPermission::ManageTags));
        assert!(Role::Maintainer.permits(ProjectPermission::ManageTags));
        assert!(!Role::Maintainer.permits(ProjectPermission::ManageMembers));
        for p in [
            ProjectPermission::ManageTags,
            ProjectPermission::ManageMembers,
            ProjectPermission::ManageRobots,
            ProjectPermission::ManagePolicies,
        ] {
            assert!(Role::Admin.permits(p), "{p}");
            assert!(!Role::Reader.permits(p), "{p}");
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert_eq!(Role::parse("owner"), None);
    }

    #[test]
    fn pattern_syntax() {
        assert!(pat("team-a/*").matches(&repo("team-a/app")));
        assert!(!pat("team-a/*").matches(&repo("team-a/app/api")));
        assert!(!pat("team-a/*").matches(&repo("team-a")));
        assert!(pat("team-a/**").matches(&repo("team-a/app/api")));
        assert!(pat("team-a/**").matches(&repo("team-a/app")));
        assert!(!pat("team-a/**").matches(&repo("team-a")));
        assert!(!pat("team-a/**").matches(&repo("team-ab/app")));
        assert!(pat("team-a/app?").matches(&repo("team-a/app2")));
        assert!(!pat("team-a/app?").matches(&repo("team-a/app")));
        assert!(pat("team-a/app").matches(&repo("team-a/app")));
        assert!(!pat("team-a/app").matches(&repo("team-a/app2")));
        assert!(pat("*/app").matches(&repo("x/app")));
        assert!(pat("**").matches(&repo("x/y/z")));

        assert_eq!(RepoPattern::new(""), Err(PatternError::Empty));
        for bad in ["Team/*", "a/{b,c}", "a/[bc]", "a\\*", "a b", "é"] {
            assert!(
                matches!(RepoPattern::new(bad), Err(PatternError::InvalidChar(_))),
                "{bad}"
            );
        }
        assert_eq!(
            RepoPattern::new(&"a".repeat(MAX_PATTERN_LEN + 1)),
            Err(PatternError::TooLong)
        );
        let p: RepoPattern = serde_json::from_str("\"a/**\"").unwrap();
        assert_eq!(p, pat("a/**"));
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"a/**\"");
        assert!(serde_json::from_str::<RepoPattern>("\"A\"").is_err());
        assert_eq!(format!("{p:?}"), "RepoPattern(\"a/**\")");
    }

    #[test]
    fn most_specific_rule_wins() {
        let mut g = Grants::new("team-a", Visibility::Private);
        g.repo_rules = vec![
            RepoRule {
                pattern: pat("team-a/**"),
                role: Role::Maintainer,
            },
            RepoRule {
                pattern: pat("team-a/prod/*"),
                role: Role::Reader,
            },
            RepoRule {
                pattern: pat("team-a/prod/special"),
                role: Role::Developer,
            },
            RepoRule {
                pattern: pat("team-a/prod/special*"),
                role: Role::Admin,
            },
        ];
        assert_eq!(g.rule_role(&repo("team-a/dev/x")), Some(Role::Maintainer));
        assert_eq!(g.rule_role(&repo("team-a/prod/api")), Some(Role::Reader));
        // Same literal prefix: the exact pattern beats the wildcard one.
        assert_eq!(
            g.rule_role(&repo("team-a/prod/special")),
            Some(Role::Developer)
        );
        assert_eq!(
            g.rule_role(&repo("team-a/prod/special2")),
            Some(Role::Admin)
        );
        assert_eq!(g.rule_role(&repo("team-b/x")), None);

        // Complete tie: the higher role.
        g.repo_rules = vec![
            RepoRule {
                pattern: pat("team-a/a*"),
                role: Role::Reader,
            },
            RepoRule {
                pattern: pat("team-a/a?"),
                role: Role::Developer,
            },
            RepoRule {
                pattern: pat("team-a/a?"),
                role: Role::Reader,
            },
        ];
        assert_eq!(g.rule_role(&repo("team-a/ab")), Some(Role::Developer));
        // More literal characters after the first wildcard break a prefix tie.
        g.repo_rules = vec![
            RepoRule {
                pattern: pat("team-a/*"),
                role: Role::Admin,
            },
            RepoRule {
                pattern: pat("team-a/*x"),
                role: Role::Reader,
            },
        ];
        assert_eq!(g.rule_role(&repo("team-a/ax")), Some(Role::Reader));
    }

    #[test]
    fn rules_add_to_the_project_role() {
        let mut g = Grants::new("team-a", Visibility::Private);
        g.direct_role = Some(Role::Developer);
        g.repo_rules = vec![RepoRule {
            pattern: pat("team-a/prod/*"),
            role: Role::Reader,
        }];
        // The lower rule does not take away the project role.
        assert_eq!(
            allowed(&user(), &g, &repo("team-a/prod/x"), ALL4, 0),
            vec![Pull, Push]
        );
        g.repo_rules = vec![RepoRule {
            pattern: pat("team-a/prod/*"),
            role: Role::Maintainer,
        }];
        assert_eq!(
            allowed(&user(), &g, &repo("team-a/prod/x"), ALL4, 0),
            ALL4.to_vec()
        );
        assert_eq!(
            allowed(&user(), &g, &repo("team-a/dev/x"), ALL4, 0),
            vec![Pull, Push]
        );
    }

    #[test]
    fn mismatched_grants_fail_closed() {
        let mut g = Grants::new("team-a", Visibility::Public);
        g.direct_role = Some(Role::Admin);
        assert_eq!(allowed(&user(), &g, &repo("team-b/x"), ALL4, 0), vec![]);
        assert_eq!(
            allowed(&Principal::Anonymous, &g, &repo("team-b/x"), ALL4, 0),
            vec![]
        );
        // A single-component name is its own project.
        let g = Grants::new("solo", Visibility::Public);
        assert_eq!(
            allowed(&Principal::Anonymous, &g, &repo("solo"), ALL4, 0),
            vec![Pull]
        );
    }

    #[test]
    fn capabilities() {
        let mut g = Grants::new("team-a", Visibility::Private);
        g.team_roles = vec![Role::Reader, Role::Developer];
        let r = repo("team-a/app");
        let cap = authorize(&user(), &g, &r, &[Pull, Push], 0).unwrap();
        assert_eq!(cap.repo(), &r);
        assert_eq!(cap.actions(), vec![Pull, Push]);
        assert!(cap.permits(Pull) && cap.permits(Push));
        assert!(!cap.permits(Delete) && !cap.permits(All));
        assert!(cap.require(Push).is_ok());
        assert_eq!(
            cap.require(Delete),
            Err(Denied::Repository {
                repo: r.clone(),
                missing: vec![Delete]
            })
        );
        // Least privilege: only what was checked.
        let cap = authorize(&user(), &g, &r, &[Pull], 0).unwrap();
        assert!(!cap.permits(Push));

        let err = authorize(&user(), &g, &r, &[All, Pull, Delete], 0).unwrap_err();
        assert_eq!(
            err,
            Denied::Repository {
                repo: r.clone(),
                missing: vec![Delete, All]
            }
        );
        assert_eq!(
            err.to_string(),
            "access to repository team-a/app denied (missing delete,*)"
        );

        g.direct_role = Some(Role::Maintainer);
        let cap = authorize(&user(), &g, &r, &[All], 0).unwrap();
        assert_eq!(cap.actions(), vec![Pull, Push, Delete]);
        assert!(cap.permits(All));
    }

    #[test]
    fn project_capabilities() {
        let mut g = Grants::new("team-a", Visibility::Public);
        g.direct_role = Some(Role::Maintainer);
        let cap = authorize_project(&user(), &g, ProjectPermission::ManageTags).unwrap();
        assert_eq!(cap.project(), "team-a");
        assert_eq!(cap.permission(), ProjectPermission::ManageTags);
        assert_eq!(
            authorize_project(&user(), &g, ProjectPermission::ManageMembers),
            Err(Denied::Project {
                project: "team-a".into(),
                permission: ProjectPermission::ManageMembers
            })
        );
        // Repo rules do not confer project management.
        g.direct_role = None;
        g.repo_rules = vec![RepoRule {
            pattern: pat("team-a/**"),
            role: Role::Admin,
        }];
        assert!(authorize_project(&user(), &g, ProjectPermission::ManageTags).is_err());
        g.team_roles = vec![Role::Admin];
        assert!(authorize_project(&user(), &g, ProjectPermission::ManagePolicies).is_ok());

        let admin = Principal::User {
            id: 0,
            name: "root".into(),
            system_admin: true,
        };
        let empty = Grants::new("x", Visibility::Private);
        assert!(authorize_project(&admin, &empty, ProjectPermission::ManageRobots).is_ok());
        assert!(
            authorize_project(&Principal::Anonymous, &g, ProjectPermission::ManageTags).is_err()
        );
        let robot = Principal::Robot {
            id: 2,
            name: "robot".into(),
            project: Some("team-a".into()),
            permissions: vec![RobotPermission {
                pattern: pat("**"),
                actions: vec![All],
            }],
            expires_at: None,
        };
        assert!(authorize_project(&robot, &g, ProjectPermission::ManageTags).is_err());
    }

    #[test]
    fn subjects() {
        assert_eq!(Principal::Anonymous.subject(), "");
        assert!(Principal::Anonymous.is_anonymous());
        assert_eq!(user().subject(), "alice");
        assert!(!user().is_anonymous());
    }
}
