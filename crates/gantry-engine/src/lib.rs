//! Gantry's application layer: everything a request does, without HTTP.
//!
//! For now: reading project files into checked [`gantry_core::Project`]s.

pub mod project_file;
