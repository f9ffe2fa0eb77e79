//! The routes under `/api/v1`: each parses its input, calls the engine, and turns the
//! answer into wire types.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use gantry_api as api;
use gantry_core::{Action, Scope};
use gantry_engine::Request as PromotionRequest;
use gantry_store::store::{PromotionRecord, ReleaseRecord};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// A JSON body whose errors are API errors naming the field, as serde reports it. Its
/// text, as read, passes [`crate::text::check_body`]: no string in it holds a control
/// character.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + Serialize, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Body<T>, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => {
                let read = serde_json::to_value(&value)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}"), None))?;
                crate::text::check_body(&read)?;
                Ok(Body(value))
            }
            Err(rejection) => Err(json_error(&rejection)),
        }
    }
}

fn json_error(rejection: &JsonRejection) -> ApiError {
    let text = rejection.body_text();
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is larger than 64 KiB",
            None,
        );
    }
    // serde names the field between backticks: "unknown field `x`", "missing field `y`".
    let field = text.split('`').nth(1).map(str::to_owned);
    let message = text
        .split_once(": ")
        .map_or(text.as_str(), |(_, rest)| rest)
        .to_owned();
    ApiError::bad_request(format!("invalid JSON body: {message}"), field.as_deref())
}

/// Path parameters whose errors are API errors.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Params<T>, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Params(value))
            .map_err(|e: PathRejection| ApiError::bad_request(e.body_text(), None))
    }
}

fn release(record: ReleaseRecord, created: bool) -> api::Release {
    api::Release {
        id: record.id.digest().to_string(),
        alias: record.alias,
        project: record.project.to_string(),
        artifacts: record
            .artifacts
            .into_iter()
            .map(|a| api::Artifact {
                component: a.component.to_string(),
                source: a.source,
                digest: a.digest.to_string(),
                labels: a.labels,
            })
            .collect(),
        labels: record.labels,
        created_at: record.created_at,
        created_by: record.created_by,
        created,
    }
}

pub fn promotion(record: PromotionRecord) -> api::Promotion {
    api::Promotion {
        id: record.id,
        project: record.project.to_string(),
        environment: record.environment.to_string(),
        release_alias: record.release.alias().to_owned(),
        release: record.release.digest().to_string(),
        kind: record.kind.to_string(),
        state: record.state.to_string(),
        requested_by: record.requested_by,
        requested_at: record.requested_at,
        reason: record.reason,
        started_at: record.started_at,
        finished_at: record.finished_at,
        error: record.error,
        previous_release: record.previous_release.map(|r| r.digest().to_string()),
        emergency: record.emergency,
        needs: None,
        runner: record.runner,
    }
}

pub async fn create_release(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params(project): Params<String>,
    Body(request): Body<api::CreateRelease>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_in_project(&state, Action::Promote, &project)?;
    let (record, created) = state
        .engine
        .create_release(
            &project,
            request.components,
            request.labels,
            &caller.actor(),
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(release(record, created))))
}

pub async fn show_release(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params((project, key)): Params<(String, String)>,
) -> Result<Json<api::Release>, ApiError> {
    caller.require_in_project(&state, Action::View, &project)?;
    let project = state.engine.project(&project)?;
    let record = state
        .engine
        .store()
        .find_release(project.name(), &key)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_release",
                format!("project {} has no release {key:?}", project.name()),
                Some("release"),
            )
        })?;
    Ok(Json(release(record, false)))
}

pub async fn create_promotion(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params(project): Params<String>,
    headers: HeaderMap,
    Body(request): Body<api::CreatePromotion>,
) -> Result<impl IntoResponse, ApiError> {
    // The emergency path needs no more than promoting: the environment's `emergency`
    // gate names who may take it, and what more it costs.
    caller.require_in_environment(&state, Action::Promote, &project, &request.environment)?;
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()
        .map_err(|_| {
            ApiError::bad_request(
                "the Idempotency-Key header must be visible ASCII",
                Some("Idempotency-Key"),
            )
        })?;
    let record = state
        .engine
        .promote(
            &project,
            &request.release,
            &request.environment,
            PromotionRequest {
                actor: caller.actor(),
                reason: request.reason,
                idempotency_key: key,
                emergency: request.emergency,
            },
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(promotion(record))))
}

pub async fn show_promotion(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params((project, id)): Params<(String, i64)>,
) -> Result<Json<api::Promotion>, ApiError> {
    caller.require_in_project(&state, Action::View, &project)?;
    Ok(Json(promotion(find_promotion(&state, &project, id).await?)))
}

/// A promotion of a project, or a 404 that names it.
async fn find_promotion(
    state: &AppState,
    project: &str,
    id: i64,
) -> Result<PromotionRecord, ApiError> {
    let project = state.engine.project(project)?;
    state
        .engine
        .store()
        .promotion(id)
        .await?
        .filter(|p| &p.project == project.name())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_promotion",
                format!("project {} has no promotion {id}", project.name()),
                Some("id"),
            )
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    environment: Option<String>,
    limit: Option<usize>,
}

pub async fn history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params(project): Params<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<Vec<api::Promotion>>, ApiError> {
    caller.require_in_project(&state, Action::View, &project)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text(), None))?;
    let project = state.engine.project(&project)?;
    let environment = match &query.environment {
        Some(name) => Some(
            project
                .environment(name)
                .map(|e| e.name.clone())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "unknown_environment",
                        format!("project {} has no environment {name:?}", project.name()),
                        Some("environment"),
                    )
                })?,
        ),
        None => None,
    };
    let records = state
        .engine
        .store()
        .promotions(
            project.name(),
            environment.as_ref(),
            query.limit.unwrap_or(100).min(1000),
        )
        .await?;
    Ok(Json(records.into_iter().map(promotion).collect()))
}

pub async fn status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params(project): Params<String>,
) -> Result<Json<api::Status>, ApiError> {
    caller.require_in_project(&state, Action::View, &project)?;
    let project = state.engine.project(&project)?;
    let store = state.engine.store();
    let records = store.environments(project.name()).await?;
    let recent = store.promotions(project.name(), None, 1000).await?;
    let mut environments = Vec::new();
    for environment in project.environments() {
        let record = records.iter().find(|r| r.name == environment.name);
        let held = record.and_then(|r| r.release.clone());
        let digests = match &held {
            Some(id) => store
                .find_release(project.name(), id.digest().as_str())
                .await?
                .map(|r| {
                    r.artifacts
                        .into_iter()
                        .map(|a| (a.component.to_string(), a.digest.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            None => std::collections::BTreeMap::default(),
        };
        let mut pending = Vec::new();
        for record in recent
            .iter()
            .filter(|p| p.environment == environment.name && !p.state.is_final())
        {
            let needs = state.engine.still_needs(record).await?;
            let mut wire = promotion(record.clone());
            wire.needs = needs.filter(|n| !n.is_empty());
            pending.push(wire);
        }
        pending.reverse();
        environments.push(api::EnvironmentStatus {
            name: environment.name.to_string(),
            binding: environment.binding.to_string(),
            strategy: environment.strategy.to_string(),
            upstreams: environment
                .upstreams
                .iter()
                .map(ToString::to_string)
                .collect(),
            release_alias: held.as_ref().map(|r| r.alias().to_owned()),
            release: held.map(|r| r.digest().to_string()),
            digests,
            since: record.and_then(|r| r.since.clone()),
            moved_by: record.and_then(|r| r.moved_by.clone()),
            hold: record.and_then(|r| r.hold.clone()).map(|h| api::HoldState {
                by: h.by,
                reason: h.reason,
                since: h.since,
            }),
            pending,
        });
    }
    Ok(Json(api::Status {
        project: project.name().to_string(),
        environments,
        warnings: state.live_check.warnings_for(project.name().as_str()),
    }))
}

async fn set_hold(
    state: &AppState,
    caller: &str,
    project: &str,
    environment: &str,
    hold: bool,
    reason: Option<String>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .set_hold(project, environment, hold, caller, reason)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn hold(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params((project, environment)): Params<(String, String)>,
    Body(request): Body<api::Hold>,
) -> Result<StatusCode, ApiError> {
    caller.require_in_environment(&state, Action::Promote, &project, &environment)?;
    set_hold(
        &state,
        &caller.actor(),
        &project,
        &environment,
        true,
        request.reason,
    )
    .await
}

pub async fn unhold(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params((project, environment)): Params<(String, String)>,
    Body(request): Body<api::Hold>,
) -> Result<StatusCode, ApiError> {
    caller.require_in_environment(&state, Action::Promote, &project, &environment)?;
    set_hold(
        &state,
        &caller.actor(),
        &project,
        &environment,
        false,
        request.reason,
    )
    .await
}

pub async fn rollback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params((project, environment)): Params<(String, String)>,
    Body(request): Body<api::Rollback>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_in_environment(&state, Action::Promote, &project, &environment)?;
    let record = state
        .engine
        .rollback(
            &project,
            &environment,
            request.to.as_deref(),
            PromotionRequest {
                actor: caller.actor(),
                reason: request.reason,
                ..PromotionRequest::default()
            },
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(promotion(record))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

pub async fn ledger(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<LedgerQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Action::View, &Scope::Server)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text(), None))?;
    let entries = state
        .engine
        .store()
        .ledger_entries(
            query.after.unwrap_or(0),
            query.limit.unwrap_or(1000).min(10_000),
        )
        .await?;
    Ok(Json(entries))
}

/// The verifier key auditors pass to `gantry ledger verify --key`.
pub async fn ledger_key(State(state): State<AppState>) -> String {
    format!("{}\n", state.ledger_key.verifier_key().to_vkey_string())
}

/// The whole ledger as a JSON Lines export, ending with a checkpoint signed now over
/// every entry in it.
pub async fn ledger_export(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<impl IntoResponse, ApiError> {
    use gantry_store::ledger::export::ExportWriter;
    use gantry_store::ledger::merkle::{Tree, leaf_hash};
    use gantry_store::ledger::note::{Checkpoint, sign};

    caller.require(Action::View, &Scope::Server)?;
    let io = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("writing the export: {e}"),
            None,
        )
    };
    let mut writer = ExportWriter::new(
        Vec::new(),
        crate::LEDGER_ORIGIN,
        &state.ledger_key.verifier_key(),
    )
    .map_err(io)?;
    let mut tree = Tree::new();
    let mut after = 0;
    loop {
        let page = state.engine.store().ledger_entries(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.sequence;
        for entry in &page {
            tree.push(leaf_hash(&entry.canonical_bytes()));
            writer.entry(entry).map_err(io)?;
        }
    }
    if tree.size() > 0 {
        let checkpoint = Checkpoint {
            origin: crate::LEDGER_ORIGIN.to_owned(),
            size: tree.size(),
            root: tree.root(),
        };
        writer
            .checkpoint(&sign(&checkpoint, &state.ledger_key))
            .map_err(io)?;
    }
    let body = writer.finish().map_err(io)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    ))
}

pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params((project, id)): Params<(String, i64)>,
    Body(request): Body<api::Hold>,
) -> Result<Json<api::Promotion>, ApiError> {
    // Cancelling is promoting's undo: it needs the same role where the promotion goes.
    caller.require_in_project(&state, Action::View, &project)?;
    let record = find_promotion(&state, &project, id).await?;
    caller.require(
        Action::Promote,
        &Scope::Environment(record.project, record.environment),
    )?;
    Ok(Json(promotion(
        state
            .engine
            .cancel(&project, id, &caller.actor(), request.reason)
            .await?,
    )))
}
