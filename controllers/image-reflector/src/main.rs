use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = image_reflector_controller::Args::parse();
    driftless_runtime::telemetry::init(&args.log);
    image_reflector_controller::run(args).await
}
