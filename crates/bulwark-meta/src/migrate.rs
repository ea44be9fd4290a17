//! Copying the embedded SQLite metadata store into an empty PostgreSQL one (`bulwark migrate`).
//!
//! Both stores are opened normally first, so both schemas are at this build's latest version;
//! the copy refuses when their applied migrations differ, or when any destination table
//! already holds a row. Tables are copied in SQLite creation order (`sqlite_master` by rowid),
//! which is the order the migrations create them in and so foreign-key safe; whatever tables
//! exist are copied, not a fixed list. Columns are matched by name and each value is converted
//! by the PostgreSQL column's type (`information_schema.columns`): `smallint`/`integer`/
//! `bigint` from INTEGER, `boolean` from INTEGER 0/1, `text`/`varchar` from TEXT, `bytea` from
//! BLOB (or TEXT), `real`/`double precision` from REAL (or INTEGER); NULL stays NULL. Any other
//! column type is an error naming the column.
//!
//! The source is read inside one SQLite read transaction (one consistent snapshot) in keyset
//! pages, and written in multi-row INSERTs inside one PostgreSQL transaction, so the copy is
//! all or nothing. Identity and serial sequences are then set past the largest copied id, the
//! per-table row counts of both sides are compared, and only then is the transaction committed.

use std::collections::HashMap;

use sqlx::postgres::PgArguments;
use sqlx::sqlite::SqliteRow;
use sqlx::{Arguments, Postgres, Row, Sqlite, Transaction, TypeInfo, ValueRef};

use crate::{PostgresStore, SqliteStore, to_u64};

/// Rows per INSERT, at most (and fewer for wide tables: PostgreSQL takes 65535 parameters).
const BATCH_ROWS: usize = 500;
/// Rows per INSERT for tables with a BLOB/bytea column (manifests: up to a few MiB each).
const BATCH_ROWS_WITH_BYTES: usize = 32;
const MAX_PARAMETERS: usize = 65_535;
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// Why a metadata migration failed or was refused. Nothing was committed in any case.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "the databases are at different schema versions (SQLite: migrations {sqlite:?}, \
         PostgreSQL: {postgres:?}); run both with the same Bulwark version"
    )]
    SchemaMismatch {
        sqlite: Vec<i64>,
        postgres: Vec<i64>,
    },
    #[error(
        "the destination table {0:?} already has rows: migrate only into an empty database \
         (create a new one, and do not start a server on it before migrating)"
    )]
    DestinationNotEmpty(String),
    /// A table or column without a counterpart, an unsupported column type or a value that
    /// does not fit its destination column.
    #[error("{0}")]
    Schema(String),
    #[error("row count mismatch in table {table:?}: {sqlite} in SQLite, {postgres} in PostgreSQL")]
    CountMismatch {
        table: String,
        sqlite: u64,
        postgres: u64,
    },
    #[error("SQLite, {context}: {error}")]
    Sqlite { context: String, error: sqlx::Error },
    #[error("PostgreSQL, {context}: {error}")]
    Postgres { context: String, error: sqlx::Error },
}

type Result<T, E = MigrateError> = std::result::Result<T, E>;

fn sqlite_err(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> MigrateError {
    let context = context.into();
    move |error| MigrateError::Sqlite { context, error }
}

fn pg_err(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> MigrateError {
    let context = context.into();
    move |error| MigrateError::Postgres { context, error }
}

/// What [`copy_sqlite_to_postgres`] copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// The latest applied migration of both databases.
    pub schema_version: Option<i64>,
    /// Every copied table with its row count (verified on both sides), in copy order.
    pub tables: Vec<(String, u64)>,
    /// `table.column` of every identity/serial sequence reset to the column's largest value.
    pub sequences: Vec<String>,
}

impl MigrationReport {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|(_, rows)| rows).sum()
    }
}

/// A PostgreSQL column type the copy converts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgType {
    Int2,
    Int4,
    Int8,
    Bool,
    Text,
    Bytea,
    Float4,
    Float8,
}

impl PgType {
    fn from_information_schema(data_type: &str) -> Option<PgType> {
        Some(match data_type {
            "smallint" => PgType::Int2,
            "integer" => PgType::Int4,
            "bigint" => PgType::Int8,
            "boolean" => PgType::Bool,
            "text" | "character varying" | "character" => PgType::Text,
            "bytea" => PgType::Bytea,
            "real" => PgType::Float4,
            "double precision" => PgType::Float8,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
struct PgColumn {
    name: String,
    data_type: String,
    identity: bool,
    serial: bool,
}

/// A SQLite value by its storage class.
#[derive(Debug, Clone)]
enum SqlValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl SqlValue {
    fn class(&self) -> &'static str {
        match self {
            SqlValue::Null => "NULL",
            SqlValue::Int(_) => "INTEGER",
            SqlValue::Real(_) => "REAL",
            SqlValue::Text(_) => "TEXT",
            SqlValue::Blob(_) => "BLOB",
        }
    }

    fn bind_sqlite<'q>(
        self,
        q: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
        match self {
            SqlValue::Null => q.bind(None::<i64>),
            SqlValue::Int(v) => q.bind(v),
            SqlValue::Real(v) => q.bind(v),
            SqlValue::Text(v) => q.bind(v),
            SqlValue::Blob(v) => q.bind(v),
        }
    }
}

/// One table to copy: its columns in SQLite order with their destination types.
struct TablePlan {
    name: String,
    columns: Vec<(String, PgType)>,
    /// Primary-key columns (positions in `columns`) of a WITHOUT ROWID table, paged by key;
    /// `None`: paged by rowid.
    key: Option<Vec<usize>>,
    overriding: bool,
    batch_rows: usize,
}

/// Quote an identifier for SQLite and PostgreSQL alike.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn sqlite_versions(tx: &mut Transaction<'_, Sqlite>) -> Result<Vec<i64>> {
    sqlx::query_scalar(&format!(
        "SELECT version FROM {MIGRATIONS_TABLE} WHERE success ORDER BY version"
    ))
    .fetch_all(&mut **tx)
    .await
    .map_err(sqlite_err("reading the applied migrations"))
}

async fn postgres_versions(tx: &mut Transaction<'_, Postgres>) -> Result<Vec<i64>> {
    sqlx::query_scalar(&format!(
        "SELECT version FROM {MIGRATIONS_TABLE} WHERE success ORDER BY version"
    ))
    .fetch_all(&mut **tx)
    .await
    .map_err(pg_err("reading the applied migrations"))
}

/// User tables of the SQLite database in creation order.
async fn sqlite_tables(tx: &mut Transaction<'_, Sqlite>) -> Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT name FROM sqlite_master
         WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> ?1
         ORDER BY rowid",
    )
    .bind(MIGRATIONS_TABLE)
    .fetch_all(&mut **tx)
    .await
    .map_err(sqlite_err("listing tables"))
}

/// Base tables of the PostgreSQL schema in use (bar the migrations table) with their columns.
async fn postgres_tables(
    tx: &mut Transaction<'_, Postgres>,
) -> Result<HashMap<String, Vec<PgColumn>>> {
    let rows = sqlx::query(
        "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name,
                c.data_type::text AS data_type, c.is_identity::text = 'YES' AS identity,
                COALESCE(c.column_default::text LIKE 'nextval(%', false) AS serial
         FROM information_schema.columns c
         JOIN information_schema.tables t
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
           AND c.table_name <> $1
         ORDER BY c.table_name, c.ordinal_position",
    )
    .bind(MIGRATIONS_TABLE)
    .fetch_all(&mut **tx)
    .await
    .map_err(pg_err("reading information_schema.columns"))?;
    let mut tables: HashMap<String, Vec<PgColumn>> = HashMap::new();
    for row in rows {
        let get = |c: &str| row.try_get::<String, _>(c);
        let table = get("table_name").map_err(pg_err("reading information_schema"))?;
        let column = PgColumn {
            name: get("column_name").map_err(pg_err("reading information_schema"))?,
            data_type: get("data_type").map_err(pg_err("reading information_schema"))?,
            identity: row
                .try_get("identity")
                .map_err(pg_err("reading information_schema"))?,
            serial: row
                .try_get("serial")
                .map_err(pg_err("reading information_schema"))?,
        };
        tables.entry(table).or_default().push(column);
    }
    Ok(tables)
}

/// The first of `tables` holding a row.
async fn first_non_empty(
    tx: &mut Transaction<'_, Postgres>,
    tables: impl IntoIterator<Item = &str>,
) -> Result<Option<String>> {
    for table in tables {
        let any: bool =
            sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {})", ident(table)))
                .fetch_one(&mut **tx)
                .await
                .map_err(pg_err(format!("checking whether {table} is empty")))?;
        if any {
            return Ok(Some(table.to_owned()));
        }
    }
    Ok(None)
}

/// The SQLite tables in copy order followed by the destination-only ones: the order in which
/// the emptiness check names a table.
fn check_order<'a>(
    sqlite: &'a [String],
    postgres: &'a HashMap<String, Vec<PgColumn>>,
) -> Vec<&'a str> {
    let mut order: Vec<&str> = sqlite
        .iter()
        .map(String::as_str)
        .filter(|t| postgres.contains_key(*t))
        .collect();
    let mut rest: Vec<&str> = postgres
        .keys()
        .map(String::as_str)
        .filter(|t| !sqlite.iter().any(|s| s == t))
        .collect();
    rest.sort_unstable();
    order.extend(rest);
    order
}

fn check_versions(sqlite: Vec<i64>, postgres: Vec<i64>) -> Result<Option<i64>> {
    if sqlite != postgres {
        return Err(MigrateError::SchemaMismatch { sqlite, postgres });
    }
    Ok(sqlite.last().copied())
}

/// The checks [`copy_sqlite_to_postgres`] starts with, without copying anything: the applied
/// migrations match, every SQLite table and column has a destination of a supported type, and
/// the destination is empty. Lets a caller fail fast before longer work (copying blobs).
pub async fn check_sqlite_to_postgres(src: &SqliteStore, dst: &PostgresStore) -> Result<()> {
    let mut rtx = src
        .reader
        .begin()
        .await
        .map_err(sqlite_err("starting a read transaction"))?;
    let mut tx = dst
        .pool
        .begin()
        .await
        .map_err(pg_err("starting a transaction"))?;
    check_versions(
        sqlite_versions(&mut rtx).await?,
        postgres_versions(&mut tx).await?,
    )?;
    let tables = sqlite_tables(&mut rtx).await?;
    let pg = postgres_tables(&mut tx).await?;
    for table in &tables {
        plan_table(&mut rtx, table, &pg).await?;
    }
    if let Some(table) = first_non_empty(&mut tx, check_order(&tables, &pg)).await? {
        return Err(MigrateError::DestinationNotEmpty(table));
    }
    tx.rollback().await.map_err(pg_err("ending the check"))?;
    rtx.rollback()
        .await
        .map_err(sqlite_err("ending the check"))?;
    Ok(())
}

async fn plan_table(
    rtx: &mut Transaction<'_, Sqlite>,
    table: &str,
    pg: &HashMap<String, Vec<PgColumn>>,
) -> Result<TablePlan> {
    let pg_columns = pg.get(table).ok_or_else(|| {
        MigrateError::Schema(format!(
            "table {table:?} exists in the SQLite database but not in PostgreSQL"
        ))
    })?;
    let rows = sqlx::query("SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid")
        .bind(table)
        .fetch_all(&mut **rtx)
        .await
        .map_err(sqlite_err(format!("reading the columns of {table}")))?;
    let mut columns = Vec::with_capacity(rows.len());
    let mut pk: Vec<(i64, usize)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let name: String = row
            .try_get("name")
            .map_err(sqlite_err(format!("reading the columns of {table}")))?;
        let pk_pos: i64 = row
            .try_get("pk")
            .map_err(sqlite_err(format!("reading the columns of {table}")))?;
        if pk_pos > 0 {
            pk.push((pk_pos, i));
        }
        let pg_column = pg_columns.iter().find(|c| c.name == name).ok_or_else(|| {
            MigrateError::Schema(format!(
                "column {table}.{name} exists in the SQLite database but not in PostgreSQL"
            ))
        })?;
        let ty = PgType::from_information_schema(&pg_column.data_type).ok_or_else(|| {
            MigrateError::Schema(format!(
                "column {table}.{name} has PostgreSQL type {:?}, which the migration cannot \
                 convert to (supported: smallint, integer, bigint, boolean, text, varchar, \
                 bytea, real, double precision)",
                pg_column.data_type
            ))
        })?;
        columns.push((name, ty));
    }
    if columns.is_empty() {
        return Err(MigrateError::Schema(format!(
            "table {table:?} has no columns in SQLite"
        )));
    }
    let without_rowid: bool = sqlx::query_scalar(
        "SELECT COALESCE((SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1), 0)",
    )
    .bind(table)
    .fetch_one(&mut **rtx)
    .await
    .map_err(sqlite_err(format!("inspecting table {table}")))?;
    let key = if without_rowid {
        pk.sort_unstable();
        Some(pk.into_iter().map(|(_, i)| i).collect::<Vec<_>>())
    } else {
        None
    };
    let has_bytes = columns.iter().any(|(_, t)| *t == PgType::Bytea);
    let max_rows = if has_bytes {
        BATCH_ROWS_WITH_BYTES
    } else {
        BATCH_ROWS
    };
    Ok(TablePlan {
        name: table.to_owned(),
        batch_rows: max_rows.min(MAX_PARAMETERS / columns.len()).max(1),
        overriding: pg_columns.iter().any(|c| c.identity),
        columns,
        key,
    })
}

fn read_value(row: &SqliteRow, i: usize) -> std::result::Result<SqlValue, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(SqlValue::Null);
    }
    let class = raw.type_info().name().to_owned();
    Ok(match class.as_str() {
        "INTEGER" => SqlValue::Int(row.try_get_unchecked(i)?),
        "REAL" => SqlValue::Real(row.try_get_unchecked(i)?),
        "TEXT" => SqlValue::Text(row.try_get_unchecked(i)?),
        _ => SqlValue::Blob(row.try_get_unchecked(i)?),
    })
}

/// Bind `value` as a parameter of PostgreSQL type `ty`.
fn bind_converted(
    args: &mut PgArguments,
    value: SqlValue,
    ty: PgType,
    table: &str,
    column: &str,
) -> Result<()> {
    let bad = |value: &SqlValue, why: &str| {
        MigrateError::Schema(format!(
            "{table}.{column}: a SQLite {} value {why} (PostgreSQL column type {ty:?})",
            value.class()
        ))
    };
    let added = match (ty, value) {
        (PgType::Int2, SqlValue::Null) => args.add(None::<i16>),
        (PgType::Int4, SqlValue::Null) => args.add(None::<i32>),
        (PgType::Int8, SqlValue::Null) => args.add(None::<i64>),
        (PgType::Bool, SqlValue::Null) => args.add(None::<bool>),
        (PgType::Text, SqlValue::Null) => args.add(None::<String>),
        (PgType::Bytea, SqlValue::Null) => args.add(None::<Vec<u8>>),
        (PgType::Float4, SqlValue::Null) => args.add(None::<f32>),
        (PgType::Float8, SqlValue::Null) => args.add(None::<f64>),
        (PgType::Int2, SqlValue::Int(v)) => match i16::try_from(v) {
            Ok(v) => args.add(v),
            Err(_) => return Err(bad(&SqlValue::Int(v), &format!("{v} is out of range"))),
        },
        (PgType::Int4, SqlValue::Int(v)) => match i32::try_from(v) {
            Ok(v) => args.add(v),
            Err(_) => return Err(bad(&SqlValue::Int(v), &format!("{v} is out of range"))),
        },
        (PgType::Int8, SqlValue::Int(v)) => args.add(v),
        (PgType::Bool, SqlValue::Int(v)) => match v {
            0 => args.add(false),
            1 => args.add(true),
            v => return Err(bad(&SqlValue::Int(v), &format!("{v} is not 0 or 1"))),
        },
        (PgType::Text, SqlValue::Text(v)) => args.add(v),
        (PgType::Bytea, SqlValue::Blob(v)) => args.add(v),
        (PgType::Bytea, SqlValue::Text(v)) => args.add(v.into_bytes()),
        // Written as f32 on purpose: the destination column is `real`.
        (PgType::Float4, SqlValue::Real(v)) => args.add(v as f32),
        (PgType::Float4, SqlValue::Int(v)) => args.add(v as f32),
        (PgType::Float8, SqlValue::Real(v)) => args.add(v),
        (PgType::Float8, SqlValue::Int(v)) => args.add(v as f64),
        (_, value) => return Err(bad(&value, "cannot be converted")),
    };
    added.map_err(|e| MigrateError::Schema(format!("{table}.{column}: cannot encode a value: {e}")))
}

/// Copy `plan`'s rows; returns how many.
async fn copy_table(
    rtx: &mut Transaction<'_, Sqlite>,
    tx: &mut Transaction<'_, Postgres>,
    plan: &TablePlan,
    progress: &mut impl FnMut(&str, u64),
) -> Result<u64> {
    let table = ident(&plan.name);
    let column_list = plan
        .columns
        .iter()
        .map(|(c, _)| ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let ncols = plan.columns.len();
    // Keyset pages: by rowid, or by primary key for WITHOUT ROWID tables.
    let (first_page, next_page, offset) = match &plan.key {
        None => {
            let q = format!(
                "SELECT rowid, {column_list} FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2"
            );
            (q.clone(), q, 1)
        }
        Some(key) => {
            let key_cols = key
                .iter()
                .filter_map(|i| plan.columns.get(*i))
                .map(|(c, _)| ident(c))
                .collect::<Vec<_>>();
            let order = key_cols.join(", ");
            let placeholders = (1..=key_cols.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let limit = key_cols.len() + 1;
            let first = format!("SELECT {column_list} FROM {table} ORDER BY {order} LIMIT ?1");
            let next = format!(
                "SELECT {column_list} FROM {table} WHERE ({order}) > ({placeholders}) \
                 ORDER BY {order} LIMIT ?{limit}"
            );
            (first, next, 0)
        }
    };
    let insert_head = format!(
        "INSERT INTO {table} ({column_list}){} VALUES ",
        if plan.overriding {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        }
    );
    let page_size = i64::try_from(plan.batch_rows).unwrap_or(1);
    let mut last_rowid = i64::MIN;
    let mut last_key: Option<Vec<SqlValue>> = None;
    let mut copied: u64 = 0;
    loop {
        let query = match (&plan.key, &last_key) {
            (None, _) => sqlx::query(&first_page).bind(last_rowid).bind(page_size),
            (Some(_), None) => sqlx::query(&first_page).bind(page_size),
            (Some(_), Some(key)) => {
                let mut q = sqlx::query(&next_page);
                for v in key.iter().cloned() {
                    q = v.bind_sqlite(q);
                }
                q.bind(page_size)
            }
        };
        let rows = query
            .fetch_all(&mut **rtx)
            .await
            .map_err(sqlite_err(format!("reading {}", plan.name)))?;
        let Some(last) = rows.last() else {
            break;
        };
        match &plan.key {
            None => {
                last_rowid = last
                    .try_get_unchecked::<i64, _>(0)
                    .map_err(sqlite_err(format!("reading {}", plan.name)))?;
            }
            Some(key) => {
                let mut values = Vec::with_capacity(key.len());
                for i in key {
                    values.push(
                        read_value(last, *i + offset)
                            .map_err(sqlite_err(format!("reading {}", plan.name)))?,
                    );
                }
                last_key = Some(values);
            }
        }
        let mut args = PgArguments::default();
        let mut sql = insert_head.clone();
        let mut n = 0usize;
        for (r, row) in rows.iter().enumerate() {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for (i, (column, ty)) in plan.columns.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                sql.push('$');
                sql.push_str(&n.to_string());
                let value = read_value(row, i + offset)
                    .map_err(sqlite_err(format!("reading {}.{column}", plan.name)))?;
                bind_converted(&mut args, value, *ty, &plan.name, column)?;
            }
            sql.push(')');
        }
        debug_assert_eq!(n, rows.len() * ncols);
        sqlx::query_with(&sql, args)
            .execute(&mut **tx)
            .await
            .map_err(pg_err(format!("inserting into {}", plan.name)))?;
        copied += rows.len() as u64;
        progress(&plan.name, copied);
        if rows.len() < plan.batch_rows {
            break;
        }
    }
    Ok(copied)
}

/// Set every identity/serial sequence of the destination past its column's largest value.
async fn reset_sequences(
    tx: &mut Transaction<'_, Postgres>,
    pg: &HashMap<String, Vec<PgColumn>>,
) -> Result<Vec<String>> {
    let mut tables: Vec<&String> = pg.keys().collect();
    tables.sort_unstable();
    let mut reset = Vec::new();
    for table in tables {
        for column in pg
            .get(table)
            .into_iter()
            .flatten()
            .filter(|c| c.identity || c.serial)
        {
            let context = format!("resetting the sequence of {table}.{}", column.name);
            let sequence: Option<String> =
                sqlx::query_scalar("SELECT pg_get_serial_sequence($1, $2)")
                    .bind(ident(table))
                    .bind(&column.name)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(pg_err(context.clone()))?;
            let Some(sequence) = sequence else { continue };
            // Next value: max + 1, or the start (1) on an empty table.
            sqlx::query(&format!(
                "SELECT setval($1::regclass, COALESCE((SELECT MAX({c}) FROM {t}), 0) + 1, false)",
                c = ident(&column.name),
                t = ident(table)
            ))
            .bind(&sequence)
            .execute(&mut **tx)
            .await
            .map_err(pg_err(context))?;
            reset.push(format!("{table}.{}", column.name));
        }
    }
    Ok(reset)
}

/// Copy every table of `src` into `dst`, all or nothing (see the module docs). `progress` is
/// called after every batch with the table and its rows copied so far, and with 0 for an
/// empty table.
pub async fn copy_sqlite_to_postgres(
    src: &SqliteStore,
    dst: &PostgresStore,
    mut progress: impl FnMut(&str, u64),
) -> Result<MigrationReport> {
    // One read transaction: every table comes from the same snapshot.
    let mut rtx = src
        .reader
        .begin()
        .await
        .map_err(sqlite_err("starting a read transaction"))?;
    let mut tx = dst
        .pool
        .begin()
        .await
        .map_err(pg_err("starting a transaction"))?;
    let schema_version = check_versions(
        sqlite_versions(&mut rtx).await?,
        postgres_versions(&mut tx).await?,
    )?;
    let tables = sqlite_tables(&mut rtx).await?;
    let pg = postgres_tables(&mut tx).await?;
    let mut plans = Vec::with_capacity(tables.len());
    for table in &tables {
        plans.push(plan_table(&mut rtx, table, &pg).await?);
    }
    let order = check_order(&tables, &pg);
    // Nobody writes the destination while it is filled (a server started on it meanwhile
    // waits), so it is still empty when committed.
    if !order.is_empty() {
        sqlx::query("SET LOCAL lock_timeout = '30s'")
            .execute(&mut *tx)
            .await
            .map_err(pg_err("setting lock_timeout"))?;
        let list = order
            .iter()
            .map(|t| ident(t))
            .collect::<Vec<_>>()
            .join(", ");
        sqlx::query(&format!("LOCK TABLE {list} IN EXCLUSIVE MODE"))
            .execute(&mut *tx)
            .await
            .map_err(pg_err("locking the destination tables"))?;
    }
    if let Some(table) = first_non_empty(&mut tx, order.iter().copied()).await? {
        return Err(MigrateError::DestinationNotEmpty(table));
    }
    let mut report = MigrationReport {
        schema_version,
        ..MigrationReport::default()
    };
    for plan in &plans {
        let copied = copy_table(&mut rtx, &mut tx, plan, &mut progress).await?;
        if copied == 0 {
            progress(&plan.name, 0);
        }
        report.tables.push((plan.name.clone(), copied));
    }
    report.sequences = reset_sequences(&mut tx, &pg).await?;
    for (table, copied) in &report.tables {
        let quoted = ident(table);
        let sqlite: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {quoted}"))
            .fetch_one(&mut *rtx)
            .await
            .map_err(sqlite_err(format!("counting {table}")))?;
        let postgres: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {quoted}"))
            .fetch_one(&mut *tx)
            .await
            .map_err(pg_err(format!("counting {table}")))?;
        let (sqlite, postgres) = (to_u64(sqlite), to_u64(postgres));
        if sqlite != postgres || *copied != postgres {
            return Err(MigrateError::CountMismatch {
                table: table.clone(),
                sqlite,
                postgres,
            });
        }
    }
    tx.commit().await.map_err(pg_err("committing the copy"))?;
    rtx.rollback()
        .await
        .map_err(sqlite_err("ending the read transaction"))?;
    Ok(report)
}
