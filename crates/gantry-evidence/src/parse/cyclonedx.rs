//! `CycloneDX` JSON SBOMs, spec versions 1.4 to 1.6.
//!
//! Components are counted with the ones nested in them. Licences are read from each
//! component's `licenses` (a licence's SPDX `id`, else its `name`, or an
//! `expression`) and from `metadata.component`'s.
//!
//! Subjects: only `metadata.component`, the thing the SBOM describes (components
//! inside are what it is made of and must never pass as its identity), and only
//! values shaped as digests: an OCI package URL whose version is a digest
//! (`pkg:oci/app@sha256%3A…`), and its SHA-256 `hashes`.

use std::collections::BTreeSet;

use gantry_core::{Algorithm, Digest};
use serde::Deserialize;

use super::json::{self, expect_value};
use super::{Malformed, Parsed, purl};
use crate::summary::{SbomFormat, SbomSummary, Summary};

#[derive(Debug, Deserialize)]
struct Bom {
    #[serde(rename = "bomFormat")]
    format: String,
    #[serde(rename = "specVersion")]
    spec_version: String,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    components: Vec<Component>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    #[serde(default)]
    component: Option<Component>,
}

#[derive(Debug, Deserialize)]
struct Component {
    #[serde(default)]
    purl: Option<String>,
    #[serde(default)]
    hashes: Vec<Hash>,
    #[serde(default)]
    licenses: Vec<LicenseChoice>,
    #[serde(default)]
    components: Vec<Component>,
}

#[derive(Debug, Deserialize)]
struct Hash {
    alg: String,
    content: String,
}

/// One entry of `licenses`: a licence, or an SPDX licence expression.
#[derive(Debug, Deserialize)]
struct LicenseChoice {
    #[serde(default)]
    license: Option<License>,
    #[serde(default)]
    expression: Option<String>,
}

#[derive(Debug, Deserialize)]
struct License {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

pub(super) fn parse(text: &str) -> Result<Parsed, Malformed> {
    let bom: Bom = json::read_object(text, "CycloneDX SBOM")?;
    expect_value("bomFormat", &bom.format, &["CycloneDX"], "CycloneDX")?;
    expect_value(
        "specVersion",
        &bom.spec_version,
        &["1.4", "1.5", "1.6"],
        "CycloneDX",
    )?;
    let mut licenses = BTreeSet::new();
    let components = count_components(&bom.components, &mut licenses);
    let described = bom.metadata.and_then(|metadata| metadata.component);
    let mut subjects = Vec::new();
    if let Some(described) = &described {
        collect_licenses(described, &mut licenses);
        subjects = described_digests(described)?;
    }
    Ok(Parsed {
        summary: Summary::Sbom(SbomSummary {
            format: SbomFormat::CycloneDx,
            spec_version: bom.spec_version,
            components,
            licenses,
        }),
        subjects,
    })
}

/// The components and all those nested in them, gathering their licences on the way.
/// The nesting is bounded by the JSON reader's recursion limit.
fn count_components(components: &[Component], licenses: &mut BTreeSet<String>) -> u64 {
    components
        .iter()
        .map(|component| {
            collect_licenses(component, licenses);
            1 + count_components(&component.components, licenses)
        })
        .sum()
}

fn collect_licenses(component: &Component, licenses: &mut BTreeSet<String>) {
    for choice in &component.licenses {
        let named = choice
            .license
            .as_ref()
            .and_then(|license| license.id.as_ref().or(license.name.as_ref()));
        for text in named.into_iter().chain(&choice.expression) {
            let text = text.trim();
            if !text.is_empty() {
                licenses.insert(text.to_owned());
            }
        }
    }
}

fn described_digests(component: &Component) -> Result<Vec<Digest>, Malformed> {
    let mut digests = Vec::new();
    if let Some(purl) = &component.purl {
        if let Some(digest) = purl::oci_digest(purl)
            .map_err(|error| Malformed::digest("metadata.component.purl", &error))?
        {
            digests.push(digest);
        }
    }
    for (index, hash) in component.hashes.iter().enumerate() {
        if hash.alg == "SHA-256" {
            // CycloneDX allows upper-case hex; it is the same digest.
            let digest = Digest::from_parts(Algorithm::Sha256, &hash.content.to_ascii_lowercase())
                .map_err(|error| {
                    Malformed::digest(
                        format!("metadata.component.hashes[{index}].content"),
                        &error,
                    )
                })?;
            digests.push(digest);
        }
    }
    Ok(digests)
}
