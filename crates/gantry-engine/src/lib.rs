//! Gantry's application layer: everything a request does, without HTTP.
//!
//! [`project_file`] reads project files into checked [`gantry_core::Project`]s;
//! [`Engine`] creates releases, queues and runs promotions, and follows `track` bindings.

mod engine;
pub mod project_file;

pub use engine::{Engine, EngineError, Event};
