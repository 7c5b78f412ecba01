use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{INTERVAL_PATTERN, LocalObjectReference, TIMEOUT_PATTERN};

/// ProviderSpec defines the desired state of the Provider.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1beta3",
    kind = "Provider",
    plural = "providers",
    namespaced,
    doc = "Provider is the Schema for the providers API.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.type == 'github' || self.type == 'gitlab' || self.type == 'gitea' || self.type == 'bitbucketserver' || self.type == 'bitbucket' || self.type == 'azuredevops' || !has(self.commitStatusExpr)", "message": "spec.commitStatusExpr is only supported for the 'github', 'gitlab', 'gitea', 'bitbucketserver', 'bitbucket', 'azuredevops' provider types"}
]))]
#[serde(rename_all = "camelCase")]
pub struct ProviderSpec {
    /// Type specifies which Provider implementation to use.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["slack", "discord", "msteams", "rocket", "generic", "generic-hmac", "github", "gitlab", "gitea", "giteapullrequestcomment", "bitbucketserver", "bitbucket", "azuredevops", "googlechat", "googlepubsub", "webex", "sentry", "azureeventhub", "telegram", "lark", "matrix", "opsgenie", "alertmanager", "grafana", "githubdispatch", "githubpullrequestcomment", "gitlabmergerequestcomment", "pagerduty", "datadog", "nats", "zulip", "otel"]))]
    pub type_: String,
    /// Interval at which to reconcile the Provider with its Secret references. Deprecated and not used in
    /// v1beta3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub interval: Option<String>,
    /// Channel specifies the destination channel where events should be posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub channel: Option<String>,
    /// Username specifies the name under which events are posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub username: Option<String>,
    /// Address specifies the endpoint, in a generic sense, to where alerts are sent. What kind of endpoint
    /// depends on the specific Provider type being used. For the generic Provider, for example, this is an
    /// HTTP/S address. For other Provider types this could be a project ID or a namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub address: Option<String>,
    /// Timeout for sending alerts to the Provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TIMEOUT_PATTERN))]
    pub timeout: Option<String>,
    /// Proxy the HTTP/S address of the proxy server. Deprecated: use ProxySecretRef instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(r"^(http|https)://.*$"))]
    pub proxy: Option<String>,
    /// ProxySecretRef specifies the Secret containing the proxy configuration to use while communicating
    /// with the Provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// SecretRef specifies the Secret containing the authentication credentials for this Provider: an
    /// 'address', a 'token', 'headers' (YAML), …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// ServiceAccountName is the name of the Kubernetes ServiceAccount used to authenticate with cloud
    /// provider services through workload identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// CertSecretRef specifies the Secret containing TLS certificates for secure communication: a
    /// PEM-encoded CA certificate (`ca.crt`) and/or a client certificate and key (`tls.crt`, `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// Suspend tells the controller to suspend subsequent events handling for this Provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// CommitStatusExpr is a CEL expression that evaluates to a string value that can be used to generate
    /// a custom commit status message for use with eligible Provider types (github, gitlab, gitea,
    /// bitbucketserver, bitbucket, azuredevops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_status_expr: Option<String>,
}
