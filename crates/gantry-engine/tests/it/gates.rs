//! Gates in the engine, against a real registry: evidence, soak, approvals with
//! separation of duties, a stopped line and a Rego policy decide when a release moves,
//! and every decision is recorded.

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_core::{PromotionState, Verdict};
use gantry_engine::{Engine, EngineError, Event, Request, project_file};
use gantry_testkit::{ImageBuilder, Pusher, Registry};

const JUNIT_PASSED: &str = r#"<testsuite name="api" tests="3" failures="0" errors="0" skipped="0">
  <testcase classname="api" name="a"/><testcase classname="api" name="b"/><testcase classname="api" name="c"/>
</testsuite>"#;

const JUNIT_FAILED: &str = r#"<testsuite name="api" tests="2" failures="1">
  <testcase classname="api" name="a"/><testcase classname="api" name="b"><failure message="boom"/></testcase>
</testsuite>"#;

const POLICY: &str = r#"package gantry

decision := {"allow": count(violations) == 0, "violations": violations}

violations contains {"gate": "ticket", "msg": "the release names no change ticket (label ticket)"} if {
    not input.release.labels.ticket
}
"#;

struct Gated {
    engine: Engine,
    registry: Registry,
    _dir: tempfile::TempDir,
}

async fn gated() -> Gated {
    let registry = Registry::start().await;
    let image = ImageBuilder::new(7).build();
    Pusher::new(&registry)
        .push_image("shop/api", Some("build-1"), &image)
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("release.rego"), POLICY).unwrap();
    let r = registry.host();
    let yaml = format!(
        "project: shop
components:
  api: {r}/shop/api
groups:
  release-managers: [carol, dave, ci]
environments:
  dev:
    binding: track
    strategy: retag
    targets:
      api: {{repository: {r}/shop/api}}
  staging:
    from: dev
    binding: track
    strategy: retag
    targets:
      api: {{repository: {r}/shop/api}}
    gates:
      tests: {{max_failures: 0}}
      soak: 2s
  prod:
    from: staging
    strategy: retag
    targets:
      api: {{repository: {r}/shop/api}}
    gates:
      approvals: {{count: 2, from: [group:release-managers]}}
      emergency: {{group: release-managers, extra_approvals: 1}}
      policies: [release.rego]
"
    );
    let file = dir.path().join("shop.yaml");
    let definition = project_file::parse(&file.display().to_string(), &yaml).unwrap();
    let engine = crate::engine_on(dir.path(), vec![definition]).await;
    Gated {
        engine,
        registry,
        _dir: dir,
    }
}

pub(crate) async fn moved_into(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    environment: &str,
) {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match events.recv().await.unwrap() {
                // Rejections on the way (an automatic promotion whose gates failed) are
                // part of the story; only a pointer move ends the wait.
                Event::PointerMoved { environment: e, .. } if e.as_str() == environment => return,
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("nothing moved into {environment}"));
}

pub(crate) async fn state_of(engine: &Engine, id: i64) -> PromotionState {
    engine.store().promotion(id).await.unwrap().unwrap().state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_decide_when_a_release_moves() {
    let world = gated().await;
    let engine = &world.engine;
    let mut events = engine.subscribe();
    let references = BTreeMap::from([(
        "api".to_owned(),
        format!("{}/shop/api:build-1", world.registry.host()),
    )]);
    let labels = BTreeMap::from([("ticket".to_owned(), "OPS-1".to_owned())]);
    let (release, _) = engine
        .create_release("shop", references, labels, "ci")
        .await
        .unwrap();
    moved_into(&mut events, "dev").await;

    // staging is track but waits for a passing test report.
    let why = engine
        .explain("shop", &release.alias, "staging")
        .await
        .unwrap();
    assert_eq!(why.decision.verdict, Verdict::Pending);
    assert!(
        why.decision.needs().contains("a test report for api"),
        "{}",
        why.decision.needs()
    );

    // A failing report: staging stays where it is.
    let added = engine
        .add_evidence(
            "shop",
            &release.alias,
            Some("api"),
            "junit",
            JUNIT_FAILED.into(),
            "ci",
        )
        .await
        .unwrap();
    assert!(added.created);
    let why = engine
        .explain("shop", &release.alias, "staging")
        .await
        .unwrap();
    assert_eq!(why.decision.verdict, Verdict::Deny);
    assert!(
        why.decision.failures().contains("1 of 2 tests failed"),
        "{}",
        why.decision.failures()
    );

    // A passing report replaces it; the soak of 2 s in dev then lets it through by
    // itself, woken by the engine's timer.
    engine
        .add_evidence(
            "shop",
            &release.alias,
            None,
            "junit",
            JUNIT_PASSED.into(),
            "ci",
        )
        .await
        .unwrap();
    // The newer, release-wide report does not outrank the component's own one.
    let why = engine
        .explain("shop", &release.alias, "staging")
        .await
        .unwrap();
    assert_eq!(
        why.decision.verdict,
        Verdict::Deny,
        "{:?}",
        why.decision.gates
    );
    engine
        .add_evidence(
            "shop",
            &release.alias,
            Some("api"),
            "junit",
            JUNIT_PASSED.into(),
            "ci",
        )
        .await
        .unwrap();
    let why = engine
        .explain("shop", &release.alias, "staging")
        .await
        .unwrap();
    assert_ne!(
        why.decision.verdict,
        Verdict::Deny,
        "{:?}",
        why.decision.gates
    );
    // Nothing proposed staging yet (the first look denied); a person asks.
    let promotion = engine
        .promote("shop", &release.alias, "staging", Request::by("erin"))
        .await
        .unwrap();
    moved_into(&mut events, "staging").await;
    assert_eq!(
        state_of(engine, promotion.id).await,
        PromotionState::Succeeded
    );

    // prod: two approvals from release managers; the creator (ci) and the requester
    // (carol) do not count, one person counts once.
    let promotion = engine
        .promote("shop", &release.alias, "prod", Request::by("carol"))
        .await
        .unwrap();
    assert_eq!(promotion.state, PromotionState::Waiting);
    for (who, approve) in [
        ("ci", true),
        ("carol", true),
        ("dave", true),
        ("dave", true),
    ] {
        engine
            .approve("shop", &release.alias, "prod", approve, None, who)
            .await
            .unwrap();
    }
    let why = engine
        .explain("shop", &release.alias, "prod")
        .await
        .unwrap();
    let needs = why.decision.needs();
    assert!(
        needs.starts_with("1 more approval from group release-managers"),
        "{needs}"
    );
    assert!(
        needs.contains("ci created the release and cannot approve it"),
        "{needs}"
    );
    assert!(
        needs.contains("carol asked for the promotion and cannot approve it"),
        "{needs}"
    );
    assert!(
        why.decision
            .gates
            .iter()
            .any(|g| g.gate == "policy:release.rego" && g.state == gantry_core::GateState::Pass)
    );
    assert_eq!(why.decision.policies[0].0, "release.rego");

    // Stopping the line needs a reason, and an unknown environment is named.
    let error = engine
        .set_stop("shop", Some("prod"), true, "sre", None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            EngineError::InvalidField {
                field: "reason",
                ..
            }
        ),
        "{error}"
    );
    let error = engine
        .set_stop("shop", Some("qa"), true, "sre", Some("x".into()))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("no environment \"qa\""),
        "{error}"
    );

    // Every decision is recorded, with the policy's digest.
    let decisions = engine
        .store()
        .decisions(
            engine.project("shop").unwrap().name(),
            &release.id,
            None,
            100,
        )
        .await
        .unwrap();
    assert!(
        decisions
            .iter()
            .any(|d| d.environment.as_str() == "prod" && !d.policies.is_empty())
    );
    assert!(
        decisions
            .iter()
            .any(|d| d.environment.as_str() == "staging" && d.verdict == Verdict::Deny)
    );
    // Waiting promotions that end up denied are rejected when next looked at.
    engine
        .approve(
            "shop",
            &release.alias,
            "prod",
            false,
            Some("not today".into()),
            "dave",
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while state_of(engine, promotion.id).await != PromotionState::Rejected {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the waiting promotion is rejected");
    let rejected = engine
        .store()
        .promotion(promotion.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        rejected
            .error
            .unwrap()
            .contains("rejected by dave: not today")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_environments_move_when_the_last_gate_passes() {
    let world = gated().await;
    let engine = &world.engine;
    let mut events = engine.subscribe();
    let references = BTreeMap::from([(
        "api".to_owned(),
        format!("{}/shop/api:build-1", world.registry.host()),
    )]);
    let (release, _) = engine
        .create_release("shop", references, BTreeMap::new(), "ci")
        .await
        .unwrap();
    // The report arrives before dev moves: staging's candidate waits only for the soak.
    engine
        .add_evidence(
            "shop",
            &release.alias,
            Some("api"),
            "junit",
            JUNIT_PASSED.into(),
            "ci",
        )
        .await
        .unwrap();
    moved_into(&mut events, "dev").await;
    let entered = std::time::Instant::now();
    // Automation proposes staging right after dev moved; it waits for its soak.
    let waiting = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let waiting = engine
                .store()
                .promotions_in_state(
                    engine.project("shop").unwrap().name(),
                    PromotionState::Waiting,
                )
                .await
                .unwrap();
            if !waiting.is_empty() {
                return waiting;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("staging's automatic promotion waits for its soak");
    assert_eq!(waiting.len(), 1);
    moved_into(&mut events, "staging").await;
    let took = entered.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "the soak was kept: {took:?}"
    );
    assert_eq!(
        state_of(engine, waiting[0].id).await,
        PromotionState::Succeeded
    );

    // Without a ticket label the project's policy denies prod, and says why.
    let why = engine
        .explain("shop", &release.alias, "prod")
        .await
        .unwrap();
    assert_eq!(why.decision.verdict, Verdict::Deny);
    assert!(
        why.decision
            .failures()
            .contains("policy:release.rego/ticket: the release names no change ticket"),
        "{}",
        why.decision.failures()
    );
}
