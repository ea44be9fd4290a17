//! `copy_sqlite_to_postgres`: a SQLite store filled through the public traits, copied into a
//! fresh PostgreSQL database, answers the same through the same traits there; new rows get
//! fresh ids (sequences reset); a non-empty destination, a schema mismatch and an unsupported
//! column type are refused without writing anything.
//!
//! Each test gets a PostgreSQL database of its own on the server named by
//! `BULWARK_TEST_POSTGRES_URL` (as in auth_suite.rs); without it the tests say they are skipped
//! and pass, unless `BULWARK_REQUIRE_POSTGRES=1` makes them fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::with_postgres_database;

use bulwark_auth::SecretHash;
use bulwark_auth::policy::{RepoPattern, RobotPermission, Role, Visibility};
use bulwark_auth::scope::Action;
use bulwark_auth::store::{
    AuthStore, Member, NewPersonalToken, NewRobot, NewUser, StoredSigningKey,
};
use bulwark_core::MetadataStore;
use bulwark_core::store::NewManifest;
use bulwark_meta::{MigrateError, PostgresStore, SqliteStore, copy_sqlite_to_postgres};
use bulwark_oci::media_types::{OCI_INDEX, OCI_MANIFEST};
use bulwark_oci::{Digest, RepoName, Tag};
use bytes::Bytes;
use sqlx::{Connection, Executor, Row};

// ---- PostgreSQL per-test databases (the mechanism of auth_suite.rs) -----------------------

async fn pg_exec(url: &str, sql: &str) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    conn.execute(sql).await.unwrap();
    conn.close().await.ok();
}

async fn sqlite_exec(path: &std::path::Path, sql: &str) {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    conn.execute(sql).await.unwrap();
    conn.close().await.ok();
}

// ---- fixtures -----------------------------------------------------------------------------

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

fn tag(name: &str) -> Tag {
    Tag::parse(name).unwrap()
}

fn dg(label: &str) -> Digest {
    Digest::sha256_of(label.as_bytes())
}

fn image(name: &str, blobs: &[(&Digest, u64)]) -> NewManifest {
    // Not UTF-8 on purpose: manifest bytes are BLOB/bytea and must survive as they are.
    let mut content = format!(r#"{{"schemaVersion":2,"name":"{name}"}}"#).into_bytes();
    content.extend_from_slice(&[0xff, 0x00, 0xfe]);
    let content = Bytes::from(content);
    NewManifest {
        digest: Digest::sha256_of(&content),
        media_type: OCI_MANIFEST.to_owned(),
        content,
        subject: None,
        artifact_type: None,
        annotations: None,
        blobs: blobs.iter().map(|(d, s)| ((*d).clone(), *s)).collect(),
        children: Vec::new(),
    }
}

fn index(name: &str, children: &[&Digest]) -> NewManifest {
    let content = Bytes::from(format!(r#"{{"schemaVersion":2,"index":"{name}"}}"#));
    NewManifest {
        digest: Digest::sha256_of(&content),
        media_type: OCI_INDEX.to_owned(),
        content,
        subject: None,
        artifact_type: None,
        annotations: None,
        blobs: Vec::new(),
        children: children.iter().map(|d| (*d).clone()).collect(),
    }
}

fn new_user(name: &str, system_admin: bool) -> NewUser {
    NewUser {
        name: name.to_owned(),
        email: Some(format!("{name}@example.com")),
        password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1$salt${name}")),
        system_admin,
        created_at: 100,
    }
}

fn perm(pattern: &str, actions: &[Action]) -> RobotPermission {
    RobotPermission {
        pattern: RepoPattern::new(pattern).unwrap(),
        actions: actions.to_vec(),
    }
}

fn new_robot(name: &str, project: Option<&str>, secret: &str) -> NewRobot {
    NewRobot {
        name: name.to_owned(),
        project: project.map(str::to_owned),
        description: Some(format!("robot {name}")),
        permissions: vec![perm("app/**", &[Action::Pull, Action::Push])],
        expires_at: Some(9_000),
        secret_hash: SecretHash::of(secret),
        created_at: 300,
    }
}

fn put_ok(r: Result<Result<(), bulwark_core::store::PutManifestRejection>, bulwark_core::Error>) {
    r.unwrap().unwrap();
}

/// What the filled store holds, for comparing both stores through the traits.
struct Fixture {
    web: NewManifest,
    sbom: NewManifest,
    multi: NewManifest,
    layer: Digest,
    config: Digest,
    alice: i64,
    bob: i64,
    project: i64,
}

/// Fill `s` through the public traits with a bit of everything.
async fn fill<S: MetadataStore + AuthStore>(s: &S) -> Fixture {
    let web_repo = repo("app/web");
    let config = dg("config");
    let layer = dg("layer");
    s.create_upload("upload-1", &web_repo, 10).await.unwrap();
    s.set_upload_size("upload-1", 1234, 11).await.unwrap();
    s.blob_committed(&web_repo, &config, 7, 12).await.unwrap();
    s.blob_committed(&web_repo, &layer, 70_000, 12)
        .await
        .unwrap();
    let web = image("web", &[(&config, 7), (&layer, 70_000)]);
    put_ok(s.put_manifest(&web_repo, &web, Some(&tag("v1")), 20).await);
    put_ok(
        s.put_manifest(&web_repo, &web, Some(&tag("latest")), 21)
            .await,
    );
    let sbom = NewManifest {
        subject: Some(web.digest.clone()),
        artifact_type: Some("application/vnd.example.sbom".to_owned()),
        annotations: Some(r#"{"org.example":"yes"}"#.to_owned()),
        ..image("sbom", &[])
    };
    put_ok(s.put_manifest(&web_repo, &sbom, None, 22).await);
    let multi = index("multi", &[&web.digest]);
    put_ok(
        s.put_manifest(&web_repo, &multi, Some(&tag("multi")), 23)
            .await,
    );
    // A second repository sharing a blob.
    assert!(s.link_blob(&repo("app/api"), &layer, 24).await.unwrap());

    let alice = s.create_user(new_user("alice", true)).await.unwrap().id;
    let bob = s.create_user(new_user("bob", false)).await.unwrap().id;
    let carol = s.create_user(new_user("carol", false)).await.unwrap().id;
    s.set_user_disabled(carol, true).await.unwrap();
    let team = s.create_team("devs", 101).await.unwrap();
    s.add_team_member(team.id, bob).await.unwrap();
    let project = s
        .create_project("app", Visibility::Private, 102)
        .await
        .unwrap()
        .id;
    s.create_project("public", Visibility::Public, 103)
        .await
        .unwrap();
    s.set_member(project, Member::User(alice), Role::Admin)
        .await
        .unwrap();
    s.set_member(project, Member::Team(team.id), Role::Developer)
        .await
        .unwrap();
    s.add_repo_rule(
        project,
        &RepoPattern::new("app/web").unwrap(),
        Member::User(bob),
        Role::Maintainer,
    )
    .await
    .unwrap();
    s.create_robot(new_robot("robot$app+ci", Some("app"), "ci-secret"))
        .await
        .unwrap();
    let sys = s
        .create_robot(new_robot("robot$mirror", None, "mirror-secret"))
        .await
        .unwrap();
    s.set_robot_disabled(sys.id, true).await.unwrap();
    s.create_token(NewPersonalToken {
        id: "tok1".to_owned(),
        user_id: bob,
        name: "laptop".to_owned(),
        permissions: vec![perm("app/*", &[Action::Pull])],
        expires_at: None,
        secret_hash: SecretHash::of("token-secret"),
        created_at: 400,
    })
    .await
    .unwrap();
    s.revoke_token("tok1", 401).await.unwrap();
    for (kid, created_at) in [("k1", 1), ("k2", 2)] {
        s.add_signing_key(StoredSigningKey {
            kid: kid.to_owned(),
            private_pem: format!("-----BEGIN PRIVATE KEY-----\n{kid}\n-----END PRIVATE KEY-----\n"),
            created_at,
            valid_until: None,
        })
        .await
        .unwrap();
    }
    s.retire_signing_key("k1", 5_000).await.unwrap();
    Fixture {
        web,
        sbom,
        multi,
        layer,
        config,
        alice,
        bob,
        project,
    }
}

/// Everything observable through the traits, as comparable text.
async fn observe<S: MetadataStore + AuthStore>(s: &S, f: &Fixture) -> Vec<String> {
    let web_repo = repo("app/web");
    let mut out = Vec::new();
    out.push(format!(
        "{:?}",
        s.list_repositories(None, None).await.unwrap()
    ));
    for r in ["app/web", "app/api"] {
        out.push(format!(
            "{r} {:?}",
            s.list_tags(&repo(r), None, None).await.unwrap()
        ));
    }
    for t in ["v1", "latest", "multi"] {
        let m = s
            .get_manifest_by_tag(&web_repo, &tag(t))
            .await
            .unwrap()
            .unwrap();
        out.push(format!("{t} {} {} {:?}", m.digest, m.media_type, m.content));
    }
    for m in [&f.web, &f.sbom, &f.multi] {
        let got = s
            .get_manifest_by_digest(&web_repo, &m.digest)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.content, m.content, "manifest bytes of {}", m.digest);
        out.push(format!("{} {}", got.digest, got.media_type));
    }
    out.push(format!(
        "{:?}",
        s.referrers(&web_repo, &f.web.digest, None).await.unwrap()
    ));
    out.push(format!(
        "{:?} {:?} {:?} {:?}",
        s.repo_blob_size(&web_repo, &f.layer).await.unwrap(),
        s.repo_blob_size(&repo("app/api"), &f.layer).await.unwrap(),
        s.repo_blob_size(&repo("app/api"), &f.config).await.unwrap(),
        s.blob_size(&f.config).await.unwrap(),
    ));
    out.push(format!(
        "{:?}",
        s.manifest_using_blob(&web_repo, &f.layer).await.unwrap()
    ));
    out.push(format!("{:?}", s.get_upload("upload-1").await.unwrap()));
    out.push(format!("{:?}", s.list_users().await.unwrap()));
    let bob = s.user_by_name("bob").await.unwrap().unwrap();
    out.push(format!("{:?} {:?}", bob.user, bob.password_hash));
    out.push(format!("{:?}", s.list_teams().await.unwrap()));
    let team = s.team_by_name("devs").await.unwrap().unwrap();
    out.push(format!("{:?}", s.team_members(team.id).await.unwrap()));
    out.push(format!("{:?}", s.list_projects().await.unwrap()));
    out.push(format!("{:?}", s.list_members(f.project).await.unwrap()));
    out.push(format!("{:?}", s.list_repo_rules(f.project).await.unwrap()));
    for user in [Some(f.alice), Some(f.bob), None] {
        out.push(format!("{:?}", s.grants(user, "app").await.unwrap()));
    }
    out.push(format!("{:?}", s.projects_of_user(f.bob).await.unwrap()));
    out.push(format!("{:?}", s.list_robots(None).await.unwrap()));
    let (robot, hash) = s.robot_by_name("robot$app+ci").await.unwrap().unwrap();
    assert!(hash.verify("ci-secret"));
    assert!(!hash.verify("wrong"));
    out.push(format!("{robot:?}"));
    let (token, hash) = s.token_by_id("tok1").await.unwrap().unwrap();
    assert!(hash.verify("token-secret"));
    out.push(format!("{token:?}"));
    out.push(format!("{:?}", s.list_tokens(f.bob).await.unwrap()));
    out.push(format!("{:?}", s.signing_keys().await.unwrap()));
    out
}

async fn filled_sqlite() -> (tempfile::TempDir, SqliteStore, Fixture) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("bulwark.db"))
        .await
        .unwrap();
    let fixture = fill(&store).await;
    (dir, store, fixture)
}

async fn sqlite_tables(path: &std::path::Path) -> Vec<String> {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let names = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' \
         AND name <> '_sqlx_migrations' ORDER BY rowid",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.ok();
    names
}

// ---- tests --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_everything_and_resets_sequences() {
    with_postgres_database(|url| async move {
        let (dir, src, f) = filled_sqlite().await;
        let dst = PostgresStore::open(&url).await.unwrap();
        let mut calls: Vec<(String, u64)> = Vec::new();
        let report = copy_sqlite_to_postgres(&src, &dst, |t, n| calls.push((t.to_owned(), n)))
            .await
            .unwrap();

        // Every table of the database (whatever the migrations created), in creation order.
        let tables = sqlite_tables(&dir.path().join("bulwark.db")).await;
        assert_eq!(
            report
                .tables
                .iter()
                .map(|(t, _)| t.clone())
                .collect::<Vec<_>>(),
            tables
        );
        let rows = |t: &str| report.tables.iter().find(|(n, _)| n == t).unwrap().1;
        assert_eq!(rows("users"), 3);
        assert_eq!(rows("manifests"), 3);
        assert_eq!(rows("tags"), 3);
        assert_eq!(rows("signing_keys"), 2);
        assert!(report.schema_version.is_some());
        for t in [
            "users.id",
            "projects.id",
            "robots.id",
            "repositories.id",
            "teams.id",
        ] {
            assert!(report.sequences.contains(&t.to_owned()), "{t}: {report:?}");
        }
        // Progress named every table, and reported each one's final count last.
        for (table, n) in &report.tables {
            let last = calls.iter().rev().find(|(t, _)| t == table).unwrap();
            assert_eq!(last.1, *n, "{table}");
        }

        assert_eq!(observe(&src, &f).await, observe(&dst, &f).await);

        // New rows get fresh ids: the identity sequences were moved past the copied ones.
        let max_user = dst
            .list_users()
            .await
            .unwrap()
            .iter()
            .map(|u| u.id)
            .max()
            .unwrap();
        let dave = dst.create_user(new_user("dave", false)).await.unwrap();
        assert!(dave.id > max_user);
        let project = dst
            .create_project("fresh", Visibility::Private, 500)
            .await
            .unwrap();
        assert!(project.id > f.project);
        let team = dst.create_team("ops", 501).await.unwrap();
        assert!(team.id > dst.team_by_name("devs").await.unwrap().unwrap().id);
        let robot = dst
            .create_robot(new_robot("robot$fresh", None, "s"))
            .await
            .unwrap();
        assert!(
            robot.id
                > dst
                    .robot_by_name("robot$app+ci")
                    .await
                    .unwrap()
                    .unwrap()
                    .0
                    .id
        );
        let old_rule = src.list_repo_rules(f.project).await.unwrap()[0].id;
        let rule = dst
            .add_repo_rule(
                f.project,
                &RepoPattern::new("app/other").unwrap(),
                Member::User(dave.id),
                Role::Reader,
            )
            .await
            .unwrap();
        assert!(rule.id > old_rule);
        // A new repository (new repositories.id) next to the copied ones.
        let new_repo = repo("fresh/thing");
        dst.blob_committed(&new_repo, &f.config, 7, 600)
            .await
            .unwrap();
        put_ok(
            dst.put_manifest(
                &new_repo,
                &image("thing", &[(&f.config, 7)]),
                Some(&tag("t")),
                601,
            )
            .await,
        );
        assert_eq!(
            dst.list_repositories(None, None).await.unwrap(),
            ["app/api", "app/web", "fresh/thing"]
        );
        assert_eq!(
            dst.list_tags(&repo("app/web"), None, None)
                .await
                .unwrap()
                .unwrap(),
            ["latest", "multi", "v1"]
        );

        // Copying again is refused: the destination is no longer empty.
        let again = copy_sqlite_to_postgres(&src, &dst, |_, _| {}).await;
        assert!(
            matches!(&again, Err(MigrateError::DestinationNotEmpty(t)) if t == "repositories"),
            "{again:?}"
        );
        dst.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_non_empty_destination_and_writes_nothing() {
    with_postgres_database(|url| async move {
        let (_dir, src, _) = filled_sqlite().await;
        let dst = PostgresStore::open(&url).await.unwrap();
        // A server once started on the database made its first admin.
        dst.create_user(new_user("admin", true)).await.unwrap();
        let err = copy_sqlite_to_postgres(&src, &dst, |_, _| {})
            .await
            .unwrap_err();
        assert!(
            matches!(&err, MigrateError::DestinationNotEmpty(t) if t == "users"),
            "{err:?}"
        );
        assert!(err.to_string().contains("\"users\""), "{err}");
        assert!(
            bulwark_meta::check_sqlite_to_postgres(&src, &dst)
                .await
                .is_err()
        );
        assert!(dst.list_repositories(None, None).await.unwrap().is_empty());
        assert_eq!(dst.list_users().await.unwrap().len(), 1);
        dst.close().await;
    })
    .await;
}

/// Tables are not a fixed list: an extra table is copied with every supported conversion,
/// its identity sequence reset; a type the copy cannot convert is an error naming the column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_any_table_and_converts_by_destination_type() {
    with_postgres_database(|url| async move {
        let (dir, src, _) = filled_sqlite().await;
        let db = dir.path().join("bulwark.db");
        sqlite_exec(
            &db,
            "CREATE TABLE zz_extra (id INTEGER PRIMARY KEY, flag INTEGER, small INTEGER, \
             mid INTEGER, data BLOB, score REAL, whole REAL, note TEXT, label TEXT);
             INSERT INTO zz_extra VALUES (5, 1, -3, 70000, x'00ff10', 1.5, 2, 'é''\"', 'x');
             INSERT INTO zz_extra VALUES (9, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             CREATE TABLE zz_keyed (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID;",
        )
        .await;
        // More rows than one batch, keyed by a composite primary key (WITHOUT ROWID paging).
        let values = (0..1234)
            .map(|i| format!("('k{}', {}, 'v{i}')", i % 7, i))
            .collect::<Vec<_>>()
            .join(", ");
        sqlite_exec(&db, &format!("INSERT INTO zz_keyed VALUES {values}")).await;
        let dst = PostgresStore::open(&url).await.unwrap();
        pg_exec(
            &url,
            "CREATE TABLE zz_extra (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
             flag BOOLEAN, small SMALLINT, mid INTEGER, data BYTEA, score DOUBLE PRECISION, \
             whole REAL, note VARCHAR(20), label CHARACTER(1));
             CREATE TABLE zz_keyed (a TEXT, b BIGINT, v TEXT, PRIMARY KEY (a, b));",
        )
        .await;
        let report = copy_sqlite_to_postgres(&src, &dst, |_, _| {})
            .await
            .unwrap();
        assert!(report.tables.contains(&("zz_extra".to_owned(), 2)));
        assert!(report.tables.contains(&("zz_keyed".to_owned(), 1234)));
        assert!(report.sequences.contains(&"zz_extra.id".to_owned()));

        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let rows = sqlx::query("SELECT * FROM zz_extra ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let r = &rows[0];
        assert_eq!(r.get::<i64, _>("id"), 5);
        assert_eq!(r.get::<Option<bool>, _>("flag"), Some(true));
        assert_eq!(r.get::<Option<i16>, _>("small"), Some(-3));
        assert_eq!(r.get::<Option<i32>, _>("mid"), Some(70000));
        assert_eq!(
            r.get::<Option<Vec<u8>>, _>("data"),
            Some(vec![0, 0xff, 0x10])
        );
        assert_eq!(r.get::<Option<f64>, _>("score"), Some(1.5));
        assert_eq!(r.get::<Option<f32>, _>("whole"), Some(2.0));
        assert_eq!(r.get::<Option<String>, _>("note").as_deref(), Some("é'\""));
        assert_eq!(r.get::<Option<String>, _>("label").as_deref(), Some("x"));
        let r = &rows[1];
        assert_eq!(r.get::<Option<bool>, _>("flag"), Some(false));
        assert_eq!(r.get::<Option<i16>, _>("small"), None);
        assert_eq!(r.get::<Option<Vec<u8>>, _>("data"), None);
        assert_eq!(r.get::<Option<String>, _>("note"), None);
        let next: i64 =
            sqlx::query_scalar("INSERT INTO zz_extra (flag) VALUES (true) RETURNING id")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(next, 10);
        let keyed: Vec<(String, i64, String)> =
            sqlx::query_as("SELECT a, b, v FROM zz_keyed ORDER BY b")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(keyed.len(), 1234);
        assert_eq!(keyed[1233], ("k1".to_owned(), 1233, "v1233".to_owned()));
        conn.close().await.ok();
        dst.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_unsupported_types_bad_values_and_schema_mismatch() {
    with_postgres_database(|url| async move {
        let (dir, src, _) = filled_sqlite().await;
        let db = dir.path().join("bulwark.db");
        sqlite_exec(&db, "CREATE TABLE zz_doc (id INTEGER PRIMARY KEY, doc TEXT)").await;
        let dst = PostgresStore::open(&url).await.unwrap();

        // No such table in PostgreSQL.
        let err = copy_sqlite_to_postgres(&src, &dst, |_, _| {}).await.unwrap_err();
        assert!(err.to_string().contains("zz_doc"), "{err}");

        // A column type the copy does not convert to.
        pg_exec(&url, "CREATE TABLE zz_doc (id BIGINT PRIMARY KEY, doc JSONB)").await;
        let err = copy_sqlite_to_postgres(&src, &dst, |_, _| {}).await.unwrap_err();
        assert!(
            err.to_string().contains("zz_doc.doc") && err.to_string().contains("jsonb"),
            "{err}"
        );

        // A value that does not fit: 2 into a boolean. Nothing is committed.
        pg_exec(&url, "DROP TABLE zz_doc; CREATE TABLE zz_doc (id BIGINT PRIMARY KEY, doc BOOLEAN)")
            .await;
        sqlite_exec(&db, "INSERT INTO zz_doc VALUES (1, 2)").await;
        let err = copy_sqlite_to_postgres(&src, &dst, |_, _| {}).await.unwrap_err();
        assert!(err.to_string().contains("zz_doc.doc"), "{err}");
        assert!(dst.list_users().await.unwrap().is_empty());
        assert!(dst.list_repositories(None, None).await.unwrap().is_empty());

        // Different applied migrations.
                sqlite_exec(&db, "DELETE FROM zz_doc").await;
        pg_exec(
            &url,
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99999, 'future', true, '\\x00', 0)",
        )
        .await;
        let err = copy_sqlite_to_postgres(&src, &dst, |_, _| {}).await.unwrap_err();
        assert!(matches!(err, MigrateError::SchemaMismatch { .. }), "{err:?}");
        assert!(dst.list_users().await.unwrap().is_empty());
        dst.close().await;
    })
    .await;
}
