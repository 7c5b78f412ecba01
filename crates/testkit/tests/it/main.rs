//! The real parts the tests stand on actually work: the test cluster (built-in kinds with kube-apiserver's
//! server-side apply semantics, RBAC with impersonation, a second instance), Git over HTTP, SSH and
//! git daemon, and the OCI registry.

mod cluster;
mod servers;
