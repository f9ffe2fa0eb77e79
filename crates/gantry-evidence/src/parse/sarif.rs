//! SARIF 2.1.0 logs: static analysis and scanners (`CodeQL`, Semgrep, Trivy's and
//! Grype's SARIF output). Each result that reports a problem becomes a finding.
//!
//! - id: the result's `ruleId`, else `rule.id`, else the id of the rule it points at.
//! - severity: a CVSS score in `properties["security-severity"]` (the result's, else
//!   its rule's), as GitHub code scanning reads it; without one, the result's `level`,
//!   else the rule's `defaultConfiguration.level`, else SARIF's default `warning`.
//! - fixable: the result proposes `fixes`.
//! - package: the first location's `artifactLocation.uri`, or empty.
//!
//! Rules are looked up in `tool.driver.rules`, or in the `tool.extensions[]` a
//! result's `rule.toolComponent.index` names (`CodeQL` keeps its query packs' rules
//! there), by index when the result gives one in range, else by id.
//!
//! Not findings: results whose `kind` says there is nothing to fix (`pass`,
//! `notApplicable`, `informational`) and results suppressed for good (every
//! suppression accepted; one under review or rejected leaves the result in).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::json::{self, expect_value, null_as_default};
use super::{Malformed, Parsed, vulnerabilities};
use crate::summary::{Finding, Severity};

#[derive(Debug, Deserialize)]
struct Log {
    version: String,
    runs: Vec<Run>,
}

#[derive(Debug, Deserialize)]
struct Run {
    tool: Tool,
    /// `null` means the tool did not run to completion; it found nothing either way.
    #[serde(default, deserialize_with = "null_as_default")]
    results: Vec<SarifResult>,
}

#[derive(Debug, Deserialize)]
struct Tool {
    driver: ToolComponent,
    #[serde(default)]
    extensions: Vec<ToolComponent>,
}

#[derive(Debug, Deserialize)]
struct ToolComponent {
    name: String,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
struct Rule {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "defaultConfiguration", default)]
    default_configuration: Option<Configuration>,
    #[serde(default)]
    properties: Properties,
}

#[derive(Debug, Deserialize)]
struct Configuration {
    #[serde(default)]
    level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Properties {
    /// A CVSS score, as a number or (`CodeQL`) a string.
    #[serde(rename = "security-severity", default)]
    security_severity: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct SarifResult {
    #[serde(rename = "ruleId", default)]
    rule_id: Option<String>,
    #[serde(rename = "ruleIndex", default)]
    rule_index: Option<i64>,
    #[serde(default)]
    rule: Option<RuleReference>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    fixes: Vec<Value>,
    #[serde(default)]
    locations: Vec<Location>,
    #[serde(default)]
    properties: Properties,
    #[serde(default)]
    suppressions: Vec<Suppression>,
}

#[derive(Debug, Deserialize)]
struct RuleReference {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    index: Option<i64>,
    #[serde(rename = "toolComponent", default)]
    tool_component: Option<ToolComponentReference>,
}

#[derive(Debug, Deserialize)]
struct ToolComponentReference {
    #[serde(default)]
    index: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Location {
    #[serde(rename = "physicalLocation", default)]
    physical_location: Option<PhysicalLocation>,
}

#[derive(Debug, Deserialize)]
struct PhysicalLocation {
    #[serde(rename = "artifactLocation", default)]
    artifact_location: Option<ArtifactLocation>,
}

#[derive(Debug, Deserialize)]
struct ArtifactLocation {
    #[serde(default)]
    uri: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Suppression {
    #[serde(default)]
    status: Option<String>,
}

/// Result kinds that report no problem.
const NOT_PROBLEMS: [&str; 3] = ["pass", "notApplicable", "informational"];

pub(super) fn parse(text: &str) -> Result<Parsed, Malformed> {
    let log: Log = json::read_object(text, "SARIF log")?;
    expect_value("version", &log.version, &["2.1.0"], "SARIF")?;
    let scanner = log
        .runs
        .first()
        .map(|run| run.tool.driver.name.clone())
        .unwrap_or_default();
    let mut findings = Vec::new();
    for (run_index, run) in log.runs.iter().enumerate() {
        let rules = Rules::new(run, run_index);
        for (result_index, result) in run.results.iter().enumerate() {
            let at = format!("runs[{run_index}].results[{result_index}]");
            if let Some(finding) = finding(&rules, result, &at)? {
                findings.push(finding);
            }
        }
    }
    Ok(Parsed {
        summary: vulnerabilities(scanner, findings),
        subjects: Vec::new(),
    })
}

fn finding(
    rules: &Rules<'_>,
    result: &SarifResult,
    at: &str,
) -> Result<Option<Finding>, Malformed> {
    if result
        .kind
        .as_deref()
        .is_some_and(|kind| NOT_PROBLEMS.contains(&kind))
    {
        return Ok(None);
    }
    let suppressed = !result.suppressions.is_empty()
        && result
            .suppressions
            .iter()
            .all(|suppression| matches!(suppression.status.as_deref(), None | Some("accepted")));
    if suppressed {
        return Ok(None);
    }
    let found = rules.find(result);
    let rule = found.as_ref().map(|(rule, at)| (*rule, at.as_str()));
    let id = result
        .rule_id
        .clone()
        .or_else(|| result.rule.as_ref().and_then(|rule| rule.id.clone()))
        .or_else(|| rule.and_then(|(rule, _)| rule.id.clone()))
        .ok_or_else(|| Malformed::at(at, "names no rule (no ruleId, rule.id or ruleIndex)"))?;

    // A score on the result wins over its rule's, and any score over a level.
    let score = result
        .properties
        .security_severity
        .as_ref()
        .map(|score| (score, format!("{at}.properties.security-severity")))
        .or_else(|| {
            let (rule, rule_at) = rule?;
            let score = rule.properties.security_severity.as_ref()?;
            Some((score, format!("{rule_at}.properties.security-severity")))
        });
    let severity = match score {
        Some((score, score_at)) => cvss(score, &score_at)?,
        None => level_severity(result, rule, at)?,
    };
    let package = result
        .locations
        .first()
        .and_then(|location| location.physical_location.as_ref())
        .and_then(|physical| physical.artifact_location.as_ref())
        .and_then(|artifact| artifact.uri.clone())
        .unwrap_or_default();
    Ok(Some(Finding {
        id,
        severity,
        fixable: !result.fixes.is_empty(),
        package,
    }))
}

/// The severity of a result's `level`, else its rule's default level, else SARIF's
/// default `warning`.
fn level_severity(
    result: &SarifResult,
    rule: Option<(&Rule, &str)>,
    at: &str,
) -> Result<Severity, Malformed> {
    let rule_level = rule.and_then(|(rule, rule_at)| {
        let level = rule.default_configuration.as_ref()?.level.as_ref()?;
        Some((level, format!("{rule_at}.defaultConfiguration.level")))
    });
    let Some((level, level_at)) = result
        .level
        .as_ref()
        .map(|level| (level, format!("{at}.level")))
        .or(rule_level)
    else {
        return Ok(Severity::Medium);
    };
    from_level(level).ok_or_else(|| {
        Malformed::at(
            level_at,
            format!("is {level:?}, not one of \"error\", \"warning\", \"note\", \"none\""),
        )
    })
}

/// A run's tool components (the driver first, then the extensions) with their rules
/// indexed by id, so finding a result's rule does not search every rule: a log may
/// hold many thousands of both.
struct Rules<'run> {
    components: Vec<RuleComponent<'run>>,
}

struct RuleComponent<'run> {
    rules: &'run [Rule],
    /// The component's path, for refusals: `runs[0].tool.extensions[2]`.
    at: String,
    /// Each id's first rule.
    by_id: HashMap<&'run str, usize>,
}

impl<'run> Rules<'run> {
    fn new(run: &'run Run, run_index: usize) -> Rules<'run> {
        let component = |component: &'run ToolComponent, at: String| {
            let mut by_id = HashMap::new();
            for (index, rule) in component.rules.iter().enumerate() {
                if let Some(id) = &rule.id {
                    by_id.entry(id.as_str()).or_insert(index);
                }
            }
            RuleComponent {
                rules: &component.rules,
                at,
                by_id,
            }
        };
        let driver = component(&run.tool.driver, format!("runs[{run_index}].tool.driver"));
        let extensions = run
            .tool
            .extensions
            .iter()
            .enumerate()
            .map(|(index, extension)| {
                component(
                    extension,
                    format!("runs[{run_index}].tool.extensions[{index}]"),
                )
            });
        Rules {
            components: std::iter::once(driver).chain(extensions).collect(),
        }
    }

    /// The rule a result points at, with its path for refusals: in the tool
    /// component its `rule.toolComponent.index` names (the driver without one), by
    /// index when in range, else by id.
    fn find(&self, result: &SarifResult) -> Option<(&'run Rule, String)> {
        let reference = result.rule.as_ref();
        let component = match reference
            .and_then(|r| r.tool_component.as_ref())
            .and_then(|c| c.index)
        {
            Some(extension) => self
                .components
                .get(usize::try_from(extension).ok()?.checked_add(1)?)?,
            None => &self.components[0],
        };
        let by_index = reference
            .and_then(|r| r.index)
            .or(result.rule_index)
            .and_then(|index| usize::try_from(index).ok())
            .filter(|index| *index < component.rules.len());
        let by_id = || {
            let id = result
                .rule_id
                .as_deref()
                .or_else(|| reference.and_then(|r| r.id.as_deref()))?;
            component.by_id.get(id).copied()
        };
        let index = by_index.or_else(by_id)?;
        Some((
            &component.rules[index],
            format!("{}.rules[{index}]", component.at),
        ))
    }
}

/// A CVSS score's severity, in GitHub code scanning's bands.
fn cvss(score: &Value, at: &str) -> Result<Severity, Malformed> {
    let number = match score {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    let Some(number) = number.filter(|n| (0.0..=10.0).contains(n)) else {
        return Err(Malformed::at(
            at,
            format!("is {score}, not a CVSS score from 0 to 10"),
        ));
    };
    Ok(match number {
        n if n >= 9.0 => Severity::Critical,
        n if n >= 7.0 => Severity::High,
        n if n >= 4.0 => Severity::Medium,
        n if n > 0.0 => Severity::Low,
        _ => Severity::Negligible,
    })
}

fn from_level(level: &str) -> Option<Severity> {
    match level {
        "error" => Some(Severity::High),
        "warning" => Some(Severity::Medium),
        "note" => Some(Severity::Low),
        "none" => Some(Severity::Negligible),
        _ => None,
    }
}
