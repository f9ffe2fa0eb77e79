//! The decision benchmark: how long `gantry_policy::evaluate` takes for one release and
//! one environment with every built-in gate configured and a 50-rule Rego policy.
//!
//! `cargo run --release -p gantry-bench -- decision [--iterations N] [--output text|json] [--check]`:
//! builds the gates and realistic facts (3 components, ~200 Trivy findings each, JUnit,
//! SBOM and provenance per component, 3 approvals), checks that the decision allows,
//! evaluates it 200 times to warm up, then N times, timing each call.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use gantry_core::{Digest, GateState, Verdict};
use gantry_evidence::{
    Finding, GenericSummary, ProvenanceSummary, SbomFormat, SbomSummary, Severity, Summary,
    TestSummary, VulnerabilitySummary,
};
use gantry_policy::rego::Input;
use gantry_policy::schedule::FreezeWindow;
use gantry_policy::{
    Allowance, ApprovalFact, ApprovalsGate, Approver, Comparison, EmergencyRule, EvidenceFact,
    Facts, Gates, IdentityRule, MetricGate, Policy, ProvenanceGate, ReleaseFacts, SignedByGate,
    Signer, SignerFact, TestsGate, UpstreamFact, VulnerabilitiesGate, evaluate,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

/// The p99 of one decision must stay under this.
const TARGET: Duration = Duration::from_millis(5);
/// Untimed evaluations before the timed ones.
const WARMUP: usize = 200;
/// Findings in each component's Trivy scan.
const FINDINGS_PER_SCAN: usize = 200;
const POLICY_NAME: &str = "fifty-rules.rego";
const POLICY: &str = include_str!("../policies/fifty-rules.rego");

pub(crate) const USAGE: &str =
    "usage: gantry-bench decision [--iterations N] [--output text|json] [--check]

  --iterations N   timed evaluations (default 5000), after 200 untimed ones
  --output FORMAT  text (default) or json
  --check          exit with status 1 if the p99 misses the 5 ms target";

#[derive(Debug)]
pub(crate) struct DecisionSettings {
    iterations: usize,
    json: bool,
    check: bool,
}

pub(crate) fn parse_arguments(arguments: &[String]) -> Result<DecisionSettings> {
    let mut settings = DecisionSettings {
        iterations: 5000,
        json: false,
        check: false,
    };
    let mut arguments = arguments.iter();
    while let Some(argument) = arguments.next() {
        let mut value = |name: &str| {
            arguments
                .next()
                .with_context(|| format!("{name} needs a value"))
        };
        match argument.as_str() {
            "--iterations" => {
                settings.iterations = value("--iterations")?
                    .parse()
                    .context("--iterations takes a number")?;
            }
            "--output" => {
                settings.json = match value("--output")?.as_str() {
                    "text" => false,
                    "json" => true,
                    other => bail!("--output takes text or json, not {other:?}"),
                };
            }
            "--check" => settings.check = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option {other:?}"),
        }
    }
    ensure!(settings.iterations > 0, "--iterations must be at least 1");
    Ok(settings)
}

/// Returns whether the target was met (or not asked for).
pub(crate) fn run(settings: &DecisionSettings) -> Result<bool> {
    let gates = gates()?;
    let facts = facts();

    // The benchmark measures the path a release that may go takes: every gate answers,
    // and the policy runs to the end without error.
    let decision = evaluate(&gates, &facts);
    let failing: Vec<String> = decision
        .gates
        .iter()
        .filter(|g| g.state != GateState::Pass)
        .map(|g| format!("{} {}: {}", g.gate, g.state, g.reason))
        .collect();
    ensure!(
        decision.verdict == Verdict::Allow,
        "the benchmark's facts should pass every gate, but:\n  {}",
        failing.join("\n  ")
    );

    for _ in 0..WARMUP {
        std::hint::black_box(evaluate(&gates, std::hint::black_box(&facts)));
    }
    let mut samples = Vec::with_capacity(settings.iterations);
    for _ in 0..settings.iterations {
        let started = Instant::now();
        std::hint::black_box(evaluate(&gates, std::hint::black_box(&facts)));
        samples.push(started.elapsed());
    }
    samples.sort_unstable();
    let stats = Stats::of(&samples);
    let parts = Parts::measure(&gates, &facts, settings.iterations.min(1000))?;

    let findings: usize = facts
        .evidence
        .iter()
        .map(|e| match &e.summary {
            Summary::Vulnerabilities(scan) => scan.findings.len(),
            _ => 0,
        })
        .sum();
    let met = stats.p99 <= TARGET;
    if settings.json {
        let milliseconds = |d: Duration| d.as_secs_f64() * 1e3;
        let report = json!({
            "benchmark": "decision",
            "iterations": settings.iterations,
            "warmup": WARMUP,
            "gates": decision.gates.len(),
            "warnings": decision.warnings.len(),
            "policy_rules": 50,
            "findings": findings,
            "min_ms": milliseconds(stats.min),
            "median_ms": milliseconds(stats.median),
            "p90_ms": milliseconds(stats.p90),
            "p99_ms": milliseconds(stats.p99),
            "max_ms": milliseconds(stats.max),
            "target_p99_ms": milliseconds(TARGET),
            "p99_over_target": stats.p99.as_secs_f64() / TARGET.as_secs_f64(),
            "met": met,
            "median_parts_ms": {
                "built_in_gates": milliseconds(parts.built_in),
                "facts_to_policy_input": milliseconds(parts.to_input),
                "cold_input": milliseconds(parts.cold_input),
                "policy_evaluate": milliseconds(parts.policy),
            },
        });
        println!("{report:#}");
    } else {
        println!(
            "decision: {} gates ({} from the policy), {} warnings, {findings} findings, \
             {} evidence read; {WARMUP} warm-up then {} timed evaluations",
            decision.gates.len(),
            decision
                .gates
                .iter()
                .filter(|g| g.gate.starts_with("policy:"))
                .count(),
            decision.warnings.len(),
            decision.evidence.len(),
            settings.iterations,
        );
        println!(
            "  min {}  median {}  p90 {}  p99 {}  max {}",
            ms(stats.min),
            ms(stats.median),
            ms(stats.p90),
            ms(stats.p99),
            ms(stats.max)
        );
        println!(
            "  p99 / target ({}): {:.2}  {}",
            ms(TARGET),
            stats.p99.as_secs_f64() / TARGET.as_secs_f64(),
            if met { "PASS" } else { "FAIL" }
        );
        println!(
            "  median parts: built-in gates {}, Facts::to_policy_input {} (evidence converted before; {} the first time), Policy::evaluate_input {}",
            ms(parts.built_in),
            ms(parts.to_input),
            ms(parts.cold_input),
            ms(parts.policy)
        );
    }
    Ok(met || !settings.check)
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

/// Order statistics of sorted samples (nearest rank).
#[derive(Debug)]
struct Stats {
    min: Duration,
    median: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    fn of(sorted: &[Duration]) -> Stats {
        Stats {
            min: sorted[0],
            median: percentile(sorted, 50),
            p90: percentile(sorted, 90),
            p99: percentile(sorted, 99),
            max: sorted[sorted.len() - 1],
        }
    }
}

/// The smallest sample at least `percent`% of the samples are at most.
fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Medians of the parts of a decision, each timed on its own, to show where time goes.
#[derive(Debug)]
struct Parts {
    /// `evaluate` with the policy taken out.
    built_in: Duration,
    /// The policy input when its evidence is in the conversion cache, as for every
    /// decision after the first about the same evidence.
    to_input: Duration,
    /// The policy input converted from scratch, as for the first decision that reads
    /// a piece of evidence.
    cold_input: Duration,
    policy: Duration,
}

impl Parts {
    fn measure(gates: &Gates, facts: &Facts, runs: usize) -> Result<Parts> {
        let median = |mut samples: Vec<Duration>| {
            samples.sort_unstable();
            percentile(&samples, 50)
        };
        let time = |f: &mut dyn FnMut()| {
            let started = Instant::now();
            f();
            started.elapsed()
        };
        let built_in_gates = Gates {
            policies: Vec::new(),
            ..gates.clone()
        };
        let policy = gates
            .policies
            .first()
            .context("the benchmark has a policy")?;
        let input = facts
            .to_policy_input()
            .map_err(|error| anyhow::anyhow!("input: {error}"))?;
        policy
            .evaluate_input(&input)
            .map_err(|error| anyhow::anyhow!("{POLICY_NAME}: {error}"))?;
        let built_in = median(
            (0..runs)
                .map(|_| time(&mut || drop(std::hint::black_box(evaluate(&built_in_gates, facts)))))
                .collect(),
        );
        let to_input = median(
            (0..runs)
                .map(|_| time(&mut || drop(std::hint::black_box(facts.to_policy_input()))))
                .collect(),
        );
        let cold_input = median(
            (0..runs)
                .map(|_| {
                    time(&mut || {
                        drop(std::hint::black_box(Input::from_json(&facts.to_input())));
                    })
                })
                .collect(),
        );
        let policy = median(
            (0..runs)
                .map(|_| time(&mut || drop(std::hint::black_box(policy.evaluate_input(&input)))))
                .collect(),
        );
        Ok(Parts {
            built_in,
            to_input,
            cold_input,
            policy,
        })
    }
}

/// Wednesday 2025-03-12, 10:00 UTC: no freeze window is active.
fn now() -> Timestamp {
    "2025-03-12T10:00:00Z".parse().expect("a timestamp")
}

fn ago(minutes: i64) -> Timestamp {
    now() - SignedDuration::from_mins(minutes)
}

/// A distinct, recognisable digest for benchmark object `n`.
fn digest(n: u64) -> Digest {
    format!("sha256:{n:064x}").parse().expect("64 hex digits")
}

const BUILDER: &str = "https://github.com/actions/runner/github-hosted";
const SOURCE: &str = "https://github.com/acme/shop";
const REVISION: &str = "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Every built-in gate, as a production environment would set them, and the policy.
fn gates() -> Result<Gates> {
    let until = |date: &str| -> Timestamp { date.parse().expect("a timestamp") };
    let freeze = vec![
        FreezeWindow::cron("weekend", "0 18 * * FRI", "62h", "Europe/Berlin")?,
        FreezeWindow::rrule(
            "year-end",
            "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=20",
            "2024-12-20T00:00",
            "14d",
            "Europe/Berlin",
        )?,
    ];
    let policy = Policy::load(POLICY_NAME, POLICY)?;
    Ok(Gates {
        tests: Some(TestsGate {
            max_failures: 0,
            allow_flaky: true,
        }),
        vulnerabilities: Some(VulnerabilitiesGate {
            max: BTreeMap::from([(Severity::Critical, 0), (Severity::High, 5)]),
            ignore_unfixable: true,
            allowlist: vec![
                Allowance {
                    id: "CVE-2024-10003".to_owned(),
                    expires: until("2025-06-30T00:00:00Z"),
                    reason: "not reachable: the affected parser is not linked".to_owned(),
                },
                Allowance {
                    id: "CVE-2024-10043".to_owned(),
                    expires: until("2025-04-30T00:00:00Z"),
                    reason: "mitigated by the ingress configuration".to_owned(),
                },
                Allowance {
                    id: "GHSA-2q8v-3gqq-4f8p".to_owned(),
                    expires: until("2025-05-31T00:00:00Z"),
                    reason: "fixed upstream, waiting for the base image".to_owned(),
                },
            ],
        }),
        sbom: true,
        signed_by: Some(SignedByGate {
            keys: vec!["release-2025".to_owned()],
            identities: vec![IdentityRule {
                issuer: ISSUER.to_owned(),
                subject: "https://github.com/acme/shop/.github/workflows/*@refs/heads/main"
                    .to_owned(),
            }],
        }),
        provenance: Some(ProvenanceGate {
            builder_ids: vec![BUILDER.to_owned()],
            source_repositories: vec![format!("git+{SOURCE}")],
        }),
        soak: Some(SignedDuration::from_hours(24)),
        approvals: Some(ApprovalsGate {
            count: 2,
            from: vec![
                Approver::Group("release-managers".to_owned()),
                Approver::Group("security".to_owned()),
            ],
            expire_after: Some(SignedDuration::from_hours(72)),
        }),
        freeze,
        emergency: Some(EmergencyRule {
            group: "oncall".to_owned(),
            extra_approvals: 1,
        }),
        metrics: vec![
            MetricGate {
                name: "error-rate".to_owned(),
                query: r#"sum(rate(http_requests_total{namespace="shop-staging",code=~"5.."}[10m])) / sum(rate(http_requests_total{namespace="shop-staging"}[10m]))"#.to_owned(),
                comparison: Comparison::Below,
                threshold: 0.01,
            },
            MetricGate {
                name: "p99-latency".to_owned(),
                query: r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="shop-staging"}[10m])))"#.to_owned(),
                comparison: Comparison::AtMost,
                threshold: 0.3,
            },
        ],
        policies: vec![Arc::new(policy)],
        evidence_from: BTreeMap::new(),
    })
}

/// Release `2025.03.4` of `shop` (api, worker, migrations) on its way from staging to
/// prod, with everything a well-behaved pipeline produces.
fn facts() -> Facts {
    let components = ["api", "worker", "migrations"];
    let mut evidence = Vec::new();
    let mut signers = Vec::new();
    for (index, component) in components.iter().enumerate() {
        let n = index as u64 * 10;
        let about = Some((*component).to_owned());
        evidence.extend([
            EvidenceFact {
                digest: digest(0x100 + n),
                kind: gantry_evidence::Kind::Junit,
                component: about.clone(),
                summary: Summary::Tests(TestSummary {
                    total: 1450 + 37 * n,
                    failed: 0,
                    skipped: 12 + n,
                    flaky: u64::from(index == 1) * 2,
                }),
                added_at: ago(1670),
                supplied_by: "service:ci".to_owned(),
                supplier_may_promote: true,
                signer: None,
            },
            EvidenceFact {
                digest: digest(0x101 + n),
                kind: gantry_evidence::Kind::Trivy,
                component: about.clone(),
                summary: Summary::Vulnerabilities(trivy_scan(index)),
                added_at: ago(1665),
                supplied_by: "service:ci".to_owned(),
                supplier_may_promote: true,
                signer: None,
            },
            EvidenceFact {
                digest: digest(0x102 + n),
                kind: gantry_evidence::Kind::CycloneDx,
                component: about.clone(),
                summary: Summary::Sbom(SbomSummary {
                    format: SbomFormat::CycloneDx,
                    spec_version: "1.5".to_owned(),
                    components: 380 + 11 * n,
                    licenses: [
                        "Apache-2.0",
                        "BSD-2-Clause",
                        "BSD-3-Clause",
                        "ISC",
                        "MIT",
                        "MPL-2.0",
                        "OpenSSL",
                        "Unicode-DFS-2016",
                        "Zlib",
                        "(MIT OR Apache-2.0)",
                    ]
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                }),
                added_at: ago(1665),
                supplied_by: "service:ci".to_owned(),
                supplier_may_promote: true,
                signer: None,
            },
            EvidenceFact {
                digest: digest(0x103 + n),
                kind: gantry_evidence::Kind::SlsaProvenance,
                component: about,
                summary: Summary::Provenance(ProvenanceSummary {
                    builder_id: BUILDER.to_owned(),
                    build_type: "https://actions.github.io/buildtypes/workflow/v1".to_owned(),
                    source_repository: Some(format!("git+{SOURCE}")),
                    commit: Some(REVISION.to_owned()),
                }),
                added_at: ago(1675),
                supplied_by: "service:ci".to_owned(),
                supplier_may_promote: true,
                signer: Some(Signer::Key("release".to_owned())),
            },
        ]);
        signers.push(SignerFact {
            component: (*component).to_owned(),
            digest: format!("sha256:{:064x}", 0x5160 + index)
                .parse()
                .expect("a digest"),
            signer: if index == 2 {
                Signer::Key("release-2025".to_owned())
            } else {
                Signer::Identity {
                    issuer: ISSUER.to_owned(),
                    subject: format!("{SOURCE}/.github/workflows/release.yml@refs/heads/main"),
                }
            },
        });
    }
    evidence.push(EvidenceFact {
        digest: digest(0x200),
        kind: "generic:load-test".parse().expect("a generic kind"),
        component: None,
        summary: Summary::Generic(GenericSummary {
            declared_type: "load-test".to_owned(),
            document: json!({"rps": 1200, "p50_ms": 41, "p99_ms": 187, "errors": 0}),
        }),
        added_at: ago(1500),
        supplied_by: "service:ci".to_owned(),
        supplier_may_promote: true,
        signer: None,
    });
    let group = |members: &[&str]| -> BTreeSet<String> {
        members.iter().map(|m| (*m).to_owned()).collect()
    };
    Facts {
        project: "shop".to_owned(),
        environment: "prod".to_owned(),
        release: ReleaseFacts {
            id: digest(0xfeed),
            alias: "2025.03.4".to_owned(),
            created_by: "ci".to_owned(),
            created_at: ago(1680),
            labels: [
                ("org.opencontainers.image.revision", REVISION),
                ("org.opencontainers.image.source", SOURCE),
                ("gantry.team", "checkout"),
                ("gantry.change", "CHG-20417"),
                ("gantry.risk", "medium"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            components: components
                .iter()
                .enumerate()
                .map(|(i, c)| ((*c).to_owned(), digest(0xa0 + i as u64)))
                .collect(),
        },
        requested_by: Some("alice".to_owned()),
        emergency: false,
        rollback: false,
        evidence,
        signers,
        approvals: vec![
            ApprovalFact {
                user: "bob".to_owned(),
                approve: true,
                comment: Some("release notes checked".to_owned()),
                at: ago(90),
            },
            ApprovalFact {
                user: "carol".to_owned(),
                approve: true,
                comment: None,
                at: ago(60),
            },
            ApprovalFact {
                user: "sam".to_owned(),
                approve: true,
                comment: Some("scan results reviewed".to_owned()),
                at: ago(30),
            },
        ],
        groups: BTreeMap::from([
            (
                "release-managers".to_owned(),
                group(&["bob", "carol", "dave", "frank"]),
            ),
            ("security".to_owned(), group(&["sam", "tina"])),
            ("oncall".to_owned(), group(&["alice", "erin"])),
        ]),
        upstreams: vec![UpstreamFact {
            environment: "staging".to_owned(),
            reached_at: Some(ago(26 * 60)),
        }],
        stops: Vec::new(),
        metrics: BTreeMap::from([
            ("error-rate".to_owned(), Ok(0.0031)),
            ("p99-latency".to_owned(), Ok(0.212)),
        ]),
        now: now(),
    }
}

/// A Trivy scan of a Debian-based image: [`FINDINGS_PER_SCAN`] findings, mostly low and
/// medium, a few high ones (one allowlisted, some without a fix), no fixable critical.
fn trivy_scan(component: usize) -> VulnerabilitySummary {
    const PACKAGES: [&str; 12] = [
        "libc6@2.36-9+deb12u4",
        "libssl3@3.0.11-1~deb12u2",
        "openssl@3.0.11-1~deb12u2",
        "zlib1g@1:1.2.13.dfsg-1",
        "libgnutls30@3.7.9-2+deb12u2",
        "libsystemd0@252.22-1~deb12u1",
        "perl-base@5.36.0-7+deb12u1",
        "libtasn1-6@4.19.0-2",
        "libkrb5-3@1.20.1-2+deb12u1",
        "libexpat1@2.5.0-1",
        "github.com/golang-jwt/jwt/v4@4.5.0",
        "golang.org/x/net@0.17.0",
    ];
    let mut findings: Vec<Finding> = (0..FINDINGS_PER_SCAN)
        .map(|i| {
            // Per 200: 1 critical without a fix, 4 high, 40 medium, 110 low,
            // 30 negligible, 15 unknown.
            let severity = match i {
                0 => Severity::Critical,
                1..=4 => Severity::High,
                5..=44 => Severity::Medium,
                45..=154 => Severity::Low,
                155..=184 => Severity::Negligible,
                _ => Severity::Unknown,
            };
            let fixable = match severity {
                Severity::Critical => false,
                Severity::High => i != 4,
                _ => i % 3 != 0,
            };
            Finding {
                id: format!("CVE-2024-{}", 10_000 + i + 40 * component),
                severity,
                fixable,
                package: PACKAGES[(i * 7 + component) % PACKAGES.len()].to_owned(),
            }
        })
        .collect();
    findings.sort();
    VulnerabilitySummary {
        scanner: "trivy".to_owned(),
        findings,
    }
}
