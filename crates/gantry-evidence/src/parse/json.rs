//! Reading JSON evidence into typed structs, with refusals that name the field.
//!
//! The structs of each format describe only the fields Gantry reads; every other
//! field is ignored, so producers may add fields freely (and do).

use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde_json::error::Category;

use super::Malformed;

/// What the top level of a JSON document is, judged by its first character; `None`
/// when that is no JSON value at all (the parser then says what is wrong).
pub(super) fn top_level(text: &str) -> Option<&'static str> {
    match text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .bytes()
        .next()?
    {
        b'{' => Some("an object"),
        b'[' => Some("an array"),
        b'"' => Some("a string"),
        b'-' | b'0'..=b'9' => Some("a number"),
        b't' | b'f' => Some("a boolean"),
        b'n' => Some("null"),
        _ => None,
    }
}

/// Reads `text` as a JSON object into `T`. A document whose top level is anything
/// but an object is refused first, so the refusal says so rather than what serde
/// expected in its own words.
pub(super) fn read_object<T: DeserializeOwned>(text: &str, format: &str) -> Result<T, Malformed> {
    match top_level(text) {
        Some("an object") | None => {}
        Some(found) => {
            return Err(Malformed::whole(format!(
                "a {format} document is a JSON object, this is {found}"
            )));
        }
    }
    read(text)
}

/// Reads `text` as JSON into `T`, refusing trailing data.
pub(super) fn read<T: DeserializeOwned>(text: &str) -> Result<T, Malformed> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        refusal(&path, &error.into_inner())
    })?;
    deserializer.end().map_err(|error| refusal(".", &error))?;
    Ok(value)
}

/// A serde error as a refusal: a wrong shape names the field path; a syntax error or
/// a truncated document names the line and column (and the path, when inside one).
fn refusal(path: &str, error: &serde_json::Error) -> Malformed {
    let position = format!("line {}, column {}", error.line(), error.column());
    // serde_json's message ends in " at line L column C"; the position goes in `at`.
    let message = error.to_string();
    let message = message
        .strip_suffix(&format!(
            " at line {} column {}",
            error.line(),
            error.column()
        ))
        .unwrap_or(&message)
        .to_owned();
    let root = path == ".";
    match error.classify() {
        Category::Data if root => Malformed::whole(message),
        Category::Data => Malformed::at(path, message),
        Category::Eof | Category::Syntax | Category::Io => {
            let at = if root {
                position
            } else {
                format!("{path} ({position})")
            };
            if error.is_eof() {
                Malformed::at(
                    at,
                    format!("the document ends early, truncated? ({message})"),
                )
            } else {
                Malformed::at(at, message)
            }
        }
    }
}

/// For fields that Go programs (Trivy, Grype) write as `null` when empty: `null`
/// reads as the default, like an absent field.
pub(super) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Refuses a field whose value is not the one this parser reads.
pub(super) fn expect_value(
    at: &str,
    found: &str,
    accepted: &[&str],
    format: &str,
) -> Result<(), Malformed> {
    if accepted.contains(&found) {
        return Ok(());
    }
    let accepted = accepted
        .iter()
        .map(|value| format!("{value:?}"))
        .collect::<Vec<_>>()
        .join(" or ");
    Err(Malformed::at(
        at,
        format!("is {found:?}, but Gantry reads {format} only with {accepted}"),
    ))
}

/// Reads a JSON value already parsed (a part read whole first) into `T`; refusals
/// name the field under `prefix`.
pub(super) fn from_value<T: DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, Malformed> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let at = if path == "." {
            prefix.to_owned()
        } else {
            format!("{prefix}.{path}")
        };
        Malformed::at(at, error.into_inner().to_string())
    })
}
