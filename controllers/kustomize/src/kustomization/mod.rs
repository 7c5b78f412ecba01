//! Kustomization: `source → fetch → build → apply → prune → status`, Flux's order ([`source`],
//! [`build`], [`apply`], [`health`]; the reconcile lifecycle is the runtime's). A failure before the
//! apply finishes prunes nothing and leaves `lastAppliedRevision` as it was.

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use driftless_api::{
    kustomize::{Kustomization, KustomizationStatus},
    meta::{
        conditions::{READY, RECONCILING, STALLED, reasons},
        format_duration, parse_duration,
    },
};
use driftless_runtime::{
    conditions, controller as run_loop,
    error::{ErrorClass, ReconcileError, api_message, is_unavailable},
    events::Severity,
    manager::{watched_api, watcher_config},
    reconcile::{Reconciler, Runtime, StatusWriter, error_policy, reconcile},
    request::is_suspended,
};
use kube::{
    Api, Resource, ResourceExt,
    api::DynamicObject,
    core::GroupVersionKind,
    discovery::ApiResource,
    runtime::{reflector::ObjectRef, watcher},
};
use tracing::info;

use crate::{Context, FIELD_MANAGER};

mod apply;
mod build;
mod health;
mod source;

use self::{apply::*, build::*, health::*, source::*};

/// Flux's kind name.
pub const KIND: &str = "Kustomization";

pub use driftless_kustomization::{NAME_LABEL, NAMESPACE_LABEL};

/// The reason of a health check stopped by a new source revision.
pub const HEALTH_CHECK_CANCELED: &str = "HealthCheckCanceled";

/// The annotations that put an object in a sync wave: driftless's, then Argo CD's.
pub const WAVE_ANNOTATIONS: [&str; 2] = ["driftless.io/wave", "argocd.argoproj.io/sync-wave"];

/// A failed step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source does not exist or has no artifact yet.
    #[error("{0}")]
    ResolveSource(#[source] driftless_runtime::sources::Error),
    /// The artifact could not be downloaded, verified or unpacked.
    #[error("{0}")]
    FetchArtifact(#[source] driftless_artifact::fetch::Error),
    /// A scratch directory for the build could not be made.
    #[error("{0}")]
    CreateWorkdir(#[source] std::io::Error),
    /// The artifact could not be mirrored into the scratch directory.
    #[error("mirroring the artifact: {0}")]
    MirrorArtifact(#[source] std::io::Error),
    /// The `kubeConfig` Secret is missing.
    #[error("{0}")]
    KubeConfigSecret(#[source] driftless_runtime::tenant::Error),
    /// A decryption Secret is missing.
    #[error("decryption Secret '{namespace}/{name}' not found")]
    DecryptionSecretNotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A key of a decryption Secret could not be imported.
    #[error("decryption Secret '{namespace}/{name}' key '{key}': {source}")]
    ImportDecryptionKey {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: driftless_sops::KeyError,
    },
    /// `spec.path` is not a directory of the artifact.
    #[error("kustomization path not found: {path}")]
    PathNotFound {
        /// The path, `.` for the root.
        path: String,
    },
    /// A ConfigMap or Secret of `postBuild.substituteFrom` could not be read.
    #[error("{0}")]
    LoadVariables(#[source] driftless_kustomization::VarsError),
    /// The overlay does not build: the kustomize engine's message, naming the file.
    #[error("{0}")]
    Build(String),
    /// An object's wave annotation is not an integer.
    #[error("{object}: annotation {key}: '{value}' is not an integer wave")]
    InvalidWave {
        /// `Kind/namespace/name`.
        object: String,
        /// The annotation.
        key: String,
        /// Its value.
        value: String,
    },
    /// The spec cannot work.
    #[error("{0}")]
    InvalidSpec(String),
    /// Applying an object failed.
    #[error("{0}")]
    Apply(#[source] driftless_ssa::Error),
    /// The run did not finish within its timeout.
    #[error("the reconciliation did not finish within its timeout of {0}")]
    ReconcileTimeout(String),
    /// Pruning failed.
    #[error("{0}")]
    Prune(#[source] driftless_ssa::Error),
    /// Objects deleted with `deletionPolicy: WaitForTermination` are still there.
    #[error("timeout waiting for the termination of: [{}]", .0.join(", "))]
    WaitForTermination(Vec<String>),
    /// A dependency is not ready; look again after `retry`.
    #[error("{message}")]
    DependencyNotReady {
        /// What is not ready.
        message: String,
        /// `--requeue-dependency`.
        retry: std::time::Duration,
    },
    /// The applied objects did not become healthy.
    #[error("health check failed after {elapsed}: {source}")]
    HealthCheck {
        /// How long it waited.
        elapsed: String,
        /// Which objects, and why.
        #[source]
        source: driftless_ssa::health::WaitError,
    },
    /// The objects of a sync wave did not become healthy.
    #[error("wave {wave}: health check failed after {elapsed}: {source}")]
    WaveHealthCheck {
        /// The wave.
        wave: i64,
        /// How long it waited.
        elapsed: String,
        /// Which objects, and why.
        #[source]
        source: driftless_ssa::health::WaitError,
    },
    /// A new source revision arrived during the health check; reconcile it at once.
    #[error("{0}")]
    HealthCheckCanceled(String),
    /// Talking to the API server failed.
    #[error("kubernetes API: {}", api_message(.0))]
    Kube(#[from] kube::Error),
    /// The API server did not answer or was overloaded while applying (or, with `prune`, pruning).
    #[error("{source}")]
    Unavailable {
        /// Whether it was pruning (`PruneFailed`) rather than applying (`ReconciliationFailed`).
        prune: bool,
        /// What failed.
        #[source]
        source: driftless_ssa::Error,
    },
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<Error>>),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::ResolveSource(_)
            | Error::FetchArtifact(_)
            | Error::CreateWorkdir(_)
            | Error::MirrorArtifact(_)
            | Error::KubeConfigSecret(_) => reasons::ARTIFACT_FAILED,
            Error::DecryptionSecretNotFound { .. }
            | Error::ImportDecryptionKey { .. }
            | Error::PathNotFound { .. }
            | Error::LoadVariables(_)
            | Error::Build(_)
            | Error::InvalidWave { .. } => reasons::BUILD_FAILED,
            Error::InvalidSpec(_) => reasons::INVALID_SPEC,
            Error::Prune(_) | Error::WaitForTermination(_) | Error::Unavailable { prune: true, .. } => {
                reasons::PRUNE_FAILED
            }
            Error::DependencyNotReady { .. } => reasons::DEPENDENCY_NOT_READY,
            Error::HealthCheck { .. } | Error::WaveHealthCheck { .. } => reasons::HEALTH_CHECK_FAILED,
            Error::HealthCheckCanceled(_) => HEALTH_CHECK_CANCELED,
            Error::Apply(_)
            | Error::ReconcileTimeout(_)
            | Error::Kube(_)
            | Error::Finalizer(_)
            | Error::Unavailable { prune: false, .. } => reasons::RECONCILIATION_FAILED,
        }
    }

    fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidSpec(_) => ErrorClass::Stalled,
            Error::DependencyNotReady { retry, .. } => ErrorClass::Waiting(*retry),
            Error::HealthCheckCanceled(_) => ErrorClass::Waiting(std::time::Duration::ZERO),
            Error::Unavailable { .. } => ErrorClass::Unavailable,
            Error::Kube(e) if is_unavailable(e) => ErrorClass::Unavailable,
            _ => ErrorClass::Transient,
        }
    }
}

impl Error {
    /// An apply (or, with `prune`, prune) failure, or [`Error::Unavailable`] when the API server did not
    /// answer.
    fn from_ssa(e: driftless_ssa::Error, prune: bool) -> Error {
        match e {
            e if e.is_unavailable() => Error::Unavailable { prune, source: e },
            e if prune => Error::Prune(e),
            e => Error::Apply(e),
        }
    }
}

/// The source kinds a Kustomization may reference.
const SOURCE_KINDS: [&str; 4] = driftless_api::kinds::KUSTOMIZATION_SOURCES;

/// The label that makes a Secret or ConfigMap trigger the Kustomizations using it when it changes.
pub const WATCH_LABEL: (&str, &str) = ("reconcile.fluxcd.io/watch", "Enabled");

/// Runs the Kustomization controller. A source whose artifact changes triggers the Kustomizations that
/// use it at once, and so does a Secret or ConfigMap labelled [`WATCH_LABEL`] that one of them substitutes
/// from (or decrypts with).
pub async fn run(ctx: Arc<Context>) {
    let api: Api<Kustomization> = watched_api(ctx.client.clone(), &ctx.config);
    let progress = ctx.metrics.progress.clone();
    let (mut ctrl, store) = run_loop::for_kind(
        api,
        watcher_config(&ctx.config),
        ctx.config.concurrent,
        progress.clone(),
    );
    ctrl = driftless_runtime::sources::watch_sources(
        ctrl,
        &ctx.client,
        &ctx.config,
        &SOURCE_KINDS,
        store.clone(),
        source_ref,
        progress.clone(),
    );
    let config_kinds: &[&str] = if ctx.watch_configs {
        &["ConfigMap", "Secret"]
    } else {
        &[]
    };
    let labelled = watcher::Config::default().labels(&format!("{}={}", WATCH_LABEL.0, WATCH_LABEL.1));
    for &kind in config_kinds {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("", "v1", kind),
            &format!("{}s", kind.to_lowercase()),
        );
        let store = store.clone();
        ctrl = run_loop::watch_related(
            ctrl,
            kind,
            driftless_runtime::manager::watched_dynamic(ctx.client.clone(), &ctx.config, &ar),
            ar,
            labelled.clone(),
            move |data: DynamicObject| {
                let (ns, name) = (data.namespace().unwrap_or_default(), data.name_any());
                store
                    .state()
                    .into_iter()
                    .filter(|k| k.namespace().unwrap_or_default() == ns && uses(k, kind, &name))
                    .map(|k| ObjectRef::from_obj(k.as_ref()))
                    .collect::<Vec<_>>()
            },
            progress.clone(),
        );
    }
    // a Kustomization that becomes Ready starts the ones that depend on it at once
    let dependents = store.clone();
    ctrl = run_loop::watch_related(
        ctrl,
        "Kustomization (dependencies)",
        watched_api::<Kustomization>(ctx.client.clone(), &ctx.config),
        (),
        watcher::Config::default(),
        move |dep: Kustomization| {
            let ready = dep
                .status
                .as_ref()
                .is_some_and(|s| conditions::is_ready(&s.conditions, dep.metadata.generation));
            if !ready {
                return Vec::new();
            }
            let (ns, name) = (dep.namespace().unwrap_or_default(), dep.name_any());
            dependents
                .state()
                .into_iter()
                .filter(|k| {
                    let own = k.namespace().unwrap_or_default();
                    k.spec
                        .depends_on
                        .iter()
                        .flatten()
                        .any(|d| d.name == name && d.namespace.as_deref().unwrap_or(&own) == ns)
                })
                .map(|k| ObjectRef::from_obj(k.as_ref()))
                .collect::<Vec<_>>()
        },
        progress,
    );
    run_loop::drain(ctrl.run(reconcile::<Context>, error_policy::<Context>, ctx)).await;
}

/// Whether the Kustomization substitutes from (or, for a Secret, decrypts with) `kind/name`.
fn uses(k: &Kustomization, kind: &str, name: &str) -> bool {
    let substitutes = k
        .spec
        .post_build
        .as_ref()
        .and_then(|p| p.substitute_from.as_ref())
        .is_some_and(|refs| refs.iter().any(|r| r.kind == kind && r.name == name));
    let decrypts = kind == "Secret"
        && k.spec
            .decryption
            .as_ref()
            .and_then(|d| d.secret_ref.as_ref())
            .is_some_and(|r| r.name == name);
    substitutes || decrypts
}

/// `spec.retryInterval`, else `spec.interval`, as Flux retries a failure.
fn retry_interval(obj: &Kustomization) -> Option<std::time::Duration> {
    obj.spec
        .retry_interval
        .as_deref()
        .or(Some(obj.spec.interval.as_str()))
        .and_then(|d| parse_duration(d).ok())
}

impl Reconciler for Context {
    type Object = Kustomization;
    type Status = KustomizationStatus;
    type Outcome = Outcome;
    type Error = Error;
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;

    fn runtime(&self) -> Runtime<'_> {
        Runtime {
            client: &self.client,
            recorder: &self.recorder,
            metrics: &self.metrics,
            retry: &self.retry,
        }
    }

    fn status(obj: &Kustomization) -> Option<&KustomizationStatus> {
        obj.status.as_ref()
    }

    fn suspended(obj: &Kustomization) -> bool {
        is_suspended(obj.spec.suspend)
    }

    fn interval(obj: &Kustomization) -> Result<std::time::Duration, Error> {
        parse_duration(&obj.spec.interval).map_err(|e| Error::InvalidSpec(e.to_string()))
    }

    fn timeout(obj: &Kustomization) -> std::time::Duration {
        let interval = parse_duration(&obj.spec.interval).unwrap_or(std::time::Duration::from_secs(600));
        // NB: the steps and then the health check may each take the timeout
        reconcile_timeout(obj, interval) * 2
    }

    fn retry_interval(obj: &Kustomization) -> Option<std::time::Duration> {
        retry_interval(obj)
    }

    async fn run(
        &self,
        obj: &Kustomization,
        status: &mut KustomizationStatus,
        writer: &mut StatusWriter<Kustomization, KustomizationStatus>,
    ) -> Result<Outcome, Error> {
        let interval = Self::interval(obj)?;
        let started = Instant::now();
        let (mut digest, mut origin) = (None, None);
        let timeout = reconcile_timeout(obj, interval);
        let applied = tokio::time::timeout(
            timeout,
            run_steps(obj, self, writer, status, &mut digest, &mut origin, timeout),
        )
        .await
        .unwrap_or_else(|_| Err(Error::ReconcileTimeout(format_duration(timeout))));
        let result = match applied {
            Ok(applied) => check_health(obj, self, status, writer, &applied, timeout)
                .await
                .map(|()| Outcome {
                    revision: applied.revision,
                    summary: applied.summary,
                    origin: origin.clone(),
                }),
            Err(e) => Err(e),
        };
        // like Flux, history starts once the build succeeded: its digest is that of the built objects
        if let Some(digest) = digest {
            let reason = match &result {
                Ok(_) => reasons::RECONCILIATION_SUCCEEDED,
                Err(e) => e.reason(),
            };
            let metadata = [
                ("revision", &status.last_attempted_revision),
                ("originRevision", &origin),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.clone()?)))
            .collect();
            driftless_runtime::history::upsert(
                status.history.get_or_insert_default(),
                &digest,
                k8s_openapi::jiff::Timestamp::now(),
                started.elapsed(),
                reason,
                metadata,
            );
        }
        result
    }

    fn summarize(obj: &Kustomization, status: &mut KustomizationStatus, result: &Result<Outcome, Error>) {
        summarize(obj, status, result);
    }

    fn after(&self, obj: &Kustomization, _status: &KustomizationStatus, result: &Result<Outcome, Error>) {
        let Ok(Outcome {
            revision,
            summary,
            origin,
        }) = result
        else {
            return;
        };
        if summary.is_empty() {
            return;
        }
        let mut metadata = BTreeMap::from([(
            "kustomize.toolkit.fluxcd.io/revision".to_string(),
            revision.clone(),
        )]);
        if let Some(origin) = origin {
            metadata.insert(
                "kustomize.toolkit.fluxcd.io/originRevision".to_string(),
                origin.clone(),
            );
        }
        self.recorder.record(
            &obj.object_ref(&()),
            Severity::Info,
            reasons::RECONCILIATION_SUCCEEDED,
            summary,
            metadata,
        );
        info!(revision = %revision, changes = %summary.replace('\n', ", "), "applied");
    }

    async fn cleanup(&self, obj: &Kustomization) -> Result<(), Error> {
        cleanup(obj, self).await
    }
}

/// What a successful reconcile applied.
pub struct Outcome {
    /// The source revision.
    revision: String,
    /// What changed, one line per object (empty when nothing did).
    summary: String,
    /// The revision the artifact was built from, when its producer recorded one.
    origin: Option<String>,
}

/// The conditions after a run: Ready with the applied revision, or Ready=False with the reason, still
/// `Reconciling` for the attempted revision while a transient failure is retried, `Stalled` when only a
/// spec change helps.
fn summarize(obj: &Kustomization, status: &mut KustomizationStatus, result: &Result<Outcome, Error>) {
    let generation = obj.metadata.generation;
    match result {
        Ok(Outcome { revision, .. }) => {
            for t in [RECONCILING, STALLED] {
                conditions::delete(&mut status.conditions, t);
            }
            conditions::mark_true(
                &mut status.conditions,
                READY,
                reasons::RECONCILIATION_SUCCEEDED,
                &format!("Applied revision: {revision}"),
                generation,
            );
        }
        Err(err) => {
            let progress = match &status.last_attempted_revision {
                Some(revision) => format!("Reconciliation in progress for revision {revision}"),
                None => "Reconciliation in progress".to_string(),
            };
            conditions::mark_failed_run(&mut status.conditions, err, &progress, generation);
        }
    }
}

/// `spec.timeout`, else the interval less 30s; never under 30s (Flux's `GetTimeout`).
fn reconcile_timeout(obj: &Kustomization, interval: std::time::Duration) -> std::time::Duration {
    const FLOOR: std::time::Duration = std::time::Duration::from_secs(30);
    obj.spec
        .timeout
        .as_deref()
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or_else(|| interval.saturating_sub(FLOOR))
        .max(FLOOR)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn after(result: Result<Outcome, Error>, attempted: Option<&str>) -> KustomizationStatus {
        let mut obj = Kustomization::new("apps", Default::default());
        obj.metadata.generation = Some(4);
        let mut status = KustomizationStatus {
            last_attempted_revision: attempted.map(str::to_string),
            ..Default::default()
        };
        conditions::mark_progressing(&mut status.conditions, "reconciliation in progress", Some(4));
        summarize(&obj, &mut status, &result);
        status
    }

    fn condition(status: &KustomizationStatus, type_: &str) -> Option<(String, String, String)> {
        conditions::get(&status.conditions, type_)
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    }

    #[test]
    fn an_applied_revision_is_ready_and_a_failure_says_why_and_whether_it_is_retried() {
        let ok = after(
            Ok(Outcome {
                revision: "main@sha1:abc".into(),
                summary: String::new(),
                origin: None,
            }),
            Some("main@sha1:abc"),
        );
        assert_eq!(
            condition(&ok, READY),
            Some((
                "True".into(),
                "ReconciliationSucceeded".into(),
                "Applied revision: main@sha1:abc".into()
            ))
        );
        assert_eq!(condition(&ok, RECONCILING), None);

        let failed = after(
            Err(Error::Build("kustomization.yaml: bad".into())),
            Some("main@sha1:def"),
        );
        assert_eq!(
            condition(&failed, READY),
            Some((
                "False".into(),
                "BuildFailed".into(),
                "kustomization.yaml: bad".into()
            ))
        );
        assert_eq!(
            condition(&failed, RECONCILING),
            Some((
                "True".into(),
                "ProgressingWithRetry".into(),
                "Reconciliation in progress for revision main@sha1:def".into()
            ))
        );
        assert_eq!(condition(&failed, STALLED), None);

        let stalled = after(Err(Error::InvalidSpec("bad path".into())), None);
        assert_eq!(
            condition(&stalled, STALLED).map(|c| c.1),
            Some("InvalidSpec".into())
        );
        assert_eq!(condition(&stalled, READY).map(|c| c.0), Some("False".into()));
        assert_eq!(condition(&stalled, RECONCILING), None, "stalled: not retried");

        let waiting = after(
            Err(Error::DependencyNotReady {
                message: "dependency 'a/infra' is not ready".into(),
                retry: Duration::from_secs(30),
            }),
            None,
        );
        assert_eq!(
            condition(&waiting, READY).map(|c| c.1),
            Some("DependencyNotReady".into())
        );
        assert_eq!(
            condition(&waiting, RECONCILING).map(|c| c.2),
            Some("Reconciliation in progress".into())
        );
    }

    #[test]
    fn the_timeout_is_flux_s_spec_timeout_else_interval_less_30s_at_least_30s() {
        let mut k = Kustomization::new("k", Default::default());
        assert_eq!(
            reconcile_timeout(&k, Duration::from_secs(600)),
            Duration::from_secs(570)
        );
        assert_eq!(
            reconcile_timeout(&k, Duration::from_secs(40)),
            Duration::from_secs(30)
        );
        k.spec.timeout = Some("2m".into());
        assert_eq!(
            reconcile_timeout(&k, Duration::from_secs(600)),
            Duration::from_secs(120)
        );
        k.spec.timeout = Some("1s".into());
        assert_eq!(
            reconcile_timeout(&k, Duration::from_secs(600)),
            Duration::from_secs(30)
        );
    }
}
