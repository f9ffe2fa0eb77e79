use std::fmt;
use std::str::FromStr;

/// A platform an image runs on: `os/arch[/variant]`, e.g. `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// Why a string is not a [`Platform`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("platform {input:?} is not valid: {reason}")]
pub struct PlatformError {
    input: String,
    reason: &'static str,
}

impl Platform {
    /// Whether an image built for `candidate` serves a request for `self`.
    ///
    /// A request without a variant accepts any variant; a request with one needs the same.
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && (self.variant.is_none() || self.variant == candidate.variant)
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(input: &str) -> Result<Platform, PlatformError> {
        let error = |reason| PlatformError {
            input: input.to_owned(),
            reason,
        };
        let parts: Vec<&str> = input.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(error("expected os/arch or os/arch/variant"));
        }
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        };
        if !parts.iter().all(|part| valid(part)) {
            return Err(error(
                "each part must be non-empty lower-case letters, digits, '_' or '-'",
            ));
        }
        Ok(Platform {
            os: parts[0].to_owned(),
            architecture: parts[1].to_owned(),
            variant: parts.get(2).map(|&v| v.to_owned()),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let arm: Platform = "linux/arm64".parse().unwrap();
        let arm_v8: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(arm_v8.to_string(), "linux/arm64/v8");
        assert!(arm.matches(&arm_v8));
        assert!(!arm_v8.matches(&arm));
        assert!(!arm.matches(&"linux/amd64".parse().unwrap()));
    }

    #[test]
    fn refuses_bad_platforms() {
        for bad in ["linux", "linux/", "Linux/amd64", "a/b/c/d", ""] {
            let error = bad.parse::<Platform>().unwrap_err();
            assert!(error.to_string().starts_with("platform"), "{error}");
        }
    }
}
