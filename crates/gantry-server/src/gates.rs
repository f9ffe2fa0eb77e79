//! Routes for gates: evidence intake, approvals and rejections, decisions (`why`), and
//! stopping or resuming the line.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use gantry_api as api;
use gantry_engine::Explained;
use gantry_store::store::EvidenceRecord;
use serde::Deserialize;

use crate::AppState;
use gantry_core::Action;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::{Body, Params};

/// The largest report accepted, as gantry-evidence reads it.
pub const EVIDENCE_LIMIT: usize = gantry_evidence::MAX_EVIDENCE_BYTES;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    kind: String,
    #[serde(default)]
    component: Option<String>,
}

/// A query string that does not parse: the error names the field serde names (an
/// unknown or missing one), else `field`, the one that matters most.
fn query_error(rejection: &QueryRejection, field: &str) -> ApiError {
    let text = rejection.body_text();
    let named = text.split('`').nth(1).unwrap_or(field).to_owned();
    ApiError::bad_request(text, Some(&named))
}

fn evidence(record: EvidenceRecord, created: bool) -> api::Evidence {
    api::Evidence {
        id: record.id,
        release: record.release.digest().to_string(),
        component: record.component.map(|c| c.to_string()),
        kind: record.kind,
        digest: record.digest.to_string(),
        size: record.size,
        summary: serde_json::from_str(&record.summary).unwrap_or(serde_json::Value::Null),
        source: record.source,
        added_by: record.added_by,
        added_at: record.added_at,
        created,
    }
}

pub async fn add_evidence(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params((project, release)): Params<(String, String)>,
    query: Result<Query<EvidenceQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_in_project(&state, Action::Promote, &project)?;
    let Query(query) = query.map_err(|e| query_error(&e, "kind"))?;
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let reason = format!(
                "the report is larger than {} MiB",
                EVIDENCE_LIMIT / (1024 * 1024)
            );
            // Refused before it was read whole, and recorded like every refusal.
            state
                .engine
                .refuse_evidence(
                    &project,
                    &release,
                    format!("evidence: {reason}"),
                    serde_json::json!({"kind": query.kind, "component": query.component, "limit": EVIDENCE_LIMIT}),
                    &caller.actor(),
                )
                .await?;
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                reason,
                Some("evidence"),
            ));
        }
        Err(e) => return Err(ApiError::bad_request(e.body_text(), Some("evidence"))),
    };
    let added = state
        .engine
        .add_evidence(
            &project,
            &release,
            query.component.as_deref(),
            &query.kind,
            body.to_vec(),
            &caller.actor(),
        )
        .await?;
    let status = if added.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(evidence(added.record, added.created))))
}

pub async fn list_evidence(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params((project, release)): Params<(String, String)>,
) -> Result<Json<Vec<api::Evidence>>, ApiError> {
    caller.require_in_project(&state, Action::View, &project)?;
    let definition = state.engine.project(&project)?;
    let record = state
        .engine
        .store()
        .find_release(definition.name(), &release)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_release",
                format!("project {project} has no release {release:?}"),
                Some("release"),
            )
        })?;
    let records = state
        .engine
        .store()
        .evidence(definition.name(), &record.id)
        .await?;
    Ok(Json(
        records.into_iter().map(|r| evidence(r, false)).collect(),
    ))
}

pub async fn add_approval(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params((project, release)): Params<(String, String)>,
    Body(request): Body<api::CreateApproval>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_in_environment(&state, Action::Approve, &project, &request.environment)?;
    state
        .engine
        .approve(
            &project,
            &release,
            &request.environment,
            request.approve,
            request.comment,
            &caller.actor(),
        )
        .await?;
    let explained = state
        .engine
        .explain(&project, &release, &request.environment)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(decision(&request.environment, explained)),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    environment: String,
}

/// Looks at the registry for the release's signatures and attestations now.
pub async fn pull_evidence(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params((project, release)): Params<(String, String)>,
) -> Result<Json<api::Pulled>, ApiError> {
    caller.require_in_project(&state, Action::Promote, &project)?;
    let pulled = state
        .engine
        .pull_attached(&project, &release, &caller.actor())
        .await?;
    Ok(Json(api::Pulled {
        signers: pulled
            .signers
            .into_iter()
            .map(|s| {
                let (key, issuer, subject) = match s.signer {
                    gantry_policy::Signer::Key(name) => (Some(name), None, None),
                    gantry_policy::Signer::Identity { issuer, subject } => {
                        (None, Some(issuer), Some(subject))
                    }
                };
                api::VerifiedSigner {
                    component: s.component,
                    key,
                    issuer,
                    subject,
                    digest: s.digest.to_string(),
                }
            })
            .collect(),
        evidence_added: pulled.evidence_added,
        refused: pulled
            .refused
            .into_iter()
            .map(|r| api::RefusedSignature {
                component: r.component,
                digest: r.digest.to_string(),
                reason: r.reason,
            })
            .collect(),
        unreachable: pulled
            .unreachable
            .into_iter()
            .map(|(component, error)| api::Unreachable { component, error })
            .collect(),
    }))
}

/// Evaluates the gates now and explains them; a read, so nothing is recorded.
pub async fn explain(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params((project, release)): Params<(String, String)>,
    query: Result<Query<DecisionQuery>, QueryRejection>,
) -> Result<Json<api::Decision>, ApiError> {
    caller.require_in_project(&state, Action::View, &project)?;
    let Query(query) = query.map_err(|e| query_error(&e, "environment"))?;
    let explained = state
        .engine
        .explain(&project, &release, &query.environment)
        .await?;
    Ok(Json(decision(&query.environment, explained)))
}

pub fn decision(environment: &str, explained: Explained) -> api::Decision {
    let Explained {
        decision,
        release,
        promotion,
        at,
    } = explained;
    api::Decision {
        id: None,
        release: release.digest().to_string(),
        environment: environment.to_owned(),
        verdict: decision.verdict.to_string(),
        needs: decision.needs(),
        gates: decision
            .gates
            .into_iter()
            .map(|g| api::GateOutcome {
                gate: g.gate,
                state: g.state.to_string(),
                reason: g.reason,
            })
            .collect(),
        warnings: decision.warnings,
        policies: decision
            .policies
            .into_iter()
            .map(|(name, digest)| (name, digest.to_string()))
            .collect(),
        evidence: decision.evidence.iter().map(ToString::to_string).collect(),
        emergency: decision.emergency,
        evidence_use: decision
            .evidence_use
            .into_iter()
            .map(|e| api::EvidenceUse {
                digest: e.digest.to_string(),
                kind: e.kind,
                component: e.component,
                supplied_by: e.supplied_by,
                signed_by: e.signed_by,
                counted: e.counted,
                reason: e.reason,
            })
            .collect(),
        decided_at: Some(at.to_string()),
        promotion,
    }
}

/// Stopping or resuming the line is for admins of where it happens.
fn require_stop(
    state: &AppState,
    caller: &Caller,
    project: &str,
    environment: Option<&str>,
) -> Result<(), ApiError> {
    match environment {
        Some(environment) => {
            caller.require_in_environment(state, Action::Administer, project, environment)
        }
        None => caller.require_in_project(state, Action::Administer, project),
    }
}

pub async fn stop(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params(project): Params<String>,
    Body(request): Body<api::Stop>,
) -> Result<StatusCode, ApiError> {
    require_stop(&state, &caller, &project, request.environment.as_deref())?;
    state
        .engine
        .set_stop(
            &project,
            request.environment.as_deref(),
            true,
            &caller.actor(),
            request.reason,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params(project): Params<String>,
    Body(request): Body<api::Stop>,
) -> Result<StatusCode, ApiError> {
    require_stop(&state, &caller, &project, request.environment.as_deref())?;
    state
        .engine
        .set_stop(
            &project,
            request.environment.as_deref(),
            false,
            &caller.actor(),
            request.reason,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
