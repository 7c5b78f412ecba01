//! The steps of a Bucket reconcile, in Flux's order: storage, source, artifact.

use std::time::Duration;

use driftless_api::{
    meta::{
        conditions::{ARTIFACT_OUTDATED, reasons},
        parse_duration,
    },
    source::{Bucket, BucketStatus, CloudProvider},
};
use driftless_artifact::{
    ignore::Filter,
    storage::{LATEST, Owner, collect_garbage, settle},
};
use futures::{StreamExt, TryStreamExt};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};
use tracing::debug;

use super::{
    Error, KIND,
    s3::{self, Keys, Object},
};
use crate::{
    Context,
    common::{secure_rel, verify_stored},
};

/// The ignore file read from the bucket's root (Flux's).
pub const IGNORE_FILE: &str = ".sourceignore";
/// The largest object fetched (Flux sets none; a bound keeps one object from filling the disk).
pub const MAX_OBJECT_SIZE: u64 = 1 << 30;
/// Objects fetched at once.
pub const CONCURRENT_FETCHES: usize = 16;

/// What a successful run did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The number of files fetched for a new artifact.
    pub fetched: Option<usize>,
}

/// `spec.timeout` (Flux's default 60s).
pub fn timeout(obj: &Bucket) -> Result<Duration, Error> {
    match &obj.spec.timeout {
        Some(t) => parse_duration(t).map_err(|e| Error::InvalidSpec(format!("invalid timeout: {e}"))),
        None => Ok(Duration::from_secs(60)),
    }
}

/// Flux's revision of a listing: the sha256 of its `key etag` lines, sorted by key.
pub fn revision(objects: &[Object]) -> String {
    let mut sorted: Vec<&Object> = objects.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut hasher = Sha256::new();
    for o in sorted {
        hasher.update(format!("{} {}\n", o.key, o.etag).as_bytes());
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// Runs the steps, updating `status` as they go; the last good artifact stays when one fails.
pub async fn run(obj: &Bucket, ctx: &Context, status: &mut BucketStatus) -> Result<Outcome, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    verify_stored(ctx, &obj.object_ref(&()), &mut status.artifact)
        .map_err(|e| Error::Storage(e.to_string()))?;

    // source
    let provider = obj.spec.provider.unwrap_or_default();
    if provider != CloudProvider::Generic {
        return Err(Error::InvalidSpec(format!(
            "provider '{}' is not supported yet: use 'generic' (S3 API) with spec.secretRef",
            serde_json::to_value(provider)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        )));
    }
    if obj.spec.sts.is_some() {
        return Err(Error::InvalidSpec("spec.sts is not supported yet".into()));
    }
    let endpoint = obj.spec.endpoint.clone();
    if endpoint.contains("://") || endpoint.trim_end_matches('/').contains('/') || endpoint.is_empty() {
        return Err(Error::Endpoint {
            endpoint,
            why: "expected 'host[:port]' without a scheme or path; set spec.insecure for plain HTTP".into(),
        });
    }
    let timeout = timeout(obj)?;
    let keys = match &obj.spec.secret_ref {
        Some(r) => {
            let data = driftless_credentials::secret_data(&ctx.client, &ns, &r.name).await?;
            let get = |k: &str| {
                data.get(k)
                    .map(|v| String::from_utf8_lossy(v).trim().to_string())
                    .filter(|v| !v.is_empty())
            };
            match (get("accesskey"), get("secretkey")) {
                (Some(access), Some(secret)) => Some(Keys { access, secret }),
                _ => {
                    return Err(driftless_credentials::Error::InvalidSpec(format!(
                        "invalid '{}' secret data: required fields 'accesskey' and 'secretkey'",
                        r.name
                    ))
                    .into());
                }
            }
        }
        None => None,
    };
    let tls = match &obj.spec.cert_secret_ref {
        Some(r) => {
            let data = driftless_credentials::secret_data(&ctx.client, &ns, &r.name).await?;
            driftless_git::Auth::from_secret(&data).tls
        }
        None => Default::default(),
    };
    let proxy = match &obj.spec.proxy_secret_ref {
        Some(r) => Some(driftless_credentials::proxy_url(
            &driftless_credentials::secret_data(&ctx.client, &ns, &r.name).await?,
            &format!("{ns}/{}", r.name),
        )?),
        None => None,
    };
    let http = tls
        .http_client(proxy.as_deref())
        .map_err(|e| driftless_credentials::Error::InvalidSpec(e.to_string()))?;
    let bucket_name = obj.spec.bucket_name.clone();
    let bucket = s3::Bucket::new(
        http,
        &endpoint,
        &bucket_name,
        obj.spec.region.as_deref(),
        obj.spec.insecure.unwrap_or(false),
        keys,
    );
    let bounded = |what: String| Error::Bucket(format!("{what}: timeout after {timeout:?}"));
    let exists = tokio::time::timeout(timeout, bucket.exists())
        .await
        .map_err(|_| bounded(format!("failed to confirm existence of '{bucket_name}' bucket")))?
        .map_err(|e| {
            Error::Bucket(format!(
                "failed to confirm existence of '{bucket_name}' bucket: {e}"
            ))
        })?;
    if !exists {
        return Err(Error::Bucket(format!("bucket '{bucket_name}' not found")));
    }
    let workdir = tempfile::Builder::new()
        .prefix("bucket-")
        .tempdir()
        .map_err(|e| Error::Storage(format!("failed to create temporary working directory: {e}")))?;
    let content = workdir.path().join("content");
    std::fs::create_dir_all(&content).map_err(|e| Error::Storage(e.to_string()))?;
    // the ignore rules: the bucket's own .sourceignore, then spec.ignore
    let mut patterns = String::new();
    let ignore_path = workdir.path().join(IGNORE_FILE);
    let mut ignore_file = std::fs::File::create(&ignore_path).map_err(|e| Error::Storage(e.to_string()))?;
    match bucket.get(IGNORE_FILE, &mut ignore_file, 1 << 20, timeout).await {
        Ok(_) => patterns.push_str(&std::fs::read_to_string(&ignore_path).unwrap_or_default()),
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            return Err(Error::Bucket(format!(
                "failed to get Etag for '{IGNORE_FILE}' object: {e}"
            )));
        }
    }
    if let Some(spec) = &obj.spec.ignore {
        patterns.push('\n');
        patterns.push_str(spec);
    }
    let filter = Filter::from_patterns(&content, &patterns).map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let prefix = obj.spec.prefix.clone().unwrap_or_default();
    let listed = tokio::time::timeout(timeout, bucket.list(&prefix))
        .await
        .map_err(|_| {
            bounded(format!(
                "indexation of objects from bucket '{bucket_name}' failed"
            ))
        })?
        .map_err(|e| {
            Error::Bucket(format!(
                "indexation of objects from bucket '{bucket_name}' failed: {e}"
            ))
        })?;
    let mut objects = Vec::new();
    for o in listed {
        if o.key.ends_with('/') || o.key == IGNORE_FILE {
            continue;
        }
        let Some(rel) = secure_rel(&o.key) else {
            return Err(Error::Bucket(format!(
                "refusing object '{}' of bucket '{bucket_name}': its key leaves the artifact's folder",
                o.key
            )));
        };
        if filter.is_excluded(&content.join(&rel), false) {
            continue;
        }
        objects.push(o);
    }
    let revision = revision(&objects);
    if let Some(artifact) = &status.artifact
        && artifact.revision == revision
        && status.observed_ignore == obj.spec.ignore
    {
        debug!(%revision, "artifact up-to-date with remote revision");
        collect_garbage(&ctx.storage, artifact);
        return Ok(Outcome::default());
    }
    if status.artifact.is_some() {
        driftless_runtime::conditions::mark_true(
            &mut status.conditions,
            ARTIFACT_OUTDATED,
            reasons::NEW_REVISION,
            &format!("new upstream revision '{revision}'"),
            obj.metadata.generation,
        );
    }

    // fetch, a bounded number at once
    let fetched = futures::stream::iter(objects.iter().cloned().map(|o| {
        let target = content.join(secure_rel(&o.key).expect("checked above"));
        let bucket = &bucket;
        async move {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| s3::Error::Io {
                    key: o.key.clone(),
                    source: e,
                })?;
            }
            let mut file = std::fs::File::create(&target).map_err(|e| s3::Error::Io {
                key: o.key.clone(),
                source: e,
            })?;
            match bucket.get(&o.key, &mut file, MAX_OBJECT_SIZE, timeout).await {
                Ok(_) => Ok(1usize),
                // listed, then deleted: not part of the artifact
                Err(e) if e.is_not_found() => {
                    let _ = std::fs::remove_file(&target);
                    Ok(0)
                }
                Err(e) => Err(e),
            }
        }
    }))
    .buffer_unordered(CONCURRENT_FETCHES)
    .try_fold(0usize, |n, k| async move { Ok(n + k) })
    .await
    .map_err(|e| Error::Bucket(format!("fetch from bucket '{bucket_name}' failed: {e}")))?;

    // artifact
    let storage = ctx.storage.clone();
    let (ns2, name2, revision2, dir) = (ns.clone(), name.clone(), revision.clone(), content.clone());
    let stored = tokio::task::spawn_blocking(move || {
        let owner = Owner {
            kind: KIND,
            namespace: &ns2,
            name: &name2,
        };
        let everything = Filter::from_patterns(&dir, "").map_err(|e| Error::Storage(e.to_string()))?;
        let file = format!("{}.tar.gz", revision2.trim_start_matches("sha256:"));
        storage
            .archive(owner, &file, &revision2, &dir, &everything)
            .map_err(|e| Error::Storage(format!("unable to archive artifact to storage: {e}")))
    })
    .await
    .expect("archiving does not panic")?;
    let (artifact, _) = settle(&ctx.storage, status.artifact.as_ref(), stored);
    let owner = Owner {
        kind: KIND,
        namespace: &ns,
        name: &name,
    };
    status.url = Some(ctx.storage.url(&format!("{}/{LATEST}", owner.dir())));
    status.artifact = Some(artifact);
    status.observed_ignore = obj.spec.ignore.clone();
    Ok(Outcome {
        fetched: Some(fetched),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revision_is_the_digest_of_sorted_key_etag_lines() {
        let o = |k: &str, e: &str| Object {
            key: k.into(),
            etag: e.into(),
        };
        let a = revision(&[o("b.yaml", "2"), o("a.yaml", "1")]);
        let b = revision(&[o("a.yaml", "1"), o("b.yaml", "2")]);
        assert_eq!(a, b, "order does not matter");
        let expected = format!("sha256:{}", hex::encode(Sha256::digest(b"a.yaml 1\nb.yaml 2\n")));
        assert_eq!(a, expected);
        assert_ne!(
            a,
            revision(&[o("a.yaml", "1"), o("b.yaml", "3")]),
            "an etag changes it"
        );
    }
}
