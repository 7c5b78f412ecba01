use clap::Parser;

fn main() -> anyhow::Result<()> {
    // helm runs this binary as its post-renderer: `helm-controller post-render <spec file>`
    let mut argv = std::env::args_os().skip(1);
    if argv
        .next()
        .is_some_and(|a| a == helm_controller::postrender::SUBCOMMAND)
    {
        std::process::exit(helm_controller::postrender::main(argv.next()));
    }
    let args = helm_controller::Args::parse();
    driftless_runtime::telemetry::init(&args.log);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(helm_controller::run(args))
}
