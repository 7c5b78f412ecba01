//! Status writes by server-side apply on `/status`, skipped when nothing but timestamps would change
//! (linkerd's `eq_time_insensitive`), so a steady-state reconcile writes nothing.

use kube::{
    Api, Resource,
    api::{Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

/// Keys whose change alone is not a status change: condition transition times, and the bookkeeping of
/// Flux's `status.history` snapshots (when and how long the last reconcile of an unchanged result took,
/// and how many there were), which would otherwise make every steady-state reconcile a write.
const TIME_KEYS: &[&str] = &[
    "lastTransitionTime",
    "lastReconciled",
    "lastReconciledDuration",
    "totalReconciliations",
];

/// Whether two statuses are equal once condition transition times are ignored.
pub fn eq_time_insensitive(a: &Value, b: &Value) -> bool {
    strip_times(a) == strip_times(b)
}

fn strip_times(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !TIME_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), strip_times(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_times).collect()),
        other => other.clone(),
    }
}

/// Writes `status` on the object named `name` with server-side apply (`field_manager`, forced), unless
/// `current` (the status as last read) equals it apart from timestamps. Returns whether it wrote.
///
/// The whole status is sent: fields this manager set before and that are missing now are removed.
pub async fn apply_status<K, S>(
    api: &Api<K>,
    name: &str,
    field_manager: &str,
    current: Option<&S>,
    status: &S,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let new = serde_json::to_value(status).map_err(kube::Error::SerdeError)?;
    if let Some(current) = current {
        let old = serde_json::to_value(current).map_err(kube::Error::SerdeError)?;
        if eq_time_insensitive(&old, &new) {
            return Ok(false);
        }
    }
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": new,
    });
    api.patch_status(
        name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_bookkeeping_alone_is_no_change() {
        let a = json!({"history": [{"digest": "sha256:a", "totalReconciliations": 3, "lastReconciled": "2024-01-01T00:00:00Z", "lastReconciledDuration": "1s"}]});
        let b = json!({"history": [{"digest": "sha256:a", "totalReconciliations": 4, "lastReconciled": "2024-01-01T00:10:00Z", "lastReconciledDuration": "2s"}]});
        assert!(eq_time_insensitive(&a, &b));
        let c = json!({"history": [{"digest": "sha256:b", "totalReconciliations": 4, "lastReconciled": "2024-01-01T00:10:00Z", "lastReconciledDuration": "2s"}]});
        assert!(!eq_time_insensitive(&a, &c));
    }

    #[test]
    fn transition_times_alone_are_no_change() {
        let a = json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]});
        let b = json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}]});
        assert!(eq_time_insensitive(&a, &b));
    }

    #[test]
    fn any_other_difference_is_a_change() {
        let a = json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]});
        for b in [
            json!({"observedGeneration": 3, "conditions": [{"type": "Ready", "status": "True"}]}),
            json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "False"}]}),
            json!({"observedGeneration": 2, "conditions": []}),
            json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}], "artifact": {}}),
        ] {
            assert!(!eq_time_insensitive(&a, &b), "{b}");
        }
    }
}
