//! The `watch:` section of project files: which pushes make releases.

use std::time::Duration;

use gantry_core::Name;
use gantry_engine::project_file;
use gantry_testkit::{ImageBuilder, Pusher, Registry};

#[test]
fn watch_rules_are_checked_at_load() {
    let yaml = "project: shop
components:
  api: registry.example/shop/api
watch:
  api: {tags: 'v*', semver: '>=1'}
  worker: {tags: 'v*'}
  web: {semver: 'one point two'}
environments:
  prod:
    targets:
      api: {repository: registry.example/shop/api}
";
    let errors = project_file::parse("shop.yaml", yaml)
        .unwrap_err()
        .to_string();
    for expected in [
        "shop.yaml:5:8: watch.api: give exactly one of tags",
        "shop.yaml:6:3: watch: unknown component \"worker\" (components: api)",
        "shop.yaml:7:3: watch: unknown component \"web\"",
    ] {
        assert!(errors.contains(expected), "{expected}\n{errors}");
    }
    let fast = "project: shop
components:
  api: registry.example/shop/api
watch:
  api: {tags: 'v*', poll: 100ms}
environments:
  prod:
    targets:
      api: {repository: registry.example/shop/api}
";
    let errors = project_file::parse("shop.yaml", fast)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("watch.api.poll \"100ms\": poll at most once a second"),
        "{errors}"
    );
}

/// For registries that send no events: the poller lists tags every second. At the first
/// look only the highest admitted version is released; later, each new admitted tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_releases_new_tags_the_rule_admits() {
    let registry = Registry::start().await;
    let pusher = Pusher::new(&registry);
    let (old, current, next, other) = (
        ImageBuilder::new(601).build(),
        ImageBuilder::new(602).build(),
        ImageBuilder::new(603).build(),
        ImageBuilder::new(604).build(),
    );
    pusher.push_image("shop/api", Some("0.9.0"), &old).await;
    pusher
        .push_image("shop/api", Some("v1.0.0"), &current)
        .await;
    let r = registry.host();
    let yaml = format!(
        "project: shop
components:
  api: {r}/shop/api
watch:
  api: {{semver: '>=0.1.0', poll: 1s}}
environments:
  dev:
    binding: track
    strategy: retag
    targets:
      api: {{repository: {r}/shop/api, tags: [dev]}}
"
    );
    let dir = tempfile::tempdir().unwrap();
    let engine = crate::engine_on(
        dir.path(),
        vec![project_file::parse("shop.yaml", &yaml).unwrap()],
    )
    .await;
    let dev_holds = |digest: String| {
        let engine = engine.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    let project: Name = "shop".parse().unwrap();
                    let dev = engine.store().environments(&project).await.unwrap();
                    if let Some(id) = dev.first().and_then(|e| e.release.clone()) {
                        let release = engine
                            .store()
                            .find_release(&project, id.digest().as_str())
                            .await
                            .unwrap()
                            .unwrap();
                        if release.artifacts[0].digest.as_str() == digest {
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("dev never held {digest}"));
        }
    };
    let releases_made = || async {
        engine
            .store()
            .ledger_entries(0, usize::MAX)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == "release.created")
            .count()
    };
    dev_holds(current.digest.clone()).await;
    assert_eq!(
        releases_made().await,
        1,
        "only the highest version at the first look"
    );

    pusher.push_image("shop/api", Some("1.1.0"), &next).await;
    pusher.push_image("shop/api", Some("nightly"), &other).await;
    dev_holds(next.digest.clone()).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        releases_made().await,
        2,
        "1.1.0 made a release; nightly (not a version) and dev (Gantry's own tag) did not"
    );
}
