//! HelmChart: `storage → source → artifact`, as Flux orders them, on the shared reconcile lifecycle.
//! `steps.rs` gets the source (a HelmRepository — its stored index, or an OCI registry — a
//! GitRepository or a Bucket) and builds the chart: from a repository the version the range picks,
//! downloaded (bounded, digest-checked) or, unchanged, kept; from a Git or Bucket artifact the chart
//! at `spec.chart` packaged with its dependencies; in both, values files merged into the default values
//! and the version given build metadata as Flux does. `build.rs` holds the file work. The artifact is
//! `<name>-<version>.tgz` with the chart version as its revision. A failure keeps the last artifact.

mod build;
mod dependencies;
pub mod steps;

use std::{sync::Arc, time::Duration};

use driftless_api::{
    meta::{
        conditions::{
            ARTIFACT_IN_STORAGE, ARTIFACT_OUTDATED, FETCH_FAILED, RECONCILING, SOURCE_VERIFIED, STALLED,
            STORAGE_OPERATION_FAILED, reasons,
        },
        parse_duration,
    },
    source::{Bucket, GitRepository, HelmChart, HelmChartStatus, HelmRepository},
};
use driftless_runtime::{
    conditions::Summary,
    controller as run_loop,
    error::{ErrorClass, ReconcileError},
    manager::{watched_api, watcher_config},
    reconcile::{Reconciler, Runtime, StatusWriter, error_policy, reconcile},
    request::is_suspended,
};
use kube::{Api, Resource, ResourceExt, runtime::reflector::ObjectRef};
use tracing::info;

use crate::{
    Context, FIELD_MANAGER,
    common::{Failure, mark_failed, mark_stored, new_artifact_event, remove_artifacts_of},
};

/// Flux's kind name.
pub const KIND: &str = "HelmChart";
/// The condition of a chart that could not be built (Flux's).
pub const BUILD_FAILED: &str = "BuildFailed";
/// Ready's reason when a chart was pulled as it is (Flux's).
pub const CHART_PULL_SUCCEEDED: &str = "ChartPullSucceeded";
/// Ready's reason when a chart was packaged (Flux's).
pub const CHART_PACKAGE_SUCCEEDED: &str = "ChartPackageSucceeded";

/// Why a chart build failed: Flux's build error reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildReason {
    /// The chart, version or path does not exist or is invalid.
    Reference,
    /// The chart could not be downloaded.
    Pull,
    /// The version could not be given build metadata.
    MetadataPatch,
    /// The values files could not be merged.
    ValuesFiles,
    /// A dependency could not be had.
    Dependency,
    /// The chart could not be packaged.
    Package,
}

impl BuildReason {
    /// Flux's reason and the summary that starts its message.
    pub fn reason_and_summary(self) -> (&'static str, &'static str) {
        match self {
            BuildReason::Reference => ("InvalidChartReference", "invalid chart reference"),
            BuildReason::Pull => ("ChartPullError", "chart pull error"),
            BuildReason::MetadataPatch => ("MetadataPatchError", "chart metadata patch error"),
            BuildReason::ValuesFiles => ("ValuesFilesError", "values files merge error"),
            BuildReason::Dependency => ("DependencyBuildError", "dependency build error"),
            BuildReason::Package => ("ChartPackageError", "chart package error"),
        }
    }
}

/// A failed step, with Flux's message; [`ReconcileError`] gives its reason and class.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source object could not be read.
    #[error("failed to get source: {0}")]
    SourceUnavailable(String),
    /// `sourceRef.kind` is not one a chart can come from.
    #[error(
        "failed to get source: unsupported source kind '{0}': use HelmRepository, GitRepository or Bucket"
    )]
    UnsupportedSourceKind(String),
    /// The source has no artifact yet.
    #[error("no artifact available for {kind} source '{name}'")]
    NoSourceArtifact {
        /// `sourceRef.kind`.
        kind: String,
        /// `sourceRef.name`.
        name: String,
    },
    /// The repository's credentials could not be had.
    #[error("{0}")]
    Credentials(#[from] driftless_credentials::Error),
    /// The repository refused the credentials.
    #[error("failed to authenticate with the Helm repository: {0}")]
    Authentication(String),
    /// The repository URL cannot be used.
    #[error("invalid Helm repository URL: {0}")]
    Url(String),
    /// The chart could not be built.
    #[error("{}: {message}", .reason.reason_and_summary().1)]
    Build {
        /// Why.
        reason: BuildReason,
        /// The details.
        message: String,
    },
    /// The spec cannot work.
    #[error("{0}")]
    InvalidSpec(String),
    /// Writing to the artifact storage failed.
    #[error("{0}")]
    Storage(String),
    /// Talking to the API server failed.
    #[error("kubernetes API: {}", driftless_runtime::error::api_message(.0))]
    Kube(#[from] kube::Error),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    // NB: boxed to break the error cycle
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// A build error.
    pub fn build(reason: BuildReason, message: impl std::fmt::Display) -> Self {
        Error::Build {
            reason,
            message: message.to_string(),
        }
    }

    fn failure(&self) -> Failure {
        let (condition, reason, class) = match self {
            Error::SourceUnavailable(_) | Error::Kube(_) | Error::Finalizer(_) => {
                (FETCH_FAILED, "SourceUnavailable", ErrorClass::Transient)
            }
            Error::UnsupportedSourceKind(_) => (FETCH_FAILED, "UnsupportedSourceKind", ErrorClass::Stalled),
            Error::NoSourceArtifact { .. } => (
                FETCH_FAILED,
                "NoSourceArtifact",
                ErrorClass::Waiting(Duration::from_secs(5)),
            ),
            Error::Credentials(driftless_credentials::Error::InvalidSpec(_)) => {
                (FETCH_FAILED, reasons::AUTHENTICATION_FAILED, ErrorClass::Stalled)
            }
            Error::Credentials(_) | Error::Authentication(_) => (
                FETCH_FAILED,
                reasons::AUTHENTICATION_FAILED,
                ErrorClass::Transient,
            ),
            Error::Url(_) => (FETCH_FAILED, reasons::URL_INVALID, ErrorClass::Stalled),
            Error::Build { reason, .. } => {
                let condition = match reason {
                    BuildReason::Reference | BuildReason::Pull => FETCH_FAILED,
                    _ => BUILD_FAILED,
                };
                let class = match reason {
                    BuildReason::Reference | BuildReason::MetadataPatch | BuildReason::ValuesFiles => {
                        ErrorClass::Stalled
                    }
                    _ => ErrorClass::Transient,
                };
                (condition, reason.reason_and_summary().0, class)
            }
            Error::InvalidSpec(_) => (STALLED, reasons::INVALID_SPEC, ErrorClass::Stalled),
            Error::Storage(_) => (
                STORAGE_OPERATION_FAILED,
                reasons::STORAGE_OPERATION_FAILED,
                ErrorClass::Transient,
            ),
        };
        Failure {
            condition,
            reason,
            class,
        }
    }
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        self.failure().reason
    }

    fn class(&self) -> ErrorClass {
        self.failure().class
    }
}

/// Flux's summary of a HelmChart's conditions.
const SUMMARY: Summary<'static> = Summary {
    order: &[
        STALLED,
        BUILD_FAILED,
        FETCH_FAILED,
        STORAGE_OPERATION_FAILED,
        ARTIFACT_OUTDATED,
        ARTIFACT_IN_STORAGE,
        SOURCE_VERIFIED,
        RECONCILING,
    ],
    negative_polarity: &[
        STALLED,
        BUILD_FAILED,
        FETCH_FAILED,
        STORAGE_OPERATION_FAILED,
        ARTIFACT_OUTDATED,
        RECONCILING,
    ],
};

/// The HelmCharts of `charts` whose source is `kind/name` in `namespace`, once that source has an
/// artifact (or is an OCI HelmRepository).
fn charts_of(
    charts: &kube::runtime::reflector::Store<HelmChart>,
    kind: &'static str,
    namespace: String,
    name: String,
    ready: bool,
) -> Vec<ObjectRef<HelmChart>> {
    if !ready {
        return Vec::new();
    }
    charts
        .state()
        .into_iter()
        .filter(|c| {
            c.namespace().unwrap_or_default() == namespace
                && c.spec.source_ref.kind == kind
                && c.spec.source_ref.name == name
        })
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// Runs the HelmChart controller until its stream ends; a chart builds again at once when its source
/// has a new artifact.
pub async fn run(ctx: Arc<Context>) {
    let api: Api<HelmChart> = watched_api(ctx.client.clone(), &ctx.config);
    let progress = ctx.metrics.progress.clone();
    let (ctrl, store) = run_loop::for_kind(
        api,
        watcher_config(&ctx.config),
        ctx.config.concurrent,
        progress.clone(),
    );
    let repos: Api<HelmRepository> = watched_api(ctx.client.clone(), &ctx.config);
    let gits: Api<GitRepository> = watched_api(ctx.client.clone(), &ctx.config);
    let buckets: Api<Bucket> = watched_api(ctx.client.clone(), &ctx.config);
    let s = store.clone();
    let ctrl = run_loop::watch_related(
        ctrl,
        "HelmRepository (charts)",
        repos,
        (),
        watcher_config(&ctx.config),
        move |r: HelmRepository| {
            let ready = r.status.as_ref().is_some_and(|s| s.artifact.is_some())
                || r.spec.type_ == Some(driftless_api::source::HelmRepositoryType::Oci);
            charts_of(
                &s,
                "HelmRepository",
                r.namespace().unwrap_or_default(),
                r.name_any(),
                ready,
            )
        },
        progress.clone(),
    );
    let s = store.clone();
    let ctrl = run_loop::watch_related(
        ctrl,
        "GitRepository (charts)",
        gits,
        (),
        watcher_config(&ctx.config),
        move |g: GitRepository| {
            let ready = g.status.as_ref().is_some_and(|s| s.artifact.is_some());
            charts_of(
                &s,
                "GitRepository",
                g.namespace().unwrap_or_default(),
                g.name_any(),
                ready,
            )
        },
        progress.clone(),
    );
    let ctrl = run_loop::watch_related(
        ctrl,
        "Bucket (charts)",
        buckets,
        (),
        watcher_config(&ctx.config),
        move |b: Bucket| {
            let ready = b.status.as_ref().is_some_and(|s| s.artifact.is_some());
            charts_of(
                &store,
                "Bucket",
                b.namespace().unwrap_or_default(),
                b.name_any(),
                ready,
            )
        },
        progress,
    );
    let charts = Arc::new(HelmCharts(ctx));
    run_loop::drain(ctrl.run(reconcile::<HelmCharts>, error_policy::<HelmCharts>, charts)).await;
}

/// The HelmChart reconciler.
pub struct HelmCharts(pub Arc<Context>);

impl Reconciler for HelmCharts {
    type Object = HelmChart;
    type Status = HelmChartStatus;
    type Outcome = steps::Outcome;
    type Error = Error;
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;

    fn runtime(&self) -> Runtime<'_> {
        self.0.runtime()
    }

    fn status(obj: &HelmChart) -> Option<&HelmChartStatus> {
        obj.status.as_ref()
    }

    fn suspended(obj: &HelmChart) -> bool {
        is_suspended(obj.spec.suspend)
    }

    fn interval(obj: &HelmChart) -> Result<Duration, Error> {
        parse_duration(&obj.spec.interval).map_err(|e| Error::InvalidSpec(e.to_string()))
    }

    fn timeout(_obj: &HelmChart) -> Duration {
        // NB: the source repository's timeout bounds each download; this bounds the whole build
        Duration::from_secs(300)
    }

    async fn run(
        &self,
        obj: &HelmChart,
        status: &mut HelmChartStatus,
        _writer: &mut StatusWriter<HelmChart, HelmChartStatus>,
    ) -> Result<steps::Outcome, Error> {
        steps::run(obj, &self.0, status).await
    }

    fn summarize(obj: &HelmChart, status: &mut HelmChartStatus, result: &Result<steps::Outcome, Error>) {
        let generation = obj.metadata.generation;
        match result {
            Ok(outcome) => mark_stored(
                &mut status.conditions,
                &SUMMARY,
                &[
                    FETCH_FAILED,
                    BUILD_FAILED,
                    STORAGE_OPERATION_FAILED,
                    STALLED,
                    SOURCE_VERIFIED,
                ],
                (outcome.reason(), &outcome.summary()),
                generation,
            ),
            Err(err) => {
                // a fetch failure clears a build failure and the other way round, as Flux's
                let failure = err.failure();
                let other = if failure.condition == BUILD_FAILED {
                    FETCH_FAILED
                } else {
                    BUILD_FAILED
                };
                driftless_runtime::conditions::delete(&mut status.conditions, other);
                mark_failed(
                    &mut status.conditions,
                    &SUMMARY,
                    &failure,
                    &err.to_string(),
                    generation,
                );
            }
        }
    }

    fn after(&self, obj: &HelmChart, status: &HelmChartStatus, result: &Result<steps::Outcome, Error>) {
        let (Ok(outcome), Some(artifact)) = (result, &status.artifact) else {
            return;
        };
        if !outcome.new_artifact {
            return;
        }
        let summary = outcome.summary();
        new_artifact_event(
            &self.0,
            &obj.object_ref(&()),
            outcome.reason(),
            &summary,
            artifact,
        );
        info!(revision = %artifact.revision, "{summary}");
    }

    async fn cleanup(&self, obj: &HelmChart) -> Result<(), Error> {
        remove_artifacts_of(&self.0, KIND, obj).map_err(|e| Error::Storage(e.to_string()))
    }
}
