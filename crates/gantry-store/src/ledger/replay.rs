//! The live state the ledger proves, and how it compares with the live tables.
//!
//! Every change to an environment's pointer or hold, a stopped line, a grant or a token
//! is one ledger entry written in the same transaction as the change. Replaying the
//! entries in order therefore re-derives what those tables must hold ([`Replay`]), and
//! [`compare`] names every place where the live tables say something else: a pointer
//! moved, a hold lifted, a grant or a token added by hand in the database.
//!
//! What each entry proves:
//!
//! | entry | proves |
//! |---|---|
//! | `promotion.queued`, `promotion.waiting` (the first for a promotion) | who asked for it |
//! | `promotion.succeeded` | the environment's release and version; it was moved by who asked |
//! | `environment.held`, `environment.unheld` | the hold, by whom and why |
//! | `line.stopped`, `line.resumed` | the stopped line, by whom and why |
//! | `access.granted`, `access.revoked` | the grant, and who gave it |
//! | `token.created`, `token.revoked` | the token, whom it acts for, its lifetime and hash, who revoked it |
//!
//! Ledgers written before a `token.created` entry carried the token's lifetime and the
//! fingerprint of its hash cannot prove those two for the tokens they made: the replay
//! leaves them unknown and [`compare`] does not judge them. (A `token.created` entry
//! without a principal is from before roles: the token acts for a user of its own name,
//! as the upgrade to roles made it.) Timestamps of the live tables (`since`,
//! `granted_at`, …) are not compared: each was taken a moment apart from its entry's.
//!
//! This is pure code: the store reads the live tables, and callers hand both in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::BufRead;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::entry::{Entry, GENESIS};
use super::export::{VerifyError, json_error};

/// An environment's pointer and hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvironmentState {
    /// The release it holds (`sha256:…`), if any.
    pub release: Option<String>,
    /// Bumped on every pointer move.
    pub version: i64,
    /// Who asked for the promotion that moved it last.
    pub moved_by: Option<String>,
    pub hold: Option<HoldState>,
}

/// Who holds an environment, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldState {
    pub by: String,
    pub reason: Option<String>,
}

/// Who stopped a line, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopState {
    pub by: String,
    pub reason: Option<String>,
}

/// A grant, as its stored columns say it: `project` and `environment` are `""` for "all".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GrantKey {
    pub principal: String,
    pub role: String,
    pub project: String,
    pub environment: String,
}

impl fmt::Display for GrantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "grant of {} to {} over ", self.role, self.principal)?;
        match (self.project.as_str(), self.environment.as_str()) {
            ("", _) => f.write_str("the server"),
            (project, "") => write!(f, "project {project}"),
            (project, environment) => write!(f, "environment {project}/{environment}"),
        }
    }
}

/// A token: whom it acts for, when it expires, whether it was revoked, and (as a
/// fingerprint) which secret it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenState {
    pub principal: String,
    /// `None`: never. In a state the ledger derived, the outer `None` means the ledger
    /// does not say (its entry predates lifetimes in the ledger).
    pub expires_at: Option<Option<String>>,
    /// [`token_fingerprint`] of the stored hash; `None` in a state the ledger derived
    /// when its entry predates fingerprints.
    pub fingerprint: Option<String>,
    /// Who revoked it, if anyone did.
    pub revoked_by: Option<String>,
}

/// What the live tables hold, or what the ledger says they must.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// By (project, environment).
    pub environments: BTreeMap<(String, String), EnvironmentState>,
    /// Stopped lines by (project, environment); `""` for the whole project.
    pub stops: BTreeMap<(String, String), StopState>,
    /// Grants, and who gave each.
    pub grants: BTreeMap<GrantKey, String>,
    /// Tokens by name.
    pub tokens: BTreeMap<String, TokenState>,
}

/// The live tables read in one transaction, with the number of ledger entries there were
/// then: replaying exactly those entries must give the same state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub ledger_size: u64,
    pub state: State,
}

/// The fingerprint of a stored token hash (itself the SHA-256 of the token): the
/// SHA-256 of its hex text, in hex. The ledger records it so that a hash swapped in the
/// database shows, without keeping the hash itself where every auditor reads.
pub fn token_fingerprint(hash: &str) -> String {
    hex::encode(Sha256::digest(hash.as_bytes()))
}

/// A place where the live tables and the ledger disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The project it concerns; `None` for the whole server (tokens, grants over it).
    pub project: Option<String>,
    /// What disagrees, e.g. `environment payments/prod`.
    pub subject: String,
    /// How, e.g. `pointer names release sha256:…, ledger says sha256:…`.
    pub problem: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.problem)
    }
}

/// Replays ledger entries, in order from entry 1, into the [`State`] they prove. It also
/// checks the chain (sequence numbers and `previous` hashes) as it goes, so it can be fed
/// entries as they come, a page at a time.
#[derive(Debug, Clone)]
pub struct Replay {
    state: State,
    entries: u64,
    last_hash: [u8; 32],
    /// Who asked for each promotion, by id.
    requesters: BTreeMap<i64, String>,
}

impl Default for Replay {
    fn default() -> Self {
        Self::new()
    }
}

impl Replay {
    /// A replay of no entries: environments at nothing, nothing held, stopped, granted.
    pub fn new() -> Self {
        Replay {
            state: State::default(),
            entries: 0,
            last_hash: GENESIS,
            requesters: BTreeMap::new(),
        }
    }

    /// How many entries have been applied.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The state the entries applied so far prove.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Applies the next entry, which must follow the last one applied.
    pub fn apply(&mut self, entry: &Entry) -> Result<(), VerifyError> {
        let expected = self.entries + 1;
        if entry.sequence != expected {
            return Err(VerifyError::Sequence {
                expected,
                found: entry.sequence,
                line: None,
            });
        }
        if entry.previous != hex::encode(self.last_hash) {
            return Err(VerifyError::Previous {
                sequence: entry.sequence,
                line: None,
            });
        }
        self.last_hash = entry.hash();
        self.entries = expected;
        self.interpret(entry);
        Ok(())
    }

    fn interpret(&mut self, entry: &Entry) {
        let detail = |name: &str| entry.detail.get(name).and_then(serde_json::Value::as_str);
        let place = || {
            (
                entry.project.clone(),
                entry.environment.clone().unwrap_or_default(),
            )
        };
        match entry.action.as_str() {
            // The first entry of a promotion is the request; later ones with the same
            // action (waiting → queued, requeued) are the gates' and the runners'.
            "promotion.queued" | "promotion.waiting" => {
                if let Some(id) = entry
                    .detail
                    .get("promotion")
                    .and_then(serde_json::Value::as_i64)
                {
                    self.requesters
                        .entry(id)
                        .or_insert_with(|| entry.actor.clone());
                }
            }
            "promotion.succeeded" => {
                let moved_by = entry
                    .detail
                    .get("promotion")
                    .and_then(serde_json::Value::as_i64)
                    .and_then(|id| self.requesters.get(&id).cloned());
                let environment = self.state.environments.entry(place()).or_default();
                environment.version = entry
                    .detail
                    .get("version")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(environment.version + 1);
                environment.release.clone_from(&entry.release);
                environment.moved_by = moved_by;
            }
            "environment.held" => {
                self.state.environments.entry(place()).or_default().hold = Some(HoldState {
                    by: entry.actor.clone(),
                    reason: entry.reason.clone(),
                });
            }
            "environment.unheld" => {
                self.state.environments.entry(place()).or_default().hold = None;
            }
            "line.stopped" => {
                self.state.stops.insert(
                    place(),
                    StopState {
                        by: entry.actor.clone(),
                        reason: entry.reason.clone(),
                    },
                );
            }
            "line.resumed" => {
                self.state.stops.remove(&place());
            }
            "access.granted" | "access.revoked" => {
                let key = GrantKey {
                    principal: detail("principal").unwrap_or_default().to_owned(),
                    role: detail("role").unwrap_or_default().to_owned(),
                    project: detail("project").unwrap_or_default().to_owned(),
                    environment: detail("environment").unwrap_or_default().to_owned(),
                };
                if entry.action == "access.granted" {
                    self.state.grants.insert(key, entry.actor.clone());
                } else {
                    self.state.grants.remove(&key);
                }
            }
            "token.created" => {
                let Some(name) = detail("token") else { return };
                let expires_at = entry
                    .detail
                    .get("expires_at")
                    .map(|value| value.as_str().map(str::to_owned));
                self.state.tokens.insert(
                    name.to_owned(),
                    TokenState {
                        principal: detail("principal").unwrap_or(name).to_owned(),
                        expires_at,
                        fingerprint: detail("fingerprint").map(str::to_owned),
                        revoked_by: None,
                    },
                );
            }
            "token.revoked" => {
                if let Some(token) = detail("name").and_then(|name| self.state.tokens.get_mut(name))
                {
                    token.revoked_by = Some(entry.actor.clone());
                }
            }
            _ => {}
        }
    }
}

/// The mismatches found so far, and the project of the ones being looked for.
#[derive(Default)]
struct Found {
    list: Vec<Mismatch>,
    project: Option<String>,
}

impl Found {
    fn add(&mut self, subject: &dyn fmt::Display, problem: String) {
        self.list.push(Mismatch {
            project: self.project.clone(),
            subject: subject.to_string(),
            problem,
        });
    }
}

/// Replays the first `entries` entries of an export (see [`super::export`]); verify the
/// export first, with [`super::export::verify_export`], to know who wrote them.
pub fn replay_export(reader: impl BufRead, entries: u64) -> Result<Replay, VerifyError> {
    #[derive(Deserialize)]
    struct Line {
        #[serde(default)]
        entry: Option<Entry>,
    }
    let mut replay = Replay::new();
    for (index, line) in reader.lines().enumerate().skip(1) {
        if replay.entries() == entries {
            break;
        }
        let number = index as u64 + 1;
        let line = line.map_err(|source| VerifyError::Read {
            line: number,
            source,
        })?;
        let parsed: Line = serde_json::from_str(&line).map_err(|e| json_error(number, &e))?;
        if let Some(entry) = parsed.entry {
            replay.apply(&entry)?;
        }
    }
    if replay.entries() < entries {
        return Err(VerifyError::Short {
            entries: replay.entries(),
            expected: entries,
        });
    }
    Ok(replay)
}

/// Every place where `live` says something other than what the ledger proves
/// (`ledger`), in a stable order: environments, stopped lines, grants, tokens.
pub fn compare(ledger: &State, live: &State) -> Vec<Mismatch> {
    let mut found = Found::default();

    let unmoved = EnvironmentState::default();
    let places: BTreeSet<&(String, String)> = ledger
        .environments
        .keys()
        .chain(live.environments.keys())
        .collect();
    for place in places {
        let subject = format!("environment {}/{}", place.0, place.1);
        found.project = Some(place.0.clone());
        let said = ledger.environments.get(place).unwrap_or(&unmoved);
        let Some(is) = live.environments.get(place) else {
            if said != &unmoved {
                found.add(
                    &subject,
                    format!(
                        "missing from the live tables, ledger says it holds {} at version {}",
                        release_text(said.release.as_ref()),
                        said.version
                    ),
                );
            }
            continue;
        };
        if is.release != said.release {
            found.add(
                &subject,
                format!(
                    "pointer names release {}, ledger says {}",
                    release_text(is.release.as_ref()),
                    release_text(said.release.as_ref())
                ),
            );
        }
        if is.version != said.version {
            found.add(
                &subject,
                format!(
                    "pointer is at version {}, ledger says {}",
                    is.version, said.version
                ),
            );
        }
        if is.moved_by != said.moved_by {
            found.add(
                &subject,
                format!(
                    "pointer was moved by {}, ledger says {}",
                    who(is.moved_by.as_ref()),
                    who(said.moved_by.as_ref())
                ),
            );
        }
        if is.hold != said.hold {
            let hold = |hold: Option<&HoldState>| match hold {
                None => "not held".to_owned(),
                Some(hold) => format!("held by {}{}", hold.by, because(hold.reason.as_ref())),
            };
            found.add(
                &subject,
                format!(
                    "{}, ledger says {}",
                    hold(is.hold.as_ref()),
                    hold(said.hold.as_ref())
                ),
            );
        }
    }

    let lines: BTreeSet<&(String, String)> = ledger.stops.keys().chain(live.stops.keys()).collect();
    for line in lines {
        found.project = Some(line.0.clone());
        let subject = match line.1.as_str() {
            "" => format!("line of project {}", line.0),
            environment => format!("line of environment {}/{environment}", line.0),
        };
        let (is, said) = (live.stops.get(line), ledger.stops.get(line));
        if is != said {
            let stop = |stop: Option<&StopState>| match stop {
                None => "not stopped".to_owned(),
                Some(stop) => format!("stopped by {}{}", stop.by, because(stop.reason.as_ref())),
            };
            found.add(
                &subject,
                format!("{}, ledger says {}", stop(is), stop(said)),
            );
        }
    }

    let grants: BTreeSet<&GrantKey> = ledger.grants.keys().chain(live.grants.keys()).collect();
    for grant in grants {
        found.project = Some(grant.project.clone()).filter(|project| !project.is_empty());
        match (live.grants.get(grant), ledger.grants.get(grant)) {
            (Some(_), None) => found.add(grant, "in the live tables, not in the ledger".to_owned()),
            (None, Some(_)) => found.add(
                grant,
                "in the ledger, missing from the live tables".to_owned(),
            ),
            (Some(is), Some(said)) if is != said => {
                found.add(grant, format!("given by {is}, ledger says by {said}"));
            }
            _ => {}
        }
    }

    found.project = None;
    let names: BTreeSet<&String> = ledger.tokens.keys().chain(live.tokens.keys()).collect();
    for name in names {
        let subject = format!("token {name}");
        let (is, said) = match (live.tokens.get(name), ledger.tokens.get(name)) {
            (Some(is), Some(said)) => (is, said),
            (Some(_), None) => {
                found.add(&subject, "in the live tables, not in the ledger".to_owned());
                continue;
            }
            (None, Some(_)) => {
                found.add(
                    &subject,
                    "in the ledger, missing from the live tables".to_owned(),
                );
                continue;
            }
            (None, None) => continue,
        };
        if is.principal != said.principal {
            found.add(
                &subject,
                format!("acts for {}, ledger says {}", is.principal, said.principal),
            );
        }
        if let (Some(is_expiry), Some(said_expiry)) = (&is.expires_at, &said.expires_at) {
            if is_expiry != said_expiry {
                let expiry = |at: Option<&String>| {
                    at.map_or_else(|| "never expires".to_owned(), |at| format!("expires {at}"))
                };
                found.add(
                    &subject,
                    format!(
                        "{}, ledger says it {}",
                        expiry(is_expiry.as_ref()),
                        expiry(said_expiry.as_ref())
                    ),
                );
            }
        }
        if said.fingerprint.is_some() && is.fingerprint != said.fingerprint {
            found.add(
                &subject,
                "its stored hash is not the one the ledger recorded: it accepts another secret"
                    .to_owned(),
            );
        }
        if is.revoked_by != said.revoked_by {
            let revoked = |by: Option<&String>| {
                by.map_or_else(|| "not revoked".to_owned(), |by| format!("revoked by {by}"))
            };
            found.add(
                &subject,
                format!(
                    "{}, ledger says {}",
                    revoked(is.revoked_by.as_ref()),
                    revoked(said.revoked_by.as_ref())
                ),
            );
        }
    }
    found.list
}

fn release_text(release: Option<&String>) -> &str {
    release.map_or("nothing", String::as_str)
}

fn who(actor: Option<&String>) -> &str {
    actor.map_or("nobody", String::as_str)
}

fn because(reason: Option<&String>) -> String {
    reason
        .map(|reason| format!(" ({reason:?})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// Builds a chain of entries one call at a time.
    #[derive(Default)]
    struct Ledger {
        entries: Vec<Entry>,
    }

    impl Ledger {
        fn add(
            &mut self,
            actor: &str,
            action: &str,
            place: (&str, Option<&str>),
            release: Option<&str>,
            reason: Option<&str>,
            detail: Value,
        ) -> &mut Self {
            let previous = self.entries.last().map_or(GENESIS, Entry::hash);
            self.entries.push(Entry {
                sequence: self.entries.len() as u64 + 1,
                time: "2026-11-21T22:00:00.000Z".to_owned(),
                actor: actor.to_owned(),
                action: action.to_owned(),
                project: place.0.to_owned(),
                environment: place.1.map(str::to_owned),
                release: release.map(str::to_owned),
                digests: BTreeMap::new(),
                reason: reason.map(str::to_owned),
                detail,
                previous: hex::encode(previous),
            });
            self
        }

        fn replay(&self) -> Replay {
            let mut replay = Replay::new();
            for entry in &self.entries {
                replay.apply(entry).expect("a chain");
            }
            replay
        }
    }

    const PROD: (&str, Option<&str>) = ("payments", Some("prod"));
    const SERVER: (&str, Option<&str>) = ("", None);

    fn release(seed: char) -> String {
        format!("sha256:{}", seed.to_string().repeat(64))
    }

    /// A ledger with a pointer move, a hold, a stop, a grant and two tokens (one revoked),
    /// and the live state it proves.
    fn story() -> (Ledger, State) {
        let mut ledger = Ledger::default();
        let a = release('a');
        ledger
            .add("admin", "token.created", SERVER, None, None, json!({
                "token": "ci", "principal": "service:ci", "expires_at": null,
                "fingerprint": token_fingerprint("h1"),
            }))
            .add("admin", "access.granted", SERVER, None, None, json!({
                "principal": "service:ci", "role": "promoter", "project": "payments", "environment": "",
            }))
            .add("service:ci", "promotion.queued", PROD, Some(&a), None, json!({"promotion": 1, "kind": "promote"}))
            .add("gantry", "promotion.running", PROD, Some(&a), None, json!({"promotion": 1, "kind": "promote"}))
            .add("gantry", "promotion.queued", PROD, Some(&a), None, json!({"promotion": 1, "kind": "promote"}))
            .add("gantry", "promotion.succeeded", PROD, Some(&a), None, json!({
                "promotion": 1, "kind": "promote", "previous": null, "version": 1,
            }))
            .add("alice", "environment.held", PROD, Some(&a), Some("incident 7"), Value::Null)
            .add("alice", "line.stopped", ("payments", None), None, Some("freeze"), Value::Null)
            // Tokens made before the ledger said more than their name.
            .add("admin", "token.created", SERVER, None, None, json!({"token": "old"}))
            .add("admin", "token.revoked", SERVER, None, None, json!({"name": "old"}));
        let mut live = State::default();
        live.environments.insert(
            ("payments".to_owned(), "prod".to_owned()),
            EnvironmentState {
                release: Some(a),
                version: 1,
                moved_by: Some("service:ci".to_owned()),
                hold: Some(HoldState {
                    by: "alice".to_owned(),
                    reason: Some("incident 7".to_owned()),
                }),
            },
        );
        live.environments.insert(
            ("payments".to_owned(), "dev".to_owned()),
            EnvironmentState::default(),
        );
        live.stops.insert(
            ("payments".to_owned(), String::new()),
            StopState {
                by: "alice".to_owned(),
                reason: Some("freeze".to_owned()),
            },
        );
        live.grants.insert(
            GrantKey {
                principal: "service:ci".to_owned(),
                role: "promoter".to_owned(),
                project: "payments".to_owned(),
                environment: String::new(),
            },
            "admin".to_owned(),
        );
        for (name, principal, hash, revoked_by) in [
            ("ci", "service:ci", "h1", None),
            ("old", "old", "h0", Some("admin".to_owned())),
        ] {
            live.tokens.insert(
                name.to_owned(),
                TokenState {
                    principal: principal.to_owned(),
                    expires_at: Some(
                        Some("2027-01-01T00:00:00.000Z".to_owned()).filter(|_| name == "old"),
                    ),
                    fingerprint: Some(token_fingerprint(hash)),
                    revoked_by,
                },
            );
        }
        (ledger, live)
    }

    fn problems(ledger: &State, live: &State) -> Vec<String> {
        compare(ledger, live)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_ledger_proves_the_live_state() {
        let (ledger, live) = story();
        let replay = ledger.replay();
        assert_eq!(replay.entries(), 10);
        // The old token's lifetime and hash are unknown to the ledger, so not judged.
        assert_eq!(problems(replay.state(), &live), Vec::<String>::new());
        assert_eq!(replay.state().tokens["old"].expires_at, None);
        assert_eq!(replay.state().tokens["ci"].expires_at, Some(None));
    }

    #[test]
    fn every_change_by_hand_is_named() {
        let (ledger, mut live) = story();
        let replay = ledger.replay();
        let prod = live
            .environments
            .get_mut(&("payments".to_owned(), "prod".to_owned()))
            .expect("prod");
        prod.release = Some(release('f'));
        prod.version = 2;
        prod.hold = None;
        live.environments
            .remove(&("payments".to_owned(), "dev".to_owned()));
        live.stops.clear();
        live.grants.insert(
            GrantKey {
                principal: "mallory".to_owned(),
                role: "admin".to_owned(),
                project: String::new(),
                environment: String::new(),
            },
            "admin".to_owned(),
        );
        let ci = live.tokens.get_mut("ci").expect("ci");
        ci.fingerprint = Some(token_fingerprint("mallory's"));
        ci.expires_at = Some(Some("2099-01-01T00:00:00.000Z".to_owned()));
        live.tokens.get_mut("old").expect("old").revoked_by = None;
        let (a, f) = (release('a'), release('f'));
        assert_eq!(
            problems(replay.state(), &live),
            [
                format!("environment payments/prod: pointer names release {f}, ledger says {a}"),
                "environment payments/prod: pointer is at version 2, ledger says 1".to_owned(),
                "environment payments/prod: not held, ledger says held by alice (\"incident 7\")"
                    .to_owned(),
                "line of project payments: not stopped, ledger says stopped by alice (\"freeze\")"
                    .to_owned(),
                "grant of admin to mallory over the server: in the live tables, not in the ledger"
                    .to_owned(),
                "token ci: expires 2099-01-01T00:00:00.000Z, ledger says it never expires"
                    .to_owned(),
                "token ci: its stored hash is not the one the ledger recorded: it accepts another secret"
                    .to_owned(),
                "token old: not revoked, ledger says revoked by admin".to_owned(),
            ]
        );

        // Each names its project, or none for the whole server.
        let projects: Vec<Option<String>> = compare(replay.state(), &live)
            .into_iter()
            .map(|mismatch| mismatch.project)
            .collect();
        let payments = Some("payments".to_owned());
        assert_eq!(
            projects,
            [
                payments.clone(),
                payments.clone(),
                payments.clone(),
                payments,
                None,
                None,
                None,
                None
            ]
        );

        // What the ledger proves and the tables lack is named too.
        let (_, mut live) = story();
        live.environments.clear();
        live.grants.clear();
        live.tokens.remove("ci");
        assert_eq!(
            problems(replay.state(), &live),
            [
                format!(
                    "environment payments/prod: missing from the live tables, ledger says it holds {a} at version 1"
                ),
                "grant of promoter to service:ci over project payments: in the ledger, missing from the live tables"
                    .to_owned(),
                "token ci: in the ledger, missing from the live tables".to_owned(),
            ]
        );
    }

    #[test]
    fn the_pointer_was_moved_by_who_asked() {
        let (ledger, mut live) = story();
        live.environments
            .get_mut(&("payments".to_owned(), "prod".to_owned()))
            .expect("prod")
            .moved_by = Some("mallory".to_owned());
        assert_eq!(
            problems(ledger.replay().state(), &live),
            ["environment payments/prod: pointer was moved by mallory, ledger says service:ci"]
        );
    }

    #[test]
    fn an_export_replays_up_to_a_size() {
        let (ledger, live) = story();
        let key = super::super::note::generate("test").expect("a key");
        let mut export = Vec::new();
        super::super::export::write_export(
            &mut export,
            "test",
            &key.verifier_key(),
            ledger.entries.clone(),
            Vec::new(),
        )
        .expect("writes");
        let replay = replay_export(export.as_slice(), 10).expect("replays");
        assert_eq!(compare(replay.state(), &live), []);
        // Up to the pointer move only: nothing held or stopped yet, and one token.
        let replay = replay_export(export.as_slice(), 6).expect("replays");
        assert_eq!(replay.entries(), 6);
        assert_eq!(replay.state().tokens.len(), 1);
        assert_eq!(
            replay_export(export.as_slice(), 11)
                .expect_err("short")
                .to_string(),
            "the export holds 10 entries, fewer than the 11 to replay"
        );
    }

    #[test]
    fn a_broken_chain_stops_the_replay() {
        let (mut ledger, _) = story();
        ledger.entries[4].actor = "mallory".to_owned();
        let mut replay = Replay::new();
        let error = ledger
            .entries
            .iter()
            .try_for_each(|entry| replay.apply(entry))
            .expect_err("broken");
        assert_eq!(
            error.to_string(),
            "entry 6: previous hash does not match entry 5"
        );
        let mut replay = Replay::new();
        assert_eq!(
            replay
                .apply(&ledger.entries[1])
                .expect_err("out of order")
                .to_string(),
            "entry 1: sequence 2 where 1 was expected"
        );
    }
}
