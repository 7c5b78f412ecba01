use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = image_automation_controller::Args::parse();
    driftless_runtime::telemetry::init(&args.log);
    image_automation_controller::run(args).await
}
