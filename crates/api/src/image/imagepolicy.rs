use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{INTERVAL_PATTERN, NamespacedObjectReference, ReconcileRequestStatus};

/// ImagePolicySpec defines the parameters for calculating the ImagePolicy.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "image.toolkit.fluxcd.io",
    version = "v1",
    kind = "ImagePolicy",
    plural = "imagepolicies",
    namespaced,
    status = "ImagePolicyStatus",
    shortname = "imgpol",
    shortname = "imagepol",
    doc = "ImagePolicy is the Schema for the imagepolicies API.",
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".status.latestRef.name"}"#,
    printcolumn = r#"{"name":"Tag","type":"string","jsonPath":".status.latestRef.tag"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.interval) || (has(self.digestReflectionPolicy) && self.digestReflectionPolicy == 'Always')", "message": "spec.interval is only accepted when spec.digestReflectionPolicy is set to 'Always'"},
    {"rule": "has(self.interval) || !has(self.digestReflectionPolicy) || self.digestReflectionPolicy != 'Always'", "message": "spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'"}
]))]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicySpec {
    /// ImageRepositoryRef points at the object specifying the image being scanned.
    pub image_repository_ref: NamespacedObjectReference,
    /// Policy gives the particulars of the policy to be followed in selecting the most recent image.
    pub policy: ImagePolicyChoice,
    /// FilterTags enables filtering for only a subset of tags based on a set of rules. If no rules are
    /// provided, all the tags from the repository will be ordered and compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_tags: Option<TagFilter>,
    /// DigestReflectionPolicy governs the setting of the `.status.latestRef.digest` field: 'Never' (the
    /// default), 'IfNotPresent' or 'Always'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Never", "enum" = ["Always", "IfNotPresent", "Never"]))]
    pub digest_reflection_policy: Option<String>,
    /// Interval is the length of time to wait between refreshing the digest of the latest tag when the
    /// reflection policy is set to "Always".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub interval: Option<String>,
    /// This flag tells the controller to suspend subsequent policy reconciliations. It does not apply to
    /// already started reconciliations. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// ImagePolicyChoice is a union of all the types of policy that can be supplied.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct ImagePolicyChoice {
    /// SemVer gives a semantic version range to check against the tags available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<SemVerPolicy>,
    /// Alphabetical set of rules to use for alphabetical ordering of the tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alphabetical: Option<OrderPolicy>,
    /// Numerical set of rules to use for numerical ordering of the tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerical: Option<OrderPolicy>,
}

/// SemVerPolicy specifies a semantic version policy.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct SemVerPolicy {
    /// Range gives a semver range for the image tag; the highest version within the range that's a tag
    /// yields the latest image.
    pub range: String,
}

/// An alphabetical or numerical ordering of tags.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct OrderPolicy {
    /// Order specifies the sorting order of the tags: 'asc' selects the lowest, 'desc' (the default) the
    /// highest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "asc", "enum" = ["asc", "desc"]))]
    pub order: Option<String>,
}

/// TagFilter enables filtering tags based on a set of defined rules.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct TagFilter {
    /// Pattern specifies a regular expression pattern used to filter for image tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Extract allows a capture group to be extracted from the specified regular expression pattern,
    /// useful before tag evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<String>,
}

/// ImageRef represents an image reference.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct ImageRef {
    /// Name is the bare image's name.
    pub name: String,
    /// Tag is the image's tag.
    pub tag: String,
    /// Digest is the image's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// ImagePolicyStatus defines the observed state of ImagePolicy.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicyStatus {
    /// LatestRef gives the first in the list of images scanned by the image repository, when filtered and
    /// ordered according to the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ref: Option<ImageRef>,
    /// ObservedPreviousRef is the observed previous LatestRef. It is used to keep track of the previous and
    /// current images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_previous_ref: Option<ImageRef>,
    /// ObservedGeneration is the last reconciled generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions holds the conditions for the ImagePolicy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(flatten)]
    pub reconcile_request: ReconcileRequestStatus,
}
