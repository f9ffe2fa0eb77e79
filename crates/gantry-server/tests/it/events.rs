//! Registry events: a real Distribution registry notifies the server of pushes; a tag
//! the component's watch rule admits makes a release that `track` promotes; the same
//! push reported twice makes one release; bad events are refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_engine::{Engine, Event, project_file};
use gantry_oci::{Client, ClientOptions, CredentialSources, Registries};
use gantry_store::sqlite::SqliteStore;
use gantry_store::store::Store;
use gantry_testkit::{ImageBuilder, Pusher, Registry};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_the_watch_admits_make_releases_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let token = gantry_server::new_token();
    let registry =
        Registry::start_notifying(&format!("{base}/api/v1/events/registry"), &token).await;
    let r = registry.host();
    let yaml = format!(
        "project: shop
components:
  api: {r}/shop/api
watch:
  api: {{semver: '>=1.0.0, <2'}}
environments:
  dev:
    binding: track
    strategy: retag
    targets:
      api: {{repository: {r}/shop/api, tags: [dev]}}
"
    );
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("gantry.db")).unwrap());
    let registries = Registries::new(
        Client::new(ClientOptions::default()).unwrap(),
        CredentialSources::from_files(vec![]),
    );
    let engine = Engine::start(
        store,
        registries,
        vec![project_file::parse("shop.yaml", &yaml).unwrap()],
    )
    .await
    .unwrap();
    // The registry sends its events as a service account that may promote anywhere.
    gantry_server::add_service_token(&engine, "registry", &token, gantry_core::Role::Promoter)
        .await
        .unwrap();
    let key = gantry_server::load_or_create_ledger_key(&dir.path().join("ledger.key")).unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gantry_server::serve(listener, engine.clone(), key, async {
        let _ = stopped.await;
    }));
    let mut events = engine.subscribe();
    let pusher = Pusher::new(&registry);

    // A push the rule admits: the registry tells the server, a release is made, and
    // the track environment takes it.
    let image = ImageBuilder::new(501).build();
    let push_started = Instant::now();
    pusher.push_image("shop/api", Some("1.2.0"), &image).await;
    let release = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Event::PointerMoved {
                environment,
                release,
                ..
            } = events.recv().await.unwrap()
            {
                if environment.as_str() == "dev" {
                    return release;
                }
            }
        }
    })
    .await
    .expect("the push reached dev");
    let latency = push_started.elapsed();
    let made = engine
        .store()
        .find_release(&"shop".parse().unwrap(), release.digest().as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(made.artifacts[0].digest.as_str(), image.digest);
    assert!(latency < Duration::from_secs(30), "{latency:?}");

    let http = reqwest::Client::new();
    let post = |body: String, token: String| {
        let http = http.clone();
        let url = format!("{base}/api/v1/events/registry");
        async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .header(
                    "content-type",
                    "application/vnd.docker.distribution.events.v1+json",
                )
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(json!(text)),
            )
        }
    };

    // The same push delivered again (as a Distribution envelope): no second release.
    let envelope = json!({"events": [
        {"id": "e1", "action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image.digest, "repository": "shop/api", "url": format!("http://{r}/v2/shop/api/manifests/{}", image.digest), "tag": "1.2.0"}, "request": {"host": r}},
        {"id": "e2", "action": "pull", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image.digest, "repository": "shop/api", "tag": "1.2.0"}, "request": {"host": r}},
        {"id": "e3", "action": "push", "target": {"mediaType": "application/octet-stream", "digest": image.digest, "repository": "shop/api"}, "request": {"host": r}}
    ]});
    let (status, answer) = post(envelope.to_string(), token.clone()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        (
            &answer["releases"][0]["alias"],
            &answer["releases"][0]["created"],
            &answer["ignored"]
        ),
        (&json!(made.alias), &json!(false), &json!(2)),
        "{answer}"
    );

    // Tags the rule does not admit make nothing.
    for tag in ["2.0.0", "latest"] {
        let (status, answer) = post(
            json!({"repository": format!("{r}/shop/api"), "tag": tag, "digest": image.digest})
                .to_string(),
            token.clone(),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(
            (
                answer["releases"].as_array().unwrap().len(),
                &answer["ignored"]
            ),
            (0, &json!(1)),
            "{tag}: {answer}"
        );
    }

    // The generic form, for another image: one release however often it is told.
    let other = ImageBuilder::new(502).build();
    pusher.push_image("shop/api", None, &other).await;
    let generic =
        json!({"repository": format!("{r}/shop/api"), "tag": "1.3.0", "digest": other.digest})
            .to_string();
    let (_, first) = post(generic.clone(), token.clone()).await;
    let (_, again) = post(generic, token.clone()).await;
    assert_eq!(first["releases"][0]["created"], json!(true), "{first}");
    assert_eq!(again["releases"][0]["created"], json!(false), "{again}");
    assert_eq!(first["releases"][0]["alias"], again["releases"][0]["alias"]);
    // dev takes it (track); only then is the ledger quiet.
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Event::PointerMoved {
                environment,
                release,
                ..
            } = events.recv().await.unwrap()
            {
                if environment.as_str() == "dev"
                    && release.alias() == first["releases"][0]["alias"].as_str().unwrap()
                {
                    return;
                }
            }
        }
    })
    .await
    .expect("dev took the second release");

    // Bad events change nothing and say what is wrong.
    let releases_before = engine
        .store()
        .ledger_entries(0, usize::MAX)
        .await
        .unwrap()
        .len();
    let cases: Vec<(String, String, u16, &str)> = vec![
        ("not json".to_owned(), token.clone(), 400, "not JSON"),
        (
            json!({"repository": format!("{r}/shop/api"), "tag": "1.4.0", "digest": "sha256:abc"}).to_string(),
            token.clone(),
            422,
            "digest",
        ),
        (
            json!({"repository": format!("{r}/shop/api"), "tag": "1.4.0"}).to_string(),
            token.clone(),
            400,
            "digest",
        ),
        (
            json!({"repository": format!("{r}/shop/api"), "tag": "1.4.0", "digest": other.digest, "extra": 1}).to_string(),
            token.clone(),
            400,
            "extra",
        ),
        (
            json!({"events": [{"action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "nope", "repository": "shop/api", "tag": "1.5.0"}, "request": {"host": r}}]}).to_string(),
            token.clone(),
            422,
            "digest",
        ),
        (
            json!({"repository": format!("{r}/shop/api"), "tag": "1.4.0", "digest": other.digest}).to_string(),
            "gantry_wrong".to_owned(),
            401,
            "not valid",
        ),
    ];
    for (body, token, status, words) in cases {
        let (got, answer) = post(body.clone(), token).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer.to_string().contains(words), "{body}: {answer}");
    }
    assert_eq!(
        engine
            .store()
            .ledger_entries(0, usize::MAX)
            .await
            .unwrap()
            .len(),
        releases_before,
        "refused events change nothing"
    );
}
