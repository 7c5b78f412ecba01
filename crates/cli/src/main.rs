//! `driftless`: the command line. `get`, `reconcile`, `suspend` and `resume` work as `flux`'s do on every
//! kind of the shared registry; `driftless build kustomization <dir>` prints what `kubectl kustomize <dir>`
//! would, with driftless's own engine; `driftless why <kind>/<name>` explains why an object is not Ready.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

mod artifact;
mod bootstrap;
mod cluster;
mod create;
mod dashboard;
mod diff;
mod events;
mod export;
mod get;
mod install;
mod kind;
mod log;
mod objects;
mod reconcile;
mod table;
mod trace;
mod tree;
mod why;

#[derive(Parser)]
#[command(
    name = "driftless",
    version,
    about = "driftless: GitOps for Kubernetes, Flux-compatible"
)]
struct Cli {
    #[command(flatten)]
    cluster: cluster::Flags,
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
    /// Print the status of Flux objects as `flux get` does: `get kustomizations`, `get source git`,
    /// `get images policy`, `get sources all`, `get all`, optionally with an object's name.
    Get {
        /// The kind (`source git|oci|helm|chart|bucket`, `kustomizations`, `helmreleases`, `receivers`,
        /// `alerts`, `alert-providers`, `image repository|policy|update`, `all`) and an optional name.
        #[arg(required = true, num_args = 1..)]
        what: Vec<String>,
        /// List across all namespaces.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Skip the header row.
        #[arg(long)]
        no_header: bool,
        /// Only objects whose condition has this status: `ready=false`, `ready!=true`.
        #[arg(long)]
        status_selector: Option<String>,
        /// A label selector (`app=x,tier!=db`).
        #[arg(short = 'l', long)]
        label_selector: Option<String>,
        /// After listing, print each change until the timeout.
        #[arg(short = 'w', long)]
        watch: bool,
        /// The output format.
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: get::Output,
    },
    /// Request a reconcile now (`reconcile.fluxcd.io/requestedAt`) and wait until the controller has
    /// handled it: prints the revision it reached; exits 1 when it failed or did not finish in time.
    Reconcile {
        /// The kind (as for `get`) and the object's name.
        #[arg(required = true, num_args = 1..)]
        what: Vec<String>,
        /// Reconcile the object's source first (Kustomization, HelmRelease).
        #[arg(long)]
        with_source: bool,
        /// HelmRelease: run an upgrade even without a change.
        #[arg(long)]
        force: bool,
        /// HelmRelease: reset the remediation retry counts.
        #[arg(long)]
        reset: bool,
    },
    /// Suspend reconciling objects (`spec.suspend: true`).
    Suspend {
        /// The kind (as for `get`) and the objects' names.
        #[arg(required = true, num_args = 1..)]
        what: Vec<String>,
        /// Every object of the kind in the namespace.
        #[arg(long)]
        all: bool,
    },
    /// Resume suspended objects; with one name (or --wait), wait for their reconcile.
    Resume {
        /// The kind (as for `get`) and the objects' names.
        #[arg(required = true, num_args = 1..)]
        what: Vec<String>,
        /// Every object of the kind in the namespace.
        #[arg(long)]
        all: bool,
        /// Wait for the resumed objects to reconcile (default: when one name is given).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        wait: Option<bool>,
    },
    /// Create or update an object (or print it with --export): `create source git`, `create ks`,
    /// `create hr`, `create receiver`, `create alert`, `create alert-provider`, `create secret git|helm|oci|tls`.
    Create {
        #[command(subcommand)]
        what: Box<create::What>,
    },
    /// Delete an object (asks first unless --silent).
    Delete {
        /// The kind (as for `get`) and the name.
        #[arg(required = true, num_args = 1..)]
        what: Vec<String>,
        /// Do not ask.
        #[arg(short = 's', long)]
        silent: bool,
    },
    /// Install the controllers and their CRDs into the namespace (default flux-system) with server-side
    /// apply and wait until they run; `--export` prints the manifests instead.
    Install {
        /// The controllers.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "source-controller,kustomize-controller,helm-controller,notification-controller"
        )]
        components: Vec<String>,
        /// More controllers: image-reflector-controller, image-automation-controller.
        #[arg(long, value_delimiter = ',')]
        components_extra: Vec<String>,
        /// Print the manifests.
        #[arg(long)]
        export: bool,
        /// Install Flux's NetworkPolicies in the namespace (allow-egress, allow-scraping, allow-webhooks).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        network_policy: bool,
        /// Wait for the Deployments to roll out.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        wait: bool,
    },
    /// Remove the controllers, and (unless kept) every Flux object, the CRDs and the namespace. Asks first
    /// unless --silent.
    Uninstall {
        /// Keep the CRDs and so every Flux object.
        #[arg(long)]
        keep_crds: bool,
        /// Keep the namespace.
        #[arg(long)]
        keep_namespace: bool,
        /// Do not ask.
        #[arg(short = 's', long)]
        silent: bool,
    },
    /// Check the cluster: the Kubernetes version, the controllers running, the CRDs installed and current.
    Check {
        /// Only the prerequisites (before an install).
        #[arg(long)]
        pre: bool,
    },
    /// Make the cluster sync itself from a Git repository: commit the install and sync manifests to
    /// `--path`, push, install, apply the sync objects and wait until the cluster has reconciled itself.
    Bootstrap {
        #[command(subcommand)]
        what: BootstrapWhat,
    },
    /// What applying a local directory through a Kustomization would change: `diff kustomization apps
    /// --path ./apps`. Prints each change as a unified diff (Secret values masked), what would be created
    /// and what pruned; exits 0 without changes, 1 with changes, 2 on errors.
    Diff {
        /// `kustomization` and its name.
        #[arg(required = true, num_args = 1..)]
        what: Vec<String>,
        /// The local directory to build in place of the Kustomization's `spec.path`.
        #[arg(long)]
        path: PathBuf,
    },
    /// Show what a Kustomization or HelmRelease applied as a tree, nested ones expanded, with each
    /// object's health: `tree ks apps`, `tree hr podinfo`.
    Tree {
        /// The kind (kustomization or helmrelease) and the name.
        #[arg(required = true, num_args = 1..)]
        what: Vec<String>,
    },
    /// Which Kustomization or HelmRelease applied an object, from which source and revision, up to the
    /// root: `trace deployment/podinfo -n apps`.
    Trace {
        /// `<kind>/<name>` of any kind the cluster serves (kind, plural or singular).
        object: String,
        /// The apiVersion, when two groups serve the same kind.
        #[arg(long)]
        api_version: Option<String>,
    },
    /// The Kubernetes Events of Flux objects, oldest first.
    Events {
        /// `<kind>[/<name>]`: only this object's events (and its source's).
        #[arg(long = "for")]
        for_: Option<String>,
        /// Every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Only events of these types (Normal, Warning).
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// After listing, print new events until the timeout.
        #[arg(short = 'w', long)]
        watch: bool,
    },
    /// Print objects as clean YAML (no status, no server fields) to apply elsewhere.
    Export {
        /// The kind (as for `get`) and the names.
        #[arg(required = true, num_args = 1..)]
        what: Vec<String>,
        /// Every object of the kind.
        #[arg(long)]
        all: bool,
        /// With --all: in every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
    /// Push a directory (or a .tar.gz) to an OCI registry as a Flux artifact an OCIRepository consumes:
    /// `push artifact oci://ghcr.io/org/app:v1 --path ./deploy --source URL --revision REV`.
    Push {
        #[command(subcommand)]
        what: PushWhat,
    },
    /// Pull a Flux artifact and unpack it: `pull artifact oci://…:tag --output DIR`.
    Pull {
        #[command(subcommand)]
        what: PullWhat,
    },
    /// Tag a Flux artifact: `tag artifact oci://…:tag --tag latest`.
    Tag {
        #[command(subcommand)]
        what: TagWhat,
    },
    /// List the artifacts of a repository with their digests and origins: `list artifacts oci://…`.
    List {
        #[command(subcommand)]
        what: ListWhat,
    },
    /// Print a shell completion script: `driftless completion bash > /etc/bash_completion.d/driftless`.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Serve the web dashboard: every Flux object, its conditions, why chain, history, events, tree and
    /// drift, live, with reconcile, suspend and resume (as your kubeconfig's identity).
    Dashboard(dashboard::Options),
    /// Explain why an object is not Ready: the chain of sources and dependencies it waits on, down to the
    /// causes. Exits 0 when it is Ready, 1 when not, 2 on errors.
    Why {
        /// `<kind>/<name>`: a Flux kind, its plural or short name (ks, gitrepo, hr…).
        object: String,
    },
}

#[derive(Subcommand)]
enum BootstrapWhat {
    /// From any Git server.
    Git(bootstrap::GitArgs),
}

#[derive(Subcommand)]
enum PushWhat {
    /// A directory as a Flux artifact.
    Artifact {
        /// `oci://<registry>/<repository>:<tag>`.
        url: String,
        /// The directory (or a .tar.gz file) to push.
        #[arg(long)]
        path: PathBuf,
        /// Where it comes from (a Git URL), recorded in the manifest.
        #[arg(long)]
        source: String,
        /// Its revision there (`main@sha1:…`).
        #[arg(long)]
        revision: String,
        /// More manifest annotations (`key=value`).
        #[arg(short = 'a', long = "annotations", value_delimiter = ',')]
        annotations: Vec<String>,
        /// Paths to leave out (.sourceignore syntax).
        #[arg(long, value_delimiter = ',')]
        ignore_paths: Vec<String>,
        #[command(flatten)]
        registry: artifact::Registry,
    },
}

#[derive(Subcommand)]
enum PullWhat {
    /// A Flux artifact.
    Artifact {
        /// `oci://<registry>/<repository>:<tag>`.
        url: String,
        /// Where to unpack it.
        #[arg(short = 'o', long)]
        output: PathBuf,
        #[command(flatten)]
        registry: artifact::Registry,
    },
}

#[derive(Subcommand)]
enum TagWhat {
    /// A Flux artifact.
    Artifact {
        /// `oci://<registry>/<repository>:<tag>`.
        url: String,
        /// The new tags.
        #[arg(long = "tag", required = true)]
        tags: Vec<String>,
        #[command(flatten)]
        registry: artifact::Registry,
    },
}

#[derive(Subcommand)]
enum ListWhat {
    /// The artifacts of a repository.
    Artifacts {
        /// `oci://<registry>/<repository>`.
        url: String,
        /// Only tags this regular expression matches.
        #[arg(long)]
        filter_regex: Option<String>,
        #[command(flatten)]
        registry: artifact::Registry,
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
    let flags = cli.cluster;
    match cli.command {
        Command::Why { object } => why(&object, &flags),
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
        Command::Install {
            components,
            components_extra,
            network_policy,
            export: true,
            ..
        } => finish(
            install::components(&components, &components_extra).and_then(|c| {
                install::export(&install::manifests(
                    &c,
                    flags.namespace.as_deref().unwrap_or("flux-system"),
                    network_policy,
                ))
            }),
            ExitCode::FAILURE,
        ),
        Command::Create { what } if create::exporting(&what) => finish(
            create::export(&what, &create::export_namespace(flags.namespace.as_deref())),
            ExitCode::FAILURE,
        ),
        Command::Push { .. } | Command::Pull { .. } | Command::Tag { .. } | Command::List { .. } => {
            let t = flags.timeout;
            let result = block_on(async move {
                match cli.command {
                    Command::Push {
                        what:
                            PushWhat::Artifact {
                                url,
                                path,
                                source,
                                revision,
                                annotations,
                                ignore_paths,
                                registry,
                            },
                    } => {
                        artifact::push(
                            &url,
                            &path,
                            &source,
                            &revision,
                            &annotations,
                            &ignore_paths,
                            &registry,
                            t,
                        )
                        .await
                    }
                    Command::Pull {
                        what:
                            PullWhat::Artifact {
                                url,
                                output,
                                registry,
                            },
                    } => artifact::pull(&url, &output, &registry, t).await,
                    Command::Tag {
                        what: TagWhat::Artifact { url, tags, registry },
                    } => artifact::tag(&url, &tags, &registry, t).await,
                    Command::List {
                        what:
                            ListWhat::Artifacts {
                                url,
                                filter_regex,
                                registry,
                            },
                    } => artifact::list(&url, filter_regex.as_deref(), &registry, t).await,
                    _ => unreachable!("only artifact commands come here"),
                }
            });
            finish(result, ExitCode::FAILURE)
        }
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "driftless", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Dashboard(options) => {
            let result = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(async move {
                    let cluster = cluster::Cluster::connect(&flags).await?;
                    dashboard::run(cluster, options).await
                });
            finish(result, ExitCode::FAILURE)
        }
        command => on_cluster(command, flags),
    }
}

/// Runs `fut` to its end on a runtime of the calling thread.
fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(fut)
}

/// The exit code of a command: 0; 1 for `diff`'s differences; otherwise the error printed as flux prints
/// it (`✗ …`) and `failed`.
fn finish(result: anyhow::Result<()>, failed: ExitCode) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Differs>() => ExitCode::FAILURE,
        Err(e) => {
            log::failure(&format!("{e:#}"));
            failed
        }
    }
}

/// Runs a command that talks to the cluster; an error is printed as flux prints it (`✗ …`), exit 1.
fn on_cluster(command: Command, flags: cluster::Flags) -> ExitCode {
    let is_diff = matches!(command, Command::Diff { .. });
    let result = block_on(async {
        let words = match &command {
            Command::Get { what, .. }
            | Command::Reconcile { what, .. }
            | Command::Suspend { what, .. }
            | Command::Resume { what, .. }
            | Command::Tree { what }
            | Command::Diff { what, .. }
            | Command::Delete { what, .. }
            | Command::Export { what, .. } => what.clone(),
            Command::Events {
                for_,
                all_namespaces,
                types,
                watch,
            } => {
                let cluster = cluster::Cluster::connect(&flags).await?;
                let opts = events::Options {
                    for_: for_.clone(),
                    all_namespaces: *all_namespaces,
                    types: types.clone(),
                    watch: *watch,
                };
                return events::run(&cluster, &opts, flags.timeout).await;
            }
            Command::Install {
                components,
                components_extra,
                network_policy,
                wait,
                ..
            } => {
                let components = install::components(components, components_extra)?;
                let cluster = cluster::Cluster::connect(&flags).await?;
                return install::install(&cluster, &components, *network_policy, *wait, flags.timeout).await;
            }
            Command::Uninstall {
                keep_crds,
                keep_namespace,
                silent,
            } => {
                let cluster = cluster::Cluster::connect(&flags).await?;
                if !silent {
                    create::confirm(&format!(
                        "Are you sure you want to delete driftless{} from {}",
                        if *keep_crds {
                            ""
                        } else {
                            ", its custom resource definitions and every Flux object"
                        },
                        cluster.namespace
                    ))?;
                }
                return install::uninstall(&cluster, *keep_crds, *keep_namespace).await;
            }
            Command::Bootstrap {
                what: BootstrapWhat::Git(args),
            } => {
                let cluster = cluster::Cluster::connect(&flags).await?;
                return bootstrap::git(&cluster, args, flags.timeout).await;
            }
            Command::Check { pre } => {
                let cluster = cluster::Cluster::connect(&flags).await?;
                return if install::check(&cluster, *pre).await? {
                    Ok(())
                } else {
                    Err(anyhow::Error::new(Differs))
                };
            }
            Command::Create { what } => {
                let cluster = cluster::Cluster::connect(&flags).await?;
                return create::run(&cluster, what, flags.timeout).await;
            }
            Command::Trace { object, api_version } => {
                let Some((word, name)) = object.split_once('/') else {
                    anyhow::bail!("expected <kind>/<name> (deployment/podinfo), got '{object}'");
                };
                let cluster = cluster::Cluster::connect(&flags).await?;
                let (mut ar, namespaced) = objects::resource(&cluster.client, word).await?;
                if let Some(v) = api_version {
                    ar.api_version = v.clone();
                }
                let place = objects::Place {
                    api_version: ar.api_version,
                    kind: ar.kind,
                    namespace: if namespaced {
                        cluster.namespace.clone()
                    } else {
                        String::new()
                    },
                    name: name.to_string(),
                };
                print!("{}", trace::trace(&cluster.client, &place).await?);
                return Ok(());
            }
            _ => unreachable!("only cluster commands come here"),
        };
        if let Command::Get {
            all_namespaces,
            no_header,
            status_selector,
            label_selector,
            watch,
            output,
            ..
        } = command
        {
            let (kinds, name, all) = get::what(&words).map_err(anyhow::Error::msg)?;
            let cluster = cluster::Cluster::connect(&flags).await?;
            let opts = get::Options {
                all_namespaces,
                no_header,
                status_selector,
                labels: label_selector,
                watch,
                output,
            };
            return get::run(&cluster, &kinds, name.as_deref(), all, &opts, flags.timeout).await;
        }
        let (kind, names) = kind::resolve(&words).map_err(anyhow::Error::msg)?;
        let cluster = cluster::Cluster::connect(&flags).await?;
        match command {
            Command::Reconcile {
                with_source,
                force,
                reset,
                ..
            } => {
                let [name] = names.as_slice() else {
                    anyhow::bail!("{} name is required (exactly one)", kind::human(&kind.kind));
                };
                let opts = reconcile::Options {
                    with_source,
                    force,
                    reset,
                };
                reconcile::reconcile(&cluster, kind, &cluster.namespace, name, opts, flags.timeout).await
            }
            Command::Suspend { all, .. } => reconcile::suspend(&cluster, kind, &names, all).await,
            Command::Diff { path, .. } => {
                let [name] = names.as_slice() else {
                    anyhow::bail!("kustomization name is required (exactly one)");
                };
                anyhow::ensure!(
                    kind.kind == "Kustomization",
                    "diff compares a Kustomization, not a {}",
                    kind.kind
                );
                if diff::run(&cluster, name, &path).await? {
                    return Err(anyhow::Error::new(Differs));
                }
                Ok(())
            }
            Command::Delete { silent, .. } => {
                let [name] = names.as_slice() else {
                    anyhow::bail!("{} name is required (exactly one)", kind::human(&kind.kind));
                };
                create::delete(&cluster, kind, name, silent).await
            }
            Command::Tree { .. } => {
                let [name] = names.as_slice() else {
                    anyhow::bail!("{} name is required (exactly one)", kind::human(&kind.kind));
                };
                tree::run(&cluster.client, kind, &cluster.namespace, name).await
            }
            Command::Export {
                all, all_namespaces, ..
            } => export::run(&cluster, kind, &names, all, all_namespaces).await,
            Command::Resume { all, wait, .. } => {
                reconcile::resume(&cluster, kind, &names, all, wait, flags.timeout).await
            }
            _ => unreachable!("only cluster commands come here"),
        }
    });
    finish(
        result,
        if is_diff {
            ExitCode::from(2)
        } else {
            ExitCode::FAILURE
        },
    )
}

/// `diff` found differences (exit 1; errors exit 2).
#[derive(Debug)]
struct Differs;

impl std::fmt::Display for Differs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("differences found")
    }
}

impl std::error::Error for Differs {}

fn why(object: &str, flags: &cluster::Flags) -> ExitCode {
    let Some((kind, name)) = object.split_once('/').and_then(|(k, n)| Some((why::kind(k)?, n))) else {
        eprintln!(
            "error: expected <kind>/<name> with a Flux kind (kustomization/apps, gitrepo/fleet…), got '{object}'"
        );
        return ExitCode::from(2);
    };
    let explained = block_on(async {
        let cluster = cluster::Cluster::connect(flags).await?;
        let root = why::Ref {
            kind: kind.to_string(),
            namespace: cluster.namespace.clone(),
            name: name.to_string(),
        };
        let mut out = String::new();
        let ready = why::explain(&cluster.client, &root, &mut out).await?;
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
