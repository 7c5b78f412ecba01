//! `driftless reconcile`, `suspend` and `resume`, as `flux` does them: a reconcile request is the
//! `reconcile.fluxcd.io/requestedAt` annotation; the command waits until the controller has handled it
//! (`status.lastHandledReconcileAt`) and says how it went. Unlike `flux`, a run that failed and is being
//! retried (Ready=False, Reconciling=ProgressingWithRetry) is reported at once instead of at the timeout.

use std::time::Duration;

use driftless_api::kinds::{self, Kind};
use kube::{
    Api,
    api::{DynamicObject, ListParams, Patch, PatchParams},
};
use serde_json::{Value, json};

use crate::{
    cluster::{Cluster, crd_missing, explain, not_found},
    kind::{human, is_static},
    log,
    objects::{at, condition},
};

const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
const FORCE_AT: &str = "reconcile.fluxcd.io/forceAt";
const RESET_AT: &str = "reconcile.fluxcd.io/resetAt";
const POLL: Duration = Duration::from_millis(250);

/// The options of `reconcile`.
#[derive(Clone, Copy, Default)]
pub struct Options {
    /// Reconcile the object's source first.
    pub with_source: bool,
    /// HelmRelease: upgrade once even without a change (`reconcile.fluxcd.io/forceAt`).
    pub force: bool,
    /// HelmRelease: reset the remediation retries (`reconcile.fluxcd.io/resetAt`).
    pub reset: bool,
}

fn cond_str<'a>(c: Option<&'a Value>, key: &str) -> &'a str {
    c.and_then(|c| c.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// How a handled reconcile went.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Still going (a new generation not observed yet, a run in progress, no Ready yet).
    Pending(String),
    /// Ready at the current generation.
    Ready,
    /// Failed: Stalled, or Ready=False with no run in progress.
    Failed(String),
}

/// Reads where `o` stands, as kstatus does, except that a failed run waiting for its retry counts as a
/// failure.
pub fn outcome(o: &Value) -> Outcome {
    let generation = o.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = o.pointer("/status/observedGeneration").and_then(Value::as_i64);
    let stalled = condition(o, "Stalled").filter(|c| cond_str(Some(c), "status") == "True");
    if let Some(c) = stalled {
        return Outcome::Failed(cond_str(Some(c), "message").to_string());
    }
    if generation.is_some() && observed.unwrap_or(0) < generation.unwrap_or(0) {
        return Outcome::Pending("the new generation is not observed yet".into());
    }
    let reconciling = condition(o, "Reconciling").filter(|c| cond_str(Some(c), "status") == "True");
    let ready = condition(o, "Ready");
    // a source or dependency that is not ready yet is waited for (the controller retries as it becomes
    // ready), as flux waits; a missing one, or any other failure, is reported at once
    let waiting = match cond_str(ready, "reason") {
        "DependencyNotReady" => true,
        "ArtifactFailed" => {
            let message = cond_str(ready, "message");
            message.contains("is not ready") || message.contains("artifact not found")
        }
        _ => false,
    };
    match cond_str(ready, "status") {
        "True" if reconciling.is_none() => Outcome::Ready,
        "False" if waiting => Outcome::Pending(cond_str(ready, "message").to_string()),
        "False" if reconciling.is_none() || cond_str(reconciling, "reason") == "ProgressingWithRetry" => {
            Outcome::Failed(cond_str(ready, "message").to_string())
        }
        _ => Outcome::Pending(
            [cond_str(reconciling, "message"), cond_str(ready, "message")]
                .into_iter()
                .find(|m| !m.is_empty())
                .unwrap_or("waiting for the controller")
                .to_string(),
        ),
    }
}

/// What flux says after a successful reconcile of `o`.
pub fn success_message(kind: &str, o: &Value) -> String {
    let ready_message = || cond_str(condition(o, "Ready"), "message").to_string();
    match kind {
        "HelmRepository" if at(o, "/spec/type") == "oci" => ready_message(),
        "GitRepository" | "OCIRepository" | "HelmRepository" | "HelmChart" | "Bucket"
        | "ExternalArtifact" => {
            format!("fetched revision {}", at(o, "/status/artifact/revision"))
        }
        "Kustomization" => format!("applied revision {}", at(o, "/status/lastAppliedRevision")),
        "HelmRelease" => format!("applied revision {}", crate::get::helm_revision(o)),
        "ImageRepository" => format!(
            "scan fetched {} tags",
            o.pointer("/status/lastScanResult/tagCount")
                .and_then(Value::as_i64)
                .unwrap_or(0)
        ),
        "ImagePolicy" => {
            let digest = at(o, "/status/latestRef/digest");
            format!(
                "selected ref {}:{}{}",
                at(o, "/status/latestRef/name"),
                at(o, "/status/latestRef/tag"),
                if digest.is_empty() {
                    String::new()
                } else {
                    format!("@{digest}")
                }
            )
        }
        "Receiver" => "Receiver reconciliation completed".into(),
        _ => ready_message(),
    }
}

/// The source `o` gets its artifact from, for `--with-source`: kind, namespace, name.
fn source_of(kind: &str, namespace: &str, o: &Value) -> Option<(String, String, String)> {
    let reference = |r: &Value| {
        let ns = r.get("namespace").and_then(Value::as_str).unwrap_or(namespace);
        (
            at(r, "/kind").to_string(),
            ns.to_string(),
            at(r, "/name").to_string(),
        )
    };
    match kind {
        "Kustomization" | "HelmChart" => o.pointer("/spec/sourceRef").map(reference),
        "HelmRelease" => match o.pointer("/spec/chartRef") {
            Some(r) => Some(reference(r)),
            None => {
                let ns = o
                    .pointer("/spec/chart/spec/sourceRef/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(namespace);
                Some((
                    "HelmChart".into(),
                    ns.into(),
                    format!("{namespace}-{}", at(o, "/metadata/name")),
                ))
            }
        },
        _ => None,
    }
}

async fn get(api: &Api<DynamicObject>, kind: &Kind, namespace: &str, name: &str) -> anyhow::Result<Value> {
    match api.get(name).await {
        Ok(o) => Ok(serde_json::to_value(o)?),
        Err(e) if not_found(&e) && !crd_missing(&e) => {
            anyhow::bail!(
                "{} object '{name}' not found in {namespace:?} namespace",
                kind.kind
            )
        }
        Err(e) => Err(explain(e, kind)),
    }
}

/// `reconcile <kind> <name>`: requests a reconcile (the source's first with `--with-source`; a HelmChart's
/// source always, as flux does), waits until it is handled and prints the outcome.
pub async fn reconcile(
    cluster: &Cluster,
    kind: &'static Kind,
    namespace: &str,
    name: &str,
    opts: Options,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let api = cluster.api(kind, Some(namespace));
    let o = get(&api, kind, namespace, name).await?;
    if is_static(&kind.kind) {
        log::success("reconciliation not supported by the object");
        return Ok(());
    }
    if o.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        anyhow::bail!("resource is suspended");
    }
    if (opts.with_source || kind.kind == "HelmChart")
        && let Some((source_kind, source_ns, source_name)) = source_of(&kind.kind, namespace, &o)
    {
        let source = kinds::get(&source_kind)
            .filter(|k| k.kind != "ExternalArtifact")
            .ok_or_else(|| anyhow::anyhow!("cannot reconcile source of kind {source_kind}"))?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let inner = Options {
            with_source: true,
            ..Options::default()
        };
        Box::pin(reconcile(cluster, source, &source_ns, &source_name, inner, left)).await?;
    }
    let before = at(&o, "/status/lastHandledReconcileAt").to_string();
    log::action(&format!(
        "annotating {} {name} in {namespace} namespace",
        kind.kind
    ));
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(request_patch(kind, opts)),
    )
    .await
    .map_err(|e| explain(e, kind))?;
    log::success(&format!("{} annotated", kind.kind));
    log::waiting(&format!("waiting for {} reconciliation", kind.kind));
    let o = wait(&api, kind, name, deadline, timeout, |o| {
        at(o, "/status/lastHandledReconcileAt") != before
    })
    .await?;
    log::success(&success_message(&kind.kind, &o));
    Ok(())
}

/// The merge patch that requests a reconcile now (and a HelmRelease's forced upgrade or retry reset).
pub fn request_patch(kind: &Kind, opts: Options) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let mut annotations = json!({REQUESTED_AT: now});
    if kind.kind == "HelmRelease" {
        if opts.force {
            annotations[FORCE_AT] = json!(now);
        }
        if opts.reset {
            annotations[RESET_AT] = json!(now);
        }
    }
    json!({"metadata": {"annotations": annotations}})
}

/// Waits until `name` of `kind` is Ready at its current generation (or has failed); the object then.
pub async fn wait_ready(
    cluster: &Cluster,
    kind: &Kind,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let api = cluster.api(kind, Some(&cluster.namespace));
    let deadline = tokio::time::Instant::now() + timeout;
    let current = |o: &Value| {
        let generation = o
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        o.pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            >= generation
    };
    wait(&api, kind, name, deadline, timeout, current).await
}

/// Polls `name` until `handled` says the request was seen and the outcome is known; the object then.
async fn wait(
    api: &Api<DynamicObject>,
    kind: &Kind,
    name: &str,
    deadline: tokio::time::Instant,
    timeout: Duration,
    handled: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let started = std::time::Instant::now();
    let mut progress = log::Progress::new();
    loop {
        let o = serde_json::to_value(api.get(name).await.map_err(|e| explain(e, kind))?)?;
        let state = if handled(&o) {
            outcome(&o)
        } else {
            Outcome::Pending("waiting for the controller to pick up the request".into())
        };
        match state {
            Outcome::Ready => return Ok(o),
            Outcome::Failed(message) => {
                progress.clear();
                anyhow::bail!("{} reconciliation failed: '{message}'", kind.kind)
            }
            Outcome::Pending(why) => {
                if tokio::time::Instant::now() >= deadline {
                    progress.clear();
                    anyhow::bail!(
                        "timed out after {} waiting for {} {name} to be reconciled: {why}",
                        driftless_api::meta::format_duration(Duration::from_secs(
                            timeout.as_secs_f64().round() as u64
                        )),
                        kind.kind
                    );
                }
                progress.show(&format!("{}s {why}", started.elapsed().as_secs()));
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// The objects `names` (or all with `all`) of `kind` in `namespace`; a missing name is reported and
/// counted.
async fn select(
    api: &Api<DynamicObject>,
    kind: &Kind,
    namespace: &str,
    names: &[String],
    all: bool,
    missing: &mut usize,
) -> anyhow::Result<Vec<Value>> {
    anyhow::ensure!(
        all || !names.is_empty(),
        "{} name is required (or --all)",
        human(&kind.kind)
    );
    let mut found = Vec::new();
    if all && names.is_empty() {
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| explain(e, kind))?;
        if list.items.is_empty() {
            log::failure(&format!(
                "no {} objects found in {namespace} namespace",
                kind.kind
            ));
            *missing += 1;
        }
        for o in list.items {
            found.push(serde_json::to_value(o)?);
        }
        return Ok(found);
    }
    let mut seen = std::collections::HashSet::new();
    for name in names.iter().filter(|n| seen.insert(n.as_str())) {
        match api.get_opt(name).await.map_err(|e| explain(e, kind))? {
            Some(o) => found.push(serde_json::to_value(o)?),
            None => {
                log::failure(&format!(
                    "{} {name} not found in {namespace} namespace",
                    kind.kind
                ));
                *missing += 1;
            }
        }
    }
    Ok(found)
}

/// The merge patch that suspends (or resumes) an object of `kind`.
pub fn suspend_patch(kind: &Kind, suspend: bool) -> Value {
    if kind.kind == "ArtifactGenerator" {
        let value = if suspend { json!("disabled") } else { Value::Null };
        json!({"metadata": {"annotations": {"source.extensions.fluxcd.io/reconcile": value}}})
    } else {
        json!({"spec": {"suspend": suspend}})
    }
}

/// `suspend <kind> <name>…|--all`.
pub async fn suspend(
    cluster: &Cluster,
    kind: &'static Kind,
    names: &[String],
    all: bool,
) -> anyhow::Result<()> {
    let namespace = cluster.namespace.as_str();
    let api = cluster.api(kind, Some(namespace));
    let mut missing = 0;
    for o in select(&api, kind, namespace, names, all, &mut missing).await? {
        let name = at(&o, "/metadata/name");
        log::action(&format!(
            "suspending {} {name} in {namespace} namespace",
            human(&kind.kind)
        ));
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(suspend_patch(kind, true)),
        )
        .await
        .map_err(|e| explain(e, kind))?;
        log::success(&format!("{} suspended", human(&kind.kind)));
    }
    anyhow::ensure!(missing == 0, "{missing} {} object(s) not found", kind.kind);
    Ok(())
}

/// `resume <kind> <name>…|--all`: unsuspends, and waits for the reconcile with `wait` (the default for
/// one name, as flux).
pub async fn resume(
    cluster: &Cluster,
    kind: &'static Kind,
    names: &[String],
    all: bool,
    wait_for: Option<bool>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let namespace = cluster.namespace.as_str();
    let api = cluster.api(kind, Some(namespace));
    let deadline = tokio::time::Instant::now() + timeout;
    let mut missing = 0;
    let mut resumed = Vec::new();
    for o in select(&api, kind, namespace, names, all, &mut missing).await? {
        let name = at(&o, "/metadata/name").to_string();
        log::action(&format!(
            "resuming {} {name} in {namespace} namespace",
            human(&kind.kind)
        ));
        let patched = api
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(suspend_patch(kind, false)),
            )
            .await
            .map_err(|e| explain(e, kind))?;
        log::success(&format!("{} resumed", human(&kind.kind)));
        resumed.push((name, patched.metadata.generation));
    }
    let mut failed = 0;
    if wait_for.unwrap_or(names.len() == 1) && !is_static(&kind.kind) {
        log::waiting(&format!("waiting for {} reconciliation", kind.kind));
        resumed.sort();
        let waits = resumed.iter().map(|(name, generation)| {
            let api = api.clone();
            async move {
                let seen = |o: &Value| {
                    o.pointer("/status/observedGeneration").and_then(Value::as_i64) >= *generation
                };
                (name, wait(&api, kind, name, deadline, timeout, seen).await)
            }
        });
        for (name, result) in futures::future::join_all(waits).await {
            match result {
                Ok(o) => {
                    log::success(&format!("{} {name} reconciliation completed", kind.kind));
                    log::success(&success_message(&kind.kind, &o));
                }
                Err(e) => {
                    log::failure(&format!("{} {name} {e:#}", kind.kind));
                    failed += 1;
                }
            }
        }
    }
    anyhow::ensure!(failed == 0, "reconciliation failed for {failed} {}(s)", kind.kind);
    anyhow::ensure!(missing == 0, "{missing} {} object(s) not found", kind.kind);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(generation: i64, observed: i64, conditions: Value) -> Value {
        json!({"metadata": {"generation": generation},
               "status": {"observedGeneration": observed, "conditions": conditions}})
    }

    #[test]
    fn outcomes_read_the_conditions_of_the_current_generation() {
        let ready = json!([{"type": "Ready", "status": "True", "message": "ok"}]);
        assert_eq!(outcome(&obj(2, 2, ready.clone())), Outcome::Ready);
        assert!(matches!(outcome(&obj(3, 2, ready)), Outcome::Pending(_)));
        let retrying = json!([{"type": "Ready", "status": "False", "message": "bad port"},
            {"type": "Reconciling", "status": "True", "reason": "ProgressingWithRetry", "message": "retrying"}]);
        assert_eq!(outcome(&obj(1, 1, retrying)), Outcome::Failed("bad port".into()));
        let progressing = json!([{"type": "Ready", "status": "Unknown", "message": "building"},
            {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": "building"}]);
        assert_eq!(
            outcome(&obj(1, 1, progressing)),
            Outcome::Pending("building".into())
        );
        let stalled = json!([{"type": "Ready", "status": "False", "message": "x"},
            {"type": "Stalled", "status": "True", "message": "invalid spec"}]);
        assert_eq!(
            outcome(&obj(1, 1, stalled)),
            Outcome::Failed("invalid spec".into())
        );
        assert!(matches!(outcome(&obj(1, 1, json!([]))), Outcome::Pending(_)));
        let source_not_ready = json!([{"type": "Ready", "status": "False", "reason": "ArtifactFailed",
            "message": "Source 'GitRepository/flux-system/flux-system' is not ready, artifact not found"}]);
        assert!(
            matches!(outcome(&obj(1, 1, source_not_ready)), Outcome::Pending(_)),
            "a source not ready yet is waited for"
        );
        let source_missing = json!([{"type": "Ready", "status": "False", "reason": "ArtifactFailed",
            "message": "Source 'GitRepository/apps/gone' not found"}]);
        assert!(matches!(outcome(&obj(1, 1, source_missing)), Outcome::Failed(_)));
    }

    #[test]
    fn sources_are_found_as_flux_finds_them() {
        let ks = json!({"spec": {"sourceRef": {"kind": "GitRepository", "name": "fleet"}}});
        assert_eq!(
            source_of("Kustomization", "apps", &ks),
            Some(("GitRepository".into(), "apps".into(), "fleet".into()))
        );
        let hr = json!({"metadata": {"name": "podinfo"},
            "spec": {"chart": {"spec": {"sourceRef": {"kind": "HelmRepository", "name": "r", "namespace": "src"}}}}});
        assert_eq!(
            source_of("HelmRelease", "apps", &hr),
            Some(("HelmChart".into(), "src".into(), "apps-podinfo".into()))
        );
        let hr = json!({"spec": {"chartRef": {"kind": "OCIRepository", "name": "chart"}}});
        assert_eq!(
            source_of("HelmRelease", "apps", &hr),
            Some(("OCIRepository".into(), "apps".into(), "chart".into()))
        );
        assert_eq!(source_of("GitRepository", "apps", &json!({})), None);
    }

    #[test]
    fn success_messages_are_flux_s() {
        let git = json!({"status": {"artifact": {"revision": "main@sha1:abc"}}});
        assert_eq!(
            success_message("GitRepository", &git),
            "fetched revision main@sha1:abc"
        );
        let policy = json!({"status": {"latestRef": {"name": "ghcr.io/x", "tag": "1.0.0"}}});
        assert_eq!(
            success_message("ImagePolicy", &policy),
            "selected ref ghcr.io/x:1.0.0"
        );
        let repo = json!({"status": {"lastScanResult": {"tagCount": 3}}});
        assert_eq!(success_message("ImageRepository", &repo), "scan fetched 3 tags");
    }
}
