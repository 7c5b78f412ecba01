//! helm-controller's post-renderer for the in-process helm-controllers of the tests and benchmarks:
//! their process is a test binary, which cannot answer `post-render` as the controller's own binary does.

fn main() {
    let mut argv = std::env::args_os().skip(1);
    if argv
        .next()
        .is_none_or(|a| a != helm_controller::postrender::SUBCOMMAND)
    {
        eprintln!("usage: helm-post-renderer post-render <spec file>");
        std::process::exit(2);
    }
    std::process::exit(helm_controller::postrender::main(argv.next()));
}
