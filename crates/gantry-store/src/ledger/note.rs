//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys, and the tlog
//! checkpoints (<https://c2sp.org/tlog-checkpoint>) they carry.
//!
//! Keys are written as Go's `golang.org/x/mod/sumdb/note` writes them, so its tools (and
//! witnesses built on it) read ours:
//!
//! - verifier key: `<name>+<key id, 8 hex digits>+<base64(0x01 || 32-byte public key)>`;
//! - signer key: `PRIVATE+KEY+<name>+<key id>+<base64(0x01 || 32-byte seed)>`;
//! - key id: the first 4 bytes, big-endian, of `SHA-256(name || 0x0A || 0x01 || public key)`.
//!
//! A signed note is its text (ending in a newline), a blank line, then signature lines
//! `— <name> <base64(key id || 64-byte signature)>`; the signature covers the text.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer as _;
use sha2::{Digest as _, Sha256};

/// The algorithm byte of Ed25519 keys and key ids.
const ALGORITHM_ED25519: u8 = 0x01;
/// What starts a signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// The most signature lines a note may have (as in Go's implementation).
const MAX_SIGNATURES: usize = 100;

/// Why a key, a note or a checkpoint was refused.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    /// A key's text, or a key name, is not well formed.
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),
    /// The system's random number generator failed.
    #[error("cannot generate a key: {0}")]
    Random(String),
    /// The note is not a well-formed signed note.
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),
    /// No signature line is by the given key.
    #[error("the note has no signature by key {key}")]
    NoSignature {
        /// The key's name and id, `<name>+<id>`.
        key: String,
    },
    /// The signature by the given key does not verify.
    #[error("the signature by key {key} does not verify")]
    BadSignature {
        /// The key's name and id, `<name>+<id>`.
        key: String,
    },
    /// The note's text is not a well-formed checkpoint.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
}

/// A named Ed25519 signing key. Its `Debug` shows the name and key id, never the key.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    key: ed25519_dalek::SigningKey,
}

/// Generates a new signing key named `name` from the system's random number generator.
///
/// A name is non-empty and has neither `+` nor whitespace.
pub fn generate(name: &str) -> Result<SigningKey, NoteError> {
    check_name(name)?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|error| NoteError::Random(error.to_string()))?;
    Ok(SigningKey {
        name: name.to_owned(),
        key: ed25519_dalek::SigningKey::from_bytes(&seed),
    })
}

impl SigningKey {
    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key in Go's signer key format, `PRIVATE+KEY+<name>+<id>+<base64(0x01 || seed)>`.
    /// This text is the secret: store it as one.
    pub fn to_skey_string(&self) -> String {
        let mut material = [0u8; 33];
        material[0] = ALGORITHM_ED25519;
        material[1..].copy_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            key_id(&self.name, &self.key.verifying_key()),
            BASE64.encode(material)
        )
    }

    /// Reads a key written by [`SigningKey::to_skey_string`] (or by Go's `note.GenerateKey`).
    pub fn from_skey_string(text: &str) -> Result<Self, NoteError> {
        let rest = text
            .trim_end()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::MalformedKey(
                "a signer key starts with PRIVATE+KEY+",
            ))?;
        let (name, id, material) = split_key(rest)?;
        let seed: [u8; 32] = material
            .try_into()
            .map_err(|_| NoteError::MalformedKey("an Ed25519 seed is 32 bytes"))?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        if key_id(name, &key.verifying_key()) != id {
            return Err(NoteError::MalformedKey("the key id does not match the key"));
        }
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }

    /// The matching verifier key.
    pub fn verifier_key(&self) -> VerifierKey {
        let key = self.key.verifying_key();
        VerifierKey {
            id: key_id(&self.name, &key),
            name: self.name.clone(),
            key,
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SigningKey")
            .field("name", &self.name)
            .field(
                "id",
                &format_args!("{:08x}", key_id(&self.name, &self.key.verifying_key())),
            )
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A named Ed25519 public key that verifies notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl VerifierKey {
    /// Reads a key in Go's verifier key format, `<name>+<id>+<base64(0x01 || public key)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, material) = split_key(text.trim_end())?;
        let bytes: [u8; 32] = material
            .try_into()
            .map_err(|_| NoteError::MalformedKey("an Ed25519 public key is 32 bytes"))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| NoteError::MalformedKey("not an Ed25519 public key"))?;
        if key.is_weak() {
            return Err(NoteError::MalformedKey(
                "a weak (small-order) Ed25519 public key",
            ));
        }
        if key_id(name, &key) != id {
            return Err(NoteError::MalformedKey("the key id does not match the key"));
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// The key in Go's verifier key format.
    pub fn to_vkey_string(&self) -> String {
        let mut material = [0u8; 33];
        material[0] = ALGORITHM_ED25519;
        material[1..].copy_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, BASE64.encode(material))
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id: the first 4 bytes of `SHA-256(name || 0x0A || 0x01 || public key)`.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// `<name>+<id>`: how errors name the key.
    fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_vkey_string())
    }
}

/// Splits `<name>+<id>+<base64(0x01 || key)>` and returns the name, the id and the key bytes.
fn split_key(text: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let (name, rest) = text
        .split_once('+')
        .ok_or(NoteError::MalformedKey("expected <name>+<id>+<key>"))?;
    let (id, material) = rest
        .split_once('+')
        .ok_or(NoteError::MalformedKey("expected <name>+<id>+<key>"))?;
    check_name(name)?;
    if id.len() != 8
        || !id
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(NoteError::MalformedKey(
            "the key id is 8 lowercase hex digits",
        ));
    }
    let id = u32::from_str_radix(id, 16).expect("checked to be 8 hex digits");
    let material = BASE64
        .decode(material)
        .map_err(|_| NoteError::MalformedKey("the key is not base64"))?;
    match material.split_first() {
        Some((&ALGORITHM_ED25519, key)) => Ok((name, id, key.to_vec())),
        _ => Err(NoteError::MalformedKey(
            "not an Ed25519 key (algorithm byte 0x01)",
        )),
    }
}

/// A key name is non-empty and has neither `+` nor whitespace (so it fits in a key's text and
/// in a signature line).
fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains(|c: char| c == '+' || c.is_whitespace()) {
        return Err(NoteError::MalformedKey(
            "a key name is non-empty, without '+' or whitespace",
        ));
    }
    Ok(())
}

fn key_id(name: &str, key: &ed25519_dalek::VerifyingKey) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ALGORITHM_ED25519]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Signs `text` (which ends in a newline) and returns the whole signed note.
fn sign_text(text: &str, key: &SigningKey) -> String {
    let signature = key.key.sign(text.as_bytes());
    let mut blob = Vec::with_capacity(68);
    blob.extend_from_slice(&key_id(&key.name, &key.key.verifying_key()).to_be_bytes());
    blob.extend_from_slice(&signature.to_bytes());
    format!(
        "{text}\n{SIGNATURE_PREFIX}{} {}\n",
        key.name,
        BASE64.encode(blob)
    )
}

/// Checks a signed note's form and its signature by `key`, and returns its text. Signature
/// lines by other keys are ignored.
fn open<'a>(note: &'a str, key: &VerifierKey) -> Result<&'a str, NoteError> {
    // Valid UTF-8 (a &str is) with no ASCII control characters but newlines.
    if note.bytes().any(|byte| byte < 0x20 && byte != b'\n') {
        return Err(NoteError::MalformedNote(
            "control characters other than newline",
        ));
    }
    let split = note.rfind("\n\n").ok_or(NoteError::MalformedNote(
        "no blank line before the signatures",
    ))?;
    let (text, signatures) = (&note[..=split], &note[split + 2..]);
    let Some(signatures) = signatures.strip_suffix('\n') else {
        return Err(NoteError::MalformedNote(
            "no signature lines, or no final newline",
        ));
    };
    let mut found = None;
    for (index, line) in signatures.split('\n').enumerate() {
        if index == MAX_SIGNATURES {
            return Err(NoteError::MalformedNote("too many signatures"));
        }
        let (name, blob) = line
            .strip_prefix(SIGNATURE_PREFIX)
            .and_then(|line| line.split_once(' '))
            .ok_or(NoteError::MalformedNote(
                "a signature line is `— <name> <signature>`",
            ))?;
        check_name(name).map_err(|_| NoteError::MalformedNote("bad key name in a signature"))?;
        let blob = BASE64
            .decode(blob)
            .map_err(|_| NoteError::MalformedNote("a signature is not base64"))?;
        if blob.len() < 5 {
            return Err(NoteError::MalformedNote("a signature is too short"));
        }
        let id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
        if name == key.name && id == key.id && found.is_none() {
            found = Some(blob);
        }
    }
    let blob = found.ok_or_else(|| NoteError::NoSignature { key: key.label() })?;
    let signature = ed25519_dalek::Signature::from_slice(&blob[4..])
        .map_err(|_| NoteError::BadSignature { key: key.label() })?;
    key.key
        .verify_strict(text.as_bytes(), &signature)
        .map_err(|_| NoteError::BadSignature { key: key.label() })?;
    Ok(text)
}

/// A tlog checkpoint: the log's origin, its size, and the Merkle root of its first `size`
/// leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `gantry.example.com/ledger`: one non-empty line.
    pub origin: String,
    /// How many entries the root covers.
    pub size: u64,
    /// The RFC 6962 root of the first `size` entries' leaf hashes.
    pub root: [u8; 32],
}

impl Checkpoint {
    /// The note text: `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// Reads a checkpoint body. Extension lines after the root are allowed, as the
    /// specification says, and ignored.
    pub fn parse_body(text: &str) -> Result<Self, NoteError> {
        let text = text
            .strip_suffix('\n')
            .ok_or(NoteError::MalformedCheckpoint(
                "the text does not end in a newline",
            ))?;
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(NoteError::MalformedCheckpoint("the origin line is empty"));
        }
        let size = lines.next().unwrap_or_default();
        let canonical_number = !size.is_empty()
            && size.bytes().all(|byte| byte.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size = canonical_number
            .then(|| size.parse::<u64>().ok())
            .flatten()
            .ok_or(NoteError::MalformedCheckpoint(
                "the size line is not a decimal number",
            ))?;
        let root = lines
            .next()
            .and_then(|root| BASE64.decode(root).ok())
            .and_then(|root| <[u8; 32]>::try_from(root).ok())
            .ok_or(NoteError::MalformedCheckpoint(
                "the root line is not a base64 SHA-256",
            ))?;
        if lines.any(str::is_empty) {
            return Err(NoteError::MalformedCheckpoint("an empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// Signs `checkpoint` with `key` and returns the signed note: the body, a blank line and
/// the signature line.
///
/// The origin must be one non-empty line, or the note will not verify.
pub fn sign(checkpoint: &Checkpoint, key: &SigningKey) -> String {
    debug_assert!(
        !checkpoint.origin.is_empty() && !checkpoint.origin.contains('\n'),
        "a checkpoint origin is one non-empty line"
    );
    sign_text(&checkpoint.body(), key)
}

/// Verifies a signed checkpoint with `key` and returns the checkpoint. Signatures by other
/// keys are ignored.
pub fn verify(note: &str, key: &VerifierKey) -> Result<Checkpoint, NoteError> {
    Checkpoint::parse_body(open(note, key)?)
}

/// The size line of a checkpoint note, without verifying anything: for placing checkpoints
/// in an export.
pub(crate) fn unverified_size(note: &str) -> Option<u64> {
    note.split('\n').nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // From golang.org/x/mod/sumdb/note's note_test.go.
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_SIGNATURE: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn go_vectors() {
        let signer = SigningKey::from_skey_string(GO_SKEY).expect("Go's signer key reads");
        assert_eq!(signer.to_skey_string(), GO_SKEY);
        let verifier = VerifierKey::parse(GO_VKEY).expect("Go's verifier key reads");
        assert_eq!(verifier.to_vkey_string(), GO_VKEY);
        assert_eq!(verifier.id(), 0xc74f_20a3);
        assert_eq!(signer.verifier_key(), verifier);
        // Ed25519 is deterministic: the same note, byte for byte.
        let note = sign_text(GO_TEXT, &signer);
        assert_eq!(note, format!("{GO_TEXT}\n{GO_SIGNATURE}"));
        assert_eq!(open(&note, &verifier).expect("verifies"), GO_TEXT);
        let tampered = note.replace("cryptography", "cryptographY");
        assert!(matches!(
            open(&tampered, &verifier),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn mangled_keys_are_refused() {
        // As Go's TestNewVerifier: every proper substring and every one-byte change fails.
        let bytes = GO_VKEY.as_bytes();
        for start in 0..bytes.len() {
            for end in start + 1..=bytes.len() {
                if (start, end) != (0, bytes.len()) {
                    let text = std::str::from_utf8(&bytes[start..end]).expect("ASCII");
                    assert!(VerifierKey::parse(text).is_err(), "{text}");
                }
            }
        }
        for index in 0..bytes.len() {
            let mut mangled = bytes.to_vec();
            mangled[index] += 1;
            let text = String::from_utf8(mangled).expect("ASCII");
            assert!(VerifierKey::parse(&text).is_err(), "{text}");
        }
        // Wrong length, and unknown algorithm, each with an adjusted key hash.
        for text in [
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ] {
            assert!(VerifierKey::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn generated_keys_round_trip() {
        let key = generate("gantry.example.com/ledger").expect("generates");
        let again = SigningKey::from_skey_string(&key.to_skey_string()).expect("reads back");
        assert_eq!(again.verifier_key(), key.verifier_key());
        let vkey = key.verifier_key().to_vkey_string();
        assert_eq!(
            VerifierKey::parse(&vkey).expect("reads back"),
            key.verifier_key()
        );
        assert!(generate("two words").is_err());
        assert!(generate("a+b").is_err());
        assert!(generate("").is_err());
    }

    #[test]
    fn debug_redacts_the_key() {
        let key = SigningKey::from_skey_string(GO_SKEY).expect("reads");
        let debug = format!("{key:?}");
        assert_eq!(
            debug,
            r#"SigningKey { name: "PeterNeumann", id: c74f20a3, key: "<redacted>" }"#
        );
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "gantry.example.com/ledger".to_owned(),
            size: 1234,
            root: [7; 32],
        }
    }

    #[test]
    fn checkpoints_round_trip() {
        let key = generate("ledger").expect("generates");
        let note = sign(&checkpoint(), &key);
        assert!(note.starts_with(&format!(
            "gantry.example.com/ledger\n1234\n{}\n\n\u{2014} ledger ",
            BASE64.encode([7; 32])
        )));
        assert_eq!(
            verify(&note, &key.verifier_key()).expect("verifies"),
            checkpoint()
        );
        assert_eq!(unverified_size(&note), Some(1234));
    }

    #[test]
    fn other_signatures_are_ignored() {
        let key = generate("ledger").expect("generates");
        let witness = generate("witness").expect("generates");
        let note = sign(&checkpoint(), &key);
        let witnessed = sign_text(&checkpoint().body(), &witness);
        let signature_line = witnessed.rsplit_once("\n\n").expect("signed").1;
        // The witness's signature before and after ours.
        let before = format!(
            "{}\n\n{signature_line}{}",
            checkpoint().body().trim_end(),
            { note.rsplit_once("\n\n").expect("signed").1 }
        );
        let after = format!("{note}{signature_line}");
        for note in [&before, &after] {
            assert_eq!(
                verify(note, &key.verifier_key()).expect("verifies"),
                checkpoint()
            );
            assert_eq!(
                verify(note, &witness.verifier_key()).expect("verifies"),
                checkpoint()
            );
        }
    }

    #[test]
    fn refusals() {
        let key = generate("ledger").expect("generates");
        let other = generate("ledger").expect("generates");
        let note = sign(&checkpoint(), &key);
        assert!(matches!(
            verify(&note, &other.verifier_key()),
            Err(NoteError::NoSignature { key }) if key.starts_with("ledger+")
        ));
        let tampered = note.replace("1234", "1235");
        assert!(matches!(
            verify(&tampered, &key.verifier_key()),
            Err(NoteError::BadSignature { .. })
        ));
        for malformed in [
            "",
            "no signatures\n",
            "text\n\n",
            "text\n\nno dash\n",
            "text\n\n\u{2014} name\n",
            "text\n\n\u{2014} name !!!\n",
            "text\n\n\u{2014} name AAAA\n",
            "te\txt\n\n\u{2014} name AAAAAAAA\n",
        ] {
            assert!(
                matches!(
                    verify(malformed, &key.verifier_key()),
                    Err(NoteError::MalformedNote(_))
                ),
                "{malformed:?}"
            );
        }
        for body in [
            "origin\n12\n",
            "\n12\nAAAA\n",
            "origin\n012\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "origin\n+12\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "origin\n12\nBwcH\n",
            "origin\n12\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
            "origin\n12\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\nx\n",
        ] {
            let note = sign_text(body, &key);
            assert!(
                matches!(
                    verify(&note, &key.verifier_key()),
                    Err(NoteError::MalformedCheckpoint(_) | NoteError::MalformedNote(_))
                ),
                "{body:?}"
            );
        }
        let extended = sign_text(&format!("{}extension\n", checkpoint().body()), &key);
        assert_eq!(
            verify(&extended, &key.verifier_key()).expect("verifies"),
            checkpoint()
        );
    }
}
