//! Gantry's HTTP server: a thin face over the engine. Routes under `/api/v1` need a
//! bearer token; `/healthz` and `/readyz` do not.

mod access;
mod auth;
mod connections;
mod data_dir;
mod error;
mod events;
mod gates;
mod limits;
mod live_check;
pub mod oidc;
pub mod proxies;
mod routes;
mod text;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use gantry_engine::Engine;
use gantry_store::ledger::SigningKey;

pub use auth::{hash as hash_token, new_token};
pub use connections::ConnectionLimits;
pub use data_dir::{prepare_data_directory, warn_about_wide_modes};
pub use limits::{REQUEST_ID, RateLimit, RateLimiter};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub engine: Engine,
    /// Signs ledger checkpoints.
    pub ledger_key: Arc<SigningKey>,
    pub limiter: Arc<RateLimiter>,
    /// Verifies OIDC ID tokens sent as bearer tokens, when issuers are configured.
    pub oidc: Option<oidc::Verifier>,
    /// Load balancers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<proxies::TrustedProxies>,
    /// Whether the live state agrees with the ledger, as last checked.
    pub live_check: Arc<live_check::LiveCheck>,
}

/// How a server protects itself and stops.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Requests per caller; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// How long a stopping server waits for running promotions to finish; those still
    /// running after it resume at the next start.
    pub shutdown_grace: Duration,
    /// How often the live state is checked against the ledger (it is also checked at
    /// start); zero checks at start only.
    pub ledger_check: Duration,
    /// Accepts OIDC ID tokens (a CI job's) from these issuers as service accounts.
    pub oidc: Option<oidc::Verifier>,
    /// Load balancers whose `X-Forwarded-For` names the client (for counting failed
    /// authentications per client). Their connections do not count against
    /// `connections.per_address`.
    pub trusted_proxies: proxies::TrustedProxies,
    /// How long a client may take to send a request, and how many connections it may
    /// hold.
    pub connections: ConnectionLimits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            rate_limit: Some(RateLimit::default()),
            shutdown_grace: Duration::from_secs(30),
            ledger_check: Duration::from_secs(60),
            oidc: None,
            trusted_proxies: proxies::TrustedProxies::default(),
            connections: ConnectionLimits::default(),
        }
    }
}

/// The origin line of this server's ledger checkpoints.
pub const LEDGER_ORIGIN: &str = "gantry/ledger";

/// Loads the ledger signing key from `path`, creating it (readable by its owner only)
/// on the first start. Its verifier key is what auditors trust.
pub fn load_or_create_ledger_key(path: &Path) -> std::io::Result<SigningKey> {
    let invalid = |e: gantry_store::ledger::NoteError| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    };
    match std::fs::read_to_string(path) {
        Ok(text) => SigningKey::from_skey_string(text.trim()).map_err(invalid),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = gantry_store::ledger::note::generate("gantry-ledger").map_err(invalid)?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = match options.open(path) {
                Ok(file) => file,
                // Another replica sharing the key made it just now.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return load_or_create_ledger_key(path);
                }
                Err(e) => return Err(e),
            };
            std::io::Write::write_all(&mut file, format!("{}\n", key.to_skey_string()).as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

/// Request bodies above this are refused with 413 before they are parsed.
pub const BODY_LIMIT: usize = 64 * 1024;

const OPENAPI: &str = include_str!("openapi.json");

pub fn router(
    engine: Engine,
    ledger_key: SigningKey,
    options: &ServerOptions,
    live_check: Arc<live_check::LiveCheck>,
) -> Router {
    let state = AppState {
        live_check,
        engine,
        ledger_key: Arc::new(ledger_key),
        limiter: Arc::new(RateLimiter::new(options.rate_limit)),
        oidc: options.oidc.clone(),
        trusted_proxies: Arc::new(options.trusted_proxies.clone()),
    };
    let api = Router::new()
        .route("/projects/{project}/releases", post(routes::create_release))
        .route(
            "/projects/{project}/releases/{release}",
            get(routes::show_release),
        )
        .route(
            "/projects/{project}/promotions",
            post(routes::create_promotion).get(routes::history),
        )
        .route(
            "/projects/{project}/promotions/{id}",
            get(routes::show_promotion),
        )
        .route(
            "/projects/{project}/promotions/{id}/cancel",
            post(routes::cancel),
        )
        .route(
            "/projects/{project}/releases/{release}/evidence",
            post(gates::add_evidence)
                .get(gates::list_evidence)
                .layer(DefaultBodyLimit::max(gates::EVIDENCE_LIMIT)),
        )
        .route(
            "/projects/{project}/releases/{release}/evidence/pull",
            post(gates::pull_evidence),
        )
        .route(
            "/projects/{project}/releases/{release}/approvals",
            post(gates::add_approval),
        )
        .route(
            "/projects/{project}/releases/{release}/decision",
            get(gates::explain),
        )
        .route("/projects/{project}/stop", post(gates::stop))
        .route("/projects/{project}/resume", post(gates::resume))
        .route("/projects/{project}/status", get(routes::status))
        .route(
            "/projects/{project}/environments/{environment}/hold",
            post(routes::hold),
        )
        .route(
            "/projects/{project}/environments/{environment}/unhold",
            post(routes::unhold),
        )
        .route(
            "/projects/{project}/environments/{environment}/rollback",
            post(routes::rollback),
        )
        .route("/tokens", post(access::create_token).get(access::tokens))
        .route("/tokens/{name}/revoke", post(access::revoke_token))
        .route("/grants", post(access::create_grant).get(access::grants))
        .route("/grants/revoke", post(access::revoke_grant))
        .route("/whoami", get(access::whoami))
        .route("/ledger", get(routes::ledger))
        .route("/ledger/export", get(routes::ledger_export))
        .route("/ledger/key", get(routes::ledger_key))
        .route("/ledger/state", get(live_check::state))
        .route_layer(axum::middleware::from_fn(text::refuse_unsafe_parameters))
        // The last layer runs first: the token is checked, then the caller's rate, then
        // the parameters' text.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::rate_limit,
        ))
        // Registry events need a token but are not rate limited: a registry reports
        // every pull and blob upload too, many per push, and backs off on 429.
        .route("/events/registry", post(events::registry))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        );
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(limits::request_id))
        .with_state(state)
}

/// Ready when the store answers and the live state agrees with the ledger.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.engine.store().token_count().await {
        Ok(_) => match state.live_check.problem() {
            None => (StatusCode::OK, "ready".to_owned()),
            Some(problem) => (StatusCode::SERVICE_UNAVAILABLE, problem),
        },
        Err(error) => {
            tracing::warn!(%error, "not ready: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the store does not answer".to_owned(),
            )
        }
    }
}

/// Serves on a listener the caller bound (tests bind `127.0.0.1:0`) until `shutdown`,
/// with the default [`ServerOptions`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Engine,
    ledger_key: SigningKey,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener,
        engine,
        ledger_key,
        ServerOptions::default(),
        shutdown,
    )
    .await
}

/// Serves until `shutdown`, then stops gracefully: no new connections, requests in
/// flight answered, no promotion started, and running promotions given
/// `shutdown_grace` to finish (the rest resume at the next start). Slow clients are
/// cut off and greedy ones limited as `options.connections` says.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    engine: Engine,
    ledger_key: SigningKey,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The live state is checked against the ledger before the first request, then
    // every `options.ledger_check`.
    let live_check = Arc::new(live_check::LiveCheck::default());
    if let Err(error) = live_check.run(engine.store().as_ref()).await {
        tracing::warn!(%error, "could not check the live state against the ledger");
    }
    let checker = live_check::spawn(
        live_check.clone(),
        engine.store().clone(),
        options.ledger_check,
    );
    let app = router(engine.clone(), ledger_key, &options, live_check);
    connections::serve(
        listener,
        app,
        options.connections,
        Arc::new(options.trusted_proxies.clone()),
        shutdown,
    )
    .await;
    if let Some(checker) = checker {
        checker.abort();
    }
    let left = engine.drain(options.shutdown_grace).await;
    if left == 0 {
        tracing::info!("stopped; no promotion was running");
    } else {
        tracing::warn!(
            running = left,
            "stopped with promotions still running; they resume at the next start"
        );
    }
    Ok(())
}

/// On the first start (no token yet) makes an `admin` token and returns it, to be shown
/// once; afterwards `None`.
/// Keeps `token` as service account `account`'s, with `role` over the whole server,
/// straight in the store: how a sender that must know its token before the server runs
/// (a registry's notifications, in tests and benchmarks) is set up.
pub async fn add_service_token(
    engine: &Engine,
    account: &str,
    token: &str,
    role: gantry_core::Role,
) -> Result<(), gantry_store::store::StoreError> {
    use gantry_store::store::{Audit, StoreError};

    let principal = gantry_core::Principal::Service(
        account
            .parse()
            .map_err(|e: gantry_core::NameError| StoreError::Conflict(e.to_string()))?,
    );
    let audit = Audit::by("gantry");
    let store = engine.store();
    store
        .create_token(account, &principal, &hash_token(token), None, &audit)
        .await?;
    let grant = gantry_core::Grant {
        principal,
        role,
        scope: gantry_core::Scope::Server,
    };
    store.grant(&grant, &audit).await.map(drop)
}

/// Makes sure someone can administer the server. On the first start, creates the
/// `admin` user's token (returned, to show once) and makes `admin` an admin of the server.
/// (A store from before roles was upgraded by its migration: the principals of its
/// tokens in use became admins of the server.)
pub async fn bootstrap_access(
    engine: &Engine,
) -> Result<Option<String>, gantry_store::store::StoreError> {
    use gantry_core::{Grant, Principal, Role, Scope};
    use gantry_store::store::Audit;

    let store = engine.store();
    let admin = |principal: Principal| Grant {
        principal,
        role: Role::Admin,
        scope: Scope::Server,
    };
    if store.token_count().await? > 0 {
        return Ok(None);
    }
    let audit = Audit::by("gantry").because("first start");
    let principal = Principal::User("admin".parse().expect("a valid name"));
    let token = new_token();
    match store
        .create_token("admin", &principal, &hash_token(&token), None, &audit)
        .await
    {
        Ok(()) => {}
        // Another replica on the same database made it first, and shows it.
        Err(gantry_store::store::StoreError::Conflict(_)) => return Ok(None),
        Err(error) => return Err(error),
    }
    store.grant(&admin(principal), &audit).await?;
    Ok(Some(token))
}

/// Gets an operator back in when nobody can administer the server: gives `principal`
/// admin over the server and a new token named `token_name` (returned, to show once),
/// straight in the store, whether the server runs or not. Both changes are in the ledger
/// by `offline-recovery`, with `reason` saying who ran it, where.
pub async fn recover_admin(
    store: &dyn gantry_store::store::Store,
    principal: &gantry_core::Principal,
    token_name: &str,
    reason: String,
) -> Result<String, gantry_store::store::StoreError> {
    use gantry_core::{Grant, Role, Scope};
    use gantry_store::store::Audit;

    let audit = Audit::by("offline-recovery").because(reason);
    let grant = Grant {
        principal: principal.clone(),
        role: Role::Admin,
        scope: Scope::Server,
    };
    store.grant(&grant, &audit).await?;
    let token = new_token();
    store
        .create_token(token_name, principal, &hash_token(&token), None, &audit)
        .await?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every route `router` defines, as `METHOD /path`, read from this file's source:
    /// axum cannot list a router's routes, and a test that reads the table it checks
    /// is simpler than building the router from a second table.
    fn routes_in_source() -> BTreeSet<String> {
        let source = include_str!("lib.rs");
        let function = &source[source.find("pub fn router(").expect("fn router")..];
        let function = &function[..function.find("\n}\n").expect("the end of fn router")];
        let (nested, top) = function
            .split_once(".nest(\"/api/v1\", api)")
            .expect("routes are nested under /api/v1");
        let mut routes = BTreeSet::new();
        for (prefix, part) in [("/api/v1", nested), ("", top)] {
            for call in part.split(".route(").skip(1) {
                // The call's text up to its closing parenthesis.
                let mut depth = 1;
                let end = call
                    .char_indices()
                    .find(|&(_, c)| {
                        depth += match c {
                            '(' => 1,
                            ')' => -1,
                            _ => 0,
                        };
                        depth == 0
                    })
                    .map(|(index, _)| index)
                    .expect("a closed .route( call");
                let call = &call[..end];
                let path = call.split('"').nth(1).expect("a path literal");
                let mut methods = 0;
                for method in ["get", "post", "put", "patch", "delete"] {
                    let called = call.match_indices(&format!("{method}(")).any(|(at, _)| {
                        // `get(` itself, not the end of `target(`.
                        let before = at.checked_sub(1).map(|i| call.as_bytes()[i]);
                        before.is_none_or(|b| !b.is_ascii_alphanumeric() && b != b'_')
                    });
                    if called {
                        routes.insert(format!("{} {prefix}{path}", method.to_uppercase()));
                        methods += 1;
                    }
                }
                assert!(methods > 0, "no method found for route {path}");
            }
        }
        routes
    }

    fn routes_in_document(document: &serde_json::Value) -> BTreeSet<String> {
        let mut routes = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                routes.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
        routes
    }

    /// Every `$ref` in `value`, as a JSON pointer into the document.
    fn references<'a>(value: &'a serde_json::Value, found: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::Object(object) => {
                for (key, item) in object {
                    match (key.as_str(), item) {
                        ("$ref", serde_json::Value::String(target)) => found.push(target),
                        _ => references(item, found),
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    references(item, found);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn the_openapi_document_lists_every_route_and_only_those() {
        let document: serde_json::Value =
            serde_json::from_str(super::OPENAPI).expect("openapi.json is JSON");
        let source = routes_in_source();
        assert!(
            source.contains("POST /api/v1/projects/{project}/releases/{release}/evidence")
                && source.contains("GET /healthz"),
            "the source reader finds routes: {source:#?}"
        );
        let documented = routes_in_document(&document);
        let undocumented: Vec<_> = source.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&source).collect();
        assert!(
            undocumented.is_empty() && stale.is_empty(),
            "routes missing from openapi.json: {undocumented:#?}\n\
             documented routes the router lacks: {stale:#?}"
        );
        let mut found = Vec::new();
        references(&document, &mut found);
        for target in found {
            let pointer = target.strip_prefix('#').expect("local references only");
            assert!(
                document.pointer(pointer).is_some(),
                "openapi.json refers to {target}, which it does not define"
            );
        }
    }
}
