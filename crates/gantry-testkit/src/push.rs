//! An independent distribution-API client to seed registries and read them back.
//!
//! It shares no code with Gantry, so a bug in Gantry's client cannot hide itself in tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};

use crate::image::{Blob, Image, Index, media_types};
use crate::registry::{Registry, tls_client};

/// Pushes blobs and manifests with monolithic uploads and reads manifests back.
///
/// It answers `401` challenges: `Basic` with its credentials, `Bearer` by fetching a token for
/// `repository:REPO:pull,push` from the realm (with its credentials, if any) and caching it per
/// repository. Panics with the status and body on any unexpected response.
#[derive(Debug, Clone)]
pub struct Pusher {
    client: reqwest::Client,
    base: Url,
    credentials: Option<(String, String)>,
    auth: Arc<Mutex<AuthState>>,
}

#[derive(Debug, Default)]
struct AuthState {
    /// The registry asked for Basic auth once; send credentials from now on.
    basic: bool,
    /// Bearer tokens by repository.
    tokens: HashMap<String, String>,
}

impl Pusher {
    /// A pusher for `registry`, with its credentials; over HTTPS, trusting its CA, if it is a
    /// [TLS registry](Registry::start_tls).
    pub fn new(registry: &Registry) -> Pusher {
        let credentials = Some((registry.username(), registry.password()));
        match registry.ca_cert_path() {
            None => Pusher::for_host(&registry.host(), credentials),
            Some(ca_cert_path) => Pusher {
                client: tls_client(ca_cert_path),
                base: Url::parse(&format!("https://{}/", registry.host())).expect("a valid host"),
                credentials: credentials
                    .map(|(user, password)| (user.to_owned(), password.to_owned())),
                auth: Arc::default(),
            },
        }
    }

    /// A pusher for `host` (`HOST:PORT`, plain HTTP), e.g. a [`FaultProxy`](crate::FaultProxy).
    pub fn for_host(host: &str, credentials: Option<(&str, &str)>) -> Pusher {
        Pusher {
            client: reqwest::Client::new(),
            base: Url::parse(&format!("http://{host}/")).expect("a valid host"),
            credentials: credentials.map(|(user, password)| (user.to_owned(), password.to_owned())),
            auth: Arc::default(),
        }
    }

    /// Uploads `blob` to `repo` (POST, then a monolithic PUT `?digest=`), unless a HEAD shows
    /// that it is there already.
    pub async fn push_blob(&self, repo: &str, blob: &Blob) {
        if self.blob_exists(repo, &blob.digest).await {
            return;
        }
        let start = self.url(&format!("v2/{repo}/blobs/uploads/"));
        let response = self.send(repo, Method::POST, &start, &[], None).await;
        let (status, headers, body) = read(response).await;
        assert!(
            status == StatusCode::ACCEPTED,
            "POST {start}: {status}: {body}"
        );
        let location = headers
            .get("location")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("POST {start}: no Location header"));
        let mut upload = self
            .base
            .join(location)
            .unwrap_or_else(|error| panic!("POST {start}: bad Location {location}: {error}"));
        upload.query_pairs_mut().append_pair("digest", &blob.digest);
        let response = self
            .send(
                repo,
                Method::PUT,
                &upload,
                &[(CONTENT_TYPE, "application/octet-stream")],
                Some(blob.data.clone()),
            )
            .await;
        let (status, _, body) = read(response).await;
        assert!(
            status == StatusCode::CREATED,
            "PUT {upload} ({}): {status}: {body}",
            blob.digest
        );
    }

    /// PUTs a manifest under `reference` (a tag or a digest) and returns the
    /// `Docker-Content-Digest` the registry answers.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"));
        let response = self
            .send(
                repo,
                Method::PUT,
                &url,
                &[(CONTENT_TYPE, media_type)],
                Some(Bytes::copy_from_slice(bytes)),
            )
            .await;
        let (status, headers, body) = read(response).await;
        assert!(status == StatusCode::CREATED, "PUT {url}: {status}: {body}");
        headers
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("PUT {url}: no Docker-Content-Digest header"))
            .to_owned()
    }

    /// Pushes the image's blobs, then its manifest under `tag`, or under its digest if `None`.
    pub async fn push_image(&self, repo: &str, tag: Option<&str>, image: &Image) {
        for blob in image.blobs() {
            self.push_blob(repo, blob).await;
        }
        let digest = self
            .push_manifest(
                repo,
                tag.unwrap_or(&image.digest),
                &image.media_type,
                &image.manifest,
            )
            .await;
        assert_eq!(
            digest, image.digest,
            "the registry computed another manifest digest"
        );
    }

    /// Pushes every image by digest, then the index under `tag`, or under its digest if `None`.
    pub async fn push_index(&self, repo: &str, tag: Option<&str>, index: &Index) {
        for image in &index.images {
            self.push_image(repo, None, image).await;
        }
        let digest = self
            .push_manifest(
                repo,
                tag.unwrap_or(&index.digest),
                &index.media_type,
                &index.manifest,
            )
            .await;
        assert_eq!(
            digest, index.digest,
            "the registry computed another index digest"
        );
    }

    /// GETs a manifest, accepting the four manifest media types: its `Content-Type` and bytes,
    /// or `None` on 404.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Option<(String, Vec<u8>)> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"));
        let accept = media_types::ALL_MANIFESTS.join(", ");
        let response = self
            .send(repo, Method::GET, &url, &[(ACCEPT, accept.as_str())], None)
            .await;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return None;
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response
            .bytes()
            .await
            .unwrap_or_else(|error| panic!("GET {url}: reading the body: {error}"));
        assert!(
            status == StatusCode::OK,
            "GET {url}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        Some((content_type, body.to_vec()))
    }

    /// Whether `repo` holds the blob (HEAD: 200 or 404).
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> bool {
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"));
        let response = self.send(repo, Method::HEAD, &url, &[], None).await;
        match response.status() {
            StatusCode::OK => true,
            StatusCode::NOT_FOUND => false,
            status => panic!("HEAD {url}: {status}"),
        }
    }

    fn url(&self, path: &str) -> Url {
        self.base
            .join(path)
            .unwrap_or_else(|error| panic!("bad URL path {path}: {error}"))
    }

    /// Sends a request, answering one `401` challenge and retrying once.
    async fn send(
        &self,
        repo: &str,
        method: Method,
        url: &Url,
        headers: &[(reqwest::header::HeaderName, &str)],
        body: Option<Bytes>,
    ) -> reqwest::Response {
        let mut answered_challenge = false;
        loop {
            let mut request = self.client.request(method.clone(), url.clone());
            for (name, value) in headers {
                request = request.header(name, *value);
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            request = self.authorize(request, repo);
            let response = request
                .send()
                .await
                .unwrap_or_else(|error| panic!("{method} {url}: {error}"));
            if response.status() != StatusCode::UNAUTHORIZED || answered_challenge {
                return response;
            }
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_else(|| panic!("{method} {url}: 401 without WWW-Authenticate"))
                .to_owned();
            self.answer_challenge(repo, &challenge).await;
            answered_challenge = true;
        }
    }

    fn authorize(&self, request: reqwest::RequestBuilder, repo: &str) -> reqwest::RequestBuilder {
        let auth = self.auth.lock().expect("auth lock");
        if let Some(token) = auth.tokens.get(repo) {
            request.bearer_auth(token)
        } else if let (true, Some((user, password))) = (auth.basic, &self.credentials) {
            request.basic_auth(user, Some(password))
        } else {
            request
        }
    }

    async fn answer_challenge(&self, repo: &str, challenge: &str) {
        let (scheme, parameters) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            self.auth.lock().expect("auth lock").basic = true;
            return;
        }
        assert!(
            scheme.eq_ignore_ascii_case("bearer"),
            "unsupported challenge: {challenge}"
        );
        let parameters = challenge_parameters(parameters);
        let realm = parameters
            .get("realm")
            .unwrap_or_else(|| panic!("Bearer challenge without realm: {challenge}"));
        let mut url =
            Url::parse(realm).unwrap_or_else(|error| panic!("bad realm {realm}: {error}"));
        if let Some(service) = parameters.get("service") {
            url.query_pairs_mut().append_pair("service", service);
        }
        url.query_pairs_mut()
            .append_pair("scope", &format!("repository:{repo}:pull,push"));
        let mut request = self.client.get(url.clone());
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {url}: {error}"));
        let (status, _, body) = read(response).await;
        assert!(status == StatusCode::OK, "GET {url}: {status}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("GET {url}: not JSON ({error}): {body}"));
        let token = answer["token"]
            .as_str()
            .or_else(|| answer["access_token"].as_str())
            .unwrap_or_else(|| panic!("GET {url}: no token in {body}"));
        self.auth
            .lock()
            .expect("auth lock")
            .tokens
            .insert(repo.to_owned(), token.to_owned());
    }
}

/// The `key="value"` pairs of a challenge (values may contain commas inside quotes).
fn challenge_parameters(text: &str) -> HashMap<String, String> {
    let mut parameters = HashMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        parameters.insert(key, value.to_owned());
        rest = remaining.trim_start().trim_start_matches(',');
    }
    parameters
}

async fn read(response: reqwest::Response) -> (StatusCode, HeaderMap, String) {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    (status, headers, body)
}

#[cfg(test)]
mod tests {
    use super::challenge_parameters;

    #[test]
    fn parses_challenge_parameters() {
        let parameters = challenge_parameters(
            r#"realm="http://127.0.0.1:1/token",service="svc",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(parameters["realm"], "http://127.0.0.1:1/token");
        assert_eq!(parameters["service"], "svc");
        assert_eq!(parameters["scope"], "repository:a/b:pull,push");
    }
}
