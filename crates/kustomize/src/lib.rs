//! driftless's kustomize: `build(root, path)` turns a kustomization directory into the objects
//! `kubectl kustomize` would print, in the same order. Part 1 (this crate so far): `resources` (files,
//! directories, nested kustomizations), `namespace`, `namePrefix`/`nameSuffix`, `commonLabels`, `labels`,
//! `commonAnnotations`, `images`, `replicas`, `patches`, `patchesStrategicMerge`, `patchesJson6902`,
//! `components`, `sortOptions` (legacy, custom legacy, fifo), and
//! kustomize's default (legacy) output order. Part 2 so far: `configMapGenerator`/`secretGenerator`
//! (literals, files, env files, behaviours, options, `generatorOptions`, kustomize's content hash) and name
//! references to renamed ConfigMaps, Secrets, ServiceAccounts, PVCs, Services, Roles and ClusterRoles
//! ([`generate`]), `replacements` ([`replace`]), `vars` ([`vars`]). Any other
//! kustomization field is an error naming it — never silently ignored. Paths may not leave `root`; remote
//! resources are refused (`--no-remote-bases`).
#![warn(missing_docs)]

mod build;
pub mod generate;
mod kustomization;
mod order;
pub mod origin;
pub mod patch;
mod plugins;
mod refs;
pub mod replace;
pub mod substitute;
mod transform;
pub mod vars;
pub mod yaml;

pub use self::{
    build::{
        LoadRestrictor, build, build_marked, build_marked_with, build_standalone, build_with,
        generated_kustomization,
    },
    kustomization::{FILE_NAMES, Kustomization},
};

/// A build failure, naming the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A YAML document could not be parsed.
    #[error("{path}: malformed YAML: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// The kustomization is invalid or uses something not implemented.
    #[error("{path}: {message}")]
    Invalid {
        /// The kustomization file or directory.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Kubernetes object as kustomize handles it: free-form JSON.
pub type Object = serde_json::Value;
