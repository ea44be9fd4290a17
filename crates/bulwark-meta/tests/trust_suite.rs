#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The trust-policy store contract (`bulwark_trust::enforce::PolicyStore`) on SQLite and, with
//! `BULWARK_TEST_POSTGRES_URL`, PostgreSQL: versions that never repeat (not even across a
//! delete), the folded decision log with its order, limit and pruning.

mod common;

use std::sync::Arc;

use bulwark_core::store::MetadataStore;
use bulwark_meta::{PostgresStore, SqliteStore};
use bulwark_trust::enforce::{DecisionRecord, PolicyStore};
use common::with_postgres_database;

type Store = Arc<dyn PolicyStore>;

async fn check_policy_versions(s: Store) {
    assert_eq!(s.trust_policy("team").await.unwrap(), None);
    assert_eq!(
        s.put_trust_policy("team", r#"{"a":1}"#, "admin", 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.put_trust_policy("team", r#"{"a":2}"#, "alice", 20)
            .await
            .unwrap(),
        2
    );
    let p = s.trust_policy("team").await.unwrap().unwrap();
    assert_eq!(p.document, r#"{"a":2}"#);
    assert_eq!(
        (p.version, p.updated_at, p.updated_by.as_str()),
        (2, 20, "alice")
    );
    // Other projects are separate.
    assert_eq!(s.trust_policy("other").await.unwrap(), None);
    assert_eq!(
        s.put_trust_policy("other", "{}", "admin", 30)
            .await
            .unwrap(),
        1
    );
    // A delete hides the policy but keeps counting, so a cached version is never reused.
    assert!(s.delete_trust_policy("team").await.unwrap());
    assert!(!s.delete_trust_policy("team").await.unwrap());
    assert!(!s.delete_trust_policy("never").await.unwrap());
    assert_eq!(s.trust_policy("team").await.unwrap(), None);
    assert_eq!(
        s.put_trust_policy("team", r#"{"a":3}"#, "admin", 40)
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        s.trust_policy("team").await.unwrap().unwrap().document,
        r#"{"a":3}"#
    );
}

fn row(project: &str, digest: &str, decision: &str, last_at: i64) -> DecisionRecord {
    DecisionRecord {
        project: project.to_owned(),
        repository: format!("{project}/app"),
        digest: digest.to_owned(),
        subject: "deployer".to_owned(),
        decision: decision.to_owned(),
        reason: format!("{decision} because"),
        count: 3,
        first_at: last_at - 5,
        last_at,
    }
}

async fn check_decision_log(s: Store) {
    let day = 24 * 3600;
    let now = 1_800_000_000;
    s.record_trust_decisions(&[
        row("team", "sha256:old", "allowed", now - 100 * day),
        row("team", "sha256:a", "allowed", now - 10),
    ])
    .await
    .unwrap();
    s.record_trust_decisions(&[
        row("team", "sha256:b", "denied", now),
        row("other", "sha256:c", "denied", now),
    ])
    .await
    .unwrap();
    let rows = s.trust_decisions("team", 10).await.unwrap();
    // Newest first; the 100-day-old row was pruned (90 days are kept).
    assert_eq!(
        rows.iter().map(|r| r.digest.as_str()).collect::<Vec<_>>(),
        ["sha256:b", "sha256:a"]
    );
    assert_eq!(rows[0], row("team", "sha256:b", "denied", now));
    assert_eq!(s.trust_decisions("team", 1).await.unwrap().len(), 1);
    assert_eq!(s.trust_decisions("other", 10).await.unwrap().len(), 1);
    assert!(s.trust_decisions("nobody", 10).await.unwrap().is_empty());
    s.record_trust_decisions(&[]).await.unwrap();
}

async fn open_sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("meta.db"))
        .await
        .unwrap();
    store.ready().await.unwrap();
    (dir, store)
}

macro_rules! suites {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    let (_dir, store) = super::open_sqlite().await;
                    super::$check(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $check() {
                    super::with_postgres_database(|url| async move {
                        let store = super::PostgresStore::open(&url).await.unwrap();
                        super::$check(std::sync::Arc::new(store.clone())).await;
                        store.close().await;
                    })
                    .await;
                }
            )*
        }
    };
}

suites!(check_policy_versions, check_decision_log);
