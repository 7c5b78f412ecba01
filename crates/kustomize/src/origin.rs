//! kustomize's `buildMetadata`: when the kustomization built names any, every object records where it
//! came from (`config.kubernetes.io/origin`: the file it was read from, relative to the build's
//! directory, or the generator that made it) and which transformers ran over it
//! (`alpha.config.kubernetes.io/transformations`, oldest first: each builtin transformer a level's fields
//! configure, then each `transformers` entry — on every object of the level, changed or not, as
//! kustomize records them). At the end only the annotations the top kustomization asked for stay
//! (`originAnnotations`, `transformerAnnotations`), and `managedByLabel` labels everything
//! `app.kubernetes.io/managed-by: kustomize-<version>`. Bases follow the top kustomization's list, not
//! their own.

use serde_json::{Value, json};

use crate::{Object, kustomization::Kustomization};

/// Where an object came from.
pub const ORIGIN: &str = "config.kubernetes.io/origin";
/// The transformers that ran over an object.
pub const TRANSFORMATIONS: &str = "alpha.config.kubernetes.io/transformations";
/// The label `managedByLabel` sets.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The kustomize release whose behaviour the engine follows (`kubectl kustomize` of kubectl v1.32),
/// named by `managedByLabel`.
pub const KUSTOMIZE_VERSION: &str = "v5.5.0";

/// An origin: a file (`path`), or the configuration that made or changed an object (`configuredIn`, the
/// file holding it, and `configuredBy`, its apiVersion, kind, name and namespace).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The file an object was read from.
    pub path: String,
    /// The file holding the generator's or transformer's configuration.
    pub configured_in: String,
    /// `apiVersion`, `kind`, `name`, `namespace` of that configuration (`builtin` for a field's).
    pub configured_by: [String; 4],
}

impl Origin {
    /// An object read from the file at `path`.
    pub fn file(path: String) -> Self {
        Self {
            path,
            ..Default::default()
        }
    }

    /// A kustomization field's builtin generator or transformer `kind`, configured in `file`.
    pub fn builtin(file: String, kind: &str) -> Self {
        Self {
            configured_in: file,
            configured_by: ["builtin".into(), kind.into(), String::new(), String::new()],
            ..Default::default()
        }
    }

    /// The generator or transformer configuration `config`, written in `file`.
    pub fn config(file: String, config: &Object) -> Self {
        let at = |p: &str| {
            config
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Self {
            configured_in: file,
            configured_by: [
                at("/apiVersion"),
                at("/kind"),
                at("/metadata/name"),
                at("/metadata/namespace"),
            ],
            ..Default::default()
        }
    }

    /// Its lines as kustomize writes them (kyaml's field order, empty fields left out).
    fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.path.is_empty() {
            lines.push(format!("path: {}", scalar(&self.path)));
        }
        if !self.configured_in.is_empty() {
            lines.push(format!("configuredIn: {}", scalar(&self.configured_in)));
        }
        if self.configured_by.iter().any(|f| !f.is_empty()) {
            lines.push("configuredBy:".into());
            for (key, value) in ["apiVersion", "kind", "name", "namespace"]
                .iter()
                .zip(&self.configured_by)
            {
                if !value.is_empty() {
                    lines.push(format!("  {key}: {}", scalar(value)));
                }
            }
        }
        lines
    }

    fn yaml(&self) -> String {
        self.lines().iter().map(|l| format!("{l}\n")).collect()
    }

    /// As one item of a YAML list.
    fn item(&self) -> String {
        self.lines()
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{}{l}\n", if i == 0 { "- " } else { "  " }))
            .collect()
    }
}

/// What makes a level's generated objects, when origins are tracked: its kustomization's fields
/// (`configMapGenerator`, `secretGenerator`, configured in the file named), or a `generators` entry.
#[derive(Clone, Debug)]
pub enum MadeBy {
    /// The fields of the kustomization file at this path.
    Fields(String),
    /// A generator configuration.
    Config(Origin),
}

impl MadeBy {
    /// The origin of a ConfigMap (`secret` false) or Secret it generates.
    pub fn origin(&self, secret: bool) -> Origin {
        match self {
            MadeBy::Fields(file) => Origin::builtin(
                file.clone(),
                if secret {
                    "SecretGenerator"
                } else {
                    "ConfigMapGenerator"
                },
            ),
            MadeBy::Config(origin) => origin.clone(),
        }
    }
}

/// A string as a YAML scalar: plain when that reads back as the same string, else double-quoted.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_' | '-' | '~' | '+'))
        && !s.starts_with('-')
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string serialises")
    }
}

/// `a/b` cleaned as Go's `filepath.Join` does (`.` and `x/..` removed; leading `..` kept).
pub fn join(a: &str, b: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in a.split('/').chain(b.split('/')) {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn annotation<'a>(obj: &'a Object, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn set_annotation(obj: &mut Object, key: &str, value: String) {
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][key] = json!(value);
}

fn remove_annotation(obj: &mut Object, key: &str) {
    let Some(annotations) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    annotations.remove(key);
    if annotations.is_empty()
        && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.remove("annotations");
    }
}

/// Records `origin` as where `obj` came from, replacing what it said.
pub fn set(obj: &mut Object, origin: &Origin) {
    set_annotation(obj, ORIGIN, origin.yaml());
}

/// Records `origin` as where `obj` came from unless it says already (kustomize's AddOriginAnnotation).
pub fn set_if_none(obj: &mut Object, origin: &Origin) {
    if annotation(obj, ORIGIN).is_none() {
        set(obj, origin);
    }
}

/// Records that the transformer of `origin` ran over `obj`; an object with no origin is taken to be
/// that transformer's making, as kustomize does.
pub fn transformed(obj: &mut Object, origin: &Origin) {
    match annotation(obj, ORIGIN) {
        None => set(obj, origin),
        Some(_) => {
            let list = annotation(obj, TRANSFORMATIONS).unwrap_or_default().to_string();
            set_annotation(obj, TRANSFORMATIONS, list + &origin.item());
        }
    }
}

/// The builtin transformers a kustomization's fields configure, in the order kustomize runs them, each
/// as often as it makes one (a `patches` entry, an image, a replica count each; labels one per `labels`
/// entry and one for `commonLabels`).
pub fn builtin_transformers(k: &Kustomization) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    let mut add = |n: usize, kind: &'static str| kinds.extend(std::iter::repeat_n(kind, n));
    add(
        usize::from(!k.patches_strategic_merge.is_empty()),
        "PatchStrategicMergeTransformer",
    );
    add(k.patches.len(), "PatchTransformer");
    add(
        usize::from(k.namespace.as_deref().is_some_and(|n| !n.is_empty())),
        "NamespaceTransformer",
    );
    add(
        usize::from(k.name_prefix.as_deref().is_some_and(|n| !n.is_empty())),
        "PrefixTransformer",
    );
    add(
        usize::from(k.name_suffix.as_deref().is_some_and(|n| !n.is_empty())),
        "SuffixTransformer",
    );
    if !k.labels.is_empty() || !k.common_labels.is_empty() {
        add(k.labels.len() + 1, "LabelTransformer");
    }
    add(
        usize::from(!k.common_annotations.is_empty()),
        "AnnotationsTransformer",
    );
    add(k.patches_json6902.len(), "PatchJson6902Transformer");
    add(k.replicas.len(), "ReplicaCountTransformer");
    add(k.images.len(), "ImageTagTransformer");
    add(usize::from(!k.replacements.is_empty()), "ReplacementTransformer");
    kinds
}

/// The end of the build: only the annotations `build_metadata` asks for stay, and `managedByLabel`
/// labels every object.
pub fn finish(objects: &mut [Object], build_metadata: &[String]) {
    let asks = |what: &str| build_metadata.iter().any(|b| b == what);
    for obj in objects {
        if !asks("originAnnotations") {
            remove_annotation(obj, ORIGIN);
        }
        if !asks("transformerAnnotations") {
            remove_annotation(obj, TRANSFORMATIONS);
        }
        if asks("managedByLabel") {
            if !obj["metadata"]["labels"].is_object() {
                obj["metadata"]["labels"] = json!({});
            }
            obj["metadata"]["labels"][MANAGED_BY] = json!(format!("kustomize-{KUSTOMIZE_VERSION}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_as_gos_filepath_join() {
        assert_eq!(join("", "service.yaml"), "service.yaml");
        assert_eq!(join("", "../base"), "../base");
        assert_eq!(
            join("../base", "./a/../deployment.yaml"),
            "../base/deployment.yaml"
        );
        assert_eq!(join("../base", "../../other"), "../../other");
    }

    #[test]
    fn origins_and_transformations_read_as_kustomize_writes_them() {
        let mut obj = json!({"kind": "Service", "metadata": {"name": "s"}});
        transformed(
            &mut obj,
            &Origin::builtin("kustomization.yaml".into(), "PrefixTransformer"),
        );
        assert_eq!(
            obj["metadata"]["annotations"][ORIGIN],
            "configuredIn: kustomization.yaml\nconfiguredBy:\n  apiVersion: builtin\n  kind: PrefixTransformer\n",
            "no origin: the transformer's making"
        );
        set(&mut obj, &Origin::file("../base/service.yaml".into()));
        let config = json!({"apiVersion": "builtin", "kind": "NamespaceTransformer",
            "metadata": {"name": "ns", "namespace": "test"}});
        transformed(
            &mut obj,
            &Origin::builtin("../base/kustomization.yaml".into(), "PrefixTransformer"),
        );
        transformed(&mut obj, &Origin::config("kustomization.yaml".into(), &config));
        assert_eq!(
            obj["metadata"]["annotations"][ORIGIN],
            "path: ../base/service.yaml\n"
        );
        assert_eq!(
            obj["metadata"]["annotations"][TRANSFORMATIONS],
            "- configuredIn: ../base/kustomization.yaml\n  configuredBy:\n    apiVersion: builtin\n    kind: PrefixTransformer\n\
             - configuredIn: kustomization.yaml\n  configuredBy:\n    apiVersion: builtin\n    kind: NamespaceTransformer\n    name: ns\n    namespace: test\n"
        );
        let mut objects = vec![obj];
        finish(&mut objects, &["managedByLabel".into()]);
        assert!(objects[0]["metadata"].get("annotations").is_none());
        assert_eq!(objects[0]["metadata"]["labels"][MANAGED_BY], "kustomize-v5.5.0");
    }
}
