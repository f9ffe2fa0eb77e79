use std::fmt;
use std::str::FromStr;

/// A content digest: the only identity of an artifact.
///
/// Parsing is strict: `sha256:` followed by exactly 64 lower-case hex digits, or
/// `sha512:` followed by exactly 128. Anything else is refused, because a digest
/// that two tools could read differently is not an identity.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The whole digest, `algorithm:hex`, kept so `as_str` costs nothing.
    text: String,
    algorithm: Algorithm,
}

/// The hash algorithms a [`Digest`] may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name used in digests (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The number of hex digits in a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a string is not a [`Digest`]: the input and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("digest {input:?} {reason}")]
pub struct DigestError {
    input: String,
    reason: DigestProblem,
}

/// What is wrong with a digest, phrased to follow the digest it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestProblem {
    #[error("has no algorithm: expected `sha256:` followed by 64 hex digits")]
    MissingAlgorithm,
    #[error("uses algorithm {0:?}, which is not supported: use sha256 or sha512")]
    UnsupportedAlgorithm(String),
    #[error("must have {expected} hex digits after `{algorithm}:`, found {found}")]
    WrongLength {
        algorithm: Algorithm,
        expected: usize,
        found: usize,
    },
    #[error("must be lower-case hex 0-9a-f, found {found:?} at position {position}")]
    NotLowerHex { position: usize, found: char },
}

impl DigestError {
    /// What is wrong, without the digest itself.
    pub fn problem(&self) -> &DigestProblem {
        &self.reason
    }
}

impl Digest {
    /// Builds a digest from an algorithm and already-computed lower-case hex.
    pub fn from_parts(algorithm: Algorithm, hex: &str) -> Result<Digest, DigestError> {
        check_hex(algorithm, hex).map_err(|reason| DigestError {
            input: format!("{}:{hex}", algorithm.name()),
            reason,
        })?;
        Ok(Digest {
            text: format!("{}:{hex}", algorithm.name()),
            algorithm,
        })
    }

    /// The whole digest, e.g. `sha256:9f86…`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm.name().len() + 1..]
    }

    /// A short form for people: the first 12 hex digits.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    /// The tag under which the OCI referrers tag schema and cosign store
    /// things about this digest: `sha256-<hex>`.
    pub fn tag_schema_name(&self) -> String {
        format!("{}-{}", self.algorithm.name(), self.hex())
    }
}

fn check_hex(algorithm: Algorithm, hex: &str) -> Result<(), DigestProblem> {
    if let Some((position, found)) = hex
        .char_indices()
        .find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
    {
        return Err(DigestProblem::NotLowerHex { position, found });
    }
    if hex.len() != algorithm.hex_len() {
        return Err(DigestProblem::WrongLength {
            algorithm,
            expected: algorithm.hex_len(),
            found: hex.len(),
        });
    }
    Ok(())
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(text: &str) -> Result<Digest, DigestError> {
        let fail = |reason| DigestError {
            input: text.to_owned(),
            reason,
        };
        let (algorithm, hex) = text
            .split_once(':')
            .ok_or_else(|| fail(DigestProblem::MissingAlgorithm))?;
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(fail(DigestProblem::UnsupportedAlgorithm(other.to_owned()))),
        };
        Digest::from_parts(algorithm, hex)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn check(input: &str, expect: &str) {
        let got = match input.parse::<Digest>() {
            Ok(digest) => format!("ok {digest}"),
            Err(error) => format!("err {error}"),
        };
        assert_eq!(got, expect, "input {input:?}");
    }

    #[test]
    fn parses_valid_digests() {
        check(&format!("sha256:{HEX}"), &format!("ok sha256:{HEX}"));
        let long = HEX.repeat(2);
        check(&format!("sha512:{long}"), &format!("ok sha512:{long}"));
    }

    #[test]
    fn refuses_malformed_digests() {
        check(
            HEX,
            &format!(
                "err digest {HEX:?} has no algorithm: expected `sha256:` followed by 64 hex digits"
            ),
        );
        check(
            &format!("md5:{HEX}"),
            &format!(
                "err digest \"md5:{HEX}\" uses algorithm \"md5\", which is not supported: use sha256 or sha512"
            ),
        );
        check(
            "sha256:abc",
            "err digest \"sha256:abc\" must have 64 hex digits after `sha256:`, found 3",
        );
        check(
            &format!("sha256:{}", HEX.to_uppercase()),
            &format!(
                "err digest \"sha256:{}\" must be lower-case hex 0-9a-f, found 'F' at position 1",
                HEX.to_uppercase()
            ),
        );
        check(
            &format!("sha512:{HEX}"),
            &format!(
                "err digest \"sha512:{HEX}\" must have 128 hex digits after `sha512:`, found 64"
            ),
        );
        check(
            "sha256:",
            "err digest \"sha256:\" must have 64 hex digits after `sha256:`, found 0",
        );
    }

    #[test]
    fn accessors() {
        let digest: Digest = format!("sha256:{HEX}").parse().unwrap();
        assert_eq!(digest.hex(), HEX);
        assert_eq!(digest.short(), "9f86d081884c");
        assert_eq!(digest.algorithm(), Algorithm::Sha256);
        assert_eq!(digest.tag_schema_name(), format!("sha256-{HEX}"));
    }
}
