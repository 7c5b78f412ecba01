//! source-controller: turns sources into artifacts. Serves the artifact storage over HTTP on
//! `--storage-addr` and reconciles GitRepository ([`gitrepository`]), OCIRepository ([`ocirepository`])
//! HelmRepository ([`helmrepository`]), HelmChart ([`helmchart`]) and Bucket ([`bucket`]) objects, and
//! Flux's source-watcher kind ArtifactGenerator ([`artifactgenerator`]).

pub mod artifactgenerator;
pub mod bucket;
mod common;
pub mod gitrepository;
pub mod helmchart;
pub mod helmrepository;
pub mod ocirepository;

use std::{path::PathBuf, sync::Arc, time::Duration};

use clap::Parser;
use driftless_artifact::Storage;
use driftless_git::Cache;
use driftless_runtime::{
    error::RetryPolicy,
    events::Recorder,
    flags::{ControllerArgs, EventsArgs, FeatureGates, LeaderElectionArgs, LogArgs, duration},
    manager::Manager,
    metrics::Metrics,
};
use kube::Client;
use tracing::info;

/// The controller's name: field manager, event reporter, Lease prefix.
pub const CONTROLLER_NAME: &str = "source-controller";
/// The field manager of status writes.
pub const FIELD_MANAGER: &str = CONTROLLER_NAME;

/// Storage flags (Flux's names and defaults).
#[derive(clap::Args, Clone, Debug)]
pub struct StorageArgs {
    /// The address the static file server binds to.
    #[arg(long, default_value = ":9090")]
    pub storage_addr: String,
    /// The advertised address of the static file server (host:port in artifact URLs); defaults to the
    /// address the server bound when empty.
    #[arg(long, env = "STORAGE_ADV_ADDR", default_value = "")]
    pub storage_adv_addr: String,
    /// The local storage path.
    #[arg(long, default_value = "/data")]
    pub storage_path: PathBuf,
    /// The duration of time that artifacts from previous reconciliations will be kept in storage before
    /// being garbage collected.
    #[arg(long, default_value = "60s", value_parser = duration)]
    pub artifact_retention_ttl: Duration,
    /// The maximum number of artifacts to be kept in storage after a garbage collection.
    #[arg(long, default_value_t = 2)]
    pub artifact_retention_records: usize,
    /// Where the shared bare repositories are kept (one per URL); defaults to `<storage-path>/../git-cache`.
    #[arg(long)]
    pub git_cache_path: Option<PathBuf>,
}

/// Helm flags (Flux's names and defaults).
#[derive(clap::Args, Clone, Debug)]
pub struct HelmArgs {
    /// The max allowed size in bytes of a Helm repository index file.
    #[arg(long, default_value_t = 50 << 20)]
    pub helm_index_max_size: u64,
    /// The max allowed size in bytes of a Helm chart file.
    #[arg(long, default_value_t = 10 << 20)]
    pub helm_chart_max_size: u64,
    /// The max allowed size in bytes of a file in a Helm chart.
    #[arg(long, default_value_t = 5 << 20)]
    pub helm_chart_file_max_size: u64,
    /// Flux's index cache (accepted; indexes are streamed from storage instead of cached in memory).
    #[arg(long, default_value_t = 0)]
    pub helm_cache_max_size: u64,
    /// Flux's index cache TTL (accepted, no effect).
    #[arg(long, default_value = "15m")]
    pub helm_cache_ttl: String,
    /// Flux's index cache purge interval (accepted, no effect).
    #[arg(long, default_value = "1m")]
    pub helm_cache_purge_interval: String,
}

/// source-controller's flags.
#[derive(Parser, Clone, Debug)]
#[command(name = CONTROLLER_NAME, version, about = "driftless source-controller")]
pub struct Args {
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub events: EventsArgs,
    #[command(flatten)]
    pub leader: LeaderElectionArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub helm: HelmArgs,
    #[command(flatten)]
    pub azure: driftless_credentials::AzureArgs,
    /// Feature gates, `Name=true,…` as Flux's: `ObjectLevelWorkloadIdentity` (`spec.serviceAccountName`
    /// for the `azure` provider) acts; Flux's other source-controller gates are accepted and have no
    /// effect.
    #[arg(long = "feature-gates", default_value = "")]
    pub feature_gates: FeatureGates,
}

/// Flux's source-controller feature gates.
pub const FEATURE_GATES: [&str; 4] = [
    "ObjectLevelWorkloadIdentity",
    "OptimizedGitClones",
    "CacheSecretsAndConfigMaps",
    "StoreArtifactInKubernetes",
];

/// What every reconcile gets: cheap clones.
pub struct Context {
    /// The client.
    pub client: Client,
    /// Artifact storage.
    pub storage: Arc<Storage>,
    /// The shared bare repositories.
    pub git: Arc<Cache>,
    /// Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Requeue policy.
    pub retry: RetryPolicy,
    /// The controller flags.
    pub config: ControllerArgs,
    /// The Helm size limits.
    pub helm: HelmArgs,
    /// Which OCI registries answered HTTPS.
    pub oci: driftless_oci::Schemes,
    /// What the credential providers (GitHub App, Azure workload identity) need, and the tokens they
    /// issued, reused until they near expiry.
    pub providers: driftless_credentials::Providers,
}

impl Context {
    /// What the shared reconcile lifecycle needs of it.
    pub fn runtime(&self) -> driftless_runtime::reconcile::Runtime<'_> {
        driftless_runtime::reconcile::Runtime {
            client: &self.client,
            recorder: &self.recorder,
            metrics: &self.metrics,
            retry: &self.retry,
        }
    }
}

/// Runs source-controller until SIGTERM, with the client of the environment (in-cluster or kubeconfig).
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = driftless_runtime::client::build(kube::Config::infer().await?)?;
    run_with(client, args, |_| {}).await
}

/// Runs source-controller with `client`; `on_ready` gets the artifact server's address once it listens.
pub async fn run_with(
    client: Client,
    args: Args,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    args.feature_gates
        .check(&FEATURE_GATES)
        .map_err(anyhow::Error::msg)?;
    let mut manager = Manager::start(CONTROLLER_NAME, client.clone(), &args.controller, &args.leader).await?;
    let listener = tokio::net::TcpListener::bind(driftless_runtime::server::listen_addr(
        &args.storage.storage_addr,
    )?)
    .await?;
    let bound = listener.local_addr()?;
    let adv = if args.storage.storage_adv_addr.is_empty() {
        bound.to_string()
    } else {
        args.storage.storage_adv_addr.clone()
    };
    let storage = Arc::new(Storage::new(
        &args.storage.storage_path,
        &adv,
        args.storage.artifact_retention_ttl,
        args.storage.artifact_retention_records,
    )?);
    let cache_path = args.storage.git_cache_path.clone().unwrap_or_else(|| {
        storage
            .base()
            .parent()
            .unwrap_or(storage.base())
            .join("git-cache")
    });
    tokio::spawn({
        let router = driftless_artifact::server::router(storage.clone());
        async move { axum::serve(listener, router).await }
    });
    info!(addr = %bound, advertised = %adv, path = %storage.base().display(), "serving artifacts");
    on_ready(bound);
    if !manager.leading().await {
        return Ok(());
    }
    let instance = driftless_runtime::manager::identity();
    let ctx = Arc::new(Context {
        client: client.clone(),
        storage,
        git: Arc::new(Cache::new(&cache_path)),
        recorder: Recorder::new(
            Some(client.clone()),
            CONTROLLER_NAME,
            &instance,
            Some(&args.events.events_addr),
        ),
        metrics: manager.metrics.clone(),
        retry: RetryPolicy::new(args.controller.min_retry_delay, args.controller.max_retry_delay),
        config: args.controller.clone(),
        oci: Default::default(),
        helm: args.helm.clone(),
        providers: driftless_credentials::Providers {
            tokens: Default::default(),
            azure: args.azure.clone(),
            object_level_identity: args.feature_gates.enabled("ObjectLevelWorkloadIdentity", false),
        },
    });
    tokio::select! {
        _ = gitrepository::run(ctx.clone()) => {}
        _ = helmrepository::run(ctx.clone()) => {}
        _ = helmchart::run(ctx.clone()) => {}
        _ = bucket::run(ctx.clone()) => {}
        _ = artifactgenerator::run(ctx.clone()) => {}
        _ = ocirepository::run(ctx) => {}
        _ = manager.stopped() => info!("stopping"),
    }
    manager.finish().await;
    Ok(())
}
