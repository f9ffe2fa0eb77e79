//! From bytes to a summary, one parser per kind.
//!
//! Every parser reads the whole document into a summary or refuses it with an
//! [`EvidenceError::Malformed`] that says where: a `line L, column C` for XML and for
//! JSON that does not parse, a field path such as `Results[2].Vulnerabilities[0].Severity`
//! for JSON whose shape is wrong. The checks shared by all kinds (size, emptiness,
//! UTF-8) are done here, once, before a kind's parser sees the text.

mod cyclonedx;
mod generic;
mod grype;
mod json;
mod junit;
mod purl;
mod sarif;
mod slsa;
mod spdx;
mod trivy;

use std::collections::BTreeMap;

use gantry_core::Digest;

use crate::kind::Kind;
use crate::summary::{Finding, Summary, VulnerabilitySummary};

/// The largest report Gantry reads; more is refused before parsing.
pub const MAX_EVIDENCE_BYTES: usize = 16 * 1024 * 1024;

/// A parsed piece of evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub summary: Summary,
    /// The artifact digests the document itself names as its subject (an in-toto
    /// statement's subjects, a scan's image digest, an SBOM's component digest); empty
    /// when the format names none.
    pub subjects: Vec<Digest>,
}

/// Why evidence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("{kind} evidence is {size} bytes, more than the {MAX_EVIDENCE_BYTES} allowed")]
    TooLarge { kind: Kind, size: usize },
    /// The bytes are not a document of this kind; `at` is where, when known
    /// (`line 3, column 7` or a JSON path such as `Results[0].Vulnerabilities`).
    #[error("not valid {kind}{}: {reason}", at.as_ref().map(|a| format!(" at {a}")).unwrap_or_default())]
    Malformed {
        kind: Kind,
        at: Option<String>,
        reason: String,
    },
    #[error(
        "{kind} evidence names subject {}, but the release holds {}",
        join(named),
        join(expected)
    )]
    WrongSubject {
        kind: Kind,
        named: Vec<Digest>,
        expected: Vec<Digest>,
    },
}

fn join(digests: &[Digest]) -> String {
    digests
        .iter()
        .map(Digest::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A refusal as a kind's parser sees it: where and why, without the kind, which
/// [`parse`] adds when it turns this into an [`EvidenceError::Malformed`].
#[derive(Debug)]
struct Malformed {
    at: Option<String>,
    reason: String,
}

impl Malformed {
    /// A refusal about one place in the document.
    fn at(at: impl Into<String>, reason: impl Into<String>) -> Malformed {
        Malformed {
            at: Some(at.into()),
            reason: reason.into(),
        }
    }

    /// A refusal about the document as a whole.
    fn whole(reason: impl Into<String>) -> Malformed {
        Malformed {
            at: None,
            reason: reason.into(),
        }
    }

    /// A refusal for a subject field whose value is not a digest.
    fn digest(at: impl Into<String>, error: &gantry_core::DigestError) -> Malformed {
        Malformed::at(at, format!("is not a usable subject: {error}"))
    }
}

/// Parses `bytes` as evidence of `kind`.
pub fn parse(kind: &Kind, bytes: &[u8]) -> Result<Parsed, EvidenceError> {
    if bytes.len() > MAX_EVIDENCE_BYTES {
        return Err(EvidenceError::TooLarge {
            kind: kind.clone(),
            size: bytes.len(),
        });
    }
    parse_text(kind, bytes).map_err(|Malformed { at, reason }| EvidenceError::Malformed {
        kind: kind.clone(),
        at,
        reason,
    })
}

fn parse_text(kind: &Kind, bytes: &[u8]) -> Result<Parsed, Malformed> {
    let text = document_text(bytes)?;
    let mut parsed = match kind {
        Kind::Junit => junit::parse(text)?,
        Kind::Sarif => sarif::parse(text)?,
        Kind::Trivy => trivy::parse(text)?,
        Kind::Grype => grype::parse(text)?,
        Kind::CycloneDx => cyclonedx::parse(text)?,
        Kind::Spdx => spdx::parse(text)?,
        Kind::SlsaProvenance => slsa::parse(text)?,
        Kind::Generic(declared_type) => generic::parse(declared_type, text)?,
    };
    // A document may name the same digest twice (several tags of one image); the
    // subjects are a set, kept in a stable order so summaries compare equal.
    parsed.subjects.sort();
    parsed.subjects.dedup();
    Ok(parsed)
}

/// The document as text: not empty, UTF-8, without a byte-order mark. Every format
/// Gantry reads is UTF-8 (JSON by RFC 8259; `JUnit` XML in practice, and quick-xml is
/// built here without other encodings).
fn document_text(bytes: &[u8]) -> Result<&str, Malformed> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Malformed::whole("the document is empty"));
    }
    std::str::from_utf8(bytes).map_err(|error| {
        let valid = &bytes[..error.valid_up_to()];
        // The prefix up to the first bad byte is UTF-8 by definition.
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        Malformed::at(
            line_and_column(valid, valid.len()),
            "is not UTF-8 (evidence documents must be UTF-8)",
        )
    })
}

/// `line L, column C` (both from 1, the column in characters) of a byte offset in
/// `text`; an offset past the end or inside a character is clamped back to one.
fn line_and_column(text: &str, offset: usize) -> String {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    format!("line {line}, column {column}")
}

/// A scan's summary: each (id, package) once, sorted. A scanner that reports the same
/// vulnerability in the same package twice (once per layer, or per matcher) keeps the
/// worst severity it gave and is fixable if either report said so.
fn vulnerabilities(scanner: String, findings: Vec<Finding>) -> Summary {
    let mut merged: BTreeMap<(String, String), (crate::summary::Severity, bool)> = BTreeMap::new();
    for finding in findings {
        let entry = merged
            .entry((finding.id, finding.package))
            .or_insert((finding.severity, finding.fixable));
        entry.0 = entry.0.max(finding.severity);
        entry.1 |= finding.fixable;
    }
    let mut findings: Vec<Finding> = merged
        .into_iter()
        .map(|((id, package), (severity, fixable))| Finding {
            id,
            severity,
            fixable,
            package,
        })
        .collect();
    findings.sort();
    Summary::Vulnerabilities(VulnerabilitySummary { scanner, findings })
}

/// The digest of a `repository@sha256:…` reference, as Trivy and Grype list an
/// image's repository digests; `at` names the field for the refusal.
fn repository_digest(reference: &str, at: &str) -> Result<Digest, Malformed> {
    let Some((_, digest)) = reference.rsplit_once('@') else {
        return Err(Malformed::at(
            at,
            format!("{reference:?} is not a repository digest (`repository@sha256:…`)"),
        ));
    };
    digest
        .parse()
        .map_err(|error| Malformed::digest(at, &error))
}

/// Refuses evidence that names subjects of which none is one of `expected` (the
/// release's digests, or one component's). Evidence that names no subject passes.
pub fn check_subjects(
    kind: &Kind,
    parsed: &Parsed,
    expected: &[Digest],
) -> Result<(), EvidenceError> {
    if parsed.subjects.is_empty() || parsed.subjects.iter().any(|s| expected.contains(s)) {
        return Ok(());
    }
    Err(EvidenceError::WrongSubject {
        kind: kind.clone(),
        named: parsed.subjects.clone(),
        expected: expected.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_and_column(text, 0), "line 1, column 1");
        assert_eq!(line_and_column(text, 3), "line 2, column 1");
        // After "cdé": é is two bytes but one column.
        assert_eq!(line_and_column(text, 7), "line 2, column 4");
        // Inside é: clamped back to its start.
        assert_eq!(line_and_column(text, 6), "line 2, column 3");
        assert_eq!(line_and_column(text, 100), "line 3, column 2");
    }

    #[test]
    fn not_utf8_names_the_position() {
        let error = document_text(b"{\n  \"a\": \"\xff\"}").unwrap_err();
        assert_eq!(error.at.as_deref(), Some("line 2, column 9"));
    }
}
