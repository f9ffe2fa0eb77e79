//! Tests of the whole verifier, with real keys and signatures: ES256 and Ed25519 keys
//! made by ring per run, and an RSA key from `testdata/` (ring cannot make RSA keys).
//! URL key sets are served by a small HTTP server on 127.0.0.1 that counts requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::key_source::CachePolicy;
use super::{IssuerSettings, OidcError, Verifier};

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const AUDIENCE: &str = "https://gantry.example.com";
const RSA_PKCS8: &[u8] = include_bytes!("testdata/rsa-2048.pk8.der");
const RSA_JWKS: &str = include_str!("testdata/rsa-2048.jwks.json");

fn base64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The issuer's private keys, and a stranger's.
struct Keys {
    rng: SystemRandom,
    ec: EcdsaKeyPair,
    /// Not in the issuer's set: signs tokens that must not verify.
    stranger: EcdsaKeyPair,
    ed: Ed25519KeyPair,
    rsa: RsaKeyPair,
}

fn ec_key(rng: &SystemRandom) -> EcdsaKeyPair {
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, rng).expect("ring makes a P-256 key");
    EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), rng).expect("ring reads its own key")
}

impl Keys {
    fn new() -> Keys {
        let rng = SystemRandom::new();
        let ed = Ed25519KeyPair::generate_pkcs8(&rng).expect("ring makes an Ed25519 key");
        Keys {
            ec: ec_key(&rng),
            stranger: ec_key(&rng),
            ed: Ed25519KeyPair::from_pkcs8(ed.as_ref()).expect("ring reads its own key"),
            rsa: RsaKeyPair::from_pkcs8(RSA_PKCS8).expect("the RSA fixture is PKCS#8"),
            rng,
        }
    }

    /// An EC P-256 JWK for `key`: its uncompressed point is 0x04 || x || y.
    fn ec_jwk(key: &EcdsaKeyPair, kid: &str) -> Value {
        let point = key.public_key().as_ref();
        assert_eq!(point.len(), 65);
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid,
            "x": base64url(&point[1..33]), "y": base64url(&point[33..]),
        })
    }

    /// The issuer's JWK set: `ec-1`, `ed-1` and `rsa-test`, and an encryption key
    /// that must be ignored.
    fn jwks(&self) -> Value {
        let rsa: Value = serde_json::from_str(RSA_JWKS).expect("the RSA fixture is JSON");
        json!({"keys": [
            Keys::ec_jwk(&self.ec, "ec-1"),
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": base64url(self.ed.public_key())},
            rsa["keys"][0],
            {"kty": "RSA", "use": "enc", "kid": "rsa-enc", "n": rsa["keys"][0]["n"], "e": "AQAB"},
        ]})
    }

    /// A compact JWS of `header` and `claims`, signed with the issuer's key for the
    /// header's alg (whatever its kid says), or with the stranger's key.
    fn sign_with(&self, header: &Value, claims: &Value, stranger: bool) -> String {
        let input = format!(
            "{}.{}",
            base64url(header.to_string()),
            base64url(claims.to_string())
        );
        let message = input.as_bytes();
        let rsa = |padding: &'static dyn signature::RsaEncoding| {
            let mut signature = vec![0; self.rsa.public().modulus_len()];
            self.rsa
                .sign(padding, &self.rng, message, &mut signature)
                .expect("RSA signs");
            signature
        };
        let signature = match header["alg"].as_str().expect("the header has an alg") {
            "ES256" | "ES384" => {
                let key = if stranger { &self.stranger } else { &self.ec };
                key.sign(&self.rng, message)
                    .expect("ECDSA signs")
                    .as_ref()
                    .to_vec()
            }
            "EdDSA" => self.ed.sign(message).as_ref().to_vec(),
            "RS256" => rsa(&signature::RSA_PKCS1_SHA256),
            "RS384" => rsa(&signature::RSA_PKCS1_SHA384),
            "RS512" => rsa(&signature::RSA_PKCS1_SHA512),
            "PS256" => rsa(&signature::RSA_PSS_SHA256),
            "HS256" => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"a shared secret");
                ring::hmac::sign(&key, message).as_ref().to_vec()
            }
            "none" => Vec::new(),
            other => panic!("the test signer knows no alg {other}"),
        };
        format!("{input}.{}", base64url(signature))
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_with(header, claims, false)
    }
}

/// Claims like those of a GitHub Actions job on acme/payments' main branch, with
/// `changes` merged in; a `null` in `changes` removes the claim.
fn claims(changes: &Value) -> Value {
    let now = now();
    let mut claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "repo:acme/payments:ref:refs/heads/main",
        "repository": "acme/payments",
        "repository_owner": "acme",
        "ref": "refs/heads/main",
        "workflow": "release",
        "run_id": "4242",
        "run_number": "7",
        "event_name": "push",
        "jti": "c0ffee",
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + 300,
    });
    let object = claims.as_object_mut().expect("an object");
    for (name, value) in changes.as_object().expect("changes are an object") {
        if value.is_null() {
            object.remove(name);
        } else {
            object.insert(name.clone(), value.clone());
        }
    }
    claims
}

/// The account rules the tests use, in this order.
fn accounts() -> Value {
    json!([
        {"service_account": "payments-ci",
         "claims": {"repository": "acme/payments", "ref": "refs/heads/main"}},
        {"service_account": "numbers-ci",
         "claims": {"repository": "acme/numbers", "run_number": "*"}},
        {"service_account": "any-acme-ci", "claims": {"sub": "repo:acme/*"}},
    ])
}

fn settings(jwks: &str) -> Vec<IssuerSettings> {
    serde_json::from_value(json!([{
        "issuer": ISSUER, "audience": AUDIENCE, "jwks": jwks, "accounts": accounts(),
    }]))
    .expect("valid settings")
}

/// A verifier for ISSUER whose keys are in a file.
struct FileFixture {
    keys: Keys,
    verifier: Verifier,
    _directory: tempfile::TempDir,
}

fn file_fixture() -> FileFixture {
    let keys = Keys::new();
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("jwks.json");
    std::fs::write(&path, keys.jwks().to_string()).expect("the JWK set is written");
    let verifier = Verifier::new(settings(path.to_str().expect("a UTF-8 path")))
        .expect("the settings are valid");
    FileFixture {
        keys,
        verifier,
        _directory: directory,
    }
}

/// Verifies `token` and says which account it got, or the error's message. Checks on
/// the way that no error quotes the token's payload or signature.
async fn outcome(verifier: &Verifier, token: &str) -> Result<String, String> {
    match verifier.verify(token).await {
        Ok(identity) => {
            assert_eq!(identity.issuer, ISSUER);
            Ok(identity.service_account.to_string())
        }
        Err(error) => {
            let shown = format!("{error} {error:?}");
            for segment in token.split('.').skip(1).filter(|s| s.len() > 8) {
                assert!(!shown.contains(segment), "{shown} quotes the token");
            }
            Err(error.to_string())
        }
    }
}

/// The issuer's key for ES256, the usual header of the tests.
fn es256() -> Value {
    json!({"alg": "ES256", "kid": "ec-1", "typ": "JWT"})
}

/// Checks each `(what, token, expected)`: `Ok(account)` for the account the token must
/// act as, `Err(start)` for the start of the message it must be refused with.
async fn check(verifier: &Verifier, cases: Vec<(&str, String, Result<&str, &str>)>) {
    for (what, token, expected) in cases {
        match (outcome(verifier, &token).await, expected) {
            (Ok(account), Ok(expected)) => assert_eq!(account, expected, "{what}"),
            (Err(error), Err(expected)) => assert!(
                error.starts_with(expected),
                "{what}: expected {expected:?}, got {error:?}"
            ),
            (got, expected) => panic!("{what}: expected {expected:?}, got {got:?}"),
        }
    }
}

#[tokio::test]
async fn maps_tokens_to_the_first_matching_rule() {
    let FileFixture { keys, verifier, .. } = &file_fixture();
    let token = |changes: Value| keys.sign(&es256(), &claims(&changes));
    check(verifier, vec![
        ("a GitHub-like token of acme/payments' main", token(json!({})), Ok("payments-ci")),
        (
            "another branch falls through to the broad rule",
            token(json!({"ref": "refs/heads/feature", "sub": "repo:acme/payments:ref:refs/heads/feature"})),
            Ok("any-acme-ci"),
        ),
        (
            "a string claim matches *",
            token(json!({"repository": "acme/numbers", "sub": "repo:acme/numbers:ref:refs/heads/main"})),
            Ok("numbers-ci"),
        ),
        (
            "a number matches no pattern, not even *",
            token(json!({"repository": "acme/numbers", "run_number": 7, "sub": "repo:acme/numbers:ref:refs/heads/main"})),
            Ok("any-acme-ci"),
        ),
        (
            "a missing claim matches no pattern",
            token(json!({"repository": "acme/numbers", "run_number": null, "sub": "repo:acme/numbers:x"})),
            Ok("any-acme-ci"),
        ),
        (
            "no rule matches",
            token(json!({"repository": "evil/payments", "sub": "repo:evil/payments:ref:refs/heads/main"})),
            Err("no account rule of issuer https://token.actions.githubusercontent.com matches the ID token of subject \"repo:evil/payments:ref:refs/heads/main\""),
        ),
        (
            "no rule matches when the claim a rule wants is a number",
            token(json!({"repository": "acme/numbers", "run_number": 7, "sub": "pull_request"})),
            Err("no account rule of issuer https://token.actions.githubusercontent.com matches the ID token of subject \"pull_request\""),
        ),
        (
            "no sub",
            token(json!({"sub": null})),
            Err("malformed ID token: payload: sub is missing or not a string"),
        ),
    ])
    .await;

    let identity = verifier
        .verify(&token(json!({})))
        .await
        .expect("a valid token");
    assert_eq!(identity.service_account.as_str(), "payments-ci");
    assert_eq!(identity.issuer, ISSUER);
    assert_eq!(identity.subject, "repo:acme/payments:ref:refs/heads/main");
}

#[tokio::test]
async fn verifies_every_accepted_algorithm() {
    let FileFixture { keys, verifier, .. } = &file_fixture();
    let token = |header: Value| keys.sign(&header, &claims(&json!({})));
    check(
        verifier,
        vec![
            ("ES256", token(es256()), Ok("payments-ci")),
            (
                "ES256 without kid: the only P-256 key",
                token(json!({"alg": "ES256"})),
                Ok("payments-ci"),
            ),
            (
                "EdDSA",
                token(json!({"alg": "EdDSA", "kid": "ed-1"})),
                Ok("payments-ci"),
            ),
            (
                "EdDSA without kid",
                token(json!({"alg": "EdDSA"})),
                Ok("payments-ci"),
            ),
            (
                "RS256",
                token(json!({"alg": "RS256", "kid": "rsa-test"})),
                Ok("payments-ci"),
            ),
            (
                "RS384",
                token(json!({"alg": "RS384", "kid": "rsa-test"})),
                Ok("payments-ci"),
            ),
            (
                "RS512",
                token(json!({"alg": "RS512", "kid": "rsa-test"})),
                Ok("payments-ci"),
            ),
            (
                "PS256",
                token(json!({"alg": "PS256", "kid": "rsa-test"})),
                Ok("payments-ci"),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn refuses_tokens_not_signed_by_the_issuer() {
    let FileFixture { keys, verifier, .. } = &file_fixture();
    let token = |header: Value| keys.sign(&header, &claims(&json!({})));
    let valid = token(es256());
    let tampered = {
        let other = base64url(claims(&json!({"repository": "acme/other"})).to_string());
        let segments: Vec<&str> = valid.split('.').collect();
        format!("{}.{other}.{}", segments[0], segments[2])
    };
    let not_verified = "the ID token's signature does not verify with issuer https://token.actions.githubusercontent.com's key";
    let not_accepted =
        "is not accepted; use one of RS256, RS384, RS512, PS256, ES256, ES384, EdDSA";
    check(verifier, vec![
        ("tampered payload", tampered, Err(not_verified)),
        ("signed by a stranger", keys.sign_with(&es256(), &claims(&json!({})), true), Err(not_verified)),
        (
            "unknown kid",
            token(json!({"alg": "ES256", "kid": "ec-9"})),
            Err("issuer https://token.actions.githubusercontent.com has no signing key with kid \"ec-9\""),
        ),
        (
            "the kid of an encryption key",
            token(json!({"alg": "RS256", "kid": "rsa-enc"})),
            Err("issuer https://token.actions.githubusercontent.com has no signing key with kid \"rsa-enc\""),
        ),
        ("alg none", token(json!({"alg": "none"})), Err(&format!("the ID token's alg \"none\" {not_accepted}"))),
        ("HS256", token(json!({"alg": "HS256", "kid": "ec-1"})), Err(&format!("the ID token's alg \"HS256\" {not_accepted}"))),
        (
            "RS256 with an EC key's kid",
            token(json!({"alg": "RS256", "kid": "ec-1"})),
            Err("the ID token's alg RS256 does not fit issuer https://token.actions.githubusercontent.com's key \"ec-1\", an EC P-256 key"),
        ),
        (
            "ES384 with a P-256 key's kid",
            token(json!({"alg": "ES384", "kid": "ec-1"})),
            Err("the ID token's alg ES384 does not fit issuer https://token.actions.githubusercontent.com's key \"ec-1\", an EC P-256 key"),
        ),
        (
            "EdDSA with the RSA key's kid",
            token(json!({"alg": "EdDSA", "kid": "rsa-test"})),
            Err("the ID token's alg EdDSA does not fit issuer https://token.actions.githubusercontent.com's key \"rsa-test\", an RSA key"),
        ),
        (
            "ES384 without kid",
            token(json!({"alg": "ES384"})),
            Err("the ID token names no kid, and issuer https://token.actions.githubusercontent.com has no key for ES384"),
        ),
        (
            "not a JWT",
            "gantry_0123456789abcdef".to_owned(),
            Err("malformed ID token: token: not three base64url segments separated by '.'"),
        ),
    ])
    .await;
}

#[tokio::test]
async fn checks_times_with_a_minute_of_leeway() {
    let FileFixture { keys, verifier, .. } = &file_fixture();
    let token = |changes: Value| keys.sign(&es256(), &claims(&changes));
    let now = now();
    check(
        verifier,
        vec![
            (
                "expired 30 s ago",
                token(json!({"exp": now - 30})),
                Ok("payments-ci"),
            ),
            (
                "nbf and iat 30 s ahead",
                token(json!({"nbf": now + 30, "iat": now + 30})),
                Ok("payments-ci"),
            ),
            (
                "no nbf or iat",
                token(json!({"nbf": null, "iat": null})),
                Ok("payments-ci"),
            ),
            (
                "a fractional exp",
                token(json!({"exp": 4_000_000_000.5})),
                Ok("payments-ci"),
            ),
            (
                "expired long ago",
                token(json!({"exp": 1_000_000_000})),
                Err("the ID token expired at 2001-09-09T01:46:40Z"),
            ),
            (
                "expired 61 s ago",
                token(json!({"exp": now - 61})),
                Err("the ID token expired at"),
            ),
            (
                "no exp",
                token(json!({"exp": null})),
                Err("malformed ID token: payload: exp is missing"),
            ),
            (
                "exp a string",
                token(json!({"exp": "tomorrow"})),
                Err("malformed ID token: payload: exp is not a number"),
            ),
            (
                "nbf in the future",
                token(json!({"nbf": 4_000_000_000_i64})),
                Err("the ID token is not valid yet: its nbf is 2096-10-02T07:06:40Z"),
            ),
            (
                "iat in the future",
                token(json!({"iat": now + 120})),
                Err("the ID token is not valid yet: its iat is"),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn checks_audience_and_issuer() {
    let FileFixture { keys, verifier, .. } = &file_fixture();
    let token = |changes: Value| keys.sign(&es256(), &claims(&changes));
    let long_issuer = format!(
        "the ID token's issuer \"{}...\" is not configured",
        "x".repeat(100)
    );
    check(verifier, vec![
        (
            "an aud array holding the audience",
            token(json!({"aud": ["https://other.example.com", AUDIENCE]})),
            Ok("payments-ci"),
        ),
        (
            "wrong aud",
            token(json!({"aud": "https://other.example.com"})),
            Err("the ID token is for audience \"https://other.example.com\", not \"https://gantry.example.com\""),
        ),
        (
            "an aud array without the audience",
            token(json!({"aud": ["a", "b"]})),
            Err("the ID token is for audience [\"a\", \"b\"], not \"https://gantry.example.com\""),
        ),
        (
            "no aud",
            token(json!({"aud": null})),
            Err("the ID token is for audience nothing (it has no aud), not \"https://gantry.example.com\""),
        ),
        (
            "aud a number",
            token(json!({"aud": 1})),
            Err("malformed ID token: payload: aud is not a string or an array of strings"),
        ),
        (
            "wrong iss",
            token(json!({"iss": "https://evil.example.com"})),
            Err("the ID token's issuer \"https://evil.example.com\" is not configured"),
        ),
        (
            "iss with a trailing slash",
            token(json!({"iss": format!("{ISSUER}/")})),
            Err("the ID token's issuer \"https://token.actions.githubusercontent.com/\" is not configured"),
        ),
        (
            "no iss",
            token(json!({"iss": null})),
            Err("malformed ID token: payload: iss is missing or not a string"),
        ),
        ("a very long iss", token(json!({"iss": "x".repeat(500)})), Err(&long_issuer)),
    ])
    .await;
}

#[test]
fn verifier_is_cheap_to_share_between_tasks() {
    fn shareable<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    fn send<T: Send>(_: &T) {}
    shareable::<Verifier>();
    let fixture = file_fixture();
    send(&fixture.verifier.verify("token"));
}

#[test]
fn debug_shows_no_key_material() {
    let fixture = file_fixture();
    let shown = format!("{:?}", fixture.verifier);
    let rsa: Value = serde_json::from_str(RSA_JWKS).expect("JSON");
    let modulus = rsa["keys"][0]["n"].as_str().expect("n");
    assert!(!shown.contains(&modulus[..20]), "{shown}");
    assert!(shown.contains("payments-ci"), "{shown}");
    assert!(shown.contains("jwks.json"), "{shown}");
}

/// The message `Verifier::new` refuses `settings` with.
fn config_error(settings: &Value) -> String {
    let parsed: Vec<IssuerSettings> =
        serde_json::from_value(settings.clone()).expect("settings deserialize");
    Verifier::new(parsed)
        .map(|_| ())
        .expect_err(&format!("{settings} should be refused"))
        .to_string()
}

/// Valid settings for one issuer with `changes` made, and a directory for key files.
struct ConfigFixture {
    directory: tempfile::TempDir,
    jwks: String,
}

impl ConfigFixture {
    fn new() -> ConfigFixture {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join("jwks.json");
        std::fs::write(&path, Keys::new().jwks().to_string()).expect("written");
        let jwks = path.to_str().expect("UTF-8").to_owned();
        ConfigFixture { directory, jwks }
    }

    /// Writes a key file and says its path.
    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.directory.path().join(name);
        std::fs::write(&path, contents).expect("written");
        path.to_str().expect("UTF-8").to_owned()
    }

    fn issuer(&self, changes: &Value) -> Value {
        let mut issuer = json!({
            "issuer": ISSUER, "audience": AUDIENCE, "jwks": self.jwks, "accounts": accounts(),
        });
        for (name, value) in changes.as_object().expect("an object") {
            issuer[name] = value.clone();
        }
        issuer
    }

    /// Settings whose second account rule is this one.
    fn rule(&self, service_account: &str, claims: &Value) -> Value {
        json!([self.issuer(&json!({"accounts": [
            {"service_account": "first", "claims": {"repository": "acme/first"}},
            {"service_account": service_account, "claims": claims},
        ]}))])
    }
}

const HTTPS_ONLY: &str =
    "must start with https:// (http:// only for localhost or 127.0.0.1, in tests)";

#[test]
fn refuses_issuer_settings_naming_the_field() {
    let fixture = ConfigFixture::new();
    let issuer = |changes: Value| json!([fixture.issuer(&changes)]);
    for (settings, expected) in [
        (json!([]), "oidc: give at least one issuer, or leave oidc out".to_owned()),
        (
            issuer(json!({"issuer": "http://token.example.com"})),
            format!("oidc[0].issuer: \"http://token.example.com\" {HTTPS_ONLY}"),
        ),
        (
            issuer(json!({"issuer": "token.example.com"})),
            "oidc[0].issuer: \"token.example.com\" is not a URL: relative URL without a base"
                .to_owned(),
        ),
        (
            issuer(json!({"issuer": "https://user:secret@token.example.com"})),
            "oidc[0].issuer: \"https://user:secret@token.example.com\" must not hold credentials"
                .to_owned(),
        ),
        (
            issuer(json!({"issuer": "https://token.example.com/?tenant=1"})),
            "oidc[0].issuer: \"https://token.example.com/?tenant=1\" must not have a query or fragment"
                .to_owned(),
        ),
        (
            json!([fixture.issuer(&json!({})), fixture.issuer(&json!({}))]),
            format!("oidc[1].issuer: {ISSUER} is configured twice; put all its account rules under one entry"),
        ),
        (
            issuer(json!({"audience": " "})),
            "oidc[0].audience: give the audience tokens must be issued for, e.g. this server's URL"
                .to_owned(),
        ),
        (
            issuer(json!({"accounts": []})),
            "oidc[0].accounts: give at least one account rule".to_owned(),
        ),
    ] {
        assert_eq!(config_error(&settings), expected);
    }
}

#[test]
fn refuses_key_sets_naming_the_field() {
    let fixture = ConfigFixture::new();
    let jwks = |jwks: &str| json!([fixture.issuer(&json!({"jwks": jwks}))]);
    let not_a_set = fixture.write("not-a-set.json", "{\"kty\": \"EC\"}");
    let only_enc = fixture.write(
        "only-enc.json",
        &json!({"keys": [{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}]}).to_string(),
    );
    let only_oct = fixture.write(
        "only-oct.json",
        &json!({"keys": [{"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}]}).to_string(),
    );
    let missing = fixture.directory.path().join("missing.json");
    let missing = missing.to_str().expect("UTF-8");
    for (settings, expected) in [
        (
            jwks(missing),
            format!("oidc[0].jwks: cannot read {missing}: No such file or directory (os error 2)"),
        ),
        (
            jwks(&not_a_set),
            format!(
                "oidc[0].jwks: {not_a_set}: not a JWK set ({{\"keys\": [...]}}): missing field `keys` at line 1 column 13"
            ),
        ),
        (
            jwks(&only_enc),
            format!("oidc[0].jwks: {only_enc}: the set has no signing keys"),
        ),
        (
            jwks(&only_oct),
            format!(
                "oidc[0].jwks: {only_oct}: the set has no usable signing key (k1: its kty \"oct\" is not RSA, EC or OKP)"
            ),
        ),
        (
            jwks("http://keys.example.com/jwks"),
            format!("oidc[0].jwks: \"http://keys.example.com/jwks\" {HTTPS_ONLY}"),
        ),
        (
            jwks("ftp://keys.example.com/jwks"),
            format!("oidc[0].jwks: \"ftp://keys.example.com/jwks\" {HTTPS_ONLY}"),
        ),
    ] {
        assert_eq!(config_error(&settings), expected);
    }
}

#[test]
fn refuses_account_rules_naming_the_field() {
    let fixture = ConfigFixture::new();
    for (settings, expected) in [
        (
            fixture.rule("Payments CI", &json!({"repository": "acme/payments"})),
            "oidc[0].accounts[1].service_account: the name \"Payments CI\" may contain only a-z, 0-9 and '-', found 'P'",
        ),
        (
            fixture.rule("", &json!({"repository": "acme/payments"})),
            "oidc[0].accounts[1].service_account: the name \"\" must be 1 to 63 characters long",
        ),
        (
            fixture.rule("payments-ci", &json!({})),
            "oidc[0].accounts[1].claims: give at least one claim",
        ),
        (
            fixture.rule("payments-ci", &json!({"": "acme/payments"})),
            "oidc[0].accounts[1].claims: a claim name is empty",
        ),
        (
            fixture.rule(
                "payments-ci",
                &json!({"repository": "acme/payments", "ref": ""}),
            ),
            "oidc[0].accounts[1].claims.ref: give a pattern; * matches any run of characters",
        ),
        (
            fixture.rule("payments-ci", &json!({"sub": "*", "ref": "**"})),
            "oidc[0].accounts[1].claims: every pattern is *, so any token of the issuer would match; give at least one claim a value, e.g. repository_owner: acme",
        ),
    ] {
        assert_eq!(config_error(&settings), expected);
    }
}

#[test]
fn accepts_loopback_http_and_url_key_sets_without_fetching() {
    for (issuer, jwks) in [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/jwks"),
        ("http://localhost", "http://[::1]:9/jwks"),
        (
            ISSUER,
            "https://token.actions.githubusercontent.com/.well-known/jwks",
        ),
    ] {
        let settings = serde_json::from_value(json!([{
            "issuer": issuer, "audience": AUDIENCE, "jwks": jwks, "accounts": accounts(),
        }]))
        .expect("settings deserialize");
        Verifier::new(settings).expect(issuer);
    }
}

#[test]
fn settings_refuse_unknown_fields() {
    for settings in [
        json!([{"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": "x", "accounts": []}]),
        json!([{"issuer": ISSUER, "audience": AUDIENCE, "jwks": "x",
                "accounts": [{"service_account": "a", "claim": {"sub": "x"}}]}]),
    ] {
        let error = serde_json::from_value::<Vec<IssuerSettings>>(settings)
            .expect_err("unknown fields are refused")
            .to_string();
        assert!(error.starts_with("unknown field"), "{error}");
    }
}

/// What the test server answers with.
#[derive(Clone)]
enum Answer {
    Ok(String),
    Status(u16),
    /// Reads the request and never answers.
    Silence,
}

/// An HTTP server on 127.0.0.1 that serves one answer to every request and counts them.
struct JwksServer {
    url: String,
    requests: Arc<AtomicUsize>,
    answer: Arc<Mutex<Answer>>,
}

impl JwksServer {
    async fn start(answer: Answer) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let url = format!(
            "http://{}/.well-known/jwks",
            listener.local_addr().expect("an address")
        );
        let requests = Arc::new(AtomicUsize::new(0));
        let answer = Arc::new(Mutex::new(answer));
        let (count, current) = (requests.clone(), answer.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (count, current) = (count.clone(), current.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => request.extend_from_slice(&buffer[..read]),
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let answer = current.lock().expect("not poisoned").clone();
                    let (status, body) = match answer {
                        Answer::Ok(body) => ("200 OK".to_owned(), body),
                        Answer::Status(code) => (format!("{code} Oops"), String::new()),
                        Answer::Silence => {
                            // Hold the connection open until the client gives up.
                            let _ = stream.read(&mut buffer).await;
                            return;
                        }
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        JwksServer {
            url,
            requests,
            answer,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().expect("not poisoned") = answer;
    }
}

fn policy(fresh_for: u64, retry_after: u64) -> CachePolicy {
    CachePolicy {
        fresh_for: Duration::from_secs(fresh_for),
        retry_after: Duration::from_secs(retry_after),
        ..CachePolicy::default()
    }
}

fn url_verifier(server: &JwksServer, policy: CachePolicy) -> Verifier {
    Verifier::with_cache_policy(settings(&server.url), policy).expect("valid settings")
}

const HOUR: u64 = 3600;

#[tokio::test]
async fn fetches_a_url_key_set_on_first_use_and_keeps_it() {
    let keys = Keys::new();
    let server = JwksServer::start(Answer::Ok(keys.jwks().to_string())).await;
    let verifier = url_verifier(&server, CachePolicy::default());
    assert_eq!(server.requests(), 0, "nothing is fetched at start-up");
    let token = keys.sign(&json!({"alg": "ES256", "kid": "ec-1"}), &claims(&json!({})));
    for _ in 0..3 {
        assert_eq!(
            outcome(&verifier, &token).await,
            Ok("payments-ci".to_owned())
        );
    }
    assert_eq!(server.requests(), 1);

    // Clones share the cache.
    let clone = verifier.clone();
    assert_eq!(outcome(&clone, &token).await, Ok("payments-ci".to_owned()));
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn concurrent_first_uses_share_one_fetch() {
    let keys = Keys::new();
    let server = JwksServer::start(Answer::Ok(keys.jwks().to_string())).await;
    let verifier = url_verifier(&server, CachePolicy::default());
    let token = keys.sign(&json!({"alg": "ES256", "kid": "ec-1"}), &claims(&json!({})));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), token.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("the task ran")
            .expect("the token verifies");
    }
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn unknown_key_ids_refetch_at_most_once_per_interval() {
    let keys = Keys::new();
    let server = JwksServer::start(Answer::Ok(keys.jwks().to_string())).await;
    let valid = keys.sign(&json!({"alg": "ES256", "kid": "ec-1"}), &claims(&json!({})));
    let rotated = keys.sign(&json!({"alg": "ES256", "kid": "ec-2"}), &claims(&json!({})));

    // With the real interval, a flood of unknown key ids costs no request.
    let verifier = url_verifier(&server, policy(HOUR, 30));
    assert_eq!(
        outcome(&verifier, &valid).await,
        Ok("payments-ci".to_owned())
    );
    for _ in 0..20 {
        let error = outcome(&verifier, &rotated).await.expect_err("unknown kid");
        assert!(
            error.contains("no signing key with kid \"ec-2\""),
            "{error}"
        );
    }
    assert_eq!(server.requests(), 1);

    // The issuer rotates: it now also publishes ec-2.
    let mut rotated_set = keys.jwks();
    rotated_set["keys"]
        .as_array_mut()
        .expect("keys")
        .push(Keys::ec_jwk(&keys.ec, "ec-2"));
    server.answer(Answer::Ok(rotated_set.to_string()));

    // Still within the interval: the old set is all this verifier knows.
    assert!(outcome(&verifier, &rotated).await.is_err());
    assert_eq!(server.requests(), 1);

    // Once the interval has passed (zero here), an unknown kid fetches the set again.
    server.answer(Answer::Ok(keys.jwks().to_string()));
    let verifier = url_verifier(&server, policy(HOUR, 0));
    assert_eq!(
        outcome(&verifier, &valid).await,
        Ok("payments-ci".to_owned())
    );
    assert_eq!(server.requests(), 2);
    assert!(outcome(&verifier, &rotated).await.is_err());
    assert_eq!(server.requests(), 3, "an unknown kid refetches");
    server.answer(Answer::Ok(rotated_set.to_string()));
    assert_eq!(
        outcome(&verifier, &rotated).await,
        Ok("payments-ci".to_owned())
    );
    assert_eq!(server.requests(), 4);
    assert_eq!(
        outcome(&verifier, &rotated).await,
        Ok("payments-ci".to_owned())
    );
    assert_eq!(server.requests(), 4, "a known kid does not");
}

#[tokio::test]
async fn a_stale_set_is_fetched_again() {
    let keys = Keys::new();
    let server = JwksServer::start(Answer::Ok(keys.jwks().to_string())).await;
    let token = keys.sign(&json!({"alg": "ES256", "kid": "ec-1"}), &claims(&json!({})));

    let verifier = url_verifier(&server, policy(0, 0));
    for expected in 1..=3 {
        assert_eq!(
            outcome(&verifier, &token).await,
            Ok("payments-ci".to_owned())
        );
        assert_eq!(server.requests(), expected);
    }

    // Stale, but the last fetch was too recent to ask again: the stale set serves.
    let server = JwksServer::start(Answer::Ok(keys.jwks().to_string())).await;
    let verifier = url_verifier(&server, policy(0, HOUR));
    for _ in 0..3 {
        assert_eq!(
            outcome(&verifier, &token).await,
            Ok("payments-ci".to_owned())
        );
    }
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_stale_set() {
    let keys = Keys::new();
    let server = JwksServer::start(Answer::Ok(keys.jwks().to_string())).await;
    let token = keys.sign(&json!({"alg": "ES256", "kid": "ec-1"}), &claims(&json!({})));
    let unknown = keys.sign(&json!({"alg": "ES256", "kid": "ec-9"}), &claims(&json!({})));
    let verifier = url_verifier(&server, policy(0, 0));
    assert_eq!(
        outcome(&verifier, &token).await,
        Ok("payments-ci".to_owned())
    );

    server.answer(Answer::Status(503));
    assert_eq!(
        outcome(&verifier, &token).await,
        Ok("payments-ci".to_owned())
    );
    assert_eq!(server.requests(), 2);
    // A key the stale set lacks may be in the set that could not be fetched.
    assert_eq!(
        outcome(&verifier, &unknown).await,
        Err(format!(
            "cannot fetch the key set {}: the server answered 503 Service Unavailable",
            server.url
        ))
    );
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn fetch_failures_name_the_url_and_are_not_retried_at_once() {
    let keys = Keys::new();
    let token = keys.sign(&json!({"alg": "ES256", "kid": "ec-1"}), &claims(&json!({})));
    for (answer, reason) in [
        (
            Answer::Status(500),
            "the server answered 500 Internal Server Error".to_owned(),
        ),
        (
            Answer::Status(302),
            "the server answered 302 Found".to_owned(),
        ),
        (
            Answer::Ok("<html>".to_owned()),
            "not a JWK set ({\"keys\": [...]}): expected value at line 1 column 1".to_owned(),
        ),
        (
            Answer::Ok(json!({"keys": []}).to_string()),
            "the set has no signing keys".to_owned(),
        ),
    ] {
        let server = JwksServer::start(answer).await;
        let verifier = url_verifier(&server, CachePolicy::default());
        let expected = Err(format!("cannot fetch the key set {}: {reason}", server.url));
        assert_eq!(outcome(&verifier, &token).await, expected);
        assert_eq!(
            outcome(&verifier, &token).await,
            expected,
            "the reason is kept"
        );
        assert_eq!(server.requests(), 1);
    }
}

#[tokio::test]
async fn fetches_time_out() {
    let keys = Keys::new();
    let token = keys.sign(&json!({"alg": "ES256", "kid": "ec-1"}), &claims(&json!({})));
    let server = JwksServer::start(Answer::Silence).await;
    let verifier = url_verifier(
        &server,
        CachePolicy {
            fetch_timeout: Duration::from_millis(200),
            ..CachePolicy::default()
        },
    );
    assert_eq!(
        outcome(&verifier, &token).await,
        Err(format!(
            "cannot fetch the key set {}: no answer within 200 ms",
            server.url
        ))
    );
}

#[tokio::test]
async fn unreachable_key_sets_fail_with_the_reason() {
    let keys = Keys::new();
    let token = keys.sign(&json!({"alg": "ES256", "kid": "ec-1"}), &claims(&json!({})));
    // A port that was free a moment ago and has nobody listening now.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("address"));
    drop(listener);
    let verifier = Verifier::new(settings(&url)).expect("valid settings");
    let error = verifier.verify(&token).await.expect_err("unreachable");
    let OidcError::JwksFetch { url: named, reason } = &error else {
        panic!("expected a fetch error, got {error}");
    };
    assert_eq!(named, &url);
    assert!(reason.contains("error sending request"), "{reason}");
    assert!(!reason.contains(&url), "the URL is named once: {reason}");
}
