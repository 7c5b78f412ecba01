use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{
    Artifact, INTERVAL_PATTERN, LocalObjectReference, ReconcileRequestStatus, TIMEOUT_PATTERN,
};

/// OCIRepositorySpec defines the desired state of OCIRepository.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "OCIRepository",
    plural = "ocirepositories",
    namespaced,
    status = "OCIRepositoryStatus",
    shortname = "ocirepo",
    doc = "OCIRepository is the Schema for the ocirepositories API.",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct OCIRepositorySpec {
    /// URL is a reference to an OCI artifact repository hosted on a remote container registry.
    #[schemars(pattern(r"^oci://.*$"))]
    pub url: String,
    /// The OCI reference to pull and monitor for changes, defaults to the latest tag.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<OCIRepositoryRef>,
    /// LayerSelector specifies which layer should be extracted from the OCI artifact. When not specified,
    /// the first layer found in the artifact is selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_selector: Option<OCILayerSelector>,
    /// Provider is the provider used for authentication, can be 'aws', 'azure', 'gcp' or 'generic'. When not
    /// specified, defaults to 'generic'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generic"))]
    pub provider: Option<CloudProvider>,
    /// SecretRef contains the secret name containing the registry login credentials to resolve image
    /// metadata. The secret must be of type kubernetes.io/dockerconfigjson.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Verify contains the secret name containing the trusted public keys used to verify the signature and
    /// specifies which provider to use to check whether OCI image is authentic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<OCIRepositoryVerification>,
    /// ServiceAccountName is the name of the Kubernetes ServiceAccount used to authenticate the image pull
    /// if the service account has attached pull secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// CertSecretRef can be given the name of a Secret containing either or both of a PEM-encoded client
    /// certificate (`tls.crt`) and private key (`tls.key`), and a PEM-encoded CA certificate (`ca.crt`), used
    /// for connecting to the registry. The Secret must be of type `Opaque` or `kubernetes.io/tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// ProxySecretRef specifies the Secret containing the proxy configuration to use while communicating
    /// with the container registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// Interval at which the OCIRepository URL is checked for updates. This interval is approximate and may
    /// be subject to jitter to ensure efficient use of resources.
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub interval: String,
    /// The timeout for remote OCI Repository operations like pulling, defaults to 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TIMEOUT_PATTERN), extend("default" = "60s"))]
    pub timeout: Option<String>,
    /// Ignore overrides the set of excluded patterns in the .sourceignore format (which is the same as
    /// .gitignore). If not provided, a default will be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,
    /// Insecure allows connecting to a non-TLS HTTP container registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// This flag tells the controller to suspend the reconciliation of this source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// The cloud provider used for authentication to a registry or bucket.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::meta::field_enum)]
pub enum CloudProvider {
    /// Static credentials from `secretRef`, if any.
    #[default]
    Generic,
    /// AWS (IRSA, EKS Pod Identity, EC2).
    Aws,
    /// Azure (workload identity, managed identity).
    Azure,
    /// Google Cloud (workload identity).
    Gcp,
}

/// OCIRepositoryRef defines the image reference for the OCIRepository's URL.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OCIRepositoryRef {
    /// Digest is the image digest to pull, takes precedence over SemVer. The value should be in the format
    /// 'sha256:<HASH>'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// SemVer is the range of tags to pull selecting the latest within the range, takes precedence over Tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// SemverFilter is a regex pattern to filter the tags within the SemVer range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver_filter: Option<String>,
    /// Tag is the image tag to pull, defaults to latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// OCILayerSelector specifies which layer should be extracted from an OCI Artifact.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OCILayerSelector {
    /// MediaType specifies the OCI media type of the layer which should be extracted from the OCI Artifact.
    /// The first layer matching this type is selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Operation specifies how the selected layer should be processed. By default, the layer compressed
    /// content is extracted to storage. When the operation is set to 'copy', the layer compressed content is
    /// persisted to storage as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OCILayerOperation>,
}

/// How the selected layer of an OCI artifact is processed.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::meta::field_enum)]
pub enum OCILayerOperation {
    /// Extract the layer's content into the artifact.
    #[default]
    Extract,
    /// Store the compressed layer as it is.
    Copy,
}

/// OCIRepositoryVerification verifies the authenticity of an OCI Artifact.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OCIRepositoryVerification {
    /// Provider specifies the technology used to sign the OCI Artifact.
    #[serde(default)]
    #[schemars(extend("default" = "cosign"))]
    pub provider: VerificationProvider,
    /// SecretRef specifies the Kubernetes Secret containing the trusted public keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// MatchOIDCIdentity specifies the identity matching criteria to use while verifying an OCI artifact
    /// which was signed using Cosign keyless signing. The artifact's identity is deemed to be verified if
    /// any of the specified matchers match against the identity.
    #[serde(
        default,
        rename = "matchOIDCIdentity",
        skip_serializing_if = "Option::is_none"
    )]
    pub match_oidc_identity: Option<Vec<OIDCIdentityMatch>>,
    /// TrustedRootSecretRef specifies the Kubernetes Secret containing a Sigstore trusted_root.json file,
    /// for keyless verification against a private Sigstore deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root_secret_ref: Option<LocalObjectReference>,
}

/// The signing technology of an OCI artifact.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::meta::field_enum)]
pub enum VerificationProvider {
    /// Sigstore cosign.
    #[default]
    Cosign,
    /// Notary Project notation.
    Notation,
}

/// OIDCIdentityMatch specifies options for verifying the certificate identity, i.e. the issuer and the
/// subject of the certificate.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct OIDCIdentityMatch {
    /// Issuer specifies the regex pattern to match against to verify the OIDC issuer in the Fulcio
    /// certificate. The pattern must be a valid Go regular expression.
    pub issuer: String,
    /// Subject specifies the regex pattern to match against to verify the identity subject in the Fulcio
    /// certificate. The pattern must be a valid Go regular expression.
    pub subject: String,
}

/// OCIRepositoryStatus defines the observed state of OCIRepository.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OCIRepositoryStatus {
    /// ObservedGeneration is the last observed generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions holds the conditions for the OCIRepository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// URL is the download link for the artifact output of the last OCI Repository sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Artifact represents the output of the last successful OCI Repository sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// ObservedIgnore is the observed exclusion patterns used for constructing the source artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,
    /// ObservedLayerSelector is the observed layer selector used for constructing the source artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_layer_selector: Option<OCILayerSelector>,
    /// The last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(flatten)]
    pub reconcile_request: ReconcileRequestStatus,
}
