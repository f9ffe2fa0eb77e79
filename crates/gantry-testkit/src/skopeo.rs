//! skopeo, the reference tool, for cross-checks.

use std::path::PathBuf;
use std::process::Command;

/// Finds `program` on `PATH`.
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// A `skopeo` command; panics with the install command if skopeo is not on `PATH`.
pub fn skopeo() -> Command {
    let program = find_program("skopeo")
        .unwrap_or_else(|| panic!("skopeo is not installed: run `apt-get install skopeo`"));
    Command::new(program)
}

/// `skopeo inspect --raw --tls-verify=false [--creds user:password] REFERENCE`: the manifest
/// bytes exactly as the registry serves them. `reference` is a skopeo transport reference such
/// as `docker://127.0.0.1:5000/repo:tag`; it works for HTTP and [TLS](crate::Registry::start_tls)
/// registries alike (TLS is not verified). Panics with skopeo's stderr when it fails.
pub fn skopeo_inspect_raw(reference: &str, creds: Option<(&str, &str)>) -> Vec<u8> {
    let mut command = skopeo();
    command.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some((user, password)) = creds {
        command.arg("--creds").arg(format!("{user}:{password}"));
    }
    command.arg(reference);
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("running skopeo inspect: {error}"));
    assert!(
        output.status.success(),
        "skopeo inspect --raw {reference} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}
