//! The shared lifecycle (`reconcile`) against the real API server.

use std::{sync::Arc, time::Duration};

use driftless_api::{
    meta::conditions::READY,
    source::{GitRepository, GitRepositoryStatus},
};
use driftless_runtime::{
    conditions,
    error::{ErrorClass, ReconcileError, RetryPolicy},
    events::Recorder,
    metrics::Metrics,
    reconcile::{Reconciler, Runtime, StatusWriter, reconcile},
};
use driftless_testkit::cluster::cluster;
use kube::{Client, runtime::finalizer};

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[from] Box<finalizer::Error<Error>>),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        "Failed"
    }
    fn class(&self) -> ErrorClass {
        ErrorClass::Transient
    }
}

/// Counts its runs in Ready's message, from the status each run starts with.
struct Counter {
    client: Client,
    recorder: Recorder,
    metrics: Metrics,
    retry: RetryPolicy,
}

impl Reconciler for Counter {
    type Object = GitRepository;
    type Status = GitRepositoryStatus;
    type Outcome = ();
    type Error = Error;
    const FIELD_MANAGER: &'static str = "counter";

    fn runtime(&self) -> Runtime<'_> {
        Runtime {
            client: &self.client,
            recorder: &self.recorder,
            metrics: &self.metrics,
            retry: &self.retry,
        }
    }
    fn status(obj: &GitRepository) -> Option<&GitRepositoryStatus> {
        obj.status.as_ref()
    }
    fn suspended(_: &GitRepository) -> bool {
        false
    }
    fn interval(_: &GitRepository) -> Result<Duration, Error> {
        Ok(Duration::from_secs(300))
    }
    fn timeout(_: &GitRepository) -> Duration {
        Duration::from_secs(60)
    }
    async fn run(
        &self,
        _: &GitRepository,
        _: &mut GitRepositoryStatus,
        _: &mut StatusWriter<GitRepository, GitRepositoryStatus>,
    ) -> Result<(), Error> {
        Ok(())
    }
    fn summarize(obj: &GitRepository, status: &mut GitRepositoryStatus, _: &Result<(), Error>) {
        let runs: u32 = conditions::get(&status.conditions, READY)
            .and_then(|c| c.message.strip_prefix("run ")?.parse().ok())
            .unwrap_or(0);
        let message = format!("run {}", runs + 1);
        conditions::mark_true(
            &mut status.conditions,
            READY,
            "Succeeded",
            &message,
            obj.metadata.generation,
        );
    }
    async fn cleanup(&self, _: &GitRepository) -> Result<(), Error> {
        Ok(())
    }
}

#[tokio::test]
async fn each_run_starts_from_the_status_the_last_one_wrote_not_from_a_stale_copy() {
    let ns = cluster().namespace("lifecycle").await;
    let (api, _) = super::git_repository(ns.name(), "repo").await;
    let client = cluster().client().await;
    let counter = Arc::new(Counter {
        recorder: Recorder::new(None, "counter", "test", None),
        client,
        metrics: Metrics::default(),
        retry: RetryPolicy::new(Duration::from_secs(1), Duration::from_secs(10)),
    });
    // the finalizer's first run adds it; the watch would then hand the next run the new object
    reconcile(Arc::new(api.get("repo").await.unwrap()), counter.clone())
        .await
        .unwrap();
    // what a watch cache that has not yet seen the runs' status writes hands over: the same copy
    let stale = Arc::new(api.get("repo").await.unwrap());
    for _ in 0..2 {
        reconcile(stale.clone(), counter.clone()).await.unwrap();
    }
    let status = api.get("repo").await.unwrap().status.unwrap();
    let ready = conditions::get(&status.conditions, READY).unwrap();
    assert_eq!(
        ready.message, "run 2",
        "the second run counted on from the first's status"
    );
}
