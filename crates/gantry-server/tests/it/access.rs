//! Roles from the outside: every route of the API, asked by every kind of caller. A
//! caller whose grants do not allow a request gets 403 and changes nothing; one whose
//! grants do never gets 403. The table must name every route the OpenAPI document has
//! (which, in turn, a unit test holds to the router).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::{Server, server_with};

/// A role over a project (or the server) and an environment (or the whole project).
type GrantSpec = (&'static str, Option<&'static str>, Option<&'static str>);

/// The callers: a name, whom their token acts for, and their one grant, if any.
const CALLERS: &[(&str, &str, Option<GrantSpec>)] = &[
    ("nobody", "nobody", None),
    ("viewer", "vera", Some(("viewer", Some("payments"), None))),
    (
        "promoter-dev",
        "service:dev-ci",
        Some(("promoter", Some("payments"), Some("dev"))),
    ),
    (
        "approver-prod",
        "alice",
        Some(("approver", Some("payments"), Some("prod"))),
    ),
    ("owner", "olga", Some(("admin", Some("payments"), None))),
    ("ci", "service:ci", Some(("promoter", None, None))),
];

/// Who may call each route: the callers above, plus `admin` (the first start's token,
/// an admin of the server) who may call everything.
const VIEW: &[&str] = &["viewer", "promoter-dev", "approver-prod", "owner", "ci"];
const FEED: &[&str] = &["promoter-dev", "owner", "ci"];
const PROMOTE_PROD: &[&str] = &["owner", "ci"];
const PROMOTE_DEV: &[&str] = &["promoter-dev", "owner", "ci"];
const APPROVE_PROD: &[&str] = &["approver-prod", "owner"];
const PROJECT_ADMIN: &[&str] = &["owner"];
const SERVER_ADMIN: &[&str] = &[];
const SERVER_VIEW: &[&str] = &["ci"];
const EVERYONE: &[&str] = &[
    "nobody",
    "viewer",
    "promoter-dev",
    "approver-prod",
    "owner",
    "ci",
];

struct Row {
    method: &'static str,
    /// The route as the OpenAPI document writes it.
    template: &'static str,
    body: Option<Value>,
    allowed: &'static [&'static str],
}

fn row(
    method: &'static str,
    template: &'static str,
    body: Option<Value>,
    allowed: &'static [&'static str],
) -> Row {
    Row {
        method,
        template,
        body,
        allowed,
    }
}

fn rows(server: &Server, release: &str, digest: &str) -> Vec<Row> {
    let image = format!("{}/payments/api:build-1", server.registry.host());
    vec![
        row(
            "POST",
            "/projects/{project}/releases",
            Some(json!({"components": {"api": image}})),
            FEED,
        ),
        row("GET", "/projects/{project}/releases/{release}", None, VIEW),
        row(
            "POST",
            "/projects/{project}/promotions",
            Some(json!({"release": release, "environment": "prod"})),
            PROMOTE_PROD,
        ),
        row(
            "POST",
            "/projects/{project}/promotions",
            Some(json!({"release": release, "environment": "dev"})),
            PROMOTE_DEV,
        ),
        row(
            "POST",
            "/projects/{project}/promotions",
            Some(
                json!({"release": release, "environment": "dev", "emergency": true, "reason": "test"}),
            ),
            PROMOTE_DEV,
        ),
        row("GET", "/projects/{project}/promotions", None, VIEW),
        row("GET", "/projects/{project}/promotions/{id}", None, VIEW),
        row(
            "POST",
            "/projects/{project}/promotions/{id}/cancel",
            Some(json!({})),
            PROMOTE_DEV,
        ),
        row(
            "POST",
            "/projects/{project}/releases/{release}/evidence",
            Some(json!({"not": "a report"})),
            FEED,
        ),
        row(
            "GET",
            "/projects/{project}/releases/{release}/evidence",
            None,
            VIEW,
        ),
        row(
            "POST",
            "/projects/{project}/releases/{release}/evidence/pull",
            None,
            FEED,
        ),
        row(
            "POST",
            "/projects/{project}/releases/{release}/approvals",
            Some(json!({"environment": "prod", "approve": true})),
            APPROVE_PROD,
        ),
        row(
            "GET",
            "/projects/{project}/releases/{release}/decision",
            None,
            VIEW,
        ),
        row(
            "POST",
            "/projects/{project}/stop",
            Some(json!({"reason": "test", "environment": "prod"})),
            PROJECT_ADMIN,
        ),
        row(
            "POST",
            "/projects/{project}/resume",
            Some(json!({"reason": "test"})),
            PROJECT_ADMIN,
        ),
        row("GET", "/projects/{project}/status", None, VIEW),
        row(
            "POST",
            "/projects/{project}/environments/{environment}/hold",
            Some(json!({"reason": "test"})),
            PROMOTE_PROD,
        ),
        row(
            "POST",
            "/projects/{project}/environments/{environment}/unhold",
            Some(json!({})),
            PROMOTE_PROD,
        ),
        row(
            "POST",
            "/projects/{project}/environments/{environment}/rollback",
            Some(json!({})),
            PROMOTE_PROD,
        ),
        row(
            "POST",
            "/tokens",
            Some(json!({"name": "spare"})),
            SERVER_ADMIN,
        ),
        row("GET", "/tokens", None, SERVER_ADMIN),
        row("POST", "/tokens/{name}/revoke", None, SERVER_ADMIN),
        row(
            "POST",
            "/grants",
            Some(json!({"principal": "bob", "role": "viewer", "project": "payments"})),
            PROJECT_ADMIN,
        ),
        row(
            "POST",
            "/grants",
            Some(json!({"principal": "bob", "role": "viewer"})),
            SERVER_ADMIN,
        ),
        row("GET", "/grants", None, SERVER_ADMIN),
        row(
            "POST",
            "/grants/revoke",
            Some(json!({"principal": "bob", "role": "viewer", "project": "payments"})),
            PROJECT_ADMIN,
        ),
        row("GET", "/whoami", None, EVERYONE),
        row("GET", "/ledger", None, SERVER_VIEW),
        row("GET", "/ledger/export", None, SERVER_VIEW),
        row("GET", "/ledger/state", None, SERVER_VIEW),
        row("GET", "/ledger/key", None, EVERYONE),
        row(
            "POST",
            "/events/registry",
            Some(json!({
                "repository": "payments/api",
                "tag": "build-2",
                "digest": digest,
            })),
            SERVER_VIEW,
        ),
        row("GET", "/openapi.json", None, EVERYONE),
    ]
}

/// `METHOD /path` for every operation the OpenAPI document lists.
fn documented() -> BTreeSet<String> {
    let document: Value = serde_json::from_str(include_str!("../../src/openapi.json")).unwrap();
    let mut operations = BTreeSet::new();
    for (path, methods) in document["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            let path = path.strip_prefix("/api/v1").unwrap_or(path);
            operations.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    operations
        .into_iter()
        .filter(|operation| !operation.ends_with(" /healthz") && !operation.ends_with(" /readyz"))
        .collect()
}

async fn ledger_length(server: &Server) -> usize {
    server
        .engine
        .store()
        .ledger_entries(0, usize::MAX)
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_every_role() {
    let server = server_with(gantry_server::ServerOptions {
        rate_limit: None,
        ..gantry_server::ServerOptions::default()
    })
    .await;

    // A release (which `dev` tracks) and a promotion to act on.
    let image = format!("{}/payments/api:build-1", server.registry.host());
    let (status, created) = server
        .post(
            "/api/v1/projects/payments/releases",
            json!({"components": {"api": image}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let release = created["id"].as_str().unwrap().to_owned();
    let digest = created["artifacts"][0]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let (status, promotion) = server
        .post(
            "/api/v1/projects/payments/promotions",
            json!({"release": release, "environment": "dev"}),
        )
        .await;
    assert!(status == 202, "{status} {promotion}");
    let id = promotion["id"].as_i64().unwrap();

    // Every caller's token and grant, made through the API by the server's admin.
    let mut tokens = Vec::new();
    for (caller, principal, grant) in CALLERS {
        let (status, token) = server
            .post(
                "/api/v1/tokens",
                json!({"name": caller, "principal": principal}),
            )
            .await;
        assert_eq!(status, 201, "{token}");
        if let Some((role, project, environment)) = grant {
            let (status, body) = server
                .post(
                    "/api/v1/grants",
                    json!({"principal": principal, "role": role, "project": project, "environment": environment}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        tokens.push((
            *caller,
            *principal,
            token["token"].as_str().unwrap().to_owned(),
        ));
    }
    tokens.push(("admin", "admin", server.token.clone()));

    let rows = rows(&server, &release, &digest);
    let covered: BTreeSet<String> = rows
        .iter()
        .map(|row| format!("{} {}", row.method, row.template))
        .collect();
    assert_eq!(
        covered,
        documented(),
        "the table must walk every route the API documents"
    );

    let mut checked = 0;
    for row in &rows {
        let path = format!(
            "/api/v1{}",
            row.template
                .replace("{project}", "payments")
                .replace("{release}", &release)
                .replace("{id}", &id.to_string())
                .replace("{environment}", "prod")
                .replace("{name}", "no-such-token")
        );
        let path = if row.template.ends_with("/decision") {
            format!("{path}?environment=prod")
        } else {
            path
        };
        for (caller, principal, token) in &tokens {
            let before = ledger_length(&server).await;
            let (status, body) = server
                .call(row.method, &path, row.body.clone(), Some(token))
                .await;
            let what = format!("{caller}: {} {path} -> {status} {body}", row.method);
            if row.method == "GET" {
                // Reads never write: whoever asks, a GET appends nothing by its caller.
                let since = server
                    .engine
                    .store()
                    .ledger_entries(before as u64, usize::MAX)
                    .await
                    .unwrap();
                assert!(
                    !since.iter().any(|entry| &entry.actor == principal),
                    "a read appended to the ledger: {what}"
                );
            }
            if *caller == "admin" || row.allowed.contains(caller) {
                assert_ne!(status, 403, "allowed, yet refused: {what}");
                assert_ne!(status, 401, "{what}");
            } else {
                assert_eq!(status, 403, "must be refused: {what}");
                assert_eq!(body["code"], "forbidden", "{what}");
                // The engine works on meanwhile; the refused caller's request adds nothing.
                let since = server
                    .engine
                    .store()
                    .ledger_entries(before as u64, usize::MAX)
                    .await
                    .unwrap();
                assert!(
                    !since.iter().any(|entry| &entry.actor == principal),
                    "a refused request changes nothing: {what}"
                );
            }
            checked += 1;
        }
        // Without a token, only the OpenAPI document answers.
        let (status, _) = server.call(row.method, &path, row.body.clone(), None).await;
        let expected = if row.template == "/openapi.json" {
            200
        } else {
            401
        };
        assert_eq!(status, expected, "no token: {} {path}", row.method);
    }
    assert_eq!(checked, rows.len() * tokens.len());
}

/// A refusal says what would do, and a grant given through the CLI's route takes effect
/// at the next request; taking it away does too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_take_effect_at_once_and_name_what_is_missing() {
    let server = server_with(gantry_server::ServerOptions::default()).await;
    let (_, token) = server
        .post(
            "/api/v1/tokens",
            json!({"name": "deploy-bot", "principal": "service:deploy"}),
        )
        .await;
    let token = token["token"].as_str().unwrap().to_owned();
    let hold = || {
        server.call(
            "POST",
            "/api/v1/projects/payments/environments/prod/hold",
            Some(json!({"reason": "maintenance"})),
            Some(&token),
        )
    };
    let (status, body) = hold().await;
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        "service:deploy may not do this in environment prod of project payments: it needs the \
         promoter role there (an admin can give it: gantry access grant promoter --to \
         service:deploy --project payments --environment prod)"
    );

    let grant = json!({"principal": "service:deploy", "role": "promoter", "project": "payments", "environment": "prod"});
    let (status, kept) = server.post("/api/v1/grants", grant.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(kept["granted_by"], "admin");
    assert_eq!(
        server.post("/api/v1/grants", grant.clone()).await.0,
        200,
        "given before"
    );
    assert_eq!(hold().await.0, 204);
    let (_, me) = server
        .call("GET", "/api/v1/whoami", None, Some(&token))
        .await;
    assert_eq!(me["principal"], "service:deploy");
    assert_eq!(me["grants"][0]["environment"], "prod");

    assert_eq!(
        server.post("/api/v1/grants/revoke", grant.clone()).await.0,
        204
    );
    assert_eq!(hold().await.0, 403);
    let (status, body) = server.post("/api/v1/grants/revoke", grant).await;
    assert_eq!(status, 404, "{body}");

    // Bad grants name their field and change nothing.
    let before = ledger_length(&server).await;
    for (body, status, field) in [
        (
            json!({"principal": "Bob", "role": "viewer"}),
            422,
            "principal",
        ),
        (
            json!({"principal": "robot:x", "role": "viewer"}),
            422,
            "principal",
        ),
        (json!({"principal": "bob", "role": "owner"}), 422, "role"),
        (
            json!({"principal": "bob", "role": "viewer", "environment": "prod"}),
            422,
            "project",
        ),
        (
            json!({"principal": "bob", "role": "viewer", "project": "nope"}),
            404,
            "project",
        ),
        (
            json!({"principal": "bob", "role": "viewer", "project": "payments", "environment": "qa"}),
            404,
            "environment",
        ),
        (json!({"principal": "bob"}), 400, "role"),
        (
            json!({"principal": "bob", "role": "viewer", "extra": 1}),
            400,
            "extra",
        ),
    ] {
        let (got, answer) = server.post("/api/v1/grants", body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["field"] == field || answer["message"].as_str().unwrap().contains(field),
            "{body}: {answer}"
        );
    }
    assert_eq!(ledger_length(&server).await, before);
    let (status, body) = server
        .post(
            "/api/v1/tokens",
            json!({"name": "x", "principal": "robot:x"}),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("principal")));
}
