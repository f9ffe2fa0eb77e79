//! Who is calling, and whether they may: bearer tokens (random, shown once, stored only
//! as a SHA-256) name a principal; the principal's grants decide each request.

use std::fmt::Write as _;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use gantry_core::{Action, Grant, Name, Principal, Scope};
use sha2::Digest as _;

use axum::http::StatusCode;

use crate::AppState;
use crate::error::ApiError;
use crate::limits::{address_key, too_many};
use crate::oidc;

/// Who a request comes from, and what they may do.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    grants: Vec<Grant>,
}

impl Caller {
    /// The name changes are recorded under.
    pub fn actor(&self) -> String {
        self.principal.to_string()
    }

    /// Passes when the caller's grants allow `action` at `place`; otherwise a 403 that
    /// says which role would do, and where.
    pub fn require(&self, action: Action, place: &Scope) -> Result<(), ApiError> {
        if gantry_core::allowed(&self.grants, action, place) {
            return Ok(());
        }
        let role = action.least_role();
        let mut how = format!("gantry access grant {role} --to {}", self.principal);
        if let Some(project) = place.project() {
            let _ = write!(how, " --project {project}");
        }
        if let Some(environment) = place.environment() {
            let _ = write!(how, " --environment {environment}");
        }
        Err(ApiError::forbidden(format!(
            "{} may not do this in {place}: it needs the {role} role there (an admin can give it: {how})",
            self.principal
        )))
    }

    /// [`Caller::require`] at a project the server knows (404 for one it does not).
    pub fn require_in_project(
        &self,
        state: &AppState,
        action: Action,
        project: &str,
    ) -> Result<(), ApiError> {
        let project = state.engine.project(project)?;
        self.require(action, &Scope::Project(project.name().clone()))
    }

    /// [`Caller::require`] at an environment of a project (404 for either unknown).
    pub fn require_in_environment(
        &self,
        state: &AppState,
        action: Action,
        project: &str,
        environment: &str,
    ) -> Result<(), ApiError> {
        let project = state.engine.project(project)?;
        let environment = gantry_engine::Engine::environment_of(project, environment)?;
        self.require(
            action,
            &Scope::Environment(project.name().clone(), environment.name.clone()),
        )
    }
}

/// The caller behind a token, with the grants they hold now.
async fn caller(state: &AppState, principal: Principal) -> Result<Caller, ApiError> {
    let grants = state
        .engine
        .store()
        .grants(Some(&principal))
        .await?
        .into_iter()
        .map(|record| record.grant)
        .collect();
    Ok(Caller { principal, grants })
}

/// A principal's name as the API takes it (`alice`, `service:ci`), or a 422 naming `field`.
pub fn principal(text: &str, field: &str) -> Result<Principal, ApiError> {
    text.parse()
        .map_err(|e: gantry_core::AccessError| ApiError::invalid(e.to_string(), field))
}

/// A name as the API takes it, or a 422 naming `field`.
pub fn name(text: &str, field: &str) -> Result<Name, ApiError> {
    text.parse()
        .map_err(|e: gantry_core::NameError| ApiError::invalid(format!("{field}: {e}"), field))
}

/// A new token: `gantry_` and 32 random bytes in hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    format!("gantry_{}", hex::encode(bytes))
}

pub fn hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// A 401, counted against the address it comes from so guessing tokens is as slow as the
/// rate limit.
fn refuse(state: &AppState, request: &Request, reason: &str) -> Result<Response, ApiError> {
    if let Err(wait) = state.limiter.take(&address_key(state, request)) {
        return Ok(too_many(wait));
    }
    Err(ApiError::unauthorized(reason))
}

/// Lets a request through only with a known bearer token, and tells handlers who it is.
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let principal = match (token.map(str::trim), &state.oidc) {
        (Some(token), Some(verifier)) if oidc::Verifier::looks_like_jwt(token) => {
            match verifier.verify(token).await {
                Ok(identity) => {
                    tracing::info!(
                        issuer = %identity.issuer,
                        subject = %identity.subject,
                        account = %identity.service_account,
                        "an OIDC ID token"
                    );
                    Some(Principal::Service(identity.service_account))
                }
                // The issuer's keys could not be had: the caller is not to blame.
                Err(error @ oidc::OidcError::JwksFetch { .. }) => {
                    tracing::warn!(%error, "cannot check an OIDC ID token");
                    return Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "oidc_unavailable",
                        "the ID token's issuer keys cannot be fetched now; try again later",
                        None,
                    ));
                }
                Err(error) => return refuse(&state, &request, &error.to_string()),
            }
        }
        (Some(token), _) => state
            .engine
            .store()
            .token_by_hash(&hash(token))
            .await?
            .map(|found| found.principal),
        (None, _) => None,
    };
    let Some(principal) = principal else {
        return refuse(
            &state,
            &request,
            if token.is_some() {
                "the token is not valid"
            } else {
                "send a token: Authorization: Bearer <token> (gantry token create makes one)"
            },
        );
    };
    let caller = caller(&state, principal).await?;
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}
