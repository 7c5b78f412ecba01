use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{
    Artifact, INTERVAL_PATTERN, LocalObjectReference, ReconcileRequestStatus, TIMEOUT_PATTERN,
};

/// GitRepositorySpec specifies the required configuration to produce an Artifact for a Git repository.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "GitRepository",
    plural = "gitrepositories",
    namespaced,
    status = "GitRepositoryStatus",
    shortname = "gitrepo",
    doc = "GitRepository is the Schema for the gitrepositories API.",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.serviceAccountName) || (has(self.provider) && (self.provider == 'azure' || self.provider == 'aws'))", "message": "serviceAccountName can only be set when provider is 'azure' or 'aws'"}
]))]
#[serde(rename_all = "camelCase")]
pub struct GitRepositorySpec {
    /// URL specifies the Git repository URL, it can be an HTTP/S or SSH address.
    #[schemars(pattern(r"^(http|https|ssh)://.*$"))]
    pub url: String,
    /// SecretRef specifies the Secret containing authentication credentials for the GitRepository. For
    /// HTTPS repositories the Secret must contain 'username' and 'password' fields for basic auth or
    /// 'bearerToken' field for token auth. For SSH repositories the Secret must contain 'identity' and
    /// 'known_hosts' fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Provider used for authentication, can be 'azure', 'github', 'generic'. When not specified, defaults
    /// to 'generic'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<GitProvider>,
    /// ServiceAccountName is the name of the Kubernetes ServiceAccount used to authenticate to the
    /// GitRepository. This field is only supported for the 'azure' provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Interval at which the GitRepository URL is checked for updates. This interval is approximate and may
    /// be subject to jitter to ensure efficient use of resources.
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub interval: String,
    /// Timeout for Git operations like cloning, defaults to 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TIMEOUT_PATTERN), extend("default" = "60s"))]
    pub timeout: Option<String>,
    /// Reference specifies the Git reference to resolve and monitor for changes, defaults to the 'master'
    /// branch.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<GitRepositoryRef>,
    /// Verification specifies the configuration to verify the Git commit signature(s).
    #[serde(default, rename = "verify", skip_serializing_if = "Option::is_none")]
    pub verification: Option<GitRepositoryVerification>,
    /// ProxySecretRef specifies the Secret containing the proxy configuration to use while communicating
    /// with the Git server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// Ignore overrides the set of excluded patterns in the .sourceignore format (which is the same as
    /// .gitignore). If not provided, a default will be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,
    /// Suspend tells the controller to suspend the reconciliation of this GitRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// RecurseSubmodules enables the initialization of all submodules within the GitRepository as cloned
    /// from the URL, using their default settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurse_submodules: Option<bool>,
    /// Include specifies a list of GitRepository resources which Artifacts should be included in the
    /// Artifact produced for this GitRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<GitRepositoryInclude>>,
    /// SparseCheckout specifies a list of directories to checkout when cloning the repository. If
    /// specified, only these directories are included in the Artifact produced for this GitRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse_checkout: Option<Vec<String>>,
}

/// The authentication provider of a GitRepository.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[schemars(transform = crate::meta::field_enum)]
#[serde(rename_all = "lowercase")]
pub enum GitProvider {
    /// Credentials from `secretRef`, if any.
    #[default]
    Generic,
    /// Azure DevOps with workload identity.
    Azure,
    /// A GitHub App whose credentials are in `secretRef`.
    Github,
    /// AWS CodeCommit with the controller's AWS identity.
    Aws,
}

/// GitRepositoryInclude specifies a local reference to a GitRepository which Artifact (sub-)contents must
/// be included, and where they should be placed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryInclude {
    /// GitRepositoryRef specifies the GitRepository which Artifact contents must be included.
    pub repository: LocalObjectReference,
    /// FromPath specifies the path to copy contents from, defaults to the root of the Artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_path: Option<String>,
    /// ToPath specifies the path to copy contents to, defaults to the name of the GitRepositoryRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_path: Option<String>,
}

/// GitRepositoryRef specifies the Git reference to resolve and checkout. Precedence: commit, name, semver,
/// tag, branch.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryRef {
    /// Branch to check out, defaults to 'master' if no other field is defined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Tag to check out, takes precedence over Branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// SemVer tag expression to check out, takes precedence over Tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// Name of the reference to check out; takes precedence over Branch, Tag and SemVer. It must be a
    /// valid Git reference, e.g. "refs/heads/main", "refs/tags/v0.1.0", "refs/pull/420/head".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Commit SHA to check out, takes precedence over all reference fields. This can be combined with
    /// Branch to shallow clone the branch, in which the commit is expected to exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// GitRepositoryVerification specifies the Git commit signature verification strategy.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryVerification {
    /// Mode specifies which Git object(s) should be verified. The variants "head" and "HEAD" both imply
    /// the same thing, i.e. verify the commit that the HEAD of the Git repository points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "HEAD"))]
    pub mode: Option<GitVerificationMode>,
    /// SecretRef specifies the Secret containing the public keys of trusted Git authors. PGP public keys
    /// must be stored under keys with the .asc suffix, SSH public keys under keys with the .sshpub suffix.
    pub secret_ref: LocalObjectReference,
}

/// Which Git object(s) to verify.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[schemars(transform = crate::meta::field_enum)]
pub enum GitVerificationMode {
    /// Legacy spelling of `HEAD`.
    #[serde(rename = "head")]
    HeadLegacy,
    /// The commit HEAD points to after checkout.
    #[default]
    #[serde(rename = "HEAD")]
    Head,
    /// The tag object of the checked-out tag.
    Tag,
    /// Both the tag object and the commit it points to.
    TagAndHEAD,
}

impl GitVerificationMode {
    /// Whether the commit HEAD points to must be verified.
    pub fn verify_head(self) -> bool {
        matches!(self, Self::Head | Self::HeadLegacy | Self::TagAndHEAD)
    }

    /// Whether the tag object must be verified.
    pub fn verify_tag(self) -> bool {
        matches!(self, Self::Tag | Self::TagAndHEAD)
    }
}

/// GitRepositoryStatus records the observed state of a Git repository.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryStatus {
    /// ObservedGeneration is the last observed generation of the GitRepository object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions holds the conditions for the GitRepository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Artifact represents the last successful GitRepository reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// IncludedArtifacts contains a list of the last successfully included Artifacts as instructed by
    /// GitRepositorySpec.Include.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub included_artifacts: Option<Vec<Artifact>>,
    /// ObservedIgnore is the observed exclusion patterns used for constructing the source artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,
    /// ObservedRecurseSubmodules is the observed resource submodules configuration used to produce the
    /// current Artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_recurse_submodules: Option<bool>,
    /// ObservedInclude is the observed list of GitRepository resources used to produce the current
    /// Artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_include: Option<Vec<GitRepositoryInclude>>,
    /// ObservedSparseCheckout is the observed list of directories used to produce the current Artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_sparse_checkout: Option<Vec<String>>,
    /// SourceVerificationMode is the last used verification mode indicating which Git object(s) have been
    /// verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_verification_mode: Option<GitVerificationMode>,
    /// The last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(flatten)]
    pub reconcile_request: ReconcileRequestStatus,
}
