//! `gantry serve`'s flags for slow and greedy clients: they reach the server, are
//! documented, and refuse nonsense. (The behaviour itself is tested in gantry-server's
//! `limits` tests, with 140 connections.)

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

use crate::server::spawn_serve_with;
use crate::support::gantry;

/// Reads until the server closes the connection: what it sent.
async fn until_closed(mut stream: TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0_u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the connection stayed open");
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_flags_set_the_timeouts_and_the_connection_limit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("payments.yaml"),
        "project: payments
components:
  api: 127.0.0.1:1/payments/api
environments:
  dev:
    targets:
      api: {repository: 127.0.0.1:1/payments/api}
",
    )
    .unwrap();
    let project = dir.path().join("payments.yaml");
    let data = dir.path().join("data");
    let (_child, url, _token) = spawn_serve_with(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--project",
            project.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--header-timeout",
            "1",
            "--connections-per-address",
            "2",
        ],
        true,
    )
    .await;
    let address = url.trim_start_matches("http://");

    let started = Instant::now();
    let first = TcpStream::connect(address).await.unwrap();
    let second = TcpStream::connect(address).await.unwrap();
    let third = until_closed(TcpStream::connect(address).await.unwrap()).await;
    assert!(
        String::from_utf8_lossy(&third).starts_with("HTTP/1.1 503"),
        "{}",
        String::from_utf8_lossy(&third)
    );
    for idle in [first, second] {
        assert_eq!(until_closed(idle).await, b"", "closed without an answer");
    }
    assert!(started.elapsed() >= Duration::from_secs(1));

    let help = gantry(&["serve", "--help"]).await;
    help.success();
    for flag in [
        "--header-timeout",
        "--body-timeout",
        "--idle-timeout",
        "--connections-per-address",
    ] {
        assert!(help.stdout.contains(flag), "{flag} in:\n{}", help.stdout);
    }
    gantry(&["serve", "--project", "none.yaml", "--body-timeout", "0"])
        .await
        .fails_with(2, "--body-timeout 0: give at least 1 second");
}
