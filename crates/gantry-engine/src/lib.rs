//! Gantry's application layer: everything a request does, without HTTP.
//!
//! [`project_file`] reads project files into checked [`gantry_core::Project`]s;
//! [`Engine`] creates releases, evaluates gates and records every decision, queues and
//! runs promotions, and follows `track` bindings.

mod engine;
mod gates;
pub mod project_file;

pub use engine::{Engine, EngineError, Event, Request};
pub use gates::{AddedEvidence, Explained};
