use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::OCIRepositoryVerification;
use crate::meta::{Artifact, INTERVAL_PATTERN, ReconcileRequestStatus};

/// HelmChartSpec specifies the desired state of a Helm chart.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "HelmChart",
    plural = "helmcharts",
    namespaced,
    status = "HelmChartStatus",
    shortname = "hc",
    doc = "HelmChart is the Schema for the helmcharts API.",
    printcolumn = r#"{"name":"Chart","type":"string","jsonPath":".spec.chart"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
    printcolumn = r#"{"name":"Source Kind","type":"string","jsonPath":".spec.sourceRef.kind"}"#,
    printcolumn = r#"{"name":"Source Name","type":"string","jsonPath":".spec.sourceRef.name"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.verify) || self.sourceRef.kind == 'HelmRepository'", "message": "spec.verify is only supported when spec.sourceRef.kind is 'HelmRepository'"}
]))]
#[serde(rename_all = "camelCase")]
pub struct HelmChartSpec {
    /// Chart is the name or path the Helm chart is available at in the SourceRef.
    pub chart: String,
    /// Version is the chart version semver expression, ignored for charts from GitRepository and Bucket
    /// sources. Defaults to latest when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "*"))]
    pub version: Option<String>,
    /// SourceRef is the reference to the Source the chart is available at.
    pub source_ref: LocalHelmChartSourceReference,
    /// Interval at which the HelmChart SourceRef is checked for updates. This interval is approximate and
    /// may be subject to jitter to ensure efficient use of resources.
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub interval: String,
    /// ReconcileStrategy determines what enables the creation of a new artifact. Valid values are
    /// ('ChartVersion', 'Revision'). Defaults to ChartVersion when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ChartVersion"))]
    pub reconcile_strategy: Option<ReconcileStrategy>,
    /// ValuesFiles is an alternative list of values files to use as the chart values (values.yaml is not
    /// included by default), expected to be a relative path in the SourceRef. Values files are merged in
    /// the order of this list with the last file overriding the first. Ignored when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_files: Option<Vec<String>>,
    /// IgnoreMissingValuesFiles controls whether to silently ignore missing values files rather than
    /// failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_missing_values_files: Option<bool>,
    /// Suspend tells the controller to suspend the reconciliation of this source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Verify contains the secret name containing the trusted public keys used to verify the signature and
    /// specifies which provider to use to check whether OCI image is authentic. Only supported when using
    /// a HelmRepository source with spec.type 'oci'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<OCIRepositoryVerification>,
}

/// What makes a HelmChart produce a new artifact.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[schemars(transform = crate::meta::field_enum)]
pub enum ReconcileStrategy {
    /// A new chart version.
    #[default]
    ChartVersion,
    /// A new revision of the source.
    Revision,
}

/// LocalHelmChartSourceReference contains enough information to let you locate the typed referenced
/// object at namespace level.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LocalHelmChartSourceReference {
    /// APIVersion of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent, valid values are ('HelmRepository', 'GitRepository', 'Bucket').
    #[schemars(extend("enum" = ["HelmRepository", "GitRepository", "Bucket"]))]
    pub kind: String,
    /// Name of the referent.
    pub name: String,
}

/// HelmChartStatus records the observed state of the HelmChart.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartStatus {
    /// ObservedGeneration is the last observed generation of the HelmChart object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// ObservedSourceArtifactRevision is the last observed Artifact.Revision of the HelmChartSpec.SourceRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_source_artifact_revision: Option<String>,
    /// ObservedChartName is the last observed chart name as specified by the resolved chart reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_chart_name: Option<String>,
    /// ObservedValuesFiles are the observed value files of the last successful reconciliation. It matches
    /// the chart in the last successfully reconciled artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_values_files: Option<Vec<String>>,
    /// Conditions holds the conditions for the HelmChart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// URL is the dynamic fetch link for the latest Artifact. It is provided on a "best effort" basis, and
    /// using the precise Artifact data is recommended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Artifact represents the output of the last successful reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// The last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(flatten)]
    pub reconcile_request: ReconcileRequestStatus,
}
