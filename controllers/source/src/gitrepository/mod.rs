//! GitRepository: `storage → source → include → artifact`, as Flux orders its sub-reconcilers
//! (`steps.rs`: the stored artifact's integrity, the credentials, ls-remote or fetch, verification,
//! checkout, the artifact; `include.rs`: `spec.include`), on the shared reconcile lifecycle. Here: the
//! kind's errors (one match gives each its condition, reason and retry), its watches, and the pure
//! `summarize` from a run's outcome to conditions. A failure keeps the last artifact in status and in
//! storage.

mod include;
mod steps;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use driftless_api::{
    meta::{
        conditions::{
            ARTIFACT_IN_STORAGE, ARTIFACT_OUTDATED, FETCH_FAILED, INCLUDE_UNAVAILABLE, RECONCILING,
            SOURCE_VERIFIED, STALLED, STORAGE_OPERATION_FAILED, reasons,
        },
        parse_duration,
    },
    source::{GitRepository, GitRepositoryStatus},
};
use driftless_runtime::{
    conditions::{self, Summary},
    controller as run_loop,
    error::{ErrorClass, ReconcileError},
    events::Severity,
    manager::{watched_api, watcher_config},
    reconcile::{Reconciler, Runtime, StatusWriter, error_policy, reconcile},
    request::is_suspended,
};
use kube::{Api, Resource, ResourceExt, runtime::reflector::ObjectRef};
use tracing::info;

use crate::{
    Context, FIELD_MANAGER,
    common::{Failure, mark_failed, mark_stored, remove_artifacts_of},
};

/// Flux's kind name.
pub const KIND: &str = "GitRepository";

/// A failed step. Each variant names what failed; [`ReconcileError`] gives its reason and class.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The remote's credentials could not be had (a Secret, a provider's token, a feature gate).
    #[error("{}", credentials_message(.0))]
    Credentials(#[from] driftless_credentials::Error),
    /// The Git operation failed: network, missing ref, no semver match.
    #[error("failed to checkout and determine revision: {0}")]
    Checkout(#[source] driftless_git::Error),
    /// Authentication with the Git server failed.
    #[error("failed to checkout and determine revision: {0}")]
    Authenticate(#[source] driftless_git::Error),
    /// The spec cannot work: only a change helps.
    #[error("{0}")]
    InvalidSpec(String),
    /// The verification Secret holds no usable key.
    #[error("{0}")]
    ReadKeyring(#[source] driftless_git::Error),
    /// A signature is missing, invalid, or made by a key not in the Secret.
    #[error("{0}")]
    Verify(#[source] driftless_git::Error),
    /// An included GitRepository does not exist.
    #[error("could not get resource for include '{name}': GitRepository '{namespace}/{name}' not found")]
    IncludeNotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// An included GitRepository has no artifact (yet).
    #[error("no artifact available for include '{name}'")]
    IncludeWithoutArtifact {
        /// Its name.
        name: String,
    },
    /// An included artifact could not be unpacked or copied into the checkout.
    #[error("failed to copy artifact of include '{name}': {source}")]
    CopyInclude {
        /// The included GitRepository.
        name: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The stored artifact could not be checked, or a corrupted one removed.
    #[error("{0}")]
    VerifyStoredArtifact(#[source] crate::common::VerifyStoredError),
    /// The working directory could not be made.
    #[error("creating a temporary directory: {0}")]
    CreateWorkdir(#[source] std::io::Error),
    /// The checkout could not be archived into storage.
    #[error("{0}")]
    ArchiveArtifact(#[source] driftless_artifact::storage::Error),
    /// The object's artifacts could not be removed (it is being deleted).
    #[error("{0}")]
    RemoveArtifacts(#[source] driftless_artifact::storage::Error),
    /// Talking to the API server failed.
    #[error("kubernetes API: {}", driftless_runtime::error::api_message(.0))]
    Kube(#[from] kube::Error),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    // NB: boxed to break the error cycle
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<Error>>),
}

/// A credentials failure as Flux words it: keys that do not fit the URL fail the checkout.
fn credentials_message(e: &driftless_credentials::Error) -> String {
    match e {
        driftless_credentials::Error::Authenticate(e) => {
            format!("failed to checkout and determine revision: {e}")
        }
        other => other.to_string(),
    }
}

impl Error {
    fn failure(&self) -> Failure {
        let (condition, reason, class) = match self {
            Error::Credentials(e) => {
                use driftless_credentials::Error as E;
                match e {
                    E::GetSecret { .. }
                    | E::GetServiceAccount { .. }
                    | E::Authenticate(_)
                    | E::Provider { .. } => (
                        FETCH_FAILED,
                        reasons::AUTHENTICATION_FAILED,
                        ErrorClass::Transient,
                    ),
                    E::FeatureGateDisabled(_) => {
                        (FETCH_FAILED, reasons::FEATURE_GATE_DISABLED, ErrorClass::Stalled)
                    }
                    E::InvalidSpec(_) => (STALLED, reasons::INVALID_SPEC, ErrorClass::Stalled),
                }
            }
            Error::Authenticate(_) => (
                FETCH_FAILED,
                reasons::AUTHENTICATION_FAILED,
                ErrorClass::Transient,
            ),
            Error::Checkout(_) | Error::Kube(_) | Error::Finalizer(_) => {
                (FETCH_FAILED, reasons::GIT_OPERATION_FAILED, ErrorClass::Transient)
            }
            Error::InvalidSpec(_) => (STALLED, reasons::INVALID_SPEC, ErrorClass::Stalled),
            Error::ReadKeyring(_) | Error::Verify(_) => (
                SOURCE_VERIFIED,
                reasons::VERIFICATION_ERROR,
                ErrorClass::Transient,
            ),
            Error::IncludeNotFound { .. }
            | Error::IncludeWithoutArtifact { .. }
            | Error::CopyInclude { .. } => (
                INCLUDE_UNAVAILABLE,
                reasons::INCLUDE_UNAVAILABLE,
                ErrorClass::Transient,
            ),
            Error::VerifyStoredArtifact(_)
            | Error::CreateWorkdir(_)
            | Error::ArchiveArtifact(_)
            | Error::RemoveArtifacts(_) => (
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

const SUMMARY: Summary<'static> = Summary {
    order: &[
        STALLED,
        FETCH_FAILED,
        INCLUDE_UNAVAILABLE,
        STORAGE_OPERATION_FAILED,
        SOURCE_VERIFIED,
        ARTIFACT_OUTDATED,
        ARTIFACT_IN_STORAGE,
        RECONCILING,
    ],
    negative_polarity: &[
        STALLED,
        FETCH_FAILED,
        INCLUDE_UNAVAILABLE,
        STORAGE_OPERATION_FAILED,
        ARTIFACT_OUTDATED,
        RECONCILING,
    ],
};

/// Runs the GitRepository controller until its stream ends.
pub async fn run(ctx: Arc<Context>) {
    let api: Api<GitRepository> = watched_api(ctx.client.clone(), &ctx.config);
    let progress = ctx.metrics.progress.clone();
    let (ctrl, store) = run_loop::for_kind(
        api.clone(),
        watcher_config(&ctx.config),
        ctx.config.concurrent,
        progress.clone(),
    );
    // a repository whose artifact changes triggers the repositories that include it (as Flux does)
    let ctrl = run_loop::watch_related(
        ctrl,
        "GitRepository (includes)",
        api,
        (),
        watcher_config(&ctx.config),
        move |included: GitRepository| {
            let (ns, name) = (included.namespace().unwrap_or_default(), included.name_any());
            if included
                .status
                .as_ref()
                .and_then(|s| s.artifact.as_ref())
                .is_none()
            {
                return Vec::new();
            }
            store
                .state()
                .into_iter()
                .filter(|r| {
                    r.namespace().unwrap_or_default() == ns
                        && r.spec.include.iter().flatten().any(|i| i.repository.name == name)
                })
                .map(|r| ObjectRef::from_obj(r.as_ref()))
                .collect::<Vec<_>>()
        },
        progress,
    );
    let repositories = Arc::new(GitRepositories(ctx));
    run_loop::drain(ctrl.run(
        reconcile::<GitRepositories>,
        error_policy::<GitRepositories>,
        repositories,
    ))
    .await;
}

/// The GitRepository reconciler (one per kind: source-controller reconciles several kinds with one
/// [`Context`]).
pub struct GitRepositories(pub Arc<Context>);

impl Reconciler for GitRepositories {
    type Object = GitRepository;
    type Status = GitRepositoryStatus;
    type Outcome = steps::Outcome;
    type Error = Error;
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;

    fn runtime(&self) -> Runtime<'_> {
        self.0.runtime()
    }

    fn status(obj: &GitRepository) -> Option<&GitRepositoryStatus> {
        obj.status.as_ref()
    }

    fn suspended(obj: &GitRepository) -> bool {
        is_suspended(obj.spec.suspend)
    }

    fn interval(obj: &GitRepository) -> Result<Duration, Error> {
        parse_duration(&obj.spec.interval).map_err(|e| Error::InvalidSpec(e.to_string()))
    }

    fn timeout(obj: &GitRepository) -> Duration {
        obj.spec
            .timeout
            .as_deref()
            .and_then(|t| parse_duration(t).ok())
            .unwrap_or(Duration::from_secs(60))
    }

    async fn run(
        &self,
        obj: &GitRepository,
        status: &mut GitRepositoryStatus,
        _writer: &mut StatusWriter<GitRepository, GitRepositoryStatus>,
    ) -> Result<steps::Outcome, Error> {
        steps::run(obj, &self.0, status).await
    }

    fn summarize(
        obj: &GitRepository,
        status: &mut GitRepositoryStatus,
        result: &Result<steps::Outcome, Error>,
    ) {
        summarize(obj, status, result);
    }

    fn after(
        &self,
        obj: &GitRepository,
        status: &GitRepositoryStatus,
        result: &Result<steps::Outcome, Error>,
    ) {
        let (Ok(outcome), Some(artifact)) = (result, &status.artifact) else {
            return;
        };
        if let Some(subject) = &outcome.new_commit {
            let metadata = BTreeMap::from([(
                "source.toolkit.fluxcd.io/revision".to_string(),
                artifact.revision.clone(),
            )]);
            self.0.recorder.record(
                &obj.object_ref(&()),
                Severity::Info,
                "NewArtifact",
                &format!("stored artifact for commit '{subject}'"),
                metadata,
            );
            info!(revision = %artifact.revision, digest = %artifact.digest, "stored artifact");
        }
    }

    async fn cleanup(&self, obj: &GitRepository) -> Result<(), Error> {
        remove_artifacts_of(&self.0, KIND, obj).map_err(Error::RemoveArtifacts)
    }
}

/// The conditions after a run: on success the artifact is in storage and every failure condition goes;
/// on failure the error's condition carries it (SourceVerified is False for a failed verification) and
/// Ready summarises the rest; `Reconciling` stays while a transient failure is retried.
fn summarize(obj: &GitRepository, status: &mut GitRepositoryStatus, result: &Result<steps::Outcome, Error>) {
    let generation = obj.metadata.generation;
    match result {
        Ok(outcome) => {
            match (&obj.spec.verification, &outcome.verified) {
                (None, _) => conditions::delete(&mut status.conditions, SOURCE_VERIFIED),
                (Some(_), Some(message)) => conditions::mark_true(
                    &mut status.conditions,
                    SOURCE_VERIFIED,
                    reasons::SUCCEEDED,
                    message,
                    generation,
                ),
                // unchanged revision: the verification of that revision stands
                (Some(_), None) => {}
            }
            let revision = status.artifact.as_ref().map_or("", |a| a.revision.as_str());
            let message = format!("stored artifact for revision '{revision}'");
            mark_stored(
                &mut status.conditions,
                &SUMMARY,
                &[
                    FETCH_FAILED,
                    INCLUDE_UNAVAILABLE,
                    STORAGE_OPERATION_FAILED,
                    STALLED,
                ],
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
    use driftless_api::{meta::Artifact, source::GitRepositorySpec};

    use super::*;

    fn repo(verify: bool) -> GitRepository {
        let mut obj = GitRepository::new(
            "app",
            GitRepositorySpec {
                url: "https://example.com/app.git".into(),
                interval: "1m".into(),
                ..Default::default()
            },
        );
        if verify {
            obj.spec.verification = Some(Default::default());
        }
        obj.metadata.generation = Some(3);
        obj
    }

    fn stored() -> GitRepositoryStatus {
        GitRepositoryStatus {
            artifact: Some(Artifact {
                path: "gitrepository/a/app/abc.tar.gz".into(),
                url: "http://storage/gitrepository/a/app/abc.tar.gz".into(),
                revision: "main@sha1:abc".into(),
                digest: "sha256:0".into(),
                last_update_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ),
                size: None,
                metadata: None,
            }),
            ..Default::default()
        }
    }

    fn condition<'a>(status: &'a GitRepositoryStatus, type_: &str) -> (&'a str, &'a str, &'a str) {
        let c = conditions::get(&status.conditions, type_).unwrap_or_else(|| panic!("{type_} is set"));
        (c.status.as_str(), c.reason.as_str(), c.message.as_str())
    }

    #[test]
    fn a_stored_artifact_is_ready_and_clears_every_failure() {
        let obj = repo(true);
        let mut status = stored();
        conditions::mark_true(
            &mut status.conditions,
            FETCH_FAILED,
            "GitOperationFailed",
            "down",
            Some(2),
        );
        conditions::mark_progressing(&mut status.conditions, "reconciliation in progress", Some(3));
        let outcome = steps::Outcome {
            new_commit: Some("fix".into()),
            verified: Some("verified signature of commit".into()),
        };
        summarize(&obj, &mut status, &Ok(outcome));
        let message = "stored artifact for revision 'main@sha1:abc'";
        assert_eq!(condition(&status, "Ready").0, "True");
        let mut unverified = stored();
        let outcome = steps::Outcome {
            new_commit: None,
            verified: None,
        };
        summarize(&repo(false), &mut unverified, &Ok(outcome));
        assert_eq!(condition(&unverified, "Ready"), ("True", "Succeeded", message));
        assert!(conditions::get(&unverified.conditions, SOURCE_VERIFIED).is_none());
        assert_eq!(
            condition(&status, ARTIFACT_IN_STORAGE),
            ("True", "Succeeded", message)
        );
        assert_eq!(condition(&status, SOURCE_VERIFIED).0, "True");
        assert!(conditions::get(&status.conditions, FETCH_FAILED).is_none());
        assert!(conditions::get(&status.conditions, RECONCILING).is_none());
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(3) || c.type_ == "Ready")
        );
    }

    #[test]
    fn a_failure_is_carried_by_its_condition_and_retried_or_stalled() {
        let obj = repo(true);
        let mut status = stored();
        let storage = Err(Error::CreateWorkdir(std::io::Error::other("disk full")));
        summarize(&obj, &mut status, &storage);
        assert_eq!(
            condition(&status, STORAGE_OPERATION_FAILED),
            (
                "True",
                "StorageOperationFailed",
                "creating a temporary directory: disk full"
            )
        );
        assert_eq!(
            condition(&status, "Ready"),
            (
                "False",
                "StorageOperationFailed",
                "creating a temporary directory: disk full"
            )
        );
        assert_eq!(
            condition(&status, RECONCILING).1,
            "ProgressingWithRetry",
            "retried"
        );

        let mut status = stored();
        summarize(
            &obj,
            &mut status,
            &Err(Error::Verify(driftless_git::Error::Verification(
                "unsigned".into(),
            ))),
        );
        assert_eq!(
            condition(&status, SOURCE_VERIFIED),
            ("False", "VerificationError", "unsigned")
        );
        assert_eq!(condition(&status, "Ready").0, "False");

        let mut status = stored();
        summarize(&obj, &mut status, &Err(Error::InvalidSpec("bad interval".into())));
        assert_eq!(
            condition(&status, STALLED),
            ("True", "InvalidSpec", "bad interval")
        );
        assert_eq!(
            condition(&status, "Ready"),
            ("False", "InvalidSpec", "bad interval")
        );
        assert!(
            conditions::get(&status.conditions, RECONCILING).is_none(),
            "stalled: not retried"
        );
    }

    #[test]
    fn a_failure_while_a_new_revision_waits_says_so_in_reconciling() {
        let obj = repo(false);
        let mut status = stored();
        conditions::mark_true(
            &mut status.conditions,
            ARTIFACT_OUTDATED,
            "NewRevision",
            "new revision 'b'",
            Some(3),
        );
        summarize(
            &obj,
            &mut status,
            &Err(Error::CreateWorkdir(std::io::Error::other("disk full"))),
        );
        assert_eq!(
            condition(&status, RECONCILING).2,
            "building artifact: new revision 'b'"
        );
    }
}
