//! Running one copy under GNU time.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result, bail, ensure};
use gantry_testkit::RequestCounts;

use crate::{CopySettings, Scenario};

/// GNU time, which reports user and system CPU time and the peak resident set size.
const GNU_TIME: &str = "/usr/bin/time";

/// A copy tool under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Gantry,
    Skopeo,
}

impl Tool {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::Gantry => "gantry",
            Tool::Skopeo => "skopeo",
        }
    }
}

/// What one run cost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measurement {
    /// Wall time in milliseconds, measured around the process (GNU time's `%e` has only
    /// 10 ms resolution, too coarse for no-op copies).
    pub(crate) wall_ms: f64,
    /// GNU time's `%e`, in milliseconds.
    pub(crate) time_wall_ms: f64,
    /// User CPU in milliseconds.
    pub(crate) user_ms: f64,
    /// System CPU in milliseconds.
    pub(crate) system_ms: f64,
    /// Peak resident set size in KiB.
    pub(crate) max_rss_kib: u64,
}

impl Measurement {
    pub(crate) fn cpu_ms(&self) -> f64 {
        self.user_ms + self.system_ms
    }
}

/// One measured run and what it cost the registries.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) artifact: &'static str,
    pub(crate) scenario: Scenario,
    pub(crate) tool: Tool,
    pub(crate) run: usize,
    pub(crate) measurement: Measurement,
    pub(crate) requests_a: RequestCounts,
    pub(crate) requests_b: RequestCounts,
}

impl Sample {
    /// Requests on both registries.
    pub(crate) fn requests(&self) -> RequestCounts {
        let (a, b) = (self.requests_a, self.requests_b);
        RequestCounts {
            get: a.get + b.get,
            head: a.head + b.head,
            put: a.put + b.put,
            post: a.post + b.post,
            patch: a.patch + b.patch,
            delete: a.delete + b.delete,
        }
    }

    /// A progress line.
    pub(crate) fn one_line(&self) -> String {
        let m = &self.measurement;
        format!(
            "{:<6} {:<18} {:<6} run {:>2}: {:>8.1} ms wall {:>8.1} ms cpu {:>6.1} MiB rss {:>4} requests",
            self.tool.name(),
            self.scenario.name(),
            self.artifact,
            self.run,
            m.wall_ms,
            m.cpu_ms(),
            m.max_rss_kib as f64 / 1024.0,
            self.requests().total()
        )
    }
}

/// Fails early, saying how to fix it, if a tool the benchmark needs is missing.
pub(crate) fn check_prerequisites(settings: &CopySettings) -> Result<()> {
    ensure!(
        Path::new(GNU_TIME).is_file(),
        "{GNU_TIME} (GNU time) is missing: run `apt-get install time`"
    );
    if settings.tools.contains(&Tool::Gantry) {
        ensure!(
            settings.gantry.is_file(),
            "no gantry binary at {}: build it first with `cargo build --release -p gantry`, \
             or pass --gantry PATH",
            settings.gantry.display()
        );
    }
    if settings.tools.contains(&Tool::Skopeo) {
        // Panics with the install command if skopeo is missing.
        drop(gantry_testkit::skopeo());
    }
    Ok(())
}

/// Copies `source` to `destination` (both `HOST:PORT/REPOSITORY:TAG`) with `tool` under GNU time.
pub(crate) async fn run_measured(
    tool: Tool,
    settings: &CopySettings,
    source: &str,
    destination: &str,
) -> Result<Measurement> {
    let report = tempfile::NamedTempFile::new().context("creating the GNU time report file")?;
    let mut command = tokio::process::Command::new(GNU_TIME);
    command.args(["-f", "%e %U %S %M", "-o"]).arg(report.path());
    match tool {
        Tool::Gantry => {
            command
                .arg(&settings.gantry)
                .args(["copy", "--output", "json", source, destination]);
        }
        Tool::Skopeo => {
            let skopeo = gantry_testkit::skopeo();
            command.arg(skopeo.get_program()).args([
                "copy",
                "--all",
                "--preserve-digests",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("docker://{source}"),
                &format!("docker://{destination}"),
            ]);
        }
    }
    command
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let output = command
        .output()
        .await
        .with_context(|| format!("running {command:?}"))?;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    if !output.status.success() {
        bail!(
            "{} copy {source} {destination} failed ({}):\n{}{}",
            tool.name(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = std::fs::read_to_string(report.path()).context("reading the GNU time report")?;
    parse_time_report(&text, wall_ms)
}

/// Parses `%e %U %S %M` from the last line of a GNU time report.
fn parse_time_report(text: &str, wall_ms: f64) -> Result<Measurement> {
    let line = text.lines().last().unwrap_or_default();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [elapsed, user, system, rss] = fields[..] else {
        bail!("unexpected GNU time report {text:?}");
    };
    let seconds = |field: &str| -> Result<f64> {
        Ok(field
            .parse::<f64>()
            .with_context(|| format!("bad number {field:?} in {text:?}"))?
            * 1000.0)
    };
    Ok(Measurement {
        wall_ms,
        time_wall_ms: seconds(elapsed)?,
        user_ms: seconds(user)?,
        system_ms: seconds(system)?,
        max_rss_kib: rss
            .parse()
            .with_context(|| format!("bad RSS {rss:?} in {text:?}"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_time_report;

    #[test]
    fn parses_gnu_time_output() {
        let measurement = parse_time_report("0.52 0.31 0.12 10240\n", 520.0).unwrap();
        assert!((measurement.user_ms - 310.0).abs() < 1e-6);
        assert!((measurement.cpu_ms() - 430.0).abs() < 1e-6);
        assert_eq!(measurement.max_rss_kib, 10240);
        assert!(parse_time_report("Command exited with non-zero status 1\n", 1.0).is_err());
    }
}
