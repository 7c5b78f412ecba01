//! Bucket (`generic` provider) against a real S3-compatible server (moto's server mode).

use driftless_api::{
    meta::LocalObjectReference,
    source::{Bucket, BucketSpec},
};
use driftless_testkit::s3::S3Server;
use serde_json::json;

use super::{
    Harness, apply, failed_with, fetch_artifact,
    gitrepository::{files_in, secret},
    ready_of, request, start, wait_for,
};

fn spec(s3: &S3Server, bucket: &str) -> BucketSpec {
    BucketSpec {
        bucket_name: bucket.into(),
        endpoint: s3.endpoint(),
        insecure: Some(true),
        interval: "1h".into(),
        secret_ref: Some(LocalObjectReference { name: "s3".into() }),
        ..Default::default()
    }
}

async fn create(h: &Harness, name: &str, spec: BucketSpec) {
    apply(h, &Bucket::new(name, spec)).await;
}

async fn ready(h: &Harness, name: &str) -> Bucket {
    wait_for(h, name, "Ready", |b: &Bucket| {
        driftless_runtime::conditions::is_ready(
            &b.status
                .as_ref()
                .map(|s| s.conditions.clone())
                .unwrap_or_default(),
            b.metadata.generation,
        )
    })
    .await
}

#[tokio::test]
async fn a_bucket_is_stored_without_ignored_objects_and_an_unchanged_listing_downloads_nothing() {
    let h = start("bucket").await;
    let s3 = S3Server::start();
    s3.create_bucket("fleet");
    s3.put("fleet", "apps/app.yaml", "kind: Deployment\n");
    s3.put("fleet", "apps/cm.yaml", "kind: ConfigMap\n");
    s3.put("fleet", "README.md", "read me");
    s3.put("fleet", "docs/notes.txt", "notes");
    s3.put("fleet", ".sourceignore", "*.md\n");
    secret(
        &h,
        "s3",
        json!({"accesskey": "AKIAEXAMPLE", "secretkey": "s3cret"}),
    )
    .await;
    let mut with_ignore = spec(&s3, "fleet");
    with_ignore.ignore = Some("docs/\n".into());
    create(&h, "fleet", with_ignore).await;
    let obj = ready(&h, "fleet").await;
    let artifact = obj.status.clone().unwrap().artifact.unwrap();
    assert!(artifact.revision.starts_with("sha256:"), "{artifact:?}");
    assert_eq!(
        artifact.path,
        format!(
            "bucket/{}/fleet/{}.tar.gz",
            h.ns.name(),
            artifact.revision.trim_start_matches("sha256:")
        )
    );
    assert_eq!(
        ready_of(&obj).unwrap().2,
        format!("stored artifact: revision '{}'", artifact.revision)
    );
    let mut files = files_in(&fetch_artifact(&h, &obj).await);
    files.sort();
    assert_eq!(
        files,
        vec!["apps/app.yaml", "apps/cm.yaml"],
        "ignored objects are left out"
    );

    // unchanged: the same artifact
    let again: Bucket = request(&h, "fleet", "1").await;
    assert_eq!(again.status.unwrap().artifact.unwrap(), artifact);

    // a changed object: a new revision with it
    s3.put("fleet", "apps/cm.yaml", "kind: ConfigMap\ndata: {a: b}\n");
    request::<Bucket>(&h, "fleet", "2").await;
    let obj = wait_for(&h, "fleet", "a new revision", |b: &Bucket| {
        b.status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .is_some_and(|a| a.revision != artifact.revision)
    })
    .await;
    let bytes = fetch_artifact(&h, &obj).await;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut cm = String::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().ends_with("cm.yaml") {
            std::io::Read::read_to_string(&mut e, &mut cm).unwrap();
        }
    }
    assert!(cm.contains("data"), "{cm}");

    // a prefix
    let mut prefixed = spec(&s3, "fleet");
    prefixed.prefix = Some("docs/".into());
    create(&h, "docs", prefixed).await;
    let obj = ready(&h, "docs").await;
    assert_eq!(files_in(&fetch_artifact(&h, &obj).await), vec!["docs/notes.txt"]);
}

#[tokio::test]
async fn missing_buckets_bad_secrets_and_endpoints_fail_with_fluxs_reasons_and_keep_the_artifact() {
    let h = start("bucket-bad").await;
    let s3 = S3Server::start();
    s3.create_bucket("fleet");
    s3.put("fleet", "app.yaml", "kind: A\n");
    secret(
        &h,
        "s3",
        json!({"accesskey": "AKIAEXAMPLE", "secretkey": "s3cret"}),
    )
    .await;
    secret(&h, "half", json!({"accesskey": "AKIAEXAMPLE"})).await;
    create(&h, "b", spec(&s3, "fleet")).await;
    let artifact = ready(&h, "b").await.status.unwrap().artifact.unwrap();

    create(&h, "b", spec(&s3, "nope")).await;
    let obj: Bucket = failed_with(&h, "b", "BucketOperationFailed").await;
    assert_eq!(ready_of(&obj).unwrap().2, "bucket 'nope' not found");
    assert_eq!(
        obj.status.as_ref().unwrap().artifact.as_ref(),
        Some(&artifact),
        "the last artifact stays"
    );
    fetch_artifact(&h, &obj).await;

    let mut half = spec(&s3, "fleet");
    half.secret_ref = Some(LocalObjectReference { name: "half".into() });
    create(&h, "b", half).await;
    let obj: Bucket = failed_with(&h, "b", "AuthenticationFailed").await;
    assert_eq!(
        ready_of(&obj).unwrap().2,
        "invalid 'half' secret data: required fields 'accesskey' and 'secretkey'"
    );

    let mut schemed = spec(&s3, "fleet");
    schemed.endpoint = format!("http://{}", s3.endpoint());
    create(&h, "b", schemed).await;
    let obj: Bucket = failed_with(&h, "b", "URLInvalid").await;
    assert!(
        ready_of(&obj).unwrap().2.contains("without a scheme"),
        "{:?}",
        ready_of(&obj)
    );
    assert_eq!(obj.status.unwrap().artifact, Some(artifact));
}
