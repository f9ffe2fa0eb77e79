//! `gantry copy`: what it copies, in what form, and how little work it does.

use gantry_testkit::{
    FaultProxy, Flavor, ImageBuilder, Pusher, Registry, artifact, index, media_types,
};

use crate::support::{digest_at, gantry, manifest_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_an_image_between_registries_byte_for_byte() {
    let (source, target) = (Registry::start().await, Registry::start().await);
    let image = ImageBuilder::new(1)
        .layers(&[200_000, 50_000, 1_000])
        .label("org.opencontainers.image.revision", "4f2c1e9")
        .build();
    Pusher::new(&source)
        .push_image("team/api", Some("1.0"), &image)
        .await;

    let out = gantry(&[
        "copy",
        "-o",
        "json",
        &format!("{}/team/api:1.0", source.host()),
        &format!("{}/prod/api:1.0", target.host()),
    ])
    .await;
    let report = out.success().json();
    assert_eq!(report["source_digest"], image.digest.as_str());
    assert_eq!(report["target_digest"], image.digest.as_str());
    assert_eq!(report["blobs"]["copied"], 4);
    assert_eq!(
        report["bytes_copied"],
        image.blobs().map(gantry_testkit::Blob::size).sum::<u64>()
    );
    assert_eq!(report["up_to_date"], false);
    assert_eq!(
        manifest_at(&target, "prod/api", "1.0").await,
        image.manifest,
        "manifest bytes differ"
    );
    for blob in image.blobs() {
        assert!(
            Pusher::new(&target)
                .blob_exists("prod/api", &blob.digest)
                .await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_every_platform_of_an_index_and_docker_manifest_lists() {
    let (source, target) = (Registry::start().await, Registry::start().await);
    for (n, flavor) in [(0, Flavor::Oci), (1, Flavor::Docker)] {
        let amd = ImageBuilder::new(10 + n)
            .flavor(flavor)
            .layers(&[10_000, 20_000])
            .build();
        let arm = ImageBuilder::new(20 + n)
            .flavor(flavor)
            .platform("linux", "arm64", Some("v8"))
            .layers(&[30_000])
            .build();
        let list = index(vec![amd.clone(), arm.clone()], flavor);
        Pusher::new(&source)
            .push_index("multi", Some(&format!("v{n}")), &list)
            .await;

        let out = gantry(&[
            "copy",
            "-o",
            "json",
            &format!("{}/multi:v{n}", source.host()),
            &format!("{}/multi:v{n}", target.host()),
        ])
        .await;
        let report = out.success().json();
        assert_eq!(report["target_digest"], list.digest.as_str());
        assert_eq!(
            report["manifests"]["written"], 3,
            "two images and the index"
        );
        assert_eq!(
            manifest_at(&target, "multi", &format!("v{n}")).await,
            list.manifest
        );
        assert_eq!(
            manifest_at(&target, "multi", &amd.digest).await,
            amd.manifest
        );
        assert_eq!(
            manifest_at(&target, "multi", &arm.digest).await,
            arm.manifest
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_picks_one_manifest_and_says_so() {
    let (source, target) = (Registry::start().await, Registry::start().await);
    let amd = ImageBuilder::new(30).layers(&[10_000]).build();
    let arm = ImageBuilder::new(31)
        .platform("linux", "arm64", None)
        .layers(&[10_000])
        .build();
    let list = index(vec![amd.clone(), arm.clone()], Flavor::Oci);
    Pusher::new(&source)
        .push_index("multi", Some("v1"), &list)
        .await;

    let out = gantry(&[
        "copy",
        "--platform",
        "linux/arm64",
        &format!("{}/multi:v1", source.host()),
        &format!("{}/arm:v1", target.host()),
    ])
    .await;
    out.success();
    assert!(
        out.stderr.contains("linux/arm64")
            && out.stderr.contains(&arm.digest)
            && out.stderr.contains("not the index"),
        "{}",
        out.stderr
    );
    assert_eq!(
        digest_at(&target, "arm", "v1").await.as_deref(),
        Some(arm.digest.as_str())
    );
    assert_eq!(
        digest_at(&target, "arm", &amd.digest).await,
        None,
        "the other platform is not copied"
    );

    let missing = gantry(&[
        "copy",
        "--platform",
        "linux/s390x",
        &format!("{}/multi:v1", source.host()),
        &format!("{}/arm:v2", target.host()),
    ])
    .await;
    missing.fails_with(1, "the index has linux/amd64, linux/arm64");
    let bad = gantry(&[
        "copy",
        "--platform",
        "linux",
        &format!("{}/multi:v1", source.host()),
        &format!("{}/arm:v2", target.host()),
    ])
    .await;
    bad.fails_with(2, "--platform");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_duplicate_and_foreign_layers() {
    let (source, target) = (Registry::start().await, Registry::start().await);
    let image = ImageBuilder::new(40)
        .layers(&[5_000])
        .duplicate_layer()
        .empty_layer()
        .foreign_layer()
        .build();
    Pusher::new(&source)
        .push_image("odd", Some("v1"), &image)
        .await;

    let out = gantry(&[
        "copy",
        "-o",
        "json",
        &format!("{}/odd:v1", source.host()),
        &format!("{}/odd:v1", target.host()),
    ])
    .await;
    let report = out.success().json();
    assert_eq!(report["blobs"]["foreign"], 1);
    assert_eq!(
        report["blobs"]["copied"], 3,
        "config, the layer once, the empty layer"
    );
    assert_eq!(manifest_at(&target, "odd", "v1").await, image.manifest);
    assert!(
        !Pusher::new(&target)
            .blob_exists("odd", &image.foreign[0].digest)
            .await,
        "foreign layers are referenced, not copied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_travel_with_the_digest() {
    let (source, target) = (Registry::start().await, Registry::start().await);
    let image = ImageBuilder::new(50).build();
    let pusher = Pusher::new(&source);
    pusher.push_image("app", Some("v1"), &image).await;
    // An SBOM attached through the OCI 1.1 tag schema (Distribution 2.8 has no referrers API).
    let subject = Some((
        image.media_type.as_str(),
        image.digest.as_str(),
        image.size(),
    ));
    let sbom = artifact(
        51,
        "application/spdx+json",
        subject,
        br#"{"spdxVersion":"SPDX-2.3"}"#,
    );
    pusher.push_image("app", None, &sbom).await;
    let schema_tag = format!("sha256-{}", &image.digest["sha256:".len()..]);
    let fallback = index(vec![], Flavor::Oci);
    let mut fallback_index: serde_json::Value = serde_json::from_slice(&fallback.manifest).unwrap();
    fallback_index["manifests"] = serde_json::json!([{"mediaType": sbom.media_type, "digest": sbom.digest, "size": sbom.size(), "artifactType": "application/spdx+json"}]);
    let fallback_bytes = serde_json::to_vec(&fallback_index).unwrap();
    pusher
        .push_manifest("app", &schema_tag, media_types::OCI_INDEX, &fallback_bytes)
        .await;
    // A cosign signature under its `.sig` tag.
    let signature = artifact(
        52,
        "application/vnd.dev.cosign.simplesigning.v1+json",
        None,
        b"{\"critical\":{}}",
    );
    pusher
        .push_image("app", Some(&format!("{schema_tag}.sig")), &signature)
        .await;

    let out = gantry(&[
        "copy",
        "-o",
        "json",
        &format!("{}/app:v1", source.host()),
        &format!("{}/app:v1", target.host()),
    ])
    .await;
    assert_eq!(out.success().json()["referrers_copied"], 2);
    assert_eq!(
        manifest_at(&target, "app", &sbom.digest).await,
        sbom.manifest
    );
    assert_eq!(
        manifest_at(&target, "app", &schema_tag).await,
        fallback_bytes,
        "the source's referrers index, byte for byte"
    );
    assert_eq!(
        digest_at(&target, "app", &format!("{schema_tag}.sig"))
            .await
            .as_deref(),
        Some(signature.digest.as_str())
    );

    let again = gantry(&[
        "copy",
        "-o",
        "json",
        &format!("{}/app:v1", source.host()),
        &format!("{}/app:v1", target.host()),
    ])
    .await;
    assert_eq!(
        again.success().json()["referrers_copied"],
        0,
        "already there"
    );

    let skipped = gantry(&[
        "copy",
        "-o",
        "json",
        "--no-referrers",
        &format!("{}/app:v1", source.host()),
        &format!("{}/bare:v1", target.host()),
    ])
    .await;
    assert_eq!(skipped.success().json()["referrers_copied"], 0);
    assert_eq!(digest_at(&target, "bare", &schema_tag).await, None);
    assert_eq!(
        digest_at(&target, "bare", &format!("{schema_tag}.sig")).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_without_a_source_index_get_one_at_the_target() {
    let (source, target) = (Registry::start().await, Registry::start().await);
    let image = ImageBuilder::new(55).build();
    let layout_dir = tempfile::tempdir().unwrap();
    let subject = Some((
        image.media_type.as_str(),
        image.digest.as_str(),
        image.size(),
    ));
    let attestation = artifact(56, "application/vnd.in-toto+json", subject, b"{}");
    // In a layout, referrers are manifests listed in index.json whose subject is the image.
    gantry_testkit::Layout::new(layout_dir.path())
        .add_image(Some("v1"), &image)
        .add_image(None, &attestation)
        .write();
    let layout = format!("oci:{}:v1", layout_dir.path().display());
    gantry(&["copy", &layout, &format!("{}/app:v1", source.host())])
        .await
        .success();
    assert_eq!(
        manifest_at(&source, "app", &attestation.digest).await,
        attestation.manifest
    );
    let schema_tag = format!("sha256-{}", &image.digest["sha256:".len()..]);
    let listed: serde_json::Value =
        serde_json::from_slice(&manifest_at(&source, "app", &schema_tag).await).unwrap();
    assert_eq!(
        listed["manifests"][0]["digest"],
        attestation.digest.as_str()
    );
    assert_eq!(
        listed["manifests"][0]["artifactType"],
        "application/vnd.in-toto+json"
    );

    // And from there onwards to another registry through the tag schema.
    gantry(&[
        "copy",
        &format!("{}/app:v1", source.host()),
        &format!("{}/app:v1", target.host()),
    ])
    .await
    .success();
    assert_eq!(
        manifest_at(&target, "app", &attestation.digest).await,
        attestation.manifest
    );
}

/// A copy with nothing to do reads one manifest on each side (besides auth and the
/// referrer look-ups, which read no manifest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_op_copy_costs_one_manifest_request_per_side() {
    let (source, target) = (Registry::start().await, Registry::start().await);
    let list = index(
        vec![
            ImageBuilder::new(60).build(),
            ImageBuilder::new(61)
                .platform("linux", "arm64", None)
                .build(),
        ],
        Flavor::Oci,
    );
    Pusher::new(&source)
        .push_index("app", Some("v1"), &list)
        .await;
    let (source_proxy, target_proxy) = (
        FaultProxy::start(source.addr()).await,
        FaultProxy::start(target.addr()).await,
    );
    let (from, to) = (
        format!("{}/app:v1", source_proxy.host()),
        format!("{}/app:v1", target_proxy.host()),
    );
    gantry(&["copy", &from, &to]).await.success();
    source_proxy.clear_requests();
    target_proxy.clear_requests();

    let report = gantry(&["copy", "-o", "json", &from, &to])
        .await
        .success()
        .json();
    assert_eq!(report["up_to_date"], true);
    let manifest_requests = |proxy: &FaultProxy| {
        proxy
            .requests()
            .iter()
            .filter(|(_, path)| path.contains("/manifests/"))
            .count()
    };
    let blob_requests = |proxy: &FaultProxy| {
        proxy
            .requests()
            .iter()
            .filter(|(_, path)| path.contains("/blobs/"))
            .count()
    };
    assert_eq!(
        manifest_requests(&source_proxy),
        1,
        "{:?}",
        source_proxy.requests()
    );
    assert_eq!(
        manifest_requests(&target_proxy),
        1,
        "{:?}",
        target_proxy.requests()
    );
    assert_eq!(
        blob_requests(&source_proxy) + blob_requests(&target_proxy),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_registry_mounts_and_new_tags_move_no_blobs() {
    let registry = Registry::start().await;
    let image = ImageBuilder::new(70).layers(&[100_000, 100_000]).build();
    Pusher::new(&registry)
        .push_image("dev/api", Some("v1"), &image)
        .await;
    let proxy = FaultProxy::start(registry.addr()).await;

    let mounted = gantry(&[
        "copy",
        "-o",
        "json",
        &format!("{}/dev/api:v1", proxy.host()),
        &format!("{}/prod/api:v1", proxy.host()),
    ])
    .await;
    let report = mounted.success().json();
    assert_eq!(report["blobs"]["mounted"], 3);
    assert_eq!(report["bytes_copied"], 0);
    assert!(
        !proxy
            .requests()
            .iter()
            .any(|(method, path)| method == "GET" && path.contains("/blobs/sha256")),
        "no blob was downloaded"
    );
    assert_eq!(
        digest_at(&registry, "prod/api", "v1").await.as_deref(),
        Some(image.digest.as_str())
    );

    // A new tag in a repository that has the digest: one manifest write, no blob traffic.
    proxy.clear_requests();
    let retag = gantry(&[
        "copy",
        "-o",
        "json",
        &format!("{}/dev/api:v1", proxy.host()),
        &format!("{}/prod/api:stable", proxy.host()),
    ])
    .await;
    assert_eq!(retag.success().json()["manifests"]["written"], 1);
    assert!(
        !proxy
            .requests()
            .iter()
            .any(|(_, path)| path.contains("/blobs/")),
        "{:?}",
        proxy.requests()
    );
    assert_eq!(
        digest_at(&registry, "prod/api", "stable").await.as_deref(),
        Some(image.digest.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layouts_round_trip() {
    let (source, target) = (Registry::start().await, Registry::start().await);
    let list = index(
        vec![
            ImageBuilder::new(80).layers(&[70_000]).build(),
            ImageBuilder::new(81)
                .platform("linux", "arm64", None)
                .build(),
        ],
        Flavor::Docker,
    );
    Pusher::new(&source)
        .push_index("app", Some("v1"), &list)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}:release", dir.path().join("out").display());

    gantry(&["copy", &format!("{}/app:v1", source.host()), &layout])
        .await
        .success();
    let index_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/index.json")).unwrap()).unwrap();
    assert_eq!(index_json["manifests"][0]["digest"], list.digest.as_str());
    assert_eq!(
        index_json["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "release"
    );

    gantry(&["copy", &layout, &format!("{}/back:v1", target.host())])
        .await
        .success();
    assert_eq!(manifest_at(&target, "back", "v1").await, list.manifest);
    // Re-copying into the layout changes nothing and says so.
    let again = gantry(&[
        "copy",
        "-o",
        "json",
        &format!("{}/app:v1", source.host()),
        &layout,
    ])
    .await;
    assert_eq!(again.success().json()["up_to_date"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_digest_must_match() {
    let (source, target) = (Registry::start().await, Registry::start().await);
    let image = ImageBuilder::new(90).build();
    Pusher::new(&source)
        .push_image("app", Some("v1"), &image)
        .await;
    let other = ImageBuilder::new(91).build();
    let out = gantry(&[
        "copy",
        &format!("{}/app:v1", source.host()),
        &format!("{}/app:v1@{}", target.host(), other.digest),
    ])
    .await;
    out.fails_with(1, "a copy never changes a digest");
    assert_eq!(digest_at(&target, "app", "v1").await, None);
    let by_digest = gantry(&[
        "copy",
        &format!("{}/app:v1", source.host()),
        &format!("{}/app@{}", target.host(), image.digest),
    ])
    .await;
    by_digest.success();
    assert_eq!(
        digest_at(&target, "app", &image.digest).await.as_deref(),
        Some(image.digest.as_str())
    );
}
