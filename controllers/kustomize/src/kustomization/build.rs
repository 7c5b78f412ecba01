//! The build: the artifact's overlay (`spec.path` confined to it, the Kustomization's own overlay),
//! the kustomize engine, SOPS decryption, post-build substitution from the spec, ConfigMaps and Secrets.

use std::{collections::BTreeMap, path::Path};

use driftless_api::kustomize::{Kustomization, PostBuild};
use driftless_runtime::error::api_message;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use crate::Context;

use super::*;

/// The overlay Flux puts around `spec.path`: `targetNamespace`, `namePrefix`/`nameSuffix`, `patches`,
/// `images`, `components`, `commonMetadata`.
pub(super) fn overlay(obj: &Kustomization, path: &str) -> Result<Option<String>, Error> {
    let s = &obj.spec;
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
    serde_yaml::to_string(&Value::Object(k))
        .map(Some)
        .map_err(|e| Error::Build(e.to_string()))
}

/// The SOPS keys of `spec.decryption`: its Secret's `*.agekey` (age) and `*.asc` (OpenPGP) entries, and the
/// `*.agekey` entries of the global Secret named by `--sops-age-secret` (in the runtime namespace).
pub(super) async fn sops_decryptor(
    obj: &Kustomization,
    ctx: &Context,
    decryption: &driftless_api::kustomize::Decryption,
) -> Result<driftless_sops::Decryptor, Error> {
    if decryption.provider != "sops" {
        return Err(Error::InvalidSpec(format!(
            "decryption provider '{}' is not supported: use sops",
            decryption.provider
        )));
    }
    let mut keys = driftless_sops::Keys::default();
    let read = |ns: String, name: String| async move {
        Api::<Secret>::namespaced(ctx.client.clone(), &ns)
            .get_opt(&name)
            .await
            .map_err(Error::Kube)?
            .map(|s| s.data.unwrap_or_default())
            .ok_or_else(|| Error::Build(format!("decryption Secret '{ns}/{name}' not found")))
    };
    let mut sources = Vec::new();
    if let Some(r) = &decryption.secret_ref {
        sources.push((obj.namespace().unwrap_or_default(), r.name.clone(), true));
    }
    if !ctx.sops_age_secret.is_empty() {
        sources.push((
            ctx.config.runtime_namespace.clone(),
            ctx.sops_age_secret.clone(),
            false,
        ));
    }
    for (ns, name, pgp) in sources {
        for (key, value) in read(ns.clone(), name.clone()).await? {
            let text = String::from_utf8_lossy(&value.0);
            let added = if key.ends_with(".agekey") {
                keys.add_age(&text)
            } else if pgp && key.ends_with(".asc") {
                keys.add_pgp(&text)
            } else {
                continue;
            };
            added.map_err(|e| Error::Build(format!("decryption Secret '{ns}/{name}' key '{key}': {e}")))?;
        }
    }
    Ok(driftless_sops::Decryptor::new(keys))
}

/// `spec.path` inside the artifact, as Flux's secure join reads it: `.` and empty segments dropped, and
/// `..` never above the artifact's root (`../../apps` is `apps`), so nothing outside is read or written.
pub(super) fn confined(path: &str) -> String {
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

/// Downloads, verifies and builds; returns the objects to apply.
pub(super) async fn build(
    obj: &Kustomization,
    ctx: &Context,
    client: &kube::Client,
    source: &Source,
) -> Result<Vec<Value>, Error> {
    let decryptor = match &obj.spec.decryption {
        Some(d) => Some(sops_decryptor(obj, ctx, d).await?),
        None => None,
    };
    let tree = ctx
        .artifacts
        .get(&ctx.http, &source.url, &source.digest, Default::default())
        .await
        .map_err(|e| Error::Artifact(e.to_string()))?;
    let path = confined(obj.spec.path.as_deref().unwrap_or_default());
    if !tree.path().join(&path).is_dir() {
        return Err(Error::Build(format!(
            "kustomization path not found: {}",
            if path.is_empty() { "." } else { &path }
        )));
    }
    let overlay = overlay(obj, &path)?;
    // the cached tree is shared: a build that adds files (the overlay, a generated kustomization) works
    // on a mirror of hard links to it
    let scratch = match overlay {
        Some(_) => {
            let dir = tempfile::Builder::new()
                .prefix("kustomization-")
                .tempdir()
                .map_err(|e| Error::Artifact(e.to_string()))?;
            tree.link_into(&dir.path().join("tree"))
                .map_err(|e| Error::Artifact(format!("mirroring the artifact: {e}")))?;
            Some(dir)
        }
        None => None,
    };
    let root = match &scratch {
        Some(dir) => dir.path().join("tree"),
        None => tree.path().to_path_buf(),
    };
    let target = root.join(&path);
    let vars = match &obj.spec.post_build {
        Some(post_build) => Some(load_vars(obj, post_build, client).await?),
        None => None,
    };
    let strict = ctx.strict_substitutions;
    tokio::task::spawn_blocking(move || {
        // the trees stay until the build is done, even when the reconcile is dropped meanwhile
        let _trees = (tree, scratch);
        let build_path = match overlay {
            Some(text) => {
                // a directory without kustomization gets Flux's generated one, so the overlay can refer to it
                let has_file = driftless_kustomize::FILE_NAMES
                    .iter()
                    .any(|f| target.join(f).is_file());
                if !has_file {
                    let generated = driftless_kustomize::generated_kustomization(&target)
                        .map_err(|e| Error::Build(e.to_string()))?;
                    std::fs::write(target.join("kustomization.yaml"), generated)
                        .map_err(|e| Error::Build(e.to_string()))?;
                }
                let wrapper = root.join(".driftless-overlay");
                // NB: one the artifact brings is unlinked from the mirror first, never written through
                let _ = std::fs::remove_dir_all(&wrapper);
                std::fs::create_dir_all(&wrapper).map_err(|e| Error::Build(e.to_string()))?;
                std::fs::write(wrapper.join("kustomization.yaml"), text)
                    .map_err(|e| Error::Build(e.to_string()))?;
                Path::new(".driftless-overlay").to_path_buf()
            }
            None => Path::new(&path).to_path_buf(),
        };
        let failed = |e: driftless_kustomize::Error| {
            Error::Build(e.to_string().replace(&root.display().to_string(), "."))
        };
        let decrypt = decryptor
            .as_ref()
            .map(|d| d as &dyn driftless_kustomize::yaml::Decrypt);
        let Some(vars) = vars else {
            return driftless_kustomize::build_with(&root, &build_path, decrypt).map_err(failed);
        };
        let mut objects =
            driftless_kustomize::build_marked_with(&root, &build_path, decrypt).map_err(failed)?;
        driftless_kustomize::substitute::substitute_all(&mut objects, &vars, strict).map_err(Error::Build)?;
        Ok(objects)
    })
    .await
    .expect("builds do not panic")
}

/// The variables of `postBuild`: each `substituteFrom` Secret or ConfigMap in order, later ones winning,
/// then `substitute`; newlines are dropped from values, as Flux does. A missing object that is not
/// `optional` is an error.
pub(super) async fn load_vars(
    obj: &Kustomization,
    post_build: &PostBuild,
    client: &kube::Client,
) -> Result<BTreeMap<String, String>, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let mut vars = BTreeMap::new();
    for r in post_build.substitute_from.iter().flatten() {
        let failed = |message: String| {
            Error::Build(format!(
                "post build failed: substitute from '{}/{}' error: {message}",
                r.kind, r.name
            ))
        };
        let data: Option<Vec<(String, String)>> = match r.kind.as_str() {
            "ConfigMap" => Api::<ConfigMap>::namespaced(client.clone(), &ns)
                .get_opt(&r.name)
                .await
                .map_err(|e| failed(api_message(&e)))?
                .map(|c| c.data.unwrap_or_default().into_iter().collect()),
            "Secret" => Api::<Secret>::namespaced(client.clone(), &ns)
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
                return Err(Error::InvalidSpec(format!(
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

/// `sha256:<hex>` of the built objects as a multi-document YAML stream.
pub(super) fn objects_digest(objects: &[Value]) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for o in objects {
        hasher.update(b"---\n");
        hasher.update(serde_yaml::to_string(o).unwrap_or_default().as_bytes());
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}
