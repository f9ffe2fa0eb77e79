use std::time::{Duration, Instant};

use gantry_testkit::{Fault, FaultAction, FaultProxy, ImageBuilder, Pusher, Registry};
use reqwest::StatusCode;

fn fault(method: Option<&str>, path_contains: &str, times: usize, action: FaultAction) -> Fault {
    Fault {
        method: method.map(str::to_owned),
        path_contains: path_contains.to_owned(),
        times,
        action,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pushes_stream_through_the_proxy_with_the_host_kept() {
    let registry = Registry::start().await;
    let proxy = FaultProxy::start(registry.addr()).await;
    let pusher = Pusher::for_host(&proxy.host(), None);
    let image = ImageBuilder::new(1).layers(&[8 << 20]).build();
    pusher.push_image("proxy/app", Some("v1"), &image).await;
    let requests = proxy.requests();
    // The upload went to the URL the registry returned: through the proxy, not around it.
    assert!(
        requests
            .iter()
            .any(|(method, path)| method == "PUT" && path.contains("/blobs/uploads/")),
        "{requests:?}"
    );
    assert_eq!(requests.first().unwrap().0, "HEAD");
    proxy.clear_requests();
    assert!(proxy.requests().is_empty());

    let (_, manifest) = pusher.get_manifest("proxy/app", "v1").await.unwrap();
    assert_eq!(manifest, image.manifest);
    let layer = reqwest::get(format!(
        "http://{}/v2/proxy/app/blobs/{}",
        proxy.host(),
        image.layers[0].digest
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    assert_eq!(layer, image.layers[0].data);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_faults_apply_the_given_number_of_times() {
    let registry = Registry::start().await;
    let proxy = FaultProxy::start(registry.addr()).await;
    proxy.add_fault(fault(
        Some("GET"),
        "/v2/",
        2,
        FaultAction::Status {
            code: 503,
            retry_after: Some(7),
        },
    ));
    let url = format!("http://{}/v2/", proxy.host());
    let client = reqwest::Client::new();
    assert_eq!(
        client.head(&url).send().await.unwrap().status(),
        StatusCode::OK,
        "method filter"
    );
    for _ in 0..2 {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "7");
    }
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );

    proxy.add_fault(fault(
        None,
        "/v2/",
        5,
        FaultAction::Status {
            code: 429,
            retry_after: None,
        },
    ));
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    proxy.clear_faults();
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(proxy.requests().len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn body_faults_cut_and_corrupt_responses() {
    let registry = Registry::start().await;
    let image = ImageBuilder::new(2).layers(&[1 << 20]).build();
    Pusher::new(&registry)
        .push_image("proxy/app", Some("v1"), &image)
        .await;
    let proxy = FaultProxy::start(registry.addr()).await;
    let digest = &image.layers[0].digest;
    let url = format!("http://{}/v2/proxy/app/blobs/{digest}", proxy.host());
    let client = reqwest::Client::new();

    proxy.add_fault(fault(None, digest, 1, FaultAction::CutResponseAfter(1000)));
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.content_length(), Some(1 << 20));
    let mut response = response;
    let mut received = 0;
    let error = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            Ok(None) => panic!("a cut body ends early with an error"),
            Err(error) => break error,
        }
    };
    assert_eq!(received, 1000, "{error}");

    proxy.add_fault(fault(None, digest, 1, FaultAction::CorruptResponse));
    let corrupted = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(corrupted.len(), image.layers[0].data.len());
    let differing = corrupted
        .iter()
        .zip(image.layers[0].data.iter())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differing, 1);

    proxy.add_fault(fault(None, digest, 1, FaultAction::DropConnection));
    assert!(
        client.get(&url).send().await.is_err(),
        "a dropped connection gives no response"
    );

    proxy.add_fault(fault(
        None,
        digest,
        1,
        FaultAction::Delay(Duration::from_millis(300)),
    ));
    let started = Instant::now();
    let delayed = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(delayed, image.layers[0].data);

    // All faults are used up.
    assert_eq!(
        client
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        image.layers[0].data
    );
}
