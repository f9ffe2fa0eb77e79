//! Who is calling, and whether they may: bearer tokens (random, shown once, stored only
//! as a SHA-256) name a principal; the principal's grants decide each request.

use std::fmt::Write as _;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use gantry_core::{Action, Grant, Name, Principal, Scope};
use sha2::Digest as _;

use crate::AppState;
use crate::error::ApiError;
use crate::limits::{address_key, too_many};

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
    let found = match token {
        Some(token) => {
            state
                .engine
                .store()
                .token_by_hash(&hash(token.trim()))
                .await?
        }
        None => None,
    };
    let Some(found) = found else {
        // Failed attempts count against the address they come from, so guessing
        // tokens is as slow as the rate limit.
        if let Err(wait) = state.limiter.take(&address_key(&request)) {
            return Ok(too_many(wait));
        }
        return Err(ApiError::unauthorized(if token.is_some() {
            "the token is not valid"
        } else {
            "send a token: Authorization: Bearer <token> (gantry token create makes one)"
        }));
    };
    let caller = caller(&state, found.principal).await?;
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}
