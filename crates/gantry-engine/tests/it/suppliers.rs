//! Whose evidence counts: a dev-only CI account cannot hide prod's failing scan, and
//! provenance handed in through the API counts only with a signature by a trusted key.

use std::collections::BTreeMap;

use gantry_core::{Grant, Principal, Role, Scope, Verdict};
use gantry_engine::Engine;
use gantry_store::store::Audit;
use gantry_testkit::signing::{TestKey, statement};
use gantry_testkit::{ImageBuilder, Pusher, Registry};
use serde_json::json;

use crate::gates::moved_into;

const BUILDER: &str = "https://github.com/actions/runner/github-hosted";

/// A Trivy report about `digest` with these critical findings.
fn trivy(digest: &str, critical: &[&str]) -> Vec<u8> {
    let vulnerabilities: Vec<_> = critical
        .iter()
        .map(|id| {
            json!({"VulnerabilityID": id, "PkgName": "openssl", "InstalledVersion": "3.0.1",
                   "FixedVersion": "3.0.2", "Severity": "CRITICAL"})
        })
        .collect();
    json!({
        "SchemaVersion": 2,
        "Metadata": {"RepoDigests": [format!("registry.example/shop/api@{digest}")]},
        "Results": [{"Target": "shop/api", "Class": "os-pkgs", "Vulnerabilities": vulnerabilities}],
    })
    .to_string()
    .into_bytes()
}

fn provenance(digest: &str) -> serde_json::Value {
    statement(
        digest,
        "https://slsa.dev/provenance/v1",
        &json!({
            "buildDefinition": {"buildType": "https://actions.github.io/buildtypes/workflow/v1", "externalParameters": {}},
            "runDetails": {"builder": {"id": BUILDER}},
        }),
    )
}

async fn grant(engine: &Engine, principal: &str, environment: &str) {
    let grant = Grant {
        principal: principal.parse::<Principal>().unwrap(),
        role: Role::Promoter,
        scope: Scope::Environment("shop".parse().unwrap(), environment.parse().unwrap()),
    };
    engine
        .store()
        .grant(&grant, &Audit::by("admin"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_counts_by_who_supplied_it() {
    let registry = Registry::start().await;
    let image = ImageBuilder::new(41).build();
    Pusher::new(&registry)
        .push_image("shop/api", Some("build-1"), &image)
        .await;
    let trusted = TestKey::generate();
    let stranger = TestKey::generate();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    std::fs::write(dir.path().join("keys/release.pub"), trusted.public_pem()).unwrap();
    let r = registry.host();
    let yaml = format!(
        "project: shop
components:
  api: {r}/shop/api
trust:
  keys:
    release: keys/release.pub
environments:
  dev:
    binding: track
    strategy: retag
    targets:
      api: {{repository: {r}/shop/api, tags: [dev]}}
  prod:
    from: dev
    strategy: retag
    targets:
      api: {{repository: {r}/shop/api, tags: [prod]}}
    gates:
      vulnerabilities: {{max: {{critical: 0}}}}
      provenance: {{builder_ids: [\"{BUILDER}\"]}}
"
    );
    let engine = crate::engine_for(dir.path(), &yaml).await;
    grant(&engine, "service:ci-dev", "dev").await;
    grant(&engine, "service:ci-prod", "prod").await;
    let mut events = engine.subscribe();
    let (release, _) = engine
        .create_release(
            "shop",
            BTreeMap::from([("api".to_owned(), format!("{r}/shop/api:build-1"))]),
            BTreeMap::new(),
            "service:ci-dev",
        )
        .await
        .unwrap();
    moved_into(&mut events, "dev").await;
    let add = |kind: &'static str, bytes: Vec<u8>, actor: &'static str| {
        let engine = engine.clone();
        let alias = release.alias.clone();
        async move {
            engine
                .add_evidence("shop", &alias, Some("api"), kind, bytes, actor)
                .await
                .unwrap()
        }
    };

    // Prod's scanner (a prod promoter) finds a critical; dev's CI then hands in a clean
    // scan, newer. It does not count for prod, so the failure stands.
    add(
        "trivy",
        trivy(&image.digest, &["CVE-2026-1"]),
        "service:ci-prod",
    )
    .await;
    add("trivy", trivy(&image.digest, &[]), "service:ci-dev").await;
    // Provenance: a bare statement, and an envelope signed by a key nobody trusts, are
    // kept but count for nothing, whoever hands them in.
    add(
        "slsa-provenance",
        serde_json::to_vec(&provenance(&image.digest)).unwrap(),
        "service:ci-prod",
    )
    .await;
    add(
        "slsa-provenance",
        stranger.dsse(&provenance(&image.digest)),
        "service:ci-prod",
    )
    .await;
    let why = engine
        .explain("shop", &release.alias, "prod")
        .await
        .unwrap();
    let gates: Vec<(&str, Verdict, &str)> = why
        .decision
        .gates
        .iter()
        .map(|g| (g.gate.as_str(), Verdict::of([g.state]), g.reason.as_str()))
        .collect();
    assert_eq!(
        gates,
        [
            (
                "vulnerabilities",
                Verdict::Deny,
                "api: trivy: 1 critical (at most 0)"
            ),
            ("provenance", Verdict::Pending, "provenance for api"),
        ]
    );
    let uses: Vec<(bool, &str, Option<&str>, &str)> = why
        .decision
        .evidence_use
        .iter()
        .map(|u| {
            (
                u.counted,
                u.supplied_by.as_str(),
                u.signed_by.as_deref(),
                u.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        uses,
        [
            (
                true,
                "service:ci-prod",
                None,
                "service:ci-prod may promote into prod"
            ),
            (
                false,
                "service:ci-dev",
                None,
                "service:ci-dev may not promote into prod and it is not signed by a key in trust:"
            ),
            (
                false,
                "service:ci-prod",
                None,
                "unsigned: provenance counts only with a signature that verifies against trust:"
            ),
            (
                false,
                "service:ci-prod",
                None,
                "unsigned: provenance counts only with a signature that verifies against trust:"
            ),
        ]
    );

    // Signed by the trusted key, provenance counts, even from dev's CI; a clean scan
    // from prod's scanner replaces its own failing one.
    add(
        "slsa-provenance",
        trusted.dsse(&provenance(&image.digest)),
        "service:ci-dev",
    )
    .await;
    // (Other bytes than dev's clean scan: the same bytes again are the same evidence,
    // still supplied by whoever handed them in first.)
    let mut clean = trivy(&image.digest, &[]);
    clean.push(b'\n');
    add("trivy", clean, "service:ci-prod").await;
    let why = engine
        .explain("shop", &release.alias, "prod")
        .await
        .unwrap();
    assert_eq!(
        why.decision.verdict,
        Verdict::Allow,
        "{:?}",
        why.decision.gates
    );
    let signed = why
        .decision
        .evidence_use
        .iter()
        .find(|u| u.signed_by.is_some())
        .unwrap();
    assert!(signed.counted);
    assert_eq!(signed.signed_by.as_deref(), Some("key release"));
    assert_eq!(signed.supplied_by, "service:ci-dev");
}

/// Release-wide evidence stands for every component, so it must name every component's
/// digest when it names any: a scan of one image cannot pass for another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_wide_evidence_names_every_component() {
    let registry = Registry::start().await;
    let pusher = Pusher::new(&registry);
    let api = ImageBuilder::new(51).build();
    let worker = ImageBuilder::new(52).build();
    pusher.push_image("shop/api", Some("build-1"), &api).await;
    pusher
        .push_image("shop/worker", Some("build-1"), &worker)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let r = registry.host();
    let yaml = format!(
        "project: shop
components:
  api: {r}/shop/api
  worker: {r}/shop/worker
environments:
  prod:
    strategy: retag
    targets:
      api: {{repository: {r}/shop/api, tags: [prod]}}
      worker: {{repository: {r}/shop/worker, tags: [prod]}}
    gates:
      vulnerabilities: {{max: {{critical: 0}}}}
"
    );
    let engine = crate::engine_for(dir.path(), &yaml).await;
    let (release, _) = engine
        .create_release(
            "shop",
            BTreeMap::from([
                ("api".to_owned(), format!("{r}/shop/api:build-1")),
                ("worker".to_owned(), format!("{r}/shop/worker:build-1")),
            ]),
            BTreeMap::new(),
            "admin",
        )
        .await
        .unwrap();
    let error = engine
        .add_evidence(
            "shop",
            &release.alias,
            None,
            "trivy",
            trivy(&api.digest, &[]),
            "admin",
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "component: the trivy report names no digest of worker: hand it in for the component it is about (--component NAME)"
    );
    assert!(
        engine
            .store()
            .evidence(engine.project("shop").unwrap().name(), &release.id)
            .await
            .unwrap()
            .is_empty()
    );
    // For its own component it is kept.
    engine
        .add_evidence(
            "shop",
            &release.alias,
            Some("api"),
            "trivy",
            trivy(&api.digest, &[]),
            "admin",
        )
        .await
        .unwrap();
}
