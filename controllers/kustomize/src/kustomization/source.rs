//! Where a Kustomization's manifests come from and what it waits on: its source's artifact (and the
//! revision it was built from) and its `dependsOn`, with `readyExpr`.

use driftless_api::kustomize::Kustomization;
use driftless_runtime::sources::SourceRef;
use kube::ResourceExt;

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

/// What a Kustomization applies: its source's artifact.
pub(super) type Source = driftless_runtime::sources::SourceArtifact;

/// The source a Kustomization applies from, its namespace resolved (`sourceRef.namespace`, else its
/// own).
pub(super) fn source_ref(k: &Kustomization) -> SourceRef {
    let r = &k.spec.source_ref;
    SourceRef {
        kind: r.kind.clone(),
        namespace: source_namespace(k),
        name: r.name.clone(),
    }
}

/// The namespace of a Kustomization's source: `sourceRef.namespace`, else its own.
pub(super) fn source_namespace(k: &Kustomization) -> String {
    k.spec
        .source_ref
        .namespace
        .clone()
        .unwrap_or_else(|| k.namespace().unwrap_or_default())
}

/// The artifact of the Kustomization's source.
pub(super) async fn fetch_source(obj: &Kustomization, ctx: &Context) -> Result<Source, Error> {
    use driftless_runtime::sources::{self, Error as E};
    let own = obj.namespace().unwrap_or_default();
    sources::artifact(
        &ctx.client,
        &SOURCE_KINDS,
        &own,
        &source_ref(obj),
        ctx.config.no_cross_namespace_refs,
    )
    .await
    .map_err(|e| match e {
        E::Invalid(message) => Error::InvalidSpec(message),
        e @ (E::NotFound(_) | E::NotReady(_)) => Error::ResolveSource(e),
        E::Kube(e) => Error::Kube(e),
    })
}
