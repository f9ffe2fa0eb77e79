//! Stories every `Store` backend must tell the same way.

use std::collections::BTreeMap;
use std::sync::Arc;

use gantry_core::{Digest, Grant, Principal, Role, Scope, Verdict};
use gantry_core::{Name, PromotionState, ReleaseContent, ReleaseId};
use gantry_store::ledger::entry::GENESIS;
use gantry_store::ledger::replay::{Replay, compare};
use gantry_store::store::{
    Artifact, Audit, Lease, NewApproval, NewDecision, NewEvidence, NewPromotion, NewRefusal,
    NewRelease, Outcome, PromotionKind, Store, StoreError,
};

/// A lease that outlasts any test.
fn lease() -> Lease {
    Lease {
        holder: "test".to_owned(),
        duration: std::time::Duration::from_secs(600),
    }
}

fn name(text: &str) -> Name {
    text.parse().unwrap()
}

fn release(seed: char) -> NewRelease {
    let digest = format!("sha256:{}", seed.to_string().repeat(64))
        .parse()
        .unwrap();
    let content = ReleaseContent {
        project: name("payments"),
        artifacts: BTreeMap::from([(name("api"), digest)]),
    };
    let id = content.id();
    NewRelease {
        id,
        project: name("payments"),
        artifacts: content
            .artifacts
            .into_iter()
            .map(|(component, digest)| Artifact {
                component,
                source: "registry.dev/payments/api:build-1".to_owned(),
                digest,
                labels: BTreeMap::from([(
                    "org.opencontainers.image.revision".to_owned(),
                    "4f2c1e9".to_owned(),
                )]),
            })
            .collect(),
        labels: BTreeMap::from([("ci".to_owned(), "8812".to_owned())]),
    }
}

async fn setup(store: &dyn Store) -> ReleaseId {
    store
        .ensure_environments(&name("payments"), &[name("dev"), name("prod")])
        .await
        .unwrap();
    store
        .create_release(release('a'), &Audit::by("ci"))
        .await
        .unwrap()
        .0
        .id
}

fn promote(release: &ReleaseId, environment: &str, key: Option<&str>) -> NewPromotion {
    NewPromotion {
        project: name("payments"),
        environment: name(environment),
        release: release.clone(),
        kind: PromotionKind::Promote,
        idempotency_key: key.map(str::to_owned),
        state: PromotionState::Queued,
        emergency: false,
    }
}

pub async fn releases_are_created_once(store: &dyn Store) {
    assert_eq!(store.latest_release(&name("payments")).await.unwrap(), None);
    let (first, created) = store
        .create_release(release('a'), &Audit::by("ci"))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(first.alias, &first.id.digest().hex()[..10]);
    assert_eq!(first.labels["ci"], "8812");
    assert_eq!(
        first.artifacts[0].labels["org.opencontainers.image.revision"],
        "4f2c1e9"
    );
    let (again, created) = store
        .create_release(release('a'), &Audit::by("someone-else"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again, first);
    let project = name("payments");
    for key in [
        first.alias.clone(),
        first.id.digest().to_string(),
        first.id.digest().hex()[..6].to_owned(),
    ] {
        assert_eq!(
            store.find_release(&project, &key).await.unwrap().as_ref(),
            Some(&first),
            "{key}"
        );
    }
    let (second, _) = store
        .create_release(release_b(), &Audit::by("ci"))
        .await
        .unwrap();
    assert_eq!(
        store.latest_release(&project).await.unwrap().as_ref(),
        Some(&second),
        "the one created last"
    );
    store
        .create_release(release('a'), &Audit::by("ci"))
        .await
        .unwrap();
    assert_eq!(
        store.latest_release(&project).await.unwrap().as_ref(),
        Some(&second),
        "asking again for an older release does not make it newer"
    );
    assert_eq!(store.find_release(&project, "ffffff").await.unwrap(), None);
    assert_eq!(store.find_release(&project, "not hex").await.unwrap(), None);
    assert_eq!(
        store
            .find_release(&name("other"), &first.alias)
            .await
            .unwrap(),
        None
    );
}

pub async fn promotions_queue_run_and_move_pointers(store: &dyn Store) {
    let release = setup(store).await;
    let (project, dev) = (name("payments"), name("dev"));
    let (first, new) = store
        .enqueue(promote(&release, "dev", None), &Audit::by("alice"))
        .await
        .unwrap();
    assert!(new);
    assert_eq!(first.state, PromotionState::Queued);
    let other = store
        .create_release(release_b(), &Audit::by("ci"))
        .await
        .unwrap()
        .0
        .id;
    let second = store
        .enqueue(promote(&other, "dev", None), &Audit::by("bob"))
        .await
        .unwrap()
        .0;

    let running = store
        .start_next(&project, &dev, &lease())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (running.id, running.state),
        (first.id, PromotionState::Running)
    );
    assert_eq!(
        store.start_next(&project, &dev, &lease()).await.unwrap(),
        None,
        "one promotion runs per environment"
    );

    let done = store
        .finish(
            first.id,
            "test",
            Outcome::Succeeded {
                expected_version: 0,
            },
            &Audit::by("gantry"),
        )
        .await
        .unwrap();
    assert_eq!(done.state, PromotionState::Succeeded);
    assert_eq!(done.previous_release, None);
    let environments = store.environments(&project).await.unwrap();
    let dev_state = environments.iter().find(|e| e.name == dev).unwrap();
    assert_eq!(
        (dev_state.release.as_ref(), dev_state.version),
        (Some(&release), 1)
    );
    assert_eq!(dev_state.moved_by.as_deref(), Some("alice"));
    assert_eq!(
        store
            .reached(&project, &release)
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        std::slice::from_ref(&dev)
    );

    let next = store
        .start_next(&project, &dev, &lease())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.id, second.id, "the queue runs in order");
    let failed = store
        .finish(
            second.id,
            "test",
            Outcome::Failed {
                error: "registry answered 503".to_owned(),
            },
            &Audit::by("gantry"),
        )
        .await
        .unwrap();
    assert_eq!(
        (failed.state, failed.error.as_deref()),
        (PromotionState::Failed, Some("registry answered 503"))
    );
    let again = store
        .finish(
            second.id,
            "test",
            Outcome::Failed {
                error: "x".to_owned(),
            },
            &Audit::by("gantry"),
        )
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again}");

    // The same release again: by its turn dev holds it, so it is superseded, not run.
    let duplicate = store
        .enqueue(promote(&release, "dev", None), &Audit::by("carol"))
        .await
        .unwrap()
        .0;
    assert_eq!(
        store.start_next(&project, &dev, &lease()).await.unwrap(),
        None,
        "dev already holds it"
    );
    let superseded = store.promotion(duplicate.id).await.unwrap().unwrap();
    assert_eq!(superseded.state, PromotionState::Superseded);
    assert!(superseded.error.unwrap().contains("already holds release"));

    let third = store
        .enqueue(promote(&release, "dev", None), &Audit::by("carol"))
        .await
        .unwrap()
        .0;
    let cancelled = store
        .cancel(third.id, &Audit::by("carol").because("wrong release"))
        .await
        .unwrap();
    assert_eq!(cancelled.state, PromotionState::Cancelled);
    let late = store
        .cancel(second.id, &Audit::by("carol"))
        .await
        .unwrap_err();
    assert!(
        late.to_string()
            .contains("cannot go from failed to cancelled"),
        "{late}"
    );
    assert_eq!(
        store.start_next(&project, &dev, &lease()).await.unwrap(),
        None,
        "a cancelled promotion never runs"
    );
    assert_eq!(
        store.promotion(third.id).await.unwrap().unwrap().state,
        PromotionState::Cancelled
    );

    let listed = store.promotions(&project, Some(&dev), 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|p| p.id).collect::<Vec<_>>(),
        [third.id, duplicate.id, second.id, first.id],
        "newest first"
    );
    let unknown = store
        .enqueue(promote(&release, "qa", None), &Audit::by("alice"))
        .await
        .unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound(_)), "{unknown}");
}

pub async fn idempotency_keys_queue_once(store: &dyn Store) {
    let release = setup(store).await;
    let (first, new) = store
        .enqueue(
            promote(&release, "dev", Some("ci-run-8812")),
            &Audit::by("ci"),
        )
        .await
        .unwrap();
    assert!(new);
    let (again, new) = store
        .enqueue(
            promote(&release, "dev", Some("ci-run-8812")),
            &Audit::by("ci"),
        )
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(again, first);
    let other = store
        .create_release(release_b(), &Audit::by("ci"))
        .await
        .unwrap()
        .0
        .id;
    let reused = store
        .enqueue(
            promote(&other, "dev", Some("ci-run-8812")),
            &Audit::by("ci"),
        )
        .await
        .unwrap_err();
    assert!(
        reused
            .to_string()
            .contains("was used for another promotion"),
        "{reused}"
    );
    assert_eq!(
        store
            .promotions(&name("payments"), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

fn release_b() -> NewRelease {
    release('b')
}

pub async fn pointers_move_only_by_compare_and_swap(store: &dyn Store) {
    let release = setup(store).await;
    let (project, dev) = (name("payments"), name("dev"));
    let first = store
        .enqueue(promote(&release, "dev", None), &Audit::by("alice"))
        .await
        .unwrap()
        .0;
    store.start_next(&project, &dev, &lease()).await.unwrap();
    let stale = store
        .finish(
            first.id,
            "test",
            Outcome::Succeeded {
                expected_version: 7,
            },
            &Audit::by("gantry"),
        )
        .await
        .unwrap_err();
    assert!(stale.to_string().contains("moved meanwhile"), "{stale}");
    let environment = store
        .environments(&project)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.name == dev)
        .unwrap();
    assert_eq!(
        (environment.release, environment.version),
        (None, 0),
        "nothing changed"
    );
    assert_eq!(
        store.promotion(first.id).await.unwrap().unwrap().state,
        PromotionState::Running
    );
}

/// Leaves `dev` with one promotion running and one queued, for the backends' own tests of
/// what their databases refuse.
pub async fn one_running_one_queued(store: &dyn Store) {
    let release = setup(store).await;
    for actor in ["alice", "bob"] {
        store
            .enqueue(promote(&release, "dev", None), &Audit::by(actor))
            .await
            .unwrap();
    }
    store
        .start_next(&name("payments"), &name("dev"), &lease())
        .await
        .unwrap()
        .unwrap();
}

pub async fn holds_and_interrupted_promotions(store: &dyn Store) {
    let release = setup(store).await;
    let (project, prod) = (name("payments"), name("prod"));
    let held = store
        .set_hold(
            &project,
            &prod,
            true,
            &Audit::by("carol").because("incident 4411"),
        )
        .await
        .unwrap();
    let pause = held.hold.unwrap();
    assert_eq!(
        (pause.by.as_str(), pause.reason.as_deref()),
        ("carol", Some("incident 4411"))
    );
    assert!(
        store
            .set_hold(&project, &prod, true, &Audit::by("carol"))
            .await
            .unwrap_err()
            .to_string()
            .contains("already held")
    );
    assert!(
        store
            .set_hold(&project, &prod, false, &Audit::by("carol"))
            .await
            .unwrap()
            .hold
            .is_none()
    );

    let promotion = store
        .enqueue(promote(&release, "prod", None), &Audit::by("alice"))
        .await
        .unwrap()
        .0;
    // A promotion is its runner's while the lease lasts: no one else requeues it.
    let replica = Lease {
        holder: "replica-a".to_owned(),
        duration: std::time::Duration::from_secs(60),
    };
    let started = store
        .start_next(&project, &prod, &replica)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(started.runner.as_deref(), Some("replica-a"));
    let audit = Audit::by("gantry").because("its replica stopped");
    assert_eq!(store.requeue_expired(&audit).await.unwrap(), []);
    assert_eq!(store.renew_leases(&replica).await.unwrap(), 1);
    let elsewhere = Lease {
        holder: "replica-b".to_owned(),
        ..replica.clone()
    };
    assert_eq!(store.renew_leases(&elsewhere).await.unwrap(), 0);
    // Once it runs out (here: given up), any replica puts it back in line, first.
    let given_up = Lease {
        duration: std::time::Duration::ZERO,
        ..replica
    };
    assert_eq!(store.renew_leases(&given_up).await.unwrap(), 1);
    let requeued = store.requeue_expired(&audit).await.unwrap();
    assert_eq!(
        requeued
            .iter()
            .map(|p| (p.id, p.state, p.runner.clone()))
            .collect::<Vec<_>>(),
        [(
            promotion.id,
            PromotionState::Queued,
            Some("replica-a".to_owned())
        )]
    );
    assert_eq!(
        store
            .start_next(&project, &prod, &elsewhere)
            .await
            .unwrap()
            .unwrap()
            .id,
        promotion.id,
        "first in line again"
    );
    assert_eq!(store.renew_leases(&elsewhere).await.unwrap(), 1);
    // The replica whose lease ran out cannot finish what another runs now.
    let late = store
        .finish(
            promotion.id,
            "replica-a",
            Outcome::Failed {
                error: "late".to_owned(),
            },
            &Audit::by("gantry"),
        )
        .await
        .unwrap_err();
    assert!(
        late.to_string().contains("is run by replica-b now"),
        "{late}"
    );
}

pub async fn the_ledger_chains_every_change(store: &dyn Store) {
    let release = setup(store).await;
    let project = name("payments");
    let promotion = store
        .enqueue(
            promote(&release, "dev", None),
            &Audit::by("alice").because("ship it"),
        )
        .await
        .unwrap()
        .0;
    store
        .start_next(&project, &name("dev"), &lease())
        .await
        .unwrap();
    store
        .finish(
            promotion.id,
            "test",
            Outcome::Succeeded {
                expected_version: 0,
            },
            &Audit::by("gantry"),
        )
        .await
        .unwrap();

    let entries = store.ledger_entries(0, 100).await.unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "release.created",
            "promotion.queued",
            "promotion.running",
            "promotion.succeeded"
        ]
    );
    assert_eq!(entries[0].previous, hex::encode(GENESIS));
    for pair in entries.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence + 1);
        assert_eq!(pair[1].previous, hex::encode(pair[0].hash()));
    }
    assert_eq!(entries[1].reason.as_deref(), Some("ship it"));
    assert_eq!(entries[1].actor, "alice");
    let succeeded = &entries[3];
    assert_eq!(succeeded.environment.as_deref(), Some("dev"));
    assert_eq!(
        succeeded.release.as_deref(),
        Some(release.digest().as_str())
    );
    assert_eq!(
        succeeded.digests["api"],
        format!("sha256:{}", "a".repeat(64))
    );
    assert_eq!(store.ledger_entries(2, 1).await.unwrap()[0].sequence, 3);
    gantry_store::ledger::export::verify_chain(&entries).unwrap();
}

pub async fn tokens_are_kept_by_hash(store: &dyn Store) {
    assert_eq!(store.token_count().await.unwrap(), 0);
    let admin: Principal = "admin".parse().unwrap();
    let ci: Principal = "service:ci".parse().unwrap();
    store
        .create_token(
            "admin",
            &admin,
            &"ab".repeat(32),
            None,
            &Audit::by("gantry"),
        )
        .await
        .unwrap();
    let found = store
        .token_by_hash(&"ab".repeat(32))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.name.as_str(), &found.principal), ("admin", &admin));
    assert_eq!(store.token_by_hash(&"cd".repeat(32)).await.unwrap(), None);
    let twice = store
        .create_token("admin", &ci, &"ef".repeat(32), None, &Audit::by("gantry"))
        .await
        .unwrap_err();
    assert!(twice.to_string().contains("exists already"), "{twice}");
    assert_eq!(store.token_count().await.unwrap(), 1);
    let entries = store.ledger_entries(0, 10).await.unwrap();
    assert_eq!(entries.last().unwrap().action, "token.created");
    assert!(
        !entries.iter().any(|e| e
            .canonical_bytes()
            .windows(64)
            .any(|w| w == "ab".repeat(32).as_bytes())),
        "no hash in the ledger"
    );

    // A token that has expired, or was revoked, authenticates nobody.
    store
        .create_token(
            "ci",
            &ci,
            &"cd".repeat(32),
            Some(std::time::Duration::from_millis(300)),
            &Audit::by("admin"),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .token_by_hash(&"cd".repeat(32))
            .await
            .unwrap()
            .map(|token| token.principal),
        Some(ci.clone())
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(store.token_by_hash(&"cd".repeat(32)).await.unwrap(), None);
    store
        .revoke_token("admin", &Audit::by("security"))
        .await
        .unwrap();
    assert_eq!(store.token_by_hash(&"ab".repeat(32)).await.unwrap(), None);
    let again = store
        .revoke_token("admin", &Audit::by("security"))
        .await
        .unwrap_err();
    assert!(again.to_string().contains("was revoked at"), "{again}");
    assert!(matches!(
        store.revoke_token("nobody", &Audit::by("security")).await,
        Err(StoreError::NotFound(_))
    ));
    let listed = store.tokens().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|t| (
                t.name.as_str(),
                t.expires_at.is_some(),
                t.revoked_by.as_deref()
            ))
            .collect::<Vec<_>>(),
        [("admin", false, Some("security")), ("ci", true, None)]
    );
    let last = store.ledger_entries(0, 100).await.unwrap().pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor.as_str()),
        ("token.revoked", "security")
    );
}

pub async fn grants_are_kept_once_and_revoked(store: &dyn Store) {
    let alice: Principal = "alice".parse().unwrap();
    let ci: Principal = "service:ci".parse().unwrap();
    let grants = [
        Grant {
            principal: alice.clone(),
            role: Role::Approver,
            scope: Scope::Environment(name("payments"), name("prod")),
        },
        Grant {
            principal: alice.clone(),
            role: Role::Viewer,
            scope: Scope::Server,
        },
        Grant {
            principal: ci.clone(),
            role: Role::Promoter,
            scope: Scope::Project(name("payments")),
        },
    ];
    for grant in &grants {
        let (kept, created) = store.grant(grant, &Audit::by("admin")).await.unwrap();
        assert!(created);
        assert_eq!((&kept.grant, kept.granted_by.as_str()), (grant, "admin"));
    }
    let before = store.ledger_entries(0, usize::MAX).await.unwrap().len();
    let (again, created) = store.grant(&grants[0], &Audit::by("root")).await.unwrap();
    assert!(!created);
    assert_eq!(again.granted_by, "admin", "the earlier grant stands");
    assert_eq!(
        store.ledger_entries(0, usize::MAX).await.unwrap().len(),
        before,
        "granting twice records nothing"
    );
    let of_alice = store.grants(Some(&alice)).await.unwrap();
    assert_eq!(
        of_alice.iter().map(|g| g.grant.clone()).collect::<Vec<_>>(),
        [grants[1].clone(), grants[0].clone()],
        "ordered by principal, then scope (the server first)"
    );
    assert_eq!(of_alice[0].granted_by, "admin");
    assert_eq!(store.grants(None).await.unwrap().len(), 3);

    store
        .revoke_grant(&grants[0], &Audit::by("security"))
        .await
        .unwrap();
    let last = store
        .ledger_entries(0, usize::MAX)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor.as_str()),
        ("access.revoked", "security")
    );
    assert_eq!(last.detail["environment"], "prod");
    assert!(matches!(
        store.revoke_grant(&grants[0], &Audit::by("security")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.grants(Some(&alice)).await.unwrap().len(), 1);
    assert_eq!(store.grants(Some(&ci)).await.unwrap().len(), 1);
}

pub async fn gates_keep_evidence_approvals_decisions_and_stops(store: &dyn Store) {
    let release = setup(store).await;
    let length = |entries: usize| entries;
    let before = length(store.ledger_entries(0, usize::MAX).await.unwrap().len());
    let digest: Digest = format!("sha256:{}", "e".repeat(64)).parse().unwrap();
    let evidence = NewEvidence {
        project: name("payments"),
        release: release.clone(),
        component: Some(name("api")),
        kind: "junit".to_owned(),
        digest: digest.clone(),
        raw: b"<testsuite tests='1'/>".to_vec(),
        summary: r#"{"family":"tests","total":1,"failed":0,"skipped":0,"flaky":0}"#.to_owned(),
        source: "api".to_owned(),
    };
    let (kept, created) = store
        .add_evidence(evidence.clone(), &Audit::by("ci"))
        .await
        .unwrap();
    assert!(created);
    assert_eq!((kept.size, kept.kind.as_str()), (22, "junit"));
    let (again, created) = store
        .add_evidence(evidence.clone(), &Audit::by("ci"))
        .await
        .unwrap();
    assert!(
        !created,
        "the same bytes for the same release are kept once"
    );
    assert_eq!(again.id, kept.id);
    let listed = store.evidence(&name("payments"), &release).await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&kept));
    assert_eq!(
        store
            .evidence_bytes(&name("payments"), &digest)
            .await
            .unwrap()
            .unwrap(),
        evidence.raw
    );
    let unknown = ReleaseId::from_digest(format!("sha256:{}", "9".repeat(64)).parse().unwrap());
    let error = store
        .add_evidence(
            NewEvidence {
                release: unknown,
                ..evidence
            },
            &Audit::by("ci"),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error}");

    for (user, approve) in [("alice", true), ("bob", false)] {
        let approval = store
            .add_approval(
                NewApproval {
                    project: name("payments"),
                    release: release.clone(),
                    environment: name("prod"),
                    approve,
                    comment: (!approve).then(|| "wait for the fix".to_owned()),
                },
                &Audit::by(user),
            )
            .await
            .unwrap();
        assert_eq!((approval.user.as_str(), approval.approve), (user, approve));
    }
    let approvals = store
        .approvals(&name("payments"), &release, &name("prod"))
        .await
        .unwrap();
    assert_eq!(approvals.len(), 2);
    assert_eq!(approvals[1].comment.as_deref(), Some("wait for the fix"));
    assert!(
        store
            .approvals(&name("payments"), &release, &name("dev"))
            .await
            .unwrap()
            .is_empty()
    );

    let policy: Digest = format!("sha256:{}", "b".repeat(64)).parse().unwrap();
    let decision = store
        .record_decision(
            NewDecision {
                project: name("payments"),
                release: release.clone(),
                environment: name("prod"),
                promotion: None,
                verdict: Verdict::Pending,
                detail: r#"{"gates":[{"gate":"approvals","state":"pending","reason":"1 more approval"}]}"#.to_owned(),
                policies: vec![("release.rego".to_owned(), policy.clone())],
                evidence: vec![digest.clone()],
            },
            &Audit::by("gantry"),
        )
        .await
        .unwrap();
    assert_eq!(decision.verdict, Verdict::Pending);
    assert_eq!(decision.policies, [("release.rego".to_owned(), policy)]);
    assert_eq!(decision.evidence, [digest]);
    let decisions = store
        .decisions(&name("payments"), &release, Some(&name("prod")), 10)
        .await
        .unwrap();
    assert_eq!(decisions, [decision]);

    store
        .set_stop(
            &name("payments"),
            None,
            true,
            &Audit::by("sre").because("incident 4711"),
        )
        .await
        .unwrap();
    let error = store
        .set_stop(
            &name("payments"),
            Some(&name("prod")),
            true,
            &Audit::by("sre"),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("needs a reason"), "{error}");
    let stops = store.stops(&name("payments")).await.unwrap();
    assert_eq!(stops.len(), 1);
    assert_eq!(
        (stops[0].environment.as_ref(), stops[0].reason.as_str()),
        (None, "incident 4711")
    );
    assert!(
        store
            .set_stop(
                &name("payments"),
                None,
                true,
                &Audit::by("sre").because("again")
            )
            .await
            .unwrap_err()
            .to_string()
            .contains("already stopped")
    );
    store
        .set_stop(&name("payments"), None, false, &Audit::by("sre"))
        .await
        .unwrap();
    assert!(store.stops(&name("payments")).await.unwrap().is_empty());

    let mut waiting = promote(&release, "prod", None);
    waiting.state = PromotionState::Waiting;
    let (promotion, _) = store.enqueue(waiting, &Audit::by("alice")).await.unwrap();
    assert_eq!(promotion.state, PromotionState::Waiting);
    assert!(
        store
            .start_next(&name("payments"), &name("prod"), &lease())
            .await
            .unwrap()
            .is_none(),
        "a waiting promotion does not run"
    );
    assert_eq!(
        store
            .promotions_in_state(&name("payments"), PromotionState::Waiting)
            .await
            .unwrap()
            .len(),
        1
    );
    let queued = store
        .advance(
            promotion.id,
            PromotionState::Queued,
            None,
            &Audit::by("gantry"),
        )
        .await
        .unwrap();
    assert_eq!(queued.state, PromotionState::Queued);
    let running = store
        .start_next(&name("payments"), &name("prod"), &lease())
        .await
        .unwrap()
        .unwrap();
    let rejected = store
        .advance(
            running.id,
            PromotionState::Rejected,
            Some("tests: 2 failed"),
            &Audit::by("gantry"),
        )
        .await
        .unwrap();
    assert_eq!(
        (rejected.state, rejected.error.as_deref()),
        (PromotionState::Rejected, Some("tests: 2 failed"))
    );
    assert!(
        store
            .advance(
                rejected.id,
                PromotionState::Queued,
                None,
                &Audit::by("gantry")
            )
            .await
            .is_err(),
        "a rejection is final"
    );
    store
        .record_refusal(
            NewRefusal {
                project: name("payments"),
                release: Some(release.clone()),
                what: "signature".to_owned(),
                reason: "cosign signature does not verify with any trusted key (tried ci)"
                    .to_owned(),
                detail: serde_json::json!({"manifest": "sha256:00"}),
            },
            &Audit::by("gantry"),
        )
        .await
        .unwrap();
    let entries = store
        .ledger_entries(before as u64, usize::MAX)
        .await
        .unwrap();
    let refusal = entries.last().unwrap();
    assert_eq!(
        (
            refusal.release.as_deref(),
            refusal.reason.as_deref(),
            &refusal.detail["manifest"]
        ),
        (
            Some(release.digest().as_str()),
            Some("cosign signature does not verify with any trusted key (tried ci)"),
            &serde_json::json!("sha256:00")
        )
    );
    let actions: Vec<String> = store
        .ledger_entries(before as u64, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "evidence.added",
            "approval.approved",
            "approval.rejected",
            "decision.pending",
            "line.stopped",
            "line.resumed",
            "promotion.waiting",
            "promotion.queued",
            "promotion.running",
            "promotion.rejected",
            "signature.refused"
        ]
    );
}

/// Runs the queue of an environment until it is empty or another runner holds it,
/// finishing each promotion as a runner would.
async fn run_queue(store: &dyn Store, project: &Name, environment: &Name) {
    while let Some(running) = store
        .start_next(project, environment, &lease())
        .await
        .unwrap()
    {
        // Only the runner of the one running promotion moves the pointer, so the version
        // read now is still the version at `finish`.
        let version = store
            .environments(project)
            .await
            .unwrap()
            .into_iter()
            .find(|e| &e.name == environment)
            .map(|e| e.version)
            .unwrap();
        store
            .finish(
                running.id,
                "test",
                Outcome::Succeeded {
                    expected_version: version,
                },
                &Audit::by("runner"),
            )
            .await
            .unwrap();
    }
}

/// Two replicas on one database, each queueing and running 50 promotions at the same
/// time: every call succeeds, the ledger stays one verifiable chain, and no environment
/// ever has two promotions running.
pub async fn replicas_keep_one_chain(replicas: [Arc<dyn Store>; 2]) {
    const ROUNDS: usize = 50;
    let project = name("payments");
    let releases = [
        setup(&*replicas[0]).await,
        replicas[1]
            .create_release(release_b(), &Audit::by("ci"))
            .await
            .unwrap()
            .0
            .id,
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for (replica, store) in replicas.iter().enumerate() {
        let (store, releases, project) = (Arc::clone(store), releases.clone(), project.clone());
        tasks.spawn(async move {
            for round in 0..ROUNDS {
                let environment = name(["dev", "prod"][round % 2]);
                let release = &releases[(round / 2 + replica) % 2];
                store
                    .enqueue(
                        promote(release, environment.as_str(), None),
                        &Audit::by(format!("replica-{replica}")),
                    )
                    .await
                    .unwrap();
                run_queue(&*store, &project, &environment).await;
            }
        });
    }
    while let Some(finished) = tasks.join_next().await {
        finished.unwrap();
    }
    for environment in ["dev", "prod"] {
        run_queue(&*replicas[0], &project, &name(environment)).await;
    }

    for state in [PromotionState::Queued, PromotionState::Running] {
        assert_eq!(
            store_promotions_in_state(&*replicas[1], state).await,
            0,
            "none left {state}"
        );
    }
    let entries = replicas[1].ledger_entries(0, usize::MAX).await.unwrap();
    gantry_store::ledger::export::verify_chain(&entries).unwrap();
    assert!(
        entries
            .iter()
            .zip(1..)
            .all(|(entry, sequence)| entry.sequence == sequence),
        "one chain, no gaps"
    );
    let queued_by = |actor: &str| {
        entries
            .iter()
            .filter(|e| e.action == "promotion.queued" && e.actor == actor)
            .count()
    };
    assert_eq!(
        (queued_by("replica-0"), queued_by("replica-1")),
        (ROUNDS, ROUNDS)
    );
    // Replay the ledger: a promotion starts only where none is running.
    let mut running: BTreeMap<String, u64> = BTreeMap::new();
    for entry in &entries {
        let (Some(environment), Some(promotion)) =
            (&entry.environment, entry.detail["promotion"].as_u64())
        else {
            continue;
        };
        if entry.action == "promotion.running" {
            if let Some(other) = running.insert(environment.clone(), promotion) {
                panic!("promotions {other} and {promotion} ran at once in {environment}");
            }
        } else if running.get(environment) == Some(&promotion) {
            running.remove(environment);
        }
    }
    assert!(running.is_empty(), "still running: {running:?}");
    let succeeded = entries
        .iter()
        .filter(|e| e.action == "promotion.succeeded")
        .count();
    assert!(
        succeeded > 2,
        "the pointers moved back and forth ({succeeded} times)"
    );
}

async fn store_promotions_in_state(store: &dyn Store, state: PromotionState) -> usize {
    store
        .promotions_in_state(&name("payments"), state)
        .await
        .unwrap()
        .len()
}

/// Replays the whole ledger and names every place the live tables disagree with it.
pub async fn mismatches(store: &dyn Store) -> Vec<String> {
    let snapshot = store.live_state().await.unwrap();
    let mut replay = Replay::new();
    for entry in store
        .ledger_entries(0, usize::try_from(snapshot.ledger_size).unwrap())
        .await
        .unwrap()
    {
        replay.apply(&entry).unwrap();
    }
    assert_eq!(replay.entries(), snapshot.ledger_size);
    compare(replay.state(), &snapshot.state)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Every change to pointers, holds, stopped lines, grants and tokens is one ledger
/// entry that says enough to re-derive it: a replay of the ledger gives the live state.
/// Returns the release prod holds.
pub async fn the_ledger_proves_the_live_state(store: &dyn Store) -> ReleaseId {
    let release = setup(store).await;
    let (project, prod) = (name("payments"), name("prod"));
    assert_eq!(mismatches(store).await, Vec::<String>::new());
    let promotion = store
        .enqueue(promote(&release, "prod", None), &Audit::by("alice"))
        .await
        .unwrap()
        .0;
    store.start_next(&project, &prod, &lease()).await.unwrap();
    store
        .finish(
            promotion.id,
            "test",
            Outcome::Succeeded {
                expected_version: 0,
            },
            &Audit::by("gantry"),
        )
        .await
        .unwrap();
    // A promotion that waited for its gates first: its request is the first entry.
    let other = store
        .create_release(release_b(), &Audit::by("ci"))
        .await
        .unwrap()
        .0
        .id;
    let waiting = store
        .enqueue(
            NewPromotion {
                state: PromotionState::Waiting,
                ..promote(&other, "dev", None)
            },
            &Audit::by("bob"),
        )
        .await
        .unwrap()
        .0;
    store
        .advance(
            waiting.id,
            PromotionState::Queued,
            None,
            &Audit::by("gantry"),
        )
        .await
        .unwrap();
    store
        .start_next(&project, &name("dev"), &lease())
        .await
        .unwrap();
    store
        .finish(
            waiting.id,
            "test",
            Outcome::Succeeded {
                expected_version: 0,
            },
            &Audit::by("gantry"),
        )
        .await
        .unwrap();
    store
        .set_hold(
            &project,
            &prod,
            true,
            &Audit::by("carol").because("incident 12"),
        )
        .await
        .unwrap();
    store
        .set_stop(&project, None, true, &Audit::by("carol").because("freeze"))
        .await
        .unwrap();
    store
        .set_stop(
            &project,
            Some(&prod),
            true,
            &Audit::by("carol").because("audit"),
        )
        .await
        .unwrap();
    store
        .set_stop(&project, Some(&prod), false, &Audit::by("carol"))
        .await
        .unwrap();
    let ci: Principal = "service:ci".parse().unwrap();
    let admin: Principal = "admin".parse().unwrap();
    store
        .create_token(
            "admin",
            &admin,
            &"ab".repeat(32),
            None,
            &Audit::by("gantry"),
        )
        .await
        .unwrap();
    store
        .create_token(
            "ci",
            &ci,
            &"cd".repeat(32),
            Some(std::time::Duration::from_secs(3600)),
            &Audit::by("admin"),
        )
        .await
        .unwrap();
    store
        .create_token("old-ci", &ci, &"ef".repeat(32), None, &Audit::by("admin"))
        .await
        .unwrap();
    store
        .revoke_token("old-ci", &Audit::by("admin"))
        .await
        .unwrap();
    for (principal, role, scope) in [
        (&admin, Role::Admin, Scope::Server),
        (&ci, Role::Promoter, Scope::Project(project.clone())),
        (
            &ci,
            Role::Promoter,
            Scope::Environment(project.clone(), prod.clone()),
        ),
    ] {
        let grant = Grant {
            principal: principal.clone(),
            role,
            scope,
        };
        store.grant(&grant, &Audit::by("admin")).await.unwrap();
    }
    store
        .revoke_grant(
            &Grant {
                principal: ci.clone(),
                role: Role::Promoter,
                scope: Scope::Environment(project.clone(), prod.clone()),
            },
            &Audit::by("admin"),
        )
        .await
        .unwrap();

    assert_eq!(mismatches(store).await, Vec::<String>::new());
    let snapshot = store.live_state().await.unwrap();
    let state = &snapshot.state;
    let prod_state = &state.environments[&("payments".to_owned(), "prod".to_owned())];
    assert_eq!(
        (
            prod_state.release.as_deref(),
            prod_state.version,
            prod_state.moved_by.as_deref()
        ),
        (Some(release.digest().as_str()), 1, Some("alice"))
    );
    assert_eq!(
        state.environments[&("payments".to_owned(), "dev".to_owned())]
            .moved_by
            .as_deref(),
        Some("bob")
    );
    assert_eq!(
        state.stops.keys().collect::<Vec<_>>(),
        [&("payments".to_owned(), String::new())]
    );
    assert_eq!(state.grants.len(), 2);
    assert_eq!(state.tokens["old-ci"].revoked_by.as_deref(), Some("admin"));
    assert!(matches!(&state.tokens["ci"].expires_at, Some(Some(_))));
    release
}

/// Nobody removes the last principal who can administer the server (an admin grant over
/// the server and a working token): neither that grant nor that token goes, and two
/// admins revoking each other at once cannot both win. A refusal changes nothing.
pub async fn the_last_server_admin_stays(store: &dyn Store) {
    let admin = |principal: &Principal| Grant {
        principal: principal.clone(),
        role: Role::Admin,
        scope: Scope::Server,
    };
    let (alice, bob, ci): (Principal, Principal, Principal) = (
        "alice".parse().unwrap(),
        "bob".parse().unwrap(),
        "service:ci".parse().unwrap(),
    );
    let by = Audit::by("test");
    for (token, principal, role) in [("alice", &alice, Role::Admin), ("ci", &ci, Role::Promoter)] {
        store
            .create_token(token, principal, &token.repeat(16), None, &by)
            .await
            .unwrap();
        let grant = Grant {
            role,
            ..admin(principal)
        };
        store.grant(&grant, &by).await.unwrap();
    }
    let last_admin = |result: Result<(), StoreError>| match result {
        Err(StoreError::Conflict(message)) => {
            assert!(
                message.contains("would leave nobody who can administer the server")
                    && message.contains("gantry access grant admin --to NAME")
                    && message.contains("gantry admin recover"),
                "{message}"
            );
        }
        other => panic!("expected the last admin to stay, got {other:?}"),
    };
    let ledger = store.ledger_entries(0, usize::MAX).await.unwrap().len();
    last_admin(
        store
            .revoke_grant(&admin(&alice), &Audit::by("alice"))
            .await,
    );
    last_admin(store.revoke_token("alice", &Audit::by("alice")).await);
    assert_eq!(
        store.ledger_entries(0, usize::MAX).await.unwrap().len(),
        ledger,
        "a refusal records nothing"
    );
    assert!(
        store
            .token_by_hash(&"alice".repeat(16))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.grants(Some(&alice)).await.unwrap().len(), 1);

    // Other principals' grants and tokens come and go as before.
    store.revoke_token("ci", &Audit::by("alice")).await.unwrap();
    store
        .revoke_grant(
            &Grant {
                role: Role::Promoter,
                ..admin(&ci)
            },
            &Audit::by("alice"),
        )
        .await
        .unwrap();

    // An admin without a working token cannot administer anything, so does not count.
    store.grant(&admin(&bob), &by).await.unwrap();
    store
        .create_token(
            "bob-short",
            &bob,
            &"b0".repeat(32),
            Some(std::time::Duration::from_millis(1)),
            &by,
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    last_admin(
        store
            .revoke_grant(&admin(&alice), &Audit::by("alice"))
            .await,
    );

    // With a second working admin, either may go, but not both: two admins revoking each
    // other at once, one wins and the other is refused.
    store
        .create_token("bob", &bob, &"b1".repeat(32), None, &by)
        .await
        .unwrap();
    let (of_bob, of_alice) = (admin(&bob), admin(&alice));
    let (by_alice, by_bob) = (Audit::by("alice"), Audit::by("bob"));
    let (first, second) = tokio::join!(
        store.revoke_grant(&of_bob, &by_alice),
        store.revoke_grant(&of_alice, &by_bob),
    );
    assert!(
        first.is_ok() != second.is_ok(),
        "exactly one wins: {first:?} {second:?}"
    );
    last_admin(if first.is_err() { first } else { second });
    let admins: Vec<Principal> = store
        .grants(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|g| g.grant.role == Role::Admin)
        .map(|g| g.grant.principal)
        .collect();
    assert_eq!(admins.len(), 1, "{admins:?}");
}
