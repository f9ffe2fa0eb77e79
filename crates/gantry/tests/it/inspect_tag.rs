//! `gantry inspect` and `gantry tag`.

use gantry_testkit::{FaultProxy, Flavor, ImageBuilder, Pusher, Registry, index};

use crate::support::{digest_at, gantry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_shows_digest_labels_and_platforms() {
    let registry = Registry::start().await;
    let image = ImageBuilder::new(300)
        .label("org.opencontainers.image.revision", "4f2c1e9")
        .label(
            "org.opencontainers.image.source",
            "https://git.example/team/api",
        )
        .label("ci.run-id", "8812")
        .build();
    Pusher::new(&registry)
        .push_image("api", Some("v1"), &image)
        .await;
    let reference = format!("{}/api:v1", registry.host());

    let json = gantry(&["inspect", "-o", "json", &reference])
        .await
        .success()
        .json();
    assert_eq!(json["digest"], image.digest.as_str());
    assert_eq!(json["media_type"], image.media_type.as_str());
    assert_eq!(json["size"], image.size());
    assert_eq!(json["platform"], "linux/amd64");
    assert_eq!(
        json["labels"]["org.opencontainers.image.revision"],
        "4f2c1e9"
    );
    assert_eq!(json["labels"]["ci.run-id"], "8812");
    assert!(json["created"].is_string());

    let text = gantry(&["inspect", &reference]).await;
    assert!(
        text.success()
            .stdout
            .contains("org.opencontainers.image.source=https://git.example/team/api"),
        "{}",
        text.stdout
    );

    let raw = gantry(&["inspect", "--raw", &reference]).await;
    assert_eq!(raw.success().stdout.as_bytes(), image.manifest.as_slice());

    let amd = ImageBuilder::new(301).label("revision", "a").build();
    let arm = ImageBuilder::new(302)
        .platform("linux", "arm64", None)
        .label("revision", "b")
        .build();
    let list = index(vec![amd, arm.clone()], Flavor::Oci);
    Pusher::new(&registry)
        .push_index("multi", Some("v1"), &list)
        .await;
    let json = gantry(&[
        "inspect",
        "-o",
        "json",
        &format!("{}/multi:v1", registry.host()),
    ])
    .await
    .success()
    .json();
    assert_eq!(json["digest"], list.digest.as_str());
    assert_eq!(json["manifests"][1]["platform"], "linux/arm64");
    assert_eq!(json["labels"]["revision"], "a", "labels of the first image");
    let json = gantry(&[
        "inspect",
        "-o",
        "json",
        "--platform",
        "linux/arm64",
        &format!("{}/multi:v1", registry.host()),
    ])
    .await
    .success()
    .json();
    assert_eq!(json["labels"]["revision"], "b");
    assert_eq!(json["config_source"], arm.digest.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_reads_once_and_writes_once_per_tag() {
    let registry = Registry::start().await;
    let list = index(
        vec![
            ImageBuilder::new(310).build(),
            ImageBuilder::new(311)
                .platform("linux", "arm64", None)
                .build(),
        ],
        Flavor::Oci,
    );
    Pusher::new(&registry)
        .push_index("api", Some("sha-4f2c1e9"), &list)
        .await;
    let proxy = FaultProxy::start(registry.addr()).await;

    let json = gantry(&[
        "tag",
        "-o",
        "json",
        &format!("{}/api:sha-4f2c1e9", proxy.host()),
        "staging",
        "prod",
    ])
    .await
    .success()
    .json();
    assert_eq!(json["digest"], list.digest.as_str());
    let requests: Vec<(String, String)> = proxy
        .requests()
        .into_iter()
        .filter(|(_, path)| path != "/v2/")
        .collect();
    let methods: Vec<&str> = requests.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(methods, ["GET", "PUT", "PUT"], "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|(_, path)| path.contains("/manifests/"))
    );
    for tag in ["staging", "prod"] {
        assert_eq!(
            digest_at(&registry, "api", tag).await.as_deref(),
            Some(list.digest.as_str())
        );
    }

    gantry(&[
        "tag",
        &format!("{}/api:sha-4f2c1e9", registry.host()),
        "Bad Tag",
    ])
    .await
    .fails_with(2, "NEWTAG \"Bad Tag\"");
    gantry(&["tag", "oci:/tmp/somewhere:v1", "x"])
        .await
        .fails_with(2, "use gantry copy for OCI layouts");
    gantry(&["tag", &format!("{}/api:missing", registry.host()), "x"])
        .await
        .fails_with(1, "not found (404)");
    assert_eq!(digest_at(&registry, "api", "x").await, None);
}
