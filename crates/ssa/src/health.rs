//! Health: kstatus's rules for built-in kinds (Deployment rollout, StatefulSet, DaemonSet, ReplicaSet, Job,
//! Pod, PVC, Service, PodDisruptionBudget, CRD), the `Ready`/`Reconciling`/`Stalled` conditions for custom
//! resources, CEL expressions (`healthCheckExprs`) for kinds that need their own, and the wait for a set
//! of objects to become healthy, as Flux's `WaitForSet`.

use std::{collections::HashMap, fmt, sync::Arc, time::Duration};

use kube::{Api, api::DynamicObject, core::GroupVersionKind};
use serde_json::Value;

use crate::{Error, ResourceManager, api_message, str_at};

/// kstatus's status of one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not there yet.
    InProgress,
    /// Will not get there without a change (a rollout past its deadline, a failed Job, `Stalled`).
    Failed,
    /// Reached its desired state.
    Current,
    /// Being deleted.
    Terminating,
    /// Does not exist.
    NotFound,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::InProgress => "InProgress",
            Status::Failed => "Failed",
            Status::Current => "Current",
            Status::Terminating => "Terminating",
            Status::NotFound => "NotFound",
        })
    }
}

/// CEL expressions deciding a kind's status (Flux's `healthCheckExprs`): the first of `in_progress`,
/// `failed`, `current` that holds wins; none holding means in progress.
#[derive(Clone, Debug, Default)]
pub struct Expressions {
    /// When the object is still progressing.
    pub in_progress: Option<String>,
    /// When it failed.
    pub failed: Option<String>,
    /// When it is healthy (required).
    pub current: String,
}

/// The CEL expressions by API group and kind, as Flux matches `healthCheckExprs`: only the group of an
/// entry's `apiVersion` counts (every served version of the kind), and an entry without a kind covers the
/// group's kinds that have no entry of their own.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    by_kind: HashMap<(String, String), Arc<Compiled>>,
}

#[derive(Debug)]
struct Compiled {
    in_progress: Option<cel::Program>,
    failed: Option<cel::Program>,
    current: cel::Program,
}

impl Rules {
    /// The rules of Flux's `healthCheckExprs` (Kustomization and HelmRelease).
    pub fn from_checks(checks: &[driftless_api::kustomize::CustomHealthCheck]) -> Result<Self, String> {
        let exprs: Vec<(&str, &str, Expressions)> = checks
            .iter()
            .map(|c| {
                (
                    c.api_version.as_str(),
                    c.kind.as_str(),
                    Expressions {
                        in_progress: c.in_progress.clone(),
                        failed: c.failed.clone(),
                        current: c.current.clone(),
                    },
                )
            })
            .collect();
        Self::new(exprs.iter().map(|(a, k, e)| (*a, *k, e)))
    }

    /// Compiles the expressions; an expression that does not parse is an error naming it.
    pub fn new<'a>(
        exprs: impl IntoIterator<Item = (&'a str, &'a str, &'a Expressions)>,
    ) -> Result<Self, String> {
        let compile = |kind: &str, which: &str, e: &str| {
            cel::Program::compile(e)
                .map_err(|err| format!("{kind} {which} expression '{e}' does not compile: {err}"))
        };
        let mut by_kind = HashMap::new();
        for (api_version, kind, e) in exprs {
            let compiled = Compiled {
                in_progress: e
                    .in_progress
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .map(|s| compile(kind, "inProgress", s))
                    .transpose()?,
                failed: e
                    .failed
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .map(|s| compile(kind, "failed", s))
                    .transpose()?,
                current: compile(kind, "current", &e.current)?,
            };
            by_kind.insert(
                (group_of(api_version).to_string(), kind.to_string()),
                Arc::new(compiled),
            );
        }
        Ok(Self { by_kind })
    }
}

/// The API group of an `apiVersion` (empty for the core group's `v1`).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The object's top-level fields (`metadata`, `spec`, `status`, empty when missing) as the variables.
fn eval(program: &cel::Program, obj: &Value) -> Result<bool, String> {
    let empty = Value::Object(Default::default());
    let mut vars: Vec<(&str, &Value)> = obj
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default();
    for field in ["metadata", "spec", "status"] {
        if obj.get(field).is_none() {
            vars.push((field, &empty));
        }
    }
    driftless_runtime::cel::eval_bool(program, &vars)
}

fn int(o: &Value, path: &[&str], default: i64) -> i64 {
    let mut v = o;
    for p in path {
        match v.get(p) {
            Some(next) => v = next,
            None => return default,
        }
    }
    v.as_i64().unwrap_or(default)
}

/// The condition `type` of `o`: (status, reason, message).
fn condition<'a>(o: &'a Value, kind: &str) -> Option<(&'a str, &'a str, &'a str)> {
    o.pointer("/status/conditions")?.as_array()?.iter().find_map(|c| {
        (c.get("type")?.as_str()? == kind).then(|| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
            (s("status"), s("reason"), s("message"))
        })
    })
}

fn is_true(o: &Value, kind: &str) -> bool {
    condition(o, kind).is_some_and(|c| c.0 == "True")
}

/// The status of `o` and why, by kstatus's rules, or by `rules` when its kind has expressions.
pub fn compute(o: &Value, rules: &Rules) -> (Status, String) {
    use Status::*;
    if o.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return (Terminating, "resource scheduled for deletion".into());
    }
    let generation = int(o, &["metadata", "generation"], 0);
    let observed = o.pointer("/status/observedGeneration").and_then(Value::as_i64);
    if let Some(observed) = observed
        && observed != generation
    {
        return (
            InProgress,
            format!(
                "{} generation is {generation}, but latest observed generation is {observed}",
                str_at(o, &["kind"])
            ),
        );
    }
    let (api_version, kind) = (str_at(o, &["apiVersion"]), str_at(o, &["kind"]));
    let group = group_of(api_version).to_string();
    if let Some(c) = rules
        .by_kind
        .get(&(group.clone(), kind.to_string()))
        .or_else(|| rules.by_kind.get(&(group, String::new())))
    {
        let programs = [
            (c.in_progress.as_ref(), InProgress),
            (c.failed.as_ref(), Failed),
            (Some(&c.current), Current),
        ];
        for (program, status) in programs {
            let Some(program) = program else { continue };
            match eval(program, o) {
                Ok(true) => return (status, format!("healthCheckExprs: {status}")),
                Ok(false) => {}
                Err(e) => return (InProgress, format!("healthCheckExprs: {e}")),
            }
        }
        return (InProgress, "healthCheckExprs: no expression holds".into());
    }
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    match (group, kind) {
        ("apps", "Deployment") => deployment(o),
        ("apps", "StatefulSet") => stateful_set(o),
        ("apps", "DaemonSet") => daemon_set(o),
        ("apps", "ReplicaSet") => replica_set(o),
        ("batch", "Job") => job(o),
        ("", "Pod") => pod(o),
        ("", "PersistentVolumeClaim") => match str_at(o, &["status", "phase"]) {
            "Bound" => (Current, "PVC is Bound".into()),
            phase => (InProgress, format!("PVC is not Bound. phase: {phase}")),
        },
        ("", "Service") => {
            let lb = str_at(o, &["spec", "type"]) == "LoadBalancer";
            let ingress = o
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .is_some_and(|i| !i.is_empty());
            if lb && !ingress {
                (InProgress, "Pending external IP".into())
            } else {
                (Current, "Service is ready".into())
            }
        }
        ("policy", "PodDisruptionBudget") => {
            let (healthy, desired) = (
                int(o, &["status", "currentHealthy"], 0),
                int(o, &["status", "desiredHealthy"], 0),
            );
            if healthy < desired {
                (
                    InProgress,
                    format!("Budget not met. healthy replicas: {healthy}/{desired}"),
                )
            } else {
                (Current, format!("Budget is met. Replicas: {healthy}/{desired}"))
            }
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            if is_true(o, "Established") {
                (Current, "CRD is established".into())
            } else if condition(o, "NamesAccepted").is_some_and(|c| c.0 == "False") {
                (Failed, "CRD names have not been accepted".into())
            } else {
                (InProgress, "Install in progress".into())
            }
        }
        _ => generic(o),
    }
}

/// Custom resources: `Stalled` fails, `Reconciling` progresses, `Ready` decides; none of them means a
/// static object, which is current.
fn generic(o: &Value) -> (Status, String) {
    if let Some((_, reason, message)) = condition(o, "Stalled").filter(|c| c.0 == "True") {
        return (Status::Failed, format!("{reason}: {message}"));
    }
    if let Some((_, reason, message)) = condition(o, "Reconciling").filter(|c| c.0 == "True") {
        return (Status::InProgress, format!("{reason}: {message}"));
    }
    match condition(o, "Ready") {
        Some(("True", _, message)) => (Status::Current, message.to_string()),
        Some(("False", reason, message)) => (Status::Failed, format!("{reason}: {message}")),
        Some((_, reason, message)) => (Status::InProgress, format!("{reason}: {message}")),
        None => (Status::Current, "Resource is current".into()),
    }
}

fn deployment(o: &Value) -> (Status, String) {
    use Status::*;
    if let Some(("True" | "False", "ProgressDeadlineExceeded", message)) = condition(o, "Progressing") {
        return (Failed, format!("Progress deadline exceeded: {message}"));
    }
    let spec = int(o, &["spec", "replicas"], 1);
    let [replicas, updated, available, ready] = [
        "replicas",
        "updatedReplicas",
        "availableReplicas",
        "readyReplicas",
    ]
    .map(|f| int(o, &["status", f], 0));
    if spec > replicas {
        return (InProgress, format!("Replicas: {replicas}/{spec}"));
    }
    if updated < spec {
        return (InProgress, format!("Updated: {updated}/{spec}"));
    }
    if replicas > updated {
        return (InProgress, format!("Pending termination: {}", replicas - updated));
    }
    if available < updated {
        return (InProgress, format!("Available: {available}/{updated}"));
    }
    if ready < spec {
        return (InProgress, format!("Ready: {ready}/{spec}"));
    }
    if spec > 0
        && !condition(o, "Progressing").is_some_and(|c| c.0 == "True" && c.1 == "NewReplicaSetAvailable")
    {
        return (InProgress, "ReplicaSet not Available".into());
    }
    if spec > 0 && !is_true(o, "Available") {
        return (InProgress, "Deployment not Available".into());
    }
    (Current, format!("Deployment is available. Replicas: {replicas}"))
}

fn stateful_set(o: &Value) -> (Status, String) {
    use Status::*;
    if str_at(o, &["spec", "updateStrategy", "type"]) == "OnDelete" {
        return (
            Current,
            "StatefulSet is using the OnDelete update strategy".into(),
        );
    }
    let spec = int(o, &["spec", "replicas"], 1);
    let [replicas, ready, current, updated] =
        ["replicas", "readyReplicas", "currentReplicas", "updatedReplicas"]
            .map(|f| int(o, &["status", f], 0));
    if spec > replicas {
        return (InProgress, format!("Replicas: {replicas}/{spec}"));
    }
    if ready < spec {
        return (InProgress, format!("Ready: {ready}/{spec}"));
    }
    let partition = int(o, &["spec", "updateStrategy", "rollingUpdate", "partition"], 0);
    if partition > 0 {
        if updated < spec - partition {
            return (InProgress, format!("updated: {updated}/{}", spec - partition));
        }
        return (
            Current,
            format!(
                "Partitioned roll out complete. updated: {updated}/{}",
                spec - partition
            ),
        );
    }
    if current < spec {
        return (InProgress, format!("current: {current}/{spec}"));
    }
    let (cur, upd) = (
        str_at(o, &["status", "currentRevision"]),
        str_at(o, &["status", "updateRevision"]),
    );
    if cur != upd {
        return (
            InProgress,
            format!("Waiting for updated revision {upd} to match current {cur}"),
        );
    }
    (
        Current,
        format!("All replicas scheduled as expected. Replicas: {replicas}"),
    )
}

fn daemon_set(o: &Value) -> (Status, String) {
    use Status::*;
    let [desired, current, updated, available, ready] = [
        "desiredNumberScheduled",
        "currentNumberScheduled",
        "updatedNumberScheduled",
        "numberAvailable",
        "numberReady",
    ]
    .map(|f| int(o, &["status", f], 0));
    if o.pointer("/status/desiredNumberScheduled").is_none() {
        return (InProgress, "Missing .status.desiredNumberScheduled".into());
    }
    for (have, what) in [
        (current, "Current"),
        (updated, "Updated"),
        (available, "Available"),
        (ready, "Ready"),
    ] {
        if have < desired {
            return (InProgress, format!("{what}: {have}/{desired}"));
        }
    }
    (
        Current,
        format!("All replicas scheduled as expected. Replicas: {desired}"),
    )
}

fn replica_set(o: &Value) -> (Status, String) {
    use Status::*;
    if let Some(("True", reason, message)) = condition(o, "ReplicaFailure") {
        return (Failed, format!("{reason}: {message}"));
    }
    let spec = int(o, &["spec", "replicas"], 1);
    let [labelled, available, ready] =
        ["fullyLabeledReplicas", "availableReplicas", "readyReplicas"].map(|f| int(o, &["status", f], 0));
    for (have, what) in [(labelled, "Labelled"), (available, "Available"), (ready, "Ready")] {
        if have < spec {
            return (InProgress, format!("{what}: {have}/{spec}"));
        }
    }
    (Current, format!("ReplicaSet is available. Replicas: {spec}"))
}

/// A Job is healthy once complete (a running Job is still in progress, unlike upstream kstatus).
fn job(o: &Value) -> (Status, String) {
    let completions = int(o, &["spec", "completions"], int(o, &["spec", "parallelism"], 1));
    let [succeeded, failed, active] = ["succeeded", "failed", "active"].map(|f| int(o, &["status", f], 0));
    if is_true(o, "Complete") {
        return (
            Status::Current,
            format!("Job Completed. succeeded: {succeeded}/{completions}"),
        );
    }
    if is_true(o, "Failed") {
        return (
            Status::Failed,
            format!("Job Failed. failed: {failed}/{completions}"),
        );
    }
    if str_at(o, &["status", "startTime"]).is_empty() {
        return (Status::InProgress, "Job not started".into());
    }
    (
        Status::InProgress,
        format!("Job in progress. success:{succeeded}, active: {active}, failed: {failed}"),
    )
}

fn pod(o: &Value) -> (Status, String) {
    match str_at(o, &["status", "phase"]) {
        "Succeeded" => (Status::Current, "Pod has completed successfully".into()),
        "Failed" => (Status::Failed, "Pod has completed, but not successfully".into()),
        "Running" if is_true(o, "Ready") => (Status::Current, "Pod is Ready".into()),
        phase => (Status::InProgress, format!("Pod phase: {phase}")),
    }
}

/// An object to wait for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Its kind.
    pub gvk: GroupVersionKind,
    /// Its namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Target {
    /// `Kind/namespace/name`, as Flux prints it.
    pub fn subject(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.gvk.kind, self.name)
        } else {
            format!("{}/{}/{}", self.gvk.kind, self.namespace, self.name)
        }
    }
}

/// How to wait.
#[derive(Clone, Copy, Debug)]
pub struct WaitOptions {
    /// Between two looks at the objects.
    pub interval: Duration,
    /// Give up after.
    pub timeout: Duration,
    /// Stop at the first `Failed` object instead of waiting for the timeout.
    pub fail_fast: bool,
}

/// Why a wait ended without every object current; the texts are Flux's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The timeout passed.
    #[error("timeout waiting for: [{}]", .0.join(", "))]
    Timeout(Vec<String>),
    /// Some object failed (fail fast).
    #[error("failed early due to stalled resources: [{}]", .0.join(", "))]
    Failed(Vec<String>),
    /// Looking at an object failed.
    #[error("{0}")]
    Api(String),
    /// The caller gave up (a new revision arrived).
    #[error("canceled: {0}")]
    Canceled(String),
}

impl ResourceManager {
    /// Waits until every target is current, as Flux's `WaitForSet`: polls every `interval`, fails fast
    /// on a `Failed` object when asked, gives up at the timeout, and stops when `cancel` completes
    /// (with its reason).
    pub async fn wait_for_set(
        &self,
        targets: &[Target],
        rules: &Rules,
        options: WaitOptions,
        cancel: impl std::future::Future<Output = String>,
    ) -> Result<(), WaitError> {
        let discovery = self
            .resolve(targets.iter().map(|t| t.gvk.clone()))
            .await
            .map_err(|e: Error| WaitError::Api(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + options.timeout;
        tokio::pin!(cancel);
        loop {
            let mut pending = Vec::new();
            let mut failed = Vec::new();
            for t in targets {
                let (status, _) = self.status_of(&discovery, t, rules).await?;
                let line = format!("{} status: '{status}'", t.subject());
                match status {
                    Status::Current => {}
                    Status::Failed => failed.push(line),
                    _ => pending.push(line),
                }
            }
            if options.fail_fast && !failed.is_empty() {
                return Err(WaitError::Failed(failed));
            }
            pending.extend(failed);
            if pending.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(WaitError::Timeout(pending));
            }
            let nap = options.interval.min(deadline - tokio::time::Instant::now());
            tokio::select! {
                reason = &mut cancel => return Err(WaitError::Canceled(reason)),
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    async fn status_of(
        &self,
        discovery: &crate::Kinds,
        t: &Target,
        rules: &Rules,
    ) -> Result<(Status, String), WaitError> {
        let Some((ar, caps)) = discovery.resolve_gvk(&t.gvk) else {
            return Ok((
                Status::NotFound,
                format!("no matches for kind \"{}\"", t.gvk.kind),
            ));
        };
        let api: Api<DynamicObject> = self.api(&ar, &caps, &t.namespace);
        match api.get_opt(&t.name).await {
            Ok(Some(obj)) => Ok(compute(
                &serde_json::to_value(obj).expect("objects serialise"),
                rules,
            )),
            Ok(None) => Ok((Status::NotFound, "resource not found".into())),
            Err(e) => Err(WaitError::Api(format!("{}: {}", t.subject(), api_message(&e)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deploy(spec: i64, status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "generation": 2},
               "spec": {"replicas": spec}, "status": status})
    }

    fn rolled_out(n: i64) -> Value {
        json!({"observedGeneration": 2, "replicas": n, "updatedReplicas": n, "availableReplicas": n, "readyReplicas": n,
               "conditions": [{"type": "Available", "status": "True"},
                              {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]})
    }

    #[test]
    fn deployments_follow_their_rollout() {
        let none = Rules::default();
        assert_eq!(compute(&deploy(2, rolled_out(2)), &none).0, Status::Current);
        let mut old = rolled_out(2);
        old["observedGeneration"] = json!(1);
        assert_eq!(compute(&deploy(2, old), &none).0, Status::InProgress);
        let (status, message) = compute(&deploy(3, rolled_out(2)), &none);
        assert_eq!((status, message.as_str()), (Status::InProgress, "Replicas: 2/3"));
        let mut stuck = rolled_out(1);
        stuck["conditions"][1] =
            json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"});
        assert_eq!(compute(&deploy(2, stuck), &none).0, Status::Failed);
        assert_eq!(
            compute(&deploy(0, json!({"observedGeneration": 2})), &none).0,
            Status::Current
        );
    }

    #[test]
    fn jobs_pvcs_services_and_custom_resources() {
        let none = Rules::default();
        let job = |status: Value| json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "status": status});
        assert_eq!(compute(&job(json!({})), &none).0, Status::InProgress);
        assert_eq!(
            compute(
                &job(json!({"conditions": [{"type": "Complete", "status": "True"}]})),
                &none
            )
            .0,
            Status::Current
        );
        assert_eq!(
            compute(
                &job(json!({"conditions": [{"type": "Failed", "status": "True"}]})),
                &none
            )
            .0,
            Status::Failed
        );
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p"}, "status": {"phase": "Pending"}});
        assert_eq!(compute(&pvc, &none).0, Status::InProgress);
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "ClusterIP"}});
        assert_eq!(compute(&svc, &none).0, Status::Current);
        let cr = |conditions: Value| {
            json!({"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t", "generation": 1},
                                            "status": {"observedGeneration": 1, "conditions": conditions}})
        };
        assert_eq!(
            compute(&cr(json!([{"type": "Ready", "status": "True"}])), &none).0,
            Status::Current
        );
        assert_eq!(
            compute(&cr(json!([{"type": "Ready", "status": "False"}])), &none).0,
            Status::Failed
        );
        assert_eq!(
            compute(
                &cr(json!([{"type": "Ready", "status": "False"}, {"type": "Reconciling", "status": "True"}])),
                &none
            )
            .0,
            Status::InProgress
        );
        assert_eq!(
            compute(&cr(json!([{"type": "Stalled", "status": "True"}])), &none).0,
            Status::Failed
        );
        let static_cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(compute(&static_cm, &none).0, Status::Current);
    }

    #[test]
    fn cel_expressions_decide_their_kind_in_order() {
        let exprs = Expressions {
            in_progress: Some("status.phase == 'Issuing'".into()),
            failed: Some("status.conditions.exists(c, c.type == 'Ready' && c.status == 'False')".into()),
            current: "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')".into(),
        };
        let rules = Rules::new([("cert-manager.io/v1", "Certificate", &exprs)]).unwrap();
        let cert = |phase: &str, ready: &str| {
            json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "c", "generation": 1},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]}})
        };
        assert_eq!(compute(&cert("Issuing", "True"), &rules).0, Status::InProgress);
        assert_eq!(compute(&cert("Done", "False"), &rules).0, Status::Failed);
        assert_eq!(compute(&cert("Done", "True"), &rules).0, Status::Current);
        assert_eq!(compute(&cert("Done", "Unknown"), &rules).0, Status::InProgress);
        let (status, message) = compute(
            &json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c"}}),
            &rules,
        );
        assert_eq!(status, Status::InProgress, "{message}");
        // only the group counts; an entry without a kind covers the group's other kinds
        let v1beta1 = json!({"apiVersion": "cert-manager.io/v1beta1", "kind": "Certificate",
            "metadata": {"name": "c"}, "status": {"phase": "Issuing"}});
        assert_eq!(compute(&v1beta1, &rules).0, Status::InProgress);
        let group_wide = Expressions {
            current: "status.ok == true".into(),
            ..Default::default()
        };
        let rules = Rules::new([
            ("cert-manager.io/v1", "Certificate", &exprs),
            ("cert-manager.io/v1", "", &group_wide),
        ])
        .unwrap();
        let issuer = json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "i"},
            "status": {"ok": true, "conditions": [{"type": "Ready", "status": "False"}]}});
        assert_eq!(
            compute(&issuer, &rules).0,
            Status::Current,
            "the group-wide entry"
        );
        assert_eq!(
            compute(&cert("Done", "True"), &rules).0,
            Status::Current,
            "the kind's own entry"
        );
        let bad = Expressions {
            current: "status.(".into(),
            ..Default::default()
        };
        assert!(
            Rules::new([("x/v1", "X", &bad)])
                .unwrap_err()
                .contains("X current expression")
        );
    }

    #[test]
    fn wait_errors_read_as_flux_s() {
        let e = WaitError::Timeout(vec!["Deployment/ns/web status: 'InProgress'".into()]);
        assert_eq!(
            e.to_string(),
            "timeout waiting for: [Deployment/ns/web status: 'InProgress']"
        );
        let e = WaitError::Failed(vec![
            "Job/ns/j status: 'Failed'".into(),
            "Deployment/ns/w status: 'Failed'".into(),
        ]);
        assert_eq!(
            e.to_string(),
            "failed early due to stalled resources: [Job/ns/j status: 'Failed', Deployment/ns/w status: 'Failed']"
        );
    }
}
