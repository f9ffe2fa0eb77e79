//! Gates in the engine: gathering the facts a decision needs, recording every decision,
//! evidence intake, approvals, stopped lines, and waking waiting promotions when a gate
//! may have changed (new evidence or approvals, a resumed line, a soak or freeze that
//! ends) without polling every release.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;
use std::time::Duration;

use gantry_core::{Action, Name, Principal, Project, PromotionState, ReleaseId, Scope, Verdict};
use gantry_evidence::{Kind, Summary};
use gantry_policy::{
    ApprovalFact, Decision, EvidenceFact, Facts, Gates, ReleaseFacts, StopFact, UpstreamFact,
};
use gantry_store::store::{
    Audit, DecisionRecord, EvidenceRecord, NewApproval, NewDecision, NewEvidence, NewRefusal,
    PromotionKind, PromotionRecord, ReleaseRecord,
};
use jiff::Timestamp;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::engine::{ENGINE, Engine, EngineError, Event};

/// Evidence handed in, kept, and what it says.
#[derive(Debug, Clone)]
pub struct AddedEvidence {
    pub record: EvidenceRecord,
    pub summary: Summary,
    /// `false` when the same bytes were handed in before for the same release.
    pub created: bool,
}

/// A decision looked at now, not recorded: what `gantry why` shows.
#[derive(Debug, Clone)]
pub struct Explained {
    pub decision: Decision,
    /// The release's full id.
    pub release: ReleaseId,
    /// The waiting promotion whose requester, emergency flag and kind the gates saw.
    pub promotion: Option<i64>,
    /// When the gates were looked at.
    pub at: Timestamp,
}

/// No gates: nothing to evaluate, nothing to record, the release may go.
fn allow_all() -> Decision {
    Decision {
        verdict: Verdict::Allow,
        gates: Vec::new(),
        warnings: Vec::new(),
        policies: Vec::new(),
        evidence: Vec::new(),
        wake_at: None,
        emergency: false,
        evidence_use: Vec::new(),
    }
}

fn timestamp(text: &str) -> Timestamp {
    text.parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

/// What an environment asks where its project file configures no gates: nothing but
/// what holds everywhere (a stopped line).
static NO_GATES: LazyLock<Gates> = LazyLock::new(Gates::default);

/// Who asks for a promotion and how, as the gates see it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ask<'a> {
    /// `None` when automation proposes it.
    pub(crate) requested_by: Option<&'a str>,
    pub(crate) emergency: bool,
    /// It puts back a release the environment held before, which passes a stop.
    pub(crate) rollback: bool,
    /// Only an explanation: look, keep nothing, record nothing.
    pub(crate) explaining: bool,
}

impl<'a> Ask<'a> {
    /// How a stored promotion asks.
    pub(crate) fn of(promotion: &'a PromotionRecord) -> Ask<'a> {
        Ask {
            requested_by: requester(promotion),
            emergency: promotion.emergency,
            rollback: promotion.kind == PromotionKind::Rollback,
            explaining: false,
        }
    }
}

impl Engine {
    /// The gates the project file configures for `environment` (perhaps none).
    pub(crate) fn gates(&self, project: &Name, environment: &Name) -> &Gates {
        self.inner
            .governance
            .get(project)
            .and_then(|g| g.gates.get(environment.as_str()))
            .unwrap_or(&NO_GATES)
    }

    /// Everything the gates of `environment` read about `release`, now.
    async fn facts(
        &self,
        project: &Project,
        environment: &Name,
        release: &ReleaseRecord,
        gates: &Gates,
        ask: Ask<'_>,
        stops: Vec<StopFact>,
    ) -> Result<Facts, EngineError> {
        let store = &self.inner.store;
        let signers = self
            .signers(project, release, gates, !ask.explaining)
            .await?;
        let mut evidence = Vec::new();
        // Whether each supplier may promote here, asked once per decision.
        let mut may_promote: BTreeMap<String, bool> = BTreeMap::new();
        for record in store.evidence(project.name(), &release.id).await? {
            let (Ok(kind), Ok(summary)) = (
                record.kind.parse::<Kind>(),
                serde_json::from_str::<Summary>(&record.summary),
            ) else {
                tracing::warn!(
                    evidence = record.id,
                    "stored evidence does not read back; ignored"
                );
                continue;
            };
            let supplier_may_promote = if let Some(allowed) = may_promote.get(&record.added_by) {
                *allowed
            } else {
                let allowed = self
                    .may_promote(project.name(), environment, &record.added_by)
                    .await?;
                may_promote.insert(record.added_by.clone(), allowed);
                allowed
            };
            let signer = self
                .evidence_signer(project.name(), &record, &kind, &signers)
                .await?;
            evidence.push(EvidenceFact {
                digest: record.digest,
                kind,
                component: record.component.map(|c| c.to_string()),
                summary,
                added_at: timestamp(&record.added_at),
                supplied_by: record.added_by,
                supplier_may_promote,
                signer,
            });
        }
        // Each person's latest word counts.
        let mut latest: BTreeMap<String, ApprovalFact> = BTreeMap::new();
        for approval in store
            .approvals(project.name(), &release.id, environment)
            .await?
        {
            latest.insert(
                approval.user.clone(),
                ApprovalFact {
                    user: approval.user,
                    approve: approval.approve,
                    comment: approval.comment,
                    at: timestamp(&approval.at),
                },
            );
        }
        let arrivals = store.arrivals(project.name(), &release.id).await?;
        let upstreams = project
            .environment(environment.as_str())
            .map(|e| e.upstreams.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|upstream| UpstreamFact {
                reached_at: arrivals.get(&upstream).map(|t| timestamp(t)),
                environment: upstream.to_string(),
            })
            .collect();
        let governance = self.inner.governance.get(project.name());
        let metrics = match governance.and_then(|g| g.prometheus.as_deref()) {
            Some(base) if !gates.metrics.is_empty() => {
                self.inner.prometheus.measure(base, &gates.metrics).await
            }
            _ => BTreeMap::new(),
        };
        Ok(Facts {
            project: project.name().to_string(),
            environment: environment.to_string(),
            release: ReleaseFacts {
                id: release.id.digest().clone(),
                alias: release.alias.clone(),
                created_by: release.created_by.clone(),
                created_at: timestamp(&release.created_at),
                labels: release.labels.clone(),
                components: release
                    .artifacts
                    .iter()
                    .map(|a| (a.component.to_string(), a.digest.clone()))
                    .collect(),
            },
            requested_by: ask.requested_by.map(str::to_owned),
            emergency: ask.emergency,
            rollback: ask.rollback,
            evidence,
            signers,
            approvals: latest.into_values().collect(),
            groups: governance.map(|g| g.groups.clone()).unwrap_or_default(),
            upstreams,
            stops,
            metrics,
            now: Timestamp::now(),
        })
    }

    /// Whether `principal` (as evidence records it) may promote into `environment` now:
    /// the default rule for whose evidence counts there.
    async fn may_promote(
        &self,
        project: &Name,
        environment: &Name,
        principal: &str,
    ) -> Result<bool, EngineError> {
        let Ok(principal) = principal.parse::<Principal>() else {
            return Ok(false);
        };
        let grants: Vec<_> = self
            .inner
            .store
            .grants(Some(&principal))
            .await?
            .into_iter()
            .map(|g| g.grant)
            .collect();
        Ok(gantry_core::allowed(
            &grants,
            Action::Promote,
            &Scope::Environment(project.clone(), environment.clone()),
        ))
    }

    /// The stops in force for `environment`: the project's and its own.
    async fn stops(
        &self,
        project: &Name,
        environment: &Name,
    ) -> Result<Vec<StopFact>, EngineError> {
        Ok(self
            .inner
            .store
            .stops(project)
            .await?
            .into_iter()
            .filter(|s| s.environment.as_ref().is_none_or(|e| e == environment))
            .map(|s| StopFact {
                environment: s.environment.map(|e| e.to_string()),
                reason: s.reason,
                by: s.by,
                since: timestamp(&s.since),
            })
            .collect())
    }

    /// Evaluates the gates of `environment` for `release`. A stopped line holds every
    /// environment, gated or not; with no gates and no stop the answer is "allow", with
    /// no gate outcomes, and nothing is evaluated. A decision with gate outcomes is one
    /// to record.
    pub(crate) async fn evaluate(
        &self,
        project: &Project,
        environment: &Name,
        release: &ReleaseRecord,
        ask: Ask<'_>,
    ) -> Result<Decision, EngineError> {
        let gates = self.gates(project.name(), environment);
        let stops = self.stops(project.name(), environment).await?;
        if gates.is_empty() && stops.is_empty() {
            return Ok(allow_all());
        }
        let facts = self
            .facts(project, environment, release, gates, ask, stops)
            .await?;
        let decision = gantry_policy::evaluate(gates, &facts);
        if let Some(at) = decision.wake_at {
            self.wake_at(project.name(), at);
        }
        Ok(decision)
    }

    /// Evaluates the gates a promotion must pass, as its requester, its emergency flag
    /// and its kind make them.
    pub(crate) async fn evaluate_promotion(
        &self,
        project: &Project,
        promotion: &PromotionRecord,
        release: &ReleaseRecord,
    ) -> Result<Decision, EngineError> {
        self.evaluate(project, &promotion.environment, release, Ask::of(promotion))
            .await
    }

    /// Records a decision in the store and the ledger.
    pub(crate) async fn record(
        &self,
        project: &Project,
        environment: &Name,
        release: &ReleaseRecord,
        promotion: Option<i64>,
        decision: &Decision,
    ) -> Result<DecisionRecord, EngineError> {
        let gates: Vec<serde_json::Value> = decision
            .gates
            .iter()
            .map(|g| json!({"gate": g.gate, "state": g.state.as_str(), "reason": g.reason}))
            .collect();
        let detail = json!({
            "gates": gates,
            "warnings": decision.warnings,
            "needs": decision.needs(),
            "wake_at": decision.wake_at.map(|t| t.to_string()),
            "emergency": decision.emergency,
        });
        let record = self
            .inner
            .store
            .record_decision(
                NewDecision {
                    project: project.name().clone(),
                    release: release.id.clone(),
                    environment: environment.clone(),
                    promotion,
                    verdict: decision.verdict,
                    detail: detail.to_string(),
                    policies: decision.policies.clone(),
                    evidence: decision.evidence.clone(),
                },
                &Audit::by(ENGINE),
            )
            .await?;
        if let Some(id) = promotion {
            self.inner
                .last_decisions
                .lock()
                .expect("lock")
                .insert(id, signature(decision));
        }
        Ok(record)
    }

    /// What a waiting promotion still needs, looked at now ("1 more approval from
    /// group release-managers; soak 12 min left"): `None` unless it waits. A view for
    /// `gantry status`, not recorded; the decisions that move or hold a promotion are.
    pub async fn still_needs(
        &self,
        promotion: &PromotionRecord,
    ) -> Result<Option<String>, EngineError> {
        if promotion.state != PromotionState::Waiting {
            return Ok(None);
        }
        let project = self.project(promotion.project.as_str())?;
        let release = self
            .release(project, promotion.release.digest().as_str())
            .await?;
        let decision = self
            .evaluate_promotion(project, promotion, &release)
            .await?;
        Ok(Some(decision.needs()))
    }

    /// Evaluates without recording: what `gantry why` shows. Explaining is a read, so
    /// it appends nothing to the ledger; the decisions the engine acts on (a promotion
    /// waits, is queued, is rejected, runs) are recorded where it acts. When a
    /// promotion of the release into the environment is waiting, the gates see it as
    /// that promotion's requester (and emergency, and kind) would; otherwise as a
    /// promotion nobody has asked for yet. Whoever asks for the explanation is never
    /// taken for the requester.
    pub async fn explain(
        &self,
        project: &str,
        release: &str,
        environment: &str,
    ) -> Result<Explained, EngineError> {
        let project = self.project(project)?;
        let target = Self::environment_of(project, environment)?;
        let record = self.release(project, release).await?;
        let waiting = self
            .inner
            .store
            .promotions_in_state(project.name(), PromotionState::Waiting)
            .await?;
        let pending = waiting
            .iter()
            .find(|p| p.release == record.id && p.environment == target.name);
        let decision = self
            .evaluate(
                project,
                &target.name,
                &record,
                Ask {
                    explaining: true,
                    ..pending.map(Ask::of).unwrap_or_default()
                },
            )
            .await?;
        Ok(Explained {
            decision,
            release: record.id,
            promotion: pending.map(|p| p.id),
            at: Timestamp::now(),
        })
    }

    /// Keeps evidence for a release (or one component of it) after parsing it and
    /// checking that it is about the release's digests; waiting promotions of the
    /// project look at their gates again. Evidence refused for what it is (an unknown
    /// kind or component, a malformed report, another subject) changes nothing but the
    /// ledger, which records the refusal.
    pub async fn add_evidence(
        &self,
        project: &str,
        release: &str,
        component: Option<&str>,
        kind: &str,
        bytes: Vec<u8>,
        actor: &str,
    ) -> Result<AddedEvidence, EngineError> {
        let project = self.project(project)?;
        let record = self.release(project, release).await?;
        let digest = sha256(&bytes);
        let size = bytes.len();
        let result = self
            .check_and_keep(project, &record, component, kind, bytes, actor)
            .await;
        if let Err(EngineError::InvalidField { field, reason }) = &result {
            self.record_refusal(
                project,
                &record,
                "evidence",
                format!("{field}: {reason}"),
                json!({"digest": digest.as_str(), "size": size, "kind": kind, "component": component}),
                actor,
            )
            .await?;
        }
        result
    }

    /// Records in the ledger that evidence for a release was refused before the engine
    /// saw it (a body too large to read); [`Engine::add_evidence`] records its own.
    pub async fn refuse_evidence(
        &self,
        project: &str,
        release: &str,
        reason: String,
        detail: serde_json::Value,
        actor: &str,
    ) -> Result<(), EngineError> {
        let project = self.project(project)?;
        let record = self.release(project, release).await?;
        self.record_refusal(project, &record, "evidence", reason, detail, actor)
            .await
    }

    /// Records in the ledger that input about a release was refused (`<what>.refused`).
    pub(crate) async fn record_refusal(
        &self,
        project: &Project,
        release: &ReleaseRecord,
        what: &str,
        reason: String,
        detail: serde_json::Value,
        actor: &str,
    ) -> Result<(), EngineError> {
        self.inner
            .store
            .record_refusal(
                NewRefusal {
                    project: project.name().clone(),
                    release: Some(release.id.clone()),
                    what: what.to_owned(),
                    reason,
                    detail,
                },
                &Audit::by(actor),
            )
            .await?;
        Ok(())
    }

    async fn check_and_keep(
        &self,
        project: &Project,
        record: &ReleaseRecord,
        component: Option<&str>,
        kind: &str,
        bytes: Vec<u8>,
        actor: &str,
    ) -> Result<AddedEvidence, EngineError> {
        let kind: Kind =
            kind.parse()
                .map_err(|e: gantry_evidence::KindError| EngineError::InvalidField {
                    field: "kind",
                    reason: e.to_string(),
                })?;
        let component = match component {
            None => None,
            Some(name) => Some(
                &record
                    .artifacts
                    .iter()
                    .find(|a| a.component.as_str() == name)
                    .ok_or_else(|| EngineError::InvalidField {
                        field: "component",
                        reason: format!(
                            "release {} has no component {name:?} (components: {})",
                            record.alias,
                            record
                                .artifacts
                                .iter()
                                .map(|a| a.component.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })?
                    .component,
            ),
        };
        self.keep_evidence(project, record, component, &kind, bytes, "api", actor)
            .await
    }

    /// Parses evidence, checks that it names the release's digests (or the
    /// component's), and keeps it; waiting promotions look again when it is new.
    #[expect(
        clippy::too_many_arguments,
        reason = "one piece of evidence and its origin"
    )]
    pub(crate) async fn keep_evidence(
        &self,
        project: &Project,
        record: &ReleaseRecord,
        component: Option<&Name>,
        kind: &Kind,
        bytes: Vec<u8>,
        source: &str,
        actor: &str,
    ) -> Result<AddedEvidence, EngineError> {
        let parsed =
            gantry_evidence::parse(kind, &bytes).map_err(|e| EngineError::InvalidField {
                field: "evidence",
                reason: e.to_string(),
            })?;
        let expected: Vec<gantry_core::Digest> = record
            .artifacts
            .iter()
            .filter(|a| component.is_none_or(|c| &a.component == c))
            .map(|a| a.digest.clone())
            .collect();
        gantry_evidence::check_subjects(kind, &parsed, &expected).map_err(|e| {
            EngineError::InvalidField {
                field: "evidence",
                reason: e.to_string(),
            }
        })?;
        // Release-wide evidence counts for every component: one that names digests must
        // name every component's, or a scan (or signed provenance) of one image would
        // stand for another.
        if component.is_none() && !parsed.subjects.is_empty() {
            let missing: Vec<&str> = record
                .artifacts
                .iter()
                .filter(|a| !parsed.subjects.contains(&a.digest))
                .map(|a| a.component.as_str())
                .collect();
            if !missing.is_empty() {
                return Err(EngineError::InvalidField {
                    field: "component",
                    reason: format!(
                        "the {} report names no digest of {}: hand it in for the component it is about (--component NAME)",
                        kind.name(),
                        missing.join(", ")
                    ),
                });
            }
        }
        let summary_json = serde_json::to_string(&parsed.summary).expect("summaries serialize");
        let (kept, created) = self
            .inner
            .store
            .add_evidence(
                NewEvidence {
                    project: project.name().clone(),
                    release: record.id.clone(),
                    component: component.cloned(),
                    kind: kind.name(),
                    digest: sha256(&bytes),
                    raw: bytes,
                    summary: summary_json,
                    source: source.to_owned(),
                },
                &Audit::by(actor),
            )
            .await?;
        if created {
            self.reconsider_later(project.name());
        }
        Ok(AddedEvidence {
            record: kept,
            summary: parsed.summary,
            created,
        })
    }

    /// Records a person's approval (`approve = true`) or rejection of a release for an
    /// environment; waiting promotions look at their gates again.
    pub async fn approve(
        &self,
        project: &str,
        release: &str,
        environment: &str,
        approve: bool,
        comment: Option<String>,
        actor: &str,
    ) -> Result<(), EngineError> {
        let project = self.project(project)?;
        let target = Self::environment_of(project, environment)?;
        let record = self.release(project, release).await?;
        if let Err(reason) = self
            .approval_standing(project, &target.name, &record, actor)
            .await?
        {
            let word = if approve { "approval" } else { "rejection" };
            self.record_refusal(
                project,
                &record,
                "approval",
                format!("{word} by {actor} for {}: {reason}", target.name),
                json!({"environment": target.name.as_str(), "approve": approve}),
                actor,
            )
            .await?;
            return Err(EngineError::NotCounted { what: word, reason });
        }
        self.inner
            .store
            .add_approval(
                NewApproval {
                    project: project.name().clone(),
                    release: record.id.clone(),
                    environment: target.name.clone(),
                    approve,
                    comment,
                },
                &Audit::by(actor),
            )
            .await?;
        self.reconsider_later(project.name());
        Ok(())
    }

    /// Whether `actor`'s approval of `release` for `environment` would count, by the
    /// rule the approvals gate counts with ([`gantry_policy::approval_standing`]): the
    /// requester of any promotion of it there that has not run yet is the requester.
    async fn approval_standing(
        &self,
        project: &Project,
        environment: &Name,
        release: &ReleaseRecord,
        actor: &str,
    ) -> Result<Result<(), String>, EngineError> {
        let mut requesters = BTreeSet::new();
        for state in [PromotionState::Waiting, PromotionState::Queued] {
            for promotion in self
                .inner
                .store
                .promotions_in_state(project.name(), state)
                .await?
            {
                if promotion.release == release.id && &promotion.environment == environment {
                    requesters.extend(requester(&promotion).map(str::to_owned));
                }
            }
        }
        let requested_by = requesters
            .contains(actor)
            .then_some(actor)
            .or_else(|| requesters.first().map(String::as_str));
        let groups = self.inner.governance.get(project.name()).map(|g| &g.groups);
        let no_groups = BTreeMap::new();
        let gates = self.gates(project.name(), environment);
        let standing = gantry_policy::approval_standing(
            gates,
            groups.unwrap_or(&no_groups),
            &release.created_by,
            requested_by,
            actor,
        );
        Ok(standing.map_err(|reason| {
            match gates.approvals.as_ref().filter(|g| !g.from.is_empty()) {
                Some(gate) if reason.ends_with("may not approve here") => format!(
                    "{reason}: {environment} takes approvals from {}",
                    gate.from
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => reason,
            }
        }))
    }

    /// Stops the line (no promotion enters the project, or one environment, unless by
    /// the emergency path) or resumes it.
    pub async fn set_stop(
        &self,
        project: &str,
        environment: Option<&str>,
        stop: bool,
        actor: &str,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        let project = self.project(project)?;
        let environment = environment
            .map(|e| Self::environment_of(project, e).map(|e| e.name.clone()))
            .transpose()?;
        if stop && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(EngineError::InvalidField {
                field: "reason",
                reason: "stopping the line needs a reason, for the people it stops".to_owned(),
            });
        }
        let mut audit = Audit::by(actor);
        audit.reason = reason;
        self.inner
            .store
            .set_stop(project.name(), environment.as_ref(), stop, &audit)
            .await?;
        self.reconsider_later(project.name());
        Ok(())
    }

    /// Looks at every waiting promotion of a project again, in the background.
    pub(crate) fn reconsider_later(&self, project: &Name) {
        let engine = self.clone();
        let project = project.clone();
        tokio::spawn(async move {
            if let Err(error) = engine.reconsider(&project).await {
                tracing::error!(%project, %error, "looking at waiting promotions again failed");
            }
        });
    }

    /// Evaluates every waiting promotion of a project: those whose gates pass join
    /// their queue, those whose gates fail are rejected, the rest keep waiting. A
    /// decision is recorded when its answer differs from the last one recorded.
    pub(crate) async fn reconsider(&self, project: &Name) -> Result<(), EngineError> {
        let definition = self.project(project.as_str())?;
        let waiting = self
            .inner
            .store
            .promotions_in_state(project, PromotionState::Waiting)
            .await?;
        for promotion in waiting {
            let Some(release) = self
                .inner
                .store
                .find_release(project, promotion.release.digest().as_str())
                .await?
            else {
                continue;
            };
            let decision = self
                .evaluate_promotion(definition, &promotion, &release)
                .await?;
            let changed = self
                .inner
                .last_decisions
                .lock()
                .expect("lock")
                .get(&promotion.id)
                != Some(&signature(&decision));
            if changed {
                self.record(
                    definition,
                    &promotion.environment,
                    &release,
                    Some(promotion.id),
                    &decision,
                )
                .await?;
            }
            self.settle(&promotion, &decision).await?;
        }
        Ok(())
    }

    /// Moves a waiting promotion as its decision says. Losing a race with another look
    /// (the promotion moved meanwhile) is fine: the store keeps one answer.
    pub(crate) async fn settle(
        &self,
        promotion: &PromotionRecord,
        decision: &Decision,
    ) -> Result<(), EngineError> {
        let (to, reason) = match decision.verdict {
            Verdict::Pending => return Ok(()),
            Verdict::Allow => (PromotionState::Queued, None),
            Verdict::Deny => (PromotionState::Rejected, Some(decision.failures())),
        };
        match self
            .inner
            .store
            .advance(promotion.id, to, reason.as_deref(), &Audit::by(ENGINE))
            .await
        {
            Ok(moved) => {
                self.inner
                    .last_decisions
                    .lock()
                    .expect("lock")
                    .remove(&promotion.id);
                if to == PromotionState::Queued {
                    self.kick(&moved.project, &moved.environment);
                } else {
                    let _ = self.inner.events.send(Event::PromotionFailed {
                        project: moved.project.clone(),
                        environment: moved.environment.clone(),
                        promotion: moved.id,
                        error: moved.error.clone().unwrap_or_default(),
                    });
                }
                Ok(())
            }
            Err(gantry_store::store::StoreError::Conflict(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Asks the waker to look at a project's waiting promotions again at `at`.
    pub(crate) fn wake_at(&self, project: &Name, at: Timestamp) {
        let mut wakeups = self.inner.wakeups.lock().expect("lock");
        let earliest = wakeups.keys().next().copied();
        wakeups.entry(at).or_default().insert(project.clone());
        drop(wakeups);
        if earliest.is_none_or(|e| at < e) {
            self.inner.waker.notify_one();
        }
    }

    /// The one task that sleeps until the next time a gate may change by itself: one
    /// timer for the whole engine, however many releases wait.
    pub(crate) fn start_waker(&self) {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                let next = engine
                    .inner
                    .wakeups
                    .lock()
                    .expect("lock")
                    .keys()
                    .next()
                    .copied();
                match next {
                    None => engine.inner.waker.notified().await,
                    Some(at) => {
                        let now = Timestamp::now();
                        if at > now {
                            let wait = Duration::try_from(now.duration_until(at))
                                .unwrap_or(Duration::ZERO);
                            tokio::select! {
                                () = tokio::time::sleep(wait) => {}
                                () = engine.inner.waker.notified() => continue,
                            }
                        }
                        let due: BTreeSet<Name> = {
                            let mut wakeups = engine.inner.wakeups.lock().expect("lock");
                            let now = Timestamp::now();
                            let later = wakeups.split_off(
                                &now.checked_add(jiff::SignedDuration::from_nanos(1))
                                    .unwrap_or(now),
                            );
                            let due = std::mem::replace(&mut *wakeups, later);
                            due.into_values().flatten().collect()
                        };
                        for project in due {
                            if let Err(error) = engine.reconsider(&project).await {
                                tracing::error!(%project, %error, "looking at waiting promotions again failed");
                            }
                        }
                    }
                }
            }
        });
    }
}

fn sha256(bytes: &[u8]) -> gantry_core::Digest {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
        .parse()
        .expect("a SHA-256 is a digest")
}

/// Who asked, as the gates see it: automation is nobody.
fn requester(promotion: &PromotionRecord) -> Option<&str> {
    (promotion.kind != PromotionKind::Automatic).then_some(promotion.requested_by.as_str())
}

/// The answer a decision gives, to compare with the last one recorded.
fn signature(decision: &Decision) -> crate::engine::Answer {
    (
        decision.verdict,
        decision
            .gates
            .iter()
            .map(|g| (g.gate.clone(), g.state))
            .collect(),
    )
}
