//! The `PostgreSQL` backend, for several `gantry serve` replicas sharing one database.
//!
//! It behaves as [`SqliteStore`](crate::sqlite::SqliteStore) does, call for call: the same
//! records, the same errors, the same ledger entries. Three things make that hold when
//! several processes write at once:
//!
//! - Every transaction that changes state first takes one transaction-level advisory
//!   lock ([`WRITE_LOCK`]), held until it commits or rolls back, so writers on all
//!   replicas run one at a time, like `SQLite`'s single writer. The ledger stays one chain
//!   (each entry reads the last one's sequence and hash under the lock), and
//!   [`Store::start_next`]'s "unless one is running there" check and its start are one
//!   atomic step. A writer's lock is released only after its commit is visible, so a
//!   reader never sees entry `n + 1` without entry `n`. Reads take no lock.
//! - The database refuses what the lock already prevents: a second running promotion in
//!   one environment (a partial unique index), two ledger entries at one sequence (its
//!   primary key), and any `UPDATE`, `DELETE` or `TRUNCATE` of the ledger (a trigger).
//! - [`PostgresStore::connect`] applies the migrations (`migrations/postgres`) while
//!   holding a session-level advisory lock ([`MIGRATION_LOCK`]), each migration in its own
//!   transaction, so replicas that start together apply each migration once.
//!
//! Connections come from a small pool ([`POOL_SIZE`]). Statements are prepared once per
//! connection and cached. Timestamps and JSON documents are stored as the same text the
//! `SQLite` backend stores; `migrations/postgres/0001_init.sql` says how the other column
//! types map.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction,
};
use gantry_core::{Digest, Grant, Name, Principal, PromotionState, ReleaseId};
use serde_json::json;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Config, NoTls, Row};

use crate::ledger::entry::Entry;
use crate::ledger::replay::Snapshot;
use crate::store::{
    ApprovalRecord, Artifact, Audit, DecisionRecord, EnvironmentRecord, EvidenceRecord,
    GrantRecord, Hold, Lease, NewApproval, NewDecision, NewEvidence, NewPromotion, NewRefusal,
    NewRelease, Outcome, PromotionRecord, ReleaseRecord, Result, StopRecord, Store, StoreError,
    TokenRecord,
};
use crate::stored::{
    Draft, check_runner, labels, labels_json, ledger_entry, ledger_row, parse, release_id,
};
use crate::time;

mod access;
mod governance;
mod live;

/// Migrations in order; each runs once, in its own transaction.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_access.sql")),
    (3, include_str!("../migrations/postgres/0003_leases.sql")),
    (
        4,
        include_str!("../migrations/postgres/0004_ledger_records_upgrade_grants.sql"),
    ),
];

/// The migration whose application also records, in Rust, the grants the upgrade to
/// roles made without a ledger entry.
const RECORDS_UPGRADE_GRANTS: i64 = 4;

/// The session-level advisory lock held while migrating: `GANTRY` in ASCII, then 1.
pub const MIGRATION_LOCK: i64 = 0x4741_4E54_5259_0001;

/// The transaction-level advisory lock every state-changing transaction takes first:
/// `GANTRY` in ASCII, then 2.
pub const WRITE_LOCK: i64 = 0x4741_4E54_5259_0002;

/// Connections per replica. Writers run one at a time whatever the pool size, each
/// holding a connection while it waits for the lock; the rest serve reads, which are
/// short. Eight keeps a handful of replicas far below `PostgreSQL`'s default of 100
/// connections.
pub const POOL_SIZE: usize = 8;

/// How long a call waits for a free connection, and for a new one to open, before it
/// fails instead of hanging.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`Store`] on a `PostgreSQL` database, shared by any number of replicas.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// Where it is connected, for `Debug`: host, port and database, never credentials.
    server: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore")
            .field("server", &self.server)
            .field("connections", &status.size)
            .field("max_connections", &status.max_size)
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the database `url` names (`postgres://user@host:port/database` or
    /// `host=… dbname=…`) and brings its schema up to date.
    ///
    /// Errors name the server, never the password. TLS is not supported yet: connect
    /// over loopback, a private network or a TLS-terminating proxy.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        let config: Config = url.parse().map_err(|e| {
            StoreError::Database(format!(
                "the PostgreSQL connection string is invalid: {}",
                describe(&e)
            ))
        })?;
        let server = server(&config);
        migrate(&config)
            .await
            .map_err(|e| in_context(e, &format!("migrating {server}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // Every statement checks its own outcome; a broken connection fails the
                // call that meets it and is dropped from the pool.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Database(format!("connection pool for {server}: {e}")))?;
        Ok(PostgresStore { pool, server })
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.pool.get().await.map_err(|error| {
            let reason = match error {
                deadpool_postgres::PoolError::Backend(error) => describe(&error),
                other => other.to_string(),
            };
            StoreError::Database(format!(
                "no connection to PostgreSQL at {}: {reason}",
                self.server
            ))
        })
    }
}

/// The server a configuration names, for messages: hosts, ports and database only.
fn server(config: &Config) -> String {
    let ports = config.get_ports();
    let port = |index: usize| ports.get(index).or(ports.first()).copied().unwrap_or(5432);
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| match host {
            tokio_postgres::config::Host::Tcp(name) => format!("{name}:{}", port(index)),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!(
        "{}/{}",
        if hosts.is_empty() {
            "(no host)".to_owned()
        } else {
            hosts.join(",")
        },
        config.get_dbname().unwrap_or("(default database)")
    )
}

fn in_context(error: StoreError, context: &str) -> StoreError {
    match error {
        StoreError::Database(message) => StoreError::Database(format!("{context}: {message}")),
        other => other,
    }
}

/// Applies the migrations not yet applied, on a connection of its own: the migration
/// lock lives as long as that session, so even a failed migration cannot leave it held.
async fn migrate(config: &Config) -> Result<()> {
    let (mut client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| StoreError::Database(format!("connecting: {}", describe(&e))))?;
    // The connection does the socket work, until the client is dropped.
    let connection = tokio::spawn(connection);
    let applied = apply_migrations(&mut client).await;
    drop(client);
    // How the session ends does not matter: the migrations committed or they did not.
    let _closed = connection.await;
    applied
}

async fn apply_migrations(client: &mut tokio_postgres::Client) -> Result<()> {
    const LOCK: &str = "SELECT pg_advisory_lock($1)";
    const UNLOCK: &str = "SELECT pg_advisory_unlock($1)";
    const CREATE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations \
                          (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)";
    const APPLIED: &str = "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)";
    const RECORD: &str = "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)";
    client
        .execute(LOCK, &[&MIGRATION_LOCK])
        .await
        .map_err(database(LOCK))?;
    client
        .batch_execute(CREATE)
        .await
        .map_err(database(CREATE))?;
    for (version, sql) in MIGRATIONS {
        let transaction = client.transaction().await.map_err(database("BEGIN"))?;
        let applied: bool = transaction
            .query_one(APPLIED, &[version])
            .await
            .map_err(database(APPLIED))
            .and_then(|row| column(&row, 0))?;
        if !applied {
            transaction.batch_execute(sql).await.map_err(|e| {
                StoreError::Database(format!("migration {version}: {}", describe(&e)))
            })?;
            if *version == RECORDS_UPGRADE_GRANTS {
                live::record_upgrade_grants(&transaction).await?;
            }
            transaction
                .execute(RECORD, &[version, &time::now()])
                .await
                .map_err(database(RECORD))?;
        }
        transaction.commit().await.map_err(database("COMMIT"))?;
    }
    client
        .execute(UNLOCK, &[&MIGRATION_LOCK])
        .await
        .map_err(database(UNLOCK))?;
    Ok(())
}

/// Maps a failed statement to [`StoreError::Database`], naming the statement.
fn database(sql: &str) -> impl FnOnce(tokio_postgres::Error) -> StoreError + '_ {
    move |error| {
        let statement = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        StoreError::Database(format!("{} in {statement}", describe(&error)))
    }
}

/// An error in words: the server's message and SQLSTATE, never its DETAIL, which can
/// quote the values of a row (a token's hash, say); else the driver's error and its
/// cause, which its `Display` leaves out.
fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Every row a statement returns.
async fn rows(client: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
    let statement = client.prepare_cached(sql).await.map_err(database(sql))?;
    client
        .query(&statement, params)
        .await
        .map_err(database(sql))
}

/// The row a statement returns, if any; more than one is an error.
async fn optional_row(
    client: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>> {
    let statement = client.prepare_cached(sql).await.map_err(database(sql))?;
    client
        .query_opt(&statement, params)
        .await
        .map_err(database(sql))
}

/// The one row a statement returns.
async fn one_row(client: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Row> {
    let statement = client.prepare_cached(sql).await.map_err(database(sql))?;
    client
        .query_one(&statement, params)
        .await
        .map_err(database(sql))
}

/// Runs a statement; the number of rows it changed.
async fn execute(client: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<u64> {
    let statement = client.prepare_cached(sql).await.map_err(database(sql))?;
    client
        .execute(&statement, params)
        .await
        .map_err(database(sql))
}

/// The answer of a `SELECT EXISTS (…)`.
async fn exists(client: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<bool> {
    column(&one_row(client, sql, params).await?, 0)
}

/// A column of a row, by position or name.
fn column<'a, T: FromSql<'a>>(
    row: &'a Row,
    index: impl tokio_postgres::row::RowIndex + fmt::Display,
) -> Result<T> {
    row.try_get(&index)
        .map_err(|e| StoreError::Corrupt(format!("column {index}: {e}")))
}

/// A `LIMIT` parameter.
fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Begins a transaction that changes state. It takes the writers' lock first, so it
/// runs alone among the writers of every replica until it commits or rolls back
/// (dropping it rolls back).
async fn begin_write(client: &mut deadpool_postgres::Client) -> Result<Transaction<'_>> {
    let transaction = client.transaction().await.map_err(database("BEGIN"))?;
    execute(
        &transaction,
        "SELECT pg_advisory_xact_lock($1)",
        &[&WRITE_LOCK],
    )
    .await?;
    Ok(transaction)
}

async fn commit(transaction: Transaction<'_>) -> Result<()> {
    transaction.commit().await.map_err(database("COMMIT"))
}

/// Appends an entry after the current last one, inside the caller's write transaction.
async fn append(client: &impl GenericClient, draft: Draft<'_>) -> Result<Entry> {
    let last = optional_row(
        client,
        "SELECT sequence, hash FROM ledger ORDER BY sequence DESC LIMIT 1",
        &[],
    )
    .await?
    .map(|row| {
        let sequence: i64 = column(&row, "sequence")?;
        let sequence = u64::try_from(sequence)
            .map_err(|_| StoreError::Corrupt(format!("ledger sequence {sequence}")))?;
        Ok::<_, StoreError>((sequence, column(&row, "hash")?))
    })
    .transpose()?;
    let entry = draft.after(last);
    let sequence = i64::try_from(entry.sequence)
        .map_err(|_| StoreError::Database(format!("ledger sequence {}", entry.sequence)))?;
    let (hash, canonical) = ledger_row(&entry);
    execute(
        client,
        "INSERT INTO ledger (sequence, hash, entry) VALUES ($1, $2, $3)",
        &[&sequence, &hash, &canonical],
    )
    .await?;
    Ok(entry)
}

async fn load_release(client: &impl GenericClient, id: &str) -> Result<Option<ReleaseRecord>> {
    let Some(row) = optional_row(
        client,
        "SELECT id, alias, project, labels, created_at, created_by FROM releases WHERE id = $1",
        &[&id],
    )
    .await?
    else {
        return Ok(None);
    };
    let artifacts = rows(
        client,
        "SELECT component, source, digest, labels FROM release_artifacts \
         WHERE release_id = $1 ORDER BY component",
        &[&id],
    )
    .await?
    .iter()
    .map(|artifact| {
        Ok(Artifact {
            component: parse("component", column(artifact, "component")?)?,
            source: column(artifact, "source")?,
            digest: parse("digest", column(artifact, "digest")?)?,
            labels: labels(column(artifact, "labels")?)?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    Ok(Some(ReleaseRecord {
        id: release_id(column(&row, "id")?)?,
        alias: column(&row, "alias")?,
        project: parse("project", column(&row, "project")?)?,
        artifacts,
        labels: labels(column(&row, "labels")?)?,
        created_at: column(&row, "created_at")?,
        created_by: column(&row, "created_by")?,
    }))
}

async fn require_release(client: &impl GenericClient, id: &str) -> Result<ReleaseRecord> {
    load_release(client, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("release {id}")))
}

const PROMOTION_COLUMNS: &str = "id, project, environment, release_id, kind, state, requested_by, requested_at, reason, \
     started_at, finished_at, error, previous_release_id, idempotency_key, emergency, runner";

fn promotion_record(row: &Row) -> Result<PromotionRecord> {
    Ok(PromotionRecord {
        id: column(row, "id")?,
        project: parse("project", column(row, "project")?)?,
        environment: parse("environment", column(row, "environment")?)?,
        release: release_id(column(row, "release_id")?)?,
        kind: parse("promotion kind", column(row, "kind")?)?,
        state: parse("promotion state", column(row, "state")?)?,
        requested_by: column(row, "requested_by")?,
        requested_at: column(row, "requested_at")?,
        reason: column(row, "reason")?,
        started_at: column(row, "started_at")?,
        finished_at: column(row, "finished_at")?,
        error: column(row, "error")?,
        previous_release: column::<Option<&str>>(row, "previous_release_id")?
            .map(release_id)
            .transpose()?,
        idempotency_key: column(row, "idempotency_key")?,
        emergency: column(row, "emergency")?,
        runner: column(row, "runner")?,
    })
}

/// Promotions a statement selects (with [`PROMOTION_COLUMNS`]).
async fn promotions(
    client: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<PromotionRecord>> {
    rows(client, sql, params)
        .await?
        .iter()
        .map(promotion_record)
        .collect()
}

async fn load_promotion(client: &impl GenericClient, id: i64) -> Result<Option<PromotionRecord>> {
    optional_row(
        client,
        &format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE id = $1"),
        &[&id],
    )
    .await?
    .as_ref()
    .map(promotion_record)
    .transpose()
}

async fn require_promotion(client: &impl GenericClient, id: i64) -> Result<PromotionRecord> {
    load_promotion(client, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("promotion {id}")))
}

const ENVIRONMENT_COLUMNS: &str =
    "project, name, release_id, version, since, moved_by, held, hold_by, hold_reason, hold_since";

fn environment_record(row: &Row) -> Result<EnvironmentRecord> {
    let held: bool = column(row, "held")?;
    Ok(EnvironmentRecord {
        project: parse("project", column(row, "project")?)?,
        name: parse("environment", column(row, "name")?)?,
        release: column::<Option<&str>>(row, "release_id")?
            .map(release_id)
            .transpose()?,
        version: column(row, "version")?,
        since: column(row, "since")?,
        moved_by: column(row, "moved_by")?,
        hold: if held {
            Some(Hold {
                by: column::<Option<String>>(row, "hold_by")?.unwrap_or_default(),
                reason: column(row, "hold_reason")?,
                since: column::<Option<String>>(row, "hold_since")?.unwrap_or_default(),
            })
        } else {
            None
        },
    })
}

async fn load_environment(
    client: &impl GenericClient,
    project: &str,
    name: &str,
) -> Result<Option<EnvironmentRecord>> {
    optional_row(
        client,
        &format!("SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE project = $1 AND name = $2"),
        &[&project, &name],
    )
    .await?
    .as_ref()
    .map(environment_record)
    .transpose()
}

async fn digests_of(
    client: &impl GenericClient,
    release: &ReleaseId,
) -> Result<BTreeMap<String, String>> {
    rows(
        client,
        "SELECT component, digest FROM release_artifacts WHERE release_id = $1",
        &[&release.digest().as_str()],
    )
    .await?
    .iter()
    .map(|row| Ok((column(row, "component")?, column(row, "digest")?)))
    .collect()
}

/// Moves a promotion to `to`, checking the state machine, and records it in the ledger.
async fn transition(
    client: &impl GenericClient,
    promotion: &PromotionRecord,
    to: PromotionState,
    audit: &Audit,
    error: Option<&str>,
) -> Result<()> {
    promotion
        .state
        .transition(to)
        .map_err(|e| StoreError::Conflict(format!("promotion {}: {e}", promotion.id)))?;
    let now = time::now();
    let (started, finished) = match to {
        PromotionState::Running => (Some(now.as_str()), None),
        PromotionState::Queued | PromotionState::Waiting => (None, None),
        _ => (promotion.started_at.as_deref(), Some(now.as_str())),
    };
    execute(
        client,
        "UPDATE promotions SET state = $2, started_at = $3, finished_at = $4, error = $5, \
         lease_until = NULL WHERE id = $1",
        &[&promotion.id, &to.as_str(), &started, &finished, &error],
    )
    .await?;
    append(
        client,
        Draft {
            audit,
            action: &format!("promotion.{to}"),
            project: promotion.project.as_str(),
            environment: Some(promotion.environment.as_str()),
            release: Some(&promotion.release),
            digests: BTreeMap::new(),
            reason: error.map(str::to_owned),
            detail: json!({"promotion": promotion.id, "kind": promotion.kind.as_str()}),
        },
    )
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn ensure_environments(&self, project: &Name, environments: &[Name]) -> Result<()> {
        let names: Vec<&str> = environments.iter().map(Name::as_str).collect();
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        execute(
            &transaction,
            "INSERT INTO environments (project, name) SELECT $1, unnest($2::text[]) \
             ON CONFLICT DO NOTHING",
            &[&project.as_str(), &names],
        )
        .await?;
        commit(transaction).await
    }

    async fn create_release(
        &self,
        release: NewRelease,
        audit: &Audit,
    ) -> Result<(ReleaseRecord, bool)> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        let id = release.id.digest().to_string();
        if let Some(existing) = load_release(&transaction, &id).await? {
            return Ok((existing, false));
        }
        // The alias is the id's first hex digits, longer if another release shares them.
        let hex = release.id.digest().hex();
        let mut length = gantry_core::ALIAS_LENGTH;
        let alias = loop {
            let candidate = &hex[..length];
            if !exists(
                &transaction,
                "SELECT EXISTS (SELECT 1 FROM releases WHERE project = $1 AND alias = $2)",
                &[&release.project.as_str(), &candidate],
            )
            .await?
            {
                break candidate.to_owned();
            }
            length += 2;
        };
        execute(
            &transaction,
            "INSERT INTO releases (id, project, alias, labels, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &id,
                &release.project.as_str(),
                &alias,
                &labels_json(&release.labels),
                &time::now(),
                &audit.actor,
            ],
        )
        .await?;
        for artifact in &release.artifacts {
            execute(
                &transaction,
                "INSERT INTO release_artifacts (release_id, component, source, digest, labels) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &id,
                    &artifact.component.as_str(),
                    &artifact.source,
                    &artifact.digest.as_str(),
                    &labels_json(&artifact.labels),
                ],
            )
            .await?;
        }
        append(
            &transaction,
            Draft {
                audit,
                action: "release.created",
                project: release.project.as_str(),
                environment: None,
                release: Some(&release.id),
                digests: release
                    .artifacts
                    .iter()
                    .map(|a| (a.component.to_string(), a.digest.to_string()))
                    .collect(),
                reason: None,
                detail: json!({"alias": alias, "labels": release.labels}),
            },
        )
        .await?;
        let record = require_release(&transaction, &id).await?;
        commit(transaction).await?;
        Ok((record, true))
    }

    async fn find_release(
        &self,
        project: &Name,
        id_or_alias: &str,
    ) -> Result<Option<ReleaseRecord>> {
        let hex = id_or_alias.strip_prefix("sha256:").unwrap_or(id_or_alias);
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let client = self.client().await?;
        let ids: Vec<String> = rows(
            &client,
            "SELECT id FROM releases WHERE project = $1 AND (alias = $2 OR id LIKE $3) LIMIT 2",
            &[
                &project.as_str(),
                &hex,
                &format!("sha256:{}%", hex.to_ascii_lowercase()),
            ],
        )
        .await?
        .iter()
        .map(|row| column(row, "id"))
        .collect::<Result<_>>()?;
        match ids.as_slice() {
            [] => Ok(None),
            [id] => load_release(&client, id).await,
            _ => Err(StoreError::Conflict(format!(
                "{id_or_alias:?} names more than one release; give more of its id"
            ))),
        }
    }

    async fn latest_release(&self, project: &Name) -> Result<Option<ReleaseRecord>> {
        let client = self.client().await?;
        let latest = optional_row(
            &client,
            "SELECT id FROM releases WHERE project = $1 ORDER BY created_at DESC, ordinal DESC LIMIT 1",
            &[&project.as_str()],
        )
        .await?;
        match latest {
            Some(row) => load_release(&client, column(&row, "id")?).await,
            None => Ok(None),
        }
    }

    async fn environments(&self, project: &Name) -> Result<Vec<EnvironmentRecord>> {
        let client = self.client().await?;
        rows(
            &client,
            &format!(
                "SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE project = $1 ORDER BY name"
            ),
            &[&project.as_str()],
        )
        .await?
        .iter()
        .map(environment_record)
        .collect()
    }

    async fn reached(&self, project: &Name, release: &ReleaseId) -> Result<BTreeSet<Name>> {
        let client = self.client().await?;
        rows(
            &client,
            "SELECT DISTINCT environment FROM promotions \
             WHERE project = $1 AND release_id = $2 AND state = 'succeeded'",
            &[&project.as_str(), &release.digest().as_str()],
        )
        .await?
        .iter()
        .map(|row| parse("environment", column(row, "environment")?))
        .collect()
    }

    async fn enqueue(
        &self,
        request: NewPromotion,
        audit: &Audit,
    ) -> Result<(PromotionRecord, bool)> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        if let Some(key) = &request.idempotency_key {
            let existing = optional_row(
                &transaction,
                "SELECT id FROM promotions WHERE project = $1 AND idempotency_key = $2",
                &[&request.project.as_str(), key],
            )
            .await?;
            if let Some(row) = existing {
                let promotion = require_promotion(&transaction, column(&row, "id")?).await?;
                if promotion.environment != request.environment
                    || promotion.release != request.release
                {
                    return Err(StoreError::Conflict(format!(
                        "idempotency key {key:?} was used for another promotion ({})",
                        promotion.id
                    )));
                }
                return Ok((promotion, false));
            }
        }
        let (project, environment) = (request.project.as_str(), request.environment.as_str());
        if load_environment(&transaction, project, environment)
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound(format!(
                "environment {environment} of project {project}"
            )));
        }
        if !matches!(
            request.state,
            PromotionState::Queued | PromotionState::Waiting
        ) {
            return Err(StoreError::Conflict(format!(
                "a new promotion is queued or waiting, not {}",
                request.state
            )));
        }
        let row = one_row(
            &transaction,
            "INSERT INTO promotions (project, environment, release_id, kind, state, requested_by, \
             requested_at, reason, idempotency_key, emergency) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                &project,
                &environment,
                &request.release.digest().as_str(),
                &request.kind.as_str(),
                &request.state.as_str(),
                &audit.actor,
                &time::now(),
                &audit.reason,
                &request.idempotency_key,
                &request.emergency,
            ],
        )
        .await?;
        let id: i64 = column(&row, "id")?;
        append(
            &transaction,
            Draft {
                audit,
                action: &format!("promotion.{}", request.state),
                project,
                environment: Some(environment),
                release: Some(&request.release),
                digests: BTreeMap::new(),
                reason: None,
                detail: json!({"promotion": id, "kind": request.kind.as_str(), "emergency": request.emergency}),
            },
        )
        .await?;
        let promotion = require_promotion(&transaction, id).await?;
        commit(transaction).await?;
        Ok((promotion, true))
    }

    async fn start_next(
        &self,
        project: &Name,
        environment: &Name,
        lease: &Lease,
    ) -> Result<Option<PromotionRecord>> {
        let (project, environment) = (project.as_str(), environment.as_str());
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        if exists(
            &transaction,
            "SELECT EXISTS (SELECT 1 FROM promotions \
             WHERE project = $1 AND environment = $2 AND state = 'running')",
            &[&project, &environment],
        )
        .await?
        {
            return Ok(None);
        }
        let audit = Audit::by("gantry");
        let current = load_environment(&transaction, project, environment)
            .await?
            .and_then(|e| e.release);
        let started = loop {
            let next = optional_row(
                &transaction,
                "SELECT id FROM promotions \
                 WHERE project = $1 AND environment = $2 AND state = 'queued' ORDER BY id LIMIT 1",
                &[&project, &environment],
            )
            .await?;
            let Some(row) = next else { break None };
            let promotion = require_promotion(&transaction, column(&row, "id")?).await?;
            // By its turn, the environment may already hold this release (a request
            // made twice, a rollback meanwhile): running it would change nothing.
            if current.as_ref() == Some(&promotion.release) {
                let reason = format!(
                    "{environment} already holds release {} when its turn came",
                    promotion.release
                );
                transition(
                    &transaction,
                    &promotion,
                    PromotionState::Superseded,
                    &audit,
                    Some(&reason),
                )
                .await?;
                continue;
            }
            transition(
                &transaction,
                &promotion,
                PromotionState::Running,
                &audit,
                None,
            )
            .await?;
            execute(
                &transaction,
                "UPDATE promotions SET runner = $2, lease_until = $3 WHERE id = $1",
                &[&promotion.id, &lease.holder, &lease.until()],
            )
            .await?;
            break load_promotion(&transaction, promotion.id).await?;
        };
        commit(transaction).await?;
        Ok(started)
    }

    async fn finish(
        &self,
        id: i64,
        runner: &str,
        outcome: Outcome,
        audit: &Audit,
    ) -> Result<PromotionRecord> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        let promotion = require_promotion(&transaction, id).await?;
        check_runner(&promotion, runner)?;
        match outcome {
            Outcome::Failed { error } => {
                transition(
                    &transaction,
                    &promotion,
                    PromotionState::Failed,
                    audit,
                    Some(&error),
                )
                .await?;
            }
            Outcome::Succeeded { expected_version } => {
                let environment = load_environment(
                    &transaction,
                    promotion.project.as_str(),
                    promotion.environment.as_str(),
                )
                .await?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("environment {}", promotion.environment))
                })?;
                promotion
                    .state
                    .transition(PromotionState::Succeeded)
                    .map_err(|e| StoreError::Conflict(format!("promotion {id}: {e}")))?;
                let moved = execute(
                    &transaction,
                    "UPDATE environments SET release_id = $3, version = version + 1, since = $4, moved_by = $5 \
                     WHERE project = $1 AND name = $2 AND version = $6",
                    &[
                        &promotion.project.as_str(),
                        &promotion.environment.as_str(),
                        &promotion.release.digest().as_str(),
                        &time::now(),
                        &promotion.requested_by,
                        &expected_version,
                    ],
                )
                .await?;
                if moved != 1 {
                    return Err(StoreError::Conflict(format!(
                        "environment {} moved meanwhile (version {} is not {expected_version})",
                        promotion.environment, environment.version
                    )));
                }
                let previous = environment.release.as_ref().map(|r| r.digest().to_string());
                execute(
                    &transaction,
                    "UPDATE promotions SET state = 'succeeded', finished_at = $2, previous_release_id = $3 \
                     WHERE id = $1",
                    &[&id, &time::now(), &previous],
                )
                .await?;
                append(
                    &transaction,
                    Draft {
                        audit,
                        action: "promotion.succeeded",
                        project: promotion.project.as_str(),
                        environment: Some(promotion.environment.as_str()),
                        release: Some(&promotion.release),
                        digests: digests_of(&transaction, &promotion.release).await?,
                        reason: None,
                        detail: json!({
                            "promotion": id,
                            "kind": promotion.kind.as_str(),
                            "previous": previous,
                            "version": expected_version + 1,
                        }),
                    },
                )
                .await?;
            }
        }
        let finished = require_promotion(&transaction, id).await?;
        commit(transaction).await?;
        Ok(finished)
    }

    async fn cancel(&self, id: i64, audit: &Audit) -> Result<PromotionRecord> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        let promotion = require_promotion(&transaction, id).await?;
        transition(
            &transaction,
            &promotion,
            PromotionState::Cancelled,
            audit,
            None,
        )
        .await?;
        let cancelled = require_promotion(&transaction, id).await?;
        commit(transaction).await?;
        Ok(cancelled)
    }

    async fn advance(
        &self,
        id: i64,
        to: PromotionState,
        reason: Option<&str>,
        audit: &Audit,
    ) -> Result<PromotionRecord> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        let promotion = require_promotion(&transaction, id).await?;
        if !matches!(
            to,
            PromotionState::Queued
                | PromotionState::Waiting
                | PromotionState::Rejected
                | PromotionState::Superseded
        ) || (to == PromotionState::Queued && promotion.state != PromotionState::Waiting)
        {
            return Err(StoreError::Conflict(format!(
                "promotion {id}: gates do not move a promotion from {} to {to}",
                promotion.state
            )));
        }
        let error = matches!(to, PromotionState::Rejected | PromotionState::Superseded)
            .then_some(reason)
            .flatten();
        transition(&transaction, &promotion, to, audit, error).await?;
        let advanced = require_promotion(&transaction, id).await?;
        commit(transaction).await?;
        Ok(advanced)
    }

    async fn promotions_in_state(
        &self,
        project: &Name,
        state: PromotionState,
    ) -> Result<Vec<PromotionRecord>> {
        let client = self.client().await?;
        promotions(
            &client,
            &format!(
                "SELECT {PROMOTION_COLUMNS} FROM promotions WHERE project = $1 AND state = $2 ORDER BY id"
            ),
            &[&project.as_str(), &state.as_str()],
        )
        .await
    }

    async fn arrivals(
        &self,
        project: &Name,
        release: &ReleaseId,
    ) -> Result<BTreeMap<Name, String>> {
        let client = self.client().await?;
        rows(
            &client,
            "SELECT environment, MIN(finished_at) AS arrived FROM promotions \
             WHERE project = $1 AND release_id = $2 AND state = 'succeeded' GROUP BY environment",
            &[&project.as_str(), &release.digest().as_str()],
        )
        .await?
        .iter()
        .map(|row| {
            Ok((
                parse("environment", column(row, "environment")?)?,
                column(row, "arrived")?,
            ))
        })
        .collect()
    }

    async fn add_evidence(
        &self,
        evidence: NewEvidence,
        audit: &Audit,
    ) -> Result<(EvidenceRecord, bool)> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        let added = governance::add_evidence(&transaction, &evidence, audit).await?;
        commit(transaction).await?;
        Ok(added)
    }

    async fn evidence(&self, project: &Name, release: &ReleaseId) -> Result<Vec<EvidenceRecord>> {
        governance::evidence(&self.client().await?, project, release).await
    }

    async fn evidence_bytes(&self, project: &Name, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let client = self.client().await?;
        optional_row(
            &client,
            "SELECT raw FROM evidence WHERE project = $1 AND digest = $2 LIMIT 1",
            &[&project.as_str(), &digest.as_str()],
        )
        .await?
        .map(|row| column(&row, "raw"))
        .transpose()
    }

    async fn add_approval(&self, approval: NewApproval, audit: &Audit) -> Result<ApprovalRecord> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        let added = governance::add_approval(&transaction, &approval, audit).await?;
        commit(transaction).await?;
        Ok(added)
    }

    async fn approvals(
        &self,
        project: &Name,
        release: &ReleaseId,
        environment: &Name,
    ) -> Result<Vec<ApprovalRecord>> {
        governance::approvals(&self.client().await?, project, release, environment).await
    }

    async fn record_decision(
        &self,
        decision: NewDecision,
        audit: &Audit,
    ) -> Result<DecisionRecord> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        let recorded = governance::record_decision(&transaction, &decision, audit).await?;
        commit(transaction).await?;
        Ok(recorded)
    }

    async fn decisions(
        &self,
        project: &Name,
        release: &ReleaseId,
        environment: Option<&Name>,
        limit: usize,
    ) -> Result<Vec<DecisionRecord>> {
        governance::decisions(&self.client().await?, project, release, environment, limit).await
    }

    async fn set_stop(
        &self,
        project: &Name,
        environment: Option<&Name>,
        stop: bool,
        audit: &Audit,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        governance::set_stop(&transaction, project, environment, stop, audit).await?;
        commit(transaction).await
    }

    async fn stops(&self, project: &Name) -> Result<Vec<StopRecord>> {
        governance::stops(&self.client().await?, project).await
    }

    async fn record_refusal(&self, refusal: NewRefusal, audit: &Audit) -> Result<()> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        governance::record_refusal(&transaction, &refusal, audit).await?;
        commit(transaction).await
    }

    async fn promotion(&self, id: i64) -> Result<Option<PromotionRecord>> {
        load_promotion(&self.client().await?, id).await
    }

    async fn promotions(
        &self,
        project: &Name,
        environment: Option<&Name>,
        limit: usize,
    ) -> Result<Vec<PromotionRecord>> {
        let client = self.client().await?;
        promotions(
            &client,
            &format!(
                "SELECT {PROMOTION_COLUMNS} FROM promotions \
                 WHERE project = $1 AND ($2::text IS NULL OR environment = $2) ORDER BY id DESC LIMIT $3"
            ),
            &[
                &project.as_str(),
                &environment.map(Name::as_str),
                &self::limit(limit),
            ],
        )
        .await
    }

    async fn set_hold(
        &self,
        project: &Name,
        environment: &Name,
        hold: bool,
        audit: &Audit,
    ) -> Result<EnvironmentRecord> {
        let (project, environment) = (project.as_str(), environment.as_str());
        let not_found =
            || StoreError::NotFound(format!("environment {environment} of project {project}"));
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        let current = load_environment(&transaction, project, environment)
            .await?
            .ok_or_else(not_found)?;
        if current.hold.is_some() == hold {
            return Err(StoreError::Conflict(format!(
                "environment {environment} is {} held",
                if hold { "already" } else { "not" }
            )));
        }
        let now = time::now();
        execute(
            &transaction,
            "UPDATE environments SET held = $3, hold_by = $4, hold_reason = $5, hold_since = $6 \
             WHERE project = $1 AND name = $2",
            &[
                &project,
                &environment,
                &hold,
                &hold.then_some(&audit.actor),
                &audit.reason.as_ref().filter(|_| hold),
                &hold.then_some(&now),
            ],
        )
        .await?;
        append(
            &transaction,
            Draft {
                audit,
                action: if hold {
                    "environment.held"
                } else {
                    "environment.unheld"
                },
                project,
                environment: Some(environment),
                release: current.release.as_ref(),
                digests: BTreeMap::new(),
                reason: None,
                detail: serde_json::Value::Null,
            },
        )
        .await?;
        let changed = load_environment(&transaction, project, environment)
            .await?
            .ok_or_else(not_found)?;
        commit(transaction).await?;
        Ok(changed)
    }

    async fn renew_leases(&self, lease: &Lease) -> Result<usize> {
        let client = self.client().await?;
        let renewed = execute(
            &client,
            "UPDATE promotions SET lease_until = $2 WHERE state = 'running' AND runner = $1",
            &[&lease.holder, &lease.until()],
        )
        .await?;
        Ok(usize::try_from(renewed).unwrap_or(usize::MAX))
    }

    async fn requeue_expired(&self, audit: &Audit) -> Result<Vec<PromotionRecord>> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        let running = promotions(
            &transaction,
            &format!(
                "SELECT {PROMOTION_COLUMNS} FROM promotions WHERE state = 'running' \
                 AND (lease_until IS NULL OR lease_until <= $1) ORDER BY id"
            ),
            &[&time::now()],
        )
        .await?;
        let mut requeued = Vec::with_capacity(running.len());
        for promotion in running {
            transition(
                &transaction,
                &promotion,
                PromotionState::Queued,
                audit,
                None,
            )
            .await?;
            requeued.push(require_promotion(&transaction, promotion.id).await?);
        }
        commit(transaction).await?;
        Ok(requeued)
    }

    async fn ledger_entries(&self, after: u64, limit: usize) -> Result<Vec<Entry>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let client = self.client().await?;
        rows(
            &client,
            "SELECT entry FROM ledger WHERE sequence > $1 ORDER BY sequence LIMIT $2",
            &[&after, &self::limit(limit)],
        )
        .await?
        .iter()
        .map(|row| ledger_entry(column(row, "entry")?))
        .collect()
    }

    async fn create_token(
        &self,
        name: &str,
        principal: &Principal,
        hash: &str,
        lifetime: Option<Duration>,
        audit: &Audit,
    ) -> Result<()> {
        let expires_at = lifetime.map(|l| time::format(std::time::SystemTime::now() + l));
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        access::create_token(
            &transaction,
            name,
            principal,
            hash,
            expires_at.as_deref(),
            audit,
        )
        .await?;
        commit(transaction).await
    }

    async fn revoke_token(&self, name: &str, audit: &Audit) -> Result<()> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        access::revoke_token(&transaction, name, audit).await?;
        commit(transaction).await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        access::tokens(&self.client().await?).await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>> {
        access::token_by_hash(&self.client().await?, hash).await
    }

    async fn grant(&self, grant: &Grant, audit: &Audit) -> Result<(GrantRecord, bool)> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        let kept = access::grant(&transaction, grant, audit).await?;
        commit(transaction).await?;
        Ok(kept)
    }

    async fn revoke_grant(&self, grant: &Grant, audit: &Audit) -> Result<()> {
        let mut client = self.client().await?;
        let transaction = begin_write(&mut client).await?;
        access::revoke_grant(&transaction, grant, audit).await?;
        commit(transaction).await
    }

    async fn grants(&self, principal: Option<&Principal>) -> Result<Vec<GrantRecord>> {
        access::grants(&self.client().await?, principal).await
    }

    async fn token_count(&self) -> Result<u64> {
        let client = self.client().await?;
        let count: i64 = column(
            &one_row(&client, "SELECT COUNT(*) FROM tokens", &[]).await?,
            0,
        )?;
        u64::try_from(count).map_err(|_| StoreError::Corrupt(format!("token count {count}")))
    }

    async fn live_state(&self) -> Result<Snapshot> {
        let mut client = self.client().await?;
        // One snapshot for every query, the ledger's size included: a writer's change and
        // its entry commit together, so the snapshot holds both or neither.
        let transaction = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(database("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))?;
        let snapshot = live::snapshot(&transaction).await?;
        commit(transaction).await?;
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_named_without_credentials() {
        let check = |url: &str, expect: &str| {
            let config: Config = url.parse().unwrap();
            assert_eq!(server(&config), expect, "{url}");
        };
        check(
            "postgres://gantry:hunter2@db.internal:6543/gantry",
            "db.internal:6543/gantry",
        );
        check(
            "postgresql://gantry:hunter2@one,two:5433/gantry",
            "one:5432,two:5433/gantry",
        );
        check(
            "host=/run/postgresql user=gantry password=hunter2",
            "/run/postgresql/(default database)",
        );
    }
}
