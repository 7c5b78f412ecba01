//! `dependsOn`, as Kustomizations and HelmReleases use it: an object waits until every object of its
//! kind it depends on exists and is Ready for its current generation — or passes its `readyExpr` (CEL,
//! `self` the object, `dep` the dependency), which replaces that check (or adds to it, with
//! `AdditiveCELDependencyCheck`) — and is current for what the object is about to do (the kind says what
//! that means: a Kustomization of the same source has applied the same revision).

use driftless_api::{kustomize::DependencyReference, meta::conditions::READY};
use kube::{Api, Client, Resource, ResourceExt, core::NamespaceResourceScope};
use serde::{Serialize, de::DeserializeOwned};

/// Why the object cannot go ahead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dependency is missing, not ready or not current: look again later (`DependencyNotReady`).
    #[error("{0}")]
    NotReady(String),
    /// The reference cannot work (a blocked cross-namespace reference, a bad `readyExpr`).
    #[error("{0}")]
    Invalid(String),
    /// The API server failed.
    #[error("kubernetes API: {}", crate::error::api_message(.0))]
    Kube(#[from] kube::Error),
}

/// How dependencies are judged.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// `--no-cross-namespace-refs`: a dependency in another namespace is refused.
    pub no_cross_namespace_refs: bool,
    /// `AdditiveCELDependencyCheck`: a `readyExpr` adds to the Ready check instead of replacing it.
    pub additive_cel: bool,
}

/// Evaluates a `readyExpr`: `self` is the object, `dep` its dependency.
pub fn ready_expr<K: Serialize>(expr: &str, this: &K, dep: &K) -> Result<bool, String> {
    let program = crate::cel::compiled(expr)?;
    let (this, dep) = (
        serde_json::to_value(this).map_err(|e| e.to_string())?,
        serde_json::to_value(dep).map_err(|e| e.to_string())?,
    );
    crate::cel::eval_bool(&program, &[("self", &this), ("dep", &dep)])
}

/// Whether `obj`'s status says Ready for its current generation.
fn ready<K: Serialize>(obj: &K) -> bool {
    let Ok(v) = serde_json::to_value(obj) else {
        return false;
    };
    let conditions = v.pointer("/status/conditions").and_then(|c| c.as_array());
    conditions.is_some_and(|c| !c.is_empty())
        && v.pointer("/status/observedGeneration") == v.pointer("/metadata/generation")
        && conditions
            .into_iter()
            .flatten()
            .any(|c| c["type"] == READY && c["status"] == "True")
}

/// Checks `depends_on` of `obj` with `client`; `current` says whether a ready dependency is also up to
/// date for what `obj` is about to do.
pub async fn check<K>(
    client: &Client,
    obj: &K,
    depends_on: &[DependencyReference],
    options: Options,
    current: impl Fn(&K) -> bool,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let own_ns = obj.namespace().unwrap_or_default();
    for d in depends_on {
        let ns = d.namespace.clone().unwrap_or_else(|| own_ns.clone());
        let name = format!("{ns}/{}", d.name);
        crate::refs::cross_namespace(
            options.no_cross_namespace_refs,
            &own_ns,
            &K::kind(&()),
            &ns,
            &d.name,
        )
        .map_err(Error::Invalid)?;
        let dep = Api::<K>::namespaced(client.clone(), &ns)
            .get_opt(&d.name)
            .await?
            .ok_or_else(|| {
                Error::NotReady(format!(
                    "unable to get '{name}' dependency: {}.{} \"{}\" not found",
                    K::plural(&()),
                    K::group(&()),
                    d.name
                ))
            })?;
        let not_ready = || Error::NotReady(format!("dependency '{name}' is not ready"));
        if let Some(expr) = d.ready_expr.as_deref().filter(|e| !e.is_empty()) {
            let passed = ready_expr(expr, obj, &dep)
                .map_err(|e| Error::Invalid(format!("dependency '{name}' readyExpr '{expr}': {e}")))?;
            if !passed {
                return Err(not_ready());
            }
            if !options.additive_cel {
                continue;
            }
        }
        if !ready(&dep) {
            return Err(not_ready());
        }
        if !current(&dep) {
            return Err(Error::NotReady(format!(
                "dependency '{name}' revision is not up to date"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use driftless_api::kustomize::Kustomization;

    use super::*;

    fn with_status(generation: i64, observed: i64, ready: &str) -> Kustomization {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "infra", "namespace": "a", "generation": generation},
            "spec": {"interval": "1m", "prune": false, "sourceRef": {"kind": "GitRepository", "name": "s"}},
            "status": {"observedGeneration": observed,
                "conditions": [{"type": "Ready", "status": ready, "reason": "r", "message": "",
                    "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}))
        .unwrap()
    }

    #[test]
    fn ready_means_ready_for_the_current_generation() {
        assert!(ready(&with_status(2, 2, "True")));
        assert!(
            !ready(&with_status(3, 2, "True")),
            "a newer spec not reconciled yet"
        );
        assert!(!ready(&with_status(2, 2, "False")));
        assert!(
            !ready(&Kustomization::new("x", Default::default())),
            "never reconciled"
        );
    }

    #[test]
    fn a_ready_expression_sees_both_objects() {
        let dep = with_status(2, 2, "False");
        let this = with_status(1, 1, "True");
        assert_eq!(
            ready_expr(
                "dep.metadata.name == 'infra' && self.metadata.generation == 1",
                &this,
                &dep
            ),
            Ok(true)
        );
        assert!(ready_expr("dep.metadata.", &this, &dep).is_err());
    }
}
