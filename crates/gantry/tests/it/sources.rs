//! `gantry release create` through the server: a promoter takes each component from its
//! own repository only, and what lies outside it (another team's repository, the
//! server's filesystem) gets one answer that tells nothing.

use gantry_testkit::{ImageBuilder, Pusher, Registry};

use crate::server::serve_dir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_come_from_their_own_source_through_the_api() {
    let registry = Registry::start().await;
    let (build, secret) = (ImageBuilder::new(71).build(), ImageBuilder::new(72).build());
    let pusher = Pusher::new(&registry);
    pusher
        .push_image("payments/api", Some("build-1"), &build)
        .await;
    pusher
        .push_image("billing/secret", Some("v1"), &secret)
        .await;
    let r = registry.host();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("payments.yaml"),
        format!(
            "project: payments
components:
  api: {r}/payments/api
environments:
  dev:
    strategy: retag
    targets:
      api: {{repository: {r}/payments/api, tags: [dev]}}
"
        ),
    )
    .unwrap();
    let served = serve_dir(dir).await;
    let ci = served
        .run(&[
            "token",
            "create",
            "-o",
            "json",
            "ci",
            "--service-account",
            "ci",
        ])
        .await
        .success()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    served
        .run(&[
            "access",
            "grant",
            "promoter",
            "--to",
            "service:ci",
            "--project",
            "payments",
            "--environment",
            "dev",
        ])
        .await
        .success();

    let source = format!("{r}/payments/api");
    served
        .run_as(
            &ci,
            &[
                "release",
                "create",
                "--project",
                "payments",
                &format!("api={r}/billing/secret:v1"),
            ],
        )
        .await
        .fails_with(
            1,
            &format!(
                "api comes only from {source}: write api=TAG, api=@sha256:DIGEST or api={source}:TAG"
            ),
        );
    served
        .run_as(
            &ci,
            &[
                "release",
                "create",
                "--project",
                "payments",
                &format!("api={source}"),
            ],
        )
        .await
        .fails_with(1, "never latest by default");

    // Straight through the API: a directory that exists and one that does not answer
    // with the same status and the same bytes.
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for layout in ["oci:/etc:x", "oci:/nonexistent:x"] {
        let response = http
            .post(format!("{}/api/v1/projects/payments/releases", served.url))
            .bearer_auth(&ci)
            .header("content-type", "application/json")
            .body(serde_json::json!({"components": {"api": layout}}).to_string())
            .send()
            .await
            .unwrap();
        answers.push((response.status(), response.bytes().await.unwrap()));
    }
    assert_eq!(answers[0].0, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answers[0], answers[1]);
    let body: serde_json::Value = serde_json::from_slice(&answers[0].1).unwrap();
    assert_eq!(body["field"], "components", "{body}");

    let created = served
        .run_as(
            &ci,
            &[
                "release",
                "create",
                "-o",
                "json",
                "--project",
                "payments",
                "api=build-1",
            ],
        )
        .await
        .success()
        .json();
    assert_eq!(
        created["artifacts"][0]["source"],
        format!("{source}:build-1")
    );
    assert_eq!(created["artifacts"][0]["digest"], build.digest);

    let help = crate::support::gantry(&["release", "create", "--help"])
        .await
        .success()
        .stdout
        .clone();
    assert!(
        help.contains("api=TAG") && help.contains("also_from"),
        "{help}"
    );
}
