//! What every driftless controller shares, so each controller is only its reconcile steps: the
//! [`reconcile`] lifecycle,
//! kstatus [`conditions`], [`status`] writes by server-side apply, the [`error`] model and requeue policy,
//! watch [`backoff`], reconcile [`request`]s (`requestedAt`, suspend, jitter, the watch trigger), [`events`] (Kubernetes
//! Events and Flux's event JSON), Prometheus [`metrics`] and the health endpoints ([`server`], fed by [`progress`]),
//! [`leader`] election on a Lease, the [`tenant`] clients (impersonation, remote clusters), the common [`flags`] and [`telemetry`].
#![warn(missing_docs)]

pub mod backoff;
pub mod cel;
pub mod client;
pub mod conditions;
pub mod controller;
pub mod dependencies;
pub mod error;
pub mod events;
pub mod flags;
pub mod history;
pub mod leader;
pub mod manager;
pub mod metrics;
pub mod progress;
pub mod reconcile;
pub mod refs;
pub mod request;
pub mod server;
pub mod shutdown;
pub mod sources;
pub mod status;
pub mod telemetry;
pub mod tenant;
