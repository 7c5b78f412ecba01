//! The built-in transformers of one kustomization level, in kustomize's order: namespace, name
//! prefix/suffix, labels, annotations, replicas, images. Field paths follow kustomize's default field
//! specs.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::{
    Object,
    kustomization::{Image, Kustomization, Label},
    order::field,
};

/// An object and the name it had before any prefix or suffix (for matching by name).
#[derive(Debug, Clone)]
pub struct Res {
    /// The object.
    pub obj: Object,
    /// Its name as written in its file.
    pub original_name: String,
    /// Its namespace as written (or generated), empty for none.
    pub original_namespace: String,
    /// The names it had at the end of each level below the current one (kustomize's previous ids), oldest
    /// first: a patch, replacement or generator of a later level may name it by any of them.
    pub previous_names: Vec<String>,
    /// Generated with a content-hash suffix to come (at the end of the build).
    pub hashed: bool,
    /// The vars bound to it (by the level that declares them, as kustomize binds them).
    pub vars: Vec<String>,
}

impl Res {
    /// A resource read or generated as `obj`, its name as written.
    pub fn new(obj: Object, hashed: bool) -> Self {
        let original_name = field(&obj, &["metadata", "name"]).to_string();
        let original_namespace = field(&obj, &["metadata", "namespace"]).to_string();
        Self {
            obj,
            original_name,
            original_namespace,
            previous_names: Vec::new(),
            hashed,
            vars: Vec::new(),
        }
    }

    /// Every name it is known by: as written, at the end of each earlier level, and now.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.original_name.as_str())
            .chain(self.previous_names.iter().map(String::as_str))
            .chain(std::iter::once(field(&self.obj, &["metadata", "name"])))
    }

    /// Whether it is known by `name` ([`Res::names`]).
    pub fn known_as(&self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }

    /// Records its current name among the previous ones (a level is done with it).
    pub fn end_level(&mut self) {
        let current = field(&self.obj, &["metadata", "name"]).to_string();
        if current != self.original_name && self.previous_names.last() != Some(&current) {
            self.previous_names.push(current);
        }
    }
}

/// Kinds that are not namespaced (no namespace is set on them).
pub(crate) const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "APIService",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "PodSecurityPolicy",
    "Node",
    "ComponentStatus",
    "CertificateSigningRequest",
    "FlowSchema",
    "PriorityLevelConfiguration",
];

const WORKLOADS: &[&str] = &["Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"];

fn kind(o: &Object) -> &str {
    field(o, &["kind"])
}

/// The map at `path`, created (as empty maps) when `create`; `None` when absent and not created or
/// when something on the way is not a map.
fn map_at<'a>(o: &'a mut Object, path: &[&str], create: bool) -> Option<&'a mut Map<String, Value>> {
    let mut cur = o;
    for key in path {
        let obj = cur.as_object_mut()?;
        if !obj.contains_key(*key) || obj[*key].is_null() {
            if !create {
                return None;
            }
            obj.insert((*key).to_string(), Value::Object(Map::new()));
        }
        cur = obj.get_mut(*key)?;
    }
    cur.as_object_mut()
}

fn set_all(o: &mut Object, path: &[&str], create: bool, pairs: &BTreeMap<String, String>) {
    if pairs.is_empty() {
        return;
    }
    if let Some(map) = map_at(o, path, create) {
        for (k, v) in pairs {
            map.insert(k.clone(), Value::String(v.clone()));
        }
    }
}

/// Applies one kustomization level's metadata transformers (namespace, prefix/suffix, labels,
/// annotations) to the resources `selected` accepts (all, but for a transformer configuration's field
/// specs); references in every object follow the renames.
pub fn apply_metadata_to(
    k: &Kustomization,
    resources: &mut [Res],
    selected: &dyn Fn(&Object) -> bool,
    config: &crate::plugins::Configuration,
) {
    let custom = config.name_references.as_slice();
    let (prefixes, suffixes) = (config.prefix_specs(false), config.prefix_specs(true));
    let mut renames = Vec::new();
    // ServiceAccounts and Services the namespace moves: kind, name, old namespace, new namespace
    let mut moves: Vec<Move> = Vec::new();
    for res in resources.iter_mut() {
        if !selected(&res.obj) {
            continue;
        }
        let o = &mut res.obj;
        if let Some(ns) = &k.namespace {
            let is_namespace = kind(o) == "Namespace";
            let scoped = !CLUSTER_SCOPED.contains(&kind(o));
            if matches!(kind(o), "ServiceAccount" | "Service") && field(o, &["metadata", "namespace"]) != ns {
                moves.push((
                    kind(o).to_string(),
                    field(o, &["metadata", "name"]).to_string(),
                    field(o, &["metadata", "namespace"]).to_string(),
                    ns.clone(),
                ));
            }
            // the namespace transformer's other field specs: an APIService's service (created), a CRD's
            // conversion webhook service
            let group = field(o, &["apiVersion"])
                .split_once('/')
                .map(|(g, _)| g.to_string());
            match (kind(o), group.as_deref()) {
                ("APIService", Some("apiregistration.k8s.io")) => {
                    if let Some(service) = map_at(o, &["spec", "service"], true) {
                        service.insert("namespace".into(), Value::String(ns.clone()));
                    }
                }
                ("CustomResourceDefinition", Some("apiextensions.k8s.io")) => {
                    let path = ["spec", "conversion", "webhook", "clientConfig", "service"];
                    if let Some(service) = map_at(o, &path, false)
                        && service.contains_key("namespace")
                    {
                        service.insert("namespace".into(), Value::String(ns.clone()));
                    }
                }
                _ => {}
            }
            // and where a `configurations` file says (kustomize's default ones are the above)
            let specs: Vec<_> = config.namespace.iter().filter(|s| s.matches(o)).collect();
            for spec in specs {
                if spec.path == ["metadata", "namespace"] || spec.path == ["metadata", "name"] {
                    continue;
                }
                crate::plugins::visit_path(o, &spec.path, spec.create, &mut |v| {
                    if v.is_string() || v.is_null() {
                        *v = Value::String(ns.clone());
                    }
                });
            }
            let old_name = field(o, &["metadata", "name"]).to_string();
            if let Some(meta) = map_at(o, &["metadata"], true) {
                if scoped {
                    meta.insert("namespace".into(), Value::String(ns.clone()));
                } else if is_namespace {
                    // kustomize renames Namespace objects to the target namespace
                    meta.insert("name".into(), Value::String(ns.clone()));
                }
            }
            // a reference to the Namespace (a `configurations` nameReference) follows
            if is_namespace && old_name != *ns && custom.iter().any(|c| c.referred == "Namespace") {
                renames.push(crate::refs::Rename::of(o, old_name, ns.clone()));
            }
            // setRoleBindingSubjects: defaultOnly — every subject named "default" (the namespace's
            // default ServiceAccount, as kustomize reads it: whatever its kind or namespace) is put in it
            if matches!(kind(o), "RoleBinding" | "ClusterRoleBinding")
                && let Some(subjects) = o.get_mut("subjects").and_then(|s| s.as_array_mut())
            {
                for subject in subjects {
                    if subject.get("name").and_then(|n| n.as_str()) == Some("default")
                        && let Some(subject) = subject.as_object_mut()
                    {
                        subject.insert("namespace".into(), Value::String(ns.clone()));
                    }
                }
            }
        }
        // NB: kustomize's prefix and suffix skip CRDs, Namespaces and APIServices
        let api_service =
            kind(o) == "APIService" && field(o, &["apiVersion"]).starts_with("apiregistration.k8s.io/");
        if (k.name_prefix.is_some() || k.name_suffix.is_some())
            && kind(o) != "CustomResourceDefinition"
            && kind(o) != "Namespace"
            && !api_service
        {
            // the prefix and suffix go where their field specs say: the name (by default of every
            // kind), and any other string field a `configurations` file names
            let name = field(o, &["metadata", "name"]).to_string();
            let is_name = |s: &&crate::plugins::FieldSpec| s.path == ["metadata", "name"];
            let prefix = k
                .name_prefix
                .as_deref()
                .filter(|_| prefixes.iter().filter(is_name).any(|s| s.matches(o)));
            let suffix = k
                .name_suffix
                .as_deref()
                .filter(|_| suffixes.iter().filter(is_name).any(|s| s.matches(o)));
            for (specs, value, at_end) in [
                (&prefixes, &k.name_prefix, false),
                (&suffixes, &k.name_suffix, true),
            ] {
                let Some(value) = value.as_deref() else { continue };
                let matching: Vec<_> = specs.iter().filter(|s| !is_name(s) && s.matches(o)).collect();
                for spec in matching {
                    crate::plugins::visit_path(o, &spec.path, false, &mut |v| {
                        if let Some(text) = v.as_str() {
                            *v = Value::String(if at_end {
                                format!("{text}{value}")
                            } else {
                                format!("{value}{text}")
                            });
                        }
                    });
                }
            }
            let renamed = format!("{}{name}{}", prefix.unwrap_or(""), suffix.unwrap_or(""));
            if renamed != name
                && let Some(meta) = map_at(o, &["metadata"], true)
            {
                meta.insert("name".into(), Value::String(renamed.clone()));
            }
            if renamed != name
                && (crate::refs::referred(kind(o)) || custom.iter().any(|c| c.referred == kind(o)))
            {
                renames.push(crate::refs::Rename::of(o, name, renamed));
            }
        }
        if !k.common_labels.is_empty() {
            labels(o, &k.common_labels, true, true, true);
        }
        for Label {
            pairs,
            include_selectors,
            include_templates,
            include_volume_claim_templates,
            ..
        } in &k.labels
        {
            labels(
                o,
                pairs,
                *include_selectors,
                *include_selectors || *include_templates,
                // NB: kustomize v5.5 puts template labels on volume claim templates too
                *include_selectors || *include_templates || *include_volume_claim_templates,
            );
        }
        annotations(o, &k.common_annotations);
    }
    follow_moves(resources, &moves);
    crate::refs::apply(resources, &renames, custom);
}

/// An object the namespace transformer moved: kind, name, old namespace, new namespace.
type Move = (String, String, String, String);

/// References follow what they name to the namespace it was moved to, as kustomize's name references do
/// (before renames, which are looked up in the new namespace): a binding's ServiceAccount subjects, a
/// webhook configuration's services.
fn follow_moves(resources: &mut [Res], moves: &[Move]) {
    if moves.is_empty() {
        return;
    }
    let follow = |r: &mut Value, kind: &str| {
        let name = r.get("name").and_then(|n| n.as_str()).unwrap_or_default();
        let ns = r.get("namespace").and_then(|n| n.as_str()).unwrap_or_default();
        // NB: an object without a namespace is in "default", as kustomize identifies it
        let same =
            |a: &str, b: &str| a == b || (a.is_empty() && b == "default") || (b.is_empty() && a == "default");
        if let Some((_, _, _, to)) = moves
            .iter()
            .find(|(k, n, from, _)| k == kind && n == name && same(from, ns))
        {
            r["namespace"] = Value::String(to.clone());
        }
    };
    for res in resources.iter_mut() {
        match kind(&res.obj) {
            "RoleBinding" | "ClusterRoleBinding" => {
                for s in res
                    .obj
                    .get_mut("subjects")
                    .and_then(|s| s.as_array_mut())
                    .into_iter()
                    .flatten()
                {
                    if s.get("kind").and_then(|k| k.as_str()) == Some("ServiceAccount") {
                        follow(s, "ServiceAccount");
                    }
                }
            }
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration" => {
                for w in res
                    .obj
                    .get_mut("webhooks")
                    .and_then(|w| w.as_array_mut())
                    .into_iter()
                    .flatten()
                {
                    if let Some(service) = w.pointer_mut("/clientConfig/service").filter(|s| s.is_object()) {
                        follow(service, "Service");
                    }
                }
            }
            _ => {}
        }
    }
}

/// Applies one kustomization level's workload transformers (replicas, images), after JSON 6902 patches.
pub fn apply_workloads(
    k: &Kustomization,
    resources: &mut [Res],
    config: &crate::plugins::Configuration,
) -> Result<(), String> {
    for r in &k.replicas {
        let replicated = |res: &Res| {
            (matches!(
                kind(&res.obj),
                "Deployment" | "ReplicaSet" | "StatefulSet" | "ReplicationController"
            ) || config.replicas.iter().any(|s| s.matches(&res.obj)))
                && res.known_as(&r.name)
        };
        if !resources.iter().any(replicated) {
            return Err(format!(
                "resource with name {} does not match a config with the following GVK [Deployment.[noVer].[noGrp] StatefulSet.[noVer].[noGrp] ReplicaSet.[noVer].[noGrp] ReplicationController.[noVer].[noGrp]]",
                r.name
            ));
        }
    }
    for res in resources.iter_mut() {
        let o = &mut res.obj;
        for r in &k.replicas {
            let name = field(o, &["metadata", "name"]);
            let replicated = matches!(
                kind(o),
                "Deployment" | "ReplicaSet" | "StatefulSet" | "ReplicationController"
            );
            if replicated
                && (r.name == name || r.name == res.original_name || res.previous_names.contains(&r.name))
                && let Some(spec) = map_at(o, &["spec"], true)
            {
                spec.insert("replicas".into(), Value::from(r.count));
            }
            let named = r.name == field(o, &["metadata", "name"])
                || r.name == res.original_name
                || res.previous_names.contains(&r.name);
            if named {
                let specs: Vec<_> = config.replicas.iter().filter(|s| s.matches(o)).collect();
                for spec in specs {
                    crate::plugins::visit_path(o, &spec.path, spec.create, &mut |v| {
                        *v = Value::from(r.count)
                    });
                }
            }
        }
        if !k.images.is_empty() {
            images(o, &k.images);
            // image volumes, and the fields a `configurations` file names
            let volumes = |base: &str| crate::plugins::FieldSpec {
                path: format!("{base}volumes[]/image/reference")
                    .split('/')
                    .map(String::from)
                    .collect(),
                ..Default::default()
            };
            let defaults = [volumes("spec/"), volumes("spec/template/spec/")];
            let specs: Vec<_> = defaults
                .iter()
                .chain(&config.images)
                .filter(|s| s.matches(o))
                .collect();
            for spec in specs {
                crate::plugins::visit_path(o, &spec.path, false, &mut |v| {
                    if let Some(image) = v.as_str() {
                        *v = Value::String(rewrite_image(image, &k.images));
                    }
                });
            }
        }
    }
    Ok(())
}

fn labels(o: &mut Object, pairs: &BTreeMap<String, String>, selectors: bool, templates: bool, claims: bool) {
    set_all(o, &["metadata", "labels"], true, pairs);
    let k = kind(o).to_string();
    if selectors {
        match k.as_str() {
            "Service" => set_all(o, &["spec", "selector"], true, pairs),
            "ReplicationController" => set_all(o, &["spec", "selector"], true, pairs),
            w if WORKLOADS.contains(&w) => set_all(o, &["spec", "selector", "matchLabels"], true, pairs),
            "Job" | "PodDisruptionBudget" => set_all(o, &["spec", "selector", "matchLabels"], false, pairs),
            "CronJob" => set_all(
                o,
                &["spec", "jobTemplate", "spec", "selector", "matchLabels"],
                false,
                pairs,
            ),
            "NetworkPolicy" => set_all(o, &["spec", "podSelector", "matchLabels"], false, pairs),
            _ => {}
        }
    }
    if templates {
        match k.as_str() {
            w if WORKLOADS.contains(&w) || w == "Job" || w == "ReplicationController" => {
                set_all(o, &["spec", "template", "metadata", "labels"], true, pairs)
            }
            "CronJob" => {
                set_all(o, &["spec", "jobTemplate", "metadata", "labels"], true, pairs);
                set_all(
                    o,
                    &["spec", "jobTemplate", "spec", "template", "metadata", "labels"],
                    true,
                    pairs,
                );
            }
            _ => {}
        }
    }
    if claims
        && kind(o) == "StatefulSet"
        && let Some(claims) = o
            .pointer_mut("/spec/volumeClaimTemplates")
            .and_then(|v| v.as_array_mut())
    {
        for claim in claims {
            set_all(claim, &["metadata", "labels"], true, pairs);
        }
    }
}

fn annotations(o: &mut Object, pairs: &BTreeMap<String, String>) {
    if pairs.is_empty() {
        return;
    }
    set_all(o, &["metadata", "annotations"], true, pairs);
    match kind(o).to_string().as_str() {
        w if WORKLOADS.contains(&w) || w == "Job" || w == "ReplicationController" => {
            set_all(o, &["spec", "template", "metadata", "annotations"], true, pairs)
        }
        "CronJob" => {
            set_all(
                o,
                &["spec", "jobTemplate", "metadata", "annotations"],
                true,
                pairs,
            );
            set_all(
                o,
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "metadata",
                    "annotations",
                ],
                true,
                pairs,
            );
        }
        _ => {}
    }
}

/// Splits `registry:5000/name:tag@sha256:…` into (name, tag, digest).
pub fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

fn images(o: &mut Object, overrides: &[Image]) {
    match o {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if (key == "containers" || key == "initContainers") && value.is_array() {
                    for c in value.as_array_mut().into_iter().flatten() {
                        if let Some(image) = c.get("image").and_then(|i| i.as_str()).map(str::to_string) {
                            c["image"] = Value::String(rewrite_image(&image, overrides));
                        }
                    }
                } else {
                    images(value, overrides);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| images(i, overrides)),
        _ => {}
    }
}

fn rewrite_image(image: &str, overrides: &[Image]) -> String {
    let (name, tag, digest) = split_image(image);
    let Some(o) = overrides.iter().find(|o| o.name == name) else {
        return image.to_string();
    };
    let new_name = o.new_name.as_deref().unwrap_or(name);
    if let Some(d) = &o.digest {
        return format!("{new_name}@{d}");
    }
    if let Some(t) = &o.new_tag {
        return format!("{new_name}:{t}");
    }
    match (tag, digest) {
        (_, Some(d)) => format!("{new_name}@{d}"),
        (Some(t), None) => format!("{new_name}:{t}"),
        (None, None) => new_name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split_with_registry_ports_and_digests() {
        assert_eq!(split_image("nginx"), ("nginx", None, None));
        assert_eq!(split_image("nginx:1.25"), ("nginx", Some("1.25"), None));
        assert_eq!(
            split_image("reg:5000/team/app:v1"),
            ("reg:5000/team/app", Some("v1"), None)
        );
        assert_eq!(
            split_image("reg:5000/app@sha256:abc"),
            ("reg:5000/app", None, Some("sha256:abc"))
        );
        assert_eq!(
            split_image("app:v1@sha256:abc"),
            ("app", Some("v1"), Some("sha256:abc"))
        );
    }
}
