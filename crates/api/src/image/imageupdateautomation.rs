use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ImageRef;
use crate::{
    meta::{INTERVAL_PATTERN, LocalObjectReference, ReconcileRequestStatus},
    source::GitRepositoryRef,
};

/// ImageUpdateAutomationSpec defines the desired state of ImageUpdateAutomation.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "image.toolkit.fluxcd.io",
    version = "v1",
    kind = "ImageUpdateAutomation",
    plural = "imageupdateautomations",
    namespaced,
    status = "ImageUpdateAutomationStatus",
    doc = "ImageUpdateAutomation is the Schema for the imageupdateautomations API.",
    shortname = "iua",
    shortname = "imgupd",
    shortname = "imgauto",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Last run","type":"string","priority":1,"jsonPath":".status.lastAutomationRunTime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpdateAutomationSpec {
    /// SourceRef refers to the resource giving access details to a git repository.
    pub source_ref: CrossNamespaceSourceReference,
    /// GitSpec contains all the git-specific definitions. This is technically optional, but in practice
    /// mandatory until there are other kinds of source allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSpec>,
    /// Interval gives an lower bound for how often the automation run should be attempted.
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub interval: String,
    /// PolicySelector allows to filter applied policies based on labels. By default includes all policies
    /// in namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_selector: Option<LabelSelector>,
    /// Update gives the specification for how to update the files in the repository. This can be left
    /// empty, to use the default value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {"strategy": "Setters"}))]
    pub update: Option<UpdateStrategy>,
    /// Suspend tells the controller to not run this automation, until it is unset (or set to false).
    /// Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// CrossNamespaceSourceReference contains enough information to let you locate the typed Kubernetes
/// resource object at cluster level.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceSourceReference {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent.
    #[schemars(extend("default" = "GitRepository", "enum" = ["GitRepository"]))]
    pub kind: String,
    /// Name of the referent.
    pub name: String,
    /// Namespace of the referent, defaults to the namespace of the Kubernetes resource object that contains
    /// the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// GitSpec contains all the git-specific definitions.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct GitSpec {
    /// Checkout gives the parameters for cloning the git repository, ready to make changes. If not present,
    /// the `spec.ref` field from the referenced `GitRepository` or its default will be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<GitCheckoutSpec>,
    /// Commit specifies how to commit to the git repository.
    pub commit: CommitSpec,
    /// Push specifies how and where to push commits made by the automation. If missing, commits are pushed
    /// (back) to `.spec.checkout.branch` or its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSpec>,
}

/// GitCheckoutSpec specifies the git reference to clone and checkout.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct GitCheckoutSpec {
    /// Reference gives a branch, tag or commit to clone from the Git repository.
    #[serde(rename = "ref")]
    pub reference: GitRepositoryRef,
}

/// CommitSpec specifies how to commit changes to the git repository.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CommitSpec {
    /// Author gives the email and optionally the name to use as the author of commits.
    pub author: CommitUser,
    /// SigningKey provides the option to sign commits with a GPG key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<SigningKey>,
    /// MessageTemplate provides a template for the commit message, into which will be interpolated the
    /// details of the change made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template: Option<String>,
    /// MessageTemplateValues provides additional values to be available to the templating rendering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_values: Option<BTreeMap<String, String>>,
}

/// CommitUser names the author of commits.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct CommitUser {
    /// Name gives the name to provide when making a commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email gives the email to provide when making a commit.
    pub email: String,
}

/// SigningKey references a Kubernetes secret that contains a GPG keypair.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    /// SecretRef holds the name to a secret that contains a 'git.asc' key corresponding to the ASCII
    /// Armored file containing the GPG signing keypair as the value. It must be in the same namespace as
    /// the ImageUpdateAutomation.
    pub secret_ref: LocalObjectReference,
    /// Type selects the signing-key format expected in the referenced Secret: 'gpg' (a 'git.asc' keypair
    /// and optional 'passphrase') or 'ssh' (an 'identity' and optional 'password'). When empty, the
    /// controller defaults to 'gpg'.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["gpg", "ssh"]))]
    pub type_: Option<String>,
}

/// PushSpec specifies how and where to push commits.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct PushSpec {
    /// Branch specifies that commits should be pushed to the branch named. The branch is created using
    /// `.spec.checkout.branch` as the starting point, if it doesn't already exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Refspec specifies the Git Refspec to use for a push operation. If both Branch and Refspec are
    /// provided, then the commit is pushed to the branch and also using the specified refspec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refspec: Option<String>,
    /// Options specifies the push options that are sent to the Git server when performing a push
    /// operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
}

/// UpdateStrategy is a union of the various strategies for updating the Git repository.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct UpdateStrategy {
    /// Strategy names the strategy to be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Setters", "enum" = ["Setters"]))]
    pub strategy: Option<String>,
    /// Path to the directory containing the manifests to be updated. Defaults to 'None', which translates
    /// to the root path of the GitRepositoryRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// ImageUpdateAutomationStatus defines the observed state of ImageUpdateAutomation.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpdateAutomationStatus {
    /// LastAutomationRunTime records the last time the controller ran this automation through to
    /// completion (even if no updates were made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_automation_run_time: Option<Time>,
    /// LastPushCommit records the SHA1 of the last commit made by the controller, for this automation
    /// object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_commit: Option<String>,
    /// LastPushTime records the time of the last pushed change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_time: Option<Time>,
    /// ObservedGeneration is the last reconciled generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions holds the conditions for the ImageUpdateAutomation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// ObservedPolicies is the list of observed ImagePolicies that were considered by the
    /// ImageUpdateAutomation update process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_policies: Option<BTreeMap<String, ImageRef>>,
    /// ObservedSourceRevision is the last observed source revision. This can be used to determine if the
    /// source has been updated since last observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_source_revision: Option<String>,
    /// The last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(flatten)]
    pub reconcile_request: ReconcileRequestStatus,
}
