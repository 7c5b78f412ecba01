//! `helm.toolkit.fluxcd.io/v2`: HelmRelease.

mod helmrelease;

pub use self::helmrelease::*;

/// The API group of HelmRelease.
pub const GROUP: &str = "helm.toolkit.fluxcd.io";
/// The served and stored version.
pub const VERSION: &str = "v2";
