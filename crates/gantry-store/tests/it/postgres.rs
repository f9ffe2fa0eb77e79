//! `PostgreSQL` for the suite: a throwaway database per test on the server that
//! `GANTRY_TEST_POSTGRES` names, and the tests only this backend has.

use std::sync::Arc;

use gantry_store::postgres::PostgresStore;
use gantry_store::store::Store;
use gantry_testkit::postgres::TestDatabase;

use crate::suite;

/// A fresh store on a database of its own, dropped with the guard.
pub async fn postgres() -> (PostgresStore, TestDatabase) {
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect(&database.url).await.unwrap();
    (store, database)
}

/// The database itself refuses to change the ledger or its checkpoints, whoever asks and
/// however the statement is spelled.
#[tokio::test]
async fn postgres_refuses_ledger_updates_and_deletes() {
    let (store, database) = postgres().await;
    suite::releases_are_created_once(&store).await;
    let before = store.ledger_entries(0, 100).await.unwrap();
    let client = database.client().await;
    client
        .batch_execute(
            "INSERT INTO checkpoints (size, note, created_at) VALUES (1, 'signed note', 'then')",
        )
        .await
        .unwrap();
    for statement in [
        "UPDATE ledger SET entry = '{}' WHERE sequence = 1",
        "DELETE FROM ledger",
        "DELETE FROM ledger WHERE sequence < 0",
        "TRUNCATE ledger",
        // What SQLite's REPLACE does, PostgreSQL spells as an upsert or a MERGE: each
        // fires the statement triggers of the UPDATE or DELETE it may do.
        "INSERT INTO ledger (sequence, hash, entry) VALUES (1, 'forged', '{}') \
         ON CONFLICT (sequence) DO UPDATE SET entry = excluded.entry",
        "MERGE INTO ledger USING (VALUES (1::bigint)) AS forged (sequence) \
         ON ledger.sequence = forged.sequence WHEN MATCHED THEN UPDATE SET entry = '{}'",
        "MERGE INTO ledger USING (VALUES (1::bigint)) AS forged (sequence) \
         ON ledger.sequence = forged.sequence WHEN MATCHED THEN DELETE",
        "WITH gone AS (DELETE FROM ledger RETURNING sequence) SELECT count(*) FROM gone",
        "INSERT INTO checkpoints (size, note, created_at) VALUES (1, 'forged', 'now') \
         ON CONFLICT (size) DO UPDATE SET note = excluded.note",
        "MERGE INTO checkpoints USING (VALUES (1::bigint)) AS forged (size) \
         ON checkpoints.size = forged.size WHEN MATCHED THEN DELETE",
        "TRUNCATE checkpoints",
    ] {
        let error = client.batch_execute(statement).await.unwrap_err();
        let message = error
            .as_db_error()
            .map(tokio_postgres::error::DbError::message)
            .unwrap_or_default();
        assert!(message.contains("append-only"), "{statement}: {error:?}");
    }
    assert_eq!(store.ledger_entries(0, 100).await.unwrap(), before);
    let note: String = client
        .query_one("SELECT note FROM checkpoints WHERE size = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(note, "signed note");
}

/// Belt and braces under the writers' lock: the database refuses a second running
/// promotion in one environment.
#[tokio::test]
async fn postgres_refuses_two_running_promotions_in_one_environment() {
    let (store, database) = postgres().await;
    suite::one_running_one_queued(&store).await;
    let error = database
        .client()
        .await
        .batch_execute("UPDATE promotions SET state = 'running' WHERE state = 'queued'")
        .await
        .unwrap_err();
    let constraint = error.as_db_error().and_then(|e| e.constraint());
    assert_eq!(constraint, Some("promotions_one_running"), "{error:?}");
}

/// Whoever changes the live tables by hand in the database is named by a replay of the
/// ledger, on `PostgreSQL` too.
#[tokio::test]
async fn postgres_changes_by_hand_are_mismatches() {
    let (store, database) = postgres().await;
    let release = suite::the_ledger_proves_the_live_state(&store).await;
    // A release that exists but was never promoted into prod: the story's last.
    let forged = store
        .latest_release(&"payments".parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .id
        .digest()
        .to_string();
    assert_ne!(forged, release.digest().to_string());
    database
        .client()
        .await
        .batch_execute(&format!(
            "UPDATE environments SET release_id = '{forged}', version = 7 \
             WHERE project = 'payments' AND name = 'prod';
             DELETE FROM stops;
             UPDATE tokens SET revoked_at = NULL WHERE name = 'old-ci';"
        ))
        .await
        .unwrap();
    assert_eq!(
        suite::mismatches(&store).await,
        [
            format!(
                "environment payments/prod: pointer names release {forged}, ledger says {}",
                release.digest()
            ),
            "environment payments/prod: pointer is at version 7, ledger says 1".to_owned(),
            "line of project payments: not stopped, ledger says stopped by carol (\"freeze\")"
                .to_owned(),
            "token old-ci: not revoked, ledger says revoked by admin".to_owned(),
        ]
    );
}

/// Two replicas on one database write at once, and it still reads as one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_keep_one_ledger_chain() {
    let database = TestDatabase::create().await;
    let (first, second) = tokio::join!(
        PostgresStore::connect(&database.url),
        PostgresStore::connect(&database.url)
    );
    let replicas: [Arc<dyn Store>; 2] = [Arc::new(first.unwrap()), Arc::new(second.unwrap())];
    suite::replicas_keep_one_chain(replicas).await;
}

/// Replicas starting at once apply each migration once: none fails on a table another
/// created meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connects_apply_each_migration_once() {
    let database = TestDatabase::create().await;
    let (first, second, third) = tokio::join!(
        PostgresStore::connect(&database.url),
        PostgresStore::connect(&database.url),
        PostgresStore::connect(&database.url)
    );
    for store in [first, second, third] {
        store.unwrap();
    }
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count();
    let applied: Vec<(i64, i64)> = database
        .client()
        .await
        .query(
            "SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let expected: Vec<(i64, i64)> = (1..=i64::try_from(migrations).unwrap())
        .map(|v| (v, 1))
        .collect();
    assert_eq!(applied, expected);
    // And again, on a database that is up to date, changes nothing.
    PostgresStore::connect(&database.url).await.unwrap();
}

/// A store that cannot connect says where it tried, never with what password.
#[tokio::test]
async fn connect_errors_name_the_server_never_the_password() {
    // Nothing listens on port 1.
    let error = PostgresStore::connect("postgres://gantry:hunter2@127.0.0.1:1/gantry")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("127.0.0.1:1/gantry"), "{error}");
    assert!(error.contains("Connection refused"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
    let error = PostgresStore::connect("postgres://gantry:hunter2@127.0.0.1:port/gantry")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("invalid"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}
