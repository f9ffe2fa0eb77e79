//! The HTTP API from the outside: a real server on a loopback port, a real registry
//! behind it, and a client that only speaks HTTP.

use std::sync::Arc;
use std::time::Duration;

use gantry_engine::{Engine, Event, project_file};
use gantry_oci::{Client, ClientOptions, CredentialSources, Registries};
use gantry_store::sqlite::SqliteStore;
use gantry_store::store::Store;
use gantry_testkit::{ImageBuilder, Pusher, Registry};
use serde_json::{Value, json};

mod access;
mod concurrency;
mod events;
mod limits;
mod text;

struct Server {
    base: String,
    token: String,
    http: reqwest::Client,
    engine: Engine,
    registry: Registry,
    prod: Registry,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn server() -> Server {
    server_with(gantry_server::ServerOptions::default()).await
}

async fn server_with(options: gantry_server::ServerOptions) -> Server {
    let (registry, prod) = (Registry::start().await, Registry::start().await);
    let image = ImageBuilder::new(7).build();
    Pusher::new(&registry)
        .push_image("payments/api", Some("build-1"), &image)
        .await;
    let (r, p) = (registry.host(), prod.host());
    let yaml = format!(
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
    targets:
      api: {{repository: {p}/payments/api}}
"
    );
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("gantry.db")).unwrap());
    let registries = Registries::new(
        Client::new(ClientOptions::default()).unwrap(),
        CredentialSources::from_files(vec![]),
    );
    let project = project_file::parse("payments.yaml", &yaml).unwrap();
    let engine = Engine::start(store, registries, vec![project])
        .await
        .unwrap();
    let token = gantry_server::bootstrap_access(&engine)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        gantry_server::bootstrap_access(&engine).await.unwrap(),
        None,
        "shown once"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let key = gantry_server::load_or_create_ledger_key(&dir.path().join("ledger.key")).unwrap();
    tokio::spawn(gantry_server::serve_with(
        listener,
        engine.clone(),
        key,
        options,
        async {
            let _ = stopped.await;
        },
    ));
    Server {
        base,
        token,
        http: reqwest::Client::new(),
        engine,
        registry,
        prod,
        _dir: dir,
        _stop: stop,
    }
}

impl Server {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body), Some(&self.token)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None, Some(&self.token)).await
    }
}

async fn moved(events: &mut tokio::sync::broadcast::Receiver<Event>, environment: &str) {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match events.recv().await.unwrap() {
                Event::PointerMoved { environment: e, .. } if e.as_str() == environment => return,
                Event::PromotionFailed { error, .. } => panic!("promotion failed: {error}"),
                Event::PointerMoved { .. } => {}
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_through_the_api() {
    let server = server().await;
    let mut events = server.engine.subscribe();
    assert_eq!(server.call("GET", "/healthz", None, None).await.0, 200);
    assert_eq!(server.call("GET", "/readyz", None, None).await.0, 200);
    let (status, openapi) = server.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!((status, openapi["openapi"].as_str()), (200, Some("3.1.0")));

    let components = json!({"components": {"api": format!("{}/payments/api:build-1", server.registry.host())}, "labels": {"ci": "8812"}});
    let (status, release) = server
        .post("/api/v1/projects/payments/releases", components.clone())
        .await;
    assert_eq!(
        (status, &release["created"]),
        (201, &json!(true)),
        "{release}"
    );
    let (status, again) = server
        .post("/api/v1/projects/payments/releases", components)
        .await;
    assert_eq!(
        (status, &again["id"], &again["created"]),
        (200, &release["id"], &json!(false))
    );
    moved(&mut events, "dev").await;

    let alias = release["alias"].as_str().unwrap();
    let promote = || {
        server
            .http
            .post(format!(
                "{}/api/v1/projects/payments/promotions",
                server.base
            ))
            .bearer_auth(&server.token)
            .header("Idempotency-Key", "deploy-42")
            .header("content-type", "application/json")
            .body(json!({"release": alias, "environment": "prod", "reason": "1.4.2"}).to_string())
            .send()
    };
    let first: Value =
        serde_json::from_str(&promote().await.unwrap().text().await.unwrap()).unwrap();
    let second = promote().await.unwrap();
    assert_eq!(second.status().as_u16(), 202);
    let second: Value = serde_json::from_str(&second.text().await.unwrap()).unwrap();
    assert_eq!(
        second["id"], first["id"],
        "a retried request never promotes twice"
    );
    moved(&mut events, "prod").await;

    let (_, board) = server.get("/api/v1/projects/payments/status").await;
    let prod = board["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "prod")
        .unwrap();
    assert_eq!(
        (&prod["release_alias"], &prod["binding"]),
        (&json!(alias), &json!("pin"))
    );
    assert_eq!(prod["digests"]["api"], release["artifacts"][0]["digest"]);
    let (_, promotion) = server
        .get(&format!(
            "/api/v1/projects/payments/promotions/{}",
            first["id"]
        ))
        .await;
    assert_eq!(
        (&promotion["state"], &promotion["requested_by"]),
        (&json!("succeeded"), &json!("admin"))
    );
    let (_, history) = server
        .get("/api/v1/projects/payments/promotions?environment=prod")
        .await;
    assert_eq!(history.as_array().unwrap().len(), 1);
    let (_, shown) = server
        .get(&format!("/api/v1/projects/payments/releases/{alias}"))
        .await;
    assert_eq!(shown["labels"]["ci"], "8812");
    let (_, ledger) = server.get("/api/v1/ledger?after=0&limit=100").await;
    assert!(
        ledger
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "promotion.succeeded" && e["environment"] == "prod")
    );
    assert!(
        Pusher::new(&server.prod)
            .get_manifest("payments/api", "prod")
            .await
            .is_some()
    );

    let export = server
        .http
        .get(format!("{}/api/v1/ledger/export", server.base))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, vkey) = server.get("/api/v1/ledger/key").await;
    let vkey = gantry_store::ledger::VerifierKey::parse(vkey.as_str().unwrap().trim()).unwrap();
    let summary =
        gantry_store::ledger::export::verify_export(export.as_bytes(), Some(&vkey)).unwrap();
    assert!(
        summary.key_trusted && summary.entries > 5 && summary.signed_entries == summary.entries,
        "{summary:?}"
    );

    let (status, late) = server
        .post(
            &format!(
                "/api/v1/projects/payments/promotions/{}/cancel",
                first["id"]
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, late["code"].as_str()),
        (409, Some("conflict")),
        "a finished promotion cannot be cancelled: {late}"
    );
    let (status, _) = server
        .post("/api/v1/projects/payments/promotions/999/cancel", json!({}))
        .await;
    assert_eq!(status, 404);

    let (status, created) = server.post("/api/v1/tokens", json!({"name": "ci"})).await;
    assert_eq!(status, 201);
    let status_as_ci = || {
        server.call(
            "GET",
            "/api/v1/projects/payments/status",
            None,
            created["token"].as_str(),
        )
    };
    let (status, body) = status_as_ci().await;
    assert_eq!(
        status, 403,
        "a new token works but may do nothing yet: {body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("gantry access grant viewer --to ci --project payments"),
        "{body}"
    );
    let (status, _) = server
        .post(
            "/api/v1/grants",
            json!({"principal": "ci", "role": "viewer", "project": "payments"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(status_as_ci().await.0, 200, "a viewer sees the status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_clear_4xx_and_change_nothing() {
    let server = server().await;
    let entries_before = server
        .engine
        .store()
        .ledger_entries(0, 10_000)
        .await
        .unwrap()
        .len();
    let check = |status: u16, body: &Value, expect_status: u16, code: &str, field: Option<&str>| {
        assert_eq!(status, expect_status, "{body}");
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["field"].as_str(), field, "{body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    };
    let (s, b) = server
        .call("GET", "/api/v1/projects/payments/status", None, None)
        .await;
    check(s, &b, 401, "unauthorized", None);
    let (s, b) = server
        .call(
            "GET",
            "/api/v1/projects/payments/status",
            None,
            Some("gantry_wrong"),
        )
        .await;
    check(s, &b, 401, "unauthorized", None);
    let (s, b) = server.get("/api/v1/projects/shipping/status").await;
    check(s, &b, 404, "unknown_project", Some("project"));
    let (s, b) = server
        .post(
            "/api/v1/projects/payments/promotions",
            json!({"release": "ffffffffff", "environment": "prod"}),
        )
        .await;
    check(s, &b, 404, "unknown_release", Some("release"));
    let (s, b) = server
        .post(
            "/api/v1/projects/payments/promotions",
            json!({"release": "ffff", "enviroment": "prod"}),
        )
        .await;
    check(s, &b, 400, "invalid_request", Some("enviroment"));
    let (s, b) = server
        .post(
            "/api/v1/projects/payments/promotions",
            json!({"release": "ffff"}),
        )
        .await;
    check(s, &b, 400, "invalid_request", Some("environment"));
    let (s, b) = server
        .post(
            "/api/v1/projects/payments/releases",
            json!({"components": {"api": "Bad Reference"}}),
        )
        .await;
    check(s, &b, 400, "invalid_request", None);
    let (s, b) = server.post("/api/v1/projects/payments/releases", json!({"components": {"api": format!("{}/payments/api@sha256:{}", server.registry.host(), "0".repeat(64))}})).await;
    check(s, &b, 422, "unresolvable", Some("components"));
    let (s, b) = server
        .post("/api/v1/projects/payments/environments/qa/hold", json!({}))
        .await;
    check(s, &b, 404, "unknown_environment", Some("environment"));
    let (s, b) = server
        .post("/api/v1/tokens", json!({"name": "Not OK"}))
        .await;
    check(s, &b, 400, "invalid_request", Some("name"));
    let (s, b) = server
        .get("/api/v1/projects/payments/promotions?environment=qa")
        .await;
    check(s, &b, 404, "unknown_environment", Some("environment"));
    let huge = json!({"components": {"api": "x".repeat(gantry_server::BODY_LIMIT)}});
    let (s, b) = server
        .post("/api/v1/projects/payments/releases", huge)
        .await;
    check(s, &b, 413, "too_large", None);
    let entries_after = server
        .engine
        .store()
        .ledger_entries(0, 10_000)
        .await
        .unwrap()
        .len();
    assert_eq!(entries_before, entries_after, "nothing was recorded");
}
