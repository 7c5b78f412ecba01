//! The process around the reconcilers, the same in every controller binary: the metrics and health
//! servers, leader election, the watch scope (`--watch-all-namespaces`, `--watch-label-selector`) and
//! shutdown on SIGTERM. `main.rs` parses flags, calls [`Manager::start`], waits for [`Manager::leading`],
//! runs its controllers until [`Manager::stopped`].

use std::{net::SocketAddr, sync::Arc};

use kube::{Api, Client, Resource, runtime::watcher};
use tokio::sync::watch;
use tracing::info;

use crate::{
    flags::{ControllerArgs, LeaderElectionArgs},
    leader::{LeaderElector, LeaseConfig},
    metrics::Metrics,
    server::{self, Readiness},
    shutdown,
};

/// A server of the manager could not start.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// `--metrics-addr` or `--health-addr` could not be bound.
    #[error("cannot listen on {addr} ({flag}): {source}")]
    Listen {
        /// The flag naming the address.
        flag: &'static str,
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A running controller process.
pub struct Manager {
    /// The client of the controller's own identity.
    pub client: Client,
    /// The process's metrics.
    pub metrics: Arc<Metrics>,
    /// What `/readyz` reports.
    pub readiness: Readiness,
    /// Turns true on SIGTERM/SIGINT.
    pub shutdown: watch::Receiver<bool>,
    /// Where `/metrics` is served.
    pub metrics_addr: SocketAddr,
    /// Where `/healthz` and `/readyz` are served.
    pub health_addr: SocketAddr,
    leading: watch::Receiver<bool>,
    // NB: without an election, keeps the always-true channel open
    _always_leading: Option<watch::Sender<bool>>,
    election: Election,
}

/// The election task, aborted when the manager is dropped without [`Manager::finish`]: a controller
/// whose run was cut off stops renewing its Lease, as a killed process does, and a standby takes over
/// when the Lease expires.
struct Election(Option<tokio::task::JoinHandle<()>>);

impl Drop for Election {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// This process's identity: `$POD_NAME` (or the host name) and a random suffix, so two processes on one
/// host are distinct candidates.
pub fn identity() -> String {
    use rand::Rng;
    let base = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "driftless".into());
    format!("{base}_{:08x}", rand::rng().random::<u32>())
}

impl Manager {
    /// Starts the servers and, when enabled, the election for the Lease `<controller>-leader-election` in
    /// the runtime namespace.
    pub async fn start(
        controller: &str,
        client: Client,
        args: &ControllerArgs,
        election: &LeaderElectionArgs,
    ) -> Result<Self, ManagerError> {
        let metrics = Arc::new(Metrics::default());
        let readiness = Readiness::default();
        let (metrics_addr, _) = server::serve(&args.metrics_addr, server::metrics_router(metrics.clone()))
            .await
            .map_err(|source| ManagerError::Listen {
                flag: "--metrics-addr",
                addr: args.metrics_addr.clone(),
                source,
            })?;
        let (health_addr, _) = server::serve(
            &args.health_addr,
            server::health_router(readiness.clone(), metrics.progress.clone()),
        )
        .await
        .map_err(|source| ManagerError::Listen {
            flag: "--health-addr",
            addr: args.health_addr.clone(),
            source,
        })?;
        info!(%metrics_addr, %health_addr, "serving metrics and health");
        let shutdown = shutdown::on_signal();
        let (leading, always, election) = if election.enable_leader_election {
            let elector = LeaderElector::new(
                client.clone(),
                LeaseConfig {
                    name: format!("{controller}-leader-election"),
                    namespace: args.runtime_namespace.clone(),
                    identity: identity(),
                    lease_duration: election.leader_election_lease_duration,
                    renew_deadline: election.leader_election_renew_deadline,
                    retry_period: election.leader_election_retry_period,
                },
            );
            let (rx, task) = elector.spawn(shutdown.clone(), election.leader_election_release_on_cancel);
            (rx, None, Some(task))
        } else {
            let (tx, rx) = watch::channel(true);
            (rx, Some(tx), None)
        };
        // a standby is healthy and ready; it just does not reconcile
        readiness.set(true);
        Ok(Self {
            client,
            metrics,
            readiness,
            shutdown,
            metrics_addr,
            health_addr,
            leading,
            _always_leading: always,
            election: Election(election),
        })
    }

    /// Waits until this process may reconcile (at once without leader election). False when shutdown came
    /// first.
    pub async fn leading(&mut self) -> bool {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            led = self.leading.wait_for(|l| *l) => led.is_ok(),
            _ = shutdown.wait_for(|s| *s) => false,
        }
    }

    /// Resolves when the controllers must stop: on SIGTERM/SIGINT, or when leadership is lost.
    pub async fn stopped(&self) {
        let mut shutdown = self.shutdown.clone();
        let mut leading = self.leading.clone();
        let lost = async {
            if leading.wait_for(|l| !*l).await.is_err() {
                // the election ended without a verdict: only shutdown stops us
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => {}
            _ = lost => {}
        }
    }

    /// After the controllers stopped: lets the election release the Lease.
    pub async fn finish(mut self) {
        if let Some(task) = self.election.0.take() {
            let _ = task.await;
        }
    }
}

/// The API of `K` the controller watches: all namespaces, or only the runtime namespace with
/// `--watch-all-namespaces=false`.
pub fn watched_api<K>(client: Client, args: &ControllerArgs) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    if args.watch_all_namespaces {
        Api::all(client)
    } else {
        Api::namespaced(client, &args.runtime_namespace)
    }
}

/// The dynamic API of `ar` the controller watches: all namespaces, or only the runtime namespace with
/// `--watch-all-namespaces=false`.
pub fn watched_dynamic(
    client: Client,
    args: &ControllerArgs,
    ar: &kube::core::ApiResource,
) -> Api<kube::api::DynamicObject> {
    if args.watch_all_namespaces {
        Api::all_with(client, ar)
    } else {
        Api::namespaced_with(client, &args.runtime_namespace, ar)
    }
}

/// The watcher configuration: `--watch-label-selector` when set.
pub fn watcher_config(args: &ControllerArgs) -> watcher::Config {
    let config = watcher::Config::default();
    if args.watch_label_selector.is_empty() {
        config
    } else {
        config.labels(&args.watch_label_selector)
    }
}
