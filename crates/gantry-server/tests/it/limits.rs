//! Request ids and rate limits, from the outside.

use gantry_server::{RateLimit, ServerOptions};

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
