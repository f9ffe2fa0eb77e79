//! The `gates:` section of an environment, and the project-wide `groups:` and
//! `policies:`.
//!
//! ```yaml
//! groups:
//!   release-managers: [alice, bob]
//! policies: [policies/release.rego]          # every environment; paths are relative to this file
//! prometheus: http://127.0.0.1:9090          # for metric gates (required by them)
//! trust: {keys: {release: keys/release.pub}} # keys and identities: see [`super::trust`]
//! environments:
//!   prod:
//!     gates:
//!       tests: {max_failures: 0, allow_flaky: false}
//!       vulnerabilities:
//!         max: {critical: 0, high: 3}        # severities not named are not limited
//!         ignore_unfixable: true
//!         allowlist:
//!           - {id: CVE-2024-1234, expires: 2027-01-31, reason: not reachable from the API}
//!         from: [service:scanner, key:release] # whose scans count (default: whoever may
//!                                             # promote here, or signed by a trust key)
//!       sbom: true                           # or {from: [...]}
//!       signed_by: {keys: [release], identities: [{issuer: "https://token.actions.githubusercontent.com", subject: "https://github.com/acme/*"}]}
//!       provenance: {builder_ids: ["https://github.com/actions/runner"], source_repositories: ["https://github.com/acme/payments"]}
//!       soak: 30m                            # in each upstream
//!       approvals: {count: 2, from: [group:release-managers, carol], expire: 24h}
//!       freeze:
//!         - {name: weekend, cron: "0 18 * * FRI", duration: 62h, timezone: Europe/Berlin}
//!         - {name: year-end, rrule: "FREQ=YEARLY", start: "2026-12-20T00:00", duration: 14d, timezone: UTC}
//!       emergency: {group: sre, extra_approvals: 1}
//!       metrics:
//!         - {name: error-rate, query: "sum(rate(http_errors_total[5m]))", below: 0.01}
//!       policies: [policies/prod.rego]
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use gantry_evidence::Severity;
use gantry_policy::schedule::FreezeWindow;
use gantry_policy::{
    Allowance, ApprovalsGate, Approver, Comparison, EmergencyRule, Gates, IdentityRule, MetricGate,
    Policy, ProvenanceGate, SignedByGate, Supplier, TestsGate, VulnerabilitiesGate,
};
use jiff::{SignedDuration, Timestamp};
use marked_yaml::Spanned;
use serde::Deserialize;

use super::trust::Trust;
use super::{Converter, start};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct GatesWire {
    #[serde(default)]
    tests: Option<Spanned<TestsWire>>,
    #[serde(default)]
    vulnerabilities: Option<Spanned<VulnerabilitiesWire>>,
    #[serde(default)]
    sbom: Option<Spanned<SbomWire>>,
    #[serde(default)]
    signed_by: Option<Spanned<SignedByWire>>,
    #[serde(default)]
    provenance: Option<ProvenanceWire>,
    #[serde(default)]
    soak: Option<Spanned<String>>,
    #[serde(default)]
    approvals: Option<Spanned<ApprovalsWire>>,
    #[serde(default)]
    freeze: Vec<Spanned<FreezeWire>>,
    #[serde(default)]
    emergency: Option<Spanned<EmergencyWire>>,
    #[serde(default)]
    metrics: Vec<Spanned<MetricWire>>,
    #[serde(default)]
    policies: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestsWire {
    #[serde(default)]
    max_failures: u64,
    #[serde(default)]
    allow_flaky: bool,
    #[serde(default)]
    from: Vec<Spanned<String>>,
}

/// `sbom: true`, or `sbom: {from: [...]}` to say whose SBOMs count.
#[derive(Deserialize)]
#[serde(untagged)]
enum SbomWire {
    Required(bool),
    From { from: Vec<Spanned<String>> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VulnerabilitiesWire {
    #[serde(default)]
    max: HashMap<Spanned<String>, u64>,
    #[serde(default)]
    ignore_unfixable: bool,
    #[serde(default)]
    allowlist: Vec<Spanned<AllowanceWire>>,
    #[serde(default)]
    from: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowanceWire {
    id: String,
    expires: Spanned<String>,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedByWire {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    identities: Vec<IdentityWire>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityWire {
    issuer: String,
    subject: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvenanceWire {
    #[serde(default)]
    builder_ids: Vec<String>,
    #[serde(default)]
    source_repositories: Vec<String>,
    #[serde(default)]
    from: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalsWire {
    count: u32,
    #[serde(default)]
    from: Vec<Spanned<String>>,
    #[serde(default)]
    expire: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FreezeWire {
    name: String,
    #[serde(default)]
    cron: Option<String>,
    #[serde(default)]
    rrule: Option<String>,
    #[serde(default)]
    start: Option<String>,
    duration: String,
    #[serde(default)]
    timezone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmergencyWire {
    group: String,
    #[serde(default)]
    extra_approvals: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricWire {
    name: String,
    query: String,
    #[serde(default)]
    below: Option<f64>,
    #[serde(default)]
    at_most: Option<f64>,
    #[serde(default)]
    above: Option<f64>,
    #[serde(default)]
    at_least: Option<f64>,
}

/// What the project file says beyond the graph: everything gates need.
#[derive(Debug, Clone, Default)]
pub struct Governance {
    /// Environment → its gates (project-wide policies included).
    pub gates: BTreeMap<String, Gates>,
    /// Group → members.
    pub groups: BTreeMap<String, BTreeSet<String>>,
    /// Where metric gates send their queries.
    pub prometheus: Option<String>,
    /// Whose signatures count.
    pub trust: Trust,
    /// Component → which pushes to its source make a release.
    pub watches: BTreeMap<gantry_core::Name, super::watch::Watch>,
}

impl Converter<'_> {
    /// The `prometheus:` base URL, checked: http or https, no query.
    pub(super) fn prometheus(&mut self, url: &Spanned<String>) -> Option<String> {
        let text = url.as_str().trim_end_matches('/');
        let rest = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() && !text.contains(['?', '#', ' ']) => {
                Some(text.to_owned())
            }
            _ => {
                self.error(
                    start(url),
                    format!(
                        "prometheus: {:?} is not an http:// or https:// base URL (e.g. http://127.0.0.1:9090)",
                        url.as_str()
                    ),
                );
                None
            }
        }
    }

    /// Loads a policy file, relative to the project file's folder.
    pub(super) fn policy(
        &mut self,
        cache: &mut BTreeMap<String, Arc<Policy>>,
        path: &Spanned<String>,
    ) -> Option<Arc<Policy>> {
        if let Some(policy) = cache.get(path.as_str()) {
            return Some(policy.clone());
        }
        let full = Path::new(self.file)
            .parent()
            .unwrap_or(Path::new("."))
            .join(path.as_str());
        let source = match std::fs::read_to_string(&full) {
            Ok(source) => source,
            Err(e) => {
                self.error(
                    start(path),
                    format!("cannot read policy {}: {e}", full.display()),
                );
                return None;
            }
        };
        match Policy::load(path.as_str(), &source) {
            Ok(policy) => {
                let policy = Arc::new(policy);
                cache.insert(path.to_string(), policy.clone());
                Some(policy)
            }
            Err(e) => {
                self.error(start(path), e.to_string());
                None
            }
        }
    }

    /// An evidence gate's `from:`: principals (`alice`, `service:scanner`), groups
    /// (`group:NAME`) and keys of `trust:` (`key:NAME`), each checked.
    fn suppliers(
        &mut self,
        gates: &mut Gates,
        family: &str,
        from: &[Spanned<String>],
        governance: &Governance,
    ) {
        if from.is_empty() {
            return;
        }
        let mut suppliers = Vec::new();
        for entry in from {
            let text = entry.as_str();
            if let Some(group) = text.strip_prefix("group:") {
                if !governance.groups.contains_key(group) {
                    let known: Vec<&str> = governance.groups.keys().map(String::as_str).collect();
                    self.error(
                        start(entry),
                        format!(
                            "{family}.from: unknown group {group:?} (groups: {})",
                            if known.is_empty() {
                                "none defined".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                }
                suppliers.push(Supplier::Group(group.to_owned()));
            } else if let Some(key) = text.strip_prefix("key:") {
                if !governance.trust.keys.iter().any(|k| k.name == key) {
                    let known: Vec<&str> = governance
                        .trust
                        .keys
                        .iter()
                        .map(|k| k.name.as_str())
                        .collect();
                    self.error(
                        start(entry),
                        format!(
                            "{family}.from: unknown key {key:?} (trust.keys: {})",
                            if known.is_empty() {
                                "none defined".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                }
                suppliers.push(Supplier::Key(key.to_owned()));
            } else {
                match text.parse::<gantry_core::Principal>() {
                    Ok(principal) => suppliers.push(Supplier::Principal(principal.to_string())),
                    Err(e) => self.error(
                        start(entry),
                        format!("{family}.from: {e}; or group:NAME, or key:NAME of trust.keys"),
                    ),
                }
            }
        }
        gates.evidence_from.insert(family.to_owned(), suppliers);
    }

    pub(super) fn gates(
        &mut self,
        wire: GatesWire,
        project_policies: &[Arc<Policy>],
        cache: &mut BTreeMap<String, Arc<Policy>>,
        governance: &mut Governance,
    ) -> Gates {
        let groups = &governance.groups;
        let mut gates = Gates {
            policies: project_policies.to_vec(),
            ..Gates::default()
        };
        match wire.sbom.as_deref() {
            None | Some(SbomWire::Required(false)) => {}
            Some(SbomWire::Required(true)) => gates.sbom = true,
            Some(SbomWire::From { from }) => {
                gates.sbom = true;
                self.suppliers(&mut gates, "sbom", from, governance);
            }
        }
        if let Some(tests) = wire.tests {
            gates.tests = Some(TestsGate {
                max_failures: tests.max_failures,
                allow_flaky: tests.allow_flaky,
            });
            self.suppliers(&mut gates, "tests", &tests.from, governance);
        }
        if let Some(wire) = wire.vulnerabilities {
            self.suppliers(&mut gates, "vulnerabilities", &wire.from, governance);
            let mut max = BTreeMap::new();
            for (severity, count) in &wire.max {
                match Severity::ALL
                    .iter()
                    .find(|s| s.as_str() == severity.as_str())
                {
                    Some(s) => {
                        max.insert(*s, *count);
                    }
                    None => self.error(
                        start(severity),
                        format!(
                            "unknown severity {:?}; one of: critical, high, medium, low, negligible, unknown",
                            severity.as_str()
                        ),
                    ),
                }
            }
            let mut allowlist = Vec::new();
            for entry in &wire.allowlist {
                match timestamp(&entry.expires) {
                    Ok(expires) => allowlist.push(Allowance {
                        id: entry.id.clone(),
                        expires,
                        reason: entry.reason.clone(),
                    }),
                    Err(reason) => self.error(start(&entry.expires), reason),
                }
            }
            gates.vulnerabilities = Some(VulnerabilitiesGate {
                max,
                ignore_unfixable: wire.ignore_unfixable,
                allowlist,
            });
        }
        if let Some(wire) = wire.signed_by {
            if wire.keys.is_empty() && wire.identities.is_empty() {
                self.error(
                    start(&wire),
                    "signed_by names at least one key or identity".to_owned(),
                );
            }
            let trust = &mut governance.trust;
            for key in &wire.keys {
                if !trust.has_key(key) {
                    let known: Vec<&str> = trust.keys.iter().map(|k| k.name.as_str()).collect();
                    self.error(
                        start(&wire),
                        format!(
                            "signed_by: unknown key {key:?} (trust.keys: {})",
                            if known.is_empty() {
                                "none defined".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                }
            }
            if !wire.identities.is_empty() && trust.sigstore_root.is_none() {
                self.error(
                    start(&wire),
                    "signed_by: identities are verified against a Sigstore trusted root; set trust.sigstore_root".to_owned(),
                );
            }
            for identity in &wire.identities {
                trust.add_identity(&identity.issuer, &identity.subject);
            }
            gates.signed_by = Some(SignedByGate {
                keys: wire.keys.clone(),
                identities: wire
                    .identities
                    .iter()
                    .map(|i| IdentityRule {
                        issuer: i.issuer.clone(),
                        subject: i.subject.clone(),
                    })
                    .collect(),
            });
        }
        if let Some(wire) = wire.provenance {
            self.suppliers(&mut gates, "provenance", &wire.from, governance);
            gates.provenance = Some(ProvenanceGate {
                builder_ids: wire.builder_ids,
                source_repositories: wire.source_repositories,
            });
        }
        if let Some(soak) = &wire.soak {
            gates.soak = self.duration(soak);
        }
        if let Some(wire) = &wire.approvals {
            if wire.count == 0 {
                self.error(
                    start(wire),
                    "approvals: count must be at least 1".to_owned(),
                );
            }
            let mut from = Vec::new();
            for approver in &wire.from {
                if let Some(group) = approver.strip_prefix("group:") {
                    if !groups.contains_key(group) {
                        let known: Vec<&str> = groups.keys().map(String::as_str).collect();
                        self.error(
                            start(approver),
                            format!(
                                "unknown group {group:?} (groups: {})",
                                if known.is_empty() {
                                    "none defined".to_owned()
                                } else {
                                    known.join(", ")
                                }
                            ),
                        );
                    }
                    from.push(Approver::Group(group.to_owned()));
                } else {
                    from.push(Approver::User(approver.to_string()));
                }
            }
            gates.approvals = Some(ApprovalsGate {
                count: wire.count,
                from,
                expire_after: wire.expire.as_ref().and_then(|e| self.duration(e)),
            });
        }
        for window in &wire.freeze {
            let zone = window.timezone.as_deref().unwrap_or("UTC");
            let parsed = match (&window.cron, &window.rrule, &window.start) {
                (Some(cron), None, None) => {
                    FreezeWindow::cron(&window.name, cron, &window.duration, zone)
                }
                (None, Some(rrule), Some(start)) => {
                    FreezeWindow::rrule(&window.name, rrule, start, &window.duration, zone)
                }
                (None, Some(_), None) => {
                    self.error(
                        start(window),
                        "freeze: an rrule needs a `start` (its DTSTART, e.g. 2026-12-20T00:00)"
                            .to_owned(),
                    );
                    continue;
                }
                _ => {
                    self.error(
                        start(window),
                        "freeze: give either `cron` or `rrule` with `start`".to_owned(),
                    );
                    continue;
                }
            };
            match parsed {
                Ok(parsed) => gates.freeze.push(parsed),
                Err(e) => self.error(start(window), format!("freeze {}: {e}", window.name)),
            }
        }
        if let Some(wire) = &wire.emergency {
            if !groups.contains_key(&wire.group) {
                self.error(
                    start(wire),
                    format!("emergency: unknown group {:?}", wire.group),
                );
            }
            gates.emergency = Some(EmergencyRule {
                group: wire.group.clone(),
                extra_approvals: wire.extra_approvals,
            });
        }
        for metric in &wire.metrics {
            if governance.prometheus.is_none() {
                self.error(
                    start(metric),
                    format!(
                        "metric {:?} needs a Prometheus to ask: set prometheus: http://HOST:9090 at the top of the file",
                        metric.name
                    ),
                );
            }
            let limits = [
                (metric.below, Comparison::Below),
                (metric.at_most, Comparison::AtMost),
                (metric.above, Comparison::Above),
                (metric.at_least, Comparison::AtLeast),
            ];
            let given: Vec<(f64, Comparison)> = limits
                .into_iter()
                .filter_map(|(value, comparison)| value.map(|v| (v, comparison)))
                .collect();
            if let [(threshold, comparison)] = given[..] {
                gates.metrics.push(MetricGate {
                    name: metric.name.clone(),
                    query: metric.query.clone(),
                    comparison,
                    threshold,
                });
            } else {
                self.error(
                    start(metric),
                    format!(
                        "metric {}: give exactly one of below, at_most, above, at_least",
                        metric.name
                    ),
                );
            }
        }
        for path in &wire.policies {
            if let Some(policy) = self.policy(cache, path) {
                gates.policies.push(policy);
            }
        }
        gates
    }

    pub(super) fn duration(&mut self, text: &Spanned<String>) -> Option<SignedDuration> {
        match duration(text.as_str()) {
            Ok(duration) => Some(duration),
            Err(reason) => {
                self.error(start(text), reason);
                None
            }
        }
    }
}

/// `30m`, `62h`, `1h30m`, `2d` (24 hours a day), or ISO 8601 `PT30M`.
pub fn duration(text: &str) -> Result<SignedDuration, String> {
    let days = text
        .strip_suffix('d')
        .and_then(|days| days.parse::<i64>().ok());
    let parsed = match days {
        Some(days) => days
            .checked_mul(86_400)
            .map(SignedDuration::from_secs)
            .ok_or_else(|| format!("duration {text:?} is too long"))?,
        None => text.parse::<SignedDuration>().map_err(|_| {
            format!("duration {text:?} is not a duration like 30m, 12h, 1h30m or 2d")
        })?,
    };
    if parsed.is_positive() {
        Ok(parsed)
    } else {
        Err(format!("duration {text:?} must be more than zero"))
    }
}

/// `2027-01-31` (midnight UTC) or RFC 3339 `2027-01-31T12:00:00Z`.
fn timestamp(text: &str) -> Result<Timestamp, String> {
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        if let Ok(zoned) = date.to_zoned(jiff::tz::TimeZone::UTC) {
            return Ok(zoned.timestamp());
        }
    }
    text.parse::<Timestamp>()
        .map_err(|_| format!("expires {text:?} is not a date (2027-01-31) or an RFC 3339 time"))
}
