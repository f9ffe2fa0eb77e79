//! Flags every registry-speaking command shares, and their validation.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use gantry_oci::{Client, ClientOptions, CredentialSources, Registries, RetryPolicy};

#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Allow plain HTTP to this registry host (loopback hosts always are). Repeatable.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
    /// Trust the CA certificates in this PEM file beside the system roots. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// Tries per request and per blob on connection errors, 5xx and 429.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=20))]
    pub retries: u32,
}

impl RegistryArgs {
    pub fn registries(&self) -> anyhow::Result<Registries> {
        let client = Client::new(ClientOptions {
            insecure_hosts: self.insecure.clone(),
            ca_certificates: self.ca_cert.clone(),
            retry: RetryPolicy {
                attempts: self.retries,
                ..RetryPolicy::default()
            },
        })
        .context("setting up the registry client")?;
        Ok(Registries::new(
            client,
            CredentialSources::from_environment(),
        ))
    }
}
