//! Ledger entries: their wire form, their canonical bytes, and their hash.
//!
//! An entry's canonical bytes are the RFC 8785 form ([`canonical_json`]) of its serde JSON
//! form; its hash is the SHA-256 of those bytes, and the next entry's `previous` is that hash
//! in lowercase hex. Absent optional fields, an empty `digests` map and a null `detail` are
//! left out of the JSON form, and so out of the hash.
//!
//! Entries refuse unknown fields when they are read: a field the hash does not cover must not
//! be shown to a reader as if it were part of the record.
//!
//! [`canonical_json`]: super::canonical::canonical_json

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest as _, Sha256};

use super::canonical::{utf16_cmp, write_string, write_u64, write_value};

/// The `previous` of the first entry: no entry comes before it.
pub const GENESIS: [u8; 32] = [0; 32];

/// One ledger entry as stored and exported (wire form; serde).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Position in the ledger: 1-based, with no gaps.
    pub sequence: u64,
    /// When the entry was recorded: RFC 3339 UTC with milliseconds, e.g.
    /// `2026-11-21T22:45:01.123Z`.
    pub time: String,
    /// Who acted.
    pub actor: String,
    /// What happened, e.g. `release.created`, `promotion.succeeded`, `environment.held`.
    pub action: String,
    /// The project the action concerns.
    pub project: String,
    /// The environment the action concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The release the action concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Component name to content digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digests: BTreeMap<String, String>,
    /// Why, as given by the actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Free-form object with action-specific data.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
    /// Lowercase hex SHA-256 of the previous entry's canonical bytes; 64 zeros for the first
    /// entry.
    pub previous: String,
}

impl Entry {
    /// The RFC 8785 canonical bytes of this entry's JSON form: what its hash covers.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(384);
        self.write_canonical(&mut out);
        out
    }

    /// Appends [`Entry::canonical_bytes`] to `out`.
    pub(crate) fn write_canonical(&self, out: &mut Vec<u8>) {
        self.as_fields().write_canonical(out);
    }

    /// SHA-256 of [`Entry::canonical_bytes`].
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_bytes()).into()
    }

    fn as_fields(&self) -> EntryFields<'_, impl Iterator<Item = (&str, &str)> + Clone> {
        EntryFields {
            sequence: self.sequence,
            time: &self.time,
            actor: &self.actor,
            action: &self.action,
            project: &self.project,
            environment: self.environment.as_deref(),
            release: self.release.as_deref(),
            digests: self.digests.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            reason: self.reason.as_deref(),
            detail: &self.detail,
            previous: &self.previous,
        }
    }
}

/// An entry's fields by reference, for the canonical writer shared by [`Entry`] and
/// [`EntryRef`].
struct EntryFields<'a, D> {
    sequence: u64,
    time: &'a str,
    actor: &'a str,
    action: &'a str,
    project: &'a str,
    environment: Option<&'a str>,
    release: Option<&'a str>,
    digests: D,
    reason: Option<&'a str>,
    detail: &'a serde_json::Value,
    previous: &'a str,
}

impl<'a, D: Iterator<Item = (&'a str, &'a str)> + Clone> EntryFields<'a, D> {
    /// Appends the canonical bytes, writing the members directly in JCS order rather than
    /// building a `serde_json::Value`; `tests::hand_written_form_is_jcs` checks that the two
    /// agree.
    fn write_canonical(self, out: &mut Vec<u8>) {
        // The member names in UTF-16 order (all ASCII, so byte order).
        out.extend_from_slice(b"{\"action\":");
        write_string(out, self.action);
        out.extend_from_slice(b",\"actor\":");
        write_string(out, self.actor);
        if !self.detail.is_null() {
            out.extend_from_slice(b",\"detail\":");
            write_value(out, self.detail);
        }
        let mut digests = self.digests.clone().peekable();
        if digests.peek().is_some() {
            out.extend_from_slice(b",\"digests\":{");
            if is_sorted_utf16(self.digests.clone()) {
                write_members(out, digests);
            } else {
                let mut sorted: Vec<(&str, &str)> = digests.collect();
                sorted.sort_by(|(a, _), (b, _)| utf16_cmp(a, b));
                write_members(out, sorted.into_iter());
            }
            out.push(b'}');
        }
        if let Some(environment) = self.environment {
            out.extend_from_slice(b",\"environment\":");
            write_string(out, environment);
        }
        out.extend_from_slice(b",\"previous\":");
        write_string(out, self.previous);
        out.extend_from_slice(b",\"project\":");
        write_string(out, self.project);
        if let Some(reason) = self.reason {
            out.extend_from_slice(b",\"reason\":");
            write_string(out, reason);
        }
        if let Some(release) = self.release {
            out.extend_from_slice(b",\"release\":");
            write_string(out, release);
        }
        out.extend_from_slice(b",\"sequence\":");
        write_u64(out, self.sequence);
        out.extend_from_slice(b",\"time\":");
        write_string(out, self.time);
        out.push(b'}');
    }
}

fn is_sorted_utf16<'a>(mut members: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    let Some((mut last, _)) = members.next() else {
        return true;
    };
    for (name, _) in members {
        if utf16_cmp(last, name).is_ge() {
            return false;
        }
        last = name;
    }
    true
}

fn write_members<'a>(out: &mut Vec<u8>, members: impl Iterator<Item = (&'a str, &'a str)>) {
    for (index, (name, value)) in members.enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(out, name);
        out.push(b':');
        write_string(out, value);
    }
}

/// An entry read from an export, borrowing from the line where it can: the same fields and
/// the same serde rules as [`Entry`], without an allocation per field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntryRef<'a> {
    pub(crate) sequence: u64,
    #[serde(borrow)]
    time: Text<'a>,
    #[serde(borrow)]
    actor: Text<'a>,
    #[serde(borrow)]
    action: Text<'a>,
    #[serde(borrow)]
    project: Text<'a>,
    #[serde(default, borrow)]
    environment: Option<Text<'a>>,
    #[serde(default, borrow)]
    release: Option<Text<'a>>,
    #[serde(default, borrow)]
    digests: Digests<'a>,
    #[serde(default, borrow)]
    reason: Option<Text<'a>>,
    #[serde(default)]
    detail: serde_json::Value,
    #[serde(borrow)]
    previous: Text<'a>,
}

impl EntryRef<'_> {
    /// The `previous` field as written.
    pub(crate) fn previous(&self) -> &str {
        &self.previous.0
    }

    /// Appends the same bytes as [`Entry::canonical_bytes`] of the equivalent [`Entry`].
    pub(crate) fn write_canonical(&self, out: &mut Vec<u8>) {
        EntryFields {
            sequence: self.sequence,
            time: &self.time.0,
            actor: &self.actor.0,
            action: &self.action.0,
            project: &self.project.0,
            environment: self.environment.as_ref().map(|text| &*text.0),
            release: self.release.as_ref().map(|text| &*text.0),
            digests: self.digests.0.iter().map(|(k, v)| (&*k.0, &*v.0)),
            reason: self.reason.as_ref().map(|text| &*text.0),
            detail: &self.detail,
            previous: &self.previous.0,
        }
        .write_canonical(out);
    }
}

/// The `digests` map in file order. Unlike a `BTreeMap`, which keeps the last of repeated
/// names silently, it refuses a repeated name: the hash would cover only one of them.
#[derive(Debug, Default)]
struct Digests<'a>(Vec<(Text<'a>, Text<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Digests<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DigestsVisitor;
        impl<'de> Visitor<'de> for DigestsVisitor {
            type Value = Digests<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an object of component names to digests")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members: Vec<(Text<'de>, Text<'de>)> = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                if !is_sorted_utf16(members.iter().map(|(k, v)| (&*k.0, &*v.0))) {
                    let mut names: Vec<&str> = members.iter().map(|(k, _)| &*k.0).collect();
                    names.sort_unstable();
                    if let Some(&[name, _]) = names.windows(2).find(|pair| pair[0] == pair[1]) {
                        return Err(serde::de::Error::custom(format_args!(
                            "digests: component {name:?} appears twice"
                        )));
                    }
                }
                Ok(Digests(members))
            }
        }
        deserializer.deserialize_map(DigestsVisitor)
    }
}

/// A string that borrows from the input when it has no escapes. (A plain `Cow<str>` field
/// borrows only when it is not inside an `Option` or a map.)
#[derive(Debug, Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::super::canonical::canonical_json;
    use super::*;

    fn sample() -> Entry {
        Entry {
            sequence: 42,
            time: "2026-11-21T22:45:01.123Z".to_owned(),
            actor: "alice@example.com".to_owned(),
            action: "promotion.succeeded".to_owned(),
            project: "shop".to_owned(),
            environment: Some("production".to_owned()),
            release: Some("2026.11.21-3".to_owned()),
            digests: BTreeMap::from([
                ("api".to_owned(), format!("sha256:{}", "a".repeat(64))),
                ("web".to_owned(), format!("sha256:{}", "b".repeat(64))),
            ]),
            reason: Some("weekly release".to_owned()),
            detail: json!({"from": "staging", "attempt": 1}),
            previous: "0".repeat(64),
        }
    }

    fn jcs_of_serde_form(entry: &Entry) -> Vec<u8> {
        canonical_json(&serde_json::to_value(entry).expect("entries serialize"))
    }

    #[test]
    fn canonical_bytes_of_a_full_entry() {
        let entry = sample();
        let expected = format!(
            r#"{{"action":"promotion.succeeded","actor":"alice@example.com","detail":{{"attempt":1,"from":"staging"}},"digests":{{"api":"sha256:{a}","web":"sha256:{b}"}},"environment":"production","previous":"{zero}","project":"shop","reason":"weekly release","release":"2026.11.21-3","sequence":42,"time":"2026-11-21T22:45:01.123Z"}}"#,
            a = "a".repeat(64),
            b = "b".repeat(64),
            zero = "0".repeat(64),
        );
        assert_eq!(
            String::from_utf8(entry.canonical_bytes()).expect("UTF-8"),
            expected
        );
        assert_eq!(entry.canonical_bytes(), jcs_of_serde_form(&entry));
        assert_eq!(
            entry.hash(),
            <[u8; 32]>::from(Sha256::digest(expected.as_bytes()))
        );
    }

    #[test]
    fn absent_fields_are_left_out() {
        let entry = Entry {
            environment: None,
            release: None,
            digests: BTreeMap::new(),
            reason: None,
            detail: serde_json::Value::Null,
            ..sample()
        };
        let text = String::from_utf8(entry.canonical_bytes()).expect("UTF-8");
        assert_eq!(
            text,
            format!(
                r#"{{"action":"promotion.succeeded","actor":"alice@example.com","previous":"{}","project":"shop","sequence":42,"time":"2026-11-21T22:45:01.123Z"}}"#,
                "0".repeat(64)
            )
        );
        let read: Entry = serde_json::from_str(&text).expect("reads back");
        assert_eq!(read, entry);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut value = serde_json::to_value(sample()).expect("serializes");
        value["note"] = json!("not covered by the hash");
        let error = serde_json::from_value::<Entry>(value.clone()).expect_err("refused");
        assert!(
            error.to_string().contains("unknown field `note`"),
            "{error}"
        );
        let text = value.to_string();
        let error = serde_json::from_str::<EntryRef<'_>>(&text).expect_err("refused");
        assert!(
            error.to_string().contains("unknown field `note`"),
            "{error}"
        );
    }

    #[test]
    fn repeated_digest_names_are_refused() {
        let text = format!(
            r#"{{"sequence":1,"time":"t","actor":"a","action":"b","project":"p","previous":"{}","digests":{{"web":"x","api":"y","web":"z"}}}}"#,
            "0".repeat(64)
        );
        let error = serde_json::from_str::<EntryRef<'_>>(&text).expect_err("refused");
        assert!(
            error.to_string().contains("\"web\" appears twice"),
            "{error}"
        );
    }

    fn entry_strategy() -> impl Strategy<Value = Entry> {
        // Strings with escapes, non-ASCII and astral characters, to exercise both the
        // escaping and the UTF-16 ordering of digest names.
        let text = || "[a-z\"\\\\\u{0}-\u{1f}é\u{fb33}\u{1f600} ]{0,12}";
        let optional = move || proptest::option::of(text());
        (
            any::<u64>(),
            (text(), text(), text(), text()),
            (optional(), optional(), optional()),
            proptest::collection::btree_map(text(), text(), 0..4),
            proptest::option::of(proptest::collection::btree_map(text(), any::<i32>(), 0..3)),
            text(),
        )
            .prop_map(
                |(
                    sequence,
                    (time, actor, action, project),
                    (environment, release, reason),
                    digests,
                    detail,
                    previous,
                )| Entry {
                    sequence,
                    time,
                    actor,
                    action,
                    project,
                    environment,
                    release,
                    digests,
                    reason,
                    detail: detail.map_or(serde_json::Value::Null, |map| json!(map)),
                    previous,
                },
            )
    }

    proptest! {
        /// The hand-written canonical writers agree with the generic JCS of the serde form.
        #[test]
        fn hand_written_form_is_jcs(entry in entry_strategy()) {
            let expected = jcs_of_serde_form(&entry);
            prop_assert_eq!(&entry.canonical_bytes(), &expected);
            // The borrowed reader, from an ordinary (non-canonical) serialization.
            let text = serde_json::to_string_pretty(&entry).expect("serializes");
            let borrowed: EntryRef<'_> = serde_json::from_str(&text).expect("reads back");
            let mut out = Vec::new();
            borrowed.write_canonical(&mut out);
            prop_assert_eq!(&out, &expected);
            // And from the canonical bytes themselves.
            let borrowed: EntryRef<'_> = serde_json::from_slice(&expected).expect("reads back");
            let mut out = Vec::new();
            borrowed.write_canonical(&mut out);
            prop_assert_eq!(&out, &expected);
        }
    }
}
