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

/// Archives `files` as the artifact `file` of one GitRepository in `storage`.
fn archive(storage: &Storage, file: &str, files: &[(&str, &str)]) -> driftless_api::meta::Artifact {
    let src = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = src.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let filter = Filter::for_source(src.path(), None).unwrap();
    let owner = driftless_artifact::storage::Owner {
        kind: "GitRepository",
        namespace: "ns",
        name: "repo",
    };
    storage
        .archive(owner, file, "main@sha1:abc", src.path(), &filter)
        .unwrap()
}

#[tokio::test]
async fn the_unpack_cache_downloads_each_digest_once_and_evicts_the_least_recently_used() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use driftless_artifact::cache::UnpackCache;
    let base = tempfile::tempdir().unwrap();
    let storage = Storage::new(base.path(), "placeholder", Duration::from_secs(60), 10).unwrap();
    let one = archive(&storage, "one.tar.gz", &[("deploy/app.yaml", "one\n")]);
    let two = archive(
        &storage,
        "two.tar.gz",
        &[("deploy/app.yaml", "two, a bit longer\n")],
    );
    let downloads = Arc::new(AtomicUsize::new(0));
    let counted = downloads.clone();
    let app = server::router(Arc::new(storage)).layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            counted.fetch_add(1, Ordering::SeqCst);
            next.run(request)
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = |a: &driftless_api::meta::Artifact| format!("http://{addr}/{}", a.path);
    let client = http_client(Duration::from_secs(30));
    // room for one of the two trees
    let cache = UnpackCache::new(20).unwrap();
    let get = |a: &driftless_api::meta::Artifact| {
        let (url, digest) = (url(a), a.digest.clone());
        let (cache, client) = (&cache, &client);
        async move { cache.get(client, &url, &digest, Limits::default()).await }
    };

    // concurrent builds of one artifact share one download and one tree
    let (a, b) = tokio::join!(get(&one), get(&one));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(downloads.load(Ordering::SeqCst), 1);
    assert_eq!(
        std::fs::read_to_string(a.path().join("deploy/app.yaml")).unwrap(),
        "one\n"
    );
    drop(b);
    assert!(Arc::ptr_eq(&a, &get(&one).await.unwrap()));
    assert_eq!(
        downloads.load(Ordering::SeqCst),
        1,
        "a cached tree is not downloaded again"
    );

    // a build that adds files works on a mirror of links; the cached tree stays as it was
    let mirror = tempfile::tempdir().unwrap();
    a.link_into(&mirror.path().join("m")).unwrap();
    std::fs::write(
        mirror.path().join("m/deploy/kustomization.yaml"),
        "resources: []\n",
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(mirror.path().join("m/deploy/app.yaml")).unwrap(),
        "one\n"
    );
    assert!(!a.path().join("deploy/kustomization.yaml").exists());

    // a wrong digest caches nothing
    let wrong = format!("sha256:{}", "0".repeat(64));
    let err = cache
        .get(&client, &url(&one), &wrong, Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert_eq!(cache.len(), 1);

    // the second tree does not fit beside the first: the first goes, once its last reader is done
    let second = get(&two).await.unwrap();
    assert_eq!(cache.len(), 1);
    let first = a.path().to_path_buf();
    assert!(first.exists(), "deleted while still read");
    drop(a);
    // the last holder deletes it, on a blocking thread when that is the cache
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while first.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the evicted tree is not deleted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(second.path().join("deploy/app.yaml").exists());
    let before = downloads.load(Ordering::SeqCst);
    get(&one).await.unwrap();
    assert_eq!(
        downloads.load(Ordering::SeqCst),
        before + 1,
        "evicted: downloaded again"
    );
}
