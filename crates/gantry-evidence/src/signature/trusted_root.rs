//! The Sigstore trusted root: which certificate authorities issue signing certificates
//! and which transparency logs vouch for signing times.

use serde::Deserialize;

use super::certificate::Certificate;
use super::decode_base64;
use super::key::PublicKey;

/// The trust a Sigstore bundle is checked against, from the `trusted_root.json` format
/// (`application/vnd.dev.sigstore.trustedroot+json`), as Sigstore's TUF repository
/// publishes it or as a private deployment writes it.
///
/// Only `certificateAuthorities` and `tlogs` are read. Certificate transparency logs
/// and timestamp authorities are ignored: embedded SCTs and RFC 3161 timestamps are not
/// verified. Fetching and refreshing the file (TUF) is the caller's.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    pub(crate) authorities: Vec<CertificateAuthority>,
    pub(crate) logs: Vec<TransparencyLog>,
}

/// A certificate authority: its chain, the issuing certificate first and the root last.
#[derive(Debug, Clone)]
pub(crate) struct CertificateAuthority {
    pub name: String,
    pub chain: Vec<Certificate>,
    pub valid_for: TimeRange,
}

/// A transparency log: the key that signs its entry timestamps and checkpoints.
#[derive(Debug, Clone)]
pub(crate) struct TransparencyLog {
    pub name: String,
    pub log_id: Vec<u8>,
    pub key: PublicKey,
    pub valid_for: TimeRange,
}

/// A period in Unix seconds; an open end is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TimeRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl TimeRange {
    pub(crate) fn contains(self, time: i64) -> bool {
        self.start.is_none_or(|start| start <= time) && self.end.is_none_or(|end| time <= end)
    }
}

/// Why a trusted root was refused; `at` is a JSON path such as `tlogs[0].publicKey`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trusted root is invalid{}: {reason}", at.as_ref().map(|at| format!(" at {at}")).unwrap_or_default())]
pub struct TrustedRootError {
    pub at: Option<String>,
    pub reason: String,
}

impl TrustedRootError {
    fn at(at: String, reason: impl Into<String>) -> TrustedRootError {
        TrustedRootError {
            at: Some(at),
            reason: reason.into(),
        }
    }
}

const MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.trustedroot";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<WireLog>,
    #[serde(default)]
    certificate_authorities: Vec<WireAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireLog {
    #[serde(default)]
    base_url: String,
    public_key: WirePublicKey,
    log_id: WireLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePublicKey {
    raw_bytes: String,
    #[serde(default)]
    valid_for: Option<WireTimeRange>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireLogId {
    pub key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAuthority {
    #[serde(default)]
    uri: String,
    cert_chain: WireChain,
    #[serde(default)]
    valid_for: Option<WireTimeRange>,
}

#[derive(Deserialize)]
struct WireChain {
    certificates: Vec<WireRawBytes>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireRawBytes {
    pub raw_bytes: String,
}

#[derive(Deserialize)]
struct WireTimeRange {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

impl TrustedRoot {
    /// Parses a `trusted_root.json`, checking every certificate and key in it.
    pub fn from_json(bytes: &[u8]) -> Result<TrustedRoot, TrustedRootError> {
        let wire: Wire = serde_json::from_slice(bytes).map_err(|error| TrustedRootError {
            at: None,
            reason: error.to_string(),
        })?;
        if !wire.media_type.starts_with(MEDIA_TYPE_PREFIX) {
            return Err(TrustedRootError::at(
                "mediaType".to_owned(),
                format!(
                    "{:?} is not a Sigstore trusted root media type ({MEDIA_TYPE_PREFIX}…)",
                    wire.media_type
                ),
            ));
        }
        let authorities = wire
            .certificate_authorities
            .into_iter()
            .enumerate()
            .map(|(index, authority)| authority.check(&format!("certificateAuthorities[{index}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let logs = wire
            .tlogs
            .into_iter()
            .enumerate()
            .map(|(index, log)| log.check(&format!("tlogs[{index}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedRoot { authorities, logs })
    }

    /// The transparency log whose ID (the SHA-256 of its key) is `log_id`.
    pub(crate) fn log(&self, log_id: &[u8]) -> Option<&TransparencyLog> {
        self.logs.iter().find(|log| log.log_id == log_id)
    }
}

impl WireAuthority {
    fn check(self, at: &str) -> Result<CertificateAuthority, TrustedRootError> {
        if self.cert_chain.certificates.is_empty() {
            return Err(TrustedRootError::at(
                format!("{at}.certChain"),
                "the chain has no certificates",
            ));
        }
        let chain = self
            .cert_chain
            .certificates
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                let at = format!("{at}.certChain.certificates[{index}]");
                let der = decode_base64(&raw.raw_bytes)
                    .map_err(|reason| TrustedRootError::at(at.clone(), reason))?;
                Certificate::from_der(&der).map_err(|reason| TrustedRootError::at(at, reason))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let name = if self.uri.is_empty() {
            chain[0].subject()
        } else {
            self.uri
        };
        Ok(CertificateAuthority {
            name,
            chain,
            valid_for: time_range(self.valid_for.as_ref(), &format!("{at}.validFor"))?,
        })
    }
}

impl WireLog {
    fn check(self, at: &str) -> Result<TransparencyLog, TrustedRootError> {
        let der = decode_base64(&self.public_key.raw_bytes)
            .map_err(|reason| TrustedRootError::at(format!("{at}.publicKey.rawBytes"), reason))?;
        let key = PublicKey::from_spki_der(&der).map_err(|error| {
            TrustedRootError::at(format!("{at}.publicKey.rawBytes"), error.to_string())
        })?;
        let log_id = decode_base64(&self.log_id.key_id)
            .map_err(|reason| TrustedRootError::at(format!("{at}.logId.keyId"), reason))?;
        Ok(TransparencyLog {
            name: if self.base_url.is_empty() {
                hex::encode(&log_id)
            } else {
                self.base_url
            },
            log_id,
            key,
            valid_for: time_range(
                self.public_key.valid_for.as_ref(),
                &format!("{at}.publicKey.validFor"),
            )?,
        })
    }
}

fn time_range(range: Option<&WireTimeRange>, at: &str) -> Result<TimeRange, TrustedRootError> {
    let Some(range) = range else {
        return Ok(TimeRange::default());
    };
    let parse = |text: Option<&String>, field: &str| {
        text.map(|text| {
            parse_rfc3339(text).ok_or_else(|| {
                TrustedRootError::at(
                    format!("{at}.{field}"),
                    format!("{text:?} is not an RFC 3339 time such as 2022-04-13T20:06:15.000Z"),
                )
            })
        })
        .transpose()
    };
    Ok(TimeRange {
        start: parse(range.start.as_ref(), "start")?,
        end: parse(range.end.as_ref(), "end")?,
    })
}

/// Parses an RFC 3339 time (`2022-04-13T20:06:15.000Z`, `…+02:00`) to Unix seconds,
/// dropping fractions of a second. Protobuf JSON writes timestamps this way.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = bytes.get(range)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(digits).ok()?.parse().ok())?
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // A leap second (60) is allowed by RFC 3339; it counts as the next second.
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let offset = rest.as_bytes();
            if offset.len() != 6 || offset[3] != b':' {
                return None;
            }
            let hours: i64 = rest[1..3].parse().ok()?;
            let minutes: i64 = rest[4..6].parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339;

    #[test]
    fn parses_protobuf_json_times() {
        let check = |text: &str, expect: Option<i64>| {
            assert_eq!(parse_rfc3339(text), expect, "{text:?}");
        };
        check("1970-01-01T00:00:00Z", Some(0));
        check("2021-01-12T11:53:27.000Z", Some(1_610_452_407));
        check("2022-04-13T20:06:15Z", Some(1_649_880_375));
        check("2022-04-13T22:06:15.123456+02:00", Some(1_649_880_375));
        check("2000-02-29T00:00:00Z", Some(951_782_400));
        check("2022-04-13T20:06:15", None);
        check("2022-13-13T20:06:15Z", None);
        check("2022-04-13T20:06:15.Z", None);
        check("yesterday", None);
    }
}
