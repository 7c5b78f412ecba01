//! `kustomize.toolkit.fluxcd.io/v1`: Kustomization, and the kustomize patch, selector and image types
//! HelmRelease post-renderers share (fluxcd/pkg `apis/kustomize`).

mod kustomization;

pub use self::kustomization::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of Kustomization.
pub const GROUP: &str = "kustomize.toolkit.fluxcd.io";
/// The served and stored version.
pub const VERSION: &str = "v1";

/// Patch contains an inline StrategicMerge or JSON6902 patch, and the target the patch should be applied
/// to.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct Patch {
    /// Patch contains an inline StrategicMerge patch or an inline JSON6902 patch with an array of operation
    /// objects.
    pub patch: String,
    /// Target points to the resources that the patch document should be applied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Selector>,
}

/// Selector specifies a set of resources. Any resource that matches intersection of all conditions is
/// included in this set.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// Group is the API group to select resources from. Together with Version and Kind it is capable of
    /// unambiguously identifying and/or selecting resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Version of the API Group to select resources from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kind of the API Group to select resources from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Namespace to select resources from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name to match resources with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// AnnotationSelector is a string that follows the label selection expression syntax; it matches with
    /// the resource annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_selector: Option<String>,
    /// LabelSelector is a string that follows the label selection expression syntax; it matches with the
    /// resource labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
}

/// Image contains an image name, a new name, a new tag or digest, which will replace the original name and
/// tag.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// Name is a tag-less image name.
    pub name: String,
    /// NewName is the value used to replace the original name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// NewTag is the value used to replace the original tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_tag: Option<String>,
    /// Digest is the value used to replace the original image tag. If digest is present NewTag value is
    /// ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}
