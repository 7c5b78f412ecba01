//! The controller loop every kind uses: a reflector-backed watch filtered by the shared [`trigger`]
//! (new generation, `requestedAt`, finalizers, deletion), the concurrency of `--concurrent`, errors that are
//! not reconcile failures logged (those are reported in status), and the finalizer around each run.
//!
//! Every watch, the kind's own and those of related kinds ([`watch_related`]), backs off on its own and
//! hands its errors to [`Progress`] instead of to the controller: kube's controller pauses all its
//! triggers on an error of any one of them, so after an outage the errors the watches had queued were
//! delivered one per backoff period, for minutes, while nothing was reconciled. When the kind's watch
//! recovers from an outage, the objects whose last reconcile did not end Ready and current are
//! reconciled again at once (their retry may be an interval away, and a relist shows no change).

use std::{fmt::Debug, future::Future, hash::Hash, sync::Arc, time::Instant};

use driftless_api::meta::FINALIZER;
use futures::{Stream, StreamExt, channel::mpsc};
use kube::{
    Api, Resource,
    runtime::{
        Controller, PredicateConfig, WatchStreamExt,
        controller::{self, Action},
        finalizer::{self, Event, finalizer},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use serde::{Serialize, de::DeserializeOwned};
use tracing::{debug, info, warn};

use crate::{metrics::Metrics, progress::Progress, request::trigger};

/// How long a reconcile may run beyond the kind's own timeout before `/healthz` calls it wedged.
pub const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(120);

/// `stream` with its errors handed to `progress` under `name` (logged once per outage) instead of
/// passed on; `recovered` is told when it delivers again after an outage.
fn observed<T, S>(
    stream: S,
    name: String,
    progress: Arc<Progress>,
    recovered: Option<mpsc::UnboundedSender<()>>,
) -> impl Stream<Item = Result<T, watcher::Error>> + Send + 'static
where
    T: Send + 'static,
    S: Stream<Item = Result<T, watcher::Error>> + Send + 'static,
{
    stream.filter_map(move |item| {
        let out = match item {
            Ok(v) => {
                if progress.watch_ok(&name) {
                    info!(watch = %name, "watch recovered");
                    if let Some(tx) = &recovered {
                        let _ = tx.unbounded_send(());
                    }
                }
                Some(Ok(v))
            }
            Err(e) => {
                let message = e.to_string();
                if progress.watch_failed(&name, &message) {
                    warn!(watch = %name, error = %message, "watch failed; retrying with backoff");
                } else {
                    debug!(watch = %name, error = %message, "watch still failing");
                }
                None
            }
        };
        futures::future::ready(out)
    })
}

/// Whether `obj`'s status says its last reconcile did not end Ready for its current generation and
/// request (or it has none).
fn unsettled<K: Serialize>(obj: &K) -> bool {
    let Ok(v) = serde_json::to_value(obj) else {
        return true;
    };
    let generation = v.pointer("/metadata/generation").and_then(|g| g.as_i64());
    let status = &v["status"];
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    let current = status["observedGeneration"].as_i64() == generation;
    let requested = v
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(driftless_api::meta::RECONCILE_REQUEST_ANNOTATION))
        .and_then(|r| r.as_str());
    let handled = requested.is_none() || status["lastHandledReconcileAt"].as_str() == requested;
    !(ready && current && handled)
}

/// A controller for `K` on `api` and the store of what it watches (for mapping other kinds to `K`). Its
/// watch reports to `progress`.
pub fn for_kind<K>(
    api: Api<K>,
    config: watcher::Config,
    concurrency: u16,
    progress: Arc<Progress>,
) -> (Controller<K>, Store<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let (recovered, resync) = mpsc::unbounded();
    let events = watcher(api, config).default_backoff().reflect(writer);
    let stream = observed(events, K::kind(&()).to_string(), progress, Some(recovered))
        .applied_objects()
        .predicate_filter(trigger, PredicateConfig::default());
    let store = reader.clone();
    let resync = resync.flat_map(move |()| {
        let unsettled: Vec<ObjectRef<K>> = store
            .state()
            .iter()
            .filter(|o| unsettled(o.as_ref()))
            .map(|o| ObjectRef::from_obj(o.as_ref()))
            .collect();
        info!(
            objects = unsettled.len(),
            "reconciling what the outage left unsettled"
        );
        futures::stream::iter(unsettled)
    });
    let controller = Controller::for_stream(stream, reader.clone())
        .with_config(controller::Config::default().concurrency(concurrency))
        .reconcile_on(resync);
    (controller, reader)
}

/// `ctrl`, also triggered for the objects `mapper` maps a change of an `Other` on `api` to. The watch
/// backs off on its own and reports to `progress` as `name`.
pub fn watch_related<K, Other, I>(
    ctrl: Controller<K>,
    name: &str,
    api: Api<Other>,
    dyntype: Other::DynamicType,
    config: watcher::Config,
    mapper: impl Fn(Other) -> I + Sync + Send + 'static,
    progress: Arc<Progress>,
) -> Controller<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Debug + Clone + Eq + Hash + Unpin,
    Other: Clone + Resource + DeserializeOwned + Debug + Send + 'static,
    Other::DynamicType: Debug + Clone + Eq + Hash,
    I: 'static + IntoIterator<Item = ObjectRef<K>>,
    I::IntoIter: Send,
{
    let events = watcher(api, config).default_backoff().touched_objects();
    ctrl.watches_stream_with(
        observed(events, name.to_string(), progress, None),
        mapper,
        dyntype,
    )
}

/// Drives a controller's results until the stream ends.
pub async fn drain<T, E1: std::error::Error + 'static, E2: std::error::Error + 'static>(
    results: impl Stream<Item = Result<T, controller::Error<E1, E2>>>,
) {
    results
        .for_each(|result| {
            if let Err(err) = result
                && !matches!(err, controller::Error::ReconcilerFailed(..))
            {
                warn!(error = %err, "controller error");
            }
            futures::future::ready(())
        })
        .await;
}

/// Runs `reconcile` under driftless's finalizer (`finalizers.fluxcd.io`), unwrapping the step errors so a
/// controller sees its own error type, and records how long it took in `metrics`. `timeout` is the
/// longest the kind's steps may take: past it and [`DEADLINE_MARGIN`], `/healthz` reports the run wedged.
pub async fn with_finalizer<K, E, F, Fut>(
    api: &Api<K>,
    metrics: &Metrics,
    obj: Arc<K>,
    timeout: std::time::Duration,
    reconcile: F,
) -> Result<Action, E>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
    E: std::error::Error + Send + 'static + From<Box<finalizer::Error<E>>>,
    F: FnOnce(Event<K>) -> Fut,
    Fut: Future<Output = Result<Action, E>>,
{
    let start = Instant::now();
    let (kind, name, ns) = (
        K::kind(&()).to_string(),
        obj.meta().name.clone().unwrap_or_default(),
        obj.meta().namespace.clone().unwrap_or_default(),
    );
    let _inflight = metrics
        .progress
        .start(format!("{kind}/{ns}/{name}"), timeout + DEADLINE_MARGIN);
    let result = finalizer(api, FINALIZER, obj, reconcile)
        .await
        .map_err(|e| match e {
            finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
            other => E::from(Box::new(other)),
        });
    metrics.observe_reconcile(&kind, &name, &ns, start.elapsed());
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn object(generation: i64, status: serde_json::Value, requested: Option<&str>) -> serde_json::Value {
        let annotations = requested
            .map(|r| serde_json::json!({driftless_api::meta::RECONCILE_REQUEST_ANNOTATION: r}))
            .unwrap_or(serde_json::json!({}));
        serde_json::json!({"metadata": {"name": "a", "generation": generation, "annotations": annotations},
            "status": status})
    }

    #[test]
    fn only_objects_not_ready_and_current_are_unsettled() {
        let ready = serde_json::json!({"observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True"}]});
        assert!(!unsettled(&object(2, ready.clone(), None)));
        assert!(unsettled(&object(3, ready.clone(), None)), "a new generation");
        assert!(
            unsettled(&object(2, ready.clone(), Some("now"))),
            "an unhandled request"
        );
        let mut handled = ready.clone();
        handled["lastHandledReconcileAt"] = "now".into();
        assert!(!unsettled(&object(2, handled, Some("now"))));
        let progressing = serde_json::json!({"observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "Unknown", "reason": "Progressing"}]});
        assert!(unsettled(&object(2, progressing, None)), "left mid-reconcile");
        assert!(unsettled(&ConfigMap::default()), "never reconciled");
    }
}
