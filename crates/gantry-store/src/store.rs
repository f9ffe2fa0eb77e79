//! The `Store` trait: everything the engine keeps, behind one interface with no driver
//! types in it, so `SQLite` and `PostgreSQL` backends can both implement it.
//!
//! Every method that changes state appends its ledger entry in the same transaction,
//! and moves a pointer only by compare-and-swap on its version.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use gantry_core::{Digest, Grant, Name, Principal, PromotionState, ReleaseId, Verdict};

use crate::ledger::entry::Entry;
use crate::ledger::replay::Snapshot;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What went wrong in the store, in words an API error can carry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    /// The change lost a race or breaks a rule (a pointer moved meanwhile, a promotion
    /// that is not running); nothing was changed.
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(String),
}

/// Who made a change, and why: every change carries one into the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub actor: String,
    pub reason: Option<String>,
}

impl Audit {
    pub fn by(actor: impl Into<String>) -> Audit {
        Audit {
            actor: actor.into(),
            reason: None,
        }
    }

    #[must_use]
    pub fn because(mut self, reason: impl Into<String>) -> Audit {
        self.reason = Some(reason.into());
        self
    }
}

/// One component of a release: where it was resolved from, the digest, its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub component: Name,
    pub source: String,
    pub digest: Digest,
    pub labels: BTreeMap<String, String>,
}

/// A release to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    pub id: ReleaseId,
    pub project: Name,
    pub artifacts: Vec<Artifact>,
    pub labels: BTreeMap<String, String>,
}

/// A recorded release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRecord {
    pub id: ReleaseId,
    pub alias: String,
    pub project: Name,
    pub artifacts: Vec<Artifact>,
    pub labels: BTreeMap<String, String>,
    pub created_at: String,
    pub created_by: String,
}

/// Why a promotion exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromotionKind {
    /// Someone asked for it.
    Promote,
    /// Someone asked to put back an earlier release.
    Rollback,
    /// A `track` environment followed its upstream.
    Automatic,
}

impl PromotionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionKind::Promote => "promote",
            PromotionKind::Rollback => "rollback",
            PromotionKind::Automatic => "automatic",
        }
    }
}

impl FromStr for PromotionKind {
    type Err = String;

    fn from_str(text: &str) -> Result<PromotionKind, String> {
        match text {
            "promote" => Ok(PromotionKind::Promote),
            "rollback" => Ok(PromotionKind::Rollback),
            "automatic" => Ok(PromotionKind::Automatic),
            other => Err(format!("unknown promotion kind {other:?}")),
        }
    }
}

impl fmt::Display for PromotionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A promotion to queue. With an idempotency key, asking twice queues once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPromotion {
    pub project: Name,
    pub environment: Name,
    pub release: ReleaseId,
    pub kind: PromotionKind,
    pub idempotency_key: Option<String>,
    /// `Waiting` when its gates are pending, else `Queued`.
    pub state: PromotionState,
    /// Asks for the emergency path past freezes and stops.
    pub emergency: bool,
}

/// A recorded promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionRecord {
    pub id: i64,
    pub project: Name,
    pub environment: Name,
    pub release: ReleaseId,
    pub kind: PromotionKind,
    pub state: PromotionState,
    pub requested_by: String,
    pub requested_at: String,
    pub reason: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    /// What the environment held when this promotion ran.
    pub previous_release: Option<ReleaseId>,
    pub idempotency_key: Option<String>,
    pub emergency: bool,
    /// The replica that runs it, or ran it last.
    pub runner: Option<String>,
}

/// A pause of automation, with who and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub by: String,
    pub reason: Option<String>,
    pub since: String,
}

/// An environment's pointer and hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentRecord {
    pub project: Name,
    pub name: Name,
    pub release: Option<ReleaseId>,
    /// Bumped on every pointer move; a move names the version it expects.
    pub version: i64,
    pub since: Option<String>,
    pub moved_by: Option<String>,
    pub hold: Option<Hold>,
}

/// A replica's claim on the promotions it runs: each stays its own until `duration`
/// after the last renewal. A replica that dies stops renewing, and once its leases run
/// out any replica puts those promotions back in line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Which replica holds it: unique per process.
    pub holder: String,
    pub duration: std::time::Duration,
}

impl Lease {
    /// When a lease taken or renewed now runs out.
    pub fn until(&self) -> String {
        crate::time::format(std::time::SystemTime::now() + self.duration)
    }
}

/// How a running promotion ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The targets hold the release: move the pointer from this version.
    Succeeded {
        expected_version: i64,
    },
    Failed {
        error: String,
    },
}

/// Evidence to keep: the raw bytes (content-addressed) and their parsed summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvidence {
    pub project: Name,
    pub release: ReleaseId,
    /// `None`: about the whole release.
    pub component: Option<Name>,
    pub kind: String,
    pub digest: Digest,
    pub raw: Vec<u8>,
    /// The summary's JSON form, as gantry-evidence writes it.
    pub summary: String,
    /// `api`, or `registry` when pulled from beside the artifact.
    pub source: String,
}

/// Kept evidence, without its raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRecord {
    pub id: i64,
    pub project: Name,
    pub release: ReleaseId,
    pub component: Option<Name>,
    pub kind: String,
    pub digest: Digest,
    pub size: u64,
    pub summary: String,
    pub source: String,
    pub added_by: String,
    pub added_at: String,
}

/// A person's approval (or rejection) of a release for an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApproval {
    pub project: Name,
    pub release: ReleaseId,
    pub environment: Name,
    pub approve: bool,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    pub id: i64,
    pub project: Name,
    pub release: ReleaseId,
    pub environment: Name,
    pub user: String,
    pub approve: bool,
    pub comment: Option<String>,
    pub at: String,
}

/// A gate evaluation to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDecision {
    pub project: Name,
    pub release: ReleaseId,
    pub environment: Name,
    /// The promotion it was made for, if any (a `track` candidate has none).
    pub promotion: Option<i64>,
    pub verdict: Verdict,
    /// The gates' answers, warnings and the rest, as JSON the engine writes.
    pub detail: String,
    /// Each Rego policy used and the digest of its source.
    pub policies: Vec<(String, Digest)>,
    pub evidence: Vec<Digest>,
}

/// A token as listed: never its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub name: String,
    /// Whom it acts for.
    pub principal: Principal,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
}

/// Input Gantry turned away (bad evidence, a signature that does not verify): kept in
/// the ledger only, since nothing else changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefusal {
    pub project: Name,
    pub release: Option<ReleaseId>,
    /// What was refused, e.g. `evidence` or `signature`.
    pub what: String,
    /// Why, in the words the refusal gave.
    pub reason: String,
    /// Anything that identifies the input: its digest, kind, where it came from.
    pub detail: serde_json::Value,
}

/// A grant, with who gave it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub grant: Grant,
    pub granted_by: String,
    pub granted_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    pub id: i64,
    pub project: Name,
    pub release: ReleaseId,
    pub environment: Name,
    pub promotion: Option<i64>,
    pub verdict: Verdict,
    pub detail: String,
    pub policies: Vec<(String, Digest)>,
    pub evidence: Vec<Digest>,
    pub decided_by: String,
    pub decided_at: String,
}

/// A stopped line: no promotions into the project (or one environment) until resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRecord {
    pub project: Name,
    pub environment: Option<Name>,
    pub reason: String,
    pub by: String,
    pub since: String,
}

/// Everything Gantry keeps.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Makes sure each environment has a row (a pointer at nothing, version 0).
    async fn ensure_environments(&self, project: &Name, environments: &[Name]) -> Result<()>;

    /// Records a release, or returns the one with the same id; `true` when it is new.
    async fn create_release(
        &self,
        release: NewRelease,
        audit: &Audit,
    ) -> Result<(ReleaseRecord, bool)>;

    /// A release by full id (`sha256:…`), hex prefix or alias.
    async fn find_release(
        &self,
        project: &Name,
        id_or_alias: &str,
    ) -> Result<Option<ReleaseRecord>>;

    /// The release of a project created last, if any.
    async fn latest_release(&self, project: &Name) -> Result<Option<ReleaseRecord>>;

    async fn environments(&self, project: &Name) -> Result<Vec<EnvironmentRecord>>;

    /// The environments a release has ever been promoted into successfully.
    async fn reached(&self, project: &Name, release: &ReleaseId) -> Result<BTreeSet<Name>>;

    /// Queues a promotion, or returns the one queued earlier with the same idempotency
    /// key; `true` when it is new.
    async fn enqueue(
        &self,
        request: NewPromotion,
        audit: &Audit,
    ) -> Result<(PromotionRecord, bool)>;

    /// Starts the oldest queued promotion of an environment under `lease`, unless one is
    /// running there (on any replica).
    async fn start_next(
        &self,
        project: &Name,
        environment: &Name,
        lease: &Lease,
    ) -> Result<Option<PromotionRecord>>;

    /// Extends every lease `lease.holder` holds on running promotions to `lease.duration`
    /// from now (a zero duration gives them up at once); how many it holds.
    async fn renew_leases(&self, lease: &Lease) -> Result<usize>;

    /// Ends a running promotion that `runner` (a lease holder) runs. On success the
    /// pointer moves by compare-and-swap from `expected_version`; if it moved meanwhile,
    /// or another replica runs the promotion now (this one's lease ran out), nothing
    /// changes and this is a conflict.
    async fn finish(
        &self,
        id: i64,
        runner: &str,
        outcome: Outcome,
        audit: &Audit,
    ) -> Result<PromotionRecord>;

    /// Cancels a promotion that has not started; running and finished ones are a conflict.
    async fn cancel(&self, id: i64, audit: &Audit) -> Result<PromotionRecord>;

    /// Moves a promotion as its gates say: `Waiting → Queued` (they passed),
    /// `Waiting | Running → Rejected` (they failed, `reason` says why),
    /// `Running → Waiting` (pending again at the last look) or `Waiting → Superseded`
    /// (a newer release replaced it, `reason` says which).
    async fn advance(
        &self,
        id: i64,
        to: PromotionState,
        reason: Option<&str>,
        audit: &Audit,
    ) -> Result<PromotionRecord>;

    /// Promotions of a project in one state, oldest first.
    async fn promotions_in_state(
        &self,
        project: &Name,
        state: PromotionState,
    ) -> Result<Vec<PromotionRecord>>;

    /// When the release first reached each environment it has reached.
    async fn arrivals(&self, project: &Name, release: &ReleaseId)
    -> Result<BTreeMap<Name, String>>;

    /// Keeps evidence, or returns the same evidence kept before (same release,
    /// component and bytes); `true` when new.
    async fn add_evidence(
        &self,
        evidence: NewEvidence,
        audit: &Audit,
    ) -> Result<(EvidenceRecord, bool)>;

    /// A release's evidence, oldest first.
    async fn evidence(&self, project: &Name, release: &ReleaseId) -> Result<Vec<EvidenceRecord>>;

    /// The raw bytes of kept evidence.
    async fn evidence_bytes(&self, project: &Name, digest: &Digest) -> Result<Option<Vec<u8>>>;

    async fn add_approval(&self, approval: NewApproval, audit: &Audit) -> Result<ApprovalRecord>;

    /// Approvals and rejections of a release for an environment, oldest first.
    async fn approvals(
        &self,
        project: &Name,
        release: &ReleaseId,
        environment: &Name,
    ) -> Result<Vec<ApprovalRecord>>;

    async fn record_decision(&self, decision: NewDecision, audit: &Audit)
    -> Result<DecisionRecord>;

    /// Decisions about a release, newest first; one environment's or all.
    async fn decisions(
        &self,
        project: &Name,
        release: &ReleaseId,
        environment: Option<&Name>,
        limit: usize,
    ) -> Result<Vec<DecisionRecord>>;

    /// Stops (`Some(reason)` in the audit) or resumes the line for a project or one
    /// environment of it.
    async fn set_stop(
        &self,
        project: &Name,
        environment: Option<&Name>,
        stop: bool,
        audit: &Audit,
    ) -> Result<()>;

    /// Stops in force for a project (its own and its environments').
    async fn stops(&self, project: &Name) -> Result<Vec<StopRecord>>;

    /// Records a refusal in the ledger (`<what>.refused`).
    async fn record_refusal(&self, refusal: NewRefusal, audit: &Audit) -> Result<()>;

    async fn promotion(&self, id: i64) -> Result<Option<PromotionRecord>>;

    /// Newest first; all environments when `environment` is `None`.
    async fn promotions(
        &self,
        project: &Name,
        environment: Option<&Name>,
        limit: usize,
    ) -> Result<Vec<PromotionRecord>>;

    /// Holds (pauses automation for) or releases an environment.
    async fn set_hold(
        &self,
        project: &Name,
        environment: &Name,
        hold: bool,
        audit: &Audit,
    ) -> Result<EnvironmentRecord>;

    /// Promotions left running by a replica that stopped or died (their lease ran out)
    /// go back in line, first in their queue.
    async fn requeue_expired(&self, audit: &Audit) -> Result<Vec<PromotionRecord>>;

    /// Ledger entries with sequence greater than `after`, in order.
    async fn ledger_entries(&self, after: u64, limit: usize) -> Result<Vec<Entry>>;

    /// Keeps a token for `principal` by the hash of its secret; names are unique. With
    /// `lifetime`, it stops working after that long.
    async fn create_token(
        &self,
        name: &str,
        principal: &Principal,
        hash: &str,
        lifetime: Option<std::time::Duration>,
        audit: &Audit,
    ) -> Result<()>;

    /// Stops a token from working, for good.
    async fn revoke_token(&self, name: &str, audit: &Audit) -> Result<()>;

    /// Every token, revoked and expired ones too (never the hashes).
    async fn tokens(&self) -> Result<Vec<TokenRecord>>;

    /// The token whose secret hashes to `hash`, if it is neither revoked nor expired.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>>;

    /// Gives a principal a role over a scope, and returns the grant as kept; `false` when
    /// it had it already (nothing changes then, and the record is the earlier one).
    async fn grant(&self, grant: &Grant, audit: &Audit) -> Result<(GrantRecord, bool)>;

    /// Takes a grant away; a grant that does not exist is `NotFound`.
    async fn revoke_grant(&self, grant: &Grant, audit: &Audit) -> Result<()>;

    /// The grants of one principal, or of everyone, ordered by principal, then scope.
    async fn grants(&self, principal: Option<&Principal>) -> Result<Vec<GrantRecord>>;

    async fn token_count(&self) -> Result<u64>;

    /// What a replay of the ledger must give ([`crate::ledger::replay`]): every
    /// environment's pointer and hold, the stopped lines, the grants and the tokens (a
    /// fingerprint of each hash, never the hash), read in one transaction with the number
    /// of ledger entries there were then.
    async fn live_state(&self) -> Result<Snapshot>;
}
