//! ImageUpdateAutomation on the shared reconcile lifecycle (`steps.rs`: policies → checkout → update
//! → commit → push). Here: the kind's errors with Flux's reasons, the pure `summarize`, the event of a
//! push, and the watches — an automation runs at once when an ImagePolicy of its namespace changes
//! (the link is the markers in Git, so any automation there may be affected) or its GitRepository does.

pub mod steps;

use std::{sync::Arc, time::Duration};

use driftless_api::{
    image::{ImagePolicy, ImageUpdateAutomation, ImageUpdateAutomationStatus},
    meta::{
        conditions::{READY, RECONCILING, STALLED, reasons},
        parse_duration,
    },
};
use driftless_runtime::{
    conditions, controller as run_loop,
    error::{ErrorClass, ReconcileError},
    events::Severity,
    manager::{watched_api, watcher_config},
    reconcile::{Reconciler, Runtime, StatusWriter, error_policy, reconcile},
    request::is_suspended,
    sources::SourceRef,
};
use kube::{Api, Resource, ResourceExt, runtime::reflector::ObjectRef};
use tracing::info;

use crate::{Context, FIELD_MANAGER};

/// Flux's Ready message of a successful run.
pub const READY_MESSAGE: &str = "repository up-to-date";

/// A failed step, with Flux's reasons and messages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source is not a GitRepository, `spec.git` is missing, or asks for what is not supported.
    #[error("{0}")]
    InvalidSourceConfig(String),
    /// The GitRepository may not be used from here.
    #[error("{0}")]
    AccessDenied(String),
    /// The GitRepository or its credentials could not be had.
    #[error("failed to configure source manager: {0}")]
    SourceManager(String),
    /// `spec.policySelector` is not a valid selector.
    #[error("failed to get policies: {0}")]
    InvalidPolicySelector(String),
    /// `spec.update` names a strategy that does not exist.
    #[error("{0}")]
    InvalidUpdateStrategy(String),
    /// Cloning the branch failed.
    #[error("failed to checkout source: {0}")]
    Checkout(String),
    /// The files could not be updated (not YAML, a marker naming a missing policy).
    #[error("failed to apply policies: {0}")]
    Update(String),
    /// The commit message template cannot be used; only a spec change helps.
    #[error("failed to update source: {0}")]
    Template(#[source] crate::message::Error),
    /// Committing or pushing failed.
    #[error("failed to update source: {0}")]
    Push(String),
    /// Talking to the API server failed.
    #[error("kubernetes API: {}", driftless_runtime::error::api_message(.0))]
    Kube(#[from] kube::Error),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    // NB: boxed to break the error cycle
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<Error>>),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::InvalidSourceConfig(_) => "InvalidSourceConfiguration",
            Error::AccessDenied(_) => reasons::ACCESS_DENIED,
            Error::SourceManager(_) => "SourceManagerFailed",
            Error::InvalidPolicySelector(_) => "InvalidPolicySelector",
            Error::InvalidUpdateStrategy(_) => "InvalidUpdateStrategy",
            Error::Checkout(_) | Error::Push(_) => "GitOperationFailed",
            Error::Template(crate::message::Error::RemovedField(_)) => "RemovedTemplateField",
            Error::Template(_) => "GitOperationFailed",
            Error::Update(_) => "UpdateFailed",
            Error::Kube(_) | Error::Finalizer(_) => reasons::RECONCILIATION_FAILED,
        }
    }

    fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidSourceConfig(_)
            | Error::AccessDenied(_)
            | Error::InvalidPolicySelector(_)
            | Error::InvalidUpdateStrategy(_)
            | Error::Template(_) => ErrorClass::Stalled,
            _ => ErrorClass::Transient,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The commit pushed, if one was.
    pub pushed: Option<Pushed>,
}

/// A pushed commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// Its SHA-1.
    pub commit: String,
    /// The branch it went to.
    pub branch: String,
    /// The refspec it also went to.
    pub refspec: Option<String>,
    /// Its message.
    pub message: String,
}

impl Pushed {
    /// Flux's event text of a push.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "pushed commit '{}' to branch '{}'",
            &self.commit[..self.commit.len().min(7)],
            self.branch
        );
        if let Some(r) = &self.refspec {
            s.push_str(&format!(" and refspecs '{r}'"));
        }
        if !self.message.is_empty() {
            s.push('\n');
            s.push_str(&self.message);
        }
        s
    }
}

/// The GitRepository `obj` checks out.
pub fn source_ref(obj: &ImageUpdateAutomation) -> SourceRef {
    let r = &obj.spec.source_ref;
    SourceRef {
        kind: r.kind.clone(),
        namespace: r
            .namespace
            .clone()
            .unwrap_or_else(|| obj.namespace().unwrap_or_default()),
        name: r.name.clone(),
    }
}

/// Runs the ImageUpdateAutomation controller until its stream ends.
pub async fn run(ctx: Arc<Context>) {
    let api: Api<ImageUpdateAutomation> = watched_api(ctx.client.clone(), &ctx.config);
    let progress = ctx.metrics.progress.clone();
    let (ctrl, store) = run_loop::for_kind(
        api,
        watcher_config(&ctx.config),
        ctx.config.concurrent,
        progress.clone(),
    );
    let ctrl = driftless_runtime::sources::watch_sources(
        ctrl,
        &ctx.client,
        &ctx.config,
        &["GitRepository"],
        store.clone(),
        source_ref,
        progress.clone(),
    );
    let policies: Api<ImagePolicy> = watched_api(ctx.client.clone(), &ctx.config);
    let ctrl = run_loop::watch_related(
        ctrl,
        "ImagePolicy",
        policies,
        (),
        kube::runtime::watcher::Config::default(),
        move |policy: ImagePolicy| {
            let ns = policy.namespace().unwrap_or_default();
            store
                .state()
                .into_iter()
                .filter(|a| a.namespace().as_deref() == Some(ns.as_str()))
                .map(|a| ObjectRef::from_obj(a.as_ref()))
                .collect::<Vec<_>>()
        },
        progress,
    );
    let automations = Arc::new(Automations(ctx));
    run_loop::drain(ctrl.run(reconcile::<Automations>, error_policy::<Automations>, automations)).await;
}

/// The ImageUpdateAutomation reconciler.
pub struct Automations(pub Arc<Context>);

impl Reconciler for Automations {
    type Object = ImageUpdateAutomation;
    type Status = ImageUpdateAutomationStatus;
    type Outcome = Outcome;
    type Error = Error;
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;

    fn runtime(&self) -> Runtime<'_> {
        self.0.runtime()
    }

    fn status(obj: &ImageUpdateAutomation) -> Option<&ImageUpdateAutomationStatus> {
        obj.status.as_ref()
    }

    fn suspended(obj: &ImageUpdateAutomation) -> bool {
        is_suspended(obj.spec.suspend)
    }

    fn interval(obj: &ImageUpdateAutomation) -> Result<Duration, Error> {
        parse_duration(&obj.spec.interval).map_err(|e| Error::InvalidSourceConfig(e.to_string()))
    }

    fn timeout(_obj: &ImageUpdateAutomation) -> Duration {
        // NB: clone, update and up to three pushes, each bounded by the GitRepository's timeout
        Duration::from_secs(600)
    }

    async fn run(
        &self,
        obj: &ImageUpdateAutomation,
        status: &mut ImageUpdateAutomationStatus,
        _writer: &mut StatusWriter<ImageUpdateAutomation, ImageUpdateAutomationStatus>,
    ) -> Result<Outcome, Error> {
        steps::run(obj, &self.0, status).await
    }

    fn summarize(
        obj: &ImageUpdateAutomation,
        status: &mut ImageUpdateAutomationStatus,
        result: &Result<Outcome, Error>,
    ) {
        summarize(obj, status, result);
    }

    fn after(
        &self,
        obj: &ImageUpdateAutomation,
        _status: &ImageUpdateAutomationStatus,
        result: &Result<Outcome, Error>,
    ) {
        let Ok(outcome) = result else {
            return;
        };
        let was_ready = obj
            .status
            .as_ref()
            .is_some_and(|s| conditions::is_true(&s.conditions, READY));
        let message = match &outcome.pushed {
            Some(p) => p.summary(),
            None if !was_ready => READY_MESSAGE.to_string(),
            None => return,
        };
        self.0.recorder.record(
            &obj.object_ref(&()),
            Severity::Info,
            reasons::SUCCEEDED,
            &message,
            Default::default(),
        );
        info!("{message}");
    }

    async fn cleanup(&self, _obj: &ImageUpdateAutomation) -> Result<(), Error> {
        Ok(())
    }
}

/// The conditions after a run.
fn summarize(
    obj: &ImageUpdateAutomation,
    status: &mut ImageUpdateAutomationStatus,
    result: &Result<Outcome, Error>,
) {
    let generation = obj.metadata.generation;
    conditions::delete(&mut status.conditions, RECONCILING);
    match result {
        Ok(_) => {
            conditions::delete(&mut status.conditions, STALLED);
            conditions::mark_true(
                &mut status.conditions,
                READY,
                reasons::SUCCEEDED,
                READY_MESSAGE,
                generation,
            );
        }
        Err(e) => {
            // NB: a failure a retry may cure ends an earlier stall
            conditions::delete(&mut status.conditions, STALLED);
            conditions::mark_failed_run(
                &mut status.conditions,
                e,
                "reconciliation in progress",
                generation,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use driftless_api::image::{CrossNamespaceSourceReference, ImageUpdateAutomationSpec};

    use super::*;

    fn automation() -> ImageUpdateAutomation {
        let mut obj = ImageUpdateAutomation::new(
            "auto",
            ImageUpdateAutomationSpec {
                source_ref: CrossNamespaceSourceReference {
                    kind: "GitRepository".into(),
                    name: "fleet".into(),
                    ..Default::default()
                },
                interval: "1m".into(),
                ..Default::default()
            },
        );
        obj.metadata.namespace = Some("flux-system".into());
        obj.metadata.generation = Some(3);
        obj
    }

    #[test]
    fn a_push_is_summarised_as_flux_does() {
        let p = Pushed {
            commit: "0123456789abcdef".into(),
            branch: "main".into(),
            refspec: None,
            message: "Update web".into(),
        };
        assert_eq!(
            p.summary(),
            "pushed commit '0123456' to branch 'main'\nUpdate web"
        );
        let p = Pushed {
            refspec: Some("refs/heads/main:refs/heads/auto".into()),
            message: String::new(),
            ..p
        };
        assert_eq!(
            p.summary(),
            "pushed commit '0123456' to branch 'main' and refspecs 'refs/heads/main:refs/heads/auto'"
        );
    }

    #[test]
    fn conditions_say_up_to_date_or_what_to_fix() {
        let obj = automation();
        let mut status = ImageUpdateAutomationStatus::default();
        summarize(&obj, &mut status, &Ok(Outcome::default()));
        let ready = conditions::get(&status.conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.message.as_str()),
            ("True", READY_MESSAGE)
        );

        let removed = Error::Template(crate::message::Error::RemovedField(".Updated".into()));
        summarize(&obj, &mut status, &Err(removed));
        let ready = conditions::get(&status.conditions, READY).unwrap();
        assert_eq!(ready.reason, "RemovedTemplateField");
        assert!(conditions::is_true(&status.conditions, STALLED));

        let push = Error::Push("push rejected".into());
        summarize(&obj, &mut status, &Err(push));
        let ready = conditions::get(&status.conditions, READY).unwrap();
        assert_eq!(
            (ready.reason.as_str(), ready.message.as_str()),
            ("GitOperationFailed", "failed to update source: push rejected")
        );
        assert!(conditions::get(&status.conditions, STALLED).is_none());
        assert!(conditions::is_true(&status.conditions, RECONCILING));
    }
}
