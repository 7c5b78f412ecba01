//! The steps of a HelmChart reconcile, in Flux's order: storage, source (the chart built), artifact.

use std::{path::Path, time::Duration};

use driftless_api::{
    meta::{Artifact, conditions::ARTIFACT_OUTDATED},
    source::{
        Bucket, GitRepository, HelmChart, HelmChartStatus, HelmRepository, HelmRepositoryType,
        ReconcileStrategy,
    },
};
use driftless_artifact::storage::{LATEST, Owner, settle};
use driftless_helm::{
    chart::{Limits, archive_metadata, with_build_metadata},
    index::{ChartVersion, select, versions_of},
};
use kube::{Api, Resource, ResourceExt};

use super::{
    BuildReason, CHART_PACKAGE_SUCCEEDED, CHART_PULL_SUCCEEDED, Error, KIND,
    build::{self, effective_values_files},
    dependencies,
};
use crate::{
    Context,
    common::verify_stored,
    helmrepository::steps::{normalize, timeout as repository_timeout},
};

/// What a successful run built.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The chart's name.
    pub name: String,
    /// Its version (the artifact's revision).
    pub version: String,
    /// Whether it was packaged (rather than pulled as it is).
    pub packaged: bool,
    /// The values files merged.
    pub values_files: Vec<String>,
    /// Whether a new artifact was stored.
    pub new_artifact: bool,
}

impl Outcome {
    /// Flux's summary: `pulled 'podinfo' chart with version '6.5.0'`, `packaged …`, `… and merged
    /// values files [a.yaml b.yaml]`.
    pub fn summary(&self) -> String {
        let action = if self.packaged { "packaged" } else { "pulled" };
        let mut s = format!("{action} '{}' chart with version '{}'", self.name, self.version);
        if !self.values_files.is_empty() {
            s.push_str(&format!(
                " and merged values files [{}]",
                self.values_files.join(" ")
            ));
        }
        s
    }

    /// Flux's reason: `ChartPackageSucceeded` or `ChartPullSucceeded`.
    pub fn reason(&self) -> &'static str {
        if self.packaged {
            CHART_PACKAGE_SUCCEEDED
        } else {
            CHART_PULL_SUCCEEDED
        }
    }
}

/// A built chart: where it is (`None`: the stored artifact is it), and what it is.
struct Built {
    path: Option<tempfile::TempPath>,
    outcome: Outcome,
}

/// Runs the steps, updating `status` as they go; the last good artifact stays when one fails.
pub async fn run(obj: &HelmChart, ctx: &Context, status: &mut HelmChartStatus) -> Result<Outcome, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    verify_stored(ctx, &obj.object_ref(&()), &mut status.artifact)
        .map_err(|e| Error::Storage(e.to_string()))?;
    // a changed spec builds anew; otherwise a stored chart of the same name and version is kept
    let cached = status
        .artifact
        .as_ref()
        .filter(|_| status.observed_generation == obj.metadata.generation)
        .and_then(|a| ctx.storage.local_path(&a.path).ok());
    let limits = Limits {
        max_file: ctx.helm.helm_chart_file_max_size,
        max_total: ctx.helm.helm_chart_max_size.saturating_mul(10),
    };
    let source = &obj.spec.source_ref;
    let client = ctx.client.clone();
    let no_artifact = || Error::NoSourceArtifact {
        kind: source.kind.clone(),
        name: source.name.clone(),
    };
    let get_error = |e: kube::Error| Error::SourceUnavailable(driftless_runtime::error::api_message(&e));
    let built = match source.kind.as_str() {
        "HelmRepository" => {
            let repo = Api::<HelmRepository>::namespaced(client, &ns)
                .get(&source.name)
                .await
                .map_err(get_error)?;
            if repo.spec.type_ == Some(HelmRepositoryType::Oci) {
                status.observed_source_artifact_revision = None;
                from_oci(obj, ctx, &repo, cached.as_deref(), limits).await?
            } else {
                let artifact = repo
                    .status
                    .as_ref()
                    .and_then(|s| s.artifact.clone())
                    .filter(|a| ctx.storage.exists(a))
                    .ok_or_else(no_artifact)?;
                status.observed_source_artifact_revision = Some(artifact.revision.clone());
                from_repository(obj, ctx, &repo, &artifact, cached.as_deref(), limits).await?
            }
        }
        "GitRepository" | "Bucket" => {
            let artifact = if source.kind == "GitRepository" {
                Api::<GitRepository>::namespaced(client, &ns)
                    .get(&source.name)
                    .await
                    .map_err(get_error)?
                    .status
                    .and_then(|s| s.artifact)
            } else {
                Api::<Bucket>::namespaced(client, &ns)
                    .get(&source.name)
                    .await
                    .map_err(get_error)?
                    .status
                    .and_then(|s| s.artifact)
            }
            .filter(|a| ctx.storage.exists(a))
            .ok_or_else(no_artifact)?;
            status.observed_source_artifact_revision = Some(artifact.revision.clone());
            from_tarball(obj, ctx, &artifact, cached.as_deref(), limits).await?
        }
        other => return Err(Error::UnsupportedSourceKind(other.to_string())),
    };

    // artifact
    let mut outcome = built.outcome;
    // a stored chart of another name or version: outdated until the new one is stored
    if let Some(stored) = &status.artifact
        && (stored.revision != outcome.version
            || status.observed_chart_name.as_deref() != Some(outcome.name.as_str()))
    {
        driftless_runtime::conditions::mark_true(
            &mut status.conditions,
            ARTIFACT_OUTDATED,
            "NewChart",
            &outcome.summary(),
            obj.metadata.generation,
        );
    }
    if let Some(path) = built.path {
        let storage = ctx.storage.clone();
        let (ns2, name2, version) = (ns.clone(), name.clone(), outcome.version.clone());
        let file = format!("{}-{}.tgz", outcome.name, outcome.version);
        let stored = tokio::task::spawn_blocking(move || {
            let owner = Owner {
                kind: KIND,
                namespace: &ns2,
                name: &name2,
            };
            storage.store_file(owner, &file, &version, &path, Some(LATEST))
        })
        .await
        .expect("storing a chart does not panic")
        .map_err(|e| Error::Storage(format!("unable to copy Helm chart to storage: {e}")))?;
        let (artifact, changed) = settle(&ctx.storage, status.artifact.as_ref(), stored);
        status.artifact = Some(artifact);
        outcome.new_artifact = changed;
    }
    let owner = Owner {
        kind: KIND,
        namespace: &ns,
        name: &name,
    };
    status.url = Some(ctx.storage.url(&format!("{}/{LATEST}", owner.dir())));
    status.observed_chart_name = Some(outcome.name.clone());
    status.observed_values_files = obj
        .spec
        .ignore_missing_values_files
        .unwrap_or(false)
        .then(|| outcome.values_files.clone());
    Ok(outcome)
}

/// The stored chart at `cached` when it has `name` and `version` (nothing to download or build).
fn reuse(cached: Option<&Path>, name: &str, version: &str, limits: Limits) -> bool {
    cached.is_some_and(|p| archive_metadata(p, limits).is_ok_and(|m| m.name == name && m.version == version))
}

fn values_files(obj: &HelmChart) -> Vec<String> {
    effective_values_files(obj.spec.values_files.as_deref().unwrap_or_default()).to_vec()
}

/// A chart from an HTTP repository: the version the range picks in the stored index, downloaded and
/// checked, re-packaged when values files or version metadata change it.
async fn from_repository(
    obj: &HelmChart,
    ctx: &Context,
    repo: &HelmRepository,
    index: &Artifact,
    cached: Option<&Path>,
    limits: Limits,
) -> Result<Built, Error> {
    let index_path = ctx
        .storage
        .local_path(&index.path)
        .map_err(|e| Error::Storage(e.to_string()))?;
    let chart = obj.spec.chart.clone();
    let range = obj.spec.version.clone().unwrap_or_else(|| "*".into());
    let cv: ChartVersion = tokio::task::spawn_blocking({
        let chart = chart.clone();
        let range = range.clone();
        move || {
            let file = std::fs::File::open(&index_path).map_err(|e| {
                Error::build(BuildReason::Pull, format!("failed to open the stored index: {e}"))
            })?;
            let versions = versions_of(std::io::BufReader::new(file), &chart).map_err(|e| {
                Error::build(BuildReason::Pull, format!("failed to load the stored index: {e}"))
            })?;
            select(&versions, &chart, &range).map_err(|e| {
                Error::build(
                    BuildReason::Reference,
                    format!("failed to get chart version for remote reference: {e}"),
                )
            })
        }
    })
    .await
    .expect("reading an index does not panic")?;
    let files = values_files(obj);
    let meta = (!files.is_empty()).then(|| obj.metadata.generation.unwrap_or(0).to_string());
    let version = match &meta {
        Some(m) => {
            with_build_metadata(&cv.version, m).map_err(|e| Error::build(BuildReason::MetadataPatch, e))?
        }
        None => cv.version.clone(),
    };
    let mut outcome = Outcome {
        name: cv.name.clone(),
        version: version.clone(),
        packaged: meta.is_some(),
        values_files: if meta.is_some() { files.clone() } else { Vec::new() },
        new_artifact: false,
    };
    if reuse(cached, &outcome.name, &version, limits) {
        return Ok(Built { path: None, outcome });
    }
    let creds = driftless_credentials::helm::for_helm_repository(
        &ctx.client,
        &repo.namespace().unwrap_or_default(),
        repo.spec.secret_ref.as_ref(),
        repo.spec.cert_secret_ref.as_ref(),
    )
    .await?;
    let source = ChartSource {
        base: normalize(&repo.spec.url),
        creds,
        pass_credentials: repo.spec.pass_credentials.unwrap_or(false),
        timeout: repository_timeout(repo).unwrap_or(Duration::from_secs(60)),
    };
    let download = download_chart(&source, &cv, ctx.helm.helm_chart_max_size, "remote reference").await?;
    finish_remote(
        download,
        &cv.name,
        &files,
        obj,
        limits,
        meta.is_some(),
        &mut outcome,
    )
    .await
    .map(|path| Built {
        path: Some(path),
        outcome,
    })
}

/// Where a repository's charts are downloaded from, and how.
pub(super) struct ChartSource {
    /// The repository URL, normalised (chart URLs in the index are relative to it).
    pub base: String,
    /// Its credentials.
    pub creds: driftless_credentials::helm::HelmCredentials,
    /// Whether they go to other hosts too.
    pub pass_credentials: bool,
    /// The bound of a download.
    pub timeout: Duration,
}

/// Downloads the chart archive of `cv` (bounded by `max`, its digest checked against the index's);
/// `what` names it in messages (`remote reference`, `dependency 'x'`).
pub(super) async fn download_chart(
    source: &ChartSource,
    cv: &ChartVersion,
    max: u64,
    what: &str,
) -> Result<tempfile::TempPath, Error> {
    let first = cv.urls.first().ok_or_else(|| {
        Error::build(
            BuildReason::Pull,
            format!("chart '{}' version '{}' has no download URL", cv.name, cv.version),
        )
    })?;
    let base_url = reqwest::Url::parse(&source.base).map_err(|e| Error::Url(e.to_string()))?;
    let url = base_url
        .join(first)
        .map_err(|e| Error::build(BuildReason::Pull, format!("invalid chart URL '{first}': {e}")))?;
    // NB: credentials go to the repository's own host only, unless passCredentials says otherwise
    let same_host = url.host_str() == base_url.host_str()
        && url.port_or_known_default() == base_url.port_or_known_default();
    let creds = if same_host || source.pass_credentials {
        source.creds.clone()
    } else {
        driftless_credentials::helm::HelmCredentials {
            basic: None,
            ..source.creds.clone()
        }
    };
    let http = creds.http_client()?;
    let download = tempfile::NamedTempFile::new().map_err(|e| Error::Storage(e.to_string()))?;
    let (digest, _) = crate::helmrepository::steps::download(
        &creds,
        &http,
        url.as_str(),
        download.as_file(),
        max,
        source.timeout,
    )
    .await
    .map_err(|e| {
        let text = e
            .to_string()
            .replace("failed to fetch Helm repository index: ", "");
        let text = text.replace(
            "index exceeds the maximum index file size",
            "chart exceeds the maximum chart file size",
        );
        if ["401", "403", "unauthorized", "Unauthorized"]
            .iter()
            .any(|s| text.contains(s))
        {
            Error::Authentication(format!("failed to download chart for {what}: {text}"))
        } else {
            Error::build(
                BuildReason::Pull,
                format!("failed to download chart for {what}: {text}"),
            )
        }
    })?;
    if let Some(expected) = cv.digest.as_deref().filter(|d| !d.is_empty())
        && expected.trim_start_matches("sha256:") != digest
    {
        return Err(Error::build(
            BuildReason::Pull,
            format!(
                "failed to verify chart digest: the index says sha256:{}, the download is sha256:{digest}",
                expected.trim_start_matches("sha256:")
            ),
        ));
    }
    Ok(download.into_temp_path())
}

/// Checks a downloaded chart and re-packages it when it must change; returns the file to store.
async fn finish_remote(
    downloaded: tempfile::TempPath,
    name: &str,
    files: &[String],
    obj: &HelmChart,
    limits: Limits,
    repackage: bool,
    outcome: &mut Outcome,
) -> Result<tempfile::TempPath, Error> {
    let name = name.to_string();
    let files = files.to_vec();
    let ignore_missing = obj.spec.ignore_missing_values_files.unwrap_or(false);
    let version = outcome.version.clone();
    let (path, used) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
        let meta = archive_metadata(&downloaded, limits).map_err(|e| {
            Error::build(
                BuildReason::Pull,
                format!("failed to load chart metadata from written chart: {e}"),
            )
        })?;
        if meta.name != name {
            return Err(Error::build(
                BuildReason::Pull,
                format!("the downloaded chart is '{}', not '{name}'", meta.name),
            ));
        }
        if !repackage {
            return Ok((downloaded, Vec::new()));
        }
        let work = tempfile::tempdir().map_err(|e| Error::Storage(e.to_string()))?;
        let out = tempfile::NamedTempFile::new()
            .map_err(|e| Error::Storage(e.to_string()))?
            .into_temp_path();
        let used = build::repackage(
            &downloaded,
            work.path(),
            &version,
            &files,
            ignore_missing,
            limits,
            &out,
        )?;
        Ok((out, used))
    })
    .await
    .expect("building a chart does not panic")?;
    if repackage {
        outcome.values_files = used;
    }
    Ok(path)
}

/// A chart from an OCI repository: the tag the range picks (Helm spells SemVer's `+` as `_` in tags),
/// its chart layer pulled and checked.
async fn from_oci(
    obj: &HelmChart,
    ctx: &Context,
    repo: &HelmRepository,
    cached: Option<&Path>,
    limits: Limits,
) -> Result<Built, Error> {
    let url = format!("{}/{}", repo.spec.url.trim_end_matches('/'), obj.spec.chart);
    let repository = driftless_oci::Repository::parse(&url).map_err(|e| Error::Url(e.to_string()))?;
    let ns = repo.namespace().unwrap_or_default();
    let timeout = repository_timeout(repo).unwrap_or(Duration::from_secs(60));
    let (keychain, options) = driftless_credentials::oci::for_registry(
        &ctx.client,
        driftless_credentials::oci::RegistryRefs {
            namespace: &ns,
            secret: repo.spec.secret_ref.as_ref(),
            service_account: None,
            cert_secret: repo.spec.cert_secret_ref.as_ref(),
            proxy_secret: None,
            insecure: repo.spec.insecure.unwrap_or(false),
        },
        timeout,
    )
    .await?;
    let pull = |e: driftless_oci::Error| match e {
        driftless_oci::Error::Unauthorized(m) => Error::Authentication(m),
        e => Error::build(
            BuildReason::Pull,
            format!("failed to download chart for remote reference: {e}"),
        ),
    };
    let client = driftless_oci::Client::new(&repository, &keychain, &options, &ctx.oci)
        .await
        .map_err(|e| Error::Url(e.to_string()))?;
    let range = obj.spec.version.clone().unwrap_or_else(|| "*".into());
    let tags = client.tags().await.map_err(pull)?;
    let tag = if tags.iter().any(|t| t.replace('_', "+") == range) {
        range.replace('+', "_")
    } else {
        driftless_oci::highest(&tags, &range, None, true).map_err(|e| {
            Error::build(
                BuildReason::Reference,
                format!(
                    "failed to get chart version for remote reference: could not get a chart version for '{}' matching '{range}': {e}",
                    obj.spec.chart
                ),
            )
        })?
    };
    let chart_version = tag.replace('_', "+");
    let files = values_files(obj);
    let meta = (!files.is_empty()).then(|| obj.metadata.generation.unwrap_or(0).to_string());
    let version = match &meta {
        Some(m) => {
            with_build_metadata(&chart_version, m).map_err(|e| Error::build(BuildReason::MetadataPatch, e))?
        }
        None => chart_version.clone(),
    };
    let name = obj
        .spec
        .chart
        .rsplit('/')
        .next()
        .unwrap_or(&obj.spec.chart)
        .to_string();
    let mut outcome = Outcome {
        name: name.clone(),
        version: version.clone(),
        packaged: meta.is_some(),
        values_files: if meta.is_some() { files.clone() } else { Vec::new() },
        new_artifact: false,
    };
    if reuse(cached, &name, &version, limits) {
        return Ok(Built { path: None, outcome });
    }
    let resolved = client
        .resolve(&driftless_oci::Wanted::Tag(tag))
        .await
        .map_err(pull)?;
    let (manifest, _) = client.manifest(&resolved.digest).await.map_err(pull)?;
    let layer = manifest
        .layers
        .iter()
        .find(|l| l.media_type == driftless_oci::HELM_CHART_MEDIA_TYPE)
        .ok_or_else(|| {
            Error::build(
                BuildReason::Pull,
                format!(
                    "failed to download chart for remote reference: no layer of media type '{}' in '{url}'",
                    driftless_oci::HELM_CHART_MEDIA_TYPE
                ),
            )
        })?;
    let download = tempfile::NamedTempFile::new()
        .map_err(|e| Error::Storage(e.to_string()))?
        .into_temp_path();
    client
        .pull_to(layer, &download, ctx.helm.helm_chart_max_size)
        .await
        .map_err(pull)?;
    finish_remote(download, &name, &files, obj, limits, meta.is_some(), &mut outcome)
        .await
        .map(|path| Built {
            path: Some(path),
            outcome,
        })
}

/// Flux's version metadata of a chart built from a Git or Bucket artifact: the first 12 characters
/// of the commit or digest with the `Revision` strategy, then the generation when values files apply.
fn local_metadata(obj: &HelmChart, source_revision: &str, values_files: bool) -> Option<String> {
    let mut meta = String::new();
    if obj.spec.reconcile_strategy == Some(ReconcileStrategy::Revision) {
        let rev = source_revision.rsplit('@').next().unwrap_or(source_revision);
        let rev = rev.split_once(':').map_or(rev, |(_, hash)| hash);
        meta = rev.chars().take(12).collect();
    }
    if values_files {
        if !meta.is_empty() {
            meta.push('.');
        }
        meta.push_str(&obj.metadata.generation.unwrap_or(0).to_string());
    }
    (!meta.is_empty()).then_some(meta)
}

/// A chart from a Git or Bucket artifact: the chart directory (or packaged chart) at `spec.chart`,
/// packaged with its dependencies, values files (relative to the source's root) merged.
async fn from_tarball(
    obj: &HelmChart,
    ctx: &Context,
    artifact: &Artifact,
    cached: Option<&Path>,
    limits: Limits,
) -> Result<Built, Error> {
    let source_file = ctx
        .storage
        .local_path(&artifact.path)
        .map_err(|e| Error::Storage(e.to_string()))?;
    let spec_chart = obj.spec.chart.clone();
    let files = values_files(obj);
    let ignore_missing = obj.spec.ignore_missing_values_files.unwrap_or(false);
    let meta = local_metadata(obj, &artifact.revision, !files.is_empty());
    let work = tempfile::tempdir()
        .map_err(|e| Error::Storage(format!("failed to create temporary working directory: {e}")))?;
    let work_path = work.path().to_path_buf();
    let cached = cached.map(Path::to_path_buf);
    // first the source unpacked and the chart read; then what its dependencies need fetched; then the
    // package
    let prepared = tokio::task::spawn_blocking(move || -> Result<Result<Prepared, Built>, Error> {
        let root = work_path.join("source");
        let file = std::fs::File::open(&source_file)
            .map_err(|e| Error::build(BuildReason::Pull, format!("failed to open source artifact: {e}")))?;
        driftless_artifact::fetch::unpack(file, &root, driftless_artifact::fetch::Limits::default())
            .map_err(|e| Error::build(BuildReason::Pull, format!("artifact untar error: {e}")))?;
        let rel = build::secure_rel(&spec_chart).ok_or_else(|| {
            Error::build(
                BuildReason::Reference,
                format!("path '{spec_chart}' leaves the source"),
            )
        })?;
        let path = root.join(&rel);
        let is_dir = path.is_dir();
        let metadata = if is_dir {
            build::local_chart(&path)?.metadata
        } else if path.is_file() {
            archive_metadata(&path, limits).map_err(|e| Error::build(BuildReason::Reference, e))?
        } else {
            return Err(Error::build(
                BuildReason::Reference,
                format!(
                    "failed to load chart metadata: no chart directory or archive at path '{spec_chart}'"
                ),
            ));
        };
        let version = match &meta {
            Some(m) => with_build_metadata(&metadata.version, m)
                .map_err(|e| Error::build(BuildReason::MetadataPatch, e))?,
            None => metadata.version.clone(),
        };
        let requires_packaging = is_dir || meta.is_some();
        let outcome = Outcome {
            name: metadata.name.clone(),
            version: version.clone(),
            packaged: requires_packaging,
            values_files: if files.is_empty() {
                Vec::new()
            } else {
                files.clone()
            },
            new_artifact: false,
        };
        if reuse(cached.as_deref(), &metadata.name, &version, limits) {
            return Ok(Err(Built { path: None, outcome }));
        }
        let remote = if is_dir {
            metadata
                .dependencies
                .iter()
                .filter(|d| !build::vendored(&path, &d.name) && !d.repository.starts_with("file://"))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        Ok(Ok(Prepared {
            root,
            path,
            is_dir,
            version,
            requires_packaging,
            outcome,
            remote,
            work_path,
            files,
            ignore_missing,
        }))
    })
    .await
    .expect("reading a chart does not panic")?;
    let prepared = match prepared {
        Ok(p) => p,
        Err(built) => return Ok(built),
    };
    let mut fetched = Vec::new();
    for dep in &prepared.remote {
        fetched.push(dependencies::fetch(ctx, &obj.namespace().unwrap_or_default(), dep, limits).await?);
    }
    let result = tokio::task::spawn_blocking(move || package_prepared(prepared, fetched, limits))
        .await
        .expect("building a chart does not panic")?;
    drop(work);
    Ok(result)
}

/// A chart read from a Git or Bucket artifact, ready to package.
struct Prepared {
    root: std::path::PathBuf,
    path: std::path::PathBuf,
    is_dir: bool,
    version: String,
    requires_packaging: bool,
    outcome: Outcome,
    /// Dependencies from chart repositories, to fetch.
    remote: Vec<driftless_helm::chart::Dependency>,
    work_path: std::path::PathBuf,
    files: Vec<String>,
    ignore_missing: bool,
}

/// Packages a prepared chart: values files (relative to the source's root, as Flux reads them) merged,
/// `file://` dependencies packaged, `fetched` ones (path in the chart → archive) added.
fn package_prepared(p: Prepared, fetched: Vec<(String, Vec<u8>)>, limits: Limits) -> Result<Built, Error> {
    let Prepared {
        root,
        path,
        is_dir,
        version,
        requires_packaging,
        mut outcome,
        work_path,
        files,
        ignore_missing,
        ..
    } = p;
    let out = tempfile::NamedTempFile::new()
        .map_err(|e| Error::Storage(e.to_string()))?
        .into_temp_path();
    if !requires_packaging {
        std::fs::copy(&path, &out).map_err(|e| Error::build(BuildReason::Pull, e))?;
        return Ok(Built {
            path: Some(out),
            outcome,
        });
    }
    let merged = if files.is_empty() {
        None
    } else {
        let (merged, used) = build::merge_files(
            &files,
            ignore_missing,
            |f| match build::secure_rel(f).map(|r| root.join(r)) {
                Some(file) if file.is_file() => std::fs::read(&file).map(Some).map_err(|e| {
                    Error::build(
                        BuildReason::ValuesFiles,
                        format!("could not read values from file '{f}': {e}"),
                    )
                }),
                _ => Ok(None),
            },
            |f| {
                let shown = build::secure_rel(f)
                    .map(|r| format!("/{}", r.display()))
                    .unwrap_or_else(|| f.to_string());
                format!("no values file found at path '{shown}' (reference '{f}')")
            },
        )?;
        outcome.values_files = used;
        Some(merged)
    };
    if is_dir {
        let chart = build::local_chart(&path)?;
        let mut extra = fetched;
        for dep in &chart.metadata.dependencies {
            if let Some(rel) = dep.repository.strip_prefix("file://")
                && !build::vendored(&chart.dir, &dep.name)
            {
                extra.push(build::file_dependency(&root, &chart.dir, rel, limits)?);
            }
        }
        build::package_dir(&chart, &version, merged.as_ref(), extra, limits, &out)?;
    } else {
        let unpacked = work_path.join("chart");
        let used = build::repackage(&path, &unpacked, &version, &files, ignore_missing, limits, &out)?;
        outcome.values_files = used;
    }
    Ok(Built {
        path: Some(out),
        outcome,
    })
}
