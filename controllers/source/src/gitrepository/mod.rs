//! GitRepository: `storage → source → include → artifact`, as Flux orders its sub-reconcilers. Steps
//! that need the cluster or the network (`fetch_*`, `apply_status`) are kept apart from the pure ones
//! (`plan`, `compute_status`). A failure keeps the last artifact in status and in storage.

pub mod provider;
mod steps;

use std::{collections::BTreeMap, sync::Arc};

use driftless_api::{
    meta::{
        conditions::{
            ARTIFACT_IN_STORAGE, ARTIFACT_OUTDATED, FETCH_FAILED, INCLUDE_UNAVAILABLE, RECONCILING,
            SOURCE_VERIFIED, STALLED, STORAGE_OPERATION_FAILED, reasons,
        },
        parse_duration,
    },
    source::GitRepository,
};
use driftless_runtime::{
    conditions::{self, Status, Summary},
    controller::{self as run_loop, with_finalizer},
    error::{ErrorClass, ReconcileError},
    events::Severity,
    manager::{watched_api, watcher_config},
    request::{handled_request, is_suspended},
    status::apply_status,
};
use kube::{
    Api, Resource, ResourceExt,
    runtime::{controller::Action, finalizer::Event, reflector::ObjectRef},
};
use tracing::{info, instrument, warn};

use crate::{Context, FIELD_MANAGER};

/// Flux's kind name.
pub const KIND: &str = "GitRepository";

/// A failed step. Each variant names what failed; [`ReconcileError`] gives its reason and class.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The credentials Secret is missing or unreadable.
    #[error(
        "failed to get secret '{namespace}/{name}': {}",
        driftless_runtime::error::api_message(source)
    )]
    GetSecret {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The Git operation failed: network, missing ref, no semver match.
    #[error("failed to checkout and determine revision: {0}")]
    Checkout(#[source] driftless_git::Error),
    /// Authentication with the Git server failed.
    #[error("failed to checkout and determine revision: {0}")]
    Authenticate(#[source] driftless_git::Error),
    /// The spec cannot work: only a change helps.
    #[error("{0}")]
    InvalidSpec(String),
    /// The provider (GitHub App, Azure workload identity) issued no credentials.
    #[error("failed to get credentials from the '{provider}' provider: {message}")]
    Provider {
        /// `github` or `azure`.
        provider: &'static str,
        /// Why.
        message: String,
    },
    /// The spec needs a feature gate that is off.
    #[error("{0}")]
    FeatureGateDisabled(String),
    /// Signature verification was asked for and could not be done or failed.
    #[error("{0}")]
    Verification(String),
    /// An included GitRepository is missing or has no artifact.
    #[error("{0}")]
    IncludeUnavailable(String),
    /// Writing to the artifact storage failed.
    #[error("{0}")]
    Storage(String),
    /// Talking to the API server failed.
    #[error("kubernetes API: {}", driftless_runtime::error::api_message(.0))]
    Kube(#[source] kube::Error),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    // NB: boxed to break the error cycle
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<Error>>),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::GetSecret { .. } | Error::Authenticate(_) | Error::Provider { .. } => {
                reasons::AUTHENTICATION_FAILED
            }
            Error::FeatureGateDisabled(_) => reasons::FEATURE_GATE_DISABLED,
            Error::Checkout(_) | Error::Kube(_) | Error::Finalizer(_) => reasons::GIT_OPERATION_FAILED,
            Error::InvalidSpec(_) => reasons::INVALID_SPEC,
            Error::Verification(_) => reasons::VERIFICATION_ERROR,
            Error::IncludeUnavailable(_) => reasons::INCLUDE_UNAVAILABLE,
            Error::Storage(_) => reasons::STORAGE_OPERATION_FAILED,
        }
    }

    fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidSpec(_) | Error::FeatureGateDisabled(_) => ErrorClass::Stalled,
            _ => ErrorClass::Transient,
        }
    }
}

/// The condition that carries the error (abnormal-true).
fn failure_condition(err: &Error) -> &'static str {
    match err {
        Error::Storage(_) => STORAGE_OPERATION_FAILED,
        Error::IncludeUnavailable(_) => INCLUDE_UNAVAILABLE,
        Error::Verification(_) => SOURCE_VERIFIED,
        Error::InvalidSpec(_) => STALLED,
        _ => FETCH_FAILED,
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
    run_loop::drain(ctrl.run(reconcile, error_policy, ctx)).await;
}

/// Reconciles one GitRepository.
#[instrument(skip_all, fields(kind = KIND, name = %obj.name_any(), namespace = obj.namespace()))]
pub async fn reconcile(obj: Arc<GitRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let timeout = obj
        .spec
        .timeout
        .as_deref()
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or(std::time::Duration::from_secs(60));
    with_finalizer(&api, &ctx.metrics, obj, timeout, |event| async {
        match event {
            Event::Apply(obj) => apply(obj, ctx.clone()).await,
            Event::Cleanup(obj) => cleanup(obj, ctx.clone()).await,
        }
    })
    .await
}

/// Maps an error to a requeue (see `driftless_runtime::error`).
pub fn error_policy(obj: Arc<GitRepository>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.count_error(KIND, err.reason());
    let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    ctx.retry.on_error(&key, err.class(), None)
}

async fn cleanup(obj: Arc<GitRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let owner = driftless_artifact::storage::Owner {
        kind: KIND,
        namespace: &obj.namespace().unwrap_or_default(),
        name: &obj.name_any(),
    };
    ctx.storage
        .remove_all(owner)
        .map_err(|e| Error::Storage(e.to_string()))?;
    info!("removed artifacts");
    Ok(Action::await_change())
}

async fn apply(obj: Arc<GitRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &ns);
    if is_suspended(obj.spec.suspend) {
        info!("reconciliation is suspended");
        return Ok(Action::await_change());
    }
    let interval = parse_duration(&obj.spec.interval).map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let generation = obj.metadata.generation;
    let old = obj.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let last_written = if status.observed_generation != generation {
        // a new generation: tell kstatus we are on it (first of at most two writes)
        conditions::mark_progressing(&mut status.conditions, "reconciliation in progress", generation);
        apply_status(&api, &name, FIELD_MANAGER, Some(&old), &status)
            .await
            .map_err(Error::Kube)?;
        status.clone()
    } else {
        old.clone()
    };

    let result = steps::run(&obj, &ctx, &mut status).await;
    status.observed_generation = generation;
    status.reconcile_request.last_handled_reconcile_at = handled_request(
        obj.as_ref(),
        old.reconcile_request.last_handled_reconcile_at.as_deref(),
    );
    let reference = obj.object_ref(&());
    match &result {
        Ok(outcome) => {
            for t in [
                FETCH_FAILED,
                INCLUDE_UNAVAILABLE,
                STORAGE_OPERATION_FAILED,
                STALLED,
                ARTIFACT_OUTDATED,
                RECONCILING,
            ] {
                conditions::delete(&mut status.conditions, t);
            }
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
            let artifact = status
                .artifact
                .as_ref()
                .expect("a successful run stores an artifact");
            let message = format!("stored artifact for revision '{}'", artifact.revision);
            conditions::mark_true(
                &mut status.conditions,
                ARTIFACT_IN_STORAGE,
                reasons::SUCCEEDED,
                &message,
                generation,
            );
            conditions::summarize(
                &mut status.conditions,
                &SUMMARY,
                reasons::SUCCEEDED,
                &message,
                generation,
            );
            if let Some(subject) = &outcome.new_commit {
                let metadata = BTreeMap::from([(
                    "source.toolkit.fluxcd.io/revision".to_string(),
                    artifact.revision.clone(),
                )]);
                ctx.recorder.record(
                    &reference,
                    Severity::Info,
                    "NewArtifact",
                    &format!("stored artifact for commit '{subject}'"),
                    metadata,
                );
                info!(revision = %artifact.revision, digest = %artifact.digest, "stored artifact");
            }
        }
        Err(err) => {
            let message = err.to_string();
            let progress = match conditions::get(&status.conditions, ARTIFACT_OUTDATED) {
                Some(c) if c.status == "True" => format!("building artifact: {}", c.message),
                _ => "reconciliation in progress".to_string(),
            };
            conditions::mark_failed_attempt(&mut status.conditions, err.class(), &progress, generation);
            let condition = failure_condition(err);
            // SourceVerified has positive polarity: a failed verification is SourceVerified=False
            let polarity = if condition == SOURCE_VERIFIED {
                Status::False
            } else {
                Status::True
            };
            conditions::set(
                &mut status.conditions,
                condition,
                polarity,
                err.reason(),
                &message,
                generation,
            );
            conditions::summarize(
                &mut status.conditions,
                &SUMMARY,
                reasons::SUCCEEDED,
                "",
                generation,
            );
            ctx.recorder
                .record_failure(&reference, &old.conditions, err.reason(), &message);
            warn!(reason = err.reason(), error = %message, "reconciliation failed");
        }
    }
    apply_status(&api, &name, FIELD_MANAGER, Some(&last_written), &status)
        .await
        .map_err(Error::Kube)?;
    result?;
    let key = format!("{ns}/{name}");
    Ok(ctx.retry.on_success(&key, interval))
}
