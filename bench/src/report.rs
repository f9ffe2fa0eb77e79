//! The summary table and the raw samples file.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use gantry_testkit::RequestCounts;
use serde_json::{Value, json};

use crate::measure::{Sample, Tool};
use crate::{Artifact, CopySettings, Scenario};

/// Gantry's peak RSS must stay under this, whatever the image size.
const RSS_TARGET_MIB: f64 = 20.0;

/// The gantry/skopeo ratio targets of a scenario: (wall, CPU).
fn ratio_targets(scenario: Scenario) -> (Option<f64>, Option<f64>) {
    match scenario {
        Scenario::Cold => (Some(0.85), Some(0.4)),
        Scenario::WarmNewTag => (Some(0.4), None),
        Scenario::Mount => (Some(0.5), None),
        Scenario::Noop => (Some(0.2), None),
        Scenario::SameRepoNewTag => (None, None),
    }
}

/// The median of `values` (the mean of the middle two for an even count); NaN when empty.
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 0 {
        f64::midpoint(values[middle - 1], values[middle])
    } else {
        values[middle]
    }
}

/// Medians of one tool's samples for one scenario and artifact.
#[derive(Debug, Clone, Copy)]
struct Medians {
    wall_ms: f64,
    cpu_ms: f64,
    rss_mib: f64,
    requests_a: f64,
    requests_b: f64,
    requests: [f64; 6],
}

fn medians(samples: &[&Sample]) -> Option<Medians> {
    if samples.is_empty() {
        return None;
    }
    let of = |value: &dyn Fn(&Sample) -> f64| median(samples.iter().map(|s| value(s)).collect());
    let method = |pick: fn(&RequestCounts) -> u64| of(&|s| pick(&s.requests()) as f64);
    Some(Medians {
        wall_ms: of(&|s| s.measurement.wall_ms),
        cpu_ms: of(&|s| s.measurement.cpu_ms()),
        rss_mib: of(&|s| s.measurement.max_rss_kib as f64 / 1024.0),
        requests_a: of(&|s| s.requests_a.total() as f64),
        requests_b: of(&|s| s.requests_b.total() as f64),
        requests: [
            method(|c| c.get),
            method(|c| c.head),
            method(|c| c.put),
            method(|c| c.post),
            method(|c| c.patch),
            method(|c| c.delete),
        ],
    })
}

/// How many targets were evaluated, and how many were missed.
#[derive(Debug, Default)]
struct Tally {
    evaluated: usize,
    missed: usize,
}

impl Tally {
    fn record(&mut self, pass: bool) {
        self.evaluated += 1;
        self.missed += usize::from(!pass);
    }
}

/// `ratio` against an upper `target`: "0.42 ≤0.85 PASS".
fn verdict(ratio: Option<f64>, target: Option<f64>, tally: &mut Tally) -> String {
    match (ratio, target) {
        (Some(ratio), Some(target)) => {
            let pass = ratio <= target;
            tally.record(pass);
            format!(
                "{ratio:.2} ≤{target:.2} {}",
                if pass { "PASS" } else { "FAIL" }
            )
        }
        (Some(ratio), None) => format!("{ratio:.2}"),
        (None, _) => "-".to_owned(),
    }
}

fn rss_verdict(rss_mib: Option<f64>, tally: &mut Tally) -> String {
    match rss_mib {
        Some(rss) => {
            let pass = rss <= RSS_TARGET_MIB;
            tally.record(pass);
            format!(
                "≤{RSS_TARGET_MIB:.0} {}",
                if pass { "PASS" } else { "FAIL" }
            )
        }
        None => "-".to_owned(),
    }
}

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.decimals$}"))
}

/// Prints the medians, ratios and verdicts; returns whether every target was met.
pub(crate) fn print_summary(
    samples: &[Sample],
    artifacts: &[Artifact],
    big: Option<&Artifact>,
) -> bool {
    let mut tally = Tally::default();
    let select = |artifact: &str, scenario: Scenario, tool: Tool| -> Vec<&Sample> {
        samples
            .iter()
            .filter(|s| s.artifact == artifact && s.scenario == scenario && s.tool == tool)
            .collect()
    };

    println!(
        "\nmedians; ratio = gantry / skopeo; requests = A+B registry requests\n\n\
         {:<18} {:<7} | {:>8} {:>8} {:<16} | {:>8} {:>8} {:<16} | {:>6} {:>6} {:<8} | {:>5} {:>5}",
        "scenario",
        "image",
        "wall g",
        "wall s",
        "wall ratio",
        "cpu g",
        "cpu s",
        "cpu ratio",
        "rss g",
        "rss s",
        "rss tgt",
        "req g",
        "req s"
    );
    let mut breakdown = Vec::new();
    for artifact in artifacts {
        for scenario in Scenario::ALL {
            let gantry = medians(&select(artifact.tag, scenario, Tool::Gantry));
            let skopeo = medians(&select(artifact.tag, scenario, Tool::Skopeo));
            let ratio = |pick: fn(&Medians) -> f64| match (gantry, skopeo) {
                (Some(g), Some(s)) => Some(pick(&g) / pick(&s)),
                _ => None,
            };
            let (wall_target, cpu_target) = ratio_targets(scenario);
            println!(
                "{:<18} {:<7} | {:>8} {:>8} {:<16} | {:>8} {:>8} {:<16} | {:>6} {:>6} {:<8} | {:>5} {:>5}",
                scenario.name(),
                artifact.tag,
                number(gantry.map(|m| m.wall_ms), 0),
                number(skopeo.map(|m| m.wall_ms), 0),
                verdict(ratio(|m| m.wall_ms), wall_target, &mut tally),
                number(gantry.map(|m| m.cpu_ms), 0),
                number(skopeo.map(|m| m.cpu_ms), 0),
                verdict(ratio(|m| m.cpu_ms), cpu_target, &mut tally),
                number(gantry.map(|m| m.rss_mib), 1),
                number(skopeo.map(|m| m.rss_mib), 1),
                rss_verdict(gantry.map(|m| m.rss_mib), &mut tally),
                number(gantry.map(|m| m.requests_a + m.requests_b), 0),
                number(skopeo.map(|m| m.requests_a + m.requests_b), 0),
            );
            breakdown.push((scenario, artifact.tag, gantry, skopeo));
        }
    }

    println!(
        "\nmedian requests by method (A+B), and by registry\n\n\
         {:<18} {:<7} {:<6} | {:>5} {:>5} {:>5} {:>5} {:>5} {:>6} | {:>5} {:>5}",
        "scenario", "image", "tool", "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "A", "B"
    );
    for (scenario, tag, gantry, skopeo) in breakdown {
        for (tool, medians) in [(Tool::Gantry, gantry), (Tool::Skopeo, skopeo)] {
            let Some(m) = medians else { continue };
            let [get, head, put, post, patch, delete] = m.requests;
            println!(
                "{:<18} {:<7} {:<6} | {get:>5.0} {head:>5.0} {put:>5.0} {post:>5.0} {patch:>5.0} {delete:>6.0} | {:>5.0} {:>5.0}",
                scenario.name(),
                tag,
                tool.name(),
                m.requests_a,
                m.requests_b,
            );
        }
    }

    if let Some(big) = big {
        if let Some(m) = medians(&select(big.tag, Scenario::Cold, Tool::Gantry)) {
            println!(
                "\ngantry cold copy of {} ({:.0} MiB): {:.0} ms wall, {:.0} ms cpu, {:.1} MiB rss {}",
                big.tag,
                big.size as f64 / f64::from(1 << 20),
                m.wall_ms,
                m.cpu_ms,
                m.rss_mib,
                rss_verdict(Some(m.rss_mib), &mut tally)
            );
        }
    }
    if tally.missed == 0 {
        println!("\ntargets: {} evaluated, all met", tally.evaluated);
    } else {
        println!(
            "\ntargets: {} evaluated, {} MISSED",
            tally.evaluated, tally.missed
        );
    }
    tally.missed == 0
}

fn counts_json(counts: &RequestCounts) -> Value {
    json!({
        "get": counts.get, "head": counts.head, "put": counts.put, "post": counts.post,
        "patch": counts.patch, "delete": counts.delete, "total": counts.total(),
    })
}

/// Writes every sample to `bench/results/copy-<unix time>.json` and returns the path.
pub(crate) fn write_json(
    samples: &[Sample],
    settings: &CopySettings,
    artifacts: &[Artifact],
    big: Option<&Artifact>,
) -> Result<PathBuf> {
    let unix_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let artifacts: Vec<Value> = artifacts
        .iter()
        .chain(big)
        .map(|a| json!({ "tag": a.tag, "digest": a.digest, "size": a.size }))
        .collect();
    let samples: Vec<Value> = samples
        .iter()
        .map(|s| {
            let m = &s.measurement;
            json!({
                "artifact": s.artifact,
                "scenario": s.scenario.name(),
                "tool": s.tool.name(),
                "run": s.run,
                "wall_ms": m.wall_ms,
                "time_wall_ms": m.time_wall_ms,
                "user_ms": m.user_ms,
                "system_ms": m.system_ms,
                "max_rss_kib": m.max_rss_kib,
                "requests_a": counts_json(&s.requests_a),
                "requests_b": counts_json(&s.requests_b),
            })
        })
        .collect();
    let document = json!({
        "benchmark": "copy",
        "unix_time": unix_time,
        "runs": settings.runs,
        "gantry": settings.gantry.display().to_string(),
        "tools": settings.tools.iter().map(|tool| tool.name()).collect::<Vec<_>>(),
        "skopeo_version": skopeo_version(),
        "artifacts": artifacts,
        "samples": samples,
    });
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("copy-{unix_time}.json"));
    let text = serde_json::to_string_pretty(&document).context("serializing the samples")?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn skopeo_version() -> Option<String> {
    let output = gantry_testkit::skopeo().arg("--version").output().ok()?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert!(median(vec![]).is_nan());
        assert!((median(vec![3.0, 1.0, 2.0]) - 2.0).abs() < f64::EPSILON);
        assert!((median(vec![4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < f64::EPSILON);
    }
}
