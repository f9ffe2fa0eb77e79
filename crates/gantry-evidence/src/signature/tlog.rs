//! Rekor (v1) transparency log entries: the signed entry timestamp, the inclusion proof
//! and its signed checkpoint, and the entry body's agreement with the bundle.

use base64::Engine as _;
use ring::digest::{SHA256, digest};
use serde::{Deserialize, Deserializer, Serialize};

use super::decode_base64;
use super::trusted_root::{TransparencyLog, WireLogId};

/// A `TransparencyLogEntry` of a Sigstore bundle.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entry {
    #[serde(deserialize_with = "int64")]
    pub log_index: i64,
    pub log_id: WireLogId,
    pub kind_version: KindVersion,
    #[serde(deserialize_with = "int64")]
    pub integrated_time: i64,
    pub inclusion_promise: Option<InclusionPromise>,
    pub inclusion_proof: Option<InclusionProof>,
    pub canonicalized_body: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KindVersion {
    pub kind: String,
    pub version: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InclusionPromise {
    pub signed_entry_timestamp: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InclusionProof {
    #[serde(deserialize_with = "int64")]
    pub log_index: i64,
    pub root_hash: String,
    #[serde(deserialize_with = "int64")]
    pub tree_size: i64,
    #[serde(default)]
    pub hashes: Vec<String>,
    pub checkpoint: Option<Checkpoint>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Checkpoint {
    pub envelope: String,
}

/// Protobuf JSON writes 64-bit integers as strings; numbers are accepted too.
fn int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int64 {
        Number(i64),
        Text(String),
    }
    match Int64::deserialize(deserializer)? {
        Int64::Number(number) => Ok(number),
        Int64::Text(text) => text.parse().map_err(serde::de::Error::custom),
    }
}

/// The payload of a signed entry timestamp: Rekor signs these four fields as canonical
/// JSON (keys sorted, no spaces). The field order here is that order.
#[derive(Serialize)]
struct SignedEntryPayload<'a> {
    body: &'a str,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logID")]
    log_id: &'a str,
    #[serde(rename = "logIndex")]
    log_index: i64,
}

impl Entry {
    /// The log entry's body bytes.
    pub(crate) fn body(&self) -> Result<Vec<u8>, String> {
        decode_base64(&self.canonicalized_body)
            .map_err(|reason| format!("canonicalizedBody: {reason}"))
    }

    /// Verifies the signed entry timestamp (the inclusion promise) with the log's key:
    /// the log's word that it integrated this body at `integratedTime`.
    pub(crate) fn verify_signed_entry_timestamp(
        &self,
        log: &TransparencyLog,
    ) -> Result<(), String> {
        let promise = self.inclusion_promise.as_ref().ok_or(
            "the entry has no inclusion promise (signed entry timestamp), which dates the signature; \
             RFC 3161 timestamps and Rekor v2 entries are not supported",
        )?;
        let signature = decode_base64(&promise.signed_entry_timestamp)
            .map_err(|reason| format!("signedEntryTimestamp: {reason}"))?;
        // Rekor signed the standard base64 of the body; re-encode in case the bundle used
        // another form.
        let body = base64::engine::general_purpose::STANDARD.encode(self.body()?);
        let log_id = hex::encode(&log.log_id);
        let payload = serde_json::to_vec(&SignedEntryPayload {
            body: &body,
            integrated_time: self.integrated_time,
            log_id: &log_id,
            log_index: self.log_index,
        })
        .map_err(|error| error.to_string())?;
        if log.key.verify(&payload, &signature) {
            Ok(())
        } else {
            Err(format!(
                "the signed entry timestamp does not verify with the key of log {}",
                log.name
            ))
        }
    }

    /// Verifies the inclusion proof, when there is one with a checkpoint: the body's
    /// leaf hash leads to the root hash, and the log signed that root in the checkpoint.
    /// A proof without a checkpoint (v0.1 bundles have them) proves nothing, since
    /// nothing signs its root, and is passed over: the signed entry timestamp is what
    /// is relied on.
    pub(crate) fn verify_inclusion_proof(&self, log: &TransparencyLog) -> Result<(), String> {
        let Some(proof) = &self.inclusion_proof else {
            return Ok(());
        };
        let Some(checkpoint) = &proof.checkpoint else {
            return Ok(());
        };
        let root = decode_base64(&proof.root_hash)
            .map_err(|reason| format!("inclusionProof.rootHash: {reason}"))?;
        let hashes = proof
            .hashes
            .iter()
            .enumerate()
            .map(|(index, hash)| {
                decode_base64(hash)
                    .map_err(|reason| format!("inclusionProof.hashes[{index}]: {reason}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let index =
            u64::try_from(proof.log_index).map_err(|_| "inclusionProof.logIndex is negative")?;
        let size =
            u64::try_from(proof.tree_size).map_err(|_| "inclusionProof.treeSize is negative")?;
        let leaf = leaf_hash(&self.body()?);
        let computed = root_from_inclusion_proof(index, size, leaf, &hashes)?;
        if computed.as_slice() != root.as_slice() {
            return Err(format!(
                "the inclusion proof leads to root {}, not to the proof's root hash {}",
                hex::encode(computed),
                hex::encode(&root)
            ));
        }
        let (size_signed, root_signed) = verify_checkpoint(&checkpoint.envelope, log)?;
        if size_signed != size || root_signed != root {
            return Err(format!(
                "the checkpoint signs tree size {size_signed} and root {}, but the proof is for size {size} and root {}",
                hex::encode(&root_signed),
                hex::encode(&root)
            ));
        }
        Ok(())
    }
}

fn leaf_hash(leaf: &[u8]) -> [u8; 32] {
    let mut data = Vec::with_capacity(leaf.len() + 1);
    data.push(0);
    data.extend_from_slice(leaf);
    to_array(digest(&SHA256, &data).as_ref())
}

fn node_hash(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut data = Vec::with_capacity(1 + left.len() + right.len());
    data.push(1);
    data.extend_from_slice(left);
    data.extend_from_slice(right);
    to_array(digest(&SHA256, &data).as_ref())
}

fn to_array(bytes: &[u8]) -> [u8; 32] {
    let mut array = [0; 32];
    array.copy_from_slice(bytes);
    array
}

/// The root an RFC 9162 (section 2.1.3.2) inclusion proof leads to from `leaf`.
fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    proof: &[Vec<u8>],
) -> Result<[u8; 32], String> {
    if index >= size {
        return Err(format!(
            "the inclusion proof's index {index} is not below its tree size {size}"
        ));
    }
    // The proof first climbs inner nodes, where the index's bit says the side, then
    // the right border, where every sibling is on the left.
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    if proof.len() != inner + border {
        return Err(format!(
            "the inclusion proof has {} hashes, but index {index} in a tree of {size} needs {}",
            proof.len(),
            inner + border
        ));
    }
    if let Some(bad) = proof.iter().position(|hash| hash.len() != 32) {
        return Err(format!("inclusion proof hash {bad} is not 32 bytes"));
    }
    let mut hash = leaf;
    for (level, sibling) in proof[..inner].iter().enumerate() {
        hash = if (index >> level) & 1 == 0 {
            node_hash(&hash, sibling)
        } else {
            node_hash(sibling, &hash)
        };
    }
    for sibling in &proof[inner..] {
        hash = node_hash(sibling, &hash);
    }
    Ok(hash)
}

/// Verifies a checkpoint (a signed note: origin, tree size and base64 root hash, a
/// blank line, then `— name base64(key hint ‖ signature)` lines) with the log's key,
/// and returns the size and root it signs. The key hint is the first four bytes of the
/// log ID.
fn verify_checkpoint(envelope: &str, log: &TransparencyLog) -> Result<(u64, Vec<u8>), String> {
    let (note, signatures) = envelope
        .split_once("\n\n")
        .ok_or("the checkpoint has no blank line between its note and its signatures")?;
    let note = &envelope[..=note.len()];
    let mut lines = note.lines();
    let _origin = lines
        .next()
        .filter(|origin| !origin.is_empty())
        .ok_or("the checkpoint has no origin")?;
    let size = lines
        .next()
        .and_then(|size| size.parse::<u64>().ok())
        .ok_or("the checkpoint's second line is not a tree size")?;
    let root = lines
        .next()
        .and_then(|root| decode_base64(root).ok())
        .ok_or("the checkpoint's third line is not a base64 root hash")?;
    let hint = log
        .log_id
        .get(..4)
        .ok_or("the log ID is shorter than a key hint")?;
    let verified = signatures
        .lines()
        .filter_map(|line| line.strip_prefix("\u{2014} "))
        .filter_map(|line| line.split_once(' '))
        .filter_map(|(_name, signature)| decode_base64(signature).ok())
        .filter(|signature| signature.len() > 4 && &signature[..4] == hint)
        .any(|signature| log.key.verify(note.as_bytes(), &signature[4..]));
    if verified {
        Ok((size, root))
    } else {
        Err(format!(
            "the checkpoint carries no signature that verifies with the key of log {}",
            log.name
        ))
    }
}

/// The parts of a `hashedrekord` 0.0.1 body that are checked against the bundle.
#[derive(Deserialize)]
pub(crate) struct HashedRekord {
    pub spec: HashedRekordSpec,
}

#[derive(Deserialize)]
pub(crate) struct HashedRekordSpec {
    pub data: HashedRekordData,
    pub signature: HashedRekordSignature,
}

#[derive(Deserialize)]
pub(crate) struct HashedRekordData {
    pub hash: HashValue,
}

#[derive(Deserialize)]
pub(crate) struct HashValue {
    pub algorithm: String,
    pub value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HashedRekordSignature {
    pub content: String,
    pub public_key: HashedRekordPublicKey,
}

#[derive(Deserialize)]
pub(crate) struct HashedRekordPublicKey {
    pub content: String,
}

/// The parts of a `dsse` 0.0.1 body that are checked against the bundle.
#[derive(Deserialize)]
pub(crate) struct DsseRekord {
    pub spec: DsseRekordSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DsseRekordSpec {
    pub payload_hash: HashValue,
    pub signatures: Vec<DsseRekordSignature>,
}

#[derive(Deserialize)]
pub(crate) struct DsseRekordSignature {
    pub signature: String,
    pub verifier: String,
}

/// The parts of an `intoto` 0.0.2 body that are checked against the bundle. Its
/// signatures and keys are base64 twice: once by the log, once by the envelope.
#[derive(Deserialize)]
pub(crate) struct IntotoRekord {
    pub spec: IntotoRekordSpec,
}

#[derive(Deserialize)]
pub(crate) struct IntotoRekordSpec {
    pub content: IntotoRekordContent,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IntotoRekordContent {
    pub envelope: IntotoRekordEnvelope,
    pub payload_hash: HashValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IntotoRekordEnvelope {
    pub payload_type: String,
    pub signatures: Vec<IntotoRekordSignature>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IntotoRekordSignature {
    pub sig: String,
    pub public_key: String,
}

/// The DER of the PEM certificate a log entry records (base64 of the PEM text).
pub(crate) fn recorded_certificate(base64_pem: &str) -> Result<Vec<u8>, String> {
    let pem_text = decode_base64(base64_pem)?;
    let block = pem::parse(pem_text).map_err(|error| format!("not a PEM certificate: {error}"))?;
    Ok(block.into_contents())
}

#[cfg(test)]
mod tests {
    use super::{leaf_hash, node_hash, root_from_inclusion_proof};

    /// The RFC 6962 root of `leaves`, and the inclusion proof of leaf `index`.
    fn tree(leaves: &[[u8; 32]], index: usize) -> ([u8; 32], Vec<Vec<u8>>) {
        if leaves.len() == 1 {
            return (leaves[0], Vec::new());
        }
        let split = leaves.len().next_power_of_two() / 2;
        let (left, right) = leaves.split_at(split);
        if index < split {
            let (left_root, mut proof) = tree(left, index);
            let (right_root, _) = tree(right, 0);
            proof.push(right_root.to_vec());
            (node_hash(&left_root, &right_root), proof)
        } else {
            let (right_root, mut proof) = tree(right, index - split);
            let (left_root, _) = tree(left, 0);
            proof.push(left_root.to_vec());
            (node_hash(&left_root, &right_root), proof)
        }
    }

    #[test]
    fn inclusion_proofs_lead_to_the_root_for_every_shape() {
        for size in 1..=17_usize {
            let leaves: Vec<[u8; 32]> = (0..size).map(|i| leaf_hash(&[i as u8])).collect();
            for index in 0..size {
                let (root, proof) = tree(&leaves, index);
                let got =
                    root_from_inclusion_proof(index as u64, size as u64, leaves[index], &proof);
                assert_eq!(got, Ok(root), "size {size} index {index}");
                if let Some(first) = proof.first() {
                    let mut wrong = proof.clone();
                    wrong[0] = leaf_hash(first).to_vec();
                    let got =
                        root_from_inclusion_proof(index as u64, size as u64, leaves[index], &wrong);
                    assert_ne!(got, Ok(root));
                }
            }
        }
        assert!(root_from_inclusion_proof(3, 3, leaf_hash(b""), &[]).is_err());
    }
}
