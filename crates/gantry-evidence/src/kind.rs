//! The kinds of evidence Gantry reads.

use std::fmt;
use std::str::FromStr;

/// What a piece of evidence is, as declared by whoever hands it in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// JUnit XML test results (`<testsuites>` or a single `<testsuite>`).
    Junit,
    /// A SARIF 2.1 log (static analysis or a scanner's findings).
    Sarif,
    /// Trivy's JSON report (`trivy image --format json`).
    Trivy,
    /// Grype's JSON report (`grype -o json`).
    Grype,
    /// A CycloneDX JSON SBOM, spec 1.4 to 1.6.
    CycloneDx,
    /// An SPDX 2.3 JSON SBOM.
    Spdx,
    /// SLSA provenance v1: an in-toto statement, bare or in a DSSE envelope.
    SlsaProvenance,
    /// Any JSON document, with a type its producer declares (`generic:load-test`).
    Generic(String),
}

/// A kind Gantry does not know, or a generic kind without a usable type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("evidence kind {given:?} {reason}")]
pub struct KindError {
    pub given: String,
    pub reason: String,
}

const NAMED: [(&str, Kind); 7] = [
    ("junit", Kind::Junit),
    ("sarif", Kind::Sarif),
    ("trivy", Kind::Trivy),
    ("grype", Kind::Grype),
    ("cyclonedx", Kind::CycloneDx),
    ("spdx", Kind::Spdx),
    ("slsa-provenance", Kind::SlsaProvenance),
];

impl Kind {
    /// Every kind's name, for help texts and error messages.
    pub const NAMES: &'static str =
        "junit, sarif, trivy, grype, cyclonedx, spdx, slsa-provenance, generic:TYPE";

    /// The short name used on the command line, the API and in storage.
    pub fn name(&self) -> String {
        match self {
            Kind::Generic(declared) => format!("generic:{declared}"),
            named => NAMED
                .iter()
                .find(|(_, k)| k == named)
                .map(|(n, _)| (*n).to_owned())
                .expect("every named kind is listed"),
        }
    }

    /// The family a kind's summary belongs to: what a gate asks for.
    pub fn family(&self) -> &'static str {
        match self {
            Kind::Junit => "tests",
            Kind::Sarif | Kind::Trivy | Kind::Grype => "vulnerabilities",
            Kind::CycloneDx | Kind::Spdx => "sbom",
            Kind::SlsaProvenance => "provenance",
            Kind::Generic(_) => "generic",
        }
    }
}

impl FromStr for Kind {
    type Err = KindError;

    fn from_str(text: &str) -> Result<Kind, KindError> {
        if let Some(declared) = text.strip_prefix("generic:") {
            let valid = !declared.is_empty()
                && declared.len() <= 64
                && declared
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._/".contains(&b));
            if !valid {
                return Err(KindError {
                    given: text.to_owned(),
                    reason: "needs a declared type of 1 to 64 characters a-z, 0-9, '-', '.', '_' or '/' after \"generic:\"".to_owned(),
                });
            }
            return Ok(Kind::Generic(declared.to_owned()));
        }
        NAMED
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, kind)| kind.clone())
            .ok_or_else(|| KindError {
                given: text.to_owned(),
                reason: format!("is not one of: {}", Kind::NAMES),
            })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "junit",
            "sarif",
            "trivy",
            "grype",
            "cyclonedx",
            "spdx",
            "slsa-provenance",
            "generic:load-test",
        ] {
            assert_eq!(name.parse::<Kind>().unwrap().name(), name);
        }
        assert!(
            "junitxml"
                .parse::<Kind>()
                .unwrap_err()
                .to_string()
                .contains("is not one of")
        );
        assert!("generic:".parse::<Kind>().is_err());
        assert!("generic:Load Test".parse::<Kind>().is_err());
    }
}
