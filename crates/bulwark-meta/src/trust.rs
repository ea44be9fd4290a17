//! [`PolicyStore`] on SQLite and PostgreSQL: trust policies per project and the folded log of
//! pull decisions (schema in `migrations/*/0005_trust.sql`). Both dialects accept the same
//! statements (`$n` placeholders, `ON CONFLICT … DO UPDATE`, `RETURNING`), so the SQL is
//! written once.

use async_trait::async_trait;
use bulwark_trust::enforce::{DecisionRecord, PolicyStore, SourceError, StoredPolicy};

use crate::{PostgresStore, SqliteStore};

/// Decisions older than this are pruned when new ones are written.
const KEEP_DECISIONS_SECS: i64 = 90 * 24 * 3600;

const GET: &str = "SELECT document, version, updated_at, updated_by FROM trust_policies \
                   WHERE project = $1 AND document IS NOT NULL";
const PUT: &str = "INSERT INTO trust_policies (project, document, version, updated_at, updated_by) \
                   VALUES ($1, $2, 1, $3, $4) \
                   ON CONFLICT (project) DO UPDATE SET document = excluded.document, \
                   version = trust_policies.version + 1, updated_at = excluded.updated_at, \
                   updated_by = excluded.updated_by RETURNING version";
const DELETE: &str = "UPDATE trust_policies SET document = NULL, version = version + 1, \
                      updated_at = $2 WHERE project = $1 AND document IS NOT NULL";
const INSERT_DECISION: &str = "INSERT INTO trust_decisions (project, repository, digest, subject, \
                               decision, reason, count, first_at, last_at) \
                               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const PRUNE: &str = "DELETE FROM trust_decisions WHERE last_at < $1";
const LIST: &str = "SELECT project, repository, digest, subject, decision, reason, count, \
                    first_at, last_at FROM trust_decisions WHERE project = $1 \
                    ORDER BY last_at DESC, id DESC LIMIT $2";

type PolicyRow = (String, i64, i64, String);
type DecisionRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
);

fn err(e: sqlx::Error) -> SourceError {
    SourceError::new(e)
}

fn policy_from((document, version, updated_at, updated_by): PolicyRow) -> StoredPolicy {
    StoredPolicy {
        document,
        version,
        updated_at,
        updated_by,
    }
}

fn decision_from(r: DecisionRow) -> DecisionRecord {
    DecisionRecord {
        project: r.0,
        repository: r.1,
        digest: r.2,
        subject: r.3,
        decision: r.4,
        reason: r.5,
        count: r.6,
        first_at: r.7,
        last_at: r.8,
    }
}

/// One implementation for both backends: `$pool` names the pool to write through and
/// `$read` the one to read from.
macro_rules! policy_store {
    ($store:ty, $write:ident, $read:ident) => {
        #[async_trait]
        impl PolicyStore for $store {
            async fn trust_policy(
                &self,
                project: &str,
            ) -> Result<Option<StoredPolicy>, SourceError> {
                let row: Option<PolicyRow> = sqlx::query_as(GET)
                    .bind(project)
                    .fetch_optional(&self.$read)
                    .await
                    .map_err(err)?;
                Ok(row.map(policy_from))
            }

            async fn put_trust_policy(
                &self,
                project: &str,
                document: &str,
                by: &str,
                now: i64,
            ) -> Result<i64, SourceError> {
                sqlx::query_scalar(PUT)
                    .bind(project)
                    .bind(document)
                    .bind(now)
                    .bind(by)
                    .fetch_one(&self.$write)
                    .await
                    .map_err(err)
            }

            async fn delete_trust_policy(&self, project: &str) -> Result<bool, SourceError> {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                let done = sqlx::query(DELETE)
                    .bind(project)
                    .bind(now)
                    .execute(&self.$write)
                    .await
                    .map_err(err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn record_trust_decisions(
                &self,
                rows: &[DecisionRecord],
            ) -> Result<(), SourceError> {
                let mut tx = self.$write.begin().await.map_err(err)?;
                let mut newest = 0;
                for r in rows {
                    newest = newest.max(r.last_at);
                    sqlx::query(INSERT_DECISION)
                        .bind(&r.project)
                        .bind(&r.repository)
                        .bind(&r.digest)
                        .bind(&r.subject)
                        .bind(&r.decision)
                        .bind(&r.reason)
                        .bind(r.count)
                        .bind(r.first_at)
                        .bind(r.last_at)
                        .execute(&mut *tx)
                        .await
                        .map_err(err)?;
                }
                sqlx::query(PRUNE)
                    .bind(newest - KEEP_DECISIONS_SECS)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                tx.commit().await.map_err(err)
            }

            async fn trust_decisions(
                &self,
                project: &str,
                limit: u32,
            ) -> Result<Vec<DecisionRecord>, SourceError> {
                let rows: Vec<DecisionRow> = sqlx::query_as(LIST)
                    .bind(project)
                    .bind(i64::from(limit))
                    .fetch_all(&self.$read)
                    .await
                    .map_err(err)?;
                Ok(rows.into_iter().map(decision_from).collect())
            }
        }
    };
}

policy_store!(SqliteStore, writer, reader);
policy_store!(PostgresStore, pool, pool);
