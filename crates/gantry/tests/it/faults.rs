//! Retries and fallbacks, with a fault-injecting proxy between gantry and the registry.

use std::time::Duration;

use gantry_testkit::{Fault, FaultAction, FaultProxy, ImageBuilder, Pusher, Registry};

use crate::support::{digest_at, gantry};

fn fault(method: &str, path: &str, times: usize, action: FaultAction) -> Fault {
    Fault {
        method: Some(method.to_owned()),
        path_contains: path.to_owned(),
        times,
        action,
    }
}

/// A source behind a proxy holding `app:v1`, and a plain target.
async fn setup(seed: u64) -> (Registry, FaultProxy, Registry, gantry_testkit::Image) {
    let source = Registry::start().await;
    let image = ImageBuilder::new(seed).layers(&[300_000, 200_000]).build();
    Pusher::new(&source)
        .push_image("app", Some("v1"), &image)
        .await;
    let proxy = FaultProxy::start(source.addr()).await;
    (source, proxy, Registry::start().await, image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_5xx_429_and_cut_connections_per_blob() {
    let (_source, proxy, target, image) = setup(100).await;
    proxy.add_fault(fault(
        "GET",
        "/blobs/sha256:",
        2,
        FaultAction::Status {
            code: 503,
            retry_after: None,
        },
    ));
    proxy.add_fault(fault(
        "GET",
        "/manifests/",
        1,
        FaultAction::Status {
            code: 429,
            retry_after: Some(1),
        },
    ));
    proxy.add_fault(fault(
        "GET",
        &image.layers[0].digest,
        1,
        FaultAction::CutResponseAfter(10_000),
    ));
    proxy.add_fault(fault(
        "GET",
        &image.layers[1].digest,
        1,
        FaultAction::DropConnection,
    ));
    proxy.add_fault(fault(
        "GET",
        "/blobs/",
        1,
        FaultAction::Delay(Duration::from_millis(200)),
    ));

    let out = gantry(&[
        "copy",
        "-o",
        "json",
        &format!("{}/app:v1", proxy.host()),
        &format!("{}/app:v1", target.host()),
    ])
    .await;
    let report = out.success().json();
    assert_eq!(report["target_digest"], image.digest.as_str());
    assert_eq!(
        digest_at(&target, "app", "v1").await.as_deref(),
        Some(image.digest.as_str())
    );
    // Only the failed blobs were fetched again, not the whole copy.
    let manifest_gets = proxy
        .requests()
        .iter()
        .filter(|(m, p)| m == "GET" && p.contains("/manifests/v1"))
        .count();
    assert_eq!(
        manifest_gets,
        2,
        "one 429, then one success: {:?}",
        proxy.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_that_keeps_failing_fails_the_copy_and_leaves_the_tag() {
    let (_source, proxy, target, image) = setup(110).await;
    let old = ImageBuilder::new(111).build();
    Pusher::new(&target)
        .push_image("app", Some("v1"), &old)
        .await;
    proxy.add_fault(fault(
        "GET",
        &image.layers[0].digest,
        100,
        FaultAction::CutResponseAfter(1_000),
    ));

    let out = gantry(&[
        "copy",
        "--retries",
        "2",
        &format!("{}/app:v1", proxy.host()),
        &format!("{}/app:v1", target.host()),
    ])
    .await;
    out.fails_with(1, &image.layers[0].digest);
    assert_eq!(
        digest_at(&target, "app", "v1").await.as_deref(),
        Some(old.digest.as_str()),
        "the tag is as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_chunked_upload_when_monolithic_is_refused() {
    let source = Registry::start().await;
    let target = Registry::start().await;
    let image = ImageBuilder::new(120).layers(&[150_000]).build();
    Pusher::new(&source)
        .push_image("app", Some("v1"), &image)
        .await;
    let proxy = FaultProxy::start(target.addr()).await;
    // Refuse every monolithic PUT that carries a body; chunks arrive as PATCH.
    for blob in image.blobs() {
        proxy.add_fault(fault(
            "PUT",
            &format!("digest={}", blob.digest.replace(':', "%3A")),
            1,
            FaultAction::Status {
                code: 413,
                retry_after: None,
            },
        ));
    }
    let out = gantry(&[
        "copy",
        &format!("{}/app:v1", source.host()),
        &format!("{}/app:v1", proxy.host()),
    ])
    .await;
    out.success();
    assert!(
        proxy.requests().iter().any(|(method, _)| method == "PATCH"),
        "{:?}",
        proxy.requests()
    );
    assert_eq!(
        digest_at(&target, "app", "v1").await.as_deref(),
        Some(image.digest.as_str())
    );
}

/// How long gantry waited after the request `method` to a path containing `path` was
/// answered 429: the time from that request to the next request of the upload (a POST,
/// PATCH or PUT under `/blobs/uploads/`). With `--jobs 1` that next request is the retry.
fn wait_after_429(proxy: &FaultProxy, method: &str, path: &str) -> Duration {
    let requests = proxy.timed_requests();
    let faulted = requests
        .iter()
        .position(|(_, m, p)| m == method && p.contains(path))
        .unwrap_or_else(|| panic!("no {method} {path} in {requests:?}"));
    let (answered, _, _) = &requests[faulted];
    let (retried, _, _) = requests[faulted + 1..]
        .iter()
        .find(|(_, m, p)| m != "HEAD" && m != "GET" && p.contains("/blobs/uploads/"))
        .unwrap_or_else(|| panic!("no retry after {method} {path} in {requests:?}"));
    retried.duration_since(*answered)
}

/// The upload faults of the tests below: 429 once, asking for a second's wait.
fn too_many_requests(method: &str, path: &str) -> Fault {
    fault(
        method,
        path,
        1,
        FaultAction::Status {
            code: 429,
            retry_after: Some(1),
        },
    )
}

/// Copies `image` from `source` into `app:v1` behind `proxy`, one blob at a time.
async fn copy_one_blob_at_a_time(source: &Registry, proxy: &FaultProxy) {
    gantry(&[
        "copy",
        "--jobs",
        "1",
        &format!("{}/app:v1", source.host()),
        &format!("{}/app:v1", proxy.host()),
    ])
    .await
    .success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_when_starting_and_finishing_a_blob_upload() {
    let source = Registry::start().await;
    let target = Registry::start().await;
    let image = ImageBuilder::new(130).layers(&[150_000]).build();
    Pusher::new(&source)
        .push_image("app", Some("v1"), &image)
        .await;
    let proxy = FaultProxy::start(target.addr()).await;
    let layer_put = format!("digest={}", image.layers[0].digest.replace(':', "%3A"));
    proxy.add_fault(too_many_requests("POST", "/blobs/uploads/"));
    proxy.add_fault(too_many_requests("PUT", &layer_put));

    copy_one_blob_at_a_time(&source, &proxy).await;

    // A lower bound, so a slow machine cannot make it fail: the backoff alone is 0.2 s.
    for (method, path) in [("POST", "/blobs/uploads/"), ("PUT", layer_put.as_str())] {
        let waited = wait_after_429(&proxy, method, path);
        assert!(
            waited >= Duration::from_millis(900),
            "{method} answered 429 with Retry-After: 1, retried after {waited:?}"
        );
    }
    assert_eq!(
        digest_at(&target, "app", "v1").await.as_deref(),
        Some(image.digest.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_on_a_chunk_of_a_blob_upload() {
    let source = Registry::start().await;
    let target = Registry::start().await;
    let image = ImageBuilder::new(131).layers(&[150_000]).build();
    Pusher::new(&source)
        .push_image("app", Some("v1"), &image)
        .await;
    let proxy = FaultProxy::start(target.addr()).await;
    // The monolithic PUT is refused, so the layer goes in chunks, whose first PATCH is 429.
    let layer_put = format!("digest={}", image.layers[0].digest.replace(':', "%3A"));
    proxy.add_fault(fault(
        "PUT",
        &layer_put,
        1,
        FaultAction::Status {
            code: 413,
            retry_after: None,
        },
    ));
    proxy.add_fault(too_many_requests("PATCH", "/blobs/uploads/"));

    copy_one_blob_at_a_time(&source, &proxy).await;

    let waited = wait_after_429(&proxy, "PATCH", "/blobs/uploads/");
    assert!(
        waited >= Duration::from_millis(900),
        "PATCH answered 429 with Retry-After: 1, retried after {waited:?}"
    );
    assert_eq!(
        digest_at(&target, "app", "v1").await.as_deref(),
        Some(image.digest.as_str())
    );
}
