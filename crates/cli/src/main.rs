//! `driftless`: the command line. `driftless build kustomization <dir>` prints what `kubectl kustomize
//! <dir>` would, with driftless's own engine; `driftless why <kind>/<name>` explains why an object is not Ready.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

mod why;

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
    /// Explain why an object is not Ready: the chain of sources and dependencies it waits on, down to the
    /// causes. Exits 0 when it is Ready, 1 when not, 2 on errors. Uses the current kubeconfig context.
    Why {
        /// `<kind>/<name>`: a Flux kind, its plural or short name (ks, gitrepo, hr…).
        object: String,
        /// The namespace (default: the context's, else flux-system).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
}

#[derive(Subcommand)]
enum Build {
    /// Build a kustomization directory and print the YAML stream (like `kubectl kustomize <dir>`).
    Kustomization {
        /// The directory. Its bases and components may be anywhere (`../base`), as kubectl's.
        dir: PathBuf,
        /// `LoadRestrictionsRootOnly` (the default): the files a kustomization names must be in or below
        /// its directory; `LoadRestrictionsNone`: anywhere.
        #[arg(long, default_value = "LoadRestrictionsRootOnly", value_parser = ["LoadRestrictionsRootOnly", "LoadRestrictionsNone"])]
        load_restrictor: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Why { object, namespace } => why(&object, namespace),
        Command::Build {
            what: Build::Kustomization { dir, load_restrictor },
        } => match driftless_kustomize::build_standalone(
            &dir,
            if load_restrictor == "LoadRestrictionsNone" {
                driftless_kustomize::LoadRestrictor::None
            } else {
                driftless_kustomize::LoadRestrictor::RootOnly
            },
        ) {
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

fn why(object: &str, namespace: Option<String>) -> ExitCode {
    let Some((kind, name)) = object.split_once('/').and_then(|(k, n)| Some((why::kind(k)?, n))) else {
        eprintln!(
            "error: expected <kind>/<name> with a Flux kind (kustomization/apps, gitrepo/fleet…), got '{object}'"
        );
        return ExitCode::from(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let explained = runtime.block_on(async {
        let config = kube::Config::infer().await?;
        let namespace = namespace.unwrap_or_else(|| match config.default_namespace.as_str() {
            "" | "default" => "flux-system".to_string(),
            ns => ns.to_string(),
        });
        let client = kube::Client::try_from(config)?;
        let root = why::Ref {
            kind: kind.to_string(),
            namespace,
            name: name.to_string(),
        };
        let mut out = String::new();
        let ready = why::explain(&client, &root, &mut out).await?;
        anyhow::Ok((ready, out))
    });
    match explained {
        Ok((ready, out)) => {
            print!("{out}");
            if ready {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
