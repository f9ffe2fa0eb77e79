//! Three `gantry serve` replicas on one `PostgreSQL` database share the work: 200
//! promotions into 20 environments from 16 clients, one replica killed with SIGKILL
//! midway and started again. Afterwards every promotion has exactly one final state, no
//! promotion moved a pointer twice, one ran at a time per environment across all
//! replicas, automation ran once per release, every pointer names complete content,
//! and the ledger is one chain that verifies.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gantry_testkit::postgres::TestDatabase;
use gantry_testkit::{ImageBuilder, Pusher, Registry};
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::server::spawn_serve_with;
use crate::support::gantry_with_env;

const ENVIRONMENTS: usize = 20;
const RELEASES: usize = 10;
const CLIENTS: usize = 16;
const FINAL: &[&str] = &["succeeded", "failed", "rejected", "cancelled", "superseded"];

fn project_file(source: &str, target: &str) -> String {
    // Every release enters `ci` by itself (automation); people promote from there.
    let mut yaml = format!(
        "project: shop\ncomponents:\n  api: {source}/shop/api\nenvironments:\n  \
         ci: {{binding: track, strategy: retag, targets: {{api: {{repository: {source}/shop/api, tags: [ci]}}}}}}\n"
    );
    for n in 1..=ENVIRONMENTS {
        let _ = writeln!(
            yaml,
            "  e{n:02}: {{from: ci, strategy: copy, targets: {{api: {{repository: {target}/shop/api, tags: [e{n:02}]}}}}}}"
        );
    }
    // Automation: a track environment follows e01, inside the target registry.
    let _ = writeln!(
        yaml,
        "  after: {{from: e01, binding: track, strategy: retag, targets: {{api: {{repository: {target}/shop/api, tags: [after]}}}}}}"
    );
    yaml
}

struct Cluster {
    dir: tempfile::TempDir,
    database: String,
    replicas: Vec<tokio::process::Child>,
    /// Where each replica serves now (a restart picks a new port).
    urls: Arc<RwLock<Vec<String>>>,
}

impl Cluster {
    fn args(&self, name: &str) -> Vec<String> {
        let data = self.dir.path().join(name);
        [
            "--project",
            self.dir.path().join("shop.yaml").to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--database",
            &self.database,
            "--ledger-key",
            self.dir.path().join("ledger.key").to_str().unwrap(),
            "--replica",
            name,
            "--lease",
            "3",
            "--rate-limit",
            "0",
            "--listen",
            "127.0.0.1:0",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    async fn start(&mut self, index: usize, first: bool) -> Option<String> {
        let name = format!("r{index}");
        let args = self.args(&name);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (replica, url, token) = spawn_serve_with(self.dir.path(), &args, first).await;
        let mut urls = self.urls.write().await;
        if index < self.replicas.len() {
            self.replicas[index] = replica;
            urls[index] = url;
        } else {
            self.replicas.push(replica);
            urls.push(url);
        }
        token
    }
}

/// The clients' view of the replicas: like a load balancer, a call goes to the next
/// replica that answers, skipping one that is down (or dying).
#[derive(Clone)]
struct Balancer {
    http: reqwest::Client,
    urls: Arc<RwLock<Vec<String>>>,
    token: String,
}

impl Balancer {
    async fn call(
        &self,
        first: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        for attempt in 0..60 {
            let url = {
                let urls = self.urls.read().await;
                urls[(first + attempt) % urls.len()].clone()
            };
            let mut request = self
                .http
                .request(method.clone(), format!("{url}{path}"))
                .bearer_auth(&self.token)
                .timeout(Duration::from_secs(30));
            if let Some(key) = idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            match request.send().await {
                Ok(response) if response.status().is_server_error() => {}
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    return (status, body);
                }
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no replica answered {method} {path}");
    }

    async fn get(&self, first: usize, path: &str) -> Value {
        let (status, body) = self
            .call(first, reqwest::Method::GET, path, None, None)
            .await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// The whole ledger, page by page.
    async fn ledger(&self) -> Vec<Value> {
        let mut entries = Vec::new();
        loop {
            let path = format!("/api/v1/ledger?after={}&limit=1000", entries.len());
            let page = self.get(0, &path).await.as_array().unwrap().clone();
            if page.is_empty() {
                return entries;
            }
            entries.extend(page);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_share_the_work_and_survive_a_kill() {
    let database = TestDatabase::create().await;
    let (source, target) = (Registry::start().await, Registry::start().await);
    let pusher = Pusher::new(&source);
    let mut digests = Vec::new();
    for n in 0..RELEASES {
        let image = ImageBuilder::new(9_000 + n as u64)
            .layers(&[20_000])
            .build();
        pusher
            .push_image("shop/api", Some(&format!("build-{n}")), &image)
            .await;
        digests.push(image.digest.clone());
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shop.yaml"),
        project_file(&source.host(), &target.host()),
    )
    .unwrap();
    let mut cluster = Cluster {
        dir,
        database: database.url.clone(),
        replicas: Vec::new(),
        urls: Arc::new(RwLock::new(Vec::new())),
    };
    let token = cluster
        .start(0, true)
        .await
        .expect("the first start's token");
    cluster.start(1, false).await;
    cluster.start(2, false).await;
    let balancer = Balancer {
        http: reqwest::Client::new(),
        urls: cluster.urls.clone(),
        token: token.clone(),
    };

    // The releases, made through any replica.
    let mut releases = Vec::new();
    for n in 0..RELEASES {
        let body = json!({"components": {"api": format!("{}/shop/api:build-{n}", source.host())}});
        let (status, release) = balancer
            .call(
                n,
                reqwest::Method::POST,
                "/api/v1/projects/shop/releases",
                Some(&body),
                None,
            )
            .await;
        assert_eq!(status, 201, "{release}");
        releases.push(release["id"].as_str().unwrap().to_owned());
    }

    // Every release reaches ci by itself before people promote it further.
    for _ in 0..600 {
        let promotions = balancer
            .get(
                0,
                "/api/v1/projects/shop/promotions?environment=ci&limit=1000",
            )
            .await;
        let done = promotions
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["state"] == "succeeded")
            .count();
        if done == RELEASES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 200 promotions, every release into every environment, in a shuffled order, from
    // 16 clients at once; each retried on another replica if its replica fails.
    let mut work: Vec<(String, usize)> = (1..=ENVIRONMENTS)
        .flat_map(|e| (0..RELEASES).map(move |r| (format!("e{e:02}"), r)))
        .collect();
    let mut state = 0x2545_f491_u64;
    for i in (1..work.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        work.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let work = Arc::new(std::sync::Mutex::new(work));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (balancer, work, answered, releases) = (
            balancer.clone(),
            work.clone(),
            answered.clone(),
            releases.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let Some((environment, release)) = work.lock().unwrap().pop() else {
                    break;
                };
                let key = format!("{environment}-{release}");
                let body = json!({"release": releases[release], "environment": environment});
                let (status, promotion) = balancer
                    .call(
                        client,
                        reqwest::Method::POST,
                        "/api/v1/projects/shop/promotions",
                        Some(&body),
                        Some(&key),
                    )
                    .await;
                assert_eq!(status, 202, "{key}: {promotion}");
                ids.push((key, promotion["id"].as_i64().unwrap()));
                answered.fetch_add(1, Ordering::SeqCst);
            }
            ids
        }));
    }

    // Midway, replica r2 dies without warning, and comes back a little later.
    // It dies while it runs a promotion, which the database shows.
    while answered.load(Ordering::SeqCst) < 70 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = database.client().await;
    let mut killed_while_running = false;
    for _ in 0..2000 {
        let running: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM promotions WHERE state = 'running' AND runner = 'r2'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if running > 0 {
            cluster.replicas[2].kill().await.unwrap();
            killed_while_running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(killed_while_running, "r2 never ran a promotion");
    // Past its 3 s lease, the others put back in line what it ran; then it returns.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    cluster.start(2, false).await;

    let mut requested: BTreeMap<String, i64> = BTreeMap::new();
    for client in clients {
        for (key, id) in client.await.unwrap() {
            assert!(requested.insert(key, id).is_none());
        }
    }
    assert_eq!(
        requested.len(),
        ENVIRONMENTS * RELEASES,
        "every request answered"
    );
    let ids: BTreeSet<i64> = requested.values().copied().collect();
    assert_eq!(ids.len(), requested.len(), "one promotion per request");

    // Every promotion ends in exactly one final state.
    let mut promotions = Value::Null;
    for _ in 0..600 {
        promotions = balancer
            .get(0, "/api/v1/projects/shop/promotions?limit=1000")
            .await;
        let open = promotions
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| !FINAL.contains(&p["state"].as_str().unwrap()))
            .count();
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let promotions = promotions.as_array().unwrap().clone();
    let by_id: BTreeMap<i64, &Value> = promotions
        .iter()
        .map(|p| (p["id"].as_i64().unwrap(), p))
        .collect();
    for id in &ids {
        let state = by_id[id]["state"].as_str().unwrap();
        assert!(FINAL.contains(&state), "promotion {id} ended {state}");
        if state == "succeeded" {
            let runner = by_id[id]["runner"].as_str().unwrap_or_default();
            assert!(
                ["r0", "r1", "r2"].contains(&runner),
                "a promotion names the replica that ran it: {}",
                by_id[id]
            );
        }
    }
    let requested_into_pins = promotions.iter().filter(|p| p["kind"] == "promote").count();
    assert_eq!(requested_into_pins, ids.len(), "no promotion made twice");

    // The ledger: one chain that verifies, every pointer move once, one promotion at a
    // time per environment, automation once per release.
    let url = balancer.urls.read().await[1].clone();
    gantry_with_env(
        &["ledger", "verify", "--from-server"],
        &[("GANTRY_URL", &url), ("GANTRY_TOKEN", &token)],
    )
    .await
    .success();
    let entries = balancer.ledger().await;
    assert!(
        entries.iter().any(|e| e["action"] == "promotion.queued"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("while it ran"))),
        "what r2 ran when it died was put back in line"
    );
    let mut moves: BTreeMap<i64, usize> = BTreeMap::new();
    let mut running: BTreeMap<String, Option<i64>> = BTreeMap::new();
    for entry in &entries {
        let Some(action) = entry["action"].as_str() else {
            continue;
        };
        let Some(state) = action.strip_prefix("promotion.") else {
            continue;
        };
        let id = entry["detail"]["promotion"].as_i64().unwrap();
        let environment = entry["environment"].as_str().unwrap().to_owned();
        let slot = running.entry(environment.clone()).or_default();
        match state {
            "running" => {
                assert_eq!(
                    *slot, None,
                    "{environment}: {id} started while {slot:?} ran"
                );
                *slot = Some(id);
            }
            "queued" | "waiting" if *slot == Some(id) => *slot = None,
            _ if FINAL.contains(&state) && *slot == Some(id) => *slot = None,
            _ => {}
        }
        if state == "succeeded" {
            *moves.entry(id).or_default() += 1;
        }
    }
    for (id, count) in &moves {
        assert_eq!(*count, 1, "promotion {id} moved its pointer {count} times");
    }
    let succeeded = promotions
        .iter()
        .filter(|p| p["state"] == "succeeded")
        .count();
    assert_eq!(moves.len(), succeeded);
    let mut automatic: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for promotion in promotions.iter().filter(|p| p["kind"] == "automatic") {
        *automatic
            .entry((
                promotion["environment"].as_str().unwrap(),
                promotion["release"].as_str().unwrap(),
            ))
            .or_default() += 1;
    }
    assert!(
        automatic
            .keys()
            .any(|(environment, _)| *environment == "after"),
        "after followed e01"
    );
    assert!(
        automatic.values().all(|count| *count == 1),
        "automation ran once per release and environment: {automatic:?}"
    );

    // Every pointer names complete content in the target registry.
    let status = balancer.get(2, "/api/v1/projects/shop/status").await;
    let target_pusher = Pusher::new(&target);
    for environment in status["environments"].as_array().unwrap() {
        let name = environment["name"].as_str().unwrap();
        if name == "ci" {
            continue; // in the source registry
        }
        let Some(release) = environment["release"].as_str() else {
            panic!("{name} holds nothing: {environment}");
        };
        let index = releases.iter().position(|r| r == release).unwrap();
        let (_, manifest) = target_pusher
            .get_manifest("shop/api", name)
            .await
            .unwrap_or_else(|| panic!("{name}: no tag"));
        assert_eq!(
            gantry_testkit::sha256_digest(&manifest),
            digests[index],
            "{name} is tagged with what its pointer names"
        );
        let manifest: Value = serde_json::from_slice(&manifest).unwrap();
        for blob in manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .chain([&manifest["config"]])
        {
            let digest = blob["digest"].as_str().unwrap();
            assert!(
                target_pusher.blob_exists("shop/api", digest).await,
                "{name}: complete content"
            );
        }
    }
}
