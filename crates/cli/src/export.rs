//! `driftless export <kind> [name] | --all`: the objects as clean YAML to apply elsewhere — apiVersion,
//! kind, name, namespace, labels, annotations and spec, nothing the cluster added — each after `---`, as
//! `flux export` prints them.

use kube::api::ListParams;
use serde_json::{Map, Value};

use crate::cluster::{Cluster, explain};

/// `o` without what the cluster added.
pub fn clean(kind: &driftless_api::kinds::Kind, o: &Value) -> Value {
    let mut meta = Map::new();
    for key in ["name", "namespace", "labels", "annotations"] {
        if let Some(v) = o.pointer(&format!("/metadata/{key}")) {
            let mut v = v.clone();
            if key == "annotations"
                && let Some(a) = v.as_object_mut()
            {
                a.retain(|k, _| {
                    k != "kubectl.kubernetes.io/last-applied-configuration"
                        && !k.starts_with("reconcile.fluxcd.io/")
                });
                if a.is_empty() {
                    continue;
                }
            }
            meta.insert(key.into(), v);
        }
    }
    let mut out = Map::new();
    out.insert("apiVersion".into(), kind.api_version().into());
    out.insert("kind".into(), kind.kind.clone().into());
    out.insert("metadata".into(), Value::Object(meta));
    if let Some(spec) = o.get("spec") {
        out.insert("spec".into(), spec.clone());
    }
    Value::Object(out)
}

/// Prints `names` (or every object with `all`) of `kind`.
pub async fn run(
    cluster: &Cluster,
    kind: &driftless_api::kinds::Kind,
    names: &[String],
    all: bool,
    all_namespaces: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        all || !names.is_empty(),
        "{} name is required (or --all)",
        kind.kind
    );
    let namespace = (!all_namespaces).then_some(cluster.namespace.as_str());
    let api = cluster.api(kind, namespace);
    let mut objects = Vec::new();
    if names.is_empty() {
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| explain(e, kind))?;
        anyhow::ensure!(
            !list.items.is_empty(),
            "no {} objects found in {:?} namespace",
            kind.kind,
            cluster.namespace
        );
        objects.extend(list.items);
    }
    for name in names {
        match api.get_opt(name).await.map_err(|e| explain(e, kind))? {
            Some(o) => objects.push(o),
            None => anyhow::bail!(
                "{} object '{name}' not found in {:?} namespace",
                kind.kind,
                cluster.namespace
            ),
        }
    }
    let mut out = String::new();
    for o in objects {
        out += "---\n";
        out += &driftless_yaml::to_string(&clean(kind, &serde_json::to_value(o)?))?;
    }
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn exports_keep_what_was_written_and_drop_what_the_cluster_added() {
        let kind = driftless_api::kinds::get("Kustomization").unwrap();
        let o = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system", "uid": "u", "resourceVersion": "9",
                "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [],
                "finalizers": ["finalizers.fluxcd.io"], "labels": {"team": "a"},
                "annotations": {"reconcile.fluxcd.io/requestedAt": "x"}},
            "spec": {"interval": "10m", "path": "./apps"}, "status": {"observedGeneration": 3}});
        assert_eq!(
            clean(kind, &o),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"name": "apps", "namespace": "flux-system", "labels": {"team": "a"}},
                "spec": {"interval": "10m", "path": "./apps"}})
        );
    }
}
