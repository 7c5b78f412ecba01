//! The flags every controller shares, with Flux's names and defaults, as clap groups to
//! `#[command(flatten)]` (the Rust form of Flux's `*Options.BindFlags`). Booleans accept Go's
//! `--flag=false` as well as a bare `--flag`.

use std::time::Duration;

use clap::{Args, ValueEnum};

/// Parses a Go duration flag (`30s`, `15m`, `750ms`).
pub fn duration(s: &str) -> Result<Duration, String> {
    driftless_api::meta::parse_duration(s).map_err(|e| e.to_string())
}

/// Flags of every controller: listeners, workers, retries and scope.
#[derive(Args, Clone, Debug)]
pub struct ControllerArgs {
    /// The address the Prometheus metrics endpoint binds to.
    #[arg(long, default_value = ":8080")]
    pub metrics_addr: String,
    /// The address the health endpoints (/healthz, /readyz) bind to.
    #[arg(long, default_value = ":9440")]
    pub health_addr: String,
    /// The number of concurrent reconciles.
    #[arg(long, default_value_t = 4)]
    pub concurrent: u16,
    /// The interval at which failing dependencies are reevaluated.
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub requeue_dependency: Duration,
    /// The minimum amount of time for which an object being reconciled will have to wait before a retry.
    #[arg(long, default_value = "750ms", value_parser = duration)]
    pub min_retry_delay: Duration,
    /// The maximum amount of time for which an object being reconciled will have to wait before a retry.
    #[arg(long, default_value = "15m", value_parser = duration)]
    pub max_retry_delay: Duration,
    /// Watch for custom resources in all namespaces; if false, only the runtime namespace
    /// (RUNTIME_NAMESPACE) is watched.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub watch_all_namespaces: bool,
    /// Watch for custom resources with matching labels, e.g. 'sharding.fluxcd.io/key=shard1'.
    #[arg(long, default_value = "")]
    pub watch_label_selector: String,
    /// When set to true, references between custom resources are allowed only if the reference and the
    /// referee are in the same namespace.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub no_cross_namespace_refs: bool,
    /// Default service account used for impersonation.
    #[arg(long, default_value = "")]
    pub default_service_account: String,
    /// The namespace the controller runs in (for its Lease and the namespace-scoped watch).
    #[arg(long, env = "RUNTIME_NAMESPACE", default_value = "flux-system")]
    pub runtime_namespace: String,
}

/// Flags of controllers that send events: where to POST them.
#[derive(Args, Clone, Debug, Default)]
pub struct EventsArgs {
    /// The address of the events receiver (notification-controller); no events are POSTed when empty.
    #[arg(long, default_value = "")]
    pub events_addr: String,
}

/// Leader election on a `coordination.k8s.io/v1` Lease.
#[derive(Args, Clone, Debug)]
pub struct LeaderElectionArgs {
    /// Enable leader election for controller manager. Enabling this will ensure there is only one active
    /// controller manager.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_leader_election: bool,
    /// The duration that non-leader candidates will wait to force acquire leadership.
    #[arg(long, default_value = "35s", value_parser = duration)]
    pub leader_election_lease_duration: Duration,
    /// The duration that the acting leader will retry refreshing leadership before giving up.
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub leader_election_renew_deadline: Duration,
    /// The duration the clients should wait between tries of actions.
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub leader_election_retry_period: Duration,
    /// Release the leader lock when the controller stops, so a standby takes over at once.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_election_release_on_cancel: bool,
}

/// Log verbosity.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Failures only.
    Error,
    /// State changes (the default).
    Info,
    /// No-ops too.
    Debug,
    /// Everything.
    Trace,
}

/// Log format.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogEncoding {
    /// One JSON object per line (Flux's default).
    Json,
    /// Human-readable lines.
    Console,
}

/// Logging flags.
#[derive(Args, Clone, Debug)]
pub struct LogArgs {
    /// Log verbosity level.
    #[arg(long, value_enum, default_value = "info")]
    pub log_level: LogLevel,
    /// Log encoding format.
    #[arg(long, value_enum, default_value = "json")]
    pub log_encoding: LogEncoding,
}

/// `--feature-gates=Name=true,Other=false`, Flux's syntax. Parsing checks the syntax only; each
/// controller checks the names against its own list with [`FeatureGates::check`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeatureGates(pub std::collections::BTreeMap<String, bool>);

impl std::str::FromStr for FeatureGates {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut gates = std::collections::BTreeMap::new();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("feature gate '{pair}' must be Name=true or Name=false"))?;
            let value = value.trim().parse::<bool>().map_err(|_| {
                format!("feature gate '{name}' has invalid value '{value}': use true or false")
            })?;
            gates.insert(name.trim().to_string(), value);
        }
        Ok(Self(gates))
    }
}

impl FeatureGates {
    /// Whether `name` is enabled (`default` when not given).
    pub fn enabled(&self, name: &str, default: bool) -> bool {
        self.0.get(name).copied().unwrap_or(default)
    }

    /// Refuses names outside `known`.
    pub fn check(&self, known: &[&str]) -> Result<(), String> {
        match self.0.keys().find(|n| !known.contains(&n.as_str())) {
            Some(n) => Err(format!(
                "unknown feature gate '{n}': supported are {}",
                known.join(", ")
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        controller: ControllerArgs,
        #[command(flatten)]
        events: EventsArgs,
        #[command(flatten)]
        leader: LeaderElectionArgs,
        #[command(flatten)]
        log: LogArgs,
    }

    #[test]
    fn defaults_are_fluxs() {
        let cli = Cli::try_parse_from(["c"]).unwrap();
        assert_eq!(cli.controller.metrics_addr, ":8080");
        assert_eq!(cli.controller.health_addr, ":9440");
        assert_eq!(cli.controller.requeue_dependency, Duration::from_secs(30));
        assert_eq!(cli.controller.min_retry_delay, Duration::from_millis(750));
        assert_eq!(cli.controller.max_retry_delay, Duration::from_secs(900));
        assert!(cli.controller.watch_all_namespaces);
        assert!(!cli.controller.no_cross_namespace_refs);
        assert_eq!(cli.events.events_addr, "");
        assert!(!cli.leader.enable_leader_election);
        assert_eq!(cli.leader.leader_election_lease_duration, Duration::from_secs(35));
        assert_eq!(cli.log.log_level, LogLevel::Info);
        assert_eq!(cli.log.log_encoding, LogEncoding::Json);
    }

    #[test]
    fn go_style_flags_parse() {
        let cli = Cli::try_parse_from([
            "c",
            "--metrics-addr=127.0.0.1:0",
            "--watch-all-namespaces=false",
            "--no-cross-namespace-refs",
            "--enable-leader-election=true",
            "--requeue-dependency=5s",
            "--log-encoding=console",
            "--events-addr=http://127.0.0.1:9090/",
        ])
        .unwrap();
        assert_eq!(cli.controller.metrics_addr, "127.0.0.1:0");
        assert!(!cli.controller.watch_all_namespaces);
        assert!(cli.controller.no_cross_namespace_refs);
        assert!(cli.leader.enable_leader_election);
        assert_eq!(cli.controller.requeue_dependency, Duration::from_secs(5));
        assert_eq!(cli.log.log_encoding, LogEncoding::Console);
        assert_eq!(cli.events.events_addr, "http://127.0.0.1:9090/");
    }

    #[test]
    fn bad_durations_are_refused_with_the_value() {
        let err = Cli::try_parse_from(["c", "--max-retry-delay=soon"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("soon"), "{err}");
    }

    #[test]
    fn feature_gates_parse_flux_syntax_and_refuse_unknown_names() {
        let gates: FeatureGates = "StrictPostBuildSubstitutions=true, Other=false".parse().unwrap();
        assert!(gates.enabled("StrictPostBuildSubstitutions", false));
        assert!(!gates.enabled("Other", true));
        assert!(gates.enabled("Unset", true));
        assert!(gates.check(&["StrictPostBuildSubstitutions", "Other"]).is_ok());
        assert!(
            gates
                .check(&["Other"])
                .unwrap_err()
                .contains("StrictPostBuildSubstitutions")
        );
        assert!("X".parse::<FeatureGates>().is_err());
        assert!("X=maybe".parse::<FeatureGates>().is_err());
        assert_eq!("".parse::<FeatureGates>().unwrap(), FeatureGates::default());
    }
}
