//! Two real processes compete for one Lease: this test binary re-runs itself as a candidate
//! (`lease_candidate`, a no-op unless `DRIFTLESS_LEASE_CANDIDATE` is set).

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use driftless_runtime::{
    leader::{LeaderElector, LeaseConfig},
    shutdown,
};
use driftless_testkit::cluster::cluster;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

const LEASE: &str = "driftless-test-leader";

#[tokio::test]
async fn lease_candidate() {
    let Ok(identity) = std::env::var("DRIFTLESS_LEASE_CANDIDATE") else {
        return;
    };
    let namespace = std::env::var("DRIFTLESS_LEASE_NAMESPACE").unwrap();
    let elector = LeaderElector::new(
        cluster().client().await,
        LeaseConfig {
            name: LEASE.into(),
            namespace,
            identity,
            // NB: a long lease, so a quick handover can only come from the release on SIGTERM
            lease_duration: Duration::from_secs(60),
            renew_deadline: Duration::from_secs(50),
            retry_period: Duration::from_millis(200),
        },
    );
    let (_leading, task) = elector.spawn(shutdown::on_signal(), true);
    task.await.unwrap();
}

fn candidate(identity: &str, namespace: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "leader::lease_candidate", "--nocapture"])
        .env("DRIFTLESS_LEASE_CANDIDATE", identity)
        .env("DRIFTLESS_LEASE_NAMESPACE", namespace)
        .env("DRIFTLESS_KUBECONFIG", cluster().kubeconfig())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn holder(api: &Api<Lease>) -> Option<String> {
    api.get_opt(LEASE)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

async fn wait_for_holder(api: &Api<Lease>, want: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if holder(api).await.as_deref() == Some(want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_clean_handover_on_sigterm() {
    if std::env::var_os("DRIFTLESS_LEASE_CANDIDATE").is_some() {
        return;
    }
    let ns = cluster().namespace("lease").await;
    let api: Api<Lease> = Api::namespaced(cluster().client().await, ns.name());

    let mut a = Kill(candidate("candidate-a", ns.name()));
    assert!(
        wait_for_holder(&api, "candidate-a", Duration::from_secs(30)).await,
        "the first candidate leads"
    );
    let _b = Kill(candidate("candidate-b", ns.name()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        holder(&api).await.as_deref(),
        Some("candidate-a"),
        "the standby does not take a held lease"
    );

    let term = Command::new("kill")
        .args(["-TERM", &a.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exited = a.0.wait().unwrap();
    assert!(exited.success(), "the leader exits cleanly on SIGTERM: {exited}");
    assert!(
        wait_for_holder(&api, "candidate-b", Duration::from_secs(20)).await,
        "the standby takes over long before the 60s lease would expire"
    );
    let lease = api.get(LEASE).await.unwrap().spec.unwrap();
    assert_eq!(lease.lease_transitions, Some(1));
}
