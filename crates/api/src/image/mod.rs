//! `image.toolkit.fluxcd.io/v1`: ImageRepository, ImagePolicy and ImageUpdateAutomation.

mod imagepolicy;
mod imagerepository;
mod imageupdateautomation;

pub use self::{imagepolicy::*, imagerepository::*, imageupdateautomation::*};

/// The API group of the image kinds.
pub const GROUP: &str = "image.toolkit.fluxcd.io";
/// The served and stored version.
pub const VERSION: &str = "v1";
