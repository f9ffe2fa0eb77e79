//! Text the server will not keep: names, label keys and values, reasons and comments that
//! hold a control character, a bidirectional override or a line separator
//! ([`gantry_api::text::is_unsafe`]) are refused with a 422 naming the field
//! (`labels.foo: contains a control character (U+001B)`), before any handler sees them.
//! Every JSON body passes [`check_body`] (in `routes::Body`), and every path and query
//! parameter passes [`refuse_unsafe_parameters`] (a route layer); nothing else carries
//! text in (evidence reports are kept as bytes and escaped wherever they are shown).

use axum::extract::{FromRequestParts as _, Query, RawPathParams, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use gantry_api::text::{first_unsafe, refusal};
use serde_json::Value;

use crate::error::ApiError;

/// Refuses `body` (a request as it was read) if any string in it, key or value, holds an
/// unsafe character; the error names the first such field, as a path through the body
/// (`labels.foo`, `components.api`, `reason`).
pub fn check_body(body: &Value) -> Result<(), ApiError> {
    match find(body, "") {
        Some((field, c)) => Err(refused(&field, c)),
        None => Ok(()),
    }
}

fn refused(field: &str, c: char) -> ApiError {
    ApiError::invalid(format!("{field}: {}", refusal(c)), field)
}

/// The path of the first string holding an unsafe character, and the character. A key
/// that holds one is named by the object it is in (it cannot be shown itself).
fn find(value: &Value, path: &str) -> Option<(String, char)> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(text) => first_unsafe(text).map(|c| (path.to_owned(), c)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| find(item, &format!("{path}[{index}]"))),
        Value::Object(object) => object
            .iter()
            .find_map(|(key, item)| match first_unsafe(key) {
                Some(c) if path.is_empty() => Some(("body".to_owned(), c)),
                Some(c) => Some((path.to_owned(), c)),
                None => find(item, &join(key)),
            }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

/// A route layer: refuses a request whose path parameters (named as the route names
/// them: `project`, `release`) or query parameters (`kind`, `environment`) hold an unsafe
/// character, once percent-decoded.
pub async fn refuse_unsafe_parameters(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    if let Ok(parameters) = RawPathParams::from_request_parts(&mut parts, &()).await {
        for (name, value) in &parameters {
            if let Some(c) = first_unsafe(value) {
                return refused(name, c).into_response();
            }
        }
    }
    if let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri) {
        for (name, value) in &pairs {
            if let Some(c) = first_unsafe(name).or_else(|| first_unsafe(value)) {
                let name = if first_unsafe(name).is_some() {
                    "query"
                } else {
                    name
                };
                return refused(name, c).into_response();
            }
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field_of(body: &Value) -> Option<String> {
        find(body, "").map(|(field, _)| field)
    }

    #[test]
    fn the_first_unsafe_field_is_named_by_its_path() {
        let check = |body: Value, expect: Option<&str>| {
            assert_eq!(field_of(&body).as_deref(), expect, "{body}");
        };
        check(json!({"reason": "fine ✓", "labels": {"a": "b"}}), None);
        check(json!({"reason": "nul\u{0}"}), Some("reason"));
        check(
            json!({"labels": {"ci": "1", "foo": "x\u{1b}[2K"}}),
            Some("labels.foo"),
        );
        check(json!({"labels": {"fo\no": "x"}}), Some("labels"));
        check(json!({"a\u{202e}": 1}), Some("body"));
        check(json!({"items": ["ok", "b\u{9b}"]}), Some("items[1]"));
        check(json!({"a": {"b": [{"c": "\u{2028}"}]}}), Some("a.b[0].c"));
        check(json!({"n": 1, "t": true, "z": null}), None);
    }
}
