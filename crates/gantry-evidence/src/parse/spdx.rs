//! SPDX JSON SBOMs, versions 2.3 and 2.2.
//!
//! Components are the document's `packages`. Licences are their `licenseConcluded`
//! and `licenseDeclared`, without the `NOASSERTION` and `NONE` placeholders.
//!
//! Subjects are read from the packages the document describes: those listed in
//! `documentDescribes` or related to the document by a `DESCRIBES` relationship (or
//! the inverse `DESCRIBED_BY`). Of each, the `SHA256` checksums, and an OCI package
//! URL in its `externalRefs` whose version is a digest. Packages the document merely
//! contains never become subjects.

use std::collections::BTreeSet;

use gantry_core::{Algorithm, Digest};
use serde::Deserialize;

use super::json::{self, expect_value};
use super::{Malformed, Parsed, purl};
use crate::summary::{SbomFormat, SbomSummary, Summary};

/// What SPDX writes where a licence is unknown or absent.
const NO_LICENSE: [&str; 2] = ["NOASSERTION", "NONE"];

#[derive(Debug, Deserialize)]
struct Document {
    #[serde(rename = "spdxVersion")]
    spdx_version: String,
    #[serde(rename = "SPDXID", default = "document_id")]
    id: String,
    #[serde(rename = "documentDescribes", default)]
    describes: Vec<String>,
    #[serde(default)]
    packages: Vec<Package>,
    #[serde(default)]
    relationships: Vec<Relationship>,
}

/// The document's SPDX id, which the specification fixes.
fn document_id() -> String {
    "SPDXRef-DOCUMENT".to_owned()
}

#[derive(Debug, Deserialize)]
struct Package {
    #[serde(rename = "SPDXID")]
    id: String,
    #[serde(rename = "licenseConcluded", default)]
    license_concluded: Option<String>,
    #[serde(rename = "licenseDeclared", default)]
    license_declared: Option<String>,
    #[serde(default)]
    checksums: Vec<Checksum>,
    #[serde(rename = "externalRefs", default)]
    external_refs: Vec<ExternalRef>,
}

#[derive(Debug, Deserialize)]
struct Checksum {
    algorithm: String,
    #[serde(rename = "checksumValue")]
    value: String,
}

#[derive(Debug, Deserialize)]
struct ExternalRef {
    #[serde(rename = "referenceType")]
    reference_type: String,
    #[serde(rename = "referenceLocator")]
    locator: String,
}

#[derive(Debug, Deserialize)]
struct Relationship {
    #[serde(rename = "spdxElementId")]
    element: String,
    #[serde(rename = "relationshipType")]
    kind: String,
    #[serde(rename = "relatedSpdxElement")]
    related: String,
}

pub(super) fn parse(text: &str) -> Result<Parsed, Malformed> {
    let document: Document = json::read_object(text, "SPDX document")?;
    expect_value(
        "spdxVersion",
        &document.spdx_version,
        &["SPDX-2.3", "SPDX-2.2"],
        "SPDX",
    )?;
    let licenses: BTreeSet<String> = document
        .packages
        .iter()
        .flat_map(|package| [&package.license_concluded, &package.license_declared])
        .flatten()
        .map(|license| license.trim())
        .filter(|license| !license.is_empty() && !NO_LICENSE.contains(license))
        .map(str::to_owned)
        .collect();

    let mut described: BTreeSet<&str> = document.describes.iter().map(String::as_str).collect();
    for relationship in &document.relationships {
        match relationship.kind.as_str() {
            "DESCRIBES" if relationship.element == document.id => {
                described.insert(&relationship.related);
            }
            "DESCRIBED_BY" if relationship.related == document.id => {
                described.insert(&relationship.element);
            }
            _ => {}
        }
    }
    let mut subjects = Vec::new();
    for (index, package) in document.packages.iter().enumerate() {
        if described.contains(package.id.as_str()) {
            package_digests(package, index, &mut subjects)?;
        }
    }
    Ok(Parsed {
        summary: Summary::Sbom(SbomSummary {
            format: SbomFormat::Spdx,
            spec_version: document.spdx_version,
            components: document.packages.len() as u64,
            licenses,
        }),
        subjects,
    })
}

fn package_digests(
    package: &Package,
    index: usize,
    subjects: &mut Vec<Digest>,
) -> Result<(), Malformed> {
    for (checksum_index, checksum) in package.checksums.iter().enumerate() {
        if checksum.algorithm == "SHA256" {
            // SPDX writes lower-case hex, but its schema does not insist; the
            // digest is the same either way.
            let digest =
                Digest::from_parts(Algorithm::Sha256, &checksum.value.to_ascii_lowercase())
                    .map_err(|error| {
                        Malformed::digest(
                            format!("packages[{index}].checksums[{checksum_index}].checksumValue"),
                            &error,
                        )
                    })?;
            subjects.push(digest);
        }
    }
    for (reference_index, reference) in package.external_refs.iter().enumerate() {
        if reference.reference_type == "purl" {
            let digest = purl::oci_digest(&reference.locator).map_err(|error| {
                Malformed::digest(
                    format!("packages[{index}].externalRefs[{reference_index}].referenceLocator"),
                    &error,
                )
            })?;
            subjects.extend(digest);
        }
    }
    Ok(())
}
