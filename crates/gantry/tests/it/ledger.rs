//! `gantry ledger verify` on exports written by the ledger's own writer.

use std::collections::BTreeMap;

use gantry_store::ledger::export::write_export;
use gantry_store::ledger::merkle::{Tree, leaf_hash};
use gantry_store::ledger::note::{Checkpoint, generate, sign};
use gantry_store::ledger::{Entry, GENESIS};

use crate::support::gantry;

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
    gantry(&["ledger", "verify", "/nonexistent/ledger.jsonl"])
        .await
        .fails_with(1, "cannot open /nonexistent/ledger.jsonl");
}
