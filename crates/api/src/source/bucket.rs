use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CloudProvider;
use crate::meta::{
    Artifact, INTERVAL_PATTERN, LocalObjectReference, ReconcileRequestStatus, TIMEOUT_PATTERN,
};

/// BucketSpec specifies the required configuration to produce an Artifact for an object storage bucket.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "Bucket",
    plural = "buckets",
    namespaced,
    status = "BucketStatus",
    doc = "Bucket is the Schema for the buckets API.",
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".spec.endpoint"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.provider == 'aws' || self.provider == 'generic' || !has(self.sts)", "message": "STS configuration is only supported for the 'aws' and 'generic' Bucket providers"},
    {"rule": "self.provider != 'aws' || !has(self.sts) || self.sts.provider == 'aws'", "message": "'aws' is the only supported STS provider for the 'aws' Bucket provider"},
    {"rule": "self.provider != 'generic' || !has(self.sts) || self.sts.provider == 'ldap'", "message": "'ldap' is the only supported STS provider for the 'generic' Bucket provider"},
    {"rule": "!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.secretRef)", "message": "spec.sts.secretRef is not required for the 'aws' STS provider"},
    {"rule": "!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.certSecretRef)", "message": "spec.sts.certSecretRef is not required for the 'aws' STS provider"},
    {"rule": "self.provider != 'generic' || !has(self.serviceAccountName)", "message": "ServiceAccountName is not supported for the 'generic' Bucket provider"},
    {"rule": "!has(self.secretRef) || !has(self.serviceAccountName)", "message": "cannot set both .spec.secretRef and .spec.serviceAccountName"}
]))]
#[serde(rename_all = "camelCase")]
pub struct BucketSpec {
    /// Provider of the object storage bucket. Defaults to 'generic', which expects an S3 (API) compatible
    /// object storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generic"))]
    pub provider: Option<CloudProvider>,
    /// BucketName is the name of the object storage bucket.
    pub bucket_name: String,
    /// Endpoint is the object storage address the BucketName is located at.
    pub endpoint: String,
    /// STS specifies the required configuration to use a Security Token Service for fetching temporary
    /// credentials to authenticate in a Bucket provider. Only supported for the `aws` and `generic`
    /// providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts: Option<BucketSTSSpec>,
    /// Insecure allows connecting to a non-TLS HTTP Endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Region of the Endpoint where the BucketName is located in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Prefix to use for server-side filtering of files in the Bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// SecretRef specifies the Secret containing authentication credentials for the Bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// ServiceAccountName is the name of the Kubernetes ServiceAccount used to authenticate the bucket. Only
    /// supported for the 'gcp' and 'aws' providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// CertSecretRef can be given the name of a Secret containing either or both of a PEM-encoded client
    /// certificate (`tls.crt`) and private key (`tls.key`), and a PEM-encoded CA certificate (`ca.crt`), used
    /// for connecting to the bucket. Only supported for the `generic` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// ProxySecretRef specifies the Secret containing the proxy configuration to use while communicating
    /// with the Bucket server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// Interval at which the Bucket Endpoint is checked for updates. This interval is approximate and may be
    /// subject to jitter to ensure efficient use of resources.
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub interval: String,
    /// Timeout for fetch operations, defaults to 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TIMEOUT_PATTERN), extend("default" = "60s"))]
    pub timeout: Option<String>,
    /// Ignore overrides the set of excluded patterns in the .sourceignore format (which is the same as
    /// .gitignore). If not provided, a default will be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,
    /// Suspend tells the controller to suspend the reconciliation of this Bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// BucketSTSSpec specifies the required configuration to use a Security Token Service for fetching
/// temporary credentials to authenticate in a Bucket provider.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BucketSTSSpec {
    /// Provider of the Security Token Service.
    #[schemars(extend("enum" = ["aws", "ldap"]))]
    pub provider: String,
    /// Endpoint is the HTTP/S endpoint of the Security Token Service from where temporary credentials will
    /// be fetched.
    #[schemars(pattern(r"^(http|https)://.*$"))]
    pub endpoint: String,
    /// SecretRef specifies the Secret containing authentication credentials for the STS endpoint. This
    /// Secret must contain the fields `username` and `password` and is supported only for the `ldap`
    /// provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// CertSecretRef can be given the name of a Secret containing a PEM-encoded client certificate and key
    /// and/or a CA certificate, used for connecting to the STS endpoint. Only supported for the `ldap`
    /// provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
}

/// BucketStatus records the observed state of a Bucket.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BucketStatus {
    /// ObservedGeneration is the last observed generation of the Bucket object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions holds the conditions for the Bucket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// URL is the dynamic fetch link for the latest Artifact. It is provided on a "best effort" basis, and
    /// using the precise BucketStatus.Artifact data is recommended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Artifact represents the last successful Bucket reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// ObservedIgnore is the observed exclusion patterns used for constructing the source artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,
    /// The last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(flatten)]
    pub reconcile_request: ReconcileRequestStatus,
}
