//! `gantry ledger verify FILE`: checks an exported ledger offline.

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use gantry_store::ledger::VerifierKey;
use gantry_store::ledger::export::verify_export;
use serde_json::json;

use super::UsageError;
use crate::printer::{Printer, Text, textln};
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
        #[arg(
            required_unless_present = "from_server",
            conflicts_with = "from_server"
        )]
        file: Option<PathBuf>,
        /// Verify the server's ledger as it is now instead of a file: download its export
        /// (and, without --key, its key) and check them the same way.
        #[arg(long)]
        from_server: bool,
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
        LedgerCommand::Verify {
            file: Some(file),
            key,
            ..
        } => {
            let reader = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            verify(
                &file.display().to_string(),
                BufReader::with_capacity(1 << 20, reader),
                key.as_deref(),
                printer,
            )
        }
        LedgerCommand::Verify {
            file: None, key, ..
        } => {
            let client = args.server.client()?;
            let export = client.ledger_export().await?;
            let key = match key {
                Some(key) => key,
                None => client.ledger_key().await?,
            };
            verify(
                "the server's ledger",
                export.as_bytes(),
                Some(&key),
                printer,
            )
        }
        LedgerCommand::Export { out } => {
            let export = args.server.client()?.ledger_export().await?;
            std::fs::write(&out, &export).with_context(|| format!("writing {}", out.display()))?;
            let entries = export
                .lines()
                .filter(|l| l.starts_with("{\"entry\""))
                .count();
            printer.result(
                &Text::line(format_args!("wrote {entries} entries to {}", out.display())),
                &json!({"file": out.display().to_string(), "entries": entries}),
            );
            Ok(())
        }
        LedgerCommand::Key => {
            let key = args.server.client()?.ledger_key().await?;
            printer.result(&Text::line(format_args!("{key}")), &json!({"key": key}));
            Ok(())
        }
    }
}

fn verify(
    source: &str,
    reader: impl std::io::BufRead,
    key: Option<&str>,
    printer: &Printer,
) -> anyhow::Result<()> {
    let key = key
        .map(|text| VerifierKey::parse(text).map_err(|e| UsageError(format!("--key: {e}"))))
        .transpose()?;
    let summary =
        verify_export(reader, key.as_ref()).with_context(|| format!("{source} does not verify"))?;
    let trust = if summary.key_trusted {
        "signatures checked with the key you gave"
    } else {
        "signatures checked with the key inside the file only: pass --key to trust them"
    };
    let mut text = Text::new();
    textln!(
        text,
        "{}: {} entries, {} checkpoints, chain intact",
        source,
        summary.entries,
        summary.checkpoints
    );
    textln!(text, "origin   {}", summary.origin);
    textln!(
        text,
        "signed   {} of {} entries ({trust})",
        summary.signed_entries,
        summary.entries
    );
    textln!(text, "root     {}", hex_of(&summary.root));
    printer.result(
        &text,
        &json!({
            "source": source,
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
