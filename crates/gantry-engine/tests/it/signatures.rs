//! Signatures and attestations beside the digest in a real registry: a `signed_by`
//! gate waits until a cosign signature by a trusted key appears, a provenance gate reads
//! a signed SLSA attestation from the `.att` tag, and an attestation signed by a key
//! nobody trusts is refused, recorded once, and never seen by the gates.

use std::collections::BTreeMap;

use gantry_core::{PromotionState, Verdict};
use gantry_engine::{Request, project_file};
use gantry_testkit::signing::{TestKey, statement};
use gantry_testkit::{Image, ImageBuilder, Pusher, Registry, media_types};
use serde_json::json;

use crate::gates::{moved_into, state_of};

const BUILDER: &str = "https://github.com/actions/runner/github-hosted";
const SOURCE: &str = "https://github.com/acme/shop";

fn provenance(digest: &str) -> serde_json::Value {
    statement(
        digest,
        "https://slsa.dev/provenance/v1",
        &json!({
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {"workflow": {"repository": SOURCE, "ref": "refs/heads/main", "path": ".github/workflows/release.yml"}},
                "resolvedDependencies": [{"uri": format!("git+{SOURCE}@refs/heads/main"), "digest": {"gitCommit": "4f2c1e9a0b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e"}}],
            },
            "runDetails": {"builder": {"id": BUILDER}},
        }),
    )
}

async fn push_attached(pusher: &Pusher, repository: &str, tag: &str, image: &Image) {
    pusher.push_image(repository, Some(tag), image).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_in_the_registry_open_the_gates() {
    let registry = Registry::start().await;
    let pusher = Pusher::new(&registry);
    let image = ImageBuilder::new(11).build();
    pusher.push_image("shop/api", Some("build-1"), &image).await;
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
      api: {{repository: {r}/shop/api}}
    gates:
      signed_by: {{keys: [release]}}
      provenance: {{builder_ids: [\"{BUILDER}\"], source_repositories: [\"{SOURCE}\"]}}
"
    );
    let engine = crate::engine_for(dir.path(), &yaml).await;
    let mut events = engine.subscribe();
    let (release, _) = engine
        .create_release(
            "shop",
            BTreeMap::from([("api".to_owned(), format!("{r}/shop/api:build-1"))]),
            BTreeMap::new(),
            "ci",
        )
        .await
        .unwrap();
    moved_into(&mut events, "dev").await;

    // Nothing is attached yet: the promotion waits for a signature and provenance.
    let promotion = engine
        .promote(
            "shop",
            &release.alias,
            "prod",
            Request {
                actor: "alice".to_owned(),
                ..Request::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(promotion.state, PromotionState::Waiting);
    let why = engine
        .explain("shop", &release.alias, "prod")
        .await
        .unwrap();
    assert_eq!(why.decision.verdict, Verdict::Pending);
    let needs = why.decision.needs();
    assert!(
        needs.contains("a signature on api by key release"),
        "{needs}"
    );

    // A provenance attestation signed by a stranger, as an OCI 1.1 referrer listed in
    // the tag-schema index (this registry has no referrers API).
    let forged = stranger.attestation(&provenance(&image.digest), Some(&image));
    pusher.push_image("shop/api", None, &forged).await;
    let schema_index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": [{
            "mediaType": media_types::OCI_MANIFEST,
            "digest": forged.digest,
            "size": forged.size(),
            "artifactType": "application/vnd.dsse.envelope.v1+json",
        }],
    }))
    .unwrap();
    let schema_tag = image.digest.replace(':', "-");
    pusher
        .push_manifest(
            "shop/api",
            &schema_tag,
            media_types::OCI_INDEX,
            &schema_index,
        )
        .await;
    let pulled = engine
        .pull_attached("shop", &release.alias, "ci")
        .await
        .unwrap();
    assert!(pulled.signers.is_empty(), "{pulled:?}");
    assert_eq!(pulled.evidence_added, 0);
    assert_eq!(pulled.refused.len(), 1, "{pulled:?}");
    assert!(
        pulled.refused[0]
            .reason
            .contains("does not verify with any trusted key (tried release)"),
        "{}",
        pulled.refused[0].reason
    );
    assert!(
        engine
            .store()
            .evidence(&"shop".parse().unwrap(), &release.id)
            .await
            .unwrap()
            .is_empty()
    );

    // The trusted key signs (cosign `.sig`) and attests provenance (cosign `.att`).
    let signature = trusted.cosign_signature(&format!("{r}/shop/api"), &image.digest);
    push_attached(
        &pusher,
        "shop/api",
        &format!("{schema_tag}.sig"),
        &signature,
    )
    .await;
    let attestation = trusted.attestation(&provenance(&image.digest), None);
    push_attached(
        &pusher,
        "shop/api",
        &format!("{schema_tag}.att"),
        &attestation,
    )
    .await;
    let pulled = engine
        .pull_attached("shop", &release.alias, "ci")
        .await
        .unwrap();
    assert_eq!(pulled.signers.len(), 2, "{pulled:?}");
    assert_eq!(pulled.evidence_added, 1);
    assert_eq!(
        pulled.refused.len(),
        1,
        "the stranger's attestation is still there"
    );
    moved_into(&mut events, "prod").await;
    assert_eq!(
        state_of(&engine, promotion.id).await,
        PromotionState::Succeeded
    );

    // The decision that let it go names the signature it relied on; the stranger's
    // attestation was refused in the ledger exactly once, however often it was seen.
    let decisions = engine
        .store()
        .decisions(
            &"shop".parse().unwrap(),
            &release.id,
            Some(&"prod".parse().unwrap()),
            100,
        )
        .await
        .unwrap();
    let allowed = decisions
        .iter()
        .find(|d| d.verdict == Verdict::Allow)
        .expect("an allow decision");
    assert!(
        allowed
            .evidence
            .iter()
            .any(|d| d.as_str() == signature.layers[0].digest),
        "{:?}",
        allowed.evidence
    );
    let refusals: Vec<_> = engine
        .store()
        .ledger_entries(0, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "signature.refused")
        .collect();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].detail["manifest"], forged.digest.as_str());
    assert_eq!(refusals[0].detail["via"], "referrer");

    // Explaining is a read: a release whose registry nobody has looked at yet, with a
    // forged attestation beside it, is explained from a look that keeps and records
    // nothing, not even the refusal.
    let second = ImageBuilder::new(12).build();
    pusher
        .push_image("shop/api", Some("build-2"), &second)
        .await;
    let forged = stranger.attestation(&provenance(&second.digest), None);
    push_attached(
        &pusher,
        "shop/api",
        &format!("{}.att", second.digest.replace(':', "-")),
        &forged,
    )
    .await;
    let (release, _) = engine
        .create_release(
            "shop",
            BTreeMap::from([("api".to_owned(), format!("{r}/shop/api:build-2"))]),
            BTreeMap::new(),
            "ci",
        )
        .await
        .unwrap();
    moved_into(&mut events, "dev").await;
    let before = engine
        .store()
        .ledger_entries(0, usize::MAX)
        .await
        .unwrap()
        .len();
    for _ in 0..3 {
        let why = engine
            .explain("shop", &release.alias, "prod")
            .await
            .unwrap();
        assert_eq!(why.decision.verdict, Verdict::Pending);
    }
    let after = engine.store().ledger_entries(0, usize::MAX).await.unwrap();
    assert_eq!(after.len(), before, "{:?}", &after[before..]);
}

#[tokio::test]
async fn signed_by_names_configured_keys_only() {
    let yaml = "project: shop
components:
  api: registry.example/shop/api
environments:
  prod:
    targets:
      api: {repository: registry.example/shop/api}
    gates:
      signed_by: {keys: [release], identities: [{issuer: \"https://token.actions.githubusercontent.com\", subject: \"https://github.com/acme/*\"}]}
";
    let errors = project_file::parse("shop.yaml", yaml)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains(
            "shop.yaml:9:18: signed_by: unknown key \"release\" (trust.keys: none defined)"
        ),
        "{errors}"
    );
    assert!(
        errors.contains(
            "identities are verified against a Sigstore trusted root; set trust.sigstore_root"
        ),
        "{errors}"
    );
}
