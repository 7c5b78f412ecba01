//! Receivers: the reconciler (here, on the shared lifecycle) gives each Receiver its path, `/hook/` +
//! hex(sha256(token + name + namespace)), and Ready; the server on `--receiverAddr` ([`hook`]) verifies
//! each hook as its sender signs it ([`verify`]) and sets `reconcile.fluxcd.io/requestedAt` on every
//! resource the Receiver names, which makes them reconcile at once. A hook that does not verify is refused
//! before any API call.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use driftless_api::{
    meta::{
        conditions::{READY, RECONCILING, STALLED, reasons},
        parse_duration,
    },
    notification::{Receiver, ReceiverResource, ReceiverStatus},
};
use driftless_runtime::{
    conditions, controller as run_loop,
    error::{ErrorClass, ReconcileError, api_message},
    manager::{watched_api, watcher_config},
    reconcile::{Reconciler, Runtime, StatusWriter, error_policy, reconcile},
    request::is_suspended,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use sha2::{Digest, Sha256};

use crate::{Context, FIELD_MANAGER};

/// Flux's kind name.
pub const KIND: &str = "Receiver";

/// The receiver types this controller verifies.
pub const TYPES: [&str; 12] = [
    "gcr",
    "generic",
    "generic-hmac",
    "github",
    "gitlab",
    "bitbucket",
    "harbor",
    "dockerhub",
    "quay",
    "nexus",
    "acr",
    "cdevents",
];

/// A ready Receiver, as the hook server needs it.
#[derive(Clone, Debug)]
pub struct Entry {
    namespace: String,
    name: String,
    type_: String,
    token: String,
    events: Vec<String>,
    resources: Vec<ReceiverResource>,
    filter: Option<String>,
}

/// Ready Receivers by webhook path, kept by the reconciler.
#[derive(Default)]
pub struct Paths(RwLock<HashMap<String, Entry>>);

impl Paths {
    fn set(&self, path: String, entry: Entry) {
        let mut paths = self.0.write().expect("paths lock");
        paths.retain(|_, e| !(e.namespace == entry.namespace && e.name == entry.name));
        paths.insert(path, entry);
    }

    /// Takes down the path of `obj`: it triggers nothing any more.
    fn remove(&self, obj: &Receiver) {
        let (namespace, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        self.0
            .write()
            .expect("paths lock")
            .retain(|_, e| !(e.namespace == namespace && e.name == name));
    }

    fn get(&self, path: &str) -> Option<Entry> {
        self.0.read().expect("paths lock").get(path).cloned()
    }
}

/// `/hook/` + hex(sha256(token + name + namespace)), Flux's path.
pub fn webhook_path(token: &str, name: &str, namespace: &str) -> String {
    format!(
        "/hook/{}",
        hex::encode(Sha256::digest(format!("{token}{name}{namespace}").as_bytes()))
    )
}

/// A reconcile failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token Secret does not exist.
    #[error("unable to read token from secret '{namespace}/{name}': not found")]
    TokenSecretNotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The token Secret has no (or an empty) `token`.
    #[error("invalid '{namespace}/{name}' secret data: required field 'token'")]
    TokenMissing {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The spec cannot work.
    #[error("{0}")]
    InvalidSpec(String),
    /// The API server failed.
    #[error("kubernetes API: {}", api_message(.0))]
    Kube(#[from] kube::Error),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    // NB: boxed to break the error cycle
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<Error>>),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::TokenSecretNotFound { .. } | Error::TokenMissing { .. } => reasons::TOKEN_NOT_FOUND,
            Error::InvalidSpec(_) => reasons::INVALID_SPEC,
            Error::Kube(_) | Error::Finalizer(_) => reasons::RECONCILIATION_FAILED,
        }
    }

    fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidSpec(_) => ErrorClass::Stalled,
            _ => ErrorClass::Transient,
        }
    }
}

/// Reconciles Receivers until the stream ends.
pub async fn run(ctx: Arc<Context>, paths: Arc<Paths>) {
    let api: Api<Receiver> = watched_api(ctx.client.clone(), &ctx.config);
    let (ctrl, _) = run_loop::for_kind(
        api,
        watcher_config(&ctx.config),
        ctx.config.concurrent,
        ctx.metrics.progress.clone(),
    );
    let receivers = Arc::new(Receivers { ctx, paths });
    run_loop::drain(ctrl.run(reconcile::<Receivers>, error_policy::<Receivers>, receivers)).await;
}

/// The Receiver reconciler: fills the path table the hook server reads.
pub struct Receivers {
    ctx: Arc<Context>,
    paths: Arc<Paths>,
}

async fn token(ctx: &Context, obj: &Receiver) -> Result<String, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj
        .spec
        .secret_ref
        .as_ref()
        .map(|r| r.name.clone())
        .ok_or_else(|| {
            Error::InvalidSpec("spec.secretRef is required: the Secret holding the token".into())
        })?;
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&name)
        .await
        .map_err(Error::Kube)?
        .ok_or_else(|| Error::TokenSecretNotFound {
            namespace: ns.clone(),
            name: name.clone(),
        })?;
    secret
        .data
        .unwrap_or_default()
        .get("token")
        .map(|t| String::from_utf8_lossy(&t.0).trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::TokenMissing {
            namespace: ns.clone(),
            name: name.clone(),
        })
}

impl Reconciler for Receivers {
    type Object = Receiver;
    type Status = ReceiverStatus;
    /// The webhook path.
    type Outcome = String;
    type Error = Error;
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;

    fn runtime(&self) -> Runtime<'_> {
        Runtime {
            client: &self.ctx.client,
            recorder: &self.ctx.recorder,
            metrics: &self.ctx.metrics,
            retry: &self.ctx.retry,
        }
    }

    fn status(obj: &Receiver) -> Option<&ReceiverStatus> {
        obj.status.as_ref()
    }

    fn suspended(obj: &Receiver) -> bool {
        is_suspended(obj.spec.suspend)
    }

    fn interval(obj: &Receiver) -> Result<Duration, Error> {
        parse_duration(obj.spec.interval.as_deref().unwrap_or(DEFAULT_INTERVAL))
            .map_err(|e| Error::InvalidSpec(e.to_string()))
    }

    fn timeout(_obj: &Receiver) -> Duration {
        // reading a Secret and compiling expressions: each API call is bounded well within this
        Duration::from_secs(60)
    }

    async fn run(
        &self,
        obj: &Receiver,
        _status: &mut ReceiverStatus,
        _writer: &mut StatusWriter<Receiver, ReceiverStatus>,
    ) -> Result<String, Error> {
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        if !TYPES.contains(&obj.spec.type_.as_str()) {
            return Err(Error::InvalidSpec(format!(
                "receiver type '{}' is not supported by driftless yet (supported: {})",
                obj.spec.type_,
                TYPES.join(", ")
            )));
        }
        let filters = obj
            .spec
            .resource_filter
            .iter()
            .chain(obj.spec.resources.iter().filter_map(|r| r.filter.as_ref()))
            .filter(|f| !f.is_empty());
        for f in filters {
            driftless_runtime::cel::compile(f)
                .map_err(|e| Error::InvalidSpec(format!("invalid CEL expression '{f}': {e}")))?;
        }
        let token = token(&self.ctx, obj).await?;
        let path = webhook_path(&token, &name, &ns);
        self.paths.set(
            path.clone(),
            Entry {
                namespace: ns,
                name,
                type_: obj.spec.type_.clone(),
                token,
                events: obj.spec.events.clone().unwrap_or_default(),
                resources: obj.spec.resources.clone(),
                filter: obj.spec.resource_filter.clone().filter(|f| !f.is_empty()),
            },
        );
        Ok(path)
    }

    fn summarize(obj: &Receiver, status: &mut ReceiverStatus, result: &Result<String, Error>) {
        summarize(obj, status, result);
    }

    fn after(&self, obj: &Receiver, _status: &ReceiverStatus, result: &Result<String, Error>) {
        if result.is_err() {
            // a Receiver that is not Ready triggers nothing
            self.paths.remove(obj);
        }
    }

    fn on_suspend(&self, obj: &Receiver) {
        self.paths.remove(obj);
    }

    async fn cleanup(&self, obj: &Receiver) -> Result<(), Error> {
        self.paths.remove(obj);
        Ok(())
    }
}

/// Flux's default `spec.interval` of a Receiver.
const DEFAULT_INTERVAL: &str = "10m";

/// The conditions after a run: Ready with the path it serves, or Ready=False with the reason (and
/// Stalled when only a spec change helps).
fn summarize(obj: &Receiver, status: &mut ReceiverStatus, result: &Result<String, Error>) {
    let generation = obj.metadata.generation;
    conditions::delete(&mut status.conditions, RECONCILING);
    match result {
        Ok(path) => {
            conditions::delete(&mut status.conditions, STALLED);
            conditions::mark_true(
                &mut status.conditions,
                READY,
                reasons::SUCCEEDED,
                &format!("Receiver initialized for path: {path}"),
                generation,
            );
            status.webhook_path = Some(path.clone());
        }
        Err(e) => {
            conditions::mark_failed_run(
                &mut status.conditions,
                e,
                "Reconciliation in progress",
                generation,
            );
        }
    }
}

pub mod hook;
pub mod verify;

pub use hook::router;
pub use verify::{Verdict, verify};

#[cfg(test)]
mod tests {
    use super::*;

    fn status_after(result: Result<String, Error>) -> ReceiverStatus {
        let mut obj = Receiver::new("hook", Default::default());
        obj.metadata.generation = Some(2);
        let mut status = ReceiverStatus::default();
        conditions::mark_progressing(&mut status.conditions, "reconciliation in progress", Some(2));
        summarize(&obj, &mut status, &result);
        status
    }

    fn condition(status: &ReceiverStatus, type_: &str) -> Option<(String, String)> {
        conditions::get(&status.conditions, type_).map(|c| (c.status.clone(), c.reason.clone()))
    }

    #[test]
    fn a_served_path_is_ready_and_a_failure_says_why() {
        let ok = status_after(Ok("/hook/abc".into()));
        assert_eq!(condition(&ok, READY), Some(("True".into(), "Succeeded".into())));
        assert_eq!(
            conditions::get(&ok.conditions, READY).unwrap().message,
            "Receiver initialized for path: /hook/abc"
        );
        assert_eq!(ok.webhook_path.as_deref(), Some("/hook/abc"));
        assert_eq!(condition(&ok, RECONCILING), None);

        let missing = status_after(Err(Error::TokenSecretNotFound {
            namespace: "ns".into(),
            name: "token".into(),
        }));
        assert_eq!(
            condition(&missing, READY),
            Some(("False".into(), "TokenNotFound".into()))
        );
        assert_eq!(
            condition(&missing, RECONCILING),
            Some(("True".into(), "ProgressingWithRetry".into())),
            "retried"
        );
        assert_eq!(condition(&missing, STALLED), None);

        let invalid = status_after(Err(Error::InvalidSpec("bad type".into())));
        assert_eq!(
            condition(&invalid, STALLED),
            Some(("True".into(), "InvalidSpec".into()))
        );
        assert_eq!(
            condition(&invalid, READY),
            Some(("False".into(), "InvalidSpec".into()))
        );
        assert_eq!(condition(&invalid, RECONCILING), None, "stalled: not retried");
    }

    #[test]
    fn the_path_is_flux_s() {
        let want = format!(
            "/hook/{}",
            hex::encode(Sha256::digest(b"s3cretreceiverflux-system"))
        );
        assert_eq!(webhook_path("s3cret", "receiver", "flux-system"), want);
    }
}
