//! `gantry policy test DIR`: runs the unit tests of Rego policies, offline.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use gantry_policy::rego::{TestOutcome, run_tests};
use serde_json::json;

use super::UsageError;
use crate::printer::{Printer, Text, textln};

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run the tests of Rego policies: every `test_*` rule in every `*.rego` file under
    /// DIR, all files loaded together, so tests see the policies they test.
    #[command(
        after_help = "A test is a rule whose name starts with `test_`, written at the \
start of a line, usually in a file of its own beside the policy. It passes when it is true; \
false, undefined (a condition did not hold) or an error fails it. `with input as` gives \
the policy the facts a decision would see.

Example: policies/release_test.rego, testing policies/release.rego (package gantry)

  package gantry_test

  import data.gantry

  test_denies_without_ticket if {
      not gantry.decision.allow with input as {\"release\": {\"labels\": {}}}
  }

  test_allows_with_ticket if {
      gantry.decision.allow with input as {\"release\": {\"labels\": {\"ticket\": \"OPS-1\"}}}
  }

  $ gantry policy test policies
  ✓ policies/release_test.rego: test_denies_without_ticket
  ✓ policies/release_test.rego: test_allows_with_ticket
  2 passed, 0 failed

Files are read recursively, in sorted order. Exit codes: 0 every test passed, 1 a test \
failed, 2 DIR is missing, holds no .rego file or no test, or a file does not parse \
(the error names the file, line and column)."
    )]
    Test {
        /// The directory holding the policies and their tests.
        dir: PathBuf,
    },
}

pub fn run(args: PolicyArgs, printer: &Printer) -> anyhow::Result<()> {
    let PolicyCommand::Test { dir } = args.command;
    let sources = read_policies(&dir)?;
    let outcomes = run_tests(&sources).map_err(|e| {
        let (headline, excerpt) = position(&e.message);
        // The source lines around the error, above the error line; every line a record.
        let mut text = Text::new();
        for line in excerpt {
            textln!(text, "    {line}");
        }
        Printer::note(&text);
        UsageError(headline)
    })?;
    if outcomes.is_empty() {
        return Err(UsageError(format!(
            "{}: no tests: {} .rego file(s) define no `test_*` rule (see gantry policy test --help)",
            dir.display(),
            sources.len()
        ))
        .into());
    }
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    let passed = outcomes.len() - failed;
    printer.result(
        &describe(&outcomes, passed, failed),
        &json!({
            "dir": dir.display().to_string(),
            "files": sources.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            "tests": outcomes.iter().map(outcome_json).collect::<Vec<_>>(),
            "passed": passed,
            "failed": failed,
        }),
    );
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} policy tests failed",
        outcomes.len()
    );
    Ok(())
}

/// Every `*.rego` file under `dir`, recursively, sorted by path; each named by its path
/// as the user would type it (`dir/sub/file.rego`), which is how errors cite it.
fn read_policies(dir: &Path) -> Result<Vec<(String, String)>, UsageError> {
    if !dir.is_dir() {
        let why = if dir.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        return Err(UsageError(format!("{}: {why}", dir.display())));
    }
    let mut paths = Vec::new();
    collect_rego(dir, &mut paths)?;
    paths.sort();
    if paths.is_empty() {
        return Err(UsageError(format!(
            "{}: no .rego files in it or below it",
            dir.display()
        )));
    }
    paths
        .into_iter()
        .map(|path| {
            let source = std::fs::read_to_string(&path)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
            Ok((path.display().to_string(), source))
        })
        .collect()
}

fn collect_rego(dir: &Path, paths: &mut Vec<PathBuf>) -> Result<(), UsageError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| UsageError(format!("cannot read {}: {e}", dir.display())))?;
        let path = entry.path();
        // Symbolic links to directories are not followed: they could form a loop.
        let is_directory = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_directory {
            collect_rego(&path, paths)?;
        } else if path.extension().is_some_and(|e| e == "rego") && path.is_file() {
            paths.push(path);
        }
    }
    Ok(())
}

/// `file: rule` split back into its parts (rule names hold no `: `).
fn parts(outcome: &TestOutcome) -> (&str, &str) {
    outcome
        .name
        .rsplit_once(": ")
        .unwrap_or(("", &outcome.name))
}

/// regorus reports a position over several lines (`--> file:line:column`, the source
/// line, a caret, `error: message`). This makes a headline `file:line:column: message`,
/// for one error line and for scripts, and keeps the source excerpt's lines to show
/// with it. Messages in another shape are kept as they are.
fn position(message: &str) -> (String, Vec<String>) {
    let message = message.trim();
    let location = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .map(str::trim);
    let reason = message
        .lines()
        .filter_map(|l| l.strip_prefix("error: "))
        .next_back()
        .map(str::trim);
    let (Some(location), Some(reason)) = (location, reason) else {
        return (message.to_owned(), Vec::new());
    };
    let excerpt = message
        .lines()
        .filter(|l| l.contains('|'))
        .map(|l| l.trim_end().to_owned())
        .collect();
    (format!("{location}: {reason}"), excerpt)
}

fn outcome_json(outcome: &TestOutcome) -> serde_json::Value {
    let (file, test) = parts(outcome);
    json!({
        "file": file,
        "test": test,
        "passed": outcome.passed,
        "detail": outcome.detail.as_deref().map(|d| position(d).0),
    })
}

fn describe(outcomes: &[TestOutcome], passed: usize, failed: usize) -> Text {
    let mut text = Text::new();
    for outcome in outcomes {
        let mark = if outcome.passed { "✓" } else { "✗" };
        textln!(text, "{mark} {}", outcome.name);
        if let Some(detail) = &outcome.detail {
            let (headline, excerpt) = position(detail);
            textln!(text, "    {headline}");
            for line in excerpt {
                textln!(text, "    {line}");
            }
        }
    }
    textln!(text, "{passed} passed, {failed} failed");
    text
}
