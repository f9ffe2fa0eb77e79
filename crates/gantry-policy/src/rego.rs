//! Rego v1 policies, evaluated by regorus. The contract: a policy defines
//! `data.gantry.decision = {"allow": bool, "violations": [{"gate", "msg"}], "warnings": [string]}`
//! over `input` (the facts, see [`crate::Facts::to_input`]). Anything else — an error,
//! a time-out, a missing or malformed decision — fails closed.

use std::num::NonZeroU32;
use std::time::Duration;

use gantry_core::Digest;
use regorus::utils::limits::ExecutionTimerConfig;
use serde::Deserialize as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The longest a policy may run for one decision.
pub const EVALUATION_TIME_LIMIT: Duration = Duration::from_millis(250);
/// The default ceiling on the process's heap while policies run; see [`set_memory_limit`].
pub const DEFAULT_MEMORY_LIMIT: u64 = 1024 * 1024 * 1024;
/// The largest policy source accepted.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

const DECISION_RULE: &str = "data.gantry.decision";

static MEMORY_LIMIT: std::sync::Once = std::sync::Once::new();

/// Sets the memory limit for policy evaluation: the heap the whole process may hold
/// while a policy runs, in bytes. An evaluation that pushes the heap past it stops
/// and fails closed ("memory limit exceeded"); the rest of the process is not limited.
///
/// regorus counts allocations in the allocator it installs (mimalloc) and checks the
/// count as it evaluates, so this bounds a runaway policy (a comprehension over
/// millions of values) before it exhausts the machine. The count is process-wide,
/// not per evaluation: set it well above what the server itself needs. Without a
/// call, the first policy loaded sets [`DEFAULT_MEMORY_LIMIT`].
pub fn set_memory_limit(bytes: u64) {
    MEMORY_LIMIT.call_once(|| {});
    regorus::set_global_memory_limit(Some(bytes));
}

/// A loaded, checked policy.
#[derive(Clone)]
pub struct Policy {
    name: String,
    digest: Digest,
    engine: regorus::Engine,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// A policy that cannot be used; `message` carries the position (`file:line:column`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy {name}: {message}")]
pub struct PolicyError {
    pub name: String,
    pub message: String,
}

/// What a policy said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub allow: bool,
    pub violations: Vec<Violation>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub gate: String,
    pub message: String,
}

impl Policy {
    /// Parses and checks a policy: Rego v1 syntax, and a `gantry` package defining
    /// `decision`. `name` is how errors and decisions refer to it (its file name).
    pub fn load(name: &str, source: &str) -> Result<Policy, PolicyError> {
        let error = |message: String| PolicyError {
            name: name.to_owned(),
            message,
        };
        if source.len() > MAX_POLICY_BYTES {
            return Err(error(format!(
                "{} bytes is more than the {MAX_POLICY_BYTES} allowed",
                source.len()
            )));
        }
        MEMORY_LIMIT.call_once(|| regorus::set_global_memory_limit(Some(DEFAULT_MEMORY_LIMIT)));
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(false);
        engine.set_strict_builtin_errors(true);
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: EVALUATION_TIME_LIMIT,
            check_interval: NonZeroU32::new(64).expect("non-zero"),
        });
        engine
            .add_policy(name.to_owned(), source.to_owned())
            .map_err(|e| error(e.to_string()))?;
        let defines_decision = engine
            .has_declared_rule_rooted_at(name, "decision")
            .unwrap_or(false);
        let package = engine.get_packages().unwrap_or_default();
        if !package.iter().any(|p| p == "data.gantry") || !defines_decision {
            return Err(error(
                "a Gantry policy is `package gantry` and defines `decision` ({\"allow\", \"violations\", \"warnings\"})".to_owned(),
            ));
        }
        // regorus analyses a policy (statement order, loop hoisting) before its first
        // evaluation and keeps the result in the engine. Do it once here, with a query
        // that runs none of the policy, so that the clone each evaluation starts from
        // is ready: otherwise every decision repeats the analysis. Should it fail, the
        // engine stays unprepared and each evaluation reports the error, as before.
        let _ = engine.eval_query("true".to_owned(), false);
        Ok(Policy {
            name: name.to_owned(),
            digest: sha256(source.as_bytes()),
            engine,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SHA-256 of the policy's source, recorded with every decision.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Evaluates `data.gantry.decision` for `input`. Errors, time-outs and malformed
    /// answers are returned as errors, which callers treat as a denial.
    pub fn evaluate(&self, input: &Value) -> Result<Answer, String> {
        self.evaluate_input(&Input::from_json(input)?)
    }

    /// [`Policy::evaluate`] for an input already in the evaluator's form, as
    /// [`crate::Facts::to_policy_input`] makes it once per decision for every policy.
    pub fn evaluate_input(&self, input: &Input) -> Result<Answer, String> {
        let mut engine = self.engine.clone();
        // Values share their contents: this clone is a reference count.
        engine.set_input(input.0.clone());
        let value = engine
            .eval_rule(DECISION_RULE.to_owned())
            .map_err(|e| e.to_string())?;
        let json: Value = serde_json::from_str(&value.to_json_str().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        answer(&json)
    }
}

/// A policy's input in the evaluator's own form.
#[derive(Debug, Clone, PartialEq)]
pub struct Input(pub(crate) regorus::Value);

impl Input {
    /// Converts a JSON document, straight from the value: writing it out as text for
    /// regorus to parse again costs about as much as the conversion itself.
    pub fn from_json(value: &Value) -> Result<Input, String> {
        regorus::Value::deserialize(value)
            .map(Input)
            .map_err(|e| e.to_string())
    }
}

/// Reads the decision document strictly: a missing `allow` is an error, not a "no".
fn answer(value: &Value) -> Result<Answer, String> {
    let Value::Object(object) = value else {
        return Err(format!(
            "{DECISION_RULE} must be an object {{allow, violations, warnings}}, got {}",
            short(value)
        ));
    };
    let allow = match object.get("allow") {
        Some(Value::Bool(allow)) => *allow,
        other => {
            return Err(format!(
                "{DECISION_RULE}.allow must be true or false, got {}",
                other.map_or_else(|| "nothing".to_owned(), short)
            ));
        }
    };
    let violations = match object.get("violations") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_owned);
                match (text("gate"), text("msg")) {
                    (Some(gate), Some(message)) => Ok(Violation { gate, message }),
                    _ => Err(format!(
                        "{DECISION_RULE}.violations[{index}] must be {{\"gate\": string, \"msg\": string}}, got {}",
                        short(item)
                    )),
                }
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "{DECISION_RULE}.violations must be an array, got {}",
                short(other)
            ));
        }
    };
    let warnings = match object.get("warnings") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|w| w.as_str().map_or_else(|| w.to_string(), str::to_owned))
            .collect(),
        Some(other) => {
            return Err(format!(
                "{DECISION_RULE}.warnings must be an array, got {}",
                short(other)
            ));
        }
    };
    Ok(Answer {
        allow,
        violations,
        warnings,
    })
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

fn sha256(bytes: &[u8]) -> Digest {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
        .parse()
        .expect("a SHA-256 is a digest")
}

/// One policy unit test's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    /// `file.rego: test_name`
    pub name: String,
    pub passed: bool,
    /// Why it failed: an error, or the rule being false or undefined.
    pub detail: Option<String>,
}

/// Runs every `test_*` rule in `sources` (OPA's convention; rules start at column 1),
/// each file's rules in its own package, all files loaded together so tests see the policies they test.
pub fn run_tests(sources: &[(String, String)]) -> Result<Vec<TestOutcome>, PolicyError> {
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(false);
    // As in decisions: a builtin that fails is an error, not an undefined value, so a
    // test meets what a real decision would.
    engine.set_strict_builtin_errors(true);
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: Duration::from_secs(5),
        check_interval: NonZeroU32::new(64).expect("non-zero"),
    });
    let mut tests = Vec::new();
    for (name, source) in sources {
        let package = engine
            .add_policy(name.clone(), source.clone())
            .map_err(|e| PolicyError {
                name: name.clone(),
                message: e.to_string(),
            })?;
        for rule in test_rules(source) {
            tests.push((name.clone(), format!("{package}.{rule}"), rule));
        }
    }
    let mut outcomes = Vec::new();
    for (file, path, rule) in tests {
        let mut run = engine.clone();
        let (passed, detail) = match run.eval_rule(path) {
            Ok(value) if value == regorus::Value::from(true) => (true, None),
            Ok(regorus::Value::Undefined) => (
                false,
                Some("undefined (a condition did not hold)".to_owned()),
            ),
            Ok(value) => (false, Some(format!("evaluated to {value}"))),
            Err(error) => (false, Some(error.to_string())),
        };
        outcomes.push(TestOutcome {
            name: format!("{file}: {rule}"),
            passed,
            detail,
        });
    }
    Ok(outcomes)
}

/// Names of rules `test_…` defined at the start of a line; each once, in order.
fn test_rules(source: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in source.lines() {
        let Some(rest) = line.strip_prefix("test_") else {
            continue;
        };
        let tail: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let name = format!("test_{tail}");
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POLICY: &str = r#"
package gantry

default decision := {"allow": false, "violations": [{"gate": "default", "msg": "no rule matched"}]}

decision := {"allow": count(violations) == 0, "violations": violations, "warnings": warnings} if {
    input.environment
}

violations contains {"gate": "labels", "msg": "the release has no git commit label"} if {
    not input.release.labels["org.opencontainers.image.revision"]
}

warnings contains "evaluated on a weekend" if {
    input.weekend
}
"#;

    #[test]
    fn evaluates_the_contract() {
        let policy = Policy::load("release.rego", POLICY).unwrap();
        let answer = policy
            .evaluate(&json!({"environment": "prod", "release": {"labels": {}}, "weekend": true}))
            .unwrap();
        assert!(!answer.allow);
        assert_eq!(
            answer.violations,
            [Violation {
                gate: "labels".into(),
                message: "the release has no git commit label".into()
            }]
        );
        assert_eq!(answer.warnings, ["evaluated on a weekend"]);
        let answer = policy
            .evaluate(&json!({"environment": "prod", "release": {"labels": {"org.opencontainers.image.revision": "abc"}}}))
            .unwrap();
        assert!(answer.allow && answer.violations.is_empty());
    }

    #[test]
    fn refuses_broken_policies_with_positions() {
        let error = Policy::load("broken.rego", "package gantry\n\ndecision := {\n").unwrap_err();
        assert!(error.message.contains("broken.rego:"), "{error}");
        let error = Policy::load("other.rego", "package other\n\nallow := true\n").unwrap_err();
        assert!(error.message.contains("package gantry"), "{error}");
        let error =
            Policy::load("v0.rego", "package gantry\n\ndecision = x { x := 1 }\n").unwrap_err();
        assert!(error.message.contains("v0.rego:3"), "{error}");
    }

    #[test]
    fn fails_closed() {
        for (source, expected) in [
            ("package gantry\n\ndecision := 1\n", "must be an object"),
            (
                "package gantry\n\ndecision := {\"allow\": \"yes\"}\n",
                "allow must be true or false",
            ),
            (
                "package gantry\n\ndecision := {\"allow\": true, \"violations\": [1]}\n",
                "violations[0]",
            ),
            (
                "package gantry\n\ndecision := {\"allow\": true} if { 1 / 0 }\n",
                "",
            ),
        ] {
            let policy = Policy::load("p.rego", source).unwrap();
            let error = policy.evaluate(&json!({})).unwrap_err();
            assert!(error.contains(expected), "{source}: {error}");
        }
        // A policy that would run for long is stopped.
        let slow = "package gantry\n\ndecision := {\"allow\": count([x | some a in numbers.range(1, 3000); some b in numbers.range(1, 3000); x := a * b]) > 0}\n";
        let policy = Policy::load("slow.rego", slow).unwrap();
        let error = policy.evaluate(&json!({})).unwrap_err();
        assert!(error.to_lowercase().contains("time"), "{error}");
    }

    #[test]
    fn runs_policy_tests() {
        let tests = r#"
package gantry_test

import data.gantry

test_allows_with_revision if {
    gantry.decision.allow with input as {"environment": "prod", "release": {"labels": {"org.opencontainers.image.revision": "abc"}}}
}

test_denies_without_revision if {
    not gantry.decision.allow with input as {"environment": "prod", "release": {"labels": {}}}
}

test_wrong_expectation if {
    gantry.decision.allow with input as {"environment": "prod", "release": {"labels": {}}}
}
"#;
        let outcomes = run_tests(&[
            ("release.rego".into(), POLICY.into()),
            ("release_test.rego".into(), tests.into()),
        ])
        .unwrap();
        let summary: Vec<(String, bool)> = outcomes
            .iter()
            .map(|o| (o.name.clone(), o.passed))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "release_test.rego: test_allows_with_revision".to_owned(),
                    true
                ),
                (
                    "release_test.rego: test_denies_without_revision".to_owned(),
                    true
                ),
                (
                    "release_test.rego: test_wrong_expectation".to_owned(),
                    false
                ),
            ]
        );
    }
}
