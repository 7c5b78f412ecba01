//! Reconcile requests: the `reconcile.fluxcd.io/requestedAt` annotation, `spec.suspend`, the jittered
//! interval, and the watch trigger every controller uses (a new generation **or** a new `requestedAt`; a
//! generation-only filter would miss `flux reconcile` and webhooks).

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    time::Duration,
};

use driftless_api::meta::RECONCILE_REQUEST_ANNOTATION;
use kube::Resource;
use rand::Rng;

/// The fraction of `spec.interval` by which requeues are spread (Flux `--interval-jitter-percentage` 5).
pub const JITTER_FRACTION: f64 = 0.05;

/// The value of the `reconcile.fluxcd.io/requestedAt` annotation, if any.
pub fn requested_at<K: Resource>(obj: &K) -> Option<&str> {
    obj.meta()
        .annotations
        .as_ref()?
        .get(RECONCILE_REQUEST_ANNOTATION)
        .map(String::as_str)
}

/// The request to echo in `status.lastHandledReconcileAt`: the annotation value when it differs from
/// what the status already handled, otherwise the handled value.
pub fn handled_request<K: Resource>(obj: &K, last_handled: Option<&str>) -> Option<String> {
    requested_at(obj).or(last_handled).map(str::to_string)
}

/// Whether a reconcile was requested that the status has not handled yet.
pub fn is_requested<K: Resource>(obj: &K, last_handled: Option<&str>) -> bool {
    requested_at(obj).is_some_and(|r| Some(r) != last_handled)
}

/// `spec.suspend` as Flux reads it: absent is false.
pub fn is_suspended(suspend: Option<bool>) -> bool {
    suspend.unwrap_or(false)
}

/// `interval` spread by ±[`JITTER_FRACTION`], so objects created together do not reconcile in lockstep.
pub fn jitter(interval: Duration) -> Duration {
    let factor = 1.0 + rand::rng().random_range(-JITTER_FRACTION..=JITTER_FRACTION);
    interval.mul_f64(factor)
}

/// The watch trigger: a hash of the generation, the `requestedAt` annotation, the finalizers and the
/// deletion mark, for `WatchStreamExt::predicate_filter`. An event passes when any changed — a new spec,
/// a reconcile request, the finalizer just added (so the run it deferred happens), a deletion — and not
/// for status writes, labels or other metadata.
pub fn trigger<K: Resource>(obj: &K) -> Option<u64> {
    let meta = obj.meta();
    let mut hasher = DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    requested_at(obj).hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn object(generation: i64, requested: Option<&str>) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.generation = Some(generation);
        if let Some(r) = requested {
            cm.metadata.annotations =
                Some([(RECONCILE_REQUEST_ANNOTATION.to_string(), r.to_string())].into());
        }
        cm
    }

    #[test]
    fn an_annotation_only_change_triggers() {
        assert_ne!(
            trigger(&object(1, None)),
            trigger(&object(1, Some("2024-01-01T00:00:00Z")))
        );
        assert_ne!(
            trigger(&object(1, Some("2024-01-01T00:00:00Z"))),
            trigger(&object(1, Some("2024-01-01T00:00:01Z")))
        );
    }

    #[test]
    fn finalizers_and_deletion_trigger() {
        let mut with_finalizer = object(1, None);
        with_finalizer.metadata.finalizers = Some(vec!["finalizers.fluxcd.io".into()]);
        assert_ne!(trigger(&object(1, None)), trigger(&with_finalizer));
        let mut deleting = with_finalizer.clone();
        deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        assert_ne!(trigger(&with_finalizer), trigger(&deleting));
    }

    #[test]
    fn a_generation_change_triggers_and_nothing_else_does() {
        assert_ne!(trigger(&object(1, None)), trigger(&object(2, None)));
        let mut labelled = object(1, Some("x"));
        labelled.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        labelled.metadata.resource_version = Some("42".into());
        assert_eq!(trigger(&object(1, Some("x"))), trigger(&labelled));
    }

    #[test]
    fn requests_are_handled_once() {
        let obj = object(1, Some("t1"));
        assert!(is_requested(&obj, None));
        assert!(is_requested(&obj, Some("t0")));
        assert!(!is_requested(&obj, Some("t1")));
        assert_eq!(handled_request(&obj, Some("t0")).as_deref(), Some("t1"));
        assert_eq!(
            handled_request(&object(1, None), Some("t0")).as_deref(),
            Some("t0")
        );
    }

    #[test]
    fn jitter_stays_within_five_percent() {
        let base = Duration::from_secs(600);
        for _ in 0..1000 {
            let d = jitter(base);
            assert!(
                d >= Duration::from_secs(570) && d <= Duration::from_secs(630),
                "{d:?}"
            );
        }
    }

    #[test]
    fn suspend_defaults_to_false() {
        assert!(!is_suspended(None));
        assert!(is_suspended(Some(true)));
    }
}
