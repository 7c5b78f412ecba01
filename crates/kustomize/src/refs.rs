//! Name references: when a prefix, a suffix, a patch or a content hash renames an object another names
//! (a ConfigMap, Secret, ServiceAccount, Service, Role, workload of an HPA, StorageClass… — kustomize's
//! builtin `namereference` table, [`builtins`]), every field that refers to it by name is updated, as
//! kustomize's nameReference transformer does.

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

fn each_item(v: Option<&mut Value>) -> impl Iterator<Item = &mut Value> {
    v.and_then(Value::as_array_mut).into_iter().flatten()
}

/// A builtin name reference: the kind named, the kind naming it (with its API group when kustomize names
/// one), and the path of the name in the naming object (arrays on the way are walked).
struct Builtin {
    referred: &'static str,
    referrer: &'static str,
    group: Option<&'static str>,
    path: Vec<String>,
}

/// kustomize's builtin name references (its `namereference` configuration), in its order.
fn builtins() -> &'static [Builtin] {
    static TABLE: std::sync::OnceLock<Vec<Builtin>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Vec::new();
        let mut add = |referred, referrer, path: &str| {
            t.push(Builtin {
                referred,
                referrer,
                group: None,
                path: path.split('/').map(String::from).collect(),
            })
        };
        for workload in ["Deployment", "ReplicationController", "ReplicaSet", "StatefulSet"] {
            add(workload, "HorizontalPodAutoscaler", "spec/scaleTargetRef/name");
        }
        // the pod specs of ConfigMap and Secret references, and of ServiceAccount, PVC and PriorityClass ones
        let pods = [
            ("Pod", "spec"),
            ("PodTemplate", "template/spec"),
            ("Deployment", "spec/template/spec"),
            ("ReplicaSet", "spec/template/spec"),
            ("DaemonSet", "spec/template/spec"),
            ("StatefulSet", "spec/template/spec"),
            ("Job", "spec/template/spec"),
            ("CronJob", "spec/jobTemplate/spec/template/spec"),
        ];
        let workloads = [
            ("Pod", "spec"),
            ("StatefulSet", "spec/template/spec"),
            ("Deployment", "spec/template/spec"),
            ("ReplicationController", "spec/template/spec"),
            ("CronJob", "spec/jobTemplate/spec/template/spec"),
            ("Job", "spec/template/spec"),
            ("DaemonSet", "spec/template/spec"),
        ];
        for (referred, fields) in [
            (
                "ConfigMap",
                &[
                    "volumes/configMap/name",
                    "containers/env/valueFrom/configMapKeyRef/name",
                    "initContainers/env/valueFrom/configMapKeyRef/name",
                    "containers/envFrom/configMapRef/name",
                    "initContainers/envFrom/configMapRef/name",
                    "volumes/projected/sources/configMap/name",
                ][..],
            ),
            (
                "Secret",
                &[
                    "volumes/secret/secretName",
                    "containers/env/valueFrom/secretKeyRef/name",
                    "initContainers/env/valueFrom/secretKeyRef/name",
                    "containers/envFrom/secretRef/name",
                    "initContainers/envFrom/secretRef/name",
                    "imagePullSecrets/name",
                    "volumes/projected/sources/secret/name",
                ][..],
            ),
        ] {
            for (kind, base) in pods {
                for field in fields {
                    add(referred, kind, &format!("{base}/{field}"));
                }
            }
        }
        for (referred, field) in [
            ("ServiceAccount", "serviceAccountName"),
            ("PersistentVolumeClaim", "volumes/persistentVolumeClaim/claimName"),
            ("PriorityClass", "priorityClassName"),
        ] {
            for (kind, base) in workloads {
                add(referred, kind, &format!("{base}/{field}"));
            }
        }
        add("ConfigMap", "Node", "spec/configSource/configMap");
        for referred in ["ConfigMap", "Secret"] {
            add(referred, "Role", "rules/resourceNames");
            add(referred, "ClusterRole", "rules/resourceNames");
        }
        add("PersistentVolume", "ClusterRole", "rules/resourceNames");
        add("Secret", "Ingress", "spec/tls/secretName");
        add("Secret", "ServiceAccount", "imagePullSecrets/name");
        for field in ["secretName", "adminSecretName", "userSecretName", "secretRef"] {
            add("Secret", "StorageClass", &format!("parameters/{field}"));
        }
        add("Secret", "PersistentVolume", "spec/azureFile/secretName");
        add("Service", "StatefulSet", "spec/serviceName");
        add("Service", "Ingress", "spec/rules/http/paths/backend/serviceName");
        add("Service", "Ingress", "spec/backend/serviceName");
        add("Service", "Ingress", "spec/rules/http/paths/backend/service/name");
        add("Service", "Ingress", "spec/defaultBackend/service/name");
        add("Service", "APIService", "spec/service/name");
        add(
            "Service",
            "ValidatingWebhookConfiguration",
            "webhooks/clientConfig/service",
        );
        add(
            "Service",
            "MutatingWebhookConfiguration",
            "webhooks/clientConfig/service",
        );
        add("Role", "RoleBinding", "roleRef/name");
        add("ClusterRole", "RoleBinding", "roleRef/name");
        add("ClusterRole", "ClusterRoleBinding", "roleRef/name");
        add("ServiceAccount", "RoleBinding", "subjects");
        add("ServiceAccount", "ClusterRoleBinding", "subjects");
        add("PersistentVolume", "PersistentVolumeClaim", "spec/volumeName");
        add("StorageClass", "PersistentVolume", "spec/storageClassName");
        add("StorageClass", "PersistentVolumeClaim", "spec/storageClassName");
        add(
            "StorageClass",
            "StatefulSet",
            "spec/volumeClaimTemplates/spec/storageClassName",
        );
        add("IngressClass", "Ingress", "spec/ingressClassName");
        add(
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "spec/policyName",
        );
        // annotations naming objects, and Knative's Service
        for (referred, key) in [
            (
                "ConfigMap",
                "nginx.ingress.kubernetes.io/fastcgi-params-configmap",
            ),
            ("Secret", "ingress.kubernetes.io/auth-secret"),
            ("Secret", "nginx.ingress.kubernetes.io/auth-secret"),
            ("Secret", "nginx.ingress.kubernetes.io/auth-tls-secret"),
        ] {
            t.push(Builtin {
                referred,
                referrer: "Ingress",
                group: None,
                path: vec!["metadata".into(), "annotations".into(), key.into()],
            });
        }
        t.push(Builtin {
            referred: "Secret",
            referrer: "Service",
            group: Some("serving.knative.dev"),
            path: "spec/template/spec/containers/env/valueFrom/secretKeyRef/name"
                .split('/')
                .map(String::from)
                .collect(),
        });
        t
    })
}

/// Renames by (kind, namespace, old name): one look-up per referring field, whatever the number of renames;
/// and by (kind, old name) in any namespace, for references from cluster-scoped objects.
struct Index {
    exact: HashMap<(String, String, String), String>,
    /// The namespace and new name of each (kind, old name), when only one object had it.
    any: HashMap<(String, String), Option<(String, String)>>,
}

/// Where a reference's object is looked for.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// In this namespace ("" for a cluster-scoped kind).
    In(&'a str),
    /// In any namespace (a cluster-scoped object naming a namespaced one).
    Any,
}

impl Index {
    /// The namespace and new name of the `kind` named `old` seen from `scope`, when it was renamed.
    fn find(&self, kind: &str, old: &str, scope: Scope) -> Option<(String, String)> {
        match scope {
            Scope::In(ns) => self
                .exact
                .get(&(kind.to_string(), ns.to_string(), old.to_string()))
                .map(|new| (ns.to_string(), new.clone()))
                // NB: kustomize finds a ServiceAccount in any namespace
                .or_else(|| {
                    (kind == "ServiceAccount")
                        .then(|| self.find(kind, old, Scope::Any))
                        .flatten()
                }),
            Scope::Any => self
                .any
                .get(&(kind.to_string(), old.to_string()))
                .cloned()
                .flatten(),
        }
    }

    /// Rewrites the name at `v` when the object of `kind` it names in `ns` was renamed.
    fn rewrite(&self, v: Option<&mut Value>, kind: &str, ns: &str) {
        self.rewrite_in(v, kind, Scope::In(ns));
    }

    fn rewrite_in(&self, v: Option<&mut Value>, kind: &str, scope: Scope) {
        if let Some(v) = v
            && let Some(old) = v.as_str()
            && let Some((_, new)) = self.find(kind, old, scope)
        {
            *v = Value::String(new);
        }
    }
}

/// Rewrites the names at `path` in `v` (arrays on the way walked; a list of names each; a map its `name`,
/// and its `namespace` to the object's) naming a renamed `kind` seen from `scope`.
fn rewrite_path(v: &mut Value, path: &[String], idx: &Index, kind: &str, scope: Scope) {
    match (path.split_first(), v) {
        (_, Value::Array(items)) => items
            .iter_mut()
            .for_each(|i| rewrite_path(i, path, idx, kind, scope)),
        (Some((first, rest)), Value::Object(map)) => {
            if let Some(child) = map.get_mut(first) {
                rewrite_path(child, rest, idx, kind, scope);
            }
        }
        (None, v @ Value::String(_)) => idx.rewrite_in(Some(v), kind, scope),
        (None, Value::Object(map)) => {
            let Some(old) = map.get("name").and_then(Value::as_str) else {
                return;
            };
            let scope = match map.get("namespace").and_then(Value::as_str) {
                Some(ns) => Scope::In(ns),
                None => scope,
            };
            if let Some((ns, new)) = idx.find(kind, old, scope) {
                map.insert("name".into(), Value::String(new));
                if !ns.is_empty() {
                    map.insert("namespace".into(), Value::String(ns));
                }
            }
        }
        _ => {}
    }
}

/// Rewrites every reference in `o` to a renamed object. A namespaced referral is seen from its own
/// namespace only (from a cluster-scoped object, from any); bindings name a subject's namespace themselves.
fn update(o: &mut Object, idx: &Index) {
    let kind = o
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let group = o
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.rsplit_once('/'))
        .map(|(g, _)| g.to_string())
        .unwrap_or_default();
    let ns = o
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let ns = ns.as_str();
    for b in builtins().iter().filter(|b| b.referrer == kind) {
        if b.group.is_some_and(|g| g != group) || (b.group.is_none() && group == "serving.knative.dev") {
            continue;
        }
        let scope = scope(b.referred, &kind, ns);
        if b.path == ["roleRef", "name"] {
            // a binding's roleRef names a Role or a ClusterRole, as its kind says
            if o.pointer("/roleRef/kind").and_then(Value::as_str) == Some(b.referred) {
                idx.rewrite_in(o.pointer_mut("/roleRef/name"), b.referred, scope);
            }
        } else if b.path == ["subjects"] {
            // ServiceAccount subjects, each in its own namespace (the binding's when it names none)
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
        } else {
            rewrite_path(o, &b.path, idx, b.referred, scope);
        }
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

/// Where a referrer of `kind` in `ns` looks for a `referred` object: nowhere but "" for a cluster-scoped
/// one, anywhere from a cluster-scoped referrer, else its own namespace.
fn scope<'a>(referred: &str, kind: &str, ns: &'a str) -> Scope<'a> {
    if crate::transform::CLUSTER_SCOPED.contains(&referred) {
        Scope::In("")
    } else if crate::transform::CLUSTER_SCOPED.contains(&kind) {
        Scope::Any
    } else {
        Scope::In(ns)
    }
}

/// Applies `renames` to the references of every resource (and to those `custom` declares).
pub fn apply(resources: &mut [Res], renames: &[Rename], custom: &[CustomRef]) {
    if renames.is_empty() {
        return;
    }
    let mut idx = Index {
        exact: HashMap::new(),
        any: HashMap::new(),
    };
    for r in renames {
        let ns = if crate::transform::CLUSTER_SCOPED.contains(&r.kind.as_str()) {
            String::new()
        } else {
            r.namespace.clone()
        };
        idx.exact
            .insert((r.kind.clone(), ns.clone(), r.old.clone()), r.new.clone());
        let found = (ns, r.new.clone());
        idx.any
            .entry((r.kind.clone(), r.old.clone()))
            .and_modify(|e| {
                if e.as_ref() != Some(&found) {
                    *e = None;
                }
            })
            .or_insert(Some(found));
    }
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
        for c in custom
            .iter()
            .filter(|c| c.referrer.is_empty() || c.referrer == kind)
        {
            rewrite_path(
                &mut res.obj,
                &c.path,
                &idx,
                &c.referred,
                scope(&c.referred, &kind, &ns),
            );
        }
    }
}

/// The kinds whose renames are followed.
pub fn referred(kind: &str) -> bool {
    builtins().iter().any(|b| b.referred == kind)
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
