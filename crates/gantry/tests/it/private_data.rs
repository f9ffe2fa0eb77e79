//! The data directory is private: `gantry serve` makes it 0700 and every file it writes
//! there 0600 whatever the umask, and warns, naming the path and the mode, about wider
//! modes it finds on an existing one.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use gantry_testkit::Registry;
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// `gantry serve` on `data` under `umask 022`, through a shell; returns the process once
/// it serves, and every line it wrote on stderr by then.
async fn serve_with_umask_022(dir: &Path, data: &Path) -> (tokio::process::Child, Vec<String>) {
    let project = dir.join("payments.yaml");
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" serve --project \"$1\" --data \"$2\" --listen 127.0.0.1:0")
        .arg(env!("CARGO_BIN_EXE_gantry"))
        .arg(&project)
        .arg(data)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running gantry serve through sh");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
        .await
        .expect("gantry serve starts")
        .unwrap()
        .expect("gantry serve says where it listens");
    assert!(line.starts_with("gantry serving"), "{line}");
    // Everything logged before it served is in the pipe now; read what is there.
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut lines = Vec::new();
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_millis(500), stderr.next_line()).await
    {
        lines.push(line);
    }
    (child, lines)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_data_directory_is_private_whatever_the_umask() {
    let registry = Registry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let r = registry.host();
    std::fs::write(
        dir.path().join("payments.yaml"),
        format!(
            "project: payments\ncomponents:\n  api: {r}/payments/api\nenvironments:\n  dev:\n    \
             binding: track\n    strategy: retag\n    targets:\n      api: {{repository: {r}/payments/api}}\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("var/lib/gantry");

    let (child, _) = serve_with_umask_022(dir.path(), &data).await;
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    files.sort();
    assert_eq!(
        files,
        ["gantry.db", "gantry.db-shm", "gantry.db-wal", "ledger.key"]
    );
    drop(child);

    // Someone opened them up: the next start says which, and how wide.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let database = data.join("gantry.db");
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (_child, logged) = serve_with_umask_022(dir.path(), &data).await;
    for (path, mode) in [(&data, "0755"), (&database, "0644")] {
        let path = path.display().to_string();
        assert!(
            logged
                .iter()
                .any(|line| line.contains("WARN") && line.contains(&path) && line.contains(mode)),
            "no warning about {path} ({mode}) in:\n{}",
            logged.join("\n")
        );
    }
    assert!(
        !logged.iter().any(|line| line.contains("ledger.key")),
        "{}",
        logged.join("\n")
    );
}
