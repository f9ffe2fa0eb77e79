//! `gantry serve`: the server, on `SQLite` in a data directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use gantry_engine::{Engine, project_file};
use gantry_store::sqlite::SqliteStore;

use super::UsageError;
use crate::printer::Printer;
use crate::registry_args::RegistryArgs;

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  gantry serve --project payments.yaml --data /var/lib/gantry --listen 127.0.0.1:8420\n\n\
The first start creates an `admin` API token and prints it once on stderr. Stop with Ctrl-C \
or SIGTERM; promotions that were running resume when the server starts again."
)]
pub struct ServeArgs {
    /// A project file (YAML). Repeat for several projects.
    #[arg(
        long = "project",
        value_name = "FILE",
        required = true,
        env = "GANTRY_PROJECTS",
        value_delimiter = ','
    )]
    pub projects: Vec<PathBuf>,
    /// Where Gantry keeps its state (the database file gantry.db).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "gantry-data",
        env = "GANTRY_DATA"
    )]
    pub data: PathBuf,
    /// The address to listen on.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8420",
        env = "GANTRY_LISTEN"
    )]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub async fn run(args: ServeArgs, printer: &Printer) -> anyhow::Result<()> {
    let mut projects = Vec::new();
    for path in &args.projects {
        projects.push(project_file::load(path).map_err(|errors| UsageError(errors.to_string()))?);
    }
    let mut names: Vec<String> = projects.iter().map(|p| p.name().to_string()).collect();
    names.sort_unstable();
    if let Some([name, _]) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(UsageError(format!(
            "project {name} is defined by more than one --project file"
        ))
        .into());
    }
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating the data directory {}", args.data.display()))?;
    let store = SqliteStore::open(&args.data.join("gantry.db")).context("opening the store")?;
    let engine = Engine::start(Arc::new(store), args.registry.registries()?, projects).await?;
    if let Some(token) = gantry_server::first_admin_token(&engine).await? {
        Printer::note(&format!(
            "first start: the admin API token is shown this once; keep it:\n  export GANTRY_TOKEN={token}"
        ));
    }
    let ledger_key = gantry_server::load_or_create_ledger_key(&args.data.join("ledger.key"))
        .context("the ledger signing key")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "serving");
    printer.result(
        &format!("gantry serving {} on http://{address} (data in {})\n", names.join(", "), args.data.display()),
        &serde_json::json!({"listen": address.to_string(), "projects": names, "data": args.data.display().to_string()}),
    );
    gantry_server::serve(listener, engine, ledger_key, shutdown())
        .await
        .context("serving")?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut terminate) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return interrupt.await.unwrap_or(());
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
