//! The gate routes through `gantry serve`: evidence, approvals, decisions and stopping
//! the line, from the command line and as raw HTTP. Bad input gets a 4xx naming the
//! field and leaves nothing behind: no evidence kept, and no ledger entry but the record
//! of the refusal itself.

use std::fmt::Write as _;

use gantry_testkit::{ImageBuilder, Pusher, Registry};
use serde_json::{Value, json};

use crate::server::{Served, serve_dir};
use crate::support::gantry_with_env;

/// The largest report the server reads (gantry-evidence's `MAX_EVIDENCE_BYTES`).
const EVIDENCE_LIMIT: usize = 16 * 1024 * 1024;

const JUNIT_MALFORMED: &str = "<testsuite name=\"api\" tests=\"1\">\n  <testcase name=\"a\">\n";

/// A passing `JUnit` report of `count` tests.
fn junit_passed(count: usize) -> String {
    let mut report = format!("<testsuite name=\"api\" tests=\"{count}\" failures=\"0\">\n");
    for index in 0..count {
        let _ = writeln!(
            report,
            "  <testcase classname=\"payments.api.CheckoutTest\" name=\"case_{index}\" time=\"0.001\"/>"
        );
    }
    report.push_str("</testsuite>\n");
    report
}

/// A Trivy report about the image with manifest digest `digest`.
fn trivy_about(digest: &str) -> String {
    json!({
        "SchemaVersion": 2,
        "Metadata": {"RepoDigests": [format!("registry.example/payments/api@{digest}")]},
        "Results": [],
    })
    .to_string()
}

struct World {
    served: Served,
    http: reqwest::Client,
    /// The release's alias and its `api` component's digest.
    alias: String,
    api_digest: String,
    _registry: Registry,
}

/// A project whose only environment, prod, wants passing tests and one approval, and
/// a release of it.
async fn world() -> World {
    let registry = Registry::start().await;
    Pusher::new(&registry)
        .push_image(
            "payments/api",
            Some("build-1"),
            &ImageBuilder::new(31).build(),
        )
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
  prod:
    strategy: retag
    targets:
      api: {{repository: {r}/payments/api}}
    gates:
      tests: {{max_failures: 0}}
      approvals: {{count: 1}}
"
        ),
    )
    .unwrap();
    let served = serve_dir(dir).await;
    let release = served
        .run(&[
            "release",
            "create",
            "-o",
            "json",
            "--project",
            "payments",
            &format!("api={r}/payments/api:build-1"),
        ])
        .await
        .success()
        .json();
    World {
        served,
        http: reqwest::Client::new(),
        alias: release["alias"].as_str().unwrap().to_owned(),
        api_digest: release["artifacts"][0]["digest"]
            .as_str()
            .unwrap()
            .to_owned(),
        _registry: registry,
    }
}

impl World {
    /// One request as raw HTTP: the status and the body (JSON when it parses).
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        token: &str,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(
                method.parse().unwrap(),
                format!("{}{path}", self.served.url),
            )
            .bearer_auth(token);
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn release_path(&self, rest: &str) -> String {
        format!("/api/v1/projects/payments/releases/{}{rest}", self.alias)
    }

    /// Posts a report; `query` is the query string after `?`.
    async fn post_evidence(&self, query: &str, report: impl Into<Vec<u8>>) -> (u16, Value) {
        self.call(
            "POST",
            &self.release_path(&format!("/evidence?{query}")),
            Some(("application/octet-stream", report.into())),
            &self.served.token,
        )
        .await
    }

    async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(
            "POST",
            path,
            Some(("application/json", body.to_string().into_bytes())),
            &self.served.token,
        )
        .await
    }

    async fn evidence(&self) -> Vec<Value> {
        let (status, list) = self
            .call(
                "GET",
                &self.release_path("/evidence"),
                None,
                &self.served.token,
            )
            .await;
        assert_eq!(status, 200, "{list}");
        list.as_array().unwrap().clone()
    }

    async fn ledger(&self) -> Vec<Value> {
        let (status, entries) = self
            .call(
                "GET",
                "/api/v1/ledger?after=0&limit=10000",
                None,
                &self.served.token,
            )
            .await;
        assert_eq!(status, 200, "{entries}");
        entries.as_array().unwrap().clone()
    }

    /// Nothing was kept and nothing changed since the ledger had `ledger` entries: no
    /// evidence, and no ledger entry but records of refusals (`evidence.refused`).
    async fn nothing_stored(&self, ledger: usize, after: &str) {
        assert_eq!(
            self.evidence().await,
            Vec::<Value>::new(),
            "no evidence kept after {after}"
        );
        let entries = self.ledger().await;
        let changes: Vec<&Value> = entries[ledger..]
            .iter()
            .filter(|e| !e["action"].as_str().unwrap().ends_with(".refused"))
            .collect();
        assert!(
            changes.is_empty(),
            "nothing recorded after {after} but refusals: {changes:#?}"
        );
    }
}

/// An error answer: its status, its code, the field it names, and words its message holds.
#[track_caller]
fn refused(answer: &(u16, Value), status: u16, code: &str, field: &str, words: &[&str]) {
    let (got, body) = answer;
    assert_eq!(
        (*got, body["code"].as_str(), body["field"].as_str()),
        (status, Some(code), Some(field)),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    for word in words {
        assert!(message.contains(word), "{message:?} does not name {word:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_evidence_approvals_and_stops_are_refused_and_leave_nothing() {
    let world = world().await;
    let ledger = world.ledger().await.len();
    let report = junit_passed(3);

    let answer = world.post_evidence("kind=junti", report.clone()).await;
    refused(&answer, 422, "invalid", "kind", &["junti"]);
    world.nothing_stored(ledger, "an unknown kind").await;

    let answer = world.post_evidence("", report.clone()).await;
    refused(&answer, 400, "invalid_request", "kind", &["kind"]);
    let answer = world
        .post_evidence("kind=junit&knd=x", report.clone())
        .await;
    refused(&answer, 400, "invalid_request", "knd", &["knd"]);
    world.nothing_stored(ledger, "a bad query").await;

    let other = format!("sha256:{}", "1".repeat(64));
    let answer = world
        .post_evidence("kind=trivy&component=api", trivy_about(&other))
        .await;
    refused(
        &answer,
        422,
        "invalid",
        "evidence",
        &[&other, &world.api_digest],
    );
    let answer = world.post_evidence("kind=trivy", trivy_about(&other)).await;
    refused(&answer, 422, "invalid", "evidence", &[&other]);
    world
        .nothing_stored(ledger, "a report about another image")
        .await;

    let answer = world.post_evidence("kind=junit", JUNIT_MALFORMED).await;
    refused(&answer, 422, "invalid", "evidence", &["not valid junit"]);
    let answer = world.post_evidence("kind=junit", "").await;
    refused(&answer, 422, "invalid", "evidence", &["empty"]);
    world.nothing_stored(ledger, "a malformed report").await;

    // One byte over the limit: refused before it is parsed.
    let mut huge = junit_passed(1).into_bytes();
    huge.resize(EVIDENCE_LIMIT + 1, b' ');
    let answer = world.post_evidence("kind=junit", huge).await;
    refused(&answer, 413, "too_large", "evidence", &["16 MiB"]);
    world.nothing_stored(ledger, "an oversized report").await;
    let last = world.ledger().await.pop().unwrap();
    assert_eq!(
        (&last["action"], &last["reason"]),
        (
            &json!("evidence.refused"),
            &json!("evidence: the report is larger than 16 MiB")
        ),
        "the refusal is recorded: {last}"
    );

    let answer = world
        .post_evidence("kind=junit&component=worker", report.clone())
        .await;
    refused(&answer, 422, "invalid", "component", &["worker", "api"]);
    world.nothing_stored(ledger, "an unknown component").await;

    let answer = world
        .call(
            "POST",
            &world.release_path("/evidence?kind=junit"),
            Some(("application/xml", report.clone().into_bytes())),
            "gantry_wrong",
        )
        .await;
    assert_eq!(
        (answer.0, answer.1["code"].as_str()),
        (401, Some("unauthorized")),
        "{}",
        answer.1
    );
    world.nothing_stored(ledger, "a wrong token").await;

    let path = world.release_path("/approvals");
    for approve in [true, false] {
        let answer = world
            .post_json(&path, &json!({"environment": "qa", "approve": approve}))
            .await;
        refused(&answer, 404, "unknown_environment", "environment", &["qa"]);
    }
    let answer = world
        .post_json(&path, &json!({"environment": "prod", "aprove": true}))
        .await;
    refused(&answer, 400, "invalid_request", "aprove", &["aprove"]);
    let answer = world
        .call(
            "GET",
            &world.release_path("/decision?environment=qa"),
            None,
            &world.served.token,
        )
        .await;
    refused(&answer, 404, "unknown_environment", "environment", &["qa"]);
    world
        .nothing_stored(ledger, "approvals for no environment")
        .await;

    for body in [
        json!({}),
        json!({"reason": "  "}),
        json!({"environment": "prod"}),
    ] {
        let answer = world
            .post_json("/api/v1/projects/payments/stop", &body)
            .await;
        refused(&answer, 422, "invalid", "reason", &["reason"]);
    }
    let answer = world
        .post_json(
            "/api/v1/projects/payments/stop",
            &json!({"environment": "qa", "reason": "incident"}),
        )
        .await;
    refused(&answer, 404, "unknown_environment", "environment", &["qa"]);
    world
        .nothing_stored(ledger, "a stop without a reason")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_names_what_the_server_refused() {
    let world = world().await;
    let ledger = world.ledger().await.len();
    let served = &world.served;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let good = file("good.xml", junit_passed(3).as_bytes());
    let malformed = file("malformed.xml", JUNIT_MALFORMED.as_bytes());
    let alias = world.alias.as_str();
    let add = |kind: &str, component: &str, path: &str| {
        let mut args = vec![
            "evidence".to_owned(),
            "add".to_owned(),
            "--project".to_owned(),
            "payments".to_owned(),
            "--release".to_owned(),
            alias.to_owned(),
            "--kind".to_owned(),
            kind.to_owned(),
        ];
        if !component.is_empty() {
            args.extend(["--component".to_owned(), component.to_owned()]);
        }
        args.push(path.to_owned());
        args
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        served.run(&args).await
    };

    run(add("junti", "", &good))
        .await
        .fails_with(1, "(field kind)");
    run(add("junit", "", &malformed))
        .await
        .fails_with(1, "not valid junit");
    let mut huge = junit_passed(1).into_bytes();
    huge.resize(EVIDENCE_LIMIT + 1, b' ');
    let huge = file("huge.xml", &huge);
    run(add("junit", "", &huge))
        .await
        .fails_with(1, "larger than 16 MiB");
    run(add("junit", "worker", &good))
        .await
        .fails_with(1, "(field component)");
    let wrong = gantry_with_env(
        &add("junit", "", &good)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[
            ("GANTRY_URL", &served.url),
            ("GANTRY_TOKEN", "gantry_wrong"),
        ],
    )
    .await;
    wrong.fails_with(1, "the token is not valid");
    for verb in ["approve", "reject"] {
        served
            .run(&[
                verb,
                "--project",
                "payments",
                "--release",
                alias,
                "--env",
                "qa",
            ])
            .await
            .fails_with(1, "project payments has no environment \"qa\"");
    }
    served
        .run(&["stop", "--project", "payments", "--env", "prod"])
        .await
        .fails_with(2, "--reason is required");
    world.nothing_stored(ledger, "refused commands").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_evidence_passes_the_tests_gate() {
    let world = world().await;
    let served = &world.served;
    let alias = world.alias.as_str();
    let why = || async {
        served
            .run(&[
                "why",
                "-o",
                "json",
                "--project",
                "payments",
                "--release",
                alias,
                "--to",
                "prod",
            ])
            .await
    };
    let gate = |decision: &Value, name: &str| {
        decision["gates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["gate"] == name)
            .unwrap_or_else(|| panic!("no gate {name}: {decision}"))
            .clone()
    };
    let before = why().await;
    assert_eq!(before.code, 1, "not allowed yet: {}", before.stderr);
    let before = before.json();
    assert_eq!(before["verdict"], "pending", "{before}");
    assert_eq!(gate(&before, "tests")["state"], "pending", "{before}");

    // More than the 64 KiB other requests may send: reports have a limit of their own.
    let report = junit_passed(1000);
    assert!(report.len() > 64 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("TEST-api.xml");
    std::fs::write(&path, &report).unwrap();
    let added = served
        .run(&[
            "evidence",
            "add",
            "-o",
            "json",
            "--project",
            "payments",
            "--release",
            alias,
            "--component",
            "api",
            "--kind",
            "junit",
            path.to_str().unwrap(),
        ])
        .await
        .success()
        .json();
    assert_eq!(
        (
            &added["created"],
            &added["kind"],
            &added["component"],
            &added["summary"]["total"]
        ),
        (&json!(true), &json!("junit"), &json!("api"), &json!(1000)),
        "{added}"
    );
    let kept = world.evidence().await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["digest"], added["digest"]);

    // The tests gate passes; the release still waits for its approval.
    let text = served
        .run(&[
            "why",
            "--project",
            "payments",
            "--release",
            alias,
            "--to",
            "prod",
        ])
        .await;
    assert_eq!(text.code, 1, "{}", text.stderr);
    assert!(
        text.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("✓ tests")),
        "{}",
        text.stdout
    );
    // Each piece of evidence says who supplied it and whether it counted.
    let short = &added["digest"].as_str().unwrap()[..19];
    assert!(
        text.stdout.lines().any(|l| l.trim()
            == format!(
                "✓ junit api {short} from admin, unsigned: counts (admin may promote into prod)"
            )),
        "{}",
        text.stdout
    );
    let after = why().await.json();
    assert_eq!(after["evidence_use"][0]["supplied_by"], "admin", "{after}");
    assert_eq!(after["evidence_use"][0]["counted"], true, "{after}");
    assert_eq!(gate(&after, "tests")["state"], "pass", "{after}");
    assert!(
        after["evidence"]
            .as_array()
            .unwrap()
            .contains(&added["digest"]),
        "the decision names the evidence it read: {after}"
    );

    // Handing the same bytes in again keeps nothing new.
    let again = served
        .run(&[
            "evidence",
            "add",
            "-o",
            "json",
            "--project",
            "payments",
            "--release",
            alias,
            "--component",
            "api",
            "--kind",
            "junit",
            path.to_str().unwrap(),
        ])
        .await
        .success()
        .json();
    assert_eq!(again["created"], false, "{again}");
    assert_eq!(world.evidence().await.len(), 1);

    // The release's creator may not approve it: refused, and nothing recorded.
    let entries = world.ledger().await.len();
    served
        .run(&[
            "approve",
            "--project",
            "payments",
            "--release",
            alias,
            "--env",
            "prod",
        ])
        .await
        .fails_with(1, "admin created the release and cannot approve it");
    let refused: Vec<String> = world.ledger().await[entries..]
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(refused, ["approval.refused"]);

    // Someone other than the release's creator approves: every gate passes.
    let alice = served
        .run(&["token", "create", "-o", "json", "alice"])
        .await
        .success()
        .json();
    served
        .run(&[
            "access",
            "grant",
            "approver",
            "--to",
            "alice",
            "--project",
            "payments",
            "--environment",
            "prod",
        ])
        .await
        .success();
    let approved = gantry_with_env(
        &[
            "approve",
            "-o",
            "json",
            "--project",
            "payments",
            "--release",
            alias,
            "--env",
            "prod",
            "--comment",
            "tests pass",
        ],
        &[
            ("GANTRY_URL", &served.url),
            ("GANTRY_TOKEN", alice["token"].as_str().unwrap()),
        ],
    )
    .await
    .success()
    .json();
    assert_eq!(approved["environment"], "prod", "{approved}");
    let allowed = why().await.success().json();
    assert_eq!(allowed["verdict"], "allow", "{allowed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_what_a_waiting_release_still_needs() {
    let world = world().await;
    let served = &world.served;
    let alias = world.alias.as_str();
    let promoted = served
        .run(&[
            "promote",
            "--project",
            "payments",
            "--release",
            alias,
            "--to",
            "prod",
        ])
        .await;
    assert!(
        promoted.stdout.contains("waiting") || promoted.stderr.contains("waiting"),
        "{} {}",
        promoted.stdout,
        promoted.stderr
    );
    let status = served.run(&["status", "--project", "payments"]).await;
    let status = status.success();
    let line = status
        .stdout
        .lines()
        .find(|l| l.contains("waits for:"))
        .unwrap_or_else(|| panic!("no needs shown:\n{}", status.stdout));
    assert!(
        line.contains(&format!("{alias} waits for: "))
            && line.contains("a test report for api")
            && line.contains("1 more approval"),
        "{line}"
    );
    let board = served
        .run(&["status", "-o", "json", "--project", "payments"])
        .await
        .success()
        .json();
    let pending = &board["environments"][0]["pending"][0];
    assert_eq!(pending["state"], "waiting", "{board}");
    assert!(
        pending["needs"]
            .as_str()
            .unwrap()
            .contains("1 more approval"),
        "{board}"
    );

    // Nothing to verify signatures with: a look at the registry is refused, and says why.
    let pulled = served
        .run(&[
            "evidence",
            "pull",
            "--project",
            "payments",
            "--release",
            alias,
        ])
        .await;
    assert_ne!(pulled.code, 0);
    assert!(
        pulled
            .stderr
            .contains("project payments configures no keys and no Sigstore trusted root"),
        "{}",
        pulled.stderr
    );
}
