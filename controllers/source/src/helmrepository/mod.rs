//! HelmRepository: `storage → source → artifact`, as Flux orders them (`steps.rs`: the stored artifact's
//! integrity; the repository's `index.yaml` streamed to disk, hashed and bounded; an unchanged digest
//! ending there; the index checked by a streaming walk; the artifact `index-<hex>.yaml` linked as
//! `index.yaml`), on the shared reconcile lifecycle. A repository of `type: oci` has no index: it is
//! Ready at once, its credentials used by each HelmChart. A failure keeps the last artifact.

pub mod steps;

use std::{sync::Arc, time::Duration};

use driftless_api::{
    meta::{
        conditions::{
            ARTIFACT_IN_STORAGE, ARTIFACT_OUTDATED, FETCH_FAILED, RECONCILING, STALLED,
            STORAGE_OPERATION_FAILED, reasons,
        },
        parse_duration,
    },
    source::{HelmRepository, HelmRepositoryStatus},
};
use driftless_runtime::{
    conditions::{self, Summary},
    controller as run_loop,
    error::{ErrorClass, ReconcileError},
    manager::{watched_api, watcher_config},
    reconcile::{Reconciler, Runtime, StatusWriter, error_policy, reconcile},
    request::is_suspended,
};
use kube::{Api, Resource};
use tracing::info;

use crate::{
    Context, FIELD_MANAGER,
    common::{Failure, mark_failed, mark_stored, new_artifact_event, remove_artifacts_of},
};

/// Flux's kind name.
pub const KIND: &str = "HelmRepository";
/// Flux's reason of an index that is not one.
pub const INDEXATION_FAILED: &str = "IndexationFailed";

/// A failed step, with Flux's message; [`ReconcileError`] gives its reason and class.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The credentials or certificates could not be had.
    #[error("{0}")]
    Credentials(#[from] driftless_credentials::Error),
    /// The URL cannot be used.
    #[error("invalid Helm repository URL: {0}")]
    Url(String),
    /// The index could not be downloaded (network, status, size).
    #[error("failed to fetch Helm repository index: {0}")]
    Fetch(String),
    /// The index is not an index.
    #[error("failed to load Helm repository from index YAML: {0}")]
    Index(String),
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
    fn failure(&self) -> Failure {
        let (condition, reason, class) = match self {
            Error::Credentials(driftless_credentials::Error::InvalidSpec(_)) => {
                (FETCH_FAILED, reasons::AUTHENTICATION_FAILED, ErrorClass::Stalled)
            }
            Error::Credentials(_) => (
                FETCH_FAILED,
                reasons::AUTHENTICATION_FAILED,
                ErrorClass::Transient,
            ),
            Error::Url(_) => (FETCH_FAILED, reasons::URL_INVALID, ErrorClass::Stalled),
            Error::Fetch(_) | Error::Kube(_) | Error::Finalizer(_) => {
                (FETCH_FAILED, reasons::FAILED, ErrorClass::Transient)
            }
            Error::Index(_) => (FETCH_FAILED, INDEXATION_FAILED, ErrorClass::Transient),
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

/// Flux's summary of a HelmRepository's conditions.
const SUMMARY: Summary<'static> = Summary {
    order: &[
        STALLED,
        FETCH_FAILED,
        STORAGE_OPERATION_FAILED,
        ARTIFACT_OUTDATED,
        ARTIFACT_IN_STORAGE,
        RECONCILING,
    ],
    negative_polarity: &[
        STALLED,
        FETCH_FAILED,
        STORAGE_OPERATION_FAILED,
        ARTIFACT_OUTDATED,
        RECONCILING,
    ],
};

/// Runs the HelmRepository controller until its stream ends.
pub async fn run(ctx: Arc<Context>) {
    let api: Api<HelmRepository> = watched_api(ctx.client.clone(), &ctx.config);
    let progress = ctx.metrics.progress.clone();
    let (ctrl, _store) =
        run_loop::for_kind(api, watcher_config(&ctx.config), ctx.config.concurrent, progress);
    let repositories = Arc::new(HelmRepositories(ctx));
    run_loop::drain(ctrl.run(
        reconcile::<HelmRepositories>,
        error_policy::<HelmRepositories>,
        repositories,
    ))
    .await;
}

/// The HelmRepository reconciler.
pub struct HelmRepositories(pub Arc<Context>);

impl Reconciler for HelmRepositories {
    type Object = HelmRepository;
    type Status = HelmRepositoryStatus;
    type Outcome = steps::Outcome;
    type Error = Error;
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;

    fn runtime(&self) -> Runtime<'_> {
        self.0.runtime()
    }

    fn status(obj: &HelmRepository) -> Option<&HelmRepositoryStatus> {
        obj.status.as_ref()
    }

    fn suspended(obj: &HelmRepository) -> bool {
        is_suspended(obj.spec.suspend)
    }

    fn interval(obj: &HelmRepository) -> Result<Duration, Error> {
        match &obj.spec.interval {
            Some(i) => parse_duration(i).map_err(|e| Error::InvalidSpec(e.to_string())),
            // NB: optional in Flux (an OCI repository has nothing to poll)
            None => Ok(Duration::from_secs(600)),
        }
    }

    fn timeout(obj: &HelmRepository) -> Duration {
        steps::timeout(obj).unwrap_or(Duration::from_secs(60))
    }

    async fn run(
        &self,
        obj: &HelmRepository,
        status: &mut HelmRepositoryStatus,
        _writer: &mut StatusWriter<HelmRepository, HelmRepositoryStatus>,
    ) -> Result<steps::Outcome, Error> {
        steps::run(obj, &self.0, status).await
    }

    fn summarize(
        obj: &HelmRepository,
        status: &mut HelmRepositoryStatus,
        result: &Result<steps::Outcome, Error>,
    ) {
        summarize(obj, status, result);
    }

    fn after(
        &self,
        obj: &HelmRepository,
        status: &HelmRepositoryStatus,
        result: &Result<steps::Outcome, Error>,
    ) {
        let (Ok(outcome), Some(artifact)) = (result, &status.artifact) else {
            return;
        };
        if !outcome.new_artifact {
            return;
        }
        let size = artifact
            .size
            .map_or("unknown size".to_string(), |s| format!("size {}", human_size(s)));
        let message = format!(
            "stored fetched index of {size} from '{}'",
            steps::normalize(&obj.spec.url)
        );
        new_artifact_event(&self.0, &obj.object_ref(&()), "NewArtifact", &message, artifact);
        info!(revision = %artifact.revision, "{message}");
    }

    async fn cleanup(&self, obj: &HelmRepository) -> Result<(), Error> {
        remove_artifacts_of(&self.0, KIND, obj).map_err(|e| Error::Storage(e.to_string()))
    }
}

/// A size as Docker's `units.HumanSize` (Flux's event) writes it: four significant digits, decimal units.
pub fn human_size(bytes: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < units.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    // %.4g: four significant digits, trailing zeros dropped
    let digits = if size >= 1000.0 {
        0
    } else if size >= 100.0 {
        1
    } else if size >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{size:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", units[unit])
}

/// The conditions after a run: the index in storage ("stored artifact: revision '<digest>'", Flux's
/// words), or the failure carried by its condition.
fn summarize(
    obj: &HelmRepository,
    status: &mut HelmRepositoryStatus,
    result: &Result<steps::Outcome, Error>,
) {
    let generation = obj.metadata.generation;
    match result {
        Ok(outcome) if outcome.static_oci => {
            let message =
                "Helm repository is of type 'oci': charts are pulled by each HelmChart, there is no index";
            for t in [
                FETCH_FAILED,
                STORAGE_OPERATION_FAILED,
                STALLED,
                ARTIFACT_OUTDATED,
                ARTIFACT_IN_STORAGE,
                RECONCILING,
            ] {
                conditions::delete(&mut status.conditions, t);
            }
            conditions::summarize(
                &mut status.conditions,
                &SUMMARY,
                reasons::SUCCEEDED,
                message,
                generation,
            );
        }
        Ok(_) => {
            let revision = status.artifact.as_ref().map_or("", |a| a.revision.as_str());
            mark_stored(
                &mut status.conditions,
                &SUMMARY,
                &[FETCH_FAILED, STORAGE_OPERATION_FAILED, STALLED],
                (
                    reasons::SUCCEEDED,
                    &format!("stored artifact: revision '{revision}'"),
                ),
                generation,
            );
        }
        Err(err) => mark_failed(
            &mut status.conditions,
            &SUMMARY,
            &err.failure(),
            &err.to_string(),
            generation,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_dockers_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1234), "1.234kB");
        assert_eq!(human_size(1_000_000), "1MB");
        assert_eq!(human_size(52_428_800), "52.43MB");
    }
}
