//! A chart's dependencies from chart repositories, resolved as Flux's dependency manager does: a
//! HelmRepository in the chart's namespace with the same URL lends its stored index and its
//! credentials, otherwise the repository's index is fetched anonymously (bounded); the version the
//! dependency's range picks is downloaded, checked, and packaged as `charts/<name>-<version>.tgz`.
//! `oci://` dependencies are pulled from the registry (with the credentials of a matching OCI
//! HelmRepository). Repository aliases (`@name`) need a Helm client configuration and are refused.

use std::time::Duration;

use driftless_api::source::{HelmRepository, HelmRepositoryType};
use driftless_helm::{
    chart::{Dependency, Limits, archive_metadata},
    index::{select, versions_of},
};
use kube::{Api, ResourceExt, api::ListParams};

use super::{
    BuildReason, Error,
    steps::{ChartSource, download_chart},
};
use crate::{Context, helmrepository::steps::normalize};

/// Fetches `dep` for a chart in `namespace`: its path inside the chart and its archive.
pub async fn fetch(
    ctx: &Context,
    namespace: &str,
    dep: &Dependency,
    limits: Limits,
) -> Result<(String, Vec<u8>), Error> {
    let failed = |m: String| {
        Error::build(
            BuildReason::Dependency,
            format!("failed to fetch dependency '{}': {m}", dep.name),
        )
    };
    let url = dep.repository.trim();
    if url.is_empty() {
        return Err(failed(
            "it has no repository and is not vendored in charts/".into(),
        ));
    }
    if url.starts_with('@') || url.starts_with("alias:") {
        return Err(failed(format!(
            "repository alias '{url}' cannot be resolved: use the repository's URL"
        )));
    }
    let repos = Api::<HelmRepository>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default())
        .await?;
    let archive = if url.starts_with("oci://") {
        let lender = repos.items.iter().find(|r| {
            r.spec.type_ == Some(HelmRepositoryType::Oci)
                && url.trim_end_matches('/') == r.spec.url.trim_end_matches('/')
        });
        from_oci(ctx, namespace, dep, url, lender).await?
    } else {
        let lender = repos.items.iter().find(|r| {
            r.spec.type_ != Some(HelmRepositoryType::Oci) && normalize(&r.spec.url) == normalize(url)
        });
        from_http(ctx, dep, url, lender).await?
    };
    let path = archive.to_path_buf();
    let meta = tokio::task::spawn_blocking(move || archive_metadata(&path, limits))
        .await
        .expect("reading a chart does not panic")
        .map_err(|e| failed(e.to_string()))?;
    let bytes = std::fs::read(&archive).map_err(|e| failed(e.to_string()))?;
    Ok((format!("charts/{}-{}.tgz", meta.name, meta.version), bytes))
}

async fn from_http(
    ctx: &Context,
    dep: &Dependency,
    url: &str,
    lender: Option<&HelmRepository>,
) -> Result<tempfile::TempPath, Error> {
    let failed = |m: String| {
        Error::build(
            BuildReason::Dependency,
            format!("failed to fetch dependency '{}': {m}", dep.name),
        )
    };
    let (creds, pass_credentials, timeout) = match lender {
        Some(r) => (
            driftless_credentials::helm::for_helm_repository(
                &ctx.client,
                &r.namespace().unwrap_or_default(),
                r.spec.secret_ref.as_ref(),
                r.spec.cert_secret_ref.as_ref(),
            )
            .await?,
            r.spec.pass_credentials.unwrap_or(false),
            crate::helmrepository::steps::timeout(r).unwrap_or(Duration::from_secs(60)),
        ),
        None => (Default::default(), false, Duration::from_secs(60)),
    };
    // the lender's stored index, or the repository's fetched now
    let stored = lender
        .and_then(|r| r.status.as_ref()?.artifact.clone())
        .filter(|a| ctx.storage.exists(a))
        .and_then(|a| ctx.storage.local_path(&a.path).ok());
    let fetched;
    let index = match stored {
        Some(path) => path,
        None => {
            let http = creds.http_client()?;
            let file = tempfile::NamedTempFile::new().map_err(|e| Error::Storage(e.to_string()))?;
            crate::helmrepository::steps::download(
                &creds,
                &http,
                &crate::helmrepository::steps::index_url(url),
                file.as_file(),
                ctx.helm.helm_index_max_size,
                timeout,
            )
            .await
            .map_err(|e| failed(e.to_string()))?;
            fetched = file.into_temp_path();
            fetched.to_path_buf()
        }
    };
    let name = dep.name.clone();
    let range = dep.version.clone();
    let cv = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let file = std::fs::File::open(&index).map_err(|e| e.to_string())?;
        let versions = versions_of(std::io::BufReader::new(file), &name).map_err(|e| e.to_string())?;
        select(&versions, &name, &range)
    })
    .await
    .expect("reading an index does not panic")
    .map_err(failed)?;
    let source = ChartSource {
        base: normalize(url),
        creds,
        pass_credentials,
        timeout,
    };
    download_chart(
        &source,
        &cv,
        ctx.helm.helm_chart_max_size,
        &format!("dependency '{}'", dep.name),
    )
    .await
}

async fn from_oci(
    ctx: &Context,
    namespace: &str,
    dep: &Dependency,
    url: &str,
    lender: Option<&HelmRepository>,
) -> Result<tempfile::TempPath, Error> {
    let failed = |m: String| {
        Error::build(
            BuildReason::Dependency,
            format!("failed to fetch dependency '{}': {m}", dep.name),
        )
    };
    let repository = driftless_oci::Repository::parse(&format!("{}/{}", url.trim_end_matches('/'), dep.name))
        .map_err(|e| failed(e.to_string()))?;
    let timeout = lender
        .and_then(|r| crate::helmrepository::steps::timeout(r).ok())
        .unwrap_or(Duration::from_secs(60));
    let (keychain, options) = driftless_credentials::oci::for_registry(
        &ctx.client,
        driftless_credentials::oci::RegistryRefs {
            namespace,
            secret: lender.and_then(|r| r.spec.secret_ref.as_ref()),
            service_account: None,
            cert_secret: lender.and_then(|r| r.spec.cert_secret_ref.as_ref()),
            proxy_secret: None,
            insecure: lender.and_then(|r| r.spec.insecure).unwrap_or(false),
        },
        timeout,
    )
    .await?;
    let client = driftless_oci::Client::new(&repository, &keychain, &options, &ctx.oci)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let tags = client.tags().await.map_err(|e| failed(e.to_string()))?;
    let tag = driftless_oci::highest(
        &tags,
        if dep.version.is_empty() { "*" } else { &dep.version },
        None,
        true,
    )
    .map_err(|e| failed(e.to_string()))?;
    let resolved = client
        .resolve(&driftless_oci::Wanted::Tag(tag))
        .await
        .map_err(|e| failed(e.to_string()))?;
    let (manifest, _) = client
        .manifest(&resolved.digest)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let layer = manifest
        .layers
        .iter()
        .find(|l| l.media_type == driftless_oci::HELM_CHART_MEDIA_TYPE)
        .ok_or_else(|| failed(format!("no chart layer in '{url}/{}'", dep.name)))?;
    let out = tempfile::NamedTempFile::new()
        .map_err(|e| Error::Storage(e.to_string()))?
        .into_temp_path();
    client
        .pull_to(layer, &out, ctx.helm.helm_chart_max_size)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(out)
}
