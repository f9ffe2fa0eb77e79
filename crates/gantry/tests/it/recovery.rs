//! The last admin: the server refuses to remove the last principal who can administer
//! it, and when everyone is locked out all the same (tokens expired, a token lost),
//! `gantry admin recover` on the server's host gets an admin back in, with or without
//! the server running, and the ledger says who did it.

use crate::server::spawn_serve_with;
use crate::support::{Outcome, gantry, gantry_with_env};

/// Runs `gantry ARGS` against the server at `url` with `token`.
async fn as_token(url: &str, token: &str, args: &[&str]) -> Outcome {
    gantry_with_env(args, &[("GANTRY_URL", url), ("GANTRY_TOKEN", token)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_admin_stays_and_recovery_gets_back_in() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("payments.yaml"),
        "project: payments
components:
  api: registry.example/payments/api
environments:
  dev:
    targets:
      api: {repository: registry.example/payments/api}
",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("gantry.yaml"),
        "listen: 127.0.0.1:0\ndata: data\nprojects: [payments.yaml]\n",
    )
    .unwrap();
    let config = dir.path().join("gantry.yaml");
    let config = config.to_str().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let (child, url, admin) = spawn_serve_with(dir.path(), &["--config", config], true).await;
    let admin = admin.expect("the first start prints a token");

    // Alone, the admin can take away neither its grant nor its token: 409 with why and
    // what to do.
    for attempt in [
        &["access", "revoke", "admin", "--to", "admin"][..],
        &["token", "revoke", "admin"],
    ] {
        let refused = as_token(&url, &admin, attempt).await;
        refused.fails_with(1, "would leave nobody who can administer the server");
        assert!(
            refused.stderr.contains("gantry admin recover"),
            "{}",
            refused.stderr
        );
    }
    as_token(&url, &admin, &["whoami"]).await.success();

    // With a second admin whose token soon expires, the first may step down; once that
    // token has expired, nobody can administer the server.
    let ops = as_token(
        &url,
        &admin,
        &["token", "create", "-o", "json", "ops", "--expires", "2s"],
    )
    .await
    .success()
    .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    as_token(&url, &admin, &["access", "grant", "admin", "--to", "ops"])
        .await
        .success();
    as_token(
        &url,
        &admin,
        &["access", "revoke", "admin", "--to", "admin"],
    )
    .await
    .success();
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    as_token(&url, &admin, &["token", "list"])
        .await
        .fails_with(1, "needs the admin role");
    as_token(&url, &ops, &["token", "list"])
        .await
        .fails_with(1, "token");

    // Recovery on the data directory while the server runs.
    let recovered = gantry(&[
        "admin", "recover", "-o", "json", "--data", data, "--user", "alice",
    ])
    .await
    .success()
    .json();
    assert_eq!(recovered["principal"], "alice");
    let alice = recovered["token"].as_str().unwrap().to_owned();
    let tokens = as_token(&url, &alice, &["token", "list", "-o", "json"])
        .await
        .success()
        .json();
    assert!(
        tokens
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["principal"] == "alice" && t["name"] == recovered["name"]),
        "{tokens}"
    );
    let out = dir.path().join("ledger.jsonl");
    as_token(
        &url,
        &alice,
        &["ledger", "export", "--out", out.to_str().unwrap()],
    )
    .await
    .success();
    let ledger = std::fs::read_to_string(&out).unwrap();
    let recoveries: Vec<serde_json::Value> = ledger
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|line| line["entry"].clone())
        .filter(|entry| entry["actor"] == "offline-recovery")
        .collect();
    assert_eq!(
        recoveries
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["access.granted", "token.created"],
        "{ledger}"
    );
    let reason = recoveries[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("offline recovery by operating-system user ")
            && reason.contains(" (uid ")
            && reason.contains("for alice"),
        "{reason}"
    );

    // And with the server stopped: the next start takes the new token.
    drop(child);
    let again = gantry(&[
        "admin",
        "recover",
        "-o",
        "json",
        "--data",
        data,
        "--user",
        "bob",
        "--token-name",
        "bob-recovered",
    ])
    .await
    .success()
    .json();
    let (_child, url, _) = spawn_serve_with(dir.path(), &["--config", config], false).await;
    let bob = again["token"].as_str().unwrap();
    as_token(&url, bob, &["access", "list"]).await.success();

    // A directory without a store is a usage error, never a new empty store.
    let empty = tempfile::tempdir().unwrap();
    gantry(&[
        "admin",
        "recover",
        "--data",
        empty.path().to_str().unwrap(),
        "--user",
        "alice",
    ])
    .await
    .fails_with(2, "no gantry.db there");
    assert!(!empty.path().join("gantry.db").exists());
}
