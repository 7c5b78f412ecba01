//! Helm, for source-controller (HelmRepository indexes, HelmChart) and helm-controller: repository
//! indexes streamed ([`index`]), never loaded whole.
#![warn(missing_docs)]

pub mod index;
