//! `gantry ledger verify FILE`: checks an exported ledger offline; `--from-server` also
//! replays it against the server's live state.

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use gantry_store::ledger::VerifierKey;
use gantry_store::ledger::export::{VerifySummary, verify_export};
use gantry_store::ledger::replay::{
    EnvironmentState, GrantKey, HoldState, State, StopState, TokenState, compare, replay_export,
};
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
    /// checkpoint against the Merkle root of the entries it covers. With a key, every
    /// entry must be covered by a checkpoint it signed. With --from-server, also replay
    /// the ledger against the server's live state.
    #[command(
        after_help = "Examples:\n  gantry ledger verify --key \"$(cat gantry-ledger.vkey)\" ledger.jsonl\n  \
gantry ledger verify --key \"$(cat gantry-ledger.vkey)\" --allow-unsigned-tail live.jsonl\n  \
gantry ledger verify --from-server --key \"$(cat gantry-ledger.vkey)\"\n\n\
With --key, every entry must be covered by a checkpoint signed with that key: an export \
whose last checkpoint was removed, or with an entry appended after it, exits 1 naming the \
first entry no checkpoint covers. --allow-unsigned-tail accepts entries after the last \
checkpoint (a copy of a live ledger) and says how many there are; they are chained, but \
whoever could write the file could have written them.\n\n\
Without --key the checkpoints are checked with the key written in the file itself, which \
proves consistency but not origin: pass the server's published key to trust the result.\n\n\
--from-server downloads the server's export (signed now over every entry) and its live \
state, then replays the ledger and compares: every environment's pointer (release and \
version) and hold, the stopped lines, the grants and the tokens must be what the ledger \
says. Each place that differs (a row changed in the database by hand) is named. Tokens made \
before the ledger recorded their lifetime and a fingerprint of their hash are not judged on \
those two.\n\n\
Exits 1 and names the first entry or checkpoint that breaks, or the first mismatch."
    )]
    Verify {
        /// The export (JSON Lines, as written by `gantry ledger export`).
        #[arg(
            required_unless_present = "from_server",
            conflicts_with = "from_server"
        )]
        file: Option<PathBuf>,
        /// Verify the server's ledger as it is now instead of a file: download its export
        /// (and, without --key, its key), check them the same way, and replay the ledger
        /// against the server's live state.
        #[arg(long)]
        from_server: bool,
        /// The server's verifier key, `NAME+KEYID+BASE64`, to check checkpoint signatures with.
        #[arg(long, value_name = "VKEY", env = "GANTRY_LEDGER_KEY")]
        key: Option<String>,
        /// Accept entries after the last signed checkpoint (an export of a live ledger
        /// copied between checkpoints) and say how many; without it, with a key, every
        /// entry must be signed.
        #[arg(long)]
        allow_unsigned_tail: bool,
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
            allow_unsigned_tail,
            ..
        } => {
            // The export is input the command line names, like a report or a policy:
            // one that cannot be opened is a usage error.
            let reader = std::fs::File::open(&file)
                .map_err(|e| UsageError(format!("cannot open {}: {e}", file.display())))?;
            let source = file.display().to_string();
            let key = parse_key(key.as_deref())?;
            let summary = verify(
                &source,
                BufReader::with_capacity(1 << 20, reader),
                key.as_ref(),
                allow_unsigned_tail,
            )?;
            let (text, json) = report(&source, &summary);
            printer.result(&text, &json);
            Ok(())
        }
        LedgerCommand::Verify {
            file: None,
            key,
            allow_unsigned_tail,
            ..
        } => {
            let client = args.server.client()?;
            // The live state first: the export read after it holds every entry it was
            // read at, and maybe more.
            let live = client.ledger_state().await?;
            let export = client.ledger_export().await?;
            let key = match key {
                Some(key) => key,
                None => client.ledger_key().await?,
            };
            let source = "the server's ledger";
            let key = parse_key(Some(&key))?;
            let summary = verify(source, export.as_bytes(), key.as_ref(), allow_unsigned_tail)?;
            let replay = replay_export(export.as_bytes(), live.ledger_entries)
                .with_context(|| format!("{source} cannot be replayed"))?;
            let mismatches = compare(replay.state(), &live_state(live));
            let (mut text, mut json) = report(source, &summary);
            if mismatches.is_empty() {
                textln!(
                    text,
                    "live     the live state agrees with the ledger ({} entries replayed)",
                    replay.entries()
                );
            }
            for mismatch in &mismatches {
                textln!(text, "MISMATCH {mismatch}");
            }
            json["live_state"] = json!({
                "entries_replayed": replay.entries(),
                "agrees": mismatches.is_empty(),
                "mismatches": mismatches.iter().map(|m| json!({
                    "project": m.project,
                    "subject": m.subject,
                    "problem": m.problem,
                    "message": m.to_string(),
                })).collect::<Vec<_>>(),
            });
            printer.result(&text, &json);
            match mismatches.as_slice() {
                [] => Ok(()),
                [only] => Err(anyhow::anyhow!(
                    "the live state disagrees with the ledger: {only}"
                )),
                [first, rest @ ..] => Err(anyhow::anyhow!(
                    "the live state disagrees with the ledger in {} places: {first} (and {} more, listed above)",
                    mismatches.len(),
                    rest.len()
                )),
            }
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

fn parse_key(key: Option<&str>) -> Result<Option<VerifierKey>, UsageError> {
    key.map(|text| VerifierKey::parse(text).map_err(|e| UsageError(format!("--key: {e}"))))
        .transpose()
}

/// Verifies an export; with a trusted key, every entry must be signed unless
/// `allow_unsigned_tail`.
fn verify(
    source: &str,
    reader: impl std::io::BufRead,
    key: Option<&VerifierKey>,
    allow_unsigned_tail: bool,
) -> anyhow::Result<VerifySummary> {
    let summary =
        verify_export(reader, key).with_context(|| format!("{source} does not verify"))?;
    if summary.key_trusted && !allow_unsigned_tail {
        summary.require_signed().with_context(|| {
            format!("{source} is not signed throughout (--allow-unsigned-tail accepts that)")
        })?;
    }
    Ok(summary)
}

/// What a verification found, for people and for scripts.
fn report(source: &str, summary: &VerifySummary) -> (Text, serde_json::Value) {
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
    if summary.unsigned_entries() > 0 {
        textln!(
            text,
            "unsigned {} entries after the last checkpoint, from entry {}: chained, not signed",
            summary.unsigned_entries(),
            summary.signed_entries + 1
        );
    }
    textln!(text, "root     {}", hex_of(&summary.root));
    let json = json!({
        "source": source,
        "origin": summary.origin,
        "entries": summary.entries,
        "checkpoints": summary.checkpoints,
        "signed_entries": summary.signed_entries,
        "unsigned_entries": summary.unsigned_entries(),
        "first_unsigned_entry": (summary.unsigned_entries() > 0).then_some(summary.signed_entries + 1),
        "every_entry_signed": summary.unsigned_entries() == 0,
        "last_hash": hex_of(&summary.last_hash),
        "root": hex_of(&summary.root),
        "key_trusted": summary.key_trusted,
    });
    (text, json)
}

fn hex_of(bytes: &[u8; 32]) -> String {
    hex::encode(bytes)
}

/// The live state as the server reported it, in the form a replay compares.
fn live_state(live: gantry_api::live::LiveState) -> State {
    let mut state = State::default();
    for environment in live.environments {
        state.environments.insert(
            (environment.project, environment.environment),
            EnvironmentState {
                release: environment.release,
                version: environment.version,
                moved_by: environment.moved_by,
                hold: environment.hold.map(|hold| HoldState {
                    by: hold.by,
                    reason: hold.reason,
                }),
            },
        );
    }
    for stop in live.stops {
        state.stops.insert(
            (stop.project, stop.environment.unwrap_or_default()),
            StopState {
                by: stop.by,
                reason: stop.reason,
            },
        );
    }
    for grant in live.grants {
        let key = GrantKey {
            principal: grant.principal,
            role: grant.role,
            project: grant.project.unwrap_or_default(),
            environment: grant.environment.unwrap_or_default(),
        };
        state.grants.insert(key, grant.granted_by);
    }
    for token in live.tokens {
        state.tokens.insert(
            token.name,
            TokenState {
                principal: token.principal,
                expires_at: Some(token.expires_at),
                fingerprint: Some(token.fingerprint),
                revoked_by: token.revoked_by,
            },
        );
    }
    state
}
