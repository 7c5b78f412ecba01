//! `driftless bootstrap git`: a cluster that syncs itself from a Git repository. The install manifests
//! (`<path>/flux-system/gotk-components.yaml`) and the sync objects — a GitRepository and a Kustomization
//! named after the namespace, reading `<path>` — are committed and pushed (an empty repository gets its
//! first commit), the components installed, the credentials Secret written, the sync objects applied, and
//! the command waits until the cluster has reconciled itself from Git. Running it again changes nothing
//! that is already so.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use driftless_git::{Auth, Author, Options, Worktree};
use serde_json::{Value, json};

use crate::{cluster::Cluster, install, log, objects};

/// `bootstrap git`'s flags.
#[derive(clap::Args, Debug)]
pub struct GitArgs {
    /// The repository (`https://…`, `http://…`, `ssh://…`).
    #[arg(long)]
    pub url: String,
    /// The branch to commit to and sync from.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// The directory of the cluster in the repository.
    #[arg(long, default_value = "clusters/my-cluster")]
    pub path: String,
    /// Basic auth user.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Basic auth password (or a token).
    #[arg(short = 'p', long, env = "GIT_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// SSH private key (for ssh:// URLs).
    #[arg(long)]
    pub private_key_file: Option<PathBuf>,
    /// The SSH server's known_hosts lines (for ssh:// URLs).
    #[arg(long)]
    pub known_hosts_file: Option<PathBuf>,
    /// The controllers.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "source-controller,kustomize-controller,helm-controller,notification-controller"
    )]
    pub components: Vec<String>,
    /// More controllers.
    #[arg(long, value_delimiter = ',')]
    pub components_extra: Vec<String>,
    /// The sync interval.
    #[arg(long, default_value = "1m")]
    pub interval: String,
    /// The commit author's name.
    #[arg(long, default_value = "driftless")]
    pub author_name: String,
    /// The commit author's email.
    #[arg(long, default_value = "driftless@users.noreply.github.com")]
    pub author_email: String,
    /// Wait for the controllers' Deployments to roll out.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub wait: bool,
}

fn secret_data(a: &GitArgs) -> anyhow::Result<BTreeMap<String, String>> {
    let mut data = BTreeMap::new();
    if a.url.starts_with("ssh://") {
        let (Some(key), Some(hosts)) = (&a.private_key_file, &a.known_hosts_file) else {
            anyhow::bail!(
                "an ssh:// URL needs --private-key-file and --known-hosts-file (ssh-keyscan <host>)"
            );
        };
        data.insert("identity".into(), std::fs::read_to_string(key)?);
        data.insert("known_hosts".into(), std::fs::read_to_string(hosts)?);
    } else if let Some(p) = &a.password {
        data.insert(
            "username".into(),
            a.username.clone().unwrap_or_else(|| "git".into()),
        );
        data.insert("password".into(), p.clone());
    }
    Ok(data)
}

fn yaml_stream(objects: &[Value]) -> anyhow::Result<String> {
    let mut out = String::new();
    for o in objects {
        out += "---\n";
        out += &driftless_yaml::to_string(o)?;
    }
    Ok(out)
}

/// The sync objects: the GitRepository and the Kustomization named after `namespace`.
fn sync_objects(a: &GitArgs, namespace: &str, with_secret: bool) -> anyhow::Result<Vec<Value>> {
    let interval = driftless_api::meta::format_duration(
        driftless_api::meta::parse_duration(&a.interval).map_err(|e| anyhow::anyhow!("--interval: {e}"))?,
    );
    let mut git = json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": namespace, "namespace": namespace},
        "spec": {"interval": interval, "ref": {"branch": a.branch}, "url": a.url}});
    if with_secret {
        git["spec"]["secretRef"] = json!({"name": namespace});
    }
    let ks = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": namespace, "namespace": namespace},
        "spec": {"interval": "10m0s", "path": format!("./{}", a.path.trim_start_matches("./").trim_end_matches('/')),
                 "prune": true, "sourceRef": {"kind": "GitRepository", "name": namespace}}});
    Ok(vec![git, ks])
}

fn commit_push(
    tree: &Worktree,
    a: &GitArgs,
    opts: Options<'_>,
    what: &str,
    message: &str,
) -> anyhow::Result<()> {
    let author = Author {
        name: &a.author_name,
        email: &a.author_email,
    };
    match tree.commit(&author, message)? {
        Some(sha) => {
            log::success(&format!("committed {what} to {:?} (\"{}\")", a.branch, &sha[..7]));
            log::action(&format!("pushing {what} to {:?}", a.url));
            tree.push(opts, &a.branch)?;
        }
        None => log::success(&format!("{what} are up to date")),
    }
    Ok(())
}

/// Bootstraps the cluster from the repository.
pub async fn git(cluster: &Cluster, a: &GitArgs, timeout: Duration) -> anyhow::Result<()> {
    let ns = cluster.namespace.clone();
    let components = install::components(&a.components, &a.components_extra)?;
    let data = secret_data(a)?;
    let auth = Auth::from_secret(
        &data
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect(),
    );
    let opts = || Options {
        url: &a.url,
        auth: &auth,
        proxy: None,
        timeout,
    };
    let scratch = tempfile::tempdir()?;
    let dir = scratch.path().join("repo");
    log::action(&format!(
        "cloning branch {:?} from Git repository {:?}",
        a.branch, a.url
    ));
    let tree = match Worktree::clone(opts(), &a.branch, &dir) {
        Ok(t) => {
            log::success("cloned repository");
            t
        }
        Err(driftless_git::Error::RefNotFound(_)) => {
            log::success(&format!("branch {:?} does not exist yet: starting it", a.branch));
            Worktree::init(&dir)?
        }
        Err(e) => return Err(e.into()),
    };
    let target = dir.join(a.path.trim_start_matches("./")).join(&ns);
    std::fs::create_dir_all(&target)?;
    log::line_generate("generating component manifests");
    let manifests = install::manifests(&components, &ns, true);
    std::fs::write(target.join("gotk-components.yaml"), yaml_stream(&manifests)?)?;
    std::fs::write(
        target.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\n",
    )?;
    let sync = sync_objects(a, &ns, !data.is_empty())?;
    std::fs::write(target.join("gotk-sync.yaml"), yaml_stream(&sync)?)?;
    commit_push(
        &tree,
        a,
        opts(),
        "component and sync manifests",
        "Add driftless component and sync manifests",
    )?;

    install::install(cluster, &components, true, false, timeout).await?;
    if !data.is_empty() {
        log::action(&format!("applying source secret \"{ns}/{ns}\""));
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": ns, "namespace": ns},
            "stringData": data});
        objects::apply(&cluster.client, &secret, "driftless").await?;
        log::success("source secret up to date");
    }
    log::action("applying sync manifests");
    for o in &sync {
        objects::apply(&cluster.client, o, "driftless").await?;
    }
    log::success("reconciled sync configuration");
    for kind in ["GitRepository", "Kustomization"] {
        log::waiting(&format!("waiting for {kind} \"{ns}/{ns}\" to be reconciled"));
        let k = driftless_api::kinds::get(kind).expect("a registered kind");
        let o = crate::reconcile::wait_ready(cluster, k, &ns, timeout).await?;
        log::success(&format!(
            "{kind} reconciled successfully: {}",
            crate::reconcile::success_message(kind, &o)
        ));
    }
    if a.wait {
        log::action("confirming components are healthy");
        install::wait_rolled_out(cluster, &components, timeout).await?;
        log::success("all components are healthy");
    }
    Ok(())
}
