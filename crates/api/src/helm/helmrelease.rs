use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    kustomize::{
        CommonMetadata, CustomHealthCheck, DependencyReference, IgnoreRule, Image, Patch, ResourceInventory,
    },
    meta::{INTERVAL_PATTERN, KubeConfigReference, LocalObjectReference, ReconcileRequestStatus},
    source::{ReconcileStrategy, VerificationProvider},
};

/// HelmReleaseSpec defines the desired state of a Helm release.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "helm.toolkit.fluxcd.io",
    version = "v2",
    kind = "HelmRelease",
    plural = "helmreleases",
    namespaced,
    status = "HelmReleaseStatus",
    shortname = "hr",
    doc = "HelmRelease is the Schema for the helmreleases API.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "(has(self.chart) && !has(self.chartRef)) || (!has(self.chart) && has(self.chartRef))", "message": "either chart or chartRef must be set"}
]))]
#[serde(rename_all = "camelCase")]
pub struct HelmReleaseSpec {
    /// Chart defines the template of the v1.HelmChart that should be created for this HelmRelease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<HelmChartTemplate>,
    /// ChartRef holds a reference to a source controller resource containing the Helm chart artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_ref: Option<CrossNamespaceSourceReference>,
    /// Interval at which to reconcile the Helm release.
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub interval: String,
    /// KubeConfig for reconciling the HelmRelease on a remote cluster. When used in combination with
    /// HelmReleaseSpec.ServiceAccountName, forces the controller to act on behalf of that Service Account at
    /// the target cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_config: Option<KubeConfigReference>,
    /// Suspend tells the controller to suspend reconciliation for this HelmRelease, it does not apply to
    /// already started reconciliations. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// ReleaseName used for the Helm release. Defaults to a composition of
    /// '[TargetNamespace-]Name'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 53))]
    pub release_name: Option<String>,
    /// TargetNamespace to target when performing operations for the HelmRelease. Defaults to the namespace
    /// of the HelmRelease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub target_namespace: Option<String>,
    /// StorageNamespace used for the Helm storage. Defaults to the namespace of the HelmRelease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub storage_namespace: Option<String>,
    /// DependsOn may contain a DependencyReference slice with references to HelmRelease resources that must
    /// be ready before this HelmRelease can be reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<DependencyReference>>,
    /// Timeout is the time to wait for any individual Kubernetes operation (like Jobs for hooks) during the
    /// performance of a Helm action. Defaults to '5m0s'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub timeout: Option<String>,
    /// MaxHistory is the number of revisions saved by Helm for this HelmRelease. Use '0' for an unlimited
    /// number of revisions; defaults to '5'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_history: Option<i64>,
    /// The name of the Kubernetes service account to impersonate when reconciling this HelmRelease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_account_name: Option<String>,
    /// PersistentClient tells the controller to use a persistent Kubernetes client for this release. When
    /// enabled, the client will be reused for the duration of the reconciliation, instead of being created
    /// and destroyed for each (step of a) Helm action. Defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_client: Option<bool>,
    /// DriftDetection holds the configuration for detecting and handling differences between the manifest
    /// in the Helm storage and the resources currently existing in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_detection: Option<DriftDetection>,
    /// Install holds the configuration for Helm install actions for this HelmRelease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<Install>,
    /// Upgrade holds the configuration for Helm upgrade actions for this HelmRelease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Upgrade>,
    /// Test holds the configuration for Helm test actions for this HelmRelease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Test>,
    /// Rollback holds the configuration for Helm rollback actions for this HelmRelease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// Uninstall holds the configuration for Helm uninstall actions for this HelmRelease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uninstall: Option<Uninstall>,
    /// ValuesFrom holds references to resources containing Helm values for this HelmRelease, and
    /// information about how they should be merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_from: Option<Vec<ValuesReference>>,
    /// Values holds the values for this Helm release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::meta::preserve_unknown_fields")]
    pub values: Option<serde_json::Value>,
    /// PostRenderers holds an array of Helm PostRenderers, which will be applied in order of their
    /// definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_renderers: Option<Vec<PostRenderer>>,
    /// PostRenderStrategy defines the strategy for sending hooks to post-renderers: 'nohooks' (hooks are
    /// not post-rendered), 'combined' or 'separate'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["nohooks", "combined", "separate"]))]
    pub post_render_strategy: Option<String>,
    /// CommonMetadata specifies the common labels and annotations that are applied to all resources. Any
    /// existing label or annotation will be overridden if its key matches a common one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_metadata: Option<CommonMetadata>,
    /// HealthCheckExprs is a list of healthcheck expressions for evaluating the health of custom resources
    /// using Common Expression Language (CEL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_exprs: Option<Vec<CustomHealthCheck>>,
    /// WaitStrategy defines Helm's wait strategy for waiting for applied resources to become ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_strategy: Option<WaitStrategy>,
}

/// HelmChartTemplate defines the template from which the controller will generate a v1.HelmChart object in
/// the same namespace as the referenced v1.Source.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct HelmChartTemplate {
    /// ObjectMeta holds the template for metadata like labels and annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<HelmChartTemplateObjectMeta>,
    /// Spec holds the template for the v1.HelmChartSpec for this HelmRelease.
    pub spec: HelmChartTemplateSpec,
}

/// HelmChartTemplateObjectMeta defines the template for the ObjectMeta of a v1.HelmChart.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct HelmChartTemplateObjectMeta {
    /// Map of string keys and values that can be used to organize and categorize (scope and select)
    /// objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations is an unstructured key value map stored with a resource that may be set by external
    /// tools to store and retrieve arbitrary metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// HelmChartTemplateSpec defines the template from which the controller will generate a v1.HelmChartSpec
/// object.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartTemplateSpec {
    /// The name or path the Helm chart is available at in the SourceRef.
    #[schemars(length(min = 1, max = 2048))]
    pub chart: String,
    /// Version semver expression, ignored for charts from v1.GitRepository and v1.Bucket sources. Defaults
    /// to latest when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "*"))]
    pub version: Option<String>,
    /// The name and namespace of the v1.Source the chart is available at.
    pub source_ref: CrossNamespaceObjectReference,
    /// Interval at which to check the v1.Source for updates. Defaults to 'HelmReleaseSpec.Interval'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub interval: Option<String>,
    /// Determines what enables the creation of a new artifact. Valid values are ('ChartVersion',
    /// 'Revision'). Defaults to ChartVersion when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ChartVersion"))]
    pub reconcile_strategy: Option<ReconcileStrategy>,
    /// Alternative list of values files to use as the chart values (values.yaml is not included by
    /// default), expected to be a relative path in the SourceRef. Values files are merged in the order of
    /// this list with the last file overriding the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_files: Option<Vec<String>>,
    /// IgnoreMissingValuesFiles controls whether to silently ignore missing values files rather than
    /// failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_missing_values_files: Option<bool>,
    /// Verify contains the secret name containing the trusted public keys used to verify the signature and
    /// specifies which provider to use to check whether OCI image is authentic. Only supported for OCI
    /// sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<HelmChartTemplateVerification>,
}

/// HelmChartTemplateVerification verifies the authenticity of an OCI Helm chart.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartTemplateVerification {
    /// Provider specifies the technology used to sign the OCI Helm chart.
    #[serde(default)]
    #[schemars(extend("default" = "cosign"))]
    pub provider: VerificationProvider,
    /// SecretRef specifies the Kubernetes Secret containing the trusted public keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
}

/// CrossNamespaceObjectReference contains enough information to let you locate the typed referenced object
/// at cluster level.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceObjectReference {
    /// APIVersion of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent.
    #[schemars(extend("enum" = ["HelmRepository", "GitRepository", "Bucket"]))]
    pub kind: String,
    /// Name of the referent.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// CrossNamespaceSourceReference contains enough information to let you locate the typed referenced
/// object at cluster level.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceSourceReference {
    /// APIVersion of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent.
    #[schemars(extend("enum" = ["OCIRepository", "HelmChart", "ExternalArtifact"]))]
    pub kind: String,
    /// Name of the referent.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the referent, defaults to the namespace of the Kubernetes resource object that contains
    /// the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// DriftDetection defines the strategy for performing differential analysis and handling drift.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct DriftDetection {
    /// Mode defines how differences should be handled between the Helm manifest and the manifest currently
    /// applied to the cluster: 'enabled' corrects drift, 'warn' only reports it. Defaults to 'disabled'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["enabled", "warn", "disabled"]))]
    pub mode: Option<String>,
    /// Ignore contains a list of rules for specifying which changes to ignore during diffing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<IgnoreRule>>,
}

/// How CRDs in a chart's crds directory are handled.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[schemars(transform = crate::meta::field_enum)]
pub enum CrdsPolicy {
    /// Do not install or upgrade CRDs.
    Skip,
    /// Create new CRDs, do not update existing ones.
    #[default]
    Create,
    /// Create new CRDs and replace existing ones.
    CreateReplace,
}

/// The strategy of an install or upgrade: what to do after a failure.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ActionStrategy {
    /// Name of the strategy: 'RemediateOnFailure' (remediate as configured in `remediation`) or
    /// 'RetryOnFailure' (retry after `retryInterval`, no remediation).
    #[schemars(extend("enum" = ["RemediateOnFailure", "RetryOnFailure"]))]
    pub name: String,
    /// RetryInterval is the interval at which to retry a failed action. Only with 'RetryOnFailure'; defaults
    /// to the HelmRelease interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub retry_interval: Option<String>,
}

/// Install holds the configuration for Helm install actions performed for this HelmRelease.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Install {
    /// Timeout is the time to wait for any individual Kubernetes operation (like Jobs for hooks) during the
    /// performance of a Helm install action. Defaults to 'HelmReleaseSpec.Timeout'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub timeout: Option<String>,
    /// Remediation holds the remediation configuration for when the Helm install action for the
    /// HelmRelease fails. The default is to not perform any action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<InstallRemediation>,
    /// Strategy defines the install strategy to use for this HelmRelease. Defaults to 'RemediateOnFailure'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<ActionStrategy>,
    /// DisableWait disables the waiting for resources to be ready after a Helm install has been performed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait: Option<bool>,
    /// DisableWaitForJobs disables waiting for jobs to complete after a Helm install has been performed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait_for_jobs: Option<bool>,
    /// DisableHooks prevents hooks from running during the Helm install action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_hooks: Option<bool>,
    /// DisableOpenAPIValidation prevents the Helm install action from validating rendered templates against
    /// the Kubernetes OpenAPI Schema.
    #[serde(
        default,
        rename = "disableOpenAPIValidation",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_openapi_validation: Option<bool>,
    /// DisableSchemaValidation prevents the Helm install action from validating the values against the
    /// JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_schema_validation: Option<bool>,
    /// DisableTakeOwnership disables taking ownership of existing resources during the Helm install action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_take_ownership: Option<bool>,
    /// Replace tells the Helm install action to re-use the 'ReleaseName', but only if that name is a
    /// deleted release which remains in the history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<bool>,
    /// SkipCRDs tells the Helm install action to not install any CRDs. Deprecated: use CRDs instead.
    #[serde(default, rename = "skipCRDs", skip_serializing_if = "Option::is_none")]
    pub skip_crds: Option<bool>,
    /// CRDs upgrade CRDs from the Helm Chart's crds directory according to the CRD upgrade policy provided
    /// here: 'Skip', 'Create' (default) or 'CreateReplace'.
    #[serde(default, rename = "crds", skip_serializing_if = "Option::is_none")]
    pub crds: Option<CrdsPolicy>,
    /// CreateNamespace tells the Helm install action to create the HelmReleaseSpec.TargetNamespace if it
    /// does not exist yet. On uninstall, the namespace will not be garbage collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_namespace: Option<bool>,
    /// ServerSideApply enables server-side apply for resources during install. Defaults to true (or false
    /// when UseHelm3Defaults feature gate is enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_apply: Option<bool>,
}

/// InstallRemediation holds the configuration for Helm install remediation.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InstallRemediation {
    /// Retries is the number of retries that should be attempted on failures before bailing. Remediation,
    /// using an uninstall, is performed between each attempt. Defaults to '0', a negative integer equals to
    /// unlimited retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    /// IgnoreTestFailures tells the controller to skip remediation when the Helm tests are run after an
    /// install action but fail. Defaults to 'Test.IgnoreFailures'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_test_failures: Option<bool>,
    /// RemediateLastFailure tells the controller to remediate the last failure, when no retries remain.
    /// Defaults to 'false'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediate_last_failure: Option<bool>,
}

/// Upgrade holds the configuration for Helm upgrade actions for this HelmRelease.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Upgrade {
    /// Timeout is the time to wait for any individual Kubernetes operation (like Jobs for hooks) during the
    /// performance of a Helm upgrade action. Defaults to 'HelmReleaseSpec.Timeout'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub timeout: Option<String>,
    /// Remediation holds the remediation configuration for when the Helm upgrade action for the
    /// HelmRelease fails. The default is to not perform any action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<UpgradeRemediation>,
    /// Strategy defines the upgrade strategy to use for this HelmRelease. Defaults to
    /// 'RemediateOnFailure'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<ActionStrategy>,
    /// DisableWait disables the waiting for resources to be ready after a Helm upgrade has been performed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait: Option<bool>,
    /// DisableWaitForJobs disables waiting for jobs to complete after a Helm upgrade has been performed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait_for_jobs: Option<bool>,
    /// DisableHooks prevents hooks from running during the Helm upgrade action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_hooks: Option<bool>,
    /// DisableOpenAPIValidation prevents the Helm upgrade action from validating rendered templates against
    /// the Kubernetes OpenAPI Schema.
    #[serde(
        default,
        rename = "disableOpenAPIValidation",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_openapi_validation: Option<bool>,
    /// DisableSchemaValidation prevents the Helm upgrade action from validating the values against the
    /// JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_schema_validation: Option<bool>,
    /// DisableTakeOwnership disables taking ownership of existing resources during the Helm upgrade action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_take_ownership: Option<bool>,
    /// Force forces resource updates through a replacement strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    /// PreserveValues will make Helm reuse the last release's values and merge in overrides from 'Values'.
    /// Setting this flag makes the HelmRelease non-declarative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_values: Option<bool>,
    /// CleanupOnFail allows deletion of new resources created during the Helm upgrade action when it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_on_fail: Option<bool>,
    /// CRDs upgrade CRDs from the Helm Chart's crds directory according to the CRD upgrade policy provided
    /// here: 'Skip' (default), 'Create' or 'CreateReplace'.
    #[serde(default, rename = "crds", skip_serializing_if = "Option::is_none")]
    pub crds: Option<CrdsPolicy>,
    /// ServerSideApply enables server-side apply for resources during upgrade: 'enabled', 'disabled' or
    /// 'auto' (the mode of the release being upgraded). Defaults to 'auto'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["enabled", "disabled", "auto"]))]
    pub server_side_apply: Option<String>,
    /// ChartNameChangeStrategy defines the strategy to use when a Helm chart name changes. Valid values are
    /// 'Reinstall' or 'InPlaceUpdate'. Defaults to 'Reinstall' if omitted. Reinstall: reinstall the Helm
    /// release, uninstalling the existing Helm release. InPlaceUpdate: update the Helm release in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["InPlaceUpdate", "Reinstall"]))]
    pub chart_name_change_strategy: Option<String>,
}

/// UpgradeRemediation holds the configuration for Helm upgrade remediation.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeRemediation {
    /// Retries is the number of retries that should be attempted on failures before bailing. Remediation,
    /// using 'Strategy', is performed between each attempt. Defaults to '0', a negative integer equals to
    /// unlimited retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    /// IgnoreTestFailures tells the controller to skip remediation when the Helm tests are run after an
    /// upgrade action but fail. Defaults to 'Test.IgnoreFailures'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_test_failures: Option<bool>,
    /// RemediateLastFailure tells the controller to remediate the last failure, when no retries remain.
    /// Defaults to 'false' unless 'Retries' is greater than 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediate_last_failure: Option<bool>,
    /// Strategy to use for failure remediation: 'rollback' (default) or 'uninstall'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["rollback", "uninstall"]))]
    pub strategy: Option<String>,
}

/// Test holds the configuration for Helm test actions for this HelmRelease.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Test {
    /// Enable enables Helm test actions for this HelmRelease after an Helm install or upgrade action has
    /// been performed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable: Option<bool>,
    /// Timeout is the time to wait for any individual Kubernetes operation during the performance of a Helm
    /// test action. Defaults to 'HelmReleaseSpec.Timeout'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub timeout: Option<String>,
    /// IgnoreFailures tells the controller to skip remediation when the Helm tests are run but fail. Can be
    /// overwritten for tests run after install or upgrade actions in 'Install.IgnoreTestFailures' and
    /// 'Upgrade.IgnoreTestFailures'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_failures: Option<bool>,
    /// Filters is a list of tests to run or exclude from running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<TestFilter>>,
}

/// Filter holds the configuration for individual Helm test filters.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct TestFilter {
    /// Name is the name of the test.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Exclude specifies whether the named test should be excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<bool>,
}

/// Rollback holds the configuration for Helm rollback actions for this HelmRelease.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// Timeout is the time to wait for any individual Kubernetes operation (like Jobs for hooks) during the
    /// performance of a Helm rollback action. Defaults to 'HelmReleaseSpec.Timeout'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub timeout: Option<String>,
    /// DisableWait disables the waiting for resources to be ready after a Helm rollback has been performed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait: Option<bool>,
    /// DisableWaitForJobs disables waiting for jobs to complete after a Helm rollback has been performed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait_for_jobs: Option<bool>,
    /// DisableHooks prevents hooks from running during the Helm rollback action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_hooks: Option<bool>,
    /// Recreate performs pod restarts for any managed workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recreate: Option<bool>,
    /// Force forces resource updates through a replacement strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    /// CleanupOnFail allows deletion of new resources created during the Helm rollback action when it
    /// fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_on_fail: Option<bool>,
    /// ServerSideApply enables server-side apply for resources during rollback: 'enabled', 'disabled' or
    /// 'auto' (the mode of the release being rolled back to). Defaults to 'auto'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["enabled", "disabled", "auto"]))]
    pub server_side_apply: Option<String>,
}

/// Uninstall holds the configuration for Helm uninstall actions for this HelmRelease.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Uninstall {
    /// Timeout is the time to wait for any individual Kubernetes operation (like Jobs for hooks) during the
    /// performance of a Helm uninstall action. Defaults to 'HelmReleaseSpec.Timeout'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub timeout: Option<String>,
    /// DisableHooks prevents hooks from running during the Helm uninstall action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_hooks: Option<bool>,
    /// KeepHistory tells Helm to remove all associated resources and mark the release as deleted, but
    /// retain the release history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_history: Option<bool>,
    /// DisableWait disables waiting for all the resources to be deleted after a Helm uninstall is
    /// performed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait: Option<bool>,
    /// DeletionPropagation specifies the deletion propagation policy when a Helm uninstall is performed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "background", "enum" = ["background", "foreground", "orphan"]))]
    pub deletion_propagation: Option<String>,
}

/// ValuesReference contains a reference to a resource containing Helm values, and optionally the key they
/// can be found at.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ValuesReference {
    /// Kind of the values referent, valid values are ('Secret', 'ConfigMap').
    #[schemars(extend("enum" = ["Secret", "ConfigMap"]))]
    pub kind: String,
    /// Name of the values referent. Should reside in the same namespace as the referring resource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// ValuesKey is the data key where the values.yaml or a specific value can be found at. Defaults to
    /// 'values.yaml'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), pattern(r"^[\-._a-zA-Z0-9]+$"))]
    pub values_key: Option<String>,
    /// TargetPath is the YAML dot notation path the value should be merged at. When set, the ValuesKey is
    /// expected to be a single flat value. Defaults to 'None', which results in the values getting merged
    /// at the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 250), pattern(r"^([a-zA-Z0-9_\-.\\\/]|\[[0-9]{1,5}\])+$"))]
    pub target_path: Option<String>,
    /// Optional marks this ValuesReference as optional. When set, a not found error for the values
    /// reference is ignored, but any ValuesKey, TargetPath or transient error will still result in a
    /// reconciliation failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// Literal marks this ValuesReference as a literal value: when set with TargetPath, the value is used
    /// as a string, never parsed as YAML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<bool>,
}

/// PostRenderer contains a Helm PostRenderer specification.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct PostRenderer {
    /// Kustomization to apply as PostRenderer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizePostRenderer>,
}

/// Kustomize Helm PostRenderer specification.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct KustomizePostRenderer {
    /// Strategic merge and JSON patches, defined as inline YAML objects, capable of targeting objects based
    /// on kind, label and annotation selectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Vec<Patch>>,
    /// Images is a list of (image name, new name, new tag or digest) for changing image names, tags or
    /// digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<Image>>,
}

/// WaitStrategy defines Helm's wait strategy for waiting for applied resources to become ready.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct WaitStrategy {
    /// Name is Helm's wait strategy: 'poller' (kstatus) or 'legacy' (Helm v3's waiting logic).
    #[schemars(extend("enum" = ["poller", "legacy"]))]
    pub name: String,
}

/// HelmReleaseStatus defines the observed state of a HelmRelease.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HelmReleaseStatus {
    /// ObservedGeneration is the last observed generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// ObservedPostRenderersDigest is the digest for the post-renderers of the last successful
    /// reconciliation attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_post_renderers_digest: Option<String>,
    /// ObservedCommonMetadataDigest is the digest for the common metadata of the last successful
    /// reconciliation attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_common_metadata_digest: Option<String>,
    /// LastAttemptedGeneration is the last generation the controller attempted to reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_generation: Option<i64>,
    /// Conditions holds the conditions for the HelmRelease.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// HelmChart is the namespaced name of the HelmChart resource created by the controller for the
    /// HelmRelease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_chart: Option<String>,
    /// StorageNamespace is the namespace of the Helm release storage for the current release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub storage_namespace: Option<String>,
    /// History holds the history of Helm releases performed for this HelmRelease up to the last
    /// successfully completed release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<ReleaseSnapshot>>,
    /// LastAttemptedReleaseAction is the last release action performed for this HelmRelease: 'install' or
    /// 'upgrade'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["install", "upgrade"]))]
    pub last_attempted_release_action: Option<String>,
    /// LastAttemptedReleaseActionDuration is the duration of the last release action performed for this
    /// HelmRelease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_release_action_duration: Option<String>,
    /// Failures is the reconciliation failure count against the latest desired state. It is reset after a
    /// successful reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<i64>,
    /// InstallFailures is the install failure count against the latest desired state. It is reset after a
    /// successful reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_failures: Option<i64>,
    /// UpgradeFailures is the upgrade failure count against the latest desired state. It is reset after a
    /// successful reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_failures: Option<i64>,
    /// LastAttemptedRevision is the Source revision of the last reconciliation attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    /// LastAttemptedRevisionDigest is the digest of the last reconciliation attempt. This is only set for
    /// OCIRepository sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision_digest: Option<String>,
    /// LastAttemptedValuesChecksum is the SHA1 checksum for the values of the last reconciliation attempt.
    /// Deprecated: use LastAttemptedConfigDigest instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_values_checksum: Option<String>,
    /// LastReleaseRevision is the revision of the last successful Helm release. Deprecated: use History
    /// instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_release_revision: Option<i64>,
    /// LastAttemptedConfigDigest is the digest for the config (better known as "values") of the last
    /// reconciliation attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_config_digest: Option<String>,
    /// LastHandledForceAt holds the value of the most recent force request value, so a change of the
    /// annotation value can be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_force_at: Option<String>,
    /// LastHandledResetAt holds the value of the most recent reset request value, so a change of the
    /// annotation value can be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reset_at: Option<String>,
    /// Inventory contains the list of Kubernetes resource object references that have been successfully
    /// applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<ResourceInventory>,
    /// The last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(flatten)]
    pub reconcile_request: ReconcileRequestStatus,
}

/// Snapshot captures a point-in-time copy of the status information for a Helm release, as managed by the
/// controller.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseSnapshot {
    /// APIVersion is the API version of the Snapshot. Provisional: when the calculation method of the
    /// Digest field is changed, this field will be used to distinguish between the old and new methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Digest is the checksum of the release object in storage. It has the format of
    /// `<algo>:<checksum>`.
    pub digest: String,
    /// Name is the name of the release.
    pub name: String,
    /// Namespace is the namespace the release is deployed to.
    pub namespace: String,
    /// Version is the version of the release object in storage.
    pub version: i64,
    /// Status is the current state of the release.
    pub status: String,
    /// ChartName is the chart name of the release object in storage.
    pub chart_name: String,
    /// ChartVersion is the chart version of the release object in storage.
    pub chart_version: String,
    /// AppVersion is the chart app version of the release object in storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// ConfigDigest is the checksum of the config (better known as "values") of the release object in
    /// storage. It has the format of `<algo>:<checksum>`.
    pub config_digest: String,
    /// FirstDeployed is when the release was first deployed.
    pub first_deployed: Time,
    /// LastDeployed is when the release was last deployed.
    pub last_deployed: Time,
    /// Deleted is when the release was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Time>,
    /// TestHooks is the list of test hooks for the release as observed to be run by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_hooks: Option<BTreeMap<String, TestHookStatus>>,
    /// OCIDigest is the digest of the OCI artifact associated with the release.
    #[serde(default, rename = "ociDigest", skip_serializing_if = "Option::is_none")]
    pub oci_digest: Option<String>,
    /// Action is the action that resulted in this snapshot being created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// TestHookStatus holds the status information for a test hook as observed to be run by the controller.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TestHookStatus {
    /// LastStarted is the time the test hook was last started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_started: Option<Time>,
    /// LastCompleted is the time the test hook last completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completed: Option<Time>,
    /// Phase the test hook was observed to be in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}
