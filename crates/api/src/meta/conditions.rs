//! Condition types and reasons, with Flux's exact strings (fluxcd/pkg `apis/meta`, the controllers' `api`
//! packages). Kinds add their own reasons next to their types.

/// The object reached its desired state (kstatus "Current"); summarised last from the other conditions.
pub const READY: &str = "Ready";
/// The object is being reconciled; present only while True (kstatus, abnormal-true).
pub const RECONCILING: &str = "Reconciling";
/// Reconciling cannot progress without a change of the spec; present only while True (kstatus).
pub const STALLED: &str = "Stalled";
/// The health of the applied objects (Kustomization).
pub const HEALTHY: &str = "Healthy";
/// A source has an artifact in storage.
pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
/// The artifact in storage is not the one the current spec would produce.
pub const ARTIFACT_OUTDATED: &str = "ArtifactOutdated";
/// Fetching the source failed (abnormal-true).
pub const FETCH_FAILED: &str = "FetchFailed";
/// The signature of the source was verified.
pub const SOURCE_VERIFIED: &str = "SourceVerified";
/// One of a GitRepository's includes is not available (abnormal-true).
pub const INCLUDE_UNAVAILABLE: &str = "IncludeUnavailable";
/// Storage of the artifact failed (abnormal-true).
pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
/// A Helm release was released (HelmRelease).
pub const RELEASED: &str = "Released";
/// A Helm release's tests passed (HelmRelease).
pub const TEST_SUCCESS: &str = "TestSuccess";
/// A Helm release was remediated (HelmRelease).
pub const REMEDIATED: &str = "Remediated";

/// Generic reasons, shared by every kind.
pub mod reasons {
    /// Reconciliation succeeded.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Reconciliation failed.
    pub const FAILED: &str = "Failed";
    /// Reconciliation is in progress.
    pub const PROGRESSING: &str = "Progressing";
    /// Reconciliation is in progress after a failure.
    pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
    /// A dependency of the object is not ready.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    /// The object is suspended.
    pub const SUSPENDED: &str = "Suspended";
    /// Reconciliation succeeded (Kustomization, HelmRelease).
    pub const RECONCILIATION_SUCCEEDED: &str = "ReconciliationSucceeded";
    /// Reconciliation failed (Kustomization, HelmRelease).
    pub const RECONCILIATION_FAILED: &str = "ReconciliationFailed";
    /// Health checks passed.
    pub const HEALTH_CHECK_SUCCEEDED: &str = "Succeeded";
    /// Health checks failed.
    pub const HEALTH_CHECK_FAILED: &str = "HealthCheckFailed";
    /// Reading a Secret or ConfigMap failed, or one was malformed.
    pub const INVALID_SECRET: &str = "InvalidSecret";
    /// The URL in the spec is invalid.
    pub const URL_INVALID: &str = "URLInvalid";
    /// Authentication with the source failed.
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    /// The spec needs a controller feature gate that is off.
    pub const FEATURE_GATE_DISABLED: &str = "FeatureGateDisabled";
    /// Verification of the source failed.
    pub const VERIFICATION_ERROR: &str = "VerificationError";
    /// A storage operation failed.
    pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
    /// A Git operation (clone, checkout, …) failed.
    pub const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
    /// A Git operation succeeded.
    pub const GIT_OPERATION_SUCCEEDED: &str = "GitOperationSucceeded";
    /// The artifact is not there yet, or failed to download.
    pub const ARTIFACT_FAILED: &str = "ArtifactFailed";
    /// The kustomize build failed.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// Pruning stale objects failed.
    pub const PRUNE_FAILED: &str = "PruneFailed";
    /// The spec is invalid: nothing can happen until it changes.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// An include of a GitRepository is unavailable.
    pub const INCLUDE_UNAVAILABLE: &str = "IncludeUnavailable";
    /// A new revision is available and being processed.
    pub const NEW_REVISION: &str = "NewRevision";
    /// The object's access to another namespace was denied (`--no-cross-namespace-refs`).
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// The stored artifact is unavailable.
    pub const ARTIFACT_UNAVAILABLE: &str = "ArtifactUnavailable";
    /// The receiver is valid and its webhook path published (Receiver).
    pub const RECEIVER_READY: &str = "Succeeded";
    /// A token Secret is missing or malformed (Receiver).
    pub const TOKEN_NOT_FOUND: &str = "TokenNotFound";
}
