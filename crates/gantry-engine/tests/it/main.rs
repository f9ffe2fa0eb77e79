//! The engine against real registries: a release flows dev → staging by itself and
//! to prod when asked, every step digest-checked and in the ledger.

mod gates;
mod metrics;
mod releases;
mod signatures;
mod suppliers;
mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gantry_core::{Name, ReleaseId};
use gantry_engine::{Engine, EngineError, Event, Request, project_file};
use gantry_oci::{Client, ClientOptions, CredentialSources, Registries};
use gantry_store::sqlite::SqliteStore;
use gantry_store::store::Store;
use gantry_testkit::{
    Fault, FaultAction, FaultProxy, ImageBuilder, Pusher, Registry, RegistryAuth, sha256_digest,
};

/// An engine on `SQLite` in `dir` for these projects, reaching registries with the
/// standard credential files only.
pub(crate) async fn engine_on(
    dir: &std::path::Path,
    definitions: Vec<project_file::Definition>,
) -> Engine {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("gantry.db")).unwrap());
    let registries = Registries::new(
        Client::new(ClientOptions::default()).unwrap(),
        CredentialSources::from_files(vec![]),
    );
    Engine::start(store, registries, definitions).await.unwrap()
}

/// An engine on `SQLite` in `dir` for one project, its file `shop.yaml` in `dir` holding
/// `yaml` (policies and keys it names are read relative to `dir`).
pub(crate) async fn engine_for(dir: &std::path::Path, yaml: &str) -> Engine {
    let file = dir.join("shop.yaml");
    let definition = project_file::parse(&file.display().to_string(), yaml).unwrap();
    engine_on(dir, vec![definition]).await
}

struct World {
    dev: Registry,
    prod: Registry,
    engine: Engine,
    images: BTreeMap<String, String>,
    dir: tempfile::TempDir,
}

/// Two registries, an image per component in dev, and an engine on `SQLite`.
async fn world(prod_password: Option<&str>) -> World {
    world_with(prod_password, false).await.0
}

/// Like `world`, optionally with a fault proxy between the engine and the prod registry.
async fn world_with(prod_password: Option<&str>, proxied: bool) -> (World, Option<FaultProxy>) {
    let (dev, prod) = (
        Registry::start().await,
        Registry::start_with(RegistryAuth::Basic).await,
    );
    let mut images = BTreeMap::new();
    for (seed, component) in [(1, "api"), (2, "worker")] {
        let image = ImageBuilder::new(seed)
            .label("org.opencontainers.image.revision", "4f2c1e9")
            .build();
        Pusher::new(&dev)
            .push_image(&format!("payments/{component}"), Some("build-1"), &image)
            .await;
        images.insert(component.to_owned(), image.digest.clone());
    }
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("prod-creds");
    std::fs::write(
        &credentials,
        format!(
            "{}:{}\n",
            prod.username(),
            prod_password.unwrap_or(prod.password())
        ),
    )
    .unwrap();
    // Staging's own credentials (dev is anonymous, so they are never asked for): the
    // runner must not use them for promotions into prod.
    std::fs::write(dir.path().join("staging-creds"), "staging-robot:s3cret\n").unwrap();
    let proxy = if proxied {
        Some(FaultProxy::start(prod.addr()).await)
    } else {
        None
    };
    let (d, p) = (
        dev.host(),
        proxy.as_ref().map_or_else(|| prod.host(), FaultProxy::host),
    );
    let yaml = format!(
        "project: payments
components:
  api: {d}/payments/api
  worker: {d}/payments/worker
environments:
  dev:
    binding: track
    strategy: retag
    targets:
      api: {{repository: {d}/payments/api}}
      worker: {{repository: {d}/payments/worker}}
  staging:
    from: dev
    binding: track
    strategy: retag
    credentials: {{file: {}}}
    targets:
      api: {{repository: {d}/payments/api}}
      worker: {{repository: {d}/payments/worker}}
  prod:
    from: staging
    strategy: copy
    credentials: {{file: {}}}
    targets:
      api: {{repository: {p}/payments/api, tags: [prod, stable]}}
      worker: {{repository: {p}/payments/worker}}
",
        dir.path().join("staging-creds").display(),
        credentials.display()
    );
    let project = project_file::parse("payments.yaml", &yaml).unwrap();
    let engine = crate::engine_on(dir.path(), vec![project]).await;
    (
        World {
            dev,
            prod,
            engine,
            images,
            dir,
        },
        proxy,
    )
}

fn references(world: &World) -> BTreeMap<String, String> {
    ["api", "worker"]
        .into_iter()
        .map(|c| {
            (
                c.to_owned(),
                format!("{}/payments/{c}:build-1", world.dev.host()),
            )
        })
        .collect()
}

/// Waits for the next event about `environment`, failing after a generous bound.
async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    environment: &str,
) -> Event {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let event = events.recv().await.unwrap();
            let name = match &event {
                Event::PointerMoved { environment, .. }
                | Event::PromotionFailed { environment, .. } => environment.as_str(),
            };
            if name == environment {
                return event;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no event for {environment}"))
}

/// Waits for the promotion `id` into `environment` to fail, and returns its error.
async fn failure(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    environment: &str,
    id: i64,
) -> String {
    match next_event(events, environment).await {
        Event::PromotionFailed {
            promotion, error, ..
        } => {
            assert_eq!(promotion, id);
            error
        }
        other @ Event::PointerMoved { .. } => panic!("expected a failure, got {other:?}"),
    }
}

async fn digest_at(registry: &Registry, repo: &str, tag: &str) -> Option<String> {
    Pusher::new(registry)
        .get_manifest(repo, tag)
        .await
        .map(|(_, bytes)| sha256_digest(&bytes))
}

fn moved(event: &Event) -> &ReleaseId {
    match event {
        Event::PointerMoved { release, .. } => release,
        Event::PromotionFailed { error, .. } => panic!("promotion failed: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_flows_through_its_environments() {
    let world = world(None).await;
    let mut events = world.engine.subscribe();
    let labels = BTreeMap::from([("ci.run".to_owned(), "8812".to_owned())]);
    let (release, created) = world
        .engine
        .create_release("payments", references(&world), labels.clone(), "ci")
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        release.artifacts[0].labels["org.opencontainers.image.revision"],
        "4f2c1e9"
    );

    // dev, then staging follow by themselves; prod is pinned.
    assert_eq!(moved(&next_event(&mut events, "dev").await), &release.id);
    assert_eq!(
        moved(&next_event(&mut events, "staging").await),
        &release.id
    );
    for component in ["api", "worker"] {
        for tag in ["dev", "staging"] {
            assert_eq!(
                digest_at(&world.dev, &format!("payments/{component}"), tag)
                    .await
                    .as_ref(),
                Some(&world.images[component])
            );
        }
    }
    assert_eq!(digest_at(&world.prod, "payments/api", "prod").await, None);

    let promotion = world
        .engine
        .promote(
            "payments",
            &release.alias,
            "prod",
            Request {
                actor: "alice".to_owned(),
                reason: Some("release 1.4.2".to_owned()),
                idempotency_key: Some("key-1".to_owned()),
                ..Request::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(moved(&next_event(&mut events, "prod").await), &release.id);
    assert_eq!(
        digest_at(&world.prod, "payments/api", "stable")
            .await
            .as_ref(),
        Some(&world.images["api"])
    );
    assert_eq!(
        digest_at(&world.prod, "payments/worker", "prod")
            .await
            .as_ref(),
        Some(&world.images["worker"])
    );

    // A retried request gets its first answer; a new one into the same place is refused.
    let retried = world
        .engine
        .promote(
            "payments",
            &release.alias,
            "prod",
            Request {
                actor: "alice".to_owned(),
                idempotency_key: Some("key-1".to_owned()),
                ..Request::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(retried.id, promotion.id);
    let again = world
        .engine
        .promote("payments", &release.alias, "prod", Request::by("alice"))
        .await
        .unwrap_err();
    assert_eq!(
        again.to_string(),
        format!("prod already holds release {}", release.id)
    );
    // The same content is the same release.
    let (same, created) = world
        .engine
        .create_release("payments", references(&world), labels, "ci")
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(same.id, release.id);

    let entries = world.engine.store().ledger_entries(0, 1000).await.unwrap();
    gantry_store::ledger::export::verify_chain(&entries).unwrap();
    let successes: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e.action == "promotion.succeeded")
        .map(|e| (e.environment.as_deref().unwrap(), e.actor.as_str()))
        .collect();
    assert_eq!(
        successes,
        [("dev", "gantry"), ("staging", "gantry"), ("prod", "gantry")]
    );
    let prod_queued = entries
        .iter()
        .find(|e| e.action == "promotion.queued" && e.environment.as_deref() == Some("prod"))
        .unwrap();
    assert_eq!(
        (prod_queued.actor.as_str(), prod_queued.reason.as_deref()),
        ("alice", Some("release 1.4.2"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_failures_change_nothing() {
    let world = world(Some("wrong-password")).await;
    let mut events = world.engine.subscribe();
    let (release, _) = world
        .engine
        .create_release("payments", references(&world), BTreeMap::new(), "ci")
        .await
        .unwrap();
    next_event(&mut events, "staging").await;

    let cases: Vec<(Result<_, EngineError>, &str)> = vec![
        (
            world
                .engine
                .promote("shipping", &release.alias, "prod", Request::by("a"))
                .await,
            "unknown project \"shipping\"",
        ),
        (
            world
                .engine
                .promote("payments", "ffffffffff", "prod", Request::by("a"))
                .await,
            "project payments has no release \"ffffffffff\"",
        ),
        (
            world
                .engine
                .promote("payments", &release.alias, "qa", Request::by("a"))
                .await,
            "project payments has no environment \"qa\"",
        ),
    ];
    for (result, expect) in cases {
        assert_eq!(result.unwrap_err().to_string(), expect);
    }
    let missing = world
        .engine
        .create_release(
            "payments",
            BTreeMap::from([("api".to_owned(), "x".to_owned())]),
            BTreeMap::new(),
            "ci",
        )
        .await;
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .contains("names exactly its components (api, worker), got: api")
    );
    let mut unknown = references(&world);
    unknown.insert(
        "worker".to_owned(),
        format!("{}/payments/worker:nope", world.dev.host()),
    );
    let error = world
        .engine
        .create_release("payments", unknown, BTreeMap::new(), "ci")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("not found (404)"), "{error}");

    // Wrong registry credentials for prod: the promotion fails with the registry's
    // answer and the pointer stays where it was.
    let promotion = world
        .engine
        .promote("payments", &release.alias, "prod", Request::by("alice"))
        .await
        .unwrap();
    let error = failure(&mut events, "prod", promotion.id).await;
    assert!(error.contains("authentication failed (401)"), "{error}");
    let prod = world
        .engine
        .store()
        .environments(&"payments".parse::<Name>().unwrap())
        .await
        .unwrap();
    assert_eq!(
        prod.iter()
            .find(|e| e.name.as_str() == "prod")
            .unwrap()
            .release,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_pause_automation_and_rollback_puts_back() {
    let world = world(None).await;
    let mut events = world.engine.subscribe();
    let (first, _) = world
        .engine
        .create_release("payments", references(&world), BTreeMap::new(), "ci")
        .await
        .unwrap();
    next_event(&mut events, "staging").await;

    world
        .engine
        .set_hold(
            "payments",
            "staging",
            true,
            "carol",
            Some("load test running".to_owned()),
        )
        .await
        .unwrap();
    let image = ImageBuilder::new(3).build();
    Pusher::new(&world.dev)
        .push_image("payments/api", Some("build-2"), &image)
        .await;
    let mut second_refs = references(&world);
    second_refs.insert(
        "api".to_owned(),
        format!("{}/payments/api:build-2", world.dev.host()),
    );
    let (second, _) = world
        .engine
        .create_release("payments", second_refs, BTreeMap::new(), "ci")
        .await
        .unwrap();
    assert_eq!(moved(&next_event(&mut events, "dev").await), &second.id);
    let staging_now = || async {
        let environments = world
            .engine
            .store()
            .environments(&"payments".parse::<Name>().unwrap())
            .await
            .unwrap();
        environments
            .into_iter()
            .find(|e| e.name.as_str() == "staging")
            .unwrap()
    };
    let held = staging_now().await;
    assert_eq!(
        held.release.as_ref(),
        Some(&first.id),
        "a held environment does not follow"
    );
    assert_eq!(
        held.hold.unwrap().reason.as_deref(),
        Some("load test running")
    );

    world
        .engine
        .set_hold("payments", "staging", false, "carol", None)
        .await
        .unwrap();
    assert_eq!(
        moved(&next_event(&mut events, "staging").await),
        &second.id,
        "resuming catches up"
    );
    assert_eq!(
        digest_at(&world.dev, "payments/api", "staging").await,
        Some(image.digest.clone())
    );

    let rollback = world
        .engine
        .rollback(
            "payments",
            "staging",
            None,
            Request {
                actor: "dave".to_owned(),
                reason: Some("error rate up".to_owned()),
                ..Request::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (rollback.kind.as_str(), &rollback.release),
        ("rollback", &first.id)
    );
    assert_eq!(moved(&next_event(&mut events, "staging").await), &first.id);
    assert_eq!(
        digest_at(&world.dev, "payments/api", "staging")
            .await
            .as_ref(),
        Some(&world.images["api"])
    );

    let same = world
        .engine
        .rollback(
            "payments",
            "staging",
            Some(&first.alias),
            Request::by("dave"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        same.to_string(),
        format!("staging already holds release {}", first.id)
    );
    let never = world
        .engine
        .rollback("payments", "prod", Some(&first.alias), Request::by("dave"))
        .await
        .unwrap_err();
    assert!(
        never.to_string().contains("prod never held release"),
        "{never}"
    );
    let nothing = world
        .engine
        .rollback("payments", "prod", None, Request::by("dave"))
        .await
        .unwrap_err();
    assert!(
        nothing.to_string().contains("nothing to roll back to"),
        "{nothing}"
    );
    let actions: Vec<String> = world
        .engine
        .store()
        .ledger_entries(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&"environment.held".to_owned())
            && actions.contains(&"environment.unheld".to_owned())
    );
}

/// Two releases promoted into one environment at once run one after the other, in the
/// order asked, and the ledger shows that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_releases_run_one_at_a_time() {
    let world = world(None).await;
    let mut events = world.engine.subscribe();
    let (first, _) = world
        .engine
        .create_release("payments", references(&world), BTreeMap::new(), "ci")
        .await
        .unwrap();
    next_event(&mut events, "staging").await;
    Pusher::new(&world.dev)
        .push_image(
            "payments/api",
            Some("build-2"),
            &ImageBuilder::new(9).layers(&[300_000]).build(),
        )
        .await;
    let mut refs = references(&world);
    refs.insert(
        "api".to_owned(),
        format!("{}/payments/api:build-2", world.dev.host()),
    );
    let (second, _) = world
        .engine
        .create_release("payments", refs, BTreeMap::new(), "ci")
        .await
        .unwrap();
    next_event(&mut events, "staging").await;

    let (a, b) = tokio::join!(
        world
            .engine
            .promote("payments", &first.alias, "prod", Request::by("alice")),
        world
            .engine
            .promote("payments", &second.alias, "prod", Request::by("bob")),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    next_event(&mut events, "prod").await;
    next_event(&mut events, "prod").await;
    let project = "payments".parse::<Name>().unwrap();
    let a = world.engine.store().promotion(a.id).await.unwrap().unwrap();
    let b = world.engine.store().promotion(b.id).await.unwrap().unwrap();
    assert_eq!(
        (a.state.as_str(), b.state.as_str()),
        ("succeeded", "succeeded")
    );
    let (earlier, later) = if a.id < b.id { (&a, &b) } else { (&b, &a) };
    assert!(
        later.started_at.as_deref().unwrap() >= earlier.finished_at.as_deref().unwrap(),
        "serial: {earlier:?} {later:?}"
    );
    assert_eq!(
        later.previous_release.as_ref(),
        Some(&earlier.release),
        "the second saw the first's result"
    );
    let prod = world
        .engine
        .store()
        .environments(&project)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.name.as_str() == "prod")
        .unwrap();
    assert_eq!(
        (prod.release.as_ref(), prod.version),
        (Some(&later.release), 2)
    );
    let order: Vec<i64> = world
        .engine
        .store()
        .ledger_entries(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "promotion.succeeded" && e.environment.as_deref() == Some("prod"))
        .map(|e| e.detail["promotion"].as_i64().unwrap())
        .collect();
    assert_eq!(order, [earlier.id, later.id]);
}

/// A copy that fails midway (the target registry keeps failing uploads) leaves the
/// pointer where it was, with the registry's error; once the registry recovers, the
/// same promotion asked again succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_failing_midway_moves_nothing() {
    let (world, proxy) = world_with(None, true).await;
    let proxy = proxy.unwrap();
    let mut events = world.engine.subscribe();
    let (release, _) = world
        .engine
        .create_release("payments", references(&world), BTreeMap::new(), "ci")
        .await
        .unwrap();
    next_event(&mut events, "staging").await;
    proxy.add_fault(Fault {
        method: Some("PUT".to_owned()),
        path_contains: "/blobs/uploads/".to_owned(),
        times: 1000,
        action: FaultAction::Status {
            code: 500,
            retry_after: None,
        },
    });
    let promotion = world
        .engine
        .promote("payments", &release.alias, "prod", Request::by("alice"))
        .await
        .unwrap();
    let error = failure(&mut events, "prod", promotion.id).await;
    assert!(error.contains("registry answered 500"), "{error}");
    let project = "payments".parse::<Name>().unwrap();
    let prod = world
        .engine
        .store()
        .environments(&project)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.name.as_str() == "prod")
        .unwrap();
    assert_eq!((prod.release, prod.version), (None, 0));
    assert_eq!(
        digest_at(&world.prod, "payments/api", "prod").await,
        None,
        "no tag names incomplete content"
    );

    proxy.clear_faults();
    world
        .engine
        .promote("payments", &release.alias, "prod", Request::by("alice"))
        .await
        .unwrap();
    assert_eq!(moved(&next_event(&mut events, "prod").await), &release.id);
}

/// Draining for a stop: a promotion that is running when the engine is told to stop
/// finishes within the grace period and nothing new starts; one that outlasts the
/// grace is left running in the store and resumes when an engine starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_finishes_running_promotions_and_starts_none() {
    let (world, proxy) = world_with(None, true).await;
    let proxy = proxy.unwrap();
    let mut events = world.engine.subscribe();
    let (release, _) = world
        .engine
        .create_release("payments", references(&world), BTreeMap::new(), "ci")
        .await
        .unwrap();
    next_event(&mut events, "staging").await;
    // Every upload to prod waits a second: the copy is under way when the stop comes.
    proxy.add_fault(Fault {
        method: Some("PUT".to_owned()),
        path_contains: "/blobs/uploads/".to_owned(),
        times: 1000,
        action: FaultAction::Delay(Duration::from_millis(500)),
    });
    let promotion = world
        .engine
        .promote("payments", &release.alias, "prod", Request::by("alice"))
        .await
        .unwrap();
    let project = "payments".parse::<Name>().unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let state = world
                .engine
                .store()
                .promotion(promotion.id)
                .await
                .unwrap()
                .unwrap()
                .state;
            if state == gantry_core::PromotionState::Running {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the promotion starts");
    assert_eq!(world.engine.drain(Duration::from_secs(60)).await, 0);
    let finished = world
        .engine
        .store()
        .promotion(promotion.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(finished.state, gantry_core::PromotionState::Succeeded);

    // Drained, the engine starts nothing: a new release's automatic promotion into dev
    // stays queued, and dev's pointer does not move.
    proxy.clear_faults();
    let mut references = BTreeMap::new();
    for (seed, component) in [(91, "api"), (92, "worker")] {
        Pusher::new(&world.dev)
            .push_image(
                &format!("payments/{component}"),
                Some("build-2"),
                &ImageBuilder::new(seed).build(),
            )
            .await;
        references.insert(
            component.to_owned(),
            format!("{}/payments/{component}:build-2", world.dev.host()),
        );
    }
    let before = world
        .engine
        .store()
        .environments(&project)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.name.as_str() == "dev")
        .unwrap();
    let (newer, _) = world
        .engine
        .create_release("payments", references, BTreeMap::new(), "ci")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let queued = world
        .engine
        .store()
        .promotions(&project, Some(&"dev".parse().unwrap()), 1)
        .await
        .unwrap();
    assert_eq!(
        (&queued[0].release, queued[0].state),
        (&newer.id, gantry_core::PromotionState::Queued),
        "nothing starts while draining"
    );
    let dev = world
        .engine
        .store()
        .environments(&project)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.name.as_str() == "dev")
        .unwrap();
    assert_eq!(dev.version, before.version, "the pointer did not move");
}

/// An environment's credentials serve only promotions into it: with staging's
/// credentials gone, promoting from staging into prod still works (prod's own are used
/// for prod, and the standard credential files for reading staging's registry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_use_only_their_own_environments_credentials() {
    let world = world(None).await;
    let mut events = world.engine.subscribe();
    let (release, _) = world
        .engine
        .create_release("payments", references(&world), BTreeMap::new(), "ci")
        .await
        .unwrap();
    next_event(&mut events, "staging").await;
    std::fs::remove_file(world.dir.path().join("staging-creds")).unwrap();
    world
        .engine
        .promote("payments", &release.alias, "prod", Request::by("alice"))
        .await
        .unwrap();
    assert_eq!(moved(&next_event(&mut events, "prod").await), &release.id);
}
