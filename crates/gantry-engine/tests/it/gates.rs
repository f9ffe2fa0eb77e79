//! Gates in the engine, against a real registry: evidence, soak, approvals with
//! separation of duties, a stopped line and a Rego policy decide when a release moves,
//! and every decision is recorded.

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_core::{Grant, Principal, PromotionState, Role, Scope, Verdict};
use gantry_engine::{Engine, EngineError, Event, Request};
use gantry_store::store::Audit;
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
    let engine = crate::engine_for(dir.path(), &yaml).await;
    // CI hands in the test reports; they count where it may promote.
    let grant = Grant {
        principal: "ci".parse::<Principal>().unwrap(),
        role: Role::Promoter,
        scope: Scope::Project("shop".parse().unwrap()),
    };
    engine
        .store()
        .grant(&grant, &Audit::by("admin"))
        .await
        .unwrap();
    Gated {
        engine,
        registry,
        _dir: dir,
    }
}

/// CI hands in a passing test report for `api`.
async fn tests_pass(engine: &Engine, release: &str) {
    engine
        .add_evidence(
            "shop",
            release,
            Some("api"),
            "junit",
            JUNIT_PASSED.into(),
            "ci",
        )
        .await
        .unwrap();
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
    tests_pass(engine, &release.alias).await;
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
    // (carol) may not approve (refused, not recorded), one person counts once.
    let promotion = engine
        .promote("shop", &release.alias, "prod", Request::by("carol"))
        .await
        .unwrap();
    assert_eq!(promotion.state, PromotionState::Waiting);
    for who in ["ci", "carol"] {
        let error = engine
            .approve("shop", &release.alias, "prod", true, None, who)
            .await
            .unwrap_err();
        assert!(matches!(error, EngineError::NotCounted { .. }), "{error}");
    }
    for _ in 0..2 {
        engine
            .approve("shop", &release.alias, "prod", true, None, "dave")
            .await
            .unwrap();
    }
    let why = engine
        .explain("shop", &release.alias, "prod")
        .await
        .unwrap();
    let needs = why.decision.needs();
    assert_eq!(needs, "1 more approval from group release-managers");
    assert_eq!(why.promotion, Some(promotion.id));
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
    tests_pass(engine, &release.alias).await;
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

/// The ledger's entries, all of them.
async fn ledger(engine: &Engine) -> Vec<gantry_store::ledger::Entry> {
    engine.store().ledger_entries(0, usize::MAX).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_that_cannot_count_are_refused_and_not_recorded() {
    let world = gated().await;
    let engine = &world.engine;
    let mut events = engine.subscribe();
    let references = BTreeMap::from([(
        "api".to_owned(),
        format!("{}/shop/api:build-1", world.registry.host()),
    )]);
    let (release, _) = engine
        .create_release(
            "shop",
            references,
            BTreeMap::from([("ticket".to_owned(), "OPS-2".to_owned())]),
            "ci",
        )
        .await
        .unwrap();
    engine
        .promote("shop", &release.alias, "prod", Request::by("carol"))
        .await
        .unwrap_err(); // not in staging yet: prod's rule of the graph
    // Approving ahead of the promotion is fine; the separation of duties still holds.
    let before = ledger(engine).await.len();
    for (who, approve, why) in [
        ("ci", true, "ci created the release and cannot approve it"),
        ("ci", false, "ci created the release and cannot approve it"),
        (
            "mallory",
            true,
            "mallory may not approve here: prod takes approvals from group release-managers",
        ),
        (
            "service:deployer",
            true,
            "service:deployer is a service account: it approves only where the gate's from: names it",
        ),
    ] {
        let error = engine
            .approve("shop", &release.alias, "prod", approve, None, who)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, EngineError::NotCounted { reason, .. } if reason == why),
            "{who}: {error}"
        );
    }
    // An environment whose gates read no approvals takes none.
    let error = engine
        .approve("shop", &release.alias, "staging", true, None, "dave")
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("no gate here reads approvals"),
        "{error}"
    );
    let project = engine.project("shop").unwrap().name().clone();
    for environment in ["prod", "staging"] {
        assert!(
            engine
                .store()
                .approvals(&project, &release.id, &environment.parse().unwrap())
                .await
                .unwrap()
                .is_empty()
        );
    }
    // The ledger shows each refusal, and no approval.
    let entries = ledger(engine).await;
    let added: Vec<&str> = entries[before..]
        .iter()
        .map(|e| e.action.as_str())
        .filter(|a| a.starts_with("approval."))
        .collect();
    assert_eq!(added, ["approval.refused"; 5], "{added:?}");
    // Once a promotion is asked for, its requester may not approve either.
    moved_into(&mut events, "dev").await;
    tests_pass(engine, &release.alias).await;
    engine
        .promote("shop", &release.alias, "staging", Request::by("erin"))
        .await
        .unwrap();
    moved_into(&mut events, "staging").await;
    engine
        .promote("shop", &release.alias, "prod", Request::by("carol"))
        .await
        .unwrap();
    let error = engine
        .approve("shop", &release.alias, "prod", true, None, "carol")
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("carol asked for the promotion and cannot approve it"),
        "{error}"
    );
    engine
        .approve("shop", &release.alias, "prod", true, None, "dave")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explaining_records_nothing() {
    let world = gated().await;
    let engine = &world.engine;
    let references = BTreeMap::from([(
        "api".to_owned(),
        format!("{}/shop/api:build-1", world.registry.host()),
    )]);
    let (release, _) = engine
        .create_release("shop", references, BTreeMap::new(), "ci")
        .await
        .unwrap();
    let before = ledger(engine).await.len();
    for environment in ["dev", "staging", "prod", "staging", "prod"] {
        engine
            .explain("shop", &release.alias, environment)
            .await
            .unwrap();
    }
    // Automation may still be at work from the release's creation: count only what
    // explaining could have written.
    let decisions = ledger(engine).await[before..]
        .iter()
        .filter(|e| e.action.starts_with("decision.") && e.environment.as_deref() == Some("prod"))
        .count();
    assert_eq!(decisions, 0);
}

/// A project with no gates at all: `dev` tracks the builds, `prod` is pinned.
async fn ungated() -> Gated {
    let registry = Registry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let r = registry.host();
    let yaml = format!(
        "project: shop
components:
  api: {r}/shop/api
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
"
    );
    let engine = crate::engine_for(dir.path(), &yaml).await;
    Gated {
        engine,
        registry,
        _dir: dir,
    }
}

/// Pushes build `n` and makes a release of it; waits until dev holds it unless `moves`
/// is false.
async fn build(
    world: &Gated,
    n: u64,
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    moves: bool,
) -> gantry_store::store::ReleaseRecord {
    let image = ImageBuilder::new(n).build();
    Pusher::new(&world.registry)
        .push_image("shop/api", Some(&format!("build-{n}")), &image)
        .await;
    let references = BTreeMap::from([(
        "api".to_owned(),
        format!("{}/shop/api:build-{n}", world.registry.host()),
    )]);
    let (release, _) = world
        .engine
        .create_release("shop", references, BTreeMap::new(), "ci")
        .await
        .unwrap();
    if moves {
        moved_into(events, "dev").await;
    }
    release
}

async fn holds(engine: &Engine, environment: &str) -> Option<gantry_core::ReleaseId> {
    let project = engine.project("shop").unwrap().name().clone();
    engine
        .store()
        .environments(&project)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.name.as_str() == environment)
        .and_then(|e| e.release)
}

async fn settled(engine: &Engine, id: i64, state: PromotionState) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while state_of(engine, id).await != state {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("promotion {id} never became {state:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_line_holds_every_environment_but_a_rollback() {
    let world = ungated().await;
    let engine = &world.engine;
    let mut events = engine.subscribe();
    let first = build(&world, 1, &mut events, true).await;
    engine
        .promote("shop", &first.alias, "prod", Request::by("carol"))
        .await
        .unwrap();
    moved_into(&mut events, "prod").await;
    let second = build(&world, 2, &mut events, true).await;
    engine
        .promote("shop", &second.alias, "prod", Request::by("carol"))
        .await
        .unwrap();
    moved_into(&mut events, "prod").await;

    // The whole project stops: automation into the ungated dev waits.
    engine
        .set_stop(
            "shop",
            None,
            true,
            "sre",
            Some("INC-7: checkout down".into()),
        )
        .await
        .unwrap();
    let third = build(&world, 3, &mut events, false).await;
    let project = engine.project("shop").unwrap().name().clone();
    let waiting = engine
        .store()
        .promotions_in_state(&project, PromotionState::Waiting)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0].environment.as_str(), "dev");
    assert_eq!(holds(engine, "dev").await, Some(second.id.clone()));
    let why = engine.explain("shop", &third.alias, "dev").await.unwrap();
    assert_eq!(why.decision.verdict, Verdict::Pending);
    assert_eq!(
        why.decision.needs(),
        "the line is stopped for project shop by sre: INC-7: checkout down"
    );
    // A rollback is what an incident needs: it passes the stop.
    let rollback = engine
        .rollback("shop", "prod", None, Request::by("carol"))
        .await
        .unwrap();
    settled(engine, rollback.id, PromotionState::Succeeded).await;
    assert_eq!(holds(engine, "prod").await, Some(first.id.clone()));

    // Resumed, dev follows; then prod alone stops and a person's promotion waits.
    engine
        .set_stop("shop", None, false, "sre", None)
        .await
        .unwrap();
    settled(engine, waiting[0].id, PromotionState::Succeeded).await;
    engine
        .set_stop("shop", Some("prod"), true, "sre", Some("INC-8".into()))
        .await
        .unwrap();
    let held = engine
        .promote("shop", &third.alias, "prod", Request::by("carol"))
        .await
        .unwrap();
    assert_eq!(held.state, PromotionState::Waiting);
    assert_eq!(holds(engine, "prod").await, Some(first.id.clone()));
    engine
        .set_stop("shop", Some("prod"), false, "sre", None)
        .await
        .unwrap();
    settled(engine, held.id, PromotionState::Succeeded).await;
    assert_eq!(holds(engine, "prod").await, Some(third.id));
}

/// Issue 12: an entry environment follows its binding; `pin` waits for a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_entry_environment_waits_for_a_person() {
    let registry = Registry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let r = registry.host();
    let yaml = format!(
        "project: shop
components:
  api: {r}/shop/api
environments:
  prod:
    binding: pin
    strategy: retag
    targets:
      api: {{repository: {r}/shop/api, tags: [prod]}}
"
    );
    let engine = crate::engine_for(dir.path(), &yaml).await;
    let world = Gated {
        engine,
        registry,
        _dir: dir,
    };
    let engine = &world.engine;
    let mut events = engine.subscribe();
    let release = build(&world, 5, &mut events, false).await;
    let project = engine.project("shop").unwrap().name().clone();
    assert!(
        engine
            .store()
            .promotions(&project, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing is proposed for a pinned environment"
    );
    let promotion = engine
        .promote("shop", &release.alias, "prod", Request::by("carol"))
        .await
        .unwrap();
    settled(engine, promotion.id, PromotionState::Succeeded).await;
    assert_eq!(holds(engine, "prod").await, Some(release.id));
}
