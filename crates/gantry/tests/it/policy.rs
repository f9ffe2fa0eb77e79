//! `gantry policy test DIR`: Rego policy tests, offline. Exit 0 when all pass, 1 when
//! one fails, 2 when there is nothing to run or a file does not parse.

use std::path::Path;

use crate::support::gantry;

const POLICY: &str = r#"package gantry

decision := {"allow": count(violations) == 0, "violations": violations}

violations contains {"gate": "ticket", "msg": "the release names no change ticket"} if {
    not input.release.labels.ticket
}
"#;

const TESTS: &str = r#"package gantry_test

import data.gantry

test_denies_without_ticket if {
    not gantry.decision.allow with input as {"release": {"labels": {}}}
}

test_allows_with_ticket if {
    gantry.decision.allow with input as {"release": {"labels": {"ticket": "OPS-1"}}}
}
"#;

/// A test that expects the wrong answer: the rule is undefined.
const WRONG_TEST: &str = r#"package gantry_wrong_test

import data.gantry

test_allows_without_ticket if {
    gantry.decision.allow with input as {"release": {"labels": {}}}
}
"#;

/// A directory of policies: `files` as (relative path, source).
fn policies(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, source) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, source).unwrap();
    }
    dir
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn a_passing_suite_exits_zero_with_a_summary() {
    // The tests in a subdirectory still see the policy above them.
    let dir = policies(&[("release.rego", POLICY), ("tests/release_test.rego", TESTS)]);
    let out = gantry(&["policy", "test", text(dir.path())]).await;
    let stdout = &out.success().stdout;
    let test_file = dir.path().join("tests/release_test.rego");
    assert!(
        stdout.contains(&format!(
            "✓ {}: test_denies_without_ticket",
            test_file.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.lines().last() == Some("2 passed, 0 failed"),
        "{stdout}"
    );

    let json = gantry(&["policy", "test", "-o", "json", text(dir.path())])
        .await
        .success()
        .json();
    assert_eq!(
        (json["passed"].as_u64(), json["failed"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(
        json["files"],
        serde_json::json!([
            dir.path().join("release.rego").display().to_string(),
            test_file.display().to_string()
        ]),
        "sorted, recursively"
    );
    assert_eq!(
        (&json["tests"][1]["test"], &json["tests"][1]["passed"]),
        (
            &serde_json::json!("test_allows_with_ticket"),
            &serde_json::json!(true)
        )
    );
}

#[tokio::test]
async fn a_failing_test_exits_one_and_says_why() {
    let dir = policies(&[
        ("release.rego", POLICY),
        ("release_test.rego", TESTS),
        ("wrong_test.rego", WRONG_TEST),
    ]);
    let out = gantry(&["policy", "test", text(dir.path())]).await;
    out.fails_with(1, "1 of 3 policy tests failed");
    assert!(
        out.stdout.contains("✗ ")
            && out
                .stdout
                .contains("wrong_test.rego: test_allows_without_ticket")
            && out.stdout.contains("undefined (a condition did not hold)")
            && out.stdout.contains("2 passed, 1 failed"),
        "{}",
        out.stdout
    );

    // Scripts get one JSON document, the failure in it, and the same exit code.
    let out = gantry(&["policy", "test", "-o", "json", text(dir.path())]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let json = out.json();
    assert_eq!(
        (json["passed"].as_u64(), json["failed"].as_u64()),
        (Some(2), Some(1))
    );
    let failed: Vec<_> = json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{json}");
    assert_eq!(failed[0]["test"], "test_allows_without_ticket");
    assert_eq!(
        failed[0]["file"],
        dir.path().join("wrong_test.rego").display().to_string()
    );

    // An error inside a test fails it with the position of the error.
    let dir = policies(&[
        ("release.rego", POLICY),
        (
            "error_test.rego",
            "package error_test\n\ntest_divides if {\n    1 / 0\n}\n",
        ),
    ]);
    let out = gantry(&["policy", "test", text(dir.path())]).await;
    out.fails_with(1, "1 of 1 policy tests failed");
    let position = format!("{}:4:", dir.path().join("error_test.rego").display());
    assert!(out.stdout.contains(&position), "{}", out.stdout);
}

#[tokio::test]
async fn a_syntax_error_is_a_usage_error_naming_file_and_line() {
    let dir = policies(&[
        ("release.rego", POLICY),
        ("release_test.rego", TESTS),
        (
            "broken.rego",
            "package broken\n\nallow if {\n    input.x ==\n}\n",
        ),
    ]);
    let broken = dir.path().join("broken.rego");
    let out = gantry(&["policy", "test", text(dir.path())]).await;
    out.fails_with(2, &format!("{}:5:", broken.display()));
    assert!(out.stdout.is_empty(), "no results: {}", out.stdout);
}

#[tokio::test]
async fn nothing_to_run_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("policies");
    gantry(&["policy", "test", text(&missing)])
        .await
        .fails_with(2, &format!("{}: does not exist", missing.display()));
    std::fs::create_dir(&missing).unwrap();
    std::fs::write(missing.join("README.md"), "not a policy").unwrap();
    gantry(&["policy", "test", text(&missing)])
        .await
        .fails_with(2, "no .rego files");
    std::fs::write(missing.join("release.rego"), POLICY).unwrap();
    gantry(&["policy", "test", text(&missing)])
        .await
        .fails_with(2, "define no `test_*` rule");
    let file = missing.join("release.rego");
    gantry(&["policy", "test", text(&file)])
        .await
        .fails_with(2, "is not a directory");
}
