//! `POST /api/v1/events/registry`: pushes reported by a registry. Two forms are read:
//! Distribution's notification envelope (`{"events": [...]}`, media type
//! `application/vnd.docker.distribution.events.v1+json`), and a generic
//! `{repository, tag, digest}` for registries that send something else. The sender
//! authenticates with a bearer token like any client (Distribution's endpoint config
//! sends it as a header).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use gantry_api as api;
use gantry_engine::{Push, PushOutcome};
use serde::Deserialize;

use crate::AppState;
use gantry_core::{Action, Scope};

use crate::auth::Caller;
use crate::error::ApiError;

/// Manifests and indexes, OCI and Docker: the pushes that can be released.
const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

#[derive(Deserialize)]
struct Envelope {
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: Target,
    #[serde(default)]
    request: Request,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Target {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    repository: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    tag: String,
}

#[derive(Deserialize, Default)]
struct Request {
    #[serde(default)]
    host: String,
}

pub async fn registry(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<api::PushAnswer>), ApiError> {
    caller.require(Action::Promote, &Scope::Server)?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}"), None))?;
    let (pushes, mut ignored) = if value.get("events").is_some() {
        let envelope: Envelope = serde_json::from_value(value).map_err(|e| {
            ApiError::bad_request(
                format!("not a Distribution notification envelope: {e}"),
                Some("events"),
            )
        })?;
        from_envelope(envelope)?
    } else {
        let push: api::RegistryPush = serde_json::from_value(value).map_err(|e| {
            ApiError::bad_request(
                format!(
                    "expected a Distribution notification envelope {{\"events\": [...]}} or {{\"repository\", \"tag\", \"digest\"}}: {e}"
                ),
                None,
            )
        })?;
        (vec![generic(push)?], 0)
    };
    let mut answer = api::PushAnswer::default();
    for push in pushes {
        let outcomes = state.engine.registry_push(&push, &caller.actor()).await?;
        if outcomes.is_empty() {
            ignored += 1;
        }
        for outcome in outcomes {
            match outcome {
                PushOutcome::Release {
                    project,
                    component,
                    alias,
                    created,
                } => answer.releases.push(api::PushedRelease {
                    project,
                    component,
                    alias,
                    created,
                }),
                PushOutcome::Skipped {
                    project,
                    component,
                    reason,
                } => answer.skipped.push(api::PushSkipped {
                    project,
                    component,
                    reason,
                }),
            }
        }
    }
    answer.ignored = ignored;
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

fn generic(push: api::RegistryPush) -> Result<Push, ApiError> {
    crate::text::check_body(&serde_json::to_value(&push).unwrap_or_default())?;
    if push.tag.trim().is_empty() {
        return Err(ApiError::invalid("the tag is empty", "tag"));
    }
    if push.repository.trim().is_empty() {
        return Err(ApiError::invalid("the repository is empty", "repository"));
    }
    Ok(Push {
        repository: push.repository,
        tag: push.tag,
        digest: push
            .digest
            .parse()
            .map_err(|e: gantry_core::DigestError| ApiError::invalid(e.to_string(), "digest"))?,
    })
}

/// The tagged manifest pushes of an envelope, and how many events were something else.
fn from_envelope(envelope: Envelope) -> Result<(Vec<Push>, usize), ApiError> {
    let mut pushes = Vec::new();
    let mut ignored = 0;
    for event in envelope.events {
        let target = event.target;
        let is_manifest = MANIFEST_TYPES.contains(&target.media_type.as_str());
        if event.action != "push" || target.tag.is_empty() || !is_manifest {
            ignored += 1;
            continue;
        }
        // The host the pusher used; the target URL carries it too.
        let host = if event.request.host.is_empty() {
            url_host(&target.url).unwrap_or_default()
        } else {
            event.request.host
        };
        // A name Gantry would not keep names nothing it watches.
        let unsafe_text = [&host, &target.repository, &target.tag]
            .iter()
            .any(|text| gantry_api::text::first_unsafe(text).is_some());
        if host.is_empty() || target.repository.is_empty() || unsafe_text {
            ignored += 1;
            continue;
        }
        let digest = target
            .digest
            .parse()
            .map_err(|e: gantry_core::DigestError| {
                ApiError::invalid(format!("events[].target.digest: {e}"), "digest")
            })?;
        pushes.push(Push {
            repository: format!("{host}/{}", target.repository),
            tag: target.tag,
            digest,
        });
    }
    Ok((pushes, ignored))
}

fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    Some(rest.split('/').next()?.to_owned())
}
