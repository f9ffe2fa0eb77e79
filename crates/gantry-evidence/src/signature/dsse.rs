//! DSSE envelopes: the pre-authentication encoding and key-based verification.

use serde::Deserialize;

use super::{
    SignatureError, Signed, Signer, TrustedKey, Verified, decode_base64, first_verifying_key,
    key_names,
};

/// The payload type of an in-toto statement in a DSSE envelope.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A DSSE envelope as it is written, alone or inside a Sigstore bundle.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope {
    pub payload_type: String,
    pub payload: String,
    #[serde(default)]
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EnvelopeSignature {
    // `keyid` is not read: it is unauthenticated, so every key is tried regardless.
    pub sig: String,
}

/// A decoded envelope: the payload and the signatures as bytes.
pub(crate) struct DecodedEnvelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<Vec<u8>>,
}

impl Envelope {
    pub(crate) fn decode(self) -> Result<DecodedEnvelope, String> {
        let payload =
            decode_base64(&self.payload).map_err(|reason| format!("payload: {reason}"))?;
        let signatures = self
            .signatures
            .iter()
            .enumerate()
            .map(|(index, signature)| {
                decode_base64(&signature.sig)
                    .map_err(|reason| format!("signatures[{index}].sig: {reason}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(DecodedEnvelope {
            payload_type: self.payload_type,
            payload,
            signatures,
        })
    }
}

/// The DSSE v1 pre-authentication encoding, which is what is signed:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    encoded.extend_from_slice(b"DSSEv1 ");
    encoded.extend_from_slice(payload_type.len().to_string().as_bytes());
    encoded.push(b' ');
    encoded.extend_from_slice(payload_type.as_bytes());
    encoded.push(b' ');
    encoded.extend_from_slice(payload.len().to_string().as_bytes());
    encoded.push(b' ');
    encoded.extend_from_slice(payload);
    encoded
}

/// Verifies a DSSE envelope (JSON bytes) against trusted keys.
///
/// Every signature is tried with every key, since a `keyid` is only a hint; the first
/// signature that verifies names the signer. The payload type and payload come back as
/// signed, unread: checking that an in-toto statement names the right subject is the
/// caller's, who knows the digest.
pub fn verify_dsse(envelope: &[u8], keys: &[TrustedKey]) -> Result<Verified, SignatureError> {
    const WHAT: &str = "DSSE envelope";
    if keys.is_empty() {
        return Err(SignatureError::NoTrustedKeys { what: WHAT });
    }
    let malformed = |reason: String| SignatureError::Malformed { what: WHAT, reason };
    let envelope: Envelope =
        serde_json::from_slice(envelope).map_err(|error| malformed(error.to_string()))?;
    let envelope = envelope.decode().map_err(malformed)?;
    if envelope.signatures.is_empty() {
        return Err(SignatureError::NoSignatures { what: WHAT });
    }
    let message = pae(&envelope.payload_type, &envelope.payload);
    let key = envelope
        .signatures
        .iter()
        .find_map(|signature| first_verifying_key(keys, &message, signature))
        .ok_or_else(|| SignatureError::NotVerified {
            what: WHAT,
            tried: key_names(keys),
        })?;
    Ok(Verified {
        signer: Signer::Key {
            name: key.name.clone(),
        },
        signed: Signed::Payload {
            payload_type: envelope.payload_type,
            payload: envelope.payload,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::pae;

    #[test]
    fn pae_matches_the_specification_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }
}
