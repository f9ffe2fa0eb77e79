//! `PostgreSQL` for the suite: a throwaway database per test on the server that
//! `GANTRY_TEST_POSTGRES` names, and the tests only this backend has.

use std::sync::Arc;

use gantry_store::postgres::PostgresStore;
use gantry_store::store::Store;
use tokio_postgres::NoTls;

use crate::suite;

/// The server the tests use unless `GANTRY_TEST_POSTGRES` names another.
const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh store on a database of its own, dropped with the guard.
pub async fn postgres() -> (PostgresStore, TestDatabase) {
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect(&database.url).await.unwrap();
    (store, database)
}

/// A database `gantry_test_<random hex>`, dropped (with any sessions still on it) when
/// this is.
#[derive(Debug)]
pub struct TestDatabase {
    /// The server's URL, on a database that is not this one.
    server: String,
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let server =
            std::env::var("GANTRY_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_SERVER.to_owned());
        let mut random = [0; 8];
        getrandom::fill(&mut random).unwrap();
        let name = format!("gantry_test_{}", hex::encode(random));
        connect(&server)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot reach PostgreSQL for the store tests: {e} ({e:?})\n\
                     start PostgreSQL on 127.0.0.1:5432 with trust authentication for the user \
                     postgres, or set GANTRY_TEST_POSTGRES to the URL of a server where the user \
                     may create databases; scripts/test.sh does both"
                )
            })
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = with_database(&server, &name);
        TestDatabase { server, name, url }
    }

    /// A plain connection to this database, to do what the store never would.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await.unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // A test's runtime cannot block on a future inside itself: a thread with a
        // runtime of its own does the dropping.
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                connect(&server)
                    .await
                    .map_err(|e| format!("{e:?}"))?
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| format!("{e:?}"))
            })
        })
        .join();
        assert!(
            matches!(dropped, Ok(Ok(()))) || std::thread::panicking(),
            "could not drop the test database {}: {dropped:?}",
            self.name
        );
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// `url` with its database replaced by `database`, in either form a connection string
/// takes.
fn with_database(url: &str, database: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // key=value form: a later key wins.
        return format!("{url} dbname={database}");
    };
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base[scheme_end + 3..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + 3 + i);
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    format!("{}/{database}{query}", &base[..authority_end])
}

#[test]
fn test_urls_name_their_database() {
    for (url, expect) in [
        (
            "postgres://postgres@127.0.0.1:5432/postgres",
            "postgres://postgres@127.0.0.1:5432/t",
        ),
        ("postgres://u:p@h", "postgres://u:p@h/t"),
        (
            "postgresql://u@h:1/db?sslmode=disable",
            "postgresql://u@h:1/t?sslmode=disable",
        ),
        ("host=h user=u", "host=h user=u dbname=t"),
    ] {
        assert_eq!(with_database(url, "t"), expect);
    }
}

/// The database itself refuses to change the ledger, whoever asks.
#[tokio::test]
async fn postgres_refuses_ledger_updates_and_deletes() {
    let (store, database) = postgres().await;
    suite::releases_are_created_once(&store).await;
    let before = store.ledger_entries(0, 100).await.unwrap();
    let client = database.client().await;
    for statement in [
        "UPDATE ledger SET entry = '{}' WHERE sequence = 1",
        "DELETE FROM ledger",
        "DELETE FROM ledger WHERE sequence < 0",
        "TRUNCATE ledger",
    ] {
        let error = client.batch_execute(statement).await.unwrap_err();
        let message = error
            .as_db_error()
            .map(tokio_postgres::error::DbError::message)
            .unwrap_or_default();
        assert!(message.contains("append-only"), "{statement}: {error:?}");
    }
    assert_eq!(store.ledger_entries(0, 100).await.unwrap(), before);
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
