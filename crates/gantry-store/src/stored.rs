//! What the backends share: how a change becomes its ledger entry, and how the text they
//! store reads back as domain values. Both backends go through here, so their ledgers
//! and their `Corrupt` errors come out the same.

use std::collections::BTreeMap;

use gantry_core::{Grant, Name, Principal, ReleaseId, Scope};

use crate::ledger::entry::{Entry, GENESIS};
use crate::ledger::replay::{EnvironmentState, HoldState, State, TokenState, token_fingerprint};
use crate::store::{Audit, PromotionRecord, Result, StoreError};
use crate::time;

/// What a ledger entry says, before it gets its place in the chain.
pub(crate) struct Draft<'a> {
    pub audit: &'a Audit,
    pub action: &'a str,
    pub project: &'a str,
    pub environment: Option<&'a str>,
    pub release: Option<&'a ReleaseId>,
    pub digests: BTreeMap<String, String>,
    pub reason: Option<String>,
    pub detail: serde_json::Value,
}

impl Draft<'_> {
    /// The entry this draft becomes after `last`, the sequence and hash of the ledger's
    /// last entry (`None` while the ledger is empty). The audit's reason stands in when
    /// the draft gives none.
    pub(crate) fn after(self, last: Option<(u64, String)>) -> Entry {
        let (sequence, previous) = match last {
            Some((sequence, hash)) => (sequence + 1, hash),
            None => (1, hex::encode(GENESIS)),
        };
        Entry {
            sequence,
            time: time::now(),
            actor: self.audit.actor.clone(),
            action: self.action.to_owned(),
            project: self.project.to_owned(),
            environment: self.environment.map(str::to_owned),
            release: self.release.map(|r| r.digest().to_string()),
            digests: self.digests,
            reason: self.reason.or_else(|| self.audit.reason.clone()),
            detail: self.detail,
            previous,
        }
    }
}

/// An entry as a ledger row keeps it: the hex hash and the canonical JSON text.
pub(crate) fn ledger_row(entry: &Entry) -> (String, String) {
    let canonical = String::from_utf8(entry.canonical_bytes()).expect("canonical JSON is UTF-8");
    (hex::encode(entry.hash()), canonical)
}

/// Reads a ledger row's entry back.
pub(crate) fn ledger_entry(text: &str) -> Result<Entry> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("ledger entry: {e}")))
}

pub(crate) fn parse<T: std::str::FromStr>(what: &str, text: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("{what} {text:?}: {e}")))
}

pub(crate) fn release_id(text: &str) -> Result<ReleaseId> {
    parse("release id", text).map(ReleaseId::from_digest)
}

pub(crate) fn labels(text: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("labels {text:?}: {e}")))
}

pub(crate) fn labels_json(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).expect("a string map is JSON")
}

/// A grant's scope as its two stored columns, project and environment; `''` stands for
/// "all" (the whole server, the whole project).
pub(crate) fn scope_columns(scope: &Scope) -> (&str, &str) {
    (
        scope.project().map_or("", Name::as_str),
        scope.environment().map_or("", Name::as_str),
    )
}

/// The scope two stored columns name.
pub(crate) fn scope(project: &str, environment: &str) -> Result<Scope> {
    Ok(match (project, environment) {
        ("", _) => Scope::Server,
        (project, "") => Scope::Project(parse("grant project", project)?),
        (project, environment) => Scope::Environment(
            parse("grant project", project)?,
            parse("grant environment", environment)?,
        ),
    })
}

/// What a ledger entry about a grant says.
pub(crate) fn grant_detail(grant: &Grant) -> serde_json::Value {
    let (project, environment) = scope_columns(&grant.scope);
    serde_json::json!({
        "principal": grant.principal.to_string(),
        "role": grant.role.as_str(),
        "project": project,
        "environment": environment,
    })
}

/// What a ledger entry about a new token says: its name, whom it acts for, when it
/// expires (`null`: never) and the fingerprint of its hash, so that a replay of the
/// ledger can tell the token in the live table from one changed by hand.
pub(crate) fn token_detail(
    name: &str,
    principal: &Principal,
    hash: &str,
    expires_at: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({
        "token": name,
        "principal": principal.to_string(),
        "expires_at": expires_at,
        "fingerprint": token_fingerprint(hash),
    })
}

/// Who gave the grants the upgrade to roles made (`sqlite/0006`, `postgres/0002`), in
/// SQL without a ledger entry; the store records them once, when it applies
/// `sqlite/0009` or `postgres/0004`.
pub(crate) const UPGRADE_GRANTOR: &str = "gantry (upgrade to roles)";

/// The grants the upgrade to roles made, as `(principal, role, project, environment)`.
pub(crate) const UPGRADE_GRANTS: &str = "SELECT principal, role, project, environment FROM grants \
     WHERE granted_by = 'gantry (upgrade to roles)' ORDER BY principal, project, environment, role";

/// The ledger entry that records a grant the upgrade to roles made.
pub(crate) fn upgrade_grant_draft(
    audit: &Audit,
    [principal, role, project, environment]: [String; 4],
) -> Draft<'_> {
    Draft {
        audit,
        action: "access.granted",
        project: "",
        environment: None,
        release: None,
        digests: BTreeMap::new(),
        reason: Some(
            "granted by the upgrade to roles, to a principal with a token in use; \
             recorded when the ledger began to prove grants"
                .to_owned(),
        ),
        detail: serde_json::json!({
            "principal": principal,
            "role": role,
            "project": project,
            "environment": environment,
        }),
    }
}

/// The queries that read the live state a ledger replay proves, the same text on both
/// backends; run them in one transaction with [`LIVE_LEDGER_SIZE`].
pub(crate) const LIVE_ENVIRONMENTS: &str = "SELECT project, name, release_id, version, moved_by, \
     held, hold_by, hold_reason FROM environments ORDER BY project, name";
pub(crate) const LIVE_STOPS: &str =
    "SELECT project, environment, stopped_by, reason FROM stops ORDER BY project, environment";
pub(crate) const LIVE_GRANTS: &str = "SELECT principal, role, project, environment, granted_by \
     FROM grants ORDER BY principal, role, project, environment";
/// A token counts as revoked when `revoked_at` is set: that is what stops it working.
pub(crate) const LIVE_TOKENS: &str = "SELECT name, COALESCE(principal, name), hash, expires_at, \
     CASE WHEN revoked_at IS NULL THEN NULL ELSE COALESCE(revoked_by, '(nobody)') END \
     FROM tokens ORDER BY name";
pub(crate) const LIVE_LEDGER_SIZE: &str = "SELECT COALESCE(MAX(sequence), 0) FROM ledger";

/// One row of [`LIVE_ENVIRONMENTS`] into the state.
#[expect(clippy::too_many_arguments, reason = "one row's columns")]
pub(crate) fn live_environment(
    state: &mut State,
    project: String,
    name: String,
    release: Option<String>,
    version: i64,
    moved_by: Option<String>,
    held: bool,
    hold_by: Option<String>,
    hold_reason: Option<String>,
) {
    state.environments.insert(
        (project, name),
        EnvironmentState {
            release,
            version,
            moved_by,
            hold: held.then(|| HoldState {
                by: hold_by.unwrap_or_default(),
                reason: hold_reason,
            }),
        },
    );
}

/// One row of [`LIVE_TOKENS`] into the state.
pub(crate) fn live_token(
    state: &mut State,
    [name, principal, hash]: [String; 3],
    expires_at: Option<String>,
    revoked_by: Option<String>,
) {
    state.tokens.insert(
        name,
        TokenState {
            principal,
            expires_at: Some(expires_at),
            fingerprint: Some(token_fingerprint(&hash)),
            revoked_by,
        },
    );
}

/// A conflict unless `runner` runs `promotion` (a promotion that is not running fails
/// the state machine's own check instead).
pub(crate) fn check_runner(promotion: &PromotionRecord, runner: &str) -> Result<()> {
    match &promotion.runner {
        Some(holder)
            if promotion.state == gantry_core::PromotionState::Running && holder != runner =>
        {
            Err(StoreError::Conflict(format!(
                "promotion {} is run by {holder} now, not {runner}: its lease ran out",
                promotion.id
            )))
        }
        _ => Ok(()),
    }
}

/// How many principals can still administer the server: an admin grant over the server
/// and a token that is neither revoked nor expired at `$1` (now). Both backends run this
/// text (`SQLite` reads `$1` as the first parameter).
pub(crate) const SERVER_ADMINS_WITH_TOKENS: &str = "SELECT COUNT(DISTINCT grants.principal) \
     FROM grants JOIN tokens ON tokens.principal = grants.principal \
     WHERE grants.role = 'admin' AND grants.project = '' AND grants.environment = '' \
     AND tokens.revoked_at IS NULL AND (tokens.expires_at IS NULL OR tokens.expires_at > $1)";

/// A conflict when a change inside a write transaction took the server admins who can
/// sign in from some (`before`) to none (`after`); the caller's transaction then rolls
/// back. Where there were none to begin with (admins who sign in by OIDC only), nothing
/// is refused.
pub(crate) fn keep_a_server_admin(what: &str, before: i64, after: i64) -> Result<()> {
    if before > 0 && after == 0 {
        return Err(StoreError::Conflict(format!(
            "{what} would leave nobody who can administer the server (no other principal has \
             admin over the server and a working token); first give another principal admin \
             over the server (gantry access grant admin --to NAME) and a token (gantry token \
             create NAME); if everyone is locked out already, run `gantry admin recover` on \
             the server's host"
        )));
    }
    Ok(())
}
