//! image-reflector-controller: ImageRepository scans a registry for its tags ([`imagerepository`]),
//! kept in an embedded database on the controller's volume ([`store`]); ImagePolicy picks the latest
//! of them by semver range, alphabetical or numerical order ([`policy`], [`imagepolicy`]). Only this
//! controller talks to registries: image-automation-controller reads the policies' `status.latestRef`.

pub mod imagepolicy;
pub mod imagerepository;
pub mod policy;
pub mod store;

use std::{path::PathBuf, sync::Arc};

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
pub const CONTROLLER_NAME: &str = "image-reflector-controller";
/// The field manager of status writes.
pub const FIELD_MANAGER: &str = CONTROLLER_NAME;

/// image-reflector-controller's flags.
#[derive(Parser, Clone, Debug)]
#[command(name = CONTROLLER_NAME, version, about = "driftless image-reflector-controller")]
pub struct Args {
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub events: EventsArgs,
    #[command(flatten)]
    pub leader: LeaderElectionArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Where the tag database is kept (a volume, so tags survive a restart).
    #[arg(long, default_value = "/data")]
    pub storage_path: PathBuf,
    /// Flux's Badger value-log size (accepted; the database here is redb).
    #[arg(long = "storage-value-log-file-size", default_value_t = 1 << 28)]
    pub storage_value_log_file_size: u64,
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
    /// The tag database.
    pub store: store::Store,
    /// Which registries answered plain HTTP.
    pub oci: driftless_oci::Schemes,
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

/// Runs image-reflector-controller until SIGTERM with the environment's client configuration.
pub async fn run(args: Args) -> anyhow::Result<()> {
    run_with(kube::Config::infer().await?, args).await
}

/// Runs image-reflector-controller with the client configuration `config`.
pub async fn run_with(config: kube::Config, args: Args) -> anyhow::Result<()> {
    let client = driftless_runtime::client::build(config)?;
    let mut manager = Manager::start(CONTROLLER_NAME, client.clone(), &args.controller, &args.leader).await?;
    if !manager.leading().await {
        return Ok(());
    }
    let store = store::Store::open(&args.storage_path.join("tags.redb"))?;
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
        store,
        oci: Default::default(),
    });
    tokio::select! {
        _ = imagerepository::run(ctx.clone()) => {}
        _ = imagepolicy::run(ctx) => {}
        _ = manager.stopped() => info!("stopping"),
    }
    manager.finish().await;
    Ok(())
}
