//! kustomize-controller: downloads a source's artifact, builds the Kustomization's overlay with driftless's
//! own kustomize engine, server-side applies it, prunes what left Git and sets back what drifted
//! ([`kustomization`]).

pub mod kustomization;

use std::{sync::Arc, time::Duration};

use clap::Parser;
use driftless_runtime::{
    error::RetryPolicy,
    events::Recorder,
    flags::{ControllerArgs, EventsArgs, FeatureGates, LeaderElectionArgs, LogArgs},
    manager::Manager,
    metrics::Metrics,
};
use kube::Client;
use tracing::info;

/// The controller's name: field manager, event reporter, Lease prefix.
pub const CONTROLLER_NAME: &str = "kustomize-controller";
/// The field manager of applies and status writes.
pub const FIELD_MANAGER: &str = CONTROLLER_NAME;

/// kustomize-controller's flags.
#[derive(Parser, Clone, Debug)]
#[command(name = CONTROLLER_NAME, version, about = "driftless kustomize-controller")]
pub struct Args {
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub events: EventsArgs,
    #[command(flatten)]
    pub leader: LeaderElectionArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Disallow remote bases usage in Kustomize overlays. driftless refuses them by default (Flux: false);
    /// `--no-remote-bases=false` is not supported yet and is refused at start.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub no_remote_bases: bool,
    /// Field manager disallowed to perform changes on managed resources: its fields are taken over and
    /// so undone at the next apply (repeatable).
    #[arg(long = "override-manager")]
    pub override_managers: Vec<String>,
    /// Feature gates, `Name=true,…` as Flux's: `StrictPostBuildSubstitutions` (a variable without a value
    /// or default fails the build), `DisableConfigWatchers` (labelled Secrets/ConfigMaps do not trigger
    /// reconciles), `AdditiveCELDependencyCheck` and `DisableFailFastBehavior` act; Flux's other gates
    /// are accepted and have no effect.
    #[arg(long = "feature-gates", default_value = "")]
    pub feature_gates: FeatureGates,
    /// A Secret in the runtime namespace whose `*.agekey` entries decrypt every Kustomization's SOPS files
    /// besides its own keys (Flux's global age key).
    #[arg(long, default_value = "")]
    pub sops_age_secret: String,
    /// How much unpacked artifact content to keep on disk (MiB) so that Kustomizations of one artifact
    /// download and unpack it once (driftless; the least recently used trees go first).
    #[arg(long, default_value_t = 256)]
    pub artifact_cache_size_mib: u64,
}

/// Flux's kustomize-controller feature gates.
pub const FEATURE_GATES: [&str; 10] = [
    "StrictPostBuildSubstitutions",
    "DisableConfigWatchers",
    "CacheSecretsAndConfigMaps",
    "DisableStatusPollerCache",
    "DisableFailFastBehavior",
    "GroupChangeLog",
    "AdditiveCELDependencyCheck",
    "ExternalArtifact",
    "CancelHealthCheckOnNewRevision",
    "ObjectLevelWorkloadIdentity",
];

/// What every reconcile gets.
pub struct Context {
    /// The controller's own client.
    pub client: Client,
    /// The clients a Kustomization acts with: impersonating its ServiceAccount, or on a remote cluster.
    pub tenants: driftless_runtime::tenant::Tenants,
    /// Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Requeue policy.
    pub retry: RetryPolicy,
    /// The controller flags.
    pub config: ControllerArgs,
    /// Artifact downloads.
    pub http: reqwest::Client,
    /// `--override-manager`.
    pub override_managers: Vec<String>,
    /// `StrictPostBuildSubstitutions`.
    pub strict_substitutions: bool,
    /// Not `DisableConfigWatchers`.
    pub watch_configs: bool,
    /// `AdditiveCELDependencyCheck`: a `readyExpr` adds to the Ready check instead of replacing it.
    pub additive_cel_dependency_check: bool,
    /// Not `DisableFailFastBehavior`: a failed object ends the health check at once.
    pub fail_fast: bool,
    /// Objects verified unchanged, shared by every reconcile (see [`driftless_ssa::Verified`]).
    pub verified: Arc<driftless_ssa::Verified>,
    /// Kinds this cluster serves, shared by every reconcile against it (not by remote clusters').
    pub kinds: Arc<driftless_ssa::KindCache>,
    /// `--sops-age-secret`.
    pub sops_age_secret: String,
    /// Unpacked artifacts by digest, shared by every reconcile.
    pub artifacts: Arc<driftless_artifact::cache::UnpackCache>,
}

/// Runs kustomize-controller until SIGTERM with the environment's client configuration.
pub async fn run(args: Args) -> anyhow::Result<()> {
    run_with(kube::Config::infer().await?, args).await
}

/// Runs kustomize-controller with the client configuration `config`; tenants' clients derive from it
/// (impersonating their ServiceAccount).
pub async fn run_with(config: kube::Config, args: Args) -> anyhow::Result<()> {
    let client = driftless_runtime::client::build(config.clone())?;
    anyhow::ensure!(
        args.no_remote_bases,
        "--no-remote-bases=false is not supported: remote kustomize bases are always refused"
    );
    args.feature_gates
        .check(&FEATURE_GATES)
        .map_err(anyhow::Error::msg)?;
    let mut manager = Manager::start(CONTROLLER_NAME, client.clone(), &args.controller, &args.leader).await?;
    if !manager.leading().await {
        return Ok(());
    }
    let instance = driftless_runtime::manager::identity();
    let ctx = Arc::new(Context {
        client: client.clone(),
        tenants: driftless_runtime::tenant::Tenants::new(client.clone(), config),
        recorder: Recorder::new(
            Some(client.clone()),
            CONTROLLER_NAME,
            &instance,
            Some(&args.events.events_addr),
        ),
        metrics: manager.metrics.clone(),
        retry: RetryPolicy::new(args.controller.min_retry_delay, args.controller.max_retry_delay),
        config: args.controller.clone(),
        http: driftless_artifact::fetch::http_client(Duration::from_secs(60)),
        override_managers: args.override_managers.clone(),
        strict_substitutions: args.feature_gates.enabled("StrictPostBuildSubstitutions", false),
        watch_configs: !args.feature_gates.enabled("DisableConfigWatchers", false),
        additive_cel_dependency_check: args.feature_gates.enabled("AdditiveCELDependencyCheck", false),
        fail_fast: !args.feature_gates.enabled("DisableFailFastBehavior", false),
        verified: Default::default(),
        kinds: Arc::new(driftless_ssa::KindCache::new(std::time::Duration::from_secs(600))),
        sops_age_secret: args.sops_age_secret.clone(),
        artifacts: Arc::new(driftless_artifact::cache::UnpackCache::new(
            args.artifact_cache_size_mib << 20,
        )?),
    });
    tokio::select! {
        _ = kustomization::run(ctx) => {}
        _ = manager.stopped() => info!("stopping"),
    }
    manager.finish().await;
    Ok(())
}
