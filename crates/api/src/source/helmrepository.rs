use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CloudProvider;
use crate::meta::{
    Artifact, INTERVAL_PATTERN, LocalObjectReference, ReconcileRequestStatus, TIMEOUT_PATTERN,
};

/// HelmRepositorySpec specifies the required configuration to produce an Artifact for a Helm repository
/// index YAML.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "HelmRepository",
    plural = "helmrepositories",
    namespaced,
    status = "HelmRepositoryStatus",
    shortname = "helmrepo",
    doc = "HelmRepository is the Schema for the helmrepositories API.",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HelmRepositorySpec {
    /// URL of the Helm repository, a valid URL contains at least a protocol and host.
    #[schemars(pattern(r"^(http|https|oci)://.*$"))]
    pub url: String,
    /// SecretRef specifies the Secret containing authentication credentials for the HelmRepository. For
    /// HTTP/S basic auth the secret must contain 'username' and 'password' fields. TLS keys in this Secret
    /// ('certFile', 'keyFile', 'caFile') are deprecated: use `.spec.certSecretRef` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// CertSecretRef can be given the name of a Secret containing either or both of a PEM-encoded client
    /// certificate (`tls.crt`) and private key (`tls.key`), and a PEM-encoded CA certificate (`ca.crt`), used
    /// for connecting to the repository. It takes precedence over the values in `.spec.secretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// PassCredentials allows the credentials from the SecretRef to be passed on to a host that does not
    /// match the host as defined in URL. Enabling this should be done with caution, as it can potentially
    /// result in credentials getting stolen in a MITM-attack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_credentials: Option<bool>,
    /// Interval at which the HelmRepository URL is checked for updates. This interval is approximate and may
    /// be subject to jitter to ensure efficient use of resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub interval: Option<String>,
    /// Insecure allows connecting to a non-TLS HTTP container registry. Only taken into account if the
    /// .spec.type field is set to 'oci'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Timeout is used for the index fetch operation for an HTTPS helm repository, and for remote OCI
    /// Repository operations like pulling for an OCI helm chart by the associated HelmChart. Its default
    /// value is 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TIMEOUT_PATTERN))]
    pub timeout: Option<String>,
    /// Suspend tells the controller to suspend the reconciliation of this HelmRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// AccessFrom specifies an Access Control List for allowing cross-namespace references to this object.
    /// Not implemented (provisional in Flux).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_from: Option<AccessFrom>,
    /// Type of the HelmRepository. When this field is set to "oci", the URL field value must be prefixed
    /// with "oci://".
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<HelmRepositoryType>,
    /// Provider used for authentication, can be 'aws', 'azure', 'gcp' or 'generic'. Only taken into account
    /// if the .spec.type field is set to 'oci'. When not specified, defaults to 'generic'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generic"))]
    pub provider: Option<CloudProvider>,
}

/// The type of a HelmRepository.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::meta::field_enum)]
pub enum HelmRepositoryType {
    /// An HTTP/S Helm repository with an index.yaml.
    #[default]
    Default,
    /// An OCI registry holding charts.
    Oci,
}

/// AccessFrom defines an Access Control List for allowing cross-namespace references to a source.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccessFrom {
    /// NamespaceSelectors is the list of namespace selectors to which this ACL applies. Items in this list
    /// are evaluated using a logical OR operation.
    pub namespace_selectors: Vec<NamespaceSelector>,
}

/// NamespaceSelector selects the namespaces to which an ACL applies.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// MatchLabels is a map of {key,value} pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<std::collections::BTreeMap<String, String>>,
}

/// HelmRepositoryStatus records the observed state of the HelmRepository.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HelmRepositoryStatus {
    /// ObservedGeneration is the last observed generation of the HelmRepository object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions holds the conditions for the HelmRepository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// URL is the dynamic fetch link for the latest Artifact. It is provided on a "best effort" basis, and
    /// using the precise HelmRepositoryStatus.Artifact data is recommended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Artifact represents the last successful HelmRepository reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// The last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(flatten)]
    pub reconcile_request: ReconcileRequestStatus,
}
