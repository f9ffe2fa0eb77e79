//! `gantry admin recover`: back in when nobody can administer the server, working on the
//! store itself (the data directory or the database), not through the API.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use gantry_core::Principal;
use gantry_store::postgres::PostgresStore;
use gantry_store::sqlite::SqliteStore;
use gantry_store::store::Store;

use super::UsageError;
use crate::printer::{Printer, Text, textln};

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make a principal an admin of the server and give it a new token, straight in the
    /// data directory or database: for when nobody can administer the server any more.
    #[command(
        after_help = "Run it on the server's host as a user who may write its data directory (or \
with the database's URL). The server may be running: SQLite waits for its turn to write, \
PostgreSQL takes the writers' lock, and the new token works at the next request.\n\n\
The grant and the token are in the ledger, by `offline-recovery`, with the operating-system \
user and host that ran this in the reason. The server refuses to remove the last admin who \
can sign in; this is for the rest (a lost token, tokens that expired, an admin who left).\n\n\
Example:\n  gantry admin recover --data /var/lib/gantry --user alice\n  \
gantry admin recover --database postgres://gantry@db:5432/gantry --user alice --token-name alice-laptop\n  \
export GANTRY_TOKEN=...   # then: gantry token list, gantry access list, revoke what must go"
    )]
    Recover {
        /// The server's data directory (its gantry.db).
        #[arg(
            long,
            value_name = "DIR",
            env = "GANTRY_DATA",
            required_unless_present = "database"
        )]
        data: Option<PathBuf>,
        #[arg(
            long,
            value_name = "URL",
            env = "GANTRY_DATABASE_URL",
            hide_env_values = true,
            help = "The server's PostgreSQL database instead: postgres://USER[:PASSWORD]@HOST:PORT/DB"
        )]
        database: Option<String>,
        /// The user to make an admin of the server.
        #[arg(long, value_name = "NAME", required_unless_present = "service_account")]
        user: Option<String>,
        /// Or the service account.
        #[arg(long, value_name = "NAME", conflicts_with = "user")]
        service_account: Option<String>,
        /// The new token's name [default: recovery-YYYYMMDD-HHMMSS].
        #[arg(long, value_name = "NAME")]
        token_name: Option<String>,
    },
}

pub async fn run(args: AdminArgs, printer: &Printer) -> anyhow::Result<()> {
    let AdminCommand::Recover {
        data,
        database,
        user,
        service_account,
        token_name,
    } = args.command;
    let principal: Principal = match (user, service_account) {
        (Some(user), _) => format!("user:{user}"),
        (None, Some(account)) => format!("service:{account}"),
        (None, None) => unreachable!("clap requires --user or --service-account"),
    }
    .parse()
    .map_err(|e: gantry_core::AccessError| UsageError(e.to_string()))?;
    let token_name = token_name.unwrap_or_else(default_token_name);
    if token_name.parse::<gantry_core::Name>().is_err() {
        return Err(UsageError(format!(
            "--token-name {token_name:?}: a token name is 1 to 63 characters of a-z, 0-9 and '-'"
        ))
        .into());
    }
    let store: Box<dyn Store> = match (database, data) {
        (Some(url), _) => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(UsageError(
                    "--database: give a PostgreSQL URL, postgres://USER@HOST:PORT/DATABASE"
                        .to_owned(),
                )
                .into());
            }
            Box::new(
                PostgresStore::connect(&url)
                    .await
                    .context("opening the PostgreSQL store")?,
            )
        }
        (None, Some(dir)) => {
            // Never a new, empty store: a mistyped directory would "recover" nothing.
            let path = dir.join("gantry.db");
            if !path.is_file() {
                return Err(UsageError(format!(
                    "--data {}: no gantry.db there; name the directory `gantry serve --data` uses",
                    dir.display()
                ))
                .into());
            }
            same_owner(&path)?;
            Box::new(
                SqliteStore::open(&path)
                    .with_context(|| format!("opening the store {}", path.display()))?,
            )
        }
        (None, None) => unreachable!("clap requires --data or --database"),
    };
    let reason = format!(
        "offline recovery by operating-system user {} on host {}: admin over the server and token {token_name} for {principal}",
        os_user(),
        host()
    );
    let token = gantry_server::recover_admin(store.as_ref(), &principal, &token_name, reason)
        .await
        .context("recovering admin access")?;
    let mut text = Text::new();
    textln!(
        text,
        "{principal} is an admin of the server (recorded in the ledger by offline-recovery)"
    );
    textln!(text, "token {token_name} (shown once; keep it):");
    textln!(text, "{token}");
    printer.result(
        &text,
        &serde_json::json!({"principal": principal.to_string(), "name": token_name, "token": token}),
    );
    Ok(())
}

/// `recovery-YYYYMMDD-HHMMSS`, in UTC.
fn default_token_name() -> String {
    let digits: String = gantry_store::time::now()
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    format!("recovery-{}-{}", &digits[..8], &digits[8..])
}

/// Refuses to write a store another operating-system user owns: `SQLite` would create its
/// journal files as this user (root, say), and the server could not open them afterwards.
fn same_owner(path: &std::path::Path) -> Result<(), UsageError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let owner = std::fs::metadata(path).map(|m| m.uid());
        let me = std::fs::metadata("/proc/self").map(|m| m.uid());
        if let (Ok(owner), Ok(me)) = (owner, me) {
            if owner != me {
                let name = user_name(owner).unwrap_or_else(|| owner.to_string());
                return Err(UsageError(format!(
                    "{} belongs to {name}: run this as that user (sudo -u {name} gantry admin recover …), so the files the store writes stay the server's",
                    path.display()
                )));
            }
        }
    }
    let _ = path;
    Ok(())
}

/// The name `/etc/passwd` gives a user id.
fn user_name(uid: u32) -> Option<String> {
    std::fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.get(2) == Some(&uid.to_string().as_str())).then(|| fields[0].to_owned())
        })
}

/// Who runs this, as the system knows them: the owner of this process's `/proc` entry
/// (its user id) and that id's name in `/etc/passwd`; `$USER` where there is no `/proc`.
fn os_user() -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) {
            let name = user_name(uid).unwrap_or_else(|| "?".to_owned());
            return format!("{name} (uid {uid})");
        }
    }
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .map_or_else(|_| "unknown".to_owned(), |name| format!("{name} ($USER)"))
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "unknown".to_owned(), |h| h.trim().to_owned())
}
