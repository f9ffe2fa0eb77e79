use std::fmt;
use std::str::FromStr;

/// A name people give to a project, component or environment: 1 to 63 characters of
/// lower-case letters, digits and '-', starting with a letter or digit. Short and plain
/// so it works in URLs, tags, file names and shell scripts without quoting.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

/// Why a string is not a [`Name`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(String);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Name {
    type Err = NameError;

    fn from_str(text: &str) -> Result<Name, NameError> {
        if text.is_empty() || text.len() > 63 {
            return Err(NameError(format!(
                "{text:?} must be 1 to 63 characters long"
            )));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(NameError(format!(
                "{text:?} may contain only a-z, 0-9 and '-', found {bad:?}"
            )));
        }
        if text.starts_with('-') {
            return Err(NameError(format!(
                "{text:?} must start with a letter or digit"
            )));
        }
        Ok(Name(text.to_owned()))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!("payments".parse::<Name>().is_ok());
        assert!("eu-west-1".parse::<Name>().is_ok());
        for (bad, reason) in [
            ("", "1 to 63"),
            ("Prod", "found 'P'"),
            ("-x", "start with"),
            ("a_b", "found '_'"),
            (&"x".repeat(64), "1 to 63"),
        ] {
            let error = bad.parse::<Name>().unwrap_err().to_string();
            assert!(error.contains(reason), "{bad:?}: {error}");
        }
    }
}
