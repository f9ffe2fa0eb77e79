//! `gantry ledger verify FILE`: checks an exported ledger offline.

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use gantry_store::ledger::VerifierKey;
use gantry_store::ledger::export::verify_export;
use serde_json::json;

use super::UsageError;
use crate::printer::Printer;
use crate::server_args::ServerArgs;

#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    pub command: LedgerCommand,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Check an exported ledger offline: sequence, hash chain, and every signed
    /// checkpoint against the Merkle root of the entries it covers.
    #[command(
        after_help = "Example:\n  gantry ledger verify --key \"$(cat gantry-ledger.vkey)\" ledger.jsonl\n\n\
Without --key the checkpoints are checked with the key written in the file itself, which \
proves consistency but not origin: pass the server's published key to trust the result.\n\
Exits 1 and names the first entry or checkpoint that breaks."
    )]
    Verify {
        /// The export (JSON Lines, as written by `gantry ledger export`).
        file: PathBuf,
        /// The server's verifier key, `NAME+KEYID+BASE64`, to check checkpoint signatures with.
        #[arg(long, value_name = "VKEY", env = "GANTRY_LEDGER_KEY")]
        key: Option<String>,
    },
    /// Download the server's whole ledger, with a checkpoint signed now (talks to the server).
    #[command(
        after_help = "Example:\n  gantry ledger export --out ledger.jsonl && gantry ledger verify --key \"$(gantry ledger key)\" ledger.jsonl"
    )]
    Export {
        /// Where to write it.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the server's ledger verifier key, for `gantry ledger verify --key`.
    Key,
}

pub async fn run(args: LedgerArgs, printer: &Printer) -> anyhow::Result<()> {
    match args.command {
        LedgerCommand::Verify { file, key } => verify(&file, key.as_deref(), printer),
        LedgerCommand::Export { out } => {
            let export = args.server.client()?.ledger_export().await?;
            std::fs::write(&out, &export).with_context(|| format!("writing {}", out.display()))?;
            let entries = export
                .lines()
                .filter(|l| l.starts_with("{\"entry\""))
                .count();
            printer.result(
                &format!("wrote {entries} entries to {}\n", out.display()),
                &json!({"file": out.display().to_string(), "entries": entries}),
            );
            Ok(())
        }
        LedgerCommand::Key => {
            let key = args.server.client()?.ledger_key().await?;
            printer.result(&format!("{key}\n"), &json!({"key": key}));
            Ok(())
        }
    }
}

fn verify(file: &std::path::Path, key: Option<&str>, printer: &Printer) -> anyhow::Result<()> {
    let key = key
        .map(|text| VerifierKey::parse(text).map_err(|e| UsageError(format!("--key: {e}"))))
        .transpose()?;
    let reader =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let summary = verify_export(BufReader::with_capacity(1 << 20, reader), key.as_ref())
        .with_context(|| format!("{} does not verify", file.display()))?;
    let trust = if summary.key_trusted {
        "signatures checked with the key you gave"
    } else {
        "signatures checked with the key inside the file only: pass --key to trust them"
    };
    printer.result(
        &format!(
            "{}: {} entries, {} checkpoints, chain intact\norigin   {}\nsigned   {} of {} entries ({trust})\nroot     {}\n",
            file.display(),
            summary.entries,
            summary.checkpoints,
            summary.origin,
            summary.signed_entries,
            summary.entries,
            hex_of(&summary.root),
        ),
        &json!({
            "file": file.display().to_string(),
            "origin": summary.origin,
            "entries": summary.entries,
            "checkpoints": summary.checkpoints,
            "signed_entries": summary.signed_entries,
            "last_hash": hex_of(&summary.last_hash),
            "root": hex_of(&summary.root),
            "key_trusted": summary.key_trusted,
        }),
    );
    Ok(())
}

fn hex_of(bytes: &[u8; 32]) -> String {
    hex::encode(bytes)
}
