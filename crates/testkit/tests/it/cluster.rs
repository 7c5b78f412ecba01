use std::process::Command;

use driftless_testkit::{
    cluster::{cluster, start_instance},
    workspace_root,
};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
    core::GroupVersionKind,
    discovery::Discovery,
};
use serde_json::json;

#[tokio::test]
async fn the_builtin_kinds_a_gitops_controller_applies_are_served() {
    let client = cluster().client().await;
    let discovery = Discovery::new(client).run().await.unwrap();
    #[rustfmt::skip]
    let kinds = [
        ("", "v1", "Namespace"), ("", "v1", "ConfigMap"), ("", "v1", "Secret"), ("", "v1", "ServiceAccount"),
        ("", "v1", "Service"), ("", "v1", "Event"), ("apps", "v1", "Deployment"), ("apps", "v1", "StatefulSet"),
        ("apps", "v1", "DaemonSet"), ("batch", "v1", "Job"), ("rbac.authorization.k8s.io", "v1", "Role"),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding"), ("rbac.authorization.k8s.io", "v1", "ClusterRole"),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"), ("coordination.k8s.io", "v1", "Lease"),
        ("networking.k8s.io", "v1", "Ingress"), ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
    ];
    for (group, version, kind) in kinds {
        let found = discovery.resolve_gvk(&GroupVersionKind::gvk(group, version, kind));
        assert!(found.is_some(), "{group}/{version} {kind} is not served");
    }
    let (_, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .unwrap();
    assert!(
        caps.subresources.iter().any(|(s, _)| s.plural == "status"),
        "Deployment has a status subresource"
    );
}

#[tokio::test]
async fn two_field_managers_merge_a_deployments_containers_by_name() {
    let ns = cluster().namespace("ssa").await;
    let api: Api<Deployment> = Api::namespaced(cluster().client().await, ns.name());
    let gitops = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [
                {"name": "app", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "infinity"]}]}}}
    });
    api.patch("web", &PatchParams::apply("gitops"), &Patch::Apply(&gitops))
        .await
        .unwrap();
    let image_update = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox:1.37"}]}}}
    });
    let conflict = api
        .patch(
            "web",
            &PatchParams::apply("image-updater"),
            &Patch::Apply(&image_update),
        )
        .await;
    assert!(
        matches!(conflict, Err(kube::Error::Api(ref e)) if e.code == 409),
        "a conflict without force: {conflict:?}"
    );
    let merged = api
        .patch(
            "web",
            &PatchParams::apply("image-updater").force(),
            &Patch::Apply(&image_update),
        )
        .await
        .unwrap();
    let containers = merged.spec.template.spec.unwrap().containers;
    let summary: Vec<_> = containers
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.image.as_deref().unwrap(),
                c.command.clone(),
                c.env.as_ref().map(Vec::len),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("app", "nginx:1.25", None, Some(1)),
            (
                "sidecar",
                "busybox:1.37",
                Some(vec!["sleep".to_string(), "infinity".to_string()]),
                None
            )
        ],
        "containers merge by name: the sidecar keeps its command, the app is untouched"
    );
    let managers: Vec<_> = merged
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["gitops", "image-updater"]);
}

#[tokio::test]
async fn server_dry_run_does_not_persist() {
    let ns = cluster().namespace("dry").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster().client().await, ns.name());
    let cm =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "data": {"a": "b"}});
    api.patch("dry", &PatchParams::apply("t").dry_run(), &Patch::Apply(&cm))
        .await
        .unwrap();
    assert!(api.get_opt("dry").await.unwrap().is_none());
}

#[tokio::test]
async fn an_impersonated_service_account_gets_only_what_rbac_grants() {
    let tenant = cluster().namespace("tenant").await;
    let other = cluster().namespace("other").await;
    let admin = cluster().client().await;
    let rbac = json!([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer", "namespace": tenant.name()}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "cm", "namespace": tenant.name()},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "cm", "namespace": tenant.name()},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm"},
         "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": tenant.name()}]}
    ]);
    for obj in rbac.as_array().unwrap() {
        let gvk = GroupVersionKind::try_from(&kube::api::TypeMeta {
            api_version: obj["apiVersion"].as_str().unwrap().into(),
            kind: obj["kind"].as_str().unwrap().into(),
        })
        .unwrap();
        let ar = kube::discovery::ApiResource::from_gvk(&gvk);
        let ar = match gvk.kind.as_str() {
            "ServiceAccount" => kube::discovery::ApiResource {
                plural: "serviceaccounts".into(),
                ..ar
            },
            _ => ar,
        };
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(admin.clone(), tenant.name(), &ar);
        let name = obj["metadata"]["name"].as_str().unwrap();
        api.patch(name, &PatchParams::apply("t"), &Patch::Apply(obj))
            .await
            .unwrap();
    }
    let mut config = cluster().config().await;
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{}:deployer", tenant.name()));
    let as_tenant = Client::try_from(config).unwrap();
    let cm = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
    };
    Api::<ConfigMap>::namespaced(as_tenant.clone(), tenant.name())
        .create(&PostParams::default(), &cm("allowed"))
        .await
        .expect("the tenant may write ConfigMaps in its namespace");
    let denied = Api::<ConfigMap>::namespaced(as_tenant, other.name())
        .create(&PostParams::default(), &cm("denied"))
        .await;
    assert!(
        matches!(denied, Err(kube::Error::Api(ref e)) if e.code == 403),
        "another namespace is forbidden: {denied:?}"
    );
}

#[tokio::test]
async fn a_second_instance_is_a_separate_cluster() {
    if std::env::var_os("DRIFTLESS_KUBECONFIG").is_some() {
        eprintln!("a second instance is only started for the project's own test cluster");
        return;
    }
    let name = format!("second-{}", driftless_testkit::suffix());
    let second = start_instance(&name);
    assert_ne!(second.kubeconfig(), cluster().kubeconfig());
    let ns = second.namespace("only-here").await;
    let first: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster().client().await);
    assert!(
        first.get_opt(ns.name()).await.unwrap().is_none(),
        "the namespace exists only in the second cluster"
    );
    drop(ns);
    let out = Command::new(workspace_root().join("hack/testcluster.sh"))
        .args(["stop", &name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
