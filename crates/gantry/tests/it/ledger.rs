//! `gantry ledger verify` on exports written by the ledger's own writer, and against a
//! server whose live state was changed by hand.

use std::collections::BTreeMap;

use gantry_store::ledger::export::write_export;
use gantry_store::ledger::merkle::{Tree, leaf_hash};
use gantry_store::ledger::note::{Checkpoint, generate, sign};
use gantry_store::ledger::{Entry, GENESIS};
use gantry_testkit::postgres::TestDatabase;
use gantry_testkit::{ImageBuilder, Pusher, Registry};

use crate::server::spawn_serve_with;
use crate::support::{Outcome, gantry, gantry_with_env};

/// An export of `count` chained entries with a checkpoint every 10, and its key.
fn export(count: u64) -> (tempfile::NamedTempFile, String) {
    let key = generate("gantry.test").unwrap();
    let mut previous = GENESIS;
    let mut tree = Tree::new();
    let mut entries = Vec::new();
    let mut checkpoints = Vec::new();
    for sequence in 1..=count {
        let entry = Entry {
            sequence,
            time: "2026-11-21T22:00:00.000Z".to_owned(),
            actor: "alice".to_owned(),
            action: "promotion.succeeded".to_owned(),
            project: "payments".to_owned(),
            environment: Some("prod".to_owned()),
            release: Some(format!("sha256:{sequence:064x}")),
            digests: BTreeMap::from([("api".to_owned(), format!("sha256:{:064x}", sequence + 1))]),
            reason: None,
            detail: serde_json::Value::Null,
            previous: hex::encode(previous),
        };
        previous = entry.hash();
        tree.push(leaf_hash(&entry.canonical_bytes()));
        if sequence % 10 == 0 {
            checkpoints.push(sign(
                &Checkpoint {
                    origin: "gantry.test/ledger".to_owned(),
                    size: sequence,
                    root: tree.root(),
                },
                &key,
            ));
        }
        entries.push(entry);
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    write_export(
        std::fs::File::create(file.path()).unwrap(),
        "gantry.test/ledger",
        &key.verifier_key(),
        entries,
        checkpoints,
    )
    .unwrap();
    (file, key.verifier_key().to_vkey_string())
}

#[tokio::test]
async fn verifies_an_export_and_names_the_first_broken_entry() {
    let (file, key) = export(30);
    let path = file.path().to_str().unwrap();
    let json = gantry(&["ledger", "verify", "-o", "json", "--key", &key, path])
        .await
        .success()
        .json();
    assert_eq!(
        (json["entries"].as_u64(), json["checkpoints"].as_u64()),
        (Some(30), Some(3))
    );
    assert_eq!(json["key_trusted"], true);
    let untrusted = gantry(&["ledger", "verify", path]).await;
    assert!(
        untrusted
            .success()
            .stdout
            .contains("pass --key to trust them"),
        "{}",
        untrusted.stdout
    );

    // Change who did entry 17: its hash changes, so entry 18 no longer follows it.
    let text = std::fs::read_to_string(path).unwrap();
    let tampered: Vec<String> = text
        .lines()
        .map(|line| {
            if line.contains("\"sequence\":17,") {
                line.replace("alice", "mallory")
            } else {
                line.to_owned()
            }
        })
        .collect();
    std::fs::write(path, tampered.join("\n") + "\n").unwrap();
    let out = gantry(&["ledger", "verify", "--key", &key, path]).await;
    out.fails_with(1, "entry 18");
    assert!(
        out.stderr.contains("previous hash does not match entry 17"),
        "{}",
        out.stderr
    );

    let (other, _) = export(10);
    let wrong_key = export(1).1;
    gantry(&[
        "ledger",
        "verify",
        "--key",
        &wrong_key,
        other.path().to_str().unwrap(),
    ])
    .await
    .fails_with(1, "does not verify");
    gantry(&["ledger", "verify", "--key", "not-a-key", path])
        .await
        .fails_with(2, "--key");
    // An input file that cannot be read is a usage error, as for reports and policies.
    gantry(&["ledger", "verify", "/nonexistent/ledger.jsonl"])
        .await
        .fails_with(2, "cannot open /nonexistent/ledger.jsonl");
}

/// The lines of an export file.
fn lines_of(file: &tempfile::NamedTempFile) -> Vec<String> {
    std::fs::read_to_string(file.path())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Writes `lines` to a new file.
fn file_of(lines: &[String]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), lines.join("\n") + "\n").unwrap();
    file
}

#[tokio::test]
async fn a_signed_export_verifies_only_when_every_entry_is_signed() {
    let (original, key) = export(20);
    let lines = lines_of(&original);

    // Every checkpoint removed: nothing is signed, and --key says so.
    let unsigned: Vec<String> = lines
        .iter()
        .filter(|line| !line.starts_with("{\"checkpoint\""))
        .cloned()
        .collect();
    let file = file_of(&unsigned);
    let path = file.path().to_str().unwrap();
    gantry(&["ledger", "verify", "--key", &key, path])
        .await
        .fails_with(
            1,
            "entry 1 (line 2): no signed checkpoint covers it (20 of 20 entries are not signed)",
        );

    // Only the last checkpoint removed.
    let mut last_removed = lines.clone();
    assert!(last_removed.pop().unwrap().starts_with("{\"checkpoint\""));
    let file = file_of(&last_removed);
    gantry(&[
        "ledger",
        "verify",
        "--key",
        &key,
        file.path().to_str().unwrap(),
    ])
    .await
    .fails_with(1, "entry 11 (line 13): no signed checkpoint covers it");

    // A forged entry appended after the last checkpoint, chained to the entry before.
    let last: Entry = serde_json::from_value(
        serde_json::from_str::<serde_json::Value>(&lines[lines.len() - 2]).unwrap()["entry"]
            .clone(),
    )
    .unwrap();
    let forged = Entry {
        sequence: 21,
        actor: "mallory".to_owned(),
        release: Some(format!("sha256:{}", "f".repeat(64))),
        previous: hex::encode(last.hash()),
        ..last
    };
    let mut appended = lines.clone();
    appended.push(serde_json::json!({ "entry": forged }).to_string());
    let file = file_of(&appended);
    let path = file.path().to_str().unwrap();
    let refused = gantry(&["ledger", "verify", "--key", &key, path]).await;
    refused.fails_with(
        1,
        &format!(
            "entry 21 (line {}): no signed checkpoint covers it (1 of 21 entries are not signed)",
            appended.len()
        ),
    );
    assert!(
        refused.stderr.contains("--allow-unsigned-tail"),
        "{}",
        refused.stderr
    );

    // A live export copied between checkpoints: allowed when asked, and counted.
    let allowed = gantry(&[
        "ledger",
        "verify",
        "--key",
        &key,
        "--allow-unsigned-tail",
        path,
    ])
    .await;
    assert!(
        allowed
            .success()
            .stdout
            .contains("unsigned 1 entries after the last checkpoint, from entry 21"),
        "{}",
        allowed.stdout
    );
    let json = gantry(&[
        "ledger",
        "verify",
        "-o",
        "json",
        "--key",
        &key,
        "--allow-unsigned-tail",
        path,
    ])
    .await
    .success()
    .json();
    assert_eq!(
        (
            &json["signed_entries"],
            &json["unsigned_entries"],
            &json["first_unsigned_entry"],
            &json["every_entry_signed"]
        ),
        (
            &serde_json::json!(20),
            &serde_json::json!(1),
            &serde_json::json!(21),
            &serde_json::json!(false)
        )
    );
    // A whole export is signed throughout.
    let json = gantry(&[
        "ledger",
        "verify",
        "-o",
        "json",
        "--key",
        &key,
        original.path().to_str().unwrap(),
    ])
    .await
    .success()
    .json();
    assert_eq!(json["every_entry_signed"], true);
    assert_eq!(json["unsigned_entries"], 0);
}

/// A `gantry serve` that checks its live state against the ledger every second, with
/// dev (tracking the registry) and prod (from dev) in one project.
struct LiveServer {
    _child: tokio::process::Child,
    url: String,
    token: String,
    registry: Registry,
    dir: tempfile::TempDir,
}

impl LiveServer {
    /// Starts it on `SQLite` in a data directory, or on the `PostgreSQL` database `database`.
    async fn start(database: Option<&str>) -> LiveServer {
        let registry = Registry::start().await;
        for (seed, tag) in [(1, "build-1"), (2, "build-2")] {
            Pusher::new(&registry)
                .push_image("payments/api", Some(tag), &ImageBuilder::new(seed).build())
                .await;
        }
        let dir = tempfile::tempdir().unwrap();
        let r = registry.host();
        std::fs::write(
            dir.path().join("payments.yaml"),
            format!(
                "project: payments
components:
  api: {r}/payments/api
environments:
  dev:
    binding: track
    strategy: retag
    targets:
      api: {{repository: {r}/payments/api}}
  prod:
    from: dev
    strategy: retag
    targets:
      api: {{repository: {r}/payments/api, tags: [prod]}}
"
            ),
        )
        .unwrap();
        let project = dir.path().join("payments.yaml");
        let data = dir.path().join("data");
        let mut args = vec![
            "--project",
            project.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--ledger-check-interval",
            "1",
        ];
        if let Some(url) = database {
            args.extend(["--database", url]);
        }
        let (child, url, token) = spawn_serve_with(dir.path(), &args, true).await;
        LiveServer {
            _child: child,
            url,
            token: token.expect("the first start prints a token"),
            registry,
            dir,
        }
    }

    async fn run(&self, args: &[&str]) -> Outcome {
        gantry_with_env(
            args,
            &[("GANTRY_URL", &self.url), ("GANTRY_TOKEN", &self.token)],
        )
        .await
    }

    /// Creates a release of `tag` and waits until dev holds it; its id.
    async fn release(&self, tag: &str) -> String {
        let image = format!("{}/payments/api:{tag}", self.registry.host());
        let created = self
            .run(&[
                "release",
                "create",
                "-o",
                "json",
                "--project",
                "payments",
                &format!("api={image}"),
            ])
            .await
            .success()
            .json();
        let (id, alias) = (
            created["id"].as_str().unwrap().to_owned(),
            created["alias"].as_str().unwrap().to_owned(),
        );
        for _ in 0..300 {
            let board = self
                .run(&["status", "-o", "json", "--project", "payments"])
                .await
                .success()
                .json();
            let dev = board["environments"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == "dev")
                .cloned()
                .unwrap();
            if dev["release_alias"] == alias.as_str() && dev["pending"] == serde_json::json!([]) {
                return id;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("dev never held {alias}");
    }

    /// `/readyz`: its status and body.
    async fn ready(&self) -> (u16, String) {
        let response = reqwest::get(format!("{}/readyz", self.url)).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

/// The story the issue tells: prod is set by hand in the database to a release never
/// promoted there. Before, `gantry status` showed it and `ledger verify --from-server`
/// passed; now the verification fails naming the environment, `/readyz` is not ready with
/// the reason, and `gantry status` warns.
async fn pointer_changed_by_hand(server: &LiveServer, change: impl AsyncFnOnce(&str)) {
    let first = server.release("build-1").await;
    server
        .run(&[
            "promote",
            "--project",
            "payments",
            "--release",
            &first,
            "--to",
            "prod",
            "--wait",
        ])
        .await
        .success();
    let second = server.release("build-2").await;
    let verified = server
        .run(&["ledger", "verify", "-o", "json", "--from-server"])
        .await
        .success()
        .json();
    assert_eq!(verified["live_state"]["agrees"], true, "{verified}");
    assert_eq!(server.ready().await, (200, "ready".to_owned()));

    change(&second).await;

    let expected =
        format!("environment payments/prod: pointer names release {second}, ledger says {first}");
    let verify = server.run(&["ledger", "verify", "--from-server"]).await;
    verify.fails_with(1, &expected);
    assert!(
        verify.stdout.contains(&format!("MISMATCH {expected}")),
        "{}",
        verify.stdout
    );
    let json = server
        .run(&["ledger", "verify", "-o", "json", "--from-server"])
        .await;
    assert_eq!(json.code, 1);
    let json = json.json();
    assert_eq!(json["live_state"]["agrees"], false);
    assert_eq!(json["live_state"]["mismatches"][0]["message"], expected);
    assert_eq!(json["live_state"]["mismatches"][0]["project"], "payments");

    // The server finds it by itself within its check interval (a second here).
    let mut ready = server.ready().await;
    for _ in 0..100 {
        if ready.0 != 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        ready = server.ready().await;
    }
    assert_eq!(ready.0, 503, "{ready:?}");
    assert!(
        ready
            .1
            .contains("the live state disagrees with the ledger in 1 place"),
        "{ready:?}"
    );

    let board = server.run(&["status", "--project", "payments"]).await;
    assert!(
        board.success().stdout.contains(&format!(
            "warning: the live state disagrees with the ledger: {expected}"
        )),
        "{}",
        board.stdout
    );
    let board = server
        .run(&["status", "-o", "json", "--project", "payments"])
        .await
        .success()
        .json();
    assert_eq!(
        board["warnings"],
        serde_json::json!([format!(
            "the live state disagrees with the ledger: {expected}"
        )])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pointer_changed_by_hand_is_reported() {
    let server = LiveServer::start(None).await;
    let database = server.dir.path().join("data/gantry.db");
    pointer_changed_by_hand(&server, async |release: &str| {
        let connection = rusqlite::Connection::open(&database).unwrap();
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        let changed = connection
            .execute(
                "UPDATE environments SET release_id = ?1 WHERE project = 'payments' AND name = 'prod'",
                [release],
            )
            .unwrap();
        assert_eq!(changed, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pointer_changed_by_hand_is_reported_on_postgres() {
    let database = TestDatabase::create().await;
    let server = LiveServer::start(Some(&database.url)).await;
    pointer_changed_by_hand(&server, async |release: &str| {
        let changed = database
            .client()
            .await
            .execute(
                "UPDATE environments SET release_id = $1 WHERE project = 'payments' AND name = 'prod'",
                &[&release],
            )
            .await
            .unwrap();
        assert_eq!(changed, 1);
    })
    .await;
}
