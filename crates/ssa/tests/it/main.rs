//! The apply engine against the real test cluster: create, unchanged (nothing written), self-heal of
//! managed fields while other managers' fields stay, staged CRD + custom resource, prune and its opt-out.

use std::collections::BTreeMap;

use driftless_ssa::{Action, KUSTOMIZE_GROUP, ResourceManager, inventory_ref};
use driftless_testkit::cluster::cluster;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

fn objects(ns: &str, replicas: i64) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": ns}, "data": {"a": "1"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}}),
    ]
}

fn actions(cs: &driftless_ssa::ChangeSet) -> Vec<(String, Action)> {
    cs.entries.iter().map(|c| (c.subject.clone(), c.action)).collect()
}

#[tokio::test]
async fn apply_creates_then_leaves_unchanged_objects_unwritten_and_heals_drift() {
    let ns = cluster().namespace("ssa-apply").await;
    // objects verified unchanged are remembered, as kustomize-controller does: drift must still be seen
    let manager = ResourceManager::new(cluster().client().await, "kustomize-controller", KUSTOMIZE_GROUP)
        .with_verified(Default::default());
    let labels = BTreeMap::from([("kustomize.toolkit.fluxcd.io/name".to_string(), "apps".to_string())]);
    let n = ns.name();
    let cs = manager.apply_all(&objects(n, 2), &labels).await.unwrap();
    assert_eq!(
        actions(&cs),
        [
            (format!("ConfigMap/{n}/cfg"), Action::Created),
            (format!("Deployment/{n}/web"), Action::Created)
        ]
    );

    let deployments: Api<Deployment> = Api::namespaced(cluster().client().await, n);
    let before = deployments.get("web").await.unwrap().metadata.resource_version;
    let cs = manager.apply_all(&objects(n, 2), &labels).await.unwrap();
    assert!(!cs.has_changes(), "{:?}", actions(&cs));
    assert_eq!(
        deployments.get("web").await.unwrap().metadata.resource_version,
        before,
        "nothing written"
    );

    // another manager scales and annotates: the managed replicas come back, their annotation stays
    let drift = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "annotations": {"team": "x"}}, "spec": {"replicas": 5}});
    deployments
        .patch(
            "web",
            &PatchParams::apply("autoscaler").force(),
            &Patch::Apply(&drift),
        )
        .await
        .unwrap();
    let cs = manager.apply_all(&objects(n, 2), &labels).await.unwrap();
    assert_eq!(
        actions(&cs)[1],
        (format!("Deployment/{n}/web"), Action::Configured)
    );
    let healed = deployments.get("web").await.unwrap();
    assert_eq!(healed.spec.replicas, Some(2));
    assert_eq!(
        healed
            .metadata
            .annotations
            .unwrap()
            .get("team")
            .map(String::as_str),
        Some("x")
    );
    assert_eq!(
        healed
            .metadata
            .labels
            .unwrap()
            .get("kustomize.toolkit.fluxcd.io/name")
            .map(String::as_str),
        Some("apps")
    );
}

#[tokio::test]
async fn a_manager_honours_the_annotations_of_its_owners_group_only() {
    use driftless_ssa::HELM_GROUP;
    let ns = cluster().namespace("ssa-groups").await;
    let n = ns.name();
    let client = cluster().client().await;
    let helm = ResourceManager::new(client.clone(), "helm-controller", HELM_GROUP);
    let cm = |name: &str, group: &str, data: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": n,
            "annotations": {format!("{group}/ssa"): "IfNotPresent", format!("{group}/prune"): "disabled"}},
            "data": {"v": data}})
    };
    let first = [cm("helm", HELM_GROUP, "1"), cm("kustomize", KUSTOMIZE_GROUP, "1")];
    helm.apply_all(&first, &BTreeMap::new()).await.unwrap();
    // a second apply: the helm-annotated object exists and is left alone, the other is updated
    let second = [cm("helm", HELM_GROUP, "2"), cm("kustomize", KUSTOMIZE_GROUP, "2")];
    let cs = helm.apply_all(&second, &BTreeMap::new()).await.unwrap();
    let mut got = actions(&cs);
    got.sort();
    assert_eq!(
        got,
        [
            (format!("ConfigMap/{n}/helm"), Action::Skipped),
            (format!("ConfigMap/{n}/kustomize"), Action::Configured)
        ]
    );
    // prune: the helm-annotated object is kept, the other deleted
    let old: Vec<_> = second.iter().map(inventory_ref).collect();
    let cs = helm.prune(&old, &[], &BTreeMap::new()).await.unwrap();
    let mut got = actions(&cs);
    got.sort();
    assert_eq!(
        got,
        [
            (format!("ConfigMap/{n}/helm"), Action::Skipped),
            (format!("ConfigMap/{n}/kustomize"), Action::Deleted)
        ]
    );
    let cms: Api<ConfigMap> = Api::namespaced(client, n);
    let kept = cms.get("helm").await.unwrap();
    assert_eq!(kept.data.unwrap()["v"], "1", "IfNotPresent: never updated");
}

#[tokio::test]
async fn prune_deletes_what_left_the_set_unless_disabled() {
    let ns = cluster().namespace("ssa-prune").await;
    let n = ns.name();
    let manager = ResourceManager::new(cluster().client().await, "kustomize-controller", KUSTOMIZE_GROUP);
    let mut all = objects(n, 1);
    all.push(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep", "namespace": n,
        "annotations": {"kustomize.toolkit.fluxcd.io/prune": "Disabled"}}}),
    );
    manager.apply_all(&all, &BTreeMap::new()).await.unwrap();
    let old: Vec<_> = all.iter().map(inventory_ref).collect();
    let new: Vec<_> = all[1..2].iter().map(inventory_ref).collect();
    let cs = manager.prune(&old, &new, &BTreeMap::new()).await.unwrap();
    let mut got = actions(&cs);
    got.sort();
    assert_eq!(
        got,
        [
            (format!("ConfigMap/{n}/cfg"), Action::Deleted),
            (format!("ConfigMap/{n}/keep"), Action::Skipped)
        ]
    );
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, n);
    assert!(cms.get_opt("cfg").await.unwrap().is_none());
    assert!(cms.get_opt("keep").await.unwrap().is_some());
}

#[tokio::test]
async fn a_crd_and_its_custom_resources_apply_in_one_set() {
    let ns = cluster().namespace("ssa-crd").await;
    let n = ns.name();
    let group = format!("{}.driftless.test", driftless_testkit::suffix());
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let widget = json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": "w", "namespace": n}, "spec": {"size": 3}});
    let manager = ResourceManager::new(cluster().client().await, "kustomize-controller", KUSTOMIZE_GROUP);
    let cs = manager.apply_all(&[widget, crd], &BTreeMap::new()).await.unwrap();
    let got: Vec<Action> = cs.entries.iter().map(|c| c.action).collect();
    assert_eq!(got, [Action::Created, Action::Created], "{:?}", actions(&cs));
    assert!(
        cs.entries[0].subject.starts_with("CustomResourceDefinition/"),
        "the CRD goes first"
    );
}

#[tokio::test]
async fn an_object_the_server_rejects_names_itself() {
    let ns = cluster().namespace("ssa-bad").await;
    let manager = ResourceManager::new(cluster().client().await, "kustomize-controller", KUSTOMIZE_GROUP);
    let bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name", "namespace": ns.name()}});
    let err = manager
        .apply_all(&[bad], &BTreeMap::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ConfigMap/") && err.contains("Bad_Name"), "{err}");
    let unknown = json!({"apiVersion": "nope.example.com/v1", "kind": "Nothing", "metadata": {"name": "x", "namespace": ns.name()}});
    let err = manager
        .apply_all(&[unknown], &BTreeMap::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no matches for kind \"Nothing\""), "{err}");

    // the server refuses one object of a stage: nothing of that stage is written, though a good object
    // comes first
    let good = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good", "namespace": ns.name()}});
    let elsewhere = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "no-such-namespace"}});
    let err = manager
        .apply_all(&[good, elsewhere], &BTreeMap::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such-namespace"), "{err}");
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, ns.name());
    assert!(cms.get_opt("good").await.unwrap().is_none(), "half applied");
}

#[tokio::test]
async fn a_refused_object_of_a_later_stage_keeps_the_first_stage_unwritten() {
    use k8s_openapi::api::{core::v1::Namespace, rbac::v1::ClusterRole};
    let ns = cluster().namespace("ssa-stages").await;
    let n = ns.name();
    let client = cluster().client().await;
    let manager = ResourceManager::new(client.clone(), "kustomize-controller", KUSTOMIZE_GROUP);
    let fresh = format!("{n}-new");
    let role = format!("{n}-reader");
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": fresh}});
    let cluster_role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": role}, "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]});
    let good = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good", "namespace": n}});
    let bad =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name", "namespace": n}});
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), n);

    // the ConfigMaps need nothing of the first stage: the server judges them before anything is written
    let set = [namespace.clone(), cluster_role.clone(), good.clone(), bad];
    let err = manager
        .apply_all(&set, &BTreeMap::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Bad_Name"), "{err}");
    assert!(
        namespaces.get_opt(&fresh).await.unwrap().is_none(),
        "the Namespace was created"
    );
    assert!(
        roles.get_opt(&role).await.unwrap().is_none(),
        "the ClusterRole was created"
    );
    assert!(cms.get_opt("good").await.unwrap().is_none(), "half applied");

    // what needs the first stage is judged after it: a ConfigMap in the new Namespace, a RoleBinding of
    // the new ClusterRole
    let inside =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inside", "namespace": fresh}});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "readers", "namespace": n},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": n}]});
    let set = [namespace, cluster_role, good, inside, binding];
    let cs = manager.apply_all(&set, &BTreeMap::new()).await.unwrap();
    assert!(
        cs.entries.iter().all(|c| c.action == Action::Created),
        "{:?}",
        actions(&cs)
    );
    let inside: Api<ConfigMap> = Api::namespaced(client.clone(), &fresh);
    assert!(inside.get_opt("inside").await.unwrap().is_some());
    namespaces.delete(&fresh, &Default::default()).await.unwrap();
    roles.delete(&role, &Default::default()).await.unwrap();
}

#[tokio::test]
async fn an_immutable_change_fails_unless_forced_then_the_object_is_recreated() {
    let ns = cluster().namespace("ssa-force").await;
    let n = ns.name();
    let client = cluster().client().await;
    let labels = BTreeMap::new();
    // the test server validates schemas only, so the immutable field is a CRD's CEL transition rule
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "frozens.ssa.driftless.dev"},
        "spec": {"group": "ssa.driftless.dev", "scope": "Namespaced",
            "names": {"kind": "Frozen", "plural": "frozens", "singular": "frozen", "listKind": "FrozenList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {"value": {
                    "type": "string",
                    "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "field is immutable"}]}}}}}}}]}});
    let frozen = |value: &str, force: Option<&str>| {
        let mut o = json!({"apiVersion": "ssa.driftless.dev/v1", "kind": "Frozen",
            "metadata": {"name": "frozen", "namespace": n}, "spec": {"value": value}});
        if let Some(f) = force {
            o["metadata"]["labels"] = json!({"kustomize.toolkit.fluxcd.io/force": f});
        }
        vec![crd.clone(), o]
    };
    let manager = ResourceManager::new(client.clone(), "kustomize-controller", KUSTOMIZE_GROUP);
    manager.apply_all(&frozen("1", None), &labels).await.unwrap();
    let ar = kube::discovery::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        "ssa.driftless.dev",
        "v1",
        "Frozen",
    ));
    let frozens: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), n, &ar);
    let uid = frozens.get("frozen").await.unwrap().metadata.uid;
    let value = |o: kube::api::DynamicObject| o.data["spec"]["value"].as_str().unwrap().to_string();

    // refused, named, and the object is left as it was
    let err = manager
        .apply_all(&frozen("2", None), &labels)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("Frozen/{n}/frozen dry-run failed")) && err.contains("field is immutable"),
        "{err}"
    );
    assert_eq!(frozens.get("frozen").await.unwrap().metadata.uid, uid);

    // the per-object label recreates it
    let cs = manager
        .apply_all(&frozen("2", Some("Enabled")), &labels)
        .await
        .unwrap();
    assert_eq!(actions(&cs)[1], (format!("Frozen/{n}/frozen"), Action::Created));
    let recreated = frozens.get("frozen").await.unwrap();
    assert_ne!(recreated.metadata.uid, uid);
    assert_eq!(value(recreated), "2");

    // and so does spec.force, for every object
    let forced = ResourceManager::new(client, "kustomize-controller", KUSTOMIZE_GROUP).with_force(true);
    let cs = forced.apply_all(&frozen("3", None), &labels).await.unwrap();
    assert_eq!(actions(&cs)[1], (format!("Frozen/{n}/frozen"), Action::Created));
    assert_eq!(value(frozens.get("frozen").await.unwrap()), "3");
}

#[tokio::test]
async fn fields_kubectl_added_are_removed_unless_the_object_asks_to_merge() {
    let ns = cluster().namespace("ssa-takeover").await;
    let n = ns.name();
    let client = cluster().client().await;
    let manager = ResourceManager::new(client.clone(), "kustomize-controller", KUSTOMIZE_GROUP);
    let labels = BTreeMap::new();
    let cm = |name: &str, merge: bool| {
        let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": n}, "data": {"a": "1"}});
        if merge {
            o["metadata"]["annotations"] = json!({"kustomize.toolkit.fluxcd.io/ssa": "Merge"});
        }
        o
    };
    let set = [cm("plain", false), cm("merged", true)];
    manager.apply_all(&set, &labels).await.unwrap();
    // `kubectl edit` adds a key (an Update by the manager kubectl-edit); someone else's field stays
    let cms: Api<ConfigMap> = Api::namespaced(client, n);
    for name in ["plain", "merged"] {
        cms.patch(
            name,
            &PatchParams {
                field_manager: Some("someone-else".into()),
                ..Default::default()
            },
            &Patch::Merge(&json!({"metadata": {"annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{}", "kept": "yes"}}})),
        )
        .await
        .unwrap();
        for (who, key) in [("kubectl-edit", "edited"), ("someone-else", "theirs")] {
            cms.patch(
                name,
                &PatchParams {
                    field_manager: Some(who.into()),
                    ..Default::default()
                },
                &Patch::Merge(&json!({"data": {key: "x"}})),
            )
            .await
            .unwrap();
        }
    }
    let cs = manager.apply_all(&set, &labels).await.unwrap();
    assert_eq!(
        actions(&cs),
        [
            (format!("ConfigMap/{n}/plain"), Action::Configured),
            (format!("ConfigMap/{n}/merged"), Action::Unchanged)
        ]
    );
    let keys = |cm: ConfigMap| cm.data.unwrap().into_keys().collect::<Vec<_>>();
    assert_eq!(keys(cms.get("plain").await.unwrap()), ["a", "theirs"]);
    assert_eq!(keys(cms.get("merged").await.unwrap()), ["a", "edited", "theirs"]);
    // kubectl's client-side apply record goes too, other annotations stay
    let annotations = |cm: ConfigMap| cm.metadata.annotations.unwrap().into_keys().collect::<Vec<_>>();
    assert_eq!(annotations(cms.get("plain").await.unwrap()), ["kept"]);
    assert!(
        annotations(cms.get("merged").await.unwrap())
            .contains(&"kubectl.kubernetes.io/last-applied-configuration".to_string())
    );
    // and the next apply has nothing left to do
    let cs = manager.apply_all(&set, &labels).await.unwrap();
    assert!(cs.entries.iter().all(|c| c.action == Action::Unchanged), "{cs:?}");

    // --override-manager adds managers to take over
    cms.patch(
        "plain",
        &PatchParams {
            field_manager: Some("legacy-tool".into()),
            ..Default::default()
        },
        &Patch::Merge(&json!({"data": {"legacy": "x"}})),
    )
    .await
    .unwrap();
    manager.apply_all(&set, &labels).await.unwrap();
    assert_eq!(keys(cms.get("plain").await.unwrap()), ["a", "legacy", "theirs"]);
    let overriding = ResourceManager::new(cluster().client().await, "kustomize-controller", KUSTOMIZE_GROUP)
        .with_overridden_managers(&["legacy-tool".to_string()]);
    overriding.apply_all(&set, &labels).await.unwrap();
    assert_eq!(keys(cms.get("plain").await.unwrap()), ["a", "theirs"]);
}

#[tokio::test]
async fn a_large_set_is_applied_in_parallel_and_reapplied_without_writes() {
    let ns = cluster().namespace("ssa-many").await;
    let n = ns.name();
    let manager = ResourceManager::new(cluster().client().await, "kustomize-controller", KUSTOMIZE_GROUP)
        .with_concurrency(4);
    let labels = BTreeMap::from([("kustomize.toolkit.fluxcd.io/name".to_string(), "many".to_string())]);
    // one of them exists already, created by someone else: it is adopted, not recreated
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, n);
    let adopted = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-07", "namespace": n}, "data": {"i": "old"}});
    cms.patch("cm-07", &PatchParams::apply("someone"), &Patch::Apply(&adopted))
        .await
        .unwrap();
    let set: Vec<Value> = (0..40)
        .map(|i| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i:02}"), "namespace": n}, "data": {"i": i.to_string()}}))
        .collect();
    let cs = manager.apply_all(&set, &labels).await.unwrap();
    let got = actions(&cs);
    assert_eq!(got.len(), 40);
    assert_eq!(got[7], (format!("ConfigMap/{n}/cm-07"), Action::Configured));
    assert_eq!(got.iter().filter(|(_, a)| *a == Action::Created).count(), 39);
    assert_eq!(
        got[0].0,
        format!("ConfigMap/{n}/cm-00"),
        "changes are reported in apply order"
    );
    let versions = |list: kube::core::ObjectList<ConfigMap>| {
        let mut v: Vec<_> = list
            .items
            .into_iter()
            .map(|c| (c.metadata.name.unwrap(), c.metadata.resource_version.unwrap()))
            .collect();
        v.sort();
        v
    };
    let before = versions(cms.list(&Default::default()).await.unwrap());
    let cs = manager.apply_all(&set, &labels).await.unwrap();
    assert!(!cs.has_changes(), "{:?}", actions(&cs));
    assert_eq!(
        versions(cms.list(&Default::default()).await.unwrap()),
        before,
        "a re-apply wrote"
    );
}

#[tokio::test]
async fn waiting_reads_custom_resources_with_cel_fails_fast_times_out_and_cancels() {
    use driftless_ssa::health::{Expressions, Rules, Target, WaitError, WaitOptions};
    let ns = cluster().namespace("ssa-wait").await;
    let n = ns.name();
    let group = format!("{}.driftless.test", driftless_testkit::suffix());
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let widget = |phase: &str| {
        json!({"apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "w", "namespace": n}, "status": {"phase": phase}})
    };
    let manager = ResourceManager::new(cluster().client().await, "kustomize-controller", KUSTOMIZE_GROUP);
    manager
        .apply_all(&[crd, widget("Pending")], &BTreeMap::new())
        .await
        .unwrap();
    let exprs = Expressions {
        in_progress: None,
        failed: Some("status.phase == 'Broken'".into()),
        current: "status.phase == 'Ready'".into(),
    };
    let rules = Rules::new([(format!("{group}/v1").as_str(), "Widget", &exprs)]).unwrap();
    let target = |name: &str| Target {
        gvk: kube::core::GroupVersionKind::gvk(&group, "v1", "Widget"),
        namespace: n.to_string(),
        name: name.into(),
    };
    let options = WaitOptions {
        interval: std::time::Duration::from_millis(100),
        timeout: std::time::Duration::from_secs(1),
        fail_fast: true,
    };
    let never = std::future::pending::<String>;
    let err = manager
        .wait_for_set(&[target("w"), target("absent")], &rules, options, never())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        WaitError::Timeout(vec![
            format!("Widget/{n}/w status: 'InProgress'"),
            format!("Widget/{n}/absent status: 'NotFound'")
        ])
    );
    // the status is the custom resource's controller's: written directly, as it would
    let ar = kube::discovery::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk(&group, "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<kube::api::DynamicObject> = Api::namespaced_with(cluster().client().await, n, &ar);
    let set_phase = |phase: &'static str| {
        let widgets = widgets.clone();
        async move {
            let patch = json!({"status": {"phase": phase}});
            widgets
                .patch("w", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    };
    set_phase("Broken").await;
    let err = manager
        .wait_for_set(&[target("w")], &rules, options, never())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        WaitError::Failed(vec![format!("Widget/{n}/w status: 'Failed'")])
    );
    set_phase("Ready").await;
    manager
        .wait_for_set(&[target("w")], &rules, options, never())
        .await
        .unwrap();
    let err = manager
        .wait_for_set(&[target("absent")], &rules, options, async {
            "a new revision".to_string()
        })
        .await
        .unwrap_err();
    assert_eq!(err, WaitError::Canceled("a new revision".into()));
}

#[tokio::test]
async fn the_kind_cache_remembers_served_kinds_and_forgets_one_that_went_away() {
    use driftless_ssa::KindCache;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let ns = cluster().namespace("ssa-kinds").await;
    let n = ns.name();
    let group = format!("{}.driftless.test", driftless_testkit::suffix());
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("gadgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced", "names": {"kind": "Gadget", "plural": "gadgets"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let gadget = json!({"apiVersion": format!("{group}/v1"), "kind": "Gadget",
        "metadata": {"name": "g", "namespace": n}, "spec": {"size": 1}});
    let gvk = kube::core::GroupVersionKind::gvk(&group, "v1", "Gadget");
    let cache = std::sync::Arc::new(KindCache::new(std::time::Duration::from_secs(600)));
    let manager = ResourceManager::new(cluster().client().await, "kustomize-controller", KUSTOMIZE_GROUP)
        .with_kind_cache(cache.clone());
    manager
        .apply_all(&[crd.clone(), gadget.clone()], &BTreeMap::new())
        .await
        .unwrap();
    assert!(cache.contains(&gvk), "a served kind is remembered");

    // the CRD goes: the next apply fails, and the kind is forgotten rather than trusted again
    let crds: Api<CustomResourceDefinition> = Api::all(cluster().client().await);
    crds.delete(&format!("gadgets.{group}"), &Default::default())
        .await
        .unwrap();
    // NB: while the CRD terminates its kind is still served (creates are refused with 405): wait until
    // it is gone, then an apply hits the 404 that makes the cache forget the kind
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let name = format!("gadgets.{group}");
    while crds.get_opt(&name).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "the CRD is not deleted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    loop {
        let failed = manager
            .apply_all(std::slice::from_ref(&gadget), &BTreeMap::new())
            .await
            .is_err();
        if failed && !cache.contains(&gvk) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a kind that went away is still trusted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // and comes back with its CRD
    manager.apply_all(&[crd, gadget], &BTreeMap::new()).await.unwrap();
    assert!(cache.contains(&gvk));
}
