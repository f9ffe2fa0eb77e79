//! The HTTP side of registry access: one `Client` per process, one `Session` per
//! registry and side of a copy (each with its own credentials and token), retries.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use std::sync::OnceLock;

use tokio::sync::Mutex;

use crate::auth::{Challenge, Credentials, TokenAnswer, parse_challenge};
use crate::error::{Error, Result, chain};

/// How often and how patiently to retry connection errors, 5xx and 429.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total tries, the first included.
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest `Retry-After` Gantry honours; longer waits are cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff for the given (1-based) failed attempt, capped.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// How long to wait before the next try after the given (1-based) failed attempt:
    /// what the registry asked for with `Retry-After` (cut to `max_retry_after`), else
    /// the backoff. Every retry waits through here, whether it repeats one request or a
    /// whole blob upload.
    pub(crate) fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        retry_after.map_or_else(
            || self.backoff(attempt),
            |asked| asked.min(self.max_retry_after),
        )
    }
}

/// The wait a registry asks for in `Retry-After` (seconds; the HTTP-date form is not read).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Settings for talking to registries.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Hosts (`host` or `host:port`) that may be spoken to over plain HTTP, besides loopback.
    pub insecure_hosts: Vec<String>,
    /// PEM files with extra CA certificates, trusted beside the system roots.
    pub ca_certificates: Vec<PathBuf>,
    pub retry: RetryPolicy,
}

/// Connection pools and the settings for every registry this process talks to.
///
/// Loading the system's root certificates costs more than a whole no-op copy against a
/// loopback registry, so the HTTPS client is built on first use; plain HTTP (loopback,
/// `--insecure`) never pays for it.
#[derive(Debug, Clone)]
pub struct Client {
    plain: reqwest::Client,
    tls: Arc<TlsClient>,
    options: Arc<ClientOptions>,
}

/// The HTTPS client, built once on first use from the system roots and `--ca-cert` files.
#[derive(Debug)]
struct TlsClient {
    certificates: Vec<reqwest::Certificate>,
    client: std::sync::OnceLock<std::result::Result<reqwest::Client, String>>,
}

impl TlsClient {
    fn get(&self) -> Result<&reqwest::Client> {
        self.client
            .get_or_init(|| {
                let mut builder = builder().use_rustls_tls();
                for certificate in &self.certificates {
                    builder = builder.add_root_certificate(certificate.clone());
                }
                builder.build().map_err(|e| chain(&e))
            })
            .as_ref()
            .map_err(|e| Error::Usage(format!("cannot set up HTTPS: {e}")))
    }
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(120))
        .pool_idle_timeout(Duration::from_secs(30))
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Client> {
        // Read the CA files now, so a bad --ca-cert fails before any network traffic.
        let mut certificates = Vec::new();
        for path in &options.ca_certificates {
            let pem = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let parsed = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::Usage(format!(
                    "--ca-cert {}: not a PEM certificate bundle: {e}",
                    path.display()
                ))
            })?;
            if parsed.is_empty() {
                return Err(Error::Usage(format!(
                    "--ca-cert {}: no certificate found in the file",
                    path.display()
                )));
            }
            certificates.extend(parsed);
        }
        let plain = builder()
            .tls_built_in_root_certs(false)
            .build()
            .map_err(|e| Error::Usage(format!("cannot set up HTTP: {}", chain(&e))))?;
        Ok(Client {
            plain,
            tls: Arc::new(TlsClient {
                certificates,
                client: std::sync::OnceLock::new(),
            }),
            options: Arc::new(options),
        })
    }

    fn is_loopback(registry: &str) -> bool {
        let host = host_of(registry);
        host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// Loopback registries and those named as insecure may be spoken to over plain HTTP.
    pub fn allows_plain_http(&self, registry: &str) -> bool {
        let host = host_of(registry);
        Client::is_loopback(registry)
            || self
                .options
                .insecure_hosts
                .iter()
                .any(|insecure| insecure == registry || insecure == host)
    }

    /// The schemes to try, in order. Loopback tries plain HTTP first: it never leaves the
    /// machine and is how local registries usually run. `--insecure` hosts try HTTPS
    /// first, so a registry that has TLS is never spoken to without it.
    fn schemes(&self, registry: &str) -> &'static [&'static str] {
        if Client::is_loopback(registry) {
            &["http", "https"]
        } else if self.allows_plain_http(registry) {
            &["https", "http"]
        } else {
            &["https"]
        }
    }

    /// A session with one registry, authenticating as `credentials` for `scopes`
    /// (`repository:NAME:ACTIONS`).
    pub(crate) fn session(
        &self,
        registry: &str,
        credentials: Option<Credentials>,
        scopes: Vec<String>,
    ) -> Arc<Session> {
        Arc::new(Session {
            client: self.clone(),
            retry: self.options.retry.clone(),
            registry: registry.to_owned(),
            api_host: api_host(registry).to_owned(),
            schemes: self.schemes(registry),
            credentials,
            scopes,
            base: OnceLock::new(),
            auth: Mutex::new(AuthState::default()),
        })
    }

    /// The client for a URL: plain HTTP never loads certificates.
    fn for_url(&self, url: &str) -> Result<&reqwest::Client> {
        if url.starts_with("http://") {
            Ok(&self.plain)
        } else {
            self.tls.get()
        }
    }
}

/// `host:port` → `host`, `[::1]:5000` → `::1`.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Docker Hub's API lives on another host than its name.
fn api_host(registry: &str) -> &str {
    if registry == gantry_core::DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        registry
    }
}

fn join(base: &str, target: &Target<'_>) -> String {
    match target {
        Target::Path(path) => format!("{base}{path}"),
        Target::Url(url) if url.starts_with('/') => format!("{base}{url}"),
        Target::Url(url) => (*url).to_owned(),
    }
}

/// Where a request goes: a path under the registry's base URL, or an absolute URL
/// the registry handed out (an upload location).
pub(crate) enum Target<'a> {
    Path(&'a str),
    Url(&'a str),
}

#[derive(Debug, Default)]
struct AuthState {
    challenge: Option<Challenge>,
    token: Option<(String, Instant)>,
}

/// A request that got no answer: the transport error of the first scheme that failed,
/// and what was tried besides it while the session's scheme was undecided.
#[derive(Debug)]
struct Unanswered {
    error: reqwest::Error,
    also_tried: Vec<String>,
}

impl Unanswered {
    /// `tcp connect error: Connection refused (os error 111) at http://HOST/v2/…; https
    /// was also tried`: the cause, the URL with its scheme, and the other attempts.
    fn describe(&self) -> String {
        let mut causes = Vec::new();
        let mut source = std::error::Error::source(&self.error);
        while let Some(cause) = source {
            let text = cause.to_string();
            // hyper's "client error (Connect)" only says which layer gave up.
            if !text.starts_with("client error (")
                && !causes.iter().any(|c: &String| c.contains(&text))
            {
                causes.push(text);
            }
            source = cause.source();
        }
        let mut text = if causes.is_empty() {
            self.error.to_string()
        } else {
            causes.join(": ")
        };
        if let Some(url) = self.error.url() {
            text = format!("{text} at {url}");
        }
        for other in &self.also_tried {
            text = format!("{text}; {other}");
        }
        text
    }
}

/// One registry, one set of credentials and scopes: the scheme, the challenge and the
/// current token are learned once and reused by every request of this session.
#[derive(Debug)]
pub(crate) struct Session {
    client: Client,
    retry: RetryPolicy,
    pub(crate) registry: String,
    api_host: String,
    schemes: &'static [&'static str],
    credentials: Option<Credentials>,
    scopes: Vec<String>,
    /// `scheme://host`, decided by the first request that got a registry's answer.
    base: OnceLock<String>,
    auth: Mutex<AuthState>,
}

impl Session {
    /// Sends one request. The first request of a session also decides the scheme:
    /// each allowed scheme is tried in order and the first that answers like a registry
    /// is kept, so no separate `/v2/` ping costs a round trip. (No registry answers 400
    /// to a GET or HEAD of its API; TLS servers answer plain HTTP that way, so a 400 on
    /// plain HTTP while undecided means: try HTTPS.) When no scheme answers, the failure
    /// is the first scheme's, naming the others tried after it.
    async fn send_once_deciding(
        &self,
        method: &Method,
        target: &Target<'_>,
        build: &impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<std::result::Result<Response, Unanswered>> {
        if let Some(base) = self.base.get() {
            let url = join(base, target);
            let request = self
                .authorize(build(
                    self.client.for_url(&url)?.request(method.clone(), &url),
                ))
                .await?;
            return Ok(request.send().await.map_err(|error| Unanswered {
                error,
                also_tried: Vec::new(),
            }));
        }
        let mut failed: Option<reqwest::Error> = None;
        let mut others = Vec::new();
        for (position, scheme) in self.schemes.iter().enumerate() {
            let base = format!("{scheme}://{}", self.api_host);
            let url = join(&base, target);
            let request = self
                .authorize(build(
                    self.client.for_url(&url)?.request(method.clone(), &url),
                ))
                .await?;
            let more = position + 1 < self.schemes.len();
            match request.send().await {
                Ok(response)
                    if more
                        && *scheme == "http"
                        && response.status() == StatusCode::BAD_REQUEST =>
                {
                    others.push(format!("{scheme} was also tried and answered 400"));
                }
                Ok(response) => {
                    let _ = self.base.set(base);
                    return Ok(Ok(response));
                }
                Err(error) => {
                    let detail = chain(&error);
                    // A certificate problem means the server does speak TLS: falling back
                    // to plain HTTP would only hide the real cause.
                    if detail.contains("certificate") {
                        return Err(Error::Unreachable {
                            host: self.registry.clone(),
                            detail: format!(
                                "{detail} (to trust a private CA, pass --ca-cert FILE)"
                            ),
                        });
                    }
                    if failed.is_none() {
                        failed = Some(error);
                    } else {
                        others.push(format!("{scheme} was also tried"));
                    }
                }
            }
        }
        // Only a 400 on plain HTTP with a scheme still to try goes on, so the last scheme
        // either answered (and returned) or failed.
        let error = failed.expect("the last scheme tried failed");
        Ok(Err(Unanswered {
            error,
            also_tried: others,
        }))
    }

    async fn learn_challenge(&self, headers: &HeaderMap) {
        let challenge = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(parse_challenge);
        let mut auth = self.auth.lock().await;
        auth.challenge = challenge;
        auth.token = None;
    }

    /// The `Authorization` header for the next request, fetching a token if needed.
    async fn authorization(&self) -> Result<Option<String>> {
        let mut auth = self.auth.lock().await;
        match auth.challenge.clone() {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials.as_ref().map(Credentials::basic_header)),
            Some(Challenge::Bearer { realm, service }) => {
                if let Some((token, expires)) = &auth.token {
                    if Instant::now() < *expires {
                        return Ok(Some(format!("Bearer {token}")));
                    }
                }
                let (token, lifetime) = self.fetch_token(&realm, service.as_deref()).await?;
                // Renew a little early so a long copy never sends an expired token.
                let expires = Instant::now()
                    + lifetime
                        .saturating_sub(Duration::from_secs(10))
                        .max(Duration::from_secs(5));
                auth.token = Some((token.clone(), expires));
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    async fn fetch_token(&self, realm: &str, service: Option<&str>) -> Result<(String, Duration)> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            query.push(("service", service));
        }
        for scope in &self.scopes {
            query.push(("scope", scope));
        }
        let what = format!("token from {realm}");
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            let mut request = self.client.for_url(realm)?.get(realm).query(&query);
            if let Some(credentials) = &self.credentials {
                request = request.header(AUTHORIZATION, credentials.basic_header());
            }
            match request.send().await {
                Ok(response)
                    if retryable_status(response.status()) && attempt < self.retry.attempts =>
                {
                    tokio::time::sleep(self.retry.wait(attempt, retry_after(response.headers())))
                        .await;
                }
                Ok(response) => break response,
                Err(error) if attempt < self.retry.attempts => {
                    tracing::debug!(error = %chain(&error), "token request failed, retrying");
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                }
                Err(error) => {
                    return Err(Error::Unreachable {
                        host: realm.to_owned(),
                        detail: chain(&error),
                    });
                }
            }
        };
        let response = check(response, &what).await?;
        let body = response.bytes().await.map_err(|e| Error::Transfer {
            what: what.clone(),
            detail: chain(&e),
        })?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| Error::Status {
            what: what.clone(),
            status: 200,
            detail: format!(": the answer is not a token: {e}"),
            retry_after: None,
        })?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Status {
                what,
                status: 200,
                detail: ": the answer has no token".to_owned(),
                retry_after: None,
            })?;
        Ok((
            token,
            Duration::from_secs(answer.expires_in.unwrap_or(60).max(60)),
        ))
    }

    /// The URL of a target. Used for upload locations, which a registry hands out only
    /// after an earlier request of this session decided the scheme.
    pub(crate) fn url(&self, target: &Target<'_>) -> String {
        let fallback = format!("{}://{}", self.schemes[0], self.api_host);
        join(self.base.get().unwrap_or(&fallback), target)
    }

    /// Sends a request that can be replayed: retried on connection errors, 5xx and 429
    /// (honouring `Retry-After`), and once more after a 401 with fresh authentication.
    /// Returns whatever status the registry gave last; callers decide what it means.
    pub(crate) async fn send(
        &self,
        method: Method,
        target: Target<'_>,
        what: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        let mut attempt = 0;
        let mut reauthenticated = false;
        loop {
            attempt += 1;
            match self.send_once_deciding(&method, &target, &build).await? {
                Ok(response)
                    if response.status() == StatusCode::UNAUTHORIZED && !reauthenticated =>
                {
                    reauthenticated = true;
                    attempt -= 1;
                    self.learn_challenge(response.headers()).await;
                }
                Ok(response)
                    if retryable_status(response.status()) && attempt < self.retry.attempts =>
                {
                    let wait = self.retry.wait(attempt, retry_after(response.headers()));
                    tracing::debug!(%what, status = response.status().as_u16(), attempt, ?wait, "retrying");
                    tokio::time::sleep(wait).await;
                }
                Ok(response) => return Ok(response),
                Err(unanswered) => {
                    let detail = unanswered.describe();
                    // A name that does not resolve will not resolve on the next try either.
                    let permanent =
                        detail.contains("dns error") || detail.contains("failed to lookup address");
                    if permanent || attempt >= self.retry.attempts {
                        return Err(Error::Unreachable {
                            host: self.registry.clone(),
                            detail: format!("{what}: {detail}"),
                        });
                    }
                    tracing::debug!(%what, error = %detail, attempt, "request failed, retrying");
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                }
            }
        }
    }

    /// Sends a request whose body is a stream and so cannot be replayed here; the caller
    /// retries the whole blob instead.
    pub(crate) async fn send_once(&self, request: RequestBuilder, what: &str) -> Result<Response> {
        let request = self.authorize(request).await?;
        request.send().await.map_err(|error| Error::Transfer {
            what: what.to_owned(),
            detail: chain(&error),
        })
    }

    /// The HTTP client for `url`, for requests built by hand (streamed uploads).
    pub(crate) fn http(&self, url: &str) -> Result<&reqwest::Client> {
        self.client.for_url(url)
    }

    pub(crate) fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder> {
        Ok(match self.authorization().await? {
            Some(value) => request.header(AUTHORIZATION, value),
            None => request,
        })
    }

    /// Forgets the token so the next request fetches a fresh one (after a 401 on a
    /// request that could not be replayed).
    pub(crate) async fn forget_token(&self) {
        self.auth.lock().await.token = None;
    }
}

fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Turns a non-success answer into an error naming `what`, with the registry's own
/// error code and message when it gave one.
pub(crate) async fn check(response: Response, what: &str) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let asked = retryable_status(status)
        .then(|| retry_after(response.headers()))
        .flatten();
    let detail = registry_error_detail(response).await;
    let what = what.to_owned();
    Err(match status {
        StatusCode::UNAUTHORIZED => Error::Unauthorized { what, detail },
        StatusCode::FORBIDDEN => Error::Denied { what, detail },
        StatusCode::NOT_FOUND => Error::NotFound { what, detail },
        _ => Error::Status {
            what,
            status: status.as_u16(),
            detail,
            retry_after: asked,
        },
    })
}

/// `: MANIFEST_UNKNOWN: manifest unknown` from a distribution error body, or "".
async fn registry_error_detail(response: Response) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(body) = response.bytes().await else {
        return String::new();
    };
    if let Ok(errors) = serde_json::from_slice::<Errors>(&body) {
        let parts: Vec<String> = errors
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            })
            .collect();
        if !parts.is_empty() {
            return format!(": {}", parts.join("; "));
        }
    }
    let text = String::from_utf8_lossy(&body);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        String::new()
    } else {
        format!(": {}", line.chars().take(200).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_named_hosts() {
        let client = Client::new(ClientOptions {
            insecure_hosts: vec!["registry.lan".to_owned(), "other.lan:5000".to_owned()],
            ..ClientOptions::default()
        })
        .unwrap();
        for (registry, plain) in [
            ("127.0.0.1:5000", true),
            ("127.8.9.10", true),
            ("localhost:5000", true),
            ("[::1]:5000", true),
            ("registry.lan", true),
            ("registry.lan:443", true),
            ("other.lan:5000", true),
            ("other.lan:6000", false),
            ("registry.example", false),
            ("10.0.0.1:5000", false),
            ("docker.io", false),
        ] {
            assert_eq!(client.allows_plain_http(registry), plain, "{registry}");
        }
    }

    #[test]
    fn backoff_is_bounded() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1), Duration::from_millis(200));
        assert_eq!(policy.backoff(3), Duration::from_millis(800));
        assert_eq!(policy.backoff(30), policy.max_backoff);
    }

    #[test]
    fn retry_after_overrides_the_backoff_up_to_its_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.wait(1, None), Duration::from_millis(200));
        assert_eq!(
            policy.wait(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            policy.wait(1, Some(Duration::from_secs(3600))),
            policy.max_retry_after
        );
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, " 2 ".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn unreadable_ca_files_are_named() {
        let error = Client::new(ClientOptions {
            ca_certificates: vec!["/nonexistent/ca.pem".into()],
            ..ClientOptions::default()
        })
        .unwrap_err();
        assert!(
            error.to_string().starts_with("/nonexistent/ca.pem:"),
            "{error}"
        );
    }
}
