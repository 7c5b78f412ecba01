use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = helm_controller::Args::parse();
    driftless_runtime::telemetry::init(&args.log);
    helm_controller::run(args).await
}
