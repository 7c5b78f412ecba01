//! HelmRelease on the shared reconcile lifecycle: `steps.rs` resolves the chart (a HelmChart made from
//! `chart.spec` and owned, or `chartRef`'s OCIRepository, HelmChart or ExternalArtifact), downloads and
//! verifies it, merges the values (`valuesFrom` in order, then `values`), and installs or upgrades the
//! release through the real helm binary when the chart or the values changed — an unchanged release
//! makes no Helm revision. Failures are counted against the remediation retries; past them the object
//! stalls until its spec changes. Deletion uninstalls the release and deletes the owned HelmChart.

mod chart;
pub mod cluster;
pub mod steps;
pub mod target;
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

/// A remediation after a failed install or upgrade: Flux's reason (`RollbackSucceeded`,
/// `UninstallFailed`…) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remediation {
    /// Flux's reason.
    pub reason: &'static str,
    /// Flux's message.
    pub message: String,
    /// Whether the rollback or uninstall worked.
    pub succeeded: bool,
}

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
        /// What was done about it (an uninstall), when something was.
        remediation: Option<Remediation>,
    },
    /// `helm upgrade` failed.
    #[error("{message}")]
    Upgrade {
        /// Flux's message, with helm's error.
        message: String,
        /// `RetryOnFailure`: try again after this, without remediation.
        retry: Option<Duration>,
        /// What was done about it (a rollback or an uninstall), when something was.
        remediation: Option<Remediation>,
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
                    conditions::delete(&mut status.conditions, REMEDIATED);
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
                if let Error::Install {
                    remediation: Some(r), ..
                }
                | Error::Upgrade {
                    remediation: Some(r), ..
                } = err
                {
                    let mark = if r.succeeded {
                        conditions::mark_true
                    } else {
                        conditions::mark_false
                    };
                    mark(
                        &mut status.conditions,
                        REMEDIATED,
                        r.reason,
                        &r.message,
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
            Err(err @ (Error::Install { remediation, .. } | Error::Upgrade { remediation, .. })) => {
                self.0.recorder.record(
                    &obj.object_ref(&()),
                    Severity::Error,
                    err.reason(),
                    &err.to_string(),
                    metadata.clone(),
                );
                if let Some(r) = remediation {
                    let severity = if r.succeeded {
                        Severity::Info
                    } else {
                        Severity::Error
                    };
                    self.0
                        .recorder
                        .record(&obj.object_ref(&()), severity, r.reason, &r.message, metadata);
                }
            }
            Err(err @ Error::Test(_)) => {
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

#[cfg(test)]
mod tests {
    use driftless_api::helm::HelmReleaseSpec;

    use super::*;

    fn condition(status: &HelmReleaseStatus, type_: &str) -> Option<(String, String, String)> {
        conditions::get(&status.conditions, type_)
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    }

    #[test]
    fn a_remediation_is_what_ready_reports_until_a_release_succeeds() {
        let mut obj = HelmRelease::new("app", HelmReleaseSpec::default());
        obj.metadata.generation = Some(2);
        let mut status = HelmReleaseStatus::default();
        let rolled_back = Remediation {
            reason: "RollbackSucceeded",
            message: "Helm rollback to previous release ns/app.v1 with chart app@1.0.0 succeeded".into(),
            succeeded: true,
        };
        Releases::summarize(
            &obj,
            &mut status,
            &Err(Error::Upgrade {
                message: "Helm upgrade failed for release ns/app with chart app@1.1.0: timeout".into(),
                retry: None,
                remediation: Some(rolled_back.clone()),
            }),
        );
        assert_eq!(
            condition(&status, REMEDIATED),
            Some((
                "True".into(),
                rolled_back.reason.into(),
                rolled_back.message.clone()
            ))
        );
        assert_eq!(
            condition(&status, READY),
            Some((
                "False".into(),
                rolled_back.reason.into(),
                rolled_back.message.clone()
            )),
            "Flux's summary puts the remediation first"
        );
        assert_eq!(
            condition(&status, RELEASED).map(|c| c.1),
            Some("UpgradeFailed".into())
        );

        let outcome = steps::Outcome {
            released: Some(("UpgradeSucceeded", "Helm upgrade succeeded".into())),
            ..Default::default()
        };
        Releases::summarize(&obj, &mut status, &Ok(outcome));
        assert_eq!(condition(&status, REMEDIATED), None);
        assert_eq!(
            condition(&status, READY).map(|c| c.1),
            Some("UpgradeSucceeded".into())
        );
    }

    #[test]
    fn retry_on_failure_waits_its_interval() {
        let e = Error::Install {
            message: "x".into(),
            retry: Some(Duration::from_secs(7)),
            remediation: None,
        };
        assert!(matches!(e.class(), ErrorClass::Waiting(d) if d == Duration::from_secs(7)));
    }
}
