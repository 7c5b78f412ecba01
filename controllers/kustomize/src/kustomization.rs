//! Kustomization: `source → fetch → build → apply → prune → status`, Flux's order. A failure before the
//! apply finishes prunes nothing and leaves `lastAppliedRevision` as it was.

use std::{collections::BTreeMap, path::Path, sync::Arc, time::Instant};

use driftless_api::{
    kustomize::{Kustomization, KustomizationStatus, PostBuild, ResourceInventory},
    meta::{
        conditions::{HEALTHY, READY, RECONCILING, STALLED, reasons},
        format_duration, parse_duration,
    },
};
use driftless_runtime::{
    conditions, controller as run_loop,
    error::{ErrorClass, ReconcileError, api_message, is_unavailable},
    events::Severity,
    manager::{watched_api, watcher_config},
    reconcile::{Reconciler, Runtime, StatusWriter, error_policy, reconcile},
    request::is_suspended,
};
use driftless_ssa::{
    ResourceManager,
    health::{Expressions, Rules, Target, WaitError, WaitOptions},
    inventory_ref,
};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{
    Api, Resource, ResourceExt,
    api::DynamicObject,
    core::GroupVersionKind,
    discovery::ApiResource,
    runtime::{reflector::ObjectRef, watcher},
};
use serde_json::{Value, json};
use tracing::info;

use crate::{Context, FIELD_MANAGER};

/// Flux's kind name.
pub const KIND: &str = "Kustomization";
/// Owner label: the Kustomization's name.
pub const NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";
/// Owner label: the Kustomization's namespace.
pub const NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";
/// The reason of a health check stopped by a new source revision.
pub const HEALTH_CHECK_CANCELED: &str = "HealthCheckCanceled";
/// The annotations that put an object in a sync wave: driftless's, then Argo CD's.
pub const WAVE_ANNOTATIONS: [&str; 2] = ["driftless.io/wave", "argocd.argoproj.io/sync-wave"];

/// A failed step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source or its artifact is missing, or the download failed.
    #[error("{0}")]
    Artifact(String),
    /// The overlay does not build.
    #[error("{0}")]
    Build(String),
    /// The spec cannot work.
    #[error("{0}")]
    InvalidSpec(String),
    /// Applying failed.
    #[error("{0}")]
    Apply(String),
    /// Pruning failed.
    #[error("{0}")]
    Prune(String),
    /// A dependency is not ready; look again after `retry`.
    #[error("{message}")]
    DependencyNotReady {
        /// What is not ready.
        message: String,
        /// `--requeue-dependency`.
        retry: std::time::Duration,
    },
    /// The applied objects did not become healthy.
    #[error("{0}")]
    HealthCheck(String),
    /// A new source revision arrived during the health check; reconcile it at once.
    #[error("{0}")]
    HealthCheckCanceled(String),
    /// Talking to the API server failed.
    #[error("kubernetes API: {}", api_message(.0))]
    Kube(#[from] kube::Error),
    /// The API server did not answer or was overloaded in a step that fails with `reason`.
    #[error("{message}")]
    Unavailable {
        /// The step's reason (`ReconciliationFailed`, `PruneFailed`).
        reason: &'static str,
        /// What failed.
        message: String,
    },
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<Error>>),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::Artifact(_) => reasons::ARTIFACT_FAILED,
            Error::Build(_) => reasons::BUILD_FAILED,
            Error::InvalidSpec(_) => reasons::INVALID_SPEC,
            Error::Prune(_) => reasons::PRUNE_FAILED,
            Error::DependencyNotReady { .. } => reasons::DEPENDENCY_NOT_READY,
            Error::HealthCheck(_) => reasons::HEALTH_CHECK_FAILED,
            Error::HealthCheckCanceled(_) => HEALTH_CHECK_CANCELED,
            Error::Apply(_) | Error::Kube(_) | Error::Finalizer(_) => reasons::RECONCILIATION_FAILED,
            Error::Unavailable { reason, .. } => reason,
        }
    }

    fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidSpec(_) => ErrorClass::Stalled,
            Error::DependencyNotReady { retry, .. } => ErrorClass::Waiting(*retry),
            Error::HealthCheckCanceled(_) => ErrorClass::Waiting(std::time::Duration::ZERO),
            Error::Unavailable { .. } => ErrorClass::Unavailable,
            Error::Kube(e) if is_unavailable(e) => ErrorClass::Unavailable,
            _ => ErrorClass::Transient,
        }
    }
}

impl Error {
    /// An apply or prune failure (`wrap`), or [`Error::Unavailable`] when the API server did not answer.
    fn from_ssa(e: driftless_ssa::Error, wrap: fn(String) -> Error) -> Error {
        if e.is_unavailable() {
            Error::Unavailable {
                reason: wrap(String::new()).reason(),
                message: e.to_string(),
            }
        } else {
            wrap(e.to_string())
        }
    }
}

/// The source kinds a Kustomization may reference.
const SOURCE_KINDS: [&str; 4] = driftless_api::kinds::KUSTOMIZATION_SOURCES;

/// The API resource of the source kind `kind`, if a Kustomization may reference it.
fn source_resource(kind: &str) -> Option<ApiResource> {
    SOURCE_KINDS
        .contains(&kind)
        .then(|| driftless_api::kinds::get(kind).map(|k| k.api_resource()))
        .flatten()
}

/// The label that makes a Secret or ConfigMap trigger the Kustomizations using it when it changes.
pub const WATCH_LABEL: (&str, &str) = ("reconcile.fluxcd.io/watch", "Enabled");

/// An API of `ar` in the watched namespaces.
fn watched_dynamic(ctx: &Context, ar: &ApiResource) -> Api<DynamicObject> {
    if ctx.config.watch_all_namespaces {
        Api::all_with(ctx.client.clone(), ar)
    } else {
        Api::namespaced_with(ctx.client.clone(), &ctx.config.runtime_namespace, ar)
    }
}

/// Runs the Kustomization controller. A source whose artifact changes triggers the Kustomizations that
/// use it at once, and so does a Secret or ConfigMap labelled [`WATCH_LABEL`] that one of them substitutes
/// from (or decrypts with).
pub async fn run(ctx: Arc<Context>) {
    let api: Api<Kustomization> = watched_api(ctx.client.clone(), &ctx.config);
    let progress = ctx.metrics.progress.clone();
    let (mut ctrl, store) = run_loop::for_kind(
        api,
        watcher_config(&ctx.config),
        ctx.config.concurrent,
        progress.clone(),
    );
    for kind in SOURCE_KINDS {
        let ar = source_resource(kind).expect("a source kind");
        let store = store.clone();
        ctrl = run_loop::watch_related(
            ctrl,
            kind,
            watched_dynamic(&ctx, &ar),
            ar,
            watcher::Config::default(),
            move |source: DynamicObject| {
                let (ns, name) = (source.namespace().unwrap_or_default(), source.name_any());
                store
                    .state()
                    .into_iter()
                    .filter(|k| {
                        let r = &k.spec.source_ref;
                        r.kind == kind && r.name == name && source_namespace(k) == ns
                    })
                    .map(|k| ObjectRef::from_obj(k.as_ref()))
                    .collect::<Vec<_>>()
            },
            progress.clone(),
        );
    }
    let config_kinds: &[&str] = if ctx.watch_configs {
        &["ConfigMap", "Secret"]
    } else {
        &[]
    };
    let labelled = watcher::Config::default().labels(&format!("{}={}", WATCH_LABEL.0, WATCH_LABEL.1));
    for &kind in config_kinds {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("", "v1", kind),
            &format!("{}s", kind.to_lowercase()),
        );
        let store = store.clone();
        ctrl = run_loop::watch_related(
            ctrl,
            kind,
            watched_dynamic(&ctx, &ar),
            ar,
            labelled.clone(),
            move |data: DynamicObject| {
                let (ns, name) = (data.namespace().unwrap_or_default(), data.name_any());
                store
                    .state()
                    .into_iter()
                    .filter(|k| k.namespace().unwrap_or_default() == ns && uses(k, kind, &name))
                    .map(|k| ObjectRef::from_obj(k.as_ref()))
                    .collect::<Vec<_>>()
            },
            progress.clone(),
        );
    }
    // a Kustomization that becomes Ready starts the ones that depend on it at once
    let dependents = store.clone();
    ctrl = run_loop::watch_related(
        ctrl,
        "Kustomization (dependencies)",
        watched_api::<Kustomization>(ctx.client.clone(), &ctx.config),
        (),
        watcher::Config::default(),
        move |dep: Kustomization| {
            let ready = dep
                .status
                .as_ref()
                .is_some_and(|s| conditions::is_ready(&s.conditions, dep.metadata.generation));
            if !ready {
                return Vec::new();
            }
            let (ns, name) = (dep.namespace().unwrap_or_default(), dep.name_any());
            dependents
                .state()
                .into_iter()
                .filter(|k| {
                    let own = k.namespace().unwrap_or_default();
                    k.spec
                        .depends_on
                        .iter()
                        .flatten()
                        .any(|d| d.name == name && d.namespace.as_deref().unwrap_or(&own) == ns)
                })
                .map(|k| ObjectRef::from_obj(k.as_ref()))
                .collect::<Vec<_>>()
        },
        progress,
    );
    run_loop::drain(ctrl.run(reconcile::<Context>, error_policy::<Context>, ctx)).await;
}

/// The owner labels of what `obj` applies, and which prune requires: `kustomize.toolkit.fluxcd.io/name`
/// and `…/namespace`.
fn owner_labels(obj: &Kustomization) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), obj.name_any()),
        (NAMESPACE_LABEL.to_string(), obj.namespace().unwrap_or_default()),
    ])
}

/// The client that acts for `obj`: the cluster of `spec.kubeConfig` when set, impersonating
/// `spec.serviceAccountName` (or, locally, `--default-service-account`) when set; else the controller's.
/// A resource manager writing through `client`, resolving kinds through the controller's cache when
/// `obj` targets this cluster (a remote cluster serves kinds of its own).
fn resource_manager(obj: &Kustomization, ctx: &Context, client: kube::Client) -> ResourceManager {
    let manager = ResourceManager::new(client, FIELD_MANAGER, driftless_ssa::KUSTOMIZE_GROUP);
    match obj.spec.kube_config {
        None => manager.with_kind_cache(ctx.kinds.clone()),
        Some(_) => manager,
    }
}

async fn target_client(obj: &Kustomization, ctx: &Context) -> Result<kube::Client, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let default_sa = (!ctx.config.default_service_account.is_empty() && obj.spec.kube_config.is_none())
        .then(|| ctx.config.default_service_account.clone());
    let sa = obj.spec.service_account_name.clone().or(default_sa);
    let user = sa.map(|sa| format!("system:serviceaccount:{ns}:{sa}"));
    let Some(reference) = obj.spec.kube_config.as_ref() else {
        let Some(user) = user else {
            return Ok(ctx.client.clone());
        };
        if let Some(client) = ctx.tenant_clients.lock().expect("client cache").get(&user) {
            return Ok(client.clone());
        }
        let mut config = ctx.kube_config.clone();
        config.auth_info.impersonate = Some(user.clone());
        config.auth_info.impersonate_groups = None;
        let client = driftless_runtime::client::build(config).map_err(Error::Kube)?;
        ctx.tenant_clients
            .lock()
            .expect("client cache")
            .insert(user, client.clone());
        return Ok(client);
    };
    let secret_ref = reference
        .secret_ref
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("spec.kubeConfig needs a secretRef".into()))?;
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&secret_ref.name)
        .await
        .map_err(Error::Kube)?
        .ok_or_else(|| Error::Artifact(format!("kubeconfig Secret '{ns}/{}' not found", secret_ref.name)))?;
    let data = secret.data.unwrap_or_default();
    let keys: Vec<&str> = match secret_ref.key.as_deref() {
        Some(key) => vec![key],
        None => vec!["value", "value.yaml"],
    };
    let text = keys
        .iter()
        .find_map(|k| data.get(*k))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .ok_or_else(|| {
            Error::InvalidSpec(format!(
                "kubeconfig Secret '{ns}/{}' has no key {}",
                secret_ref.name,
                keys.join(" or ")
            ))
        })?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&text)
        .map_err(|e| Error::InvalidSpec(format!("kubeconfig Secret '{ns}/{}': {e}", secret_ref.name)))?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| Error::InvalidSpec(format!("kubeconfig Secret '{ns}/{}': {e}", secret_ref.name)))?;
    if let Some(user) = user {
        config.auth_info.impersonate = Some(user);
    }
    driftless_runtime::client::build(config).map_err(Error::Kube)
}

/// Evaluates a `readyExpr`: `self` is the Kustomization, `dep` its dependency.
fn ready_expr(expr: &str, this: &Kustomization, dep: &Kustomization) -> Result<bool, String> {
    let program = driftless_runtime::cel::compiled(expr)?;
    let (this, dep) = (
        serde_json::to_value(this).map_err(|e| e.to_string())?,
        serde_json::to_value(dep).map_err(|e| e.to_string())?,
    );
    driftless_runtime::cel::eval_bool(&program, &[("self", &this), ("dep", &dep)])
}

/// `dependsOn`: every dependency must be Ready for its current generation and, when it uses the same
/// source, have applied the revision about to be applied here; a `readyExpr` replaces the Ready check
/// (`AdditiveCELDependencyCheck`: adds to it).
async fn check_dependencies(obj: &Kustomization, ctx: &Context, source: &Source) -> Result<(), Error> {
    let own_ns = obj.namespace().unwrap_or_default();
    for d in obj.spec.depends_on.iter().flatten() {
        let ns = d.namespace.clone().unwrap_or_else(|| own_ns.clone());
        let name = format!("{ns}/{}", d.name);
        if ctx.config.no_cross_namespace_refs && ns != own_ns {
            return Err(Error::InvalidSpec(format!(
                "cannot access Kustomization/{name}, cross-namespace references have been blocked"
            )));
        }
        let waiting = |message: String| Error::DependencyNotReady {
            message,
            retry: ctx.config.requeue_dependency,
        };
        let dep = Api::<Kustomization>::namespaced(ctx.client.clone(), &ns)
            .get_opt(&d.name)
            .await
            .map_err(Error::Kube)?
            .ok_or_else(|| {
                waiting(format!(
                    "unable to get '{name}' dependency: kustomizations.kustomize.toolkit.fluxcd.io \"{}\" not found",
                    d.name
                ))
            })?;
        let not_ready = || waiting(format!("dependency '{name}' is not ready"));
        if let Some(expr) = d.ready_expr.as_deref().filter(|e| !e.is_empty()) {
            let ready = ready_expr(expr, obj, &dep)
                .map_err(|e| Error::InvalidSpec(format!("dependency '{name}' readyExpr '{expr}': {e}")))?;
            if !ready {
                return Err(not_ready());
            }
            if !ctx.additive_cel_dependency_check {
                continue;
            }
        }
        let status = dep.status.clone().unwrap_or_default();
        if status.conditions.is_empty()
            || status.observed_generation != dep.metadata.generation
            || !conditions::is_true(&status.conditions, READY)
        {
            return Err(not_ready());
        }
        let same_source = dep.spec.source_ref.name == obj.spec.source_ref.name
            && dep.spec.source_ref.kind == obj.spec.source_ref.kind
            && source_namespace(&dep) == source_namespace(obj);
        if same_source && status.last_applied_revision.as_deref() != Some(source.revision.as_str()) {
            return Err(waiting(format!("dependency '{name}' revision is not up to date")));
        }
    }
    Ok(())
}

/// The health-check targets of `objects` (inventory references).
fn targets(refs: &[driftless_api::kustomize::ResourceRef]) -> Vec<Target> {
    refs.iter()
        .filter_map(driftless_ssa::parse_ref)
        .map(|(namespace, name, gvk)| Target { gvk, namespace, name })
        .collect()
}

/// The CEL rules of `spec.healthCheckExprs`.
fn health_rules(obj: &Kustomization) -> Result<Rules, Error> {
    let exprs: Vec<(String, String, Expressions)> = obj
        .spec
        .health_check_exprs
        .iter()
        .flatten()
        .map(|c| {
            (
                c.api_version.clone(),
                c.kind.clone(),
                Expressions {
                    in_progress: c.in_progress.clone(),
                    failed: c.failed.clone(),
                    current: c.current.clone(),
                },
            )
        })
        .collect();
    Rules::new(exprs.iter().map(|(a, k, e)| (a.as_str(), k.as_str(), e))).map_err(Error::InvalidSpec)
}

/// Completes when the source advertises a revision other than `revision`, with the reason.
async fn new_revision(obj: &Kustomization, ctx: &Context, revision: &str) -> String {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        if let Ok(source) = fetch_source(obj, ctx).await
            && source.revision != revision
        {
            return format!(
                "health check canceled: a new revision of the source is available: {}",
                source.revision
            );
        }
    }
}

/// How often to look at `n` objects while waiting: every 0.5s for a few, up to every 5s for many.
fn poll_interval(n: usize) -> std::time::Duration {
    std::time::Duration::from_millis((500 + 10 * n as u64).min(5000))
}

/// The sync wave of an object: `driftless.io/wave`, else `argocd.argoproj.io/sync-wave`, else 0.
fn wave(o: &Value) -> Result<i64, Error> {
    let Some((key, value)) = WAVE_ANNOTATIONS.iter().find_map(|k| {
        o.pointer("/metadata/annotations")
            .and_then(|a| a.get(*k))
            .and_then(Value::as_str)
            .map(|v| (*k, v))
    }) else {
        return Ok(0);
    };
    value.trim().parse().map_err(|_| {
        Error::Build(format!(
            "{}: annotation {key}: '{value}' is not an integer wave",
            driftless_ssa::subject(o)
        ))
    })
}

/// Whether the Kustomization substitutes from (or, for a Secret, decrypts with) `kind/name`.
fn uses(k: &Kustomization, kind: &str, name: &str) -> bool {
    let substitutes = k
        .spec
        .post_build
        .as_ref()
        .and_then(|p| p.substitute_from.as_ref())
        .is_some_and(|refs| refs.iter().any(|r| r.kind == kind && r.name == name));
    let decrypts = kind == "Secret"
        && k.spec
            .decryption
            .as_ref()
            .and_then(|d| d.secret_ref.as_ref())
            .is_some_and(|r| r.name == name);
    substitutes || decrypts
}

/// `spec.retryInterval`, else `spec.interval`, as Flux retries a failure.
fn retry_interval(obj: &Kustomization) -> Option<std::time::Duration> {
    obj.spec
        .retry_interval
        .as_deref()
        .or(Some(obj.spec.interval.as_str()))
        .and_then(|d| parse_duration(d).ok())
}

/// On deletion: delete the inventory when `prune` (or `deletionPolicy: Delete`) says so.
async fn cleanup(obj: &Kustomization, ctx: &Context) -> Result<(), Error> {
    use driftless_api::kustomize::DeletionPolicy;
    let delete = match obj.spec.deletion_policy.unwrap_or_default() {
        DeletionPolicy::MirrorPrune => obj.spec.prune,
        DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
        DeletionPolicy::Orphan => false,
    };
    if delete && !is_suspended(obj.spec.suspend) {
        let old = obj
            .status
            .as_ref()
            .and_then(|s| s.inventory.clone())
            .map(|i| i.entries)
            .unwrap_or_default();
        let client = target_client(obj, ctx).await?;
        let manager = resource_manager(obj, ctx, client);
        let changes = manager
            .prune(&old, &[], &owner_labels(obj))
            .await
            .map_err(|e| Error::from_ssa(e, Error::Prune))?;
        let count = |action| changes.entries.iter().filter(|c| c.action == action).count();
        info!(
            deleted = count(driftless_ssa::Action::Deleted),
            skipped = count(driftless_ssa::Action::Skipped),
            "garbage collected the inventory"
        );
        if obj.spec.deletion_policy == Some(DeletionPolicy::WaitForTermination) {
            wait_for_termination(obj, &manager, &old).await?;
        }
    }
    Ok(())
}

/// `deletionPolicy: WaitForTermination`: the Kustomization goes only once what it deleted is gone
/// (finalizers done), waiting at most its timeout per attempt; still there, it is an error and the
/// deletion is tried again.
async fn wait_for_termination(
    obj: &Kustomization,
    manager: &ResourceManager,
    deleted: &[driftless_api::kustomize::ResourceRef],
) -> Result<(), Error> {
    let interval = parse_duration(&obj.spec.interval).unwrap_or(std::time::Duration::from_secs(60));
    let deadline = tokio::time::Instant::now() + reconcile_timeout(obj, interval);
    loop {
        let left = manager
            .terminating(deleted)
            .await
            .map_err(|e| Error::from_ssa(e, Error::Prune))?;
        if left.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Prune(format!(
                "timeout waiting for the termination of: [{}]",
                left.join(", ")
            )));
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

struct Source {
    url: String,
    digest: String,
    revision: String,
    /// The revision the artifact was built from, when its producer recorded one
    /// (`org.opencontainers.image.revision` in the artifact's metadata, as for OCI sources).
    origin_revision: Option<String>,
}

/// The namespace of a Kustomization's source: `sourceRef.namespace`, else its own.
fn source_namespace(k: &Kustomization) -> String {
    k.spec
        .source_ref
        .namespace
        .clone()
        .unwrap_or_else(|| k.namespace().unwrap_or_default())
}

/// The artifact metadata key of the origin revision.
const ORIGIN_REVISION_KEY: &str = "org.opencontainers.image.revision";

async fn fetch_source(obj: &Kustomization, ctx: &Context) -> Result<Source, Error> {
    let r = &obj.spec.source_ref;
    let own_ns = obj.namespace().unwrap_or_default();
    let ns = source_namespace(obj);
    if ctx.config.no_cross_namespace_refs && ns != own_ns {
        return Err(Error::InvalidSpec(format!(
            "cannot access {}/{ns}/{}, cross-namespace references have been blocked",
            r.kind, r.name
        )));
    }
    let ar = source_resource(&r.kind)
        .ok_or_else(|| Error::InvalidSpec(format!("unsupported source kind '{}'", r.kind)))?;
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ar);
    let source = api
        .get_opt(&r.name)
        .await
        .map_err(Error::Kube)?
        .ok_or_else(|| Error::Artifact(format!("Source '{}/{ns}/{}' not found", r.kind, r.name)))?;
    let artifact = source
        .data
        .pointer("/status/artifact")
        .cloned()
        .filter(|a| a.is_object())
        .ok_or_else(|| {
            Error::Artifact(format!(
                "Source '{}/{ns}/{}' is not ready, artifact not found",
                r.kind, r.name
            ))
        })?;
    let get = |k: &str| {
        artifact
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let origin_revision = artifact
        .pointer(&format!(
            "/metadata/{}",
            ORIGIN_REVISION_KEY.replace('~', "~0").replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    Ok(Source {
        url: get("url"),
        digest: get("digest"),
        revision: get("revision"),
        origin_revision,
    })
}

/// The overlay Flux puts around `spec.path`: `targetNamespace`, `namePrefix`/`nameSuffix`, `patches`,
/// `images`, `components`, `commonMetadata`.
fn overlay(obj: &Kustomization, path: &str) -> Result<Option<String>, Error> {
    let s = &obj.spec;
    let needed = s.target_namespace.is_some()
        || s.name_prefix.is_some()
        || s.name_suffix.is_some()
        || s.patches.as_ref().is_some_and(|p| !p.is_empty())
        || s.images.as_ref().is_some_and(|i| !i.is_empty())
        || s.components.as_ref().is_some_and(|c| !c.is_empty())
        || s.common_metadata.is_some();
    if !needed {
        return Ok(None);
    }
    let mut k = serde_json::Map::new();
    k.insert("apiVersion".into(), json!("kustomize.config.k8s.io/v1beta1"));
    k.insert("kind".into(), json!("Kustomization"));
    k.insert("resources".into(), json!([format!("../{path}")]));
    if let Some(ns) = &s.target_namespace {
        k.insert("namespace".into(), json!(ns));
    }
    if let Some(p) = &s.name_prefix {
        k.insert("namePrefix".into(), json!(p));
    }
    if let Some(p) = &s.name_suffix {
        k.insert("nameSuffix".into(), json!(p));
    }
    if let Some(p) = &s.patches {
        k.insert(
            "patches".into(),
            serde_json::to_value(p).expect("patches serialise"),
        );
    }
    if let Some(i) = &s.images {
        k.insert(
            "images".into(),
            serde_json::to_value(i).expect("images serialise"),
        );
    }
    if let Some(c) = &s.components {
        k.insert(
            "components".into(),
            json!(c.iter().map(|c| format!("../{path}/{c}")).collect::<Vec<_>>()),
        );
    }
    if let Some(m) = &s.common_metadata {
        if let Some(a) = &m.annotations {
            k.insert("commonAnnotations".into(), json!(a));
        }
        if let Some(l) = &m.labels {
            k.insert("labels".into(), json!([{"pairs": l}]));
        }
    }
    serde_yaml::to_string(&Value::Object(k))
        .map(Some)
        .map_err(|e| Error::Build(e.to_string()))
}

/// The SOPS keys of `spec.decryption`: its Secret's `*.agekey` (age) and `*.asc` (OpenPGP) entries, and the
/// `*.agekey` entries of the global Secret named by `--sops-age-secret` (in the runtime namespace).
async fn sops_decryptor(
    obj: &Kustomization,
    ctx: &Context,
    decryption: &driftless_api::kustomize::Decryption,
) -> Result<driftless_sops::Decryptor, Error> {
    if decryption.provider != "sops" {
        return Err(Error::InvalidSpec(format!(
            "decryption provider '{}' is not supported: use sops",
            decryption.provider
        )));
    }
    let mut keys = driftless_sops::Keys::default();
    let read = |ns: String, name: String| async move {
        Api::<Secret>::namespaced(ctx.client.clone(), &ns)
            .get_opt(&name)
            .await
            .map_err(Error::Kube)?
            .map(|s| s.data.unwrap_or_default())
            .ok_or_else(|| Error::Build(format!("decryption Secret '{ns}/{name}' not found")))
    };
    let mut sources = Vec::new();
    if let Some(r) = &decryption.secret_ref {
        sources.push((obj.namespace().unwrap_or_default(), r.name.clone(), true));
    }
    if !ctx.sops_age_secret.is_empty() {
        sources.push((
            ctx.config.runtime_namespace.clone(),
            ctx.sops_age_secret.clone(),
            false,
        ));
    }
    for (ns, name, pgp) in sources {
        for (key, value) in read(ns.clone(), name.clone()).await? {
            let text = String::from_utf8_lossy(&value.0);
            let added = if key.ends_with(".agekey") {
                keys.add_age(&text)
            } else if pgp && key.ends_with(".asc") {
                keys.add_pgp(&text)
            } else {
                continue;
            };
            added.map_err(|e| Error::Build(format!("decryption Secret '{ns}/{name}' key '{key}': {e}")))?;
        }
    }
    Ok(driftless_sops::Decryptor::new(keys))
}

/// `spec.path` inside the artifact, as Flux's secure join reads it: `.` and empty segments dropped, and
/// `..` never above the artifact's root (`../../apps` is `apps`), so nothing outside is read or written.
fn confined(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    kept.join("/")
}

/// Downloads, verifies and builds; returns the objects to apply.
async fn build(
    obj: &Kustomization,
    ctx: &Context,
    client: &kube::Client,
    source: &Source,
) -> Result<Vec<Value>, Error> {
    let decryptor = match &obj.spec.decryption {
        Some(d) => Some(sops_decryptor(obj, ctx, d).await?),
        None => None,
    };
    let tree = ctx
        .artifacts
        .get(&ctx.http, &source.url, &source.digest, Default::default())
        .await
        .map_err(|e| Error::Artifact(e.to_string()))?;
    let path = confined(obj.spec.path.as_deref().unwrap_or_default());
    if !tree.path().join(&path).is_dir() {
        return Err(Error::Build(format!(
            "kustomization path not found: {}",
            if path.is_empty() { "." } else { &path }
        )));
    }
    let overlay = overlay(obj, &path)?;
    // the cached tree is shared: a build that adds files (the overlay, a generated kustomization) works
    // on a mirror of hard links to it
    let scratch = match overlay {
        Some(_) => {
            let dir = tempfile::Builder::new()
                .prefix("kustomization-")
                .tempdir()
                .map_err(|e| Error::Artifact(e.to_string()))?;
            tree.link_into(&dir.path().join("tree"))
                .map_err(|e| Error::Artifact(format!("mirroring the artifact: {e}")))?;
            Some(dir)
        }
        None => None,
    };
    let root = match &scratch {
        Some(dir) => dir.path().join("tree"),
        None => tree.path().to_path_buf(),
    };
    let target = root.join(&path);
    let vars = match &obj.spec.post_build {
        Some(post_build) => Some(load_vars(obj, post_build, client).await?),
        None => None,
    };
    let strict = ctx.strict_substitutions;
    tokio::task::spawn_blocking(move || {
        // the trees stay until the build is done, even when the reconcile is dropped meanwhile
        let _trees = (tree, scratch);
        let build_path = match overlay {
            Some(text) => {
                // a directory without kustomization gets Flux's generated one, so the overlay can refer to it
                let has_file = driftless_kustomize::FILE_NAMES
                    .iter()
                    .any(|f| target.join(f).is_file());
                if !has_file {
                    let generated = driftless_kustomize::generated_kustomization(&target)
                        .map_err(|e| Error::Build(e.to_string()))?;
                    std::fs::write(target.join("kustomization.yaml"), generated)
                        .map_err(|e| Error::Build(e.to_string()))?;
                }
                let wrapper = root.join(".driftless-overlay");
                // NB: one the artifact brings is unlinked from the mirror first, never written through
                let _ = std::fs::remove_dir_all(&wrapper);
                std::fs::create_dir_all(&wrapper).map_err(|e| Error::Build(e.to_string()))?;
                std::fs::write(wrapper.join("kustomization.yaml"), text)
                    .map_err(|e| Error::Build(e.to_string()))?;
                Path::new(".driftless-overlay").to_path_buf()
            }
            None => Path::new(&path).to_path_buf(),
        };
        let failed = |e: driftless_kustomize::Error| {
            Error::Build(e.to_string().replace(&root.display().to_string(), "."))
        };
        let decrypt = decryptor
            .as_ref()
            .map(|d| d as &dyn driftless_kustomize::yaml::Decrypt);
        let Some(vars) = vars else {
            return driftless_kustomize::build_with(&root, &build_path, decrypt).map_err(failed);
        };
        let mut objects =
            driftless_kustomize::build_marked_with(&root, &build_path, decrypt).map_err(failed)?;
        driftless_kustomize::substitute::substitute_all(&mut objects, &vars, strict).map_err(Error::Build)?;
        Ok(objects)
    })
    .await
    .expect("builds do not panic")
}

/// The variables of `postBuild`: each `substituteFrom` Secret or ConfigMap in order, later ones winning,
/// then `substitute`; newlines are dropped from values, as Flux does. A missing object that is not
/// `optional` is an error.
async fn load_vars(
    obj: &Kustomization,
    post_build: &PostBuild,
    client: &kube::Client,
) -> Result<BTreeMap<String, String>, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let mut vars = BTreeMap::new();
    for r in post_build.substitute_from.iter().flatten() {
        let failed = |message: String| {
            Error::Build(format!(
                "post build failed: substitute from '{}/{}' error: {message}",
                r.kind, r.name
            ))
        };
        let data: Option<Vec<(String, String)>> = match r.kind.as_str() {
            "ConfigMap" => Api::<ConfigMap>::namespaced(client.clone(), &ns)
                .get_opt(&r.name)
                .await
                .map_err(|e| failed(api_message(&e)))?
                .map(|c| c.data.unwrap_or_default().into_iter().collect()),
            "Secret" => Api::<Secret>::namespaced(client.clone(), &ns)
                .get_opt(&r.name)
                .await
                .map_err(|e| failed(api_message(&e)))?
                .map(|s| {
                    s.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect()
                }),
            other => {
                return Err(Error::InvalidSpec(format!(
                    "substituteFrom kind '{other}' is not Secret or ConfigMap"
                )));
            }
        };
        match data {
            Some(data) => vars.extend(data.into_iter().map(|(k, v)| (k, v.replace('\n', "")))),
            None if r.optional.unwrap_or(false) => {}
            None => {
                return Err(failed(format!(
                    "{}s \"{}\" not found",
                    r.kind.to_lowercase(),
                    r.name
                )));
            }
        }
    }
    for (k, v) in post_build.substitute.iter().flatten() {
        vars.insert(k.clone(), v.replace('\n', ""));
    }
    Ok(vars)
}

impl Reconciler for Context {
    type Object = Kustomization;
    type Status = KustomizationStatus;
    type Outcome = Outcome;
    type Error = Error;
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;

    fn runtime(&self) -> Runtime<'_> {
        Runtime {
            client: &self.client,
            recorder: &self.recorder,
            metrics: &self.metrics,
            retry: &self.retry,
        }
    }

    fn status(obj: &Kustomization) -> Option<&KustomizationStatus> {
        obj.status.as_ref()
    }

    fn suspended(obj: &Kustomization) -> bool {
        is_suspended(obj.spec.suspend)
    }

    fn interval(obj: &Kustomization) -> Result<std::time::Duration, Error> {
        parse_duration(&obj.spec.interval).map_err(|e| Error::InvalidSpec(e.to_string()))
    }

    fn timeout(obj: &Kustomization) -> std::time::Duration {
        let interval = parse_duration(&obj.spec.interval).unwrap_or(std::time::Duration::from_secs(600));
        // NB: the steps and then the health check may each take the timeout
        reconcile_timeout(obj, interval) * 2
    }

    fn retry_interval(obj: &Kustomization) -> Option<std::time::Duration> {
        retry_interval(obj)
    }

    async fn run(
        &self,
        obj: &Kustomization,
        status: &mut KustomizationStatus,
        writer: &mut StatusWriter<Kustomization, KustomizationStatus>,
    ) -> Result<Outcome, Error> {
        let interval = Self::interval(obj)?;
        let started = Instant::now();
        let (mut digest, mut origin) = (None, None);
        let timeout = reconcile_timeout(obj, interval);
        let applied = tokio::time::timeout(
            timeout,
            run_steps(obj, self, writer, status, &mut digest, &mut origin, timeout),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Error::Apply(format!(
                "the reconciliation did not finish within its timeout of {}",
                format_duration(timeout)
            )))
        });
        let result = match applied {
            Ok(applied) => check_health(obj, self, status, writer, &applied, timeout)
                .await
                .map(|()| Outcome {
                    revision: applied.revision,
                    summary: applied.summary,
                    origin: origin.clone(),
                }),
            Err(e) => Err(e),
        };
        // like Flux, history starts once the build succeeded: its digest is that of the built objects
        if let Some(digest) = digest {
            let reason = match &result {
                Ok(_) => reasons::RECONCILIATION_SUCCEEDED,
                Err(e) => e.reason(),
            };
            let metadata = [
                ("revision", &status.last_attempted_revision),
                ("originRevision", &origin),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.clone()?)))
            .collect();
            driftless_runtime::history::upsert(
                status.history.get_or_insert_default(),
                &digest,
                k8s_openapi::jiff::Timestamp::now(),
                started.elapsed(),
                reason,
                metadata,
            );
        }
        result
    }

    fn summarize(obj: &Kustomization, status: &mut KustomizationStatus, result: &Result<Outcome, Error>) {
        summarize(obj, status, result);
    }

    fn after(&self, obj: &Kustomization, _status: &KustomizationStatus, result: &Result<Outcome, Error>) {
        let Ok(Outcome {
            revision,
            summary,
            origin,
        }) = result
        else {
            return;
        };
        if summary.is_empty() {
            return;
        }
        let mut metadata = BTreeMap::from([(
            "kustomize.toolkit.fluxcd.io/revision".to_string(),
            revision.clone(),
        )]);
        if let Some(origin) = origin {
            metadata.insert(
                "kustomize.toolkit.fluxcd.io/originRevision".to_string(),
                origin.clone(),
            );
        }
        self.recorder.record(
            &obj.object_ref(&()),
            Severity::Info,
            reasons::RECONCILIATION_SUCCEEDED,
            summary,
            metadata,
        );
        info!(revision = %revision, changes = %summary.replace('\n', ", "), "applied");
    }

    async fn cleanup(&self, obj: &Kustomization) -> Result<(), Error> {
        cleanup(obj, self).await
    }
}

/// What a successful reconcile applied.
pub struct Outcome {
    /// The source revision.
    revision: String,
    /// What changed, one line per object (empty when nothing did).
    summary: String,
    /// The revision the artifact was built from, when its producer recorded one.
    origin: Option<String>,
}

/// The conditions after a run: Ready with the applied revision, or Ready=False with the reason, still
/// `Reconciling` for the attempted revision while a transient failure is retried, `Stalled` when only a
/// spec change helps.
fn summarize(obj: &Kustomization, status: &mut KustomizationStatus, result: &Result<Outcome, Error>) {
    let generation = obj.metadata.generation;
    match result {
        Ok(Outcome { revision, .. }) => {
            for t in [RECONCILING, STALLED] {
                conditions::delete(&mut status.conditions, t);
            }
            conditions::mark_true(
                &mut status.conditions,
                READY,
                reasons::RECONCILIATION_SUCCEEDED,
                &format!("Applied revision: {revision}"),
                generation,
            );
        }
        Err(err) => {
            let message = err.to_string();
            let progress = match &status.last_attempted_revision {
                Some(revision) => format!("Reconciliation in progress for revision {revision}"),
                None => "Reconciliation in progress".to_string(),
            };
            conditions::mark_failed_attempt(&mut status.conditions, err.class(), &progress, generation);
            if err.class() == ErrorClass::Stalled {
                conditions::mark_stalled(&mut status.conditions, err.reason(), &message, generation);
            }
            conditions::mark_false(&mut status.conditions, READY, err.reason(), &message, generation);
        }
    }
}

/// `spec.timeout`, else the interval less 30s; never under 30s (Flux's `GetTimeout`).
fn reconcile_timeout(obj: &Kustomization, interval: std::time::Duration) -> std::time::Duration {
    const FLOOR: std::time::Duration = std::time::Duration::from_secs(30);
    obj.spec
        .timeout
        .as_deref()
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or_else(|| interval.saturating_sub(FLOOR))
        .max(FLOOR)
}

/// `sha256:<hex>` of the built objects as a multi-document YAML stream.
fn objects_digest(objects: &[Value]) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for o in objects {
        hasher.update(b"---\n");
        hasher.update(serde_yaml::to_string(o).unwrap_or_default().as_bytes());
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// What a successful apply leaves for the health check.
struct Applied {
    revision: String,
    summary: String,
    client: kube::Client,
    /// `healthCheckExprs`, compiled once per reconcile.
    rules: Rules,
}

/// source → dependencies → build → apply (wave by wave, each wave healthy before the next) → prune;
/// updates the revisions and inventory in `status`.
async fn run_steps(
    obj: &Kustomization,
    ctx: &Context,
    writer: &mut StatusWriter<Kustomization, KustomizationStatus>,
    status: &mut KustomizationStatus,
    digest: &mut Option<String>,
    origin: &mut Option<String>,
    timeout: std::time::Duration,
) -> Result<Applied, Error> {
    let source = fetch_source(obj, ctx).await?;
    status.last_attempted_revision = Some(source.revision.clone());
    origin.clone_from(&source.origin_revision);
    check_dependencies(obj, ctx, &source).await?;
    // a new revision is in progress until applied (and healthy), as Flux shows it; an unchanged one
    // writes nothing here, so an idle fleet stays write-free
    if status.last_applied_revision.as_deref() != Some(source.revision.as_str()) {
        let message = format!(
            "Building manifests for revision {} with a timeout of {}",
            source.revision,
            format_duration(timeout)
        );
        conditions::mark_progressing(&mut status.conditions, &message, obj.metadata.generation);
        writer.write(status).await.map_err(Error::Kube)?;
    }
    let client = target_client(obj, ctx).await?;
    let rules = health_rules(obj)?;
    let objects = build(obj, ctx, &client, &source).await?;
    *digest = Some(objects_digest(&objects));
    let labels = owner_labels(obj);
    let manager = resource_manager(obj, ctx, client.clone())
        .with_force(obj.spec.force.unwrap_or(false))
        .with_overridden_managers(&ctx.override_managers)
        .with_verified(ctx.verified.clone());
    let mut waves: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for o in objects {
        waves.entry(wave(&o)?).or_default().push(o);
    }
    let old = status
        .inventory
        .as_ref()
        .map(|i| i.entries.clone())
        .unwrap_or_default();
    let mut changes = driftless_ssa::ChangeSet::default();
    let mut new = Vec::new();
    let last = waves.keys().next_back().copied();
    for (number, group) in &waves {
        let mut applied = driftless_ssa::ChangeSet::default();
        let result = manager.apply_all_into(group, &labels, &mut applied).await;
        // NB: the inventory gains only what was applied (kept beside the old entries, so a later failing
        // wave does not orphan what the earlier ones created): an object the server refused was never
        // ours, and recording it would let a later revision prune someone else's object of that name
        let done: std::collections::HashSet<&str> =
            applied.entries.iter().map(|c| c.subject.as_str()).collect();
        let refs: Vec<_> = group
            .iter()
            .filter(|o| result.is_ok() || done.contains(driftless_ssa::subject(o).as_str()))
            .map(inventory_ref)
            .collect();
        new.extend(refs.iter().cloned());
        let mut entries: Vec<_> = old.iter().chain(&new).cloned().collect();
        entries.sort();
        entries.dedup();
        status.inventory = Some(ResourceInventory { entries });
        changes.entries.extend(applied.entries);
        result.map_err(|e| Error::from_ssa(e, Error::Apply))?;
        if Some(*number) != last {
            let started = Instant::now();
            let options = WaitOptions {
                interval: poll_interval(refs.len()),
                timeout,
                fail_fast: true,
            };
            manager
                .wait_for_set(
                    &targets(&refs),
                    &rules,
                    options,
                    new_revision(obj, ctx, &source.revision),
                )
                .await
                .map_err(|e| match e {
                    WaitError::Canceled(reason) => Error::HealthCheckCanceled(reason),
                    e => Error::HealthCheck(format!(
                        "wave {number}: health check failed after {}: {e}",
                        format_duration(started.elapsed())
                    )),
                })?;
        }
    }
    let mut entries = new.clone();
    entries.sort();
    status.inventory = Some(ResourceInventory { entries });
    if obj.spec.prune {
        let pruned = manager
            .prune(&old, &new, &labels)
            .await
            .map_err(|e| Error::from_ssa(e, Error::Prune))?;
        changes.entries.extend(pruned.entries);
    }
    status.last_applied_revision = Some(source.revision.clone());
    status.last_applied_origin_revision = source.origin_revision;
    Ok(Applied {
        revision: source.revision,
        summary: changes.summary(),
        client,
        rules,
    })
}

/// `wait` (every applied object) or `healthChecks`: waits until they are healthy and sets `Healthy`,
/// as Flux does; neither set removes `Healthy`. A new source revision cancels the wait.
async fn check_health(
    obj: &Kustomization,
    ctx: &Context,
    status: &mut KustomizationStatus,
    writer: &mut StatusWriter<Kustomization, KustomizationStatus>,
    applied: &Applied,
    timeout: std::time::Duration,
) -> Result<(), Error> {
    let (ns, name, generation) = (
        obj.namespace().unwrap_or_default(),
        obj.name_any(),
        obj.metadata.generation,
    );
    let all = if obj.spec.wait.unwrap_or(false) {
        targets(&status.inventory.clone().unwrap_or_default().entries)
    } else {
        obj.spec
            .health_checks
            .iter()
            .flatten()
            .map(|c| {
                let api_version = c.api_version.clone().unwrap_or_default();
                let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
                Target {
                    gvk: GroupVersionKind::gvk(group, version, &c.kind),
                    namespace: c.namespace.clone().unwrap_or_default(),
                    name: c.name.clone(),
                }
            })
            .collect()
    };
    // NB: never wait for ourselves
    let all: Vec<Target> = all
        .into_iter()
        .filter(|t| !(t.gvk.kind == KIND && t.name == name && t.namespace == ns))
        .collect();
    if all.is_empty() {
        conditions::delete(&mut status.conditions, HEALTHY);
        return Ok(());
    }
    let was_healthy = conditions::is_true(&status.conditions, HEALTHY);
    let message = format!(
        "Running health checks for revision {} with a timeout of {}",
        applied.revision,
        format_duration(timeout)
    );
    conditions::mark_reconciling(&mut status.conditions, reasons::PROGRESSING, &message, generation);
    conditions::mark_unknown(
        &mut status.conditions,
        READY,
        reasons::PROGRESSING,
        &message,
        generation,
    );
    writer.write(status).await.map_err(Error::Kube)?;
    let manager = resource_manager(obj, ctx, applied.client.clone());
    let options = WaitOptions {
        interval: poll_interval(all.len()),
        timeout,
        fail_fast: ctx.fail_fast,
    };
    let started = Instant::now();
    let waited = manager
        .wait_for_set(
            &all,
            &applied.rules,
            options,
            new_revision(obj, ctx, &applied.revision),
        )
        .await;
    let elapsed = format_duration(started.elapsed());
    match waited {
        Ok(()) => {
            let message = format!("Health check passed in {elapsed}");
            conditions::mark_true(
                &mut status.conditions,
                HEALTHY,
                reasons::HEALTH_CHECK_SUCCEEDED,
                &message,
                generation,
            );
            if !was_healthy {
                let metadata = BTreeMap::from([(
                    "kustomize.toolkit.fluxcd.io/revision".to_string(),
                    applied.revision.clone(),
                )]);
                ctx.recorder.record(
                    &obj.object_ref(&()),
                    Severity::Info,
                    reasons::PROGRESSING,
                    &message,
                    metadata,
                );
            }
            Ok(())
        }
        Err(WaitError::Canceled(reason)) => Err(Error::HealthCheckCanceled(reason)),
        Err(e) => {
            let message = format!("health check failed after {elapsed}: {e}");
            conditions::mark_false(
                &mut status.conditions,
                HEALTHY,
                reasons::HEALTH_CHECK_FAILED,
                &message,
                generation,
            );
            Err(Error::HealthCheck(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn after(result: Result<Outcome, Error>, attempted: Option<&str>) -> KustomizationStatus {
        let mut obj = Kustomization::new("apps", Default::default());
        obj.metadata.generation = Some(4);
        let mut status = KustomizationStatus {
            last_attempted_revision: attempted.map(str::to_string),
            ..Default::default()
        };
        conditions::mark_progressing(&mut status.conditions, "reconciliation in progress", Some(4));
        summarize(&obj, &mut status, &result);
        status
    }

    fn condition(status: &KustomizationStatus, type_: &str) -> Option<(String, String, String)> {
        conditions::get(&status.conditions, type_)
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    }

    #[test]
    fn an_applied_revision_is_ready_and_a_failure_says_why_and_whether_it_is_retried() {
        let ok = after(
            Ok(Outcome {
                revision: "main@sha1:abc".into(),
                summary: String::new(),
                origin: None,
            }),
            Some("main@sha1:abc"),
        );
        assert_eq!(
            condition(&ok, READY),
            Some((
                "True".into(),
                "ReconciliationSucceeded".into(),
                "Applied revision: main@sha1:abc".into()
            ))
        );
        assert_eq!(condition(&ok, RECONCILING), None);

        let failed = after(
            Err(Error::Build("kustomization.yaml: bad".into())),
            Some("main@sha1:def"),
        );
        assert_eq!(
            condition(&failed, READY),
            Some((
                "False".into(),
                "BuildFailed".into(),
                "kustomization.yaml: bad".into()
            ))
        );
        assert_eq!(
            condition(&failed, RECONCILING),
            Some((
                "True".into(),
                "ProgressingWithRetry".into(),
                "Reconciliation in progress for revision main@sha1:def".into()
            ))
        );
        assert_eq!(condition(&failed, STALLED), None);

        let stalled = after(Err(Error::InvalidSpec("bad path".into())), None);
        assert_eq!(
            condition(&stalled, STALLED).map(|c| c.1),
            Some("InvalidSpec".into())
        );
        assert_eq!(condition(&stalled, READY).map(|c| c.0), Some("False".into()));
        assert_eq!(condition(&stalled, RECONCILING), None, "stalled: not retried");

        let waiting = after(
            Err(Error::DependencyNotReady {
                message: "dependency 'a/infra' is not ready".into(),
                retry: Duration::from_secs(30),
            }),
            None,
        );
        assert_eq!(
            condition(&waiting, READY).map(|c| c.1),
            Some("DependencyNotReady".into())
        );
        assert_eq!(
            condition(&waiting, RECONCILING).map(|c| c.2),
            Some("Reconciliation in progress".into())
        );
    }

    #[test]
    fn paths_stay_inside_the_artifact() {
        for (path, inside) in [
            ("./apps/prod", "apps/prod"),
            ("apps/prod/", "apps/prod"),
            ("", ""),
            ("./", ""),
            ("../../../etc", "etc"),
            ("apps/../../..", ""),
            ("/abs/./x//y", "abs/x/y"),
            ("apps/base/../prod", "apps/prod"),
        ] {
            assert_eq!(confined(path), inside, "{path}");
        }
    }

    #[test]
    fn the_timeout_is_flux_s_spec_timeout_else_interval_less_30s_at_least_30s() {
        let mut k = Kustomization::new("k", Default::default());
        assert_eq!(
            reconcile_timeout(&k, Duration::from_secs(600)),
            Duration::from_secs(570)
        );
        assert_eq!(
            reconcile_timeout(&k, Duration::from_secs(40)),
            Duration::from_secs(30)
        );
        k.spec.timeout = Some("2m".into());
        assert_eq!(
            reconcile_timeout(&k, Duration::from_secs(600)),
            Duration::from_secs(120)
        );
        k.spec.timeout = Some("1s".into());
        assert_eq!(
            reconcile_timeout(&k, Duration::from_secs(600)),
            Duration::from_secs(30)
        );
    }
}
