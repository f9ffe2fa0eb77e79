//! `gantry serve` as a process, driven by the client commands: the flow a release
//! engineer runs, exit codes included.

use std::process::Stdio;

use gantry_testkit::{ImageBuilder, Pusher, Registry};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::support::{Outcome, gantry_with_env};

struct Served {
    /// Killed when dropped.
    _child: tokio::process::Child,
    url: String,
    token: String,
    _dir: tempfile::TempDir,
}

/// Starts `gantry serve` on a free loopback port with a project file for `registry`.
async fn serve(registry: &Registry) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let r = registry.host();
    let project = dir.path().join("payments.yaml");
    std::fs::write(
        &project,
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
  staging:
    from: dev
    binding: track
    strategy: retag
    targets:
      api: {{repository: {r}/payments/api}}
  prod:
    from: staging
    strategy: retag
    targets:
      api: {{repository: {r}/payments/api}}
"
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .arg("--project")
        .arg(&project)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running gantry serve");
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut token = None;
    while let Some(line) = stderr.next_line().await.unwrap() {
        if let Some(found) = line.trim().strip_prefix("export GANTRY_TOKEN=") {
            token = Some(found.to_owned());
            break;
        }
    }
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = stdout
        .next_line()
        .await
        .unwrap()
        .expect("gantry serve says where it listens");
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .expect("a URL")
        .to_owned();
    Served {
        _child: child,
        url,
        token: token.expect("the first start prints a token"),
        _dir: dir,
    }
}

impl Served {
    async fn run(&self, args: &[&str]) -> Outcome {
        gantry_with_env(
            args,
            &[("GANTRY_URL", &self.url), ("GANTRY_TOKEN", &self.token)],
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_promote_status_history_rollback_from_the_command_line() {
    let registry = Registry::start().await;
    for (seed, tag) in [(1, "build-1"), (2, "build-2")] {
        Pusher::new(&registry)
            .push_image("payments/api", Some(tag), &ImageBuilder::new(seed).build())
            .await;
    }
    let served = serve(&registry).await;
    let r = registry.host();

    let created = served
        .run(&[
            "release",
            "create",
            "-o",
            "json",
            "--project",
            "payments",
            &format!("api={r}/payments/api:build-1"),
            "--label",
            "ci.run=8812",
        ])
        .await;
    let first = created.success().json();
    assert_eq!(first["created"], true);
    let alias = first["alias"].as_str().unwrap().to_owned();

    // staging follows dev by itself; wait for it through a promotion that needs it.
    let promoted = served
        .run(&[
            "promote",
            "-o",
            "json",
            "--project",
            "payments",
            "--release",
            &alias,
            "--to",
            "prod",
            "--wait",
        ])
        .await;
    if promoted.code != 0 {
        // Not yet in staging: the refusal names why. Wait for staging, then promote.
        assert!(
            promoted.stderr.contains("has not reached staging yet"),
            "{}",
            promoted.stderr
        );
        for _ in 0..300 {
            let board = served
                .run(&["status", "-o", "json", "--project", "payments"])
                .await
                .success()
                .json();
            if board["environments"][1]["release_alias"] == alias.as_str() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let promoted = served
            .run(&[
                "promote",
                "-o",
                "json",
                "--project",
                "payments",
                "--release",
                &alias,
                "--to",
                "prod",
                "--wait",
            ])
            .await;
        assert_eq!(promoted.success().json()["state"], "succeeded");
    }

    let board = served.run(&["status", "--project", "payments"]).await;
    let text = &board.success().stdout;
    assert!(
        text.lines()
            .any(|l| l.starts_with("prod") && l.contains(&alias)),
        "{text}"
    );
    let refused = served
        .run(&[
            "promote",
            "--project",
            "payments",
            "--release",
            &alias,
            "--to",
            "prod",
        ])
        .await;
    refused.fails_with(1, &format!("prod already holds release {alias}"));

    served
        .run(&[
            "hold",
            "--project",
            "payments",
            "--env",
            "staging",
            "--reason",
            "load test",
        ])
        .await
        .success();
    let board = served.run(&["status", "--project", "payments"]).await;
    assert!(
        board.success().stdout.contains("held by admin"),
        "{}",
        board.stdout
    );
    served
        .run(&["unhold", "--project", "payments", "--env", "staging"])
        .await
        .success();

    let second = served
        .run(&[
            "release",
            "create",
            "-o",
            "json",
            "--project",
            "payments",
            &format!("api={r}/payments/api:build-2"),
        ])
        .await
        .success()
        .json();
    let second_alias = second["alias"].as_str().unwrap().to_owned();
    for _ in 0..300 {
        let board = served
            .run(&["status", "-o", "json", "--project", "payments"])
            .await
            .success()
            .json();
        if board["environments"][1]["release_alias"] == second_alias.as_str() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let rolled = served
        .run(&[
            "rollback",
            "-o",
            "json",
            "--project",
            "payments",
            "--env",
            "staging",
            "--wait",
            "--reason",
            "error rate",
        ])
        .await;
    let rolled = rolled.success().json();
    assert_eq!(
        (rolled["kind"].as_str(), rolled["release_alias"].as_str()),
        (Some("rollback"), Some(alias.as_str()))
    );

    let history = served
        .run(&[
            "history",
            "-o",
            "json",
            "--project",
            "payments",
            "--env",
            "staging",
        ])
        .await
        .success()
        .json();
    assert_eq!(history[0]["kind"], "rollback");
    let shown = served
        .run(&["release", "show", "--project", "payments", &alias])
        .await;
    assert!(
        shown.success().stdout.contains("label ci.run=8812"),
        "{}",
        shown.stdout
    );

    // The ledger, exported and verified offline against the server's key.
    let key = served
        .run(&["ledger", "key"])
        .await
        .success()
        .stdout
        .trim()
        .to_owned();
    let out = tempfile::NamedTempFile::new().unwrap();
    let out_path = out.path().to_str().unwrap();
    served
        .run(&["ledger", "export", "--out", out_path])
        .await
        .success();
    let verified = served
        .run(&["ledger", "verify", "-o", "json", "--key", &key, out_path])
        .await
        .success()
        .json();
    assert_eq!(verified["key_trusted"], true);
    assert_eq!(verified["signed_entries"], verified["entries"]);

    // Usage errors stay 2, a missing or wrong token is 1 with the server's reason, an
    // unreachable server is 3.
    served
        .run(&["release", "create", "--project", "payments", "api"])
        .await
        .fails_with(2, "expected KEY=VALUE");
    let wrong = gantry_with_env(
        &["status", "--project", "payments"],
        &[("GANTRY_URL", &served.url), ("GANTRY_TOKEN", "gantry_nope")],
    )
    .await;
    wrong.fails_with(1, "the token is not valid");
    drop(served);
    let down = gantry_with_env(
        &[
            "status",
            "--project",
            "payments",
            "--server",
            "http://127.0.0.1:9",
        ],
        &[],
    )
    .await;
    down.fails_with(3, "cannot reach the Gantry server at http://127.0.0.1:9");
}
