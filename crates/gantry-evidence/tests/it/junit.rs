use serde_json::json;

use crate::check;

#[test]
fn surefire_with_a_flaky_test() {
    // refusesBadDigest failed all its reruns: failed, not flaky. retriesOnTimeout
    // failed once and then passed: flaky, not failed.
    check(
        "junit",
        "junit-surefire.xml",
        &json!({"family": "tests", "total": 6, "failed": 1, "skipped": 1, "flaky": 1}),
        &[],
    );
}

#[test]
fn nested_suites() {
    // A test case with both <failure> and <skipped> counts as failed.
    check(
        "junit",
        "junit-nested.xml",
        &json!({"family": "tests", "total": 7, "failed": 3, "skipped": 1, "flaky": 1}),
        &[],
    );
}
