//! The connection every cluster command shares: `--kubeconfig`, `--context`, `--namespace` and
//! `--timeout` as `flux` reads them (the namespace: the flag, else the context's, else `flux-system`),
//! and API errors turned into what to do about them.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use driftless_api::kinds::Kind;
use kube::{
    Api, Client,
    api::DynamicObject,
    config::{KubeConfigOptions, Kubeconfig},
};

/// The flags of every command that talks to a cluster.
#[derive(clap::Args, Clone, Debug)]
pub struct Flags {
    /// The kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else the in-cluster account).
    #[arg(long, global = true, env = "DRIFTLESS_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace (default: the context's, else flux-system).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// How long a command may take (a Go duration: 30s, 5m).
    #[arg(long, global = true, default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    driftless_api::meta::parse_duration(s).map_err(|e| e.to_string())
}

/// A client and the namespace commands work in.
pub struct Cluster {
    /// The client.
    pub client: Client,
    /// Its configuration (to impersonate someone).
    pub config: kube::Config,
    /// The namespace of `--namespace`, the context, or `flux-system`.
    pub namespace: String,
}

impl Cluster {
    /// Connects as `flags` say.
    pub async fn connect(flags: &Flags) -> anyhow::Result<Self> {
        let options = KubeConfigOptions {
            context: flags.context.clone(),
            ..Default::default()
        };
        let config = match &flags.kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(file, &options).await?
            }
            None if flags.context.is_some() => kube::Config::from_kubeconfig(&options).await?,
            None => kube::Config::infer().await.map_err(|e| {
                anyhow::anyhow!(
                    "no cluster to talk to: no kubeconfig ($KUBECONFIG, ~/.kube/config) and not running in a \
                     pod ({e}); pass --kubeconfig FILE or set KUBECONFIG"
                )
            })?,
        };
        let namespace = flags
            .namespace
            .clone()
            .unwrap_or_else(|| match config.default_namespace.as_str() {
                "" | "default" => "flux-system".to_string(),
                ns => ns.to_string(),
            });
        Ok(Self {
            client: Client::try_from(config.clone())?,
            config,
            namespace,
        })
    }

    /// The API of `kind` in `namespace` (None: every namespace).
    pub fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = kind.api_resource();
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        }
    }
}

/// Whether `err` is the API server's 404.
pub fn not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}

/// Whether `err` says the API server has no such resource at all (its CRD is not installed).
pub fn crd_missing(err: &kube::Error) -> bool {
    // a served group without the resource answers a Status; a group not served at all, plain text
    matches!(err, kube::Error::Api(s) if s.code == 404
        && (s.message.contains("could not find the requested resource") || s.message.contains("404 page not found")))
}

/// `err` of a request on `kind`, saying what to do: a 404 on a list means the CRD is not installed.
pub fn explain(err: kube::Error, kind: &Kind) -> anyhow::Error {
    match &err {
        _ if crd_missing(&err) => {
            anyhow::anyhow!(
                "the {} CRD ({}.{}) is not installed in this cluster: install it with `kubectl apply \
                 --server-side -f crds/` or `driftless install`",
                kind.kind,
                kind.plural,
                kind.group
            )
        }
        kube::Error::Api(s) if s.code == 403 => anyhow::anyhow!(
            "not allowed: {} — your user needs RBAC access to {}.{}",
            s.message,
            kind.plural,
            kind.group
        ),
        _ => anyhow::Error::new(err),
    }
}
