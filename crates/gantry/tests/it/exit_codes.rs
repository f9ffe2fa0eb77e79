//! One table of exit codes for every command, as README ("Output, logs and exit codes"),
//! ARCHITECTURE (invariant 5) and `gantry --help` state it: 0 done, 1 refused or failed,
//! 2 usage (bad flags, or malformed input the CLI checks before it talks to anyone),
//! 3 the Gantry server cannot be reached. Each family of commands is held to each code
//! it can give: local commands (copy, inspect, tag), client commands (release, promote,
//! status) and `ledger verify`.

use gantry_testkit::{ImageBuilder, Pusher, Registry};

use crate::server::serve_dir;
use crate::support::{gantry, gantry_with_env};

const DIGEST: &str = "sha256:4f2c1e9a4f2c1e9a4f2c1e9a4f2c1e9a4f2c1e9a4f2c1e9a4f2c1e9a4f2c1e9a";

/// A loopback address nobody listens on: port 9 (discard) is below the ephemeral range,
/// so no test's registry or server (all on port 0) is given it, as a freed port could be.
const CLOSED: &str = "127.0.0.1:9";

#[test]
fn help_states_the_table() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("--help")
        .output()
        .expect("running gantry --help");
    // clap wraps the text to the terminal's width.
    let help = String::from_utf8_lossy(&help.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains(
            "Exit codes: 0 done; 1 refused or failed; 2 usage: bad flags, or malformed input \
the CLI checks before it talks to anyone; 3 the Gantry server cannot be reached."
        ),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_commands_copy_inspect_tag() {
    let registry = Registry::start().await;
    let image = ImageBuilder::new(140).build();
    Pusher::new(&registry)
        .push_image("app", Some("v1"), &image)
        .await;
    let r = registry.host();
    let layout = tempfile::tempdir().unwrap();
    let into_layout = format!("oci:{}:v1", layout.path().display());

    // 0: done.
    gantry(&["inspect", &format!("{r}/app:v1")]).await.success();
    gantry(&["tag", &format!("{r}/app:v1"), "v2"])
        .await
        .success();
    gantry(&["copy", &format!("{r}/app:v1"), &into_layout])
        .await
        .success();

    // 1: refused or failed, by the registry or on the way to it. A registry that cannot
    // be reached is a failure like any other: 3 is for the Gantry server only.
    gantry(&["inspect", &format!("{r}/app:nope")])
        .await
        .fails_with(1, "not found (404)");
    gantry(&["tag", &format!("{r}/app:nope"), "v3"])
        .await
        .fails_with(1, "not found (404)");
    gantry(&[
        "copy",
        "--retries",
        "1",
        &format!("{CLOSED}/app:v1"),
        &into_layout,
    ])
    .await
    .fails_with(1, "cannot reach");

    // 2: malformed input, caught before anything is dialled (the host does not exist).
    gantry(&["inspect", "reg.invalid/App:v1"])
        .await
        .fails_with(2, "must be lower case");
    gantry(&["tag", "reg.invalid/app:v1", "bad tag"])
        .await
        .fails_with(2, "NEWTAG \"bad tag\"");
    gantry(&["copy", "reg.invalid/app@sha256:abc", &into_layout])
        .await
        .fails_with(2, "must have 64 hex digits");
    gantry(&[
        "copy",
        "--platform",
        "linux",
        "reg.invalid/app:v1",
        &into_layout,
    ])
    .await
    .fails_with(2, "--platform");
    let unknown_flag = gantry(&["inspect", "--no-such-flag", "reg.invalid/app:v1"]).await;
    assert_eq!(unknown_flag.code, 2, "{}", unknown_flag.stderr);
}

/// Runs a client command against `url` with `token`.
async fn client(url: &str, token: &str, args: &[&str]) -> crate::support::Outcome {
    gantry_with_env(args, &[("GANTRY_URL", url), ("GANTRY_TOKEN", token)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_release_promote_status_and_ledger_verify() {
    let registry = Registry::start().await;
    let image = ImageBuilder::new(141).build();
    Pusher::new(&registry)
        .push_image("payments/api", Some("build-1"), &image)
        .await;
    let r = registry.host();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("payments.yaml"),
        format!(
            "project: payments
components:
  api: {r}/payments/api
environments:
  dev:
    binding: pin
    strategy: retag
    targets:
      api: {{repository: {r}/payments/api, tags: [dev]}}
"
        ),
    )
    .unwrap();
    let served = serve_dir(dir).await;
    let (url, token) = (served.url.clone(), served.token.clone());
    let create = |component: &str| {
        ["release", "create", "--project", "payments", "-o", "json"]
            .into_iter()
            .map(str::to_owned)
            .chain([component.to_owned()])
            .collect::<Vec<String>>()
    };
    let run = |args: Vec<String>| {
        let (url, token) = (url.clone(), token.clone());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            client(&url, &token, &args).await
        }
    };
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();

    // 0: done.
    let release = run(create("api=build-1")).await.success().json()["alias"]
        .as_str()
        .unwrap()
        .to_owned();
    run(owned(&[
        "promote",
        "--project",
        "payments",
        "--release",
        &release,
        "--to",
        "dev",
        "--wait",
    ]))
    .await
    .success();
    run(owned(&["status", "--project", "payments"]))
        .await
        .success();

    // 1: refused by the server (a well-formed reference it does not allow, a release
    // or project it does not know).
    run(create(&format!("api={r}/other/secret:v1")))
        .await
        .fails_with(1, "api comes only from");
    run(create(&format!("api=nope@{DIGEST}")))
        .await
        .fails_with(1, "api");
    run(owned(&[
        "promote",
        "--project",
        "payments",
        "--release",
        "no-such-release",
        "--to",
        "dev",
    ]))
    .await
    .fails_with(1, "no-such-release");
    run(owned(&["status", "--project", "no-such-project"]))
        .await
        .fails_with(1, "no-such-project");

    // 2: malformed input the CLI checks itself, before any request: the same with the
    // server up and with no server at all.
    let down = format!("http://{CLOSED}");
    for url in [url.as_str(), down.as_str()] {
        for (args, needle) in [
            (create("api=@sha256:abc"), "api: digest \"sha256:abc\""),
            (
                create(&format!("api={r}/payments/Api:v1")),
                "api: invalid reference",
            ),
            (create("api=bad tag"), "api: tag \"bad tag\""),
            (create("API=v1"), "component \"API\""),
            (create("api"), "expected KEY=VALUE"),
            (
                owned(&[
                    "promote",
                    "--project",
                    "Payments",
                    "--release",
                    "x",
                    "--to",
                    "dev",
                ]),
                "--project",
            ),
            (
                owned(&[
                    "promote",
                    "--project",
                    "payments",
                    "--release",
                    "x",
                    "--to",
                    "Dev",
                ]),
                "--to",
            ),
            (owned(&["status", "--project", "pay_ments"]), "--project"),
            (
                owned(&["access", "grant", "viewr", "--to", "alice"]),
                "unknown role \"viewr\"",
            ),
            (
                owned(&["access", "grant", "viewer", "--to", "robot:x"]),
                "unknown kind \"robot\"",
            ),
            (owned(&["token", "create", "Ci"]), "\"Ci\" may contain only"),
            (
                owned(&["token", "create", "ci", "--expires", "3w"]),
                "--expires",
            ),
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            client(url, &token, &args).await.fails_with(2, needle);
        }
    }

    // 3: the server cannot be reached.
    for args in [
        create("api=build-1"),
        owned(&[
            "promote",
            "--project",
            "payments",
            "--release",
            &release,
            "--to",
            "dev",
        ]),
        owned(&["status", "--project", "payments"]),
        owned(&["ledger", "verify", "--from-server"]),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        client(&down, &token, &args)
            .await
            .fails_with(3, "cannot reach the Gantry server");
    }

    // ledger verify, offline: 0 for an export that verifies, 1 for one that does not,
    // 2 for a malformed key or a file that cannot be read.
    let key = run(owned(&["ledger", "key"]))
        .await
        .success()
        .stdout
        .trim()
        .to_owned();
    let export = tempfile::NamedTempFile::new().unwrap();
    let path = export.path().to_str().unwrap().to_owned();
    run(owned(&["ledger", "export", "--out", &path]))
        .await
        .success();
    gantry(&["ledger", "verify", "--key", &key, &path])
        .await
        .success();
    let text = std::fs::read_to_string(&path).unwrap();
    let tampered = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tampered.path(), text.replacen("payments", "paymentz", 1)).unwrap();
    gantry(&[
        "ledger",
        "verify",
        "--key",
        &key,
        tampered.path().to_str().unwrap(),
    ])
    .await
    .fails_with(1, "does not verify");
    gantry(&["ledger", "verify", "--key", "not-a-key", &path])
        .await
        .fails_with(2, "--key");
    gantry(&[
        "ledger",
        "verify",
        "--key",
        &key,
        "/nonexistent/ledger.jsonl",
    ])
    .await
    .fails_with(2, "/nonexistent/ledger.jsonl");
}
