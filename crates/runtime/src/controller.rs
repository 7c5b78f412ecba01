//! The controller loop every kind uses: a reflector-backed watch filtered by the shared [`trigger`]
//! (new generation, `requestedAt`, finalizers, deletion), the concurrency of `--concurrent`, errors that are
//! not reconcile failures logged (those are reported in status), and the finalizer around each run.

use std::{fmt::Debug, future::Future, sync::Arc, time::Instant};

use driftless_api::meta::FINALIZER;
use futures::{Stream, StreamExt};
use kube::{
    Api, Resource,
    runtime::{
        Controller, PredicateConfig, WatchStreamExt,
        controller::{self, Action},
        finalizer::{self, Event, finalizer},
        reflector::{self, Store},
        watcher,
    },
};
use serde::{Serialize, de::DeserializeOwned};
use tracing::warn;

use crate::{metrics::Metrics, request::trigger};

/// A controller for `K` on `api` and the store of what it watches (for mapping other kinds to `K`).
pub fn for_kind<K>(api: Api<K>, config: watcher::Config, concurrency: u16) -> (Controller<K>, Store<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(trigger, PredicateConfig::default());
    let controller = Controller::for_stream(stream, reader.clone())
        .with_config(controller::Config::default().concurrency(concurrency));
    (controller, reader)
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
/// controller sees its own error type, and records how long it took in `metrics`.
pub async fn with_finalizer<K, E, F, Fut>(
    api: &Api<K>,
    metrics: &Metrics,
    obj: Arc<K>,
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
    let result = finalizer(api, FINALIZER, obj, reconcile)
        .await
        .map_err(|e| match e {
            finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
            other => E::from(Box::new(other)),
        });
    metrics.observe_reconcile(&kind, &name, &ns, start.elapsed());
    result
}
