//! Tenancy (ServiceAccount impersonation, with the test cluster enforcing RBAC) and remote clusters
//! (`spec.kubeConfig`, against a second test-cluster instance).

use k8s_openapi::api::core::v1::Namespace;

use super::*;

/// A ServiceAccount `tenant` that may do anything in `ns` and nothing elsewhere.
async fn tenant(ns: &str) {
    let client = cluster().client().await;
    let apply = |obj: serde_json::Value| {
        let client = client.clone();
        async move {
            let kind = obj["kind"].as_str().unwrap().to_string();
            let (group, version) = match obj["apiVersion"].as_str().unwrap().split_once('/') {
                Some((g, v)) => (g.to_string(), v.to_string()),
                None => (String::new(), obj["apiVersion"].as_str().unwrap().to_string()),
            };
            let gvk = kube::core::GroupVersionKind::gvk(&group, &version, &kind);
            let ar = kube::discovery::ApiResource::from_gvk(&gvk);
            let api: Api<kube::api::DynamicObject> =
                Api::namespaced_with(client, obj["metadata"]["namespace"].as_str().unwrap(), &ar);
            let name = obj["metadata"]["name"].as_str().unwrap().to_string();
            api.patch(&name, &PatchParams::apply("t"), &Patch::Apply(&obj))
                .await
                .unwrap();
        }
    };
    apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "tenant", "namespace": ns}})).await;
    apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "tenant", "namespace": ns},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}))
    .await;
    apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "tenant", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": ns}]}))
    .await;
}

#[tokio::test]
async fn a_tenant_applies_in_its_namespace_and_reaching_elsewhere_applies_nothing() {
    let h = start_with("ks-tenant", &["--default-service-account=tenant"]).await;
    let n = h.ns.name().to_string();
    let other = cluster().namespace("ks-other").await;
    tenant(&n).await;
    let in_ns =
        |name: &str, ns: &str| CM.replace("name: settings\n", &format!("name: {name}\n  namespace: {ns}\n"));
    let head = h.fleet.repo.commit(
        &[
            ("tenant/ok.yaml", &in_ns("mine", &n)),
            ("reach/mine.yaml", &in_ns("mine-too", &n)),
            ("reach/theirs.yaml", &in_ns("theirs", other.name())),
        ],
        "tenant manifests",
    );
    request_fleet(&h, "tenant").await;
    // no serviceAccountName: --default-service-account applies
    create(&h, "own", spec("./tenant", true)).await;
    wait_until(&h, "own", "the tenant's own apply", |o| applied(o, &head)).await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, &n);
    assert!(cms.get_opt("mine").await.unwrap().is_some());

    create(
        &h,
        "reach",
        KustomizationSpec {
            service_account_name: Some("tenant".into()),
            ..spec("./reach", true)
        },
    )
    .await;
    let obj = wait_until(&h, "reach", "the refused apply", |o| {
        ready(o).is_some_and(|r| r.0 == "False")
    })
    .await;
    let (_, reason, message) = ready(&obj).unwrap();
    assert_eq!(reason, "ReconciliationFailed");
    assert!(
        message.contains(&format!("ConfigMap/{}/theirs", other.name())) && message.contains("forbidden"),
        "{message}"
    );
    assert!(
        cms.get_opt("mine-too").await.unwrap().is_none(),
        "half applied: the allowed object of the refused set was written"
    );
    let theirs: Api<ConfigMap> = Api::namespaced(cluster().client().await, other.name());
    assert!(theirs.get_opt("theirs").await.unwrap().is_none());
}

#[tokio::test]
async fn a_kube_config_secret_sends_the_objects_to_the_remote_cluster() {
    let h = start("ks-remote").await;
    let n = h.ns.name().to_string();
    let remote = driftless_testkit::cluster::start_instance("remote");
    let remote_ns = format!("remote-{n}");
    let remote_client = kube::Client::try_from(remote.config().await).unwrap();
    let namespaces: Api<Namespace> = Api::all(remote_client.clone());
    let ns_obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": remote_ns}});
    namespaces
        .patch(&remote_ns, &PatchParams::apply("t"), &Patch::Apply(&ns_obj))
        .await
        .unwrap();
    let kubeconfig = std::fs::read_to_string(remote.kubeconfig()).unwrap();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "remote-kubeconfig"},
        "stringData": {"value": kubeconfig}});
    Api::<Secret>::namespaced(cluster().client().await, &n)
        .patch(
            "remote-kubeconfig",
            &PatchParams::apply("t"),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
    create(
        &h,
        "remote",
        KustomizationSpec {
            target_namespace: Some(remote_ns.clone()),
            kube_config: Some(driftless_api::meta::KubeConfigReference {
                secret_ref: Some(driftless_api::meta::SecretKeyReference {
                    name: "remote-kubeconfig".into(),
                    key: None,
                }),
                ..Default::default()
            }),
            ..spec("./apps", true)
        },
    )
    .await;
    wait_until(&h, "remote", "the remote apply", |o| applied(o, &h.head)).await;
    let remote_deployments: Api<Deployment> = Api::namespaced(remote_client, &remote_ns);
    assert!(
        remote_deployments.get_opt("web").await.unwrap().is_some(),
        "not in the remote cluster"
    );
    let local: Api<Deployment> = Api::namespaced(cluster().client().await, &remote_ns);
    assert!(
        local.get_opt("web").await.is_err() || local.get_opt("web").await.unwrap().is_none(),
        "applied locally"
    );
    let _ = namespaces.delete(&remote_ns, &Default::default()).await;
}
