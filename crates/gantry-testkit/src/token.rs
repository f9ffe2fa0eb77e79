//! An in-process token issuer for Distribution's `token` auth.
//!
//! Distribution 2.8 accepts ES256 JWTs whose header carries the signing certificate in `x5c`
//! and checks that certificate against its `rootcertbundle`. Each issuer generates its own
//! P-256 key and self-signed certificate, which serves as the whole chain.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::server::{bind_loopback, spawn_http1};
use crate::time::{rfc3339, unix_now};

/// How long issued tokens are valid, in seconds.
const TOKEN_LIFETIME: u64 = 300;

/// A running token issuer; dropping it stops the server.
#[derive(Debug)]
pub(crate) struct TokenIssuer {
    realm: String,
    certificate_pem: String,
    state: Arc<IssuerState>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct IssuerState {
    service: String,
    issuer: String,
    username: String,
    password: String,
    key: EcdsaKeyPair,
    certificate_der: Vec<u8>,
    random: SystemRandom,
    tokens_issued: AtomicU64,
}

impl TokenIssuer {
    /// Starts an issuer on `127.0.0.1:0` for `service`, naming itself `issuer`, that grants every
    /// requested action to `username`/`password` and nothing to anonymous clients.
    pub(crate) async fn start(
        service: &str,
        issuer: &str,
        username: &str,
        password: &str,
    ) -> TokenIssuer {
        let random = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random)
            .expect("generating a P-256 key");
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &random)
                .expect("loading the generated P-256 key");
        let certificate_key =
            rcgen::KeyPair::try_from(pkcs8.as_ref()).expect("rcgen loads the P-256 key");
        let mut params =
            rcgen::CertificateParams::new(vec![issuer.to_owned()]).expect("certificate params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, issuer);
        let certificate = params
            .self_signed(&certificate_key)
            .expect("self-signing the issuer certificate");

        let state = Arc::new(IssuerState {
            service: service.to_owned(),
            issuer: issuer.to_owned(),
            username: username.to_owned(),
            password: password.to_owned(),
            key,
            certificate_der: certificate.der().to_vec(),
            random,
            tokens_issued: AtomicU64::new(0),
        });
        let (listener, addr) = bind_loopback("token issuer").await;
        let handler_state = Arc::clone(&state);
        let task = spawn_http1(listener, move |request| {
            let state = Arc::clone(&handler_state);
            async move { Ok::<_, Infallible>(state.handle(&request)) }
        });
        TokenIssuer {
            realm: format!("http://{addr}/token"),
            certificate_pem: certificate.pem(),
            state,
            task,
        }
    }

    /// The token endpoint's URL, for the registry's `auth.token.realm`.
    pub(crate) fn realm(&self) -> &str {
        &self.realm
    }

    /// The PEM certificate to use as the registry's `rootcertbundle`.
    pub(crate) fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// How many tokens were issued so far (anonymous ones included).
    pub(crate) fn tokens_issued(&self) -> u64 {
        self.state.tokens_issued.load(Ordering::Relaxed)
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl IssuerState {
    fn handle(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.uri().path() != "/token" {
            return respond(StatusCode::NOT_FOUND, &json!({ "error": "not found" }));
        }
        let subject = match basic_credentials(request) {
            None => None,
            Some((user, password)) if user == self.username && password == self.password => {
                Some(user)
            }
            Some(_) => {
                return respond(
                    StatusCode::UNAUTHORIZED,
                    &json!({ "error": "invalid credentials" }),
                );
            }
        };
        let url = reqwest::Url::parse(&format!("http://issuer{}", request.uri()))
            .expect("a request URI is a valid URL path");
        let access: Vec<Value> = match subject {
            // Anonymous clients get a valid token granting nothing, so the registry answers 401.
            None => Vec::new(),
            Some(_) => url
                .query_pairs()
                .filter(|(key, _)| key == "scope")
                .flat_map(|(_, scope)| scope.split(' ').filter_map(parse_scope).collect::<Vec<_>>())
                .collect(),
        };
        let now = unix_now();
        let token = self.sign(&json!({
            "iss": self.issuer,
            "sub": subject.unwrap_or_default(),
            "aud": self.service,
            "exp": now + TOKEN_LIFETIME,
            "nbf": now - 10,
            "iat": now,
            "jti": self.random_hex(16),
            "access": access,
        }));
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
        respond(
            StatusCode::OK,
            &json!({
                "token": token,
                "access_token": token,
                "expires_in": TOKEN_LIFETIME,
                "issued_at": rfc3339(now),
            }),
        )
    }

    /// A compact JWS (ES256) of `claims` with the certificate in `x5c`.
    fn sign(&self, claims: &Value) -> String {
        let header = json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [STANDARD.encode(&self.certificate_der)],
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.random, signing_input.as_bytes())
            .expect("ECDSA signing");
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }

    fn random_hex(&self, bytes: usize) -> String {
        let mut buffer = vec![0_u8; bytes];
        self.random.fill(&mut buffer).expect("system randomness");
        hex::encode(buffer)
    }
}

/// Parses `type:name:actions` (the name may itself contain colons) into an access entry.
fn parse_scope(scope: &str) -> Option<Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: Vec<&str> = actions
        .split(',')
        .filter(|action| !action.is_empty())
        .collect();
    Some(json!({ "type": kind, "name": name, "actions": actions }))
}

/// The user and password of an `Authorization: Basic` header, if there is a well-formed one.
fn basic_credentials(request: &Request<Incoming>) -> Option<(String, String)> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn respond(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::parse_scope;
    use serde_json::json;

    #[test]
    fn parses_scopes() {
        assert_eq!(
            parse_scope("repository:a/b:pull,push"),
            Some(json!({"type": "repository", "name": "a/b", "actions": ["pull", "push"]}))
        );
        assert_eq!(
            parse_scope("repository:host:5000/a:pull"),
            Some(json!({"type": "repository", "name": "host:5000/a", "actions": ["pull"]}))
        );
        assert_eq!(parse_scope("registry"), None);
    }
}
