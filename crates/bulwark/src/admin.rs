//! `bulwark admin`: manage users, projects, robot accounts, trust policies and the token
//! signing key.
//!
//! Two modes:
//! - **offline** (default): works directly on the data directory. It takes the data-directory
//!   lock, so it refuses while a server runs there, opens the metadata database the server
//!   would use and acts as the bootstrap admin (or, if that account is gone, the first enabled
//!   system admin) through the same permission-checked operations the API uses
//!   ([`bulwark_auth::manage`]).
//! - **online** (`--url http://host:port`): calls the running server's `/api/v1` as
//!   `--username` (default `admin`), with the password from `BULWARK_PASSWORD` or, with
//!   `--password-stdin` before the subcommand, from standard input.
//!
//! New passwords (`user add`, `user passwd`) come from standard input (`--password-stdin`
//! after the subcommand) or from `BULWARK_NEW_PASSWORD`, never from the command line. Output is
//! a table, or the API's JSON with `--json`. Log lines go to standard error, so standard output
//! carries only the result.

use std::io::Read as _;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use bulwark_auth::Secret;
use bulwark_auth::manage::{NewRobotRequest, NewUserRequest, PermissionSpec, UserChanges};
use bulwark_auth::policy::{Principal, Visibility};
use bulwark_auth::service::{AuthService, BOOTSTRAP_ADMIN, Caller, Credential};
use bulwark_auth::store::{Project, Robot, User};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use tracing::instrument::WithSubscriber as _;

use crate::config::Config;

/// Longest password read from standard input.
const MAX_STDIN_SECRET: u64 = 64 * 1024;
const NEW_PASSWORD_ENV: &str = "BULWARK_NEW_PASSWORD";
const LOGIN_PASSWORD_ENV: &str = "BULWARK_PASSWORD";

#[derive(Args)]
pub(crate) struct AdminArgs {
    /// Manage a running server through its API (e.g. http://127.0.0.1:5000) instead of the
    /// data directory.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The user to log in as with --url.
    #[arg(long, default_value = BOOTSTRAP_ADMIN, requires = "url")]
    username: String,
    /// With --url: read the login password from standard input instead of BULWARK_PASSWORD.
    #[arg(long = "password-stdin", id = "login_password_stdin", requires = "url")]
    login_password_stdin: bool,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Local user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Robot accounts.
    #[command(subcommand)]
    Robot(RobotCommand),
    /// The token signing key (offline only).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Trust policies of projects: signatures required on pull, trusted keys, vulnerability
    /// gate (see docs/TRUST.md).
    #[command(subcommand)]
    Trust(TrustCommand),
}

#[derive(Subcommand)]
enum TrustCommand {
    /// Set a project's trust policy from a JSON document (a file, or `-` for standard input).
    Set {
        project: String,
        file: std::path::PathBuf,
    },
    /// Show a project's trust policy.
    Show { project: String },
    /// Remove a project's trust policy.
    Unset { project: String },
    /// The newest pull decisions taken under a project's policy.
    Decisions {
        project: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password comes from --password-stdin or BULWARK_NEW_PASSWORD.
    Add {
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// Make the user a system admin.
        #[arg(long)]
        system_admin: bool,
        /// Read the new user's password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Set a user's password, from --password-stdin or BULWARK_NEW_PASSWORD.
    Passwd {
        name: String,
        /// Read the new password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: their password, tokens and sessions stop working.
    Disable { name: String },
    /// Enable a disabled user again.
    Enable { name: String },
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Create a project.
    Create {
        name: String,
        #[arg(long, value_enum, default_value_t = VisibilityArg::Private)]
        visibility: VisibilityArg,
    },
    /// List projects.
    List,
}

#[derive(Subcommand)]
enum RobotCommand {
    /// Create a robot account and print its secret (shown only this once).
    Create {
        /// The short name; the login name is robot$<project>+<name> (robot$<name> without
        /// --project).
        name: String,
        /// The project the robot belongs to; without it, a system robot (system admins).
        #[arg(long)]
        project: Option<String>,
        /// PATTERN=ACTIONS, e.g. 'team-a/*=pull,push'; repeat for more.
        #[arg(long = "permission", value_name = "PATTERN=ACTIONS", required = true)]
        permissions: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// Expire the robot after this many seconds.
        #[arg(long)]
        expires_in_secs: Option<u64>,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Make a new token signing key active; tokens signed by the old one stay valid until
    /// they expire. Restart running servers, or they pick the key up on their own when they
    /// meet a token signed with it.
    Rotate,
}

#[derive(Clone, Copy, ValueEnum)]
enum VisibilityArg {
    Public,
    Private,
}

impl VisibilityArg {
    fn as_str(self) -> &'static str {
        match self {
            VisibilityArg::Public => "public",
            VisibilityArg::Private => "private",
        }
    }
}

impl From<VisibilityArg> for Visibility {
    fn from(v: VisibilityArg) -> Self {
        match v {
            VisibilityArg::Public => Visibility::Public,
            VisibilityArg::Private => Visibility::Private,
        }
    }
}

/// Run `bulwark admin …`. Log lines go to standard error for the duration.
pub(crate) async fn run(config: Config, args: AdminArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let to_stderr = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .finish();
    execute(config, args).with_subscriber(to_stderr).await
}

async fn execute(config: Config, args: AdminArgs) -> anyhow::Result<()> {
    let json = args.json;
    let backend = match &args.url {
        Some(url) => {
            let password = if args.login_password_stdin {
                read_stdin_secret("login password")?
            } else {
                env_secret(LOGIN_PASSWORD_ENV)?.ok_or_else(|| {
                    anyhow!(
                        "--url needs the password of {}: set {LOGIN_PASSWORD_ENV} or pass \
                         --password-stdin (before the subcommand)",
                        args.username
                    )
                })?
            };
            Backend::Remote(Remote::new(url, args.username.clone(), password)?)
        }
        None => Backend::Local(Box::new(Local::open(&config).await?)),
    };
    let stdin_taken = args.login_password_stdin;
    match args.command {
        AdminCommand::User(cmd) => match cmd {
            UserCommand::Add {
                name,
                email,
                system_admin,
                password_stdin,
            } => {
                let password = new_password(password_stdin, stdin_taken)?;
                let user = backend
                    .add_user(name, password, email, system_admin)
                    .await?;
                print_users(std::slice::from_ref(&user), json, false)
            }
            UserCommand::List => {
                let users = backend.list_users().await?;
                print_users(&users, json, true)
            }
            UserCommand::Passwd {
                name,
                password_stdin,
            } => {
                let password = new_password(password_stdin, stdin_taken)?;
                let changes = UserChanges {
                    password: Some(password),
                    ..UserChanges::default()
                };
                let user = backend.update_user(&name, changes).await?;
                if json {
                    print_json(&user)
                } else {
                    println!("password of user {name} changed");
                    Ok(())
                }
            }
            UserCommand::Disable { name } => set_disabled(&backend, &name, true, json).await,
            UserCommand::Enable { name } => set_disabled(&backend, &name, false, json).await,
        },
        AdminCommand::Project(cmd) => match cmd {
            ProjectCommand::Create { name, visibility } => {
                let project = backend.create_project(&name, visibility).await?;
                print_projects(std::slice::from_ref(&project), json, false)
            }
            ProjectCommand::List => {
                let projects = backend.list_projects().await?;
                print_projects(&projects, json, true)
            }
        },
        AdminCommand::Robot(RobotCommand::Create {
            name,
            project,
            permissions,
            description,
            expires_in_secs,
        }) => {
            let permissions = permissions
                .iter()
                .map(|p| parse_permission(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let req = NewRobotRequest {
                name,
                description,
                permissions,
                expires_in_secs,
            };
            let robot = backend.create_robot(project.as_deref(), req).await?;
            print_created_robot(&robot, json)
        }
        AdminCommand::Trust(cmd) => trust_command(&backend, cmd, json, stdin_taken).await,
        AdminCommand::Key(KeyCommand::Rotate) => {
            let Backend::Local(local) = &backend else {
                bail!(
                    "`admin key rotate` works offline only: stop the server and run it without --url"
                );
            };
            let kid = local
                .auth
                .rotate_signing_key()
                .await
                .context("rotating the signing key")?;
            if json {
                print_json(&json!({ "kid": kid }))
            } else {
                println!("new signing key {kid} is active");
                Ok(())
            }
        }
    }
}

async fn trust_command(
    backend: &Backend,
    cmd: TrustCommand,
    json: bool,
    stdin_taken: bool,
) -> anyhow::Result<()> {
    match cmd {
        TrustCommand::Set { project, file } => {
            let text = if file.as_os_str() == "-" {
                if stdin_taken {
                    bail!("standard input already carries the login password");
                }
                let mut s = String::new();
                std::io::stdin()
                    .take(bulwark_trust::policy::MAX_POLICY_BYTES as u64 + 1)
                    .read_to_string(&mut s)
                    .context("reading the policy from standard input")?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let doc: Value = serde_json::from_str(&text).context("the policy is not JSON")?;
            let stored = backend.set_trust_policy(&project, doc).await?;
            if json {
                print_json(&stored)
            } else {
                println!(
                    "trust policy of project {project} set (version {})",
                    text_of(&stored["version"])
                );
                Ok(())
            }
        }
        TrustCommand::Show { project } => {
            let stored = backend.trust_policy(&project).await?;
            if json {
                print_json(&stored)
            } else {
                println!(
                    "project {project}, version {}, updated {} by {}",
                    text_of(&stored["version"]),
                    time(&stored["updated_at"]),
                    text_of(&stored["updated_by"])
                );
                println!("{}", serde_json::to_string_pretty(&stored["policy"])?);
                Ok(())
            }
        }
        TrustCommand::Unset { project } => {
            backend.delete_trust_policy(&project).await?;
            if json {
                print_json(&json!({ "project": project, "removed": true }))
            } else {
                println!("trust policy of project {project} removed");
                Ok(())
            }
        }
        TrustCommand::Decisions { project, limit } => {
            let rows = backend.trust_decisions(&project, limit).await?;
            if json {
                return print_json(&Value::Array(rows));
            }
            let rows = rows
                .iter()
                .map(|r| {
                    vec![
                        time(&r["last_at"]),
                        text_of(&r["decision"]),
                        text_of(&r["count"]),
                        text_of(&r["subject"]),
                        text_of(&r["repository"]),
                        text_of(&r["digest"]),
                        text_of(&r["reason"]),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "LAST",
                        "DECISION",
                        "COUNT",
                        "WHO",
                        "REPOSITORY",
                        "DIGEST",
                        "REASON"
                    ],
                    rows
                )
            );
            Ok(())
        }
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

async fn set_disabled(
    backend: &Backend,
    name: &str,
    disabled: bool,
    json: bool,
) -> anyhow::Result<()> {
    let changes = UserChanges {
        disabled: Some(disabled),
        ..UserChanges::default()
    };
    let user = backend.update_user(name, changes).await?;
    if json {
        print_json(&user)
    } else {
        let state = if disabled { "disabled" } else { "enabled" };
        println!("user {name} {state}");
        Ok(())
    }
}

// ---- input ----

/// `PATTERN=ACTIONS` (actions separated by commas).
fn parse_permission(s: &str) -> anyhow::Result<PermissionSpec> {
    let (pattern, actions) = s.rsplit_once('=').ok_or_else(|| {
        anyhow!("--permission {s:?}: expected PATTERN=ACTIONS, e.g. 'team-a/*=pull,push'")
    })?;
    Ok(PermissionSpec {
        pattern: pattern.to_owned(),
        actions: actions
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

fn env_secret(name: &str) -> anyhow::Result<Option<Secret>> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(Secret::new(v))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{name} is not UTF-8"),
    }
}

/// A secret from standard input: everything up to EOF, without one trailing line break.
fn read_stdin_secret(what: &str) -> anyhow::Result<Secret> {
    let mut raw = String::new();
    std::io::stdin()
        .take(MAX_STDIN_SECRET)
        .read_to_string(&mut raw)
        .with_context(|| format!("reading the {what} from standard input"))?;
    let trimmed = raw
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&raw);
    if trimmed.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(Secret::new(trimmed))
}

fn new_password(from_stdin: bool, stdin_taken: bool) -> anyhow::Result<Secret> {
    if from_stdin {
        if stdin_taken {
            bail!(
                "standard input already carries the login password: give the new password in \
                 {NEW_PASSWORD_ENV}, or the login password in {LOGIN_PASSWORD_ENV}"
            );
        }
        return read_stdin_secret("new password");
    }
    env_secret(NEW_PASSWORD_ENV)?.ok_or_else(|| {
        anyhow!("give the new password on standard input with --password-stdin, or in {NEW_PASSWORD_ENV}")
    })
}

// ---- the two backends ----

enum Backend {
    Local(Box<Local>),
    Remote(Remote),
}

impl Backend {
    async fn add_user(
        &self,
        name: String,
        password: Secret,
        email: Option<String>,
        system_admin: bool,
    ) -> anyhow::Result<Value> {
        match self {
            Backend::Local(l) => {
                let req = NewUserRequest {
                    name,
                    password,
                    email,
                    system_admin,
                };
                Ok(user_json(&l.auth.create_user(&l.caller, req).await?))
            }
            Backend::Remote(r) => {
                let body = json!({
                    "name": name,
                    "password": password.expose(),
                    "email": email,
                    "system_admin": system_admin,
                });
                r.call(reqwest::Method::POST, "/users", Some(body)).await
            }
        }
    }

    async fn list_users(&self) -> anyhow::Result<Vec<Value>> {
        match self {
            Backend::Local(l) => Ok(l
                .auth
                .list_users(&l.caller)
                .await?
                .iter()
                .map(user_json)
                .collect()),
            Backend::Remote(r) => list(r.call(reqwest::Method::GET, "/users", None).await?),
        }
    }

    async fn update_user(&self, name: &str, changes: UserChanges) -> anyhow::Result<Value> {
        match self {
            Backend::Local(l) => Ok(user_json(
                &l.auth.update_user(&l.caller, name, changes).await?,
            )),
            Backend::Remote(r) => {
                let mut body = serde_json::Map::new();
                if let Some(p) = &changes.password {
                    body.insert("password".into(), p.expose().into());
                }
                if let Some(d) = changes.disabled {
                    body.insert("disabled".into(), d.into());
                }
                let path = format!("/users/{}", segment(name));
                r.call(reqwest::Method::PATCH, &path, Some(Value::Object(body)))
                    .await
            }
        }
    }

    async fn create_project(&self, name: &str, visibility: VisibilityArg) -> anyhow::Result<Value> {
        match self {
            Backend::Local(l) => Ok(project_json(
                &l.auth
                    .create_project(&l.caller, name, visibility.into())
                    .await?,
            )),
            Backend::Remote(r) => {
                let body = json!({ "name": name, "visibility": visibility.as_str() });
                r.call(reqwest::Method::POST, "/projects", Some(body)).await
            }
        }
    }

    async fn set_trust_policy(&self, project: &str, doc: Value) -> anyhow::Result<Value> {
        match self {
            Backend::Local(l) => {
                l.auth.manage_project_policies(&l.caller, project).await?;
                let policy = bulwark_trust::policy::TrustPolicy::from_json(
                    project,
                    &serde_json::to_vec(&doc)?,
                )
                .context("invalid trust policy")?;
                let now = l.auth.now();
                let version = l
                    .trust
                    .put_trust_policy(project, &policy.to_json()?, l.caller.subject(), now)
                    .await?;
                Ok(json!({
                    "project": project,
                    "version": version,
                    "updated_at": now,
                    "updated_by": l.caller.subject(),
                    "policy": serde_json::to_value(&policy)?,
                }))
            }
            Backend::Remote(r) => {
                let path = format!("/projects/{}/trust-policy", segment(project));
                r.call(reqwest::Method::PUT, &path, Some(doc)).await
            }
        }
    }

    async fn trust_policy(&self, project: &str) -> anyhow::Result<Value> {
        match self {
            Backend::Local(l) => {
                l.auth.get_project(&l.caller, project).await?;
                let stored = l
                    .trust
                    .trust_policy(project)
                    .await?
                    .ok_or_else(|| anyhow!("project {project} has no trust policy"))?;
                Ok(json!({
                    "project": project,
                    "version": stored.version,
                    "updated_at": stored.updated_at,
                    "updated_by": stored.updated_by,
                    "policy": serde_json::from_str::<Value>(&stored.document)?,
                }))
            }
            Backend::Remote(r) => {
                let path = format!("/projects/{}/trust-policy", segment(project));
                r.call(reqwest::Method::GET, &path, None).await
            }
        }
    }

    async fn delete_trust_policy(&self, project: &str) -> anyhow::Result<()> {
        match self {
            Backend::Local(l) => {
                l.auth.manage_project_policies(&l.caller, project).await?;
                if !l.trust.delete_trust_policy(project).await? {
                    bail!("project {project} has no trust policy");
                }
                Ok(())
            }
            Backend::Remote(r) => {
                let path = format!("/projects/{}/trust-policy", segment(project));
                r.call(reqwest::Method::DELETE, &path, None).await?;
                Ok(())
            }
        }
    }

    async fn trust_decisions(&self, project: &str, limit: u32) -> anyhow::Result<Vec<Value>> {
        match self {
            Backend::Local(l) => {
                l.auth.manage_project_policies(&l.caller, project).await?;
                let rows = l.trust.trust_decisions(project, limit).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| {
                        json!({
                            "repository": r.repository,
                            "digest": r.digest,
                            "subject": r.subject,
                            "decision": r.decision,
                            "reason": r.reason,
                            "count": r.count,
                            "first_at": r.first_at,
                            "last_at": r.last_at,
                        })
                    })
                    .collect())
            }
            Backend::Remote(r) => {
                let path = format!(
                    "/projects/{}/trust-decisions?limit={limit}",
                    segment(project)
                );
                list(r.call(reqwest::Method::GET, &path, None).await?)
            }
        }
    }

    async fn list_projects(&self) -> anyhow::Result<Vec<Value>> {
        match self {
            Backend::Local(l) => Ok(l
                .auth
                .list_projects(&l.caller)
                .await?
                .iter()
                .map(project_json)
                .collect()),
            Backend::Remote(r) => list(r.call(reqwest::Method::GET, "/projects", None).await?),
        }
    }

    async fn create_robot(
        &self,
        project: Option<&str>,
        req: NewRobotRequest,
    ) -> anyhow::Result<Value> {
        match self {
            Backend::Local(l) => {
                let created = l.auth.create_robot(&l.caller, project, req).await?;
                Ok(robot_json(&created.robot, Some(&created.secret)))
            }
            Backend::Remote(r) => {
                let permissions: Vec<Value> = req
                    .permissions
                    .iter()
                    .map(|p| json!({ "pattern": p.pattern, "actions": p.actions }))
                    .collect();
                let body = json!({
                    "name": req.name,
                    "description": req.description,
                    "permissions": permissions,
                    "expires_in_secs": req.expires_in_secs,
                });
                let path = match project {
                    Some(p) => format!("/projects/{}/robots", segment(p)),
                    None => "/robots".to_owned(),
                };
                r.call(reqwest::Method::POST, &path, Some(body)).await
            }
        }
    }
}

/// The data directory, locked, and the admin to act as.
struct Local {
    auth: Arc<AuthService>,
    trust: Arc<dyn bulwark_trust::enforce::PolicyStore>,
    caller: Caller,
    _lock: std::fs::File,
}

impl Local {
    async fn open(config: &Config) -> anyhow::Result<Local> {
        let lock = crate::lock_data_dir(config)
            .context("the data directory is in use: manage a running server with --url instead")?;
        // The metadata database the server uses: SQLite in the data directory, or the one
        // `database.url` names.
        let meta = crate::backends::open_metadata(config).await?;
        let auth = crate::open_auth(config, meta.auth).await?;
        let users = auth
            .store()
            .list_users()
            .await
            .context("reading the users")?;
        let admin = users
            .iter()
            .find(|u| u.name == BOOTSTRAP_ADMIN && u.system_admin && !u.disabled)
            .or_else(|| users.iter().find(|u| u.system_admin && !u.disabled))
            .ok_or_else(|| anyhow!("the data directory has no enabled system admin"))?;
        let caller = Caller {
            principal: Principal::User {
                id: admin.id,
                name: admin.name.clone(),
                system_admin: true,
            },
            credential: Credential::Password,
            restrict: Vec::new(),
            claims: None,
        };
        Ok(Local {
            auth,
            trust: meta.trust,
            caller,
            _lock: lock,
        })
    }
}

/// A running server's `/api/v1`.
struct Remote {
    client: reqwest::Client,
    base: String,
    username: String,
    password: Secret,
}

impl Remote {
    fn new(url: &str, username: String, password: Secret) -> anyhow::Result<Remote> {
        let base = url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--url must start with http:// or https://");
        }
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?;
        Ok(Remote {
            client,
            base: base.to_owned(),
            username,
            password,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req = self
            .client
            .request(method.clone(), &url)
            .basic_auth(&self.username, Some(self.password.expose()));
        if let Some(body) = &body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("reading the answer to {method} {url}"))?;
        if !status.is_success() {
            bail!("{method} {url}: {status}: {}", error_message(&bytes));
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{method} {url}: the answer is not JSON"))
    }
}

/// The messages of an OCI error body, or the body itself.
fn error_message(body: &[u8]) -> String {
    let messages: Vec<String> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v["errors"].as_array().map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["message"].as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    if messages.is_empty() {
        String::from_utf8_lossy(body).chars().take(300).collect()
    } else {
        messages.join("; ")
    }
}

fn list(v: Value) -> anyhow::Result<Vec<Value>> {
    match v {
        Value::Array(items) => Ok(items),
        _ => bail!("expected a JSON array from the server"),
    }
}

/// Percent-encode a path segment.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---- JSON in the API's shapes ----

fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "email": u.email,
        "system_admin": u.system_admin,
        "disabled": u.disabled,
        "created_at": u.created_at,
    })
}

fn project_json(p: &Project) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "visibility": match p.visibility {
            Visibility::Public => "public",
            Visibility::Private => "private",
        },
        "created_at": p.created_at,
    })
}

fn robot_json(r: &Robot, secret: Option<&Secret>) -> Value {
    let permissions: Vec<Value> = r
        .permissions
        .iter()
        .map(|p| {
            let actions: Vec<&str> = p.actions.iter().map(|a| a.as_str()).collect();
            json!({ "pattern": p.pattern.as_str(), "actions": actions })
        })
        .collect();
    let mut v = json!({
        "id": r.id,
        "name": r.name,
        "project": r.project,
        "description": r.description,
        "permissions": permissions,
        "expires_at": r.expires_at,
        "disabled": r.disabled,
        "created_at": r.created_at,
    });
    if let Some(s) = secret {
        v["secret"] = s.expose().into();
    }
    v
}

// ---- output ----

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_users(users: &[Value], json: bool, as_list: bool) -> anyhow::Result<()> {
    if json {
        return match (as_list, users.first()) {
            (false, Some(u)) => print_json(u),
            _ => print_json(&Value::Array(users.to_vec())),
        };
    }
    let rows = users
        .iter()
        .map(|u| {
            vec![
                text(&u["name"]),
                text(&u["email"]),
                yes_no(&u["system_admin"]),
                yes_no(&u["disabled"]),
                time(&u["created_at"]),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["NAME", "EMAIL", "ADMIN", "DISABLED", "CREATED"], rows)
    );
    Ok(())
}

fn print_projects(projects: &[Value], json: bool, as_list: bool) -> anyhow::Result<()> {
    if json {
        return match (as_list, projects.first()) {
            (false, Some(p)) => print_json(p),
            _ => print_json(&Value::Array(projects.to_vec())),
        };
    }
    let rows = projects
        .iter()
        .map(|p| {
            vec![
                text(&p["name"]),
                text(&p["visibility"]),
                time(&p["created_at"]),
            ]
        })
        .collect();
    print!("{}", table(&["NAME", "VISIBILITY", "CREATED"], rows));
    Ok(())
}

fn print_created_robot(robot: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(robot);
    }
    let permissions: Vec<String> = robot["permissions"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let actions: Vec<&str> = p["actions"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    format!("{}={}", text(&p["pattern"]), actions.join(","))
                })
                .collect()
        })
        .unwrap_or_default();
    println!("name:        {}", text(&robot["name"]));
    println!("project:     {}", text(&robot["project"]));
    println!("permissions: {}", permissions.join(" "));
    println!("expires:     {}", time(&robot["expires_at"]));
    println!("secret:      {}", text(&robot["secret"]));
    println!("(the secret is shown only this once; it is not stored)");
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn yes_no(v: &Value) -> String {
    match v.as_bool() {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "-".into(),
    }
}

fn time(v: &Value) -> String {
    v.as_i64().map_or_else(|| "-".into(), utc)
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SSZ` (UTC).
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(headers.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20Z");
        assert_eq!(utc(-1), "1969-12-31 23:59:59Z");
    }

    #[test]
    fn permissions_and_segments() {
        let p = parse_permission("team-a/*=pull, push").unwrap();
        assert_eq!(p.pattern, "team-a/*");
        assert_eq!(p.actions, vec!["pull", "push"]);
        assert!(parse_permission("team-a/*").is_err());
        assert_eq!(segment("a b/c$"), "a%20b%2Fc%24");
        assert_eq!(segment("team-a.x_y"), "team-a.x_y");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["NAME", "X"],
            vec![
                vec!["alice".into(), "1".into()],
                vec!["b".into(), "22".into()],
            ],
        );
        assert_eq!(t, "NAME   X\nalice  1\nb      22\n");
    }
}
