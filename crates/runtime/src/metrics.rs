//! Prometheus metrics with Flux's names, so existing dashboards work: `gotk_reconcile_duration_seconds`
//! `{kind,name,namespace}`, plus `driftless_reconcile_errors_total{kind,reason}`.

use std::{sync::Mutex, time::Duration};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// Labels of `gotk_reconcile_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// Kind of the reconciled object.
    pub kind: String,
    /// Name of the reconciled object.
    pub name: String,
    /// Namespace of the reconciled object.
    pub namespace: String,
}

/// Labels of `driftless_reconcile_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Kind of the reconciled object.
    pub kind: String,
    /// The error's reason.
    pub reason: String,
}

/// The metrics of one controller process.
pub struct Metrics {
    /// Whether the process can make progress (what `/readyz` and `/healthz` report).
    pub progress: std::sync::Arc<crate::progress::Progress>,
    registry: Mutex<Registry>,
    reconcile_duration: Family<ObjectLabels, Histogram>,
    reconcile_errors: Family<ErrorLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let reconcile_duration = Family::<ObjectLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 10.0, 5))
        });
        registry.register(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a GitOps Toolkit resource reconciliation.",
            reconcile_duration.clone(),
        );
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "driftless_reconcile_errors",
            "Failed reconciliations by kind and reason.",
            reconcile_errors.clone(),
        );
        Self {
            progress: Default::default(),
            registry: Mutex::new(registry),
            reconcile_duration,
            reconcile_errors,
        }
    }
}

impl Metrics {
    /// Records the duration of one reconcile.
    pub fn observe_reconcile(&self, kind: &str, name: &str, namespace: &str, duration: Duration) {
        let labels = ObjectLabels {
            kind: kind.into(),
            name: name.into(),
            namespace: namespace.into(),
        };
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    /// Counts a failed reconcile.
    pub fn count_error(&self, kind: &str, reason: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                kind: kind.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry.lock().expect("metrics lock")).expect("writing to a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_durations_are_exposed_under_fluxs_name() {
        let m = Metrics::default();
        m.observe_reconcile(
            "GitRepository",
            "podinfo",
            "flux-system",
            Duration::from_millis(120),
        );
        m.count_error("GitRepository", "GitOperationFailed");
        let text = m.encode();
        assert!(text.contains(
            r#"gotk_reconcile_duration_seconds_count{kind="GitRepository",name="podinfo",namespace="flux-system"} 1"#
        ), "{text}");
        assert!(
            text.contains(
                r#"driftless_reconcile_errors_total{kind="GitRepository",reason="GitOperationFailed"} 1"#
            ),
            "{text}"
        );
    }
}
