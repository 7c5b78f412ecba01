//! What the engine reads off an object: its identity (kind, `subject`, inventory entry), its stage, its
//! annotations and owner labels, the fields the server sets, and the field managers it takes over.

use std::collections::BTreeMap;

use driftless_api::kustomize::ResourceRef;
use kube::core::GroupVersionKind;
use serde_json::Value;

use crate::Error;

/// Field managers whose fields we take over, so that what they set and Git does not have is removed at the
/// next apply (unless the object is annotated `<group>/ssa: Merge`): `kubectl apply
/// --server-side`, `kubectl` edits and client-side applies, and our own pre-SSA updates.
pub(crate) const TAKEN_OVER: &[(&str, &str)] = &[
    ("kubectl", "Apply"),
    ("kubectl", "Update"),
    ("kubectl-client-side-apply", "Update"),
    ("kubectl-edit", "Update"),
    ("before-first-apply", "Update"),
];

/// Annotations and labels removed from live objects: kubectl's client-side apply record and the marks of
/// Flux v1 and early kustomize-controller.
pub(crate) const CLEANED_UP: &[(&str, &str)] = &[
    ("annotations", "kubectl.kubernetes.io/last-applied-configuration"),
    ("annotations", "kustomize.toolkit.fluxcd.io/checksum"),
    ("annotations", "fluxcd.io/sync-checksum"),
    ("labels", "fluxcd.io/sync-gc-mark"),
];

/// The object's managedFields with the entries of [`TAKEN_OVER`] managers, `overridden` ones and `ours`
/// with Update merged
/// into our Apply entry; `None` when there is nothing to take over.
pub(crate) fn take_over_managers(live: &Value, ours: &str, overridden: &[String]) -> Option<Value> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let taken = |e: &Value| {
        let (m, op) = (str_at(e, &["manager"]), str_at(e, &["operation"]));
        TAKEN_OVER.contains(&(m, op)) || (m == ours && op == "Update") || overridden.iter().any(|o| o == m)
    };
    if !entries.iter().any(taken) {
        return None;
    }
    let mut fields = Value::Object(Default::default());
    let mut api_version = str_at(live, &["apiVersion"]).to_string();
    let mut kept = Vec::new();
    for e in entries {
        let ours_apply = str_at(e, &["manager"]) == ours && str_at(e, &["operation"]) == "Apply";
        if taken(e) || ours_apply {
            merge_fields(&mut fields, e.get("fieldsV1").unwrap_or(&Value::Null));
            if ours_apply {
                api_version = str_at(e, &["apiVersion"]).to_string();
            }
        } else {
            kept.push(e.clone());
        }
    }
    kept.push(
        serde_json::json!({"manager": ours, "operation": "Apply", "apiVersion": api_version,
        "fieldsType": "FieldsV1", "fieldsV1": fields}),
    );
    Some(Value::Array(kept))
}

/// The union of two FieldsV1 trees.
pub(crate) fn merge_fields(into: &mut Value, from: &Value) {
    let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) else {
        return;
    };
    for (k, v) in from {
        merge_fields(
            into.entry(k.clone())
                .or_insert_with(|| Value::Object(Default::default())),
            v,
        );
    }
}

/// The API server refused a change to a field that cannot change after creation.
pub(crate) fn is_immutable(e: &kube::Error) -> bool {
    let kube::Error::Api(s) = e else { return false };
    let m = s.message.to_lowercase();
    s.code == 422 && (m.contains("immutable") || m.contains("may not change") || m.contains("cannot change"))
}

pub(crate) fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn str_at<'a>(o: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(o, |v, k| v.get(*k))
        .and_then(|v| v.as_str())
        .unwrap_or("")
}

/// Whether `o` carries every `owner` label with its value.
pub(crate) fn owned(o: &Value, owner: &BTreeMap<String, String>) -> bool {
    let labels = o.pointer("/metadata/labels");
    owner
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v))
}

pub(crate) fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

pub(crate) fn gvk_of(o: &Value) -> Result<GroupVersionKind, Error> {
    let api_version = str_at(o, &["apiVersion"]);
    let kind = str_at(o, &["kind"]);
    if api_version.is_empty() || kind.is_empty() || str_at(o, &["metadata", "name"]).is_empty() {
        return Err(Error::Invalid(format!(
            "an object lacks apiVersion, kind or metadata.name: {}",
            short(o)
        )));
    }
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    Ok(GroupVersionKind::gvk(group, version, kind))
}

pub(crate) fn short(o: &Value) -> String {
    format!("{}/{}", str_at(o, &["kind"]), str_at(o, &["metadata", "name"]))
}

/// `Kind/namespace/name`, Flux's subject of change-set entries.
pub fn subject(o: &Value) -> String {
    let ns = str_at(o, &["metadata", "namespace"]);
    if ns.is_empty() {
        format!("{}/{}", str_at(o, &["kind"]), str_at(o, &["metadata", "name"]))
    } else {
        format!(
            "{}/{ns}/{}",
            str_at(o, &["kind"]),
            str_at(o, &["metadata", "name"])
        )
    }
}

/// The failure of `action` (`get`, `dry-run`, `apply`…) on `o`, as the API server answered it.
pub(crate) fn api_error<'a>(o: &'a Value, action: &'static str) -> impl FnOnce(kube::Error) -> Error + 'a {
    move |e| Error::Api {
        id: subject(o),
        action,
        message: driftless_runtime::error::api_message(&e),
        unavailable: driftless_runtime::error::is_unavailable(&e),
    }
}

/// The inventory entry of an object: `<namespace>_<name>_<group>_<kind>`, version `v`.
pub fn inventory_ref(o: &Value) -> ResourceRef {
    let api_version = str_at(o, &["apiVersion"]);
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ResourceRef {
        id: format!(
            "{}_{}_{}_{}",
            str_at(o, &["metadata", "namespace"]),
            str_at(o, &["metadata", "name"]),
            group,
            str_at(o, &["kind"])
        ),
        v: version.to_string(),
    }
}

/// Parses an inventory entry back into (namespace, name, gvk).
pub fn parse_ref(r: &ResourceRef) -> Option<(String, String, GroupVersionKind)> {
    let mut parts = r.id.splitn(4, '_');
    let (ns, name, group, kind) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some((
        ns.to_string(),
        name.to_string(),
        GroupVersionKind::gvk(group, &r.v, kind),
    ))
}

/// An object's API group (empty for the core group) and kind.
pub(crate) fn group_kind(o: &Value) -> (&str, &str) {
    let group = str_at(o, &["apiVersion"]).rsplit_once('/').map_or("", |(g, _)| g);
    (group, str_at(o, &["kind"]))
}

/// The group and kind a CustomResourceDefinition defines.
pub(crate) fn crd_defines(crd: &Value) -> (&str, &str) {
    (
        str_at(crd, &["spec", "group"]),
        str_at(crd, &["spec", "names", "kind"]),
    )
}

/// The (group, kind) pairs the CRDs among `objects` define.
pub(crate) fn defined_kinds(objects: &[Value]) -> std::collections::HashSet<(&str, &str)> {
    objects
        .iter()
        .filter(|o| str_at(o, &["kind"]) == "CustomResourceDefinition")
        .map(crd_defines)
        .collect()
}

pub(crate) fn stage(o: &Value) -> u8 {
    match str_at(o, &["kind"]) {
        "CustomResourceDefinition" | "Namespace" | "ClusterRole" | "ClusterRoleBinding" => 0,
        k if k.ends_with("Class") => 1,
        _ => 2,
    }
}

/// Metadata the API server owns: ignored when comparing a dry-run with the live object.
pub(crate) const SERVER_FIELDS: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
];

pub(crate) fn comparable(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        for f in SERVER_FIELDS {
            meta.remove(*f);
        }
    }
    if let Some(map) = o.as_object_mut() {
        map.remove("status");
    }
    o
}
