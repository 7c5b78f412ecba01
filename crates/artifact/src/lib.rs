//! Artifacts, the only thing source-controller hands to other controllers: reproducible `.tar.gz` files
//! with a `sha256:` digest, stored atomically under `<kind>/<namespace>/<name>/<file>` ([`storage`]),
//! chosen with gitignore-style exclusions ([`ignore`]), served over HTTP ([`server`]), and downloaded by
//! consumers with digest verification and a safe untar ([`fetch`]).
#![warn(missing_docs)]

pub mod archive;
pub mod cache;
pub mod fetch;
pub mod ignore;
pub mod server;
pub mod storage;

pub use self::storage::Storage;
