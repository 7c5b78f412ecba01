//! The steps of an OCIRepository reconcile, in Flux's order: storage, source, artifact.

use std::time::Duration;

use driftless_api::{
    meta::{
        conditions::{ARTIFACT_OUTDATED, reasons},
        parse_duration,
    },
    source::{OCILayerOperation, OCILayerSelector, OCIRepository, OCIRepositoryStatus},
};
use driftless_artifact::{
    fetch::{Limits, unpack},
    ignore::Filter,
    storage::{LATEST, Owner, collect_garbage, settle},
};
use driftless_credentials::oci::{RegistryRefs, for_registry};
use driftless_oci::{Client, Repository, Wanted};
use kube::{Resource, ResourceExt};
use tracing::debug;

use super::{Error, KIND};
use crate::{Context, common::verify_stored};

/// The largest layer pulled (Flux sets none; a bound keeps a bad push from filling the disk).
pub const MAX_LAYER_SIZE: u64 = 4 << 30;

/// What a successful run did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Whether a new artifact was stored.
    pub new_artifact: bool,
}

/// `spec.timeout` (Flux's default 60s).
pub fn timeout(obj: &OCIRepository) -> Result<Duration, Error> {
    match &obj.spec.timeout {
        Some(t) => parse_duration(t).map_err(|e| Error::InvalidSpec(format!("invalid timeout: {e}"))),
        None => Ok(Duration::from_secs(60)),
    }
}

/// What `spec.ref` asks for, in Flux's precedence: digest, semver, tag, `latest`.
fn wanted(obj: &OCIRepository) -> Wanted {
    let non_empty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let r = obj.spec.reference.clone().unwrap_or_default();
    if let Some(digest) = non_empty(&r.digest) {
        return Wanted::Digest(digest);
    }
    if let Some(range) = non_empty(&r.semver) {
        return Wanted::Semver {
            range,
            filter: non_empty(&r.semver_filter),
            media_type: obj
                .spec
                .layer_selector
                .as_ref()
                .and_then(|l| non_empty(&l.media_type)),
        };
    }
    Wanted::Tag(non_empty(&r.tag).unwrap_or_else(|| "latest".into()))
}

/// Runs the steps, updating `status` as they go; the last good artifact stays when one fails.
pub async fn run(
    obj: &OCIRepository,
    ctx: &Context,
    status: &mut OCIRepositoryStatus,
) -> Result<Outcome, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    verify_stored(ctx, &obj.object_ref(&()), &mut status.artifact)
        .map_err(|e| Error::Storage(e.to_string()))?;

    // source
    let url = obj.spec.url.clone();
    let repo = Repository::parse(&url).map_err(|source| Error::Url {
        url: url.clone(),
        source,
    })?;
    if let Some(verify) = &obj.spec.verify {
        // NB: never skipped silently: an artifact that should be verified is not used unverified
        return Err(Error::Verification(format!(
            "failed to verify the signature using provider '{}': signature verification is not \
             supported yet; remove spec.verify to use the artifact unverified",
            serde_json::to_value(verify.provider)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        )));
    }
    let provider = obj.spec.provider.unwrap_or_default();
    if provider != driftless_api::source::CloudProvider::Generic {
        return Err(Error::InvalidSpec(format!(
            "provider '{}' is not supported yet: use 'generic' with spec.secretRef",
            serde_json::to_value(provider)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        )));
    }
    let timeout = timeout(obj)?;
    let (keychain, options) = for_registry(
        &ctx.client,
        RegistryRefs {
            namespace: &ns,
            secret: obj.spec.secret_ref.as_ref(),
            service_account: obj.spec.service_account_name.as_deref(),
            cert_secret: obj.spec.cert_secret_ref.as_ref(),
            proxy_secret: obj.spec.proxy_secret_ref.as_ref(),
            insecure: obj.spec.insecure.unwrap_or(false),
        },
        timeout,
    )
    .await?;
    let client = Client::new(&repo, &keychain, &options, &ctx.oci)
        .await
        .map_err(|source| Error::Transport {
            url: url.clone(),
            source,
        })?;
    let wanted = match wanted(obj) {
        Wanted::Semver {
            range,
            filter,
            media_type,
        } => {
            let tag_error = |source| Error::Tag {
                url: url.clone(),
                source,
            };
            let tags = client.tags().await.map_err(tag_error)?;
            let helm = media_type.as_deref() == Some(driftless_oci::HELM_CHART_MEDIA_TYPE);
            Wanted::Tag(driftless_oci::highest(&tags, &range, filter.as_deref(), helm).map_err(tag_error)?)
        }
        other => other,
    };
    let resolved = client.resolve(&wanted).await.map_err(Error::Digest)?;
    let revision = resolved.revision();

    // unchanged revision and content settings: nothing to download
    if let Some(artifact) = &status.artifact
        && artifact.revision == revision
        && status.observed_ignore == obj.spec.ignore
        && status.observed_layer_selector == obj.spec.layer_selector
    {
        debug!(%revision, "artifact up-to-date with remote revision");
        collect_garbage(&ctx.storage, artifact);
        return Ok(Outcome::default());
    }
    if status.artifact.is_some() {
        let reference = match &resolved.tag {
            Some(tag) => format!("{}/{}:{tag}", repo.registry, repo.repository),
            None => format!("{}/{}@{}", repo.registry, repo.repository, resolved.digest),
        };
        driftless_runtime::conditions::mark_true(
            &mut status.conditions,
            ARTIFACT_OUTDATED,
            reasons::NEW_REVISION,
            &format!("new revision '{revision}' for '{reference}'"),
            obj.metadata.generation,
        );
    }

    let selector = obj.spec.layer_selector.clone().unwrap_or_default();
    let stored = pull_artifact(
        &client,
        Pulled {
            url: &url,
            digest: &resolved.digest,
            revision: &revision,
            selector: &selector,
            ignore: obj.spec.ignore.as_deref(),
        },
        ctx.storage.clone(),
        Owner {
            kind: KIND,
            namespace: &ns,
            name: &name,
        },
    )
    .await?;
    let (artifact, changed) = settle(&ctx.storage, status.artifact.as_ref(), stored);
    let owner = Owner {
        kind: KIND,
        namespace: &ns,
        name: &name,
    };
    status.url = Some(ctx.storage.url(&format!("{}/{LATEST}", owner.dir())));
    status.artifact = Some(artifact);
    status.observed_ignore = obj.spec.ignore.clone();
    status.observed_layer_selector = obj.spec.layer_selector.clone();
    Ok(Outcome {
        new_artifact: changed,
    })
}

/// What [`pull_artifact`] pulls.
pub struct Pulled<'a> {
    /// `spec.url`, for messages.
    pub url: &'a str,
    /// The manifest digest.
    pub digest: &'a str,
    /// The artifact's revision.
    pub revision: &'a str,
    /// Which layer, and what to do with it.
    pub selector: &'a OCILayerSelector,
    /// `spec.ignore`.
    pub ignore: Option<&'a str>,
}

/// Pulls the manifest, streams the selected layer to a temporary file (verified against its digest),
/// and stores it as `<digest>.tar.gz` for `owner` — extracted (links skipped, entries escaping the
/// folder refused) and archived reproducibly with the ignore rules, or copied as it is — with the
/// manifest's annotations as metadata.
pub async fn pull_artifact(
    client: &Client,
    pulled: Pulled<'_>,
    storage: std::sync::Arc<driftless_artifact::Storage>,
    owner: Owner<'_>,
) -> Result<driftless_api::meta::Artifact, Error> {
    let pull_error = |source| Error::Pull {
        url: pulled.url.to_string(),
        source,
    };
    let (manifest, _) = client.manifest(pulled.digest).await.map_err(pull_error)?;
    let layer = match pulled.selector.media_type.as_deref().filter(|m| !m.is_empty()) {
        Some(media_type) => manifest
            .layers
            .iter()
            .find(|l| l.media_type == media_type)
            .ok_or_else(|| {
                Error::Layer(format!(
                    "failed to find layer with media type '{media_type}' in artifact"
                ))
            })?,
        None => manifest
            .layers
            .first()
            .ok_or_else(|| Error::Layer("no layers found in artifact".into()))?,
    };
    let workdir = tempfile::Builder::new()
        .prefix("ocirepository-")
        .tempdir()
        .map_err(|e| Error::Storage(format!("failed to create temporary working directory: {e}")))?;
    let blob = workdir.path().join("layer");
    client
        .pull_to(layer, &blob, MAX_LAYER_SIZE)
        .await
        .map_err(pull_error)?;

    let file = format!("{}.tar.gz", pulled.digest);
    let operation = pulled.selector.operation.unwrap_or_default();
    let ignore = pulled.ignore.map(String::from);
    let (kind, ns, name, revision) = (
        owner.kind.to_string(),
        owner.namespace.to_string(),
        owner.name.to_string(),
        pulled.revision.to_string(),
    );
    let dir = workdir.path().to_path_buf();
    let stored = tokio::task::spawn_blocking(move || {
        let owner = Owner {
            kind: &kind,
            namespace: &ns,
            name: &name,
        };
        match operation {
            OCILayerOperation::Copy => storage
                .store_file(owner, &file, &revision, &dir.join("layer"), Some(LATEST))
                .map_err(|e| Error::Storage(format!("unable to copy artifact to storage: {e}"))),
            OCILayerOperation::Extract => {
                let extract_error = |e: &dyn std::fmt::Display| {
                    Error::Layer(format!("failed to extract layer contents from artifact: {e}"))
                };
                let content = dir.join("content");
                let layer = std::fs::File::open(dir.join("layer")).map_err(|e| extract_error(&e))?;
                let limits = Limits {
                    max_download: MAX_LAYER_SIZE,
                    max_unpacked: 4 * MAX_LAYER_SIZE,
                    max_entries: 1_000_000,
                    skip_links: true,
                };
                unpack(std::io::BufReader::new(layer), &content, limits).map_err(|e| extract_error(&e))?;
                let filter = Filter::for_source(&content, ignore.as_deref())
                    .map_err(|e| Error::InvalidSpec(e.to_string()))?;
                storage
                    .archive(owner, &file, &revision, &content, &filter)
                    .map_err(|e| Error::Storage(format!("unable to archive artifact to storage: {e}")))
            }
        }
    })
    .await
    .expect("storing an artifact does not panic")?;
    Ok(driftless_api::meta::Artifact {
        metadata: manifest.annotations.clone().filter(|m| !m.is_empty()),
        ..stored
    })
}

#[cfg(test)]
mod tests {
    use driftless_api::source::{OCILayerSelector, OCIRepositoryRef, OCIRepositorySpec};

    use super::*;

    #[test]
    fn the_reference_follows_fluxs_precedence() {
        let with = |r: OCIRepositoryRef| {
            let obj = OCIRepository::new(
                "a",
                OCIRepositorySpec {
                    url: "oci://h/a".into(),
                    reference: Some(r),
                    layer_selector: Some(OCILayerSelector {
                        media_type: Some(driftless_oci::HELM_CHART_MEDIA_TYPE.into()),
                        operation: None,
                    }),
                    ..Default::default()
                },
            );
            wanted(&obj)
        };
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            with(OCIRepositoryRef {
                digest: s("sha256:1"),
                semver: s("1.x"),
                tag: s("v1"),
                ..Default::default()
            }),
            Wanted::Digest("sha256:1".into())
        );
        assert_eq!(
            with(OCIRepositoryRef {
                semver: s("1.x"),
                semver_filter: s("^1"),
                tag: s("v1"),
                ..Default::default()
            }),
            Wanted::Semver {
                range: "1.x".into(),
                filter: s("^1"),
                media_type: s(driftless_oci::HELM_CHART_MEDIA_TYPE),
            }
        );
        assert_eq!(
            with(OCIRepositoryRef {
                tag: s("v1"),
                ..Default::default()
            }),
            Wanted::Tag("v1".into())
        );
        assert_eq!(with(OCIRepositoryRef::default()), Wanted::Tag("latest".into()));
    }
}
