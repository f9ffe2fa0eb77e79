//! Benchmarks of `gantry` against skopeo on loopback registries.
//!
//! `cargo run --release -p gantry-bench -- copy [--runs N] [--big] [--gantry PATH] [--only TOOL] [--check]`;
//! `cargo run --release -p gantry-bench -- ledger [--entries N] [--runs N] [--check]`;
//! `cargo run --release -p gantry-bench -- decision [--iterations N] [--output text|json] [--check]`;
//! `cargo run --release -p gantry-bench -- events [--pushes N]`;
//! see `bench/README.md` for the scenarios and the targets.

mod decision;
mod events;
mod ledger;
mod measure;
mod promote;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail, ensure};
use gantry_testkit::{Flavor, ImageBuilder, Pusher, Registry, index, sha256_digest};

use crate::measure::{Sample, Tool, run_measured};

/// Size of each layer of the standard benchmark images.
const LAYER_SIZE: usize = 16 << 20;
/// Size of each layer of the `--big` image (8 layers, 1 GiB in all).
const BIG_LAYER_SIZE: usize = 128 << 20;
/// Layers per image.
const LAYERS: usize = 8;

const USAGE: &str =
    "usage: gantry-bench copy [--runs N] [--big] [--gantry PATH] [--only gantry|skopeo] [--check]

  --runs N       runs per tool, scenario and artifact (default 5)
  --big          also copy a 1 GiB image with gantry (cold scenario only) to show its peak RSS
  --gantry PATH  the gantry binary (default: target/release/gantry; build it first with
                 `cargo build --release -p gantry`)
  --only TOOL    run only one tool (no ratios are computed)
  --check        exit with status 1 if any target is missed";

/// The copy benchmark's settings.
#[derive(Debug)]
struct CopySettings {
    runs: usize,
    big: bool,
    gantry: PathBuf,
    tools: Vec<Tool>,
    check: bool,
}

/// The scenarios, in the order they run for each tool and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// To a new repository in another registry.
    Cold,
    /// To a new tag in a repository of another registry that already holds the content.
    WarmNewTag,
    /// To a new repository in the same registry (blobs can be mounted).
    Mount,
    /// The cold copy again: everything is already there.
    Noop,
    /// To a new tag in the source repository.
    SameRepoNewTag,
}

impl Scenario {
    pub(crate) const ALL: [Scenario; 5] = [
        Scenario::Cold,
        Scenario::WarmNewTag,
        Scenario::Mount,
        Scenario::Noop,
        Scenario::SameRepoNewTag,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Cold => "cold",
            Scenario::WarmNewTag => "warm-new-tag",
            Scenario::Mount => "mount",
            Scenario::Noop => "noop",
            Scenario::SameRepoNewTag => "same-repo-new-tag",
        }
    }
}

/// Content pushed to registry A as `bench/app:<tag>`.
#[derive(Debug, Clone)]
pub(crate) struct Artifact {
    /// The tag, also the artifact's name in reports: `single`, `index` or `big`.
    pub(crate) tag: &'static str,
    /// The manifest digest every copy must preserve.
    pub(crate) digest: String,
    /// Bytes of blobs and manifests.
    pub(crate) size: u64,
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.first().map(String::as_str) {
        Some("ledger") => exit_status(
            ledger::USAGE,
            ledger::parse_arguments(&arguments[1..]),
            ledger::run,
        ),
        Some("decision") => exit_status(
            decision::USAGE,
            decision::parse_arguments(&arguments[1..]),
            decision::run,
        ),
        Some("promote") => promote::main(&arguments[1..]),
        Some("events") => events::main(&arguments[1..]),
        _ => exit_status(USAGE, parse_arguments(&arguments), |settings| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("building the tokio runtime")
                .block_on(copy_benchmark(settings))
        }),
    }
}

/// Runs a benchmark on its parsed settings. Exit status 2 (with the usage) for bad
/// arguments, 1 when it fails or misses a target it was asked to check, else 0.
fn exit_status<S>(
    usage: &str,
    settings: Result<S>,
    run: impl FnOnce(&S) -> Result<bool>,
) -> ExitCode {
    let settings = match settings {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error:#}\n\n{usage}");
            return ExitCode::from(2);
        }
    };
    match run(&settings) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_arguments(arguments: &[String]) -> Result<CopySettings> {
    let mut arguments = arguments.iter();
    match arguments.next().map(String::as_str) {
        Some("copy") => {}
        Some("-h" | "--help") => {
            println!("{USAGE}");
            std::process::exit(0);
        }
        Some(other) => bail!("unknown benchmark {other:?}"),
        None => bail!("which benchmark? (`copy`, `ledger`, `promote` or `decision`)"),
    }
    let mut settings = CopySettings {
        runs: 5,
        big: false,
        gantry: Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/gantry"),
        tools: vec![Tool::Gantry, Tool::Skopeo],
        check: false,
    };
    while let Some(argument) = arguments.next() {
        let mut value = |name: &str| {
            arguments
                .next()
                .with_context(|| format!("{name} needs a value"))
                .cloned()
        };
        match argument.as_str() {
            "--runs" => {
                settings.runs = value("--runs")?.parse().context("--runs takes a number")?;
                ensure!(settings.runs > 0, "--runs must be at least 1");
            }
            "--big" => settings.big = true,
            "--gantry" => settings.gantry = PathBuf::from(value("--gantry")?),
            "--only" => {
                settings.tools = match value("--only")?.as_str() {
                    "gantry" => vec![Tool::Gantry],
                    "skopeo" => vec![Tool::Skopeo],
                    other => bail!("--only takes gantry or skopeo, not {other:?}"),
                };
            }
            "--check" => settings.check = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(settings)
}

/// Runs the copy benchmark; returns whether every target was met.
async fn copy_benchmark(settings: &CopySettings) -> Result<bool> {
    measure::check_prerequisites(settings)?;
    let registry_a = Registry::start().await;
    eprintln!("source registry A: {}", registry_a.host());

    let mut artifacts = seed_registry(&registry_a, settings.big).await;
    let big = if settings.big { artifacts.pop() } else { None };

    let mut samples: Vec<Sample> = Vec::new();
    for artifact in &artifacts {
        for run in 1..=settings.runs {
            for &tool in &settings.tools {
                samples.extend(
                    run_scenarios(settings, &registry_a, artifact, run, tool, &Scenario::ALL)
                        .await?,
                );
            }
        }
    }
    if let Some(big) = &big {
        for run in 1..=settings.runs {
            samples.extend(
                run_scenarios(
                    settings,
                    &registry_a,
                    big,
                    run,
                    Tool::Gantry,
                    &[Scenario::Cold],
                )
                .await?,
            );
        }
    }

    let all_met = report::print_summary(&samples, &artifacts, big.as_ref());
    let path = report::write_json(&samples, settings, &artifacts, big.as_ref())?;
    println!("\nraw samples: {}", path.display());
    Ok(all_met || !settings.check)
}

/// Runs `scenarios` in order for one artifact, run and tool, against a fresh registry B.
///
/// B is new for every sequence so that "cold" is cold: an older B would already hold the
/// blobs in another repository, and a tool that remembers where blobs live (skopeo keeps a
/// blob info cache across runs, keyed by registry address) would mount instead of copying.
async fn run_scenarios(
    settings: &CopySettings,
    registry_a: &Registry,
    artifact: &Artifact,
    run: usize,
    tool: Tool,
    scenarios: &[Scenario],
) -> Result<Vec<Sample>> {
    let registry_b = Registry::start().await;
    let mut samples = Vec::new();
    for &scenario in scenarios {
        let copy = CopyJob::plan(scenario, artifact, run, tool, registry_a, &registry_b);
        let sample = copy.run(settings, registry_a, &registry_b).await?;
        eprintln!("{}", sample.one_line());
        samples.push(sample);
    }
    Ok(samples)
}

/// Generates the images and pushes them to A as `bench/app:single`, `bench/app:index` and,
/// with `big`, `bench/app:big` (last).
async fn seed_registry(registry: &Registry, big: bool) -> Vec<Artifact> {
    let pusher = Pusher::new(registry);
    let mut artifacts = Vec::new();

    eprintln!("generating and pushing bench/app:single (128 MiB, 8 layers)");
    let single = ImageBuilder::new(1).layers(&[LAYER_SIZE; LAYERS]).build();
    pusher
        .push_image("bench/app", Some("single"), &single)
        .await;
    artifacts.push(Artifact {
        tag: "single",
        digest: single.digest.clone(),
        size: single.total_size(),
    });
    drop(single);

    eprintln!("generating and pushing bench/app:index (2 platforms x 128 MiB, 8 layers each)");
    let platforms = index(
        vec![
            ImageBuilder::new(2)
                .layers(&[LAYER_SIZE; LAYERS])
                .platform("linux", "amd64", None)
                .build(),
            ImageBuilder::new(3)
                .layers(&[LAYER_SIZE; LAYERS])
                .platform("linux", "arm64", Some("v8"))
                .build(),
        ],
        Flavor::Oci,
    );
    pusher
        .push_index("bench/app", Some("index"), &platforms)
        .await;
    artifacts.push(Artifact {
        tag: "index",
        digest: platforms.digest.clone(),
        size: platforms.total_size(),
    });
    drop(platforms);

    if big {
        eprintln!("generating and pushing bench/app:big (1 GiB, 8 layers)");
        let image = ImageBuilder::new(4)
            .layers(&[BIG_LAYER_SIZE; LAYERS])
            .build();
        pusher.push_image("bench/app", Some("big"), &image).await;
        artifacts.push(Artifact {
            tag: "big",
            digest: image.digest.clone(),
            size: image.total_size(),
        });
    }
    artifacts
}

/// One copy to measure: where from, where to.
#[derive(Debug)]
struct CopyJob<'a> {
    scenario: Scenario,
    artifact: &'a Artifact,
    run: usize,
    tool: Tool,
    /// `HOST:PORT/REPOSITORY:TAG`.
    source: String,
    /// Registry host, repository and tag of the destination.
    destination: (String, String, String),
}

impl<'a> CopyJob<'a> {
    fn plan(
        scenario: Scenario,
        artifact: &'a Artifact,
        run: usize,
        tool: Tool,
        registry_a: &Registry,
        registry_b: &Registry,
    ) -> CopyJob<'a> {
        let (a, b, tag) = (registry_a.host(), registry_b.host(), artifact.tag);
        let tool_name = tool.name();
        // Every run, tool and artifact gets its own destination so runs are independent.
        let cold_repository = format!("cold-{run}-{tool_name}-{tag}/app");
        let destination = match scenario {
            Scenario::Cold | Scenario::Noop => (b, cold_repository, tag.to_owned()),
            Scenario::WarmNewTag => (b, cold_repository, format!("{tag}-newtag")),
            Scenario::Mount => (
                a,
                format!("mount-{run}-{tool_name}-{tag}/app"),
                tag.to_owned(),
            ),
            Scenario::SameRepoNewTag => (
                a,
                "bench/app".to_owned(),
                format!("{tag}-{run}-{tool_name}"),
            ),
        };
        CopyJob {
            scenario,
            artifact,
            run,
            tool,
            source: format!("{}/bench/app:{tag}", registry_a.host()),
            destination,
        }
    }

    async fn run(
        &self,
        settings: &CopySettings,
        registry_a: &Registry,
        registry_b: &Registry,
    ) -> Result<Sample> {
        let (host, repository, tag) = &self.destination;
        let destination = format!("{host}/{repository}:{tag}");
        registry_a.reset_request_counts();
        registry_b.reset_request_counts();
        let measurement = run_measured(self.tool, settings, &self.source, &destination)
            .await
            .with_context(|| {
                format!(
                    "{} {} {} run {}",
                    self.tool.name(),
                    self.scenario.name(),
                    self.artifact.tag,
                    self.run
                )
            })?;
        let requests_a = registry_a.request_counts();
        let requests_b = registry_b.request_counts();

        let copied = Pusher::for_host(host, None)
            .get_manifest(repository, tag)
            .await;
        let Some((_, manifest)) = copied else {
            bail!("{} left no manifest at {destination}", self.tool.name());
        };
        let digest = sha256_digest(&manifest);
        ensure!(
            digest == self.artifact.digest,
            "{} changed the digest: {destination} is {digest}, the source is {}",
            self.tool.name(),
            self.artifact.digest
        );
        Ok(Sample {
            artifact: self.artifact.tag,
            scenario: self.scenario,
            tool: self.tool,
            run: self.run,
            measurement,
            requests_a,
            requests_b,
        })
    }
}
