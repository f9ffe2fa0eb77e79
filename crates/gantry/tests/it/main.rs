//! Gantry from the outside: the `gantry` binary against real Distribution registries,
//! skopeo, fault-injecting proxies and OCI layouts on disk. One test binary, many modules.

mod auth;
mod bad_input;
mod copy;
mod exit_codes;
mod faults;
mod gates;
mod inspect_tag;
mod interop;
mod ledger;
mod output;
mod policy;
#[cfg(unix)]
mod private_data;
mod recovery;
mod replicas;
mod server;
mod slow_clients;
mod sources;
mod support;
