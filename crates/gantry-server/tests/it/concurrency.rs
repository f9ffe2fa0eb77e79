//! Many clients at once into one environment: every request is answered, every
//! promotion ends, and they ran one at a time, as the ledger shows.

use std::collections::BTreeSet;
use std::time::Duration;

use gantry_testkit::{ImageBuilder, Pusher};
use serde_json::{Value, json};

use crate::server;

const CLIENTS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_clients_promoting_into_one_environment_run_in_a_serial_order() {
    let server = server().await;
    let pusher = Pusher::new(&server.registry);
    let mut aliases = Vec::new();
    for i in 0..CLIENTS {
        let tag = format!("build-{}", i + 100);
        pusher
            .push_image(
                "payments/api",
                Some(&tag),
                &ImageBuilder::new(1000 + i as u64).build(),
            )
            .await;
        let (status, release) = server
            .post(
                "/api/v1/projects/payments/releases",
                json!({"components": {"api": format!("{}/payments/api:{tag}", server.registry.host())}}),
            )
            .await;
        assert_eq!(status, 201, "{release}");
        aliases.push(release["alias"].as_str().unwrap().to_owned());
    }
    // Each release must be in dev (track) before prod takes it.
    settle(&server, "dev", CLIENTS).await;

    // 32 clients, each its own connection, all at once.
    let requests: Vec<_> = aliases
        .iter()
        .enumerate()
        .map(|(i, alias)| {
            let http = reqwest::Client::new();
            let url = format!("{}/api/v1/projects/payments/promotions", server.base);
            let token = server.token.clone();
            let body =
                json!({"release": alias, "environment": "prod", "reason": format!("client {i}")});
            tokio::spawn(async move {
                let response = http
                    .post(url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("every request is answered");
                let status = response.status().as_u16();
                let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
                (status, body)
            })
        })
        .collect();
    let mut ids = BTreeSet::new();
    for request in requests {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 202, "{body}");
        ids.insert(body["id"].as_i64().unwrap());
    }
    assert_eq!(ids.len(), CLIENTS, "one promotion per request");

    let finished = settle(&server, "prod", CLIENTS).await;
    let states: BTreeSet<&str> = finished
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, BTreeSet::from(["succeeded"]), "{finished:?}");

    // In the ledger, prod's promotions start and end one at a time: each start is
    // followed by the end of the same promotion before the next starts.
    let (_, ledger) = server.get("/api/v1/ledger?after=0&limit=10000").await;
    let steps: Vec<(String, i64)> = ledger
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["environment"] == "prod")
        .filter_map(|e| {
            let action = e["action"].as_str().unwrap();
            matches!(
                action,
                "promotion.running" | "promotion.succeeded" | "promotion.failed"
            )
            .then(|| {
                (
                    action.to_owned(),
                    e["detail"]["promotion"].as_i64().unwrap(),
                )
            })
        })
        .collect();
    assert_eq!(steps.len(), 2 * CLIENTS, "{steps:?}");
    let mut ran = BTreeSet::new();
    for pair in steps.chunks(2) {
        let [(start, a), (end, b)] = pair else {
            unreachable!()
        };
        assert_eq!(
            (start.as_str(), end.as_str(), a),
            ("promotion.running", "promotion.succeeded", b),
            "{steps:?}"
        );
        ran.insert(*a);
    }
    assert_eq!(ran, ids, "every request's promotion ran, once");
    let last = steps.last().unwrap().1;
    let (_, board) = server.get("/api/v1/projects/payments/status").await;
    let prod = board["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "prod")
        .unwrap()
        .clone();
    let (_, promotion) = server
        .get(&format!("/api/v1/projects/payments/promotions/{last}"))
        .await;
    assert_eq!(
        prod["release_alias"], promotion["release_alias"],
        "prod holds what ran last"
    );
}

/// Waits until `environment` has `count` promotions and none is still to end; returns them.
async fn settle(server: &crate::Server, environment: &str, count: usize) -> Vec<Value> {
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let (_, history) = server
                .get(&format!(
                    "/api/v1/projects/payments/promotions?environment={environment}&limit=1000"
                ))
                .await;
            let promotions = history.as_array().unwrap().clone();
            let done = promotions
                .iter()
                .filter(|p| {
                    matches!(
                        p["state"].as_str(),
                        Some("succeeded" | "failed" | "cancelled" | "superseded" | "rejected")
                    )
                })
                .count();
            if promotions.len() >= count && done == promotions.len() {
                return promotions;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{environment} did not settle"))
}
