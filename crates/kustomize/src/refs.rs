//! Name references: when a prefix, a suffix or a content hash renames a ConfigMap, Secret,
//! ServiceAccount, PersistentVolumeClaim, Service, Role, ClusterRole or ValidatingAdmissionPolicy, every
//! field that refers to it by name is updated, as kustomize's nameReference transformer does.

use std::collections::HashMap;

use serde_json::Value;

use crate::{Object, transform::Res};

/// One object renamed: its kind, namespace, old and new name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rename {
    kind: String,
    namespace: String,
    old: String,
    new: String,
}

impl Rename {
    /// The rename of `o` (already carrying its new name) from `old` to `new`.
    pub fn of(o: &Object, old: String, new: String) -> Self {
        Self {
            kind: o
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            namespace: o
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            old,
            new,
        }
    }
}

/// Where a workload kind keeps its pod spec.
fn pod_specs(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &["/spec"],
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "ReplicationController" => {
            &["/spec/template/spec"]
        }
        "CronJob" => &["/spec/jobTemplate/spec/template/spec"],
        _ => &[],
    }
}

fn each_item(v: Option<&mut Value>) -> impl Iterator<Item = &mut Value> {
    v.and_then(Value::as_array_mut).into_iter().flatten()
}

/// Renames by (kind, namespace, old name): one look-up per referring field, whatever the number of renames.
struct Index(HashMap<(String, String, String), String>);

impl Index {
    /// Rewrites the name at `v` when the object of `kind` it names in `ns` was renamed.
    fn rewrite(&self, v: Option<&mut Value>, kind: &str, ns: &str) {
        if let Some(v) = v
            && let Some(old) = v.as_str()
            && let Some(new) = self.0.get(&(kind.to_string(), ns.to_string(), old.to_string()))
        {
            *v = Value::String(new.clone());
        }
    }
}

/// The fields of a pod spec (in namespace `ns`) that name other objects.
fn pod_spec(spec: &mut Value, idx: &Index, ns: &str) {
    for containers in ["containers", "initContainers", "ephemeralContainers"] {
        for c in each_item(spec.get_mut(containers)) {
            for e in each_item(c.get_mut("env")) {
                idx.rewrite(e.pointer_mut("/valueFrom/configMapKeyRef/name"), "ConfigMap", ns);
                idx.rewrite(e.pointer_mut("/valueFrom/secretKeyRef/name"), "Secret", ns);
            }
            for e in each_item(c.get_mut("envFrom")) {
                idx.rewrite(e.pointer_mut("/configMapRef/name"), "ConfigMap", ns);
                idx.rewrite(e.pointer_mut("/secretRef/name"), "Secret", ns);
            }
        }
    }
    for v in each_item(spec.get_mut("volumes")) {
        idx.rewrite(v.pointer_mut("/configMap/name"), "ConfigMap", ns);
        idx.rewrite(v.pointer_mut("/secret/secretName"), "Secret", ns);
        idx.rewrite(
            v.pointer_mut("/persistentVolumeClaim/claimName"),
            "PersistentVolumeClaim",
            ns,
        );
        for s in each_item(v.pointer_mut("/projected/sources")) {
            idx.rewrite(s.pointer_mut("/configMap/name"), "ConfigMap", ns);
            idx.rewrite(s.pointer_mut("/secret/name"), "Secret", ns);
        }
    }
    for s in each_item(spec.get_mut("imagePullSecrets")) {
        idx.rewrite(s.get_mut("name"), "Secret", ns);
    }
    idx.rewrite(spec.get_mut("serviceAccountName"), "ServiceAccount", ns);
    idx.rewrite(spec.get_mut("serviceAccount"), "ServiceAccount", ns);
}

/// Rewrites every reference in `o` to a renamed object. A namespaced referral is seen from its own
/// namespace only; bindings name a subject's namespace themselves.
fn update(o: &mut Object, idx: &Index) {
    let kind = o
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let ns = o
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let ns = ns.as_str();
    for path in pod_specs(&kind) {
        if let Some(spec) = o.pointer_mut(path) {
            pod_spec(spec, idx, ns);
        }
    }
    match kind.as_str() {
        "Ingress" => {
            for t in each_item(o.pointer_mut("/spec/tls")) {
                idx.rewrite(t.get_mut("secretName"), "Secret", ns);
            }
            idx.rewrite(o.pointer_mut("/spec/defaultBackend/service/name"), "Service", ns);
            for rule in each_item(o.pointer_mut("/spec/rules")) {
                for p in each_item(rule.pointer_mut("/http/paths")) {
                    idx.rewrite(p.pointer_mut("/backend/service/name"), "Service", ns);
                }
            }
        }
        "ServiceAccount" => {
            for key in ["imagePullSecrets", "secrets"] {
                for s in each_item(o.get_mut(key)) {
                    idx.rewrite(s.get_mut("name"), "Secret", ns);
                }
            }
        }
        "StatefulSet" => idx.rewrite(o.pointer_mut("/spec/serviceName"), "Service", ns),
        "ValidatingAdmissionPolicyBinding" => {
            idx.rewrite(o.pointer_mut("/spec/policyName"), "ValidatingAdmissionPolicy", "")
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            match o.pointer("/roleRef/kind").and_then(Value::as_str) {
                Some("Role") => idx.rewrite(o.pointer_mut("/roleRef/name"), "Role", ns),
                Some("ClusterRole") => idx.rewrite(o.pointer_mut("/roleRef/name"), "ClusterRole", ""),
                _ => {}
            }
            for s in each_item(o.get_mut("subjects")) {
                if s.get("kind").and_then(Value::as_str) != Some("ServiceAccount") {
                    continue;
                }
                let subject_ns = s
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(ns)
                    .to_string();
                let before = s.get("name").cloned();
                idx.rewrite(s.get_mut("name"), "ServiceAccount", &subject_ns);
                if s.get("name") != before.as_ref() && !subject_ns.is_empty() {
                    // kustomize also writes the namespace of the subject it renames, when it has one
                    s["namespace"] = Value::String(subject_ns);
                }
            }
        }
        _ => {}
    }
}

/// A reference a `crds` OpenAPI definition declares: a field of `referrer` objects (`x-kubernetes-object-
/// ref-kind` on a property) that holds the name of a `referred` object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomRef {
    /// The kind named.
    pub referred: String,
    /// The kind holding the reference.
    pub referrer: String,
    /// The path to the name (`spec`, `beeRef`, `name`).
    pub path: Vec<String>,
}

/// The references the OpenAPI definitions `defs` (definition name → `{Schema: …}`) declare, as kustomize
/// reads a `crds` file: each property marked `x-kubernetes-object-ref-kind`, found from a kind's root
/// through `$ref`s, refers by its `name` field.
pub fn declared(defs: &Value) -> Vec<CustomRef> {
    fn walk(defs: &Value, schema: &Value, kind: &str, path: &mut Vec<String>, out: &mut Vec<CustomRef>) {
        if path.len() > 16 {
            return;
        }
        let schema = match schema.get("$ref").and_then(Value::as_str) {
            Some(name) => match defs.get(name).and_then(|d| d.get("Schema")) {
                Some(target) => target,
                None => return,
            },
            None => schema,
        };
        for (name, prop) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            path.push(name.clone());
            if let Some(referred) = prop.get("x-kubernetes-object-ref-kind").and_then(Value::as_str) {
                let mut at = path.clone();
                at.push("name".into());
                out.push(CustomRef {
                    referred: referred.to_string(),
                    referrer: kind.to_string(),
                    path: at,
                });
            } else if name != "metadata" && name != "status" {
                walk(defs, prop, kind, path, out);
            }
            path.pop();
        }
    }
    let mut out = Vec::new();
    for (name, def) in defs.as_object().into_iter().flatten() {
        let Some(schema) = def.get("Schema") else {
            continue;
        };
        let is_kind = schema
            .get("properties")
            .is_some_and(|p| p.get("kind").is_some() && p.get("metadata").is_some());
        if is_kind {
            let kind = name.rsplit('.').next().unwrap_or_default();
            walk(defs, schema, kind, &mut Vec::new(), &mut out);
        }
    }
    out
}

fn rewrite_at(v: &mut Value, path: &[String], idx: &Index, kind: &str, ns: &str) {
    let Some((first, rest)) = path.split_first() else {
        idx.rewrite(Some(v), kind, ns);
        return;
    };
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite_at(i, path, idx, kind, ns)),
        Value::Object(map) => {
            if let Some(child) = map.get_mut(first) {
                rewrite_at(child, rest, idx, kind, ns);
            }
        }
        _ => {}
    }
}

/// Applies `renames` to the references of every resource (and to those `custom` declares).
pub fn apply(resources: &mut [Res], renames: &[Rename], custom: &[CustomRef]) {
    if renames.is_empty() {
        return;
    }
    let idx = Index(
        renames
            .iter()
            .map(|r| {
                let ns = if matches!(r.kind.as_str(), "ClusterRole" | "ValidatingAdmissionPolicy") {
                    String::new()
                } else {
                    r.namespace.clone()
                };
                ((r.kind.clone(), ns, r.old.clone()), r.new.clone())
            })
            .collect(),
    );
    for res in resources.iter_mut() {
        update(&mut res.obj, &idx);
        let kind = res
            .obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let ns = res
            .obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        for c in custom.iter().filter(|c| c.referrer == kind) {
            rewrite_at(&mut res.obj, &c.path, &idx, &c.referred, &ns);
        }
    }
}

/// The kinds whose renames are followed.
pub fn referred(kind: &str) -> bool {
    matches!(
        kind,
        "ConfigMap"
            | "Secret"
            | "ServiceAccount"
            | "PersistentVolumeClaim"
            | "Service"
            | "Role"
            | "ClusterRole"
            | "ValidatingAdmissionPolicy"
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn openapi_definitions_declare_references_through_refs() {
        let defs = json!({
            "ex/v1.App": {"Schema": {"properties": {"kind": {}, "metadata": {}, "spec": {"$ref": "ex/v1.AppSpec"}}}},
            "ex/v1.AppSpec": {"Schema": {"properties": {
                "dbRef": {"x-kubernetes-object-ref-kind": "Database", "$ref": "ex/v1.Ref"},
                "plain": {"type": "string"}}}},
            "ex/v1.Ref": {"Schema": {"properties": {"name": {"type": "string"}}}},
        });
        assert_eq!(
            declared(&defs),
            [CustomRef {
                referred: "Database".into(),
                referrer: "App".into(),
                path: vec!["spec".into(), "dbRef".into(), "name".into()],
            }]
        );
    }
}
