//! `driftless-simulator [--namespace NS] [--delay 500ms]`: the test cluster's workload simulator
//! (`driftless_testkit::simulator`) against the cluster of `KUBECONFIG`, until killed.
//! `hack/testcluster.sh start NAME --simulate` runs it beside the instance.

use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Only this namespace (default: all).
    #[arg(long)]
    namespace: Option<String>,
    /// How long after a change its status is written, in milliseconds.
    #[arg(long, default_value_t = 500)]
    delay_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = kube::Client::try_default().await?;
    driftless_testkit::simulator::run(client, args.namespace, Duration::from_millis(args.delay_ms)).await;
    Ok(())
}
