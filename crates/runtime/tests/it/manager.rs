use clap::Parser;
use driftless_runtime::{
    flags::{ControllerArgs, LeaderElectionArgs},
    manager::Manager,
};
use driftless_testkit::cluster::cluster;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    controller: ControllerArgs,
    #[command(flatten)]
    leader: LeaderElectionArgs,
}

#[tokio::test]
async fn a_manager_serves_on_explicit_ports_and_leads_through_a_lease() {
    let ns = cluster().namespace("manager").await;
    let cli = Cli::parse_from([
        "test-controller",
        "--metrics-addr=127.0.0.1:0",
        "--health-addr=127.0.0.1:0",
        "--enable-leader-election",
        "--leader-election-retry-period=200ms",
        &format!("--runtime-namespace={}", ns.name()),
    ]);
    let mut manager = Manager::start(
        "test-controller",
        cluster().client().await,
        &cli.controller,
        &cli.leader,
    )
    .await
    .unwrap();
    assert_ne!(manager.metrics_addr.port(), 0);
    assert!(manager.leading().await, "the only candidate leads");
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), manager.stopped())
            .await
            .is_err(),
        "a leading manager keeps running"
    );
    let lease = Api::<Lease>::namespaced(cluster().client().await, ns.name())
        .get("test-controller-leader-election")
        .await
        .unwrap();
    assert!(lease.spec.unwrap().holder_identity.is_some());
    // NB: tokio's Command: a blocking call would starve the test runtime that serves /readyz
    let resp = tokio::process::Command::new("curl")
        .args([
            "-sf",
            "-m",
            "10",
            &format!("http://{}/readyz", manager.health_addr),
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&resp.stdout), "ok");
}
