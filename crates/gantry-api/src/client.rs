//! A typed client for `/api/v1`.

use std::fmt;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    CreateApproval, CreatePromotion, CreateRelease, CreateToken, Decision, ErrorBody, Evidence,
    Grant, Hold, Promotion, Pulled, Release, Rollback, Status, Stop, Token, TokenCreated, WhoAmI,
};

/// Why a call did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No HTTP answer at all: the server is down, or the URL is wrong.
    #[error("cannot reach the Gantry server at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// The server answered with an error.
    #[error("{}{}", .body.message, .body.field.as_ref().map(|f| format!(" (field {f})")).unwrap_or_default())]
    Api { status: u16, body: ErrorBody },
    #[error("the server's answer to {what} is not what this client expects: {detail}")]
    Decode { what: String, detail: String },
}

/// A server URL and a token. `Debug` never shows the token.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// `text` as one path segment: every byte of its UTF-8 outside `A-Za-z0-9-_.:` is
/// percent-encoded (RFC 3986), so `é` is `%C3%A9`.
fn segment(text: &str) -> String {
    use std::fmt::Write as _;
    // Names are checked server-side; keep paths well-formed whatever the caller passes.
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':') {
            encoded.push(char::from(byte));
        } else {
            write!(encoded, "%{byte:02X}").expect("writing to a String");
        }
    }
    encoded
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::builder()
                .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        headers: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        let body = body.map(|b| {
            (
                "application/json",
                serde_json::to_vec(b).expect("wire types serialize"),
            )
        });
        let (status, text) = self.send(method, path, body, headers).await?;
        let text = if status == StatusCode::NO_CONTENT {
            "null"
        } else {
            text.as_str()
        };
        serde_json::from_str(text).map_err(|e| ClientError::Decode {
            what: path.to_owned(),
            detail: e.to_string(),
        })
    }

    /// Sends a request: a success's status and body, or the server's error.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, String), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            detail: error_chain(&e),
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                detail: error_chain(&e),
            })?;
        if !status.is_success() {
            let body = serde_json::from_str::<ErrorBody>(&text).unwrap_or_else(|_| ErrorBody {
                code: "http".to_owned(),
                message: format!("{path}: the server answered {status}"),
                field: None,
            });
            return Err(ClientError::Api {
                status: status.as_u16(),
                body,
            });
        }
        Ok((status, text))
    }

    pub async fn create_release(
        &self,
        project: &str,
        request: &CreateRelease,
    ) -> Result<Release, ClientError> {
        self.call(
            Method::POST,
            &format!("/api/v1/projects/{}/releases", segment(project)),
            Some(request),
            &[],
        )
        .await
    }

    pub async fn release(&self, project: &str, release: &str) -> Result<Release, ClientError> {
        self.call(
            Method::GET,
            &format!(
                "/api/v1/projects/{}/releases/{}",
                segment(project),
                segment(release)
            ),
            None::<&()>,
            &[],
        )
        .await
    }

    pub async fn promote(
        &self,
        project: &str,
        request: &CreatePromotion,
        idempotency_key: &str,
    ) -> Result<Promotion, ClientError> {
        self.call(
            Method::POST,
            &format!("/api/v1/projects/{}/promotions", segment(project)),
            Some(request),
            &[("idempotency-key", idempotency_key)],
        )
        .await
    }

    /// Hands in a report (`kind`: junit, trivy, …) for a release or one component.
    pub async fn add_evidence(
        &self,
        project: &str,
        release: &str,
        kind: &str,
        component: Option<&str>,
        bytes: Vec<u8>,
    ) -> Result<Evidence, ClientError> {
        let mut path = format!(
            "/api/v1/projects/{}/releases/{}/evidence?kind={}",
            segment(project),
            segment(release),
            segment(kind)
        );
        if let Some(component) = component {
            path = format!("{path}&component={}", segment(component));
        }
        let (_, text) = self
            .send(
                Method::POST,
                &path,
                Some(("application/octet-stream", bytes)),
                &[],
            )
            .await?;
        serde_json::from_str(&text).map_err(|e| ClientError::Decode {
            what: path,
            detail: e.to_string(),
        })
    }

    /// Looks at the registry for the release's signatures and attestations now.
    pub async fn pull_evidence(&self, project: &str, release: &str) -> Result<Pulled, ClientError> {
        self.call(
            Method::POST,
            &format!(
                "/api/v1/projects/{}/releases/{}/evidence/pull",
                segment(project),
                segment(release)
            ),
            None::<&()>,
            &[],
        )
        .await
    }

    /// Approves (or, with `approve: false`, rejects) a release for an environment, and
    /// returns the decision that follows.
    pub async fn approve(
        &self,
        project: &str,
        release: &str,
        request: &CreateApproval,
    ) -> Result<Decision, ClientError> {
        self.call(
            Method::POST,
            &format!(
                "/api/v1/projects/{}/releases/{}/approvals",
                segment(project),
                segment(release)
            ),
            Some(request),
            &[],
        )
        .await
    }

    /// Evaluates a release's gates for an environment now, and explains the decision
    /// (a read: nothing is recorded).
    pub async fn decision(
        &self,
        project: &str,
        release: &str,
        environment: &str,
    ) -> Result<Decision, ClientError> {
        self.call(
            Method::GET,
            &format!(
                "/api/v1/projects/{}/releases/{}/decision?environment={}",
                segment(project),
                segment(release),
                segment(environment)
            ),
            None::<&()>,
            &[],
        )
        .await
    }

    /// Stops (`stop: true`) or resumes the line of a project or one environment.
    pub async fn stop(&self, project: &str, stop: bool, request: &Stop) -> Result<(), ClientError> {
        self.call(
            Method::POST,
            &format!(
                "/api/v1/projects/{}/{}",
                segment(project),
                if stop { "stop" } else { "resume" }
            ),
            Some(request),
            &[],
        )
        .await
    }

    pub async fn promotion(&self, project: &str, id: i64) -> Result<Promotion, ClientError> {
        self.call(
            Method::GET,
            &format!("/api/v1/projects/{}/promotions/{id}", segment(project)),
            None::<&()>,
            &[],
        )
        .await
    }

    pub async fn cancel(
        &self,
        project: &str,
        id: i64,
        request: &Hold,
    ) -> Result<Promotion, ClientError> {
        self.call(
            Method::POST,
            &format!(
                "/api/v1/projects/{}/promotions/{id}/cancel",
                segment(project)
            ),
            Some(request),
            &[],
        )
        .await
    }

    pub async fn history(
        &self,
        project: &str,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Promotion>, ClientError> {
        let filter = environment
            .map(|e| format!("&environment={}", segment(e)))
            .unwrap_or_default();
        self.call(
            Method::GET,
            &format!(
                "/api/v1/projects/{}/promotions?limit={limit}{filter}",
                segment(project)
            ),
            None::<&()>,
            &[],
        )
        .await
    }

    pub async fn status(&self, project: &str) -> Result<Status, ClientError> {
        self.call(
            Method::GET,
            &format!("/api/v1/projects/{}/status", segment(project)),
            None::<&()>,
            &[],
        )
        .await
    }

    pub async fn hold(
        &self,
        project: &str,
        environment: &str,
        hold: bool,
        request: &Hold,
    ) -> Result<(), ClientError> {
        let verb = if hold { "hold" } else { "unhold" };
        self.call(
            Method::POST,
            &format!(
                "/api/v1/projects/{}/environments/{}/{verb}",
                segment(project),
                segment(environment)
            ),
            Some(request),
            &[],
        )
        .await
    }

    pub async fn rollback(
        &self,
        project: &str,
        environment: &str,
        request: &Rollback,
    ) -> Result<Promotion, ClientError> {
        self.call(
            Method::POST,
            &format!(
                "/api/v1/projects/{}/environments/{}/rollback",
                segment(project),
                segment(environment)
            ),
            Some(request),
            &[],
        )
        .await
    }

    pub async fn create_token(&self, request: &CreateToken) -> Result<TokenCreated, ClientError> {
        self.call(Method::POST, "/api/v1/tokens", Some(request), &[])
            .await
    }

    pub async fn tokens(&self) -> Result<Vec<Token>, ClientError> {
        self.call(Method::GET, "/api/v1/tokens", None::<&()>, &[])
            .await
    }

    /// Stops a token from working, for good.
    pub async fn revoke_token(&self, name: &str) -> Result<(), ClientError> {
        self.call(
            Method::POST,
            &format!("/api/v1/tokens/{}/revoke", segment(name)),
            None::<&()>,
            &[],
        )
        .await
    }

    /// Who this client's token acts for, and their grants.
    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        self.call(Method::GET, "/api/v1/whoami", None::<&()>, &[])
            .await
    }

    /// Every grant on the server.
    pub async fn grants(&self) -> Result<Vec<Grant>, ClientError> {
        self.call(Method::GET, "/api/v1/grants", None::<&()>, &[])
            .await
    }

    /// Gives a role; the answer is the grant as kept.
    pub async fn grant(&self, grant: &Grant) -> Result<Grant, ClientError> {
        self.call(Method::POST, "/api/v1/grants", Some(grant), &[])
            .await
    }

    /// Takes a grant away.
    pub async fn revoke_grant(&self, grant: &Grant) -> Result<(), ClientError> {
        self.call(Method::POST, "/api/v1/grants/revoke", Some(grant), &[])
            .await
    }

    /// The whole ledger as a JSON Lines export with a freshly signed checkpoint.
    pub async fn ledger_export(&self) -> Result<String, ClientError> {
        Ok(self
            .send(Method::GET, "/api/v1/ledger/export", None, &[])
            .await?
            .1)
    }

    /// The live state a replay of the ledger must give, as of its `ledger_entries`.
    pub async fn ledger_state(&self) -> Result<crate::live::LiveState, ClientError> {
        self.call(Method::GET, "/api/v1/ledger/state", None::<&()>, &[])
            .await
    }

    /// The server's ledger verifier key (`NAME+KEYID+BASE64`).
    pub async fn ledger_key(&self) -> Result<String, ClientError> {
        Ok(self
            .send(Method::GET, "/api/v1/ledger/key", None, &[])
            .await?
            .1
            .trim()
            .to_owned())
    }

    /// Raw ledger entries (JSON values) after a sequence number.
    pub async fn ledger(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, ClientError> {
        self.call(
            Method::GET,
            &format!("/api/v1/ledger?after={after}&limit={limit}"),
            None::<&()>,
            &[],
        )
        .await
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn segments_are_percent_encoded_as_utf8_bytes() {
        for (text, encoded) in [
            ("api-1.2_x:y", "api-1.2_x:y"),
            ("a b", "a%20b"),
            ("a/b?c#d", "a%2Fb%3Fc%23d"),
            ("café", "caf%C3%A9"),
            ("\u{202e}", "%E2%80%AE"),
            ("🚀", "%F0%9F%9A%80"),
        ] {
            assert_eq!(segment(text), encoded, "{text:?}");
        }
    }
}
