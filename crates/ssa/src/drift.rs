//! Drift: how the cluster differs from a set of objects, found by a server-side dry-run as the manager's
//! field manager and compared with the live objects (paths an ignore rule names left out of both), as
//! Flux's `ssa/jsondiff` does for helm-controller; and its correction — a missing object applied, a
//! changed one patched back with exactly the JSON patch that was found, so ignored fields stay as they are.

use futures::{FutureExt, future::BoxFuture};
use kube::api::{Patch, PatchParams};
use serde_json::Value;

use crate::{Action, Change, ChangeSet, Error, ResourceManager, apply::*, object::*};
use driftless_runtime::error::{api_message, is_unavailable};

/// How one object drifted.
#[derive(Clone, Debug, PartialEq)]
pub enum DriftKind {
    /// The object is gone from the cluster.
    Missing,
    /// The object differs: `patch` (live → desired) holds that many additions, changes and removals.
    Changed {
        /// The JSON patch that corrects it.
        patch: json_patch::Patch,
    },
}

/// One drifted object.
#[derive(Clone, Debug, PartialEq)]
pub struct Drift {
    /// The desired object.
    pub object: Value,
    /// How it drifted.
    pub kind: DriftKind,
}

impl Drift {
    /// Flux's line for it: `Deployment/ns/name removed`, or `… changed (1 additions, 2 changes, 0 removals)`.
    pub fn summary(&self) -> String {
        match &self.kind {
            DriftKind::Missing => format!("{} removed", subject(&self.object)),
            DriftKind::Changed { patch } => {
                let count =
                    |f: fn(&json_patch::PatchOperation) -> bool| patch.0.iter().filter(|op| f(op)).count();
                format!(
                    "{} changed ({} additions, {} changes, {} removals)",
                    subject(&self.object),
                    count(|op| matches!(op, json_patch::PatchOperation::Add(_))),
                    count(|op| matches!(op, json_patch::PatchOperation::Replace(_))),
                    count(|op| matches!(op, json_patch::PatchOperation::Remove(_))),
                )
            }
        }
    }
}

/// Removes each JSON pointer of `paths` from `o` (a path that is not there is no error).
pub fn remove_paths(o: &mut Value, paths: &[String]) {
    for path in paths {
        let Some((parent, last)) = path.rsplit_once('/') else {
            continue;
        };
        let last = last.replace("~1", "/").replace("~0", "~");
        let target = if parent.is_empty() {
            Some(&mut *o)
        } else {
            o.pointer_mut(parent)
        };
        match target {
            Some(Value::Object(map)) => {
                map.remove(&last);
            }
            Some(Value::Array(items)) => {
                if let Ok(i) = last.parse::<usize>()
                    && i < items.len()
                {
                    items.remove(i);
                }
            }
            _ => {}
        }
    }
}

impl ResourceManager {
    /// Gives each namespaced object without a namespace `namespace`, as the API server's discovery says
    /// which kinds are namespaced (a kind it does not serve is left as it is).
    pub async fn default_namespaces(&self, objects: &mut [Value], namespace: &str) -> Result<(), Error> {
        let kinds = self
            .resolve(objects.iter().filter_map(|o| gvk_of(o).ok()))
            .await?;
        for o in objects.iter_mut() {
            let namespaced = gvk_of(o)
                .ok()
                .and_then(|g| kinds.resolve_gvk(&g))
                .is_some_and(|(_, caps)| caps.scope == kube::discovery::Scope::Namespaced);
            if namespaced && str_at(o, &["metadata", "namespace"]).is_empty() {
                o["metadata"]["namespace"] = Value::String(namespace.to_string());
            }
        }
        Ok(())
    }

    /// The drift of `objects` from the cluster. `rules` gives, for a desired or a live object, the JSON
    /// pointers left out of the comparison, or `None` to leave the object out altogether (Flux's
    /// exclusion annotation). Objects of kinds the server does not serve are reported missing.
    pub async fn drift(
        &self,
        objects: &[Value],
        rules: &(dyn Fn(&Value) -> Option<Vec<String>> + Sync),
    ) -> Result<Vec<Drift>, Error> {
        let kinds = self
            .resolve(objects.iter().filter_map(|o| gvk_of(o).ok()))
            .await?;
        let kinds = &kinds;
        let checks: Vec<BoxFuture<'_, Result<Option<Drift>, Error>>> = objects
            .iter()
            .filter_map(|o| rules(o).map(|paths| (o, paths)))
            .map(|(o, paths)| {
                async move {
                    let missing = || {
                        Ok(Some(Drift {
                            object: o.clone(),
                            kind: DriftKind::Missing,
                        }))
                    };
                    let gvk = gvk_of(o)?;
                    let Some((ar, caps)) = kinds.resolve_gvk(&gvk) else {
                        return missing();
                    };
                    let api = self.api(&ar, &caps, str_at(o, &["metadata", "namespace"]));
                    let name = str_at(o, &["metadata", "name"]);
                    let fail = |action| api_error(o, action);
                    let Some(live) = api.get_opt(name).await.map_err(fail("get"))? else {
                        return missing();
                    };
                    let live = serde_json::to_value(live).expect("objects serialise");
                    let Some(live_paths) = rules(&live) else {
                        return Ok(None);
                    };
                    let params = PatchParams::apply(&self.field_manager).force().dry_run();
                    let dry = api
                        .patch(name, &params, &Patch::Apply(o))
                        .await
                        .map_err(fail("dry-run"))?;
                    let mut desired = comparable(&serde_json::to_value(dry).expect("objects serialise"));
                    let mut current = comparable(&live);
                    for paths in [&paths, &live_paths] {
                        remove_paths(&mut desired, paths);
                        remove_paths(&mut current, paths);
                    }
                    let patch = json_patch::diff(&current, &desired);
                    Ok((!patch.0.is_empty()).then(|| Drift {
                        object: o.clone(),
                        kind: DriftKind::Changed { patch },
                    }))
                }
                .boxed()
            })
            .collect();
        Ok(in_parallel(checks, self.concurrency)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Corrects `drifts`: missing objects applied, changed ones patched with their JSON patch, as the
    /// manager's field manager. Returns what was corrected and what could not be, each failure naming its
    /// object.
    pub async fn correct(&self, drifts: &[Drift]) -> (ChangeSet, Vec<Error>) {
        let mut changes = ChangeSet::default();
        let mut failures = Vec::new();
        let kinds = match self
            .resolve(drifts.iter().filter_map(|d| gvk_of(&d.object).ok()))
            .await
        {
            Ok(kinds) => kinds,
            Err(e) => return (changes, vec![e]),
        };
        for d in drifts {
            let o = &d.object;
            let Some((ar, caps)) = gvk_of(o).ok().and_then(|g| kinds.resolve_gvk(&g)) else {
                failures.push(Error::UnknownKind {
                    id: subject(o),
                    kind: str_at(o, &["kind"]).to_string(),
                    api_version: str_at(o, &["apiVersion"]).to_string(),
                });
                continue;
            };
            let api = self.api(&ar, &caps, str_at(o, &["metadata", "namespace"]));
            let name = str_at(o, &["metadata", "name"]);
            let (result, action, verb) = match &d.kind {
                DriftKind::Missing => (
                    api.patch(
                        name,
                        &PatchParams::apply(&self.field_manager).force(),
                        &Patch::Apply(o),
                    )
                    .await,
                    Action::Created,
                    "creation",
                ),
                DriftKind::Changed { patch } => {
                    let params = PatchParams {
                        field_manager: Some(self.field_manager.clone()),
                        ..Default::default()
                    };
                    (
                        api.patch(name, &params, &Patch::<()>::Json(patch.clone())).await,
                        Action::Configured,
                        "patch",
                    )
                }
            };
            match result {
                Ok(_) => changes.entries.push(Change {
                    subject: subject(o),
                    action,
                }),
                Err(e) => failures.push(Error::Api {
                    id: subject(o),
                    action: verb,
                    // NB: the server may quote a Secret's data in a refusal: only its reason is kept then
                    message: if str_at(o, &["kind"]) == "Secret" {
                        api_message(&e)
                            .rsplit_once(':')
                            .map_or_else(|| api_message(&e), |(_, m)| m.trim().to_string())
                    } else {
                        api_message(&e)
                    },
                    unavailable: is_unavailable(&e),
                }),
            }
        }
        (changes, failures)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ignored_paths_are_removed_wherever_they_are() {
        let mut o = json!({"spec": {"replicas": 3, "template": {"a/b": 1, "keep": 2}}, "items": [1, 2, 3]});
        remove_paths(
            &mut o,
            &[
                "/spec/replicas".into(),
                "/spec/template/a~1b".into(),
                "/items/1".into(),
                "/not/there".into(),
            ],
        );
        assert_eq!(o, json!({"spec": {"template": {"keep": 2}}, "items": [1, 3]}));
    }

    #[test]
    fn summaries_count_like_flux() {
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "apps"}});
        let patch = json_patch::diff(
            &json!({"spec": {"replicas": 7, "paused": true}}),
            &json!({"spec": {"replicas": 2, "minReadySeconds": 5}}),
        );
        let d = Drift {
            object: object.clone(),
            kind: DriftKind::Changed { patch },
        };
        assert_eq!(
            d.summary(),
            "Deployment/apps/web changed (1 additions, 1 changes, 1 removals)"
        );
        let d = Drift {
            object,
            kind: DriftKind::Missing,
        };
        assert_eq!(d.summary(), "Deployment/apps/web removed");
    }
}
