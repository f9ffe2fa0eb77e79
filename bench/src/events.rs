//! `gantry-bench events [--pushes N]`: from a push to a registry to a `track`
//! environment holding the pushed image. A Distribution registry on loopback sends its
//! notifications to an in-process `gantry serve` (`POST /api/v1/events/registry`); the
//! project watches the component's semver tags and `dev` tracks every release.
//!
//! Each push uploads its blobs first; the clock starts just before the manifest PUT
//! (the moment the push becomes visible) and stops when `dev`'s pointer names the
//! pushed release. Target (issue 5): median at most 1 s.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use gantry_engine::{Engine, Event, project_file};
use gantry_oci::{Client, ClientOptions, CredentialSources, Registries};
use gantry_store::sqlite::SqliteStore;
use gantry_testkit::{ImageBuilder, Pusher, Registry};
use tokio::sync::broadcast::error::RecvError;

const TARGET_MS: f64 = 1000.0;

pub fn main(arguments: &[String]) -> ExitCode {
    let mut pushes = 30;
    let mut arguments = arguments.iter();
    while let Some(argument) = arguments.next() {
        match (argument.as_str(), arguments.next().map(|v| v.parse())) {
            ("--pushes", Some(Ok(n))) if n > 0 => pushes = n,
            _ => {
                eprintln!("usage: gantry-bench events [--pushes N (default 30)]");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    match runtime.block_on(run(pushes)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(pushes: usize) -> anyhow::Result<bool> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let token = gantry_server::new_token();
    let registry =
        Registry::start_notifying(&format!("{base}/api/v1/events/registry"), &token).await;
    let r = registry.host();
    let yaml = format!(
        "project: shop
components:
  api: {r}/shop/api
watch:
  api: {{semver: '>=1.0.0'}}
environments:
  dev: {{binding: track, strategy: retag, targets: {{api: {{repository: {r}/shop/api, tags: [dev]}}}}}}
"
    );
    let project = project_file::parse("bench.yaml", &yaml).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("gantry.db")).context("store")?);
    let registries = Registries::new(
        Client::new(ClientOptions::default())?,
        CredentialSources::from_files(vec![]),
    );
    let engine = Engine::start(store, registries, vec![project]).await?;
    // The registry sends its events as a service account that may promote anywhere.
    gantry_server::add_service_token(&engine, "registry", &token, gantry_core::Role::Promoter)
        .await?;
    let key = gantry_server::load_or_create_ledger_key(&dir.path().join("ledger.key"))?;
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gantry_server::serve(listener, engine.clone(), key, async {
        let _ = stopped.await;
    }));
    let mut events = engine.subscribe();
    let uploader = Pusher::new(&registry);
    let mut latencies = Vec::new();
    for n in 0..pushes {
        let image = ImageBuilder::new(20_000 + n as u64).layers(&[4096]).build();
        for blob in image.blobs() {
            uploader.push_blob("shop/api", blob).await;
        }
        let started = Instant::now();
        uploader
            .push_manifest(
                "shop/api",
                &format!("1.0.{n}"),
                &image.media_type,
                &image.manifest,
            )
            .await;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), events.recv())
                .await
                .context("the push did not reach dev within 30 s")?
            {
                Ok(Event::PointerMoved {
                    environment,
                    release,
                    ..
                }) if environment.as_str() == "dev" => {
                    let holds = engine
                        .store()
                        .find_release(&"shop".parse()?, release.digest().as_str())
                        .await?
                        .is_some_and(|r| r.artifacts[0].digest.as_str() == image.digest);
                    if holds {
                        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                        break;
                    }
                }
                Ok(Event::PromotionFailed { error, .. }) => bail!("a promotion failed: {error}"),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => bail!("the engine stopped"),
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let median = latencies[latencies.len() / 2];
    let p90 = latencies[((latencies.len() - 1) as f64 * 0.9).round() as usize];
    let met = median <= TARGET_MS;
    println!(
        "events: {pushes} pushes, push → release → dev (track) pointer: min {:.0} ms, median {median:.0} ms, p90 {p90:.0} ms, max {:.0} ms",
        latencies[0],
        latencies[latencies.len() - 1]
    );
    println!(
        "  median / target ({TARGET_MS:.0} ms): {:.2}  {}",
        median / TARGET_MS,
        if met { "PASS" } else { "FAIL" }
    );
    Ok(met)
}
