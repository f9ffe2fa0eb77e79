//! JSON Web Key sets (RFC 7517, with the key types of RFC 7518 section 6 and RFC 8037):
//! parse the public keys Gantry can verify with, and choose one for a token. Pure: no
//! I/O. Where a set comes from and how long it is kept is `key_source.rs`.

use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde_json::Value;

use super::jwt::Algorithm;

/// Base64url for key fields, padded or not: RFC 7517 says unpadded, and some issuers
/// pad anyway. Being lenient here costs nothing, since a key only ever verifies.
const KEY_FIELD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// RSA keys shorter than this are skipped: ring refuses to verify with them anyway,
/// and skipping says why.
const MIN_RSA_BITS: usize = 2048;

/// An elliptic curve Gantry verifies ECDSA signatures on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

impl Curve {
    /// The length in bytes of one coordinate.
    fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }
}

/// A public key in the form ring verifies with.
#[derive(Clone)]
pub(crate) enum PublicKey {
    /// Big-endian modulus and exponent, leading zero bytes removed.
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    /// The uncompressed point `0x04 || x || y`.
    Ec { curve: Curve, point: Vec<u8> },
    /// The 32-byte public key.
    Ed25519 { x: Vec<u8> },
}

impl PublicKey {
    /// The key's type as errors name it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            PublicKey::Rsa { .. } => "RSA",
            PublicKey::Ec {
                curve: Curve::P256, ..
            } => "EC P-256",
            PublicKey::Ec {
                curve: Curve::P384, ..
            } => "EC P-384",
            PublicKey::Ed25519 { .. } => "OKP Ed25519",
        }
    }
}

/// One usable signing key of a set.
#[derive(Clone)]
pub(crate) struct Jwk {
    pub(crate) kid: Option<String>,
    /// The `alg` the key is restricted to, when the set says.
    pub(crate) algorithm: Option<Algorithm>,
    pub(crate) key: PublicKey,
}

impl Jwk {
    /// Whether this key may verify a token signed with `algorithm`.
    fn fits(&self, algorithm: Algorithm) -> bool {
        algorithm.fits(&self.key) && self.algorithm.is_none_or(|only| only == algorithm)
    }
}

// Key material stays out of logs even though it is public: a log line that shows it is
// one copy-paste away from one that shows a private key.
impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("kind", &self.key.kind())
            .finish_non_exhaustive()
    }
}

/// A key of the set that Gantry cannot use, and why; kept so that a token naming it
/// gets that reason instead of "unknown key".
#[derive(Debug, Clone)]
struct Skipped {
    kid: Option<String>,
    reason: String,
}

/// The usable signing keys of a JWK set.
#[derive(Debug, Clone)]
pub(crate) struct Jwks {
    keys: Vec<Jwk>,
    skipped: Vec<Skipped>,
}

/// Why no key of a set verifies a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyChoiceError {
    /// No key has the token's `kid`.
    UnknownKid,
    /// The token names no `kid`, and not exactly one key fits its `alg`.
    NoSingleKey { fitting: usize },
    /// The key with the token's `kid` was skipped when the set was read.
    Unusable { reason: String },
    /// The key with the token's `kid` is of another type than the `alg` needs, or is
    /// restricted to another `alg`.
    Mismatch { key: String },
}

impl KeyChoiceError {
    /// Whether a newer copy of the set might have the key (the issuer rotated keys).
    pub(crate) fn might_be_newer(&self) -> bool {
        matches!(
            self,
            KeyChoiceError::UnknownKid | KeyChoiceError::NoSingleKey { fitting: 0 }
        )
    }
}

/// The fields of one JWK that Gantry reads. Everything is optional here so that one
/// odd key is skipped with a reason rather than failing the whole set.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    kid: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<Value>,
}

impl Jwks {
    /// Reads a JWK set. Fails only when the document is not a set at all; keys that
    /// are not for signatures, or of a type or curve Gantry does not verify with, are
    /// skipped.
    pub(crate) fn parse(document: &[u8]) -> Result<Jwks, String> {
        let raw: RawJwks = serde_json::from_slice(document)
            .map_err(|error| format!("not a JWK set ({{\"keys\": [...]}}): {error}"))?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for value in raw.keys {
            let kid = value.get("kid").and_then(Value::as_str).map(str::to_owned);
            let outcome = serde_json::from_value::<RawJwk>(value)
                .map_err(|_| "a field has the wrong JSON type".to_owned())
                .and_then(read_key);
            match outcome {
                Ok(Some(key)) => keys.push(key),
                Ok(None) => {}
                Err(reason) => skipped.push(Skipped { kid, reason }),
            }
        }
        Ok(Jwks { keys, skipped })
    }

    /// Whether the set has no key Gantry can use.
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Says why no key is usable, for a set that [`Jwks::is_empty`].
    pub(crate) fn why_empty(&self) -> String {
        if self.skipped.is_empty() {
            return "the set has no signing keys".to_owned();
        }
        let reasons: Vec<String> = self
            .skipped
            .iter()
            .map(|skipped| match &skipped.kid {
                Some(kid) => format!("{kid}: {}", skipped.reason),
                None => skipped.reason.clone(),
            })
            .collect();
        format!("the set has no usable signing key ({})", reasons.join("; "))
    }

    /// The key that verifies a token with this `kid` and `alg`: the key with that kid,
    /// or without a kid the only key that fits the alg.
    pub(crate) fn choose(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<&Jwk, KeyChoiceError> {
        let Some(kid) = kid else {
            let mut fitting = self.keys.iter().filter(|key| key.fits(algorithm));
            return match (fitting.next(), fitting.next()) {
                (Some(key), None) => Ok(key),
                (None, _) => Err(KeyChoiceError::NoSingleKey { fitting: 0 }),
                (Some(_), Some(_)) => Err(KeyChoiceError::NoSingleKey {
                    fitting: 2 + fitting.count(),
                }),
            };
        };
        let mut named = self
            .keys
            .iter()
            .filter(|key| key.kid.as_deref() == Some(kid))
            .peekable();
        if let Some(first) = named.peek().copied() {
            // A kid is meant to be unique, but a set may list one key under several
            // algorithms with the same kid; any of them that fits will do.
            return named
                .find(|key| key.fits(algorithm))
                .ok_or_else(|| KeyChoiceError::Mismatch {
                    key: match first.algorithm {
                        Some(only) => format!("{} key for {} only", first.key.kind(), only.name()),
                        None => format!("{} key", first.key.kind()),
                    },
                });
        }
        match self
            .skipped
            .iter()
            .find(|skipped| skipped.kid.as_deref() == Some(kid))
        {
            Some(skipped) => Err(KeyChoiceError::Unusable {
                reason: skipped.reason.clone(),
            }),
            None => Err(KeyChoiceError::UnknownKid),
        }
    }
}

/// One JWK as a usable key, `Ok(None)` for a key that is not for signatures (skipped
/// silently, as RFC 7517 section 5 asks), or the reason it cannot be used.
fn read_key(raw: RawJwk) -> Result<Option<Jwk>, String> {
    if raw.usage.as_deref().is_some_and(|usage| usage != "sig") {
        return Ok(None);
    }
    if raw
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
    {
        return Ok(None);
    }
    let algorithm = match raw.alg.as_deref() {
        None => None,
        Some(name) => Some(
            Algorithm::from_name(name)
                .ok_or_else(|| format!("its alg {name:?} is not one Gantry verifies with"))?,
        ),
    };
    let kty = raw.kty.as_deref().ok_or("it has no kty")?;
    let key = match kty {
        "RSA" => {
            let modulus = without_leading_zeros(field(raw.n.as_deref(), "n")?);
            let exponent = without_leading_zeros(field(raw.e.as_deref(), "e")?);
            let bits = modulus.first().map_or(0, |first| {
                modulus.len() * 8 - first.leading_zeros() as usize
            });
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "its RSA modulus has {bits} bits; Gantry needs at least {MIN_RSA_BITS}"
                ));
            }
            if exponent.is_empty() {
                return Err("its RSA exponent is zero".to_owned());
            }
            PublicKey::Rsa { modulus, exponent }
        }
        "EC" => {
            let curve = match raw.crv.as_deref().ok_or("it has no crv")? {
                "P-256" => Curve::P256,
                "P-384" => Curve::P384,
                other => return Err(format!("its EC curve {other:?} is not P-256 or P-384")),
            };
            let x = field(raw.x.as_deref(), "x")?;
            let y = field(raw.y.as_deref(), "y")?;
            let len = curve.coordinate_len();
            if x.len() != len || y.len() != len {
                return Err(format!("its x and y must be {len} bytes each"));
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            PublicKey::Ec { curve, point }
        }
        "OKP" => {
            let curve = raw.crv.as_deref().ok_or("it has no crv")?;
            if curve != "Ed25519" {
                return Err(format!("its OKP curve {curve:?} is not Ed25519"));
            }
            let x = field(raw.x.as_deref(), "x")?;
            if x.len() != 32 {
                return Err("its x must be 32 bytes".to_owned());
            }
            PublicKey::Ed25519 { x }
        }
        other => return Err(format!("its kty {other:?} is not RSA, EC or OKP")),
    };
    if let Some(algorithm) = algorithm {
        if !algorithm.fits(&key) {
            return Err(format!(
                "its alg {} does not fit its {} key",
                algorithm.name(),
                key.kind()
            ));
        }
    }
    Ok(Some(Jwk {
        kid: raw.kid,
        algorithm,
        key,
    }))
}

fn field(value: Option<&str>, name: &str) -> Result<Vec<u8>, String> {
    let value = value.ok_or_else(|| format!("it has no {name}"))?;
    KEY_FIELD
        .decode(value)
        .map_err(|_| format!("its {name} is not base64url"))
}

fn without_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|byte| **byte == 0).count();
    bytes.drain(..zeros);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_SET: &str = include_str!("testdata/rsa-2048.jwks.json");

    fn rsa_fields() -> (String, String) {
        let set: Value = serde_json::from_str(RSA_SET).expect("the fixture is JSON");
        let key = &set["keys"][0];
        (
            key["n"].as_str().expect("n").to_owned(),
            key["e"].as_str().expect("e").to_owned(),
        )
    }

    fn ec_point(len: usize) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(vec![7u8; len])
    }

    /// Parses a one-key set and says what became of the key.
    fn read_one(key: &Value) -> String {
        let set = serde_json::json!({ "keys": [key] }).to_string();
        let jwks = Jwks::parse(set.as_bytes()).expect("a set");
        match (jwks.keys.as_slice(), jwks.skipped.as_slice()) {
            ([key], []) => format!("usable {}", key.key.kind()),
            ([], [skipped]) => format!("skipped: {}", skipped.reason),
            ([], []) => "ignored".to_owned(),
            _ => unreachable!("one key in, at most one out"),
        }
    }

    #[test]
    fn reads_the_key_types_gantry_verifies_with() {
        let (n, e) = rsa_fields();
        let p256 = ec_point(32);
        let p384 = ec_point(48);
        let ed = ec_point(32);
        for (key, expected) in [
            (
                serde_json::json!({"kty": "RSA", "n": n, "e": e, "use": "sig"}),
                "usable RSA",
            ),
            (
                serde_json::json!({"kty": "RSA", "n": format!("AA{n}"), "e": e}),
                "usable RSA",
            ),
            (
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": p256, "y": p256}),
                "usable EC P-256",
            ),
            (
                serde_json::json!({"kty": "EC", "crv": "P-384", "x": p384, "y": p384, "alg": "ES384"}),
                "usable EC P-384",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": ed}),
                "usable OKP Ed25519",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": ed, "key_ops": ["verify"]}),
                "usable OKP Ed25519",
            ),
            (
                serde_json::json!({"kty": "RSA", "n": n, "e": e, "use": "enc"}),
                "ignored",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": ed, "key_ops": ["encrypt"]}),
                "ignored",
            ),
            (
                serde_json::json!({"kty": "oct", "k": "c2VjcmV0"}),
                "skipped: its kty \"oct\" is not RSA, EC or OKP",
            ),
            (
                serde_json::json!({"kty": "EC", "crv": "P-521", "x": p256, "y": p256}),
                "skipped: its EC curve \"P-521\" is not P-256 or P-384",
            ),
            (
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": p384, "y": p256}),
                "skipped: its x and y must be 32 bytes each",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "X25519", "x": ed}),
                "skipped: its OKP curve \"X25519\" is not Ed25519",
            ),
            (
                serde_json::json!({"kty": "RSA", "n": "AQAB", "e": e}),
                "skipped: its RSA modulus has 17 bits; Gantry needs at least 2048",
            ),
            (
                serde_json::json!({"kty": "RSA", "e": e}),
                "skipped: it has no n",
            ),
            (
                serde_json::json!({"kty": "RSA", "n": "!!", "e": e}),
                "skipped: its n is not base64url",
            ),
            (
                serde_json::json!({"kty": "RSA", "n": n, "e": e, "alg": "RSA-OAEP"}),
                "skipped: its alg \"RSA-OAEP\" is not one Gantry verifies with",
            ),
            (
                serde_json::json!({"kty": "RSA", "n": n, "e": e, "alg": "ES256"}),
                "skipped: its alg ES256 does not fit its RSA key",
            ),
            (
                serde_json::json!({"kty": 7}),
                "skipped: a field has the wrong JSON type",
            ),
        ] {
            assert_eq!(read_one(&key), expected, "{key}");
        }
    }

    #[test]
    fn refuses_documents_that_are_not_sets() {
        for document in ["[]", "{}", "{\"keys\": 1}", "not json"] {
            let error = Jwks::parse(document.as_bytes()).expect_err(document);
            assert!(error.starts_with("not a JWK set"), "{error}");
        }
    }

    #[test]
    fn chooses_by_kid_or_by_the_only_fitting_key() {
        let (n, e) = rsa_fields();
        let p256 = ec_point(32);
        let set = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "n": n, "e": e, "alg": "RS256"},
            {"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": p256, "y": p256},
            {"kty": "EC", "kid": "ec-2", "crv": "P-256", "x": p256, "y": p256},
            {"kty": "EC", "kid": "ec-521", "crv": "P-521", "x": p256, "y": p256},
        ]})
        .to_string();
        let jwks = Jwks::parse(set.as_bytes()).expect("a set");
        let choose = |kid, algorithm| {
            jwks.choose(kid, algorithm)
                .map(|key| key.kid.clone().unwrap_or_default())
        };
        assert_eq!(
            choose(Some("ec-2"), Algorithm::Es256),
            Ok("ec-2".to_owned())
        );
        assert_eq!(choose(None, Algorithm::Rs256), Ok("rsa".to_owned()));
        assert_eq!(
            choose(None, Algorithm::Es256),
            Err(KeyChoiceError::NoSingleKey { fitting: 2 })
        );
        assert_eq!(
            choose(None, Algorithm::EdDsa),
            Err(KeyChoiceError::NoSingleKey { fitting: 0 })
        );
        assert_eq!(
            choose(Some("nope"), Algorithm::Es256),
            Err(KeyChoiceError::UnknownKid)
        );
        assert_eq!(
            choose(Some("rsa"), Algorithm::Ps256),
            Err(KeyChoiceError::Mismatch {
                key: "RSA key for RS256 only".to_owned()
            })
        );
        assert_eq!(
            choose(Some("ec-1"), Algorithm::Es384),
            Err(KeyChoiceError::Mismatch {
                key: "EC P-256 key".to_owned()
            })
        );
        assert_eq!(
            choose(Some("ec-521"), Algorithm::Es256),
            Err(KeyChoiceError::Unusable {
                reason: "its EC curve \"P-521\" is not P-256 or P-384".to_owned()
            })
        );
    }
}
