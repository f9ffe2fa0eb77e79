//! Metric gates against a real Prometheus scraping a small exporter: the query is asked
//! at decision time, a value over the threshold denies, and no usable value (several
//! series, an unreachable Prometheus) fails closed with the reason.

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_core::{PromotionState, Verdict};
use gantry_engine::{Request, project_file};
use gantry_testkit::{Exporter, ImageBuilder, Prometheus, Pusher, Registry};

use crate::gates::{moved_into, state_of};

fn gate<'a>(decision: &'a gantry_policy::Decision, name: &str) -> &'a gantry_policy::GateOutcome {
    decision
        .gates
        .iter()
        .find(|g| g.gate == name)
        .unwrap_or_else(|| panic!("no gate {name} in {:?}", decision.gates))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_gates_ask_prometheus_when_deciding() {
    let exporter = Exporter::start().await;
    exporter.set("shop_error_ratio", 0.2);
    exporter.set("shop_latency_seconds", 0.3);
    let prometheus = Prometheus::start(&[exporter.addr()]).await;
    prometheus
        .wait_for("shop_error_ratio", Duration::from_secs(60), |v| {
            (v - 0.2).abs() < 1e-9
        })
        .await;

    let registry = Registry::start().await;
    let image = ImageBuilder::new(21).build();
    Pusher::new(&registry)
        .push_image("shop/api", Some("build-1"), &image)
        .await;
    let r = registry.host();
    let p = prometheus.url();
    let shop = format!(
        "project: shop
prometheus: {p}
components:
  api: {r}/shop/api
environments:
  prod:
    strategy: retag
    targets:
      api: {{repository: {r}/shop/api}}
    gates:
      metrics:
        - {{name: error-ratio, query: 'max(shop_error_ratio)', below: 0.05}}
  canary:
    strategy: retag
    targets:
      api: {{repository: {r}/shop/api, tags: [canary]}}
    gates:
      metrics:
        - {{name: everything, query: '{{__name__=~\"shop_.+\"}}', at_most: 1}}
"
    );
    let dark = format!(
        "project: dark
prometheus: http://127.0.0.1:1
components:
  api: {r}/shop/api
environments:
  prod:
    strategy: retag
    targets:
      api: {{repository: {r}/shop/api, tags: [dark]}}
    gates:
      metrics:
        - {{name: error-ratio, query: 'max(shop_error_ratio)', below: 0.05}}
"
    );
    let dir = tempfile::tempdir().unwrap();
    let definitions = vec![
        project_file::parse("shop.yaml", &shop).unwrap(),
        project_file::parse("dark.yaml", &dark).unwrap(),
    ];
    let engine = crate::engine_on(dir.path(), definitions).await;
    let mut events = engine.subscribe();
    let references = BTreeMap::from([("api".to_owned(), format!("{r}/shop/api:build-1"))]);
    let (release, _) = engine
        .create_release("shop", references.clone(), BTreeMap::new(), "ci")
        .await
        .unwrap();

    // Over the threshold: denied, and the reason quotes the query and the value.
    let why = engine
        .explain("shop", &release.alias, "prod")
        .await
        .unwrap();
    assert_eq!(why.decision.verdict, Verdict::Deny);
    assert_eq!(
        gate(&why.decision, "metric:error-ratio").reason,
        "max(shop_error_ratio) is 0.2, must be < 0.05"
    );

    // Several series are no single value: the gate fails closed and says how to fix it.
    let why = engine
        .explain("shop", &release.alias, "canary")
        .await
        .unwrap();
    assert_eq!(why.decision.verdict, Verdict::Deny);
    let reason = &gate(&why.decision, "metric:everything").reason;
    assert!(
        reason.starts_with("no value (fails closed): the query returned 2 series")
            && reason.contains("aggregate them to one"),
        "{reason}"
    );

    // The error ratio falls; once Prometheus has scraped it, the release may go.
    exporter.set("shop_error_ratio", 0.01);
    prometheus
        .wait_for("max(shop_error_ratio)", Duration::from_secs(60), |v| {
            (v - 0.01).abs() < 1e-9
        })
        .await;
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
    moved_into(&mut events, "prod").await;
    assert_eq!(
        state_of(&engine, promotion.id).await,
        PromotionState::Succeeded
    );

    // A Prometheus nobody can reach never allows.
    let (dark_release, _) = engine
        .create_release("dark", references, BTreeMap::new(), "ci")
        .await
        .unwrap();
    let why = engine
        .explain("dark", &dark_release.alias, "prod")
        .await
        .unwrap();
    assert_eq!(why.decision.verdict, Verdict::Deny);
    let reason = &gate(&why.decision, "metric:error-ratio").reason;
    assert!(
        reason
            .starts_with("no value (fails closed): cannot reach Prometheus at http://127.0.0.1:1"),
        "{reason}"
    );
}

#[test]
fn metric_gates_need_a_prometheus() {
    let yaml = "project: shop
prometheus: ftp://metrics
components:
  api: registry.example/shop/api
environments:
  prod:
    targets:
      api: {repository: registry.example/shop/api}
    gates:
      metrics:
        - {name: error-ratio, query: 'max(shop_error_ratio)', below: 0.05}
";
    let errors = project_file::parse("shop.yaml", yaml)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains(
            "shop.yaml:2:13: prometheus: \"ftp://metrics\" is not an http:// or https:// base URL"
        ),
        "{errors}"
    );
    assert!(
        errors.contains("shop.yaml:11:11: metric \"error-ratio\" needs a Prometheus to ask"),
        "{errors}"
    );
}
