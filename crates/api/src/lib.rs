//! Flux-compatible Kubernetes API types of driftless: the 14 kinds of `../shared/DESIGN.md` §2 with Flux's
//! groups, versions, field names, defaults, enums, validation, printer columns and short names, and the
//! CustomResourceDefinitions generated from them ([`crds`]), and the registry of their names ([`kinds`]).
//! Types only: no I/O.
#![warn(missing_docs)]

pub mod extensions;
pub mod helm;
pub mod image;
pub mod kinds;
pub mod kustomize;
pub mod meta;
pub mod notification;
pub mod source;

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
pub mod crds;
