//! `notification.toolkit.fluxcd.io`: Receiver (v1), Alert and Provider (v1beta3).

mod alert;
mod provider;
mod receiver;

pub use self::{alert::*, provider::*, receiver::*};

/// The API group of the notification kinds.
pub const GROUP: &str = "notification.toolkit.fluxcd.io";

/// The kinds that emit events or receive webhooks, as Flux's enums list them.
pub(crate) const EVENT_SOURCE_KINDS: &[&str] = &[
    "Bucket",
    "GitRepository",
    "Kustomization",
    "HelmRelease",
    "HelmChart",
    "HelmRepository",
    "ImageRepository",
    "ImagePolicy",
    "ImageUpdateAutomation",
    "OCIRepository",
    "ArtifactGenerator",
    "ExternalArtifact",
];

/// Schema of a kind field restricted to [`EVENT_SOURCE_KINDS`].
pub(crate) fn event_source_kind(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "description": "Kind of the referent.",
        "enum": EVENT_SOURCE_KINDS,
    })
}
