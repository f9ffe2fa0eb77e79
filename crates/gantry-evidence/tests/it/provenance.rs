use serde_json::json;

use crate::{BLOB, INDEX, check};

fn github_actions() -> serde_json::Value {
    json!({
        "family": "provenance",
        "builder_id": "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
        "build_type": "https://actions.github.io/buildtypes/workflow/v1",
        "source_repository": "https://github.com/acme/app",
        "commit": "4015b57a143aec5156fd1444a017a32137a3fd0f",
    })
}

#[test]
fn github_actions_statement() {
    check(
        "slsa-provenance",
        "slsa-github.intoto.json",
        &github_actions(),
        &[INDEX],
    );
}

#[test]
fn github_actions_statement_in_a_dsse_envelope() {
    check(
        "slsa-provenance",
        "slsa-github.dsse.json",
        &github_actions(),
        &[INDEX],
    );
}

#[test]
fn workflow_repository_when_no_git_dependency() {
    // A v0.1 statement; subjects without a sha256 digest name nothing Gantry holds.
    check(
        "slsa-provenance",
        "slsa-workflow-only.intoto.json",
        &json!({
            "family": "provenance",
            "builder_id": "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.0.0",
            "build_type": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
            "source_repository": "https://github.com/acme/app",
            "commit": "4015b57a143aec5156fd1444a017a32137a3fd0f",
        }),
        &[BLOB],
    );
}
