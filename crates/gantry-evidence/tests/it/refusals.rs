//! Documents that must be refused, and what the refusal says: the field or the
//! position, and why.

use gantry_evidence::{MAX_EVIDENCE_BYTES, parse};

use crate::{KINDS, data, kind, refuse};

/// `file`'s text with `from` replaced by `to` once; the test fails if `from` is absent.
fn edited(file: &str, from: &str, to: &str) -> String {
    let text = String::from_utf8(data(file)).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    text.replacen(from, to, 1)
}

fn truncated(file: &str) -> Vec<u8> {
    let bytes = data(file);
    bytes[..bytes.len() / 2].to_vec()
}

#[test]
fn too_large_for_every_kind() {
    let bytes = vec![b' '; MAX_EVIDENCE_BYTES + 1];
    for name in KINDS {
        refuse(
            name,
            &bytes,
            &format!("{name} evidence is 16777217 bytes, more than the 16777216 allowed"),
        );
    }
}

#[test]
fn empty_and_not_utf8_for_every_kind() {
    for name in KINDS {
        refuse(
            name,
            b"",
            &format!("not valid {name}: the document is empty"),
        );
        refuse(
            name,
            b" \n\t ",
            &format!("not valid {name}: the document is empty"),
        );
        refuse(
            name,
            b"{\n \"a\": \"caf\xe9\"}",
            &format!(
                "not valid {name} at line 2, column 11: is not UTF-8 (evidence documents must be UTF-8)"
            ),
        );
    }
}

#[test]
fn json_kinds_need_an_object() {
    for (name, format) in [
        ("sarif", "SARIF log"),
        ("trivy", "Trivy report"),
        ("grype", "Grype report"),
        ("cyclonedx", "CycloneDX SBOM"),
        ("spdx", "SPDX document"),
        ("slsa-provenance", "provenance statement or DSSE envelope"),
    ] {
        refuse(
            name,
            "[{\"a\": 1}]",
            &format!("not valid {name}: a {format} document is a JSON object, this is an array"),
        );
        refuse(
            name,
            "\"2.1.0\"",
            &format!("not valid {name}: a {format} document is a JSON object, this is a string"),
        );
    }
    refuse(
        "generic:load-test",
        " 42",
        "not valid generic:load-test: a generic document is a JSON object or array, this is a number",
    );
    refuse(
        "generic:load-test",
        "null",
        "not valid generic:load-test: a generic document is a JSON object or array, this is null",
    );
}

#[test]
fn truncated_json() {
    refuse(
        "trivy",
        truncated("trivy-image.json"),
        "not valid trivy at Results[0].Vulnerabilities[0].References (line 77, column 31): the document ends early, truncated? (EOF while parsing a string)",
    );
    refuse(
        "generic:load-test",
        "{\"a\": [1, 2",
        "not valid generic:load-test at a (line 1, column 11): the document ends early, truncated? (EOF while parsing a list)",
    );
    refuse(
        "spdx",
        "{\"spdxVersion\": \"SPDX-2.3\", \"packages\": [] } trailing",
        "not valid spdx at line 1, column 46: trailing characters",
    );
}

#[test]
fn junit() {
    refuse(
        "junit",
        truncated("junit-surefire.xml"),
        "not valid junit at line 15, column 57: syntax error: tag not closed: `>` not found before end of input",
    );
    refuse(
        "junit",
        "<testsuite>\n  <testcase name=\"a\">\n  </testsuite>",
        "not valid junit at line 3, column 3: ill-formed document: expected `</testcase>`, but `</testsuite>` was found",
    );
    refuse(
        "junit",
        "<testsuite>\n  <testcase name=\"a\"/>\n",
        "not valid junit at line 3, column 1: the document ends inside <testsuite>, truncated?",
    );
    refuse(
        "junit",
        "<?xml version=\"1.0\"?>\n<html><body/></html>",
        "not valid junit at line 2, column 1: the root element is <html>, not <testsuites> or <testsuite>",
    );
    refuse(
        "junit",
        "<?xml version=\"1.0\"?>\n<!-- nothing -->",
        "not valid junit: has no <testsuites> or <testsuite> element",
    );
    refuse(
        "junit",
        "<testsuite/>\n<testsuite/>",
        "not valid junit at line 2, column 1: has a second root element",
    );
    refuse(
        "junit",
        "<testsuite><testcase><testcase/></testcase></testsuite>",
        "not valid junit at line 1, column 22: has a <testcase> inside a <testcase>",
    );
}

#[test]
fn junit_refuses_dtds_and_entities() {
    // "Billion laughs": never expanded, because the DTD is refused before.
    let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n]>\n<testsuite><testcase name=\"&lol2;\"/></testsuite>";
    refuse(
        "junit",
        laughs,
        "not valid junit at line 2, column 1: has a document type declaration; DTDs are refused in evidence because they can define entities",
    );
    refuse(
        "junit",
        "<testsuite>\n<testcase><system-out>&xxe;</system-out></testcase></testsuite>",
        "not valid junit at line 2, column 23: refers to the entity &xxe;, which is not one of the five XML predefines (entities are refused in evidence)",
    );
    refuse(
        "junit",
        "<testsuite><testcase><system-out>&#0;</system-out></testcase></testsuite>",
        "not valid junit at line 1, column 34: has a bad character reference: invalid character reference: 0x0 character is not permitted in XML",
    );
}

#[test]
fn junit_well_formedness() {
    refuse(
        "junit",
        "<testsuite>\n  <testcase name=\"a\" name=\"b\"/>\n</testsuite>",
        "not valid junit at line 2, column 3: has the attribute name twice in <testcase>",
    );
    refuse(
        "junit",
        "<testsuite><testcase name=a/></testsuite>",
        "not valid junit at line 1, column 12: has a malformed attribute: position 14: attribute value must be enclosed in `\"` or `'`",
    );
    refuse(
        "junit",
        "<testsuite>\n<testcase name=\"&xxe;\"/></testsuite>",
        "not valid junit at line 2, column 1: refers to the entity &xxe;, which is not one of the five XML predefines (entities are refused in evidence)",
    );
    refuse(
        "junit",
        "garbage <testsuite/>",
        "not valid junit at line 1, column 1: has text outside the root element",
    );
    refuse(
        "junit",
        "<testsuite/>\n&amp;",
        "not valid junit at line 2, column 1: has text outside the root element",
    );
    assert!(
        parse(
            &kind("junit"),
            b"\n <testsuite name=\"a &amp; &#x42;\"/>\n "
        )
        .is_ok()
    );
}

#[test]
fn junit_limits_nesting() {
    let deep = format!("{}{}", "<testsuite>".repeat(65), "</testsuite>".repeat(65));
    refuse(
        "junit",
        deep,
        "not valid junit at line 1, column 705: elements are nested more than 64 deep",
    );
    let fine = format!("{}{}", "<testsuite>".repeat(64), "</testsuite>".repeat(64));
    assert!(parse(&kind("junit"), fine.as_bytes()).is_ok());
}

#[test]
fn sarif() {
    refuse(
        "sarif",
        edited(
            "sarif-semgrep.sarif",
            "\"version\": \"2.1.0\"",
            "\"version\": \"2.0.0\"",
        ),
        "not valid sarif at version: is \"2.0.0\", but Gantry reads SARIF only with \"2.1.0\"",
    );
    refuse(
        "sarif",
        edited(
            "sarif-semgrep.sarif",
            "\"level\": \"error\"\n",
            "\"level\": \"fatal\"\n",
        ),
        "not valid sarif at runs[0].results[1].level: is \"fatal\", not one of \"error\", \"warning\", \"note\", \"none\"",
    );
    refuse(
        "sarif",
        edited(
            "sarif-codeql.sarif",
            "\"security-severity\": \"7.5\"",
            "\"security-severity\": \"high\"",
        ),
        "not valid sarif at runs[0].tool.extensions[0].rules[0].properties.security-severity: is \"high\", not a CVSS score from 0 to 10",
    );
    refuse(
        "sarif",
        edited(
            "sarif-codeql.sarif",
            "\"security-severity\": 9.1",
            "\"security-severity\": 11",
        ),
        "not valid sarif at runs[0].results[1].properties.security-severity: is 11, not a CVSS score from 0 to 10",
    );
    refuse(
        "sarif",
        r#"{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"message": {"text": "?"}}]}]}"#,
        "not valid sarif at runs[0].results[0]: names no rule (no ruleId, rule.id or ruleIndex)",
    );
    refuse(
        "sarif",
        r#"{"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]}"#,
        "not valid sarif at runs[0].tool.driver: missing field `name`",
    );
    refuse(
        "sarif",
        r#"{"version": "2.1.0"}"#,
        "not valid sarif: missing field `runs`",
    );
}

#[test]
fn trivy() {
    refuse(
        "trivy",
        edited(
            "trivy-image.json",
            "\"SchemaVersion\": 2",
            "\"SchemaVersion\": 1",
        ),
        "not valid trivy at SchemaVersion: is 1, but Gantry reads Trivy reports of schema version 2 only",
    );
    refuse(
        "trivy",
        edited(
            "trivy-image.json",
            "\"Severity\": \"CRITICAL\"",
            "\"Severity\": 4",
        ),
        "not valid trivy at Results[1].Vulnerabilities[0].Severity: invalid type: integer `4`, expected a string",
    );
    refuse(
        "trivy",
        edited("trivy-image.json", "app@sha256:1bc04b", "app@sha256:1BC04B"),
        "not valid trivy at Metadata.RepoDigests[0]: is not a usable subject: digest \"sha256:1BC04B5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6\" must be lower-case hex 0-9a-f, found 'B' at position 1",
    );
    refuse(
        "trivy",
        edited(
            "trivy-image.json",
            "\"registry.acme.internal:5000/app@sha256:",
            "\"registry.acme.internal:5000/app:sha256:",
        ),
        "not valid trivy at Metadata.RepoDigests[1]: \"registry.acme.internal:5000/app:sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6\" is not a repository digest (`repository@sha256:…`)",
    );
    refuse(
        "trivy",
        r#"{"Results": []}"#,
        "not valid trivy: missing field `SchemaVersion`",
    );
}

#[test]
fn grype() {
    refuse(
        "grype",
        edited(
            "grype-image.json",
            "\"manifestDigest\": \"sha256:05b3",
            "\"manifestDigest\": \"md5:05b3",
        ),
        "not valid grype at source.target.manifestDigest: is not a usable subject: digest \"md5:05b3abf2579a5eb66403cd78be557fd860633a1fe2103c7642030defe32c657f\" uses algorithm \"md5\", which is not supported: use sha256 or sha512",
    );
    refuse(
        "grype",
        edited(
            "grype-image.json",
            "\"ghcr.io/acme/app@sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6\"",
            "\"ghcr.io/acme/app@sha256:1bc04b\"",
        ),
        "not valid grype at source.target.repoDigests[0]: is not a usable subject: digest \"sha256:1bc04b\" must have 64 hex digits after `sha256:`, found 6",
    );
    refuse(
        "grype",
        r#"{"source": {"type": "image", "target": {}}}"#,
        "not valid grype: missing field `matches`",
    );
    refuse(
        "grype",
        r#"{"matches": [{"vulnerability": {"id": "CVE-1"}, "artifact": {}}]}"#,
        "not valid grype at matches[0].artifact: missing field `name`",
    );
}

#[test]
fn cyclonedx() {
    refuse(
        "cyclonedx",
        edited(
            "cyclonedx-1.4.json",
            "\"bomFormat\": \"CycloneDX\"",
            "\"bomFormat\": \"SPDX\"",
        ),
        "not valid cyclonedx at bomFormat: is \"SPDX\", but Gantry reads CycloneDX only with \"CycloneDX\"",
    );
    refuse(
        "cyclonedx",
        edited(
            "cyclonedx-1.4.json",
            "\"specVersion\": \"1.4\"",
            "\"specVersion\": \"1.3\"",
        ),
        "not valid cyclonedx at specVersion: is \"1.3\", but Gantry reads CycloneDX only with \"1.4\" or \"1.5\" or \"1.6\"",
    );
    refuse(
        "cyclonedx",
        edited(
            "cyclonedx-1.6.json",
            "\"purl\": \"pkg:oci/app@sha256:1bc04b",
            "\"purl\": \"pkg:oci/app@sha256:zzc04b",
        ),
        "not valid cyclonedx at metadata.component.purl: is not a usable subject: digest \"sha256:zzc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6\" must be lower-case hex 0-9a-f, found 'z' at position 0",
    );
    refuse(
        "cyclonedx",
        edited(
            "cyclonedx-1.5.json",
            "\"content\": \"05B3ABF",
            "\"content\": \"5B3ABF",
        ),
        "not valid cyclonedx at metadata.component.hashes[0].content: is not a usable subject: digest \"sha256:5b3abf2579a5eb66403cd78be557fd860633a1fe2103c7642030defe32c657f\" must have 64 hex digits after `sha256:`, found 63",
    );
    refuse(
        "cyclonedx",
        edited(
            "cyclonedx-1.6.json",
            "\"licenses\": [{ \"license\": { \"id\": \"MIT\"",
            "\"licenses\": [{ \"license\": { \"id\": 7",
        ),
        "not valid cyclonedx at components[0].licenses[0].license.id: invalid type: integer `7`, expected a string",
    );
}

#[test]
fn spdx() {
    refuse(
        "spdx",
        edited(
            "spdx-2.3.json",
            "\"spdxVersion\": \"SPDX-2.3\"",
            "\"spdxVersion\": \"SPDX-2.1\"",
        ),
        "not valid spdx at spdxVersion: is \"SPDX-2.1\", but Gantry reads SPDX only with \"SPDX-2.3\" or \"SPDX-2.2\"",
    );
    refuse(
        "spdx",
        edited(
            "spdx-2.3.json",
            "\"checksumValue\": \"05b3",
            "\"checksumValue\": \"g5b3",
        ),
        "not valid spdx at packages[3].checksums[0].checksumValue: is not a usable subject: digest \"sha256:g5b3abf2579a5eb66403cd78be557fd860633a1fe2103c7642030defe32c657f\" must be lower-case hex 0-9a-f, found 'g' at position 0",
    );
    refuse(
        "spdx",
        edited(
            "spdx-2.3.json",
            "pkg:oci/app@sha256%3A1bc04b",
            "pkg:oci/app@sha256%3A1bc0",
        ),
        "not valid spdx at packages[3].externalRefs[0].referenceLocator: is not a usable subject: digest \"sha256:1bc05291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6\" must have 64 hex digits after `sha256:`, found 62",
    );
    refuse(
        "spdx",
        r#"{"spdxVersion": "SPDX-2.3", "packages": [{"name": "x"}]}"#,
        "not valid spdx at packages[0]: missing field `SPDXID`",
    );
}

#[test]
fn slsa_provenance() {
    let file = "slsa-github.intoto.json";
    refuse(
        "slsa-provenance",
        edited(
            file,
            "https://slsa.dev/provenance/v1",
            "https://slsa.dev/provenance/v0.2",
        ),
        "not valid slsa-provenance at predicateType: is \"https://slsa.dev/provenance/v0.2\", but Gantry reads provenance only with \"https://slsa.dev/provenance/v1\"",
    );
    refuse(
        "slsa-provenance",
        edited(
            file,
            "https://in-toto.io/Statement/v1",
            "https://in-toto.io/Statement/v2",
        ),
        "not valid slsa-provenance at _type: is \"https://in-toto.io/Statement/v2\", but Gantry reads in-toto statements only with \"https://in-toto.io/Statement/v1\" or \"https://in-toto.io/Statement/v0.1\"",
    );
    refuse(
        "slsa-provenance",
        edited(file, "\"sha256\": \"1bc04b", "\"sha256\": \"sha256:1bc04b"),
        "not valid slsa-provenance at subject[0].digest.sha256: is not a usable subject: digest \"sha256:sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6\" must be lower-case hex 0-9a-f, found 's' at position 0",
    );
    refuse(
        "slsa-provenance",
        edited(
            file,
            "\"builder\": {\n        \"id\"",
            "\"builder\": {\n        \"name\"",
        ),
        "not valid slsa-provenance at predicate.runDetails.builder: missing field `id`",
    );
    refuse(
        "slsa-provenance",
        edited(
            file,
            "\"buildType\": \"https",
            "\"buildType\": [\"https\"], \"x\": \"https",
        ),
        "not valid slsa-provenance at predicate.buildDefinition.buildType: invalid type: sequence, expected a string",
    );
    refuse(
        "slsa-provenance",
        r#"{"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "https://slsa.dev/provenance/v1", "predicate": {}}"#,
        "not valid slsa-provenance at subject: is empty; a statement names at least one subject",
    );
}

#[test]
fn slsa_provenance_in_dsse() {
    let file = "slsa-github.dsse.json";
    refuse(
        "slsa-provenance",
        edited(file, "application/vnd.in-toto+json", "text/plain"),
        "not valid slsa-provenance at payloadType: is \"text/plain\", but Gantry reads DSSE envelopes only with \"application/vnd.in-toto+json\"",
    );
    refuse(
        "slsa-provenance",
        edited(file, "\"payload\": \"eyJf", "\"payload\": \"*eyJf"),
        "not valid slsa-provenance at payload: is not base64: Invalid symbol 42, offset 0.",
    );
    refuse(
        "slsa-provenance",
        edited(file, "\"signatures\"", "\"signature\""),
        "not valid slsa-provenance: missing field `signatures`",
    );
    // The payload is checked like a bare statement; the refusal says it is inside.
    let wrong_predicate = String::from_utf8(data("slsa-github.intoto.json"))
        .unwrap()
        .replace(
            "https://slsa.dev/provenance/v1",
            "https://spdx.dev/Document",
        );
    let envelope = serde_json::json!({
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64_standard(wrong_predicate.as_bytes()),
        "signatures": [],
    });
    refuse(
        "slsa-provenance",
        envelope.to_string(),
        "not valid slsa-provenance at payload (decoded), predicateType: is \"https://spdx.dev/Document\", but Gantry reads provenance only with \"https://slsa.dev/provenance/v1\"",
    );
    let envelope = serde_json::json!({
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64_standard(b"{\"_type\": "),
        "signatures": [],
    });
    refuse(
        "slsa-provenance",
        envelope.to_string(),
        "not valid slsa-provenance at payload (decoded), _type (line 1, column 10): the document ends early, truncated? (EOF while parsing a value)",
    );
}

/// Base64 with padding, written out here so the tests do not lean on the encoder
/// the parser uses to decode.
fn base64_standard(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
