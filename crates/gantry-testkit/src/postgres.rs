//! Throwaway `PostgreSQL` databases: one per test, on the server `GANTRY_TEST_POSTGRES`
//! names (`scripts/test.sh` starts one when none runs), dropped afterwards.

use tokio_postgres::NoTls;

/// The server the tests use unless `GANTRY_TEST_POSTGRES` names another.
const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

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

pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
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
