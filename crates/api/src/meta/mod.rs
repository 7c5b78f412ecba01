//! Types shared by every kind: object and secret references, the source `Artifact`, the reconcile-request
//! status, condition types and reasons, and the schema patterns Flux validates with (fluxcd/pkg `apis/meta`).

pub mod conditions;
mod duration;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use self::duration::{DurationError, format_duration, parse_duration};

/// The annotation whose change asks for an immediate reconcile (`flux reconcile` writes a timestamp).
pub const RECONCILE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";
/// The label that opts a Secret or ConfigMap into triggering the reconciles of the objects using it.
pub const WATCH_LABEL: &str = "reconcile.fluxcd.io/watch";
/// The value of [`WATCH_LABEL`] that enables watching.
pub const WATCH_LABEL_ENABLED: &str = "Enabled";
/// The finalizer every driftless controller puts on the objects it owns, Flux's own.
pub const FINALIZER: &str = "finalizers.fluxcd.io";

/// Schema pattern of an interval: a Go duration with units ms, s, m or h (`5m`, `1h30m`).
pub const INTERVAL_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";
/// Schema pattern of a timeout: a Go duration with units ms, s or m.
pub const TIMEOUT_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$";

/// A reference to an object in the same namespace as the referrer.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
pub struct LocalObjectReference {
    /// Name of the referent.
    pub name: String,
}

/// A reference to an object in any namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
pub struct NamespacedObjectReference {
    /// Name of the referent.
    pub name: String,
    /// Namespace of the referent, when not specified it acts as LocalObjectReference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A reference to an object of a given kind, in any namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedObjectKindReference {
    /// API version of the referent, if not specified the Kubernetes preferred version will be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent.
    pub kind: String,
    /// Name of the referent.
    pub name: String,
    /// Namespace of the referent, when not specified it acts as LocalObjectReference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A reference to a key of a Secret in the same namespace as the referrer.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
pub struct SecretKeyReference {
    /// Name of the Secret.
    pub name: String,
    /// Key in the Secret, when not specified an implementation-specific default key is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A reference to a kubeconfig in a Secret (or ConfigMap), for reconciling against a remote cluster.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.configMapRef) || has(self.secretRef)", "message": "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified"},
    {"rule": "!has(self.configMapRef) || !has(self.secretRef)", "message": "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified"}
]))]
#[serde(rename_all = "camelCase")]
pub struct KubeConfigReference {
    /// SecretRef holds the name of a Secret that contains a key with the kubeconfig file as the value. If no
    /// key is set, the key will default to 'value'. Mutually exclusive with ConfigMapRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyReference>,
    /// ConfigMapRef holds the name of a ConfigMap with the cluster address and CA for a workload identity
    /// provider. Mutually exclusive with SecretRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<LocalObjectReference>,
}

/// The output of a source reconciliation: a file in the source-controller storage.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Path is the relative file path of the Artifact in the storage, `<kind>/<namespace>/<name>/<file>`.
    pub path: String,
    /// URL is the HTTP address of the Artifact as exposed by the controller managing the Source.
    pub url: String,
    /// Revision is a human-readable identifier traceable in the origin source system, e.g.
    /// `main@sha1:<commit>`, `latest@sha256:<digest>` or a Helm chart version.
    pub revision: String,
    /// Digest is the digest of the file in the form of `<algorithm>:<checksum>`.
    #[schemars(pattern(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"))]
    pub digest: String,
    /// LastUpdateTime is the timestamp corresponding to the last update of the Artifact.
    pub last_update_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// Size is the number of bytes in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Metadata holds upstream information such as OCI annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// What the status of every reconciled kind has: conditions, the generation last reconciled and the
/// last handled reconcile request. The reconcile lifecycle (`driftless_runtime::reconcile`) keeps them.
pub trait ObjectStatus: Clone + Default + Serialize + Send + Sync + 'static {
    /// `status.conditions`.
    fn conditions(&self) -> &Vec<crate::Condition>;
    /// `status.conditions`, to change.
    fn conditions_mut(&mut self) -> &mut Vec<crate::Condition>;
    /// `status.observedGeneration`.
    fn observed_generation(&self) -> Option<i64>;
    /// Sets `status.observedGeneration`.
    fn set_observed_generation(&mut self, generation: Option<i64>);
    /// `status.lastHandledReconcileAt`.
    fn reconcile_request(&self) -> &ReconcileRequestStatus;
    /// `status.lastHandledReconcileAt`, to change.
    fn reconcile_request_mut(&mut self) -> &mut ReconcileRequestStatus;
}

/// Implements [`ObjectStatus`] for status types with the usual field names.
macro_rules! object_status {
    ($($status:ty),* $(,)?) => {$(
        impl $crate::meta::ObjectStatus for $status {
            fn conditions(&self) -> &Vec<$crate::Condition> {
                &self.conditions
            }
            fn conditions_mut(&mut self) -> &mut Vec<$crate::Condition> {
                &mut self.conditions
            }
            fn observed_generation(&self) -> Option<i64> {
                self.observed_generation
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.observed_generation = generation;
            }
            fn reconcile_request(&self) -> &$crate::meta::ReconcileRequestStatus {
                &self.reconcile_request
            }
            fn reconcile_request_mut(&mut self) -> &mut $crate::meta::ReconcileRequestStatus {
                &mut self.reconcile_request
            }
        }
    )*};
}

object_status!(
    crate::source::GitRepositoryStatus,
    crate::source::OCIRepositoryStatus,
    crate::source::HelmRepositoryStatus,
    crate::source::HelmChartStatus,
    crate::source::BucketStatus,
    crate::helm::HelmReleaseStatus,
    crate::kustomize::KustomizationStatus,
    crate::notification::ReceiverStatus,
    crate::image::ImageRepositoryStatus,
    crate::image::ImagePolicyStatus,
    crate::image::ImageUpdateAutomationStatus,
);

/// The status field echoing the last handled `reconcile.fluxcd.io/requestedAt` value.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileRequestStatus {
    /// LastHandledReconcileAt holds the value of the most recent reconcile request value, so a change of
    /// the annotation value can be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// Schema transform for enums used as fields: drops the enum type's own description so the field's
/// description is the one `kubectl explain` shows (kube's Option-enum hoisting would overwrite it).
pub fn field_enum(schema: &mut schemars::Schema) {
    schema.remove("description");
}

/// Snapshot represents a point-in-time record of a group of resources reconciliation, including timing
/// information, status, and a unique digest identifier.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Digest is the checksum in the format `<algo>:<hex>` of the resources in this snapshot.
    pub digest: String,
    /// FirstReconciled is the time when this revision was first reconciled to the cluster.
    pub first_reconciled: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// LastReconciled is the time when this revision was last reconciled to the cluster.
    pub last_reconciled: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// LastReconciledDuration is time it took to reconcile the resources in this revision.
    pub last_reconciled_duration: String,
    /// LastReconciledStatus is the status of the last reconciliation.
    pub last_reconciled_status: String,
    /// TotalReconciliations is the total number of reconciliations that have occurred for this snapshot.
    pub total_reconciliations: i64,
    /// Metadata contains additional information about the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// The schema of free-form JSON (Helm values, inline objects): any object, kept whole by the API server.
pub fn preserve_unknown_fields(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"x-kubernetes-preserve-unknown-fields": true})
}
