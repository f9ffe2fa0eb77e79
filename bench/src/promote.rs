//! `gantry-bench promote [--releases N] [--latency-releases N] [--postgres]`: releases
//! flowing through three `track` environments (retag in one loopback registry, ledger on),
//! on `SQLite`, or with `--postgres` on a throwaway database on the server
//! `GANTRY_TEST_POSTGRES` names (default `postgres://postgres@127.0.0.1:5432/postgres`).
//!
//! Two phases:
//! 1. latency: releases one at a time; for each, the time from an upstream pointer moving
//!    to the downstream `track` pointer moving (dev → staging, staging → prod);
//! 2. throughput: the rest of the releases created back to back; promotions per second
//!    from the first create to the last prod pointer move.
//!
//! Targets (issue 3): at least 100 promotions per second; median track latency at most 300 ms.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use gantry_engine::{Engine, Event, project_file};
use gantry_oci::{Client, ClientOptions, CredentialSources, Registries};
use gantry_store::postgres::PostgresStore;
use gantry_store::sqlite::SqliteStore;
use gantry_store::store::Store;
use gantry_testkit::postgres::TestDatabase;
use gantry_testkit::{ImageBuilder, Pusher, Registry};
use tokio::sync::broadcast::error::RecvError;

struct Settings {
    releases: usize,
    latency_releases: usize,
    postgres: bool,
}

pub fn main(arguments: &[String]) -> ExitCode {
    let mut settings = Settings {
        releases: 1000,
        latency_releases: 50,
        postgres: false,
    };
    let mut arguments = arguments.iter();
    while let Some(argument) = arguments.next() {
        let mut number = |name: &str| -> Option<usize> {
            arguments.next().and_then(|v| v.parse().ok()).or_else(|| {
                eprintln!("{name} takes a number");
                None
            })
        };
        match argument.as_str() {
            "--releases" => match number("--releases") {
                Some(n) => settings.releases = n,
                None => return ExitCode::from(2),
            },
            "--latency-releases" => match number("--latency-releases") {
                Some(n) => settings.latency_releases = n,
                None => return ExitCode::from(2),
            },
            "--postgres" => settings.postgres = true,
            other => {
                eprintln!(
                    "usage: gantry-bench promote [--releases N (default 1000)] [--latency-releases N (default 50)] [--postgres]; unknown {other:?}"
                );
                return ExitCode::from(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    match runtime.block_on(run(&settings)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize]
}

async fn run(settings: &Settings) -> anyhow::Result<bool> {
    anyhow::ensure!(
        settings.latency_releases < settings.releases,
        "--latency-releases must be below --releases"
    );
    let registry = Registry::start().await;
    let pusher = Pusher::new(&registry);
    eprintln!(
        "pushing {} builds to a loopback registry",
        settings.releases
    );
    for n in 0..settings.releases {
        let image = ImageBuilder::new(10_000 + n as u64).layers(&[512]).build();
        pusher
            .push_image("payments/api", Some(&format!("build-{n}")), &image)
            .await;
    }
    let r = registry.host();
    let yaml = format!(
        "project: payments
components:
  api: {r}/payments/api
environments:
  dev: {{binding: track, strategy: retag, targets: {{api: {{repository: {r}/payments/api}}}}}}
  staging: {{from: dev, binding: track, strategy: retag, targets: {{api: {{repository: {r}/payments/api}}}}}}
  prod: {{from: staging, binding: track, strategy: retag, targets: {{api: {{repository: {r}/payments/api}}}}}}
"
    );
    let project = project_file::parse("bench.yaml", &yaml).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = tempfile::tempdir()?;
    let mut _database = None;
    let store: Arc<dyn Store> = if settings.postgres {
        let database = TestDatabase::create().await;
        let store = PostgresStore::connect(&database.url)
            .await
            .context("store")?;
        _database = Some(database);
        Arc::new(store)
    } else {
        Arc::new(SqliteStore::open(&dir.path().join("gantry.db")).context("store")?)
    };
    eprintln!(
        "store: {}",
        if settings.postgres {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let registries = Registries::new(
        Client::new(ClientOptions::default())?,
        CredentialSources::from_files(vec![]),
    );
    let engine = Engine::start(store, registries, vec![project]).await?;
    let mut events = engine.subscribe();
    let host = r.clone();
    let reference = move |n: usize| {
        BTreeMap::from([("api".to_owned(), format!("{host}/payments/api:build-{n}"))])
    };

    // Phase 1: latency, one release at a time.
    let mut latencies = Vec::new();
    for n in 0..settings.latency_releases {
        let (release, _) = engine
            .create_release("payments", reference(n), BTreeMap::new(), "bench")
            .await?;
        let mut moved_at = BTreeMap::new();
        while moved_at.len() < 3 {
            match tokio::time::timeout(Duration::from_secs(30), events.recv())
                .await
                .context("no event within 30 s")?
            {
                Ok(Event::PointerMoved {
                    environment,
                    release: id,
                    ..
                }) if id == release.id => {
                    moved_at.insert(environment.to_string(), Instant::now());
                }
                Ok(Event::PromotionFailed { error, .. }) => bail!("a promotion failed: {error}"),
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => bail!("events lagged in the latency phase"),
                Err(RecvError::Closed) => bail!("the engine stopped"),
            }
        }
        for (from, to) in [("dev", "staging"), ("staging", "prod")] {
            latencies.push((moved_at[to] - moved_at[from]).as_secs_f64() * 1000.0);
        }
    }

    // Phase 2: throughput, the rest back to back.
    let count = settings.releases - settings.latency_releases;
    let started = Instant::now();
    let creator = {
        let engine = engine.clone();
        let reference = reference.clone();
        let first = settings.latency_releases;
        tokio::spawn(async move {
            for n in first..first + count {
                engine
                    .create_release("payments", reference(n), BTreeMap::new(), "bench")
                    .await?;
            }
            anyhow::Ok(())
        })
    };
    let mut prod_moves = 0;
    let mut promotions = 0usize;
    while prod_moves < count {
        match tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .context("no event within 60 s")?
        {
            Ok(Event::PointerMoved { environment, .. }) => {
                promotions += 1;
                if environment.as_str() == "prod" {
                    prod_moves += 1;
                }
            }
            Ok(Event::PromotionFailed { error, .. }) => bail!("a promotion failed: {error}"),
            Err(RecvError::Lagged(missed)) => bail!("the benchmark fell {missed} events behind"),
            Err(RecvError::Closed) => bail!("the engine stopped"),
        }
    }
    creator.await??;
    let elapsed = started.elapsed().as_secs_f64();
    let entries = engine.store().ledger_entries(0, usize::MAX).await?;
    gantry_store::ledger::export::verify_chain(&entries)
        .map_err(|e| anyhow::anyhow!("ledger: {e}"))?;

    let rate = promotions as f64 / elapsed;
    let median_latency = median(&mut latencies);
    let p90 = percentile(&mut latencies, 0.9);
    let rate_ok = rate >= 100.0;
    let latency_ok = median_latency <= 300.0;
    println!(
        "releases: {} ({} one at a time for latency, {count} back to back)",
        settings.releases, settings.latency_releases
    );
    println!(
        "throughput: {promotions} promotions in {elapsed:.2} s = {rate:.0} promotions/s  (target >= 100) {}",
        if rate_ok { "PASS" } else { "FAIL" }
    );
    println!(
        "track latency (upstream pointer moved -> track pointer moved): median {median_latency:.1} ms, p90 {p90:.1} ms, max {:.1} ms over {} moves  (target median <= 300 ms) {}",
        latencies.last().copied().unwrap_or_default(),
        latencies.len(),
        if latency_ok { "PASS" } else { "FAIL" }
    );
    println!("ledger: {} entries, chain verified", entries.len());
    Ok(rate_ok && latency_ok)
}
