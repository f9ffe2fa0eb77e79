use gantry_testkit::{
    ImageBuilder, Pusher, Registry, RegistryAuth, RequestCounts, sha256_digest, skopeo_inspect_raw,
};
use reqwest::StatusCode;

/// Pushes an image with `pusher` and checks it reads back byte for byte.
async fn push_and_read_back(pusher: &Pusher, seed: u64) {
    let image = ImageBuilder::new(seed).layers(&[2048, 10]).build();
    pusher.push_image("testkit/app", Some("v1"), &image).await;
    let (content_type, manifest) = pusher
        .get_manifest("testkit/app", "v1")
        .await
        .expect("the tag exists");
    assert_eq!(content_type, image.media_type);
    assert_eq!(manifest, image.manifest);
    for blob in image.blobs() {
        assert!(pusher.blob_exists("testkit/app", &blob.digest).await);
    }
    assert!(
        pusher
            .get_manifest("testkit/app", "missing")
            .await
            .is_none()
    );
    assert!(
        !pusher
            .blob_exists("testkit/app", &sha256_digest(b"absent"))
            .await
    );
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// Runs `future` on its own task and reports whether it panicked.
async fn panics(future: impl Future<Output = ()> + Send + 'static) -> bool {
    tokio::spawn(future)
        .await
        .is_err_and(|error| error.is_panic())
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_registry_serves_pushes_and_counts_requests() {
    let registry = Registry::start().await;
    assert!(registry.host().starts_with("127.0.0.1:"));
    assert_eq!(registry.addr().ip().to_string(), "127.0.0.1");
    assert!(registry.storage_dir().is_dir());
    let pusher = Pusher::new(&registry);

    registry.reset_request_counts();
    let image = ImageBuilder::new(1).layers(&[100]).build();
    pusher
        .push_image("testkit/counted", Some("v1"), &image)
        .await;
    // Per blob (config and one layer): HEAD, POST, PUT; then the manifest PUT.
    assert_eq!(
        registry.request_counts(),
        RequestCounts {
            head: 2,
            post: 2,
            put: 3,
            ..RequestCounts::default()
        }
    );
    assert_eq!(
        registry.request_counts().total(),
        7,
        "counting does not count itself"
    );
    registry.reset_request_counts();
    assert_eq!(registry.request_counts(), RequestCounts::default());

    push_and_read_back(&pusher, 2).await;
    assert_eq!(registry.tokens_issued(), 0);
    let response = reqwest::get(format!("http://{}/v2/", registry.host()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_registry_stops_it_and_deletes_its_storage() {
    let registry = Registry::start().await;
    let dir = registry.dir().to_owned();
    assert!(dir.join("config.yml").is_file());
    drop(registry);
    // The directory goes only after the process is gone (Drop kills and waits first).
    assert!(!dir.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_registry_requires_the_password() {
    let registry = Registry::start_with(RegistryAuth::Basic).await;
    push_and_read_back(&Pusher::new(&registry), 3).await;

    let url = format!("http://{}/v2/", registry.host());
    let client = reqwest::Client::new();
    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let challenge = anonymous.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic "), "{challenge}");
    let wrong = client
        .get(&url)
        .basic_auth("gantry", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = client
        .get(&url)
        .basic_auth(registry.username(), Some(registry.password()))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);

    let wrong_pusher = Pusher::for_host(&registry.host(), Some(("gantry", "wrong")));
    let image = ImageBuilder::new(4).build();
    assert!(
        panics(async move {
            wrong_pusher.push_image("testkit/app", None, &image).await;
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_registry_accepts_issued_tokens_only_for_valid_users() {
    let registry = Registry::start_with(RegistryAuth::Token).await;
    let pusher = Pusher::new(&registry);
    push_and_read_back(&pusher, 5).await;
    assert!(registry.tokens_issued() >= 1);

    let client = reqwest::Client::new();
    let manifest_url = format!("http://{}/v2/testkit/app/manifests/v1", registry.host());
    let challenged = client.get(&manifest_url).send().await.unwrap();
    assert_eq!(challenged.status(), StatusCode::UNAUTHORIZED);
    let challenge = challenged.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer realm=\"http://127.0.0.1:"),
        "{challenge}"
    );
    assert!(
        challenge.contains("service=\"gantry-test-registry\""),
        "{challenge}"
    );
    let realm = challenge.split('"').nth(1).unwrap();
    let token_url = format!(
        "{realm}?service=gantry-test-registry&scope=repository:testkit/app:pull&scope=repository:other:pull"
    );

    let wrong = client
        .get(&token_url)
        .basic_auth("gantry", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    // An anonymous token grants nothing.
    let anonymous = json(client.get(&token_url).send().await.unwrap()).await;
    let denied = client
        .get(&manifest_url)
        .bearer_auth(anonymous["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);

    let granted = json(
        client
            .get(&token_url)
            .basic_auth(registry.username(), Some(registry.password()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(granted["expires_in"], 300);
    assert_eq!(granted["token"], granted["access_token"]);
    let allowed = client
        .get(&manifest_url)
        .bearer_auth(granted["token"].as_str().unwrap())
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);

    let wrong_pusher = Pusher::for_host(&registry.host(), Some(("gantry", "wrong")));
    let image = ImageBuilder::new(6).build();
    assert!(
        panics(async move {
            wrong_pusher.push_image("testkit/app", None, &image).await;
        })
        .await
    );
    let anonymous_pusher = Pusher::for_host(&registry.host(), None);
    let image = ImageBuilder::new(7).build();
    assert!(
        panics(async move {
            anonymous_pusher
                .push_image("testkit/app", None, &image)
                .await;
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_reads_what_the_pusher_wrote_through_token_auth() {
    let registry = Registry::start_with(RegistryAuth::Token).await;
    let image = ImageBuilder::new(8).build();
    Pusher::new(&registry)
        .push_image("testkit/skopeo", Some("v1"), &image)
        .await;
    let reference = format!("docker://{}/testkit/skopeo:v1", registry.host());
    let creds = (
        registry.username().to_owned(),
        registry.password().to_owned(),
    );
    let raw = tokio::task::spawn_blocking(move || {
        skopeo_inspect_raw(&reference, Some((&creds.0, &creds.1)))
    })
    .await
    .unwrap();
    assert_eq!(raw, image.manifest);
}

/// The error and its sources, `: `-separated.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_registry_serves_https_with_its_own_ca() {
    let registry = Registry::start_tls().await;
    assert!(registry.host().starts_with("127.0.0.1:"));
    assert_eq!(registry.scheme(), "https");
    let listening = format!("listening on {}, tls", registry.host());
    assert!(
        registry.stderr_tail().contains(&listening),
        "{}",
        registry.stderr_tail()
    );
    let ca_cert_path = registry.ca_cert_path().expect("a TLS registry has a CA");
    assert!(ca_cert_path.starts_with(registry.dir()));
    let ca_pem = std::fs::read(ca_cert_path).unwrap();
    assert!(ca_pem.starts_with(b"-----BEGIN CERTIFICATE-----"));

    let pusher = Pusher::new(&registry);
    registry.reset_request_counts();
    let image = ImageBuilder::new(9).layers(&[100]).build();
    pusher.push_image("testkit/tls", Some("v1"), &image).await;
    assert_eq!(
        registry.request_counts(),
        RequestCounts {
            head: 2,
            post: 2,
            put: 3,
            ..RequestCounts::default()
        },
        "the access-log barrier works over TLS"
    );
    push_and_read_back(&pusher, 10).await;

    // Trusting the CA, both names in the certificate verify.
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
        .resolve("localhost", registry.addr())
        .build()
        .unwrap();
    for url in [
        format!("https://{}/v2/", registry.host()),
        format!("https://localhost:{}/v2/", registry.addr().port()),
    ] {
        let response = trusting.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
    }

    // Without the CA the handshake fails on the certificate.
    let error = reqwest::Client::new()
        .get(format!("https://{}/v2/", registry.host()))
        .send()
        .await
        .expect_err("a client without the CA must not trust the registry");
    assert!(error.is_connect(), "{error:?}");
    let chain = error_chain(&error);
    assert!(
        chain.to_ascii_lowercase().contains("certificate"),
        "not a certificate error: {chain}"
    );

    // Plain HTTP is not served.
    let plain = reqwest::get(format!("http://{}/v2/", registry.host())).await;
    assert!(
        plain.is_err() || plain.unwrap().status() == StatusCode::BAD_REQUEST,
        "a TLS registry answered plain HTTP"
    );

    let reference = format!("docker://{}/testkit/tls:v1", registry.host());
    let raw = tokio::task::spawn_blocking(move || skopeo_inspect_raw(&reference, None))
        .await
        .unwrap();
    assert_eq!(raw, image.manifest);
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_registries_have_no_ca() {
    let registry = Registry::start().await;
    assert_eq!(registry.scheme(), "http");
    assert!(registry.ca_cert_path().is_none());
}
