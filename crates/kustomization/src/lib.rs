//! A Flux Kustomization's build, written once for kustomize-controller and `driftless diff`: `spec.path`
//! confined to the root as Flux's secure join does, the overlay Flux puts around it from the spec, the
//! `postBuild` variables from the spec and its ConfigMaps and Secrets, and the build itself — the
//! kustomize engine, SOPS decryption, substitution.

use std::{collections::BTreeMap, path::Path};

use driftless_api::kustomize::{KustomizationSpec, PostBuild};
use driftless_runtime::error::api_message;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use serde_json::{Value, json};

/// Owner label: the name of the Kustomization that applied an object.
pub const NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";

/// Owner label: the namespace of the Kustomization that applied an object.
pub const NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";

/// Why the `postBuild` variables could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum VarsError {
    /// The spec names something that cannot be a variable source (a spec change is needed).
    Invalid(String),
    /// A ConfigMap or Secret could not be read or is missing.
    Failed(String),
}

impl std::error::Error for VarsError {}

impl std::fmt::Display for VarsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarsError::Invalid(m) | VarsError::Failed(m) => f.write_str(m),
        }
    }
}

/// The overlay Flux puts around `spec.path`: `targetNamespace`, `namePrefix`/`nameSuffix`, `patches`,
/// `images`, `components`, `commonMetadata`.
pub fn overlay(s: &KustomizationSpec, path: &str) -> Result<Option<String>, String> {
    let needed = s.target_namespace.is_some()
        || s.name_prefix.is_some()
        || s.name_suffix.is_some()
        || s.patches.as_ref().is_some_and(|p| !p.is_empty())
        || s.images.as_ref().is_some_and(|i| !i.is_empty())
        || s.components.as_ref().is_some_and(|c| !c.is_empty())
        || s.common_metadata.is_some();
    if !needed {
        return Ok(None);
    }
    let mut k = serde_json::Map::new();
    k.insert("apiVersion".into(), json!("kustomize.config.k8s.io/v1beta1"));
    k.insert("kind".into(), json!("Kustomization"));
    k.insert("resources".into(), json!([format!("../{path}")]));
    if let Some(ns) = &s.target_namespace {
        k.insert("namespace".into(), json!(ns));
    }
    if let Some(p) = &s.name_prefix {
        k.insert("namePrefix".into(), json!(p));
    }
    if let Some(p) = &s.name_suffix {
        k.insert("nameSuffix".into(), json!(p));
    }
    if let Some(p) = &s.patches {
        k.insert(
            "patches".into(),
            serde_json::to_value(p).expect("patches serialise"),
        );
    }
    if let Some(i) = &s.images {
        k.insert(
            "images".into(),
            serde_json::to_value(i).expect("images serialise"),
        );
    }
    if let Some(c) = &s.components {
        k.insert(
            "components".into(),
            json!(c.iter().map(|c| format!("../{path}/{c}")).collect::<Vec<_>>()),
        );
    }
    if let Some(m) = &s.common_metadata {
        if let Some(a) = &m.annotations {
            k.insert("commonAnnotations".into(), json!(a));
        }
        if let Some(l) = &m.labels {
            k.insert("labels".into(), json!([{"pairs": l}]));
        }
    }
    driftless_yaml::to_string(&Value::Object(k))
        .map(Some)
        .map_err(|e| e.to_string())
}

/// `spec.path` inside the artifact, as Flux's secure join reads it: `.` and empty segments dropped, and
/// `..` never above the artifact's root (`../../apps` is `apps`), so nothing outside is read or written.
pub fn confined(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    kept.join("/")
}

/// The variables of `postBuild`: each `substituteFrom` Secret or ConfigMap in order, later ones winning,
/// then `substitute`; newlines are dropped from values, as Flux does. A missing object that is not
/// `optional` is an error.
pub async fn load_vars(
    client: &kube::Client,
    ns: &str,
    post_build: &PostBuild,
) -> Result<BTreeMap<String, String>, VarsError> {
    let mut vars = BTreeMap::new();
    for r in post_build.substitute_from.iter().flatten() {
        let failed = |message: String| {
            VarsError::Failed(format!(
                "post build failed: substitute from '{}/{}' error: {message}",
                r.kind, r.name
            ))
        };
        let data: Option<Vec<(String, String)>> = match r.kind.as_str() {
            "ConfigMap" => Api::<ConfigMap>::namespaced(client.clone(), ns)
                .get_opt(&r.name)
                .await
                .map_err(|e| failed(api_message(&e)))?
                .map(|c| c.data.unwrap_or_default().into_iter().collect()),
            "Secret" => Api::<Secret>::namespaced(client.clone(), ns)
                .get_opt(&r.name)
                .await
                .map_err(|e| failed(api_message(&e)))?
                .map(|s| {
                    s.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect()
                }),
            other => {
                return Err(VarsError::Invalid(format!(
                    "substituteFrom kind '{other}' is not Secret or ConfigMap"
                )));
            }
        };
        match data {
            Some(data) => vars.extend(data.into_iter().map(|(k, v)| (k, v.replace('\n', "")))),
            None if r.optional.unwrap_or(false) => {}
            None => {
                return Err(failed(format!(
                    "{}s \"{}\" not found",
                    r.kind.to_lowercase(),
                    r.name
                )));
            }
        }
    }
    for (k, v) in post_build.substitute.iter().flatten() {
        vars.insert(k.clone(), v.replace('\n', ""));
    }
    Ok(vars)
}

/// Builds `path` under `root` as kustomize-controller does: with `overlay` (from [`overlay`]) written around
/// it (and Flux's generated kustomization.yaml where the directory has none) — so `root` must be a tree the
/// build may write to — then decrypts with `decrypt` and substitutes `vars`. Errors name files relative to
/// `root`.
pub fn build(
    root: &Path,
    path: &str,
    overlay: Option<String>,
    decrypt: Option<&dyn driftless_kustomize::yaml::Decrypt>,
    vars: Option<&BTreeMap<String, String>>,
    strict: bool,
) -> Result<Vec<Value>, String> {
    let target = root.join(path);
    let build_path = match overlay {
        Some(text) => {
            // a directory without kustomization gets Flux's generated one, so the overlay can refer to it
            let has_file = driftless_kustomize::FILE_NAMES
                .iter()
                .any(|f| target.join(f).is_file());
            if !has_file {
                let generated =
                    driftless_kustomize::generated_kustomization(&target).map_err(|e| e.to_string())?;
                std::fs::write(target.join("kustomization.yaml"), generated).map_err(|e| e.to_string())?;
            }
            let wrapper = root.join(".driftless-overlay");
            // NB: one the artifact brings is unlinked from the mirror first, never written through
            let _ = std::fs::remove_dir_all(&wrapper);
            std::fs::create_dir_all(&wrapper).map_err(|e| e.to_string())?;
            std::fs::write(wrapper.join("kustomization.yaml"), text).map_err(|e| e.to_string())?;
            Path::new(".driftless-overlay").to_path_buf()
        }
        None => Path::new(path).to_path_buf(),
    };
    let failed = |e: driftless_kustomize::Error| e.to_string().replace(&root.display().to_string(), ".");
    let Some(vars) = vars else {
        return driftless_kustomize::build_with(root, &build_path, decrypt).map_err(failed);
    };
    let mut objects = driftless_kustomize::build_marked_with(root, &build_path, decrypt).map_err(failed)?;
    driftless_kustomize::substitute::substitute_all(&mut objects, vars, strict)?;
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        for (path, inside) in [
            ("./apps/prod", "apps/prod"),
            ("apps/prod/", "apps/prod"),
            ("", ""),
            ("./", ""),
            ("../../../etc", "etc"),
            ("apps/../../..", ""),
            ("/abs/./x//y", "abs/x/y"),
            ("apps/base/../prod", "apps/prod"),
        ] {
            assert_eq!(confined(path), inside, "{path}");
        }
    }
}
