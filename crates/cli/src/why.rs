//! `driftless why <kind>/<name>`: one chain explaining why an object is not Ready. From the object, it
//! follows what the object waits on — a Kustomization's source and `dependsOn`, a HelmRelease's chart
//! source and `dependsOn`, a HelmChart's source, a GitRepository's `include`s — expanding only what is
//! not Ready itself, so the output ends at the causes.

use std::collections::HashSet;

use kube::{Api, Client, api::DynamicObject, core::ApiResource};
use serde_json::Value;

/// The canonical kind for `name` (a kind, its plural or a short name, any case).
pub fn kind(name: &str) -> Option<&'static str> {
    driftless_api::kinds::find(name).map(|k| k.kind.as_str())
}

fn resource(kind: &str) -> Option<ApiResource> {
    driftless_api::kinds::get(kind).map(|k| k.api_resource())
}

/// An object to explain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ref {
    /// Its kind.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// What an object's status says.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    /// Ready=True at the current generation, with its message.
    Ready(String),
    /// Not Ready, with why.
    NotReady(String),
}

impl State {
    fn ready(&self) -> bool {
        matches!(self, State::Ready(_))
    }
}

fn str_at<'a>(o: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(o, |v, k| v.get(k))?.as_str()
}

/// Reads an object's state the way `kubectl wait --for=condition=Ready` and kstatus do, with a hint
/// where the conditions alone do not tell what to do.
pub fn state(kind: &str, o: &Value) -> State {
    if o.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return State::NotReady("suspended (spec.suspend: true): resume it to reconcile".into());
    }
    let conditions = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let condition = |t: &str| conditions.iter().find(|c| str_at(c, &["type"]) == Some(t));
    let Some(ready) = condition("Ready") else {
        return State::NotReady(format!(
            "no Ready condition yet: never reconciled — is the {} running and watching this namespace?",
            controller(kind)
        ));
    };
    let generation = o.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = o.pointer("/status/observedGeneration").and_then(Value::as_i64);
    let describe = |c: &Value| {
        format!(
            "{} ({}): {}",
            str_at(c, &["status"]).unwrap_or("?"),
            str_at(c, &["reason"]).unwrap_or("?"),
            str_at(c, &["message"]).unwrap_or("")
        )
    };
    if let (Some(g), Some(seen)) = (generation, observed)
        && seen < g
    {
        return State::NotReady(format!(
            "the last change (generation {g}) is not reconciled yet (observed {seen}); last Ready={}",
            describe(ready)
        ));
    }
    match str_at(ready, &["status"]) {
        Some("True") => State::Ready(str_at(ready, &["message"]).unwrap_or("").to_string()),
        _ => {
            let stalled = condition("Stalled")
                .filter(|c| str_at(c, &["status"]) == Some("True"))
                .map(|c| {
                    format!(
                        "; stalled ({}): fix the spec, retrying will not help",
                        str_at(c, &["reason"]).unwrap_or("?")
                    )
                })
                .unwrap_or_default();
            State::NotReady(format!("Ready={}{stalled}", describe(ready)))
        }
    }
}

fn controller(kind: &str) -> &'static str {
    match kind {
        "Kustomization" => "kustomize-controller",
        "HelmRelease" => "helm-controller",
        "Receiver" => "notification-controller",
        k if k.starts_with("Image") => "image-automation-controller",
        _ => "source-controller",
    }
}

/// What `o` (of `kind`, in `namespace`) waits on, each with how it is related.
pub fn dependencies(kind: &str, namespace: &str, o: &Value) -> Vec<(&'static str, Ref)> {
    let reference = |r: &Value, default_kind: &str| -> Option<Ref> {
        Some(Ref {
            kind: str_at(r, &["kind"]).unwrap_or(default_kind).to_string(),
            namespace: str_at(r, &["namespace"]).unwrap_or(namespace).to_string(),
            name: str_at(r, &["name"])?.to_string(),
        })
    };
    let mut out = Vec::new();
    let source = match kind {
        "Kustomization" | "HelmChart" => o.pointer("/spec/sourceRef"),
        "HelmRelease" => o
            .pointer("/spec/chartRef")
            .or_else(|| o.pointer("/spec/chart/spec/sourceRef")),
        _ => None,
    };
    if let Some(r) = source.and_then(|r| reference(r, "GitRepository")) {
        out.push(("source", r));
    }
    if matches!(kind, "Kustomization" | "HelmRelease") {
        for d in o
            .pointer("/spec/dependsOn")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = reference(d, kind) {
                out.push(("depends on", r));
            }
        }
    }
    if kind == "GitRepository" {
        for i in o
            .pointer("/spec/include")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = str_at(i, &["repository", "name"]) {
                out.push((
                    "includes",
                    Ref {
                        kind: "GitRepository".into(),
                        namespace: namespace.to_string(),
                        name: name.to_string(),
                    },
                ));
            }
        }
    }
    out
}

/// Explains `root` into `out`, one line per object; returns whether `root` is Ready.
pub async fn explain(client: &Client, root: &Ref, out: &mut String) -> anyhow::Result<bool> {
    let mut seen = HashSet::new();
    let mut stack = vec![(0usize, "", root.clone())];
    // the root is not Ready unless found Ready (not followed, not found: not Ready)
    let mut root_ready = false;
    while let Some((depth, relation, node)) = stack.pop() {
        let line = match depth {
            0 => node.to_string(),
            _ => format!("{}└─ {relation} {node}", "  ".repeat(depth)),
        };
        if !seen.insert(node.clone()) {
            out.push_str(&format!("{line}: (already shown above)\n"));
            continue;
        }
        let Some(ar) = resource(&node.kind) else {
            out.push_str(&format!("{line}: a kind `why` does not follow\n"));
            continue;
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &node.namespace, &ar);
        let Some(obj) = api.get_opt(&node.name).await? else {
            out.push_str(&format!("{line}: not found\n"));
            continue;
        };
        let value = serde_json::to_value(&obj)?;
        let state = state(&node.kind, &value);
        if depth == 0 {
            root_ready = state.ready();
        }
        match &state {
            State::Ready(message) => out.push_str(&format!("{line}: Ready — {message}\n")),
            State::NotReady(why) => out.push_str(&format!("{line}: not Ready — {why}\n")),
        }
        // NB: what a Ready object waits on cannot be why anything is not Ready
        if state.ready() && depth > 0 {
            continue;
        }
        let deps = dependencies(&node.kind, &node.namespace, &value);
        for (relation, dep) in deps.into_iter().rev() {
            stack.push((depth + 1, relation, dep));
        }
    }
    Ok(root_ready)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kinds_resolve_from_names_plurals_and_short_names() {
        assert_eq!(kind("ks"), Some("Kustomization"));
        assert_eq!(kind("Kustomizations"), Some("Kustomization"));
        assert_eq!(kind("gitrepository"), Some("GitRepository"));
        assert_eq!(kind("hr"), Some("HelmRelease"));
        assert_eq!(kind("deployment"), None);
    }

    #[test]
    fn states_name_the_reason_and_what_to_do() {
        let ready = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "ok"}]}});
        assert_eq!(state("GitRepository", &ready), State::Ready("ok".into()));
        let stale = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "ok"}]}});
        assert!(matches!(state("GitRepository", &stale), State::NotReady(m) if m.contains("generation 3")));
        let stalled = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "InvalidSpec", "message": "bad url"},
            {"type": "Stalled", "status": "True", "reason": "InvalidSpec"}]}});
        assert_eq!(
            state("GitRepository", &stalled),
            State::NotReady(
                "Ready=False (InvalidSpec): bad url; stalled (InvalidSpec): fix the spec, retrying will not help"
                    .into()
            )
        );
        let fresh = json!({"metadata": {"generation": 1}});
        assert!(
            matches!(state("Kustomization", &fresh), State::NotReady(m) if m.contains("kustomize-controller"))
        );
        let suspended = json!({"spec": {"suspend": true}});
        assert!(
            matches!(state("Kustomization", &suspended), State::NotReady(m) if m.starts_with("suspended"))
        );
    }

    #[test]
    fn dependencies_follow_sources_depends_on_and_includes() {
        let ks = json!({"spec": {"sourceRef": {"kind": "OCIRepository", "name": "oci", "namespace": "src"},
            "dependsOn": [{"name": "infra"}, {"name": "crds", "namespace": "other"}]}});
        let refs: Vec<String> = dependencies("Kustomization", "apps", &ks)
            .into_iter()
            .map(|(r, d)| format!("{r} {d}"))
            .collect();
        assert_eq!(
            refs,
            [
                "source OCIRepository src/oci",
                "depends on Kustomization apps/infra",
                "depends on Kustomization other/crds"
            ]
        );
        let hr =
            json!({"spec": {"chart": {"spec": {"sourceRef": {"kind": "HelmRepository", "name": "charts"}}}}});
        assert_eq!(
            dependencies("HelmRelease", "a", &hr)[0].1.to_string(),
            "HelmRepository a/charts"
        );
        let git = json!({"spec": {"include": [{"repository": {"name": "shared"}}]}});
        assert_eq!(
            dependencies("GitRepository", "a", &git)[0].1.to_string(),
            "GitRepository a/shared"
        );
    }
}
