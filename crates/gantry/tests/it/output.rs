//! What the command line prints when text from outside is hostile: image labels, paths
//! and server messages come out escaped, one record per line, in text and in JSON; logs
//! are coloured only on a terminal.

use std::process::Stdio;

use gantry_testkit::{ImageBuilder, Pusher, Registry};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::server::serve_dir;
use crate::support::gantry;

/// What someone who can push to a dev registry can put in an image's own labels: erase
/// the line above, set the window title, return to the line's start, a line break that
/// starts a forged line, an 8-bit CSI, and a right-to-left override.
const HOSTILE: &str =
    "4f2c1e9\u{1b}[1A\u{1b}[2K\u{1b}]0;pwned\u{7}\r\n  prod  forged \u{9b}31m\u{202e}desrever";
const HOSTILE_ESCAPED: &str =
    r"4f2c1e9\x1b[1A\x1b[2K\x1b]0;pwned\x07\r\n  prod  forged \u{9b}31m\u{202e}desrever";

/// Whether `text` holds anything but printable text and line breaks.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| c != '\n' && gantry_api::text::is_unsafe(c))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_labels_print_escaped_in_release_show_and_inspect() {
    let registry = Registry::start().await;
    let image = ImageBuilder::new(41)
        .label("org.opencontainers.image.revision", HOSTILE)
        .label("note\u{1b}[31m", "red\u{7f}")
        .build();
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
    targets:
      api: {{repository: {r}/payments/api}}
"
        ),
    )
    .unwrap();
    let served = serve_dir(dir).await;

    let created = served
        .run(&[
            "release",
            "create",
            "--project",
            "payments",
            &format!("api={r}/payments/api:build-1"),
        ])
        .await;
    created.success();
    let alias = created
        .stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("release "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the first line names the release")
        .to_owned();

    for args in [
        &["show", "--project", "payments", "--release", &alias][..],
        &["release", "show", "--project", "payments", &alias],
    ] {
        let shown = served.run(args).await;
        shown.success();
        assert_eq!(
            raw_controls(&shown.stdout),
            Vec::<char>::new(),
            "{:?}",
            shown.stdout
        );
        let revision: Vec<&str> = shown
            .stdout
            .lines()
            .filter(|l| l.contains("revision"))
            .collect();
        assert_eq!(
            revision,
            [format!("  {:<12} revision {HOSTILE_ESCAPED}", "")],
            "one line for the revision, escaped: {}",
            shown.stdout
        );
        assert_eq!(
            shown.stdout.lines().count(),
            5,
            "release, id, created, the component and its revision: {}",
            shown.stdout
        );
    }

    // JSON says the same, with the characters serde_json leaves alone escaped too.
    let json = served
        .run(&[
            "show",
            "-o",
            "json",
            "--project",
            "payments",
            "--release",
            &alias,
        ])
        .await;
    json.success();
    assert_eq!(
        raw_controls(&json.stdout),
        Vec::<char>::new(),
        "{:?}",
        json.stdout
    );
    assert_eq!(
        json.json()["artifacts"][0]["labels"]["org.opencontainers.image.revision"],
        HOSTILE
    );

    // `gantry inspect`, without a server, reads the labels from the registry itself.
    let inspected = gantry(&["inspect", &format!("{r}/payments/api:build-1")]).await;
    inspected.success();
    assert_eq!(
        raw_controls(&inspected.stdout),
        Vec::<char>::new(),
        "{:?}",
        inspected.stdout
    );
    assert!(
        inspected
            .stdout
            .lines()
            .any(|l| l == format!("  org.opencontainers.image.revision={HOSTILE_ESCAPED}")),
        "{}",
        inspected.stdout
    );
    assert!(
        inspected
            .stdout
            .lines()
            .any(|l| l == r"  note\x1b[31m=red\x7f"),
        "{}",
        inspected.stdout
    );
}

#[tokio::test]
async fn error_messages_print_escaped_on_one_line() {
    let out = gantry(&[
        "copy",
        "oci:/nonexistent\u{1b}]0;pwned\u{7}\nerror: forged:t",
        "oci:/tmp/gantry-never-written:t",
    ])
    .await;
    out.fails_with(1, r"/nonexistent\x1b]0;pwned\x07\nerror: forged");
    assert_eq!(
        raw_controls(&out.stderr),
        Vec::<char>::new(),
        "{:?}",
        out.stderr
    );

    let json = gantry(&[
        "copy",
        "-o",
        "json",
        "oci:/nonexistent\u{9b}2K:t",
        "oci:/tmp/gantry-never-written:t",
    ])
    .await;
    assert_eq!(
        raw_controls(&json.stdout),
        Vec::<char>::new(),
        "{:?}",
        json.stdout
    );
    assert!(
        json.json()["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent\u{9b}2K"),
        "{}",
        json.stdout
    );
}

/// `gantry serve -v` with stderr on a pipe (a log file, a journal): plain lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_not_coloured_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("payments.yaml"),
        "project: payments
components:
  api: 127.0.0.1:1/payments/api
environments:
  dev:
    targets:
      api: {repository: 127.0.0.1:1/payments/api}
",
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["serve", "-v", "--listen", "127.0.0.1:0", "--project"])
        .arg(dir.path().join("payments.yaml"))
        .arg("--data")
        .arg(dir.path().join("data"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running gantry serve");
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(line) = stderr.next_line().await.unwrap() {
        let serving = line.contains("serving");
        seen.push(line);
        if serving {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("INFO") && l.contains("serving")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().all(|l| !l.contains('\u{1b}')),
        "no colour codes: {seen:#?}"
    );
}
