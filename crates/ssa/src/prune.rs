//! Prune: what left the set is deleted, unless it opts out or is not ours (owner labels); and what a
//! deletion left terminating.

use std::collections::BTreeMap;

use driftless_api::kustomize::ResourceRef;
use driftless_runtime::error::is_unavailable;
use kube::api::DeleteParams;
use tracing::warn;

use crate::{Action, Change, ChangeSet, Error, ResourceManager, object::*};

impl ResourceManager {
    /// Deletes what is in `old` and not in `new` (previous inventory minus the new set), except objects
    /// annotated `<group>/prune: disabled` and objects that lack one of the `owner`
    /// labels (Flux's inclusions: `kustomize.toolkit.fluxcd.io/name` and `…/namespace` with the owner's
    /// values): someone else's object of the same name is left, reported as skipped. Missing objects
    /// count as deleted.
    pub async fn prune(
        &self,
        old: &[ResourceRef],
        new: &[ResourceRef],
        owner: &BTreeMap<String, String>,
    ) -> Result<ChangeSet, Error> {
        let mut changes = ChangeSet::default();
        let stale: Vec<&ResourceRef> = old.iter().filter(|o| !new.iter().any(|n| n.id == o.id)).collect();
        if stale.is_empty() {
            return Ok(changes);
        }
        let kinds = self
            .resolve(stale.iter().filter_map(|r| parse_ref(r).map(|(_, _, gvk)| gvk)))
            .await?;
        // NB: reverse apply order, so Namespaces and CRDs go last
        let mut stale = stale;
        stale.reverse();
        for r in stale {
            let Some((ns, name, gvk)) = parse_ref(r) else {
                continue;
            };
            let Some((ar, caps)) = kinds.resolve_gvk(&gvk) else {
                continue;
            };
            let api = self.api(&ar, &caps, &ns);
            let subject = if ns.is_empty() {
                format!("{}/{name}", gvk.kind)
            } else {
                format!("{}/{ns}/{name}", gvk.kind)
            };
            let live = api.get_opt(&name).await.map_err(|e| Error::Api {
                id: subject.clone(),
                action: "get",
                message: api_message(&e),
                unavailable: is_unavailable(&e),
            })?;
            let Some(live) = live else { continue };
            let live = serde_json::to_value(&live).expect("serialise");
            if annotation(&live, &self.annotations.prune)
                .map(str::to_lowercase)
                .as_deref()
                == Some("disabled")
            {
                changes.entries.push(Change {
                    subject,
                    action: Action::Skipped,
                });
                continue;
            }
            if !owned(&live, owner) {
                warn!(object = %subject, "not pruned: it lacks our owner labels, so it is not ours");
                changes.entries.push(Change {
                    subject,
                    action: Action::Skipped,
                });
                continue;
            }
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => changes.entries.push(Change {
                    subject,
                    action: Action::Deleted,
                }),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    return Err(Error::Api {
                        id: subject,
                        action: "delete",
                        message: api_message(&e),
                        unavailable: is_unavailable(&e),
                    });
                }
            }
        }
        Ok(changes)
    }

    /// The objects of `refs` that still exist and are being deleted (a deletion timestamp, finalizers
    /// pending), as `Kind/namespace/name`: what a `WaitForTermination` deletion waits for.
    pub async fn terminating(&self, refs: &[ResourceRef]) -> Result<Vec<String>, Error> {
        let kinds = self
            .resolve(refs.iter().filter_map(|r| parse_ref(r).map(|(_, _, gvk)| gvk)))
            .await?;
        let mut left = Vec::new();
        for r in refs {
            let Some((ns, name, gvk)) = parse_ref(r) else {
                continue;
            };
            let Some((ar, caps)) = kinds.resolve_gvk(&gvk) else {
                continue;
            };
            let subject = if ns.is_empty() {
                format!("{}/{name}", gvk.kind)
            } else {
                format!("{}/{ns}/{name}", gvk.kind)
            };
            let live = self
                .api(&ar, &caps, &ns)
                .get_opt(&name)
                .await
                .map_err(|e| Error::Api {
                    id: subject.clone(),
                    action: "get",
                    message: api_message(&e),
                    unavailable: is_unavailable(&e),
                })?;
            if live.is_some_and(|l| l.metadata.deletion_timestamp.is_some()) {
                left.push(subject);
            }
        }
        Ok(left)
    }
}
