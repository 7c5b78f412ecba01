//! Integration tests of `driftless-api`, in one binary: the generated CRDs in `crds/` are current, and the
//! compatibility corpus of Flux manifests round-trips through our types, validates against our schemas and is
//! accepted by a real API server.

mod cluster;
mod corpus;
mod crds;
