//! `gantry serve`: the server, on `SQLite` in a data directory (0700, its files 0600).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use gantry_engine::{Engine, project_file};
use gantry_store::postgres::PostgresStore;
use gantry_store::sqlite::SqliteStore;
use gantry_store::store::Store;

use super::UsageError;
use crate::printer::{Printer, Text, textln};
use crate::registry_args::RegistryArgs;

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  gantry serve --project payments.yaml --data /var/lib/gantry --listen 127.0.0.1:8420\n\n\
The first start creates an `admin` API token and prints it once on stderr. Stop with Ctrl-C \
or SIGTERM: the server stops taking requests, answers those in flight, starts no promotion and \
waits up to --shutdown-grace for running ones; any still running resume when it starts again.\n\n\
Every request gets an id (X-Request-Id, kept when the client sends one) that the logs carry.\n\n\
The data directory is made 0700 and the files Gantry writes there 0600, whatever the umask; \
a wider mode found at start is logged as a warning, naming the path and the mode.\n\n\
At start and every --ledger-check-interval the server replays its ledger and compares it \
with the live state: a pointer, hold, stopped line, grant or token changed in the database \
by hand makes /readyz answer 503 and `gantry status` warn, and the log names each place.\n\n\
CI jobs can sign in with their OIDC ID token instead of a stored Gantry token; in --config:\n  \
oidc:\n    \
- issuer: https://token.actions.githubusercontent.com\n      \
audience: https://gantry.example.com\n      \
jwks: https://token.actions.githubusercontent.com/.well-known/jwks   # or a file\n      \
accounts:\n        \
- {service_account: payments-ci, claims: {repository: acme/payments, ref: refs/heads/main}}\n\
The first rule whose claims all match (`*` matches any run) names the service account; its grants decide."
)]
pub struct ServeArgs {
    /// A YAML file with `listen`, `data`, `projects` (paths relative to the file) and
    /// `oidc` issuers; flags and environment variables override it.
    #[arg(long, value_name = "FILE", env = "GANTRY_SERVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// A project file (YAML). Repeat for several projects.
    #[arg(
        long = "project",
        value_name = "FILE",
        env = "GANTRY_PROJECTS",
        value_delimiter = ','
    )]
    pub projects: Vec<PathBuf>,
    /// Where Gantry keeps its state (the database file gantry.db, unless --database, and
    /// the ledger key) [default: gantry-data].
    #[arg(long, value_name = "DIR", env = "GANTRY_DATA")]
    pub data: Option<PathBuf>,
    #[arg(
        long,
        value_name = "URL",
        env = "GANTRY_DATABASE_URL",
        hide_env_values = true,
        help = "Keep state in PostgreSQL instead of SQLite: postgres://USER[:PASSWORD]@HOST:PORT/DB. \
                Several replicas on one database share the work"
    )]
    pub database: Option<String>,
    /// The key that signs ledger checkpoints [default: DATA/ledger.key, made at the first
    /// start]. Replicas sharing a database must share this key.
    #[arg(long, value_name = "FILE", env = "GANTRY_LEDGER_KEY_FILE")]
    pub ledger_key: Option<PathBuf>,
    #[arg(
        long,
        value_name = "NAME",
        env = "GANTRY_REPLICA",
        help = "This replica's name among those sharing a database; the same name at a restart \
                takes back at once what it was running [default: local with SQLite; with \
                PostgreSQL, the host name, process id and a random suffix]"
    )]
    pub replica: Option<String>,
    /// How long a running promotion stays this replica's without renewal; a replica that
    /// dies loses its running promotions to the others after this long.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "GANTRY_LEASE",
        default_value_t = 15
    )]
    pub lease: u64,
    /// The address to listen on [default: 127.0.0.1:8420].
    #[arg(long, value_name = "ADDR", env = "GANTRY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Requests per second each caller (token) may make, with bursts of twice as many;
    /// beyond it the answer is 429 with Retry-After. Failed authentications count per
    /// address. 0 turns the limit off.
    #[arg(
        long,
        value_name = "N",
        env = "GANTRY_RATE_LIMIT",
        default_value_t = 50.0
    )]
    pub rate_limit: f64,
    /// A load balancer's address or range (10.0.0.0/8) whose X-Forwarded-For names the
    /// client; repeat for several. Failed authentications then count per client, not per
    /// balancer. Without it, X-Forwarded-For is ignored.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "GANTRY_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// On Ctrl-C or SIGTERM, how long to wait for running promotions to finish before
    /// exiting; the ones still running resume at the next start.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "GANTRY_SHUTDOWN_GRACE",
        default_value_t = 30
    )]
    pub shutdown_grace: u64,
    /// How often to check that the live state (pointers, holds, stopped lines, grants,
    /// tokens) agrees with the ledger, which it also does at start; a mismatch makes
    /// /readyz answer 503 and `gantry status` warn. 0 checks at start only.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "GANTRY_LEDGER_CHECK_INTERVAL",
        default_value_t = 60
    )]
    pub ledger_check_interval: u64,
    /// Seconds a client has to send a request's headers, from connecting (or from the
    /// first byte of a later request on a kept-alive connection); then it is
    /// disconnected.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "GANTRY_HEADER_TIMEOUT",
        default_value_t = 10
    )]
    pub header_timeout: u64,
    /// Seconds from a request's headers until its whole body must be in; a late body
    /// fails the request. Raise it for large evidence reports over slow links.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "GANTRY_BODY_TIMEOUT",
        default_value_t = 30
    )]
    pub body_timeout: u64,
    /// Seconds a kept-alive connection may wait for its next request, and a client may
    /// leave an answer unread, before it is disconnected.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "GANTRY_IDLE_TIMEOUT",
        default_value_t = 60
    )]
    pub idle_timeout: u64,
    /// Connections one client address (for IPv6, one /64) may hold at once; one more is
    /// answered 503 and closed. A --trusted-proxy's connections are not counted (they
    /// carry many clients): limit connections per client at the proxy. 0 turns the
    /// limit off.
    #[arg(
        long,
        value_name = "N",
        env = "GANTRY_CONNECTIONS_PER_ADDRESS",
        default_value_t = 64
    )]
    pub connections_per_address: usize,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `gantry serve --config FILE`
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    #[serde(default)]
    listen: Option<marked_yaml::Spanned<String>>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    projects: Vec<String>,
    #[serde(default)]
    database: Option<String>,
    #[serde(default)]
    ledger_key: Option<String>,
    /// Issuers whose OIDC ID tokens act as service accounts.
    #[serde(default)]
    oidc: Vec<gantry_server::oidc::IssuerSettings>,
}

/// The settings of one `gantry serve`: flags (and their environment variables) over the
/// config file over defaults.
struct ServeSettings {
    projects: Vec<PathBuf>,
    data: PathBuf,
    database: Option<String>,
    ledger_key: PathBuf,
    engine: gantry_engine::EngineOptions,
    listen: SocketAddr,
    options: gantry_server::ServerOptions,
}

fn settings(args: &ServeArgs) -> Result<ServeSettings, UsageError> {
    let (file, base) = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("--config {}: {e}", path.display())))?;
            let file: ServeFile = project_file::parse_settings(&path.display().to_string(), &text)
                .map_err(|e| UsageError(e.to_string()))?;
            (file, path.parent().map(PathBuf::from).unwrap_or_default())
        }
        None => (ServeFile::default(), PathBuf::new()),
    };
    let listen = match (args.listen, &file.listen) {
        (Some(listen), _) => listen,
        (None, Some(text)) => text.parse().map_err(|e| {
            let at = text
                .span()
                .start()
                .map(|m| format!(":{}:{}", m.line(), m.column()))
                .unwrap_or_default();
            UsageError(format!(
                "{}{at}: listen {:?} is not an address like 127.0.0.1:8420: {e}",
                args.config
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                text.as_str()
            ))
        })?,
        (None, None) => SocketAddr::from(([127, 0, 0, 1], 8420)),
    };
    let projects = if args.projects.is_empty() {
        file.projects.iter().map(|p| base.join(p)).collect()
    } else {
        args.projects.clone()
    };
    if projects.is_empty() {
        return Err(UsageError(
            "name at least one project file: --project FILE, or `projects:` in --config".to_owned(),
        ));
    }
    let data = args
        .data
        .clone()
        .or_else(|| file.data.map(|d| base.join(d)))
        .unwrap_or_else(|| PathBuf::from("gantry-data"));
    let database = args.database.clone().or(file.database);
    if let Some(url) = &database {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(UsageError(
                "--database: give a PostgreSQL URL, postgres://USER@HOST:PORT/DATABASE (without it, SQLite in --data)".to_owned(),
            ));
        }
    }
    let ledger_key = args
        .ledger_key
        .clone()
        .or_else(|| file.ledger_key.map(|k| base.join(k)))
        .unwrap_or_else(|| data.join("ledger.key"));
    if args.lease == 0 {
        return Err(UsageError(
            "--lease 0: a lease must last at least a second".to_owned(),
        ));
    }
    let replica = match (&args.replica, &database) {
        (Some(name), _) if name.trim().is_empty() || name.len() > 128 => {
            return Err(UsageError(
                "--replica: give a name of 1 to 128 characters".to_owned(),
            ));
        }
        (Some(name), _) => name.clone(),
        (None, None) => gantry_engine::EngineOptions::default().replica,
        (None, Some(_)) => unique_replica_name(),
    };
    let engine = gantry_engine::EngineOptions {
        replica,
        lease: std::time::Duration::from_secs(args.lease),
    };
    if !(args.rate_limit.is_finite() && args.rate_limit >= 0.0) {
        return Err(UsageError(format!(
            "--rate-limit {} is not a number of requests per second (0 turns it off)",
            args.rate_limit
        )));
    }
    let trusted_proxies = args
        .trusted_proxies
        .iter()
        .map(|text| {
            text.trim()
                .parse()
                .map_err(|e| UsageError(format!("--trusted-proxy: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (flag, seconds) in [
        ("--header-timeout", args.header_timeout),
        ("--body-timeout", args.body_timeout),
        ("--idle-timeout", args.idle_timeout),
    ] {
        if seconds == 0 {
            return Err(UsageError(format!("{flag} 0: give at least 1 second")));
        }
    }
    let connections = gantry_server::ConnectionLimits {
        header_timeout: std::time::Duration::from_secs(args.header_timeout),
        body_timeout: std::time::Duration::from_secs(args.body_timeout),
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout),
        per_address: args.connections_per_address,
    };
    let options = gantry_server::ServerOptions {
        rate_limit: (args.rate_limit > 0.0).then_some(gantry_server::RateLimit {
            per_second: args.rate_limit,
            burst: (args.rate_limit * 2.0).max(1.0),
        }),
        shutdown_grace: std::time::Duration::from_secs(args.shutdown_grace),
        ledger_check: std::time::Duration::from_secs(args.ledger_check_interval),
        trusted_proxies: gantry_server::proxies::TrustedProxies(trusted_proxies),
        connections,
        oidc: oidc(file.oidc, &base).map_err(|e| {
            UsageError(format!(
                "{}: {e}",
                args.config
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ))
        })?,
    };
    Ok(ServeSettings {
        projects,
        data,
        database,
        ledger_key,
        engine,
        listen,
        options,
    })
}

/// A replica name no other process shares: host name, process id, random suffix.
fn unique_replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "gantry".to_owned(), |h| h.trim().to_owned());
    let mut random = [0u8; 4];
    getrandom::fill(&mut random).expect("the operating system's random source works");
    format!("{host}-{}-{}", std::process::id(), hex::encode(random))
}

/// The OIDC verifier for the configured issuers, if any; a JWKS file named relative to
/// the config file is found beside it.
fn oidc(
    mut issuers: Vec<gantry_server::oidc::IssuerSettings>,
    base: &std::path::Path,
) -> Result<Option<gantry_server::oidc::Verifier>, gantry_server::oidc::OidcConfigError> {
    if issuers.is_empty() {
        return Ok(None);
    }
    for issuer in &mut issuers {
        let is_url = issuer.jwks.starts_with("https://") || issuer.jwks.starts_with("http://");
        if !is_url && std::path::Path::new(&issuer.jwks).is_relative() {
            issuer.jwks = base.join(&issuer.jwks).display().to_string();
        }
    }
    gantry_server::oidc::Verifier::new(issuers).map(Some)
}

pub async fn run(args: ServeArgs, printer: &Printer) -> anyhow::Result<()> {
    let settings = settings(&args)?;
    let mut projects = Vec::new();
    for path in &settings.projects {
        projects.push(project_file::load(path).map_err(|errors| UsageError(errors.to_string()))?);
    }
    let mut names: Vec<String> = projects
        .iter()
        .map(|p| p.project.name().to_string())
        .collect();
    names.sort_unstable();
    if let Some([name, _]) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(UsageError(format!(
            "project {name} is defined by more than one --project file"
        ))
        .into());
    }
    // For its owner only: the database holds grants, token hashes and evidence.
    gantry_server::prepare_data_directory(&settings.data)
        .with_context(|| format!("creating the data directory {}", settings.data.display()))?;
    let store: Arc<dyn Store> = match &settings.database {
        Some(url) => Arc::new(
            PostgresStore::connect(url)
                .await
                .context("opening the PostgreSQL store")?,
        ),
        None => Arc::new(
            SqliteStore::open(&settings.data.join("gantry.db")).context("opening the store")?,
        ),
    };
    tracing::info!(replica = %settings.engine.replica, "starting");
    let engine = Engine::start_with(
        store,
        args.registry.registries()?,
        projects,
        settings.engine.clone(),
    )
    .await?;
    if let Some(token) = gantry_server::bootstrap_access(&engine).await? {
        let mut note = Text::new();
        textln!(
            note,
            "first start: the admin API token is shown this once; keep it:"
        );
        textln!(note, "  export GANTRY_TOKEN={token}");
        Printer::note(&note);
    }
    let ledger_key = gantry_server::load_or_create_ledger_key(&settings.ledger_key)
        .with_context(|| format!("the ledger signing key {}", settings.ledger_key.display()))?;
    if let Err(error) = gantry_server::warn_about_wide_modes(&settings.data) {
        tracing::warn!(path = %settings.data.display(), %error, "cannot read the data directory's modes");
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "serving");
    printer.result(
        &Text::line(format_args!(
            "gantry serving {} on http://{address} (data in {})",
            names.join(", "),
            settings.data.display()
        )),
        &serde_json::json!({"listen": address.to_string(), "projects": names, "data": settings.data.display().to_string()}),
    );
    gantry_server::serve_with(listener, engine, ledger_key, settings.options, shutdown())
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
