//! Bucket: `storage → source → artifact`, as Flux orders them, on the shared reconcile lifecycle.
//! `steps.rs`: the stored artifact's integrity; the bucket's existence, its `.sourceignore`, the listing
//! under `prefix` reduced to `key etag` lines whose sha256 is the revision — an unchanged listing ends
//! there, downloading nothing; otherwise every object fetched (bounded concurrency) and archived as
//! `<hex>.tar.gz`. `s3.rs`: the S3 API client of the `generic` provider (SigV4). A failure keeps the
//! last artifact.

pub mod s3;
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
    source::{Bucket, BucketStatus},
};
use driftless_runtime::{
    conditions::Summary,
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
pub const KIND: &str = "Bucket";
/// Flux's reason of a failed bucket operation.
pub const BUCKET_OPERATION_FAILED: &str = "BucketOperationFailed";

/// A failed step, with Flux's message; [`ReconcileError`] gives its reason and class.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The credentials, certificates or proxy could not be had.
    #[error("{0}")]
    Credentials(#[from] driftless_credentials::Error),
    /// The endpoint cannot be used.
    #[error("invalid endpoint '{endpoint}': {why}")]
    Endpoint {
        /// `spec.endpoint`.
        endpoint: String,
        /// Why.
        why: String,
    },
    /// Listing or fetching failed, or the bucket does not exist.
    #[error("{0}")]
    Bucket(String),
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
            Error::Endpoint { .. } => (FETCH_FAILED, reasons::URL_INVALID, ErrorClass::Stalled),
            Error::Bucket(_) | Error::Kube(_) | Error::Finalizer(_) => {
                (FETCH_FAILED, BUCKET_OPERATION_FAILED, ErrorClass::Transient)
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

/// Flux's summary of a Bucket's conditions.
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

/// Runs the Bucket controller until its stream ends.
pub async fn run(ctx: Arc<Context>) {
    let api: Api<Bucket> = watched_api(ctx.client.clone(), &ctx.config);
    let progress = ctx.metrics.progress.clone();
    let (ctrl, _store) =
        run_loop::for_kind(api, watcher_config(&ctx.config), ctx.config.concurrent, progress);
    let buckets = Arc::new(Buckets(ctx));
    run_loop::drain(ctrl.run(reconcile::<Buckets>, error_policy::<Buckets>, buckets)).await;
}

/// The Bucket reconciler.
pub struct Buckets(pub Arc<Context>);

impl Reconciler for Buckets {
    type Object = Bucket;
    type Status = BucketStatus;
    type Outcome = steps::Outcome;
    type Error = Error;
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;

    fn runtime(&self) -> Runtime<'_> {
        self.0.runtime()
    }

    fn status(obj: &Bucket) -> Option<&BucketStatus> {
        obj.status.as_ref()
    }

    fn suspended(obj: &Bucket) -> bool {
        is_suspended(obj.spec.suspend)
    }

    fn interval(obj: &Bucket) -> Result<Duration, Error> {
        parse_duration(&obj.spec.interval).map_err(|e| Error::InvalidSpec(e.to_string()))
    }

    fn timeout(obj: &Bucket) -> Duration {
        steps::timeout(obj).unwrap_or(Duration::from_secs(60))
    }

    async fn run(
        &self,
        obj: &Bucket,
        status: &mut BucketStatus,
        _writer: &mut StatusWriter<Bucket, BucketStatus>,
    ) -> Result<steps::Outcome, Error> {
        steps::run(obj, &self.0, status).await
    }

    fn summarize(obj: &Bucket, status: &mut BucketStatus, result: &Result<steps::Outcome, Error>) {
        let generation = obj.metadata.generation;
        match result {
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

    fn after(&self, obj: &Bucket, status: &BucketStatus, result: &Result<steps::Outcome, Error>) {
        let (Ok(outcome), Some(artifact)) = (result, &status.artifact) else {
            return;
        };
        let Some(files) = outcome.fetched else {
            return;
        };
        let message = format!(
            "stored artifact with {files} fetched files from '{}' bucket",
            obj.spec.bucket_name
        );
        new_artifact_event(&self.0, &obj.object_ref(&()), "NewArtifact", &message, artifact);
        info!(revision = %artifact.revision, "{message}");
    }

    async fn cleanup(&self, obj: &Bucket) -> Result<(), Error> {
        remove_artifacts_of(&self.0, KIND, obj).map_err(|e| Error::Storage(e.to_string()))
    }
}
