//! The kustomization file: the fields this engine implements, and a clear error for every other one.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{Error, Result};

/// The file names kustomize looks for, in its order.
pub const FILE_NAMES: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Fields implemented here.
const IMPLEMENTED: &[&str] = &[
    "configurations",
    "buildMetadata",
    "openapi",
    "generators",
    "transformers",
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "bases",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "images",
    "replicas",
    "crds",
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "components",
    "sortOptions",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "replacements",
    "vars",
];

/// kustomize fields not implemented yet: an error naming them, never silently ignored.
const NOT_YET: &[&str] = &[
    "validators",
    "helmCharts",
    "helmGlobals",
    "helmChartInflationGenerator",
];

/// A parsed kustomization.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kustomization {
    /// `Kustomization` or `Component`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Files and directories to include.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Deprecated alias of `resources`.
    #[serde(default)]
    pub bases: Vec<String>,
    /// Namespace to set on namespaced objects.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Prefix for names.
    #[serde(default)]
    pub name_prefix: Option<String>,
    /// Suffix for names.
    #[serde(default)]
    pub name_suffix: Option<String>,
    /// Labels set on metadata, selectors and templates.
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    /// Label sets with explicit selector/template behaviour.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// Annotations set on metadata and templates.
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    /// Image overrides.
    #[serde(default)]
    pub images: Vec<Image>,
    /// Replica overrides.
    #[serde(default)]
    pub replicas: Vec<Replica>,
    /// CRD files (accepted; their fieldspecs matter for name references, part 2).
    #[serde(default)]
    pub crds: Vec<String>,
    /// Patches (strategic merge or JSON 6902), inline or from a file, optionally targeted.
    #[serde(default)]
    pub patches: Vec<PatchEntry>,
    /// Strategic merge patches: file paths or inline YAML (deprecated form).
    #[serde(default)]
    pub patches_strategic_merge: Vec<String>,
    /// JSON 6902 patches with a target (deprecated form).
    #[serde(default)]
    pub patches_json6902: Vec<PatchEntry>,
    /// Components: kustomizations of kind Component applied to what is accumulated so far.
    #[serde(default)]
    pub components: Vec<String>,
    /// The output order (top-level kustomization only).
    #[serde(default)]
    pub sort_options: Option<SortOptions>,
    /// ConfigMaps to generate.
    #[serde(default)]
    pub config_map_generator: Vec<crate::generate::Generator>,
    /// Secrets to generate.
    #[serde(default)]
    pub secret_generator: Vec<crate::generate::Generator>,
    /// Options of every generator of this kustomization.
    #[serde(default)]
    pub generator_options: Option<crate::generate::Options>,
    /// Values copied from one object's field into others'.
    #[serde(default)]
    pub replacements: Vec<crate::replace::Replacement>,
    /// `$(NAME)` variables (deprecated by kustomize, still in use).
    #[serde(default)]
    pub vars: Vec<crate::vars::Var>,
    /// Transformer configuration files: more field specs for the built-in transformers.
    #[serde(default)]
    pub configurations: Vec<String>,
    /// Generator configurations (kustomize's builtin plugins): files, or inline YAML.
    #[serde(default)]
    pub generators: Vec<String>,
    /// Transformer configurations (kustomize's builtin plugins): files, or inline YAML.
    #[serde(default)]
    pub transformers: Vec<String>,
    /// `originAnnotations`, `transformerAnnotations`, `managedByLabel` ([`crate::origin`]).
    #[serde(default)]
    pub build_metadata: Vec<String>,
    /// `path` of a custom OpenAPI schema, or `version` of kustomize's builtin one.
    #[serde(default)]
    pub openapi: BTreeMap<String, String>,
}

/// `sortOptions`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct SortOptions {
    /// `legacy` (the default) or `fifo` (input order).
    #[serde(default)]
    pub order: Option<String>,
    /// Custom kind orders for `legacy`.
    #[serde(default)]
    pub legacy_sort_options: Option<LegacySortOptions>,
}

/// Custom kind orders of the legacy sort.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct LegacySortOptions {
    /// Kinds first, in this order.
    #[serde(default)]
    pub order_first: Vec<String>,
    /// Kinds last, in this order.
    #[serde(default)]
    pub order_last: Vec<String>,
}

/// An entry of `patches` or `patchesJson6902`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct PatchEntry {
    /// A file with the patch.
    #[serde(default)]
    pub path: Option<String>,
    /// The patch inline.
    #[serde(default)]
    pub patch: Option<String>,
    /// The objects it applies to.
    #[serde(default)]
    pub target: Option<crate::patch::Target>,
    /// kustomize's patch options (`allowNameChange`, `allowKindChange`).
    #[serde(default)]
    pub options: Option<BTreeMap<String, bool>>,
}

/// An entry of `labels`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct Label {
    /// The labels.
    #[serde(default)]
    pub pairs: BTreeMap<String, String>,
    /// Also set them in selectors (and templates).
    #[serde(default)]
    pub include_selectors: bool,
    /// Also set them in pod templates.
    #[serde(default)]
    pub include_templates: bool,
    /// Also set them in a StatefulSet's volume claim templates.
    #[serde(default)]
    pub include_volume_claim_templates: bool,
    /// Field specs where they also go (kustomize's `fields`).
    #[serde(default)]
    pub fields: Vec<serde_json::Value>,
}

/// An entry of `images`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// The image name to match (without tag or digest).
    pub name: String,
    /// Replacement name.
    #[serde(default)]
    pub new_name: Option<String>,
    /// Replacement tag.
    #[serde(default)]
    pub new_tag: Option<String>,
    /// Replacement digest (wins over the tag).
    #[serde(default)]
    pub digest: Option<String>,
}

/// An entry of `replicas`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Replica {
    /// The workload's name.
    pub name: String,
    /// Its replica count.
    pub count: i64,
}

impl Kustomization {
    /// Parses a kustomization file; unknown and not-yet-implemented fields are errors naming them.
    pub fn parse(text: &str, path: &str) -> Result<Self> {
        let invalid = |message: String| Error::Invalid {
            path: path.to_string(),
            message,
        };
        let value: serde_yaml::Value = match serde_yaml::from_str(text) {
            Ok(value) => value,
            // NB: kustomize reads kustomization files with go-yaml v2, where a repeated key's last value
            // wins; serde_yaml refuses the repetition
            Err(e) if e.to_string().contains("duplicate entry") => {
                last_key_wins(text).ok_or_else(|| Error::Yaml {
                    path: path.to_string(),
                    message: e.to_string(),
                })?
            }
            Err(e) => {
                return Err(Error::Yaml {
                    path: path.to_string(),
                    message: e.to_string(),
                });
            }
        };
        let map = match &value {
            serde_yaml::Value::Mapping(m) => m,
            serde_yaml::Value::Null => return Ok(Self::default()),
            _ => return Err(invalid("a kustomization must be a mapping".into())),
        };
        for key in map.keys() {
            let key = key.as_str().unwrap_or_default();
            if NOT_YET.contains(&key) {
                return Err(invalid(format!(
                    "kustomization field '{key}' is not supported by driftless yet"
                )));
            }
            if !IMPLEMENTED.contains(&key) {
                return Err(invalid(format!("invalid Kustomization: unknown field '{key}'")));
            }
        }
        serde_yaml::from_value(value).map_err(|e| invalid(format!("invalid Kustomization: {e}")))
    }
}

/// The first document of `text` read as serde_yaml reads it, but with each mapping keeping the last value
/// of a repeated key.
fn last_key_wins(text: &str) -> Option<serde_yaml::Value> {
    use serde::de::{MapAccess, SeqAccess, Visitor};
    use serde_yaml::Value;

    struct LastWins(Value);
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = LastWins;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a YAML value")
        }
        fn visit_bool<E>(self, v: bool) -> std::result::Result<LastWins, E> {
            Ok(LastWins(Value::Bool(v)))
        }
        fn visit_i64<E>(self, v: i64) -> std::result::Result<LastWins, E> {
            Ok(LastWins(Value::from(v)))
        }
        fn visit_u64<E>(self, v: u64) -> std::result::Result<LastWins, E> {
            Ok(LastWins(Value::from(v)))
        }
        fn visit_f64<E>(self, v: f64) -> std::result::Result<LastWins, E> {
            Ok(LastWins(Value::from(v)))
        }
        fn visit_str<E>(self, v: &str) -> std::result::Result<LastWins, E> {
            Ok(LastWins(Value::String(v.to_string())))
        }
        fn visit_unit<E>(self) -> std::result::Result<LastWins, E> {
            Ok(LastWins(Value::Null))
        }
        fn visit_none<E>(self) -> std::result::Result<LastWins, E> {
            Ok(LastWins(Value::Null))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<LastWins, A::Error> {
            let mut items = Vec::new();
            while let Some(LastWins(v)) = seq.next_element()? {
                items.push(v);
            }
            Ok(LastWins(Value::Sequence(items)))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<LastWins, A::Error> {
            let mut out = serde_yaml::Mapping::new();
            while let Some((LastWins(k), LastWins(v))) = map.next_entry()? {
                out.insert(k, v);
            }
            Ok(LastWins(Value::Mapping(out)))
        }
    }
    impl<'de> serde::Deserialize<'de> for LastWins {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            d.deserialize_any(V)
        }
    }
    let doc = serde_yaml::Deserializer::from_str(text).next()?;
    LastWins::deserialize(doc).ok().map(|LastWins(v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_unimplemented_fields_are_named() {
        let err = Kustomization::parse("resources: []\nhelmCharts: []\n", "k.yaml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "k.yaml: kustomization field 'helmCharts' is not supported by driftless yet"
        );
        let k = Kustomization::parse("namePrefix: a-\nnamePrefix: b-\n", "k.yaml").unwrap();
        assert_eq!(
            k.name_prefix.as_deref(),
            Some("b-"),
            "a repeated key's last value wins"
        );
        let err = Kustomization::parse("resourcez: []\n", "k.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field 'resourcez'"), "{err}");
    }

    #[test]
    fn fields_parse() {
        let k = Kustomization::parse("namespace: x\nnamePrefix: p-\nimages: [{name: nginx, newTag: '1.25'}]\nreplicas: [{name: web, count: 3}]\n", "k").unwrap();
        assert_eq!(k.namespace.as_deref(), Some("x"));
        assert_eq!(k.images[0].new_tag.as_deref(), Some("1.25"));
        assert_eq!(k.replicas[0].count, 3);
    }
}
