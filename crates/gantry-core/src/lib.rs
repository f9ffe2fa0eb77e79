//! Gantry's domain types and rules.
//!
//! This crate is pure: no I/O, no async, no serialization. Everything here can be
//! tested with plain values, and nothing here can fail because a disk or a network did.
//! Wire and storage forms of these types live in the crates that own those boundaries.

mod access;
mod digest;
mod gate;
mod glob;
mod name;
mod platform;
mod project;
mod promotion;
mod reference;
mod release;
mod source;

pub use access::{AccessError, Action, Grant, Principal, Role, Scope, allowed};
pub use digest::{Algorithm, Digest, DigestError, DigestProblem};
pub use gate::{GateState, Verdict};
pub use glob::glob;
pub use name::{Name, NameError};
pub use platform::{Platform, PlatformError};
pub use project::{
    Binding, Component, CredentialsRef, Environment, Field, Project, ProjectError, Refusal,
    Repository, Strategy, Target,
};
pub use promotion::{PromotionState, TransitionError};
pub use reference::{
    DOCKER_HUB, LayoutReference, Reference, ReferenceError, ReferencePart, RegistryReference, Tag,
};
pub use release::{ALIAS_LENGTH, ReleaseContent, ReleaseId};
pub use source::{ReleaseSource, RepositoryPattern, SourceError, SourceProblem};
