//! Bearer tokens: random, shown once, stored only as a SHA-256.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use sha2::Digest as _;

use crate::AppState;
use crate::error::ApiError;
use crate::limits::{address_key, too_many};

/// Who a request comes from: the name of the token it carried.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

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
    let name = match token {
        Some(token) => {
            state
                .engine
                .store()
                .token_by_hash(&hash(token.trim()))
                .await?
        }
        None => None,
    };
    let Some(name) = name else {
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
    request.extensions_mut().insert(Caller(name));
    Ok(next.run(request).await)
}
