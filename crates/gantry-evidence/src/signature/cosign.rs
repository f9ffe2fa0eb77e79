//! cosign key-based signatures over simple-signing payloads.

use gantry_core::Digest;
use serde::Deserialize;

use super::{
    SignatureError, Signed, Signer, TrustedKey, Verified, decode_base64, first_verifying_key,
    key_names,
};

/// The `critical.type` of a cosign image signature payload.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";

/// The media type of a cosign `.sig` layer: the simple-signing payload, which
/// [`verify_cosign`] reports as the payload type.
pub const SIMPLE_SIGNING_PAYLOAD_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// The parts of a simple-signing payload that are checked; the rest (`optional`, the
/// docker reference) is the signer's claim and is handed back unread.
#[derive(Deserialize)]
struct SimpleSigning {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Verifies a cosign key-based signature of the image `expected`.
///
/// `payload` is the simple-signing JSON (the `.sig` layer's blob) and `signature` the
/// base64 signature (its `dev.cosignproject.cosign/signature` annotation). The signature
/// must verify over the payload bytes with one of `keys` (ECDSA over SHA-256 for P-256
/// keys, as cosign signs, or Ed25519); then the payload must be a cosign container image
/// signature whose `docker-manifest-digest` is `expected`. The payload is checked only
/// after the signature, so nothing unsigned is parsed.
pub fn verify_cosign(
    payload: &[u8],
    signature: &str,
    expected: &Digest,
    keys: &[TrustedKey],
) -> Result<Verified, SignatureError> {
    const WHAT: &str = "cosign signature";
    if keys.is_empty() {
        return Err(SignatureError::NoTrustedKeys { what: WHAT });
    }
    let signature = decode_base64(signature)
        .map_err(|reason| SignatureError::Malformed { what: WHAT, reason })?;
    let key = first_verifying_key(keys, payload, &signature).ok_or_else(|| {
        SignatureError::NotVerified {
            what: WHAT,
            tried: key_names(keys),
        }
    })?;
    let document: SimpleSigning =
        serde_json::from_slice(payload).map_err(|error| SignatureError::Malformed {
            what: "cosign payload",
            reason: error.to_string(),
        })?;
    if document.critical.kind != COSIGN_SIGNATURE_TYPE {
        return Err(SignatureError::WrongCosignType {
            found: document.critical.kind,
        });
    }
    let named = document.critical.image.docker_manifest_digest;
    if named != expected.as_str() {
        return Err(SignatureError::WrongDigest {
            what: "cosign payload",
            expected: expected.clone(),
            found: named,
        });
    }
    Ok(Verified {
        signer: Signer::Key {
            name: key.name.clone(),
        },
        signed: Signed::Payload {
            payload_type: SIMPLE_SIGNING_PAYLOAD_TYPE.to_owned(),
            payload: payload.to_vec(),
        },
    })
}
