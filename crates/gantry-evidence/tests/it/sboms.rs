use serde_json::json;

use crate::{INDEX, MANIFEST, check};

#[test]
fn cyclonedx_1_4_from_trivy() {
    // The subject is the digest in metadata.component's OCI package URL.
    check(
        "cyclonedx",
        "cyclonedx-1.4.json",
        &json!({"family": "sbom", "format": "cyclone_dx", "spec_version": "1.4",
               "components": 3, "licenses": ["Apache-2.0", "GPL-2.0-only"]}),
        &[INDEX],
    );
}

#[test]
fn cyclonedx_1_5_nested_components() {
    // Nested components count; their hashes and package URLs are never subjects.
    // metadata.component's upper-case SHA-256 hash is the subject; its SHA-512
    // entry is not read.
    check(
        "cyclonedx",
        "cyclonedx-1.5.json",
        &json!({"family": "sbom", "format": "cyclone_dx", "spec_version": "1.5",
               "components": 5, "licenses": ["Acme Proprietary", "BSD-3-Clause", "MIT"]}),
        &[MANIFEST],
    );
}

#[test]
fn cyclonedx_1_6_with_expressions() {
    // The package URL and the hash name the same digest: one subject.
    check(
        "cyclonedx",
        "cyclonedx-1.6.json",
        &json!({"family": "sbom", "format": "cyclone_dx", "spec_version": "1.6",
               "components": 3, "licenses": ["(MIT OR Apache-2.0)", "Apache-2.0", "MIT"]}),
        &[INDEX],
    );
}

#[test]
fn spdx_2_3_from_syft() {
    // The described image package gives its checksum and its package URL's digest;
    // libssl3's checksum is not a subject, only contained.
    check(
        "spdx",
        "spdx-2.3.json",
        &json!({"family": "sbom", "format": "spdx", "spec_version": "SPDX-2.3",
               "components": 4, "licenses": ["Apache-2.0", "GPL-2.0-only", "MIT"]}),
        &[MANIFEST, INDEX],
    );
}

#[test]
fn spdx_2_2_document_describes() {
    // The described package has no digest; the one with a checksum is not described.
    check(
        "spdx",
        "spdx-2.2-describes.json",
        &json!({"family": "sbom", "format": "spdx", "spec_version": "SPDX-2.2",
               "components": 2, "licenses": ["Apache-2.0 AND MIT", "WTFPL"]}),
        &[],
    );
}
