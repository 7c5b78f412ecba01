use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{INTERVAL_PATTERN, LocalObjectReference, ReconcileRequestStatus};

/// ReceiverSpec defines the desired state of the Receiver.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1",
    kind = "Receiver",
    plural = "receivers",
    namespaced,
    status = "ReceiverStatus",
    doc = "Receiver is the Schema for the receivers API.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.type != 'generic-oidc' || (has(self.oidcProviders) && size(self.oidcProviders) > 0)", "message": "generic-oidc receivers must define at least one oidcProvider"},
    {"rule": "self.type == 'generic-oidc' || !has(self.oidcProviders) || size(self.oidcProviders) == 0", "message": "oidcProviders can only be set when type is generic-oidc"},
    {"rule": "self.type != 'generic-oidc' || !has(self.secretRef)", "message": "secretRef cannot be set when type is generic-oidc"},
    {"rule": "self.type == 'generic-oidc' || has(self.secretRef)", "message": "secretRef is required when type is not generic-oidc"}
]))]
#[serde(rename_all = "camelCase")]
pub struct ReceiverSpec {
    /// Type of webhook sender, used to determine the validation procedure and payload deserialization.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["generic", "generic-hmac", "generic-oidc", "github", "gitlab", "bitbucket", "harbor", "dockerhub", "quay", "gcr", "nexus", "acr", "cdevents"]))]
    pub type_: String,
    /// Interval at which to reconcile the Receiver with its Secret references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(INTERVAL_PATTERN), extend("default" = "10m"))]
    pub interval: Option<String>,
    /// Events specifies the list of event types to handle, e.g. 'push' for GitHub or 'Push Hook' for
    /// GitLab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// A list of resources to be notified about changes.
    pub resources: Vec<ReceiverResource>,
    /// ResourceFilter is a CEL expression expected to return a boolean that is evaluated for each resource
    /// referenced in the Resources field when a webhook is received. If the expression returns false then
    /// the controller will not request a reconciliation for the resource. When the expression is specified
    /// the controller will parse it and mark the object as terminally failed if the expression is invalid
    /// or does not return a boolean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_filter: Option<String>,
    /// SecretRef specifies the Secret containing the token used to validate the payload authenticity. The
    /// Secret must contain a 'token' key. Required for all types but 'generic-oidc'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// OIDCProviders specifies the OIDC providers used to authenticate incoming requests for the
    /// 'generic-oidc' type.
    #[serde(default, rename = "oidcProviders", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["issuerURL"]))]
    pub oidc_providers: Option<Vec<OIDCProvider>>,
    /// Suspend tells the controller to suspend subsequent events handling for this receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// ReceiverResource references a resource to be notified about changes, with an optional filter.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverResource {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent.
    #[schemars(schema_with = "super::event_source_kind")]
    pub kind: String,
    /// Name of the referent. If multiple resources are targeted `*` may be set.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,
    /// MatchLabels is a map of {key,value} pairs. A single {key,value} in the matchLabels map is equivalent
    /// to an element of matchExpressions, whose key field is "key", the operator is "In", and the values
    /// array contains only "value". MatchLabels requires the name to be set to `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Filter is a CEL expression expected to return a boolean that is evaluated for each resource matched
    /// by this reference when a webhook is received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// OIDCProvider configures an OIDC issuer used to authenticate requests for a 'generic-oidc' Receiver.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OIDCProvider {
    /// IssuerURL is the OIDC issuer URL used for provider discovery. It must use https.
    #[serde(rename = "issuerURL")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub issuer_url: String,
    /// Audience is the expected audience ('aud' claim) for tokens issued by this provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Variables is an optional list of named CEL expressions, evaluated in order against the token
    /// claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<OIDCVariable>>,
    /// Validations is the list of CEL boolean expressions evaluated against the OIDC token claims; all
    /// must be true for the request to be accepted.
    #[schemars(length(min = 1))]
    pub validations: Vec<OIDCValidation>,
}

/// OIDCVariable is a named CEL expression evaluated against the OIDC token claims.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct OIDCVariable {
    /// Name is the variable name; it must be a valid CEL identifier.
    pub name: String,
    /// Expression is the CEL expression that defines the variable value.
    pub expression: String,
}

/// OIDCValidation is a CEL boolean expression evaluated against the OIDC token claims.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct OIDCValidation {
    /// Expression is the CEL boolean expression to evaluate.
    pub expression: String,
    /// Message is returned to the caller when the expression evaluates to false.
    pub message: String,
}

/// ReceiverStatus defines the observed state of the Receiver.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverStatus {
    /// The last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(flatten)]
    pub reconcile_request: ReconcileRequestStatus,
    /// Conditions holds the conditions for the Receiver.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// WebhookPath is the generated incoming webhook address in the format of
    /// '/hook/sha256sum(token+name+namespace)'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_path: Option<String>,
    /// ObservedGeneration is the last observed generation of the Receiver object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
