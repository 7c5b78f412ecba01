//! OCIRepository: `storage → source → artifact`, as Flux orders them (`steps.rs`: the stored
//! artifact's integrity; the registry's credentials, the tag, semver range or digest resolved to a
//! manifest digest with one `HEAD`, an unchanged revision ending there; the manifest, the selected layer
//! streamed and verified, extracted or copied; the artifact `<digest>.tar.gz` with the manifest's
//! annotations as metadata), on the shared reconcile lifecycle. Here: the kind's errors (one match gives
//! each its condition, reason and retry) and the pure `summarize`. A failure keeps the last artifact in
//! status and in storage.

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
    source::{OCIRepository, OCIRepositoryStatus},
};
use driftless_runtime::{
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
pub const KIND: &str = "OCIRepository";

/// Flux's reason of a failed pull.
pub const OCI_PULL_FAILED: &str = "OCIArtifactPullFailed";
/// Flux's reason of a layer that could not be found, extracted or copied.
pub const OCI_LAYER_OPERATION_FAILED: &str = "OCIArtifactLayerOperationFailed";
/// Flux's reason of a tag list that could not be read.
pub const READ_OPERATION_FAILED: &str = "ReadOperationFailed";

/// A failed step. Each variant names what failed, with Flux's message; [`ReconcileError`] gives its
/// reason and class.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry's credentials, certificates or proxy could not be had.
    #[error("failed to get credential: {0}")]
    Credentials(#[from] driftless_credentials::Error),
    /// The URL is not an OCI repository URL.
    #[error("URL validation failed for '{url}': {source}")]
    Url {
        /// `spec.url`.
        url: String,
        /// Why.
        #[source]
        source: driftless_oci::Error,
    },
    /// The registry client could not be set up (a bad CA, an unsupported client certificate).
    #[error("failed to generate transport for '{url}': {source}")]
    Transport {
        /// `spec.url`.
        url: String,
        /// Why.
        #[source]
        source: driftless_oci::Error,
    },
    /// The semver range could not be resolved to a tag.
    #[error("failed to determine the artifact tag for '{url}': {source}")]
    Tag {
        /// `spec.url`.
        url: String,
        /// Why.
        #[source]
        source: driftless_oci::Error,
    },
    /// The tag could not be resolved to a digest.
    #[error("failed to determine artifact digest: {0}")]
    Digest(#[source] driftless_oci::Error),
    /// The manifest or layer could not be pulled.
    #[error("failed to pull artifact from '{url}': {source}")]
    Pull {
        /// `spec.url`.
        url: String,
        /// Why.
        #[source]
        source: driftless_oci::Error,
    },
    /// The layer is not there, or could not be extracted or copied.
    #[error("{0}")]
    Layer(String),
    /// Signature verification was asked for and could not be done.
    #[error("{0}")]
    Verification(String),
    /// The spec cannot work: only a change helps.
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
        use driftless_oci::Error as Oci;
        let (condition, reason, class) = match self {
            Error::Credentials(e) => {
                use driftless_credentials::Error as E;
                match e {
                    E::InvalidSpec(_) => (FETCH_FAILED, reasons::AUTHENTICATION_FAILED, ErrorClass::Stalled),
                    E::FeatureGateDisabled(_) => {
                        (FETCH_FAILED, reasons::FEATURE_GATE_DISABLED, ErrorClass::Stalled)
                    }
                    _ => (
                        FETCH_FAILED,
                        reasons::AUTHENTICATION_FAILED,
                        ErrorClass::Transient,
                    ),
                }
            }
            Error::Url { .. } => (FETCH_FAILED, reasons::URL_INVALID, ErrorClass::Stalled),
            Error::Transport { .. } => (FETCH_FAILED, reasons::AUTHENTICATION_FAILED, ErrorClass::Stalled),
            Error::Tag { source, .. } => match source {
                Oci::InvalidRange(_) | Oci::InvalidConfig(_) => {
                    (FETCH_FAILED, READ_OPERATION_FAILED, ErrorClass::Stalled)
                }
                _ => (FETCH_FAILED, READ_OPERATION_FAILED, ErrorClass::Transient),
            },
            Error::Digest(_) | Error::Pull { .. } | Error::Kube(_) | Error::Finalizer(_) => {
                (FETCH_FAILED, OCI_PULL_FAILED, ErrorClass::Transient)
            }
            Error::Layer(_) => (FETCH_FAILED, OCI_LAYER_OPERATION_FAILED, ErrorClass::Transient),
            Error::Verification(_) => (SOURCE_VERIFIED, reasons::VERIFICATION_ERROR, ErrorClass::Stalled),
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

/// Flux's summary of an OCIRepository's conditions.
const SUMMARY: driftless_runtime::conditions::Summary<'static> = driftless_runtime::conditions::Summary {
    order: &[
        STALLED,
        FETCH_FAILED,
        STORAGE_OPERATION_FAILED,
        SOURCE_VERIFIED,
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

/// Runs the OCIRepository controller until its stream ends.
pub async fn run(ctx: Arc<Context>) {
    let api: Api<OCIRepository> = watched_api(ctx.client.clone(), &ctx.config);
    let progress = ctx.metrics.progress.clone();
    let (ctrl, _store) =
        run_loop::for_kind(api, watcher_config(&ctx.config), ctx.config.concurrent, progress);
    let repositories = Arc::new(OCIRepositories(ctx));
    run_loop::drain(ctrl.run(
        reconcile::<OCIRepositories>,
        error_policy::<OCIRepositories>,
        repositories,
    ))
    .await;
}

/// The OCIRepository reconciler.
pub struct OCIRepositories(pub Arc<Context>);

impl Reconciler for OCIRepositories {
    type Object = OCIRepository;
    type Status = OCIRepositoryStatus;
    type Outcome = steps::Outcome;
    type Error = Error;
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;

    fn runtime(&self) -> Runtime<'_> {
        self.0.runtime()
    }

    fn status(obj: &OCIRepository) -> Option<&OCIRepositoryStatus> {
        obj.status.as_ref()
    }

    fn suspended(obj: &OCIRepository) -> bool {
        is_suspended(obj.spec.suspend)
    }

    fn interval(obj: &OCIRepository) -> Result<Duration, Error> {
        parse_duration(&obj.spec.interval).map_err(|e| Error::InvalidSpec(e.to_string()))
    }

    fn timeout(obj: &OCIRepository) -> Duration {
        steps::timeout(obj).unwrap_or(Duration::from_secs(60))
    }

    async fn run(
        &self,
        obj: &OCIRepository,
        status: &mut OCIRepositoryStatus,
        _writer: &mut StatusWriter<OCIRepository, OCIRepositoryStatus>,
    ) -> Result<steps::Outcome, Error> {
        steps::run(obj, &self.0, status).await
    }

    fn summarize(
        obj: &OCIRepository,
        status: &mut OCIRepositoryStatus,
        result: &Result<steps::Outcome, Error>,
    ) {
        summarize(obj, status, result);
    }

    fn after(
        &self,
        obj: &OCIRepository,
        status: &OCIRepositoryStatus,
        result: &Result<steps::Outcome, Error>,
    ) {
        let (Ok(outcome), Some(artifact)) = (result, &status.artifact) else {
            return;
        };
        if !outcome.new_artifact {
            return;
        }
        let mut message = format!(
            "stored artifact with revision '{}' from '{}'",
            artifact.revision, obj.spec.url
        );
        // the origin, when the artifact says where it was built from (`flux push artifact` does)
        let annotation = |k: &str| artifact.metadata.as_ref().and_then(|m| m.get(k));
        if let (Some(source), Some(revision)) = (
            annotation(driftless_oci::SOURCE_ANNOTATION),
            annotation(driftless_oci::REVISION_ANNOTATION),
        ) {
            message = format!("{message}, origin source '{source}', origin revision '{revision}'");
        }
        new_artifact_event(&self.0, &obj.object_ref(&()), "NewArtifact", &message, artifact);
        info!(revision = %artifact.revision, digest = %artifact.digest, "{message}");
    }

    async fn cleanup(&self, obj: &OCIRepository) -> Result<(), Error> {
        remove_artifacts_of(&self.0, KIND, obj).map_err(|e| Error::Storage(e.to_string()))
    }
}

/// The conditions after a run: on success the artifact is in storage ("stored artifact for digest
/// '<revision>'", Flux's words) and every failure condition goes; on failure the error's condition
/// carries it.
fn summarize(obj: &OCIRepository, status: &mut OCIRepositoryStatus, result: &Result<steps::Outcome, Error>) {
    let generation = obj.metadata.generation;
    match result {
        Ok(outcome) => {
            if obj.spec.verify.is_none() {
                driftless_runtime::conditions::delete(&mut status.conditions, SOURCE_VERIFIED);
            }
            let _ = outcome;
            let revision = status.artifact.as_ref().map_or("", |a| a.revision.as_str());
            let message = format!("stored artifact for digest '{revision}'");
            mark_stored(
                &mut status.conditions,
                &SUMMARY,
                &[FETCH_FAILED, STORAGE_OPERATION_FAILED, STALLED],
                (reasons::SUCCEEDED, &message),
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
    use driftless_api::{meta::Artifact, source::OCIRepositorySpec};
    use driftless_runtime::conditions;

    use super::*;

    fn repo() -> OCIRepository {
        let mut obj = OCIRepository::new(
            "app",
            OCIRepositorySpec {
                url: "oci://127.0.0.1:5000/app".into(),
                interval: "1m".into(),
                ..Default::default()
            },
        );
        obj.metadata.generation = Some(2);
        obj
    }

    fn stored() -> OCIRepositoryStatus {
        OCIRepositoryStatus {
            artifact: Some(Artifact {
                path: "ocirepository/a/app/sha256:0.tar.gz".into(),
                url: "http://storage/ocirepository/a/app/sha256:0.tar.gz".into(),
                revision: "latest@sha256:0".into(),
                digest: "sha256:1".into(),
                last_update_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ),
                size: None,
                metadata: None,
            }),
            ..Default::default()
        }
    }

    fn condition<'a>(status: &'a OCIRepositoryStatus, type_: &str) -> (&'a str, &'a str, &'a str) {
        let c = conditions::get(&status.conditions, type_).unwrap_or_else(|| panic!("{type_} is set"));
        (c.status.as_str(), c.reason.as_str(), c.message.as_str())
    }

    #[test]
    fn a_stored_artifact_is_ready_with_fluxs_message() {
        let mut status = stored();
        conditions::mark_true(
            &mut status.conditions,
            FETCH_FAILED,
            OCI_PULL_FAILED,
            "down",
            Some(1),
        );
        summarize(&repo(), &mut status, &Ok(steps::Outcome::default()));
        let message = "stored artifact for digest 'latest@sha256:0'";
        assert_eq!(condition(&status, "Ready"), ("True", "Succeeded", message));
        assert_eq!(
            condition(&status, ARTIFACT_IN_STORAGE),
            ("True", "Succeeded", message)
        );
        assert!(conditions::get(&status.conditions, FETCH_FAILED).is_none());
    }

    #[test]
    fn failures_carry_fluxs_reasons_and_a_bad_url_stalls() {
        let url = "oci://h/app".to_string();
        let mut status = stored();
        let err = Error::Url {
            url: "https://h/app".into(),
            source: driftless_oci::Repository::parse("https://h/app").unwrap_err(),
        };
        summarize(&repo(), &mut status, &Err(err));
        assert_eq!(
            condition(&status, "Ready"),
            (
                "False",
                "URLInvalid",
                "URL validation failed for 'https://h/app': URL must be in format 'oci://<domain>/<org>/<repo>'"
            )
        );
        assert_eq!(condition(&status, STALLED).1, "URLInvalid");
        assert!(
            conditions::get(&status.conditions, RECONCILING).is_none(),
            "not retried"
        );
        assert!(status.artifact.is_some(), "the last artifact stays");

        let mut status = stored();
        let err = Error::Tag {
            url: url.clone(),
            source: driftless_oci::Error::NoMatch(">=9.0.0".into()),
        };
        summarize(&repo(), &mut status, &Err(err));
        assert_eq!(
            condition(&status, FETCH_FAILED),
            (
                "True",
                "ReadOperationFailed",
                "failed to determine the artifact tag for 'oci://h/app': no match found for semver: >=9.0.0"
            )
        );
        assert_eq!(condition(&status, RECONCILING).1, "ProgressingWithRetry");

        let mut status = stored();
        summarize(
            &repo(),
            &mut status,
            &Err(Error::Layer(
                "failed to find layer with media type 'x' in artifact".into(),
            )),
        );
        assert_eq!(condition(&status, "Ready").1, "OCIArtifactLayerOperationFailed");
    }
}
