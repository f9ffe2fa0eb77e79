//! Basic and bearer-token registries, credentials from flags and from auth files.

use base64::Engine as _;
use gantry_testkit::{ImageBuilder, Pusher, Registry, RegistryAuth};

use crate::support::{digest_at, gantry, gantry_with_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_with_flags_and_wrong_passwords() {
    let (source, target) = (
        Registry::start().await,
        Registry::start_with(RegistryAuth::Basic).await,
    );
    let image = ImageBuilder::new(200).build();
    Pusher::new(&source)
        .push_image("app", Some("v1"), &image)
        .await;
    let (from, to) = (
        format!("{}/app:v1", source.host()),
        format!("{}/app:v1", target.host()),
    );
    let creds = format!("{}:{}", target.username(), target.password());

    let anonymous = gantry(&["copy", &from, &to]).await;
    anonymous.fails_with(1, "authentication failed (401)");
    let wrong = gantry(&[
        "copy",
        "--dest-creds",
        &format!("{}:not-it", target.username()),
        "-vv",
        &from,
        &to,
    ])
    .await;
    wrong.fails_with(1, "authentication failed (401)");
    assert!(
        !wrong.stderr.contains("not-it"),
        "a password was printed: {}",
        wrong.stderr
    );
    assert_eq!(digest_at(&target, "app", "v1").await, None);

    let out = gantry(&["copy", "--dest-creds", &creds, "-vv", &from, &to]).await;
    out.success();
    assert!(!out.stderr.contains(target.password()) && !out.stdout.contains(target.password()));
    assert_eq!(
        digest_at(&target, "app", "v1").await.as_deref(),
        Some(image.digest.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_auth_files() {
    let (source, target) = (
        Registry::start_with(RegistryAuth::Basic).await,
        Registry::start_with(RegistryAuth::Token).await,
    );
    let image = ImageBuilder::new(210).build();
    Pusher::new(&source)
        .push_image("app", Some("v1"), &image)
        .await;
    let encode = |r: &Registry| {
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            r.username(),
            r.password()
        ))
    };
    let dir = tempfile::tempdir().unwrap();
    // REGISTRY_AUTH_FILE (containers' format) for one, DOCKER_CONFIG for the other.
    let auth_file = dir.path().join("auth.json");
    std::fs::write(
        &auth_file,
        serde_json::json!({"auths": {source.host(): {"auth": encode(&source)}}}).to_string(),
    )
    .unwrap();
    let docker_dir = dir.path().join("docker");
    std::fs::create_dir(&docker_dir).unwrap();
    std::fs::write(docker_dir.join("config.json"), serde_json::json!({"auths": {format!("http://{}", target.host()): {"auth": encode(&target)}}}).to_string()).unwrap();

    let out = gantry_with_env(
        &[
            "copy",
            &format!("{}/app:v1", source.host()),
            &format!("{}/app:v1", target.host()),
        ],
        &[
            ("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap()),
            ("DOCKER_CONFIG", docker_dir.to_str().unwrap()),
        ],
    )
    .await;
    out.success();
    assert_eq!(
        digest_at(&target, "app", "v1").await.as_deref(),
        Some(image.digest.as_str())
    );

    std::fs::write(&auth_file, "{broken").unwrap();
    let broken = gantry_with_env(
        &["inspect", &format!("{}/app:v1", source.host())],
        &[("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap())],
    )
    .await;
    broken.fails_with(1, "is not a valid auth file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_including_mounts() {
    let registry = Registry::start_with(RegistryAuth::Token).await;
    let creds = format!("{}:{}", registry.username(), registry.password());
    let image = ImageBuilder::new(220).layers(&[100_000]).build();
    Pusher::new(&registry)
        .push_image("dev/app", Some("v1"), &image)
        .await;

    let anonymous = gantry(&["inspect", &format!("{}/dev/app:v1", registry.host())]).await;
    anonymous.fails_with(1, "authentication failed (401)");

    let out = gantry(&[
        "copy",
        "-o",
        "json",
        "--src-creds",
        &creds,
        "--dest-creds",
        &creds,
        &format!("{}/dev/app:v1", registry.host()),
        &format!("{}/prod/app:v1", registry.host()),
    ])
    .await;
    let report = out.success().json();
    assert_eq!(
        report["blobs"]["mounted"], 2,
        "the token covers pulling from dev/app for the mount"
    );
    assert_eq!(
        digest_at(&registry, "prod/app", "v1").await.as_deref(),
        Some(image.digest.as_str())
    );
    assert!(registry.tokens_issued() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca() {
    let (source, target) = (Registry::start().await, Registry::start_tls().await);
    let image = ImageBuilder::new(230).layers(&[80_000]).build();
    Pusher::new(&source)
        .push_image("app", Some("v1"), &image)
        .await;
    let (from, to) = (
        format!("{}/app:v1", source.host()),
        format!("{}/app:v1", target.host()),
    );

    let untrusted = gantry(&["copy", "--retries", "1", &from, &to]).await;
    untrusted.fails_with(1, "pass --ca-cert FILE");
    assert!(
        untrusted.stderr.contains("certificate"),
        "{}",
        untrusted.stderr
    );

    let ca = target
        .ca_cert_path()
        .expect("a TLS registry has a CA")
        .to_str()
        .unwrap()
        .to_owned();
    gantry(&["copy", "--ca-cert", &ca, &from, &to])
        .await
        .success();
    assert_eq!(
        digest_at(&target, "app", "v1").await.as_deref(),
        Some(image.digest.as_str())
    );

    let not_pem = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_pem.path(), "not a certificate").unwrap();
    gantry(&[
        "inspect",
        "--ca-cert",
        not_pem.path().to_str().unwrap(),
        &to,
    ])
    .await
    .fails_with(1, "--ca-cert");
}
