//! `spec.include`: other GitRepositories' artifacts copied into the checkout (`fromPath` → `toPath`),
//! each confined to the artifact and the checkout.

use std::path::{Component, Path};

use driftless_api::{
    meta::Artifact,
    source::{GitRepository, GitRepositoryInclude},
};
use driftless_artifact::fetch::Limits;
use kube::Api;

use super::Error;
use crate::Context;

/// The artifact of each included GitRepository; a missing one, or one without an artifact yet, fails
/// with `IncludeUnavailable`.
pub(super) async fn resolve_includes(
    obj: &GitRepository,
    ctx: &Context,
    ns: &str,
) -> Result<Vec<(GitRepositoryInclude, Artifact)>, Error> {
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), ns);
    let mut out = Vec::new();
    for include in obj.spec.include.iter().flatten() {
        let name = &include.repository.name;
        let included =
            api.get_opt(name)
                .await
                .map_err(Error::Kube)?
                .ok_or_else(|| Error::IncludeNotFound {
                    namespace: ns.to_string(),
                    name: name.clone(),
                })?;
        let artifact = included
            .status
            .and_then(|s| s.artifact)
            .filter(|a| ctx.storage.exists(a))
            .ok_or_else(|| Error::IncludeWithoutArtifact { name: name.clone() })?;
        out.push((include.clone(), artifact));
    }
    Ok(out)
}

/// Unpacks an included artifact and copies its `fromPath` to `toPath` in the checkout.
pub(super) fn copy_include(
    ctx: &Context,
    include: &GitRepositoryInclude,
    artifact: &Artifact,
    workdir: &Path,
    checkout: &Path,
) -> Result<(), Error> {
    let name = &include.repository.name;
    let unavailable = |e: Box<dyn std::error::Error + Send + Sync>| Error::CopyInclude {
        name: name.clone(),
        source: e,
    };
    let relative = |p: &str| -> Result<std::path::PathBuf, Error> {
        let path = Path::new(p.trim_start_matches("./"));
        if path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            Ok(path.to_path_buf())
        } else {
            Err(Error::InvalidSpec(format!(
                "include '{name}': path '{p}' must stay inside the artifact"
            )))
        }
    };
    let from = relative(include.from_path.as_deref().unwrap_or(""))?;
    let to = relative(include.to_path.as_deref().unwrap_or(name))?;
    let local = ctx
        .storage
        .local_path(&artifact.path)
        .map_err(|e| unavailable(e.into()))?;
    let unpacked = workdir.join(format!("include-{name}"));
    let file = std::fs::File::open(&local).map_err(|e| unavailable(e.into()))?;
    driftless_artifact::fetch::unpack(file, &unpacked, Limits::default())
        .map_err(|e| unavailable(e.into()))?;
    let target = checkout.join(&to);
    let _ = std::fs::remove_dir_all(&target);
    copy_dir(&unpacked.join(&from), &target).map_err(|e| unavailable(e.into()))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()))?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}
