//! A Kustomization applying from an OCIRepository: an artifact pushed in Flux's format to a real
//! registry, applied; a new push, once the OCIRepository sees it, applied without a request to the
//! Kustomization.

use driftless_api::source::{OCIRepository, OCIRepositorySpec};
use driftless_testkit::registry::Registry;

use super::*;

#[tokio::test]
async fn an_artifact_pushed_in_fluxs_format_is_applied_and_a_new_push_follows() {
    let h = start("ks-oci").await;
    let registry = Registry::start();
    let origin = [("org.opencontainers.image.revision", "main@sha1:0123456789")];
    let first = registry.push_flux(
        "fleet",
        "latest",
        &[("apps/app.yaml", APP), ("apps/cm.yaml", CM)],
        &origin,
    );
    let ocis: Api<OCIRepository> = Api::namespaced(cluster().client().await, h.ns.name());
    let oci = OCIRepository::new(
        "oci-fleet",
        OCIRepositorySpec {
            url: registry.url("fleet"),
            interval: "1h".into(),
            ..Default::default()
        },
    );
    ocis.patch("oci-fleet", &PatchParams::apply("t").force(), &Patch::Apply(&oci))
        .await
        .unwrap();
    let mut ks = from_source(h.ns.name(), "oci-fleet");
    ks.source_ref.kind = "OCIRepository".into();
    create(&h, "apps", ks).await;
    let obj = wait_until(&h, "apps", "the OCI artifact applied", |o| applied(o, &first)).await;
    assert_eq!(
        obj.status.unwrap().last_applied_revision.unwrap(),
        format!("latest@{first}")
    );
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, h.ns.name());
    assert_eq!(cms.get("settings").await.unwrap().data.unwrap()["mode"], "blue");

    let second = registry.push_flux(
        "fleet",
        "latest",
        &[
            ("apps/app.yaml", APP),
            ("apps/cm.yaml", &CM.replace("blue", "green")),
        ],
        &origin,
    );
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: "1"}}});
    ocis.patch("oci-fleet", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_until(&h, "apps", "the new push applied", |o| applied(o, &second)).await;
    assert_eq!(cms.get("settings").await.unwrap().data.unwrap()["mode"], "green");
}
