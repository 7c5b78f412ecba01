use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = kustomize_controller::Args::parse();
    driftless_runtime::telemetry::init(&args.log);
    kustomize_controller::run(args).await
}
