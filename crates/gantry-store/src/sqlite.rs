//! The `SQLite` backend: one file in the data directory, WAL mode, migrations embedded
//! and applied at open. One connection behind a mutex: `SQLite` has one writer anyway,
//! and every call is a short transaction run on tokio's blocking pool.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use gantry_core::{Digest, Grant, Name, Principal, PromotionState, ReleaseId};
use rusqlite::{Connection, OptionalExtension as _, Row, Transaction, params};
use serde_json::json;

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
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_tokens.sql")),
    (3, include_str!("../migrations/sqlite/0003_gates.sql")),
    (
        4,
        include_str!("../migrations/sqlite/0004_token_lifetimes.sql"),
    ),
    (
        5,
        include_str!("../migrations/sqlite/0005_one_running_promotion.sql"),
    ),
    (6, include_str!("../migrations/sqlite/0006_access.sql")),
    (7, include_str!("../migrations/sqlite/0007_leases.sql")),
    (
        8,
        include_str!("../migrations/sqlite/0008_ledger_refuses_replace.sql"),
    ),
    (
        9,
        include_str!("../migrations/sqlite/0009_ledger_records_upgrade_grants.sql"),
    ),
];

/// The migration whose application also records, in Rust, the grants the upgrade to
/// roles made without a ledger entry.
const RECORDS_UPGRADE_GRANTS: i64 = 9;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "shaped for `.map_err(database)`"
)]
fn database(error: rusqlite::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    ///
    /// A database it creates is readable and writable by its owner only (0600, whatever
    /// the umask), and so are its WAL and shared-memory files, which `SQLite` creates with
    /// the database file's mode: it holds grants, token hashes and evidence. The mode of
    /// an existing file is left as it is (the server warns about a wider one).
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let created = create_private(path)?;
        let connection = Connection::open(path)
            .map_err(|e| StoreError::Database(format!("{}: {e}", path.display())))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(database)?;
        let store = SqliteStore::prepare(connection)?;
        if created {
            for suffix in ["-wal", "-shm"] {
                let mut companion = path.as_os_str().to_owned();
                companion.push(suffix);
                make_private(Path::new(&companion))?;
            }
        }
        Ok(store)
    }

    /// A database in memory, for tests and throwaway runs.
    pub fn open_in_memory() -> Result<SqliteStore> {
        SqliteStore::prepare(Connection::open_in_memory().map_err(database)?)
    }

    fn prepare(mut connection: Connection) -> Result<SqliteStore> {
        connection
            .execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")
            .map_err(database)?;
        migrate(&mut connection)?;
        Ok(SqliteStore {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` in one transaction on the blocking pool; commits if it returns Ok.
    async fn transaction<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .map_err(|_| StoreError::Database("a previous query panicked".to_owned()))?;
            let transaction = connection
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(database)?;
            let value = work(&transaction)?;
            transaction.commit().map_err(database)?;
            Ok(value)
        })
        .await
        .map_err(|e| StoreError::Database(format!("the store task failed: {e}")))?
    }
}

/// Creates `path` empty, for its owner only, unless it exists; whether it did.
fn create_private(path: &Path) -> Result<bool> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => make_private(path).map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(StoreError::Database(format!("{}: {e}", path.display()))),
    }
}

/// Sets `path` to 0600 if it exists (the umask only ever narrows a mode on creation;
/// this says it outright).
fn make_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StoreError::Database(format!("{}: {e}", path.display())));
            }
            _ => {}
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn migrate(connection: &mut Connection) -> Result<()> {
    connection
        .execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        .map_err(database)?;
    for (version, sql) in MIGRATIONS {
        let transaction = connection.transaction().map_err(database)?;
        let applied: bool = transaction
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [version],
                |row| row.get(0),
            )
            .map_err(database)?;
        if !applied {
            transaction
                .execute_batch(sql)
                .map_err(|e| StoreError::Database(format!("migration {version}: {e}")))?;
            if *version == RECORDS_UPGRADE_GRANTS {
                live::record_upgrade_grants(&transaction)?;
            }
            transaction
                .execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                    params![version, time::now()],
                )
                .map_err(database)?;
        }
        transaction.commit().map_err(database)?;
    }
    Ok(())
}

/// Appends an entry after the current last one, inside the caller's transaction.
fn append(transaction: &Transaction<'_>, draft: Draft<'_>) -> Result<Entry> {
    let last: Option<(u64, String)> = transaction
        .query_row(
            "SELECT sequence, hash FROM ledger ORDER BY sequence DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(database)?;
    let entry = draft.after(last);
    let (hash, canonical) = ledger_row(&entry);
    transaction
        .execute(
            "INSERT INTO ledger (sequence, hash, entry) VALUES (?1, ?2, ?3)",
            params![entry.sequence, hash, canonical],
        )
        .map_err(database)?;
    Ok(entry)
}

/// Every row a query returns, each read by `row`.
fn all_rows<T>(
    transaction: &Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut statement = transaction.prepare_cached(sql).map_err(database)?;
    statement
        .query_map(params, row)
        .map_err(database)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(database)
}

fn load_release(transaction: &Transaction<'_>, id: &str) -> Result<Option<ReleaseRecord>> {
    let row = transaction
        .query_row(
            "SELECT id, alias, project, labels, created_at, created_by FROM releases WHERE id = ?1",
            [id],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                ))
            },
        )
        .optional()
        .map_err(database)?;
    let Some((id, alias, project, release_labels, created_at, created_by)) = row else {
        return Ok(None);
    };
    let mut statement = transaction
        .prepare_cached("SELECT component, source, digest, labels FROM release_artifacts WHERE release_id = ?1 ORDER BY component")
        .map_err(database)?;
    let artifacts = statement
        .query_map([&id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
            ))
        })
        .map_err(database)?
        .map(|row| {
            let (component, source, digest, artifact_labels) = row.map_err(database)?;
            Ok(Artifact {
                component: parse("component", &component)?,
                source,
                digest: parse("digest", &digest)?,
                labels: labels(&artifact_labels)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(ReleaseRecord {
        id: release_id(&id)?,
        alias,
        project: parse("project", &project)?,
        artifacts,
        labels: labels(&release_labels)?,
        created_at,
        created_by,
    }))
}

const PROMOTION_COLUMNS: &str = "id, project, environment, release_id, kind, state, requested_by, requested_at, reason, \
     started_at, finished_at, error, previous_release_id, idempotency_key, emergency, runner";

fn promotion_row(row: &Row<'_>) -> rusqlite::Result<[Option<String>; 16]> {
    let mut values: [Option<String>; 16] = Default::default();
    values[0] = Some(row.get::<_, i64>(0)?.to_string());
    for (index, value) in values.iter_mut().enumerate().skip(1).take(13) {
        *value = row.get(index)?;
    }
    values[14] = Some(row.get::<_, i64>(14)?.to_string());
    values[15] = row.get(15)?;
    Ok(values)
}

fn promotion_record(values: [Option<String>; 16]) -> Result<PromotionRecord> {
    let [
        id,
        project,
        environment,
        release,
        kind,
        state,
        requested_by,
        requested_at,
        reason,
        started_at,
        finished_at,
        error,
        previous,
        key,
        emergency,
        runner,
    ] = values;
    let required = |value: Option<String>, what: &str| {
        value.ok_or_else(|| StoreError::Corrupt(format!("promotion without {what}")))
    };
    Ok(PromotionRecord {
        id: parse("promotion id", &required(id, "id")?)?,
        project: parse("project", &required(project, "project")?)?,
        environment: parse("environment", &required(environment, "environment")?)?,
        release: release_id(&required(release, "release")?)?,
        kind: parse("promotion kind", &required(kind, "kind")?)?,
        state: parse("promotion state", &required(state, "state")?)?,
        requested_by: required(requested_by, "requester")?,
        requested_at: required(requested_at, "request time")?,
        reason,
        started_at,
        finished_at,
        error,
        previous_release: previous.as_deref().map(release_id).transpose()?,
        idempotency_key: key,
        emergency: emergency.as_deref() == Some("1"),
        runner,
    })
}

fn load_promotion(transaction: &Transaction<'_>, id: i64) -> Result<Option<PromotionRecord>> {
    transaction
        .query_row(
            &format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE id = ?1"),
            [id],
            promotion_row,
        )
        .optional()
        .map_err(database)?
        .map(promotion_record)
        .transpose()
}

fn load_environment(
    transaction: &Transaction<'_>,
    project: &str,
    name: &str,
) -> Result<Option<EnvironmentRecord>> {
    transaction
        .query_row(
            "SELECT project, name, release_id, version, since, moved_by, held, hold_by, hold_reason, hold_since \
             FROM environments WHERE project = ?1 AND name = ?2",
            [project, name],
            environment_row,
        )
        .optional()
        .map_err(database)?
        .map(environment_record)
        .transpose()
}

type EnvironmentRow = (
    String,
    String,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
    bool,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn environment_row(row: &Row<'_>) -> rusqlite::Result<EnvironmentRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
    ))
}

fn environment_record(row: EnvironmentRow) -> Result<EnvironmentRecord> {
    let (project, name, release, version, since, moved_by, held, hold_by, hold_reason, hold_since) =
        row;
    Ok(EnvironmentRecord {
        project: parse("project", &project)?,
        name: parse("environment", &name)?,
        release: release.as_deref().map(release_id).transpose()?,
        version,
        since,
        moved_by,
        hold: held.then(|| Hold {
            by: hold_by.unwrap_or_default(),
            reason: hold_reason,
            since: hold_since.unwrap_or_default(),
        }),
    })
}

fn digests_of(
    transaction: &Transaction<'_>,
    release: &ReleaseId,
) -> Result<BTreeMap<String, String>> {
    let mut statement = transaction
        .prepare_cached("SELECT component, digest FROM release_artifacts WHERE release_id = ?1")
        .map_err(database)?;
    statement
        .query_map([release.digest().as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .map_err(database)?
        .collect::<rusqlite::Result<_>>()
        .map_err(database)
}

/// Moves a promotion to `to`, checking the state machine, and records it in the ledger.
fn transition(
    transaction: &Transaction<'_>,
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
    transaction
        .execute(
            "UPDATE promotions SET state = ?2, started_at = ?3, finished_at = ?4, error = ?5, \
             lease_until = NULL WHERE id = ?1",
            params![promotion.id, to.as_str(), started, finished, error],
        )
        .map_err(database)?;
    append(
        transaction,
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
    )?;
    Ok(())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn ensure_environments(&self, project: &Name, environments: &[Name]) -> Result<()> {
        let project = project.to_string();
        let environments: Vec<String> = environments.iter().map(ToString::to_string).collect();
        self.transaction(move |transaction| {
            for name in &environments {
                transaction
                    .execute(
                        "INSERT OR IGNORE INTO environments (project, name) VALUES (?1, ?2)",
                        [&project, name],
                    )
                    .map_err(database)?;
            }
            Ok(())
        })
        .await
    }

    async fn create_release(
        &self,
        release: NewRelease,
        audit: &Audit,
    ) -> Result<(ReleaseRecord, bool)> {
        let audit = audit.clone();
        self.transaction(move |transaction| {
            let id = release.id.digest().to_string();
            if let Some(existing) = load_release(transaction, &id)? {
                return Ok((existing, false));
            }
            // The alias is the id's first hex digits, longer if another release shares them.
            let hex = release.id.digest().hex();
            let mut length = gantry_core::ALIAS_LENGTH;
            let alias = loop {
                let candidate = &hex[..length];
                let taken: bool = transaction
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM releases WHERE project = ?1 AND alias = ?2)",
                        [release.project.as_str(), candidate],
                        |row| row.get(0),
                    )
                    .map_err(database)?;
                if !taken {
                    break candidate.to_owned();
                }
                length += 2;
            };
            transaction
                .execute(
                    "INSERT INTO releases (id, project, alias, labels, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![id, release.project.as_str(), alias, labels_json(&release.labels), time::now(), audit.actor],
                )
                .map_err(database)?;
            for artifact in &release.artifacts {
                transaction
                    .execute(
                        "INSERT INTO release_artifacts (release_id, component, source, digest, labels) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![id, artifact.component.as_str(), artifact.source, artifact.digest.as_str(), labels_json(&artifact.labels)],
                    )
                    .map_err(database)?;
            }
            append(
                transaction,
                Draft {
                    audit: &audit,
                    action: "release.created",
                    project: release.project.as_str(),
                    environment: None,
                    release: Some(&release.id),
                    digests: release.artifacts.iter().map(|a| (a.component.to_string(), a.digest.to_string())).collect(),
                    reason: None,
                    detail: json!({"alias": alias, "labels": release.labels}),
                },
            )?;
            let record = load_release(transaction, &id)?.ok_or_else(|| StoreError::NotFound(format!("release {id}")))?;
            Ok((record, true))
        })
        .await
    }

    async fn find_release(
        &self,
        project: &Name,
        id_or_alias: &str,
    ) -> Result<Option<ReleaseRecord>> {
        let project = project.to_string();
        let key = id_or_alias.to_owned();
        self.transaction(move |transaction| {
            let hex = key.strip_prefix("sha256:").unwrap_or(&key);
            if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Ok(None);
            }
            let mut statement = transaction
                .prepare_cached("SELECT id FROM releases WHERE project = ?1 AND (alias = ?2 OR id LIKE ?3) LIMIT 2")
                .map_err(database)?;
            let ids: Vec<String> = statement
                .query_map(params![project, hex, format!("sha256:{}%", hex.to_ascii_lowercase())], |row| row.get(0))
                .map_err(database)?
                .collect::<rusqlite::Result<_>>()
                .map_err(database)?;
            match ids.as_slice() {
                [] => Ok(None),
                [id] => load_release(transaction, id),
                _ => Err(StoreError::Conflict(format!("{key:?} names more than one release; give more of its id"))),
            }
        })
        .await
    }

    async fn latest_release(&self, project: &Name) -> Result<Option<ReleaseRecord>> {
        let project = project.to_string();
        self.transaction(move |transaction| {
            let id: Option<String> = transaction
                .query_row(
                    "SELECT id FROM releases WHERE project = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1",
                    [&project],
                    |row| row.get(0),
                )
                .optional()
                .map_err(database)?;
            match id {
                Some(id) => load_release(transaction, &id),
                None => Ok(None),
            }
        })
        .await
    }

    async fn environments(&self, project: &Name) -> Result<Vec<EnvironmentRecord>> {
        let project = project.to_string();
        self.transaction(move |transaction| {
            let mut statement = transaction
                .prepare_cached(
                    "SELECT project, name, release_id, version, since, moved_by, held, hold_by, hold_reason, hold_since \
                     FROM environments WHERE project = ?1 ORDER BY name",
                )
                .map_err(database)?;
            let rows = statement
                .query_map([&project], environment_row)
                .map_err(database)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(database)?;
            rows.into_iter().map(environment_record).collect()
        })
        .await
    }

    async fn reached(&self, project: &Name, release: &ReleaseId) -> Result<BTreeSet<Name>> {
        let project = project.to_string();
        let release = release.digest().to_string();
        self.transaction(move |transaction| {
            let mut statement = transaction
                .prepare_cached("SELECT DISTINCT environment FROM promotions WHERE project = ?1 AND release_id = ?2 AND state = 'succeeded'")
                .map_err(database)?;
            let names: Vec<String> = statement
                .query_map([&project, &release], |row| row.get(0))
                .map_err(database)?
                .collect::<rusqlite::Result<_>>()
                .map_err(database)?;
            names.iter().map(|name| parse("environment", name)).collect()
        })
        .await
    }

    async fn enqueue(
        &self,
        request: NewPromotion,
        audit: &Audit,
    ) -> Result<(PromotionRecord, bool)> {
        let audit = audit.clone();
        self.transaction(move |transaction| {
            if let Some(key) = &request.idempotency_key {
                let existing: Option<i64> = transaction
                    .query_row(
                        "SELECT id FROM promotions WHERE project = ?1 AND idempotency_key = ?2",
                        [request.project.as_str(), key],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(database)?;
                if let Some(id) = existing {
                    let promotion = load_promotion(transaction, id)?.ok_or_else(|| StoreError::NotFound(format!("promotion {id}")))?;
                    if promotion.environment != request.environment || promotion.release != request.release {
                        return Err(StoreError::Conflict(format!(
                            "idempotency key {key:?} was used for another promotion ({})",
                            promotion.id
                        )));
                    }
                    return Ok((promotion, false));
                }
            }
            if load_environment(transaction, request.project.as_str(), request.environment.as_str())?.is_none() {
                return Err(StoreError::NotFound(format!("environment {} of project {}", request.environment, request.project)));
            }
            transaction
                .execute(
                    "INSERT INTO promotions (project, environment, release_id, kind, state, requested_by, requested_at, reason, idempotency_key, emergency) \
                     VALUES (?1, ?2, ?3, ?4, ?9, ?5, ?6, ?7, ?8, ?10)",
                    params![
                        request.project.as_str(),
                        request.environment.as_str(),
                        request.release.digest().as_str(),
                        request.kind.as_str(),
                        audit.actor,
                        time::now(),
                        audit.reason,
                        request.idempotency_key,
                        request.state.as_str(),
                        request.emergency,
                    ],
                )
                .map_err(database)?;
            if !matches!(request.state, PromotionState::Queued | PromotionState::Waiting) {
                return Err(StoreError::Conflict(format!("a new promotion is queued or waiting, not {}", request.state)));
            }
            let id = transaction.last_insert_rowid();
            append(
                transaction,
                Draft {
                    audit: &audit,
                    action: &format!("promotion.{}", request.state),
                    project: request.project.as_str(),
                    environment: Some(request.environment.as_str()),
                    release: Some(&request.release),
                    digests: BTreeMap::new(),
                    reason: None,
                    detail: json!({"promotion": id, "kind": request.kind.as_str(), "emergency": request.emergency}),
                },
            )?;
            let promotion = load_promotion(transaction, id)?.ok_or_else(|| StoreError::NotFound(format!("promotion {id}")))?;
            Ok((promotion, true))
        })
        .await
    }

    async fn start_next(
        &self,
        project: &Name,
        environment: &Name,
        lease: &Lease,
    ) -> Result<Option<PromotionRecord>> {
        let project = project.to_string();
        let environment = environment.to_string();
        let lease = lease.clone();
        self.transaction(move |transaction| {
            let running: bool = transaction
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM promotions WHERE project = ?1 AND environment = ?2 AND state = 'running')",
                    [&project, &environment],
                    |row| row.get(0),
                )
                .map_err(database)?;
            if running {
                return Ok(None);
            }
            let audit = Audit::by("gantry");
            let current = load_environment(transaction, &project, &environment)?.and_then(|e| e.release);
            loop {
                let next: Option<i64> = transaction
                    .query_row(
                        "SELECT id FROM promotions WHERE project = ?1 AND environment = ?2 AND state = 'queued' ORDER BY id LIMIT 1",
                        [&project, &environment],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(database)?;
                let Some(id) = next else { return Ok(None) };
                let promotion = load_promotion(transaction, id)?.ok_or_else(|| StoreError::NotFound(format!("promotion {id}")))?;
                // By its turn, the environment may already hold this release (a request
                // made twice, a rollback meanwhile): running it would change nothing.
                if current.as_ref() == Some(&promotion.release) {
                    let reason = format!("{environment} already holds release {} when its turn came", promotion.release);
                    transition(transaction, &promotion, PromotionState::Superseded, &audit, Some(&reason))?;
                    continue;
                }
                transition(transaction, &promotion, PromotionState::Running, &audit, None)?;
                transaction
                    .execute(
                        "UPDATE promotions SET runner = ?2, lease_until = ?3 WHERE id = ?1",
                        params![id, lease.holder, lease.until()],
                    )
                    .map_err(database)?;
                return load_promotion(transaction, id);
            }
        })
        .await
    }

    async fn finish(
        &self,
        id: i64,
        runner: &str,
        outcome: Outcome,
        audit: &Audit,
    ) -> Result<PromotionRecord> {
        let (runner, audit) = (runner.to_owned(), audit.clone());
        self.transaction(move |transaction| {
            let promotion = load_promotion(transaction, id)?.ok_or_else(|| StoreError::NotFound(format!("promotion {id}")))?;
            check_runner(&promotion, &runner)?;
            match outcome {
                Outcome::Failed { error } => transition(transaction, &promotion, PromotionState::Failed, &audit, Some(&error))?,
                Outcome::Succeeded { expected_version } => {
                    let environment = load_environment(transaction, promotion.project.as_str(), promotion.environment.as_str())?
                        .ok_or_else(|| StoreError::NotFound(format!("environment {}", promotion.environment)))?;
                    promotion
                        .state
                        .transition(PromotionState::Succeeded)
                        .map_err(|e| StoreError::Conflict(format!("promotion {id}: {e}")))?;
                    let moved = transaction
                        .execute(
                            "UPDATE environments SET release_id = ?3, version = version + 1, since = ?4, moved_by = ?5 \
                             WHERE project = ?1 AND name = ?2 AND version = ?6",
                            params![
                                promotion.project.as_str(),
                                promotion.environment.as_str(),
                                promotion.release.digest().as_str(),
                                time::now(),
                                promotion.requested_by,
                                expected_version,
                            ],
                        )
                        .map_err(database)?;
                    if moved != 1 {
                        return Err(StoreError::Conflict(format!(
                            "environment {} moved meanwhile (version {} is not {expected_version})",
                            promotion.environment, environment.version
                        )));
                    }
                    let previous = environment.release.as_ref().map(|r| r.digest().to_string());
                    transaction
                        .execute(
                            "UPDATE promotions SET state = 'succeeded', finished_at = ?2, previous_release_id = ?3 WHERE id = ?1",
                            params![id, time::now(), previous],
                        )
                        .map_err(database)?;
                    append(
                        transaction,
                        Draft {
                            audit: &audit,
                            action: "promotion.succeeded",
                            project: promotion.project.as_str(),
                            environment: Some(promotion.environment.as_str()),
                            release: Some(&promotion.release),
                            digests: digests_of(transaction, &promotion.release)?,
                            reason: None,
                            detail: json!({
                                "promotion": id,
                                "kind": promotion.kind.as_str(),
                                "previous": previous,
                                "version": expected_version + 1,
                            }),
                        },
                    )?;
                }
            }
            load_promotion(transaction, id)?.ok_or_else(|| StoreError::NotFound(format!("promotion {id}")))
        })
        .await
    }

    async fn cancel(&self, id: i64, audit: &Audit) -> Result<PromotionRecord> {
        let audit = audit.clone();
        self.transaction(move |transaction| {
            let promotion = load_promotion(transaction, id)?
                .ok_or_else(|| StoreError::NotFound(format!("promotion {id}")))?;
            transition(
                transaction,
                &promotion,
                PromotionState::Cancelled,
                &audit,
                None,
            )?;
            load_promotion(transaction, id)?
                .ok_or_else(|| StoreError::NotFound(format!("promotion {id}")))
        })
        .await
    }

    async fn advance(
        &self,
        id: i64,
        to: PromotionState,
        reason: Option<&str>,
        audit: &Audit,
    ) -> Result<PromotionRecord> {
        let (reason, audit) = (reason.map(str::to_owned), audit.clone());
        self.transaction(move |transaction| {
            let promotion = load_promotion(transaction, id)?
                .ok_or_else(|| StoreError::NotFound(format!("promotion {id}")))?;
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
                .then_some(reason.as_deref())
                .flatten();
            transition(transaction, &promotion, to, &audit, error)?;
            load_promotion(transaction, id)?
                .ok_or_else(|| StoreError::NotFound(format!("promotion {id}")))
        })
        .await
    }

    async fn promotions_in_state(
        &self,
        project: &Name,
        state: PromotionState,
    ) -> Result<Vec<PromotionRecord>> {
        let project = project.to_string();
        self.transaction(move |transaction| {
            let rows = all_rows(
                transaction,
                &format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE project = ?1 AND state = ?2 ORDER BY id"),
                params![project, state.as_str()],
                promotion_row,
            )?;
            rows.into_iter().map(promotion_record).collect()
        })
        .await
    }

    async fn arrivals(
        &self,
        project: &Name,
        release: &ReleaseId,
    ) -> Result<BTreeMap<Name, String>> {
        let (project, release) = (project.to_string(), release.digest().to_string());
        self.transaction(move |transaction| {
            let rows = all_rows(
                transaction,
                "SELECT environment, MIN(finished_at) FROM promotions WHERE project = ?1 AND release_id = ?2 AND state = 'succeeded' GROUP BY environment",
                params![project, release],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )?;
            rows.into_iter()
                .map(|(environment, at)| Ok((parse("environment", &environment)?, at)))
                .collect()
        })
        .await
    }

    async fn add_evidence(
        &self,
        evidence: NewEvidence,
        audit: &Audit,
    ) -> Result<(EvidenceRecord, bool)> {
        let audit = audit.clone();
        self.transaction(move |transaction| {
            governance::add_evidence(transaction, &evidence, &audit)
        })
        .await
    }

    async fn evidence(&self, project: &Name, release: &ReleaseId) -> Result<Vec<EvidenceRecord>> {
        let (project, release) = (project.clone(), release.clone());
        self.transaction(move |transaction| governance::evidence(transaction, &project, &release))
            .await
    }

    async fn evidence_bytes(&self, project: &Name, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let (project, digest) = (project.to_string(), digest.to_string());
        self.transaction(move |transaction| {
            transaction
                .query_row(
                    "SELECT raw FROM evidence WHERE project = ?1 AND digest = ?2 LIMIT 1",
                    [project, digest],
                    |row| row.get(0),
                )
                .optional()
                .map_err(database)
        })
        .await
    }

    async fn add_approval(&self, approval: NewApproval, audit: &Audit) -> Result<ApprovalRecord> {
        let audit = audit.clone();
        self.transaction(move |transaction| {
            governance::add_approval(transaction, &approval, &audit)
        })
        .await
    }

    async fn approvals(
        &self,
        project: &Name,
        release: &ReleaseId,
        environment: &Name,
    ) -> Result<Vec<ApprovalRecord>> {
        let (project, release, environment) =
            (project.clone(), release.clone(), environment.clone());
        self.transaction(move |transaction| {
            governance::approvals(transaction, &project, &release, &environment)
        })
        .await
    }

    async fn record_decision(
        &self,
        decision: NewDecision,
        audit: &Audit,
    ) -> Result<DecisionRecord> {
        let audit = audit.clone();
        self.transaction(move |transaction| {
            governance::record_decision(transaction, &decision, &audit)
        })
        .await
    }

    async fn decisions(
        &self,
        project: &Name,
        release: &ReleaseId,
        environment: Option<&Name>,
        limit: usize,
    ) -> Result<Vec<DecisionRecord>> {
        let (project, release, environment) =
            (project.clone(), release.clone(), environment.cloned());
        self.transaction(move |transaction| {
            governance::decisions(transaction, &project, &release, environment.as_ref(), limit)
        })
        .await
    }

    async fn set_stop(
        &self,
        project: &Name,
        environment: Option<&Name>,
        stop: bool,
        audit: &Audit,
    ) -> Result<()> {
        let (project, environment, audit) = (project.clone(), environment.cloned(), audit.clone());
        self.transaction(move |transaction| {
            governance::set_stop(transaction, &project, environment.as_ref(), stop, &audit)
        })
        .await
    }

    async fn stops(&self, project: &Name) -> Result<Vec<StopRecord>> {
        let project = project.clone();
        self.transaction(move |transaction| governance::stops(transaction, &project))
            .await
    }

    async fn record_refusal(&self, refusal: NewRefusal, audit: &Audit) -> Result<()> {
        let audit = audit.clone();
        self.transaction(move |transaction| {
            governance::record_refusal(transaction, &refusal, &audit)
        })
        .await
    }

    async fn promotion(&self, id: i64) -> Result<Option<PromotionRecord>> {
        self.transaction(move |transaction| load_promotion(transaction, id))
            .await
    }

    async fn promotions(
        &self,
        project: &Name,
        environment: Option<&Name>,
        limit: usize,
    ) -> Result<Vec<PromotionRecord>> {
        let project = project.to_string();
        let environment = environment.map(ToString::to_string);
        self.transaction(move |transaction| {
            let mut statement = transaction
                .prepare_cached(&format!(
                    "SELECT {PROMOTION_COLUMNS} FROM promotions WHERE project = ?1 AND (?2 IS NULL OR environment = ?2) ORDER BY id DESC LIMIT ?3"
                ))
                .map_err(database)?;
            let rows = statement
                .query_map(params![project, environment, i64::try_from(limit).unwrap_or(i64::MAX)], promotion_row)
                .map_err(database)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(database)?;
            rows.into_iter().map(promotion_record).collect()
        })
        .await
    }

    async fn set_hold(
        &self,
        project: &Name,
        environment: &Name,
        hold: bool,
        audit: &Audit,
    ) -> Result<EnvironmentRecord> {
        let (project, environment, audit) =
            (project.to_string(), environment.to_string(), audit.clone());
        self.transaction(move |transaction| {
            let current = load_environment(transaction, &project, &environment)?
                .ok_or_else(|| StoreError::NotFound(format!("environment {environment} of project {project}")))?;
            if current.hold.is_some() == hold {
                return Err(StoreError::Conflict(format!(
                    "environment {environment} is {} held",
                    if hold { "already" } else { "not" }
                )));
            }
            let now = time::now();
            transaction
                .execute(
                    "UPDATE environments SET held = ?3, hold_by = ?4, hold_reason = ?5, hold_since = ?6 WHERE project = ?1 AND name = ?2",
                    params![
                        project,
                        environment,
                        hold,
                        hold.then_some(&audit.actor),
                        if hold { audit.reason.clone() } else { None },
                        hold.then_some(&now),
                    ],
                )
                .map_err(database)?;
            append(
                transaction,
                Draft {
                    audit: &audit,
                    action: if hold { "environment.held" } else { "environment.unheld" },
                    project: &project,
                    environment: Some(&environment),
                    release: current.release.as_ref(),
                    digests: BTreeMap::new(),
                    reason: None,
                    detail: serde_json::Value::Null,
                },
            )?;
            load_environment(transaction, &project, &environment)?.ok_or_else(|| StoreError::NotFound(format!("environment {environment}")))
        })
        .await
    }

    async fn renew_leases(&self, lease: &Lease) -> Result<usize> {
        let lease = lease.clone();
        self.transaction(move |transaction| {
            transaction
                .execute(
                    "UPDATE promotions SET lease_until = ?2 WHERE state = 'running' AND runner = ?1",
                    params![lease.holder, lease.until()],
                )
                .map_err(database)
        })
        .await
    }

    async fn requeue_expired(&self, audit: &Audit) -> Result<Vec<PromotionRecord>> {
        let audit = audit.clone();
        self.transaction(move |transaction| {
            let mut statement = transaction
                .prepare(&format!(
                    "SELECT {PROMOTION_COLUMNS} FROM promotions WHERE state = 'running' \
                     AND (lease_until IS NULL OR lease_until <= ?1) ORDER BY id"
                ))
                .map_err(database)?;
            let rows = statement
                .query_map([time::now()], promotion_row)
                .map_err(database)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(database)?;
            drop(statement);
            let mut requeued = Vec::new();
            for row in rows {
                let promotion = promotion_record(row)?;
                transition(
                    transaction,
                    &promotion,
                    PromotionState::Queued,
                    &audit,
                    None,
                )?;
                requeued.push(
                    load_promotion(transaction, promotion.id)?.ok_or_else(|| {
                        StoreError::NotFound(format!("promotion {}", promotion.id))
                    })?,
                );
            }
            Ok(requeued)
        })
        .await
    }

    async fn ledger_entries(&self, after: u64, limit: usize) -> Result<Vec<Entry>> {
        self.transaction(move |transaction| {
            let mut statement = transaction
                .prepare_cached(
                    "SELECT entry FROM ledger WHERE sequence > ?1 ORDER BY sequence LIMIT ?2",
                )
                .map_err(database)?;
            let texts: Vec<String> = statement
                .query_map(
                    params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
                    |row| row.get(0),
                )
                .map_err(database)?
                .collect::<rusqlite::Result<_>>()
                .map_err(database)?;
            texts.iter().map(|text| ledger_entry(text)).collect()
        })
        .await
    }

    async fn create_token(
        &self,
        name: &str,
        principal: &Principal,
        hash: &str,
        lifetime: Option<std::time::Duration>,
        audit: &Audit,
    ) -> Result<()> {
        let (name, principal, hash, audit) = (
            name.to_owned(),
            principal.clone(),
            hash.to_owned(),
            audit.clone(),
        );
        let expires_at = lifetime.map(|l| time::format(std::time::SystemTime::now() + l));
        self.transaction(move |transaction| {
            access::create_token(
                transaction,
                &name,
                &principal,
                &hash,
                expires_at.as_deref(),
                &audit,
            )
        })
        .await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>> {
        let hash = hash.to_owned();
        self.transaction(move |transaction| access::token_by_hash(transaction, &hash))
            .await
    }

    async fn revoke_token(&self, name: &str, audit: &Audit) -> Result<()> {
        let (name, audit) = (name.to_owned(), audit.clone());
        self.transaction(move |transaction| access::revoke_token(transaction, &name, &audit))
            .await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.transaction(access::tokens).await
    }

    async fn grant(&self, grant: &Grant, audit: &Audit) -> Result<(GrantRecord, bool)> {
        let (grant, audit) = (grant.clone(), audit.clone());
        self.transaction(move |transaction| access::grant(transaction, &grant, &audit))
            .await
    }

    async fn revoke_grant(&self, grant: &Grant, audit: &Audit) -> Result<()> {
        let (grant, audit) = (grant.clone(), audit.clone());
        self.transaction(move |transaction| access::revoke_grant(transaction, &grant, &audit))
            .await
    }

    async fn grants(&self, principal: Option<&Principal>) -> Result<Vec<GrantRecord>> {
        let principal = principal.cloned();
        self.transaction(move |transaction| access::grants(transaction, principal.as_ref()))
            .await
    }

    async fn live_state(&self) -> Result<Snapshot> {
        self.transaction(live::snapshot).await
    }

    async fn token_count(&self) -> Result<u64> {
        self.transaction(move |transaction| {
            transaction
                .query_row("SELECT COUNT(*) FROM tokens", [], |row| row.get(0))
                .map_err(database)
        })
        .await
    }
}
