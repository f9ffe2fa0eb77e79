//! The ledger benchmark: how fast `verify_export` checks a large export.
//!
//! `cargo run --release -p gantry-bench -- ledger [--entries N] [--runs N] [--check]`: generates
//! N realistic entries with a checkpoint every 10,000 entries, signed with a fresh key, writes
//! the export to a temporary file, then times `verify_export` over it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use gantry_store::ledger::merkle::{Tree, leaf_hash};
use gantry_store::ledger::note::{self, Checkpoint};
use gantry_store::ledger::{Entry, ExportWriter, GENESIS, verify_export};
use serde_json::json;

/// Verifying this many entries…
const TARGET_ENTRIES: u64 = 1_000_000;
/// …must take less than this.
const TARGET: Duration = Duration::from_secs(2);
/// A checkpoint is signed after every this many entries.
const CHECKPOINT_EVERY: u64 = 10_000;
const ORIGIN: &str = "gantry.bench/ledger";

pub(crate) const USAGE: &str = "usage: gantry-bench ledger [--entries N] [--runs N] [--check]

  --entries N    entries in the export (default 1000000; the target is for 1000000)
  --runs N       timed verifications (default 5; the median is reported)
  --check        exit with status 1 if the target is missed";

#[derive(Debug)]
pub(crate) struct LedgerSettings {
    entries: u64,
    runs: usize,
    check: bool,
}

pub(crate) fn parse_arguments(arguments: &[String]) -> Result<LedgerSettings> {
    let mut settings = LedgerSettings {
        entries: TARGET_ENTRIES,
        runs: 5,
        check: false,
    };
    let mut arguments = arguments.iter();
    while let Some(argument) = arguments.next() {
        let mut value = |name: &str| {
            arguments
                .next()
                .with_context(|| format!("{name} needs a value"))
        };
        match argument.as_str() {
            "--entries" => {
                settings.entries = value("--entries")?.parse().context("--entries")?;
            }
            "--runs" => settings.runs = value("--runs")?.parse().context("--runs")?,
            "--check" => settings.check = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option {other:?}"),
        }
    }
    ensure!(settings.runs > 0, "--runs must be at least 1");
    Ok(settings)
}

/// Returns whether the target was met (or not applicable).
pub(crate) fn run(settings: &LedgerSettings) -> Result<bool> {
    let directory = tempfile::tempdir().context("creating a temporary directory")?;
    let path = directory.path().join("ledger.jsonl");
    let key = note::generate("gantry.bench").context("generating a key")?;

    let started = Instant::now();
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut export = ExportWriter::new(
        BufWriter::with_capacity(1 << 20, file),
        ORIGIN,
        &key.verifier_key(),
    )?;
    let mut tree = Tree::new();
    let mut previous = GENESIS;
    let mut canonical_bytes = 0u64;
    for sequence in 1..=settings.entries {
        let entry = realistic_entry(sequence, &previous);
        let canonical = entry.canonical_bytes();
        canonical_bytes += canonical.len() as u64;
        previous = entry.hash();
        tree.push(leaf_hash(&canonical));
        export.entry(&entry)?;
        if sequence % CHECKPOINT_EVERY == 0 || sequence == settings.entries {
            let checkpoint = Checkpoint {
                origin: ORIGIN.to_owned(),
                size: sequence,
                root: tree.root(),
            };
            export.checkpoint(&note::sign(&checkpoint, &key))?;
        }
    }
    export
        .finish()
        .with_context(|| format!("writing {}", path.display()))?;
    let generation = started.elapsed();
    let file_size = std::fs::metadata(&path)?.len();
    println!(
        "generated {} entries ({:.0} bytes each, canonical) in {:.2} s; export {:.1} MiB",
        settings.entries,
        canonical_bytes as f64 / settings.entries.max(1) as f64,
        generation.as_secs_f64(),
        file_size as f64 / f64::from(1 << 20),
    );

    let trusted = key.verifier_key();
    let mut times = Vec::with_capacity(settings.runs);
    for run in 1..=settings.runs {
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let started = Instant::now();
        let summary = verify_export(BufReader::with_capacity(1 << 20, file), Some(&trusted))
            .context("verifying the export")?;
        let elapsed = started.elapsed();
        ensure!(
            summary.entries == settings.entries,
            "verified {} entries",
            summary.entries
        );
        ensure!(
            summary.root == tree.root(),
            "the verified root is not the generated one"
        );
        println!(
            "run {run}: verified {} entries in {:.3} s",
            summary.entries,
            elapsed.as_secs_f64()
        );
        times.push(elapsed);
    }
    times.sort();
    let median = times[times.len() / 2];
    let rate = settings.entries as f64 / median.as_secs_f64();
    print!(
        "median verify: {:.3} s, {:.0} entries/s, {:.0} MiB/s",
        median.as_secs_f64(),
        rate,
        file_size as f64 / f64::from(1 << 20) / median.as_secs_f64(),
    );
    if settings.entries == TARGET_ENTRIES {
        let pass = median < TARGET;
        println!(
            "; target < {} s for {TARGET_ENTRIES} entries: {}",
            TARGET.as_secs(),
            if pass { "PASS" } else { "FAIL" }
        );
        Ok(pass || !settings.check)
    } else {
        println!("; the target applies to {TARGET_ENTRIES} entries only");
        Ok(true)
    }
}

/// An entry like those a busy Gantry records: releases of two components, promotions of
/// one, and some holds with reasons.
fn realistic_entry(sequence: u64, previous: &[u8; 32]) -> Entry {
    const PROJECTS: [&str; 4] = ["payments", "storefront", "search-indexer", "identity"];
    const ENVIRONMENTS: [&str; 3] = ["staging", "production-eu", "production-us"];
    const ACTORS: [&str; 4] = [
        "alice@example.com",
        "bob@example.com",
        "ci-bot",
        "release-manager@example.com",
    ];
    let project = PROJECTS[(sequence % 4) as usize];
    let environment = ENVIRONMENTS[(sequence / 4 % 3) as usize];
    let release = format!(
        "{project}-2026.{}.{}",
        sequence / 1000 % 12 + 1,
        sequence % 1000
    );
    let digest = |component: u64| {
        let bytes = sequence
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(component);
        format!(
            "sha256:{bytes:016x}{:048x}",
            sequence ^ component.rotate_left(17)
        )
    };
    let mut entry = Entry {
        sequence,
        time: rfc3339_millis(1_790_000_000_000 + sequence * 3_217),
        actor: ACTORS[(sequence % 7 % 4) as usize].to_owned(),
        action: String::new(),
        project: project.to_owned(),
        environment: Some(environment.to_owned()),
        release: Some(release),
        digests: BTreeMap::from([("api".to_owned(), digest(1))]),
        reason: None,
        detail: serde_json::Value::Null,
        previous: hex_lower(previous),
    };
    let action = match sequence % 10 {
        0..=3 => {
            entry.environment = None;
            entry.digests.insert("worker".to_owned(), digest(2));
            "release.created"
        }
        4..=8 => {
            entry.detail = json!({"from": "staging"});
            "promotion.succeeded"
        }
        _ => {
            entry.release = None;
            entry.digests.clear();
            entry.reason = Some("incident INC-4471: error rate up after deploy".to_owned());
            "environment.held"
        }
    };
    action.clone_into(&mut entry.action);
    entry
}

fn hex_lower(bytes: &[u8; 32]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(64), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// `milliseconds` since the Unix epoch as RFC 3339 UTC with milliseconds.
fn rfc3339_millis(milliseconds: u64) -> String {
    let seconds = milliseconds / 1000;
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    // Days to a civil date (Howard Hinnant's algorithm), for dates after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        milliseconds % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            rfc3339_millis(1_795_301_101_123),
            "2026-11-21T22:45:01.123Z"
        );
    }

    #[test]
    fn a_small_export_verifies() {
        let settings = LedgerSettings {
            entries: 25_000,
            runs: 1,
            check: true,
        };
        assert!(run(&settings).expect("runs"));
    }
}
