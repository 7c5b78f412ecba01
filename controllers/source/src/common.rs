//! What every source kind does alike: check its stored artifact before anything else (a missing or
//! tampered file is dropped from status and rebuilt), remove its artifacts when it goes, and turn a
//! run's outcome into conditions — the artifact in storage and every failure cleared, or the failure
//! carried by its condition with Ready summarising the rest.

use driftless_api::meta::{
    Artifact,
    conditions::{ARTIFACT_IN_STORAGE, ARTIFACT_OUTDATED, RECONCILING, SOURCE_VERIFIED, STALLED, reasons},
};
use std::path::{Component, Path, PathBuf};

use driftless_artifact::storage::{Integrity, Owner};
use driftless_runtime::{
    conditions::{self, Status, Summary},
    error::ErrorClass,
    events::Severity,
};
use k8s_openapi::{api::core::v1::ObjectReference, apimachinery::pkg::apis::meta::v1::Condition};
use tracing::{info, warn};

use crate::Context;

/// The event reason of a stored artifact whose digest no longer matches (Flux's).
pub const ARTIFACT_VERIFICATION_FAILED: &str = "ArtifactVerificationFailed";

/// What a failure shows, decided by each kind in one place: the condition that carries it
/// (abnormal-true, or `SourceVerified=False`), its reason, and how it is retried.
pub struct Failure {
    /// The condition.
    pub condition: &'static str,
    /// Its reason.
    pub reason: &'static str,
    /// How it is retried.
    pub class: ErrorClass,
}

/// Why a stored artifact could not be checked or dropped.
#[derive(Debug, thiserror::Error)]
pub enum VerifyStoredError {
    /// Reading the stored file failed.
    #[error("{0}")]
    Check(#[source] driftless_artifact::storage::Error),
    /// A corrupted file could not be removed.
    #[error("failed to remove artifact after digest mismatch: {0}")]
    Remove(#[source] driftless_artifact::storage::Error),
}

/// Drops `artifact` when its file is gone from storage or no longer has its digest (the file deleted
/// first, with a warning event on `object`, as Flux does), so it is rebuilt and nothing serves it.
pub fn verify_stored(
    ctx: &Context,
    object: &ObjectReference,
    artifact: &mut Option<Artifact>,
) -> Result<(), VerifyStoredError> {
    let Some(stored) = artifact.as_ref() else {
        return Ok(());
    };
    match ctx.storage.check(stored).map_err(VerifyStoredError::Check)? {
        Integrity::Intact => return Ok(()),
        Integrity::Missing => info!(path = %stored.path, "stored artifact disappeared: rebuilding it"),
        Integrity::Corrupted(found) => {
            let message = format!(
                "failed to verify integrity of artifact: computed digest doesn't match '{}' (found '{found}'): rebuilding it",
                stored.digest
            );
            warn!(path = %stored.path, %found, expected = %stored.digest, "stored artifact corrupted: rebuilding it");
            ctx.storage.remove(stored).map_err(VerifyStoredError::Remove)?;
            ctx.recorder.record(
                object,
                Severity::Error,
                ARTIFACT_VERIFICATION_FAILED,
                &message,
                Default::default(),
            );
        }
    }
    *artifact = None;
    Ok(())
}

/// Removes every artifact of `owner` (the object is going).
pub fn remove_artifacts(ctx: &Context, owner: Owner<'_>) -> Result<(), driftless_artifact::storage::Error> {
    ctx.storage.remove_all(owner)?;
    info!("removed artifacts");
    Ok(())
}

/// The event of a new artifact (`reason`: `NewArtifact`, or what a HelmChart did), with the
/// `source.toolkit.fluxcd.io/revision` and `/digest` metadata notification-controller forwards.
pub fn new_artifact_event(
    ctx: &Context,
    object: &ObjectReference,
    reason: &str,
    message: &str,
    artifact: &Artifact,
) {
    let metadata = std::collections::BTreeMap::from([
        (
            "source.toolkit.fluxcd.io/revision".to_string(),
            artifact.revision.clone(),
        ),
        (
            "source.toolkit.fluxcd.io/digest".to_string(),
            artifact.digest.clone(),
        ),
    ]);
    ctx.recorder
        .record(object, Severity::Info, reason, message, metadata);
}

/// Removes every artifact of the `kind` object `obj` (it is going).
pub fn remove_artifacts_of<K: kube::Resource>(
    ctx: &Context,
    kind: &str,
    obj: &K,
) -> Result<(), driftless_artifact::storage::Error> {
    use kube::ResourceExt;
    remove_artifacts(
        ctx,
        Owner {
            kind,
            namespace: &obj.namespace().unwrap_or_default(),
            name: &obj.name_any(),
        },
    )
}

/// A run that stored (or kept) its artifact: `clear` (the failure conditions and `Reconciling`) go,
/// `ArtifactInStorage` and Ready say `message` with `reason` (`Succeeded`, or what a HelmChart did).
pub fn mark_stored(
    conditions: &mut Vec<Condition>,
    summary: &Summary<'_>,
    clear: &[&str],
    (reason, message): (&str, &str),
    generation: Option<i64>,
) {
    for t in clear {
        conditions::delete(conditions, t);
    }
    conditions::delete(conditions, ARTIFACT_OUTDATED);
    conditions::delete(conditions, RECONCILING);
    conditions::mark_true(conditions, ARTIFACT_IN_STORAGE, reason, message, generation);
    conditions::summarize(conditions, summary, reason, message, generation);
}

/// A failed run: `failure`'s condition carries `message` (SourceVerified, of positive polarity, is set
/// False), `Reconciling` stays while a transient failure is retried (saying which revision waits), and
/// Ready summarises the rest.
pub fn mark_failed(
    conditions: &mut Vec<Condition>,
    summary: &Summary<'_>,
    failure: &Failure,
    message: &str,
    generation: Option<i64>,
) {
    let progress = match conditions::get(conditions, ARTIFACT_OUTDATED) {
        Some(c) if c.status == "True" => format!("building artifact: {}", c.message),
        _ => "reconciliation in progress".to_string(),
    };
    conditions::mark_failed_attempt(conditions, failure.class, &progress, generation);
    // only a spec change helps a stalled object: Stalled says so whichever condition carries it
    if failure.class == ErrorClass::Stalled {
        conditions::mark_stalled(conditions, failure.reason, message, generation);
    } else {
        conditions::delete(conditions, STALLED);
    }
    let polarity = if failure.condition == SOURCE_VERIFIED {
        Status::False
    } else {
        Status::True
    };
    conditions::set(
        conditions,
        failure.condition,
        polarity,
        failure.reason,
        message,
        generation,
    );
    conditions::summarize(conditions, summary, reasons::SUCCEEDED, "", generation);
}

/// A relative path without `.` and `..` parts; `None` when it would leave its root.
pub fn secure_rel(p: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}
