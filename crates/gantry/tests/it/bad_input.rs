//! Bad input gets one clear line naming what and where, a non-zero exit, and leaves the
//! target as it was.

use gantry_testkit::{Fault, FaultAction, FaultProxy, ImageBuilder, Layout, Pusher, Registry};

use crate::support::{digest_at, gantry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_arguments_are_usage_errors() {
    for (args, needle) in [
        (
            vec!["copy", "Registry.example/App:v1", "oci:/tmp/x"],
            "SOURCE: invalid reference \"Registry.example/App:v1\": repository \"App\" must be lower case",
        ),
        (
            vec!["copy", "reg.example/app@sha256:abc", "oci:/tmp/x"],
            "digest \"sha256:abc\" must have 64 hex digits",
        ),
        (
            vec!["copy", "reg.example:99999/app:v1", "oci:/tmp/x"],
            "registry \"reg.example:99999\" has a port",
        ),
        (
            vec!["copy", "reg.example/app:v1", "reg.example/app:bad tag"],
            "TARGET: invalid reference",
        ),
        (
            vec![
                "copy",
                "--src-creds",
                "nocolon",
                "reg.example/app:v1",
                "oci:/tmp/x",
            ],
            "--src-creds: expected USER:PASSWORD",
        ),
        (
            vec!["inspect", "oci:"],
            "layout path \"\" must not be empty",
        ),
    ] {
        gantry(&args).await.fails_with(2, needle);
    }
    let clap = gantry(&["copy", "--jobs", "0", "a", "b"]).await;
    assert_eq!(clap.code, 2, "{}", clap.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_hosts_and_missing_things() {
    gantry(&["inspect", "--retries", "1", "no-such-host.invalid/app:v1"])
        .await
        .fails_with(1, "cannot reach no-such-host.invalid");
    let registry = Registry::start().await;
    let host = registry.host();
    gantry(&["inspect", &format!("{host}/nothing:v1")])
        .await
        .fails_with(
            1,
            &format!("manifest {host}/nothing:v1: not found (404): MANIFEST_UNKNOWN"),
        );
    let dir = tempfile::tempdir().unwrap();
    gantry(&[
        "copy",
        &format!("oci:{}:v1", dir.path().display()),
        &format!("{}/app:v1", registry.host()),
    ])
    .await
    .fails_with(1, "has no index.json: not an OCI image layout");
}

/// A layout holding `app:v1`, with a target registry whose `app:v1` already names
/// another image, so tests can show the target's tag did not move.
async fn layout_and_target(
    seed: u64,
) -> (tempfile::TempDir, gantry_testkit::Image, Registry, String) {
    let dir = tempfile::tempdir().unwrap();
    let image = ImageBuilder::new(seed).layers(&[50_000]).build();
    Layout::new(dir.path())
        .add_image(Some("v1"), &image)
        .write();
    let target = Registry::start().await;
    let old = ImageBuilder::new(seed + 1).build();
    Pusher::new(&target)
        .push_image("app", Some("v1"), &old)
        .await;
    (dir, image, target, old.digest)
}

fn blob_file(dir: &std::path::Path, digest: &str) -> std::path::PathBuf {
    dir.join("blobs/sha256").join(&digest["sha256:".len()..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_that_do_not_match_their_digest() {
    let (dir, image, target, old) = layout_and_target(500).await;
    std::fs::write(
        blob_file(dir.path(), &image.digest),
        b"{\"schemaVersion\":2}",
    )
    .unwrap();
    let out = gantry(&[
        "copy",
        &format!("oci:{}:v1", dir.path().display()),
        &format!("{}/app:v1", target.host()),
    ])
    .await;
    out.fails_with(1, "content has digest sha256:");
    assert!(
        out.stderr.contains(&format!("expected {}", image.digest)),
        "{}",
        out.stderr
    );
    assert_eq!(digest_at(&target, "app", "v1").await, Some(old));

    // Over the wire: a registry (here, a proxy) that serves altered bytes for a digest.
    let source = Registry::start().await;
    Pusher::new(&source)
        .push_image("app", Some("v1"), &image)
        .await;
    let proxy = FaultProxy::start(source.addr()).await;
    proxy.add_fault(Fault {
        method: Some("GET".to_owned()),
        path_contains: format!("/manifests/{}", image.digest),
        times: 1,
        action: FaultAction::CorruptResponse,
    });
    let out = gantry(&[
        "copy",
        &format!("{}/app@{}", proxy.host(), image.digest),
        &format!("{}/app:v2", target.host()),
    ])
    .await;
    out.fails_with(1, "content has digest");
    assert_eq!(digest_at(&target, "app", "v2").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_blobs_never_land() {
    let (dir, image, target, old) = layout_and_target(510).await;
    let layer = blob_file(dir.path(), &image.layers[0].digest);
    let bytes = std::fs::read(&layer).unwrap();
    std::fs::write(&layer, &bytes[..bytes.len() / 2]).unwrap();
    let out = gantry(&[
        "copy",
        &format!("oci:{}:v1", dir.path().display()),
        &format!("{}/app:v1", target.host()),
    ])
    .await;
    out.fails_with(1, "25000 bytes received, descriptor says 50000");
    assert_eq!(digest_at(&target, "app", "v1").await, Some(old));
    assert!(
        !Pusher::new(&target)
            .blob_exists("app", &image.layers[0].digest)
            .await
    );

    // Into a layout, a blob whose bytes are wrong is refused before it is moved into place.
    let (dir2, image2, _target2, _) = layout_and_target(520).await;
    let layer = blob_file(dir2.path(), &image2.layers[0].digest);
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&layer, &bytes).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = gantry(&[
        "copy",
        &format!("oci:{}:v1", dir2.path().display()),
        &format!("oci:{}:v1", out_dir.path().display()),
    ])
    .await;
    out.fails_with(
        1,
        &format!("blob {}: content has digest", image2.layers[0].digest),
    );
    assert!(!blob_file(out_dir.path(), &image2.layers[0].digest).exists());
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"].as_array().unwrap().len(),
        0,
        "no tag names incomplete content"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_manifests_are_refused() {
    let (dir, image, target, old) = layout_and_target(530).await;
    // A manifest over 4 MiB: the real one plus a huge annotation, listed in index.json.
    let mut manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    manifest["annotations"] = serde_json::json!({"padding": "x".repeat(4 * 1024 * 1024)});
    let big = serde_json::to_vec(&manifest).unwrap();
    let digest = gantry_testkit::sha256_digest(&big);
    std::fs::write(blob_file(dir.path(), &digest), &big).unwrap();
    let index_path = dir.path().join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["manifests"][0]["digest"] = digest.clone().into();
    index["manifests"][0]["size"] = big.len().into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();

    let out = gantry(&[
        "copy",
        &format!("oci:{}:v1", dir.path().display()),
        &format!("{}/app:v1", target.host()),
    ])
    .await;
    out.fails_with(1, "manifest is larger than the 4194304 byte limit");
    assert_eq!(digest_at(&target, "app", "v1").await, Some(old));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_access_is_named() {
    let registry = Registry::start().await;
    let image = ImageBuilder::new(540).build();
    Pusher::new(&registry)
        .push_image("app", Some("v1"), &image)
        .await;
    let proxy = FaultProxy::start(registry.addr()).await;
    proxy.add_fault(Fault {
        method: Some("GET".to_owned()),
        path_contains: "/manifests/".to_owned(),
        times: 1,
        action: FaultAction::Status {
            code: 403,
            retry_after: None,
        },
    });
    let host = proxy.host();
    gantry(&["inspect", &format!("{host}/app:v1")])
        .await
        .fails_with(1, &format!("manifest {host}/app:v1: access denied (403)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_is_down_is_named_by_the_url_its_reference_leads_to() {
    // A loopback port nobody listens on: 9 (discard) is below the ephemeral range, so no
    // other test's registry (all on port 0) is given it, as a freed port could be.
    let down = "127.0.0.1:9";
    // Loopback is tried over plain HTTP first, then HTTPS: the error names the first URL
    // and says what else was tried.
    let tried = format!("at http://{down}/v2/app/manifests/v1; https was also tried");
    let inspect = gantry(&["inspect", "--retries", "1", &format!("{down}/app:v1")]).await;
    inspect.fails_with(1, &tried);
    let copy = gantry(&[
        "copy",
        "--retries",
        "1",
        &format!("{down}/app:v1"),
        "oci:/nonexistent/layout:v1",
    ])
    .await;
    copy.fails_with(1, &tried);
    for out in [&inspect, &copy] {
        assert!(!out.stderr.contains("https://"), "{}", out.stderr);
    }
}
