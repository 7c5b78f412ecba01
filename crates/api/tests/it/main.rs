//! Integration tests of `driftless-api`, in one binary: the generated CRDs in `crds/` are current, and the
//! compatibility corpus of Flux manifests round-trips through our types and validates against our schemas.

mod corpus;
mod crds;
