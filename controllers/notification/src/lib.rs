//! notification-controller: takes Flux events from the other controllers on `--events-addr` and forwards
//! them, per Alert, to their Provider ([`intake`], [`alert`], [`provider`]); serves webhook receivers on
//! `--receiverAddr` that verify the sender and ask for an immediate reconcile ([`receiver`]).

pub mod alert;
pub mod intake;
pub mod provider;
pub mod receiver;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use clap::Parser;
use driftless_runtime::{
    error::RetryPolicy,
    events::Recorder,
    flags::{ControllerArgs, LeaderElectionArgs, LogArgs, duration},
    manager::Manager,
    metrics::Metrics,
};
use kube::Client;
use tracing::info;

/// The controller's name: field manager, event reporter, Lease prefix.
pub const CONTROLLER_NAME: &str = "notification-controller";
/// The field manager of status writes and annotations.
pub const FIELD_MANAGER: &str = CONTROLLER_NAME;

/// notification-controller's flags (Flux's names).
#[derive(Parser, Clone, Debug)]
#[command(name = CONTROLLER_NAME, version, about = "driftless notification-controller")]
pub struct Args {
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub leader: LeaderElectionArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// The address the event intake listens on (Flux events POSTed by the other controllers).
    #[arg(long, default_value = ":9090")]
    pub events_addr: String,
    /// The address the webhook receivers listen on.
    #[arg(long = "receiverAddr", default_value = ":9292")]
    pub receiver_addr: String,
    /// An event identical to one accepted within this interval is refused (429).
    #[arg(long, default_value = "5m", value_parser = duration)]
    pub rate_limit_interval: Duration,
    /// Where Google ID tokens of `gcr` receivers are checked (Google's tokeninfo endpoint).
    #[arg(long, default_value = "https://oauth2.googleapis.com/tokeninfo")]
    pub gcr_tokeninfo_url: String,
    /// The largest event body accepted, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_size: usize,
    /// The largest webhook body a Receiver accepts, in bytes (GitHub sends up to 25 MB).
    #[arg(long, default_value_t = 25 << 20)]
    pub receiver_max_body_size: usize,
}

/// What the servers and reconciles share.
pub struct Context {
    /// The client.
    pub client: Client,
    /// Kubernetes Events on Alerts, Providers and Receivers.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Requeue policy.
    pub retry: RetryPolicy,
    /// The controller flags.
    pub config: ControllerArgs,
    /// Provider requests.
    pub http: reqwest::Client,
    /// Alert repeats held by `driftless.io/fold-window`.
    pub folds: alert::Folds,
}

/// The addresses the servers bound.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// The event intake.
    pub events: SocketAddr,
    /// The webhook receivers.
    pub receivers: SocketAddr,
}

/// Runs notification-controller until SIGTERM with the environment's client.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = driftless_runtime::client::build(kube::Config::infer().await?)?;
    run_with(client, args, |_| {}).await
}

/// Runs notification-controller with `client`; `on_ready` gets the servers' addresses once they listen.
pub async fn run_with(client: Client, args: Args, on_ready: impl FnOnce(Bound)) -> anyhow::Result<()> {
    let mut manager = Manager::start(CONTROLLER_NAME, client.clone(), &args.controller, &args.leader).await?;
    let instance = driftless_runtime::manager::identity();
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(Some(client.clone()), CONTROLLER_NAME, &instance, None),
        metrics: manager.metrics.clone(),
        retry: RetryPolicy::new(args.controller.min_retry_delay, args.controller.max_retry_delay),
        config: args.controller.clone(),
        http: provider::http_client()?,
        folds: Default::default(),
    });
    let events =
        tokio::net::TcpListener::bind(driftless_runtime::server::listen_addr(&args.events_addr)?).await?;
    let receivers =
        tokio::net::TcpListener::bind(driftless_runtime::server::listen_addr(&args.receiver_addr)?).await?;
    let bound = Bound {
        events: events.local_addr()?,
        receivers: receivers.local_addr()?,
    };
    let intake = intake::router(ctx.clone(), args.rate_limit_interval, args.max_body_size);
    tokio::spawn(async move { axum::serve(events, intake).await });
    let (hooks, store) = receiver::router(ctx.clone(), args.receiver_max_body_size, &args.gcr_tokeninfo_url);
    tokio::spawn(async move { axum::serve(receivers, hooks).await });
    info!(events = %bound.events, receivers = %bound.receivers, "listening");
    on_ready(bound);
    if !manager.leading().await {
        // NB: every replica serves events and hooks; only the leader reconciles Receivers
        manager.stopped().await;
        return Ok(());
    }
    tokio::select! {
        _ = receiver::run(ctx, store) => {}
        _ = manager.stopped() => info!("stopping"),
    }
    manager.finish().await;
    Ok(())
}
