//! Contract suite for [`AuthStore`]: users, teams, projects, members, per-repository rules,
//! robots, personal access tokens and signing keys.
//!
//! Every check is an `async fn(Arc<dyn AuthStore>)` that starts from an empty store and uses
//! explicit timestamps, so the same checks run against both implementations. The SQLite store
//! is opened on a file in a temporary directory, one fresh database per check.
//!
//! The PostgreSQL store runs the same checks, each in a database of its own created on the
//! server named by `BULWARK_TEST_POSTGRES_URL` (a user allowed to create databases, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`) and dropped afterwards, so they run in
//! parallel. Without that variable the PostgreSQL tests say they are skipped and pass, unless
//! `BULWARK_REQUIRE_POSTGRES=1` makes them fail (scripts/test.sh starts a server and sets both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::with_postgres_database;
use std::future::Future;
use std::sync::Arc;

use bulwark_auth::SecretHash;
use bulwark_auth::policy::{Grants, RepoPattern, RepoRule, RobotPermission, Role, Visibility};
use bulwark_auth::scope::Action;
use bulwark_auth::store::{
    AuthStore, Member, Membership, NewPersonalToken, NewRobot, NewUser, PersonalToken, Robot,
    StoreError, StoreResult, StoredRepoRule, StoredSigningKey, User,
};
use bulwark_core::MetadataStore;
use bulwark_meta::{PostgresStore, SqliteStore};
use bulwark_oci::RepoName;

type Store = Arc<dyn AuthStore>;

// ---- helpers ------------------------------------------------------------------------------

fn new_user(name: &str, system_admin: bool) -> NewUser {
    NewUser {
        name: name.to_owned(),
        email: Some(format!("{name}@example.com")),
        password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1$salt${name}")),
        system_admin,
        created_at: 100,
    }
}

async fn user(s: &dyn AuthStore, name: &str) -> i64 {
    s.create_user(new_user(name, false)).await.unwrap().id
}

async fn admin(s: &dyn AuthStore, name: &str) -> i64 {
    s.create_user(new_user(name, true)).await.unwrap().id
}

fn pat(s: &str) -> RepoPattern {
    RepoPattern::new(s).unwrap()
}

fn repo(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

fn perm(pattern: &str, actions: &[Action]) -> RobotPermission {
    RobotPermission {
        pattern: pat(pattern),
        actions: actions.to_vec(),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: StoreResult<T>, message: &str) {
    match r {
        Err(StoreError::Conflict(m)) => assert_eq!(m, message),
        other => panic!("expected Conflict({message:?}), got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: StoreResult<T>) {
    match r {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found_msg<T: std::fmt::Debug>(r: StoreResult<T>, what: &str) {
    match r {
        Err(e @ StoreError::NotFound(_)) => assert_eq!(e.to_string(), format!("{what} not found")),
        other => panic!("expected NotFound({what:?}), got {other:?}"),
    }
}

async fn user_names(s: &dyn AuthStore) -> Vec<String> {
    s.list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect()
}

/// Ids of the enabled system admins, ascending.
async fn enabled_admins(s: &dyn AuthStore) -> Vec<i64> {
    let mut ids: Vec<i64> = s
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.system_admin && !u.disabled)
        .map(|u| u.id)
        .collect();
    ids.sort();
    ids
}

fn new_robot(name: &str, project: Option<&str>, secret: &str) -> NewRobot {
    NewRobot {
        name: name.to_owned(),
        project: project.map(str::to_owned),
        description: Some(format!("robot {name}")),
        permissions: vec![
            perm("app/**", &[Action::Pull, Action::Push]),
            perm("app/cache", &[Action::All]),
        ],
        expires_at: Some(9_000),
        secret_hash: SecretHash::of(secret),
        created_at: 300,
    }
}

fn new_token(id: &str, user_id: i64, created_at: i64, secret: &str) -> NewPersonalToken {
    NewPersonalToken {
        id: id.to_owned(),
        user_id,
        name: format!("token {id}"),
        permissions: vec![perm("team/*", &[Action::Pull])],
        expires_at: None,
        secret_hash: SecretHash::of(secret),
        created_at,
    }
}

fn key(kid: &str, created_at: i64) -> StoredSigningKey {
    StoredSigningKey {
        kid: kid.to_owned(),
        private_pem: format!("-----BEGIN PRIVATE KEY-----\n{kid}\n-----END PRIVATE KEY-----\n"),
        created_at,
        valid_until: None,
    }
}

fn kids(keys: &[StoredSigningKey]) -> Vec<(&str, Option<i64>)> {
    keys.iter()
        .map(|k| (k.kid.as_str(), k.valid_until))
        .collect()
}

// ---- users --------------------------------------------------------------------------------

async fn check_users(s: Store) {
    assert_eq!(s.count_users().await.unwrap(), 0);
    assert!(s.list_users().await.unwrap().is_empty());
    assert!(s.user_by_name("alice").await.unwrap().is_none());
    assert!(s.user_by_id(1).await.unwrap().is_none());

    let alice = s.create_user(new_user("alice", true)).await.unwrap();
    assert_eq!(
        alice,
        User {
            id: alice.id,
            name: "alice".into(),
            email: Some("alice@example.com".into()),
            system_admin: true,
            disabled: false,
            created_at: 100,
        }
    );
    let bob = s
        .create_user(NewUser {
            name: "bob".into(),
            email: None,
            password_hash: None,
            system_admin: false,
            created_at: 200,
        })
        .await
        .unwrap();
    assert_ne!(alice.id, bob.id);

    // Names are unique, exactly: a different case is another user.
    assert_conflict(
        s.create_user(new_user("alice", false)).await,
        "user alice already exists",
    );
    let upper = s.create_user(new_user("Alice", false)).await.unwrap();
    assert_eq!(s.count_users().await.unwrap(), 3);

    let creds = s.user_by_name("alice").await.unwrap().unwrap();
    assert_eq!(creds.user, alice);
    assert_eq!(
        creds.password_hash.as_deref(),
        Some("$argon2id$v=19$m=19456,t=2,p=1$salt$alice")
    );
    let creds = s.user_by_name("bob").await.unwrap().unwrap();
    assert_eq!(creds.user, bob);
    assert_eq!(creds.password_hash, None);
    assert_eq!(
        s.user_by_name("Alice").await.unwrap().unwrap().user.id,
        upper.id
    );
    assert!(s.user_by_name("ALICE").await.unwrap().is_none());
    assert!(s.user_by_name("alice ").await.unwrap().is_none());
    assert_eq!(s.user_by_id(bob.id).await.unwrap(), Some(bob.clone()));

    // Byte order: upper case first.
    assert_eq!(user_names(&*s).await, ["Alice", "alice", "bob"]);

    s.set_password(bob.id, "$argon2id$new").await.unwrap();
    assert_eq!(
        s.user_by_name("bob")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("$argon2id$new")
    );
    // A re-hash replaces only the hash it was computed from.
    assert!(
        !s.replace_password_hash(bob.id, "$argon2id$old", "$argon2id$rehash")
            .await
            .unwrap()
    );
    assert!(
        s.replace_password_hash(bob.id, "$argon2id$new", "$argon2id$rehash")
            .await
            .unwrap()
    );
    let hash = s.user_by_name("bob").await.unwrap().unwrap().password_hash;
    assert_eq!(hash.as_deref(), Some("$argon2id$rehash"));

    s.set_user_disabled(bob.id, true).await.unwrap();
    assert!(s.user_by_id(bob.id).await.unwrap().unwrap().disabled);
    assert!(s.user_by_name("bob").await.unwrap().unwrap().user.disabled);
    s.set_user_disabled(bob.id, false).await.unwrap();
    assert!(!s.user_by_id(bob.id).await.unwrap().unwrap().disabled);

    s.set_system_admin(bob.id, true).await.unwrap();
    assert!(s.user_by_id(bob.id).await.unwrap().unwrap().system_admin);
    s.set_system_admin(bob.id, false).await.unwrap();
    assert!(!s.user_by_id(bob.id).await.unwrap().unwrap().system_admin);
    // Demoting someone who is not an admin is a no-op.
    s.set_system_admin(bob.id, false).await.unwrap();

    s.delete_user(upper.id).await.unwrap();
    assert!(s.user_by_id(upper.id).await.unwrap().is_none());
    assert!(s.user_by_name("Alice").await.unwrap().is_none());
    assert_eq!(user_names(&*s).await, ["alice", "bob"]);
    assert_eq!(s.count_users().await.unwrap(), 2);

    // Changes to a user that does not exist.
    let gone = upper.id;
    assert_not_found_msg(s.set_password(gone, "x").await, &format!("user {gone}"));
    assert_not_found(s.set_user_disabled(gone, true).await);
    assert_not_found(s.set_user_disabled(gone, false).await);
    assert_not_found(s.set_system_admin(gone, true).await);
    assert_not_found(s.set_system_admin(gone, false).await);
    assert_not_found_msg(s.delete_user(gone).await, &format!("user {gone}"));
    // The name is free again.
    s.create_user(new_user("Alice", false)).await.unwrap();
}

// ---- the last system admin ----------------------------------------------------------------

async fn check_last_admin(s: Store) {
    let alice = admin(&*s, "alice").await;
    let bob = user(&*s, "bob").await;
    const LAST: &str = "user alice is the last enabled system admin";

    assert_conflict(s.set_system_admin(alice, false).await, LAST);
    assert_conflict(s.set_user_disabled(alice, true).await, LAST);
    assert_conflict(s.delete_user(alice).await, LAST);
    let a = s.user_by_id(alice).await.unwrap().unwrap();
    assert!(
        a.system_admin && !a.disabled,
        "a refused change changed nothing"
    );

    // Other users are not held back by it.
    s.set_user_disabled(bob, true).await.unwrap();
    s.set_user_disabled(bob, false).await.unwrap();
    s.set_system_admin(bob, false).await.unwrap();

    // With a second admin the first can go, and then the second is the last.
    s.set_system_admin(bob, true).await.unwrap();
    s.set_system_admin(alice, false).await.unwrap();
    assert_eq!(enabled_admins(&*s).await, [bob]);
    assert_conflict(
        s.delete_user(bob).await,
        "user bob is the last enabled system admin",
    );

    // A disabled admin does not count.
    let carol = admin(&*s, "carol").await;
    s.set_user_disabled(carol, true).await.unwrap();
    assert_eq!(enabled_admins(&*s).await, [bob]);
    assert_conflict(
        s.set_user_disabled(bob, true).await,
        "user bob is the last enabled system admin",
    );
    // Disabling or deleting an admin who is already disabled is fine.
    s.set_user_disabled(carol, true).await.unwrap();
    s.set_system_admin(carol, false).await.unwrap();
    s.set_system_admin(carol, true).await.unwrap();

    // Enabled again, carol counts: bob may be disabled, deleted.
    s.set_user_disabled(carol, false).await.unwrap();
    s.set_user_disabled(bob, true).await.unwrap();
    assert_eq!(enabled_admins(&*s).await, [carol]);
    s.set_user_disabled(bob, false).await.unwrap();
    s.delete_user(bob).await.unwrap();
    assert_eq!(enabled_admins(&*s).await, [carol]);
    assert_conflict(
        s.set_system_admin(carol, false).await,
        "user carol is the last enabled system admin",
    );

    // Re-enabling is always allowed, and demoting a non-admin needs no other admin.
    s.set_user_disabled(alice, true).await.unwrap();
    s.set_user_disabled(alice, false).await.unwrap();
    s.delete_user(alice).await.unwrap();
    assert_eq!(user_names(&*s).await, ["carol"]);
}

/// Which way a racer removes an admin.
#[derive(Debug, Clone, Copy)]
enum Removal {
    Demote,
    Disable,
    Delete,
}

async fn remove_admin(s: &dyn AuthStore, id: i64, how: Removal) -> StoreResult<()> {
    match how {
        Removal::Demote => s.set_system_admin(id, false).await,
        Removal::Disable => s.set_user_disabled(id, true).await,
        Removal::Delete => s.delete_user(id).await,
    }
}

/// Run `op` after `delay` round trips to the store, to vary which of two racers gets ahead.
async fn after<T>(s: &dyn AuthStore, delay: usize, op: impl Future<Output = T>) -> T {
    for _ in 0..delay {
        s.count_users().await.unwrap();
    }
    op.await
}

/// Two tasks each remove one of the only two enabled admins at the same time: exactly one
/// wins, the other gets `Conflict`, and one enabled admin remains. SQLite serializes them; on
/// PostgreSQL they overlap on separate connections, and the rounds vary which starts first.
async fn check_last_admin_race(s: Store) {
    const HOW: [Removal; 3] = [Removal::Demote, Removal::Disable, Removal::Delete];
    let mut survivors: Vec<i64> = Vec::new();
    for i in 0..24 {
        let x = admin(&*s, &format!("x{i}")).await;
        let y = admin(&*s, &format!("y{i}")).await;
        for id in survivors.drain(..) {
            s.set_system_admin(id, false).await.unwrap();
        }
        assert_eq!(enabled_admins(&*s).await, [x, y], "round {i}");

        let (d1, d2) = if i % 2 == 0 {
            (i / 2 % 4, 0)
        } else {
            (0, i / 2 % 4)
        };
        let (how_x, how_y) = (HOW[i % 3], HOW[(i / 3) % 3]);
        let sx = s.clone();
        let tx = tokio::spawn(async move { after(&*sx, d1, remove_admin(&*sx, x, how_x)).await });
        let sy = s.clone();
        let ty = tokio::spawn(async move { after(&*sy, d2, remove_admin(&*sy, y, how_y)).await });
        let (rx, ry) = (tx.await.unwrap(), ty.await.unwrap());
        let survivor = match (rx, ry) {
            (Ok(()), Err(StoreError::Conflict(_))) => y,
            (Err(StoreError::Conflict(_)), Ok(())) => x,
            other => panic!("round {i} ({how_x:?} x, {how_y:?} y): {other:?}"),
        };
        assert_eq!(enabled_admins(&*s).await, [survivor], "round {i}");
        survivors.push(survivor);
    }
}

// ---- teams --------------------------------------------------------------------------------

async fn check_teams(s: Store) {
    assert!(s.list_teams().await.unwrap().is_empty());
    assert!(s.team_by_name("dev").await.unwrap().is_none());

    let dev = s.create_team("dev", 100).await.unwrap();
    assert_eq!((dev.name.as_str(), dev.created_at), ("dev", 100));
    assert_conflict(s.create_team("dev", 101).await, "team dev already exists");
    let upper = s.create_team("Dev", 102).await.unwrap();
    let ops = s.create_team("ops", 103).await.unwrap();
    assert_eq!(s.team_by_name("dev").await.unwrap(), Some(dev.clone()));
    assert_eq!(s.team_by_name("Dev").await.unwrap(), Some(upper.clone()));
    assert!(s.team_by_name("DEV").await.unwrap().is_none());
    assert_eq!(
        s.list_teams().await.unwrap(),
        [upper.clone(), dev.clone(), ops.clone()]
    );

    let zed = user(&*s, "zed").await;
    let amy = user(&*s, "amy").await;
    assert!(s.team_members(dev.id).await.unwrap().is_empty());
    s.add_team_member(dev.id, zed).await.unwrap();
    s.add_team_member(dev.id, amy).await.unwrap();
    // Idempotent.
    s.add_team_member(dev.id, zed).await.unwrap();
    s.add_team_member(ops.id, zed).await.unwrap();
    let members: Vec<String> = s
        .team_members(dev.id)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(members, ["amy", "zed"]);
    assert_eq!(
        s.team_members(dev.id).await.unwrap()[0],
        s.user_by_id(amy).await.unwrap().unwrap()
    );

    s.remove_team_member(dev.id, zed).await.unwrap();
    s.remove_team_member(dev.id, zed).await.unwrap();
    assert_eq!(s.team_members(dev.id).await.unwrap().len(), 1);
    assert_eq!(s.team_members(ops.id).await.unwrap().len(), 1);

    // Members that do not exist.
    assert_not_found_msg(s.add_team_member(dev.id, 9_999).await, "user 9999");
    assert_not_found_msg(s.add_team_member(9_999, zed).await, "team 9999");
    s.remove_team_member(9_999, zed).await.unwrap();
    assert!(s.team_members(9_999).await.unwrap().is_empty());

    // Deleting a team removes its memberships, not its users.
    s.delete_team(dev.id).await.unwrap();
    assert!(s.team_by_name("dev").await.unwrap().is_none());
    assert!(s.team_members(dev.id).await.unwrap().is_empty());
    assert!(s.user_by_id(amy).await.unwrap().is_some());
    assert_not_found_msg(s.delete_team(dev.id).await, &format!("team {}", dev.id));
    assert_eq!(s.list_teams().await.unwrap(), [upper, ops]);
    // The name is free again, for a new team with no members.
    let again = s.create_team("dev", 200).await.unwrap();
    assert_ne!(again.id, dev.id);
    assert!(s.team_members(again.id).await.unwrap().is_empty());

    // Deleting a user removes their team memberships.
    s.add_team_member(again.id, amy).await.unwrap();
    s.delete_user(amy).await.unwrap();
    assert!(s.team_members(again.id).await.unwrap().is_empty());
}

// ---- projects -----------------------------------------------------------------------------

async fn check_projects(s: Store) {
    assert!(s.list_projects().await.unwrap().is_empty());
    let lib = s
        .create_project("library", Visibility::Public, 100)
        .await
        .unwrap();
    assert_eq!(
        (lib.name.as_str(), lib.visibility, lib.created_at),
        ("library", Visibility::Public, 100)
    );
    let team = s
        .create_project("team", Visibility::Private, 110)
        .await
        .unwrap();
    assert_conflict(
        s.create_project("team", Visibility::Public, 120).await,
        "project team already exists",
    );
    let upper = s
        .create_project("Team", Visibility::Public, 130)
        .await
        .unwrap();
    assert_eq!(s.project_by_name("team").await.unwrap(), Some(team.clone()));
    assert_eq!(
        s.project_by_name("Team").await.unwrap(),
        Some(upper.clone())
    );
    assert!(s.project_by_name("TEAM").await.unwrap().is_none());
    assert_eq!(
        s.list_projects().await.unwrap(),
        [upper.clone(), lib.clone(), team.clone()]
    );

    s.set_project_visibility(team.id, Visibility::Public)
        .await
        .unwrap();
    assert_eq!(
        s.project_by_name("team").await.unwrap().unwrap().visibility,
        Visibility::Public
    );
    s.set_project_visibility(team.id, Visibility::Private)
        .await
        .unwrap();
    assert_eq!(
        s.project_by_name("team").await.unwrap().unwrap().visibility,
        Visibility::Private
    );

    s.delete_project(upper.id).await.unwrap();
    assert!(s.project_by_name("Team").await.unwrap().is_none());
    assert_eq!(s.list_projects().await.unwrap(), [lib, team]);
    assert_not_found_msg(
        s.delete_project(upper.id).await,
        &format!("project {}", upper.id),
    );
    assert_not_found(s.set_project_visibility(upper.id, Visibility::Public).await);
}

// ---- members and rules --------------------------------------------------------------------

async fn check_members_and_rules(s: Store) {
    let p = s.create_project("p", Visibility::Private, 1).await.unwrap();
    let other = s.create_project("q", Visibility::Private, 1).await.unwrap();
    let zoe = user(&*s, "zoe").await;
    let bob = user(&*s, "bob").await;
    let devs = s.create_team("devs", 1).await.unwrap().id;
    // A user and a team of the same name are two members.
    let bob_team = s.create_team("bob", 1).await.unwrap().id;

    assert!(s.list_members(p.id).await.unwrap().is_empty());
    s.set_member(p.id, Member::User(zoe), Role::Reader)
        .await
        .unwrap();
    s.set_member(p.id, Member::Team(devs), Role::Developer)
        .await
        .unwrap();
    s.set_member(p.id, Member::User(bob), Role::Admin)
        .await
        .unwrap();
    s.set_member(p.id, Member::Team(bob_team), Role::Reader)
        .await
        .unwrap();
    // Setting again changes the role: one row per member.
    s.set_member(p.id, Member::User(zoe), Role::Maintainer)
        .await
        .unwrap();
    s.set_member(other.id, Member::User(zoe), Role::Reader)
        .await
        .unwrap();
    let membership = |member, name: &str, role| Membership {
        member,
        name: name.to_owned(),
        role,
    };
    assert_eq!(
        s.list_members(p.id).await.unwrap(),
        [
            membership(Member::User(bob), "bob", Role::Admin),
            membership(Member::Team(bob_team), "bob", Role::Reader),
            membership(Member::Team(devs), "devs", Role::Developer),
            membership(Member::User(zoe), "zoe", Role::Maintainer),
        ]
    );
    assert_eq!(
        s.list_members(other.id).await.unwrap(),
        [membership(Member::User(zoe), "zoe", Role::Reader)]
    );

    assert!(s.remove_member(p.id, Member::User(bob)).await.unwrap());
    assert!(!s.remove_member(p.id, Member::User(bob)).await.unwrap());
    // Team `bob` is still there.
    assert_eq!(s.list_members(p.id).await.unwrap().len(), 3);
    assert!(s.remove_member(p.id, Member::Team(bob_team)).await.unwrap());
    assert_eq!(
        s.list_members(p.id).await.unwrap(),
        [
            membership(Member::Team(devs), "devs", Role::Developer),
            membership(Member::User(zoe), "zoe", Role::Maintainer),
        ]
    );

    // Members and projects that do not exist.
    assert_not_found_msg(
        s.set_member(p.id, Member::User(9_999), Role::Reader).await,
        "user 9999",
    );
    assert_not_found_msg(
        s.set_member(p.id, Member::Team(9_999), Role::Reader).await,
        "team 9999",
    );
    assert_not_found_msg(
        s.set_member(9_999, Member::User(zoe), Role::Reader).await,
        "project 9999",
    );
    assert!(!s.remove_member(9_999, Member::User(zoe)).await.unwrap());
    assert!(s.list_members(9_999).await.unwrap().is_empty());

    // Rules.
    assert!(s.list_repo_rules(p.id).await.unwrap().is_empty());
    let r1 = s
        .add_repo_rule(p.id, &pat("p/app-*"), Member::User(zoe), Role::Admin)
        .await
        .unwrap();
    assert_eq!(
        r1,
        StoredRepoRule {
            id: r1.id,
            project: "p".into(),
            pattern: pat("p/app-*"),
            member: Member::User(zoe),
            role: Role::Admin,
        }
    );
    let r2 = s
        .add_repo_rule(p.id, &pat("p/**"), Member::Team(devs), Role::Reader)
        .await
        .unwrap();
    let r3 = s
        .add_repo_rule(other.id, &pat("q/x"), Member::User(bob), Role::Developer)
        .await
        .unwrap();
    assert_eq!(r3.project, "q");
    let r4 = s
        .add_repo_rule(p.id, &pat("p/lib"), Member::User(bob), Role::Maintainer)
        .await
        .unwrap();
    assert_eq!(
        s.list_repo_rules(p.id).await.unwrap(),
        [r1.clone(), r2.clone(), r4.clone()]
    );
    assert_eq!(
        s.list_repo_rules(other.id).await.unwrap(),
        std::slice::from_ref(&r3)
    );

    assert_not_found_msg(
        s.add_repo_rule(9_999, &pat("x"), Member::User(zoe), Role::Reader)
            .await,
        "project 9999",
    );
    assert_not_found_msg(
        s.add_repo_rule(p.id, &pat("x"), Member::User(9_999), Role::Reader)
            .await,
        "user 9999",
    );
    assert_not_found_msg(
        s.add_repo_rule(p.id, &pat("x"), Member::Team(9_999), Role::Reader)
            .await,
        "team 9999",
    );

    // A rule is deleted only from its own project.
    assert!(!s.delete_repo_rule(other.id, r2.id).await.unwrap());
    assert!(s.delete_repo_rule(p.id, r2.id).await.unwrap());
    assert!(!s.delete_repo_rule(p.id, r2.id).await.unwrap());
    assert!(!s.delete_repo_rule(p.id, 9_999).await.unwrap());
    assert_eq!(s.list_repo_rules(p.id).await.unwrap(), [r1, r4]);
    assert_eq!(s.list_repo_rules(other.id).await.unwrap(), [r3]);
    assert!(s.list_repo_rules(9_999).await.unwrap().is_empty());
}

// ---- grants -------------------------------------------------------------------------------

async fn check_grants(s: Store) {
    let p1 = s
        .create_project("p1", Visibility::Private, 1)
        .await
        .unwrap();
    let p2 = s.create_project("p2", Visibility::Public, 1).await.unwrap();
    let p3 = s
        .create_project("p3", Visibility::Private, 1)
        .await
        .unwrap();
    let _p4 = s.create_project("p4", Visibility::Public, 1).await.unwrap();
    let u = user(&*s, "u").await;
    let v = user(&*s, "v").await;
    let loner = user(&*s, "loner").await;
    let t1 = s.create_team("t1", 1).await.unwrap().id;
    let t2 = s.create_team("t2", 1).await.unwrap().id;
    let t3 = s.create_team("t3", 1).await.unwrap().id;
    s.add_team_member(t1, u).await.unwrap();
    s.add_team_member(t2, u).await.unwrap();
    s.add_team_member(t3, v).await.unwrap();

    s.set_member(p1.id, Member::User(u), Role::Developer)
        .await
        .unwrap();
    s.set_member(p1.id, Member::Team(t1), Role::Maintainer)
        .await
        .unwrap();
    s.set_member(p1.id, Member::Team(t2), Role::Reader)
        .await
        .unwrap();
    s.set_member(p1.id, Member::User(v), Role::Admin)
        .await
        .unwrap();
    s.set_member(p1.id, Member::Team(t3), Role::Admin)
        .await
        .unwrap();
    s.set_member(p2.id, Member::User(u), Role::Reader)
        .await
        .unwrap();
    s.add_repo_rule(p1.id, &pat("p1/app"), Member::User(u), Role::Admin)
        .await
        .unwrap();
    s.add_repo_rule(p1.id, &pat("p1/*"), Member::User(v), Role::Admin)
        .await
        .unwrap();
    s.add_repo_rule(p1.id, &pat("p1/lib/*"), Member::Team(t1), Role::Maintainer)
        .await
        .unwrap();
    s.add_repo_rule(p1.id, &pat("p1/ops"), Member::Team(t3), Role::Admin)
        .await
        .unwrap();
    s.add_repo_rule(p2.id, &pat("p2/x"), Member::User(u), Role::Developer)
        .await
        .unwrap();
    // p3: u only through a team's rule.
    s.add_repo_rule(p3.id, &pat("p3/**"), Member::Team(t2), Role::Reader)
        .await
        .unwrap();

    let g = s.grants(Some(u), "p1").await.unwrap();
    assert_eq!(
        g,
        Grants {
            project: "p1".into(),
            visibility: Visibility::Private,
            direct_role: Some(Role::Developer),
            team_roles: vec![Role::Maintainer, Role::Reader],
            repo_rules: vec![
                RepoRule {
                    pattern: pat("p1/app"),
                    role: Role::Admin,
                },
                RepoRule {
                    pattern: pat("p1/lib/*"),
                    role: Role::Maintainer,
                },
            ],
        }
    );
    assert_eq!(g.project_role(), Some(Role::Maintainer));
    assert_eq!(g.rule_role(&repo("p1/app")), Some(Role::Admin));
    assert_eq!(g.rule_role(&repo("p1/lib/core")), Some(Role::Maintainer));
    assert_eq!(g.rule_role(&repo("p1/ops")), None);

    let g = s.grants(Some(v), "p1").await.unwrap();
    assert_eq!(g.direct_role, Some(Role::Admin));
    assert_eq!(g.team_roles, [Role::Admin]);
    assert_eq!(
        g.repo_rules,
        [
            RepoRule {
                pattern: pat("p1/*"),
                role: Role::Admin,
            },
            RepoRule {
                pattern: pat("p1/ops"),
                role: Role::Admin,
            },
        ]
    );

    // Only the asked project's roles and rules.
    let g = s.grants(Some(u), "p2").await.unwrap();
    assert_eq!(
        g,
        Grants {
            project: "p2".into(),
            visibility: Visibility::Public,
            direct_role: Some(Role::Reader),
            team_roles: Vec::new(),
            repo_rules: vec![RepoRule {
                pattern: pat("p2/x"),
                role: Role::Developer,
            }],
        }
    );
    let g = s.grants(Some(u), "p3").await.unwrap();
    assert_eq!((g.direct_role, g.team_roles.len()), (None, 0));
    assert_eq!(g.repo_rules.len(), 1);

    // Anonymous (or robot): only the visibility.
    assert_eq!(
        s.grants(None, "p1").await.unwrap(),
        Grants::new("p1", Visibility::Private)
    );
    assert_eq!(
        s.grants(None, "p2").await.unwrap(),
        Grants::new("p2", Visibility::Public)
    );
    // Someone with nothing in the project, and a project that does not exist.
    assert_eq!(
        s.grants(Some(loner), "p2").await.unwrap(),
        Grants::new("p2", Visibility::Public)
    );
    assert_eq!(
        s.grants(Some(u), "nope").await.unwrap(),
        Grants::new("nope", Visibility::Private)
    );
    assert_eq!(
        s.grants(None, "nope").await.unwrap(),
        Grants::new("nope", Visibility::Private)
    );
    // Project names are case-sensitive.
    assert_eq!(
        s.grants(Some(u), "P1").await.unwrap(),
        Grants::new("P1", Visibility::Private)
    );

    // Visibility changes show.
    s.set_project_visibility(p1.id, Visibility::Public)
        .await
        .unwrap();
    assert_eq!(
        s.grants(None, "p1").await.unwrap(),
        Grants::new("p1", Visibility::Public)
    );

    // Leaving a team takes its roles and rules away.
    s.remove_team_member(t1, u).await.unwrap();
    let g = s.grants(Some(u), "p1").await.unwrap();
    assert_eq!(g.team_roles, [Role::Reader]);
    assert_eq!(
        g.repo_rules,
        [RepoRule {
            pattern: pat("p1/app"),
            role: Role::Admin,
        }]
    );

    // Projects of a user: direct roles, team roles and rules, by name.
    let names = |ps: Vec<bulwark_auth::store::Project>| -> Vec<String> {
        ps.into_iter().map(|p| p.name).collect()
    };
    assert_eq!(
        names(s.projects_of_user(u).await.unwrap()),
        ["p1", "p2", "p3"]
    );
    assert_eq!(names(s.projects_of_user(v).await.unwrap()), ["p1"]);
    assert!(s.projects_of_user(loner).await.unwrap().is_empty());
    assert!(s.projects_of_user(9_999).await.unwrap().is_empty());
    // Through a team only.
    s.add_team_member(t3, loner).await.unwrap();
    assert_eq!(names(s.projects_of_user(loner).await.unwrap()), ["p1"]);
    // Through a rule only.
    s.remove_team_member(t3, loner).await.unwrap();
    s.add_repo_rule(p2.id, &pat("p2/y"), Member::User(loner), Role::Reader)
        .await
        .unwrap();
    assert_eq!(names(s.projects_of_user(loner).await.unwrap()), ["p2"]);
    assert_eq!(
        s.projects_of_user(loner).await.unwrap()[0],
        s.project_by_name("p2").await.unwrap().unwrap()
    );
}

// ---- cascades -----------------------------------------------------------------------------

async fn check_cascades(s: Store) {
    let p = s.create_project("p", Visibility::Private, 1).await.unwrap();
    let q = s.create_project("q", Visibility::Private, 1).await.unwrap();
    let u = user(&*s, "u").await;
    let w = user(&*s, "w").await;
    let t = s.create_team("t", 1).await.unwrap().id;
    s.add_team_member(t, u).await.unwrap();
    s.add_team_member(t, w).await.unwrap();
    for project in [p.id, q.id] {
        s.set_member(project, Member::User(u), Role::Developer)
            .await
            .unwrap();
        s.set_member(project, Member::User(w), Role::Reader)
            .await
            .unwrap();
        s.set_member(project, Member::Team(t), Role::Maintainer)
            .await
            .unwrap();
        s.add_repo_rule(project, &pat("p/a"), Member::User(u), Role::Admin)
            .await
            .unwrap();
        s.add_repo_rule(project, &pat("p/b"), Member::Team(t), Role::Admin)
            .await
            .unwrap();
        s.add_repo_rule(project, &pat("p/c"), Member::User(w), Role::Admin)
            .await
            .unwrap();
    }
    s.create_token(new_token("tu", u, 10, "s")).await.unwrap();
    s.create_token(new_token("tw", w, 10, "s")).await.unwrap();
    s.create_robot(new_robot("robot$p+ci", Some("p"), "s"))
        .await
        .unwrap();
    s.create_robot(new_robot("robot$q+ci", Some("q"), "s"))
        .await
        .unwrap();
    s.create_robot(new_robot("robot$sys", None, "s"))
        .await
        .unwrap();

    // Deleting a user: their memberships, rules and tokens go.
    s.delete_user(u).await.unwrap();
    assert!(s.token_by_id("tu").await.unwrap().is_none());
    assert!(s.list_tokens(u).await.unwrap().is_empty());
    assert!(s.token_by_id("tw").await.unwrap().is_some());
    let team_members: Vec<i64> = s
        .team_members(t)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(team_members, [w]);
    for project in [p.id, q.id] {
        let members: Vec<Member> = s
            .list_members(project)
            .await
            .unwrap()
            .iter()
            .map(|m| m.member)
            .collect();
        assert_eq!(members, [Member::Team(t), Member::User(w)]);
        let rules: Vec<Member> = s
            .list_repo_rules(project)
            .await
            .unwrap()
            .iter()
            .map(|r| r.member)
            .collect();
        assert_eq!(rules, [Member::Team(t), Member::User(w)]);
    }

    // Deleting a team: its memberships (both kinds) and rules go; its users stay.
    let g = s.grants(Some(w), "p").await.unwrap();
    assert_eq!((g.team_roles.len(), g.repo_rules.len()), (1, 2));
    s.delete_team(t).await.unwrap();
    let g = s.grants(Some(w), "p").await.unwrap();
    assert_eq!(g.direct_role, Some(Role::Reader));
    assert!(g.team_roles.is_empty());
    assert_eq!(g.repo_rules.len(), 1);
    for project in [p.id, q.id] {
        let members: Vec<Member> = s
            .list_members(project)
            .await
            .unwrap()
            .iter()
            .map(|m| m.member)
            .collect();
        assert_eq!(members, [Member::User(w)]);
        assert_eq!(s.list_repo_rules(project).await.unwrap().len(), 1);
    }
    assert!(s.user_by_id(w).await.unwrap().is_some());

    // Deleting a project: its memberships, rules and robots go; other projects' stay.
    s.delete_project(p.id).await.unwrap();
    assert!(s.list_members(p.id).await.unwrap().is_empty());
    assert!(s.list_repo_rules(p.id).await.unwrap().is_empty());
    assert!(s.robot_by_name("robot$p+ci").await.unwrap().is_none());
    assert!(s.list_robots(Some("p")).await.unwrap().is_empty());
    let robots: Vec<String> = s
        .list_robots(None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(robots, ["robot$q+ci", "robot$sys"]);
    assert_eq!(s.list_members(q.id).await.unwrap().len(), 1);
    assert_eq!(s.list_repo_rules(q.id).await.unwrap().len(), 1);
    assert_eq!(s.projects_of_user(w).await.unwrap()[0].name, "q");
    assert!(s.user_by_id(w).await.unwrap().is_some());
    assert!(s.token_by_id("tw").await.unwrap().is_some());

    // A project created again under the name starts empty.
    let p_again = s.create_project("p", Visibility::Public, 2).await.unwrap();
    assert!(s.list_members(p_again.id).await.unwrap().is_empty());
    assert_eq!(
        s.grants(Some(w), "p").await.unwrap(),
        Grants::new("p", Visibility::Public)
    );
    assert!(s.list_robots(Some("p")).await.unwrap().is_empty());
}

// ---- robots -------------------------------------------------------------------------------

async fn check_robots(s: Store) {
    s.create_project("team", Visibility::Private, 1)
        .await
        .unwrap();
    s.create_project("other", Visibility::Private, 1)
        .await
        .unwrap();
    assert!(s.list_robots(None).await.unwrap().is_empty());
    assert!(s.robot_by_name("robot$team+ci").await.unwrap().is_none());

    let ci = s
        .create_robot(new_robot("robot$team+ci", Some("team"), "ci-secret"))
        .await
        .unwrap();
    assert_eq!(
        ci,
        Robot {
            id: ci.id,
            name: "robot$team+ci".into(),
            project: Some("team".into()),
            description: Some("robot robot$team+ci".into()),
            permissions: vec![
                perm("app/**", &[Action::Pull, Action::Push]),
                perm("app/cache", &[Action::All]),
            ],
            expires_at: Some(9_000),
            disabled: false,
            created_at: 300,
        }
    );
    let sys = s
        .create_robot(NewRobot {
            description: None,
            permissions: Vec::new(),
            expires_at: None,
            ..new_robot("robot$backup", None, "sys-secret")
        })
        .await
        .unwrap();
    let deploy = s
        .create_robot(new_robot("robot$team+deploy", Some("team"), "d"))
        .await
        .unwrap();
    let elsewhere = s
        .create_robot(new_robot("robot$other+ci", Some("other"), "o"))
        .await
        .unwrap();

    assert_conflict(
        s.create_robot(new_robot("robot$team+ci", Some("other"), "x"))
            .await,
        "robot robot$team+ci already exists",
    );
    assert_not_found_msg(
        s.create_robot(new_robot("robot$ghost+ci", Some("ghost"), "x"))
            .await,
        "project ghost",
    );
    // Project names are exact.
    assert_not_found(
        s.create_robot(new_robot("robot$Team+ci", Some("Team"), "x"))
            .await,
    );
    // Robot names are case-sensitive.
    let upper = s
        .create_robot(new_robot("robot$team+CI", Some("team"), "x"))
        .await
        .unwrap();

    let (got, hash) = s.robot_by_name("robot$team+ci").await.unwrap().unwrap();
    assert_eq!(got, ci);
    assert!(hash.verify("ci-secret"));
    assert!(!hash.verify("ci-secret "));
    assert_eq!(hash, SecretHash::of("ci-secret"));
    let (got, hash) = s.robot_by_name("robot$backup").await.unwrap().unwrap();
    assert_eq!(got, sys);
    assert_eq!(
        (
            got.project,
            got.description,
            got.permissions,
            got.expires_at
        ),
        (None, None, Vec::new(), None)
    );
    assert!(hash.verify("sys-secret"));
    assert_eq!(
        s.robot_by_name("robot$team+CI").await.unwrap().unwrap().0,
        upper
    );
    assert!(s.robot_by_name("ROBOT$team+ci").await.unwrap().is_none());

    assert_eq!(
        s.list_robots(Some("team")).await.unwrap(),
        [upper.clone(), ci.clone(), deploy.clone()]
    );
    assert_eq!(
        s.list_robots(Some("other")).await.unwrap(),
        std::slice::from_ref(&elsewhere)
    );
    assert!(s.list_robots(Some("ghost")).await.unwrap().is_empty());
    assert!(s.list_robots(Some("Team")).await.unwrap().is_empty());
    assert_eq!(
        s.list_robots(None).await.unwrap(),
        [
            sys.clone(),
            elsewhere.clone(),
            upper.clone(),
            ci.clone(),
            deploy.clone()
        ]
    );

    s.set_robot_disabled(ci.id, true).await.unwrap();
    assert!(
        s.robot_by_name("robot$team+ci")
            .await
            .unwrap()
            .unwrap()
            .0
            .disabled
    );
    s.set_robot_disabled(ci.id, false).await.unwrap();
    assert!(
        !s.robot_by_name("robot$team+ci")
            .await
            .unwrap()
            .unwrap()
            .0
            .disabled
    );

    s.set_robot_secret(ci.id, &SecretHash::of("rotated"))
        .await
        .unwrap();
    let (_, hash) = s.robot_by_name("robot$team+ci").await.unwrap().unwrap();
    assert!(hash.verify("rotated"));
    assert!(!hash.verify("ci-secret"));

    s.delete_robot(deploy.id).await.unwrap();
    assert!(
        s.robot_by_name("robot$team+deploy")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.list_robots(Some("team")).await.unwrap(), [upper, ci]);

    let gone = deploy.id;
    assert_not_found_msg(
        s.set_robot_disabled(gone, true).await,
        &format!("robot {gone}"),
    );
    assert_not_found(s.set_robot_secret(gone, &SecretHash::of("x")).await);
    assert_not_found(s.delete_robot(gone).await);
}

// ---- personal access tokens ---------------------------------------------------------------

async fn check_tokens(s: Store) {
    let alice = user(&*s, "alice").await;
    let bob = user(&*s, "bob").await;
    assert!(s.list_tokens(alice).await.unwrap().is_empty());
    assert!(s.token_by_id("aaaa").await.unwrap().is_none());

    let t1 = s
        .create_token(new_token("t1", alice, 200, "secret-1"))
        .await
        .unwrap();
    assert_eq!(
        t1,
        PersonalToken {
            id: "t1".into(),
            user_id: alice,
            name: "token t1".into(),
            permissions: vec![perm("team/*", &[Action::Pull])],
            expires_at: None,
            revoked_at: None,
            created_at: 200,
        }
    );
    let t0 = s
        .create_token(NewPersonalToken {
            permissions: Vec::new(),
            expires_at: Some(5_000),
            ..new_token("t0", alice, 100, "secret-0")
        })
        .await
        .unwrap();
    // Same time as t1: then by id.
    let ta = s
        .create_token(NewPersonalToken {
            permissions: vec![
                perm("a/**", &[Action::Pull, Action::Push, Action::Delete]),
                perm("b", &[Action::All]),
            ],
            ..new_token("ta", alice, 200, "secret-a")
        })
        .await
        .unwrap();
    let tb = s
        .create_token(new_token("tb", bob, 150, "secret-b"))
        .await
        .unwrap();

    assert_conflict(
        s.create_token(new_token("t1", bob, 300, "x")).await,
        "token t1 already exists",
    );
    assert_not_found_msg(
        s.create_token(new_token("orphan", 9_999, 300, "x")).await,
        "user 9999",
    );
    // Ids are case-sensitive.
    let upper = s
        .create_token(new_token("T1", bob, 160, "x"))
        .await
        .unwrap();

    let (got, hash) = s.token_by_id("t1").await.unwrap().unwrap();
    assert_eq!(got, t1);
    assert!(hash.verify("secret-1"));
    assert!(!hash.verify("secret-2"));
    let (got, hash) = s.token_by_id("ta").await.unwrap().unwrap();
    assert_eq!(got, ta);
    assert_eq!(got.permissions.len(), 2);
    assert!(hash.verify("secret-a"));
    assert_eq!(s.token_by_id("t0").await.unwrap().unwrap().0, t0);
    assert_eq!(s.token_by_id("T1").await.unwrap().unwrap().0, upper);

    assert_eq!(
        s.list_tokens(alice).await.unwrap(),
        [t0.clone(), t1.clone(), ta.clone()]
    );
    assert_eq!(s.list_tokens(bob).await.unwrap(), [tb.clone(), upper]);
    assert!(s.list_tokens(9_999).await.unwrap().is_empty());

    // Revoked once: the first time stays.
    assert!(s.revoke_token("t1", 500).await.unwrap());
    assert!(!s.revoke_token("t1", 600).await.unwrap());
    assert!(!s.revoke_token("missing", 600).await.unwrap());
    assert!(!s.revoke_token("T0", 600).await.unwrap());
    let (got, hash) = s.token_by_id("t1").await.unwrap().unwrap();
    assert_eq!(got.revoked_at, Some(500));
    assert!(hash.verify("secret-1"));
    assert_eq!(s.list_tokens(alice).await.unwrap()[1].revoked_at, Some(500));
    assert_eq!(
        s.token_by_id("t0").await.unwrap().unwrap().0.revoked_at,
        None
    );
    assert_eq!(
        s.token_by_id("tb").await.unwrap().unwrap().0.revoked_at,
        None
    );
}

// ---- signing keys -------------------------------------------------------------------------

async fn check_signing_keys(s: Store) {
    assert!(s.signing_keys().await.unwrap().is_empty());
    s.add_signing_key(key("k1", 100)).await.unwrap();
    s.add_signing_key(key("k2", 200)).await.unwrap();
    // Same creation time as k1: then by kid.
    s.add_signing_key(key("k0", 100)).await.unwrap();
    s.add_signing_key(StoredSigningKey {
        valid_until: Some(120),
        ..key("K9", 50)
    })
    .await
    .unwrap();
    assert_conflict(
        s.add_signing_key(key("k1", 300)).await,
        "signing key k1 already exists",
    );

    let keys = s.signing_keys().await.unwrap();
    assert_eq!(
        kids(&keys),
        [("K9", Some(120)), ("k0", None), ("k1", None), ("k2", None)]
    );
    assert_eq!(keys[2].private_pem, key("k1", 100).private_pem);
    assert_eq!(keys[2].created_at, 100);

    s.retire_signing_key("k1", 400).await.unwrap();
    s.retire_signing_key("k0", 300).await.unwrap();
    assert_not_found_msg(s.retire_signing_key("nope", 400).await, "signing key nope");
    assert_not_found(s.retire_signing_key("K1", 400).await);
    assert_eq!(
        kids(&s.signing_keys().await.unwrap()),
        [
            ("K9", Some(120)),
            ("k0", Some(300)),
            ("k1", Some(400)),
            ("k2", None)
        ]
    );

    // Strictly before `now`.
    assert_eq!(s.prune_signing_keys(120).await.unwrap(), 0);
    assert_eq!(s.prune_signing_keys(121).await.unwrap(), 1);
    assert_eq!(s.prune_signing_keys(121).await.unwrap(), 0);
    assert_eq!(s.prune_signing_keys(10_000).await.unwrap(), 2);
    // A key that is not retired is never pruned.
    assert_eq!(kids(&s.signing_keys().await.unwrap()), [("k2", None)]);
    // A pruned kid may be added again.
    s.add_signing_key(key("k1", 500)).await.unwrap();
    assert_eq!(
        kids(&s.signing_keys().await.unwrap()),
        [("k2", None), ("k1", None)]
    );
}

// ---- names --------------------------------------------------------------------------------

/// Every name lookup is exact: names that differ only in case, or by a trailing space, are
/// different objects, and each is found only under its own name.
async fn check_case_sensitive_names(s: Store) {
    for name in ["dev", "Dev", "DEV", "dev "] {
        s.create_user(new_user(name, false)).await.unwrap();
        s.create_team(name, 1).await.unwrap();
        s.create_project(name, Visibility::Private, 1)
            .await
            .unwrap();
        s.create_robot(new_robot(&format!("robot${name}"), Some(name), name))
            .await
            .unwrap();
    }
    for name in ["dev", "Dev", "DEV", "dev "] {
        assert_eq!(s.user_by_name(name).await.unwrap().unwrap().user.name, name);
        assert_eq!(s.team_by_name(name).await.unwrap().unwrap().name, name);
        assert_eq!(s.project_by_name(name).await.unwrap().unwrap().name, name);
        let (robot, hash) = s
            .robot_by_name(&format!("robot${name}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(robot.project.as_deref(), Some(name));
        assert!(hash.verify(name));
        assert_eq!(s.list_robots(Some(name)).await.unwrap(), [robot]);
        assert_eq!(s.grants(None, name).await.unwrap().project, name);
    }
    for missing in ["dEv", "DEv", " dev", "de"] {
        assert!(s.user_by_name(missing).await.unwrap().is_none());
        assert!(s.team_by_name(missing).await.unwrap().is_none());
        assert!(s.project_by_name(missing).await.unwrap().is_none());
        assert!(
            s.robot_by_name(&format!("robot${missing}"))
                .await
                .unwrap()
                .is_none()
        );
    }
    // Byte order everywhere.
    assert_eq!(user_names(&*s).await, ["DEV", "Dev", "dev", "dev "]);
    let teams: Vec<String> = s
        .list_teams()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(teams, ["DEV", "Dev", "dev", "dev "]);
    let projects: Vec<String> = s
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(projects, ["DEV", "Dev", "dev", "dev "]);
    for name in ["DEV", "Dev", "dev", "dev "] {
        assert_conflict(
            s.create_user(new_user(name, false)).await,
            &format!("user {name} already exists"),
        );
        assert_conflict(
            s.create_team(name, 2).await,
            &format!("team {name} already exists"),
        );
        assert_conflict(
            s.create_project(name, Visibility::Public, 2).await,
            &format!("project {name} already exists"),
        );
    }
}

// ---- runners ------------------------------------------------------------------------------

async fn open_sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("meta.db"))
        .await
        .unwrap();
    store.ready().await.unwrap();
    (dir, store)
}

macro_rules! sqlite_suite {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let (_dir, store) = super::open_sqlite().await;
                    super::$check(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

// ---- PostgreSQL ---------------------------------------------------------------------------

async fn open_postgres(url: &str) -> PostgresStore {
    let store = PostgresStore::open(url).await.unwrap();
    store.ready().await.unwrap();
    store
}

macro_rules! postgres_suite {
    ($($check:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::with_postgres_database(|url| async move {
                        let store = super::open_postgres(&url).await;
                        super::$check(std::sync::Arc::new(store.clone())).await;
                        store.close().await;
                    })
                    .await;
                }
            )*
        }
    };
}

/// Every check of the contract suite, run by each backend's `*_suite!`.
macro_rules! all_checks {
    ($suite:ident) => {
        $suite!(
            check_users,
            check_last_admin,
            check_last_admin_race,
            check_teams,
            check_projects,
            check_members_and_rules,
            check_grants,
            check_cascades,
            check_robots,
            check_tokens,
            check_signing_keys,
            check_case_sensitive_names,
        );
    };
}

all_checks!(sqlite_suite);
all_checks!(postgres_suite);

/// Access-control data is on disk: a store opened afresh on the same file sees it, and the
/// migrations run again as a no-op.
#[tokio::test]
async fn sqlite_auth_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let (alice, project) = {
        let s = SqliteStore::open(&path).await.unwrap();
        let alice = s.create_user(new_user("alice", true)).await.unwrap();
        let project = s
            .create_project("team", Visibility::Private, 1)
            .await
            .unwrap();
        s.set_member(project.id, Member::User(alice.id), Role::Admin)
            .await
            .unwrap();
        s.create_robot(new_robot("robot$team+ci", Some("team"), "r"))
            .await
            .unwrap();
        s.add_signing_key(key("k1", 1)).await.unwrap();
        (alice, project)
    };
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s.user_by_id(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(s.project_by_name("team").await.unwrap(), Some(project));
    assert_eq!(
        s.grants(Some(alice.id), "team").await.unwrap().direct_role,
        Some(Role::Admin)
    );
    assert!(
        s.robot_by_name("robot$team+ci")
            .await
            .unwrap()
            .unwrap()
            .1
            .verify("r")
    );
    assert_eq!(kids(&s.signing_keys().await.unwrap()), [("k1", None)]);
}

#[tokio::test]
async fn postgres_auth_data_survives_reopen() {
    with_postgres_database(|url| async move {
        let alice = {
            let s = PostgresStore::open(&url).await.unwrap();
            let alice = s.create_user(new_user("alice", true)).await.unwrap();
            s.add_signing_key(key("k1", 1)).await.unwrap();
            s.close().await;
            alice
        };
        let s = PostgresStore::open(&url).await.unwrap();
        assert_eq!(s.user_by_id(alice.id).await.unwrap(), Some(alice));
        // A second replica sees the first one's writes.
        let s2 = PostgresStore::open(&url).await.unwrap();
        s2.add_signing_key(key("k2", 2)).await.unwrap();
        assert_eq!(
            kids(&s.signing_keys().await.unwrap()),
            [("k1", None), ("k2", None)]
        );
        s2.close().await;
        s.close().await;
    })
    .await;
}
