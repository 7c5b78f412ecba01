//! Where a release is, by Flux's rules: its name, the namespace its objects go to, and the namespace
//! its release Secrets are kept in (`storageNamespace`, by default the HelmRelease's own, whatever
//! `targetNamespace` says: a Flux user's releases are found where Flux left them). When any of them
//! changes, Flux uninstalls the release it made before installing the new one; when only the storage
//! namespace changes, the release's Secrets move instead, so the workload and its history stay.

use driftless_api::helm::{HelmRelease, HelmReleaseStatus};
use kube::ResourceExt;
use sha2::{Digest, Sha256};
use tracing::info;

use super::{
    Error,
    steps::{cascade, keep_history, timeout},
};
use crate::helm::{Helm, Release};

/// `namespace` when set, else the HelmRelease's own.
fn or_own(obj: &HelmRelease, namespace: Option<&str>) -> String {
    namespace
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| obj.namespace().unwrap_or_default())
}

/// Where the release's objects go: `targetNamespace`, else the HelmRelease's namespace.
pub fn target_namespace(obj: &HelmRelease) -> String {
    or_own(obj, obj.spec.target_namespace.as_deref())
}

/// Flux's release name: `releaseName`, else `<targetNamespace>-<name>` with a target namespace, else the
/// name; over 53 characters it is shortened and given a hash suffix.
pub fn release_name(obj: &HelmRelease) -> String {
    if let Some(n) = obj.spec.release_name.as_deref().filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    let name = match obj.spec.target_namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => format!("{ns}-{}", obj.name_any()),
        None => obj.name_any(),
    };
    if name.len() <= 53 {
        return name;
    }
    let hash = hex::encode(Sha256::digest(name.as_bytes()));
    format!("{}-{}", &name[..40], &hash[..12])
}

/// Where the release's Secrets are kept: `storageNamespace`, else the HelmRelease's namespace (Flux's).
pub fn storage_namespace(obj: &HelmRelease) -> String {
    or_own(obj, obj.spec.storage_namespace.as_deref())
}

/// The release `obj` makes.
pub fn release(obj: &HelmRelease) -> Release {
    Release {
        name: release_name(obj),
        namespace: target_namespace(obj),
        storage: storage_namespace(obj),
    }
}

/// The release `status` records as made (the latest history snapshot, in `status.storageNamespace`),
/// when it is not `release`; nothing when none was recorded (Flux's ReleaseTargetChanged).
pub fn previous(status: &HelmReleaseStatus, release: &Release) -> Option<Release> {
    let latest = status.history.as_ref()?.first()?;
    let previous = Release {
        name: latest.name.clone(),
        namespace: latest.namespace.clone(),
        storage: status.storage_namespace.clone().filter(|s| !s.is_empty())?,
    };
    (previous != *release).then_some(previous)
}

/// Follows a change of where the release is: only the storage namespace changed — its Secrets move
/// there (unless a release of that name is kept there already); else the previous release is uninstalled
/// (with `spec.uninstall`'s settings) and the status forgets it, as Flux does.
pub async fn follow(
    obj: &HelmRelease,
    helm: &Helm,
    client: &kube::Client,
    status: &mut HelmReleaseStatus,
    release: &Release,
) -> Result<(), Error> {
    let Some(previous) = previous(status, release) else {
        return Ok(());
    };
    // Secrets an action cut short left beside the previous release's objects go back first
    helm.restore(&previous)
        .await
        .map_err(|e| Error::Helm(e.to_string()))?;
    if previous.name == release.name && previous.namespace == release.namespace {
        let holds = |namespace: String| async move {
            crate::storage::holds(client, &release.name, &namespace)
                .await
                .map_err(Error::Helm)
        };
        // a release of that name kept in the new storage already is another: Flux's way then; else the
        // Secrets move (none to move when an earlier run moved them)
        if !holds(release.storage.clone()).await? || !holds(previous.storage.clone()).await? {
            let moved =
                crate::storage::move_release(client, &release.name, &previous.storage, &release.storage)
                    .await
                    .map_err(|e| {
                        Error::Helm(format!(
                            "failed to move release {}/{} from storage namespace '{}' to '{}': {e}",
                            release.namespace, release.name, previous.storage, release.storage
                        ))
                    })?;
            if moved > 0 {
                info!(release = %release.name, from = %previous.storage, to = %release.storage, moved, "storage namespace changed: release Secrets moved");
            }
            status.storage_namespace = Some(release.storage.clone());
            return Ok(());
        }
    }
    info!(release = %previous.name, namespace = %previous.namespace, "release target changed: uninstalling the previous release");
    helm.uninstall(&previous, keep_history(obj), timeout(obj), cascade(obj))
        .await
        .map_err(|e| {
            Error::Helm(format!(
                "failed to uninstall previous release {}/{}: {e}",
                previous.namespace, previous.name
            ))
        })?;
    status.history = None;
    status.failures = None;
    status.install_failures = None;
    status.upgrade_failures = None;
    status.storage_namespace = None;
    Ok(())
}

#[cfg(test)]
mod tests {
    use driftless_api::helm::{HelmReleaseSpec, ReleaseSnapshot};

    use super::*;

    #[test]
    fn release_names_follow_flux() {
        let mut obj = HelmRelease::new("podinfo", HelmReleaseSpec::default());
        assert_eq!(release_name(&obj), "podinfo");
        obj.spec.target_namespace = Some("apps".into());
        assert_eq!(release_name(&obj), "apps-podinfo");
        obj.spec.release_name = Some("web".into());
        assert_eq!(release_name(&obj), "web");
        obj.spec.release_name = None;
        obj.spec.target_namespace = Some("a".repeat(50));
        assert_eq!(release_name(&obj).len(), 53);
    }

    #[test]
    fn releases_are_kept_in_the_helmreleases_namespace_by_default() {
        let mut obj = HelmRelease::new("podinfo", HelmReleaseSpec::default());
        obj.metadata.namespace = Some("flux-system".into());
        obj.spec.target_namespace = Some("apps".into());
        let made = release(&obj);
        assert_eq!(
            made,
            Release {
                name: "apps-podinfo".into(),
                namespace: "apps".into(),
                storage: "flux-system".into()
            }
        );
        obj.spec.storage_namespace = Some("helm".into());
        assert_eq!(release(&obj).storage, "helm");
    }

    #[test]
    fn a_change_of_where_the_release_is_is_seen_from_the_status() {
        let release = Release {
            name: "apps-podinfo".into(),
            namespace: "apps".into(),
            storage: "flux-system".into(),
        };
        let mut status = HelmReleaseStatus::default();
        assert_eq!(previous(&status, &release), None, "nothing made yet");
        let made: ReleaseSnapshot = serde_json::from_value(serde_json::json!({
            "name": "apps-podinfo", "namespace": "apps", "version": 1, "status": "deployed",
            "chartName": "podinfo", "chartVersion": "6.0.0", "configDigest": "sha256:0", "digest": "sha256:0",
            "firstDeployed": "2026-12-06T00:00:00Z", "lastDeployed": "2026-12-06T00:00:00Z",
        }))
        .unwrap();
        status.history = Some(vec![made]);
        assert_eq!(
            previous(&status, &release),
            None,
            "no storage recorded: Flux assumes no change"
        );
        status.storage_namespace = Some("flux-system".into());
        assert_eq!(previous(&status, &release), None);
        status.storage_namespace = Some("apps".into());
        assert_eq!(previous(&status, &release).unwrap().storage, "apps");
        status.storage_namespace = Some("flux-system".into());
        status.history.as_mut().unwrap()[0].namespace = "web".into();
        assert_eq!(previous(&status, &release).unwrap().namespace, "web");
    }
}
