//! helm-controller: HelmRelease → real Helm releases. Chart and values resolution, status and events
//! are ours; release actions run through the real `helm` v3 binary behind one narrow interface
//! ([`helm`]), so releases are Helm's own release Secrets and `helm list`/`history`/`rollback` keep
//! working for users.

pub mod helm;
pub mod helmrelease;
pub mod postrender;
pub mod storage;
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
    /// Flux's feature gates (`Name=true,Other=false`); [`FEATURE_GATES`] lists the names.
    #[arg(long = "feature-gates", default_value = "")]
    pub feature_gates: driftless_runtime::flags::FeatureGates,
}

/// The feature gates Flux's helm-controller has. Those that act here: `DefaultToRetryOnFailure`,
/// `UseHelm3Defaults` (the wait), `AdditiveCELDependencyCheck`, `DisableChartDigestTracking`; the rest
/// are accepted so Flux's flags work (their behaviour is this controller's fixed one, or needs no gate).
pub const FEATURE_GATES: [&str; 15] = [
    "CacheSecretsAndConfigMaps",
    "DetectDrift",
    "CorrectDrift",
    "AllowDNSLookups",
    "OOMWatch",
    "AdoptLegacyReleases",
    "DisableChartDigestTracking",
    "AdditiveCELDependencyCheck",
    "ExternalArtifact",
    "DisableConfigWatchers",
    "DirectSourceFetch",
    "UseHelm3Defaults",
    "CancelHealthCheckOnNewRevision",
    "DefaultToRetryOnFailure",
    "ObjectLevelWorkloadIdentity",
];

/// What the feature gates change (Flux's gates of the same names; all off by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// `DefaultToRetryOnFailure`: an install or upgrade without a `strategy` is retried
    /// (`RetryOnFailure`) instead of remediated.
    pub default_to_retry_on_failure: bool,
    /// `UseHelm3Defaults`: `waitStrategy` defaults to `legacy` (helm's own `--wait`).
    pub use_helm3_defaults: bool,
    /// `AdditiveCELDependencyCheck`: a dependency's `readyExpr` adds to its Ready condition.
    pub additive_cel_dependency_check: bool,
    /// `DisableChartDigestTracking`: a chart from an OCI artifact is its version alone, so a new digest
    /// of the same version does not upgrade.
    pub disable_chart_digest_tracking: bool,
}

impl Features {
    /// The features `gates` turn on.
    pub fn of(gates: &driftless_runtime::flags::FeatureGates) -> Self {
        Self {
            default_to_retry_on_failure: gates.enabled("DefaultToRetryOnFailure", false),
            use_helm3_defaults: gates.enabled("UseHelm3Defaults", false),
            additive_cel_dependency_check: gates.enabled("AdditiveCELDependencyCheck", false),
            disable_chart_digest_tracking: gates.enabled("DisableChartDigestTracking", false),
        }
    }
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
    /// What the feature gates change.
    pub features: Features,
}

/// Runs helm-controller until SIGTERM with the environment's client configuration.
pub async fn run(args: Args) -> anyhow::Result<()> {
    run_with(kube::Config::infer().await?, args).await
}

/// Runs helm-controller with the client configuration `config`.
pub async fn run_with(config: kube::Config, args: Args) -> anyhow::Result<()> {
    args.feature_gates
        .check(&FEATURE_GATES)
        .map_err(anyhow::Error::msg)?;
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
        features: Features::of(&args.feature_gates),
    });
    tokio::select! {
        _ = helmrelease::run(ctx) => {}
        _ = manager.stopped() => info!("stopping"),
    }
    manager.finish().await;
    Ok(())
}
