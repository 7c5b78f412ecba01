//! The steps of a HelmRepository reconcile, in Flux's order: storage, source, artifact.

use std::{io::Write, time::Duration};

use driftless_api::{
    meta::{
        conditions::{ARTIFACT_OUTDATED, reasons},
        parse_duration,
    },
    source::{HelmRepository, HelmRepositoryStatus, HelmRepositoryType},
};
use driftless_artifact::storage::{Owner, collect_garbage, settle};
use driftless_runtime::error::chain;
use futures::StreamExt;
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};
use tracing::debug;

use super::{Error, KIND};
use crate::{Context, common::verify_stored};

/// The link to a repository's newest index.
pub const INDEX_LINK: &str = "index.yaml";

/// What a successful run did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Whether a new index was stored.
    pub new_artifact: bool,
    /// A repository of type `oci`: nothing fetched.
    pub static_oci: bool,
}

/// `spec.timeout` (Flux's default 60s).
pub fn timeout(obj: &HelmRepository) -> Result<Duration, Error> {
    match &obj.spec.timeout {
        Some(t) => parse_duration(t).map_err(|e| Error::InvalidSpec(format!("invalid timeout: {e}"))),
        None => Ok(Duration::from_secs(60)),
    }
}

/// The repository URL with one trailing slash, as Flux normalises it.
pub fn normalize(url: &str) -> String {
    format!("{}/", url.trim_end_matches('/'))
}

/// `<url>/index.yaml`.
pub fn index_url(url: &str) -> String {
    format!("{}index.yaml", normalize(url))
}

/// Runs the steps, updating `status` as they go; the last good artifact stays when one fails.
pub async fn run(
    obj: &HelmRepository,
    ctx: &Context,
    status: &mut HelmRepositoryStatus,
) -> Result<Outcome, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let owner = Owner {
        kind: KIND,
        namespace: &ns,
        name: &name,
    };
    if obj.spec.type_ == Some(HelmRepositoryType::Oci) {
        // no index: what a default-type repository stored goes
        if status.artifact.take().is_some() {
            crate::common::remove_artifacts(ctx, owner).map_err(|e| Error::Storage(e.to_string()))?;
        }
        status.url = None;
        if !obj.spec.url.starts_with("oci://") {
            return Err(Error::Url(format!(
                "a repository of type 'oci' needs an 'oci://' URL, not '{}'",
                obj.spec.url
            )));
        }
        return Ok(Outcome {
            static_oci: true,
            ..Default::default()
        });
    }
    verify_stored(ctx, &obj.object_ref(&()), &mut status.artifact)
        .map_err(|e| Error::Storage(e.to_string()))?;

    // source
    let url = &obj.spec.url;
    if url.starts_with("oci://") {
        return Err(Error::Url(
            "'oci' URL scheme cannot be used with 'default' HelmRepository type".into(),
        ));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| Error::Url(format!("parse \"{url}\": {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Url(format!(
            "scheme \"{}\" not supported: use http or https",
            parsed.scheme()
        )));
    }
    let timeout = timeout(obj)?;
    let creds = driftless_credentials::helm::for_helm_repository(
        &ctx.client,
        &ns,
        obj.spec.secret_ref.as_ref(),
        obj.spec.cert_secret_ref.as_ref(),
    )
    .await?;
    let http = creds.http_client()?;
    let index = tempfile::Builder::new()
        .prefix("helm-index-")
        .tempfile()
        .map_err(|e| Error::Storage(format!("failed to create temporary file: {e}")))?;
    let (digest, size) = download(
        &creds,
        &http,
        &index_url(url),
        index.as_file(),
        ctx.helm.helm_index_max_size,
        timeout,
    )
    .await?;
    let revision = format!("sha256:{digest}");
    if let Some(artifact) = &status.artifact
        && artifact.revision == revision
    {
        debug!(%revision, "artifact up-to-date with remote revision");
        collect_garbage(&ctx.storage, artifact);
        return Ok(Outcome::default());
    }
    // an index is checked before it is stored: streamed, one chart version at a time
    let path = index.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).map_err(|e| Error::Index(e.to_string()))?;
        driftless_helm::index::walk(file, None, |_, _| {}).map_err(|e| Error::Index(e.to_string()))
    })
    .await
    .expect("walking an index does not panic")?;
    if status.artifact.is_some() {
        driftless_runtime::conditions::mark_true(
            &mut status.conditions,
            ARTIFACT_OUTDATED,
            reasons::NEW_REVISION,
            &format!("new index revision '{revision}'"),
            obj.metadata.generation,
        );
    }

    // artifact
    let storage = ctx.storage.clone();
    let (ns2, name2, revision2, path) = (
        ns.clone(),
        name.clone(),
        revision.clone(),
        index.path().to_path_buf(),
    );
    let stored = tokio::task::spawn_blocking(move || {
        let owner = Owner {
            kind: KIND,
            namespace: &ns2,
            name: &name2,
        };
        storage.store_file(
            owner,
            &format!("index-{digest}.yaml"),
            &revision2,
            &path,
            Some(INDEX_LINK),
        )
    })
    .await
    .expect("storing an index does not panic")
    .map_err(|e| Error::Storage(format!("unable to save artifact to storage: {e}")))?;
    debug!(size, "stored index");
    let (artifact, changed) = settle(&ctx.storage, status.artifact.as_ref(), stored);
    status.url = Some(ctx.storage.url(&format!("{}/{INDEX_LINK}", owner.dir())));
    status.artifact = Some(artifact);
    Ok(Outcome {
        new_artifact: changed,
        static_oci: false,
    })
}

/// Streams `url` into `out`, refusing more than `max` bytes; returns the sha256 (hex) and size.
pub async fn download(
    creds: &driftless_credentials::helm::HelmCredentials,
    http: &reqwest::Client,
    url: &str,
    mut out: &std::fs::File,
    max: u64,
    timeout: Duration,
) -> Result<(String, u64), Error> {
    let fetch = |e: &dyn std::fmt::Display| Error::Fetch(format!("failed to fetch {url} : {e}"));
    let op = async {
        let resp = creds
            .authorize(http.get(url))
            .send()
            .await
            .map_err(|e| fetch(&chain(&e)))?;
        if !resp.status().is_success() {
            return Err(fetch(&resp.status()));
        }
        if resp.content_length().is_some_and(|l| l > max) {
            return Err(Error::Fetch(format!(
                "index exceeds the maximum index file size of {max} bytes"
            )));
        }
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| fetch(&chain(&e)))?;
            size += chunk.len() as u64;
            if size > max {
                return Err(Error::Fetch(format!(
                    "index exceeds the maximum index file size of {max} bytes"
                )));
            }
            hasher.update(&chunk);
            out.write_all(&chunk)
                .map_err(|e| Error::Storage(format!("writing the index: {e}")))?;
        }
        out.flush()
            .map_err(|e| Error::Storage(format!("writing the index: {e}")))?;
        Ok((hex::encode(hasher.finalize()), size))
    };
    tokio::time::timeout(timeout, op)
        .await
        .map_err(|_| fetch(&format!("timeout after {timeout:?}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised_as_flux_does() {
        assert_eq!(
            normalize("https://charts.example.com"),
            "https://charts.example.com/"
        );
        assert_eq!(
            normalize("https://charts.example.com/sub//"),
            "https://charts.example.com/sub/"
        );
        assert_eq!(index_url("http://h:1/charts"), "http://h:1/charts/index.yaml");
    }
}
