//! Image digests in package URLs: `pkg:oci/app@sha256%3A<hex>?repository_url=…`, the
//! way `CycloneDX` and SPDX SBOMs of a container image name the image.

use gantry_core::{Digest, DigestError};

/// The digest a package URL names as its version, when it is an OCI package URL
/// whose version is a digest: `Ok(None)` for any other package URL, an error for a
/// version that starts like a digest and is not one.
///
/// The purl specification percent-encodes the `:` (`sha256%3A…`); a literal `:` is
/// accepted too, because tools write both.
pub(super) fn oci_digest(purl: &str) -> Result<Option<Digest>, DigestError> {
    let Some(rest) = purl.strip_prefix("pkg:oci/") else {
        return Ok(None);
    };
    // The version runs from the `@` to the qualifiers (`?`) or subpath (`#`).
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let Some((_, version)) = rest.rsplit_once('@') else {
        return Ok(None);
    };
    let version = version.replacen("%3A", ":", 1).replacen("%3a", ":", 1);
    if !version.starts_with("sha256:") && !version.starts_with("sha512:") {
        return Ok(None);
    }
    version.parse().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn reads_digest_versions_of_oci_purls_only() {
        let digest = format!("sha256:{HEX}");
        for purl in [
            format!("pkg:oci/app@sha256%3A{HEX}?repository_url=ghcr.io/acme/app&tag=1.2"),
            format!("pkg:oci/app@sha256:{HEX}"),
            format!("pkg:oci/app@sha256%3a{HEX}#sub/path"),
        ] {
            assert_eq!(
                oci_digest(&purl).unwrap().unwrap().as_str(),
                digest,
                "{purl}"
            );
        }
        for purl in [
            "pkg:oci/app?repository_url=ghcr.io/acme/app",
            "pkg:oci/app@1.2.3",
            "pkg:npm/left-pad@1.3.0",
            &format!("pkg:docker/app@sha256:{HEX}"),
        ] {
            assert_eq!(oci_digest(purl).unwrap(), None, "{purl}");
        }
        assert!(oci_digest("pkg:oci/app@sha256%3Aabc").is_err());
    }
}
