use driftless_testkit::cluster::cluster;
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams},
    core::GroupVersionKind,
    discovery::{ApiResource, Discovery},
};

/// Every corpus manifest is accepted by the API server with our CRDs installed, by server-side apply, and
/// its spec comes back as sent (nothing pruned as unknown).
#[tokio::test]
async fn the_corpus_is_accepted_by_the_api_server() {
    cluster().install_crds().await;
    let ns = cluster().namespace("corpus").await;
    let client = cluster().client().await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let mut defaults_seen = Vec::new();
    for (origin, mut manifest) in crate::corpus::corpus() {
        let gvk = GroupVersionKind::try_from(&kube::api::TypeMeta {
            api_version: manifest["apiVersion"].as_str().unwrap().into(),
            kind: manifest["kind"].as_str().unwrap().into(),
        })
        .unwrap();
        let (ar, _): (ApiResource, _) = discovery
            .resolve_gvk(&gvk)
            .unwrap_or_else(|| panic!("{origin}: {gvk:?} is not served"));
        manifest["metadata"]["namespace"] = ns.name().into();
        let name = manifest["metadata"]["name"].as_str().unwrap().to_string();
        let status = manifest.as_object_mut().unwrap().remove("status");
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &ar);
        let applied = api
            .patch(
                &name,
                &PatchParams::apply("corpus").force(),
                &Patch::Apply(&manifest),
            )
            .await
            .unwrap_or_else(|e| panic!("{origin} refused by the API server: {e}"));
        assert!(
            is_subset(&manifest["spec"], &applied.data["spec"]),
            "{origin}: the server pruned or changed the spec:\nsent {}\ngot  {}",
            manifest["spec"],
            applied.data["spec"]
        );
        defaults_seen.push((origin.clone(), applied.data.clone()));
        if let Some(status) = status {
            let body = serde_json::json!({"apiVersion": manifest["apiVersion"], "kind": manifest["kind"], "status": status});
            let applied = api
                .patch_status(
                    &name,
                    &PatchParams::apply("corpus-status").force(),
                    &Patch::Apply(&body),
                )
                .await
                .unwrap_or_else(|e| panic!("{origin} status refused by the API server: {e}"));
            assert!(
                is_subset(&status, &applied.data["status"]),
                "{origin}: status changed by the server"
            );
        }
    }
    // Flux's defaults are applied by the server
    let find = |origin: &str| &defaults_seen.iter().find(|(o, _)| o == origin).unwrap().1;
    assert_eq!(find("gitrepository.yaml#0")["spec"]["timeout"], "60s");
    assert_eq!(find("gitrepository.yaml#0")["status"]["observedGeneration"], -1);
    assert_eq!(
        find("helmrelease.yaml#0")["spec"]["chart"]["spec"]["reconcileStrategy"],
        "ChartVersion"
    );
    assert_eq!(find("ocirepository.yaml#0")["spec"]["provider"], "generic");
    assert_eq!(find("receiver.yaml#0")["spec"]["interval"], "10m");
    assert_eq!(find("alert.yaml#0").get("status"), None, "Alert has no status");
}

/// Whether everything in `sent` is in `got` unchanged (the server may add defaults).
fn is_subset(sent: &serde_json::Value, got: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (sent, got) {
        (Value::Object(s), Value::Object(g)) => {
            s.iter().all(|(k, v)| g.get(k).is_some_and(|gv| is_subset(v, gv)))
        }
        (Value::Array(s), Value::Array(g)) => {
            s.len() == g.len() && s.iter().zip(g).all(|(a, b)| is_subset(a, b))
        }
        _ => sent == got,
    }
}

/// What the schema refuses, the API server refuses too (patterns, enums, CEL rules on the spec).
#[tokio::test]
async fn invalid_manifests_are_refused_by_the_api_server() {
    cluster().install_crds().await;
    let ns = cluster().namespace("invalid").await;
    let client = cluster().client().await;
    let git = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", "GitRepository"),
        "gitrepositories",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &git);
    let bad = serde_json::json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": "bad"},
        "spec": {"url": "ftp://example.com/repo", "interval": "5 minutes"}
    });
    let err = api
        .patch("bad", &PatchParams::apply("t"), &Patch::Apply(&bad))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("spec.url") && err.contains("spec.interval"), "{err}");

    let hr = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("helm.toolkit.fluxcd.io", "v2", "HelmRelease"),
        "helmreleases",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client, ns.name(), &hr);
    let neither = serde_json::json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "neither"},
        "spec": {"interval": "5m"}
    });
    let err = api
        .patch("neither", &PatchParams::apply("t"), &Patch::Apply(&neither))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("either chart or chartRef must be set"), "{err}");
}
