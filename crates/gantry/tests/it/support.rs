//! Running the binary and reading what it did.

use std::process::Stdio;

use gantry_testkit::{Pusher, Registry, sha256_digest};
use serde_json::Value;

/// What one `gantry` run did.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    #[track_caller]
    pub fn success(&self) -> &Outcome {
        assert_eq!(
            self.code, 0,
            "gantry failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts a failure with `code` and one clear error line containing `needle`.
    #[track_caller]
    pub fn fails_with(&self, code: i32, needle: &str) -> &Outcome {
        assert_eq!(
            self.code, code,
            "expected exit {code}:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "expected one error line, stderr: {}",
            self.stderr
        );
        assert!(
            errors[0].contains(needle),
            "error line {:?} does not contain {needle:?}",
            errors[0]
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `gantry ARGS` with a clean environment: an empty HOME, no auth files, no
/// GANTRY_* settings, so nothing on this machine leaks into the test.
pub async fn gantry(args: &[&str]) -> Outcome {
    gantry_with_env(args, &[]).await
}

pub async fn gantry_with_env(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let home = tempfile::tempdir().expect("temp HOME");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gantry"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().await.expect("running gantry");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The digest of the manifest `repo:reference` names in `registry`, or `None`.
pub async fn digest_at(registry: &Registry, repo: &str, reference: &str) -> Option<String> {
    Pusher::new(registry)
        .get_manifest(repo, reference)
        .await
        .map(|(_, bytes)| sha256_digest(&bytes))
}

/// The manifest bytes `repo:reference` names in `registry`.
pub async fn manifest_at(registry: &Registry, repo: &str, reference: &str) -> Vec<u8> {
    Pusher::new(registry)
        .get_manifest(repo, reference)
        .await
        .unwrap_or_else(|| panic!("no manifest {repo}:{reference} in {}", registry.host()))
        .1
}
