use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = source_controller::Args::parse();
    driftless_runtime::telemetry::init(&args.log);
    source_controller::run(args).await
}
