# The benchmark's policy: fifty rules of the kind a platform team writes for a
# production environment, over the release's labels, the evidence summaries, the
# signers, approvals, upstreams, stops and metrics. Each rule adds a violation (which
# denies) or a warning (which is reported). `gantry-bench decision` evaluates it with
# every built-in gate configured; on the benchmark's facts it allows, with warnings.

package gantry

decision := {
	"allow": count(violations) == 0,
	"violations": violations,
	"warnings": warnings,
}

# --- Helpers -------------------------------------------------------------------------

labels := input.release.labels

components := {name | some name, _ in input.release.components}

revision := object.get(labels, "org.opencontainers.image.revision", "")

source := object.get(labels, "org.opencontainers.image.source", "")

allowed_components := {"api", "worker", "migrations", "frontend", "scheduler"}

denied_licenses := {"AGPL-3.0-only", "AGPL-3.0-or-later", "GPL-3.0-only", "SSPL-1.0"}

denied_packages := ["log4j-core@2.14", "log4j-core@2.15", "xz-utils@5.6.0", "xz-utils@5.6.1"]

release_managers := object.get(input.groups, "release-managers", [])

# Evidence of a family that applies to a component: its own, or release-wide.
evidence_for(family, component) := [e |
	some e in input.evidence
	e.summary.family == family
	e.component in {component, null}
]

scans := [e | some e in input.evidence; e.summary.family == "vulnerabilities"]

test_reports := [e | some e in input.evidence; e.summary.family == "tests"]

sboms := [e | some e in input.evidence; e.summary.family == "sbom"]

provenances := [e | some e in input.evidence; e.summary.family == "provenance"]

load_tests := [e | some e in input.evidence; e.kind == "generic:load-test"]

approvers := {a.user | some a in input.approvals; a.approve}

# Where a piece of evidence applies, for messages.
where(e) := e.component if {
	is_string(e.component)
} else := "the release"

# --- Labels ----------------------------------------------------------------------------

# 1
violations contains {"gate": "revision", "msg": "the release has no org.opencontainers.image.revision label"} if {
	revision == ""
}

# 2
violations contains {"gate": "source", "msg": "the release has no org.opencontainers.image.source label"} if {
	source == ""
}

# 3
violations contains {"gate": "source", "msg": sprintf("source %s is not an acme repository", [source])} if {
	source != ""
	not startswith(source, "https://github.com/acme/")
}

# 4
violations contains {"gate": "team", "msg": "the release names no owning team (label gantry.team)"} if {
	not labels["gantry.team"]
}

# 5
violations contains {"gate": "change", "msg": "production releases need a change ticket (label gantry.change = CHG-nnnn)"} if {
	input.environment == "prod"
	not regex.match(`^CHG-[0-9]{4,}$`, object.get(labels, "gantry.change", ""))
}

# 6
violations contains {"gate": "revision", "msg": sprintf("revision %s is not a git commit", [revision])} if {
	revision != ""
	not regex.match(`^[0-9a-f]{7,40}$`, revision)
}

# 7
warnings contains sprintf("alias %s is not a calendar version (YYYY.MM.N)", [input.release.alias]) if {
	not regex.match(`^[0-9]{4}\.[0-9]{2}\.[0-9]+$`, input.release.alias)
}

# 8
violations contains {"gate": "risk", "msg": sprintf("label gantry.risk is %s: use low, medium or high", [risk])} if {
	risk := labels["gantry.risk"]
	not risk in {"low", "medium", "high"}
}

# 9
warnings contains "a high-risk release: keep the on-call engineer informed" if {
	labels["gantry.risk"] == "high"
}

# 10
warnings contains sprintf("label %s still says TODO", [key]) if {
	some key, value in labels
	contains(upper(value), "TODO")
}

# --- Components ------------------------------------------------------------------------

# 11
violations contains {"gate": "components", "msg": sprintf("component %s is not one this project ships", [name])} if {
	some name in components
	not name in allowed_components
}

# 12
violations contains {"gate": "components", "msg": sprintf("component name %s is not a lower-case DNS label", [name])} if {
	some name in components
	not regex.match(`^[a-z][a-z0-9-]{0,62}$`, name)
}

# 13
violations contains {"gate": "components", "msg": sprintf("%s is pinned by %s, not by a SHA-256 digest", [name, digest])} if {
	some name, digest in input.release.components
	not startswith(digest, "sha256:")
}

# 14
warnings contains sprintf("%d components in one release: consider splitting it", [count(components)]) if {
	count(components) > 10
}

# 15
warnings contains sprintf("created by %s, not by the CI system", [input.release.created_by]) if {
	not input.release.created_by in {"ci", "release-bot"}
}

# --- Vulnerability scans -------------------------------------------------------------

# 16
violations contains {"gate": "scan", "msg": sprintf("%s has no vulnerability scan", [name])} if {
	some name in components
	count(evidence_for("vulnerabilities", name)) == 0
}

# 17
violations contains {"gate": "scan", "msg": sprintf("%s: %d fixable critical findings", [where(e), n])} if {
	some e in scans
	n := e.summary.fixable_by_severity.critical
	n > 0
}

# 18
warnings contains sprintf("%s: %d fixable high findings, plan the upgrades", [where(e), n]) if {
	some e in scans
	n := e.summary.fixable_by_severity.high
	n > 10
}

# 19
warnings contains sprintf("%s: %d findings in one image", [where(e), n]) if {
	some e in scans
	n := count(e.summary.findings)
	n > 500
}

# 20
warnings contains sprintf("%s: %d findings of unknown severity", [where(e), n]) if {
	some e in scans
	n := e.summary.by_severity.unknown
	n > 40
}

# 21
violations contains {"gate": "scan", "msg": sprintf("%s: scanned by %s, use trivy or grype", [where(e), e.summary.scanner])} if {
	some e in scans
	not e.summary.scanner in {"trivy", "grype"}
}

# 22
violations contains {"gate": "packages", "msg": sprintf("%s ships %s (%s)", [where(e), f.package, f.id])} if {
	some e in scans
	some f in e.summary.findings
	strings.any_prefix_match(f.package, denied_packages)
}

# 23
warnings contains sprintf("%s: %s has a fixed version for %s", [where(e), f.package, f.id]) if {
	some e in scans
	some f in e.summary.findings
	f.fixable
	f.severity == "high"
	startswith(f.package, "openssl@")
}

# 24
warnings contains sprintf("%s: the scan was added before the release was created", [where(e)]) if {
	some e in scans
	e.added_at < input.release.created_at
}

# --- Tests -----------------------------------------------------------------------------

# 25
violations contains {"gate": "tests", "msg": sprintf("%s has no test report", [name])} if {
	some name in components
	count(evidence_for("tests", name)) == 0
}

# 26
violations contains {"gate": "tests", "msg": sprintf("%s: %d tests failed", [where(e), e.summary.failed])} if {
	some e in test_reports
	e.summary.failed > 0
}

# 27
warnings contains sprintf("%s: %d of %d tests skipped", [where(e), e.summary.skipped, e.summary.total]) if {
	some e in test_reports
	e.summary.skipped * 5 > e.summary.total
}

# 28
warnings contains sprintf("%s: only %d tests", [where(e), e.summary.total]) if {
	some e in test_reports
	e.summary.total < 100
}

# 29
warnings contains sprintf("%s: %d flaky tests", [where(e), e.summary.flaky]) if {
	some e in test_reports
	e.summary.flaky > 0
}

# --- SBOMs -----------------------------------------------------------------------------

# 30
violations contains {"gate": "sbom", "msg": sprintf("%s has no SBOM", [name])} if {
	some name in components
	count(evidence_for("sbom", name)) == 0
}

# 31
warnings contains sprintf("%s: CycloneDX %s is old, produce 1.5 or later", [where(e), e.summary.spec_version]) if {
	some e in sboms
	e.summary.format == "cyclone_dx"
	to_number(e.summary.spec_version) < 1.5
}

# 32
violations contains {"gate": "licenses", "msg": sprintf("%s: licence %s is not allowed", [where(e), license])} if {
	some e in sboms
	some license in e.summary.licenses
	license in denied_licenses
}

# 33
warnings contains sprintf("%s: some packages have no licence information", [where(e)]) if {
	some e in sboms
	"NOASSERTION" in e.summary.licenses
}

# 34
violations contains {"gate": "sbom", "msg": sprintf("%s: the SBOM lists no components", [where(e)])} if {
	some e in sboms
	e.summary.components == 0
}

# --- Provenance ------------------------------------------------------------------------

# 35
violations contains {"gate": "provenance", "msg": sprintf("%s has no provenance", [name])} if {
	some name in components
	count(evidence_for("provenance", name)) == 0
}

# 36
violations contains {"gate": "provenance", "msg": sprintf("%s: built by %s", [where(e), e.summary.builder_id])} if {
	some e in provenances
	not startswith(e.summary.builder_id, "https://github.com/actions/runner")
}

# 37
violations contains {"gate": "provenance", "msg": sprintf("%s: built from %v, the label says %s", [where(e), e.summary.source_repository, source])} if {
	some e in provenances
	e.summary.source_repository != concat("", ["git+", source])
}

# 38
violations contains {"gate": "provenance", "msg": sprintf("%s: built at %v, the label says %s", [where(e), e.summary.commit, revision])} if {
	some e in provenances
	e.summary.commit != revision
}

# 39
warnings contains sprintf("%s: build type %s is not a GitHub workflow", [where(e), e.summary.build_type]) if {
	some e in provenances
	not startswith(e.summary.build_type, "https://actions.github.io/buildtypes/workflow/")
}

# --- Signatures ------------------------------------------------------------------------

# 40
violations contains {"gate": "signatures", "msg": sprintf("%s is not signed", [name])} if {
	some name in components
	count([s | some s in input.signers; s.component == name]) == 0
}

# 41
violations contains {"gate": "signatures", "msg": sprintf("%s: signed through %s", [s.component, s.issuer])} if {
	some s in input.signers
	s.issuer
	s.issuer != "https://token.actions.githubusercontent.com"
}

# --- Approvals -------------------------------------------------------------------------

# 42
violations contains {"gate": "approvals", "msg": "no release manager approved"} if {
	count({user | some user in approvers; user in release_managers}) == 0
}

# 43
violations contains {"gate": "approvals", "msg": sprintf("%s rejected the release: %v", [a.user, a.comment])} if {
	some a in input.approvals
	not a.approve
}

# 44
warnings contains sprintf("%s approved with a request to hold: %s", [a.user, a.comment]) if {
	some a in input.approvals
	is_string(a.comment)
	contains(lower(a.comment), "hold")
}

# 45
warnings contains "promoted to production by automation, with nobody asking" if {
	input.environment == "prod"
	input.requested_by == null
}

# 46
violations contains {"gate": "emergency", "msg": "an emergency promotion needs a change ticket"} if {
	input.emergency
	not labels["gantry.change"]
}

# --- The line, upstreams and metrics ---------------------------------------------------

# 47
warnings contains sprintf("the line is stopped by %s: %s", [s.by, s.reason]) if {
	some s in input.stops
}

# 48
violations contains {"gate": "upstreams", "msg": sprintf("the release has not reached %s", [u.environment])} if {
	some u in input.upstreams
	u.reached_at == null
}

# 49
violations contains {"gate": "metrics", "msg": sprintf("metric %s has no value: %s", [name, m.error])} if {
	some name, m in input.metrics
	m.error
}

# 50
violations contains {"gate": "load-test", "msg": sprintf("%s: load test p99 %vms is over 300ms", [where(e), e.summary.document.p99_ms])} if {
	some e in load_tests
	e.summary.document.p99_ms > 300
}
