//! A Kustomization's drift: what a server-side dry-run of the revision it applied would change in the
//! cluster now. Its source's artifact is downloaded (verified against its digest), built as the
//! controller builds it and compared object by object — `driftless diff`'s code, on the artifact instead
//! of a local directory.

use std::time::Duration;

use driftless_api::kustomize::Kustomization;
use driftless_artifact::{archive::HashingWriter, fetch};
use futures::AsyncReadExt as _;
use kube::{Api, api::DynamicObject};
use serde_json::Value;

use crate::{
    cluster::Cluster,
    diff::{self, Change},
    objects::at,
};

/// A drift report.
pub struct Report {
    /// The revision compared.
    pub revision: String,
    /// Set when the source has moved past what the Kustomization last applied.
    pub note: Option<String>,
    /// Each object that would change.
    pub changes: Vec<(String, Change)>,
}

/// The service behind an in-cluster artifact URL (`http://source-controller.flux-system.svc.cluster.local./path`),
/// as the API server's service proxy path to the same file, for a dashboard outside the cluster.
pub fn proxy_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => (authority, "80"),
    };
    let host = host.trim_end_matches('.');
    let mut labels = host.split('.');
    let (service, namespace) = (labels.next()?, labels.next()?);
    let tail: Vec<&str> = labels.collect();
    if !(tail == ["svc"] || tail == ["svc", "cluster", "local"]) {
        return None;
    }
    Some(format!(
        "/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{path}"
    ))
}

/// Downloads the artifact at `url` into `dest`, checking `digest`: directly, else (outside the cluster)
/// through the API server's service proxy.
async fn download(cluster: &Cluster, url: &str, digest: &str, dest: &std::path::Path) -> anyhow::Result<()> {
    let limits = fetch::Limits::default();
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let proxied = if in_cluster { None } else { proxy_path(url) };
    let Some(path) = proxied else {
        let http = fetch::http_client(Duration::from_secs(60));
        fetch::fetch_and_unpack(&http, url, digest, dest, limits).await?;
        return Ok(());
    };
    let request = axum::http::Request::get(&path).body(Vec::new())?;
    let mut body = cluster
        .client
        .request_stream(request)
        .await
        .map_err(|e| anyhow::anyhow!("downloading {url} through the API server: {e}"))?;
    let mut bytes = Vec::new();
    body.read_to_end(&mut bytes).await?;
    anyhow::ensure!(
        (bytes.len() as u64) <= limits.max_download,
        "{url}: download over {} bytes",
        limits.max_download
    );
    let mut hashing = HashingWriter::new(Vec::new());
    std::io::Write::write_all(&mut hashing, &bytes)?;
    let (_, computed, _) = hashing.finish();
    anyhow::ensure!(
        computed == digest,
        "{url}: the download's digest {computed} is not the artifact's {digest}"
    );
    let dest = dest.to_path_buf();
    tokio::task::spawn_blocking(move || fetch::unpack(&bytes[..], &dest, limits)).await??;
    Ok(())
}

/// The drift of the Kustomization `namespace/name`.
pub async fn compute(cluster: &Cluster, namespace: &str, name: &str) -> anyhow::Result<Report> {
    let api: Api<Kustomization> = Api::namespaced(cluster.client.clone(), namespace);
    let Some(ks) = api.get_opt(name).await? else {
        anyhow::bail!("Kustomization {namespace}/{name} not found");
    };
    let applied = ks
        .status
        .as_ref()
        .and_then(|s| s.last_applied_revision.clone())
        .unwrap_or_default();
    anyhow::ensure!(
        !applied.is_empty(),
        "Kustomization {namespace}/{name} has not applied a revision yet"
    );
    let source = &ks.spec.source_ref;
    let source_ns = source.namespace.as_deref().unwrap_or(namespace);
    let kind = driftless_api::kinds::get(&source.kind)
        .ok_or_else(|| anyhow::anyhow!("unknown source kind {}", source.kind))?;
    let sources: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), source_ns, &kind.api_resource());
    let Some(src) = sources.get_opt(&source.name).await? else {
        anyhow::bail!(
            "its source {} {source_ns}/{} is not found",
            source.kind,
            source.name
        );
    };
    let src: Value = serde_json::to_value(src)?;
    let (url, digest, revision) = (
        at(&src, "/status/artifact/url"),
        at(&src, "/status/artifact/digest"),
        at(&src, "/status/artifact/revision"),
    );
    anyhow::ensure!(
        !url.is_empty(),
        "its source {} {source_ns}/{} has no artifact",
        source.kind,
        source.name
    );
    let note = (revision != applied).then(|| {
        format!(
            "the source has moved to {revision} since the Kustomization applied {applied}: this is what \
             applying {revision} would change"
        )
    });
    let scratch = tempfile::tempdir()?;
    let root = scratch.path().join("tree");
    download(cluster, url, digest, &root).await?;
    let path = driftless_kustomization::confined(ks.spec.path.as_deref().unwrap_or_default());
    anyhow::ensure!(
        root.join(&path).is_dir(),
        "kustomization path not found in the artifact: {}",
        if path.is_empty() { "." } else { &path }
    );
    let changes = diff::changes(cluster, &ks, &root, &path, revision).await?;
    Ok(Report {
        revision: revision.to_string(),
        note,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_cluster_artifact_urls_go_through_the_service_proxy() {
        assert_eq!(
            proxy_path(
                "http://source-controller.flux-system.svc.cluster.local./gitrepository/a/b/sha.tar.gz"
            )
            .as_deref(),
            Some(
                "/api/v1/namespaces/flux-system/services/source-controller:80/proxy/gitrepository/a/b/sha.tar.gz"
            )
        );
        assert_eq!(
            proxy_path("http://src.ns.svc:9090/x.tar.gz").as_deref(),
            Some("/api/v1/namespaces/ns/services/src:9090/proxy/x.tar.gz")
        );
        assert_eq!(proxy_path("http://127.0.0.1:9090/x.tar.gz"), None);
        assert_eq!(proxy_path("https://example.com/x.tar.gz"), None);
    }
}
