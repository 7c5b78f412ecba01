//! The reconcile lifecycle every kind shares, after Flux's `SerialPatcher` and `summarize`: a kind
//! supplies its steps ([`Reconciler::run`]) and a pure function from their outcome or error to its
//! conditions ([`Reconciler::summarize`]); the lifecycle owns the rest, the same for every kind:
//!
//! - the finalizer (`finalizers.fluxcd.io`) and the kind's cleanup on deletion;
//! - `spec.suspend`: nothing is done, nothing written;
//! - a new generation shows `Reconciling`/`Ready=Unknown Progressing` before the steps run;
//! - `observedGeneration` and `lastHandledReconcileAt`;
//! - on failure: a Warning event (once per new failure) and a log line;
//! - the status writes, through one [`StatusWriter`] that keeps what it last wrote, so a steady-state
//!   reconcile writes nothing and a kind's own progress writes (a new revision) cost one request each;
//! - metrics (duration, errors) and the requeue: the jittered `spec.interval` after success, the
//!   error class's policy after failure ([`error_policy`]).

use std::{fmt::Debug, future::Future, sync::Arc, time::Duration};

use driftless_api::meta::ObjectStatus;
use kube::{
    Api, Client, Resource, ResourceExt,
    core::NamespaceResourceScope,
    runtime::{
        controller::Action,
        finalizer::{self, Event},
    },
};
use serde::{Serialize, de::DeserializeOwned};
use tracing::{Instrument, info, warn};

use crate::{
    conditions,
    controller::with_finalizer,
    error::{ReconcileError, RetryPolicy},
    events::Recorder,
    metrics::Metrics,
    request::handled_request,
    status::apply_status,
};

/// What the lifecycle needs of a controller: its client, event recorder, metrics and requeue policy.
pub struct Runtime<'a> {
    /// The controller's client.
    pub client: &'a Client,
    /// Its event recorder.
    pub recorder: &'a Recorder,
    /// Its metrics.
    pub metrics: &'a Metrics,
    /// Its requeue policy.
    pub retry: &'a RetryPolicy,
}

/// Writes one object's status by server-side apply, keeping what it last wrote (or read): a write
/// whose status equals that, timestamps aside, is skipped.
pub struct StatusWriter<K, S> {
    api: Api<K>,
    name: String,
    field_manager: &'static str,
    last: S,
}

impl<K, S> StatusWriter<K, S>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize + Clone,
{
    /// A writer for the object `name` on `api` whose status is `current`.
    pub fn new(api: Api<K>, name: String, field_manager: &'static str, current: S) -> Self {
        Self {
            api,
            name,
            field_manager,
            last: current,
        }
    }

    /// Writes `status` unless it is what was last written. Returns whether it wrote.
    pub async fn write(&mut self, status: &S) -> Result<bool, kube::Error> {
        let wrote = apply_status(
            &self.api,
            &self.name,
            self.field_manager,
            Some(&self.last),
            status,
        )
        .await?;
        self.last = status.clone();
        Ok(wrote)
    }
}

/// A kind's part of the lifecycle.
pub trait Reconciler: Send + Sync + Sized + 'static {
    /// The kind.
    type Object: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + 'static;
    /// Its status.
    type Status: ObjectStatus;
    /// What a successful run of the steps produced, for [`Reconciler::summarize`].
    type Outcome: Send;
    /// What failed; its reason and class decide the conditions and the requeue.
    type Error: ReconcileError
        + From<kube::Error>
        + From<Box<finalizer::Error<Self::Error>>>
        + Send
        + Sync
        + 'static;

    /// The field manager of status writes.
    const FIELD_MANAGER: &'static str;

    /// The controller's client, recorder, metrics and requeue policy.
    fn runtime(&self) -> Runtime<'_>;
    /// The object's status, if it has one.
    fn status(obj: &Self::Object) -> Option<&Self::Status>;
    /// `spec.suspend`.
    fn suspended(obj: &Self::Object) -> bool;
    /// `spec.interval`: when to reconcile again after a success.
    fn interval(obj: &Self::Object) -> Result<Duration, Self::Error>;
    /// The longest the steps may take; `/healthz` reports a run past it (and a margin) as wedged.
    fn timeout(obj: &Self::Object) -> Duration;
    /// `spec.retryInterval`, for kinds that have one: when to retry a transient failure.
    fn retry_interval(_obj: &Self::Object) -> Option<Duration> {
        None
    }
    /// When to run again after a success, when the outcome knows better than `spec.interval` (an
    /// ImageRepository scanned recently waits only for the rest of its interval).
    fn next_run(_outcome: &Self::Outcome) -> Option<Duration> {
        None
    }

    /// The kind's steps. They may write progress through `writer` (a new revision being applied).
    fn run<'a>(
        &'a self,
        obj: &'a Self::Object,
        status: &'a mut Self::Status,
        writer: &'a mut StatusWriter<Self::Object, Self::Status>,
    ) -> impl Future<Output = Result<Self::Outcome, Self::Error>> + Send + 'a;

    /// The conditions after a run (pure): `observedGeneration` and `lastHandledReconcileAt` are set
    /// already.
    fn summarize(obj: &Self::Object, status: &mut Self::Status, result: &Result<Self::Outcome, Self::Error>);

    /// Side effects after a run, before the status is written: the kind's own events and logs (the
    /// failure event and log are the lifecycle's).
    fn after(
        &self,
        _obj: &Self::Object,
        _status: &Self::Status,
        _result: &Result<Self::Outcome, Self::Error>,
    ) {
    }

    /// What to do when the object is suspended (nothing is reconciled, nothing written).
    fn on_suspend(&self, _obj: &Self::Object) {}

    /// On deletion, before the finalizer goes.
    fn cleanup<'a>(
        &'a self,
        obj: &'a Self::Object,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'a;
}

/// Reconciles `obj` with `r`: the `reconcile` of kube's `Controller::run`.
pub async fn reconcile<R: Reconciler>(obj: Arc<R::Object>, r: Arc<R>) -> Result<Action, R::Error> {
    let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    let span = tracing::info_span!("reconcile", kind = %R::Object::kind(&()), name = %name, namespace = %ns);
    async {
        let rt = r.runtime();
        let api: Api<R::Object> = Api::namespaced(rt.client.clone(), &ns);
        // NB: the watch cache may not have seen this controller's last status write yet (a run queued
        // while the previous one was writing starts from the copy before it), and the status is written
        // whole: a stale start would undo what the last run recorded (an inventory, a release's
        // conditions and history). One read makes each run start from what the server has.
        let Some(obj) = api.get_opt(&name).await?.map(Arc::new) else {
            return Ok(Action::await_change());
        };
        let timeout = R::timeout(&obj);
        with_finalizer(&api, rt.metrics, obj, timeout, |event| async {
            match event {
                Event::Apply(obj) => apply(&*r, api.clone(), &obj).await,
                Event::Cleanup(obj) => {
                    r.cleanup(&obj).await?;
                    Ok(Action::await_change())
                }
            }
        })
        .await
    }
    .instrument(span)
    .await
}

/// The requeue after a failed reconcile (kube's `error_policy`): counted, then by the error's class.
pub fn error_policy<R: Reconciler>(obj: Arc<R::Object>, err: &R::Error, r: Arc<R>) -> Action {
    let rt = r.runtime();
    rt.metrics.count_error(&R::Object::kind(&()), err.reason());
    let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    rt.retry.on_error(&key, err.class(), R::retry_interval(&obj))
}

async fn apply<R: Reconciler>(r: &R, api: Api<R::Object>, obj: &R::Object) -> Result<Action, R::Error> {
    let rt = r.runtime();
    if R::suspended(obj) {
        info!("reconciliation is suspended");
        r.on_suspend(obj);
        return Ok(Action::await_change());
    }
    let interval = R::interval(obj)?;
    let generation = obj.meta().generation;
    let old = R::status(obj).cloned().unwrap_or_default();
    let mut status = old.clone();
    let mut writer = StatusWriter::new(api, obj.name_any(), R::FIELD_MANAGER, old.clone());
    if status.observed_generation() != generation {
        // a new generation: tell kstatus we are on it
        conditions::mark_progressing(status.conditions_mut(), "reconciliation in progress", generation);
        writer.write(&status).await?;
    }
    let result = r.run(obj, &mut status, &mut writer).await;
    status.set_observed_generation(generation);
    status.reconcile_request_mut().last_handled_reconcile_at =
        handled_request(obj, old.reconcile_request().last_handled_reconcile_at.as_deref());
    R::summarize(obj, &mut status, &result);
    if let Err(err) = &result {
        let message = err.to_string();
        rt.recorder
            .record_failure(&obj.object_ref(&()), old.conditions(), err.reason(), &message);
        warn!(reason = err.reason(), error = %message, "reconciliation failed");
    }
    r.after(obj, &status, &result);
    writer.write(&status).await?;
    let next = R::next_run(&result?).unwrap_or(interval);
    let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    Ok(rt.retry.on_success(&key, next))
}
