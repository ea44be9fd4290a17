//! The Docker registry token `scope` grammar and the JWT `access` claim.
//!
//! ```text
//! scope         := resourcetype ":" resourcename ":" action ("," action)*
//! resourcetype  := "repository" | "repository(" class ")" | "registry"
//! class         := [a-z0-9]+
//! action        := "pull" | "push" | "delete" | "*"
//! ```
//!
//! The type runs to the first `:` and the actions start after the last one, so the name is
//! everything in between. Names are validated with [`bulwark_oci::RepoName`]; a name carrying a
//! registry host (`localhost:5000/app`) is therefore rejected. The only `registry` scope is
//! `registry:catalog:*`.
//!
//! Bulwark is strict where the distribution spec is loose: an unknown resource type, an unknown
//! or empty action, an invalid name or a malformed scope is an error (the token endpoint answers
//! 400) rather than being silently dropped. Duplicate actions collapse, and several scopes for
//! the same resource (from one space-separated `scope` parameter or from several parameters) are
//! merged into one, in order of first appearance.
//!
//! A repository class (`repository(plugin)`) is kept and echoed in the `access` claim as
//! `"class"`, but authorisation ignores it: access is to the repository, whatever the client
//! says it contains.

use std::fmt;

use bulwark_oci::RepoName;
use serde::{Deserialize, Serialize};

/// Longest single scope accepted (type + name + actions).
pub const MAX_SCOPE_LEN: usize = 512;
/// Most scopes accepted in one token request.
pub const MAX_SCOPES: usize = 64;
/// Longest repository class accepted.
const MAX_CLASS_LEN: usize = 32;
/// How much of an offending input an error message repeats.
const ERROR_ECHO: usize = 80;

/// An action on a resource. `All` is the token grammar's `*`: on a repository it means pull,
/// push and delete together; on the catalog it is the only action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "pull")]
    Pull,
    #[serde(rename = "push")]
    Push,
    #[serde(rename = "delete")]
    Delete,
    #[serde(rename = "*")]
    All,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::All => "*",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            "*" => Some(Action::All),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of repository actions as bits; `All` is the full set, so "`*` is granted" means "pull,
/// push and delete are all granted", whichever way they were spelled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ActionSet(u8);

impl ActionSet {
    pub(crate) const EMPTY: ActionSet = ActionSet(0);

    fn bits(a: Action) -> u8 {
        match a {
            Action::Pull => 1,
            Action::Push => 2,
            Action::Delete => 4,
            Action::All => 7,
        }
    }

    pub(crate) fn of(actions: &[Action]) -> Self {
        ActionSet(actions.iter().fold(0, |acc, &a| acc | Self::bits(a)))
    }

    pub(crate) fn union(self, other: ActionSet) -> Self {
        ActionSet(self.0 | other.0)
    }

    pub(crate) fn contains(self, a: Action) -> bool {
        let b = Self::bits(a);
        self.0 & b == b
    }

    /// The requested actions this set permits, deduplicated, in canonical order.
    pub(crate) fn filter(self, requested: &[Action]) -> Vec<Action> {
        canonical(requested.iter().copied().filter(|&a| self.contains(a)))
    }
}

/// Sort and deduplicate.
pub(crate) fn canonical(actions: impl IntoIterator<Item = Action>) -> Vec<Action> {
    let mut v: Vec<Action> = actions.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope longer than {MAX_SCOPE_LEN} bytes")]
    TooLong,
    #[error("more than {MAX_SCOPES} scopes requested")]
    TooMany,
    #[error("malformed scope {0:?}")]
    Malformed(String),
    #[error("unknown resource type {0:?}")]
    UnknownType(String),
    #[error("invalid repository name {0:?}")]
    InvalidName(String),
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    #[error("unsupported resource {0:?}")]
    UnsupportedResource(String),
}

fn echo(s: &str) -> String {
    s.chars().take(ERROR_ECHO).collect()
}

/// What a scope is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `repository:<name>` or `repository(<class>):<name>`.
    Repository {
        name: RepoName,
        class: Option<String>,
    },
    /// `registry:catalog`.
    Catalog,
}

/// One parsed scope: a resource and the (sorted, deduplicated) actions requested on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub resource: Resource,
    pub actions: Vec<Action>,
}

impl Scope {
    /// A repository scope without class.
    pub fn repository(name: RepoName, actions: &[Action]) -> Self {
        Scope {
            resource: Resource::Repository { name, class: None },
            actions: canonical(actions.iter().copied()),
        }
    }

    /// `registry:catalog:*`.
    pub fn catalog() -> Self {
        Scope {
            resource: Resource::Catalog,
            actions: vec![Action::All],
        }
    }

    /// Parse one scope (no spaces).
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        if s.len() > MAX_SCOPE_LEN {
            return Err(ScopeError::TooLong);
        }
        let malformed = || ScopeError::Malformed(echo(s));
        let (ty, rest) = s.split_once(':').ok_or_else(malformed)?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(malformed)?;
        if name.is_empty() || actions.is_empty() {
            return Err(malformed());
        }
        let mut parsed = Vec::new();
        for a in actions.split(',') {
            if a.is_empty() {
                return Err(malformed());
            }
            parsed.push(Action::parse(a).ok_or_else(|| ScopeError::UnknownAction(echo(a)))?);
        }
        let actions = canonical(parsed);

        if ty == "registry" {
            return if name == "catalog" && actions == [Action::All] {
                Ok(Scope::catalog())
            } else {
                Err(ScopeError::UnsupportedResource(echo(s)))
            };
        }
        let class = if ty == "repository" {
            None
        } else {
            let class = ty
                .strip_prefix("repository(")
                .and_then(|c| c.strip_suffix(')'))
                .ok_or_else(|| ScopeError::UnknownType(echo(ty)))?;
            let valid = !class.is_empty()
                && class.len() <= MAX_CLASS_LEN
                && class
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !valid {
                return Err(ScopeError::UnknownType(echo(ty)));
            }
            Some(class.to_owned())
        };
        let name = RepoName::parse(name).map_err(|_| ScopeError::InvalidName(echo(name)))?;
        Ok(Scope {
            resource: Resource::Repository { name, class },
            actions,
        })
    }

    /// The repository this scope names, if any.
    pub fn repo(&self) -> Option<&RepoName> {
        match &self.resource {
            Resource::Repository { name, .. } => Some(name),
            Resource::Catalog => None,
        }
    }

    /// This scope as an `access` claim entry with the requested actions.
    pub fn to_access(&self) -> ResourceActions {
        self.granted(&self.actions)
    }

    /// This scope as an `access` claim entry carrying `granted` actions instead (those the
    /// policy allowed; may be empty).
    pub fn granted(&self, granted: &[Action]) -> ResourceActions {
        let (resource_type, name, class) = match &self.resource {
            Resource::Repository { name, class } => {
                ("repository", name.as_str().to_owned(), class.clone())
            }
            Resource::Catalog => ("registry", "catalog".to_owned(), None),
        };
        ResourceActions {
            resource_type: resource_type.to_owned(),
            name,
            actions: canonical(granted.iter().copied()),
            class,
        }
    }
}

/// The grammar form, e.g. `repository:team-a/app:pull,push`, as used in a `WWW-Authenticate`
/// challenge.
impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.resource {
            Resource::Repository { name, class: None } => write!(f, "repository:{name}:")?,
            Resource::Repository {
                name,
                class: Some(c),
            } => write!(f, "repository({c}):{name}:")?,
            Resource::Catalog => f.write_str("registry:catalog:")?,
        }
        for (i, a) in self.actions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(a.as_str())?;
        }
        Ok(())
    }
}

/// Parse the values of every `scope` query parameter of a token request. Each value may hold
/// several scopes separated by spaces. Scopes on the same resource are merged; the result keeps
/// the order of first appearance.
pub fn parse_scopes<'a>(
    params: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Scope>, ScopeError> {
    let mut out: Vec<Scope> = Vec::new();
    let mut seen = 0usize;
    for param in params {
        for raw in param.split_ascii_whitespace() {
            seen += 1;
            if seen > MAX_SCOPES {
                return Err(ScopeError::TooMany);
            }
            let scope = Scope::parse(raw)?;
            match out.iter_mut().find(|s| s.resource == scope.resource) {
                Some(existing) => {
                    existing.actions =
                        canonical(existing.actions.iter().chain(&scope.actions).copied());
                }
                None => out.push(scope),
            }
        }
    }
    Ok(out)
}

/// One entry of the JWT `access` claim:
/// `{"type":"repository","name":"team-a/app","actions":["pull","push"]}` (plus `"class"` when
/// the scope had one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceActions {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub name: String,
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn repo(s: &str) -> RepoName {
        RepoName::parse(s).unwrap()
    }

    #[test]
    fn parses_repository_scopes() {
        let s = Scope::parse("repository:team-a/app:pull,push").unwrap();
        assert_eq!(
            s,
            Scope::repository(repo("team-a/app"), &[Action::Push, Action::Pull])
        );
        assert_eq!(s.actions, vec![Action::Pull, Action::Push]);
        assert_eq!(s.repo(), Some(&repo("team-a/app")));

        let s = Scope::parse("repository:a:delete,pull,pull,*").unwrap();
        assert_eq!(s.actions, vec![Action::Pull, Action::Delete, Action::All]);

        let s = Scope::parse("repository(plugin):vieux/sshfs:pull").unwrap();
        assert_eq!(
            s.resource,
            Resource::Repository {
                name: repo("vieux/sshfs"),
                class: Some("plugin".into())
            }
        );
        assert_eq!(s.to_string(), "repository(plugin):vieux/sshfs:pull");
    }

    #[test]
    fn parses_catalog() {
        let s = Scope::parse("registry:catalog:*").unwrap();
        assert_eq!(s, Scope::catalog());
        assert_eq!(s.repo(), None);
        assert_eq!(s.to_string(), "registry:catalog:*");
        for bad in [
            "registry:catalog:pull",
            "registry:catalog:*,pull",
            "registry:other:*",
        ] {
            assert!(
                matches!(Scope::parse(bad), Err(ScopeError::UnsupportedResource(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_invalid_scopes() {
        fn kind(e: &ScopeError) -> &'static str {
            match e {
                ScopeError::TooLong => "too long",
                ScopeError::TooMany => "too many",
                ScopeError::Malformed(_) => "malformed",
                ScopeError::UnknownType(_) => "type",
                ScopeError::InvalidName(_) => "name",
                ScopeError::UnknownAction(_) => "action",
                ScopeError::UnsupportedResource(_) => "resource",
            }
        }
        let cases = [
            ("", "malformed"),
            ("repository", "malformed"),
            ("repository:app", "malformed"),
            ("repository::pull", "malformed"),
            ("repository:app:", "malformed"),
            ("repository:app:pull,", "malformed"),
            ("repository:app:,pull", "malformed"),
            ("repository:app:pull,,push", "malformed"),
            ("repository:app:PULL", "action"),
            ("repository:app:read", "action"),
            ("repository:App:pull", "name"),
            ("repository:localhost:5000/app:pull", "name"),
            ("repository:a/../b:pull", "name"),
            ("repo:app:pull", "type"),
            ("Repository:app:pull", "type"),
            ("repository():app:pull", "type"),
            ("repository(Plugin):app:pull", "type"),
            ("repository(plugin:app:pull", "type"),
        ];
        for (input, expected) in cases {
            let err = Scope::parse(input).unwrap_err();
            assert_eq!(kind(&err), expected, "{input}: {err:?}");
        }
        let long = format!("repository:{}:pull", "a".repeat(MAX_SCOPE_LEN));
        assert_eq!(Scope::parse(&long), Err(ScopeError::TooLong));
    }

    #[test]
    fn error_messages_are_bounded() {
        let name = "A".repeat(400);
        let err = Scope::parse(&format!("repository:{name}:pull")).unwrap_err();
        assert!(err.to_string().len() < 120, "{err}");
    }

    #[test]
    fn parses_and_merges_several_params() {
        let scopes = parse_scopes([
            "repository:a/b:pull repository:c:push",
            "repository:a/b:push",
            "  registry:catalog:*  ",
            "",
            "repository(plugin):a/b:pull",
        ])
        .unwrap();
        assert_eq!(
            scopes,
            vec![
                Scope::repository(repo("a/b"), &[Action::Pull, Action::Push]),
                Scope::repository(repo("c"), &[Action::Push]),
                Scope::catalog(),
                Scope::parse("repository(plugin):a/b:pull").unwrap(),
            ]
        );
        assert_eq!(parse_scopes(Vec::<&str>::new()).unwrap(), vec![]);
        assert!(parse_scopes(["repository:a:pull repository:B:pull"]).is_err());
        let many = vec!["repository:a:pull"; MAX_SCOPES + 1].join(" ");
        assert_eq!(parse_scopes([many.as_str()]), Err(ScopeError::TooMany));
    }

    #[test]
    fn access_claim_shape() {
        let scope = Scope::parse("repository:team-a/app:push,pull").unwrap();
        let json = serde_json::to_string(&[scope.to_access()]).unwrap();
        assert_eq!(
            json,
            r#"[{"type":"repository","name":"team-a/app","actions":["pull","push"]}]"#
        );
        let json = serde_json::to_string(&scope.granted(&[Action::Pull])).unwrap();
        assert_eq!(
            json,
            r#"{"type":"repository","name":"team-a/app","actions":["pull"]}"#
        );
        let json = serde_json::to_string(&Scope::catalog().to_access()).unwrap();
        assert_eq!(
            json,
            r#"{"type":"registry","name":"catalog","actions":["*"]}"#
        );
        let plugin = Scope::parse("repository(plugin):p:pull").unwrap();
        let json = serde_json::to_string(&plugin.granted(&[])).unwrap();
        assert_eq!(
            json,
            r#"{"type":"repository","name":"p","actions":[],"class":"plugin"}"#
        );
        let back: ResourceActions = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plugin.granted(&[]));
        assert!(
            serde_json::from_str::<ResourceActions>(
                r#"{"type":"repository","name":"p","actions":["read"]}"#
            )
            .is_err()
        );
    }

    #[test]
    fn action_set() {
        let s = ActionSet::of(&[Action::Pull, Action::Push]);
        assert!(s.contains(Action::Pull) && s.contains(Action::Push));
        assert!(!s.contains(Action::Delete) && !s.contains(Action::All));
        let all = s.union(ActionSet::of(&[Action::Delete]));
        assert!(all.contains(Action::All));
        assert_eq!(all, ActionSet::of(&[Action::All]));
        assert_eq!(
            s.filter(&[Action::All, Action::Push, Action::Pull, Action::Push]),
            vec![Action::Pull, Action::Push]
        );
        assert_eq!(ActionSet::EMPTY.filter(&[Action::Pull]), vec![]);
        for a in [Action::Pull, Action::Push, Action::Delete, Action::All] {
            assert_eq!(Action::parse(a.as_str()), Some(a));
            assert_eq!(a.to_string(), a.as_str());
        }
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,4}((\\.|_|__|-{1,2})[a-z0-9]{1,4}){0,2}"
    }

    fn action() -> impl Strategy<Value = Action> {
        prop::sample::select(vec![
            Action::Pull,
            Action::Push,
            Action::Delete,
            Action::All,
        ])
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,200}") {
            let _ = Scope::parse(&s);
            let _ = parse_scopes([s.as_str()]);
        }

        #[test]
        fn parsing_scope_like_input_never_panics(
            s in "(repository|registry|repository\\([a-z]{0,3}\\)?)?:?[a-z0-9:/._,*-]{0,40}(:(pull|push|delete|\\*|,){0,4})?"
        ) {
            let _ = Scope::parse(&s);
            let _ = parse_scopes([s.as_str(), s.as_str()]);
        }

        #[test]
        fn display_round_trips(
            parts in prop::collection::vec(component(), 1..4),
            actions in prop::collection::vec(action(), 1..5),
            class in prop::option::of("[a-z0-9]{1,8}"),
        ) {
            let name = RepoName::parse(&parts.join("/")).unwrap();
            let scope = Scope {
                resource: Resource::Repository { name, class },
                actions: canonical(actions),
            };
            let text = scope.to_string();
            prop_assert_eq!(Scope::parse(&text).unwrap(), scope);
        }
    }
}
