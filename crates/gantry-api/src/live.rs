//! `GET /api/v1/ledger/state`: the live state a replay of the ledger must give, so that a
//! client can replay the (signed) export itself and compare.

use serde::{Deserialize, Serialize};

/// The live tables as one transaction read them, with the number of ledger entries
/// there were then: replaying exactly that many entries of an export must give this.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LiveState {
    pub ledger_entries: u64,
    #[serde(default)]
    pub environments: Vec<LiveEnvironment>,
    #[serde(default)]
    pub stops: Vec<LiveStop>,
    #[serde(default)]
    pub grants: Vec<LiveGrant>,
    #[serde(default)]
    pub tokens: Vec<LiveToken>,
}

/// An environment's pointer and hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveEnvironment {
    pub project: String,
    pub environment: String,
    /// The release it holds (`sha256:…`), if any.
    #[serde(default)]
    pub release: Option<String>,
    pub version: i64,
    #[serde(default)]
    pub moved_by: Option<String>,
    #[serde(default)]
    pub hold: Option<LiveHold>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveHold {
    pub by: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A stopped line: the whole project's when `environment` is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveStop {
    pub project: String,
    #[serde(default)]
    pub environment: Option<String>,
    pub by: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A grant: over the whole server when `project` is absent, a whole project when
/// `environment` is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveGrant {
    pub principal: String,
    pub role: String,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    pub granted_by: String,
}

/// A token, never its hash: the fingerprint is the SHA-256 (hex) of the stored hash's
/// hex text, as `token.created` ledger entries record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveToken {
    pub name: String,
    pub principal: String,
    #[serde(default)]
    pub expires_at: Option<String>,
    pub fingerprint: String,
    #[serde(default)]
    pub revoked_by: Option<String>,
}
