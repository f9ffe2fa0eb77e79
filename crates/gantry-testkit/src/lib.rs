//! Test support for Gantry.
//!
//! Everything here runs real components on loopback so that tests exercise Gantry against
//! the same software it meets in production:
//!
//! - [`Registry`]: a Distribution (`docker-registry`) process on `127.0.0.1:0`, anonymous,
//!   with HTTP Basic auth, or with bearer tokens from an in-process [token issuer](RegistryAuth::Token);
//!   or anonymous over HTTPS with a per-registry CA ([`Registry::start_tls`]).
//! - [`FaultProxy`]: an HTTP/1.1 reverse proxy that injects delays, error statuses, truncated
//!   or corrupted bodies and dropped connections.
//! - [`ImageBuilder`], [`index`], [`artifact`]: deterministic, seed-driven images, indexes and
//!   OCI 1.1 artifacts.
//! - [`Pusher`]: an independent raw distribution-API client to seed registries and read them back.
//! - [`Layout`]: OCI image layouts on disk.
//! - [`skopeo`], [`skopeo_inspect_raw`]: the reference tool, for cross-checks.
//! - [`Prometheus`] scraping an [`Exporter`]: a real Prometheus for metric gates.
//! - [`signing`]: cosign-style signatures and DSSE attestations with a fresh key.
//!
//! This is test code: helpers panic with a clear message instead of returning errors, and a
//! missing external tool makes the caller fail with the command that installs it.

mod image;
mod layout;
mod oidc;
pub mod postgres;
mod prometheus;
mod proxy;
mod push;
mod registry;
mod server;
pub mod signing;
mod skopeo;
mod time;
mod token;

pub use image::{
    Blob, FOREIGN_LAYER_URL, Flavor, Image, ImageBuilder, Index, artifact, index, media_types,
    sha256_digest,
};
pub use layout::Layout;
pub use oidc::OidcIssuer;
pub use prometheus::{Exporter, Prometheus};
pub use proxy::{Fault, FaultAction, FaultProxy};
pub use push::Pusher;
pub use registry::{Registry, RegistryAuth, RequestCounts};
pub use skopeo::{skopeo, skopeo_inspect_raw};
