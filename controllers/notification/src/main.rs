use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = notification_controller::Args::parse();
    driftless_runtime::telemetry::init(&args.log);
    notification_controller::run(args).await
}
