//! The engine: release intake, the promotion queue of each environment, execution
//! through gantry-oci, and `track` automation. Everything a request does, without HTTP.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use gantry_core::{
    Binding, CredentialsRef, Environment, GateState, Name, Project, PromotionState, Reference,
    ReleaseContent, ReleaseId, Repository, SourceProblem, Verdict,
};
use gantry_oci::{CopyOptions, Credentials, Endpoint, NoProgress, Registries};
use gantry_store::store::{
    Artifact, Audit, Lease, NewPromotion, NewRelease, Outcome, PromotionKind, PromotionRecord,
    ReleaseRecord, Store, StoreError,
};
use tokio::sync::{Notify, broadcast};

use crate::gates::Ask;
use crate::project_file::{Definition, Governance};

/// Why the engine refused or failed a request, in words for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown project {0:?}")]
    UnknownProject(String),
    #[error("project {project} has no release {release:?}")]
    UnknownRelease { project: Name, release: String },
    /// The request is well formed but breaks a rule of the project.
    #[error(transparent)]
    Refused(#[from] gantry_core::Refusal),
    #[error("{0}")]
    Invalid(String),
    /// A request field is wrong: which one, and why.
    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("resolving {reference}: {error}")]
    Registry {
        reference: String,
        error: gantry_oci::Error,
    },
    /// An approval or rejection that its gate would not count, so it is not recorded.
    #[error("this {what} would not count, so it is not recorded: {reason}")]
    NotCounted { what: &'static str, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Something that happened, for whoever listens (tests, the server's event stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An environment's pointer moved to a release.
    PointerMoved {
        project: Name,
        environment: Name,
        release: ReleaseId,
    },
    /// A promotion ended without moving the pointer.
    PromotionFailed {
        project: Name,
        environment: Name,
        promotion: i64,
        error: String,
    },
}

/// The application: projects, a store, and registry access.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registries: Registries,
    pub(crate) projects: BTreeMap<Name, Project>,
    pub(crate) governance: BTreeMap<Name, Governance>,
    pub(crate) events: broadcast::Sender<Event>,
    /// Environments with a runner working their queue in this process.
    running: Mutex<HashSet<(Name, Name)>>,
    /// The answer last recorded for each waiting promotion, so a look that changes
    /// nothing records nothing.
    pub(crate) last_decisions: Mutex<HashMap<i64, Answer>>,
    /// When to look at a project's waiting promotions again (a soak or freeze ends).
    pub(crate) wakeups: Mutex<BTreeMap<jiff::Timestamp, BTreeSet<Name>>>,
    pub(crate) waker: Notify,
    /// Recent looks at the registry for signatures, and layers already refused.
    pub(crate) pulls: Mutex<crate::attestations::PullCache>,
    pub(crate) prometheus: crate::metrics::Prometheus,
    /// Set by [`Engine::drain`]: no promotion starts any more.
    draining: std::sync::atomic::AtomicBool,
    /// Notified whenever an environment's runner stops.
    runner_stopped: Notify,
    /// This replica's claim on the promotions it runs.
    pub(crate) lease: Lease,
    /// Set when a drain gives the leases up: renewing stops.
    leases_given_up: std::sync::atomic::AtomicBool,
}

/// How one engine (one replica) takes part in the work.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// This replica's name, unique among the replicas sharing a store. The same name at
    /// the next start gives up what it was running at once; another replica's promotions
    /// are put back in line only when their lease runs out.
    pub replica: String,
    /// How long a running promotion stays this replica's without renewal. Renewed every
    /// third of it; a replica that dies loses its promotions to the others after it.
    pub lease: std::time::Duration,
}

impl Default for EngineOptions {
    /// One replica alone on its store (`SQLite`'s case): a fixed name, a 15 s lease.
    fn default() -> Self {
        EngineOptions {
            replica: "local".to_owned(),
            lease: std::time::Duration::from_secs(15),
        }
    }
}

/// What makes two decisions the same answer: the verdict and each gate's state.
pub(crate) type Answer = (Verdict, Vec<(String, GateState)>);

/// Who asks for a promotion, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub actor: String,
    pub reason: Option<String>,
    /// Asking again with the same key returns the first answer.
    pub idempotency_key: Option<String>,
    /// Take the emergency path past freeze windows and a stopped line (the environment
    /// names who may, and how many more approvals it costs).
    pub emergency: bool,
}

impl Request {
    pub fn by(actor: impl Into<String>) -> Request {
        Request {
            actor: actor.into(),
            ..Request::default()
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("projects", &self.inner.projects.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

pub(crate) const ENGINE: &str = "gantry";

impl Engine {
    /// [`Engine::start_with`] the default options: one replica alone on its store.
    pub async fn start(
        store: Arc<dyn Store>,
        registries: Registries,
        definitions: Vec<Definition>,
    ) -> Result<Engine, EngineError> {
        Engine::start_with(store, registries, definitions, EngineOptions::default()).await
    }

    /// Sets up every project's environments in the store, puts back in line what this
    /// replica was running when it stopped and what any replica left behind (lease run
    /// out), then starts working every queue.
    pub async fn start_with(
        store: Arc<dyn Store>,
        registries: Registries,
        definitions: Vec<Definition>,
        options: EngineOptions,
    ) -> Result<Engine, EngineError> {
        let mut projects = Vec::new();
        let mut governance = BTreeMap::new();
        for definition in definitions {
            governance.insert(definition.project.name().clone(), definition.governance);
            projects.push(definition.project);
        }
        for project in &projects {
            let names: Vec<Name> = project.environments().map(|e| e.name.clone()).collect();
            store.ensure_environments(project.name(), &names).await?;
        }
        let lease = Lease {
            holder: options.replica,
            duration: options.lease,
        };
        store
            .renew_leases(&Lease {
                duration: std::time::Duration::ZERO,
                ..lease.clone()
            })
            .await?;
        store
            .requeue_expired(&Audit::by(ENGINE).because("the server restarted while it ran"))
            .await?;
        let (events, _) = broadcast::channel(1024);
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                registries,
                projects: projects
                    .into_iter()
                    .map(|p| (p.name().clone(), p))
                    .collect(),
                governance,
                events,
                running: Mutex::new(HashSet::new()),
                last_decisions: Mutex::new(HashMap::new()),
                wakeups: Mutex::new(BTreeMap::new()),
                waker: Notify::new(),
                pulls: Mutex::new(crate::attestations::PullCache::default()),
                prometheus: crate::metrics::Prometheus::default(),
                draining: std::sync::atomic::AtomicBool::new(false),
                runner_stopped: Notify::new(),
                lease,
                leases_given_up: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        engine.start_waker();
        engine.start_sweeper();
        engine.start_pollers();
        for project in engine.inner.projects.values() {
            for environment in project.environments() {
                engine.kick(project.name(), &environment.name);
            }
            engine.reconsider_later(project.name());
        }
        Ok(engine)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn project(&self, name: &str) -> Result<&Project, EngineError> {
        self.inner
            .projects
            .get(name)
            .ok_or_else(|| EngineError::UnknownProject(name.to_owned()))
    }

    /// Resolves every component's reference to a digest once, reads its labels, and
    /// records the release; the same content again returns the existing release. A new
    /// release enters the project's `track` entry environments (unless held); a `pin`
    /// entry environment waits for a person to promote it.
    ///
    /// Each reference must name a tag or digest inside the component's repository (or
    /// one its `also_from:` allows): that is decided for every component before anything
    /// is dialled or opened, and a refusal is the same words whatever lies outside.
    pub async fn create_release(
        &self,
        project: &str,
        references: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
        actor: &str,
    ) -> Result<(ReleaseRecord, bool), EngineError> {
        let project = self.project(project)?;
        let given: Vec<&str> = references.keys().map(String::as_str).collect();
        let expected: Vec<&str> = project.components().map(|c| c.name.as_str()).collect();
        if given != expected {
            return Err(EngineError::Invalid(format!(
                "a release of {} names exactly its components ({}), got: {}",
                project.name(),
                expected.join(", "),
                if given.is_empty() {
                    "none".to_owned()
                } else {
                    given.join(", ")
                }
            )));
        }
        let resolved = self.release_references(project, &references, actor).await?;
        let mut artifacts = Vec::new();
        for (component, reference) in resolved {
            let source = reference.to_string();
            let inspection = gantry_oci::inspect(
                &self.inner.registries,
                &Endpoint::new(Reference::Registry(reference)),
                None,
            )
            .await
            .map_err(|error| EngineError::Registry {
                reference: source.clone(),
                error,
            })?;
            artifacts.push(Artifact {
                component,
                source,
                digest: inspection.digest,
                labels: inspection.labels,
            });
        }
        let content = ReleaseContent {
            project: project.name().clone(),
            artifacts: artifacts
                .iter()
                .map(|a| (a.component.clone(), a.digest.clone()))
                .collect(),
        };
        let release = NewRelease {
            id: content.id(),
            project: project.name().clone(),
            artifacts,
            labels,
        };
        let (record, created) = self
            .inner
            .store
            .create_release(release, &Audit::by(actor))
            .await?;
        if created {
            // Entry environments follow their binding: `track` takes each new release,
            // `pin` waits for a person.
            let entries: Vec<Name> = project
                .entry_environments()
                .filter(|e| e.binding == Binding::Track)
                .map(|e| e.name.clone())
                .collect();
            for environment in entries {
                self.enqueue_automatic(project, &environment, &record.id)
                    .await?;
            }
        }
        Ok((record, created))
    }

    /// Every component's reference inside the repositories it may come from
    /// ([`gantry_core::Component::release_reference`]), decided from the text alone. A
    /// reference outside them is refused (422) and the refusal kept in the ledger
    /// (`release.refused`), which is all it changes; a malformed one, or one without a
    /// tag or digest, is a bad request (400) like any other.
    async fn release_references(
        &self,
        project: &Project,
        references: &BTreeMap<String, String>,
        actor: &str,
    ) -> Result<Vec<(Name, gantry_core::RegistryReference)>, EngineError> {
        let mut resolved = Vec::new();
        for component in project.components() {
            let text = &references[component.name.as_str()];
            let refusal = match component.release_reference(text) {
                Ok(reference) => {
                    resolved.push((component.name.clone(), reference));
                    continue;
                }
                Err(refusal) => refusal,
            };
            let reason = refusal.to_string();
            if !matches!(refusal.problem, SourceProblem::NotAllowed { .. }) {
                return Err(EngineError::Invalid(reason));
            }
            self.inner
                .store
                .record_refusal(
                    gantry_store::store::NewRefusal {
                        project: project.name().clone(),
                        release: None,
                        what: "release".to_owned(),
                        reason: reason.clone(),
                        detail: serde_json::json!({
                            "component": component.name.as_str(),
                            "reference": text,
                        }),
                    },
                    &Audit::by(actor),
                )
                .await?;
            return Err(EngineError::InvalidField {
                field: "components",
                reason,
            });
        }
        Ok(resolved)
    }

    /// Queues a promotion of `release` (id, prefix or alias) into `environment`, after
    /// checking the project's rules. With an idempotency key, asking again returns the
    /// promotion queued the first time.
    pub async fn promote(
        &self,
        project: &str,
        release: &str,
        environment: &str,
        request: Request,
    ) -> Result<PromotionRecord, EngineError> {
        let project = self.project(project)?;
        let record = self.release(project, release).await?;
        if let Some(key) = &request.idempotency_key {
            // A retried request must find its first answer even if the rules changed since.
            if let Some(existing) = self
                .lookup_idempotent(project, environment, &record, key)
                .await?
            {
                return Ok(existing);
            }
        }
        let current = self.current(project.name(), environment).await?;
        let reached = self.inner.store.reached(project.name(), &record.id).await?;
        let target =
            project.check_promotion(environment, &record.id, current.as_ref(), &reached)?;
        self.queue(
            project,
            &target.name,
            &record,
            PromotionKind::Promote,
            request,
        )
        .await
    }

    /// A release of `project` by id, prefix or alias.
    pub(crate) async fn release(
        &self,
        project: &Project,
        release: &str,
    ) -> Result<ReleaseRecord, EngineError> {
        self.inner
            .store
            .find_release(project.name(), release)
            .await?
            .ok_or_else(|| EngineError::UnknownRelease {
                project: project.name().clone(),
                release: release.to_owned(),
            })
    }

    /// Cancels a promotion of `project` that has not started yet.
    pub async fn cancel(
        &self,
        project: &str,
        id: i64,
        actor: &str,
        reason: Option<String>,
    ) -> Result<PromotionRecord, EngineError> {
        let project = self.project(project)?;
        let promotion = self
            .inner
            .store
            .promotion(id)
            .await?
            .filter(|p| p.project == *project.name());
        if promotion.is_none() {
            return Err(StoreError::NotFound(format!(
                "promotion {id} of project {}",
                project.name()
            ))
            .into());
        }
        let mut audit = Audit::by(actor);
        audit.reason = reason;
        Ok(self.inner.store.cancel(id, &audit).await?)
    }

    /// Pauses (`hold = true`) or resumes automation for an environment, recorded with
    /// who and why. On resume a `track` environment catches up with its upstream.
    pub async fn set_hold(
        &self,
        project: &str,
        environment: &str,
        hold: bool,
        actor: &str,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        let project = self.project(project)?;
        let target = Self::environment_of(project, environment)?;
        let mut audit = Audit::by(actor);
        audit.reason = reason;
        self.inner
            .store
            .set_hold(project.name(), &target.name, hold, &audit)
            .await?;
        if !hold && target.binding == Binding::Track {
            for upstream in &target.upstreams {
                if let Some(release) = self.current(project.name(), upstream.as_str()).await? {
                    self.enqueue_automatic(project, &target.name, &release)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Puts back the release an environment held before the current one, or `to`, which
    /// it must have held at some time. Recorded as a rollback.
    pub async fn rollback(
        &self,
        project: &str,
        environment: &str,
        to: Option<&str>,
        request: Request,
    ) -> Result<PromotionRecord, EngineError> {
        let project = self.project(project)?;
        let target = Self::environment_of(project, environment)?;
        let history = self
            .inner
            .store
            .promotions(project.name(), Some(&target.name), usize::MAX)
            .await?;
        let succeeded = || {
            history
                .iter()
                .filter(|p| p.state == gantry_core::PromotionState::Succeeded)
        };
        let current = self.current(project.name(), environment).await?;
        let release = match to {
            Some(key) => {
                let record = self.inner.store.find_release(project.name(), key).await?.ok_or_else(|| EngineError::UnknownRelease {
                    project: project.name().clone(),
                    release: key.to_owned(),
                })?;
                if !succeeded().any(|p| p.release == record.id) {
                    return Err(EngineError::Invalid(format!(
                        "{environment} never held release {}; roll back only to a release it ran before",
                        record.id
                    )));
                }
                record.id
            }
            None => succeeded()
                .find(|p| Some(&p.release) == current.as_ref())
                .and_then(|p| p.previous_release.clone())
                .ok_or_else(|| EngineError::Invalid(format!("{environment} held nothing before its current release: nothing to roll back to")))?,
        };
        if current.as_ref() == Some(&release) {
            return Err(gantry_core::Refusal::AlreadyHolds {
                environment: target.name.clone(),
                release,
            }
            .into());
        }
        let record = self.release(project, release.digest().as_str()).await?;
        self.queue(
            project,
            &target.name,
            &record,
            PromotionKind::Rollback,
            request,
        )
        .await
    }

    /// Queues a promotion asked for by a person, recorded with who and why: into the
    /// queue when the environment's gates pass, waiting when they are pending, rejected
    /// when they fail. The decision is recorded with the promotion.
    async fn queue(
        &self,
        project: &Project,
        environment: &Name,
        release: &ReleaseRecord,
        kind: PromotionKind,
        request: Request,
    ) -> Result<PromotionRecord, EngineError> {
        let decision = self
            .evaluate(
                project,
                environment,
                release,
                Ask {
                    requested_by: Some(&request.actor),
                    emergency: request.emergency,
                    rollback: kind == PromotionKind::Rollback,
                    explaining: false,
                },
            )
            .await?;
        let mut audit = Audit::by(&request.actor);
        audit.reason = request.reason;
        let new = NewPromotion {
            project: project.name().clone(),
            environment: environment.clone(),
            release: release.id.clone(),
            kind,
            idempotency_key: request.idempotency_key,
            state: if decision.verdict == Verdict::Allow {
                PromotionState::Queued
            } else {
                PromotionState::Waiting
            },
            emergency: request.emergency,
        };
        let (promotion, created) = self.inner.store.enqueue(new, &audit).await?;
        if !created {
            return Ok(promotion);
        }
        if !decision.gates.is_empty() {
            self.record(project, environment, release, Some(promotion.id), &decision)
                .await?;
        }
        if decision.verdict == Verdict::Deny {
            self.settle(&promotion, &decision).await?;
            return Ok(self
                .inner
                .store
                .promotion(promotion.id)
                .await?
                .unwrap_or(promotion));
        }
        self.kick(project.name(), environment);
        Ok(promotion)
    }

    /// An environment of `project`, or the refusal that names it unknown.
    pub fn environment_of<'p>(
        project: &'p Project,
        environment: &str,
    ) -> Result<&'p Environment, EngineError> {
        project.environment(environment).ok_or_else(|| {
            gantry_core::Refusal::UnknownEnvironment {
                project: project.name().clone(),
                environment: environment.to_owned(),
            }
            .into()
        })
    }

    async fn lookup_idempotent(
        &self,
        project: &Project,
        environment: &str,
        release: &ReleaseRecord,
        key: &str,
    ) -> Result<Option<PromotionRecord>, EngineError> {
        let Ok(environment) = environment.parse::<Name>() else {
            return Ok(None);
        };
        let existing = self
            .inner
            .store
            .promotions(project.name(), Some(&environment), 1000)
            .await?
            .into_iter()
            .find(|p| p.idempotency_key.as_deref() == Some(key) && p.release == release.id);
        Ok(existing)
    }

    async fn current(
        &self,
        project: &Name,
        environment: &str,
    ) -> Result<Option<ReleaseId>, EngineError> {
        Ok(self
            .inner
            .store
            .environments(project)
            .await?
            .into_iter()
            .find(|e| e.name.as_str() == environment)
            .and_then(|e| e.release))
    }

    /// Proposes an automatic promotion unless the environment is held, already holds the
    /// release, or the release has not reached all of its upstreams yet. Its gates
    /// decide: queued when they pass, waiting when pending (replacing an older release
    /// still waiting there), and not proposed at all when they fail.
    async fn enqueue_automatic(
        &self,
        project: &Project,
        environment: &Name,
        release: &ReleaseId,
    ) -> Result<(), EngineError> {
        let state = self
            .inner
            .store
            .environments(project.name())
            .await?
            .into_iter()
            .find(|e| &e.name == environment);
        if state.as_ref().is_some_and(|s| s.hold.is_some()) {
            tracing::info!(project = %project.name(), %environment, %release, "held: not following upstream");
            return Ok(());
        }
        let reached = self.inner.store.reached(project.name(), release).await?;
        let current = state.and_then(|s| s.release);
        if project
            .check_promotion(environment.as_str(), release, current.as_ref(), &reached)
            .is_err()
        {
            return Ok(());
        }
        // Gates, or a stopped line, decide whether automation may follow.
        let record = self.release(project, release.digest().as_str()).await?;
        let decision = self
            .evaluate(project, environment, &record, Ask::default())
            .await?;
        if decision.verdict == Verdict::Deny {
            self.record(project, environment, &record, None, &decision)
                .await?;
            tracing::info!(project = %project.name(), %environment, %release, failures = %decision.failures(), "gates fail: not following upstream");
            return Ok(());
        }
        let waiting = decision.verdict == Verdict::Pending;
        if waiting {
            // A track environment follows the newest release: an older one still
            // waiting there is pointless now.
            for older in self
                .inner
                .store
                .promotions_in_state(project.name(), PromotionState::Waiting)
                .await?
                .into_iter()
                .filter(|p| &p.environment == environment && p.kind == PromotionKind::Automatic)
            {
                if let Err(error) = self
                    .inner
                    .store
                    .advance(
                        older.id,
                        PromotionState::Superseded,
                        Some(&format!("release {release} came after it")),
                        &Audit::by(ENGINE),
                    )
                    .await
                {
                    tracing::debug!(promotion = older.id, %error, "could not supersede");
                }
            }
        }
        let (promotion, created) = self
            .inner
            .store
            .enqueue(
                NewPromotion {
                    project: project.name().clone(),
                    environment: environment.clone(),
                    release: release.clone(),
                    kind: PromotionKind::Automatic,
                    idempotency_key: Some(format!("auto:{environment}:{}", release.digest())),
                    state: if waiting {
                        PromotionState::Waiting
                    } else {
                        PromotionState::Queued
                    },
                    emergency: false,
                },
                &Audit::by(ENGINE).because("tracking upstream"),
            )
            .await?;
        if created && !decision.gates.is_empty() {
            self.record(project, environment, &record, Some(promotion.id), &decision)
                .await?;
        }
        self.kick(project.name(), environment);
        Ok(())
    }

    /// Makes sure a runner works this environment's queue; at most one per process, and
    /// the store lets only one promotion run per environment anywhere.
    pub(crate) fn kick(&self, project: &Name, environment: &Name) {
        if self.is_draining() {
            return;
        }
        let key = (project.clone(), environment.clone());
        if !self.inner.running.lock().expect("lock").insert(key.clone()) {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                if engine.is_draining() {
                    break;
                }
                match engine.run_next(&key.0, &key.1).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(error) => {
                        tracing::error!(project = %key.0, environment = %key.1, %error, "the promotion queue stopped");
                        break;
                    }
                }
            }
            engine.inner.running.lock().expect("lock").remove(&key);
            engine.inner.runner_stopped.notify_waiters();
            // Work queued between the last look and leaving the set would otherwise wait
            // for the next kick: look once more now that the slot is free.
            if let Ok(latest) = engine.inner.store.promotions(&key.0, Some(&key.1), 1).await {
                if latest
                    .first()
                    .is_some_and(|p| p.state == gantry_core::PromotionState::Queued)
                {
                    engine.kick(&key.0, &key.1);
                }
            }
        });
    }

    /// Keeps this replica's share of the work in order, every third of a lease: renews
    /// the leases of what it runs, puts back in line what a dead replica left running,
    /// and works any queue with waiting work (queued on another replica, or left when a
    /// replica stopped). Renewal is its own task, so a slow sweep never lets a lease run
    /// out, and it goes on while the engine drains: what still runs stays this replica's
    /// until `drain` gives it up.
    fn start_sweeper(&self) {
        let every = self.inner.lease.duration / 3;
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if engine
                    .inner
                    .leases_given_up
                    .load(std::sync::atomic::Ordering::SeqCst)
                {
                    break;
                }
                if let Err(error) = engine.inner.store.renew_leases(&engine.inner.lease).await {
                    tracing::warn!(%error, "renewing this replica's leases failed; trying again");
                }
            }
        });
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if engine.is_draining() {
                    break;
                }
                if let Err(error) = engine.sweep().await {
                    tracing::warn!(%error, "sweeping the queues failed; trying again");
                }
            }
        });
    }

    async fn sweep(&self) -> Result<(), EngineError> {
        let store = &self.inner.store;
        for promotion in store
            .requeue_expired(&Audit::by(ENGINE).because("its replica stopped while it ran"))
            .await?
        {
            tracing::warn!(promotion = promotion.id, project = %promotion.project, environment = %promotion.environment, "put back in line: its replica stopped while it ran");
        }
        for project in self.inner.projects.keys() {
            for promotion in store
                .promotions_in_state(project, PromotionState::Queued)
                .await?
            {
                self.kick(project, &promotion.environment);
            }
        }
        Ok(())
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.inner
            .draining
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops starting promotions and waits up to `grace` for the running ones to
    /// finish: what a server does when it is asked to stop. Returns how many were
    /// still running when the wait ended; those resume when the engine starts again
    /// on the same store (they are queued again as interrupted).
    pub async fn drain(&self, grace: std::time::Duration) -> usize {
        self.inner
            .draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let stopped = self.inner.runner_stopped.notified();
            let running = self.inner.running.lock().expect("lock").len();
            if running == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, stopped).await.is_err() {
                // Give them up, so the next start (or another replica) takes them at once.
                self.inner
                    .leases_given_up
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                let given_up = Lease {
                    duration: std::time::Duration::ZERO,
                    ..self.inner.lease.clone()
                };
                if let Err(error) = self.inner.store.renew_leases(&given_up).await {
                    tracing::warn!(%error, "could not give up the leases of running promotions");
                }
                return self.inner.running.lock().expect("lock").len();
            }
        }
    }

    /// Runs the next queued promotion of an environment; `false` when there is none.
    async fn run_next(&self, project: &Name, environment: &Name) -> Result<bool, EngineError> {
        let Some(promotion) = self
            .inner
            .store
            .start_next(project, environment, &self.inner.lease)
            .await?
        else {
            return Ok(false);
        };
        let project = self.project(project.as_str())?;
        let target = project
            .environment(environment.as_str())
            .ok_or_else(|| EngineError::Invalid(format!("no environment {environment}")))?;
        // The last look, just before anything is written: a gate may have changed since
        // the promotion was queued (a freeze began, a rejection came in, the line was
        // stopped).
        let release = self
            .release(project, promotion.release.digest().as_str())
            .await?;
        let decision = self
            .evaluate_promotion(project, &promotion, &release)
            .await?;
        if !decision.gates.is_empty() {
            self.record(
                project,
                environment,
                &release,
                Some(promotion.id),
                &decision,
            )
            .await?;
            match decision.verdict {
                Verdict::Allow => {}
                Verdict::Pending => {
                    self.inner
                        .store
                        .advance(
                            promotion.id,
                            PromotionState::Waiting,
                            None,
                            &Audit::by(ENGINE).because(decision.needs()),
                        )
                        .await?;
                    return Ok(true);
                }
                Verdict::Deny => {
                    let rejected = self
                        .inner
                        .store
                        .advance(
                            promotion.id,
                            PromotionState::Rejected,
                            Some(&decision.failures()),
                            &Audit::by(ENGINE),
                        )
                        .await?;
                    let _ = self.inner.events.send(Event::PromotionFailed {
                        project: project.name().clone(),
                        environment: environment.clone(),
                        promotion: rejected.id,
                        error: rejected.error.unwrap_or_default(),
                    });
                    return Ok(true);
                }
            }
        }
        let version = self
            .inner
            .store
            .environments(project.name())
            .await?
            .into_iter()
            .find(|e| &e.name == environment)
            .map_or(0, |e| e.version);
        let outcome = match self.execute(project, target, &promotion).await {
            Ok(()) => Outcome::Succeeded {
                expected_version: version,
            },
            Err(error) => Outcome::Failed { error },
        };
        let finished = match self
            .inner
            .store
            .finish(
                promotion.id,
                &self.inner.lease.holder,
                outcome.clone(),
                &Audit::by(ENGINE),
            )
            .await
        {
            Ok(finished) => finished,
            Err(StoreError::Conflict(error)) => {
                self.inner
                    .store
                    .finish(
                        promotion.id,
                        &self.inner.lease.holder,
                        Outcome::Failed {
                            error: error.clone(),
                        },
                        &Audit::by(ENGINE),
                    )
                    .await?
            }
            Err(error) => return Err(error.into()),
        };
        match (&outcome, finished.error) {
            (Outcome::Succeeded { .. }, None) => {
                let _ = self.inner.events.send(Event::PointerMoved {
                    project: project.name().clone(),
                    environment: environment.clone(),
                    release: finished.release.clone(),
                });
                let downstream: Vec<Name> = project
                    .downstream_of(environment.as_str())
                    .filter(|e| e.binding == Binding::Track)
                    .map(|e| e.name.clone())
                    .collect();
                for next in downstream {
                    self.enqueue_automatic(project, &next, &finished.release)
                        .await?;
                }
            }
            (_, error) => {
                let _ = self.inner.events.send(Event::PromotionFailed {
                    project: project.name().clone(),
                    environment: environment.clone(),
                    promotion: promotion.id,
                    error: error.unwrap_or_default(),
                });
            }
        }
        Ok(true)
    }

    /// Lands every component of the release in the environment's targets, digest-exact:
    /// from the component's source for an entry environment, else from the first
    /// upstream's target. Any failure leaves the pointer where it was.
    ///
    /// Only this environment's credentials are used, and only by this promotion: for
    /// its targets, and for reading the source when it is on the same registry. A
    /// source on another registry is read with the standard credential files, never
    /// with the upstream environment's credentials.
    async fn execute(
        &self,
        project: &Project,
        environment: &Environment,
        promotion: &PromotionRecord,
    ) -> Result<(), String> {
        let release = self
            .inner
            .store
            .find_release(project.name(), promotion.release.digest().as_str())
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("release {} is gone", promotion.release))?;
        let upstream = environment
            .upstreams
            .first()
            .and_then(|u| project.environment(u.as_str()));
        let target_credentials = credentials(environment.credentials.as_ref())?;
        for artifact in &release.artifacts {
            let target = &environment.targets[&artifact.component];
            let source: Repository = match upstream {
                Some(upstream) => upstream.targets[&artifact.component].repository.clone(),
                None => project
                    .component(artifact.component.as_str())
                    .map(|c| c.source.clone())
                    .ok_or_else(|| {
                        format!("component {} is not in the project", artifact.component)
                    })?,
            };
            if source == target.repository {
                // Same repository: the content and its referrers are already there, so
                // landing is tag writes only (one manifest read, one write per tag, each
                // write's digest checked).
                let here = Endpoint::new(Reference::Registry(source.at_digest(&artifact.digest)))
                    .with_credentials(target_credentials.clone());
                let report = gantry_oci::tag(&self.inner.registries, &here, &target.tags)
                    .await
                    .map_err(|e| format!("{}: {e}", artifact.component))?;
                if report.digest != artifact.digest {
                    return Err(format!(
                        "{}: tagged {}, not {}",
                        artifact.component, report.digest, artifact.digest
                    ));
                }
                continue;
            }
            let source_credentials = (source.registry() == target.repository.registry())
                .then(|| target_credentials.clone())
                .flatten();
            let from = Endpoint::new(Reference::Registry(source.at_digest(&artifact.digest)))
                .with_credentials(source_credentials);
            for tag in &target.tags {
                let to = Endpoint::new(Reference::Registry(target.repository.at_tag(tag)))
                    .with_credentials(target_credentials.clone());
                let report = gantry_oci::copy(
                    &self.inner.registries,
                    &from,
                    &to,
                    &CopyOptions::default(),
                    Arc::new(NoProgress),
                )
                .await
                .map_err(|e| format!("{}: {e}", artifact.component))?;
                if report.target_digest != artifact.digest {
                    return Err(format!(
                        "{}: {} holds {} after the copy, not {}",
                        artifact.component, to.reference, report.target_digest, artifact.digest
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Reads an environment's registry credentials from where the project file says.
fn credentials(reference: Option<&CredentialsRef>) -> Result<Option<Credentials>, String> {
    let (text, from) = match reference {
        None => return Ok(None),
        Some(CredentialsRef::Env(variable)) => (
            std::env::var(variable)
                .map_err(|_| format!("credentials: environment variable {variable} is not set"))?,
            format!("environment variable {variable}"),
        ),
        Some(CredentialsRef::File(path)) => (
            std::fs::read_to_string(path)
                .map_err(|e| format!("credentials: cannot read {path}: {e}"))?,
            format!("file {path}"),
        ),
    };
    Credentials::parse(text.trim())
        .map(Some)
        .map_err(|_| format!("credentials: {from} must hold USER:PASSWORD"))
}
