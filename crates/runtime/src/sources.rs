//! The sources a consumer (a Kustomization; a HelmRelease next) takes artifacts from: the artifact of a
//! referenced source read from its status ([`artifact`]), and the watch that triggers every consumer of a
//! source whose artifact changed ([`watch_sources`]).

use std::{fmt::Debug, hash::Hash, sync::Arc};

use kube::{
    Api, Client, Resource, ResourceExt,
    api::DynamicObject,
    core::NamespaceResourceScope,
    runtime::{
        Controller,
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{controller::watch_related, flags::ControllerArgs, manager::watched_dynamic, progress::Progress};

/// The artifact metadata key of the revision an artifact was built from (set by OCI producers).
pub const ORIGIN_REVISION_KEY: &str = "org.opencontainers.image.revision";

/// A consumer's reference to a source, its namespace resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRef {
    /// `GitRepository`, `OCIRepository`, …
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// What a consumer downloads: a source's artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceArtifact {
    /// Where it is served.
    pub url: String,
    /// Its `sha256:` digest.
    pub digest: String,
    /// Its revision (`main@sha1:…`).
    pub revision: String,
    /// The revision it was built from, when its producer recorded one ([`ORIGIN_REVISION_KEY`]).
    pub origin_revision: Option<String>,
}

/// Why there is no artifact to take.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The reference cannot work: a kind the consumer may not use, a blocked namespace.
    #[error("{0}")]
    Invalid(String),
    /// The source does not exist (yet).
    #[error("Source '{0}' not found")]
    NotFound(String),
    /// The source has no artifact yet.
    #[error("Source '{0}' is not ready, artifact not found")]
    NotReady(String),
    /// The API server failed.
    #[error("kubernetes API: {}", crate::error::api_message(.0))]
    Kube(#[from] kube::Error),
}

/// The artifact of `source` for a consumer in `own_namespace` that may use the kinds `kinds`.
pub async fn artifact(
    client: &Client,
    kinds: &[&str],
    own_namespace: &str,
    source: &SourceRef,
    no_cross_namespace_refs: bool,
) -> Result<SourceArtifact, Error> {
    let SourceRef {
        kind,
        namespace,
        name,
    } = source;
    crate::refs::cross_namespace(no_cross_namespace_refs, own_namespace, kind, namespace, name)
        .map_err(Error::Invalid)?;
    let ar = kinds
        .contains(&kind.as_str())
        .then(|| driftless_api::kinds::get(kind))
        .flatten()
        .ok_or_else(|| Error::Invalid(format!("unsupported source kind '{kind}'")))?
        .api_resource();
    let id = format!("{kind}/{namespace}/{name}");
    let object = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &ar)
        .get_opt(name)
        .await?
        .ok_or_else(|| Error::NotFound(id.clone()))?;
    let artifact = object
        .data
        .pointer("/status/artifact")
        .filter(|a| a.is_object())
        .ok_or(Error::NotReady(id))?;
    Ok(parse(artifact))
}

/// The fields of a `status.artifact`.
fn parse(artifact: &Value) -> SourceArtifact {
    let get = |k: &str| {
        artifact
            .get(k)
            .and_then(Value::as_str)
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
    SourceArtifact {
        url: get("url"),
        digest: get("digest"),
        revision: get("revision"),
        origin_revision,
    }
}

/// `ctrl`, also triggered for every consumer in `store` whose source (`source_of`) is an object of one
/// of `kinds` that changed: a new artifact is applied at once, not at the consumer's next interval.
pub fn watch_sources<K>(
    mut ctrl: Controller<K>,
    client: &Client,
    args: &ControllerArgs,
    kinds: &[&'static str],
    store: Store<K>,
    source_of: fn(&K) -> SourceRef,
    progress: Arc<Progress>,
) -> Controller<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Debug + Clone + Eq + Hash + Unpin,
{
    for &kind in kinds {
        let ar = driftless_api::kinds::get(kind)
            .unwrap_or_else(|| panic!("{kind} is a registered kind"))
            .api_resource();
        let store = store.clone();
        ctrl = watch_related(
            ctrl,
            kind,
            watched_dynamic(client.clone(), args, &ar),
            ar,
            watcher::Config::default(),
            move |source: DynamicObject| {
                let changed = SourceRef {
                    kind: kind.to_string(),
                    namespace: source.namespace().unwrap_or_default(),
                    name: source.name_any(),
                };
                store
                    .state()
                    .into_iter()
                    .filter(|c| source_of(c) == changed)
                    .map(|c| ObjectRef::from_obj(c.as_ref()))
                    .collect::<Vec<_>>()
            },
            progress.clone(),
        );
    }
    ctrl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artifact_is_read_with_its_origin_revision() {
        let artifact = serde_json::json!({"url": "http://s/a.tar.gz", "digest": "sha256:1",
            "revision": "latest@sha256:1", "metadata": {"org.opencontainers.image.revision": "main@sha1:2"}});
        assert_eq!(
            parse(&artifact),
            SourceArtifact {
                url: "http://s/a.tar.gz".into(),
                digest: "sha256:1".into(),
                revision: "latest@sha256:1".into(),
                origin_revision: Some("main@sha1:2".into()),
            }
        );
        let plain = serde_json::json!({"url": "u", "digest": "d", "revision": "r", "metadata": {}});
        assert_eq!(parse(&plain).origin_revision, None);
    }

    #[test]
    fn errors_name_the_source() {
        assert_eq!(
            Error::NotFound("GitRepository/a/b".into()).to_string(),
            "Source 'GitRepository/a/b' not found"
        );
        assert_eq!(
            Error::NotReady("GitRepository/a/b".into()).to_string(),
            "Source 'GitRepository/a/b' is not ready, artifact not found"
        );
    }
}
