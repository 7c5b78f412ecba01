//! Prune deletes only what we applied and own: a refused revision records nothing it did not apply, and
//! an object of an inventory's name that lacks our owner labels (someone else's) is left.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;

use super::{applied, cluster, create, failed_at, from_source, request_fleet, start, wait_until};

fn ids(obj: &driftless_api::kustomize::Kustomization) -> Vec<String> {
    obj.status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.iter().map(|e| e.id.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_refused_revision_records_nothing_and_prune_leaves_objects_we_do_not_own() {
    let h = start("ks-own").await;
    let n = h.ns.name().to_string();
    create(&h, "apps", from_source(&n, "fleet")).await;
    let head = h.head.clone();
    wait_until(&h, "apps", "the first apply", |o| applied(o, &head)).await;

    // a revision the API server refuses (a Service whose port is not a number) with a new ConfigMap
    let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: eighty\n";
    let cm_c = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-c\ndata:\n  a: b\n";
    let refused = h
        .fleet
        .repo
        .commit(&[("apps/svc.yaml", svc), ("apps/cm-c.yaml", cm_c)], "refused");
    request_fleet(&h, "refused").await;
    let obj = wait_until(&h, "apps", "the refused apply", |o| failed_at(o, &refused)).await;
    assert!(
        !ids(&obj).iter().any(|id| id.contains("cm-c")),
        "cm-c was never applied, yet it is in the inventory: {:?}",
        ids(&obj)
    );
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, &n);
    assert!(
        cms.get_opt("cm-c").await.unwrap().is_none(),
        "nothing of the refused set applied"
    );

    // someone creates cm-c by hand; and replaces `settings` (ours) with one of their own, no labels
    let admin = PatchParams::apply("someone");
    let theirs = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"by": "hand"}});
    cms.patch("cm-c", &admin, &Patch::Apply(theirs("cm-c")))
        .await
        .unwrap();
    cms.delete("settings", &DeleteParams::default()).await.unwrap();
    cms.patch("settings", &admin, &Patch::Apply(theirs("settings")))
        .await
        .unwrap();

    // the next good revision has neither: nothing of theirs is deleted
    h.fleet.repo.remove(&["apps/svc.yaml", "apps/cm-c.yaml"], "fix");
    let good = h.fleet.repo.remove(&["apps/cm.yaml"], "drop settings");
    request_fleet(&h, "good").await;
    let obj = wait_until(&h, "apps", "the good revision", |o| applied(o, &good)).await;
    assert_eq!(ids(&obj), [format!("{n}_web_apps_Deployment")]);
    for name in ["cm-c", "settings"] {
        let cm = cms.get_opt(name).await.unwrap();
        assert_eq!(
            cm.and_then(|c| c.data)
                .and_then(|d| d.get("by").cloned())
                .as_deref(),
            Some("hand"),
            "{name}, not ours, was pruned"
        );
    }
}
