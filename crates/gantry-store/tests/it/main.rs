//! The store suite: every backend must pass the same stories, `SQLite` (a file in a temp
//! dir) and `PostgreSQL` (a throwaway database on the server `GANTRY_TEST_POSTGRES` names).

mod postgres;
mod suite;

use gantry_store::sqlite::SqliteStore;
use gantry_store::store::Store as _;

/// A fresh `SQLite` store in a throwaway directory, kept alive with the store.
fn sqlite() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("gantry.db")).unwrap();
    (store, dir)
}

macro_rules! backend_suite {
    ($backend:ident, $open:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn releases_are_created_once() {
                let (store, _guard) = $open;
                suite::releases_are_created_once(&store).await;
            }

            #[tokio::test]
            async fn promotions_queue_run_and_move_pointers() {
                let (store, _guard) = $open;
                suite::promotions_queue_run_and_move_pointers(&store).await;
            }

            #[tokio::test]
            async fn idempotency_keys_queue_once() {
                let (store, _guard) = $open;
                suite::idempotency_keys_queue_once(&store).await;
            }

            #[tokio::test]
            async fn pointers_move_only_by_compare_and_swap() {
                let (store, _guard) = $open;
                suite::pointers_move_only_by_compare_and_swap(&store).await;
            }

            #[tokio::test]
            async fn holds_and_interrupted_promotions() {
                let (store, _guard) = $open;
                suite::holds_and_interrupted_promotions(&store).await;
            }

            #[tokio::test]
            async fn tokens_are_kept_by_hash() {
                let (store, _guard) = $open;
                suite::tokens_are_kept_by_hash(&store).await;
            }

            #[tokio::test]
            async fn grants_are_kept_once_and_revoked() {
                let (store, _guard) = $open;
                suite::grants_are_kept_once_and_revoked(&store).await;
            }

            #[tokio::test]
            async fn the_last_server_admin_stays() {
                let (store, _guard) = $open;
                suite::the_last_server_admin_stays(&store).await;
            }

            #[tokio::test]
            async fn gates_keep_evidence_approvals_decisions_and_stops() {
                let (store, _guard) = $open;
                suite::gates_keep_evidence_approvals_decisions_and_stops(&store).await;
            }

            #[tokio::test]
            async fn the_ledger_proves_the_live_state() {
                let (store, _guard) = $open;
                suite::the_ledger_proves_the_live_state(&store).await;
            }

            #[tokio::test]
            async fn the_ledger_chains_every_change() {
                let (store, _guard) = $open;
                suite::the_ledger_chains_every_change(&store).await;
            }
        }
    };
}

backend_suite!(on_sqlite, sqlite());
backend_suite!(on_postgres, postgres::postgres().await);

/// The database itself refuses to change the ledger, whoever asks.
#[test]
fn sqlite_refuses_ledger_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gantry.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path).unwrap();
        suite::releases_are_created_once(&store).await;
    });
    let connection = rusqlite::Connection::open(&path).unwrap();
    let update = connection
        .execute("UPDATE ledger SET entry = '{}' WHERE sequence = 1", [])
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = connection.execute("DELETE FROM ledger", []).unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
}

/// `INSERT OR REPLACE` deletes the row it replaces without firing DELETE triggers: the
/// database refuses it (and every other insert at a place already taken) all the same,
/// for entries and checkpoints.
#[test]
fn sqlite_refuses_replacing_ledger_entries_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gantry.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = runtime.block_on(async {
        let store = SqliteStore::open(&path).unwrap();
        suite::releases_are_created_once(&store).await;
        store.ledger_entries(0, 100).await.unwrap()
    });
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute(
            "INSERT INTO checkpoints (size, note, created_at) VALUES (1, 'signed note', 'then')",
            [],
        )
        .unwrap();
    for statement in [
        "INSERT OR REPLACE INTO ledger (sequence, hash, entry) VALUES (1, 'forged', '{}')",
        "REPLACE INTO ledger (sequence, hash, entry) VALUES (1, 'forged', '{}')",
        "INSERT INTO ledger (sequence, hash, entry) VALUES (1, 'forged', '{}') \
         ON CONFLICT (sequence) DO UPDATE SET entry = excluded.entry",
        "INSERT OR REPLACE INTO checkpoints (size, note, created_at) VALUES (1, 'forged', 'now')",
        "REPLACE INTO checkpoints (size, note, created_at) VALUES (1, 'forged', 'now')",
        "INSERT INTO checkpoints (size, note, created_at) VALUES (1, 'forged', 'now') \
         ON CONFLICT (size) DO UPDATE SET note = excluded.note",
    ] {
        let error = connection.execute(statement, []).unwrap_err();
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    let note: String = connection
        .query_row("SELECT note FROM checkpoints WHERE size = 1", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(note, "signed note");
    drop(connection);
    let after = runtime.block_on(async {
        SqliteStore::open(&path)
            .unwrap()
            .ledger_entries(0, 100)
            .await
            .unwrap()
    });
    assert_eq!(after, before);
}

/// Whoever changes the live tables by hand in the database (a pointer moved to a release
/// never promoted there, a hold lifted, a grant or a token added, a token's hash swapped)
/// is named by a replay of the ledger.
#[tokio::test]
async fn sqlite_changes_by_hand_are_mismatches() {
    let (store, dir) = sqlite();
    let release = suite::the_ledger_proves_the_live_state(&store).await;
    let forged = format!("sha256:{}", "f".repeat(64));
    let connection = rusqlite::Connection::open(dir.path().join("gantry.db")).unwrap();
    connection
        .execute_batch(&format!(
            "PRAGMA foreign_keys = OFF;
             UPDATE environments SET release_id = '{forged}', held = 0 WHERE project = 'payments' AND name = 'prod';
             INSERT INTO grants (principal, role, project, environment, granted_by, granted_at)
                 VALUES ('mallory', 'admin', '', '', 'admin', 'then');
             UPDATE tokens SET hash = '{}' WHERE name = 'ci';",
            "00".repeat(32)
        ))
        .unwrap();
    drop(connection);
    assert_eq!(
        suite::mismatches(&store).await,
        [
            format!(
                "environment payments/prod: pointer names release {forged}, ledger says {}",
                release.digest()
            ),
            "environment payments/prod: not held, ledger says held by carol (\"incident 12\")"
                .to_owned(),
            "grant of admin to mallory over the server: in the live tables, not in the ledger"
                .to_owned(),
            "token ci: its stored hash is not the one the ledger recorded: it accepts another secret"
                .to_owned(),
        ]
    );
}

/// The database holds grants, token hashes and evidence: a new one, its WAL and its
/// shared memory are for their owner only.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_for_their_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;

    let (store, dir) = sqlite();
    suite::releases_are_created_once(&store).await;
    for name in ["gantry.db", "gantry.db-wal", "gantry.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
}

/// Belt and braces under the store's own check: the database refuses a second running
/// promotion in one environment.
#[tokio::test]
async fn sqlite_refuses_two_running_promotions_in_one_environment() {
    let (store, dir) = sqlite();
    suite::one_running_one_queued(&store).await;
    let connection = rusqlite::Connection::open(dir.path().join("gantry.db")).unwrap();
    let error = connection
        .execute(
            "UPDATE promotions SET state = 'running' WHERE state = 'queued'",
            [],
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("UNIQUE constraint failed"),
        "{error}"
    );
}

/// A store from before roles: the principals of its tokens still in use become admins of
/// the server when it is upgraded; a revoked token's principal does not.
#[test]
fn upgrading_to_roles_keeps_working_tokens_admins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gantry.db");
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            .unwrap();
        for (version, sql) in [
            (1, include_str!("../../migrations/sqlite/0001_init.sql")),
            (2, include_str!("../../migrations/sqlite/0002_tokens.sql")),
            (3, include_str!("../../migrations/sqlite/0003_gates.sql")),
            (
                4,
                include_str!("../../migrations/sqlite/0004_token_lifetimes.sql"),
            ),
            (
                5,
                include_str!("../../migrations/sqlite/0005_one_running_promotion.sql"),
            ),
        ] {
            connection.execute_batch(sql).unwrap();
            connection
                .execute(
                    "INSERT INTO schema_migrations VALUES (?1, 'then')",
                    [version],
                )
                .unwrap();
        }
        connection
            .execute_batch(
                "INSERT INTO tokens (name, hash, created_at, created_by) VALUES ('admin', 'h1', 'then', 'gantry');
                 INSERT INTO tokens (name, hash, created_at, created_by, revoked_at, revoked_by)
                     VALUES ('old-ci', 'h2', 'then', 'admin', 'then', 'admin');",
            )
            .unwrap();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path).unwrap();
        let grants = store.grants(None).await.unwrap();
        assert_eq!(
            grants
                .iter()
                .map(|g| (
                    g.grant.principal.to_string(),
                    g.grant.role,
                    g.grant.scope.clone()
                ))
                .collect::<Vec<_>>(),
            [(
                "admin".to_owned(),
                gantry_core::Role::Admin,
                gantry_core::Scope::Server
            )]
        );
        let token = store.token_by_hash("h1").await.unwrap().unwrap();
        assert_eq!(token.principal.to_string(), "admin");
    });
    // Opening again changes nothing more.
    runtime.block_on(async {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.grants(None).await.unwrap().len(), 1);
        // The grant the upgrade made (in SQL) is in the ledger, recorded once: a replay
        // proves it. (The tokens this test made by hand have no entries.)
        let entries = store.ledger_entries(0, 100).await.unwrap();
        assert_eq!(
            entries
                .iter()
                .map(|e| (e.actor.as_str(), e.action.as_str()))
                .collect::<Vec<_>>(),
            [("gantry (upgrade to roles)", "access.granted")]
        );
        let grants: Vec<String> = suite::mismatches(&store)
            .await
            .into_iter()
            .filter(|m| m.starts_with("grant"))
            .collect();
        assert_eq!(grants, Vec::<String>::new());
    });
}
