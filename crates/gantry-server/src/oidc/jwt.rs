//! JSON Web Tokens in compact form (RFC 7519 over RFC 7515): split, decode, and check a
//! signature. Pure: no I/O, no clock. What the claims mean is decided in `oidc.rs`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jwks::{Curve, PublicKey};
use super::{OidcError, TokenPart, shorten};

/// Tokens longer than this are refused before any decoding; ID tokens are a few KiB.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The signature algorithms Gantry accepts. `none` and the HMAC family (`HS*`) are
/// absent on purpose: an ID token must be signed by the issuer's private key, never
/// by a secret or by nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Es256,
    Es384,
    EdDsa,
}

/// The accepted algorithms as an error message lists them.
pub(crate) const ACCEPTED_ALGORITHMS: &str = "RS256, RS384, RS512, PS256, ES256, ES384, EdDSA";

impl Algorithm {
    /// The algorithm a JOSE `alg` names, if Gantry accepts it.
    pub(crate) fn from_name(name: &str) -> Option<Algorithm> {
        Some(match name {
            "RS256" => Algorithm::Rs256,
            "RS384" => Algorithm::Rs384,
            "RS512" => Algorithm::Rs512,
            "PS256" => Algorithm::Ps256,
            "ES256" => Algorithm::Es256,
            "ES384" => Algorithm::Es384,
            "EdDSA" => Algorithm::EdDsa,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// Whether `key` is of the type and curve this algorithm signs with. Checked before
    /// verifying, so a token cannot make Gantry use a key in a way its owner did not.
    pub(crate) fn fits(self, key: &PublicKey) -> bool {
        match (self, key) {
            (
                Algorithm::Rs256 | Algorithm::Rs384 | Algorithm::Rs512 | Algorithm::Ps256,
                PublicKey::Rsa { .. },
            )
            | (Algorithm::EdDsa, PublicKey::Ed25519 { .. }) => true,
            (Algorithm::Es256, PublicKey::Ec { curve, .. }) => *curve == Curve::P256,
            (Algorithm::Es384, PublicKey::Ec { curve, .. }) => *curve == Curve::P384,
            _ => false,
        }
    }
}

/// A token split and decoded whose signature has not been checked yet: nothing in it
/// may be trusted except to choose the issuer and the key.
pub(crate) struct UnverifiedToken<'token> {
    pub(crate) algorithm: Algorithm,
    pub(crate) kid: Option<String>,
    pub(crate) claims: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'token str,
    pub(crate) signature: Vec<u8>,
}

/// The header fields Gantry reads; others are ignored.
#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// Three segments of base64url characters separated by '.'. The signature may be empty
/// so that an unsigned (`alg: none`) token is still told apart from a Gantry token and
/// refused with a clear reason.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    let is_base64url = |segment: &str| {
        segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let mut segments = token.split('.');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(header), Some(payload), Some(signature), None) => {
            !header.is_empty()
                && !payload.is_empty()
                && is_base64url(header)
                && is_base64url(payload)
                && is_base64url(signature)
        }
        _ => false,
    }
}

/// Splits and decodes a compact JWS. Error reasons are fixed strings: nothing from the
/// token is echoed except the `alg` it names.
pub(crate) fn parse(token: &str) -> Result<UnverifiedToken<'_>, OidcError> {
    let malformed = |part, reason| OidcError::Malformed { part, reason };
    if token.len() > MAX_TOKEN_BYTES {
        return Err(malformed(TokenPart::Token, "longer than 16 KiB"));
    }
    let Some((signing_input, signature)) = token.rsplit_once('.') else {
        return Err(malformed(
            TokenPart::Token,
            "not three base64url segments separated by '.'",
        ));
    };
    let Some((header, payload)) = signing_input.split_once('.') else {
        return Err(malformed(
            TokenPart::Token,
            "not three base64url segments separated by '.'",
        ));
    };
    if payload.contains('.') {
        return Err(malformed(
            TokenPart::Token,
            "more than three segments (an encrypted JWE is not an ID token)",
        ));
    }

    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed(TokenPart::Header, "not base64url"))?;
    let header: Header = serde_json::from_slice(&header).map_err(|_| {
        malformed(
            TokenPart::Header,
            "not a JSON object with a string alg and an optional string kid",
        )
    })?;
    if header.crit.is_some() {
        return Err(malformed(
            TokenPart::Header,
            "names critical extensions (crit), which Gantry does not support",
        ));
    }
    let algorithm =
        Algorithm::from_name(&header.alg).ok_or_else(|| OidcError::UnsupportedAlgorithm {
            alg: shorten(&header.alg),
        })?;

    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| malformed(TokenPart::Payload, "not base64url"))?;
    let claims: Map<String, Value> = serde_json::from_slice(&payload)
        .map_err(|_| malformed(TokenPart::Payload, "not a JSON object"))?;

    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| malformed(TokenPart::Signature, "not base64url"))?;
    if signature.is_empty() {
        return Err(malformed(TokenPart::Signature, "empty"));
    }

    Ok(UnverifiedToken {
        algorithm,
        kid: header.kid,
        claims,
        signing_input,
        signature,
    })
}

/// Whether `signature` over `message` verifies with `key` under `algorithm`. False also
/// when the key does not fit the algorithm; callers check [`Algorithm::fits`] first to
/// say so more clearly.
pub(crate) fn verify_signature(
    algorithm: Algorithm,
    key: &PublicKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    if !algorithm.fits(key) {
        return false;
    }
    match key {
        PublicKey::Rsa { modulus, exponent } => {
            let parameters: &signature::RsaParameters = match algorithm {
                Algorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                Algorithm::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                Algorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                Algorithm::Es256 | Algorithm::Es384 | Algorithm::EdDsa => return false,
            };
            RsaPublicKeyComponents {
                n: modulus,
                e: exponent,
            }
            .verify(parameters, message, signature)
            .is_ok()
        }
        PublicKey::Ec { curve, point } => {
            // JWS carries ECDSA signatures as fixed-width r || s (RFC 7518 section
            // 3.4), not ASN.1, hence the FIXED verifiers.
            let verifier: &dyn signature::VerificationAlgorithm = match curve {
                Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
                Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            };
            UnparsedPublicKey::new(verifier, point)
                .verify(message, signature)
                .is_ok()
        }
        PublicKey::Ed25519 { x } => UnparsedPublicKey::new(&signature::ED25519, x)
            .verify(message, signature)
            .is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_jwts_from_gantry_tokens() {
        for (token, expected) in [
            ("eyJh.eyJi.c2ln", true),
            ("eyJh.eyJi.", true),
            ("eyJh.eyJi", false),
            ("eyJh.eyJi.c2ln.ZXh0", false),
            (".eyJi.c2ln", false),
            ("eyJh..c2ln", false),
            ("eyJh.eyJi.c2l=", false),
            ("eyJh.ey+i.c2ln", false),
            (
                "gantry_0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab",
                false,
            ),
            ("", false),
        ] {
            assert_eq!(looks_like_jwt(token), expected, "{token:?}");
        }
    }

    #[test]
    fn names_the_malformed_part() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256"}"#);
        let payload = URL_SAFE_NO_PAD.encode(r#"{"iss":"x"}"#);
        for (token, expected) in [
            ("abc".to_owned(), "token"),
            ("a.b".to_owned(), "token"),
            ("a.b.c.d.e".to_owned(), "token"),
            (format!("!!.{payload}.c2ln"), "header"),
            (
                format!("{}.{payload}.c2ln", URL_SAFE_NO_PAD.encode("[1]")),
                "header",
            ),
            (
                format!(
                    "{}.{payload}.c2ln",
                    URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","crit":["b64"]}"#)
                ),
                "header",
            ),
            (format!("{header}.!!.c2ln"), "payload"),
            (
                format!("{header}.{}.c2ln", URL_SAFE_NO_PAD.encode("\"text\"")),
                "payload",
            ),
            (format!("{header}.{payload}.!!"), "signature"),
            (format!("{header}.{payload}."), "signature"),
            ("a".repeat(MAX_TOKEN_BYTES + 1), "token"),
        ] {
            match parse(&token) {
                Err(OidcError::Malformed { part, .. }) => {
                    assert_eq!(part.to_string(), expected, "{token:.60}");
                }
                Err(other) => panic!("{token:.60}: expected malformed {expected}, got {other}"),
                Ok(_) => panic!("{token:.60}: expected malformed {expected}, got a token"),
            }
        }
    }
}
