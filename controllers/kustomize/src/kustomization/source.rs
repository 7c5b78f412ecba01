//! Where a Kustomization's manifests come from and what it waits on: its source's artifact (and the
//! revision it was built from) and its `dependsOn`, with `readyExpr`.

use driftless_api::{kustomize::Kustomization, meta::conditions::READY};
use driftless_runtime::conditions;
use kube::{Api, ResourceExt, api::DynamicObject};
use serde_json::Value;

use crate::Context;

use super::*;

/// Evaluates a `readyExpr`: `self` is the Kustomization, `dep` its dependency.
pub(super) fn ready_expr(expr: &str, this: &Kustomization, dep: &Kustomization) -> Result<bool, String> {
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
pub(super) async fn check_dependencies(
    obj: &Kustomization,
    ctx: &Context,
    source: &Source,
) -> Result<(), Error> {
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

pub(super) struct Source {
    pub(super) url: String,
    pub(super) digest: String,
    pub(super) revision: String,
    /// The revision the artifact was built from, when its producer recorded one
    /// (`org.opencontainers.image.revision` in the artifact's metadata, as for OCI sources).
    pub(super) origin_revision: Option<String>,
}

/// The namespace of a Kustomization's source: `sourceRef.namespace`, else its own.
pub(super) fn source_namespace(k: &Kustomization) -> String {
    k.spec
        .source_ref
        .namespace
        .clone()
        .unwrap_or_else(|| k.namespace().unwrap_or_default())
}

/// The artifact metadata key of the origin revision.
pub(super) const ORIGIN_REVISION_KEY: &str = "org.opencontainers.image.revision";

pub(super) async fn fetch_source(obj: &Kustomization, ctx: &Context) -> Result<Source, Error> {
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
