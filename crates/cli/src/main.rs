//! `driftless`: the command line. `driftless build kustomization <dir>` prints what `kubectl kustomize
//! <dir>` would, with driftless's own engine.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "driftless",
    version,
    about = "driftless: GitOps for Kubernetes, Flux-compatible"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build things locally, as the controllers would.
    Build {
        #[command(subcommand)]
        what: Build,
    },
}

#[derive(Subcommand)]
enum Build {
    /// Build a kustomization directory and print the YAML stream (like `kubectl kustomize <dir>`).
    Kustomization {
        /// The directory; nothing outside it is read.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Build {
            what: Build::Kustomization { dir },
        } => match driftless_kustomize::build(&dir, std::path::Path::new(".")) {
            Ok(objects) => {
                print!("{}", driftless_kustomize::yaml::write_stream(&objects));
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        },
    }
}
