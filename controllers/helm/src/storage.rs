//! Flux's `storageNamespace`: a release's Secrets kept in a namespace other than the one its objects go
//! to (by default the HelmRelease's own namespace, with `targetNamespace` elsewhere). The helm CLI keeps
//! them where it installs (`-n` is both `.Release.Namespace` and its storage), so for an action that
//! changes the release they are moved into the target namespace, helm runs there, and they are moved
//! back — each move copies every Secret of the release, then deletes the originals. Reading the
//! release (`helm history`, `helm get`) needs no move: it runs against the storage namespace.
//!
//! A move cut short (the controller killed mid-action) leaves Secrets in the target namespace; the next
//! reconcile moves them back before reading anything ([`move_release`] from target to storage), where
//! a Secret in both places takes the target's copy, the one helm wrote last. Nothing is deleted before
//! its copy exists.

use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{DeleteParams, ListParams, ObjectMeta, PostParams},
};

/// The label selector of a release's Secrets, as Helm's storage driver queries them.
fn selector(release: &str) -> String {
    format!("owner=helm,name={release}")
}

/// Moves every release Secret of `release` from namespace `from` to `to`; how many it moved. A Secret
/// already in `to` is replaced by the one from `from`.
pub async fn move_release(
    client: &kube::Client,
    release: &str,
    from: &str,
    to: &str,
) -> Result<usize, String> {
    if from == to {
        return Ok(0);
    }
    let source: Api<Secret> = Api::namespaced(client.clone(), from);
    let target: Api<Secret> = Api::namespaced(client.clone(), to);
    let api_message = |e: kube::Error| driftless_runtime::error::api_message(&e);
    let secrets = source
        .list(&ListParams::default().labels(&selector(release)))
        .await
        .map_err(api_message)?
        .items;
    // every copy first, so a move cut short loses nothing
    for secret in &secrets {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let copy = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(to.to_string()),
                labels: secret.metadata.labels.clone(),
                annotations: secret.metadata.annotations.clone(),
                ..Default::default()
            },
            type_: secret.type_.clone(),
            data: secret.data.clone(),
            immutable: secret.immutable,
            ..Default::default()
        };
        match target.create(&PostParams::default(), &copy).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let existing = target.get(&name).await.map_err(api_message)?;
                let mut replacement = copy;
                replacement.metadata.resource_version = existing.metadata.resource_version;
                target
                    .replace(&name, &PostParams::default(), &replacement)
                    .await
                    .map_err(api_message)?;
            }
            Err(e) => {
                return Err(format!(
                    "copying Secret {from}/{name} to {to}: {}",
                    api_message(e)
                ));
            }
        }
    }
    for secret in &secrets {
        let name = secret.metadata.name.clone().unwrap_or_default();
        match source.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(format!("deleting Secret {from}/{name}: {}", api_message(e))),
        }
    }
    Ok(secrets.len())
}

/// Whether `namespace` holds any release Secret of `release`.
pub async fn holds(client: &kube::Client, release: &str, namespace: &str) -> Result<bool, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    api.list_metadata(&ListParams::default().labels(&selector(release)).limit(1))
        .await
        .map(|l| !l.items.is_empty())
        .map_err(|e| driftless_runtime::error::api_message(&e))
}
