//! The permission model as a decision table: principals × grants × repository × requested
//! actions → allowed actions, plus the matching `authorize` outcome for every row.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bulwark_auth::policy::{
    Grants, Principal, ProjectPermission, RepoPattern, RepoRule, RobotPermission, Role, Visibility,
    allowed, authorize, authorize_project,
};
use bulwark_auth::scope::Action::{self, *};
use bulwark_oci::RepoName;

const NOW: i64 = 1_700_000_000;
const ALL4: &[Action] = &[Pull, Push, Delete, All];

fn repo(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

fn pat(s: &str) -> RepoPattern {
    RepoPattern::new(s).unwrap()
}

fn rule(p: &str, role: Role) -> RepoRule {
    RepoRule {
        pattern: pat(p),
        role,
    }
}

fn perm(p: &str, actions: &[Action]) -> RobotPermission {
    RobotPermission {
        pattern: pat(p),
        actions: actions.to_vec(),
    }
}

fn alice() -> Principal {
    Principal::User {
        id: 1,
        name: "alice".into(),
        system_admin: false,
    }
}

fn root() -> Principal {
    Principal::User {
        id: 0,
        name: "root".into(),
        system_admin: true,
    }
}

fn robot(
    project: Option<&str>,
    permissions: Vec<RobotPermission>,
    expires_at: Option<i64>,
) -> Principal {
    Principal::Robot {
        id: 7,
        name: "robot$ci".into(),
        project: project.map(str::to_owned),
        permissions,
        expires_at,
    }
}

fn robot_a() -> Principal {
    robot(
        Some("team-a"),
        vec![
            perm("team-a/app/*", &[Pull, Push]),
            perm("team-a/ci", &[Pull]),
            // Outside its project: must never apply.
            perm("team-b/**", &[All]),
        ],
        Some(NOW + 100),
    )
}

fn grants(project: &str, vis: Visibility) -> Grants {
    Grants::new(project, vis)
}

fn with_direct(mut g: Grants, r: Role) -> Grants {
    g.direct_role = Some(r);
    g
}

struct Row {
    what: &'static str,
    principal: Principal,
    grants: Grants,
    repo: &'static str,
    requested: &'static [Action],
    now: i64,
    expected: &'static [Action],
}

fn row(
    what: &'static str,
    principal: Principal,
    grants: Grants,
    repo: &'static str,
    requested: &'static [Action],
    expected: &'static [Action],
) -> Row {
    Row {
        what,
        principal,
        grants,
        repo,
        requested,
        now: NOW,
        expected,
    }
}

fn table() -> Vec<Row> {
    use Visibility::{Private, Public};
    let pub_a = grants("team-a", Public);
    let priv_a = grants("team-a", Private);
    let dev_a = with_direct(priv_a.clone(), Role::Developer);
    let admin_a = with_direct(priv_a.clone(), Role::Admin);
    let mut team_a = with_direct(priv_a.clone(), Role::Reader);
    team_a.team_roles = vec![Role::Developer, Role::Maintainer];
    let mut team_only = priv_a.clone();
    team_only.team_roles = vec![Role::Developer];
    let mut rules_a = with_direct(priv_a.clone(), Role::Reader);
    rules_a.repo_rules = vec![
        rule("team-a/prod/**", Role::Developer),
        rule("team-a/prod/locked", Role::Reader),
        rule("team-a/ops/*", Role::Admin),
    ];
    let mut rules_pub = pub_a.clone();
    rules_pub.repo_rules = vec![rule("team-a/app/*", Role::Developer)];
    let mut rules_only = priv_a.clone();
    rules_only.repo_rules = vec![rule("team-a/app", Role::Maintainer)];
    let mut maint_lowered = with_direct(priv_a.clone(), Role::Maintainer);
    maint_lowered.repo_rules = vec![rule("team-a/**", Role::Reader)];
    let admin_b = with_direct(grants("team-b", Private), Role::Admin);
    let pub_b = grants("team-b", Public);

    let sys_robot = robot(
        None,
        vec![
            perm("*/base", &[Pull]),
            perm("team-b/tools/**", &[Pull, Push, Delete]),
        ],
        None,
    );
    let robot_all = robot(Some("team-a"), vec![perm("team-a/**", &[All])], None);
    let robot_overlap = robot(
        Some("team-a"),
        vec![perm("team-a/*", &[Pull]), perm("team-a/app", &[Push])],
        None,
    );

    vec![
        // System admins: everything, grants ignored.
        row(
            "sysadmin, private, no role",
            root(),
            priv_a.clone(),
            "team-a/app",
            ALL4,
            ALL4,
        ),
        row(
            "sysadmin, grants of another project",
            root(),
            admin_b.clone(),
            "team-a/app",
            ALL4,
            ALL4,
        ),
        row(
            "sysadmin, deep repo",
            root(),
            pub_a.clone(),
            "team-a/x/y/z",
            &[Delete],
            &[Delete],
        ),
        // Anonymous: pull on public projects only.
        row(
            "anonymous, public",
            Principal::Anonymous,
            pub_a.clone(),
            "team-a/app",
            ALL4,
            &[Pull],
        ),
        row(
            "anonymous, public, push only",
            Principal::Anonymous,
            pub_a.clone(),
            "team-a/app",
            &[Push],
            &[],
        ),
        row(
            "anonymous, private",
            Principal::Anonymous,
            priv_a.clone(),
            "team-a/app",
            ALL4,
            &[],
        ),
        row(
            "anonymous, rules do not apply",
            Principal::Anonymous,
            rules_pub.clone(),
            "team-a/app/web",
            ALL4,
            &[Pull],
        ),
        row(
            "anonymous, grants for another project",
            Principal::Anonymous,
            pub_a.clone(),
            "team-b/app",
            &[Pull],
            &[],
        ),
        // Users: project role = max(direct, teams); public pull.
        row(
            "user, private, no role",
            alice(),
            priv_a.clone(),
            "team-a/app",
            ALL4,
            &[],
        ),
        row(
            "user, public, no role",
            alice(),
            pub_a.clone(),
            "team-a/app",
            ALL4,
            &[Pull],
        ),
        row(
            "user, developer",
            alice(),
            dev_a.clone(),
            "team-a/app",
            ALL4,
            &[Pull, Push],
        ),
        row(
            "user, developer, push only",
            alice(),
            dev_a.clone(),
            "team-a/app",
            &[Push],
            &[Push],
        ),
        row(
            "user, developer, nothing requested",
            alice(),
            dev_a.clone(),
            "team-a/app",
            &[],
            &[],
        ),
        row(
            "user, developer, * is not granted",
            alice(),
            dev_a.clone(),
            "team-a/app",
            &[All],
            &[],
        ),
        row(
            "user, team maintainer beats direct reader",
            alice(),
            team_a.clone(),
            "team-a/app",
            ALL4,
            ALL4,
        ),
        row(
            "user, team role only",
            alice(),
            team_only.clone(),
            "team-a/app",
            ALL4,
            &[Pull, Push],
        ),
        row(
            "user, admin",
            alice(),
            admin_a.clone(),
            "team-a/deep/er",
            ALL4,
            ALL4,
        ),
        row(
            "user, admin of another project",
            alice(),
            admin_b.clone(),
            "team-a/app",
            ALL4,
            &[],
        ),
        row(
            "user, public other project",
            alice(),
            pub_b.clone(),
            "team-b/app",
            &[Pull, Push],
            &[Pull],
        ),
        // Per-repository rules: most specific wins, added to the project role.
        row(
            "rule: no rule matches",
            alice(),
            rules_a.clone(),
            "team-a/app",
            ALL4,
            &[Pull],
        ),
        row(
            "rule: ** grants developer",
            alice(),
            rules_a.clone(),
            "team-a/prod/api",
            ALL4,
            &[Pull, Push],
        ),
        row(
            "rule: ** spans components",
            alice(),
            rules_a.clone(),
            "team-a/prod/api/v2",
            ALL4,
            &[Pull, Push],
        ),
        row(
            "rule: exact beats **",
            alice(),
            rules_a.clone(),
            "team-a/prod/locked",
            ALL4,
            &[Pull],
        ),
        row(
            "rule: * grants admin",
            alice(),
            rules_a.clone(),
            "team-a/ops/x",
            ALL4,
            ALL4,
        ),
        row(
            "rule: * stops at /",
            alice(),
            rules_a.clone(),
            "team-a/ops/x/y",
            ALL4,
            &[Pull],
        ),
        row(
            "rule: on public project",
            alice(),
            rules_pub.clone(),
            "team-a/app/web",
            ALL4,
            &[Pull, Push],
        ),
        row(
            "rule: public, unmatched",
            alice(),
            rules_pub.clone(),
            "team-a/other",
            ALL4,
            &[Pull],
        ),
        row(
            "rule: without project role",
            alice(),
            rules_only.clone(),
            "team-a/app",
            ALL4,
            ALL4,
        ),
        row(
            "rule: without project role, unmatched",
            alice(),
            rules_only.clone(),
            "team-a/app2",
            ALL4,
            &[],
        ),
        row(
            "rule: cannot lower the project role",
            alice(),
            maint_lowered.clone(),
            "team-a/app",
            ALL4,
            ALL4,
        ),
        // Robots: explicit list only, within their project, until expiry.
        row(
            "robot: matching pattern",
            robot_a(),
            priv_a.clone(),
            "team-a/app/web",
            ALL4,
            &[Pull, Push],
        ),
        row(
            "robot: * stops at /",
            robot_a(),
            priv_a.clone(),
            "team-a/app/web/x",
            ALL4,
            &[],
        ),
        row(
            "robot: exact pattern",
            robot_a(),
            priv_a.clone(),
            "team-a/ci",
            &[Pull, Push],
            &[Pull],
        ),
        row(
            "robot: no implicit public pull",
            robot_a(),
            pub_a.clone(),
            "team-a/other",
            &[Pull],
            &[],
        ),
        row(
            "robot: project role in grants ignored",
            robot_a(),
            admin_a.clone(),
            "team-a/other",
            ALL4,
            &[],
        ),
        row(
            "robot: pattern outside its project ignored",
            robot_a(),
            admin_b.clone(),
            "team-b/x",
            ALL4,
            &[],
        ),
        Row {
            now: NOW + 99,
            ..row(
                "robot: just before expiry",
                robot_a(),
                priv_a.clone(),
                "team-a/app/web",
                &[Push],
                &[Push],
            )
        },
        Row {
            now: NOW + 100,
            ..row(
                "robot: at expiry",
                robot_a(),
                priv_a.clone(),
                "team-a/app/web",
                &[Pull],
                &[],
            )
        },
        Row {
            now: NOW + 10_000,
            ..row(
                "robot: long expired",
                robot_a(),
                pub_a.clone(),
                "team-a/app/web",
                &[Pull],
                &[],
            )
        },
        row(
            "robot: * means everything",
            robot_all.clone(),
            priv_a.clone(),
            "team-a/deep/x/y",
            ALL4,
            ALL4,
        ),
        row(
            "robot: * does not leave the project",
            robot_all.clone(),
            pub_b.clone(),
            "team-b/x",
            &[Pull],
            &[],
        ),
        row(
            "robot: matching patterns are unioned",
            robot_overlap.clone(),
            priv_a.clone(),
            "team-a/app",
            ALL4,
            &[Pull, Push],
        ),
        row(
            "system robot: any project",
            sys_robot.clone(),
            priv_a.clone(),
            "team-c/base",
            &[Pull, Push],
            &[Pull],
        ),
        row(
            "system robot: all three make *",
            sys_robot.clone(),
            priv_a.clone(),
            "team-b/tools/a/b",
            ALL4,
            ALL4,
        ),
        row(
            "system robot: unmatched",
            sys_robot.clone(),
            pub_a.clone(),
            "team-a/app",
            ALL4,
            &[],
        ),
    ]
}

#[test]
fn decision_table() {
    let rows = table();
    assert!(rows.len() >= 40);
    for r in rows {
        let repo = repo(r.repo);
        let got = allowed(&r.principal, &r.grants, &repo, r.requested, r.now);
        assert_eq!(got, r.expected, "{}", r.what);

        // authorize agrees: a capability exactly when everything requested is allowed.
        let mut requested = r.requested.to_vec();
        requested.sort();
        requested.dedup();
        let result = authorize(&r.principal, &r.grants, &repo, r.requested, r.now);
        if got == requested {
            let cap = result.unwrap_or_else(|e| panic!("{}: {e}", r.what));
            assert_eq!(cap.repo(), &repo, "{}", r.what);
            for &a in r.requested {
                assert!(cap.permits(a), "{}: {a}", r.what);
            }
        } else {
            let denied = result.expect_err(r.what);
            assert!(denied.to_string().contains(r.repo), "{}: {denied}", r.what);
        }

        // Each requested action alone gives the same answer as in the batch.
        for &a in r.requested {
            let alone = allowed(&r.principal, &r.grants, &repo, &[a], r.now);
            assert_eq!(alone.contains(&a), got.contains(&a), "{}: {a}", r.what);
        }
    }
}

#[test]
fn project_permission_table() {
    use ProjectPermission::*;
    let g = |role: Option<Role>, teams: Vec<Role>| {
        let mut g = Grants::new("team-a", Visibility::Public);
        g.direct_role = role;
        g.team_roles = teams;
        g
    };
    let cases: Vec<(&str, Principal, Grants, ProjectPermission, bool)> = vec![
        ("sysadmin", root(), g(None, vec![]), ManagePolicies, true),
        (
            "anonymous",
            Principal::Anonymous,
            g(None, vec![]),
            ManageTags,
            false,
        ),
        (
            "reader",
            alice(),
            g(Some(Role::Reader), vec![]),
            ManageTags,
            false,
        ),
        (
            "developer",
            alice(),
            g(Some(Role::Developer), vec![]),
            ManageTags,
            false,
        ),
        (
            "maintainer tags",
            alice(),
            g(Some(Role::Maintainer), vec![]),
            ManageTags,
            true,
        ),
        (
            "maintainer members",
            alice(),
            g(Some(Role::Maintainer), vec![]),
            ManageMembers,
            false,
        ),
        (
            "team admin robots",
            alice(),
            g(Some(Role::Reader), vec![Role::Admin]),
            ManageRobots,
            true,
        ),
        (
            "admin members",
            alice(),
            g(Some(Role::Admin), vec![]),
            ManageMembers,
            true,
        ),
        (
            "admin policies",
            alice(),
            g(Some(Role::Admin), vec![]),
            ManagePolicies,
            true,
        ),
        (
            "robot",
            robot_a(),
            g(Some(Role::Admin), vec![]),
            ManageTags,
            false,
        ),
    ];
    for (what, p, grants, perm, expected) in cases {
        assert_eq!(
            authorize_project(&p, &grants, perm).is_ok(),
            expected,
            "{what}"
        );
    }
}
