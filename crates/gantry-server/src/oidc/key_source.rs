//! Where an issuer's keys come from: a JWK set file read once at start-up, or a URL
//! fetched on first use and kept for a while.
//!
//! A URL set is fetched lazily, by the request that needs it, and never by a background
//! task. A fetch is attempted when the cached set is stale, or when a token names a key
//! the set lacks (the issuer may have rotated keys), and in either case at most once
//! per `retry_after`: a flood of tokens with made-up key ids costs the issuer one
//! request per interval, not one per token. When a refresh fails the stale set stays in
//! use, so a short outage at the issuer does not lock CI out.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, RwLock};

use super::OidcError;
use super::jwks::{Jwk, Jwks};
use super::jwt::Algorithm;

/// A JWK set larger than this is refused; real ones are a few KiB.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// How long fetched keys are kept and how often the issuer may be asked again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CachePolicy {
    /// A fetched set is used without asking again for this long.
    pub(crate) fresh_for: Duration,
    /// At most one fetch per this interval, whatever the reason.
    pub(crate) retry_after: Duration,
    /// A fetch that has not finished after this long fails.
    pub(crate) fetch_timeout: Duration,
}

impl Default for CachePolicy {
    fn default() -> CachePolicy {
        CachePolicy {
            fresh_for: Duration::from_secs(10 * 60),
            retry_after: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// An issuer's keys.
pub(crate) enum KeySource {
    File { path: PathBuf, jwks: Jwks },
    Url(Box<RemoteJwks>),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File { path, .. } => f.debug_tuple("File").field(path).finish(),
            KeySource::Url(remote) => f.debug_tuple("Url").field(&remote.url.as_str()).finish(),
        }
    }
}

impl KeySource {
    /// Reads a JWK set file now; it must hold at least one usable key.
    pub(crate) fn file(path: &Path) -> Result<KeySource, String> {
        let document = std::fs::read(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let jwks =
            Jwks::parse(&document).map_err(|error| format!("{}: {error}", path.display()))?;
        if jwks.is_empty() {
            return Err(format!("{}: {}", path.display(), jwks.why_empty()));
        }
        Ok(KeySource::File {
            path: path.to_owned(),
            jwks,
        })
    }

    /// A set to fetch from `url` when first needed.
    pub(crate) fn url(url: reqwest::Url, policy: CachePolicy) -> Result<KeySource, String> {
        let mut client = reqwest::Client::builder()
            .timeout(policy.fetch_timeout)
            .connect_timeout(policy.fetch_timeout)
            // An issuer publishes its keys at a fixed address; following redirects
            // would only widen what can hand Gantry keys.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")));
        if is_loopback(&url) {
            client = client.no_proxy();
        }
        let client = client
            .build()
            .map_err(|error| format!("cannot set up an HTTP client: {error}"))?;
        Ok(KeySource::Url(Box::new(RemoteJwks {
            url,
            client,
            policy,
            cache: RwLock::new(Cache::default()),
            fetching: Mutex::new(()),
        })))
    }

    /// The key that verifies a token from `issuer` with this `kid` and `alg`.
    pub(crate) async fn key(
        &self,
        issuer: &str,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<Jwk, OidcError> {
        match self {
            KeySource::File { jwks, .. } => jwks
                .choose(kid, algorithm)
                .cloned()
                .map_err(|error| OidcError::from_key_choice(error, issuer, kid, algorithm)),
            KeySource::Url(remote) => remote.key(issuer, kid, algorithm).await,
        }
    }
}

/// Whether a URL points at this machine, where plain HTTP is allowed (for tests).
pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback()),
        None => false,
    }
}

/// A JWK set behind a URL, with what is known of it.
pub(crate) struct RemoteJwks {
    url: reqwest::Url,
    client: reqwest::Client,
    policy: CachePolicy,
    cache: RwLock<Cache>,
    /// Held while fetching, so that concurrent requests wait for one fetch instead of
    /// each starting their own. Readers of a fresh cache never wait for it.
    fetching: Mutex<()>,
}

#[derive(Default)]
struct Cache {
    jwks: Option<Arc<Jwks>>,
    /// When the set in `jwks` was fetched.
    fetched_at: Option<Instant>,
    /// When the last fetch, successful or not, ended.
    attempted_at: Option<Instant>,
    /// Why the last fetch failed, if it did.
    last_error: Option<String>,
    /// How many fetches have ended, so a request can tell whether another did one
    /// while it waited.
    attempts: u64,
}

impl RemoteJwks {
    async fn key(
        &self,
        issuer: &str,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<Jwk, OidcError> {
        let (jwks, fresh, attempts) = {
            let cache = self.cache.read().await;
            let fresh = cache
                .fetched_at
                .is_some_and(|at| at.elapsed() < self.policy.fresh_for);
            (cache.jwks.clone(), fresh, cache.attempts)
        };
        if let (Some(jwks), true) = (&jwks, fresh) {
            match jwks.choose(kid, algorithm) {
                Ok(key) => return Ok(key.clone()),
                Err(error) if !error.might_be_newer() => {
                    return Err(OidcError::from_key_choice(error, issuer, kid, algorithm));
                }
                Err(_) => {}
            }
        }

        let fetch_error = self.refresh(attempts).await;
        let cache = self.cache.read().await;
        let Some(jwks) = &cache.jwks else {
            return Err(OidcError::JwksFetch {
                url: self.url.to_string(),
                reason: cache
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the key set has not been fetched".to_owned()),
            });
        };
        jwks.choose(kid, algorithm).cloned().map_err(|error| {
            match fetch_error {
                // The key may well be in the set the issuer serves now; say that it
                // could not be fetched rather than that the key is unknown.
                Some(reason) if error.might_be_newer() => OidcError::JwksFetch {
                    url: self.url.to_string(),
                    reason,
                },
                _ => OidcError::from_key_choice(error, issuer, kid, algorithm),
            }
        })
    }

    /// Fetches the set unless another request fetched it while this one waited, or
    /// the last fetch ended less than `retry_after` ago. Returns why this call's
    /// fetch failed, if it made one that did.
    async fn refresh(&self, attempts_seen: u64) -> Option<String> {
        let _fetching = self.fetching.lock().await;
        {
            let cache = self.cache.read().await;
            if cache.attempts != attempts_seen {
                return None;
            }
            if cache
                .attempted_at
                .is_some_and(|at| at.elapsed() < self.policy.retry_after)
            {
                return None;
            }
        }
        let outcome = self.fetch().await;
        let mut cache = self.cache.write().await;
        cache.attempts += 1;
        cache.attempted_at = Some(Instant::now());
        match outcome {
            Ok(jwks) => {
                cache.jwks = Some(Arc::new(jwks));
                cache.fetched_at = cache.attempted_at;
                cache.last_error = None;
                None
            }
            Err(reason) => {
                cache.last_error = Some(reason.clone());
                Some(reason)
            }
        }
    }

    async fn fetch(&self) -> Result<Jwks, String> {
        let mut response = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| self.describe(error))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the server answered {status}"));
        }
        let mut document = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| self.describe(error))?
        {
            if document.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err("the key set is larger than 1 MiB".to_owned());
            }
            document.extend_from_slice(&chunk);
        }
        let jwks = Jwks::parse(&document)?;
        if jwks.is_empty() {
            return Err(jwks.why_empty());
        }
        Ok(jwks)
    }

    /// A reqwest error in words, with its causes and without the URL, which the
    /// caller names once.
    fn describe(&self, error: reqwest::Error) -> String {
        if error.is_timeout() {
            return format!(
                "no answer within {} ms",
                self.policy.fetch_timeout.as_millis()
            );
        }
        let error = error.without_url();
        let mut text = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}
