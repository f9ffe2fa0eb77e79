//! `gantry serve` as a process, driven by the client commands: the flow a release
//! engineer runs, exit codes included.

use std::process::Stdio;

use gantry_testkit::{ImageBuilder, Pusher, Registry};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::support::{Outcome, gantry, gantry_with_env};

/// A `gantry serve` process; other modules start one with [`serve_dir`].
pub(crate) struct Served {
    /// Killed when dropped.
    _child: tokio::process::Child,
    pub(crate) url: String,
    pub(crate) token: String,
    _dir: tempfile::TempDir,
}

/// Writes a project file: dev and staging track in `registry`, prod pinned in `prod`.
fn project_file(dir: &std::path::Path, registry: &str, prod: &str) -> std::path::PathBuf {
    let (r, p) = (registry, prod);
    let project = dir.join("payments.yaml");
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
    strategy: copy
    targets:
      api: {{repository: {p}/payments/api}}
"
        ),
    )
    .unwrap();
    project
}

/// Starts `gantry serve` on a free loopback port with the data in `dir`; the first start
/// of a data directory prints the admin token, which this returns.
async fn spawn_serve(
    dir: &std::path::Path,
    first_start: bool,
) -> (tokio::process::Child, String, Option<String>) {
    // Everything through the config file; paths in it are relative to it. A test may
    // have written its own.
    if !dir.join("gantry.yaml").exists() {
        std::fs::write(
            dir.join("gantry.yaml"),
            "listen: 127.0.0.1:0\ndata: data\nprojects: [payments.yaml]\n",
        )
        .unwrap();
    }
    let config = dir.join("gantry.yaml");
    spawn_serve_with(dir, &["--config", config.to_str().unwrap()], first_start).await
}

/// Starts `gantry serve ARGS` with `dir` as its home; returns the process, the URL it
/// serves and, on a first start, the admin token it prints.
pub(crate) async fn spawn_serve_with(
    dir: &std::path::Path,
    args: &[&str],
    first_start: bool,
) -> (tokio::process::Child, String, Option<String>) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("serve")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running gantry serve");
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut token = None;
    if first_start {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if let Some(found) = line.trim().strip_prefix("export GANTRY_TOKEN=") {
                token = Some(found.to_owned());
                break;
            }
        }
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
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
    (child, url, token)
}

async fn serve(registry: &Registry) -> Served {
    let dir = tempfile::tempdir().unwrap();
    project_file(dir.path(), &registry.host(), &registry.host());
    serve_dir(dir).await
}

/// Starts `gantry serve` for the project file `payments.yaml` the caller wrote in `dir`.
pub(crate) async fn serve_dir(dir: tempfile::TempDir) -> Served {
    let (child, url, token) = spawn_serve(dir.path(), true).await;
    Served {
        _child: child,
        url,
        token: token.expect("the first start prints a token"),
        _dir: dir,
    }
}

impl Served {
    /// Polls the board until `environment` holds the release `alias` (track environments
    /// follow by themselves; the CLI has no event stream yet).
    async fn wait_for(&self, environment: &str, alias: &str) {
        for _ in 0..300 {
            let board = self
                .run(&["status", "-o", "json", "--project", "payments"])
                .await
                .success()
                .json();
            let holds = board["environments"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == environment && e["release_alias"] == alias);
            if holds {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{environment} never held {alias}");
    }

    /// Runs `gantry ARGS` against this server, as the admin.
    pub(crate) async fn run(&self, args: &[&str]) -> Outcome {
        self.run_as(&self.token, args).await
    }

    /// Runs `gantry ARGS` against this server with another token.
    pub(crate) async fn run_as(&self, token: &str, args: &[&str]) -> Outcome {
        gantry_with_env(args, &[("GANTRY_URL", &self.url), ("GANTRY_TOKEN", token)]).await
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
        served.wait_for("staging", &alias).await;
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
    served.wait_for("staging", &second_alias).await;
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

    // A client configured by file only: the server and a token file beside it.
    let config_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        config_dir.path().join("token"),
        format!("{}\n", served.token),
    )
    .unwrap();
    let config = config_dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!("server: {}\ntoken_file: token\n", served.url),
    )
    .unwrap();
    let by_file = gantry_with_env(
        &["status", "--project", "payments"],
        &[("GANTRY_CONFIG", config.to_str().unwrap())],
    )
    .await;
    assert!(
        by_file.success().stdout.contains("ENVIRONMENT"),
        "{}",
        by_file.stdout
    );
    std::fs::write(&config, format!("server: {}\ntokn: x\n", served.url)).unwrap();
    let typo = gantry_with_env(
        &["status", "--project", "payments"],
        &[("GANTRY_CONFIG", config.to_str().unwrap())],
    )
    .await;
    typo.fails_with(
        2,
        &format!("{}:2:1: unknown field \"tokn\"", config.display()),
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
    let live = served
        .run(&["ledger", "verify", "-o", "json", "--from-server"])
        .await
        .success()
        .json();
    assert_eq!(
        (live["key_trusted"].as_bool(), live["source"].as_str()),
        (Some(true), Some("the server's ledger"))
    );

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

/// The server killed with SIGKILL in the middle of a copy and started again: the
/// interrupted promotion runs again and ends, no pointer names incomplete content, and
/// the ledger still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_copy_resumes_cleanly() {
    let (registry, prod) = (Registry::start().await, Registry::start().await);
    let image = ImageBuilder::new(5).layers(&[400_000, 400_000]).build();
    Pusher::new(&registry)
        .push_image("payments/api", Some("build-1"), &image)
        .await;
    let proxy = gantry_testkit::FaultProxy::start(prod.addr()).await;
    // Every blob upload to prod stalls: the copy is in flight when the server dies.
    proxy.add_fault(gantry_testkit::Fault {
        method: Some("PUT".to_owned()),
        path_contains: "/blobs/uploads/".to_owned(),
        times: 2,
        action: gantry_testkit::FaultAction::Delay(std::time::Duration::from_secs(30)),
    });
    let dir = tempfile::tempdir().unwrap();
    project_file(dir.path(), &registry.host(), &proxy.host());
    let (mut child, url, token) = spawn_serve(dir.path(), true).await;
    let token = token.unwrap();
    let run = |url: String, token: String, args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        gantry_with_env(&args, &[("GANTRY_URL", &url), ("GANTRY_TOKEN", &token)]).await
    };
    let args = |text: &str| {
        text.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let r = registry.host();
    let release = run(
        url.clone(),
        token.clone(),
        args(&format!(
            "release create -o json --project payments api={r}/payments/api:build-1"
        )),
    )
    .await
    .success()
    .json();
    let alias = release["alias"].as_str().unwrap().to_owned();
    let mut promotion = None;
    for _ in 0..300 {
        let out = run(url.clone(), token.clone(), args(&format!("promote -o json --project payments --release {alias} --to prod --idempotency-key kill-test"))).await;
        if out.code == 0 {
            promotion = Some(out.json()["id"].as_i64().unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let promotion = promotion.expect("the release reaches staging and can be promoted");
    // Wait until the copy is under way: an upload is stalled in the proxy.
    for _ in 0..300 {
        if proxy
            .requests()
            .iter()
            .any(|(method, path)| method == "PUT" && path.contains("/blobs/uploads/"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let state = run(
        url.clone(),
        token.clone(),
        args("history -o json --project payments --env prod"),
    )
    .await
    .success()
    .json();
    assert_eq!(state[0]["state"], "running", "{state}");
    child.kill().await.unwrap();
    assert_eq!(
        Pusher::new(&prod)
            .get_manifest("payments/api", "prod")
            .await,
        None,
        "no tag names incomplete content"
    );

    let (_child, url, _) = spawn_serve(dir.path(), false).await;
    let mut last = serde_json::Value::Null;
    for _ in 0..600 {
        last = run(
            url.clone(),
            token.clone(),
            args("history -o json --project payments --env prod"),
        )
        .await
        .success()
        .json();
        if matches!(last[0]["state"].as_str(), Some("succeeded" | "failed")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        last.as_array().unwrap().len(),
        1,
        "the same promotion resumed, none added: {last}"
    );
    assert_eq!(
        (last[0]["id"].as_i64(), last[0]["state"].as_str()),
        (Some(promotion), Some("succeeded")),
        "{last}"
    );
    assert_eq!(
        Pusher::new(&prod)
            .get_manifest("payments/api", "prod")
            .await
            .map(|(_, bytes)| gantry_testkit::sha256_digest(&bytes)),
        Some(image.digest.clone())
    );
    for blob in image.blobs() {
        assert!(
            Pusher::new(&prod)
                .blob_exists("payments/api", &blob.digest)
                .await,
            "complete content"
        );
    }
    let export = dir.path().join("ledger.jsonl");
    let export = export.to_str().unwrap();
    run(
        url.clone(),
        token.clone(),
        args(&format!("ledger export --out {export}")),
    )
    .await
    .success();
    let key = run(url.clone(), token.clone(), args("ledger key"))
        .await
        .success()
        .stdout
        .trim()
        .to_owned();
    let verified = run(
        url,
        token,
        vec![
            "ledger".into(),
            "verify".into(),
            "-o".into(),
            "json".into(),
            "--key".into(),
            key,
            export.into(),
        ],
    )
    .await
    .success()
    .json();
    assert_eq!(verified["key_trusted"], true);
}

#[tokio::test]
async fn bad_server_configs_are_usage_errors_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gantry.yaml");
    std::fs::write(&config, "listen: 127.0.0.1:0\nprojcts: [p.yaml]\n").unwrap();
    let path = config.to_str().unwrap();
    crate::support::gantry(&["serve", "--config", path])
        .await
        .fails_with(2, &format!("{path}:2:1: unknown field \"projcts\""));
    std::fs::write(&config, "listen: nowhere\nprojects: [p.yaml]\n").unwrap();
    crate::support::gantry(&["serve", "--config", path])
        .await
        .fails_with(
            2,
            &format!("{path}:1:9: listen \"nowhere\" is not an address"),
        );
    crate::support::gantry(&["serve"])
        .await
        .fails_with(2, "name at least one project file");
    std::fs::write(
        dir.path().join("p.yaml"),
        "project: p\ncomponents: {}\nenvironments: {}\n",
    )
    .unwrap();
    std::fs::write(&config, "projects: [p.yaml]\n").unwrap();
    crate::support::gantry(&["serve", "--config", path])
        .await
        .fails_with(2, "a project needs at least one component");
    crate::support::gantry(&["serve", "--config", path, "--rate-limit", "NaN"])
        .await
        .fails_with(2, "--rate-limit NaN is not a number of requests per second");
    crate::support::gantry(&["serve", "--config", path, "--rate-limit=-3"])
        .await
        .fails_with(2, "--rate-limit -3 is not a number of requests per second");
}

/// Roles from the command line: a service account's token, a grant, `whoami`, the list,
/// and a refusal that says what would do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_is_granted_listed_and_revoked() {
    let registry = Registry::start().await;
    let served = serve(&registry).await;
    let created = served
        .run(&[
            "token",
            "create",
            "-o",
            "json",
            "payments-ci",
            "--service-account",
            "payments-ci",
        ])
        .await
        .success()
        .json();
    let token = created["token"].as_str().unwrap().to_owned();
    served
        .run_as(&token, &["status", "--project", "payments"])
        .await
        .fails_with(
            1,
            "gantry access grant viewer --to service:payments-ci --project payments",
        );
    let text = served
        .run_as(&token, &["whoami"])
        .await
        .success()
        .stdout
        .clone();
    assert!(text.starts_with("service:payments-ci\nno grants"), "{text}");

    let granted = served
        .run(&[
            "access",
            "grant",
            "promoter",
            "--to",
            "service:payments-ci",
            "--project",
            "payments",
            "--environment",
            "dev",
        ])
        .await
        .success()
        .stdout
        .clone();
    assert_eq!(
        granted,
        "service:payments-ci is promoter over payments/dev\n"
    );
    served
        .run_as(&token, &["status", "--project", "payments"])
        .await
        .success();
    let me = served
        .run_as(&token, &["whoami", "-o", "json"])
        .await
        .success()
        .json();
    assert_eq!(me["grants"][0]["role"], "promoter", "{me}");
    let listed = served
        .run(&["access", "list"])
        .await
        .success()
        .stdout
        .clone();
    assert!(
        listed.lines().any(|l| l.starts_with("service:payments-ci")
            && l.contains("promoter")
            && l.contains("payments/dev")
            && l.ends_with("by admin")),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("admin") && l.contains("server")),
        "{listed}"
    );
    // Only admins give roles; mistakes name the field and exit non-zero.
    served
        .run_as(
            &token,
            &["access", "grant", "admin", "--to", "service:payments-ci"],
        )
        .await
        .fails_with(1, "needs the admin role");
    // A role that does not exist is caught by the CLI, before the request: usage.
    served
        .run(&["access", "grant", "boss", "--to", "bob"])
        .await
        .fails_with(2, "unknown role \"boss\"");
    served
        .run(&[
            "access",
            "grant",
            "viewer",
            "--to",
            "bob",
            "--environment",
            "prod",
        ])
        .await
        .fails_with(2, "the following required arguments were not provided");
    served
        .run(&[
            "access",
            "revoke",
            "promoter",
            "--to",
            "service:payments-ci",
            "--project",
            "payments",
            "--environment",
            "dev",
        ])
        .await
        .success();
    served
        .run_as(&token, &["status", "--project", "payments"])
        .await
        .fails_with(1, "needs the viewer role");
}

/// A CI job signs in with its OIDC ID token: the configured issuer's JWKS file checks
/// it, a claim rule names the service account, and that account's grants decide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_id_tokens_act_as_service_accounts() {
    let registry = Registry::start().await;
    let dir = tempfile::tempdir().unwrap();
    project_file(dir.path(), &registry.host(), &registry.host());
    let issuer = gantry_testkit::OidcIssuer::new("https://token.actions.githubusercontent.com");
    std::fs::write(dir.path().join("jwks.json"), issuer.jwks()).unwrap();
    std::fs::write(
        dir.path().join("gantry.yaml"),
        "listen: 127.0.0.1:0
data: data
projects: [payments.yaml]
oidc:
  - issuer: https://token.actions.githubusercontent.com
    audience: https://gantry.test
    jwks: jwks.json
    accounts:
      - {service_account: payments-release, claims: {repository: acme/payments, ref: refs/heads/main}}
      - {service_account: payments-ci, claims: {repository: acme/payments}}
",
    )
    .unwrap();
    let served = serve_dir(dir).await;
    let job = |repository: &str, git_ref: &str| {
        issuer.token(
            "https://gantry.test",
            &serde_json::json!({
                "sub": format!("repo:{repository}:ref:{git_ref}"),
                "repository": repository,
                "ref": git_ref,
            }),
        )
    };
    let main = job("acme/payments", "refs/heads/main");
    let me = served
        .run_as(&main, &["whoami", "-o", "json"])
        .await
        .success()
        .json();
    assert_eq!(me["principal"], "service:payments-release", "{me}");
    let branch = job("acme/payments", "refs/heads/fix");
    let me = served
        .run_as(&branch, &["whoami", "-o", "json"])
        .await
        .success()
        .json();
    assert_eq!(
        me["principal"], "service:payments-ci",
        "the next rule: {me}"
    );

    served
        .run_as(&main, &["status", "--project", "payments"])
        .await
        .fails_with(1, "needs the viewer role");
    served
        .run(&[
            "access",
            "grant",
            "promoter",
            "--to",
            "service:payments-release",
            "--project",
            "payments",
        ])
        .await
        .success();
    served
        .run_as(&main, &["status", "--project", "payments"])
        .await
        .success();

    // Tokens the rules or the keys do not vouch for are turned away with the reason.
    let stranger = job("evil/payments", "refs/heads/main");
    served
        .run_as(&stranger, &["whoami"])
        .await
        .fails_with(1, "no account rule");
    let other = gantry_testkit::OidcIssuer::new("https://token.actions.githubusercontent.com");
    let forged = other.token(
        "https://gantry.test",
        &serde_json::json!({"repository": "acme/payments", "ref": "refs/heads/main"}),
    );
    served
        .run_as(&forged, &["whoami"])
        .await
        .fails_with(1, "signature");
    let elsewhere = issuer.token(
        "https://other.service",
        &serde_json::json!({"repository": "acme/payments"}),
    );
    served
        .run_as(&elsewhere, &["whoami"])
        .await
        .fails_with(1, "audience");
}

/// Database and replica flags that cannot work stop the start with the reason, and
/// never print a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_database_settings_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let project = project_file(dir.path(), "127.0.0.1:5000", "127.0.0.1:5000");
    let data = dir.path().join("data");
    let serve = |extra: &'static [&'static str]| {
        let mut args = vec![
            "serve",
            "--project",
            project.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            gantry(&args).await
        }
    };
    serve(&["--database", "mysql://root@127.0.0.1/gantry"])
        .await
        .fails_with(2, "--database: give a PostgreSQL URL");
    serve(&["--lease", "0"]).await.fails_with(2, "--lease 0");
    serve(&["--trusted-proxy", "10.0.0.0/33"]).await.fails_with(
        2,
        "--trusted-proxy: \"10.0.0.0/33\": the prefix length must be 0 to 32",
    );
    let unreachable = serve(&["--database", "postgres://gantry:hunter2@127.0.0.1:1/gantry"]).await;
    let unreachable = unreachable.fails_with(1, "PostgreSQL");
    assert!(
        !unreachable.stderr.contains("hunter2"),
        "{}",
        unreachable.stderr
    );
}

/// A config whose OIDC settings cannot work is refused at start, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_oidc_settings_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    project_file(dir.path(), "127.0.0.1:5000", "127.0.0.1:5000");
    std::fs::write(
        dir.path().join("gantry.yaml"),
        "projects: [payments.yaml]
oidc:
  - issuer: https://ci.example
    audience: gantry
    jwks: missing.json
    accounts: [{service_account: ci, claims: {sub: x}}]
",
    )
    .unwrap();
    let config = dir.path().join("gantry.yaml");
    gantry(&["serve", "--config", config.to_str().unwrap()])
        .await
        .fails_with(2, "oidc[0].jwks");
}

/// Tokens expire and can be revoked; the list shows which, never a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_and_can_be_revoked() {
    let registry = Registry::start().await;
    let served = serve(&registry).await;
    // Not a duration at all: caught by the CLI (usage); too long: refused by the server.
    served
        .run(&["token", "create", "ci", "--expires", "soon"])
        .await
        .fails_with(2, "--expires");
    for too_long in ["99999999999999d", "40000d"] {
        served
            .run(&["token", "create", "ci", "--expires", too_long])
            .await
            .fails_with(1, "expires_in");
    }
    let short = served
        .run(&["token", "create", "-o", "json", "ci", "--expires", "2s"])
        .await
        .success()
        .json();
    let short = short["token"].as_str().unwrap().to_owned();
    let lasting = served
        .run(&["token", "create", "-o", "json", "deploy"])
        .await
        .success()
        .json();
    let lasting = lasting["token"].as_str().unwrap().to_owned();
    let me = served
        .run_as(&short, &["whoami", "-o", "json"])
        .await
        .success()
        .json();
    assert_eq!(
        me["principal"], "ci",
        "a token acts for the user named like it: {me}"
    );
    let listed = served
        .run(&["token", "list", "-o", "json"])
        .await
        .success()
        .json();
    let names: Vec<(&str, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["expires_at"].is_string()))
        .collect();
    assert_eq!(names, [("admin", false), ("ci", true), ("deploy", false)]);
    assert!(!listed.to_string().contains(&short), "no secrets listed");

    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    served
        .run_as(&short, &["whoami", "-o", "json"])
        .await
        .fails_with(1, "the token is not valid");
    served
        .run_as(&lasting, &["whoami", "-o", "json"])
        .await
        .success();
    served.run(&["token", "revoke", "deploy"]).await.success();
    served
        .run_as(&lasting, &["whoami", "-o", "json"])
        .await
        .fails_with(1, "the token is not valid");
    served
        .run(&["token", "revoke", "deploy"])
        .await
        .fails_with(1, "was revoked at");
    let text = served
        .run(&["token", "list"])
        .await
        .success()
        .stdout
        .clone();
    assert!(
        text.lines()
            .any(|l| l.starts_with("deploy") && l.contains("revoked")),
        "{text}"
    );
}
