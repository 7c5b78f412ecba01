//! A workload simulator for the test cluster, which runs no controllers (nothing rolls out): like kwok,
//! it writes what the kube controllers, the kubelet and the API server's allocators would, a while after
//! each change — Deployments (with the ReplicaSet of their template), StatefulSets, DaemonSets and
//! ReplicaSets rolled out and available, Jobs complete, Pods running and ready (a Pod that does not
//! restart, a Helm test hook for one, succeeded), Services given a cluster IP (a LoadBalancer an ingress). A workload
//! labelled `driftless.io/simulate: fail` fails instead: a Deployment past its progress deadline, a Job
//! failed, a Pod failed. Tests start one for their own namespace ([`start`]), so the failure paths of
//! other tests running at the same time still see nothing roll out.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
        batch::v1::Job,
        core::v1::Pod,
    },
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{WatchStreamExt, watcher},
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The label that makes a workload fail.
pub const FAIL_LABEL: &str = "driftless.io/simulate";

/// Runs the simulator for `namespace` (every namespace: `None`) until the returned [`Simulator`] is
/// dropped.
pub fn start(client: Client, namespace: Option<&str>, delay: Duration) -> Simulator {
    Simulator(tokio::spawn(run(client, namespace.map(String::from), delay)))
}

/// A running simulator; aborted when dropped.
pub struct Simulator(tokio::task::JoinHandle<()>);

impl Drop for Simulator {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Simulates every kind in `namespace` (or all), forever.
pub async fn run(client: Client, namespace: Option<String>, delay: Duration) {
    let ns = namespace.as_deref();
    tokio::join!(
        kind::<Deployment>(client.clone(), ns, delay, deployment),
        replicasets(client.clone(), ns),
        services(client.clone(), ns),
        kind::<StatefulSet>(client.clone(), ns, delay, statefulset),
        kind::<DaemonSet>(client.clone(), ns, delay, daemonset),
        kind::<ReplicaSet>(client.clone(), ns, delay, replicaset),
        kind::<Job>(client.clone(), ns, delay, job),
        kind::<Pod>(client, ns, delay, pod),
    );
}

fn failing<K: Resource>(obj: &K) -> bool {
    obj.labels().get(FAIL_LABEL).is_some_and(|v| v == "fail")
}

fn now() -> String {
    Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or_else(|_| Timestamp::now())
        .to_string()
}

/// Watches `K` everywhere; for each object whose status `status_of` would change, waits `delay` and
/// writes it.
async fn kind<K>(client: Client, namespace: Option<&str>, delay: Duration, status_of: fn(&K) -> Option<Value>)
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(event) = events.next().await {
        let Ok(obj) = event else { continue };
        let Some(status) = status_of(&obj) else { continue };
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        let api: Api<K> = Api::namespaced(client.clone(), &ns);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": status})),
                )
                .await;
        });
    }
}

/// The ReplicaSet the deployment controller would make for each Deployment's template (helm's `--wait`
/// looks for it): the template with its `pod-template-hash`, owned by the Deployment.
async fn replicasets(client: Client, namespace: Option<&str>) {
    let api: Api<Deployment> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(event) = events.next().await {
        let Ok(d) = event else { continue };
        let (ns, name) = (d.namespace().unwrap_or_default(), d.name_any());
        let Ok(mut template) = serde_json::to_value(&d.spec.template) else {
            continue;
        };
        let hash = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            template.to_string().hash(&mut h);
            format!("{:x}", h.finish() & 0xffff_ffff)
        };
        template["metadata"]["labels"]["pod-template-hash"] = hash.clone().into();
        let mut selector = serde_json::to_value(&d.spec.selector).unwrap_or(Value::Null);
        selector["matchLabels"]["pod-template-hash"] = hash.clone().into();
        let rs_name = format!("{name}-{hash}");
        let replicas = d.spec.replicas.unwrap_or(1);
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": rs_name, "namespace": ns,
                "labels": template["metadata"]["labels"].clone(),
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                    "uid": d.metadata.uid, "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"replicas": replicas, "selector": selector, "template": template}});
        let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
        let _ = rss
            .patch(
                &rs_name,
                &PatchParams::apply("driftless-simulator").force(),
                &Patch::Apply(&rs),
            )
            .await;
    }
}

/// A cluster IP for every Service that has none (the API server's allocator), and an ingress for a
/// LoadBalancer's status: helm's `--wait` waits for both.
async fn services(client: Client, namespace: Option<&str>) {
    use k8s_openapi::api::core::v1::Service;
    let api: Api<Service> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut next = 1u32;
    while let Some(event) = events.next().await {
        let Ok(svc) = event else { continue };
        let spec = svc.spec.clone().unwrap_or_default();
        let api: Api<Service> = Api::namespaced(client.clone(), &svc.namespace().unwrap_or_default());
        let name = svc.name_any();
        if spec.type_.as_deref() != Some("ExternalName")
            && spec.cluster_ip.as_deref().unwrap_or_default().is_empty()
        {
            next += 1;
            let ip = format!("10.96.{}.{}", (next >> 8) & 0xff, next & 0xff);
            let _ = api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"spec": {"clusterIP": ip, "clusterIPs": [ip]}})),
                )
                .await;
        }
        let balanced = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .is_some_and(|i| !i.is_empty());
        if spec.type_.as_deref() == Some("LoadBalancer") && !balanced {
            let _ = api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}})),
                )
                .await;
        }
    }
}

fn observed<K: Resource>(obj: &K, status_generation: Option<i64>) -> bool {
    obj.meta().generation.is_some() && status_generation == obj.meta().generation
}

fn deployment(d: &Deployment) -> Option<Value> {
    let status = d.status.clone().unwrap_or_default();
    if observed(d, status.observed_generation) {
        return None;
    }
    let replicas = d.spec.replicas.unwrap_or(1);
    if failing(d) {
        return Some(
            json!({"observedGeneration": d.metadata.generation, "replicas": replicas,
            "updatedReplicas": replicas, "availableReplicas": 0, "readyReplicas": 0,
            "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                 "message": "ReplicaSet has timed out progressing."}]}),
        );
    }
    Some(
        json!({"observedGeneration": d.metadata.generation, "replicas": replicas, "updatedReplicas": replicas,
        "availableReplicas": replicas, "readyReplicas": replicas,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}),
    )
}

fn statefulset(s: &StatefulSet) -> Option<Value> {
    let status = s.status.clone().unwrap_or_default();
    if observed(s, status.observed_generation) || failing(s) {
        return None;
    }
    let replicas = s.spec.replicas.unwrap_or(1);
    Some(
        json!({"observedGeneration": s.metadata.generation, "replicas": replicas, "readyReplicas": replicas,
        "currentReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas,
        "currentRevision": "simulated", "updateRevision": "simulated"}),
    )
}

fn daemonset(d: &DaemonSet) -> Option<Value> {
    let status = d.status.clone().unwrap_or_default();
    if observed(d, status.observed_generation) || failing(d) {
        return None;
    }
    Some(
        json!({"observedGeneration": d.metadata.generation, "desiredNumberScheduled": 1,
        "currentNumberScheduled": 1, "numberReady": 1, "updatedNumberScheduled": 1, "numberAvailable": 1,
        "numberMisscheduled": 0}),
    )
}

fn replicaset(r: &ReplicaSet) -> Option<Value> {
    let status = r.status.clone().unwrap_or_default();
    if observed(r, status.observed_generation) || failing(r) {
        return None;
    }
    let replicas = r.spec.replicas.unwrap_or(1);
    Some(
        json!({"observedGeneration": r.metadata.generation, "replicas": replicas, "readyReplicas": replicas,
        "availableReplicas": replicas, "fullyLabeledReplicas": replicas}),
    )
}

fn job(j: &Job) -> Option<Value> {
    let status = j.status.clone().unwrap_or_default();
    if status.conditions.as_ref().is_some_and(|c| !c.is_empty()) {
        return None;
    }
    let now = now();
    if failing(j) {
        return Some(json!({"startTime": now, "failed": 1, "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": now},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit", "lastTransitionTime": now}]}));
    }
    Some(
        json!({"startTime": now, "completionTime": now, "succeeded": 1, "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
        {"type": "Complete", "status": "True", "lastTransitionTime": now}]}),
    )
}

fn pod(p: &Pod) -> Option<Value> {
    let status = p.status.clone().unwrap_or_default();
    if status.phase.as_deref().is_some_and(|ph| ph != "Pending") {
        return None;
    }
    let now = now();
    let runs_once = p
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .is_some_and(|r| r != "Always");
    let phase = if failing(p) {
        "Failed"
    } else if runs_once {
        "Succeeded"
    } else {
        "Running"
    };
    let ready = if phase == "Running" { "True" } else { "False" };
    Some(json!({"phase": phase, "startTime": now, "conditions": [
        {"type": "Ready", "status": ready, "lastTransitionTime": now},
        {"type": "ContainersReady", "status": ready, "lastTransitionTime": now}]}))
}
