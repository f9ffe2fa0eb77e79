//! Gantry's application layer: everything a request does, without HTTP.
//!
//! [`project_file`] reads project files into checked [`gantry_core::Project`]s;
//! [`Engine`] creates releases, evaluates gates and records every decision, queues and
//! runs promotions, and follows `track` bindings.

mod attestations;
mod engine;
mod events;
mod gates;
mod metrics;
pub mod project_file;

pub use attestations::{Pulled, Refused};
pub use engine::{Engine, EngineError, EngineOptions, Event, Request};
pub use events::{Push, PushOutcome};
pub use gates::{AddedEvidence, Explained};
