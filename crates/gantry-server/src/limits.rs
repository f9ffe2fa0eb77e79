//! What keeps one client from hurting the others, and what ties a log line to a
//! request: a request id on every request (taken from `X-Request-Id` when the client
//! sends a sensible one, made up otherwise, and echoed in the response), and a rate
//! limit per caller (a token bucket; 429 with `Retry-After` when it is empty).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

pub const REQUEST_ID: &str = "x-request-id";

/// Buckets not touched for this long are forgotten.
const IDLE: Duration = Duration::from_secs(600);

/// How many requests a caller may make: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl Default for RateLimit {
    /// Generous for CI fleets behind one token, tight enough to stop a runaway loop.
    fn default() -> Self {
        RateLimit {
            per_second: 50.0,
            burst: 100.0,
        }
    }
}

/// Token buckets by caller.
#[derive(Debug)]
pub struct RateLimiter {
    limit: Option<RateLimit>,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `None` turns rate limiting off.
    pub fn new(limit: Option<RateLimit>) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket; when it is empty, how long until it
    /// holds one again.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("lock");
        if buckets.len() > 10_000 {
            buckets.retain(|_, (_, at)| now.duration_since(*at) < IDLE);
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((limit.burst, now));
        let refilled =
            (*tokens + now.duration_since(*at).as_secs_f64() * limit.per_second).min(limit.burst);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            Err(Duration::from_secs_f64((1.0 - refilled) / limit.per_second))
        }
    }
}

/// Gives every request an id, logs it with the outcome and echoes it to the client.
pub async fn request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sensible_id(v))
        .map_or_else(new_id, str::to_owned);
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path()
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "answered"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Limits each caller's rate; runs after authentication, so the caller is known. A
/// request with no caller (none reach here today) is limited by its address. The
/// router leaves registry events out of this layer.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let key = match request.extensions().get::<Caller>() {
        Some(caller) => format!("caller:{}", caller.principal),
        None => address_key(&state, &request),
    };
    match state.limiter.take(&key) {
        Ok(()) => next.run(request).await,
        Err(wait) => too_many(wait),
    }
}

/// The key for requests whose caller is not known: the client's address (behind
/// trusted proxies, the one they forwarded for).
pub(crate) fn address_key(state: &AppState, request: &Request) -> String {
    state.trusted_proxies.client_of(request).map_or_else(
        || "address:unknown".to_owned(),
        |ip| format!("address:{ip}"),
    )
}

pub(crate) fn too_many(wait: Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; try again in {seconds} s"),
        None,
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("{seconds}")) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// 1 to 128 characters of letters, digits, `-`, `_`, `.` and `:`: what proxies and
/// tracing systems send, and nothing that could forge a log line.
fn is_sensible_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn new_id() -> String {
    let mut bytes = [0_u8; 12];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_rate_and_hold_the_burst() {
        let limiter = RateLimiter::new(Some(RateLimit {
            per_second: 10.0,
            burst: 3.0,
        }));
        for _ in 0..3 {
            assert!(limiter.take("a").is_ok());
        }
        let wait = limiter.take("a").unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(
            limiter.take("b").is_ok(),
            "callers have buckets of their own"
        );
        std::thread::sleep(Duration::from_millis(120));
        assert!(limiter.take("a").is_ok());
        assert!(RateLimiter::new(None).take("a").is_ok());
    }

    #[test]
    fn only_sensible_request_ids_are_kept() {
        assert!(is_sensible_id("3f2a-9c.1:x_y"));
        assert!(!is_sensible_id(""));
        assert!(!is_sensible_id("a b"));
        assert!(!is_sensible_id("line\nbreak"));
        assert!(!is_sensible_id(&"a".repeat(129)));
        assert_eq!(new_id().len(), 24);
    }
}
