//! Access control for Bulwark, as a domain library: no HTTP, no SQL, time through a clock.
//!
//! - [`password`]: argon2id password hashes, random secrets, API tokens stored as SHA-256, and the
//!   [`Secret`] newtype that never prints its contents.
//! - [`scope`]: the Docker registry token `scope` grammar and the JWT `access` claim shape.
//! - [`policy`]: roles, principals, the grants the metadata store loads, the `allowed` decision and
//!   [`Capability`] handles that can only be obtained through a permission check.
//! - [`token`]: the Docker registry token service (ES256 JWTs, key rotation, refresh tokens).
//! - [`service`]: [`service::AuthService`], which authenticates callers, checks permissions and
//!   issues tokens over an [`store::AuthStore`].
//! - [`manage`]: permission-checked management of users, teams, projects, members, rules,
//!   robot accounts and personal access tokens (methods on [`service::AuthService`]).
//! - [`store`]: the [`store::AuthStore`] port the metadata store implements.
//! - [`ratelimit`]: an in-memory failed-login limiter keyed by IP and by username.
//!
//! Time is always passed in as seconds since the Unix epoch (`now: i64`, the same unit as
//! `bulwark_core::Clock::now`), so every decision is deterministic and testable.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod manage;
pub mod password;
pub mod policy;
pub mod ratelimit;
pub mod scope;
pub mod service;
pub mod store;
pub mod token;

pub use password::{
    ApiToken, NewApiToken, PasswordError, Secret, SecretHash, generate_secret, hash_password,
    needs_rehash, verify_password,
};
pub use policy::{
    Capability, Denied, Grants, PatternError, Principal, ProjectCapability, ProjectPermission,
    RepoPattern, RepoRule, RobotPermission, Role, Visibility, allowed, authorize,
    authorize_project, project_role,
};
pub use ratelimit::{Limit, LimitKey, LoginLimiter, RateLimitConfig, RetryAfter};
pub use scope::{Action, Resource, ResourceActions, Scope, ScopeError, parse_scopes};
pub use token::{
    Claims, RefreshClaims, RefreshToken, RetiredKey, SigningKey, Token, TokenError, TokenIssuer,
    VerifyingKey,
};
