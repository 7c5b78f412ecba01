//! Helm, for source-controller (HelmRepository indexes, HelmChart) and helm-controller: repository
//! indexes streamed ([`index`]), never loaded whole, and the chart version a range picks; charts read,
//! checked and packaged ([`chart`]).
#![warn(missing_docs)]

pub mod chart;
pub mod index;
