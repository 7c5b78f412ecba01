//! `generators` and `transformers`: kustomize's builtin plugins, each configured by an object
//! (`apiVersion: builtin`, `kind: PrefixSuffixTransformer`…) in a file or inline. Each configuration is
//! read into what the kustomization fields of the same plugin would say — a generator entry, a one-field
//! kustomization — so the same code runs it; field specs that only narrow which objects a transformer
//! touches (by group, version and kind) select those objects.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::{Object, generate, kustomization::Kustomization};

/// What a generator configuration makes.
pub enum Generated {
    /// A `configMapGenerator` or `secretGenerator` entry.
    KeyValues {
        /// The entry.
        generator: Box<generate::Generator>,
        /// Whether it makes a Secret.
        secret: bool,
    },
    /// Objects as they are.
    Objects(Vec<Object>),
}

/// A transformer configuration: a kustomization with the matching field set, and which objects it may
/// change (all, when the field specs name no kind); or, for labels and annotations, the values and the
/// field specs that say where they go.
pub struct Transform {
    /// The equivalent kustomization.
    pub kustomization: Kustomization,
    /// Group, version and kind filters of its field specs (any matches); empty: every object.
    pub only: Vec<(String, String, String)>,
    /// Labels or annotations merged into the maps its field specs locate.
    pub maps: Option<(Vec<FieldSpec>, BTreeMap<String, String>)>,
}

/// Where a transformer writes: a path (`spec/template/metadata/labels`, `[]` iterating a list) in
/// objects of a group, version and kind (empty: any), created when missing if `create`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSpec {
    /// Group filter.
    pub group: String,
    /// Version filter.
    pub version: String,
    /// Kind filter.
    pub kind: String,
    /// The path's segments.
    pub path: Vec<String>,
    /// Create the path when it is missing.
    pub create: bool,
}

impl FieldSpec {
    /// Whether `o` is of the spec's group, version and kind.
    pub fn matches(&self, o: &Object) -> bool {
        let api_version = o.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
        (self.group.is_empty() || self.group == group)
            && (self.version.is_empty() || self.version == version)
            && (self.kind.is_empty() || self.kind == kind)
    }
}

/// The `fieldSpecs` of `config`.
pub fn specs(config: &Value) -> Vec<FieldSpec> {
    config
        .get("fieldSpecs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|spec| FieldSpec {
            group: str_at(spec, "group").unwrap_or_default().to_string(),
            version: str_at(spec, "version").unwrap_or_default().to_string(),
            kind: str_at(spec, "kind").unwrap_or_default().to_string(),
            path: str_at(spec, "path")
                .unwrap_or_default()
                .split('/')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            create: spec.get("create").and_then(Value::as_bool).unwrap_or(false),
        })
        .collect()
}

/// Merges `values` into the map at `path` below `node` (created when missing, with `create`).
fn merge_at(node: &mut Value, path: &[String], values: &BTreeMap<String, String>, create: bool) {
    visit_path(node, path, create, &mut |map| {
        if map.is_null() && create {
            *map = Value::Object(Map::new());
        }
        if let Some(map) = map.as_object_mut() {
            for (k, v) in values {
                map.insert(k.clone(), Value::String(v.clone()));
            }
        }
    });
}

/// Applies a labels or annotations transformer to every object its field specs match.
pub fn apply_maps<'a>(
    specs: &[FieldSpec],
    values: &BTreeMap<String, String>,
    objects: impl IntoIterator<Item = &'a mut Object>,
) {
    for o in objects {
        let matching: Vec<&FieldSpec> = specs.iter().filter(|s| s.matches(o)).collect();
        for spec in matching {
            merge_at(o, &spec.path, values, spec.create);
        }
    }
}

impl Transform {
    /// Whether `o` is one the transformer may change.
    pub fn selects(&self, o: &Object) -> bool {
        if self.only.is_empty() {
            return true;
        }
        let api_version = o.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
        self.only.iter().any(|(g, v, k)| {
            (g.is_empty() || g == group) && (v.is_empty() || v == version) && (k.is_empty() || k == kind)
        })
    }
}

fn str_at<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str)
}

fn kind_of(config: &Value) -> &str {
    str_at(config, "kind").unwrap_or_default()
}

/// The field specs of `config` that write `path`; an error names any other path (not supported here).
fn field_specs(config: &Value, path: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut only = Vec::new();
    for spec in config
        .get("fieldSpecs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let at = str_at(spec, "path").unwrap_or_default();
        if at != path {
            return Err(format!(
                "{}: fieldSpecs path '{at}' is not supported by driftless yet (only {path})",
                kind_of(config)
            ));
        }
        let filter = (
            str_at(spec, "group").unwrap_or_default().to_string(),
            str_at(spec, "version").unwrap_or_default().to_string(),
            str_at(spec, "kind").unwrap_or_default().to_string(),
        );
        if filter == Default::default() {
            // one spec without a filter: every object
            return Ok(Vec::new());
        }
        only.push(filter);
    }
    Ok(only)
}

/// A generator configuration.
pub fn generator(config: &Value) -> Result<Generated, String> {
    match kind_of(config) {
        kind @ ("ConfigMapGenerator" | "SecretGenerator") => {
            let mut entry = Map::new();
            let meta = config.get("metadata").cloned().unwrap_or_default();
            entry.insert("name".into(), meta.get("name").cloned().unwrap_or_default());
            if let Some(ns) = meta.get("namespace") {
                entry.insert("namespace".into(), ns.clone());
            }
            for key in ["behavior", "literals", "files", "envs", "env", "options", "type"] {
                if let Some(v) = config.get(key) {
                    entry.insert(key.into(), v.clone());
                }
            }
            let generator =
                serde_json::from_value(Value::Object(entry)).map_err(|e| format!("{kind}: {e}"))?;
            Ok(Generated::KeyValues {
                generator,
                secret: kind == "SecretGenerator",
            })
        }
        "IAMPolicyGenerator" => {
            let cloud = str_at(config, "cloud").unwrap_or_default();
            if cloud != "gke" {
                return Err(format!(
                    "IAMPolicyGenerator: cloud '{cloud}' is not supported (only gke)"
                ));
            }
            let service = config.get("kubernetesService").cloned().unwrap_or_default();
            let account = config.get("serviceAccount").cloned().unwrap_or_default();
            let mut metadata = json!({
                "name": str_at(&service, "name").unwrap_or_default(),
                "annotations": {"iam.gke.io/gcp-service-account": format!(
                    "{}@{}.iam.gserviceaccount.com",
                    str_at(&account, "name").unwrap_or_default(),
                    str_at(&account, "projectId").unwrap_or_default()
                )},
            });
            if let Some(ns) = str_at(&service, "namespace") {
                metadata["namespace"] = json!(ns);
            }
            Ok(Generated::Objects(vec![
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}),
            ]))
        }
        other => Err(format!(
            "generator kind '{other}' is not supported by driftless yet"
        )),
    }
}

fn parse<T: serde::de::DeserializeOwned>(kind: &str, v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("{kind}: {e}"))
}

/// A transformer configuration.
pub fn transformer(config: &Value) -> Result<Transform, String> {
    let kind = kind_of(config);
    let mut k = Kustomization::default();
    let get = |key: &str| config.get(key).cloned().unwrap_or(Value::Null);
    let only = match kind {
        "PrefixSuffixTransformer" => {
            k.name_prefix = str_at(config, "prefix").map(String::from);
            k.name_suffix = str_at(config, "suffix").map(String::from);
            field_specs(config, "metadata/name")?
        }
        // kustomize v5's separate builtins
        "PrefixTransformer" => {
            k.name_prefix = str_at(config, "prefix").map(String::from);
            field_specs(config, "metadata/name")?
        }
        "SuffixTransformer" => {
            k.name_suffix = str_at(config, "suffix").map(String::from);
            field_specs(config, "metadata/name")?
        }
        // generated objects get their hash, and the output its order, at the end of every build (a
        // kustomization's `sortOptions` or the legacy order, as kustomize sorts last whatever ran before)
        "HashTransformer" | "SortOrderTransformer" => Vec::new(),
        "NamespaceTransformer" => {
            k.namespace = config
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(String::from);
            if config.get("unsetOnly").and_then(Value::as_bool) == Some(true) {
                return Err("NamespaceTransformer: unsetOnly is not supported by driftless yet".into());
            }
            field_specs(config, "metadata/namespace")?
        }
        "LabelTransformer" | "AnnotationsTransformer" => {
            let key = if kind == "LabelTransformer" {
                "labels"
            } else {
                "annotations"
            };
            let values: BTreeMap<String, String> = parse(kind, get(key))?;
            return Ok(Transform {
                kustomization: k,
                only: Vec::new(),
                maps: Some((specs(config), values)),
            });
        }
        "PatchTransformer" => {
            k.patches = vec![parse(
                kind,
                json!({"path": get("path"), "patch": get("patch"), "target": get("target"), "options": get("options")}),
            )?];
            Vec::new()
        }
        "PatchStrategicMergeTransformer" => {
            let mut entries: Vec<String> = parse(kind, config.get("paths").cloned().unwrap_or(json!([])))?;
            if let Some(patches) = str_at(config, "patches") {
                entries.push(patches.to_string());
            }
            k.patches_strategic_merge = entries;
            Vec::new()
        }
        "PatchJson6902Transformer" => {
            k.patches_json6902 = vec![parse(
                kind,
                json!({"path": get("path"), "patch": get("jsonOp"), "target": get("target")}),
            )?];
            Vec::new()
        }
        "ImageTagTransformer" => {
            k.images = vec![parse(kind, get("imageTag"))?];
            Vec::new()
        }
        "ReplicaCountTransformer" => {
            k.replicas = vec![parse(kind, get("replica"))?];
            Vec::new()
        }
        "ReplacementTransformer" => {
            k.replacements = parse(kind, config.get("replacements").cloned().unwrap_or(json!([])))?;
            Vec::new()
        }
        other => {
            return Err(format!(
                "transformer kind '{other}' is not supported by driftless yet"
            ));
        }
    };
    Ok(Transform {
        kustomization: k,
        only,
        maps: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_specs_narrow_a_transformer_to_their_kinds() {
        let config = json!({"kind": "PrefixSuffixTransformer", "suffix": "-x",
            "fieldSpecs": [{"path": "metadata/name", "kind": "ClusterRole"}]});
        let t = transformer(&config).unwrap();
        assert_eq!(t.kustomization.name_suffix.as_deref(), Some("-x"));
        assert!(t.selects(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole"})));
        assert!(!t.selects(&json!({"apiVersion": "v1", "kind": "ServiceAccount"})));
        let everywhere = json!({"kind": "PrefixSuffixTransformer", "prefix": "p-", "fieldSpecs": [{"path": "metadata/name"}]});
        assert!(
            transformer(&everywhere)
                .unwrap()
                .selects(&json!({"kind": "Service"}))
        );
        let elsewhere =
            json!({"kind": "PrefixSuffixTransformer", "prefix": "p-", "fieldSpecs": [{"path": "spec/name"}]});
        assert!(transformer(&elsewhere).err().unwrap().contains("spec/name"));
        let unknown = json!({"kind": "HelmChartInflationGenerator"});
        assert!(
            generator(&unknown)
                .err()
                .unwrap()
                .contains("HelmChartInflationGenerator")
        );
    }

    #[test]
    fn labels_go_where_the_field_specs_say_and_lists_are_walked() {
        let t = transformer(
            &json!({"kind": "LabelTransformer", "labels": {"team": "a"}, "fieldSpecs": [
            {"path": "metadata/labels", "create": true},
            {"path": "spec/volumeClaimTemplates[]/metadata/labels", "kind": "StatefulSet", "create": true},
            {"path": "spec/selector/matchLabels", "kind": "Deployment"}]}),
        )
        .unwrap();
        let (specs, values) = t.maps.unwrap();
        let mut objects = vec![
            json!({"kind": "StatefulSet", "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}}]}}),
            json!({"kind": "Deployment", "spec": {}}),
        ];
        apply_maps(&specs, &values, &mut objects);
        assert_eq!(objects[0]["metadata"]["labels"]["team"], "a");
        assert_eq!(
            objects[0]["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"]["team"],
            "a"
        );
        assert_eq!(objects[1]["metadata"]["labels"]["team"], "a");
        assert!(
            objects[1]["spec"].get("selector").is_none(),
            "not created without create"
        );
    }

    #[test]
    fn configurations_add_field_specs_and_name_references_and_refuse_the_rest() {
        let c = configuration(&json!({
            "labels": [{"path": "spec/selectors/labels", "kind": "SampleResource", "create": true}],
            "nameReference": [{"kind": "Secret", "fieldSpecs": [{"path": "data/secretName", "kind": "ConfigMap"}]}],
        }))
        .unwrap();
        assert_eq!(c.labels[0].path, ["spec", "selectors", "labels"]);
        assert!(c.labels[0].create);
        assert_eq!(
            c.name_references,
            [crate::refs::CustomRef {
                referred: "Secret".into(),
                referrer: "ConfigMap".into(),
                path: vec!["data".into(), "secretName".into()],
            }]
        );
        let refused = configuration(&json!({"nameReferences": []})).err().unwrap();
        assert!(refused.contains("nameReferences"), "{refused}");
    }

    #[test]
    fn a_configured_name_prefix_on_metadata_name_replaces_the_default() {
        let c =
            configuration(&json!({"namePrefix": [{"path": "spec/other", "kind": "Deployment"}]})).unwrap();
        let paths: Vec<_> = c
            .prefix_specs(false)
            .into_iter()
            .map(|s| (s.kind, s.path.join("/")))
            .collect();
        assert_eq!(
            paths,
            [
                (String::new(), "metadata/name".to_string()),
                ("Deployment".into(), "spec/other".into())
            ]
        );
        let c =
            configuration(&json!({"namePrefix": [{"path": "metadata/name", "kind": "ConfigMap"}]})).unwrap();
        assert_eq!(c.prefix_specs(false).len(), 1, "only the ConfigMaps' names");
        assert_eq!(c.prefix_specs(true).len(), 1, "the suffix keeps its default");
    }

    #[test]
    fn the_gke_iam_generator_makes_an_annotated_service_account() {
        let Generated::Objects(objects) = generator(&json!({"kind": "IAMPolicyGenerator", "cloud": "gke",
            "kubernetesService": {"name": "ksa", "namespace": "ns"},
            "serviceAccount": {"name": "gsa", "projectId": "p"}}))
        .unwrap() else {
            panic!("objects")
        };
        assert_eq!(
            objects,
            [
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ksa", "namespace": "ns",
                "annotations": {"iam.gke.io/gcp-service-account": "gsa@p.iam.gserviceaccount.com"}}})
            ]
        );
    }
}

/// A `configurations` file (kustomize's transformer configuration): field specs added to the built-in
/// transformers' own.
#[derive(Default)]
pub struct Configuration {
    /// Where every `labels` entry's pairs also go.
    pub labels: Vec<FieldSpec>,
    /// Where `commonLabels` also go.
    pub common_labels: Vec<FieldSpec>,
    /// Where `commonAnnotations` also go.
    pub common_annotations: Vec<FieldSpec>,
    /// Name references beyond the built-in ones.
    pub name_references: Vec<crate::refs::CustomRef>,
    /// Where `namePrefix` goes ([`Configuration::prefix_specs`]).
    pub name_prefix: Vec<FieldSpec>,
    /// Where `nameSuffix` goes.
    pub name_suffix: Vec<FieldSpec>,
    /// Where `namespace` also goes.
    pub namespace: Vec<FieldSpec>,
    /// Where vars may also be used.
    pub var_references: Vec<FieldSpec>,
    /// Where `images` also apply.
    pub images: Vec<FieldSpec>,
    /// Where `replicas` also apply.
    pub replicas: Vec<FieldSpec>,
    /// Where a `labels` entry with `includeTemplates` also goes.
    pub template_labels: Vec<FieldSpec>,
    /// Where a `labels` entry with `includeVolumeClaimTemplates` also goes.
    pub volume_claim_template_labels: Vec<FieldSpec>,
    /// The custom OpenAPI schema (`openapi.path`) strategic merge patches follow.
    pub openapi: Option<crate::patch::Schema>,
}

impl Configuration {
    /// The field specs a name prefix (`suffix` false) or suffix goes to: the configured ones, with
    /// kustomize's default `metadata/name` of every kind unless they name `metadata/name` themselves (then
    /// only the kinds they name are renamed — what `kubectl kustomize` does).
    pub fn prefix_specs(&self, suffix: bool) -> Vec<FieldSpec> {
        let custom = if suffix {
            &self.name_suffix
        } else {
            &self.name_prefix
        };
        let name = |s: &FieldSpec| s.path == ["metadata", "name"];
        let mut out = Vec::new();
        if !custom.iter().any(name) {
            out.push(FieldSpec {
                path: vec!["metadata".into(), "name".into()],
                ..Default::default()
            });
        }
        out.extend(custom.iter().cloned());
        out
    }
}

/// Visits the values at `path` below `node` (`x[]` or a list met on the way: each item), creating the
/// path's maps and its last field (as `Null`) when `create`.
pub fn visit_path(node: &mut Value, path: &[String], create: bool, f: &mut dyn FnMut(&mut Value)) {
    if let Value::Array(items) = node {
        for item in items {
            visit_path(item, path, create, f);
        }
        return;
    }
    let Some((first, rest)) = path.split_first() else {
        f(node);
        return;
    };
    let (name, each) = match first.strip_suffix("[]") {
        Some(name) => (name, true),
        None => (first.as_str(), false),
    };
    let Some(map) = node.as_object_mut() else {
        return;
    };
    if !map.contains_key(name) {
        if !create || each {
            return;
        }
        let fresh = if rest.is_empty() {
            Value::Null
        } else {
            Value::Object(Map::new())
        };
        map.insert(name.to_string(), fresh);
    }
    visit_path(map.get_mut(name).expect("present"), rest, create, f);
}

/// Reads a `configurations` file: kustomize's transformer configuration keys (`namePrefix`, `nameSuffix`,
/// `namespace`, `commonLabels`, `labels`, `commonAnnotations`, `nameReference`, `varReference`,
/// `images`, `replicas`, `templateLabels`, `volumeClaimTemplateLabels`); another key is refused, naming it.
pub fn configuration(doc: &Value) -> Result<Configuration, String> {
    let mut c = Configuration::default();
    for (key, value) in doc.as_object().into_iter().flatten() {
        let wrapped = json!({"fieldSpecs": value});
        match key.as_str() {
            "labels" => c.labels = specs(&wrapped),
            "commonLabels" => c.common_labels = specs(&wrapped),
            "commonAnnotations" => c.common_annotations = specs(&wrapped),
            "namePrefix" => c.name_prefix = specs(&wrapped),
            "nameSuffix" => c.name_suffix = specs(&wrapped),
            "namespace" => c.namespace = specs(&wrapped),
            "varReference" => c.var_references = specs(&wrapped),
            "images" => c.images = specs(&wrapped),
            "replicas" => c.replicas = specs(&wrapped),
            "templateLabels" => c.template_labels = specs(&wrapped),
            "volumeClaimTemplateLabels" => c.volume_claim_template_labels = specs(&wrapped),
            "nameReference" => {
                for r in value.as_array().into_iter().flatten() {
                    let referred = str_at(r, "kind").unwrap_or_default().to_string();
                    for spec in specs(r) {
                        c.name_references.push(crate::refs::CustomRef {
                            referred: referred.clone(),
                            referrer: spec.kind.clone(),
                            path: spec.path.clone(),
                        });
                    }
                }
            }
            other => {
                return Err(format!(
                    "configurations: '{other}' field specs are not supported by driftless yet"
                ));
            }
        }
    }
    Ok(c)
}
