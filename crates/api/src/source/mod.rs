//! `source.toolkit.fluxcd.io/v1`: GitRepository, OCIRepository, HelmRepository, HelmChart, Bucket and
//! ExternalArtifact.

mod bucket;
mod externalartifact;
mod gitrepository;
mod helmchart;
mod helmrepository;
mod ocirepository;

pub use self::{
    bucket::*, externalartifact::*, gitrepository::*, helmchart::*, helmrepository::*, ocirepository::*,
};

/// The API group of the source kinds.
pub const GROUP: &str = "source.toolkit.fluxcd.io";
/// The served and stored version.
pub const VERSION: &str = "v1";
