//! Where a Kustomization's manifests come from and what it waits on: its source's artifact (and the
//! revision it was built from) and its `dependsOn`, with `readyExpr`.

use driftless_api::kustomize::Kustomization;
use kube::{Api, ResourceExt, api::DynamicObject};
use serde_json::Value;

use crate::Context;

use super::*;

/// `dependsOn` (see `driftless_runtime::dependencies`): a dependency of the same source is current once
/// it applied the revision about to be applied here.
pub(super) async fn check_dependencies(
    obj: &Kustomization,
    ctx: &Context,
    source: &Source,
) -> Result<(), Error> {
    use driftless_runtime::dependencies::{self, Error as E, Options};
    let options = Options {
        no_cross_namespace_refs: ctx.config.no_cross_namespace_refs,
        additive_cel: ctx.additive_cel_dependency_check,
    };
    let current = |dep: &Kustomization| {
        let same_source = dep.spec.source_ref.name == obj.spec.source_ref.name
            && dep.spec.source_ref.kind == obj.spec.source_ref.kind
            && source_namespace(dep) == source_namespace(obj);
        let applied = dep
            .status
            .as_ref()
            .and_then(|s| s.last_applied_revision.as_deref());
        !same_source || applied == Some(source.revision.as_str())
    };
    let depends_on = obj.spec.depends_on.as_deref().unwrap_or_default();
    dependencies::check(&ctx.client, obj, depends_on, options, current)
        .await
        .map_err(|e| match e {
            E::NotReady(message) => Error::DependencyNotReady {
                message,
                retry: ctx.config.requeue_dependency,
            },
            E::Invalid(message) => Error::InvalidSpec(message),
            E::Kube(e) => Error::Kube(e),
        })
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
    driftless_runtime::refs::cross_namespace(
        ctx.config.no_cross_namespace_refs,
        &own_ns,
        &r.kind,
        &ns,
        &r.name,
    )
    .map_err(Error::InvalidSpec)?;
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
