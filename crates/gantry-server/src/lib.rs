//! Gantry's HTTP server: a thin face over the engine. Routes under `/api/v1` need a
//! bearer token; `/healthz` and `/readyz` do not.

mod auth;
mod error;
mod routes;

use std::future::Future;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use gantry_engine::Engine;

pub use auth::{hash as hash_token, new_token};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub engine: Engine,
}

/// Request bodies above this are refused with 413 before they are parsed.
pub const BODY_LIMIT: usize = 64 * 1024;

const OPENAPI: &str = include_str!("openapi.json");

pub fn router(engine: Engine) -> Router {
    let state = AppState { engine };
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
        .route("/tokens", post(routes::create_token))
        .route("/ledger", get(routes::ledger))
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
        .with_state(state)
}

/// Ready when the store answers.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.engine.store().token_count().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(error) => {
            tracing::warn!(%error, "not ready: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "the store does not answer")
        }
    }
}

/// Serves on a listener the caller bound (tests bind `127.0.0.1:0`) until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Engine,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(engine))
        .with_graceful_shutdown(shutdown)
        .await
}

/// On the first start (no token yet) makes an `admin` token and returns it, to be shown
/// once; afterwards `None`.
pub async fn first_admin_token(
    engine: &Engine,
) -> Result<Option<String>, gantry_store::store::StoreError> {
    let store = engine.store();
    if store.token_count().await? > 0 {
        return Ok(None);
    }
    let token = new_token();
    store
        .create_token(
            "admin",
            &hash_token(&token),
            &gantry_store::store::Audit::by("gantry").because("first start"),
        )
        .await?;
    Ok(Some(token))
}
