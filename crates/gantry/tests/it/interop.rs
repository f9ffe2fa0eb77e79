//! skopeo reads what gantry writes, and gantry copies what skopeo pushed, digest-exact.

use gantry_testkit::{
    Flavor, ImageBuilder, Layout, Pusher, Registry, index, skopeo, skopeo_inspect_raw,
};

use crate::support::{gantry, manifest_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_reads_what_gantry_writes() {
    let (source, target) = (Registry::start().await, Registry::start().await);
    let list = index(
        vec![
            ImageBuilder::new(400).build(),
            ImageBuilder::new(401)
                .platform("linux", "arm64", Some("v8"))
                .build(),
        ],
        Flavor::Oci,
    );
    Pusher::new(&source)
        .push_index("app", Some("v1"), &list)
        .await;
    gantry(&[
        "copy",
        &format!("{}/app:v1", source.host()),
        &format!("{}/app:v1", target.host()),
    ])
    .await
    .success();
    assert_eq!(
        skopeo_inspect_raw(&format!("docker://{}/app:v1", target.host()), None),
        list.manifest
    );

    let dir = tempfile::tempdir().unwrap();
    gantry(&[
        "copy",
        &format!("{}/app:v1", source.host()),
        &format!("oci:{}:v1", dir.path().display()),
    ])
    .await
    .success();
    assert_eq!(
        skopeo_inspect_raw(&format!("oci:{}:v1", dir.path().display()), None),
        list.manifest
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gantry_copies_what_skopeo_pushed() {
    let (source, target) = (Registry::start().await, Registry::start().await);
    let image = ImageBuilder::new(410).layers(&[120_000, 4_000]).build();
    // skopeo 1.9 reads only OCI media types from a layout, so the pushed image is OCI.
    let dir = tempfile::tempdir().unwrap();
    Layout::new(dir.path())
        .add_image(Some("v1"), &image)
        .write();
    let status = skopeo()
        .args([
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:v1", dir.path().display()))
        .arg(format!("docker://{}/pushed:v1", source.host()))
        .status()
        .expect("running skopeo copy");
    assert!(status.success());
    let pushed = skopeo_inspect_raw(&format!("docker://{}/pushed:v1", source.host()), None);

    let json = gantry(&[
        "copy",
        "-o",
        "json",
        &format!("{}/pushed:v1", source.host()),
        &format!("{}/copied:v1", target.host()),
    ])
    .await
    .success()
    .json();
    assert_eq!(
        json["target_digest"],
        gantry_testkit::sha256_digest(&pushed).as_str()
    );
    assert_eq!(manifest_at(&target, "copied", "v1").await, pushed);
    assert_eq!(
        skopeo_inspect_raw(&format!("docker://{}/copied:v1", target.host()), None),
        pushed
    );
}
