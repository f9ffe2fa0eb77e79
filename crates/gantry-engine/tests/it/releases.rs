//! Where releases come from: only the component's own repository, or those its
//! `also_from:` names. Everything else is refused from the reference's text alone,
//! before anything is dialled or opened, with one answer that tells nothing about what
//! lies outside, and a refusal changes nothing but the ledger.

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_core::Name;
use gantry_engine::Push;
use gantry_engine::{Engine, EngineError, project_file};
use gantry_testkit::{ImageBuilder, Pusher, Registry};

/// One component `api` from `{registry}/payments/api`, plus what `extra` adds to it.
async fn engine(dir: &std::path::Path, registry: &Registry, extra: &str) -> Engine {
    let r = registry.host();
    let component = if extra.is_empty() {
        format!("{r}/payments/api")
    } else {
        format!("{{source: {r}/payments/api, {extra}}}")
    };
    let yaml = format!(
        "project: payments
components:
  api: {component}
environments:
  dev:
    binding: track
    strategy: retag
    targets:
      api: {{repository: {r}/payments/api, tags: [dev]}}
"
    );
    let definition = project_file::parse("payments.yaml", &yaml).unwrap();
    crate::engine_on(dir, vec![definition]).await
}

fn api(reference: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("api".to_owned(), reference.to_owned())])
}

async fn create(engine: &Engine, reference: &str) -> Result<String, EngineError> {
    engine
        .create_release("payments", api(reference), BTreeMap::new(), "mallory")
        .await
        .map(|(release, _)| release.alias)
}

/// The refusal `api` gets for any reference outside `{registry}/payments/api`.
fn refusal(registry: &Registry) -> String {
    let source = format!("{}/payments/api", registry.host());
    format!(
        "components: api comes only from {source}: write api=TAG, api=@sha256:DIGEST or api={source}:TAG; other repositories need `also_from:` on the component in the project file"
    )
}

/// The ledger's length, and that the project has no release.
async fn nothing_but_the_ledger(engine: &Engine) -> Vec<gantry_store::ledger::Entry> {
    let project: Name = "payments".parse().unwrap();
    assert!(
        engine
            .store()
            .latest_release(&project)
            .await
            .unwrap()
            .is_none(),
        "a refusal makes no release"
    );
    assert!(
        engine
            .store()
            .promotions(&project, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "a refusal queues nothing"
    );
    engine.store().ledger_entries(0, usize::MAX).await.unwrap()
}

/// A promoter names another team's repository in the same registry: refused, the
/// registry is never asked, and the ledger records the refusal and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_repository_refused() {
    let registry = Registry::start().await;
    let secret = ImageBuilder::new(41)
        .label("com.example.secret", "the other team's")
        .build();
    Pusher::new(&registry)
        .push_image("billing/secret", Some("v1"), &secret)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &registry, "").await;
    let before = nothing_but_the_ledger(&engine).await.len();
    registry.reset_request_counts();
    let r = registry.host();
    for reference in [
        format!("{r}/billing/secret:v1"),
        format!("{r}/billing/secret@{}", secret.digest),
        format!("{r}/payments/api-other:v1"),
        format!("docker://{r}/billing/secret:v1"),
    ] {
        let error = create(&engine, &reference).await.unwrap_err();
        assert!(
            matches!(
                &error,
                EngineError::InvalidField {
                    field: "components",
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(error.to_string(), refusal(&registry), "{reference}");
    }
    assert_eq!(
        registry.request_counts().total(),
        0,
        "decided before any request"
    );
    let entries = nothing_but_the_ledger(&engine).await;
    assert_eq!(entries.len(), before + 4, "one refusal each, nothing else");
    let last = entries.last().unwrap();
    assert_eq!(
        (
            last.action.as_str(),
            last.actor.as_str(),
            last.release.as_deref()
        ),
        ("release.refused", "mallory", None)
    );
    assert_eq!(last.detail["component"], "api");
    assert_eq!(
        last.detail["reference"],
        format!("docker://{r}/billing/secret:v1")
    );
}

/// A reference to another host is refused without a connection to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_host_is_never_dialled() {
    let registry = Registry::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &registry, "").await;
    for reference in [
        format!("{elsewhere}/payments/api:v1"),
        format!("localhost:{}/payments/api:v1", elsewhere.port()),
    ] {
        // The listener never answers: a request to it would wait, so give up waiting.
        let answer =
            tokio::time::timeout(Duration::from_secs(5), create(&engine, &reference)).await;
        // A dial would sit in the listener's backlog by now.
        let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(accepted.is_err(), "{reference}: the other host was dialled");
        let error = answer.expect("an answer without waiting").unwrap_err();
        assert_eq!(error.to_string(), refusal(&registry), "{reference}");
    }
    nothing_but_the_ledger(&engine).await;
}

/// OCI layouts are the CLI's local business: through the engine (the API), a path that
/// exists and one that does not get the very same words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layouts_get_byte_identical_refusals() {
    let registry = Registry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &registry, "").await;
    let mut answers = Vec::new();
    for reference in [
        "oci:/etc:x",
        "oci:/nonexistent:x",
        &format!("oci:{}:v1", dir.path().display()),
        "oci:",
    ] {
        answers.push(create(&engine, reference).await.unwrap_err().to_string());
    }
    assert_eq!(answers[0], refusal(&registry));
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:#?}");
    nothing_but_the_ledger(&engine).await;
}

/// The short forms resolve in the component's repository, a bare repository is never
/// read as `latest`, and what the project file allows with `also_from:` works (a
/// segment pattern, not deeper); pushes are still watched in `source` only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_sources_and_short_forms() {
    let registry = Registry::start().await;
    let pusher = Pusher::new(&registry);
    let (build, hotfix, pull) = (
        ImageBuilder::new(51).build(),
        ImageBuilder::new(52).build(),
        ImageBuilder::new(53).build(),
    );
    pusher
        .push_image("payments/api", Some("build-1"), &build)
        .await;
    pusher
        .push_image("payments/api", Some("latest"), &build)
        .await;
    pusher
        .push_image("payments/api-hotfix", Some("h1"), &hotfix)
        .await;
    pusher
        .push_image("payments/pr-7/api", Some("sha-1"), &pull)
        .await;
    pusher
        .push_image("payments/pr-7/api/x", Some("sha-1"), &pull)
        .await;
    let r = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(
        dir.path(),
        &registry,
        &format!("also_from: [{r}/payments/api-hotfix, {r}/payments/pr-*/api]"),
    )
    .await;

    let release = engine
        .create_release("payments", api("build-1"), BTreeMap::new(), "ci")
        .await
        .unwrap()
        .0;
    assert_eq!(
        release.artifacts[0].source,
        format!("{r}/payments/api:build-1"),
        "the source is recorded in full"
    );
    assert_eq!(release.artifacts[0].digest.as_str(), build.digest);
    let same = create(&engine, &format!("@{}", build.digest))
        .await
        .unwrap();
    assert_eq!(same, release.alias);
    create(&engine, &format!("{r}/payments/api-hotfix:h1"))
        .await
        .unwrap();
    create(&engine, &format!("{r}/payments/pr-7/api@{}", pull.digest))
        .await
        .unwrap();

    let source = format!("{r}/payments/api");
    let no_version = format!(
        "api: name a tag or a digest, never latest by default: write api=TAG, api=@sha256:DIGEST or api={source}:TAG"
    );
    // What the requests recorded (the runner keeps working dev's queue meanwhile).
    let recorded = || async {
        engine
            .store()
            .ledger_entries(0, usize::MAX)
            .await
            .unwrap()
            .into_iter()
            .filter(|entry| entry.actor == "mallory")
            .collect::<Vec<_>>()
    };
    let ledger = recorded().await;
    for bare in [
        source.clone(),
        format!("{r}/payments/api-hotfix"),
        String::new(),
    ] {
        let error = create(&engine, &bare).await.unwrap_err();
        assert!(
            matches!(error, EngineError::Invalid(_)),
            "a bad request: {error:?}"
        );
        assert_eq!(error.to_string(), no_version, "{bare:?}");
    }
    assert_eq!(recorded().await, ledger, "a bad request records nothing");
    let outside = format!(
        "components: api comes only from {source} (or {r}/payments/api-hotfix, {r}/payments/pr-*/api): write api=TAG, api=@sha256:DIGEST or api={source}:TAG; other repositories need `also_from:` on the component in the project file"
    );
    for reference in [
        format!("{r}/payments/pr-7/api/x:sha-1"),
        format!("{r}/payments/api-hotfix2:h1"),
        "oci:/etc:x".to_owned(),
    ] {
        assert_eq!(
            create(&engine, &reference).await.unwrap_err().to_string(),
            outside,
            "{reference}"
        );
    }

    // A push to an `also_from` repository is not a push to the component's source.
    let outcomes = engine
        .registry_push(
            &Push {
                repository: format!("{r}/payments/api-hotfix"),
                tag: "h1".to_owned(),
                digest: hotfix.digest.parse().unwrap(),
            },
            "registry",
        )
        .await
        .unwrap();
    assert!(outcomes.is_empty(), "{outcomes:?}");
}

/// The project file says where `also_from:` is wrong.
#[test]
fn also_from_is_checked_at_load() {
    let yaml = "project: shop
components:
  api: {source: registry.example/shop/api, also_from: [shop/api-*, '*.example/x', registry.example/shop/api:v1]}
environments:
  prod:
    targets:
      api: {repository: registry.example/shop/api}
";
    let errors = project_file::parse("shop.yaml", yaml)
        .unwrap_err()
        .to_string();
    for expected in [
        "shop.yaml:3:56: also_from: \"shop/api-*\": the first part must be a registry host",
        "shop.yaml:3:68: also_from: \"*.example/x\": the first part must be a registry host",
        "shop.yaml:3:83: also_from: \"registry.example/shop/api:v1\" names a tag or digest",
    ] {
        assert!(errors.contains(expected), "{expected}\n{errors}");
    }
    let unknown = yaml.replace("also_from", "also");
    let errors = project_file::parse("shop.yaml", &unknown)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("unknown field \"also\"; expected one of: source, also_from"),
        "{errors}"
    );
}

/// A push of one component takes the others from the repository the latest release took
/// them from, when the project still allows it: a hotfix of `api` stays the hotfix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_keep_the_other_components_where_they_came_from() {
    let registry = Registry::start().await;
    let pusher = Pusher::new(&registry);
    let (hotfix, worker, next) = (
        ImageBuilder::new(61).build(),
        ImageBuilder::new(62).build(),
        ImageBuilder::new(63).build(),
    );
    pusher
        .push_image("payments/api-hotfix", Some("h1"), &hotfix)
        .await;
    pusher
        .push_image("payments/worker", Some("1.0.0"), &worker)
        .await;
    pusher
        .push_image("payments/worker", Some("1.1.0"), &next)
        .await;
    let r = registry.host();
    let yaml = format!(
        "project: payments
components:
  api: {{source: {r}/payments/api, also_from: [{r}/payments/api-hotfix]}}
  worker: {r}/payments/worker
watch:
  worker: {{semver: '>=1.0.0'}}
environments:
  dev:
    strategy: retag
    targets:
      api: {{repository: {r}/payments/api, tags: [dev]}}
      worker: {{repository: {r}/payments/worker, tags: [dev]}}
"
    );
    let dir = tempfile::tempdir().unwrap();
    let engine = crate::engine_on(
        dir.path(),
        vec![project_file::parse("payments.yaml", &yaml).unwrap()],
    )
    .await;
    engine
        .create_release(
            "payments",
            BTreeMap::from([
                ("api".to_owned(), format!("{r}/payments/api-hotfix:h1")),
                ("worker".to_owned(), "1.0.0".to_owned()),
            ]),
            BTreeMap::new(),
            "ci",
        )
        .await
        .unwrap();
    let outcomes = engine
        .registry_push(
            &Push {
                repository: format!("{r}/payments/worker"),
                tag: "1.1.0".to_owned(),
                digest: next.digest.parse().unwrap(),
            },
            "registry",
        )
        .await
        .unwrap();
    assert!(
        matches!(
            outcomes.as_slice(),
            [gantry_engine::PushOutcome::Release { created: true, .. }]
        ),
        "{outcomes:?}"
    );
    let latest = engine
        .store()
        .latest_release(&"payments".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let api = latest
        .artifacts
        .iter()
        .find(|a| a.component.as_str() == "api")
        .unwrap();
    assert_eq!(
        api.source,
        format!("{r}/payments/api-hotfix@{}", hotfix.digest)
    );
}
