//! helm-controller: HelmRelease → real Helm releases. Chart and values resolution, status and events
//! are ours; release actions run through the real `helm` v3 binary behind one narrow interface
//! ([`helm`]), so releases are Helm's own release Secrets and `helm list`/`history`/`rollback` keep
//! working for users.

pub mod helm;
pub mod helmrelease;
pub mod postrender;
pub mod unlock;

use std::{path::PathBuf, sync::Arc, time::Duration};

use clap::Parser;
use driftless_runtime::{
    error::RetryPolicy,
    events::Recorder,
    flags::{ControllerArgs, EventsArgs, LeaderElectionArgs, LogArgs},
    manager::Manager,
    metrics::Metrics,
};
use kube::Client;
use tracing::info;

/// The controller's name: field manager, event reporter, Lease prefix.
pub const CONTROLLER_NAME: &str = "helm-controller";
/// The field manager of status writes and of the HelmCharts it creates.
pub const FIELD_MANAGER: &str = CONTROLLER_NAME;

/// helm-controller's flags.
#[derive(Parser, Clone, Debug)]
#[command(name = CONTROLLER_NAME, version, about = "driftless helm-controller")]
pub struct Args {
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub events: EventsArgs,
    #[command(flatten)]
    pub leader: LeaderElectionArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// The helm v3 binary release actions run through (`hack/tools.sh` installs it; the image ships it).
    #[arg(long, env = "HELM_BINARY", default_value = "helm")]
    pub helm_binary: PathBuf,
    /// The executable helm runs as its post-renderer: by default this binary, which answers
    /// `helm-controller post-render <spec file>` ([`postrender::main`]).
    #[arg(long, env = "HELM_POST_RENDERER", hide = true)]
    pub post_renderer: Option<PathBuf>,
    /// Flux's feature gates (accepted; none acts yet).
    #[arg(long = "feature-gates", default_value = "")]
    pub feature_gates: String,
}

/// What every reconcile gets.
pub struct Context {
    /// The controller's client.
    pub client: Client,
    /// The controller's client configuration (helm gets a kubeconfig of it).
    pub kube_config: kube::Config,
    /// Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Requeue policy.
    pub retry: RetryPolicy,
    /// The controller flags.
    pub config: ControllerArgs,
    /// The helm binary.
    pub helm: PathBuf,
    /// The post-renderer helm runs (this binary, answering `post-render`).
    pub post_renderer: PathBuf,
    /// `--default-service-account`.
    pub default_service_account: String,
    /// Chart downloads.
    pub http: reqwest::Client,
    /// Clients acting for tenants (impersonating, or on a `kubeConfig` cluster).
    pub tenants: driftless_runtime::tenant::Tenants,
}

/// Runs helm-controller until SIGTERM with the environment's client configuration.
pub async fn run(args: Args) -> anyhow::Result<()> {
    run_with(kube::Config::infer().await?, args).await
}

/// Runs helm-controller with the client configuration `config`.
pub async fn run_with(config: kube::Config, args: Args) -> anyhow::Result<()> {
    let client = driftless_runtime::client::build(config.clone())?;
    let mut manager = Manager::start(CONTROLLER_NAME, client.clone(), &args.controller, &args.leader).await?;
    if !manager.leading().await {
        return Ok(());
    }
    let instance = driftless_runtime::manager::identity();
    let ctx = Arc::new(Context {
        client: client.clone(),
        kube_config: config.clone(),
        recorder: Recorder::new(
            Some(client.clone()),
            CONTROLLER_NAME,
            &instance,
            Some(&args.events.events_addr),
        ),
        metrics: manager.metrics.clone(),
        retry: RetryPolicy::new(args.controller.min_retry_delay, args.controller.max_retry_delay),
        config: args.controller.clone(),
        helm: args.helm_binary.clone(),
        post_renderer: match &args.post_renderer {
            Some(path) => path.clone(),
            None => std::env::current_exe()?,
        },
        default_service_account: args.controller.default_service_account.clone(),
        http: driftless_artifact::fetch::http_client(Duration::from_secs(60)),
        tenants: driftless_runtime::tenant::Tenants::new(client.clone(), config.clone()),
    });
    tokio::select! {
        _ = helmrelease::run(ctx) => {}
        _ = manager.stopped() => info!("stopping"),
    }
    manager.finish().await;
    Ok(())
}
