//! `source.extensions.fluxcd.io/v1beta1`: ArtifactGenerator (Flux's source-watcher), which composes and
//! decomposes source artifacts into ExternalArtifacts.

mod artifactgenerator;

pub use self::artifactgenerator::*;

/// The API group of the source extensions.
pub const GROUP: &str = "source.extensions.fluxcd.io";
/// The served and stored version.
pub const VERSION: &str = "v1beta1";
