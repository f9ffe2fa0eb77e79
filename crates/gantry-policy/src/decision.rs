//! Facts in, a decision with reasons out: every configured gate answers, and the worst
//! answer decides.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use gantry_core::{Digest, GateState, Verdict, glob};
use gantry_evidence::{SbomFormat, Severity, Summary};
use jiff::{SignedDuration, Timestamp};

use crate::facts::{EvidenceFact, Facts, Signer};
use crate::gates::{ApprovalsGate, Approver, Gates, IdentityRule, Supplier};

/// One gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateOutcome {
    /// `tests`, `vulnerabilities`, `approvals`, `policy:release.rego/no-latest`, …
    pub gate: String,
    pub state: GateState,
    /// Why, in words for a person: what passed, what failed, what is still needed.
    pub reason: String,
}

/// The answer for a release and an environment, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub gates: Vec<GateOutcome>,
    pub warnings: Vec<String>,
    /// Each Rego policy used: its name and the digest of its source.
    pub policies: Vec<(String, Digest)>,
    /// The evidence the gates read.
    pub evidence: Vec<Digest>,
    /// When a pending gate may change by time alone (a soak ends, a freeze lifts).
    pub wake_at: Option<Timestamp>,
    /// The emergency path was taken.
    pub emergency: bool,
    /// Every piece of evidence known about the release: who supplied it, and whether
    /// it counted here and why (not).
    pub evidence_use: Vec<EvidenceUse>,
}

/// What one piece of evidence meant to a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceUse {
    pub digest: Digest,
    /// Its kind's name (`junit`, `trivy`, …).
    pub kind: String,
    pub component: Option<String>,
    pub supplied_by: String,
    /// The key or identity whose signature over it verified, if any.
    pub signed_by: Option<String>,
    /// A gate read it to decide.
    pub counted: bool,
    /// Why it counted or not: "service:ci-prod may promote into prod", "not from
    /// service:scanner (supplied by service:ci-dev)", "a newer report replaces it", "no
    /// gate here reads vulnerability scans".
    pub reason: String,
}

impl Decision {
    /// What a waiting release still needs, one phrase per pending gate:
    /// "1 more approval from group release-managers; soak 12m left in staging".
    pub fn needs(&self) -> String {
        self.gates
            .iter()
            .filter(|g| g.state == GateState::Pending)
            .map(|g| g.reason.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Why it may not go, one phrase per failing gate.
    pub fn failures(&self) -> String {
        self.gates
            .iter()
            .filter(|g| g.state == GateState::Fail)
            .map(|g| format!("{}: {}", g.gate, g.reason))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Evaluates every gate of `gates` over `facts`.
pub fn evaluate(gates: &Gates, facts: &Facts) -> Decision {
    let mut run = Run {
        facts,
        outcomes: Vec::new(),
        warnings: Vec::new(),
        evidence: BTreeSet::new(),
        wake_at: None,
    };
    let emergency = run.emergency(gates);
    if let Some(tests) = &gates.tests {
        run.per_component(gates, "tests", "tests", "a test report", |summary| {
            let Summary::Tests(t) = summary else {
                return None;
            };
            let mut problems = Vec::new();
            if t.failed > tests.max_failures {
                problems.push(format!(
                    "{} of {} tests failed (at most {} allowed)",
                    t.failed, t.total, tests.max_failures
                ));
            }
            if t.flaky > 0 && !tests.allow_flaky {
                let plural = if t.flaky == 1 { "" } else { "s" };
                problems.push(format!("{} flaky test{plural} (none allowed)", t.flaky));
            }
            Some(if problems.is_empty() {
                Ok(format!(
                    "{} tests, {} failed, {} skipped, {} flaky",
                    t.total, t.failed, t.skipped, t.flaky
                ))
            } else {
                Err(problems.join(", "))
            })
        });
    }
    if let Some(gate) = &gates.vulnerabilities {
        let now = facts.now;
        let mut expired = Vec::new();
        for allowance in &gate.allowlist {
            if allowance.expires <= now {
                expired.push(format!(
                    "allowlist entry {} expired at {}",
                    allowance.id, allowance.expires
                ));
            }
        }
        run.warnings.extend(expired);
        run.per_component(
            gates,
            "vulnerabilities",
            "vulnerabilities",
            "a vulnerability scan",
            |summary| {
                let Summary::Vulnerabilities(scan) = summary else {
                    return None;
                };
                let mut counts: BTreeMap<Severity, u64> = BTreeMap::new();
                let mut allowed = 0;
                for finding in &scan.findings {
                    if gate.ignore_unfixable && !finding.fixable {
                        continue;
                    }
                    if gate
                        .allowlist
                        .iter()
                        .any(|a| a.id == finding.id && a.expires > now)
                    {
                        allowed += 1;
                        continue;
                    }
                    *counts.entry(finding.severity).or_default() += 1;
                }
                // Worst first, as in the summary of what was seen.
                let over: Vec<String> = gate
                    .max
                    .iter()
                    .rev()
                    .filter(|(severity, max)| counts.get(severity).copied().unwrap_or(0) > **max)
                    .map(|(severity, max)| {
                        format!("{} {} (at most {max})", counts[severity], severity.as_str())
                    })
                    .collect();
                let seen = Severity::ALL
                    .iter()
                    .filter_map(|s| counts.get(s).map(|n| format!("{n} {}", s.as_str())))
                    .collect::<Vec<_>>();
                let mut text = if seen.is_empty() {
                    format!("{}: no findings that count", scan.scanner)
                } else {
                    format!("{}: {}", scan.scanner, seen.join(", "))
                };
                if allowed > 0 {
                    let _ = write!(text, " ({allowed} allowlisted)");
                }
                Some(if over.is_empty() {
                    Ok(text)
                } else {
                    Err(format!("{}: {}", scan.scanner, over.join(", ")))
                })
            },
        );
    }
    if gates.sbom {
        run.per_component(gates, "sbom", "sbom", "an SBOM", |summary| {
            let Summary::Sbom(sbom) = summary else {
                return None;
            };
            let format = match sbom.format {
                SbomFormat::CycloneDx => "CycloneDX",
                SbomFormat::Spdx => "SPDX",
            };
            // SPDX versions are written `SPDX-2.3`.
            let version = sbom
                .spec_version
                .strip_prefix("SPDX-")
                .unwrap_or(&sbom.spec_version);
            Some(Ok(format!(
                "{format} {version} with {} components",
                sbom.components
            )))
        });
    }
    if let Some(gate) = &gates.provenance {
        run.per_component(gates, "provenance", "provenance", "provenance", |summary| {
            let Summary::Provenance(p) = summary else {
                return None;
            };
            let mut problems = Vec::new();
            if !gate.builder_ids.is_empty() && !gate.builder_ids.contains(&p.builder_id) {
                problems.push(format!(
                    "built by {}, not by {}",
                    p.builder_id,
                    gate.builder_ids.join(" or ")
                ));
            }
            if !gate.source_repositories.is_empty()
                && !p
                    .source_repository
                    .as_ref()
                    .is_some_and(|s| gate.source_repositories.contains(s))
            {
                problems.push(format!(
                    "built from {}, not from {}",
                    p.source_repository
                        .as_deref()
                        .unwrap_or("an unknown source"),
                    gate.source_repositories.join(" or ")
                ));
            }
            Some(if problems.is_empty() {
                Ok(format!(
                    "built by {} from {}{}",
                    p.builder_id,
                    p.source_repository
                        .as_deref()
                        .unwrap_or("an unknown source"),
                    p.commit
                        .as_ref()
                        .map(|c| format!(" at {c}"))
                        .unwrap_or_default()
                ))
            } else {
                Err(problems.join(", "))
            })
        });
    }
    if let Some(gate) = &gates.signed_by {
        let mut missing = Vec::new();
        let mut found = Vec::new();
        for component in facts.release.components.keys() {
            let signer = facts
                .signers
                .iter()
                .filter(|s| &s.component == component)
                .find(|s| signer_matches(&s.signer, &gate.keys, &gate.identities));
            match signer {
                Some(s) => {
                    run.evidence.insert(s.digest.clone());
                    found.push(format!("{component} by {}", describe_signer(&s.signer)));
                }
                None => missing.push(component.clone()),
            }
        }
        let wanted: Vec<String> = gate
            .keys
            .iter()
            .map(|k| format!("key {k}"))
            .chain(
                gate.identities
                    .iter()
                    .map(|i| format!("{} from {}", i.subject, i.issuer)),
            )
            .collect();
        if missing.is_empty() {
            run.outcome(
                "signed-by",
                GateState::Pass,
                format!("signed: {}", found.join(", ")),
            );
        } else {
            run.outcome(
                "signed-by",
                GateState::Pending,
                format!(
                    "a signature on {} by {}",
                    missing.join(", "),
                    wanted.join(" or ")
                ),
            );
        }
    }
    if let Some(soak) = gates.soak {
        run.soak(soak);
    }
    // The emergency path costs its extra approvals whether or not the environment asks
    // for approvals otherwise: without an approvals gate, anyone who may approve there
    // can give them, under the same separation of duties.
    let extra = if emergency {
        gates.emergency.as_ref().map_or(0, |e| e.extra_approvals)
    } else {
        0
    };
    match &gates.approvals {
        Some(gate) => run.approvals(gate, extra),
        None if extra > 0 => run.approvals(&ApprovalsGate::emergency_only(), extra),
        None => {}
    }
    run.freeze(gates, emergency);
    for metric in &gates.metrics {
        match facts.metrics.get(&metric.name) {
            Some(Ok(value)) if metric.comparison.holds(*value, metric.threshold) => run.outcome(
                &format!("metric:{}", metric.name),
                GateState::Pass,
                format!(
                    "{value} {} {}",
                    metric.comparison.symbol(),
                    metric.threshold
                ),
            ),
            Some(Ok(value)) => run.outcome(
                &format!("metric:{}", metric.name),
                GateState::Fail,
                format!(
                    "{} is {value}, must be {} {}",
                    metric.query,
                    metric.comparison.symbol(),
                    metric.threshold
                ),
            ),
            Some(Err(error)) => run.outcome(
                &format!("metric:{}", metric.name),
                GateState::Fail,
                format!("no value (fails closed): {error}"),
            ),
            None => run.outcome(
                &format!("metric:{}", metric.name),
                GateState::Fail,
                "no value was measured (fails closed)".to_owned(),
            ),
        }
    }
    let mut policies = Vec::new();
    if !gates.policies.is_empty() {
        let input = facts.to_policy_input();
        for policy in &gates.policies {
            policies.push((policy.name().to_owned(), policy.digest().clone()));
            let gate = format!("policy:{}", policy.name());
            match input
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|i| policy.evaluate_input(i))
            {
                Ok(answer) => {
                    run.warnings.extend(
                        answer
                            .warnings
                            .into_iter()
                            .map(|w| format!("{}: {w}", policy.name())),
                    );
                    if answer.violations.is_empty() && answer.allow {
                        run.outcome(&gate, GateState::Pass, "allowed".to_owned());
                    } else if answer.violations.is_empty() {
                        run.outcome(
                            &gate,
                            GateState::Fail,
                            "allow is false and no violation says why".to_owned(),
                        );
                    }
                    for violation in answer.violations {
                        run.outcome(
                            &format!("{gate}/{}", violation.gate),
                            GateState::Fail,
                            violation.message,
                        );
                    }
                }
                Err(error) => run.outcome(
                    &gate,
                    GateState::Fail,
                    format!("the policy failed, so it does not allow: {error}"),
                ),
            }
        }
    }
    let verdict = Verdict::of(run.outcomes.iter().map(|o| o.state));
    let evidence_use = evidence_use(gates, facts, &run.evidence);
    Decision {
        verdict,
        gates: run.outcomes,
        warnings: run.warnings,
        policies,
        evidence: run.evidence.into_iter().collect(),
        wake_at: if verdict == Verdict::Pending {
            run.wake_at
        } else {
            None
        },
        emergency,
        evidence_use,
    }
}

/// For each piece of evidence, whether a gate read it and why (not).
fn evidence_use(gates: &Gates, facts: &Facts, read: &BTreeSet<Digest>) -> Vec<EvidenceUse> {
    facts
        .evidence
        .iter()
        .map(|e| {
            let family = e.kind.family();
            let configured = gates.reads_evidence(family);
            let from = gates.from(family);
            let (counted, reason) = if read.contains(&e.digest) {
                (true, why_it_counts(e, from, &facts.environment))
            } else if !configured && gates.policies.is_empty() {
                (false, format!("no gate here reads {family} evidence"))
            } else if !configured {
                (false, format!("only policies read {family} evidence here"))
            } else {
                match facts.evidence_counts(e, from, gates.identities()) {
                    Err(reason) => (false, reason),
                    Ok(()) => (
                        false,
                        "another report of its kind decides (a newer one, or one about its component)"
                            .to_owned(),
                    ),
                }
            };
            EvidenceUse {
                digest: e.digest.clone(),
                kind: e.kind.name(),
                component: e.component.clone(),
                supplied_by: e.supplied_by.clone(),
                signed_by: e.signer.as_ref().map(describe_signer),
                counted,
                reason,
            }
        })
        .collect()
}

/// Why evidence that a gate read counts, in words.
fn why_it_counts(evidence: &EvidenceFact, from: &[Supplier], environment: &str) -> String {
    if !from.is_empty() {
        let by = match &evidence.signer {
            Some(Signer::Key(key))
                if from
                    .iter()
                    .any(|s| matches!(s, Supplier::Key(k) if k == key)) =>
            {
                format!("signed by key {key}")
            }
            _ => evidence.supplied_by.clone(),
        };
        return format!(
            "from {by}, whom the gate names (from: {})",
            from.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match &evidence.signer {
        Some(signer @ Signer::Key(_)) => format!("signed by {}", describe_signer(signer)),
        _ if evidence.supplier_may_promote => {
            format!("{} may promote into {environment}", evidence.supplied_by)
        }
        Some(signer) => format!(
            "signed by {}, whom signed_by here names",
            describe_signer(signer)
        ),
        None => format!("{} may promote into {environment}", evidence.supplied_by),
    }
}

struct Run<'a> {
    facts: &'a Facts,
    outcomes: Vec<GateOutcome>,
    warnings: Vec<String>,
    evidence: BTreeSet<Digest>,
    wake_at: Option<Timestamp>,
}

impl Run<'_> {
    fn outcome(&mut self, gate: &str, state: GateState, reason: String) {
        self.outcomes.push(GateOutcome {
            gate: gate.to_owned(),
            state,
            reason,
        });
    }

    fn wake(&mut self, at: Timestamp) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    /// Whether the emergency path applies; asking for it without the role fails.
    fn emergency(&mut self, gates: &Gates) -> bool {
        if !self.facts.emergency {
            return false;
        }
        let requester = self.facts.requested_by.as_deref().unwrap_or("");
        match &gates.emergency {
            Some(rule) if self.in_group(requester, &rule.group) => true,
            Some(rule) => {
                self.outcome(
                    "emergency",
                    GateState::Fail,
                    format!(
                        "only members of group {} may ask for an emergency promotion",
                        rule.group
                    ),
                );
                false
            }
            None => {
                self.outcome(
                    "emergency",
                    GateState::Fail,
                    format!("{} has no emergency path", self.facts.environment),
                );
                false
            }
        }
    }

    fn in_group(&self, user: &str, group: &str) -> bool {
        self.facts
            .groups
            .get(group)
            .is_some_and(|members| members.contains(user))
    }

    /// A gate over one evidence family that every component must satisfy: `judge` says
    /// `Ok(summary)` or `Err(problem)` for each latest piece of evidence.
    fn per_component(
        &mut self,
        gates: &Gates,
        gate: &str,
        family: &str,
        wanted: &str,
        mut judge: impl FnMut(&Summary) -> Option<Result<String, String>>,
    ) {
        let mut missing = Vec::new();
        let mut passed = Vec::new();
        let mut failed = Vec::new();
        let facts = self.facts;
        let from = gates.from(family);
        let identities = gates.identities();
        for component in facts.release.components.keys() {
            let latest = facts.latest(family, component, from, identities);
            if latest.is_empty() {
                missing.push(component.as_str());
                continue;
            }
            for evidence in latest {
                self.evidence.insert(evidence.digest.clone());
                match judge(&evidence.summary) {
                    Some(Ok(text)) => passed.push(format!("{component}: {text}")),
                    Some(Err(text)) => failed.push(format!("{component}: {text}")),
                    None => {}
                }
            }
        }
        if !failed.is_empty() {
            self.outcome(gate, GateState::Fail, failed.join("; "));
        } else if !missing.is_empty() {
            self.outcome(
                gate,
                GateState::Pending,
                format!("{wanted} for {}", missing.join(", ")),
            );
        } else {
            self.outcome(gate, GateState::Pass, passed.join("; "));
        }
    }

    fn soak(&mut self, soak: SignedDuration) {
        let facts = self.facts;
        let since: Vec<(String, Option<Timestamp>)> = if facts.upstreams.is_empty() {
            vec![("creation".to_owned(), Some(facts.release.created_at))]
        } else {
            facts
                .upstreams
                .iter()
                .map(|u| (u.environment.clone(), u.reached_at))
                .collect()
        };
        let mut waiting = Vec::new();
        for (place, reached) in since {
            let Some(reached) = reached else {
                waiting.push(format!("soak {} in {place} (not there yet)", human(soak)));
                continue;
            };
            let ready = reached.saturating_add(soak).unwrap_or(Timestamp::MAX);
            if ready > facts.now {
                let left = facts.now.duration_until(ready);
                let label = if place == "creation" {
                    "since creation".to_owned()
                } else {
                    format!("in {place}")
                };
                waiting.push(format!("soak {} left {label}", human(left)));
                self.wake(ready);
            }
        }
        if waiting.is_empty() {
            self.outcome(
                "soak",
                GateState::Pass,
                format!("soaked at least {}", human(soak)),
            );
        } else {
            self.outcome("soak", GateState::Pending, waiting.join(", "));
        }
    }

    fn approvals(&mut self, gate: &ApprovalsGate, extra: u32) {
        let facts = self.facts;
        let needed = gate.count + extra;
        let mut counted: BTreeSet<&str> = BTreeSet::new();
        let mut rejected = Vec::new();
        let mut notes = Vec::new();
        for approval in &facts.approvals {
            let user = approval.user.as_str();
            if let Some(expiry) = gate.expire_after {
                let until = approval.at.saturating_add(expiry).unwrap_or(Timestamp::MAX);
                if until <= facts.now {
                    notes.push(format!(
                        "{user}'s {} expired",
                        if approval.approve {
                            "approval"
                        } else {
                            "rejection"
                        }
                    ));
                    continue;
                }
            }
            if let Err(why) = approver_standing(
                gate,
                &facts.groups,
                &facts.release.created_by,
                facts.requested_by.as_deref(),
                user,
            ) {
                notes.push(why);
                continue;
            }
            if approval.approve {
                counted.insert(user);
            } else {
                rejected.push(match &approval.comment {
                    Some(comment) => format!("rejected by {user}: {comment}"),
                    None => format!("rejected by {user}"),
                });
            }
        }
        let from = if gate.from.is_empty() {
            String::new()
        } else {
            format!(
                " from {}",
                gate.from
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        };
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        if !rejected.is_empty() {
            self.outcome("approvals", GateState::Fail, rejected.join("; "));
        } else if (counted.len() as u64) < u64::from(needed) {
            let more = u64::from(needed) - counted.len() as u64;
            self.outcome(
                "approvals",
                GateState::Pending,
                format!(
                    "{more} more approval{}{from}{notes}",
                    if more == 1 { "" } else { "s" }
                ),
            );
        } else {
            let who: Vec<&str> = counted.into_iter().collect();
            self.outcome(
                "approvals",
                GateState::Pass,
                format!("approved by {}{notes}", who.join(", ")),
            );
        }
    }

    fn freeze(&mut self, gates: &Gates, emergency: bool) {
        let facts = self.facts;
        for window in &gates.freeze {
            if let Some(end) = window.active_at(facts.now) {
                if emergency {
                    self.outcome(
                        "freeze",
                        GateState::Pass,
                        format!(
                            "emergency: passes freeze window {} (until {end})",
                            window.describe()
                        ),
                    );
                } else {
                    self.outcome(
                        "freeze",
                        GateState::Pending,
                        format!("frozen by {} until {end}", window.describe()),
                    );
                    self.wake(end);
                }
            }
        }
        for stop in &facts.stops {
            let scope = stop.environment.as_deref().map_or_else(
                || format!("project {}", facts.project),
                |e| format!("environment {e}"),
            );
            if emergency {
                self.outcome(
                    "stop",
                    GateState::Pass,
                    format!(
                        "emergency: passes the stop of {scope} by {}: {}",
                        stop.by, stop.reason
                    ),
                );
            } else if facts.rollback {
                // An incident is when a rollback is needed: putting back a release the
                // environment held before passes a stop (and only a stop).
                self.outcome(
                    "stop",
                    GateState::Pass,
                    format!(
                        "rollback: passes the stop of {scope} by {}: {}",
                        stop.by, stop.reason
                    ),
                );
            } else {
                self.outcome(
                    "stop",
                    GateState::Pending,
                    format!(
                        "the line is stopped for {scope} by {}: {}",
                        stop.by, stop.reason
                    ),
                );
            }
        }
    }
}

/// Why an approval (or rejection) by `user` cannot count for `gates`, or `Ok` when it
/// can: the rule [`evaluate`] applies, for refusing an approval before it is recorded.
///
/// An approval counts only where a gate reads approvals (an approvals gate, an
/// emergency path with extra approvals, or a Rego policy, which sees every approval),
/// from someone the approvals gate's `from:` admits, who neither created the release
/// nor asked for the promotion (`requested_by`). Service accounts approve only where
/// `from:` names them explicitly (`service:NAME`), never through a group.
pub fn approval_standing(
    gates: &Gates,
    groups: &BTreeMap<String, BTreeSet<String>>,
    created_by: &str,
    requested_by: Option<&str>,
    user: &str,
) -> Result<(), String> {
    let emergency_only = ApprovalsGate::emergency_only();
    let gate = match &gates.approvals {
        Some(gate) => gate,
        None if gates
            .emergency
            .as_ref()
            .is_some_and(|e| e.extra_approvals > 0) =>
        {
            &emergency_only
        }
        // Only policies read approvals here: they see every approval, so the same
        // separation of duties holds for what may be recorded.
        None if !gates.policies.is_empty() => &emergency_only,
        None => {
            return Err(
                "no gate here reads approvals (no approvals gate, no emergency path with extra approvals, no policy)"
                    .to_owned(),
            );
        }
    };
    approver_standing(gate, groups, created_by, requested_by, user)
}

/// Whether `user`'s word counts for one approvals gate (separation of duties included).
fn approver_standing(
    gate: &ApprovalsGate,
    groups: &BTreeMap<String, BTreeSet<String>>,
    created_by: &str,
    requested_by: Option<&str>,
    user: &str,
) -> Result<(), String> {
    let named = gate
        .from
        .iter()
        .any(|a| matches!(a, Approver::User(u) if u == user));
    if user.starts_with("service:") {
        if !named {
            return Err(format!(
                "{user} is a service account: it approves only where the gate's from: names it"
            ));
        }
    } else if !gate.from.is_empty()
        && !named
        && !gate.from.iter().any(|a| match a {
            Approver::Group(g) => groups.get(g).is_some_and(|members| members.contains(user)),
            Approver::User(_) => false,
        })
    {
        return Err(format!("{user} may not approve here"));
    }
    if user == created_by {
        return Err(format!("{user} created the release and cannot approve it"));
    }
    if requested_by == Some(user) {
        return Err(format!(
            "{user} asked for the promotion and cannot approve it"
        ));
    }
    Ok(())
}

fn signer_matches(signer: &Signer, keys: &[String], identities: &[IdentityRule]) -> bool {
    match signer {
        Signer::Key(name) => keys.contains(name),
        Signer::Identity { issuer, subject } => identities
            .iter()
            .any(|rule| &rule.issuer == issuer && glob(&rule.subject, subject)),
    }
}

fn describe_signer(signer: &Signer) -> String {
    match signer {
        Signer::Key(name) => format!("key {name}"),
        Signer::Identity { issuer, subject } => format!("{subject} ({issuer})"),
    }
}

/// `1h 5m`, `12m`, `40s`: a duration rounded for people.
fn human(duration: SignedDuration) -> String {
    let seconds = duration.as_secs().max(0);
    let (days, hours, minutes) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}
