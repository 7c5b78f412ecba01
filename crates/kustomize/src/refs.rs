//! Name references: when a prefix, a suffix or a content hash renames a ConfigMap, Secret,
//! ServiceAccount, PersistentVolumeClaim, Service, Role or ClusterRole, every field that refers to it by
//! name is updated, as kustomize's nameReference transformer does.

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

fn set_if(v: Option<&mut Value>, old: &str, new: &str) {
    if let Some(v) = v
        && v.as_str() == Some(old)
    {
        *v = Value::String(new.to_string());
    }
}

/// The fields of a pod spec that name an object of `kind`, updated from `old` to `new`.
fn pod_spec(spec: &mut Value, kind: &str, old: &str, new: &str) {
    for containers in ["containers", "initContainers", "ephemeralContainers"] {
        for c in each_item(spec.get_mut(containers)) {
            for e in each_item(c.get_mut("env")) {
                match kind {
                    "ConfigMap" => set_if(e.pointer_mut("/valueFrom/configMapKeyRef/name"), old, new),
                    "Secret" => set_if(e.pointer_mut("/valueFrom/secretKeyRef/name"), old, new),
                    _ => {}
                }
            }
            for e in each_item(c.get_mut("envFrom")) {
                match kind {
                    "ConfigMap" => set_if(e.pointer_mut("/configMapRef/name"), old, new),
                    "Secret" => set_if(e.pointer_mut("/secretRef/name"), old, new),
                    _ => {}
                }
            }
        }
    }
    for v in each_item(spec.get_mut("volumes")) {
        match kind {
            "ConfigMap" => set_if(v.pointer_mut("/configMap/name"), old, new),
            "Secret" => set_if(v.pointer_mut("/secret/secretName"), old, new),
            "PersistentVolumeClaim" => set_if(v.pointer_mut("/persistentVolumeClaim/claimName"), old, new),
            _ => {}
        }
        for s in each_item(v.pointer_mut("/projected/sources")) {
            match kind {
                "ConfigMap" => set_if(s.pointer_mut("/configMap/name"), old, new),
                "Secret" => set_if(s.pointer_mut("/secret/name"), old, new),
                _ => {}
            }
        }
    }
    match kind {
        "Secret" => {
            for s in each_item(spec.get_mut("imagePullSecrets")) {
                set_if(s.get_mut("name"), old, new);
            }
        }
        "ServiceAccount" => {
            set_if(spec.get_mut("serviceAccountName"), old, new);
            set_if(spec.get_mut("serviceAccount"), old, new);
        }
        _ => {}
    }
}

/// Updates every reference in `o` to the object renamed by `r`.
fn update(o: &mut Object, r: &Rename) {
    let kind = o
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = o
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = namespace.as_str();
    let cluster_referral = matches!(r.kind.as_str(), "ClusterRole");
    // a namespaced referral is seen only from its own namespace (bindings name the namespace themselves)
    let same_ns =
        namespace == r.namespace || cluster_referral || matches!(kind.as_str(), "ClusterRoleBinding");
    let (old, new) = (r.old.as_str(), r.new.as_str());
    if same_ns {
        for path in pod_specs(&kind) {
            if let Some(spec) = o.pointer_mut(path) {
                pod_spec(spec, &r.kind, old, new);
            }
        }
    }
    match (r.kind.as_str(), kind.as_str()) {
        ("Secret", "Ingress") if same_ns => {
            for t in each_item(o.pointer_mut("/spec/tls")) {
                set_if(t.get_mut("secretName"), old, new);
            }
        }
        ("Secret", "ServiceAccount") if same_ns => {
            for key in ["imagePullSecrets", "secrets"] {
                for s in each_item(o.get_mut(key)) {
                    set_if(s.get_mut("name"), old, new);
                }
            }
        }
        ("Service", "Ingress") if same_ns => {
            set_if(o.pointer_mut("/spec/defaultBackend/service/name"), old, new);
            for rule in each_item(o.pointer_mut("/spec/rules")) {
                for p in each_item(rule.pointer_mut("/http/paths")) {
                    set_if(p.pointer_mut("/backend/service/name"), old, new);
                }
            }
        }
        ("Service", "StatefulSet") if same_ns => set_if(o.pointer_mut("/spec/serviceName"), old, new),
        ("ServiceAccount", "RoleBinding" | "ClusterRoleBinding") => {
            for s in each_item(o.get_mut("subjects")) {
                let ns = s.get("namespace").and_then(Value::as_str).unwrap_or(namespace);
                if s.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                    && ns == r.namespace
                    && s.get("name").and_then(Value::as_str) == Some(old)
                {
                    // kustomize also writes the namespace of the subject it renames
                    s["name"] = Value::String(new.to_string());
                    s["namespace"] = Value::String(r.namespace.clone());
                }
            }
        }
        ("Role", "RoleBinding")
            if same_ns && o.pointer("/roleRef/kind").and_then(Value::as_str) == Some("Role") =>
        {
            set_if(o.pointer_mut("/roleRef/name"), old, new);
        }
        ("ClusterRole", "RoleBinding" | "ClusterRoleBinding")
            if o.pointer("/roleRef/kind").and_then(Value::as_str) == Some("ClusterRole") =>
        {
            set_if(o.pointer_mut("/roleRef/name"), old, new);
        }
        _ => {}
    }
}

/// Applies `renames` to the references of every resource, all at once: through a placeholder per rename,
/// so a new name that is another rename's old name is not renamed again.
pub fn apply(resources: &mut [Res], renames: &[Rename]) {
    if renames.is_empty() {
        return;
    }
    let placeholder = |i: usize| format!("\u{FDD1}{i}");
    let to_placeholders: Vec<Rename> = renames
        .iter()
        .enumerate()
        .map(|(i, r)| Rename {
            new: placeholder(i),
            ..r.clone()
        })
        .collect();
    let to_names: Vec<Rename> = renames
        .iter()
        .enumerate()
        .map(|(i, r)| Rename {
            old: placeholder(i),
            ..r.clone()
        })
        .collect();
    for res in resources.iter_mut() {
        for r in to_placeholders.iter().chain(&to_names) {
            update(&mut res.obj, r);
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
    )
}
