//! SLSA provenance v1: an in-toto statement (v1, or v0.1 as older tools write it)
//! whose predicate is `https://slsa.dev/provenance/v1`, bare or as the payload of a
//! DSSE envelope.
//!
//! The envelope is only unpacked here; whether its signatures are good is the
//! business of the verification module, which a caller runs before trusting this.
//!
//! Subjects are the statement's `subject[].digest.sha256`. The source is the first
//! resolved dependency with a `git+` URI (its `@ref` cut off) and its `gitCommit` or
//! `sha1` digest; failing that, GitHub Actions' `externalParameters.workflow.repository`
//! and the first resolved dependency's commit digest.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use gantry_core::{Algorithm, Digest};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::json::{self, expect_value};
use super::{Malformed, Parsed, document_text};
use crate::summary::{ProvenanceSummary, Summary};

const STATEMENT_TYPES: [&str; 2] = [
    "https://in-toto.io/Statement/v1",
    "https://in-toto.io/Statement/v0.1",
];
const PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
const IN_TOTO_PAYLOAD: &str = "application/vnd.in-toto+json";

/// DSSE allows either base64 alphabet, with or without padding.
const PADDING_OPTIONAL: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const BASE64_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, PADDING_OPTIONAL);
const BASE64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, PADDING_OPTIONAL);

/// Enough of a document to tell an envelope from a bare statement.
#[derive(Debug, Deserialize)]
struct Probe {
    #[serde(rename = "payloadType", default)]
    payload_type: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "payloadType")]
    payload_type: String,
    payload: String,
    /// Read for their shape only; see the module documentation.
    #[expect(
        dead_code,
        reason = "signatures are verified elsewhere; parsed to check shape"
    )]
    signatures: Vec<Signature>,
}

#[derive(Debug, Deserialize)]
struct Signature {
    #[expect(
        dead_code,
        reason = "signatures are verified elsewhere; parsed to check shape"
    )]
    sig: String,
}

#[derive(Debug, Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    type_uri: String,
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    /// Read as it is first, so a statement of another predicate type is refused for
    /// its type rather than for the shape of a predicate it never claimed to have.
    predicate: Value,
}

#[derive(Debug, Deserialize)]
struct Subject {
    digest: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Provenance {
    #[serde(rename = "buildDefinition")]
    build_definition: BuildDefinition,
    #[serde(rename = "runDetails")]
    run_details: RunDetails,
}

#[derive(Debug, Deserialize)]
struct BuildDefinition {
    #[serde(rename = "buildType")]
    build_type: String,
    #[serde(rename = "externalParameters", default)]
    external_parameters: Value,
    #[serde(rename = "resolvedDependencies", default)]
    resolved_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Debug, Deserialize)]
struct ResourceDescriptor {
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct RunDetails {
    builder: Builder,
}

#[derive(Debug, Deserialize)]
struct Builder {
    id: String,
}

pub(super) fn parse(text: &str) -> Result<Parsed, Malformed> {
    let probe: Probe = json::read_object(text, "provenance statement or DSSE envelope")?;
    if probe.payload_type.is_none() {
        return statement(text);
    }
    let envelope: Envelope = json::read(text)?;
    expect_value(
        "payloadType",
        &envelope.payload_type,
        &[IN_TOTO_PAYLOAD],
        "DSSE envelopes",
    )?;
    let payload = BASE64_STANDARD
        .decode(&envelope.payload)
        .or_else(|_| BASE64_URL_SAFE.decode(&envelope.payload))
        .map_err(|error| Malformed::at("payload", format!("is not base64: {error}")))?;
    document_text(&payload)
        .and_then(statement)
        .map_err(|Malformed { at, reason }| Malformed {
            at: Some(match at {
                Some(at) => format!("payload (decoded), {at}"),
                None => "payload (decoded)".to_owned(),
            }),
            reason,
        })
}

fn statement(text: &str) -> Result<Parsed, Malformed> {
    let statement: Statement = json::read_object(text, "in-toto statement")?;
    expect_value(
        "_type",
        &statement.type_uri,
        &STATEMENT_TYPES,
        "in-toto statements",
    )?;
    expect_value(
        "predicateType",
        &statement.predicate_type,
        &[PROVENANCE_V1],
        "provenance",
    )?;
    if statement.subject.is_empty() {
        return Err(Malformed::at(
            "subject",
            "is empty; a statement names at least one subject",
        ));
    }
    let mut subjects = Vec::new();
    for (index, subject) in statement.subject.iter().enumerate() {
        if let Some(hex) = subject.digest.get("sha256") {
            let digest = Digest::from_parts(Algorithm::Sha256, hex).map_err(|error| {
                Malformed::digest(format!("subject[{index}].digest.sha256"), &error)
            })?;
            subjects.push(digest);
        }
    }
    let provenance: Provenance = json::from_value(statement.predicate, "predicate")?;
    let (source_repository, commit) = source(&provenance.build_definition);
    Ok(Parsed {
        summary: Summary::Provenance(ProvenanceSummary {
            builder_id: provenance.run_details.builder.id,
            build_type: provenance.build_definition.build_type,
            source_repository,
            commit,
        }),
        subjects,
    })
}

/// The source repository and commit the build says it used; see the module
/// documentation for where they are looked for.
fn source(build: &BuildDefinition) -> (Option<String>, Option<String>) {
    let commit_of = |dependency: &ResourceDescriptor| {
        dependency
            .digest
            .get("gitCommit")
            .or_else(|| dependency.digest.get("sha1"))
            .cloned()
    };
    let git = build.resolved_dependencies.iter().find_map(|dependency| {
        let repository = git_repository(dependency.uri.as_deref()?)?;
        Some((repository, dependency))
    });
    if let Some((repository, dependency)) = git {
        return (Some(repository), commit_of(dependency));
    }
    let repository = build
        .external_parameters
        .pointer("/workflow/repository")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let commit = build.resolved_dependencies.iter().find_map(commit_of);
    (repository, commit)
}

/// The repository of a `git+` URI: `git+https://github.com/o/r@refs/heads/main` is
/// `https://github.com/o/r`. The ref is the `@` suffix of the path; an `@` before the
/// path (`ssh://git@host/…`) is a user name and stays.
fn git_repository(uri: &str) -> Option<String> {
    let uri = uri.strip_prefix("git+")?;
    let path_start = match uri.find("://") {
        Some(scheme_end) => {
            let authority = scheme_end + 3;
            uri[authority..]
                .find('/')
                .map_or(uri.len(), |slash| authority + slash)
        }
        None => 0,
    };
    let repository = match uri[path_start..].find('@') {
        Some(at) => &uri[..path_start + at],
        None => uri,
    };
    Some(repository.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_uris_lose_their_ref_only() {
        for (uri, expected) in [
            (
                "git+https://github.com/acme/app@refs/heads/main",
                Some("https://github.com/acme/app"),
            ),
            (
                "git+https://github.com/acme/app",
                Some("https://github.com/acme/app"),
            ),
            (
                "git+ssh://git@github.com/acme/app.git@v1.2.0",
                Some("ssh://git@github.com/acme/app.git"),
            ),
            ("https://github.com/acme/app@refs/heads/main", None),
        ] {
            assert_eq!(git_repository(uri).as_deref(), expected, "{uri}");
        }
    }
}
