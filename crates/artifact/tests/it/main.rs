//! The artifact pipeline end to end over real HTTP on loopback: archive → serve → download, verify and
//! unpack; a digest mismatch unpacks nothing.

use std::{sync::Arc, time::Duration};

use driftless_artifact::{
    Storage,
    fetch::{Error, Limits, fetch_and_unpack, http_client},
    ignore::Filter,
    server,
};

async fn serve(storage: Arc<Storage>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, server::router(storage)).await.unwrap() });
    addr.to_string()
}

#[tokio::test]
async fn an_artifact_round_trips_over_http_and_a_bad_digest_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("deploy")).unwrap();
    std::fs::write(src.path().join("deploy/app.yaml"), "kind: ConfigMap\n").unwrap();
    let storage = Storage::new(base.path(), "placeholder", Duration::from_secs(60), 2).unwrap();
    let filter = Filter::for_source(src.path(), None).unwrap();
    let artifact = storage
        .archive(
            driftless_artifact::storage::Owner {
                kind: "GitRepository",
                namespace: "ns",
                name: "repo",
            },
            "abc.tar.gz",
            "main@sha1:abc",
            src.path(),
            &filter,
        )
        .unwrap();
    let addr = serve(Arc::new(storage)).await;
    let url = format!("http://{addr}/{}", artifact.path);
    let client = http_client(Duration::from_secs(30));

    let out = tempfile::tempdir().unwrap();
    fetch_and_unpack(&client, &url, &artifact.digest, out.path(), Limits::default())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(out.path().join("deploy/app.yaml")).unwrap(),
        "kind: ConfigMap\n"
    );

    let other = tempfile::tempdir().unwrap();
    let wrong = format!("sha256:{}", "0".repeat(64));
    let err = fetch_and_unpack(&client, &url, &wrong, &other.path().join("x"), Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(
        !other.path().join("x").exists(),
        "nothing unpacked after a digest mismatch"
    );

    let err = fetch_and_unpack(
        &client,
        &format!("http://{addr}/gitrepository/ns/repo/missing.tar.gz"),
        &artifact.digest,
        other.path(),
        Limits::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");

    let err = fetch_and_unpack(
        &client,
        &url,
        &artifact.digest,
        other.path(),
        Limits {
            max_download: 10,
            ..Limits::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
}
