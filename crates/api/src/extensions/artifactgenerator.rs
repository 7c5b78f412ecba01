use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::ReconcileRequestStatus;

/// The label every generated ExternalArtifact carries: the generator's UID.
pub const GENERATOR_LABEL: &str = "source.extensions.fluxcd.io/generator";
/// The annotation that disables reconciliation when `disabled`.
pub const RECONCILE_ANNOTATION: &str = "source.extensions.fluxcd.io/reconcile";

/// ArtifactGeneratorSpec defines the desired state of ArtifactGenerator.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "source.extensions.fluxcd.io",
    version = "v1beta1",
    kind = "ArtifactGenerator",
    plural = "artifactgenerators",
    namespaced,
    status = "ArtifactGeneratorStatus",
    shortname = "ag",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    doc = "ArtifactGenerator is the Schema for the artifactgenerators API.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.pathPattern) && size(self.pathPattern) > 0 || self.artifacts.all(a, a.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))", "message": "artifact names must be valid Kubernetes object names when pathPattern is not set"}
]))]
#[serde(rename_all = "camelCase")]
pub struct ArtifactGeneratorSpec {
    /// CommonMetadata specifies the common labels and annotations that are applied to all resources. Any
    /// existing label or annotation will be overridden if its key matches a common one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_metadata: Option<CommonMetadata>,
    /// Sources is a list of references to the Flux source-controller resources that will be used to
    /// generate the artifact.
    #[schemars(length(min = 1, max = 1000))]
    pub sources: Vec<ArtifactSourceReference>,
    /// PathPattern specifies a directory traversal pattern to match within the sources. The format is
    /// "@<alias>/<pattern>". Named captures in the pattern (e.g. "{app}") can be used as placeholders in
    /// OutputArtifacts fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 1024),
        regex(pattern = r"^@([a-z0-9]([a-z0-9_-]*[a-z0-9])?)/(.*)$")
    )]
    pub path_pattern: Option<String>,
    /// OutputArtifacts is a list of output artifacts to be generated.
    #[serde(rename = "artifacts")]
    #[schemars(length(min = 1, max = 1000))]
    pub output_artifacts: Vec<OutputArtifact>,
}

/// CommonMetadata defines the common labels and annotations.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct CommonMetadata {
    /// Annotations to be added to the object's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels to be added to the object's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// The kinds an ArtifactGenerator reads.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[schemars(transform = crate::meta::field_enum)]
pub enum ArtifactSourceKind {
    /// A Bucket.
    Bucket,
    /// A GitRepository.
    #[default]
    GitRepository,
    /// An OCIRepository.
    OCIRepository,
    /// A HelmChart.
    HelmChart,
    /// An ExternalArtifact.
    ExternalArtifact,
}

impl ArtifactSourceKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactSourceKind::Bucket => "Bucket",
            ArtifactSourceKind::GitRepository => "GitRepository",
            ArtifactSourceKind::OCIRepository => "OCIRepository",
            ArtifactSourceKind::HelmChart => "HelmChart",
            ArtifactSourceKind::ExternalArtifact => "ExternalArtifact",
        }
    }
}

/// SourceReference contains the reference to a Flux source-controller resource.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct ArtifactSourceReference {
    /// Alias of the source within the ArtifactGenerator context. The alias must be unique per
    /// ArtifactGenerator, and must consist of lower case alphanumeric characters, underscores, and hyphens.
    /// It must start and end with an alphanumeric character.
    #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$"))]
    pub alias: String,
    /// Name of the source.
    #[schemars(length(max = 253), regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"))]
    pub name: String,
    /// Namespace of the source. If not provided, defaults to the same namespace as the ArtifactGenerator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    /// Kind of the source.
    pub kind: ArtifactSourceKind,
}

/// OutputArtifact defines the desired state of an ExternalArtifact generated by the ArtifactGenerator.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OutputArtifact {
    /// Name is the name of the generated artifact. When pathPattern is set, this field may use capture
    /// placeholders such as "{app}".
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Revision is the revision of the generated artifact. If specified, it must point to an existing source
    /// alias in the format "@<alias>". If not specified, the revision is automatically set to the digest of
    /// the artifact content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), regex(pattern = r"^@([a-z0-9]([a-z0-9_-]*[a-z0-9])?)$"))]
    pub revision: Option<String>,
    /// OriginRevision is used to set the 'org.opencontainers.image.revision' annotation on the generated
    /// artifact metadata. If specified, it must point to an existing source alias in the format "@<alias>".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), regex(pattern = r"^@([a-z0-9]([a-z0-9_-]*[a-z0-9])?)$"))]
    pub origin_revision: Option<String>,
    /// Copy defines a list of copy operations to perform from the sources to the generated artifact. The
    /// copy operations are performed in the order they are listed with existing files being overwritten by
    /// later copy operations.
    #[schemars(length(min = 1))]
    pub copy: Vec<CopyOperation>,
}

/// A copy operation from a source to the generated artifact.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct CopyOperation {
    /// From specifies the source (by alias) and the glob pattern to match files. The format is
    /// "@<alias>/<glob-pattern>".
    #[schemars(
        length(min = 1, max = 1024),
        regex(pattern = r"^@([a-z0-9]([a-z0-9_-]*[a-z0-9])?)/(.*)$")
    )]
    pub from: String,
    /// To specifies the destination path within the artifact. The format is "@artifact/path", the alias
    /// "artifact" refers to the root path of the generated artifact.
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^@(artifact)/(.*)$"))]
    pub to: String,
    /// Exclude specifies a list of glob patterns to exclude files and dirs matched by the 'From' field.
    /// Patterns are matched against paths relative to the source alias root or to the non-glob prefix of
    /// 'From'. Patterns without a separator (e.g. "*.md") match the file name at any depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub exclude: Option<Vec<String>>,
    /// Strategy specifies the copy strategy to use. 'Overwrite' will overwrite existing files in the
    /// destination. 'Merge' is for merging YAML files using Helm values merge strategy. 'Extract' is for
    /// extracting the contents of tarball archives (.tar.gz, .tgz). If not specified, defaults to
    /// 'Overwrite'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<CopyStrategy>,
}

/// How a copy operation writes.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[schemars(transform = crate::meta::field_enum)]
pub enum CopyStrategy {
    /// Later files replace earlier ones.
    #[default]
    Overwrite,
    /// YAML files are merged into an existing one.
    Merge,
    /// Tarballs are extracted.
    Extract,
}

/// ArtifactGeneratorStatus defines the observed state of ArtifactGenerator.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactGeneratorStatus {
    /// Conditions holds the conditions for the ArtifactGenerator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Inventory contains the list of generated ExternalArtifact references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inventory: Vec<ExternalArtifactReference>,
    /// ObservedSourcesDigest is a hash representing the current state of all the sources referenced by the
    /// ArtifactGenerator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_sources_digest: Option<String>,
    /// LastHandledReconcileAt holds the value of the most recent reconcile request value.
    #[serde(flatten)]
    pub reconcile_request: ReconcileRequestStatus,
}

/// A generated ExternalArtifact and its digest.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct ExternalArtifactReference {
    /// Name of the referent artifact.
    pub name: String,
    /// Namespace of the referent artifact.
    pub namespace: String,
    /// Digest of the referent artifact.
    pub digest: String,
    /// Filename is the name of the artifact file.
    pub filename: String,
}

impl crate::meta::ObjectStatus for ArtifactGeneratorStatus {
    fn conditions(&self) -> &Vec<crate::Condition> {
        &self.conditions
    }
    fn conditions_mut(&mut self) -> &mut Vec<crate::Condition> {
        &mut self.conditions
    }
    // NB: Flux's ArtifactGenerator has no status.observedGeneration: the Ready condition's stands for it
    fn observed_generation(&self) -> Option<i64> {
        self.conditions
            .iter()
            .find(|c| c.type_ == crate::meta::conditions::READY)
            .and_then(|c| c.observed_generation)
    }
    fn set_observed_generation(&mut self, _generation: Option<i64>) {}
    fn reconcile_request(&self) -> &ReconcileRequestStatus {
        &self.reconcile_request
    }
    fn reconcile_request_mut(&mut self) -> &mut ReconcileRequestStatus {
        &mut self.reconcile_request
    }
}
