//! The live state agrees with the ledger, and the server checks it: at start and
//! periodically it replays the ledger ([`gantry_store::ledger::replay`]) and compares the
//! state it proves with the live tables. A mismatch (a pointer, hold, stopped line, grant
//! or token changed in the database by hand) is an alarm: `/readyz` answers 503 with the
//! reason, `gantry status` shows it, and the log names every place at ERROR.
//!
//! `GET /api/v1/ledger/state` gives the live tables, so that `gantry ledger verify
//! --from-server` can replay the signed export itself, rather than trust this check.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::{Extension, Json};
use gantry_api::live as api;
use gantry_core::{Action, Scope};
use gantry_store::ledger::replay::{Mismatch, Replay, Snapshot, compare};
use gantry_store::store::{Store, StoreError};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Entries read from the store per page while catching up.
const PAGE: usize = 10_000;

/// The server's running replay of its ledger, and what the last check found.
#[derive(Debug, Default)]
pub struct LiveCheck {
    /// The ledger replayed so far; each check applies only the entries added since.
    replay: tokio::sync::Mutex<Progress>,
    last: RwLock<Option<Report>>,
}

#[derive(Debug, Default)]
struct Progress {
    replay: Replay,
    /// Why the ledger cannot be replayed past where it stopped (its chain is broken).
    broken: Option<String>,
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The ledger entries the check replayed.
    pub entries: u64,
    pub mismatches: Vec<Mismatch>,
}

impl LiveCheck {
    /// Replays the entries added since the last check and compares the live state with
    /// what the whole ledger proves. Logs what changed since the last check.
    pub async fn run(&self, store: &dyn Store) -> Result<Report, StoreError> {
        let Snapshot { ledger_size, state } = store.live_state().await?;
        let mut progress = self.replay.lock().await;
        while progress.broken.is_none() && progress.replay.entries() < ledger_size {
            let after = progress.replay.entries();
            let wanted = usize::try_from(ledger_size - after)
                .unwrap_or(PAGE)
                .min(PAGE);
            let page = store.ledger_entries(after, wanted).await?;
            if page.is_empty() {
                progress.broken = Some(format!(
                    "the ledger ends at entry {after}, before entry {ledger_size}"
                ));
            }
            for entry in page.iter().take_while(|e| e.sequence <= ledger_size) {
                if let Err(error) = progress.replay.apply(entry) {
                    progress.broken = Some(error.to_string());
                    break;
                }
            }
        }
        let mut mismatches = compare(progress.replay.state(), &state);
        if let Some(broken) = &progress.broken {
            mismatches.insert(
                0,
                Mismatch {
                    project: None,
                    subject: "ledger".to_owned(),
                    problem: format!("cannot be replayed: {broken}"),
                },
            );
        }
        let report = Report {
            entries: progress.replay.entries(),
            mismatches,
        };
        drop(progress);
        let previous = self
            .last
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(report.clone());
        let changed = previous
            .as_ref()
            .is_none_or(|previous| previous.mismatches != report.mismatches);
        if changed && !report.mismatches.is_empty() {
            for mismatch in &report.mismatches {
                // Debug form: names and reasons come from outside and are escaped.
                tracing::error!(mismatch = ?mismatch.to_string(), "the live state disagrees with the ledger");
            }
            tracing::error!(
                mismatches = report.mismatches.len(),
                entries = report.entries,
                "the live state disagrees with the ledger: /readyz answers 503 until it agrees"
            );
        } else if changed && previous.is_some() {
            tracing::info!(
                entries = report.entries,
                "the live state agrees with the ledger again"
            );
        }
        Ok(report)
    }

    /// Why the server is not ready, if the last check found a mismatch. It counts them
    /// without naming them: `/readyz` answers anyone.
    pub fn problem(&self) -> Option<String> {
        let last = self
            .last
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let report = last.as_ref()?;
        match report.mismatches.len() {
            0 => None,
            count => Some(format!(
                "the live state disagrees with the ledger in {count} place{} (the server's log \
                 and `gantry ledger verify --from-server` name them)",
                if count == 1 { "" } else { "s" }
            )),
        }
    }

    /// The warnings `gantry status` shows for `project`: its own mismatches by name, the
    /// others counted.
    pub fn warnings_for(&self, project: &str) -> Vec<String> {
        let last = self
            .last
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(report) = last.as_ref() else {
            return Vec::new();
        };
        let (own, others): (Vec<&Mismatch>, Vec<&Mismatch>) = report
            .mismatches
            .iter()
            .partition(|mismatch| mismatch.project.as_deref() == Some(project));
        let mut warnings: Vec<String> = own
            .iter()
            .map(|mismatch| format!("the live state disagrees with the ledger: {mismatch}"))
            .collect();
        if !others.is_empty() {
            warnings.push(format!(
                "the live state disagrees with the ledger in {} more place{} outside project \
                 {project} (`gantry ledger verify --from-server` names them)",
                others.len(),
                if others.len() == 1 { "" } else { "s" }
            ));
        }
        warnings
    }
}

/// Checks now, then every `every` (never when it is zero) until the task is aborted.
pub fn spawn(
    check: Arc<LiveCheck>,
    store: Arc<dyn Store>,
    every: Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    if every.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is now: the server checked once before it began to serve.
        interval.tick().await;
        loop {
            interval.tick().await;
            if let Err(error) = check.run(store.as_ref()).await {
                tracing::warn!(%error, "could not check the live state against the ledger");
            }
        }
    }))
}

/// `GET /api/v1/ledger/state`: the live tables, for a client to replay the ledger
/// against. Viewers of the server may read it, as they may read the ledger.
pub async fn state(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<api::LiveState>, ApiError> {
    caller.require(Action::View, &Scope::Server)?;
    let snapshot = state.engine.store().live_state().await?;
    Ok(Json(wire(snapshot)))
}

fn wire(Snapshot { ledger_size, state }: Snapshot) -> api::LiveState {
    let optional = |text: String| Some(text).filter(|text| !text.is_empty());
    api::LiveState {
        ledger_entries: ledger_size,
        environments: state
            .environments
            .into_iter()
            .map(|((project, environment), pointer)| api::LiveEnvironment {
                project,
                environment,
                release: pointer.release,
                version: pointer.version,
                moved_by: pointer.moved_by,
                hold: pointer.hold.map(|hold| api::LiveHold {
                    by: hold.by,
                    reason: hold.reason,
                }),
            })
            .collect(),
        stops: state
            .stops
            .into_iter()
            .map(|((project, environment), stop)| api::LiveStop {
                project,
                environment: optional(environment),
                by: stop.by,
                reason: stop.reason,
            })
            .collect(),
        grants: state
            .grants
            .into_iter()
            .map(|(grant, granted_by)| api::LiveGrant {
                principal: grant.principal,
                role: grant.role,
                project: optional(grant.project),
                environment: optional(grant.environment),
                granted_by,
            })
            .collect(),
        tokens: state
            .tokens
            .into_iter()
            .map(|(name, token)| api::LiveToken {
                name,
                principal: token.principal,
                expires_at: token.expires_at.flatten(),
                fingerprint: token.fingerprint.unwrap_or_default(),
                revoked_by: token.revoked_by,
            })
            .collect(),
    }
}
