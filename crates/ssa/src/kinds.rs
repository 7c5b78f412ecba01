//! Which kinds the API server serves: resolved by discovery once per kind and cached across reconciles
//! ([`KindCache`]), and the CRDs of a set waited for before their custom resources.

use std::time::Duration;

use driftless_runtime::error::is_unavailable;
use futures::{FutureExt, future::BoxFuture};
use kube::{
    Api,
    api::DynamicObject,
    core::GroupVersionKind,
    discovery::{ApiCapabilities, ApiResource, Scope},
};
use serde_json::Value;

use crate::{Error, ResourceManager, apply::*, object::*};

/// Kinds one cluster served recently, shared across reconciles: a kind found is not asked for again for
/// the cache's time to live; kinds not found are asked for every time (a CRD may appear at any moment),
/// and a kind the server no longer knows (a 404 on an object of it) is forgotten at once. Use one cache
/// per cluster (impersonation does not change what a cluster serves; a remote cluster does).
#[derive(Debug)]
pub struct KindCache {
    pub(crate) ttl: Duration,
    pub(crate) found: std::sync::Mutex<
        std::collections::HashMap<GroupVersionKind, (ApiResource, ApiCapabilities, tokio::time::Instant)>,
    >,
}

impl KindCache {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            found: Default::default(),
        }
    }

    pub(crate) fn get(&self, gvk: &GroupVersionKind) -> Option<(ApiResource, ApiCapabilities)> {
        let found = self.found.lock().expect("kind cache");
        let (ar, caps, at) = found.get(gvk)?;
        (at.elapsed() < self.ttl).then(|| (ar.clone(), caps.clone()))
    }

    pub(crate) fn put(&self, gvk: GroupVersionKind, resolved: (ApiResource, ApiCapabilities)) {
        let now = tokio::time::Instant::now();
        self.found
            .lock()
            .expect("kind cache")
            .insert(gvk, (resolved.0, resolved.1, now));
    }

    /// Forgets `gvk` (its CRD went away or changed).
    pub fn forget(&self, gvk: &GroupVersionKind) {
        self.found.lock().expect("kind cache").remove(gvk);
    }

    /// Whether `gvk` is cached and fresh.
    pub fn contains(&self, gvk: &GroupVersionKind) -> bool {
        self.get(gvk).is_some()
    }
}

/// Resolved kinds: what the API server serves for each wanted kind.
pub(crate) struct Kinds(
    pub(crate) std::collections::HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>,
);

impl Kinds {
    pub(crate) fn resolve_gvk(&self, gvk: &GroupVersionKind) -> Option<(ApiResource, ApiCapabilities)> {
        self.0.get(gvk).cloned()
    }
}

impl ResourceManager {
    /// Forgets a cached kind when the server answers 404 for it: its CRD may be gone or no longer serve
    /// that version (an object missing is not an error: lookups ask for it optionally).
    pub(crate) fn forget_if_gone(&self, gvk: &GroupVersionKind, e: &kube::Error) {
        if let (Some(cache), kube::Error::Api(status)) = (&self.kinds, e)
            && status.code == 404
        {
            cache.forget(gvk);
        }
    }

    /// Resolves the kinds of `gvks` (one discovery request per kind, in parallel): unknown kinds are
    /// absent from the result. Cheaper than a full discovery, which asks every API group.
    pub(crate) async fn resolve(
        &self,
        gvks: impl IntoIterator<Item = GroupVersionKind>,
    ) -> Result<Kinds, Error> {
        let mut wanted: Vec<GroupVersionKind> = gvks.into_iter().collect();
        wanted.sort_by(|a, b| (&a.group, &a.version, &a.kind).cmp(&(&b.group, &b.version, &b.kind)));
        wanted.dedup();
        let mut cached = std::collections::HashMap::new();
        if let Some(cache) = &self.kinds {
            wanted.retain(|gvk| match cache.get(gvk) {
                Some(resolved) => {
                    cached.insert(gvk.clone(), resolved);
                    false
                }
                None => true,
            });
        }
        let lookups: Vec<BoxFuture<'_, Result<_, Error>>> = wanted
            .into_iter()
            .map(|gvk| {
                async move {
                    match kube::discovery::oneshot::pinned_kind(&self.client, &gvk).await {
                        Ok(resolved) => Ok(Some((gvk, resolved))),
                        Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
                        Err(kube::Error::Discovery(_)) => Ok(None),
                        Err(e) => Err(Error::Discovery {
                            message: api_message(&e),
                            unavailable: is_unavailable(&e),
                        }),
                    }
                }
                .boxed()
            })
            .collect();
        let found: Vec<_> = in_parallel(lookups, self.concurrency).await?;
        for (gvk, resolved) in found.into_iter().flatten() {
            if let Some(cache) = &self.kinds {
                cache.put(gvk.clone(), resolved.clone());
            }
            cached.insert(gvk, resolved);
        }
        Ok(Kinds(cached))
    }

    pub(crate) fn api(
        &self,
        ar: &ApiResource,
        caps: &ApiCapabilities,
        namespace: &str,
    ) -> Api<DynamicObject> {
        match caps.scope {
            Scope::Cluster => Api::all_with(self.client.clone(), ar),
            Scope::Namespaced => Api::namespaced_with(
                self.client.clone(),
                if namespace.is_empty() {
                    "default"
                } else {
                    namespace
                },
                ar,
            ),
        }
    }

    /// Resolves `gvks` once the CRDs of `objects` are established: discovery can lag a moment behind
    /// the Established condition, so a kind one of those CRDs defines is asked for again (for up to
    /// ten seconds) until the server serves it.
    pub(crate) async fn resolve_defined(
        &self,
        objects: &[Value],
        gvks: Vec<GroupVersionKind>,
    ) -> Result<Kinds, Error> {
        let defined = defined_kinds(objects);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let kinds = self.resolve(gvks.clone()).await?;
            let missing = gvks.iter().any(|g| {
                defined.contains(&(g.group.as_str(), g.kind.as_str())) && kinds.resolve_gvk(g).is_none()
            });
            if !missing || tokio::time::Instant::now() >= deadline {
                return Ok(kinds);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(crate) async fn wait_for_crds(&self, objects: &[Value]) {
        let api: Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = Api::all(self.client.clone());
        for o in objects
            .iter()
            .filter(|o| str_at(o, &["kind"]) == "CustomResourceDefinition")
        {
            let name = str_at(o, &["metadata", "name"]);
            let established = kube::runtime::wait::await_condition(
                api.clone(),
                name,
                kube::runtime::wait::conditions::is_crd_established(),
            );
            let _ = tokio::time::timeout(Duration::from_secs(30), established).await;
        }
    }
}
