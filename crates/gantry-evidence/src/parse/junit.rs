//! `JUnit` XML: a `<testsuites>` root or a single `<testsuite>`, suites nested to any
//! depth, and the `<testcase>`s in them counted.
//!
//! Read as a stream of events (quick-xml's reader), never built into a tree, so a
//! large report costs no more memory than its deepest path. Only what decides a
//! test's outcome is read: the elements that are a `<testcase>`'s direct children.
//! The suites' own `tests=`/`failures=` attributes are not trusted: tools disagree on
//! them (surefire counts flaky tests in neither), the test cases do not.
//!
//! Refused, because a test report has no use for them and they are how XML parsers
//! are attacked: a document type declaration (it can define entities, and entities
//! expand: "billion laughs"), any entity reference but the five XML predefines and
//! character references, and nesting deeper than [`MAX_DEPTH`].

use std::collections::HashSet;

use quick_xml::Reader;
use quick_xml::escape::EscapeError;
use quick_xml::events::{BytesStart, Event};

use super::{Malformed, Parsed, line_and_column};
use crate::summary::{Summary, TestSummary};

/// The deepest element nesting read; real reports are a handful of levels deep.
const MAX_DEPTH: usize = 64;

/// The entities XML predefines; no other entity can be defined without a DTD.
const PREDEFINED_ENTITIES: [&[u8]; 5] = [b"lt", b"gt", b"amp", b"apos", b"quot"];

/// Surefire's and Gradle's names for a failed attempt of a test that was run again.
const RERUN_ELEMENTS: [&[u8]; 4] = [
    b"flakyFailure",
    b"flakyError",
    b"rerunFailure",
    b"rerunError",
];

/// What one `<testcase>` has shown so far.
#[derive(Debug, Default)]
struct Case {
    /// The element depth of the `<testcase>` itself, so only its direct children count.
    depth: usize,
    failed: bool,
    skipped: bool,
    rerun: bool,
}

pub(super) fn parse(text: &str) -> Result<Parsed, Malformed> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.expand_empty_elements = false;

    let mut summary = TestSummary::default();
    // The names of the open elements, innermost last; never longer than MAX_DEPTH.
    let mut open: Vec<String> = Vec::new();
    let mut case: Option<Case> = None;
    let mut root_seen = false;
    loop {
        let start = reader.buffer_position() as usize;
        let at = || line_and_column(text, start);
        let event = reader.read_event().map_err(|error| {
            Malformed::at(
                line_and_column(text, reader.error_position() as usize),
                error.to_string(),
            )
        })?;
        match event {
            Event::Start(element) => {
                check_attributes(&element).map_err(|reason| Malformed::at(at(), reason))?;
                open_element(&element, &open, &mut case, &mut root_seen)
                    .map_err(|reason| Malformed::at(at(), reason))?;
                open.push(element_name(&element));
            }
            Event::Empty(element) => {
                check_attributes(&element).map_err(|reason| Malformed::at(at(), reason))?;
                let depth = open_element(&element, &open, &mut case, &mut root_seen)
                    .map_err(|reason| Malformed::at(at(), reason))?;
                close(&mut case, depth, &mut summary);
            }
            Event::End(_) => {
                let depth = open.len();
                open.pop();
                close(&mut case, depth, &mut summary);
            }
            Event::DocType(_) => {
                return Err(Malformed::at(
                    at(),
                    "has a document type declaration; DTDs are refused in evidence because they can define entities",
                ));
            }
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_)
                if open.is_empty() && !is_whitespace(&event) =>
            {
                return Err(Malformed::at(at(), "has text outside the root element"));
            }
            Event::GeneralRef(reference) => {
                if reference.is_char_ref() {
                    reference.resolve_char_ref().map_err(|error| {
                        Malformed::at(at(), format!("has a bad character reference: {error}"))
                    })?;
                } else if !PREDEFINED_ENTITIES.contains(&reference.as_ref()) {
                    return Err(Malformed::at(
                        at(),
                        entity_refused(&String::from_utf8_lossy(&reference)),
                    ));
                }
            }
            Event::Text(_)
            | Event::CData(_)
            | Event::Comment(_)
            | Event::Decl(_)
            | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(name) = open.last() {
        return Err(Malformed::at(
            line_and_column(text, text.len()),
            format!("the document ends inside <{name}>, truncated?"),
        ));
    }
    if !root_seen {
        return Err(Malformed::whole(
            "has no <testsuites> or <testsuite> element",
        ));
    }
    Ok(Parsed {
        summary: Summary::Tests(summary),
        subjects: Vec::new(),
    })
}

fn entity_refused(name: &str) -> String {
    format!(
        "refers to the entity &{name};, which is not one of the five XML predefines (entities are refused in evidence)"
    )
}

fn is_whitespace(event: &Event<'_>) -> bool {
    match event {
        Event::Text(text) => text.iter().all(u8::is_ascii_whitespace),
        _ => false,
    }
}

/// Refuses malformed attributes (the reader reads them only when asked), repeated
/// ones, and entity references in values other than the predefined ones and
/// character references. Repeats are found with a set: quick-xml's own check
/// compares each attribute with every earlier one, quadratic in their number.
fn check_attributes(element: &BytesStart<'_>) -> Result<(), String> {
    let mut names = HashSet::new();
    let mut attributes = element.attributes();
    attributes.with_checks(false);
    for attribute in attributes {
        let attribute = attribute.map_err(|error| format!("has a malformed attribute: {error}"))?;
        let name = attribute.key.into_inner();
        if !names.insert(name) {
            return Err(format!(
                "has the attribute {} twice in <{}>",
                String::from_utf8_lossy(name),
                element_name(element)
            ));
        }
        attribute
            .decode_and_unescape_value(element.decoder())
            .map_err(|error| match error {
                quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
                    entity_refused(&name)
                }
                other => format!("has a malformed attribute value: {other}"),
            })?;
    }
    Ok(())
}

/// Takes note of an element that opens (and, if empty, at once closes) at the depth
/// it returns: a root, a test case, or a test case's outcome.
fn open_element(
    element: &BytesStart<'_>,
    open: &[String],
    case: &mut Option<Case>,
    root_seen: &mut bool,
) -> Result<usize, String> {
    let depth = open.len() + 1;
    if depth > MAX_DEPTH {
        return Err(format!("elements are nested more than {MAX_DEPTH} deep"));
    }
    let name = element.local_name();
    let name = name.as_ref();
    if open.is_empty() {
        if *root_seen {
            return Err("has a second root element".to_owned());
        }
        if name != b"testsuites" && name != b"testsuite" {
            return Err(format!(
                "the root element is <{}>, not <testsuites> or <testsuite>",
                element_name(element)
            ));
        }
        *root_seen = true;
    }
    match (case, name) {
        (Some(_), b"testcase") => {
            return Err("has a <testcase> inside a <testcase>".to_owned());
        }
        (case @ None, b"testcase") => {
            *case = Some(Case {
                depth,
                ..Case::default()
            });
        }
        (Some(current), child) if depth == current.depth + 1 => match child {
            b"failure" | b"error" => current.failed = true,
            b"skipped" => current.skipped = true,
            rerun if RERUN_ELEMENTS.contains(&rerun) => current.rerun = true,
            _ => {}
        },
        _ => {}
    }
    Ok(depth)
}

/// Counts the current test case when the element closing at `depth` is its own.
fn close(case: &mut Option<Case>, depth: usize, summary: &mut TestSummary) {
    let Some(current) = case.take_if(|current| current.depth == depth) else {
        return;
    };
    summary.total += 1;
    // A test that failed its last run failed, whatever its reruns did before; one
    // that failed and then passed on a rerun is flaky, not failed.
    if current.failed {
        summary.failed += 1;
    } else if current.skipped {
        summary.skipped += 1;
    } else if current.rerun {
        summary.flaky += 1;
    }
}

fn element_name(element: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(element.name().as_ref()).into_owned()
}
