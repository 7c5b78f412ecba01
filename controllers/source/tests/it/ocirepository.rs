//! OCIRepository against a real registry (Debian's `docker-registry`), with artifacts pushed by the
//! real `oras` (in Flux's format) and `crane`.

use driftless_api::{
    meta::LocalObjectReference,
    source::{OCILayerOperation, OCILayerSelector, OCIRepository, OCIRepositoryRef, OCIRepositorySpec},
};
use driftless_runtime::conditions;
use driftless_testkit::{cluster::cluster, registry::Registry};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;

use super::{Harness, apply, failed_with, fetch_artifact, gitrepository::files_in, ready_of, request, start};

fn spec(url: &str, reference: OCIRepositoryRef) -> OCIRepositorySpec {
    OCIRepositorySpec {
        url: url.into(),
        interval: "1h".into(),
        reference: Some(reference),
        ..Default::default()
    }
}

fn tag(t: &str) -> OCIRepositoryRef {
    OCIRepositoryRef {
        tag: Some(t.into()),
        ..Default::default()
    }
}

async fn create(h: &Harness, name: &str, spec: OCIRepositorySpec) {
    apply(h, &OCIRepository::new(name, spec)).await;
}

async fn ready_at(h: &Harness, name: &str, revision: &str) -> OCIRepository {
    super::ready_at(h, name, revision).await
}

async fn failed(h: &Harness, name: &str, reason: &str) -> OCIRepository {
    failed_with(h, name, reason).await
}

fn ready(obj: &OCIRepository) -> Option<(String, String, String)> {
    ready_of(obj)
}

async fn download(h: &Harness, obj: &OCIRepository) -> Vec<u8> {
    fetch_artifact(h, obj).await
}

#[tokio::test]
async fn a_flux_artifact_is_stored_with_its_revision_annotations_and_new_pushes() {
    let h = start("oci-flux").await;
    let registry = Registry::start();
    let origin = [
        ("org.opencontainers.image.source", "https://github.com/org/fleet"),
        ("org.opencontainers.image.revision", "main@sha1:1234567"),
    ];
    let first = registry.push_flux(
        "fleet/manifests",
        "v1",
        &[("apps/app.yaml", "kind: ConfigMap\n"), ("README.md", "hi")],
        &origin,
    );
    create(&h, "fleet", spec(&registry.url("fleet/manifests"), tag("v1"))).await;
    let obj = ready_at(&h, "fleet", &format!("v1@{first}")).await;
    let status = obj.status.clone().unwrap();
    let artifact = status.artifact.clone().unwrap();
    assert_eq!(
        artifact.path,
        format!("ocirepository/{}/fleet/{first}.tar.gz", h.ns.name()),
        "Flux's artifact path: the manifest digest"
    );
    let (_, reason, message) = ready(&obj).unwrap();
    assert_eq!(
        (reason.as_str(), message.as_str()),
        (
            "Succeeded",
            format!("stored artifact for digest 'v1@{first}'").as_str()
        )
    );
    let metadata = artifact.metadata.clone().expect("the manifest's annotations");
    assert_eq!(metadata["org.opencontainers.image.revision"], "main@sha1:1234567");
    assert_eq!(
        metadata["org.opencontainers.image.source"],
        "https://github.com/org/fleet"
    );
    let mut files = files_in(&download(&h, &obj).await);
    files.sort();
    assert!(files.contains(&"apps/app.yaml".to_string()), "{files:?}");

    // an unchanged digest: nothing new stored
    let again: OCIRepository = request(&h, "fleet", "1").await;
    assert_eq!(
        again.status.unwrap().artifact.unwrap().last_update_time,
        artifact.last_update_time,
        "the artifact is the same one"
    );

    // a new push to the same tag is a new revision
    let second = registry.push_flux(
        "fleet/manifests",
        "v1",
        &[("apps/app.yaml", "kind: Secret\n")],
        &origin,
    );
    assert_ne!(first, second);
    request::<OCIRepository>(&h, "fleet", "2").await;
    let obj = ready_at(&h, "fleet", &format!("v1@{second}")).await;
    assert_eq!(files_in(&download(&h, &obj).await), vec!["apps/app.yaml"]);

    // a digest reference is the digest alone
    let mut by_digest = spec(&registry.url("fleet/manifests"), Default::default());
    by_digest.reference = Some(OCIRepositoryRef {
        digest: Some(first.clone()),
        tag: Some("v1".into()),
        ..Default::default()
    });
    create(&h, "pinned", by_digest).await;
    ready_at(&h, "pinned", &first).await;
}

#[tokio::test]
async fn semver_filters_layer_selectors_and_docker_images_work() {
    let h = start("oci-select").await;
    let registry = Registry::start();
    for v in ["1.0.0", "1.2.0", "1.3.0-rc.1", "2.0.0"] {
        registry.push_flux("app", v, &[("v.yaml", v)], &[]);
    }
    let rc = registry.digest("app", "1.3.0-rc.1");
    let one_two = registry.digest("app", "1.2.0");
    create(
        &h,
        "ranged",
        spec(
            &registry.url("app"),
            OCIRepositoryRef {
                semver: Some(">=1.0.0 <2.0.0".into()),
                ..Default::default()
            },
        ),
    )
    .await;
    ready_at(&h, "ranged", &format!("1.2.0@{one_two}")).await;
    create(
        &h,
        "filtered",
        spec(
            &registry.url("app"),
            OCIRepositoryRef {
                semver: Some(">=1.3.0-0".into()),
                semver_filter: Some(".*-rc.*".into()),
                ..Default::default()
            },
        ),
    )
    .await;
    ready_at(&h, "filtered", &format!("1.3.0-rc.1@{rc}")).await;

    // copy: the layer as it is
    let mut copy = spec(&registry.url("app"), tag("2.0.0"));
    copy.layer_selector = Some(OCILayerSelector {
        media_type: Some("application/vnd.cncf.flux.content.v1.tar+gzip".into()),
        operation: Some(OCILayerOperation::Copy),
    });
    create(&h, "copied", copy).await;
    let two = registry.digest("app", "2.0.0");
    let obj = ready_at(&h, "copied", &format!("2.0.0@{two}")).await;
    let manifest: serde_json::Value = serde_json::from_str(&registry.oras(&[
        "manifest",
        "fetch",
        &format!("{}/app:2.0.0", registry.host()),
    ]))
    .unwrap();
    assert_eq!(
        obj.status.unwrap().artifact.unwrap().digest,
        manifest["layers"][0]["digest"].as_str().unwrap(),
        "a copied layer is stored byte for byte"
    );

    // a one-layer Docker image made by crane
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("c/deploy")).unwrap();
    std::fs::write(work.path().join("c/deploy/app.yaml"), "kind: Service\n").unwrap();
    let status = std::process::Command::new("tar")
        .args(["czf", "layer.tar.gz", "-C", "c", "."])
        .current_dir(work.path())
        .status()
        .unwrap();
    assert!(status.success());
    let image = registry.push_crane("image", "latest", &work.path().join("layer.tar.gz"));
    create(&h, "image", spec(&registry.url("image"), Default::default())).await;
    let obj = ready_at(&h, "image", &format!("latest@{image}")).await;
    let files = files_in(&download(&h, &obj).await);
    assert!(files.contains(&"deploy/app.yaml".to_string()), "{files:?}");
}

#[tokio::test]
async fn bad_references_layers_and_content_fail_with_fluxs_reasons_and_keep_the_artifact() {
    let h = start("oci-bad").await;
    let registry = Registry::start();
    let good = registry.push_flux("app", "v1", &[("a.yaml", "kind: A\n")], &[]);
    create(&h, "app", spec(&registry.url("app"), tag("v1"))).await;
    let stored = ready_at(&h, "app", &format!("v1@{good}")).await;
    let artifact = stored.status.unwrap().artifact.unwrap();

    // a tag that does not exist: the last artifact stays, and is still served
    create(&h, "app", spec(&registry.url("app"), tag("v9"))).await;
    let obj = failed(&h, "app", "OCIArtifactPullFailed").await;
    let (_, _, message) = ready(&obj).unwrap();
    assert!(
        message.starts_with("failed to determine artifact digest: "),
        "{message}"
    );
    assert!(message.contains("v9"), "names the tag: {message}");
    assert_eq!(obj.status.as_ref().unwrap().artifact.as_ref(), Some(&artifact));
    download(&h, &obj).await;

    // no tag in the range
    create(
        &h,
        "app",
        spec(
            &registry.url("app"),
            OCIRepositoryRef {
                semver: Some(">=5.0.0".into()),
                ..Default::default()
            },
        ),
    )
    .await;
    let obj = failed(&h, "app", "ReadOperationFailed").await;
    assert_eq!(
        ready(&obj).unwrap().2,
        format!(
            "failed to determine the artifact tag for '{}': no match found for semver: >=5.0.0",
            registry.url("app")
        )
    );

    // no layer of the selected media type
    let mut selected = spec(&registry.url("app"), tag("v1"));
    selected.layer_selector = Some(OCILayerSelector {
        media_type: Some("application/vnd.example.missing".into()),
        operation: None,
    });
    create(&h, "app", selected).await;
    let obj = failed(&h, "app", "OCIArtifactLayerOperationFailed").await;
    assert_eq!(
        ready(&obj).unwrap().2,
        "failed to find layer with media type 'application/vnd.example.missing' in artifact"
    );

    // a URL with a tag: stalled until the spec changes
    create(&h, "app", spec(&format!("{}:v1", registry.url("app")), tag("v1"))).await;
    let obj = failed(&h, "app", "URLInvalid").await;
    assert!(
        ready(&obj)
            .unwrap()
            .2
            .ends_with("URL must not contain a tag; remove ':v1'")
    );
    let status = obj.status.clone().unwrap();
    assert!(conditions::get(&status.conditions, "Stalled").is_some_and(|c| c.status == "True"));
    assert_eq!(
        status.artifact.as_ref(),
        Some(&artifact),
        "the last artifact stays"
    );

    // a layer with an entry escaping its folder
    let work = tempfile::tempdir().unwrap();
    let evil = work.path().join("evil.tar.gz");
    {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            std::fs::File::create(&evil).unwrap(),
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        let name = b"../escape.yaml";
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_cksum();
        builder.append(&header, &b"x\n"[..]).unwrap();
        builder.into_inner().unwrap().finish().unwrap();
    }
    let evil_digest = registry.push_crane("app", "evil", &evil);
    create(&h, "app", spec(&registry.url("app"), tag("evil"))).await;
    let obj = failed(&h, "app", "OCIArtifactLayerOperationFailed").await;
    let message = ready(&obj).unwrap().2;
    assert!(message.contains("escape.yaml"), "{message}");
    assert!(!evil_digest.is_empty());

    // a blob that does not match its digest (tampered in the registry's storage)
    let tampered = registry.push_flux("tampered", "v1", &[("a.yaml", "kind: A\n")], &[]);
    let manifest: serde_json::Value = serde_json::from_str(&registry.oras(&[
        "manifest",
        "fetch",
        &format!("{}/tampered:v1", registry.host()),
    ]))
    .unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let blob = registry
        .data_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&layer[..2])
        .join(&layer)
        .join("data");
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    create(&h, "tampered", spec(&registry.url("tampered"), tag("v1"))).await;
    let obj = failed(&h, "tampered", "OCIArtifactPullFailed").await;
    let message = ready(&obj).unwrap().2;
    assert!(message.to_lowercase().contains("digest"), "{message}");
    assert!(
        obj.status.unwrap().artifact.is_none(),
        "nothing stored from bad bytes"
    );
    assert!(!tampered.is_empty());

    // a registry credentials Secret that is not docker config JSON
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(cluster().client().await, h.ns.name());
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
        "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{not json"}});
    secrets
        .patch(
            "creds",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
    let mut with_secret = spec(&registry.url("app"), tag("v1"));
    with_secret.secret_ref = Some(LocalObjectReference { name: "creds".into() });
    create(&h, "authed", with_secret).await;
    let obj = failed(&h, "authed", "AuthenticationFailed").await;
    let message = ready(&obj).unwrap().2;
    assert!(
        message.starts_with(&format!(
            "failed to get credential: invalid docker config JSON in secret '{}/creds'",
            h.ns.name()
        )),
        "{message}"
    );
}

#[tokio::test]
async fn a_registry_with_auth_is_read_with_a_docker_config_or_a_service_accounts_pull_secrets() {
    let h = start("oci-auth").await;
    let registry = Registry::start_with_auth("flux", "s3cret");
    let digest = registry.push_flux("app", "v1", &[("a.yaml", "kind: A\n")], &[]);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(cluster().client().await, h.ns.name());
    for (name, password) in [("creds", "s3cret"), ("wrong", "nope")] {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": registry.docker_config("flux", password)}});
        secrets
            .patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&secret))
            .await
            .unwrap();
    }
    let mut with_secret = spec(&registry.url("app"), tag("v1"));
    with_secret.secret_ref = Some(LocalObjectReference { name: "creds".into() });
    create(&h, "authed", with_secret).await;
    ready_at(&h, "authed", &format!("v1@{digest}")).await;

    // a refused password: the message says so
    let mut refused = spec(&registry.url("app"), tag("v1"));
    refused.secret_ref = Some(LocalObjectReference { name: "wrong".into() });
    create(&h, "refused", refused).await;
    let obj = failed(&h, "refused", "OCIArtifactPullFailed").await;
    let message = ready(&obj).unwrap().2;
    assert!(
        message.to_lowercase().contains("unauthorized") || message.contains("401"),
        "{message}"
    );
    assert!(
        !message.contains("s3cret") && !message.contains("nope"),
        "no secret in messages: {message}"
    );

    // the image pull secrets of a ServiceAccount
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(cluster().client().await, h.ns.name());
    let account = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "puller"},
        "imagePullSecrets": [{"name": "creds"}]});
    accounts
        .patch(
            "puller",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&account),
        )
        .await
        .unwrap();
    let mut by_account = spec(&registry.url("app"), tag("v1"));
    by_account.service_account_name = Some("puller".into());
    create(&h, "by-account", by_account).await;
    ready_at(&h, "by-account", &format!("v1@{digest}")).await;
}

#[tokio::test]
async fn a_tls_registry_needs_its_ca_or_insecure() {
    let h = start("oci-tls").await;
    let pki = driftless_testkit::pki::Pki::new();
    let registry = Registry::start_tls(&pki);
    let digest = registry.push_flux("app", "v1", &[("a.yaml", "kind: A\n")], &[]);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(cluster().client().await, h.ns.name());
    let ca = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ca"},
        "stringData": {"ca.crt": pki.pem("ca.crt")}});
    secrets
        .patch("ca", &PatchParams::apply("test").force(), &Patch::Apply(&ca))
        .await
        .unwrap();

    // a certificate nobody vouched for: refused, saying why
    create(&h, "untrusted", spec(&registry.url("app"), tag("v1"))).await;
    let obj = failed(&h, "untrusted", "OCIArtifactPullFailed").await;
    let message = ready(&obj).unwrap().2.to_lowercase();
    assert!(
        message.contains("certificate") || message.contains("tls") || message.contains("issuer"),
        "{message}"
    );

    // its CA: trusted
    let mut trusted = spec(&registry.url("app"), tag("v1"));
    trusted.cert_secret_ref = Some(LocalObjectReference { name: "ca".into() });
    create(&h, "trusted", trusted).await;
    ready_at(&h, "trusted", &format!("v1@{digest}")).await;

    // insecure: the certificate not verified (Flux's exception for OCI)
    let mut insecure = spec(&registry.url("app"), tag("v1"));
    insecure.insecure = Some(true);
    create(&h, "insecure", insecure).await;
    ready_at(&h, "insecure", &format!("v1@{digest}")).await;
}
