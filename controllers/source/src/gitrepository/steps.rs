//! The steps of a GitRepository reconcile, in Flux's order: storage, source, include, artifact.

use std::time::Duration;

use driftless_api::{
    meta::{Artifact, parse_duration},
    source::{GitRepository, GitRepositoryInclude, GitRepositoryStatus},
};
use driftless_artifact::{
    ignore::Filter,
    storage::{Owner, collect_garbage, settle},
};
use driftless_git::{Keyring, Options, Reference};
use kube::{Resource, ResourceExt};
use tracing::debug;

use super::{
    Error, KIND,
    include::{copy_include, resolve_includes},
};
use crate::Context;
use crate::common::verify_stored;

/// What a successful run did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The subject of the commit when a new artifact was stored.
    pub new_commit: Option<String>,
    /// The SourceVerified message when signatures were verified in this run.
    pub verified: Option<String>,
}

/// Runs the steps, updating `status` as they go; the last good artifact stays when one fails.
pub async fn run(
    obj: &GitRepository,
    ctx: &Context,
    status: &mut GitRepositoryStatus,
) -> Result<Outcome, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let owner = Owner {
        kind: KIND,
        namespace: &ns,
        name: &name,
    };
    verify_stored(ctx, &obj.object_ref(&()), &mut status.artifact).map_err(Error::VerifyStoredArtifact)?;

    // source
    let driftless_credentials::Credentials { auth, proxy, .. } =
        driftless_credentials::for_repository(&ctx.client, obj, &ctx.providers).await?;
    let keyring = match &obj.spec.verification {
        Some(v) => {
            let data = driftless_credentials::secret_data(&ctx.client, &ns, &v.secret_ref.name).await?;
            Some(Keyring::from_secret(&data).map_err(Error::ReadKeyring)?)
        }
        None => None,
    };
    let mode = obj.spec.verification.as_ref().map(|v| v.mode.unwrap_or_default());
    let reference = Reference::from_spec(obj.spec.reference.as_ref());
    let timeout = match &obj.spec.timeout {
        Some(t) => parse_duration(t).map_err(|e| Error::InvalidSpec(format!("invalid timeout: {e}")))?,
        None => Duration::from_secs(60),
    };
    let includes = resolve_includes(obj, ctx, &ns).await?;

    // unchanged revision: one round trip, no fetch, no pack
    if let Some(artifact) = status.artifact.clone()
        && ctx.storage.exists(&artifact)
        && observed_matches(obj, status, &includes)
        && status.source_verification_mode == mode
        && !matches!(reference, Reference::Commit { .. })
    {
        let heads = blocking(timeout, {
            let (git, url, auth, proxy) =
                (ctx.git.clone(), obj.spec.url.clone(), auth.clone(), proxy.clone());
            move || {
                git.ls_remote(Options {
                    url: &url,
                    auth: &auth,
                    proxy: proxy.as_deref(),
                    timeout,
                })
            }
        })
        .await?;
        if let Ok(Some(resolved)) = reference.resolve(&heads)
            && resolved.revision == artifact.revision
        {
            debug!(revision = %artifact.revision, "revision unchanged, artifact up to date");
            collect_garbage(&ctx.storage, &artifact);
            return Ok(Outcome::default());
        }
    }

    let resolved = blocking(timeout, {
        let (git, url, auth, proxy, reference) = (
            ctx.git.clone(),
            obj.spec.url.clone(),
            auth.clone(),
            proxy.clone(),
            reference.clone(),
        );
        move || {
            git.fetch(
                Options {
                    url: &url,
                    auth: &auth,
                    proxy: proxy.as_deref(),
                    timeout,
                },
                &reference,
            )
        }
    })
    .await?;
    // a revision the stored artifact is not of: outdated until the new one is stored (a failure below keeps
    // the condition, as Flux's)
    if status.artifact.as_ref().map(|a| a.revision.as_str()) != Some(resolved.revision.as_str()) {
        driftless_runtime::conditions::mark_true(
            &mut status.conditions,
            driftless_api::meta::conditions::ARTIFACT_OUTDATED,
            driftless_api::meta::conditions::reasons::NEW_REVISION,
            &format!("new upstream revision '{}'", resolved.revision),
            obj.metadata.generation,
        );
    }
    // verify before anything is written
    let mut verified_message = None;
    if let (Some(keyring), Some(mode)) = (keyring, mode) {
        let verified = blocking(timeout, {
            let (git, url, resolved) = (ctx.git.clone(), obj.spec.url.clone(), resolved.clone());
            move || {
                let mut lines = Vec::new();
                if mode.verify_tag() {
                    let tag = resolved
                        .refname
                        .as_deref()
                        .and_then(|r| r.strip_prefix("refs/tags/"))
                        .ok_or_else(|| {
                            driftless_git::Error::Verification(
                                "verification mode Tag needs a tag or semver reference".into(),
                            )
                        })?;
                    lines.push(format!(
                        "tag '{tag}' with key '{}'",
                        git.verify_tag(&url, tag, &keyring)?
                    ));
                }
                if mode.verify_head() {
                    lines.push(format!(
                        "commit '{}' with key '{}'",
                        resolved.commit,
                        git.verify_commit(&url, &resolved.commit, &keyring)?
                    ));
                }
                Ok(lines)
            }
        })
        .await?;
        verified_message = Some(format!("verified signature of\n\t- {}", verified.join("\n\t- ")));
    }
    status.source_verification_mode = mode;
    let workdir = tempfile::Builder::new()
        .prefix("gitrepository-")
        .tempdir()
        .map_err(Error::CreateWorkdir)?;
    let checkout_dir = workdir.path().join("checkout");
    let checkout = blocking(timeout, {
        let (git, url, resolved, dir) = (
            ctx.git.clone(),
            obj.spec.url.clone(),
            resolved.clone(),
            checkout_dir.clone(),
        );
        let sparse = obj.spec.sparse_checkout.clone();
        let recurse = obj.spec.recurse_submodules.unwrap_or(false);
        let (auth, proxy) = (auth.clone(), proxy.clone());
        move || {
            // submodules are fetched with the parent's credentials, as Flux does
            let submodules = recurse.then(|| Options {
                url: &url,
                auth: &auth,
                proxy: proxy.as_deref(),
                timeout,
            });
            git.checkout(&url, &resolved, &dir, sparse.as_deref(), submodules)
        }
    })
    .await?;

    // include
    for (include, artifact) in &includes {
        copy_include(ctx, include, artifact, workdir.path(), &checkout_dir)?;
    }

    // artifact
    let filter = Filter::for_source(&checkout_dir, obj.spec.ignore.as_deref())
        .map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let file = format!("{}.tar.gz", resolved.commit);
    let artifact = ctx
        .storage
        .archive(owner, &file, &resolved.revision, &checkout_dir, &filter)
        .map_err(Error::ArchiveArtifact)?;
    let (artifact, changed) = settle(&ctx.storage, status.artifact.as_ref(), artifact);
    status.artifact = Some(artifact.clone());
    status.included_artifacts =
        (!includes.is_empty()).then(|| includes.iter().map(|(_, a)| a.clone()).collect());
    status.observed_ignore = obj.spec.ignore.clone();
    status.observed_include = obj.spec.include.clone();
    status.observed_sparse_checkout = obj.spec.sparse_checkout.clone();
    status.observed_recurse_submodules = obj.spec.recurse_submodules.filter(|r| *r);
    Ok(Outcome {
        new_commit: changed.then_some(checkout.subject),
        verified: verified_message,
    })
}

/// Whether the spec fields that shape the artifact are the ones the stored artifact was made with.
fn observed_matches(
    obj: &GitRepository,
    status: &GitRepositoryStatus,
    includes: &[(GitRepositoryInclude, Artifact)],
) -> bool {
    let included: Vec<&str> = includes.iter().map(|(_, a)| a.revision.as_str()).collect();
    let observed_included: Vec<&str> = status
        .included_artifacts
        .iter()
        .flatten()
        .map(|a| a.revision.as_str())
        .collect();
    status.observed_ignore == obj.spec.ignore
        && status.observed_include == obj.spec.include
        && status.observed_sparse_checkout == obj.spec.sparse_checkout
        && status.observed_recurse_submodules.unwrap_or(false) == obj.spec.recurse_submodules.unwrap_or(false)
        && included == observed_included
}

/// Runs a blocking Git operation with the spec's timeout, mapping its errors to reasons.
async fn blocking<T: Send + 'static>(
    timeout: Duration,
    op: impl FnOnce() -> driftless_git::Result<T> + Send + 'static,
) -> Result<T, Error> {
    let task = tokio::task::spawn_blocking(op);
    let result = tokio::time::timeout(timeout + Duration::from_secs(5), task)
        .await
        .map_err(|_| Error::Checkout(driftless_git::Error::Timeout(timeout)))?
        .expect("git operations do not panic");
    result.map_err(|e| match e {
        e @ driftless_git::Error::Verification(_) => Error::Verify(e),
        e if e.is_auth() => Error::Authenticate(e),
        e => Error::Checkout(e),
    })
}
