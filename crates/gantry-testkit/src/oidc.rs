//! A stand-in OIDC issuer: an ES256 key made per run, its JWK set as a file's text, and
//! ID tokens signed with it, as a CI platform (GitHub Actions) would issue them.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct OidcIssuer {
    pub issuer: String,
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

const KID: &str = "testkit-1";

impl OidcIssuer {
    pub fn new(issuer: &str) -> OidcIssuer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("ring makes a P-256 key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("ring reads its own key");
        OidcIssuer {
            issuer: issuer.to_owned(),
            key,
            rng,
        }
    }

    /// The issuer's JWK set (RFC 7517), to write where the server reads it.
    pub fn jwks(&self) -> String {
        let point = self.key.public_key().as_ref();
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": KID,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        }]})
        .to_string()
    }

    /// An ID token for `audience` with `claims` added, valid for five minutes from now.
    pub fn token(&self, audience: &str, claims: &Value) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let mut body = json!({
            "iss": self.issuer, "aud": audience, "iat": now, "nbf": now, "exp": now + 300,
        });
        for (name, value) in claims.as_object().expect("claims are an object") {
            body[name] = value.clone();
        }
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": KID});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(body.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, input.as_bytes())
            .expect("ECDSA signs");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}
