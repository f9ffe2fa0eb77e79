//! Command-line arguments. Settings go from raw flags to a validated struct per command.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::access::{AccessArgs, WhoAmIArgs};
use crate::commands::admin::AdminArgs;
use crate::commands::board::{HistoryArgs, StatusArgs};
use crate::commands::gates::{ApproveArgs, EvidenceArgs, StopArgs, WhyArgs};
use crate::commands::policy::PolicyArgs;
use crate::commands::promote::{CancelArgs, HoldArgs, PromoteArgs, RollbackArgs};
use crate::commands::{
    copy::CopyArgs, inspect::InspectArgs, ledger::LedgerArgs, release::ReleaseArgs,
    release::ShowArgs, serve::ServeArgs, tag::TagArgs, token::TokenArgs,
};

/// Every environment variable Gantry reads itself, in one place. (Credential files are
/// found through `REGISTRY_AUTH_FILE`, `DOCKER_CONFIG`, `XDG_RUNTIME_DIR` and `HOME`,
/// read by gantry-oci.)
pub mod env {
    /// A tracing filter for the logs on stderr, e.g. `debug` or `gantry_oci=trace`.
    pub const GANTRY_LOG: &str = "GANTRY_LOG";
    /// Default for `--output`.
    pub const GANTRY_OUTPUT: &str = "GANTRY_OUTPUT";
    /// Set and not empty: logs are never coloured (<https://no-color.org>). Without it,
    /// they are coloured only when stderr is a terminal.
    pub const NO_COLOR: &str = "NO_COLOR";
}

#[derive(Debug, Parser)]
#[command(
    name = "gantry",
    version,
    about = "Promote immutable OCI artifacts: digest-exact copies, tags and inspection.",
    long_about = "Gantry moves the exact digest you built and tested from one place to the next: \
between registries, inside one registry, or to and from OCI layouts on disk. It never re-encodes \
a manifest, checks every digest it writes, and carries signatures, SBOMs and attestations along.",
    after_help = "References:\n  \
  host[:port]/repo[:tag][@digest]   a registry (docker:// is accepted; `alpine` means docker.io/library/alpine:latest)\n  \
  oci:DIR[:tag][@digest]            an OCI image layout directory\n\n\
Credentials come from --src-creds/--dest-creds/--creds, else $REGISTRY_AUTH_FILE, \
containers' auth.json, or $DOCKER_CONFIG/config.json (~/.docker/config.json), including credsStore and credHelpers.\n\n\
Exit codes: 0 done; 1 refused or failed; 2 usage: bad flags, or malformed input the CLI checks \
before it talks to anyone; 3 the Gantry server cannot be reached."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format: human-readable text, or one JSON document on stdout for scripts.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Text, env = env::GANTRY_OUTPUT)]
    pub output: OutputFormat,
    /// Log more to stderr (-v: steps, -vv: every request).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy an artifact digest-exact: registry to registry, registry to layout, layout to registry.
    Copy(CopyArgs),
    /// Resolve a reference to its digest and show media type, size, platforms and labels.
    Inspect(InspectArgs),
    /// Point new tags at what a reference names, inside its repository (no blob moves).
    Tag(TagArgs),
    /// Work with Gantry's tamper-evident ledger (offline).
    Ledger(LedgerArgs),
    /// Run the Gantry server: projects, releases, promotions and the ledger, over HTTP.
    Serve(ServeArgs),
    /// Create or show releases (talks to the server).
    Release(ReleaseArgs),
    /// Show a release: its components, digests, labels, who created it.
    Show(ShowArgs),
    /// Promote a release into an environment (talks to the server).
    Promote(PromoteArgs),
    /// Put back the release an environment held before, or a named one.
    Rollback(RollbackArgs),
    /// Cancel a promotion that has not started yet.
    Cancel(CancelArgs),
    /// Pause automation for an environment, with a reason.
    Hold(HoldArgs),
    /// Resume automation for an environment.
    Unhold(HoldArgs),
    /// The board: which release each environment holds, since when, by whom, what waits.
    Status(StatusArgs),
    /// Promotions into a project's environments, newest first.
    History(HistoryArgs),
    /// Create, list and revoke API tokens; each acts for a user or a service account.
    Token(TokenArgs),
    /// Give and take roles (viewer, promoter, approver, admin) over the server, a project or an environment.
    Access(AccessArgs),
    /// Show who your token acts for and what it may do.
    Whoami(WhoAmIArgs),
    /// Work on the server's store directly, on its host: `admin recover` gets an admin
    /// back in when nobody can administer the server.
    Admin(AdminArgs),
    /// Hand in evidence (test reports, scans, SBOMs, provenance) about a release.
    Evidence(EvidenceArgs),
    /// Approve a release for an environment. Refused (exit 1; only the refusal is
    /// recorded, as approval.refused) when the gate would not count it: the release's
    /// creator, the promotion's requester, someone outside the gate's `from:`, or a
    /// service account it does not name.
    Approve(ApproveArgs),
    /// Reject a release for an environment: its approvals gate fails. Refused like
    /// `approve` when the gate would not count it.
    Reject(ApproveArgs),
    /// Explain whether a release may enter an environment: every gate and why. A read:
    /// it records nothing.
    Why(WhyArgs),
    /// Stop the line: no promotion enters a project (or one environment), gated or not,
    /// automatic or asked for, until resumed; only the emergency path and rollbacks pass.
    Stop(StopArgs),
    /// Resume a stopped line.
    Resume(StopArgs),
    /// Work with Rego policies offline: run their tests.
    Policy(PolicyArgs),
}
