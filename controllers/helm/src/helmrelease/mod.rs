//! HelmRelease on the shared reconcile lifecycle: `steps.rs` resolves the chart (a HelmChart made from
//! `chart.spec` and owned, or `chartRef`'s OCIRepository, HelmChart or ExternalArtifact), downloads and
//! verifies it, merges the values (`valuesFrom` in order, then `values`), and installs or upgrades the
//! release through the real helm binary when the chart or the values changed — an unchanged release
//! makes no Helm revision. Failures are counted against the remediation retries; past them the object
//! stalls until its spec changes. Deletion uninstalls the release and deletes the owned HelmChart.

mod chart;
pub mod cluster;
pub mod steps;
mod values;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use driftless_api::{
    helm::{HelmRelease, HelmReleaseStatus},
    meta::{
        conditions::{READY, RECONCILING, RELEASED, STALLED, TEST_SUCCESS, reasons},
        parse_duration,
    },
};
use driftless_runtime::{
    conditions, controller as run_loop,
    error::{ErrorClass, ReconcileError},
    events::Severity,
    manager::{watched_api, watcher_config},
    reconcile::{Reconciler, Runtime, StatusWriter, error_policy, reconcile},
    request::is_suspended,
    sources::SourceRef,
};
use kube::{Api, Resource, ResourceExt};
use tracing::info;

use crate::{Context, FIELD_MANAGER};

/// The condition of drift between the release and the cluster (Flux's).
pub const DRIFTED: &str = "Drifted";
/// The condition of a remediation (rollback or uninstall) after a failed action (Flux's).
pub const REMEDIATED: &str = "Remediated";

/// The kinds `chartRef` may name (Flux's).
pub const CHART_REF_KINDS: [&str; 3] = ["OCIRepository", "HelmChart", "ExternalArtifact"];

/// A failed step, with Flux's reasons and messages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec cannot work: only a change helps.
    #[error("{0}")]
    InvalidSpec(String),
    /// A `dependsOn` HelmRelease is not Ready yet.
    #[error("{message}")]
    DependencyNotReady {
        /// Which, and why.
        message: String,
        /// `--requeue-dependency`.
        retry: Duration,
    },
    /// The chart's artifact is not (yet) there, or could not be fetched.
    #[error("{0}")]
    Artifact(String),
    /// The values could not be composed (a missing ConfigMap/Secret or key, not YAML).
    #[error("{0}")]
    Values(String),
    /// `helm install` failed.
    #[error("{message}")]
    Install {
        /// Flux's message, with helm's error.
        message: String,
        /// `RetryOnFailure`: try again after this, without remediation.
        retry: Option<Duration>,
    },
    /// `helm upgrade` failed.
    #[error("{message}")]
    Upgrade {
        /// Flux's message, with helm's error.
        message: String,
        /// `RetryOnFailure`: try again after this, without remediation.
        retry: Option<Duration>,
    },
    /// `helm test` failed.
    #[error("{0}")]
    Test(String),
    /// The release's history could not be read, or uninstall failed.
    #[error("{0}")]
    Helm(String),
    /// Failures past the remediation retries: only a spec change (or a reset) helps.
    #[error("{0}")]
    RetriesExceeded(String),
    /// Talking to the API server failed.
    #[error("kubernetes API: {}", driftless_runtime::error::api_message(.0))]
    Kube(#[from] kube::Error),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    // NB: boxed to break the error cycle
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<Error>>),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::InvalidSpec(_) => reasons::INVALID_SPEC,
            Error::DependencyNotReady { .. } => reasons::DEPENDENCY_NOT_READY,
            Error::Artifact(_) => "ArtifactFailed",
            Error::Values(_) => "InitFailed",
            Error::Install { .. } => "InstallFailed",
            Error::Upgrade { .. } => "UpgradeFailed",
            Error::Test(_) => "TestFailed",
            Error::Helm(_) => "GetLastReleaseFailed",
            Error::RetriesExceeded(_) => "RetriesExceeded",
            Error::Kube(_) | Error::Finalizer(_) => reasons::RECONCILIATION_FAILED,
        }
    }

    fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidSpec(_) | Error::RetriesExceeded(_) => ErrorClass::Stalled,
            Error::Artifact(_) => ErrorClass::Waiting(Duration::from_secs(5)),
            Error::DependencyNotReady { retry, .. } => ErrorClass::Waiting(*retry),
            Error::Install {
                retry: Some(after), ..
            }
            | Error::Upgrade {
                retry: Some(after), ..
            } => ErrorClass::Waiting(*after),
            _ => ErrorClass::Transient,
        }
    }
}

/// The source `obj` takes its chart's artifact from.
pub fn chart_source(obj: &HelmRelease) -> Option<SourceRef> {
    let ns = obj.namespace().unwrap_or_default();
    if let Some(r) = &obj.spec.chart_ref {
        return Some(SourceRef {
            kind: r.kind.clone(),
            namespace: r.namespace.clone().unwrap_or(ns),
            name: r.name.clone(),
        });
    }
    let template = obj.spec.chart.as_ref()?;
    Some(SourceRef {
        kind: "HelmChart".into(),
        namespace: template.spec.source_ref.namespace.clone().unwrap_or(ns.clone()),
        name: steps::helm_chart_name(obj),
    })
}

/// Runs the HelmRelease controller until its stream ends; a release is reconciled at once when its
/// chart's artifact changes.
pub async fn run(ctx: Arc<Context>) {
    let api: Api<HelmRelease> = watched_api(ctx.client.clone(), &ctx.config);
    let progress = ctx.metrics.progress.clone();
    let (ctrl, store) = run_loop::for_kind(
        api,
        watcher_config(&ctx.config),
        ctx.config.concurrent,
        progress.clone(),
    );
    let ctrl = driftless_runtime::sources::watch_sources(
        ctrl,
        &ctx.client,
        &ctx.config,
        &CHART_REF_KINDS,
        store,
        |hr: &HelmRelease| {
            chart_source(hr).unwrap_or(SourceRef {
                kind: String::new(),
                namespace: String::new(),
                name: String::new(),
            })
        },
        progress,
    );
    let releases = Arc::new(Releases(ctx));
    run_loop::drain(ctrl.run(reconcile::<Releases>, error_policy::<Releases>, releases)).await;
}

/// The HelmRelease reconciler.
pub struct Releases(pub Arc<Context>);

impl Reconciler for Releases {
    type Object = HelmRelease;
    type Status = HelmReleaseStatus;
    type Outcome = steps::Outcome;
    type Error = Error;
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;

    fn runtime(&self) -> Runtime<'_> {
        Runtime {
            client: &self.0.client,
            recorder: &self.0.recorder,
            metrics: &self.0.metrics,
            retry: &self.0.retry,
        }
    }

    fn status(obj: &HelmRelease) -> Option<&HelmReleaseStatus> {
        obj.status.as_ref()
    }

    fn suspended(obj: &HelmRelease) -> bool {
        is_suspended(obj.spec.suspend)
    }

    fn interval(obj: &HelmRelease) -> Result<Duration, Error> {
        parse_duration(&obj.spec.interval).map_err(|e| Error::InvalidSpec(e.to_string()))
    }

    fn timeout(obj: &HelmRelease) -> Duration {
        // NB: the release action's own timeout, plus time for the chart and helm itself
        steps::timeout(obj) * 2 + Duration::from_secs(120)
    }

    async fn run(
        &self,
        obj: &HelmRelease,
        status: &mut HelmReleaseStatus,
        _writer: &mut StatusWriter<HelmRelease, HelmReleaseStatus>,
    ) -> Result<steps::Outcome, Error> {
        steps::run(obj, &self.0, status).await
    }

    fn summarize(obj: &HelmRelease, status: &mut HelmReleaseStatus, result: &Result<steps::Outcome, Error>) {
        let generation = obj.metadata.generation;
        match result {
            Ok(outcome) => {
                conditions::delete(&mut status.conditions, RECONCILING);
                conditions::delete(&mut status.conditions, STALLED);
                if let Some((reason, message)) = &outcome.released {
                    conditions::mark_true(&mut status.conditions, RELEASED, reason, message, generation);
                }
                match &outcome.drift {
                    Some(cluster::DriftOutcome { detected: None, .. }) => conditions::mark_false(
                        &mut status.conditions,
                        DRIFTED,
                        "NoDriftDetected",
                        "No drift detected against the cluster state",
                        generation,
                    ),
                    Some(cluster::DriftOutcome {
                        detected: Some(message),
                        ..
                    }) => conditions::mark_true(
                        &mut status.conditions,
                        DRIFTED,
                        "DriftDetected",
                        message,
                        generation,
                    ),
                    None => {}
                }
                match &outcome.tested {
                    Some(Ok(message)) => conditions::mark_true(
                        &mut status.conditions,
                        TEST_SUCCESS,
                        "TestSucceeded",
                        message,
                        generation,
                    ),
                    // ignored failures: TestSuccess says so, Ready stays True
                    Some(Err(message)) => conditions::mark_false(
                        &mut status.conditions,
                        TEST_SUCCESS,
                        "TestFailed",
                        message,
                        generation,
                    ),
                    None if outcome.released.is_some() => {
                        conditions::delete(&mut status.conditions, TEST_SUCCESS)
                    }
                    None => {}
                }
                let released = conditions::get(&status.conditions, RELEASED).cloned();
                let (reason, message) = released.map(|c| (c.reason, c.message)).unwrap_or((
                    reasons::SUCCEEDED.into(),
                    "Release reconciliation succeeded".into(),
                ));
                conditions::mark_true(&mut status.conditions, READY, &reason, &message, generation);
            }
            Err(err) => {
                if matches!(err, Error::Install { .. } | Error::Upgrade { .. }) {
                    conditions::mark_false(
                        &mut status.conditions,
                        RELEASED,
                        err.reason(),
                        &err.to_string(),
                        generation,
                    );
                }
                conditions::mark_failed_run(
                    &mut status.conditions,
                    err,
                    "reconciliation in progress",
                    generation,
                );
                // NB: Flux's summary puts a remediation first: Ready says what was done about the failure
                if matches!(err, Error::Install { .. } | Error::Upgrade { .. })
                    && let Some(remediated) = conditions::get(&status.conditions, REMEDIATED).cloned()
                {
                    conditions::mark_false(
                        &mut status.conditions,
                        READY,
                        &remediated.reason,
                        &remediated.message,
                        generation,
                    );
                }
            }
        }
    }

    fn after(&self, obj: &HelmRelease, status: &HelmReleaseStatus, result: &Result<steps::Outcome, Error>) {
        let metadata = BTreeMap::from([(
            "helm.toolkit.fluxcd.io/revision".to_string(),
            status.last_attempted_revision.clone().unwrap_or_default(),
        )]);
        match result {
            Ok(outcome) => {
                if let Some((reason, message)) = &outcome.released {
                    self.0.recorder.record(
                        &obj.object_ref(&()),
                        Severity::Info,
                        reason,
                        message,
                        metadata.clone(),
                    );
                    info!("{message}");
                }
                if let Some(drift) = &outcome.drift {
                    let record = |severity, reason, message: &str| {
                        self.0.recorder.record(
                            &obj.object_ref(&()),
                            severity,
                            reason,
                            message,
                            metadata.clone(),
                        );
                        info!("{message}");
                    };
                    if let Some(message) = &drift.detected {
                        record(Severity::Error, "DriftDetected", message);
                    }
                    match &drift.corrected {
                        Some(Ok(message)) => record(Severity::Info, "DriftCorrected", message),
                        Some(Err(message)) => record(Severity::Error, "DriftCorrectionFailed", message),
                        None => {}
                    }
                }
            }
            Err(err @ (Error::Install { .. } | Error::Upgrade { .. } | Error::Test(_))) => {
                self.0.recorder.record(
                    &obj.object_ref(&()),
                    Severity::Error,
                    err.reason(),
                    &err.to_string(),
                    metadata,
                );
            }
            Err(_) => {}
        }
    }

    async fn cleanup(&self, obj: &HelmRelease) -> Result<(), Error> {
        steps::uninstall(obj, &self.0).await
    }
}
