//! Generic evidence: any JSON document of a type its producer declares, kept whole
//! for policies to read.
//!
//! The top level must be an object or an array. A bare string, number, boolean or
//! null is refused: policies ask questions of a document's fields or items, and a
//! scalar is far more often a mistake (a file holding a status word or an error
//! message, not the report) than a report. Nesting is bounded by the JSON reader's
//! recursion limit, so a document cannot exhaust the stack of whoever reads it next.

use serde_json::Value;

use super::json::{self, top_level};
use super::{Malformed, Parsed};
use crate::summary::{GenericSummary, Summary};

pub(super) fn parse(declared_type: &str, text: &str) -> Result<Parsed, Malformed> {
    if let Some(found @ ("a string" | "a number" | "a boolean" | "null")) = top_level(text) {
        return Err(Malformed::whole(format!(
            "a generic document is a JSON object or array, this is {found}"
        )));
    }
    let document: Value = json::read(text)?;
    Ok(Parsed {
        summary: Summary::Generic(GenericSummary {
            declared_type: declared_type.to_owned(),
            document,
        }),
        subjects: Vec::new(),
    })
}
