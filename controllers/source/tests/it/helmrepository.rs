//! HelmRepository against a real HTTP chart repository: charts made by `helm create` and
//! `helm package`, indexed by `helm repo index`, served by lighttpd with basic auth.

use driftless_api::{
    meta::LocalObjectReference,
    source::{HelmRepository, HelmRepositorySpec, HelmRepositoryType},
};
use driftless_testkit::helm::ChartRepo;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    Harness, apply, failed_with, fetch_artifact, gitrepository::secret, ready_at, ready_of, request, start,
    start_with, wait_for,
};

fn spec(url: &str, secret: Option<&str>) -> HelmRepositorySpec {
    HelmRepositorySpec {
        url: url.into(),
        interval: Some("1h".into()),
        secret_ref: secret.map(|s| LocalObjectReference { name: s.into() }),
        ..Default::default()
    }
}

async fn create(h: &Harness, name: &str, spec: HelmRepositorySpec) {
    apply(h, &HelmRepository::new(name, spec)).await;
}

fn index_revision(repo: &ChartRepo) -> String {
    let bytes = std::fs::read(repo.root().join("index.yaml")).unwrap();
    format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
}

#[tokio::test]
async fn an_index_is_stored_as_it_was_served_and_a_new_chart_is_a_new_revision() {
    let h = start("helm-repo").await;
    let repo = ChartRepo::start(Some(("flux", "s3cret")));
    repo.add_chart("podinfo", "6.5.0", &[]);
    secret(&h, "auth", json!({"username": "flux", "password": "s3cret"})).await;
    create(&h, "charts", spec(&repo.url(), Some("auth"))).await;
    let revision = index_revision(&repo);
    let obj: HelmRepository = ready_at(&h, "charts", &revision).await;
    let status = obj.status.clone().unwrap();
    let artifact = status.artifact.clone().unwrap();
    let hex = revision.trim_start_matches("sha256:");
    assert_eq!(
        artifact.path,
        format!("helmrepository/{}/charts/index-{hex}.yaml", h.ns.name())
    );
    assert_eq!(
        status.url.as_deref(),
        Some(
            format!(
                "http://{}/helmrepository/{}/charts/index.yaml",
                h.artifact_addr,
                h.ns.name()
            )
            .as_str()
        )
    );
    assert_eq!(
        ready_of(&obj).unwrap(),
        (
            "True".into(),
            "Succeeded".into(),
            format!("stored artifact: revision '{revision}'")
        )
    );
    let served = fetch_artifact(&h, &obj).await;
    assert_eq!(
        served,
        std::fs::read(repo.root().join("index.yaml")).unwrap(),
        "the repository's own bytes"
    );

    // unchanged: the same artifact
    let again: HelmRepository = request(&h, "charts", "1").await;
    assert_eq!(
        again.status.unwrap().artifact.unwrap().last_update_time,
        artifact.last_update_time
    );

    // a new chart version: a new index revision
    repo.add_chart("podinfo", "6.6.0", &[]);
    let revision = index_revision(&repo);
    request::<HelmRepository>(&h, "charts", "2").await;
    let obj: HelmRepository = ready_at(&h, "charts", &revision).await;
    let text = String::from_utf8(fetch_artifact(&h, &obj).await).unwrap();
    assert!(text.contains("6.6.0"), "{text}");

    // an OCI repository has no index: Ready, nothing stored
    let mut oci = spec("oci://ghcr.io/stefanprodan/charts", None);
    oci.type_ = Some(HelmRepositoryType::Oci);
    create(&h, "oci", oci).await;
    let obj: HelmRepository = wait_for(&h, "oci", "the OCI repository Ready", |o: &HelmRepository| {
        ready_of(o).is_some_and(|r| r.0 == "True")
    })
    .await;
    assert!(obj.status.unwrap().artifact.is_none());
}

#[tokio::test]
async fn bad_credentials_urls_and_indexes_fail_with_fluxs_reasons_and_keep_the_index() {
    let h = start_with("helm-repo-bad", &["--helm-index-max-size=4096"]).await;
    let repo = ChartRepo::start(Some(("flux", "s3cret")));
    repo.add_chart("podinfo", "6.5.0", &[]);
    secret(&h, "auth", json!({"username": "flux", "password": "s3cret"})).await;
    secret(&h, "wrong", json!({"username": "flux", "password": "nope"})).await;
    create(&h, "charts", spec(&repo.url(), Some("auth"))).await;
    let good = index_revision(&repo);
    let stored: HelmRepository = ready_at(&h, "charts", &good).await;
    let artifact = stored.status.unwrap().artifact.unwrap();

    // refused credentials
    create(&h, "charts", spec(&repo.url(), Some("wrong"))).await;
    let obj: HelmRepository = failed_with(&h, "charts", "Failed").await;
    let message = ready_of(&obj).unwrap().2;
    assert!(
        message.starts_with(&format!(
            "failed to fetch Helm repository index: failed to fetch {}/index.yaml : 401",
            repo.url()
        )),
        "{message}"
    );
    assert_eq!(
        obj.status.as_ref().unwrap().artifact.as_ref(),
        Some(&artifact),
        "the last index stays"
    );
    fetch_artifact(&h, &obj).await;

    // an index that is not YAML
    std::fs::write(
        repo.root().join("index.yaml"),
        "apiVersion: v1\nentries: {podinfo: [\n",
    )
    .unwrap();
    create(&h, "charts", spec(&repo.url(), Some("auth"))).await;
    let obj: HelmRepository = failed_with(&h, "charts", "IndexationFailed").await;
    let message = ready_of(&obj).unwrap().2;
    assert!(
        message.starts_with("failed to load Helm repository from index YAML: the index is not YAML"),
        "{message}"
    );
    assert_eq!(obj.status.as_ref().unwrap().artifact.as_ref(), Some(&artifact));

    // an HTML page is not an index
    std::fs::write(
        repo.root().join("index.yaml"),
        "<html><body>Not here</body></html>\n",
    )
    .unwrap();
    request::<HelmRepository>(&h, "charts", "1").await;
    let obj: HelmRepository = wait_for(&h, "charts", "an HTML index refused", |o: &HelmRepository| {
        ready_of(o).is_some_and(|r| r.2.contains("not a Helm repository index"))
    })
    .await;
    assert_eq!(ready_of(&obj).unwrap().1, "IndexationFailed");

    // over --helm-index-max-size
    let big = format!("apiVersion: v1\nentries: {{}}\n# {}\n", "x".repeat(8192));
    std::fs::write(repo.root().join("index.yaml"), big).unwrap();
    request::<HelmRepository>(&h, "charts", "2").await;
    let obj: HelmRepository = wait_for(
        &h,
        "charts",
        "an index over the limit refused",
        |o: &HelmRepository| {
            ready_of(o).is_some_and(|r| r.2.contains("exceeds the maximum index file size of 4096 bytes"))
        },
    )
    .await;
    assert_eq!(ready_of(&obj).unwrap().1, "Failed");

    // an OCI URL on a default repository: stalled
    create(&h, "charts", spec("oci://ghcr.io/org/charts", None)).await;
    let obj: HelmRepository = failed_with(&h, "charts", "URLInvalid").await;
    assert_eq!(
        ready_of(&obj).unwrap().2,
        "invalid Helm repository URL: 'oci' URL scheme cannot be used with 'default' HelmRepository type"
    );
    assert_eq!(
        obj.status.unwrap().artifact,
        Some(artifact),
        "the last index stays"
    );
}

#[tokio::test]
async fn an_https_repository_needs_its_ca_for_the_index_and_the_charts() {
    let h = start("helm-repo-tls").await;
    let pki = driftless_testkit::pki::Pki::new();
    let repo = ChartRepo::start_tls(&pki);
    repo.add_chart("podinfo", "6.5.0", &[]);
    secret(&h, "ca", json!({"ca.crt": pki.pem("ca.crt")})).await;

    create(&h, "untrusted", spec(&repo.url(), None)).await;
    let obj: HelmRepository = failed_with(&h, "untrusted", "Failed").await;
    let message = ready_of(&obj).unwrap().2.to_lowercase();
    assert!(
        message.contains("certificate") || message.contains("tls") || message.contains("issuer"),
        "{message}"
    );

    let mut trusted = spec(&repo.url(), None);
    trusted.cert_secret_ref = Some(LocalObjectReference { name: "ca".into() });
    create(&h, "charts", trusted).await;
    let revision = index_revision(&repo);
    ready_at::<HelmRepository>(&h, "charts", &revision).await;
    // the chart is downloaded with the same CA
    let chart = driftless_api::source::HelmChart::new(
        "podinfo",
        driftless_api::source::HelmChartSpec {
            chart: "podinfo".into(),
            source_ref: driftless_api::source::LocalHelmChartSourceReference {
                kind: "HelmRepository".into(),
                name: "charts".into(),
                ..Default::default()
            },
            interval: "1h".into(),
            ..Default::default()
        },
    );
    apply(&h, &chart).await;
    ready_at::<driftless_api::source::HelmChart>(&h, "podinfo", "6.5.0").await;
}
