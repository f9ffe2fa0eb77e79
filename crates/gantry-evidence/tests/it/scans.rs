use serde_json::json;

use crate::{INDEX, MANIFEST, check};

fn finding(id: &str, severity: &str, fixable: bool, package: &str) -> serde_json::Value {
    json!({"id": id, "severity": severity, "fixable": fixable, "package": package})
}

#[test]
fn trivy_image() {
    // ImageID is the config digest and is not a subject; both RepoDigests name the
    // same digest. The duplicate stdlib finding (one per binary) is counted once.
    check(
        "trivy",
        "trivy-image.json",
        &json!({"family": "vulnerabilities", "scanner": "trivy", "findings": [
            finding("CVE-2023-42363", "medium", true, "busybox@1.36.1-r15"),
            finding("CVE-2023-42366", "low", false, "busybox@1.36.1-r15"),
            finding("CVE-2024-0000", "unknown", false, "example.com/legacy@v0.1.0"),
            finding("CVE-2024-24790", "critical", true, "stdlib@1.22.1"),
            finding("CVE-2024-2511", "high", true, "libcrypto3@3.1.4-r5"),
            finding("CVE-2024-2511", "high", true, "libssl3@3.1.4-r5"),
            finding("CVE-2024-4603", "medium", false, "libcrypto3@3.1.4-r5"),
            finding("GHSA-8r3f-844c-mc37", "medium", true, "google.golang.org/protobuf@v1.32.0"),
        ]}),
        &[INDEX],
    );
}

#[test]
fn grype_image() {
    check(
        "grype",
        "grype-image.json",
        &json!({"family": "vulnerabilities", "scanner": "grype", "findings": [
            finding("CVE-2005-2541", "negligible", false, "tar@1.35-r2"),
            finding("CVE-2023-42366", "medium", false, "busybox@1.36.1-r15"),
            finding("CVE-2024-24790", "critical", true, "stdlib@go1.22.1"),
            finding("CVE-2024-2511", "unknown", true, "libssl3@3.1.4-r5"),
            finding("GHSA-8r3f-844c-mc37", "low", true, "google.golang.org/protobuf@v1.32.0"),
        ]}),
        &[MANIFEST, INDEX],
    );
}

#[test]
fn grype_directory_names_no_subject() {
    // `"versions": null` reads as no versions; the state alone says it is fixed.
    check(
        "grype",
        "grype-directory.json",
        &json!({"family": "vulnerabilities", "scanner": "grype", "findings": [
            finding("GHSA-c2qf-rxjj-qqgw", "medium", true, "semver@7.5.1"),
        ]}),
        &[],
    );
}

#[test]
fn sarif_codeql() {
    // Rules live in an extension. Severities come from the CVSS scores, the
    // result's own over its rule's; the rule without one falls back to its default
    // level (note: low). The result suppressed without a status is left out; the
    // one under review is kept.
    check(
        "sarif",
        "sarif-codeql.sarif",
        &json!({"family": "vulnerabilities", "scanner": "CodeQL", "findings": [
            finding("go/incorrect-integer-conversion", "critical", false, "cmd/app/main.go"),
            finding("go/log-injection", "high", false, "internal/api/handler.go"),
            finding("go/path-injection", "high", false, "internal/store/blob.go"),
            finding("go/unused-parameter", "low", false, "internal/api/handler.go"),
        ]}),
        &[],
    );
}

#[test]
fn sarif_semgrep() {
    // A result's level wins over its rule's default; the one reported twice keeps
    // the worse; a score of 0.0 is negligible; the `pass` result is no finding.
    check(
        "sarif",
        "sarif-semgrep.sarif",
        &json!({"family": "vulnerabilities", "scanner": "Semgrep OSS", "findings": [
            finding("dockerfile.best-practice.pin-image", "negligible", false, ""),
            finding("dockerfile.security.missing-user.missing-user", "high", false, "deploy/Dockerfile"),
            finding("javascript.lang.security.audit.insecure-random", "medium", true, "web/src/api.ts"),
        ]}),
        &[],
    );
}
