//! kustomize-controller end to end with source-controller, both impersonating their own ServiceAccounts
//! from `config/`, against a real Git server on loopback and the test cluster.

use std::time::{Duration, Instant};

use driftless_api::{
    kustomize::{CrossNamespaceSourceReference, Kustomization, KustomizationSpec},
    meta::{LocalObjectReference, RECONCILE_REQUEST_ANNOTATION},
    source::{GitRepository, GitRepositorySpec},
};
use driftless_e2e::Fleet;
use driftless_runtime::conditions;
use driftless_testkit::cluster::{TestNamespace, cluster};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Secret},
};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;

mod health;
mod oci;
mod ownership;
mod sops;
mod tenancy;

struct Harness {
    ns: TestNamespace,
    /// Flux events POSTed by the controllers.
    events: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    /// The commit the GitRepository serves at start.
    head: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _storage: tempfile::TempDir,
    /// The Git repository `fleet` and its GitRepository.
    fleet: Fleet,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

const APP: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.25\n";
const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: blue\n";

/// A local events receiver, as notification-controller would be: records what is POSTed.
async fn event_sink() -> (String, std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/"), events)
}

async fn start(prefix: &str) -> Harness {
    start_with(prefix, &[]).await
}

/// [`start`], with more kustomize-controller flags.
async fn start_with(prefix: &str, kustomize_flags: &[&str]) -> Harness {
    cluster().install_crds().await;
    let (events_url, events) = event_sink().await;
    cluster().apply_kustomization("config/default");
    let ns = cluster().namespace(prefix).await;
    let storage = tempfile::tempdir().unwrap();
    let events_flag = format!("--events-addr={events_url}");
    let (_, source) = driftless_e2e::source(ns.name(), storage.path(), &[]).await;
    let mut flags = vec![events_flag];
    flags.extend(kustomize_flags.iter().map(|f| f.to_string()));
    let kustomize = driftless_e2e::kustomize(ns.name(), &flags).await;
    let fleet = Fleet::start(ns.name(), &[("apps/app.yaml", APP), ("apps/cm.yaml", CM)]).await;
    let head = fleet.head.clone();
    let gits = Api::<GitRepository>::namespaced(cluster().client().await, ns.name());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !gits
        .get("fleet")
        .await
        .unwrap()
        .status
        .and_then(|s| s.artifact)
        .is_some_and(|a| a.revision.ends_with(&head))
    {
        assert!(
            Instant::now() < deadline,
            "the GitRepository did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Harness {
        ns,
        events,
        head,
        tasks: vec![source, kustomize],
        _storage: storage,
        fleet,
    }
}

async fn create(h: &Harness, name: &str, spec: KustomizationSpec) {
    let obj = Kustomization::new(name, spec);
    let api: Api<Kustomization> = Api::namespaced(cluster().client().await, h.ns.name());
    api.patch(name, &PatchParams::apply("t").force(), &Patch::Apply(&obj))
        .await
        .unwrap();
}

fn spec(path: &str, prune: bool) -> KustomizationSpec {
    KustomizationSpec {
        interval: "1h".into(),
        path: Some(path.into()),
        prune,
        source_ref: CrossNamespaceSourceReference {
            kind: "GitRepository".into(),
            name: "fleet".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn wait_until(
    h: &Harness,
    name: &str,
    what: &str,
    pred: impl Fn(&Kustomization) -> bool,
) -> Kustomization {
    let api: Api<Kustomization> = Api::namespaced(cluster().client().await, h.ns.name());
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let obj = api.get(name).await.unwrap();
        if pred(&obj) {
            return obj;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:#?}",
            obj.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn applied(obj: &Kustomization, revision_suffix: &str) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        conditions::is_ready(&s.conditions, obj.metadata.generation)
            && s.last_applied_revision
                .as_deref()
                .is_some_and(|r| r.ends_with(revision_suffix))
    })
}

/// Whether `obj` attempted the revision ending in `revision` and is not Ready.
fn failed_at(obj: &Kustomization, revision: &str) -> bool {
    obj.status
        .as_ref()
        .and_then(|s| s.last_attempted_revision.as_deref())
        .is_some_and(|r| r.ends_with(revision))
        && ready(obj).is_some_and(|r| r.0 == "False")
}

fn ready(obj: &Kustomization) -> Option<(String, String, String)> {
    let c = conditions::get(&obj.status.as_ref()?.conditions, "Ready")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn a_push_is_applied_drift_is_reverted_and_removed_files_are_pruned() {
    let h = start("ks-e2e").await;
    let n = h.ns.name().to_string();
    let head = h.head.clone();
    create(&h, "apps", from_source(&n, "fleet")).await;
    let obj = wait_until(&h, "apps", "the first apply", |o| applied(o, &head)).await;
    let status = obj.status.clone().unwrap();
    let history = status.history.clone().unwrap_or_default();
    assert_eq!(history.len(), 1, "{history:#?}");
    assert!(history[0].digest.starts_with("sha256:"));
    assert_eq!(history[0].last_reconciled_status, "ReconciliationSucceeded");
    assert_eq!(history[0].total_reconciliations, 1);
    // writing the history does not trigger another reconcile
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let api: Api<Kustomization> = Api::namespaced(cluster().client().await, &n);
    let again = api.get("apps").await.unwrap().status.unwrap().history.unwrap();
    assert_eq!(again[0].total_reconciliations, 1);
    assert_eq!(
        history[0].metadata.as_ref().unwrap()["revision"],
        format!("main@sha1:{head}")
    );
    assert_eq!(
        ready(&obj).unwrap().2,
        format!("Applied revision: main@sha1:{head}")
    );
    let ids: Vec<_> = status
        .inventory
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        ids,
        [
            format!("{n}_settings__ConfigMap"),
            format!("{n}_web_apps_Deployment")
        ]
    );
    // the change set reaches --events-addr in Flux's event format
    let deadline = Instant::now() + Duration::from_secs(10);
    let event = loop {
        if let Some(e) = h
            .events
            .lock()
            .unwrap()
            .iter()
            .find(|e| e["reason"] == "ReconciliationSucceeded")
            .cloned()
        {
            break e;
        }
        assert!(Instant::now() < deadline, "no event posted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(event["involvedObject"]["kind"], "Kustomization");
    assert_eq!(event["reportingController"], "kustomize-controller");
    assert_eq!(
        event["metadata"]["kustomize.toolkit.fluxcd.io/revision"],
        format!("main@sha1:{head}")
    );
    let message = event["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("Deployment/{n}/web created"))
            && message.contains(&format!("ConfigMap/{n}/settings created")),
        "{message}"
    );
    let deployments: Api<Deployment> = Api::namespaced(cluster().client().await, &n);
    let web = deployments.get("web").await.unwrap();
    assert_eq!(
        web.metadata
            .labels
            .unwrap()
            .get("kustomize.toolkit.fluxcd.io/name")
            .map(String::as_str),
        Some("apps")
    );

    // kubectl scale: reverted at the next reconcile
    let scale = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 7}});
    deployments
        .patch(
            "web",
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&scale),
        )
        .await
        .unwrap();
    let api: Api<Kustomization> = Api::namespaced(cluster().client().await, &n);
    let req = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: "t1"}}});
    api.patch("apps", &PatchParams::default(), &Patch::Merge(&req))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while deployments.get("web").await.unwrap().spec.replicas != Some(2) {
        assert!(Instant::now() < deadline, "the scale was not reverted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // a push that removes a file: applied without waiting for the 1h intervals, the ConfigMap pruned
    let removed = h.fleet.repo.remove(&["apps/cm.yaml"], "drop settings");
    request_fleet(&h, "push").await;
    let pushed = wait_until(&h, "apps", "the push applied", |o| applied(o, &removed)).await;
    let history = pushed.status.unwrap().history.unwrap();
    assert!(history.len() >= 2, "{history:#?}");
    assert_eq!(
        history[0].metadata.as_ref().unwrap()["revision"],
        format!("main@sha1:{removed}"),
        "the newest snapshot is first"
    );
    assert_ne!(history[0].digest, history[history.len() - 1].digest);
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, &n);
    assert!(cms.get_opt("settings").await.unwrap().is_none(), "pruned");

    // a build error: Ready=False, nothing pruned, the last applied revision kept
    let broken = h.fleet.repo.commit(
        &[(
            "apps/broken.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n",
        )],
        "break",
    );
    request_fleet(&h, "break").await;
    let obj = wait_until(&h, "apps", "the build failure", |o| {
        ready(o).is_some_and(|(s, r, _)| s == "False" && r == "BuildFailed")
    })
    .await;
    let status = obj.status.unwrap();
    assert!(
        ready_message(&status).contains("broken.yaml"),
        "{}",
        ready_message(&status)
    );
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some(format!("main@sha1:{removed}").as_str())
    );
    assert_eq!(
        status.last_attempted_revision.as_deref(),
        Some(format!("main@sha1:{broken}").as_str())
    );
    assert!(
        deployments.get_opt("web").await.unwrap().is_some(),
        "nothing pruned after a failed build"
    );
}

fn ready_message(status: &driftless_api::kustomize::KustomizationStatus) -> String {
    conditions::get(&status.conditions, "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_missing_source_waits_and_prune_false_keeps_objects() {
    let h = start("ks-source").await;
    let n = h.ns.name().to_string();
    let missing = KustomizationSpec {
        source_ref: CrossNamespaceSourceReference {
            kind: "GitRepository".into(),
            name: "nope".into(),
            ..Default::default()
        },
        ..spec("./apps", true)
    };
    create(&h, "missing", missing).await;
    let obj = wait_until(&h, "missing", "a missing source reported", |o| {
        ready(o).is_some_and(|(s, _, _)| s == "False")
    })
    .await;
    let (_, reason, message) = ready(&obj).unwrap();
    assert_eq!(reason, "ArtifactFailed");
    assert_eq!(message, format!("Source 'GitRepository/{n}/nope' not found"));

    let head = h.head.clone();
    create(
        &h,
        "keep",
        KustomizationSpec {
            target_namespace: Some(n.clone()),
            ..spec("apps", false)
        },
    )
    .await;
    wait_until(&h, "keep", "applied", |o| applied(o, &head)).await;
    let removed = h.fleet.repo.remove(&["apps/cm.yaml"], "drop settings");
    request_fleet(&h, "push").await;
    wait_until(&h, "keep", "the push applied", |o| applied(o, &removed)).await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, &n);
    assert!(
        cms.get_opt("settings").await.unwrap().is_some(),
        "prune: false keeps what left Git"
    );
}

async fn fleet_artifact(h: &Harness) -> driftless_api::meta::Artifact {
    let gits = Api::<GitRepository>::namespaced(cluster().client().await, h.ns.name());
    gits.get("fleet").await.unwrap().status.unwrap().artifact.unwrap()
}

/// Asks source-controller to fetch `fleet` now (a push), as a receiver would.
async fn request_fleet(h: &Harness, token: &str) {
    let gits = Api::<GitRepository>::namespaced(cluster().client().await, h.ns.name());
    let request = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: token}}});
    gits.patch("fleet", &PatchParams::default(), &Patch::Merge(&request))
        .await
        .unwrap();
}

/// `./apps` of the GitRepository `source`, applied into the namespace `ns` with prune.
fn from_source(ns: &str, source: &str) -> KustomizationSpec {
    KustomizationSpec {
        target_namespace: Some(ns.to_string()),
        source_ref: CrossNamespaceSourceReference {
            kind: "GitRepository".into(),
            name: source.into(),
            ..Default::default()
        },
        ..spec("./apps", true)
    }
}

/// A suspended copy of the `fleet` GitRepository whose status advertises `artifact`, as a producer would.
async fn forge(h: &Harness, name: &str, artifact: driftless_api::meta::Artifact) {
    let gits = Api::<GitRepository>::namespaced(cluster().client().await, h.ns.name());
    let forged = GitRepository::new(
        name,
        GitRepositorySpec {
            suspend: Some(true),
            ..gits.get("fleet").await.unwrap().spec
        },
    );
    gits.patch(name, &PatchParams::apply("t"), &Patch::Apply(&forged))
        .await
        .unwrap();
    gits.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"artifact": artifact}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn an_artifact_whose_digest_does_not_match_is_refused_and_nothing_is_applied() {
    let h = start("ks-digest").await;
    let n = h.ns.name().to_string();
    let mut artifact = fleet_artifact(&h).await;
    let wrong = format!("sha256:{}", "0".repeat(64));
    artifact.digest = wrong.clone();
    forge(&h, "forged", artifact).await;
    create(&h, "forged", from_source(&n, "forged")).await;
    let obj = wait_until(&h, "forged", "the mismatch reported", |o| {
        ready(o).is_some_and(|(s, _, _)| s == "False")
    })
    .await;
    let (_, reason, message) = ready(&obj).unwrap();
    assert_eq!(reason, "ArtifactFailed");
    assert!(
        message.contains("doesn't match advertised") && message.contains(&wrong),
        "{message}"
    );
    let status = obj.status.unwrap();
    assert_eq!(status.last_applied_revision, None, "nothing was applied");
    assert_eq!(status.history, None, "history starts once a build succeeded");
    let deployments: Api<Deployment> = Api::namespaced(cluster().client().await, &n);
    assert!(deployments.get_opt("web").await.unwrap().is_none());
}

#[tokio::test]
async fn the_origin_revision_in_artifact_metadata_is_recorded() {
    let h = start("ks-origin").await;
    let n = h.ns.name().to_string();
    let mut artifact = fleet_artifact(&h).await;
    let origin = "v1.2.3@sha1:0123456789abcdef0123456789abcdef01234567";
    artifact.metadata = Some(std::collections::BTreeMap::from([(
        "org.opencontainers.image.revision".to_string(),
        origin.to_string(),
    )]));
    forge(&h, "oci-like", artifact).await;
    create(&h, "origin", from_source(&n, "oci-like")).await;
    let head = h.head.clone();
    let obj = wait_until(&h, "origin", "applied", |o| applied(o, &head)).await;
    let status = obj.status.unwrap();
    assert_eq!(status.last_applied_origin_revision.as_deref(), Some(origin));
    assert_eq!(
        status.history.unwrap()[0].metadata.as_ref().unwrap()["originRevision"],
        origin
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let posted = h.events.lock().unwrap().iter().any(|e| {
            e["involvedObject"]["name"] == "origin"
                && e["metadata"]["kustomize.toolkit.fluxcd.io/originRevision"] == origin
        });
        if posted {
            break;
        }
        assert!(Instant::now() < deadline, "no event with the origin revision");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const VARS_APP: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n    \
    version: \"${VERSION}\"\nspec:\n  replicas: ${REPLICAS}\n  selector:\n    matchLabels:\n      app: web\n  \
    template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        \
    image: nginx:${VERSION}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  \
    region: ${REGION:=eu}\n  version: \"${VERSION}\"\n  literal: $${VERSION}\n---\napiVersion: v1\nkind: ConfigMap\n\
    metadata:\n  name: untouched\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  \
    script: echo ${HOME}\n";

async fn put_vars<K>(h: &Harness, obj: serde_json::Value)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    Api::<K>::namespaced(cluster().client().await, h.ns.name())
        .patch(&name, &PatchParams::apply("t").force(), &Patch::Apply(&obj))
        .await
        .unwrap();
}

#[tokio::test]
async fn post_build_substitutes_variables_and_a_watched_config_map_change_reapplies_at_once() {
    let h = start_with("ks-vars", &["--feature-gates=StrictPostBuildSubstitutions=true"]).await;
    let n = h.ns.name().to_string();
    let head = h.fleet.repo.commit(&[("vars/app.yaml", VARS_APP)], "variables");
    request_fleet(&h, "vars").await;
    let watch = json!({"reconcile.fluxcd.io/watch": "Enabled"});
    put_vars::<ConfigMap>(
        &h,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cluster-vars", "labels": watch}, "data": {"REPLICAS": "2", "VERSION": "1.0"}}),
    )
    .await;
    put_vars::<Secret>(
        &h,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "secret-vars"}, "stringData": {"VERSION": "1.25\n"}}),
    )
    .await;
    let reference = |kind: &str, name: &str, optional| driftless_api::kustomize::SubstituteReference {
        kind: kind.into(),
        name: name.into(),
        optional: Some(optional),
    };
    create(
        &h,
        "vars",
        KustomizationSpec {
            target_namespace: Some(n.clone()),
            post_build: Some(driftless_api::kustomize::PostBuild {
                substitute: Some([("REGION".to_string(), "us".to_string())].into()),
                substitute_from: Some(vec![
                    reference("ConfigMap", "cluster-vars", false),
                    reference("Secret", "secret-vars", false),
                    reference("ConfigMap", "absent", true),
                ]),
                ..Default::default()
            }),
            ..spec("./vars", true)
        },
    )
    .await;
    wait_until(&h, "vars", "the substituted apply", |o| applied(o, &head)).await;
    let deployments: Api<Deployment> = Api::namespaced(cluster().client().await, &n);
    let web = deployments.get("web").await.unwrap();
    assert_eq!(
        web.spec.replicas,
        Some(2),
        "a plain ${{REPLICAS}} became a number"
    );
    assert_eq!(
        web.metadata.annotations.as_ref().unwrap()["version"],
        "1.25",
        "the Secret's value wins over the ConfigMap's, without its newline"
    );
    let image = web.spec.template.spec.unwrap().containers[0].image.clone();
    assert_eq!(image.as_deref(), Some("nginx:1.25"));
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, &n);
    let settings = cms.get("settings").await.unwrap().data.unwrap();
    assert_eq!(settings["region"], "us", "spec.postBuild.substitute wins");
    assert_eq!(settings["version"], "1.25", "a quoted scalar stays a string");
    assert_eq!(settings["literal"], "${VERSION}", "$${{...}} escapes");
    let untouched = cms.get("untouched").await.unwrap().data.unwrap();
    assert_eq!(
        untouched["script"], "echo ${HOME}",
        "the opt-out annotation is honoured"
    );

    // a labelled ConfigMap that changes re-applies at once, though the interval is an hour
    put_vars::<ConfigMap>(
        &h,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cluster-vars", "labels": watch}, "data": {"REPLICAS": "3", "VERSION": "1.0"}}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while deployments.get("web").await.unwrap().spec.replicas != Some(3) {
        assert!(Instant::now() < deadline, "the ConfigMap change was not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // strict mode: a variable without a value fails the build, and nothing is applied or pruned
    let broken = h.fleet.repo.commit(
        &[(
            "vars/app.yaml",
            &VARS_APP.replace("region: ${REGION:=eu}", "region: ${UNSET}"),
        )],
        "a variable nobody sets",
    );
    request_fleet(&h, "broken").await;
    let obj = wait_until(&h, "vars", "the strict failure", |o| failed_at(o, &broken)).await;
    let (_, reason, message) = ready(&obj).unwrap();
    assert_eq!(reason, "BuildFailed");
    assert_eq!(
        message,
        "post build failed for 'ConfigMap.v1.[noGrp]/settings': envsubst error: variable substitution failed: \
         variable not set (strict mode): \"UNSET\""
    );
    assert!(
        obj.status
            .unwrap()
            .last_applied_revision
            .unwrap()
            .ends_with(&head)
    );
    assert_eq!(cms.get("settings").await.unwrap().data.unwrap()["region"], "us");

    // a missing, non-optional ConfigMap says which
    let api: Api<Kustomization> = Api::namespaced(cluster().client().await, &n);
    let patch =
        json!({"spec": {"postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": "nowhere"}]}}});
    api.patch("vars", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let obj = wait_until(&h, "vars", "the missing ConfigMap", |o| {
        ready(o).is_some_and(|r| r.2.contains("nowhere"))
    })
    .await;
    assert_eq!(
        ready(&obj).unwrap().2,
        "post build failed: substitute from 'ConfigMap/nowhere' error: configmaps \"nowhere\" not found"
    );
}

#[tokio::test]
async fn oci_bucket_and_external_artifact_sources_apply_and_a_new_artifact_triggers_them() {
    use kube::{
        api::DynamicObject,
        core::{ApiResource, GroupVersionKind},
    };
    let h = start("ks-oci").await;
    let n = h.ns.name().to_string();
    let first = fleet_artifact(&h).await;
    // nothing here produces these kinds' artifacts: each advertises the GitRepository's, as a
    // source-controller (or, for ExternalArtifact, any producer) would
    let sources = [
        (
            "OCIRepository",
            "ocirepositories",
            json!({"url": "oci://registry.invalid/fleet", "interval": "1h", "suspend": true}),
        ),
        (
            "Bucket",
            "buckets",
            json!({"bucketName": "fleet", "endpoint": "s3.invalid", "interval": "1h", "suspend": true}),
        ),
        (
            "ExternalArtifact",
            "externalartifacts",
            json!({"sourceRef": {"apiVersion": "example.com/v1", "kind": "Producer", "name": "p"}}),
        ),
    ];
    let client = cluster().client().await;
    let api = |kind: &str, plural: &str| {
        let gvk = GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", kind);
        Api::<DynamicObject>::namespaced_with(
            client.clone(),
            &n,
            &ApiResource::from_gvk_with_plural(&gvk, plural),
        )
    };
    let advertise = |artifact: &driftless_api::meta::Artifact| json!({"status": {"artifact": artifact}});
    for (kind, plural, spec) in &sources {
        let name = kind.to_lowercase();
        let source = json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": kind,
            "metadata": {"name": name}, "spec": spec});
        let api = api(kind, plural);
        api.patch(&name, &PatchParams::apply("t"), &Patch::Apply(&source))
            .await
            .unwrap();
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&advertise(&first)))
            .await
            .unwrap();
        let mut from = from_source(&n, &name);
        from.source_ref.kind = kind.to_string();
        // each its own copies, so the three do not fight over the same objects
        from.name_prefix = Some(format!("{name}-"));
        create(&h, &format!("from-{name}"), from).await;
    }
    for (kind, _, _) in &sources {
        let name = format!("from-{}", kind.to_lowercase());
        wait_until(&h, &name, "the first apply", |o| applied(o, &h.head)).await;
    }

    let second = h
        .fleet
        .repo
        .commit(&[("apps/extra.yaml", &CM.replace("settings", "extra"))], "extra");
    request_fleet(&h, "second").await;
    let gits = Api::<GitRepository>::namespaced(cluster().client().await, &n);
    let deadline = Instant::now() + Duration::from_secs(20);
    let next = loop {
        let a = gits.get("fleet").await.unwrap().status.unwrap().artifact.unwrap();
        if a.revision.ends_with(&second) {
            break a;
        }
        assert!(Instant::now() < deadline, "the GitRepository did not fetch");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (kind, plural, _) in &sources {
        let name = kind.to_lowercase();
        api(kind, plural)
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&advertise(&next)))
            .await
            .unwrap();
        wait_until(&h, &format!("from-{name}"), "the source's new artifact", |o| {
            applied(o, &second)
        })
        .await;
        let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, &n);
        assert!(cms.get_opt(&format!("{name}-extra")).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_git_revert_rolls_back_prune_disabled_is_kept_and_deleting_the_source_keeps_the_workloads() {
    let h = start("ks-revert").await;
    let n = h.ns.name().to_string();
    create(&h, "apps", from_source(&n, "fleet")).await;
    wait_until(&h, "apps", "the first apply", |o| applied(o, &h.head)).await;
    let deployments: Api<Deployment> = Api::namespaced(cluster().client().await, &n);

    let scaled = h.fleet.repo.commit(
        &[("apps/app.yaml", &APP.replace("replicas: 2", "replicas: 4"))],
        "scale up",
    );
    request_fleet(&h, "scale").await;
    wait_until(&h, "apps", "the scale-up", |o| applied(o, &scaled)).await;
    assert_eq!(deployments.get("web").await.unwrap().spec.replicas, Some(4));

    let reverted = h.fleet.repo.revert_last();
    request_fleet(&h, "revert").await;
    wait_until(&h, "apps", "the revert", |o| applied(o, &reverted)).await;
    assert_eq!(
        deployments.get("web").await.unwrap().spec.replicas,
        Some(2),
        "rolled back"
    );

    // an object annotated prune: disabled outlives its removal from Git
    let kept = CM.replace(
        "name: settings",
        "name: kept\n  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled",
    );
    let added = h
        .fleet
        .repo
        .commit(&[("apps/kept.yaml", &kept)], "a ConfigMap that must stay");
    request_fleet(&h, "kept").await;
    wait_until(&h, "apps", "the kept ConfigMap", |o| applied(o, &added)).await;
    let removed = h.fleet.repo.remove(&["apps/kept.yaml"], "drop it from Git");
    request_fleet(&h, "drop-kept").await;
    let obj = wait_until(&h, "apps", "its removal", |o| applied(o, &removed)).await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, &n);
    assert!(
        cms.get_opt("kept").await.unwrap().is_some(),
        "prune: disabled was pruned"
    );
    let ids = obj.status.unwrap().inventory.unwrap().entries;
    assert!(
        !ids.iter().any(|e| e.id.contains("_kept_")),
        "it left the inventory"
    );

    // the source goes away: the Kustomization says so and the workloads stay
    let gits = Api::<GitRepository>::namespaced(cluster().client().await, &n);
    gits.delete("fleet", &Default::default()).await.unwrap();
    let api: Api<Kustomization> = Api::namespaced(cluster().client().await, &n);
    let req = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: "gone"}}});
    api.patch("apps", &PatchParams::default(), &Patch::Merge(&req))
        .await
        .unwrap();
    let obj = wait_until(&h, "apps", "the missing source", |o| {
        ready(o).is_some_and(|(s, r, _)| s == "False" && r == "ArtifactFailed")
    })
    .await;
    assert!(ready(&obj).unwrap().2.contains("not found"), "{:?}", ready(&obj));
    assert!(
        obj.status
            .unwrap()
            .last_applied_revision
            .unwrap()
            .ends_with(&removed)
    );
    assert!(
        deployments.get_opt("web").await.unwrap().is_some(),
        "the workload was deleted"
    );
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, &n);
    assert!(
        cms.get_opt("settings").await.unwrap().is_some(),
        "the ConfigMap was deleted"
    );
}

#[tokio::test]
async fn deleting_a_kustomization_follows_its_deletion_policy() {
    use driftless_api::kustomize::DeletionPolicy;
    let h = start("ks-delete").await;
    let n = h.ns.name().to_string();
    let cm = |name: &str, extra: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{extra}data:\n  a: \"1\"\n")
    };
    let files = [
        ("mirror/cm.yaml", cm("mirror", "")),
        ("kept/cm.yaml", cm("kept", "")),
        ("orphan/cm.yaml", cm("orphan", "")),
        ("forced/cm.yaml", cm("forced", "")),
        (
            "wait/cm.yaml",
            cm("held", "  finalizers:\n  - driftless.test/hold\n"),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let head = h.fleet.repo.commit(&files, "deletion cases");
    request_fleet(&h, "deletion").await;
    // (Kustomization and path, prune, deletionPolicy, its ConfigMap deleted with it)
    let cases = [
        ("mirror", true, None, true),
        ("kept", false, None, false),
        ("orphan", true, Some(DeletionPolicy::Orphan), false),
        ("forced", false, Some(DeletionPolicy::Delete), true),
        ("wait", true, Some(DeletionPolicy::WaitForTermination), true),
    ];
    for (name, prune, policy, _) in cases {
        let spec = KustomizationSpec {
            target_namespace: Some(n.clone()),
            deletion_policy: policy,
            ..spec(&format!("./{name}"), prune)
        };
        create(&h, name, spec).await;
    }
    for (name, ..) in cases {
        wait_until(&h, name, "the apply", |o| applied(o, &head)).await;
    }
    let admin = cluster().client().await;
    let kustomizations: Api<Kustomization> = Api::namespaced(admin.clone(), &n);
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), &n);
    for (name, ..) in cases {
        kustomizations.delete(name, &Default::default()).await.unwrap();
    }
    let gone = async |name: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while kustomizations.get_opt(name).await.unwrap().is_some() {
            assert!(Instant::now() < deadline, "{name} was not deleted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    for (name, _, _, deleted) in cases.iter().filter(|c| c.0 != "wait") {
        gone(name).await;
        assert_eq!(
            cms.get_opt(name).await.unwrap().is_none(),
            *deleted,
            "{name}'s ConfigMap after its Kustomization went"
        );
    }

    // WaitForTermination: the Kustomization stays while its ConfigMap's finalizer holds it
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(kustomizations.get_opt("wait").await.unwrap().is_some());
    let held = cms.get("held").await.unwrap();
    assert!(
        held.metadata.deletion_timestamp.is_some(),
        "the held ConfigMap is being deleted"
    );
    let release = json!({"metadata": {"finalizers": null}});
    cms.patch("held", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    gone("wait").await;
    assert!(cms.get_opt("held").await.unwrap().is_none());
}

#[tokio::test]
async fn the_kustomizations_own_overlay_renames_retags_and_labels() {
    let h = start("ks-overlay").await;
    let n = h.ns.name().to_string();
    let spec: KustomizationSpec = serde_json::from_value(json!({
        "interval": "1h", "path": "./apps", "prune": true, "targetNamespace": n,
        "sourceRef": {"kind": "GitRepository", "name": "fleet"},
        "namePrefix": "pre-", "nameSuffix": "-v2",
        "images": [{"name": "nginx", "newTag": "1.27"}],
        "commonMetadata": {"labels": {"team": "blue"}, "annotations": {"owner": "ops"}}
    }))
    .unwrap();
    create(&h, "overlay", spec).await;
    wait_until(&h, "overlay", "the apply", |o| applied(o, &h.head)).await;
    let admin = cluster().client().await;
    let web = Api::<Deployment>::namespaced(admin.clone(), &n)
        .get("pre-web-v2")
        .await
        .unwrap();
    let meta = &web.metadata;
    assert_eq!(meta.labels.as_ref().unwrap()["team"], "blue");
    assert_eq!(meta.annotations.as_ref().unwrap()["owner"], "ops");
    let spec = web.spec;
    assert_eq!(
        spec.template.spec.unwrap().containers[0].image.as_deref(),
        Some("nginx:1.27")
    );
    assert_eq!(
        spec.selector.match_labels.unwrap(),
        [("app".to_string(), "web".to_string())].into(),
        "commonMetadata leaves selectors alone"
    );
    assert!(
        Api::<ConfigMap>::namespaced(admin, &n)
            .get_opt("pre-settings-v2")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_new_revision_shows_progress_until_it_is_applied() {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let h = start("ks-progress").await;
    let n = h.ns.name().to_string();
    create(&h, "apps", from_source(&n, "fleet")).await;
    wait_until(&h, "apps", "the first apply", |o| applied(o, &h.head)).await;

    // every status the Kustomization goes through, from here on
    let api: Api<Kustomization> = Api::namespaced(cluster().client().await, &n);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let watch = tokio::spawn({
        let seen = seen.clone();
        let config = watcher::Config::default().fields("metadata.name=apps");
        async move {
            let mut stream = watcher(api, config).applied_objects().boxed();
            while let Some(Ok(k)) = stream.next().await {
                if let Some(c) = k
                    .status
                    .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"))
                {
                    seen.lock().unwrap().push((c.status, c.reason, c.message));
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = h
        .fleet
        .repo
        .commit(&[("apps/cm.yaml", &CM.replace("blue", "green"))], "green");
    request_fleet(&h, "green").await;
    wait_until(&h, "apps", "the new revision", |o| applied(o, &second)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    watch.abort();
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|(status, reason, message)| status == "Unknown"
            && reason == "Progressing"
            && message.starts_with("Building manifests for revision")
            && message.contains(&second)),
        "{seen:#?}"
    );
    assert!(
        seen.last()
            .is_some_and(|(status, _, message)| status == "True" && message.contains(&second)),
        "{seen:#?}"
    );
}
