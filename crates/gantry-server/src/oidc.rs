//! Sign-in with OIDC ID tokens: a CI job (GitHub Actions' `ACTIONS_ID_TOKEN`, GitLab's
//! `id_tokens`, ...) presents the token its platform issued as a bearer token, and
//! Gantry maps it to a service account by rules on its claims, so no long-lived Gantry
//! token has to be stored in CI.
//!
//! A token is accepted when its signature verifies with a key the issuer publishes,
//! its `iss` is a configured issuer, its `aud` holds that issuer's audience, it is
//! within its validity window (with [`LEEWAY_SECONDS`] of slack for clock skew), and
//! one of that issuer's account rules matches its claims. Rules are tried in order and
//! the first match wins, so put narrow rules before broad ones.
//!
//! Nothing here echoes a token: errors name which part is wrong, and quote only what an
//! operator needs to fix a rule (issuer, key id, audience, subject), shortened.

mod jwks;
mod jwt;
mod key_source;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use gantry_core::Name;
use serde::Deserialize;
use serde_json::{Map, Value};

use self::jwks::KeyChoiceError;
use self::jwt::{ACCEPTED_ALGORITHMS, Algorithm};
use self::key_source::{CachePolicy, KeySource, is_loopback};

/// Slack, in seconds, when comparing `exp`, `nbf` and `iat` with this server's clock.
pub const LEEWAY_SECONDS: i64 = 60;

/// One trusted issuer, as written in the server's configuration:
///
/// ```yaml
/// oidc:
///   - issuer: https://token.actions.githubusercontent.com
///     audience: https://gantry.example.com
///     jwks: https://token.actions.githubusercontent.com/.well-known/jwks  # or /etc/gantry/jwks.json
///     accounts:
///       - service_account: payments-ci
///         claims: { repository: acme/payments, ref: refs/heads/main }
///       - service_account: any-acme-ci
///         claims: { sub: "repo:acme/*" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// The `iss` the issuer's tokens carry, compared exactly: an `https://` URL
    /// (`http://` only for localhost or 127.0.0.1, in tests).
    pub issuer: String,
    /// The `aud` tokens must hold. For GitHub Actions, the `audience` the workflow asks
    /// for; make it this server's URL so tokens minted for other services do not work.
    pub audience: String,
    /// The issuer's JWK set: an `https://` URL, fetched when first needed and kept 10
    /// minutes, or the path of a file read at start-up.
    pub jwks: String,
    /// Which service account a token acts as; the first rule that matches wins.
    pub accounts: Vec<AccountRule>,
}

/// A token acts as `service_account` when every claim named in `claims` is a string
/// that matches its pattern, where `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRule {
    /// The service account's name, as in `service:NAME` grants.
    pub service_account: String,
    /// Claim name to pattern, e.g. `repository: acme/payments`, `ref: refs/heads/*`.
    pub claims: BTreeMap<String, String>,
}

/// A setting that cannot be used, and which one: `oidc[0].accounts[1].claims: give at
/// least one claim`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct OidcConfigError {
    /// Where in the settings, e.g. `oidc[0].jwks`.
    pub field: String,
    /// What is wrong, and where it helps, what to write instead.
    pub message: String,
}

/// Who a verified token acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The service account of the first matching rule.
    pub service_account: Name,
    /// The token's `iss`.
    pub issuer: String,
    /// The token's `sub`, e.g. `repo:acme/payments:ref:refs/heads/main`: worth logging
    /// with what the request did.
    pub subject: String,
}

/// A part of a token, as [`OidcError::Malformed`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPart {
    /// The token as a whole: its length or its segments.
    Token,
    /// The JOSE header, the first segment.
    Header,
    /// The claims, the second segment.
    Payload,
    /// The signature, the third segment.
    Signature,
}

impl fmt::Display for TokenPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenPart::Token => "token",
            TokenPart::Header => "header",
            TokenPart::Payload => "payload",
            TokenPart::Signature => "signature",
        })
    }
}

/// Why an ID token was refused. Every message is fit for a 401 body: none quotes the
/// token, only short, sanitized names from it where they help fix a rule.
///
/// [`OidcError::JwksFetch`] is the server's trouble, not the caller's; a server may
/// prefer to answer it with 503 and log it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The token cannot be decoded, or a claim has the wrong type.
    #[error("malformed ID token: {part}: {reason}")]
    Malformed {
        part: TokenPart,
        reason: &'static str,
    },
    /// The header's `alg` is not one Gantry accepts (`none` and `HS*` never are).
    #[error("the ID token's alg {alg:?} is not accepted; use one of {ACCEPTED_ALGORITHMS}")]
    UnsupportedAlgorithm { alg: String },
    /// The token's `iss` is not a configured issuer.
    #[error("the ID token's issuer {issuer:?} is not configured")]
    UnknownIssuer { issuer: String },
    /// The issuer publishes no key with the token's `kid`.
    #[error("issuer {issuer} has no signing key with kid {kid:?}")]
    UnknownKeyId { issuer: String, kid: String },
    /// The token names no `kid`, and not exactly one of the issuer's keys fits its alg.
    #[error(
        "the ID token names no kid, and issuer {issuer} has {} for {alg}",
        count_keys(*fitting)
    )]
    NoSingleKey {
        issuer: String,
        alg: &'static str,
        fitting: usize,
    },
    /// The key with the token's `kid` is in the issuer's set, but Gantry cannot use it.
    #[error("issuer {issuer}'s key {kid:?} cannot be used: {reason}")]
    UnusableKey {
        issuer: String,
        kid: String,
        reason: String,
    },
    /// The token's `alg` does not fit the type of the key its `kid` names.
    #[error("the ID token's alg {alg} does not fit issuer {issuer}'s key {kid:?}, an {key}")]
    KeyMismatch {
        issuer: String,
        kid: String,
        alg: &'static str,
        key: String,
    },
    /// The signature does not verify: the token was altered or not made by the issuer.
    #[error("the ID token's signature does not verify with issuer {issuer}'s key")]
    BadSignature { issuer: String },
    /// The token's `exp` has passed.
    #[error("the ID token expired at {}", timestamp(*expired_at))]
    Expired {
        /// `exp`, in seconds since the Unix epoch.
        expired_at: i64,
    },
    /// The token's `nbf` or `iat` lies in the future.
    #[error("the ID token is not valid yet: its {claim} is {}", timestamp(*at))]
    NotYetValid {
        claim: &'static str,
        /// The claim, in seconds since the Unix epoch.
        at: i64,
    },
    /// The token's `aud` does not hold the issuer's configured audience.
    #[error("the ID token is for audience {}, not {expected:?}", audiences(got))]
    WrongAudience { expected: String, got: Vec<String> },
    /// The token is genuine, but no account rule of its issuer matches its claims.
    #[error("no account rule of issuer {issuer} matches the ID token of subject {subject:?}")]
    NoAccountRule { issuer: String, subject: String },
    /// The issuer's key set could not be fetched.
    #[error("cannot fetch the key set {url}: {reason}")]
    JwksFetch { url: String, reason: String },
}

impl OidcError {
    fn from_key_choice(
        error: KeyChoiceError,
        issuer: &str,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> OidcError {
        let issuer = issuer.to_owned();
        let kid = shorten(kid.unwrap_or_default());
        match error {
            KeyChoiceError::UnknownKid => OidcError::UnknownKeyId { issuer, kid },
            KeyChoiceError::NoSingleKey { fitting } => OidcError::NoSingleKey {
                issuer,
                alg: algorithm.name(),
                fitting,
            },
            KeyChoiceError::Unusable { reason } => OidcError::UnusableKey {
                issuer,
                kid,
                reason,
            },
            KeyChoiceError::Mismatch { key } => OidcError::KeyMismatch {
                issuer,
                kid,
                alg: algorithm.name(),
                key,
            },
        }
    }
}

fn count_keys(count: usize) -> String {
    match count {
        0 => "no key".to_owned(),
        many => format!("{many} keys; name one with kid"),
    }
}

fn timestamp(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map_or_else(
        |_| format!("{seconds} (seconds since 1970)"),
        |at| at.to_string(),
    )
}

fn audiences(got: &[String]) -> String {
    match got {
        [] => "nothing (it has no aud)".to_owned(),
        [one] => format!("{one:?}"),
        many => format!("{many:?}"),
    }
}

/// Text from a token as an error may quote it: at most 100 characters, since a 401
/// body or a log line is no place for a megabyte of attacker-chosen text.
fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 100;
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// Verifies ID tokens against the configured issuers. Cheap to clone: clones share the
/// issuers' cached keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    issuers: Arc<[TrustedIssuer]>,
}

/// One configured issuer, validated.
#[derive(Debug)]
struct TrustedIssuer {
    issuer: String,
    audience: String,
    keys: KeySource,
    accounts: Vec<Account>,
}

#[derive(Debug)]
struct Account {
    service_account: Name,
    claims: Vec<(String, String)>,
}

impl Account {
    /// Whether every claim this rule names is a string that matches its pattern.
    fn matches(&self, claims: &Map<String, Value>) -> bool {
        self.claims.iter().all(|(claim, pattern)| {
            claims
                .get(claim)
                .and_then(Value::as_str)
                .is_some_and(|value| gantry_core::glob(pattern, value))
        })
    }
}

impl Verifier {
    /// Checks the settings and reads JWK set files now; URL sets are fetched when a
    /// token first needs them.
    ///
    /// # Errors
    ///
    /// When a setting cannot be used, naming the field, as in
    /// `oidc[0].accounts[1].claims: give at least one claim`.
    pub fn new(settings: Vec<IssuerSettings>) -> Result<Verifier, OidcConfigError> {
        Verifier::with_cache_policy(settings, CachePolicy::default())
    }

    fn with_cache_policy(
        settings: Vec<IssuerSettings>,
        policy: CachePolicy,
    ) -> Result<Verifier, OidcConfigError> {
        if settings.is_empty() {
            return Err(config_error(
                "oidc",
                "give at least one issuer, or leave oidc out",
            ));
        }
        let mut seen = HashSet::new();
        let issuers = settings
            .into_iter()
            .enumerate()
            .map(|(index, issuer)| {
                let field = format!("oidc[{index}]");
                if !seen.insert(issuer.issuer.clone()) {
                    return Err(config_error(
                        format!("{field}.issuer"),
                        format!(
                            "{} is configured twice; put all its account rules under one entry",
                            issuer.issuer
                        ),
                    ));
                }
                TrustedIssuer::new(&field, issuer, policy)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Verifier {
            issuers: issuers.into(),
        })
    }

    /// Whether `token` has the shape of a JWT (three base64url segments separated by
    /// '.'), so a caller can tell ID tokens from Gantry's own `gantry_<hex>` tokens
    /// before verifying anything.
    #[must_use]
    pub fn looks_like_jwt(token: &str) -> bool {
        jwt::looks_like_jwt(token)
    }

    /// Verifies an ID token and says which service account it acts as.
    ///
    /// The issuer is chosen by the token's unverified `iss`, then its key by `kid` (or,
    /// without a kid, the issuer's only key that fits the `alg`); only once the
    /// signature verifies are the other claims believed. A URL key set may be fetched
    /// here, taking up to 5 seconds.
    ///
    /// # Errors
    ///
    /// When the token is refused; the [`OidcError`] says why, fit for a 401 body.
    pub async fn verify(&self, token: &str) -> Result<Identity, OidcError> {
        let token = jwt::parse(token)?;
        let issuer_name =
            token
                .claims
                .get("iss")
                .and_then(Value::as_str)
                .ok_or(OidcError::Malformed {
                    part: TokenPart::Payload,
                    reason: "iss is missing or not a string",
                })?;
        let issuer = self
            .issuers
            .iter()
            .find(|issuer| issuer.issuer == issuer_name)
            .ok_or_else(|| OidcError::UnknownIssuer {
                issuer: shorten(issuer_name),
            })?;
        let key = issuer
            .keys
            .key(&issuer.issuer, token.kid.as_deref(), token.algorithm)
            .await?;
        if !jwt::verify_signature(
            token.algorithm,
            &key.key,
            token.signing_input.as_bytes(),
            &token.signature,
        ) {
            return Err(OidcError::BadSignature {
                issuer: issuer.issuer.clone(),
            });
        }

        // From here on the claims are the issuer's word.
        let claims = &token.claims;
        check_validity(claims, jiff::Timestamp::now().as_second())?;
        check_audience(claims, &issuer.audience)?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(OidcError::Malformed {
                part: TokenPart::Payload,
                reason: "sub is missing or not a string",
            })?;
        let account = issuer
            .accounts
            .iter()
            .find(|account| account.matches(claims))
            .ok_or_else(|| OidcError::NoAccountRule {
                issuer: issuer.issuer.clone(),
                subject: shorten(subject),
            })?;
        Ok(Identity {
            service_account: account.service_account.clone(),
            issuer: issuer.issuer.clone(),
            subject: subject.to_owned(),
        })
    }
}

impl TrustedIssuer {
    fn new(
        field: &str,
        settings: IssuerSettings,
        policy: CachePolicy,
    ) -> Result<TrustedIssuer, OidcConfigError> {
        check_url(&settings.issuer).map_err(|message| {
            config_error(
                format!("{field}.issuer"),
                format!("{:?} {message}", settings.issuer),
            )
        })?;
        if settings.audience.trim().is_empty() {
            return Err(config_error(
                format!("{field}.audience"),
                "give the audience tokens must be issued for, e.g. this server's URL",
            ));
        }
        let keys = if settings.jwks.contains("://") {
            let url = check_url(&settings.jwks).map_err(|message| {
                config_error(
                    format!("{field}.jwks"),
                    format!("{:?} {message}", settings.jwks),
                )
            })?;
            KeySource::url(url, policy)
        } else {
            KeySource::file(Path::new(&settings.jwks))
        }
        .map_err(|message| config_error(format!("{field}.jwks"), message))?;
        if settings.accounts.is_empty() {
            return Err(config_error(
                format!("{field}.accounts"),
                "give at least one account rule",
            ));
        }
        let accounts = settings
            .accounts
            .into_iter()
            .enumerate()
            .map(|(index, rule)| Account::new(&format!("{field}.accounts[{index}]"), rule))
            .collect::<Result<_, _>>()?;
        Ok(TrustedIssuer {
            issuer: settings.issuer,
            audience: settings.audience,
            keys,
            accounts,
        })
    }
}

impl Account {
    fn new(field: &str, rule: AccountRule) -> Result<Account, OidcConfigError> {
        let service_account = rule.service_account.parse::<Name>().map_err(|error| {
            config_error(
                format!("{field}.service_account"),
                format!("the name {error}"),
            )
        })?;
        if rule.claims.is_empty() {
            return Err(config_error(
                format!("{field}.claims"),
                "give at least one claim",
            ));
        }
        for (claim, pattern) in &rule.claims {
            if claim.is_empty() {
                return Err(config_error(
                    format!("{field}.claims"),
                    "a claim name is empty",
                ));
            }
            if pattern.is_empty() {
                return Err(config_error(
                    format!("{field}.claims.{claim}"),
                    "give a pattern; * matches any run of characters",
                ));
            }
        }
        // An issuer like GitHub signs tokens for every repository in the world, so a
        // rule that only asks for claims to exist would let all of them in.
        if rule
            .claims
            .values()
            .all(|pattern| pattern.chars().all(|c| c == '*'))
        {
            return Err(config_error(
                format!("{field}.claims"),
                "every pattern is *, so any token of the issuer would match; \
                 give at least one claim a value, e.g. repository_owner: acme",
            ));
        }
        Ok(Account {
            service_account,
            claims: rule.claims.into_iter().collect(),
        })
    }
}

fn config_error(field: impl Into<String>, message: impl Into<String>) -> OidcConfigError {
    OidcConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks that an issuer or key set URL is `https://`, or `http://` to this machine,
/// without credentials, query or fragment. Returns the parsed URL, or what is wrong
/// with it.
fn check_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|error| format!("is not a URL: {error}"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        _ => {
            return Err(
                "must start with https:// (http:// only for localhost or 127.0.0.1, in tests)"
                    .to_owned(),
            );
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold credentials".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".to_owned());
    }
    Ok(url)
}

/// Checks `exp` (required, not passed), `nbf` and `iat` (if present, not in the future)
/// against `now`, in seconds since the Unix epoch, with [`LEEWAY_SECONDS`] of slack.
fn check_validity(claims: &Map<String, Value>, now: i64) -> Result<(), OidcError> {
    let expires = numeric_date(claims, "exp")?.ok_or(OidcError::Malformed {
        part: TokenPart::Payload,
        reason: "exp is missing",
    })?;
    if now >= expires.saturating_add(LEEWAY_SECONDS) {
        return Err(OidcError::Expired {
            expired_at: expires,
        });
    }
    for claim in ["nbf", "iat"] {
        if let Some(at) = numeric_date(claims, claim)? {
            if at > now.saturating_add(LEEWAY_SECONDS) {
                return Err(OidcError::NotYetValid { claim, at });
            }
        }
    }
    Ok(())
}

/// A `NumericDate` claim in whole seconds, if present.
fn numeric_date(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<i64>, OidcError> {
    let Some(value) = claims.get(claim) else {
        return Ok(None);
    };
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the cast saturates, which is right for absurd dates; `allow`, not \
                  `expect`, because the workspace allows this lint"
    )]
    let seconds = value.as_i64().or_else(|| {
        // RFC 7519 allows fractions of a second.
        value.as_f64().map(|seconds| seconds.floor() as i64)
    });
    seconds.map(Some).ok_or(OidcError::Malformed {
        part: TokenPart::Payload,
        reason: match claim {
            "exp" => "exp is not a number",
            "nbf" => "nbf is not a number",
            _ => "iat is not a number",
        },
    })
}

/// Checks that `aud`, a string or an array of strings, holds `expected`.
fn check_audience(claims: &Map<String, Value>, expected: &str) -> Result<(), OidcError> {
    let malformed = OidcError::Malformed {
        part: TokenPart::Payload,
        reason: "aud is not a string or an array of strings",
    };
    let got: Vec<&str> = match claims.get("aud") {
        None => Vec::new(),
        Some(Value::String(audience)) => vec![audience],
        Some(Value::Array(audiences)) => audiences
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or(malformed)?,
        Some(_) => return Err(malformed),
    };
    if got.contains(&expected) {
        return Ok(());
    }
    Err(OidcError::WrongAudience {
        expected: expected.to_owned(),
        got: got
            .iter()
            .take(5)
            .map(|audience| shorten(audience))
            .collect(),
    })
}
