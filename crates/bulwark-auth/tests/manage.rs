//! The permission logic of the management operations ([`bulwark_auth::manage`]), against the
//! real SQLite store in a temporary directory and a fixed clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bulwark_auth::Secret;
use bulwark_auth::manage::{
    MemberRef, NewRobotRequest, NewTokenRequest, NewUserRequest, PermissionSpec, UserChanges,
};
use bulwark_auth::policy::{Role, Visibility};
use bulwark_auth::scope::Action;
use bulwark_auth::service::{
    AuthConfig, AuthError, AuthService, Caller, Credential, ProjectCreation,
};
use bulwark_auth::store::Member;
use bulwark_core::Clock;
use bulwark_meta::SqliteStore;
use bulwark_oci::RepoName;

const ADMIN_PW: &str = "admin-password";
const PW: &str = "user-password";
const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Env {
    auth: AuthService,
    clock: Arc<TestClock>,
    admin: Caller,
    _dir: tempfile::TempDir,
}

async fn env_with(creation: ProjectCreation) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("meta.db"))
            .await
            .unwrap(),
    );
    let clock = Arc::new(TestClock(AtomicI64::new(1_700_000_000)));
    let auth = AuthService::new(
        store,
        clock.clone(),
        AuthConfig {
            project_creation: creation,
            ..AuthConfig::default()
        },
    )
    .await
    .unwrap();
    auth.bootstrap(Some(Secret::new(ADMIN_PW))).await.unwrap();
    let admin = auth.login("admin", ADMIN_PW, IP).await.unwrap();
    Env {
        auth,
        clock,
        admin,
        _dir: dir,
    }
}

async fn env() -> Env {
    env_with(ProjectCreation::Users).await
}

impl Env {
    async fn user(&self, name: &str) -> Caller {
        self.auth
            .create_user(
                &self.admin,
                NewUserRequest {
                    name: name.into(),
                    password: Secret::new(PW),
                    email: None,
                    system_admin: false,
                },
            )
            .await
            .unwrap();
        self.auth.login(name, PW, IP).await.unwrap()
    }

    async fn project(&self, name: &str, visibility: Visibility) {
        self.auth
            .create_project(&self.admin, name, visibility)
            .await
            .unwrap();
    }
}

fn spec(pattern: &str, actions: &[&str]) -> PermissionSpec {
    PermissionSpec {
        pattern: pattern.into(),
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn robot_req(name: &str, pattern: &str) -> NewRobotRequest {
    NewRobotRequest {
        name: name.into(),
        description: Some("CI".into()),
        permissions: vec![spec(pattern, &["pull", "push"])],
        expires_in_secs: None,
    }
}

#[track_caller]
fn assert_denied<T: std::fmt::Debug>(r: Result<T, AuthError>) {
    match r {
        Err(AuthError::Denied(_)) => {}
        other => panic!("expected Denied, got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T, AuthError>) {
    match r {
        Err(AuthError::Invalid(_)) => {}
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: Result<T, AuthError>) {
    match r {
        Err(AuthError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T, AuthError>) {
    match r {
        Err(AuthError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

fn repo(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

#[tokio::test]
async fn users_are_managed_by_system_admins() {
    let e = env().await;
    let alice = e.user("alice").await;
    let req = |name: &str, pw: &str| NewUserRequest {
        name: name.into(),
        password: Secret::new(pw),
        email: Some("x@example.com".into()),
        system_admin: false,
    };

    assert_denied(e.auth.create_user(&alice, req("bob", PW)).await);
    assert_denied(e.auth.list_users(&alice).await);
    assert_denied(
        e.auth
            .create_user(&Caller::anonymous(), req("bob", PW))
            .await,
    );
    assert_invalid(e.auth.create_user(&e.admin, req("Bob", PW)).await);
    assert_invalid(e.auth.create_user(&e.admin, req("robot$x", PW)).await);
    assert_invalid(e.auth.create_user(&e.admin, req("bob", "short")).await);
    assert_conflict(e.auth.create_user(&e.admin, req("alice", PW)).await);
    let bob = e.auth.create_user(&e.admin, req("bob", PW)).await.unwrap();
    assert_eq!(bob.email.as_deref(), Some("x@example.com"));
    let names: Vec<String> = e
        .auth
        .list_users(&e.admin)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["admin", "alice", "bob"]);

    // Reading: oneself or an admin.
    assert_eq!(
        e.auth.get_user(&alice, "alice").await.unwrap().name,
        "alice"
    );
    assert_denied(e.auth.get_user(&alice, "bob").await);
    assert_not_found(e.auth.get_user(&e.admin, "nobody").await);
    // A non-admin gets Denied for an unknown user too (permission first).
    assert_denied(e.auth.get_user(&alice, "nobody").await);

    // A user changes only their own password.
    let pw = |p: &str| UserChanges {
        password: Some(Secret::new(p)),
        ..UserChanges::default()
    };
    e.auth
        .update_user(&alice, "alice", pw("new-password"))
        .await
        .unwrap();
    assert!(e.auth.login("alice", PW, IP).await.is_err());
    let alice = e.auth.login("alice", "new-password", IP).await.unwrap();
    assert_denied(e.auth.update_user(&alice, "bob", pw("new-password")).await);
    let promote = UserChanges {
        system_admin: Some(true),
        ..UserChanges::default()
    };
    assert_denied(e.auth.update_user(&alice, "alice", promote.clone()).await);
    assert_invalid(e.auth.update_user(&alice, "alice", pw("short")).await);

    // Admins change anything; disabling stops logins.
    let disable = UserChanges {
        disabled: Some(true),
        ..UserChanges::default()
    };
    let changed = e.auth.update_user(&e.admin, "bob", disable).await.unwrap();
    assert!(changed.disabled);
    let email = |m: &str| UserChanges {
        email: Some(m.into()),
        ..UserChanges::default()
    };
    let changed = e
        .auth
        .update_user(&e.admin, "bob", email("bob@example.test"))
        .await
        .unwrap();
    assert_eq!(changed.email.as_deref(), Some("bob@example.test"));
    assert_denied(
        e.auth
            .update_user(&alice, "alice", email("a@example.test"))
            .await,
    );
    assert_invalid(
        e.auth
            .update_user(&e.admin, "bob", email("not an address"))
            .await,
    );
    assert!(e.auth.login("bob", PW, IP).await.is_err());
    assert_not_found(e.auth.update_user(&e.admin, "nobody", pw(PW)).await);
    assert_denied(e.auth.delete_user(&alice, "bob").await);
    e.auth.delete_user(&e.admin, "bob").await.unwrap();
    assert_not_found(e.auth.delete_user(&e.admin, "bob").await);
}

#[tokio::test]
async fn the_last_system_admin_cannot_be_removed() {
    let e = env().await;
    let demote = UserChanges {
        system_admin: Some(false),
        ..UserChanges::default()
    };
    let disable = UserChanges {
        disabled: Some(true),
        ..UserChanges::default()
    };
    assert_conflict(e.auth.delete_user(&e.admin, "admin").await);
    assert_conflict(e.auth.update_user(&e.admin, "admin", demote.clone()).await);
    assert_conflict(e.auth.update_user(&e.admin, "admin", disable).await);

    // With a second admin, the first may go.
    e.auth
        .create_user(
            &e.admin,
            NewUserRequest {
                name: "root".into(),
                password: Secret::new(PW),
                email: None,
                system_admin: true,
            },
        )
        .await
        .unwrap();
    e.auth.update_user(&e.admin, "admin", demote).await.unwrap();
    let root = e.auth.login("root", PW, IP).await.unwrap();
    assert_conflict(e.auth.delete_user(&root, "root").await);
    e.auth.delete_user(&root, "admin").await.unwrap();
}

#[tokio::test]
async fn tokens_and_robots_do_not_manage() {
    let e = env().await;
    e.project("team-a", Visibility::Private).await;
    let alice = e.user("alice").await;

    // An unrestricted personal token of the system admin.
    let created = e
        .auth
        .create_token(
            &e.admin,
            "admin",
            NewTokenRequest {
                name: "laptop".into(),
                ..NewTokenRequest::default()
            },
        )
        .await
        .unwrap();
    let by_token = e
        .auth
        .login("admin", created.secret.expose(), IP)
        .await
        .unwrap();
    assert!(matches!(by_token.credential, Credential::PersonalToken(_)));
    assert_denied(e.auth.list_users(&by_token).await);
    assert_denied(e.auth.create_team(&by_token, "t").await);
    assert_denied(
        e.auth
            .create_project(&by_token, "team-b", Visibility::Private)
            .await,
    );
    assert_denied(
        e.auth
            .set_member(
                &by_token,
                "team-a",
                &MemberRef::User("alice".into()),
                Role::Admin,
            )
            .await,
    );
    assert_denied(
        e.auth
            .create_robot(&by_token, None, robot_req("x", "**"))
            .await,
    );
    assert_denied(e.auth.list_tokens(&by_token, "alice").await);
    // ... but it manages its owner's own tokens and password.
    assert_eq!(
        e.auth.list_tokens(&by_token, "admin").await.unwrap().len(),
        1
    );
    e.auth
        .create_token(
            &by_token,
            "admin",
            NewTokenRequest {
                name: "second".into(),
                ..NewTokenRequest::default()
            },
        )
        .await
        .unwrap();
    e.auth
        .update_user(
            &by_token,
            "admin",
            UserChanges {
                password: Some(Secret::new("another-password")),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();

    // A restricted token manages nothing, not even its owner's tokens.
    let restricted = e
        .auth
        .create_token(
            &alice,
            "alice",
            NewTokenRequest {
                name: "ci".into(),
                permissions: vec![spec("team-a/*", &["pull"])],
                expires_in_secs: Some(3600),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        restricted.token.expires_at,
        Some(e.clock.now() + 3600),
        "expiry from the clock"
    );
    let by_restricted = e
        .auth
        .login("alice", restricted.secret.expose(), IP)
        .await
        .unwrap();
    assert_denied(e.auth.list_tokens(&by_restricted, "alice").await);
    assert_denied(
        e.auth
            .update_user(
                &by_restricted,
                "alice",
                UserChanges {
                    password: Some(Secret::new("another-password")),
                    ..UserChanges::default()
                },
            )
            .await,
    );

    // Robots manage nothing, not even in their own project.
    let robot = e
        .auth
        .create_robot(&e.admin, Some("team-a"), robot_req("ci", "team-a/**"))
        .await
        .unwrap();
    let by_robot = e
        .auth
        .login(&robot.robot.name, robot.secret.expose(), IP)
        .await
        .unwrap();
    assert_denied(e.auth.list_robots(&by_robot, Some("team-a")).await);
    assert_denied(
        e.auth
            .set_project_visibility(&by_robot, "team-a", Visibility::Public)
            .await,
    );
    assert_denied(
        e.auth
            .create_project(&by_robot, "team-r", Visibility::Public)
            .await,
    );
    // It sees its own project.
    let seen: Vec<String> = e
        .auth
        .list_projects(&by_robot)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(seen, ["team-a"]);
    // Anonymous manages and lists nothing.
    assert_denied(e.auth.list_projects(&Caller::anonymous()).await);
}

#[tokio::test]
async fn project_creation_follows_the_configuration() {
    let e = env_with(ProjectCreation::Admins).await;
    let alice = e.user("alice").await;
    assert!(!e.auth.may_create_projects(&alice));
    assert_denied(
        e.auth
            .create_project(&alice, "team-a", Visibility::Private)
            .await,
    );
    e.auth
        .create_project(&e.admin, "team-a", Visibility::Private)
        .await
        .unwrap();

    let e = env_with(ProjectCreation::Users).await;
    let alice = e.user("alice").await;
    let bob = e.user("bob").await;
    assert_invalid(
        e.auth
            .create_project(&alice, "Team-A", Visibility::Private)
            .await,
    );
    assert_invalid(
        e.auth
            .create_project(&alice, "a/b", Visibility::Private)
            .await,
    );
    assert_invalid(
        e.auth
            .create_project(&alice, "a-", Visibility::Private)
            .await,
    );
    let p = e
        .auth
        .create_project(&alice, "team-a", Visibility::Private)
        .await
        .unwrap();
    assert_eq!(p.visibility, Visibility::Private);
    assert_conflict(
        e.auth
            .create_project(&bob, "team-a", Visibility::Public)
            .await,
    );
    // The creator is the project's admin.
    let members = e.auth.list_members(&alice, "team-a").await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].name, "alice");
    assert_eq!(members[0].role, Role::Admin);
    assert!(
        e.auth
            .authorize(&alice, &repo("team-a/app"), &[Action::Push])
            .await
            .is_ok()
    );
    // Others do not see the private project.
    assert_denied(e.auth.get_project(&bob, "team-a").await);
    assert_denied(e.auth.list_members(&bob, "team-a").await);
    assert!(e.auth.list_projects(&bob).await.unwrap().is_empty());
    assert_eq!(e.auth.list_projects(&alice).await.unwrap().len(), 1);
    assert_eq!(e.auth.list_projects(&e.admin).await.unwrap().len(), 1);
    // Until it is public.
    assert_denied(
        e.auth
            .set_project_visibility(&bob, "team-a", Visibility::Public)
            .await,
    );
    e.auth
        .set_project_visibility(&alice, "team-a", Visibility::Public)
        .await
        .unwrap();
    assert_eq!(
        e.auth.get_project(&bob, "team-a").await.unwrap().visibility,
        Visibility::Public
    );
    assert_eq!(e.auth.list_projects(&bob).await.unwrap().len(), 1);

    // Deleting is for system admins only; unknown projects are not found for them.
    assert_denied(e.auth.delete_project(&alice, "team-a").await);
    assert_not_found(e.auth.get_project(&e.admin, "nope").await);
    assert_not_found(
        e.auth
            .set_project_visibility(&e.admin, "nope", Visibility::Public)
            .await,
    );
    // ... and refused, not revealed, for everyone else.
    assert_denied(
        e.auth
            .set_project_visibility(&alice, "nope", Visibility::Public)
            .await,
    );
    e.auth.delete_project(&e.admin, "team-a").await.unwrap();
    assert_not_found(e.auth.delete_project(&e.admin, "team-a").await);
}

#[tokio::test]
async fn members_and_rules_need_project_admin() {
    let e = env().await;
    e.project("team-a", Visibility::Private).await;
    let alice = e.user("alice").await;
    let bob = e.user("bob").await;
    e.auth.create_team(&e.admin, "devs").await.unwrap();
    e.auth
        .add_team_member(&e.admin, "devs", "bob")
        .await
        .unwrap();

    let alice_ref = MemberRef::User("alice".into());
    let devs = MemberRef::Team("devs".into());
    assert_denied(
        e.auth
            .set_member(&alice, "team-a", &alice_ref, Role::Admin)
            .await,
    );
    e.auth
        .set_member(&e.admin, "team-a", &alice_ref, Role::Admin)
        .await
        .unwrap();
    // Alice now administers the project.
    e.auth
        .set_member(&alice, "team-a", &devs, Role::Developer)
        .await
        .unwrap();
    assert_not_found(
        e.auth
            .set_member(
                &alice,
                "team-a",
                &MemberRef::User("nobody".into()),
                Role::Reader,
            )
            .await,
    );
    // Bob (developer through the team) sees the members but cannot change them.
    let members = e.auth.list_members(&bob, "team-a").await.unwrap();
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(
        members
            .iter()
            .any(|m| matches!(m.member, Member::Team(_)) && m.name == "devs")
    );
    assert_denied(e.auth.set_member(&bob, "team-a", &devs, Role::Admin).await);
    assert_denied(e.auth.remove_member(&bob, "team-a", &alice_ref).await);

    // Rules stay inside the project.
    assert_denied(
        e.auth
            .add_repo_rule(&bob, "team-a", "team-a/prod/*", &devs, Role::Maintainer)
            .await,
    );
    assert_invalid(
        e.auth
            .add_repo_rule(&alice, "team-a", "team-b/*", &devs, Role::Maintainer)
            .await,
    );
    assert_invalid(
        e.auth
            .add_repo_rule(&alice, "team-a", "**", &devs, Role::Maintainer)
            .await,
    );
    assert_invalid(
        e.auth
            .add_repo_rule(&alice, "team-a", "team-a/[x]", &devs, Role::Maintainer)
            .await,
    );
    let rule = e
        .auth
        .add_repo_rule(&alice, "team-a", "team-a/prod/*", &devs, Role::Maintainer)
        .await
        .unwrap();
    assert_eq!(rule.member_name, "devs");
    assert!(
        e.auth
            .authorize(&bob, &repo("team-a/prod/api"), &[Action::Delete])
            .await
            .is_ok()
    );
    let rules = e.auth.list_repo_rules(&alice, "team-a").await.unwrap();
    assert_eq!(rules, vec![rule.clone()]);
    assert_denied(e.auth.list_repo_rules(&bob, "team-a").await);
    e.auth
        .delete_repo_rule(&alice, "team-a", rule.rule.id)
        .await
        .unwrap();
    assert_not_found(
        e.auth
            .delete_repo_rule(&alice, "team-a", rule.rule.id)
            .await,
    );

    // Members go.
    e.auth.remove_member(&alice, "team-a", &devs).await.unwrap();
    assert_not_found(e.auth.remove_member(&alice, "team-a", &devs).await);
    assert_denied(e.auth.list_members(&bob, "team-a").await);

    // Teams are for system admins.
    assert_denied(e.auth.create_team(&alice, "ops").await);
    assert_denied(e.auth.team_members(&alice, "devs").await);
    assert_invalid(e.auth.create_team(&e.admin, "Ops").await);
    assert_conflict(e.auth.create_team(&e.admin, "devs").await);
    assert_eq!(
        e.auth.team_members(&e.admin, "devs").await.unwrap().len(),
        1
    );
    e.auth
        .remove_team_member(&e.admin, "devs", "bob")
        .await
        .unwrap();
    assert!(
        e.auth
            .team_members(&e.admin, "devs")
            .await
            .unwrap()
            .is_empty()
    );
    e.auth.delete_team(&e.admin, "devs").await.unwrap();
    assert_not_found(e.auth.delete_team(&e.admin, "devs").await);
    assert_eq!(e.auth.list_teams(&e.admin).await.unwrap().len(), 0);
}

#[tokio::test]
async fn robots() {
    let e = env().await;
    e.project("team-a", Visibility::Private).await;
    let alice = e.user("alice").await;
    e.auth
        .set_member(
            &e.admin,
            "team-a",
            &MemberRef::User("alice".into()),
            Role::Admin,
        )
        .await
        .unwrap();
    let bob = e.user("bob").await;

    assert_denied(
        e.auth
            .create_robot(&bob, Some("team-a"), robot_req("ci", "team-a/*"))
            .await,
    );
    assert_invalid(
        e.auth
            .create_robot(&alice, Some("team-a"), robot_req("ci", "team-b/*"))
            .await,
    );
    assert_invalid(
        e.auth
            .create_robot(&alice, Some("team-a"), robot_req("CI", "team-a/*"))
            .await,
    );
    assert_invalid(
        e.auth
            .create_robot(
                &alice,
                Some("team-a"),
                NewRobotRequest {
                    name: "ci".into(),
                    ..NewRobotRequest::default()
                },
            )
            .await,
    );
    let mut no_actions = robot_req("ci", "team-a/*");
    no_actions.permissions[0].actions.clear();
    assert_invalid(
        e.auth
            .create_robot(&alice, Some("team-a"), no_actions)
            .await,
    );

    let created = e
        .auth
        .create_robot(&alice, Some("team-a"), robot_req("ci", "team-a/*"))
        .await
        .unwrap();
    assert_eq!(created.robot.name, "robot$team-a+ci");
    assert_eq!(created.robot.project.as_deref(), Some("team-a"));
    assert_eq!(created.secret.expose().len(), 43);
    assert_conflict(
        e.auth
            .create_robot(&alice, Some("team-a"), robot_req("ci", "team-a/*"))
            .await,
    );
    let robot = e
        .auth
        .login("robot$team-a+ci", created.secret.expose(), IP)
        .await
        .unwrap();
    assert!(
        e.auth
            .authorize(&robot, &repo("team-a/app"), &[Action::Push])
            .await
            .is_ok()
    );
    assert_eq!(
        e.auth
            .list_robots(&alice, Some("team-a"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_denied(e.auth.list_robots(&bob, Some("team-a")).await);
    assert!(e.auth.list_robots(&e.admin, None).await.unwrap().is_empty());

    // Disabling stops logins; enabling restores them.
    let disabled = e
        .auth
        .set_robot_disabled(&alice, Some("team-a"), "ci", true)
        .await
        .unwrap();
    assert!(disabled.disabled);
    assert!(
        e.auth
            .login("robot$team-a+ci", created.secret.expose(), IP)
            .await
            .is_err()
    );
    e.auth
        .set_robot_disabled(&alice, Some("team-a"), "ci", false)
        .await
        .unwrap();
    assert!(
        e.auth
            .login("robot$team-a+ci", created.secret.expose(), IP)
            .await
            .is_ok()
    );
    assert_not_found(
        e.auth
            .set_robot_disabled(&alice, Some("team-a"), "nope", true)
            .await,
    );
    // A new secret replaces the old one.
    let renewed = e
        .auth
        .regenerate_robot_secret(&alice, Some("team-a"), "ci")
        .await
        .unwrap();
    assert!(
        e.auth
            .login("robot$team-a+ci", created.secret.expose(), IP)
            .await
            .is_err()
    );
    assert!(
        e.auth
            .login("robot$team-a+ci", renewed.secret.expose(), IP)
            .await
            .is_ok()
    );

    // Expiry comes from the clock.
    let mut short = robot_req("short", "team-a/*");
    short.expires_in_secs = Some(60);
    let short = e
        .auth
        .create_robot(&alice, Some("team-a"), short)
        .await
        .unwrap();
    assert!(
        e.auth
            .login(&short.robot.name, short.secret.expose(), IP)
            .await
            .is_ok()
    );
    e.clock.0.fetch_add(61, Ordering::SeqCst);
    assert!(
        e.auth
            .login(&short.robot.name, short.secret.expose(), IP)
            .await
            .is_err()
    );

    // System robots: system admins only, any pattern.
    assert_denied(
        e.auth
            .create_robot(&alice, None, robot_req("sys", "**"))
            .await,
    );
    let sys = e
        .auth
        .create_robot(&e.admin, None, robot_req("sys", "**"))
        .await
        .unwrap();
    assert_eq!(sys.robot.name, "robot$sys");
    assert_eq!(e.auth.list_robots(&e.admin, None).await.unwrap().len(), 1);
    // A project robot is not reachable as a system robot and the reverse.
    assert_not_found(e.auth.delete_robot(&e.admin, None, "ci").await);
    assert_not_found(e.auth.delete_robot(&e.admin, Some("team-a"), "sys").await);

    e.auth
        .delete_robot(&alice, Some("team-a"), "ci")
        .await
        .unwrap();
    assert_not_found(e.auth.delete_robot(&alice, Some("team-a"), "ci").await);
    assert!(
        e.auth
            .login("robot$team-a+ci", renewed.secret.expose(), IP)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn personal_tokens() {
    let e = env().await;
    let alice = e.user("alice").await;
    let bob = e.user("bob").await;
    let req = |name: &str| NewTokenRequest {
        name: name.into(),
        ..NewTokenRequest::default()
    };

    assert_denied(e.auth.create_token(&bob, "alice", req("x")).await);
    assert_invalid(e.auth.create_token(&alice, "alice", req("")).await);
    let mut bad = req("x");
    bad.permissions = vec![spec("team-a/*", &["fly"])];
    assert_invalid(e.auth.create_token(&alice, "alice", bad).await);

    let created = e
        .auth
        .create_token(&alice, "alice", req("laptop"))
        .await
        .unwrap();
    assert!(created.secret.expose().starts_with("bwk_"));
    assert!(created.secret.expose().contains(&created.token.id));
    assert_conflict(e.auth.create_token(&alice, "alice", req("laptop")).await);
    let by_token = e
        .auth
        .login("alice", created.secret.expose(), IP)
        .await
        .unwrap();
    assert_eq!(by_token.principal.subject(), "alice");
    // An admin may create one for someone else too.
    e.auth
        .create_token(&e.admin, "bob", req("laptop"))
        .await
        .unwrap();

    let listed = e.auth.list_tokens(&alice, "alice").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_denied(e.auth.list_tokens(&bob, "alice").await);
    assert_eq!(
        e.auth.list_tokens(&e.admin, "alice").await.unwrap().len(),
        1
    );

    assert_denied(e.auth.revoke_token(&bob, "alice", &created.token.id).await);
    // Bob cannot revoke Alice's token through his own name either.
    assert_not_found(e.auth.revoke_token(&bob, "bob", &created.token.id).await);
    assert_not_found(
        e.auth
            .revoke_token(&alice, "alice", "0000000000000000")
            .await,
    );
    e.auth
        .revoke_token(&alice, "alice", &created.token.id)
        .await
        .unwrap();
    // Idempotent.
    e.auth
        .revoke_token(&alice, "alice", &created.token.id)
        .await
        .unwrap();
    assert!(
        e.auth
            .login("alice", created.secret.expose(), IP)
            .await
            .is_err()
    );
    let listed = e.auth.list_tokens(&alice, "alice").await.unwrap();
    assert!(listed[0].revoked_at.is_some());
    // The name is free again once revoked.
    e.auth
        .create_token(&alice, "alice", req("laptop"))
        .await
        .unwrap();
}
