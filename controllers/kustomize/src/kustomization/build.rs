//! The build: the artifact from the cache, a writable mirror of it when Flux's overlay is needed, SOPS
//! keys, then `driftless_kustomization`'s build (the overlay of the spec, the engine, decryption and
//! postBuild substitution), written once for the controller and `driftless diff`.

use driftless_api::kustomize::Kustomization;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use serde_json::Value;

use crate::Context;

use super::*;

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
            .ok_or_else(|| Error::DecryptionSecretNotFound {
                namespace: ns.clone(),
                name: name.clone(),
            })
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
            added.map_err(|source| Error::ImportDecryptionKey {
                namespace: ns.clone(),
                name: name.clone(),
                key: key.clone(),
                source,
            })?;
        }
    }
    Ok(driftless_sops::Decryptor::new(keys))
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
        .map_err(Error::FetchArtifact)?;
    let path = driftless_kustomization::confined(obj.spec.path.as_deref().unwrap_or_default());
    if !tree.path().join(&path).is_dir() {
        return Err(Error::PathNotFound {
            path: if path.is_empty() { ".".into() } else { path },
        });
    }
    let overlay = driftless_kustomization::overlay(&obj.spec, &path).map_err(Error::Build)?;
    // the cached tree is shared: a build that adds files (the overlay, a generated kustomization) works
    // on a mirror of hard links to it
    let scratch = match overlay {
        Some(_) => {
            let dir = tempfile::Builder::new()
                .prefix("kustomization-")
                .tempdir()
                .map_err(Error::CreateWorkdir)?;
            tree.link_into(&dir.path().join("tree"))
                .map_err(Error::MirrorArtifact)?;
            Some(dir)
        }
        None => None,
    };
    let root = match &scratch {
        Some(dir) => dir.path().join("tree"),
        None => tree.path().to_path_buf(),
    };
    let vars = match &obj.spec.post_build {
        Some(post_build) => Some(
            driftless_kustomization::load_vars(client, &obj.namespace().unwrap_or_default(), post_build)
                .await
                .map_err(|e| match e {
                    driftless_kustomization::VarsError::Invalid(m) => Error::InvalidSpec(m),
                    e @ driftless_kustomization::VarsError::Failed(_) => Error::LoadVariables(e),
                })?,
        ),
        None => None,
    };
    let strict = ctx.strict_substitutions;
    tokio::task::spawn_blocking(move || {
        // the trees stay until the build is done, even when the reconcile is dropped meanwhile
        let _trees = (tree, scratch);
        let decrypt = decryptor
            .as_ref()
            .map(|d| d as &dyn driftless_kustomize::yaml::Decrypt);
        driftless_kustomization::build(&root, &path, overlay, decrypt, vars.as_ref(), strict)
            .map_err(Error::Build)
    })
    .await
    .expect("builds do not panic")
}

/// `sha256:<hex>` of the built objects as a multi-document YAML stream.
pub(super) fn objects_digest(objects: &[Value]) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for o in objects {
        hasher.update(b"---\n");
        hasher.update(driftless_yaml::to_string(o).unwrap_or_default().as_bytes());
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}
