//! `gantry_policy::evaluate` at its boundary: gates and facts in, a decision out. Each
//! test builds the facts of one release (components `api` and `worker`, created by `ci`,
//! promotion asked for by `alice`, at a fixed instant), changes what it is about, and
//! compares the whole decision, rendered as text, with what a release engineer should
//! read.

mod approvals;
mod decision;
mod emergency;
mod evidence;
mod metrics;
mod policies;
mod signatures;
mod time;

use std::collections::BTreeMap;

use gantry_core::Digest;
use gantry_evidence::{
    Finding, ProvenanceSummary, SbomFormat, SbomSummary, Severity, Summary, TestSummary,
    VulnerabilitySummary,
};
use gantry_policy::{ApprovalFact, Decision, EvidenceFact, Facts, Gates, ReleaseFacts, evaluate};
use jiff::{SignedDuration, Timestamp};

/// The instant every decision is made at: a Wednesday morning.
const NOW: &str = "2025-03-12T10:00:00Z";

fn now() -> Timestamp {
    NOW.parse().expect("NOW is a timestamp")
}

/// `minutes` before [`NOW`].
fn ago(minutes: i64) -> Timestamp {
    now() - SignedDuration::from_mins(minutes)
}

/// A digest that is easy to recognise in a failure: `sha256:000…00n`.
fn digest(n: u64) -> Digest {
    format!("sha256:{n:064x}")
        .parse()
        .expect("a 64-digit hex number is a digest")
}

/// The release `2025.03.1` of project `shop` (components `api` and `worker`, created by
/// `ci` three hours ago) on its way to `prod`, asked for by `alice`, with nothing else
/// known yet. Groups: `release-managers` (bob, carol, dave) and `oncall` (alice, erin).
fn facts() -> Facts {
    let group = |members: &[&str]| members.iter().map(|m| (*m).to_owned()).collect();
    Facts {
        project: "shop".to_owned(),
        environment: "prod".to_owned(),
        release: ReleaseFacts {
            id: digest(0xfeed),
            alias: "2025.03.1".to_owned(),
            created_by: "ci".to_owned(),
            created_at: ago(180),
            labels: BTreeMap::from([(
                "org.opencontainers.image.revision".to_owned(),
                "4f2a9c1".to_owned(),
            )]),
            components: BTreeMap::from([
                ("api".to_owned(), digest(0xa1)),
                ("worker".to_owned(), digest(0xb1)),
            ]),
        },
        requested_by: Some("alice".to_owned()),
        emergency: false,
        rollback: false,
        evidence: Vec::new(),
        signers: Vec::new(),
        approvals: Vec::new(),
        groups: BTreeMap::from([
            (
                "release-managers".to_owned(),
                group(&["bob", "carol", "dave"]),
            ),
            ("oncall".to_owned(), group(&["alice", "erin"])),
        ]),
        upstreams: Vec::new(),
        stops: Vec::new(),
        metrics: BTreeMap::new(),
        now: now(),
    }
}

/// Evidence number `n` (its digest is [`digest`]`(n)`) of `kind` about `component`
/// (`None`: the whole release), added `minutes` before now.
fn evidence(
    n: u64,
    kind: &str,
    component: Option<&str>,
    minutes: i64,
    summary: Summary,
) -> EvidenceFact {
    EvidenceFact {
        digest: digest(n),
        kind: kind.parse().expect("the test names a known kind"),
        component: component.map(str::to_owned),
        summary,
        added_at: ago(minutes),
        supplied_by: "service:ci-prod".to_owned(),
        supplier_may_promote: true,
        signer: None,
    }
}

/// `evidence` handed in by `supplier`, who may (or may not) promote into prod.
fn supplied(mut evidence: EvidenceFact, supplier: &str, may_promote: bool) -> EvidenceFact {
    supplier.clone_into(&mut evidence.supplied_by);
    evidence.supplier_may_promote = may_promote;
    evidence
}

/// `evidence` with a DSSE signature by trust key `key` that verified.
fn signed(mut evidence: EvidenceFact, key: &str) -> EvidenceFact {
    evidence.signer = Some(gantry_policy::Signer::Key(key.to_owned()));
    evidence
}

fn junit(total: u64, failed: u64, skipped: u64, flaky: u64) -> Summary {
    Summary::Tests(TestSummary {
        total,
        failed,
        skipped,
        flaky,
    })
}

/// A scan by `scanner` with findings `(id, severity, fixable)`.
fn scan(scanner: &str, findings: &[(&str, &str, bool)]) -> Summary {
    Summary::Vulnerabilities(VulnerabilitySummary {
        scanner: scanner.to_owned(),
        findings: findings
            .iter()
            .map(|(id, severity, fixable)| Finding {
                id: (*id).to_owned(),
                severity: Severity::from_word(severity),
                fixable: *fixable,
                package: "openssl@3.0.13".to_owned(),
            })
            .collect(),
    })
}

fn cyclonedx(components: u64) -> Summary {
    Summary::Sbom(SbomSummary {
        format: SbomFormat::CycloneDx,
        spec_version: "1.5".to_owned(),
        components,
        licenses: ["Apache-2.0".to_owned()].into(),
    })
}

fn provenance(builder_id: &str, source_repository: &str) -> Summary {
    Summary::Provenance(ProvenanceSummary {
        builder_id: builder_id.to_owned(),
        build_type: "https://actions.github.io/buildtypes/workflow/v1".to_owned(),
        source_repository: Some(source_repository.to_owned()),
        commit: Some("4f2a9c1".to_owned()),
    })
}

/// `user`'s approval (or, with `approve` false, rejection) given `minutes` ago.
fn approval(user: &str, approve: bool, minutes: i64) -> ApprovalFact {
    ApprovalFact {
        user: user.to_owned(),
        approve,
        comment: None,
        at: ago(minutes),
    }
}

/// The decision as a release engineer reads it: the verdict, then one line per gate
/// (`gate state: reason`), per warning, the time it may change by itself and whether the
/// emergency path was taken.
fn render(decision: &Decision) -> String {
    let mut lines = vec![decision.verdict.as_str().to_owned()];
    for gate in &decision.gates {
        lines.push(format!("{} {}: {}", gate.gate, gate.state, gate.reason));
    }
    for warning in &decision.warnings {
        lines.push(format!("warning: {warning}"));
    }
    if let Some(wake_at) = decision.wake_at {
        lines.push(format!("wake at {wake_at}"));
    }
    if decision.emergency {
        lines.push("emergency".to_owned());
    }
    lines.join("\n")
}

/// Evaluates `gates` over `facts` and compares the rendered decision with `expected`
/// (leading and trailing white space of each line ignored). Returns the decision for
/// further checks.
#[track_caller]
fn check(gates: &Gates, facts: &Facts, expected: &str) -> Decision {
    let decision = evaluate(gates, facts);
    let got = render(&decision);
    let expected = expected
        .trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        got == expected,
        "the decision differs\n--- got:\n{got}\n--- expected:\n{expected}\n"
    );
    decision
}
