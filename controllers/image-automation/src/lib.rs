//! image-automation-controller: ImageUpdateAutomation checks out its GitRepository's branch, sets the
//! latest images of the selected ImagePolicies at the `$imagepolicy` markers ([`setters`]), commits with
//! the rendered message ([`message`]) and pushes — with the GitRepository's own credentials, never
//! forced to the checkout branch (a moved branch is updated again from its new head). It never talks to
//! a registry: image-reflector-controller's ImagePolicy status is its input.

pub mod automation;
pub mod message;
pub mod setters;

use std::sync::Arc;

use clap::Parser;
use driftless_runtime::{
    error::RetryPolicy,
    events::Recorder,
    flags::{ControllerArgs, EventsArgs, LeaderElectionArgs, LogArgs},
    manager::Manager,
    metrics::Metrics,
    reconcile::Runtime,
};
use kube::Client;
use tracing::info;

/// The controller's name: field manager, event reporter, Lease prefix.
pub const CONTROLLER_NAME: &str = "image-automation-controller";
/// The field manager of status writes.
pub const FIELD_MANAGER: &str = CONTROLLER_NAME;

/// image-automation-controller's flags.
#[derive(Parser, Clone, Debug)]
#[command(name = CONTROLLER_NAME, version, about = "driftless image-automation-controller")]
pub struct Args {
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub events: EventsArgs,
    #[command(flatten)]
    pub leader: LeaderElectionArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Flux's feature gates (accepted; none acts yet).
    #[arg(long = "feature-gates", default_value = "")]
    pub feature_gates: String,
}

/// What every reconcile gets.
pub struct Context {
    /// The controller's client.
    pub client: Client,
    /// Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Requeue policy.
    pub retry: RetryPolicy,
    /// The controller flags.
    pub config: ControllerArgs,
    /// Git providers' tokens.
    pub providers: driftless_credentials::Providers,
}

impl Context {
    /// The lifecycle's view of the context.
    pub fn runtime(&self) -> Runtime<'_> {
        Runtime {
            client: &self.client,
            recorder: &self.recorder,
            metrics: &self.metrics,
            retry: &self.retry,
        }
    }
}

/// Runs image-automation-controller until SIGTERM with the environment's client configuration.
pub async fn run(args: Args) -> anyhow::Result<()> {
    run_with(kube::Config::infer().await?, args).await
}

/// Runs image-automation-controller with the client configuration `config`.
pub async fn run_with(config: kube::Config, args: Args) -> anyhow::Result<()> {
    let client = driftless_runtime::client::build(config)?;
    let mut manager = Manager::start(CONTROLLER_NAME, client.clone(), &args.controller, &args.leader).await?;
    if !manager.leading().await {
        return Ok(());
    }
    let instance = driftless_runtime::manager::identity();
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(
            Some(client.clone()),
            CONTROLLER_NAME,
            &instance,
            Some(&args.events.events_addr),
        ),
        metrics: manager.metrics.clone(),
        retry: RetryPolicy::new(args.controller.min_retry_delay, args.controller.max_retry_delay),
        config: args.controller.clone(),
        providers: Default::default(),
    });
    tokio::select! {
        _ = automation::run(ctx) => {}
        _ = manager.stopped() => info!("stopping"),
    }
    manager.finish().await;
    Ok(())
}
