//! The controller loop every kind uses: a reflector-backed watch filtered by the shared [`trigger`]
//! (new generation, `requestedAt`, finalizers, deletion), the concurrency of `--concurrent`, errors that are
//! not reconcile failures logged (those are reported in status), and the finalizer around each run.
//!
//! Every watch, the kind's own and those of related kinds ([`watch_related`]), backs off on its own
//! ([`crate::backoff`]: soon when the server is unreachable, patiently when it answers with errors) and
//! hands its errors to [`Progress`] instead of to the controller: kube's controller pauses all its
//! triggers on an error of any one of them, so after an outage the errors the watches had queued were
//! delivered one per backoff period, for minutes, while nothing was reconciled. When the kind's watch
//! recovers from an outage, the objects whose last reconcile did not end Ready and current are
//! reconciled again at once (their retry may be an interval away, and a relist shows no change).

use std::{fmt::Debug, future::Future, hash::Hash, sync::Arc, time::Instant};

use driftless_api::meta::FINALIZER;
use futures::{Stream, StreamExt, channel::mpsc};
use kube::{
    Api, Client, Resource,
    core::NamespaceScope,
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

use crate::{backoff::backed_off, metrics::Metrics, progress::Progress, request::trigger};

/// How long a reconcile may run beyond the kind's own timeout before `/healthz` calls it wedged.
pub const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(120);

/// The watch `name` is receiving again: tells `progress`, and `recovered` when it had been failing.
fn delivered(progress: &Progress, name: &str, recovered: Option<&mpsc::UnboundedSender<()>>) {
    if progress.watch_ok(name) {
        info!(watch = %name, "watch recovered");
        if let Some(tx) = recovered {
            let _ = tx.unbounded_send(());
        }
    }
}

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
                delivered(&progress, &name, recovered.as_ref());
                Some(Ok(v))
            }
            Err(e) => {
                let message = e.to_string();
                let retry_within = crate::backoff::schedule(&e).ceiling;
                if progress.watch_failed(&name, &message, retry_within) {
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

/// `api` with a client of its own that tells `progress` the watch `name` is receiving whenever the API
/// server answers one of its requests with success: a watch that starts again after an outage delivers
/// nothing until something changes, but its start is answered.
fn reporting<K>(
    api: Api<K>,
    dyntype: &K::DynamicType,
    name: &str,
    progress: Arc<Progress>,
    recovered: Option<mpsc::UnboundedSender<()>>,
) -> Api<K>
where
    K: Resource,
    K::Scope: NamespaceScope,
{
    let namespace = api.namespace().map(str::to_string);
    let client = api.into_client();
    let default_namespace = client.default_namespace().to_string();
    let name = name.to_string();
    let service = tower::service_fn(move |req: axum::http::Request<kube::client::Body>| {
        let (client, name, progress, recovered) =
            (client.clone(), name.clone(), progress.clone(), recovered.clone());
        async move {
            let answer = client.send(req).await?;
            if answer.status().is_success() {
                delivered(&progress, &name, recovered.as_ref());
            }
            Ok::<_, kube::Error>(answer)
        }
    });
    let api = Api::all_with(Client::new(service, default_namespace), dyntype);
    match namespace {
        Some(ns) => api.constrain(&ns),
        None => api,
    }
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
    K::Scope: NamespaceScope,
{
    let (reader, writer) = reflector::store();
    let (recovered, resync) = mpsc::unbounded();
    let name = K::kind(&()).to_string();
    let api = reporting(api, &(), &name, progress.clone(), Some(recovered.clone()));
    let events = backed_off(watcher(api, config)).reflect(writer);
    let stream = observed(events, name, progress, Some(recovered))
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
    Other::Scope: NamespaceScope,
    I: 'static + IntoIterator<Item = ObjectRef<K>>,
    I::IntoIter: Send,
{
    let api = reporting(api, &dyntype, name, progress.clone(), None);
    let events = backed_off(watcher(api, config)).touched_objects();
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
