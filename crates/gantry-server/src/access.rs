//! Routes for access: tokens, grants, and `whoami`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use gantry_api as api;
use gantry_core::{Action, Grant, Principal, Scope};
use gantry_store::store::{Audit, GrantRecord};

use crate::AppState;
use crate::auth::{Caller, hash, name, new_token, principal};
use crate::error::ApiError;
use crate::routes::{Body, Params};

/// The longest lifetime a token may be given.
const MAX_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(100 * 366 * 86_400);

pub async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(request): Body<api::CreateToken>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Action::Administer, &Scope::Server)?;
    if request.name.parse::<gantry_core::Name>().is_err() {
        return Err(ApiError::bad_request(
            "a token name is 1 to 63 characters of a-z, 0-9 and '-'",
            Some("name"),
        ));
    }
    let owner = principal(
        request.principal.as_deref().unwrap_or(&request.name),
        "principal",
    )?;
    let lifetime = match &request.expires_in {
        None => None,
        Some(text) => {
            let duration = gantry_engine::project_file::gates::duration(text)
                .map_err(|reason| ApiError::invalid(reason, "expires_in"))?;
            let lifetime = std::time::Duration::try_from(duration)
                .map_err(|e| ApiError::invalid(e.to_string(), "expires_in"))?;
            if lifetime > MAX_TOKEN_LIFETIME {
                return Err(ApiError::invalid(
                    format!(
                        "expires_in {text:?} is more than 100 years; leave it out for a token that works until revoked"
                    ),
                    "expires_in",
                ));
            }
            Some(lifetime)
        }
    };
    let token = new_token();
    state
        .engine
        .store()
        .create_token(
            &request.name,
            &owner,
            &hash(&token),
            lifetime,
            &Audit::by(caller.actor()),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(api::TokenCreated {
            name: request.name,
            token,
        }),
    ))
}

pub async fn tokens(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<api::Token>>, ApiError> {
    caller.require(Action::Administer, &Scope::Server)?;
    let tokens = state.engine.store().tokens().await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| api::Token {
                name: t.name,
                principal: t.principal.to_string(),
                created_at: t.created_at,
                created_by: t.created_by,
                expires_at: t.expires_at,
                revoked_at: t.revoked_at,
                revoked_by: t.revoked_by,
            })
            .collect(),
    ))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Params(name): Params<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Action::Administer, &Scope::Server)?;
    state
        .engine
        .store()
        .revoke_token(&name, &Audit::by(caller.actor()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn wire(record: GrantRecord) -> api::Grant {
    let GrantRecord {
        grant,
        granted_by,
        granted_at,
    } = record;
    api::Grant {
        principal: grant.principal.to_string(),
        role: grant.role.to_string(),
        project: grant.scope.project().map(ToString::to_string),
        environment: grant.scope.environment().map(ToString::to_string),
        granted_by: Some(granted_by),
        granted_at: Some(granted_at),
    }
}

/// A grant as asked for, checked against the projects and environments the server
/// knows; each mistake names its field.
fn grant(state: &AppState, request: &api::Grant) -> Result<Grant, ApiError> {
    let principal: Principal = principal(&request.principal, "principal")?;
    let role = request
        .role
        .parse()
        .map_err(|e: gantry_core::AccessError| ApiError::invalid(e.to_string(), "role"))?;
    let scope = match (&request.project, &request.environment) {
        (None, None) => Scope::Server,
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "an environment needs its project",
                "project",
            ));
        }
        (Some(project), environment) => {
            name(project, "project")?;
            let project = state.engine.project(project)?;
            match environment {
                None => Scope::Project(project.name().clone()),
                Some(environment) => {
                    let environment = gantry_engine::Engine::environment_of(project, environment)?;
                    Scope::Environment(project.name().clone(), environment.name.clone())
                }
            }
        }
    };
    Ok(Grant {
        principal,
        role,
        scope,
    })
}

/// Gives a role. Admins of a project (or environment) may give roles within it.
pub async fn create_grant(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(request): Body<api::Grant>,
) -> Result<impl IntoResponse, ApiError> {
    let grant = grant(&state, &request)?;
    caller.require(Action::Administer, &grant.scope)?;
    let (kept, created) = state
        .engine
        .store()
        .grant(&grant, &Audit::by(caller.actor()))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(wire(kept))))
}

pub async fn revoke_grant(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(request): Body<api::Grant>,
) -> Result<StatusCode, ApiError> {
    let grant = grant(&state, &request)?;
    caller.require(Action::Administer, &grant.scope)?;
    state
        .engine
        .store()
        .revoke_grant(&grant, &Audit::by(caller.actor()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn grants(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<api::Grant>>, ApiError> {
    caller.require(Action::Administer, &Scope::Server)?;
    let grants = state.engine.store().grants(None).await?;
    Ok(Json(grants.into_iter().map(wire).collect()))
}

/// Anyone with a working token may ask who they are.
pub async fn whoami(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<api::WhoAmI>, ApiError> {
    let grants = state.engine.store().grants(Some(&caller.principal)).await?;
    Ok(Json(api::WhoAmI {
        principal: caller.actor(),
        grants: grants.into_iter().map(wire).collect(),
    }))
}
