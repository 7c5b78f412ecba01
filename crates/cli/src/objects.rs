//! Reading any object of the cluster by apiVersion and kind (found through discovery), and the labels by
//! which Flux's controllers mark what they applied.

use anyhow::Context as _;
use kube::{
    Api, Client,
    api::DynamicObject,
    core::{ApiResource, GroupVersionKind},
    discovery::{self, Discovery, Scope},
};
use serde_json::Value;

/// An object's place: apiVersion, kind, namespace (empty if cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// Empty for a cluster-scoped object.
    pub namespace: String,
    /// The name.
    pub name: String,
}

/// The string at `pointer` in `o`, or `""`.
pub fn at<'a>(o: &'a Value, pointer: &str) -> &'a str {
    o.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// The conditions of `o`'s status.
pub fn conditions(o: &Value) -> &[Value] {
    o.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The condition of `type_` in `o`'s status.
pub fn condition<'a>(o: &'a Value, type_: &str) -> Option<&'a Value> {
    conditions(o).iter().find(|c| at(c, "/type") == type_)
}

fn gvk(api_version: &str, kind: &str) -> GroupVersionKind {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind)
}

/// The object at `place`, or None when it does not exist (or its kind is not served).
pub async fn get(client: &Client, place: &Place) -> anyhow::Result<Option<Value>> {
    let Ok((ar, caps)) = discovery::pinned_kind(client, &gvk(&place.api_version, &place.kind)).await else {
        return Ok(None);
    };
    let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
        Api::namespaced_with(client.clone(), &place.namespace, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    };
    Ok(api
        .get_opt(&place.name)
        .await
        .with_context(|| format!("reading {}/{}", place.kind, place.name))?
        .map(|o| serde_json::to_value(o).expect("an object serializes")))
}

/// Server-side applies `o` as `manager` (forcing conflicts, as an installer does); whether it was created.
pub async fn apply(client: &Client, o: &Value, manager: &str) -> anyhow::Result<bool> {
    let api_version = o["apiVersion"].as_str().unwrap_or_default();
    let kind = o["kind"].as_str().unwrap_or_default();
    let name = o["metadata"]["name"].as_str().unwrap_or_default();
    let (ar, caps) = discovery::pinned_kind(client, &gvk(api_version, kind))
        .await
        .with_context(|| format!("{api_version} {kind} is not served by the cluster"))?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            o["metadata"]["namespace"].as_str().unwrap_or("default"),
            &ar,
        ),
        Scope::Cluster => Api::all_with(client.clone(), &ar),
    };
    let existed = api.get_opt(name).await?.is_some();
    api.patch(
        name,
        &kube::api::PatchParams::apply(manager).force(),
        &kube::api::Patch::Apply(o),
    )
    .await
    .with_context(|| format!("applying {kind} {name}"))?;
    Ok(!existed)
}

/// Deletes the object at `place`; whether it was there.
pub async fn delete(client: &Client, place: &Place) -> anyhow::Result<bool> {
    let Ok((ar, caps)) = discovery::pinned_kind(client, &gvk(&place.api_version, &place.kind)).await else {
        return Ok(false);
    };
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), &place.namespace, &ar),
        Scope::Cluster => Api::all_with(client.clone(), &ar),
    };
    match api.delete(&place.name, &Default::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The place of `o`.
pub fn place_of(o: &Value) -> Place {
    let s = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Place {
        api_version: s("/apiVersion"),
        kind: s("/kind"),
        namespace: s("/metadata/namespace"),
        name: s("/metadata/name"),
    }
}

/// The served resource `word` names — a kind, its plural or singular, any case — and whether it is
/// namespaced; Flux's kinds first.
pub async fn resource(client: &Client, word: &str) -> anyhow::Result<(ApiResource, bool)> {
    if let Some(k) = driftless_api::kinds::find(word) {
        return Ok((k.api_resource(), true));
    }
    let lower = word.to_lowercase();
    let discovery = Discovery::new(client.clone()).run().await?;
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if ar.kind.to_lowercase() == lower
                || ar.plural == lower
                || ar.plural.trim_end_matches('s') == lower
            {
                return Ok((ar, caps.scope == Scope::Namespaced));
            }
        }
    }
    anyhow::bail!("the cluster serves no kind named '{word}' (try its kind, like Deployment, or its plural)")
}

fn label<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/labels")?.get(key)?.as_str()
}

/// The Kustomization or HelmRelease whose controller applied `o` (by the owner labels they set): its
/// kind, namespace and name.
pub fn manager(o: &Value) -> Option<(&'static str, String, String)> {
    for (kind, group) in [
        ("Kustomization", "kustomize.toolkit.fluxcd.io"),
        ("HelmRelease", "helm.toolkit.fluxcd.io"),
    ] {
        if let (Some(name), Some(ns)) = (
            label(o, &format!("{group}/name")),
            label(o, &format!("{group}/namespace")),
        ) {
            return Some((kind, ns.to_string(), name.to_string()));
        }
    }
    None
}

/// The objects of a Kustomization's `status.inventory` (`<namespace>_<name>_<group>_<kind>` and `v`).
pub fn inventory(ks: &Value) -> Vec<Place> {
    let entries = ks
        .pointer("/status/inventory/entries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    entries
        .iter()
        .filter_map(|e| {
            let id = e.get("id")?.as_str()?;
            let version = e.get("v")?.as_str()?;
            let mut parts = id.splitn(2, '_');
            let namespace = parts.next()?.to_string();
            let rest = parts.next()?;
            // the name may hold underscores: group and kind are the last two fields
            let mut tail = rest.rsplitn(3, '_');
            let kind = tail.next()?.to_string();
            let group = tail.next()?;
            let name = tail.next()?.to_string();
            let api_version = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            Some(Place {
                api_version,
                kind,
                namespace,
                name,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn inventory_entries_read_as_flux_writes_them() {
        let ks = json!({"status": {"inventory": {"entries": [
            {"id": "apps_podinfo_apps_Deployment", "v": "v1"},
            {"id": "_flux-system__Namespace", "v": "v1"},
            {"id": "apps_my_cm__ConfigMap", "v": "v1"},
            {"id": "flux-system_apps_kustomize.toolkit.fluxcd.io_Kustomization", "v": "v1"}]}}});
        let places = inventory(&ks);
        let flat: Vec<(&str, &str, &str, &str)> = places
            .iter()
            .map(|p| {
                (
                    p.api_version.as_str(),
                    p.kind.as_str(),
                    p.namespace.as_str(),
                    p.name.as_str(),
                )
            })
            .collect();
        assert_eq!(
            flat,
            [
                ("apps/v1", "Deployment", "apps", "podinfo"),
                ("v1", "Namespace", "", "flux-system"),
                ("v1", "ConfigMap", "apps", "my_cm"),
                (
                    "kustomize.toolkit.fluxcd.io/v1",
                    "Kustomization",
                    "flux-system",
                    "apps"
                ),
            ]
        );
    }

    #[test]
    fn managers_are_read_from_the_owner_labels() {
        let o = json!({"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}});
        assert_eq!(
            manager(&o),
            Some(("Kustomization", "flux-system".into(), "apps".into()))
        );
        let o = json!({"metadata": {"labels": {"helm.toolkit.fluxcd.io/name": "podinfo",
            "helm.toolkit.fluxcd.io/namespace": "apps"}}});
        assert_eq!(
            manager(&o),
            Some(("HelmRelease", "apps".into(), "podinfo".into()))
        );
        assert_eq!(manager(&json!({"metadata": {}})), None);
    }
}
