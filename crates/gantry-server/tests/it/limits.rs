//! Request ids, rate limits, timeouts and connection limits, from the outside.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gantry_server::{ConnectionLimits, RateLimit, ServerOptions};
use tokio::net::TcpStream;

use crate::server_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_carry_ids_and_callers_have_a_rate() {
    let server = server_with(ServerOptions {
        rate_limit: Some(RateLimit {
            per_second: 0.2,
            burst: 3.0,
        }),
        ..ServerOptions::default()
    })
    .await;
    let status = format!("{}/api/v1/projects/payments/status", server.base);
    let get = |id: Option<&str>, token: &str| {
        let mut request = server.http.get(&status).bearer_auth(token);
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };
    let id_of = |response: &reqwest::Response| {
        response
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };

    // A sensible id from the client is kept; a missing or unsafe one is made up.
    let kept = get(Some("ci-run-42"), &server.token).await.unwrap();
    assert_eq!(
        (kept.status().as_u16(), id_of(&kept)),
        (200, "ci-run-42".to_owned())
    );
    let made = get(None, &server.token).await.unwrap();
    assert_eq!(made.status().as_u16(), 200);
    assert!(
        id_of(&made).len() == 24 && id_of(&made).bytes().all(|b| b.is_ascii_hexdigit()),
        "{}",
        id_of(&made)
    );
    let replaced = get(Some("two words"), &server.token).await.unwrap();
    assert_eq!(replaced.status().as_u16(), 200);
    assert_ne!(id_of(&replaced), "two words");

    // The burst of three is spent: the fourth request waits, and is told how long.
    let limited = get(None, &server.token).await.unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&retry_after), "{retry_after}");
    assert!(!id_of(&limited).is_empty(), "refusals carry an id too");
    let body: serde_json::Value = serde_json::from_str(&limited.text().await.unwrap()).unwrap();
    assert_eq!(body["code"], "rate_limited", "{body}");

    // Guessing tokens is limited per address, apart from the caller's bucket.
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(get(None, "gantry_wrong").await.unwrap().status().as_u16());
    }
    assert_eq!(answers, [401, 401, 401, 429]);

    // Health checks are never limited.
    for _ in 0..5 {
        let health = server
            .http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status().as_u16(), 200);
    }
}

/// Behind a trusted load balancer, failed authentications count per client it forwards
/// for; from anyone else, `X-Forwarded-For` is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_count_per_forwarded_client_behind_trusted_proxies() {
    let options = |trusted: &str| ServerOptions {
        rate_limit: Some(RateLimit {
            per_second: 0.2,
            burst: 2.0,
        }),
        trusted_proxies: gantry_server::proxies::TrustedProxies(vec![trusted.parse().unwrap()]),
        ..ServerOptions::default()
    };
    let guesses = |server: &crate::Server, client: &'static str| {
        let url = format!("{}/api/v1/whoami", server.base);
        let http = server.http.clone();
        async move {
            let mut answers = Vec::new();
            for _ in 0..3 {
                let response = http
                    .get(&url)
                    .bearer_auth("gantry_wrong")
                    .header("x-forwarded-for", format!("6.6.6.6, {client}"))
                    .send()
                    .await
                    .unwrap();
                answers.push(response.status().as_u16());
            }
            answers
        }
    };

    // The test's own address is the "balancer".
    let behind = server_with(options("127.0.0.0/8")).await;
    assert_eq!(guesses(&behind, "198.51.100.1").await, [401, 401, 429]);
    assert_eq!(
        guesses(&behind, "198.51.100.2").await,
        [401, 401, 429],
        "another client has a budget of its own"
    );

    // Not a trusted proxy: every request counts against the peer, whatever it claims.
    let direct = server_with(options("10.0.0.0/8")).await;
    assert_eq!(guesses(&direct, "198.51.100.1").await, [401, 401, 429]);
    assert_eq!(guesses(&direct, "198.51.100.2").await, [429, 429, 429]);
}

/// Reads until the server closes the connection (or resets it); what it sent, and when.
async fn read_until_closed(
    mut reader: impl tokio::io::AsyncRead + Unpin,
    bound: Duration,
) -> Result<(Vec<u8>, Instant), tokio::time::error::Elapsed> {
    use tokio::io::AsyncReadExt as _;

    tokio::time::timeout(bound, async {
        let mut received = Vec::new();
        let mut buffer = [0_u8; 4096];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return (received, Instant::now()),
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
}

/// 140 connections from one address that send nothing, trickle their headers, or stop in
/// the middle of a body: the first 64 are taken and cut off at their timeouts, the rest
/// are refused at once, and another client's `/healthz` is answered throughout. A
/// kept-alive connection may wait longer than the header timeout for its next request,
/// but not longer than the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_clients_are_cut_off_and_cannot_crowd_out_others() {
    use tokio::io::AsyncWriteExt as _;

    let limits = ConnectionLimits {
        header_timeout: Duration::from_secs(2),
        body_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(4),
        per_address: 64,
    };
    let server = server_with(ServerOptions {
        connections: limits,
        rate_limit: None,
        ..ServerOptions::default()
    })
    .await;
    let address: SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let health = format!("{}/healthz", server.base);

    // Another client, from another loopback address, asks for /healthz all along.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn({
        let stop = Arc::clone(&stop);
        let other = reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, 2]))
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let health = health.clone();
        async move {
            let mut answered = 0;
            while !stop.load(Ordering::Relaxed) {
                let response = other.get(&health).send().await;
                let status = response.as_ref().map(|r| r.status().as_u16());
                assert!(
                    matches!(status, Ok(200)),
                    "another client's /healthz after {answered} answers: {response:?}"
                );
                answered += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            answered
        }
    });

    let started = Instant::now();
    let mut slow = Vec::new();
    for i in 0..64 {
        let stream = TcpStream::connect(address).await.unwrap();
        let (reader, mut writer) = stream.into_split();
        let kind = ["idle", "trickling headers", "unfinished body"][i % 3];
        match kind {
            "idle" => {
                // Sends nothing, and keeps its end open.
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    drop(writer);
                });
            }
            "trickling headers" => {
                tokio::spawn(async move {
                    let head = b"GET /healthz HTTP/1.1\r\nHost: gantry\r\nX-Slow: ";
                    if writer.write_all(head).await.is_err() {
                        return;
                    }
                    for _ in 0..300 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if writer.write_all(b"a").await.is_err() {
                            return;
                        }
                    }
                });
            }
            _ => {
                let head = format!(
                    "POST /api/v1/projects/payments/stop HTTP/1.1\r\nHost: gantry\r\n\
                     Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
                     Content-Length: 1000\r\n\r\n{{\"reason\": \"",
                    server.token
                );
                tokio::spawn(async move {
                    if writer.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for _ in 0..300 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if writer.write_all(b"a").await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
        slow.push((kind, reader));
    }

    // The same address is over its limit: more connections are answered 503 and closed.
    for _ in 64..140 {
        let stream = TcpStream::connect(address).await.unwrap();
        let (answer, _) = read_until_closed(stream, Duration::from_secs(2))
            .await
            .expect("a connection over the limit is closed at once");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 503") && answer.contains("too_many_connections"),
            "{answer}"
        );
    }

    // Every slow connection is closed after its timeout, none before it.
    let closing: Vec<_> = slow
        .into_iter()
        .map(|(kind, reader)| {
            tokio::spawn(async move {
                let closed = read_until_closed(reader, Duration::from_secs(20)).await;
                (kind, closed)
            })
        })
        .collect();
    for closing in closing {
        let (kind, closed) = closing.await.unwrap();
        let (answer, at) = closed.unwrap_or_else(|_| panic!("a connection {kind} stayed open"));
        let after = at - started;
        let answer = String::from_utf8_lossy(&answer);
        if kind == "unfinished body" {
            assert!(
                after >= limits.body_timeout,
                "{kind}: closed after {after:?}"
            );
            assert!(answer.starts_with("HTTP/1.1 400"), "{kind}: {answer}");
            assert!(answer.contains("did not arrive within 3 s"), "{answer}");
        } else {
            assert!(
                after >= limits.header_timeout,
                "{kind}: closed after {after:?}"
            );
            assert!(answer.is_empty(), "{kind}: {answer}");
        }
    }

    // Their places are free again.
    let again = reqwest::get(&health).await.unwrap();
    assert_eq!(again.status().as_u16(), 200);

    // A kept-alive connection outlives the header timeout between requests, and is
    // closed once idle for the idle timeout.
    let mut kept = TcpStream::connect(address).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: gantry\r\n\r\n";
    let mut answered_at = Instant::now();
    for _ in 0..2 {
        kept.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        let mut buffer = [0_u8; 1024];
        while !answer.ends_with(b"\r\n\r\nok") {
            use tokio::io::AsyncReadExt as _;
            let n = tokio::time::timeout(Duration::from_secs(2), kept.read(&mut buffer))
                .await
                .expect("an answer")
                .unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buffer[..n]);
        }
        answered_at = Instant::now();
        tokio::time::sleep(limits.header_timeout + Duration::from_secs(1)).await;
    }
    let (rest, closed_at) = read_until_closed(kept, Duration::from_secs(20))
        .await
        .expect("an idle connection is closed");
    assert!(rest.is_empty());
    assert!(
        closed_at - answered_at >= limits.idle_timeout,
        "closed {:?} after the answer",
        closed_at - answered_at
    );

    stop.store(true, Ordering::Relaxed);
    let answered = watcher.await.unwrap();
    assert!(answered > 10, "{answered} answers to the other client");
}
