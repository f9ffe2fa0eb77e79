use gantry_testkit::{
    Flavor, ImageBuilder, Layout, Pusher, Registry, artifact, index, media_types, skopeo,
};

#[tokio::test(flavor = "multi_thread")]
async fn registry_accepts_every_generated_shape() {
    let registry = Registry::start().await;
    let pusher = Pusher::new(&registry);
    for flavor in [Flavor::Oci, Flavor::Docker] {
        let odd = ImageBuilder::new(10)
            .flavor(flavor)
            .layers(&[300, 200])
            .duplicate_layer()
            .empty_layer()
            .foreign_layer()
            .label("org.example", "yes")
            .build();
        pusher.push_image("testkit/odd", Some("odd"), &odd).await;
        assert!(
            !pusher
                .blob_exists("testkit/odd", &odd.foreign[0].digest)
                .await
        );
        assert_eq!(
            pusher.get_manifest("testkit/odd", "odd").await.unwrap().1,
            odd.manifest
        );

        let list = index(
            vec![
                ImageBuilder::new(11).flavor(flavor).build(),
                ImageBuilder::new(12)
                    .flavor(flavor)
                    .platform("linux", "arm64", Some("v8"))
                    .build(),
            ],
            flavor,
        );
        pusher
            .push_index("testkit/multi", Some("latest"), &list)
            .await;
        let (content_type, bytes) = pusher
            .get_manifest("testkit/multi", "latest")
            .await
            .unwrap();
        assert_eq!(
            (content_type, bytes),
            (list.media_type.clone(), list.manifest.clone())
        );
    }

    let subject = ImageBuilder::new(13).build();
    pusher
        .push_image("testkit/signed", Some("v1"), &subject)
        .await;
    let signature = artifact(
        1,
        "application/vnd.dev.cosign.simplesigning.v1+json",
        Some((&subject.media_type, &subject.digest, subject.size())),
        br#"{"critical":{}}"#,
    );
    pusher.push_image("testkit/signed", None, &signature).await;
    let (content_type, bytes) = pusher
        .get_manifest("testkit/signed", &signature.digest)
        .await
        .unwrap();
    assert_eq!(content_type, media_types::OCI_MANIFEST);
    assert_eq!(bytes, signature.manifest);
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_reads_a_written_layout() {
    let dir = tempfile::tempdir().unwrap();
    let image = ImageBuilder::new(20).layers(&[4096, 1]).build();
    let list = index(vec![ImageBuilder::new(21).build()], Flavor::Oci);
    Layout::new(dir.path())
        .add_image(Some("v1"), &image)
        .add_index(Some("multi"), &list)
        .write();
    for (tag, digest) in [("v1", &image.digest), ("multi", &list.digest)] {
        let output = skopeo()
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:{tag}", dir.path().display()))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(&gantry_testkit::sha256_digest(&output.stdout), digest);
    }
}

#[test]
fn a_gibibyte_of_layers_generates_quickly() {
    let started = std::time::Instant::now();
    let image = ImageBuilder::new(30).layers(&[128 << 20; 8]).build();
    assert_eq!(
        image
            .layers
            .iter()
            .map(|layer| layer.data.len())
            .sum::<usize>(),
        1 << 30
    );
    // Generous for a debug build on two cores; the point is "seconds, not minutes".
    assert!(
        started.elapsed().as_secs() < 60,
        "took {:?}",
        started.elapsed()
    );
}
