//! Registry and OCI layout access for Gantry.
//!
//! Everything Gantry promotes moves through [`copy`]: digest-exact (manifests are
//! never re-encoded), in order (blobs, child manifests, index, tag), streamed (no blob
//! is held in memory or on disk), with retries per blob and referrers carried along.
//! [`inspect`] and [`tag`] share its resolution and its checks; [`attached`] reads the
//! signatures and attestations attached to a digest where they are.

mod attached;
mod auth;
mod client;
mod copy;
mod digest;
mod error;
mod inspect;
mod layout;
pub mod media;
mod open;
mod registry;
mod repository;
mod tag;

pub use attached::{ATTACHED_LAYER_LIMIT, Attached, AttachedLayer, Via, attached};
pub use auth::{CredentialSources, Credentials};
pub use client::{Client, ClientOptions, RetryPolicy};
pub use copy::{BlobOutcome, CopyOptions, CopyReport, NoProgress, Progress, copy};
pub use digest::digest_of;
pub use error::{Error, Result};
pub use inspect::{Inspection, inspect, list_tags, resolve_digest};
pub use open::{Endpoint, Registries};
pub use tag::{TagReport, tag};
