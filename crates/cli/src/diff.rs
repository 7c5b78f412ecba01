//! `driftless diff kustomization <name> --path DIR`: what applying DIR through the Kustomization would
//! change, before it is pushed. DIR is built as the controller builds the Kustomization's `spec.path`
//! (Flux's overlay of the spec, postBuild variables from the cluster), each object is server-side
//! applied as a dry run as the controller's field manager — as the Kustomization's ServiceAccount when it
//! names one — and compared with the live object: a unified diff of each change (Secret values
//! masked), the objects it would create, and with `prune` the inventory objects it would delete.

use std::{collections::HashSet, path::Path};

use driftless_api::kustomize::Kustomization;
use kube::{
    Api, Client,
    api::{DynamicObject, Patch, PatchParams},
    core::GroupVersionKind,
    discovery::{self, Scope},
};
use serde_json::{Value, json};

use crate::{cluster::Cluster, objects};

/// The field manager kustomize-controller applies with.
const FIELD_MANAGER: &str = "kustomize-controller";

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            if entry.file_name() != ".git" {
                copy_tree(&entry.path(), &target)?;
            }
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// `o` as the diff shows it: no status, no server bookkeeping, Secret values masked (`***`, or
/// `*** (<side>)` where `other`'s value differs, so the change shows without its value).
fn comparable(o: &Value, other: Option<&Value>, side: &str) -> Value {
    let mut o = o.clone();
    if let Some(map) = o.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "managedFields",
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "generation",
                "selfLink",
            ] {
                meta.remove(k);
            }
        }
    }
    if o["kind"] == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(values) = o.get_mut(field).and_then(Value::as_object_mut) {
                for (k, v) in values.iter_mut() {
                    let same = other.and_then(|x| x.get(field)).and_then(|d| d.get(k)) == Some(&*v);
                    *v = json!(if same || other.is_none() {
                        "***".to_string()
                    } else {
                        format!("*** ({side})")
                    });
                }
            }
        }
    }
    o
}

fn subject(kind: &str, namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}/{namespace}/{name}")
    }
}

/// The client the controller would apply with for `ks`: impersonating its ServiceAccount when it names one.
async fn acting_client(cluster: &Cluster, ks: &Kustomization, namespace: &str) -> anyhow::Result<Client> {
    match &ks.spec.service_account_name {
        Some(sa) => {
            let mut config = cluster.config.clone();
            config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{sa}"));
            Ok(Client::try_from(config)?)
        }
        None => Ok(cluster.client.clone()),
    }
}

/// What applying a build would do to one object.
pub enum Change {
    /// It does not exist yet.
    Created,
    /// It exists and would change: a unified diff, Secret values masked.
    Drifted(String),
    /// It is in the inventory, not in the build, and the Kustomization prunes.
    Deleted,
}

/// Prints the differences; returns whether there are any.
pub async fn run(cluster: &Cluster, name: &str, dir: &Path) -> anyhow::Result<bool> {
    let namespace = cluster.namespace.as_str();
    let api: Api<Kustomization> = Api::namespaced(cluster.client.clone(), namespace);
    let Some(ks) = api.get_opt(name).await? else {
        anyhow::bail!("Kustomization object '{name}' not found in {namespace:?} namespace");
    };
    anyhow::ensure!(dir.is_dir(), "--path {}: not a directory", dir.display());
    let scratch = tempfile::tempdir()?;
    let root = scratch.path().join("tree");
    copy_tree(dir, &root)?;
    let changes = changes(cluster, &ks, &root, "", "--path").await?;
    for (who, change) in &changes {
        match change {
            Change::Created => println!("► {who} created"),
            Change::Drifted(diff) => {
                println!("► {who} drifted");
                print!("{diff}");
            }
            Change::Deleted => println!("► {who} deleted"),
        }
    }
    Ok(!changes.is_empty())
}

/// What applying `path` of the tree at `root` through `ks` would change, object by object (as
/// `Kind/namespace/name`): built as the controller builds it, each object server-side applied as a dry
/// run and compared with the live one. `side` names the build in the diffs' headers.
pub async fn changes(
    cluster: &Cluster,
    ks: &Kustomization,
    root: &Path,
    path: &str,
    side: &str,
) -> anyhow::Result<Vec<(String, Change)>> {
    let namespace = ks.metadata.namespace.as_deref().unwrap_or_default();
    let name = ks.metadata.name.as_deref().unwrap_or_default();
    let overlay = driftless_kustomization::overlay(&ks.spec, path).map_err(anyhow::Error::msg)?;
    let vars = match &ks.spec.post_build {
        Some(pb) => Some(
            driftless_kustomization::load_vars(&cluster.client, namespace, pb)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        None => None,
    };
    let built = driftless_kustomization::build(root, path, overlay, None, vars.as_ref(), false)
        .map_err(|e| anyhow::anyhow!("building {side}: {e}"))?;
    let client = acting_client(cluster, ks, namespace).await?;
    let owner = json!({driftless_kustomization::NAME_LABEL: name, driftless_kustomization::NAMESPACE_LABEL: namespace});
    let mut changes = Vec::new();
    let mut seen = HashSet::new();
    for mut o in built {
        let api_version = o["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = o["kind"].as_str().unwrap_or_default().to_string();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
        let (ar, caps) = discovery::pinned_kind(&client, &GroupVersionKind::gvk(group, version, &kind))
            .await
            .map_err(|e| anyhow::anyhow!("{api_version} {kind}: not served by the cluster ({e})"))?;
        let ns = match caps.scope {
            Scope::Namespaced => o["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            Scope::Cluster => String::new(),
        };
        let object_name = o["metadata"]["name"].as_str().unwrap_or_default().to_string();
        seen.insert((group.to_string(), kind.clone(), ns.clone(), object_name.clone()));
        if let Some(labels) = o["metadata"]
            .as_object_mut()
            .map(|m| m.entry("labels").or_insert(json!({})))
        {
            for (k, v) in owner.as_object().expect("an object") {
                labels[k] = v.clone();
            }
        }
        let target: Api<DynamicObject> = if ns.is_empty() {
            Api::all_with(client.clone(), &ar)
        } else {
            Api::namespaced_with(client.clone(), &ns, &ar)
        };
        let live = target
            .get_opt(&object_name)
            .await?
            .map(|l| serde_json::to_value(l).expect("serializes"));
        let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
        let merged = serde_json::to_value(
            target
                .patch(&object_name, &params, &Patch::Apply(&o))
                .await
                .map_err(|e| {
                    anyhow::anyhow!("{}: dry-run refused: {e}", subject(&kind, &ns, &object_name))
                })?,
        )?;
        let who = subject(&kind, &ns, &object_name);
        match live {
            None => changes.push((who, Change::Created)),
            Some(live) => {
                let before = driftless_yaml::to_string(&comparable(&live, Some(&merged), "before"))?;
                let after = driftless_yaml::to_string(&comparable(&merged, Some(&live), "after"))?;
                if before != after {
                    let diff = similar::TextDiff::from_lines(&before, &after)
                        .unified_diff()
                        .context_radius(3)
                        .header(&format!("{who} (cluster)"), &format!("{who} ({side})"))
                        .to_string();
                    changes.push((who, Change::Drifted(diff)));
                }
            }
        }
    }
    if ks.spec.prune {
        let ks_value = serde_json::to_value(ks)?;
        for place in objects::inventory(&ks_value) {
            let group = place
                .api_version
                .rsplit_once('/')
                .map(|(g, _)| g)
                .unwrap_or_default();
            let key = (
                group.to_string(),
                place.kind.clone(),
                place.namespace.clone(),
                place.name.clone(),
            );
            if !seen.contains(&key) && objects::get(&client, &place).await?.is_some() {
                changes.push((
                    subject(&place.kind, &place.namespace, &place.name),
                    Change::Deleted,
                ));
            }
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_bookkeeping_dropped() {
        let live = json!({"kind": "Secret", "metadata": {"name": "s", "uid": "1", "resourceVersion": "2",
            "managedFields": []}, "data": {"a": "b2xk", "b": "c2FtZQ=="}, "status": {}});
        let new =
            json!({"kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "bmV3", "b": "c2FtZQ=="}});
        assert_eq!(
            comparable(&live, Some(&new), "before"),
            json!({"kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "*** (before)", "b": "***"}})
        );
        assert_eq!(
            comparable(&new, Some(&live), "after"),
            json!({"kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "*** (after)", "b": "***"}})
        );
        assert_eq!(comparable(&new, None, "after")["data"]["a"], "***");
    }
}
