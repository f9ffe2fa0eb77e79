//! Text the server will not keep: every text field of every request body, and every path
//! and query parameter, is refused with a 422 naming the field when it holds a control
//! character (NUL and ESC included), a bidirectional override or a line separator; and
//! nothing is recorded.

use serde_json::{Value, json};

use crate::{Server, server_with};

/// Every route that reads a JSON body, with a body it would take.
fn bodies(server: &Server) -> Vec<(&'static str, Value)> {
    let r = server.registry.host();
    vec![
        (
            "/api/v1/projects/payments/releases",
            json!({"components": {"api": format!("{r}/payments/api:build-1")}, "labels": {"ci.run": "8812"}}),
        ),
        (
            "/api/v1/projects/payments/promotions",
            json!({"release": "build-1", "environment": "prod", "reason": "release 1.4.2"}),
        ),
        (
            "/api/v1/projects/payments/environments/dev/hold",
            json!({"reason": "incident 42"}),
        ),
        (
            "/api/v1/projects/payments/environments/dev/unhold",
            json!({"reason": "incident 42 over"}),
        ),
        (
            "/api/v1/projects/payments/environments/prod/rollback",
            json!({"to": "build-1", "reason": "bad release"}),
        ),
        (
            "/api/v1/projects/payments/promotions/1/cancel",
            json!({"reason": "not now"}),
        ),
        (
            "/api/v1/projects/payments/releases/build-1/approvals",
            json!({"environment": "prod", "approve": true, "comment": "looks good"}),
        ),
        (
            "/api/v1/projects/payments/stop",
            json!({"environment": "prod", "reason": "incident 42"}),
        ),
        (
            "/api/v1/projects/payments/resume",
            json!({"environment": "prod", "reason": "incident 42 over"}),
        ),
        (
            "/api/v1/tokens",
            json!({"name": "ci", "principal": "service:ci", "expires_in": "30d"}),
        ),
        (
            "/api/v1/grants",
            json!({"principal": "alice", "role": "viewer", "project": "payments", "environment": "dev"}),
        ),
        (
            "/api/v1/grants/revoke",
            json!({"principal": "alice", "role": "viewer", "project": "payments", "environment": "dev"}),
        ),
        (
            "/api/v1/events/registry",
            json!({"repository": format!("{r}/payments/api"), "tag": "build-1", "digest": format!("sha256:{}", "a".repeat(64))}),
        ),
    ]
}

/// Every way to spoil `body` with `bad`: each string value (named by its path), and each
/// object inside it given a key holding `bad` (named by the object's path).
fn spoiled(body: &Value, path: &str, bad: &str, out: &mut Vec<(String, Value)>) {
    match body {
        Value::String(text) => out.push((path.to_owned(), Value::String(format!("{text}{bad}")))),
        Value::Object(object) => {
            for (key, item) in object {
                let inner = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let mut found = Vec::new();
                spoiled(item, &inner, bad, &mut found);
                for (field, replaced) in found {
                    let mut copy = object.clone();
                    copy.insert(key.clone(), replaced);
                    out.push((field, Value::Object(copy)));
                }
            }
            if !path.is_empty() {
                let mut copy = object.clone();
                copy.insert(format!("key{bad}"), json!("value"));
                out.push((path.to_owned(), Value::Object(copy)));
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_fields_with_control_characters_are_refused_naming_the_field() {
    let server = server_with(gantry_server::ServerOptions {
        rate_limit: None,
        ..gantry_server::ServerOptions::default()
    })
    .await;
    let (_, before) = server.get("/api/v1/ledger").await;
    let mut checked = 0;
    for (route, body) in bodies(&server) {
        for (bad, code) in [
            ("\u{0}", "U+0000"),
            ("\u{1b}[2K", "U+001B"),
            ("\r", "U+000D"),
            ("\n", "U+000A"),
            ("\u{9b}", "U+009B"),
            ("\u{202e}", "U+202E"),
        ] {
            let mut cases = Vec::new();
            spoiled(&body, "", bad, &mut cases);
            assert!(!cases.is_empty(), "{route}: {body}");
            for (field, spoiled) in cases {
                let (status, answer) = server.post(route, spoiled.clone()).await;
                assert_eq!(
                    (status, answer["field"].as_str()),
                    (422, Some(field.as_str())),
                    "{route} {spoiled}: {answer}"
                );
                let message = answer["message"].as_str().unwrap();
                assert!(
                    message.starts_with(&format!("{field}: contains "))
                        && message.ends_with(&format!("({code})")),
                    "{route} {spoiled}: {message}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 150, "{checked} fields checked");

    // Path and query parameters, percent-decoded, are named as the route names them.
    for (method, path, field) in [
        ("GET", "/api/v1/projects/pay%1Bments/status", "project"),
        (
            "GET",
            "/api/v1/projects/payments/releases/build%00-1",
            "release",
        ),
        (
            "GET",
            "/api/v1/projects/payments/promotions?environment=de%E2%80%AEv",
            "environment",
        ),
        (
            "POST",
            "/api/v1/projects/payments/environments/de%0Av/hold",
            "environment",
        ),
        (
            "POST",
            "/api/v1/projects/payments/releases/build-1/evidence?kind=generic:a%1B%5D0;x%07",
            "kind",
        ),
        ("POST", "/api/v1/tokens/c%C2%9Bi/revoke", "name"),
    ] {
        let body = (method == "POST").then(|| json!({}));
        let (status, answer) = server.call(method, path, body, Some(&server.token)).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (422, Some(field)),
            "{method} {path}: {answer}"
        );
    }

    let (_, after) = server.get("/api/v1/ledger").await;
    assert_eq!(before, after, "nothing refused was recorded");
}
