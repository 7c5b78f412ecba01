//! helm-controller end to end with source-controller, both as their own ServiceAccounts from
//! `config/`: real charts (`helm create`, `helm package`, `helm repo index`) from a real HTTP chart
//! repository, installed and upgraded through the real helm, checked with `helm history`.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use driftless_api::{
    helm::{
        CrossNamespaceObjectReference, HelmChartTemplate, HelmChartTemplateSpec, HelmRelease,
        HelmReleaseSpec, Install, Upgrade, ValuesReference,
    },
    meta::RECONCILE_REQUEST_ANNOTATION,
    source::{HelmChart, HelmRepository, HelmRepositorySpec},
};
use driftless_runtime::conditions;
use driftless_testkit::{cluster::cluster, helm::ChartRepo, tool};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;

async fn wait<K>(api: &Api<K>, name: &str, what: &str, pred: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let obj = api.get_opt(name).await.unwrap();
        if let Some(obj) = obj.filter(|o| pred(o)) {
            return obj;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:#?}",
            api.get_opt(name).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Released condition's (status, reason, message): a failed action stays there, while Ready moves on
/// to RetriesExceeded at the next run.
fn released(hr: &HelmRelease) -> Option<(String, String, String)> {
    let c = conditions::get(&hr.status.as_ref()?.conditions, "Released")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn ready(hr: &HelmRelease) -> Option<(String, String, String)> {
    let c = conditions::get(&hr.status.as_ref()?.conditions, "Ready")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// `helm history` of the release, as a user runs it: (revision, status, chart) each.
fn history(ns: &str, release: &str) -> Vec<(i64, String, String)> {
    let out = Command::new(tool("helm"))
        .args(["history", release, "-n", ns, "-o", "json", "--kubeconfig"])
        .arg(cluster().kubeconfig())
        .output()
        .unwrap();
    if !out.status.success() {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_i64().unwrap(),
                r["status"].as_str().unwrap().to_string(),
                r["chart"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn apply<
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + serde::Serialize
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
>(
    ns: &str,
    obj: &K,
) -> Api<K> {
    let api: Api<K> = Api::namespaced(cluster().client().await, ns);
    let name = obj.meta().name.clone().unwrap();
    api.patch(&name, &PatchParams::apply("test").force(), &Patch::Apply(obj))
        .await
        .unwrap();
    api
}

#[tokio::test]
async fn a_release_is_installed_upgraded_on_new_values_and_charts_and_uninstalled() {
    let env = Env::start("helm", &[], false).await;
    let n = env.n.clone();
    let charts = &env.charts;
    let mut spec = HelmReleaseSpec {
        interval: "1h".into(),
        chart: Some(HelmChartTemplate {
            metadata: None,
            spec: HelmChartTemplateSpec {
                chart: "podinfo".into(),
                version: Some("*".into()),
                source_ref: CrossNamespaceObjectReference {
                    kind: "HelmRepository".into(),
                    name: "charts".into(),
                    ..Default::default()
                },
                ..Default::default()
            },
        }),
        // NB: nothing rolls Deployments out in the test cluster: no --wait
        install: Some(Install {
            disable_wait: Some(true),
            ..Default::default()
        }),
        upgrade: Some(Upgrade {
            disable_wait: Some(true),
            ..Default::default()
        }),
        values: Some(json!({"replicaCount": 2})),
        ..Default::default()
    };
    let hrs = apply(&n, &HelmRelease::new("web", spec.clone())).await;
    let hr = wait(&hrs, "web", "installed", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    assert_eq!(
        ready(&hr).unwrap(),
        (
            "True".into(),
            "InstallSucceeded".into(),
            format!("Helm install succeeded for release {n}/web.v1 with chart podinfo@0.1.0")
        )
    );
    let status = hr.status.clone().unwrap();
    assert_eq!(
        status.helm_chart.as_deref(),
        Some(format!("{n}/{n}-web").as_str())
    );
    assert_eq!(status.last_attempted_revision.as_deref(), Some("0.1.0"));
    assert!(
        status
            .last_attempted_config_digest
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(status.history.as_ref().unwrap()[0].version, 1);
    let chart: Api<HelmChart> = Api::namespaced(cluster().client().await, &n);
    let owned = chart.get(&format!("{n}-web")).await.unwrap();
    assert_eq!(
        owned.metadata.labels.unwrap()["helm.toolkit.fluxcd.io/name"],
        "web"
    );
    let deployments: Api<Deployment> = Api::namespaced(cluster().client().await, &n);
    assert_eq!(
        deployments.get("web-podinfo").await.unwrap().spec.replicas,
        Some(2)
    );
    assert_eq!(
        history(&n, "web"),
        vec![(1, "deployed".into(), "podinfo-0.1.0".into())]
    );

    // values from a ConfigMap: an upgrade
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, &n);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-values"},
        "data": {"values.yaml": "replicaCount: 3\nservice:\n  port: 8080\n"}});
    cms.patch(
        "web-values",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&cm),
    )
    .await
    .unwrap();
    spec.values = None;
    spec.values_from = Some(vec![ValuesReference {
        kind: "ConfigMap".into(),
        name: "web-values".into(),
        ..Default::default()
    }]);
    apply(&n, &HelmRelease::new("web", spec.clone())).await;
    let hr = wait(&hrs, "web", "upgraded", |h| {
        ready(h).is_some_and(|r| r.1 == "UpgradeSucceeded")
    })
    .await;
    assert!(
        ready(&hr).unwrap().2.contains(&format!("{n}/web.v2")),
        "{:?}",
        ready(&hr)
    );
    assert_eq!(
        deployments.get("web-podinfo").await.unwrap().spec.replicas,
        Some(3)
    );

    // nothing changed: no Helm revision
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: "1"}}});
    hrs.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait(&hrs, "web", "the request handled", |h| {
        h.status
            .as_ref()
            .and_then(|s| s.reconcile_request.last_handled_reconcile_at.as_deref())
            == Some("1")
    })
    .await;
    assert_eq!(
        history(&n, "web").len(),
        2,
        "an unchanged release makes no revision"
    );

    // a new chart version: the HelmChart follows, the release too
    charts.add_chart("podinfo", "0.2.0", &[]);
    let repos: Api<HelmRepository> = Api::namespaced(cluster().client().await, &n);
    repos
        .patch("charts", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let hr = wait(&hrs, "web", "the new chart released", |h| {
        h.status
            .as_ref()
            .and_then(|s| s.last_attempted_revision.as_deref())
            == Some("0.2.0")
            && ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    assert!(
        ready(&hr).unwrap().2.ends_with("with chart podinfo@0.2.0"),
        "{:?}",
        ready(&hr)
    );
    let revisions = history(&n, "web");
    assert_eq!(
        revisions.last().unwrap(),
        &(3, "deployed".to_string(), "podinfo-0.2.0".to_string())
    );

    // deleted: uninstalled, its HelmChart gone
    hrs.delete("web", &DeleteParams::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while hrs.get_opt("web").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the HelmRelease was not finalized");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(history(&n, "web").is_empty(), "the release is uninstalled");
    assert!(deployments.get_opt("web-podinfo").await.unwrap().is_none());
    assert!(chart.get_opt(&format!("{n}-web")).await.unwrap().is_none());
}

#[tokio::test]
async fn a_failed_upgrade_is_rolled_back_and_retries_are_counted() {
    let env = Env::start("helm-fail", &[], false).await;
    let n = env.n.clone();
    let mut spec: HelmReleaseSpec = serde_json::from_value(json!({
        "interval": "1h",
        "chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
        "install": {"disableWait": true},
        "upgrade": {"timeout": "3s", "remediation": {"retries": 1}},
        // NB: nothing rolls the rolled-back Deployment out either
        "rollback": {"disableWait": true},
    }))
    .unwrap();
    let hrs = apply(&n, &HelmRelease::new("app", spec.clone())).await;
    wait(&hrs, "app", "installed", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;

    // an upgrade that waits for a Deployment nothing rolls out: it fails, and is rolled back
    spec.values = Some(json!({"replicaCount": 4}));
    apply(&n, &HelmRelease::new("app", spec)).await;
    let hr = wait(&hrs, "app", "the upgrade retries exhausted", |h| {
        ready(h).is_some_and(|r| r.1 == "RetriesExceeded")
    })
    .await;
    assert_eq!(ready(&hr).unwrap().2, "Failed to upgrade after 2 attempt(s)");
    let status = hr.status.unwrap();
    let remediated = conditions::get(&status.conditions, "Remediated").expect("a Remediated condition");
    assert_eq!(
        (remediated.status.as_str(), remediated.reason.as_str()),
        ("True", "RollbackSucceeded")
    );
    assert!(
        remediated
            .message
            .starts_with(&format!("Helm rollback to previous release {n}/app.v"))
            && remediated.message.ends_with("with chart podinfo@0.1.0 succeeded"),
        "{}",
        remediated.message
    );
    assert!(
        !events_with(&n, "RollbackSucceeded").await.is_empty(),
        "the remediation's event"
    );
    assert_eq!(status.upgrade_failures, Some(2));
    let released = conditions::get(&status.conditions, "Released").unwrap();
    assert_eq!(
        (released.status.as_str(), released.reason.as_str()),
        ("False", "UpgradeFailed")
    );
    let revisions = history(&n, "app");
    let statuses: Vec<&str> = revisions.iter().map(|r| r.1.as_str()).collect();
    assert!(statuses.contains(&"failed"), "{revisions:?}");
    assert_eq!(
        revisions.last().unwrap().1,
        "deployed",
        "rolled back: {revisions:?}"
    );
    assert!(
        revisions.len() >= 3,
        "install, failed upgrade, rollback: {revisions:?}"
    );
}

/// A test's namespace with source- and helm-controller watching it and the HelmRepository `charts` serving
/// `podinfo` 0.1.0 (made by `helm create`) from a real chart repository; with `simulate`, the namespace's
/// workloads roll out.
struct Env {
    n: String,
    charts: ChartRepo,
    _simulator: Option<driftless_testkit::simulator::Simulator>,
    _tasks: AbortOnDrop,
    _storage: tempfile::TempDir,
    _ns: driftless_testkit::cluster::TestNamespace,
}

impl Env {
    async fn start(prefix: &str, helm_flags: &[String], simulate: bool) -> Self {
        cluster().install_crds().await;
        cluster().apply_kustomization("config/default");
        let ns = cluster().namespace(prefix).await;
        let n = ns.name().to_string();
        let simulator = if simulate {
            Some(driftless_testkit::simulator::start(
                cluster().client().await,
                Some(&n),
                Duration::from_millis(300),
            ))
        } else {
            None
        };
        let storage = tempfile::tempdir().unwrap();
        let (_, source) = driftless_e2e::source(&n, storage.path(), &[]).await;
        let helm = driftless_e2e::helm(&n, helm_flags).await;
        let charts = ChartRepo::start(None);
        charts.add_chart("podinfo", "0.1.0", &[]);
        apply(
            &n,
            &HelmRepository::new(
                "charts",
                HelmRepositorySpec {
                    url: charts.url(),
                    interval: Some("1h".into()),
                    ..Default::default()
                },
            ),
        )
        .await;
        Self {
            n,
            charts,
            _simulator: simulator,
            _tasks: AbortOnDrop(vec![source, helm]),
            _storage: storage,
            _ns: ns,
        }
    }
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(|t| t.abort());
    }
}

#[tokio::test]
async fn a_release_left_pending_by_a_killed_helm_is_recovered() {
    let env = Env::start("helm-pending", &[], false).await;
    let n = env.n.clone();
    let archive = env.charts.root().join("podinfo-0.1.0.tgz");
    let mut spec: HelmReleaseSpec = serde_json::from_value(json!({
        "interval": "1h",
        "chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
        "install": {"disableWait": true},
        "upgrade": {"disableWait": true},
    }))
    .unwrap();
    let hrs = apply(&n, &HelmRelease::new("app", spec.clone())).await;
    wait(&hrs, "app", "installed", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;

    // a user's (or a killed controller's) helm upgrade that never finishes: killed mid-wait
    let mut upgrade = Command::new(tool("helm"))
        .args(["upgrade", "app"])
        .arg(&archive)
        .args([
            "-n",
            &n,
            "--wait",
            "--timeout",
            "120s",
            "--set",
            "replicaCount=5",
            "--kubeconfig",
        ])
        .arg(cluster().kubeconfig())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while history(&n, "app").last().is_none_or(|r| r.1 != "pending-upgrade") {
        assert!(
            Instant::now() < deadline,
            "helm did not leave the release pending"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    upgrade.kill().unwrap();
    let _ = upgrade.wait();

    // the next change is released: the pending revision marked failed, then the upgrade
    spec.values = Some(json!({"replicaCount": 2}));
    apply(&n, &HelmRelease::new("app", spec)).await;
    let hr = wait(&hrs, "app", "upgraded past the pending revision", |h| {
        ready(h).is_some_and(|r| r.1 == "UpgradeSucceeded")
    })
    .await;
    let revisions = history(&n, "app");
    assert_eq!(
        revisions[1].1, "failed",
        "the pending revision is marked failed: {revisions:?}"
    );
    assert_eq!(revisions.last().unwrap().1, "deployed", "{revisions:?}");
    assert!(ready(&hr).unwrap().2.contains(".v3"), "{:?}", ready(&hr));
}

#[tokio::test]
async fn with_workloads_rolling_out_a_release_waits_for_them_and_its_tests_run() {
    // the namespace's Deployments roll out, and Pods run (a test hook's succeeds), a moment after
    let env = Env::start("helm-wait", &[], true).await;
    let n = env.n.clone();
    let spec: HelmReleaseSpec = serde_json::from_value(json!({
        "interval": "1h",
        "timeout": "60s",
        "chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
        "test": {"enable": true},
        // NB: helm's own wait (`helm --wait`); the poller, the default, has a test of its own
        "waitStrategy": {"name": "legacy"},
    }))
    .unwrap();
    let hrs = apply(&n, &HelmRelease::new("app", spec)).await;
    let hr = wait(&hrs, "app", "installed, waited for and tested", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    assert_eq!(ready(&hr).unwrap().1, "InstallSucceeded");
    let status = hr.status.unwrap();
    let tested = conditions::get(&status.conditions, "TestSuccess").expect("tests ran");
    assert_eq!(
        (tested.status.as_str(), tested.reason.as_str()),
        ("True", "TestSucceeded"),
        "{}",
        tested.message
    );
    assert!(
        tested
            .message
            .starts_with(&format!("Helm test succeeded for release {n}/app.v1"))
    );
}

#[tokio::test]
async fn a_release_waits_for_the_releases_it_depends_on() {
    let env = Env::start("helm-deps", &["--requeue-dependency=1s".into()], false).await;
    let n = env.n.clone();
    let release = |depends: bool| -> HelmReleaseSpec {
        let mut spec = json!({
            "interval": "1h",
            "chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
            "install": {"disableWait": true},
        });
        if depends {
            spec["dependsOn"] = json!([{"name": "backend"}]);
        }
        serde_json::from_value(spec).unwrap()
    };
    let hrs = apply(&n, &HelmRelease::new("frontend", release(true))).await;
    let waiting = wait(&hrs, "frontend", "waiting for its dependency", |h| {
        ready(h).is_some_and(|r| r.1 == "DependencyNotReady")
    })
    .await;
    assert!(
        ready(&waiting).unwrap().2.contains("backend"),
        "{:?}",
        ready(&waiting)
    );
    assert!(
        history(&n, "frontend").is_empty(),
        "nothing released before the dependency"
    );
    apply(&n, &HelmRelease::new("backend", release(false))).await;
    // Ready once released (a later in-sync run may already have summarised it: any Ready=True reason)
    wait(&hrs, "frontend", "released once its dependency is", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    assert_eq!(history(&n, "frontend").len(), 1, "frontend released once");
    assert_eq!(history(&n, "backend").len(), 1);
}

#[tokio::test]
async fn a_chart_pushed_to_a_registry_is_released_through_an_ocirepository_chart_ref() {
    use driftless_api::source::{OCIRepository, OCIRepositorySpec};
    cluster().install_crds().await;
    cluster().apply_kustomization("config/default");
    let ns = cluster().namespace("helm-oci").await;
    let n = ns.name().to_string();
    let storage = tempfile::tempdir().unwrap();
    let (_, source) = driftless_e2e::source(&n, storage.path(), &[]).await;
    let helm = driftless_e2e::helm(&n, &[]).await;
    let _tasks = AbortOnDrop(vec![source, helm]);
    let registry = driftless_testkit::registry::Registry::start();
    let work = tempfile::tempdir().unwrap();
    let chart = driftless_testkit::helm::create_chart(work.path(), "podinfo", "1.2.3", &[]);
    driftless_testkit::helm::helm(
        Command::new(tool("helm"))
            .arg("package")
            .arg(&chart)
            .arg("-d")
            .arg(work.path()),
    );
    driftless_testkit::helm::helm(
        Command::new(tool("helm"))
            .arg("push")
            .arg(work.path().join("podinfo-1.2.3.tgz"))
            .arg(format!("oci://{}/charts", registry.host()))
            .arg("--plain-http"),
    );
    // as Flux's own example does it: the chart's layer copied as it is
    let oci: OCIRepositorySpec = serde_json::from_value(json!({
        "url": registry.url("charts/podinfo"),
        "interval": "1h",
        "ref": {"semver": "1.x"},
        "layerSelector": {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "operation": "copy"},
    }))
    .unwrap();
    apply(&n, &OCIRepository::new("podinfo", oci)).await;
    let spec: HelmReleaseSpec = serde_json::from_value(json!({
        "interval": "1h",
        "chartRef": {"kind": "OCIRepository", "name": "podinfo"},
        "install": {"disableWait": true},
    }))
    .unwrap();
    let hrs = apply(&n, &HelmRelease::new("podinfo", spec)).await;
    let hr = wait(&hrs, "podinfo", "released from the OCI chart", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    assert!(
        ready(&hr).unwrap().2.ends_with("with chart podinfo@1.2.3"),
        "{:?}",
        ready(&hr)
    );
    let revision = hr.status.unwrap().last_attempted_revision.unwrap();
    assert!(revision.starts_with("1.2.3+"), "Flux's OCI revision: {revision}");
    assert_eq!(revision.len(), "1.2.3+".len() + 12);
    assert_eq!(history(&n, "podinfo").len(), 1);
}

#[tokio::test]
async fn drift_from_the_release_is_corrected_without_a_new_revision() {
    let env = Env::start("helm-drift", &[], false).await;
    let n = env.n.clone();
    let spec: HelmReleaseSpec = serde_json::from_value(json!({
        "interval": "1h",
        "chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
        "install": {"disableWait": true},
        "driftDetection": {"mode": "enabled"},
        "values": {"replicaCount": 2},
    }))
    .unwrap();
    let hrs = apply(&n, &HelmRelease::new("app", spec)).await;
    wait(&hrs, "app", "installed", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;

    // someone scales the release's Deployment by hand
    let deployments: Api<Deployment> = Api::namespaced(cluster().client().await, &n);
    deployments
        .patch(
            "app-podinfo",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 7}})),
        )
        .await
        .unwrap();
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: "drift"}}});
    hrs.patch("app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    // NB: any reconcile after the hand edit corrects it (one triggered by the chart's source may come
    // before the requested one); the correction is reported by a DriftCorrected event either way
    wait(&hrs, "app", "the request handled", |h| {
        h.status
            .as_ref()
            .and_then(|s| s.reconcile_request.last_handled_reconcile_at.as_deref())
            == Some("drift")
    })
    .await;
    assert_eq!(
        deployments.get("app-podinfo").await.unwrap().spec.replicas,
        Some(2),
        "corrected"
    );
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(cluster().client().await, &n);
    let deadline = Instant::now() + Duration::from_secs(30);
    let corrected = loop {
        let listed = events.list(&Default::default()).await.unwrap();
        if let Some(e) = listed
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("DriftCorrected"))
        {
            break e;
        }
        assert!(Instant::now() < deadline, "no DriftCorrected event");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let message = corrected.message.unwrap_or_default();
    assert!(
        message.contains("has been corrected")
            && message.contains("Deployment/")
            && message.contains("configured"),
        "{message}"
    );
    assert_eq!(history(&n, "app").len(), 1, "no Helm revision for a correction");

    // nothing drifted: said so
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: "again"}}});
    hrs.patch("app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait(&hrs, "app", "no drift", |h| {
        h.status.as_ref().is_some_and(|s| {
            conditions::get(&s.conditions, "Drifted")
                .is_some_and(|c| c.status == "False" && c.reason == "NoDriftDetected")
        })
    })
    .await;
}

/// The events of `ns` with `reason`, newest last.
async fn events_with(ns: &str, reason: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(cluster().client().await, ns);
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .map(|e| e.message.unwrap_or_default())
        .collect()
}

async fn request_reconcile(hrs: &Api<HelmRelease>, name: &str, token: &str) {
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: token}}});
    hrs.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait(hrs, name, "the request handled", |h| {
        h.status
            .as_ref()
            .and_then(|s| s.reconcile_request.last_handled_reconcile_at.as_deref())
            == Some(token)
    })
    .await;
}

#[tokio::test]
async fn post_renderers_and_common_metadata_shape_the_release_and_its_inventory() {
    let env = Env::start("helm-postrender", &[], false).await;
    let n = env.n.clone();
    let spec = |replicas: i64, patch_path: &str| -> HelmReleaseSpec {
        serde_json::from_value(json!({
            "interval": "1h",
            "chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
            "install": {"disableWait": true},
            "upgrade": {"disableWait": true},
            "commonMetadata": {"labels": {"team": "payments"}, "annotations": {"owner": "ops@example.com"}},
            "postRenderers": [
                {"kustomize": {
                    "patches": [{
                        "target": {"kind": "Deployment", "name": "app-podinfo"},
                        "patch": format!("- op: add\n  path: {patch_path}\n  value: {replicas}\n"),
                    }],
                    "images": [{"name": "nginx", "newName": "registry.example.com/nginx", "newTag": "1.27"}],
                }},
                {"kustomize": {"patches": [{
                    "patch": "apiVersion: v1\nkind: Service\nmetadata:\n  name: app-podinfo\n  annotations:\n    patched: \"yes\"\n",
                }]}},
            ],
        }))
        .unwrap()
    };
    let hrs = apply(&n, &HelmRelease::new("app", spec(3, "/spec/replicas"))).await;
    let hr = wait(&hrs, "app", "installed", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;

    let deployments: Api<Deployment> = Api::namespaced(cluster().client().await, &n);
    let d = deployments.get("app-podinfo").await.unwrap();
    assert_eq!(d.spec.replicas, Some(3), "the patch");
    assert_eq!(
        d.spec.template.spec.as_ref().unwrap().containers[0]
            .image
            .as_deref(),
        Some("registry.example.com/nginx:1.27"),
        "the image"
    );
    let labels = d.metadata.labels.clone().unwrap();
    assert_eq!(labels["team"], "payments");
    assert_eq!(labels["helm.toolkit.fluxcd.io/name"], "app");
    assert_eq!(labels["helm.toolkit.fluxcd.io/namespace"], n);
    assert_eq!(
        d.metadata.annotations.clone().unwrap()["owner"],
        "ops@example.com"
    );
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(cluster().client().await, &n);
    let s = services.get("app-podinfo").await.unwrap();
    assert_eq!(s.metadata.annotations.clone().unwrap()["patched"], "yes");
    assert_eq!(s.metadata.labels.clone().unwrap()["team"], "payments");

    let status = hr.status.clone().unwrap();
    let ids: Vec<String> = status
        .inventory
        .clone()
        .unwrap()
        .entries
        .iter()
        .map(|e| format!("{} {}", e.id, e.v))
        .collect();
    assert!(
        ids.contains(&format!("{n}_app-podinfo_apps_Deployment v1")),
        "{ids:?}"
    );
    assert!(ids.contains(&format!("{n}_app-podinfo__Service v1")), "{ids:?}");
    assert!(
        ids.iter().all(|i| !i.contains("test-connection")),
        "hooks are not the release's objects: {ids:?}"
    );
    assert!(status.observed_post_renderers_digest.is_some());
    assert!(status.observed_common_metadata_digest.is_some());

    // a change of the post-renderers alone is a new release revision
    apply(&n, &HelmRelease::new("app", spec(5, "/spec/replicas"))).await;
    wait(&hrs, "app", "upgraded", |h| {
        h.status
            .as_ref()
            .is_some_and(|s| s.history.as_ref().is_some_and(|h| h[0].version == 2))
            && ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    assert_eq!(
        deployments.get("app-podinfo").await.unwrap().spec.replicas,
        Some(5)
    );
    assert_eq!(history(&n, "app").len(), 2);

    // a patch that cannot apply fails the upgrade with the post-renderer's words; nothing changes
    apply(&n, &HelmRelease::new("app", spec(6, "/spec/nothing/here"))).await;
    let hr = wait(&hrs, "app", "the upgrade refused", |h| {
        released(h).is_some_and(|r| r.0 == "False" && r.1 == "UpgradeFailed")
    })
    .await;
    let message = released(&hr).unwrap().2;
    assert!(message.contains("post-renderer 0 (kustomize)"), "{message}");
    assert_eq!(
        deployments.get("app-podinfo").await.unwrap().spec.replicas,
        Some(5)
    );
}

#[tokio::test]
async fn drift_warn_mode_reports_and_ignore_rules_leave_fields_alone() {
    let env = Env::start("helm-drift-warn", &[], false).await;
    let n = env.n.clone();
    let spec = |drift: serde_json::Value| -> HelmReleaseSpec {
        serde_json::from_value(json!({
            "interval": "1h",
            "chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
            "install": {"disableWait": true},
            "driftDetection": drift,
            "values": {"replicaCount": 2},
        }))
        .unwrap()
    };
    let hrs = apply(&n, &HelmRelease::new("app", spec(json!({"mode": "warn"})))).await;
    wait(&hrs, "app", "installed", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(cluster().client().await, &n);
    let scale = json!({"spec": {"replicas": 7}});
    deployments
        .patch("app-podinfo", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .unwrap();

    // warn: reported, not corrected
    request_reconcile(&hrs, "app", "warn").await;
    let hr = wait(&hrs, "app", "drift reported", |h| {
        h.status
            .as_ref()
            .is_some_and(|s| conditions::get(&s.conditions, "Drifted").is_some_and(|c| c.status == "True"))
    })
    .await;
    let drifted = conditions::get(&hr.status.as_ref().unwrap().conditions, "Drifted")
        .unwrap()
        .clone();
    assert_eq!(drifted.reason, "DriftDetected");
    assert_eq!(
        drifted.message,
        format!(
            "Cluster state of release {n}/app.v1 has drifted from the desired state:\nDeployment/{n}/app-podinfo changed (0 additions, 1 changes, 0 removals)"
        )
    );
    assert_eq!(
        ready(&hr).unwrap().0,
        "True",
        "drift in warn mode does not fail the release"
    );
    assert_eq!(
        deployments.get("app-podinfo").await.unwrap().spec.replicas,
        Some(7)
    );
    assert!(events_with(&n, "DriftCorrected").await.is_empty());
    assert!(!events_with(&n, "DriftDetected").await.is_empty());

    // enabled, with the replicas ignored: left as they are, and nothing else drifted
    apply(
        &n,
        &HelmRelease::new(
            "app",
            spec(json!({"mode": "enabled", "ignore": [{"paths": ["/spec/replicas"], "target": {"kind": "Deployment"}}]})),
        ),
    )
    .await;
    request_reconcile(&hrs, "app", "ignored").await;
    let hr = wait(&hrs, "app", "no drift", |h| {
        h.status
            .as_ref()
            .is_some_and(|s| conditions::get(&s.conditions, "Drifted").is_some_and(|c| c.status == "False"))
    })
    .await;
    assert_eq!(
        conditions::get(&hr.status.as_ref().unwrap().conditions, "Drifted")
            .unwrap()
            .reason,
        "NoDriftDetected"
    );
    assert_eq!(
        deployments.get("app-podinfo").await.unwrap().spec.replicas,
        Some(7)
    );

    // an object deleted by hand comes back; one labelled to be left alone does not count
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(cluster().client().await, &n);
    services
        .delete("app-podinfo", &DeleteParams::default())
        .await
        .unwrap();
    let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(cluster().client().await, &n);
    // NB: `helm create`'s ServiceAccount sets automountServiceAccountToken: true
    let leave = json!({
        "metadata": {"labels": {"helm.toolkit.fluxcd.io/driftDetection": "disabled"}},
        "automountServiceAccountToken": false,
    });
    sa.patch("app-podinfo", &PatchParams::default(), &Patch::Merge(&leave))
        .await
        .unwrap();
    request_reconcile(&hrs, "app", "deleted").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let corrected = loop {
        if let Some(m) = events_with(&n, "DriftCorrected").await.pop() {
            break m;
        }
        assert!(Instant::now() < deadline, "no DriftCorrected event");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        corrected,
        format!("Cluster state of release {n}/app.v1 has been corrected:\nService/{n}/app-podinfo created")
    );
    assert!(services.get_opt("app-podinfo").await.unwrap().is_some());
    assert_eq!(
        sa.get("app-podinfo")
            .await
            .unwrap()
            .automount_service_account_token,
        Some(false),
        "left alone"
    );
    assert_eq!(history(&n, "app").len(), 1, "no Helm revision for a correction");
}

#[tokio::test]
async fn a_kube_config_secret_releases_to_the_remote_cluster() {
    use k8s_openapi::api::core::v1::Secret;
    let env = Env::start("helm-remote", &[], false).await;
    let n = env.n.clone();
    let remote = driftless_testkit::cluster::start_instance("remote");
    let remote_ns = format!("remote-{n}");
    let kubeconfig = std::fs::read_to_string(remote.kubeconfig()).unwrap();
    apply(
        &n,
        &serde_json::from_value::<Secret>(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "remote-kubeconfig"},
            "stringData": {"value": kubeconfig},
        }))
        .unwrap(),
    )
    .await;
    let spec: HelmReleaseSpec = serde_json::from_value(json!({
        "interval": "1h",
        "chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
        "kubeConfig": {"secretRef": {"name": "remote-kubeconfig"}},
        "targetNamespace": remote_ns,
        "storageNamespace": remote_ns,
        "install": {"disableWait": true, "createNamespace": true},
        "driftDetection": {"mode": "enabled"},
    }))
    .unwrap();
    let hrs = apply(&n, &HelmRelease::new("app", spec)).await;
    let hr = wait(&hrs, "app", "released remotely", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    let release = format!("{remote_ns}-app");
    assert_eq!(
        ready(&hr).unwrap().2,
        format!("Helm install succeeded for release {remote_ns}/{release}.v1 with chart podinfo@0.1.0")
    );
    let out = Command::new(tool("helm"))
        .args([
            "history",
            &release,
            "-n",
            &remote_ns,
            "-o",
            "json",
            "--kubeconfig",
        ])
        .arg(remote.kubeconfig())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let remote_client = kube::Client::try_from(remote.config().await).unwrap();
    let remote_deployments: Api<Deployment> = Api::namespaced(remote_client, &remote_ns);
    let name = format!("{release}-podinfo");
    assert!(remote_deployments.get_opt(&name).await.unwrap().is_some());
    let local: Api<Deployment> = Api::namespaced(cluster().client().await, &remote_ns);
    assert!(
        local.get_opt(&name).await.is_err() || local.get_opt(&name).await.unwrap().is_none(),
        "released locally"
    );
    // drift detection looks at the remote cluster's objects
    remote_deployments
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    request_reconcile(&hrs, "app", "remote-drift").await;
    assert_eq!(
        remote_deployments.get(&name).await.unwrap().spec.replicas,
        Some(1)
    );
    // a missing Secret says so
    let mut spec = hr.spec.clone();
    spec.kube_config = serde_json::from_value(json!({"secretRef": {"name": "nope"}})).unwrap();
    apply(&n, &HelmRelease::new("app", spec)).await;
    let hr = wait(&hrs, "app", "the missing Secret reported", |h| {
        ready(h).is_some_and(|r| r.0 == "False")
    })
    .await;
    assert!(
        ready(&hr).unwrap().2.contains("/nope' not found"),
        "{:?}",
        ready(&hr)
    );
}

#[tokio::test]
async fn the_poller_waits_for_the_release_with_health_check_expressions() {
    // the namespace's Deployments roll out; the chart's ConfigMap is ready when its CEL says so
    let env = Env::start("helm-poller", &[], true).await;
    let n = env.n.clone();
    env.charts.add_chart(
        "flagged",
        "0.1.0",
        &[(
            "templates/flag.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flag\ndata:\n  ready: {{ .Values.ready | quote }}\n",
        )],
    );
    let hr_repo: Api<HelmRepository> = Api::namespaced(cluster().client().await, &n);
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: "flagged"}}});
    hr_repo
        .patch("charts", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let spec = |ready: &str| -> HelmReleaseSpec {
        serde_json::from_value(json!({
            "interval": "1h",
            "chart": {"spec": {"chart": "flagged", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
            "install": {"timeout": "4s"},
            "values": {"ready": ready},
            "healthCheckExprs": [{"apiVersion": "v1", "kind": "ConfigMap", "current": "data.ready == 'yes'"}],
        }))
        .unwrap()
    };
    let hrs = apply(&n, &HelmRelease::new("app", spec("no"))).await;
    let hr = wait(&hrs, "app", "the install failed by its health check", |h| {
        released(h).is_some_and(|r| r.1 == "InstallFailed")
    })
    .await;
    let message = released(&hr).unwrap().2;
    assert!(
        message.contains(&format!(
            "timeout waiting for: [ConfigMap/{n}/flag status: 'InProgress']"
        )),
        "only the ConfigMap is not ready: {message}"
    );
    let revisions = history(&n, "app");
    assert_eq!(revisions.len(), 1);
    assert_eq!(
        revisions[0].1, "failed",
        "as helm --wait leaves it: {revisions:?}"
    );

    // the value the expression wants: installed again, and Ready once the wait is over
    apply(&n, &HelmRelease::new("app", spec("yes"))).await;
    let hr = wait(&hrs, "app", "installed", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    assert_eq!(ready(&hr).unwrap().1, "InstallSucceeded");
    assert_eq!(history(&n, "app").last().unwrap().1, "deployed");
}

#[tokio::test]
async fn retry_on_failure_tries_a_failed_upgrade_again_without_remediation() {
    let env = Env::start("helm-retry", &[], false).await;
    let n = env.n.clone();
    let mut spec: HelmReleaseSpec = serde_json::from_value(json!({
        "interval": "1h",
        "chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
        "install": {"disableWait": true},
        "upgrade": {"timeout": "2s", "strategy": {"name": "RetryOnFailure", "retryInterval": "1s"}},
        "uninstall": {"deletionPropagation": "foreground"},
    }))
    .unwrap();
    let hrs = apply(&n, &HelmRelease::new("app", spec.clone())).await;
    wait(&hrs, "app", "installed", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;

    // an upgrade whose Deployment nothing rolls out: failed, tried again and again, never rolled back
    spec.values = Some(json!({"replicaCount": 4}));
    apply(&n, &HelmRelease::new("app", spec)).await;
    let hr = wait(&hrs, "app", "two failed upgrades", |h| {
        h.status
            .as_ref()
            .is_some_and(|s| s.upgrade_failures.unwrap_or(0) >= 2)
    })
    .await;
    let (status, reason, _) = ready(&hr).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "UpgradeFailed"),
        "no RetriesExceeded"
    );
    assert!(
        conditions::get(&hr.status.as_ref().unwrap().conditions, "Remediated").is_none(),
        "no remediation"
    );
    let revisions = history(&n, "app");
    assert!(revisions.len() >= 3, "{revisions:?}");
    assert_eq!(
        revisions[0].1, "deployed",
        "the installed revision stays: {revisions:?}"
    );
    assert!(revisions[1..].iter().all(|r| r.1 == "failed"), "{revisions:?}");

    // uninstalled with the deletion propagation asked for
    hrs.delete("app", &DeleteParams::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while hrs.get_opt("app").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "not uninstalled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(history(&n, "app").is_empty());
}

#[tokio::test]
async fn crds_are_created_and_replaced_as_the_policy_says() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let env = Env::start("helm-crds", &[], false).await;
    let n = env.n.clone();
    let group = format!("{n}.example.com");
    let crd = |description: &str| {
        [
            "apiVersion: apiextensions.k8s.io/v1",
            "kind: CustomResourceDefinition",
            &format!("metadata: {{name: widgets.{group}}}"),
            "spec:",
            &format!("  group: {group}"),
            "  names: {kind: Widget, plural: widgets}",
            "  scope: Namespaced",
            "  versions:",
            "  - name: v1",
            "    served: true",
            "    storage: true",
            &format!("    schema: {{openAPIV3Schema: {{type: object, description: {description}}}}}"),
        ]
        .join("\n")
    };
    env.charts
        .add_chart("widgets", "0.1.0", &[("crds/widgets.yaml", &crd("first"))]);
    let repos: Api<HelmRepository> = Api::namespaced(cluster().client().await, &n);
    let refresh = |token: &'static str| {
        let repos = repos.clone();
        async move {
            let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: token}}});
            repos
                .patch("charts", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    };
    refresh("widgets-1").await;
    let spec: HelmReleaseSpec = serde_json::from_value(json!({
        "interval": "1h",
        "chart": {"spec": {"chart": "widgets", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
        "install": {"disableWait": true},
        "upgrade": {"disableWait": true, "crds": "CreateReplace"},
    }))
    .unwrap();
    let hrs = apply(&n, &HelmRelease::new("app", spec)).await;
    wait(&hrs, "app", "installed", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster().client().await);
    let description = |c: CustomResourceDefinition| {
        c.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| s.description.clone())
    };
    let name = format!("widgets.{group}");
    assert_eq!(
        description(crds.get(&name).await.unwrap()).as_deref(),
        Some("first"),
        "installed by helm"
    );

    // an upgrade replaces it (helm's own upgrade leaves CRDs alone)
    env.charts
        .add_chart("widgets", "0.2.0", &[("crds/widgets.yaml", &crd("second"))]);
    refresh("widgets-2").await;
    wait(&hrs, "app", "upgraded", |h| {
        h.status
            .as_ref()
            .and_then(|s| s.last_attempted_revision.as_deref())
            == Some("0.2.0")
            && ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    assert_eq!(
        description(crds.get(&name).await.unwrap()).as_deref(),
        Some("second"),
        "replaced"
    );
    let _ = crds.delete(&name, &DeleteParams::default()).await;
}

/// The names of the release Secrets of `release` in `ns`.
async fn release_secrets(ns: &str, release: &str) -> Vec<String> {
    use k8s_openapi::api::core::v1::Secret;
    let api: Api<Secret> = Api::namespaced(cluster().client().await, ns);
    let mut names: Vec<String> = api
        .list(&kube::api::ListParams::default().labels(&format!("owner=helm,name={release}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.metadata.name.unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_release_is_kept_in_its_storage_namespace_and_follows_a_changed_target() {
    use k8s_openapi::api::core::v1::Secret;
    let env = Env::start("helm-storage", &[], false).await;
    let n = env.n.clone();
    let (t, t2, s) = (
        cluster().namespace("helm-target").await,
        cluster().namespace("helm-target2").await,
        cluster().namespace("helm-store").await,
    );
    let (t, t2, s) = (t.name().to_string(), t2.name().to_string(), s.name().to_string());
    let where_ = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: where\ndata:\n  namespace: {{ .Release.Namespace }}\n";
    env.charts
        .add_chart("where", "0.1.0", &[("templates/where.yaml", where_)]);
    // the repository's index is read again now
    let repos: Api<HelmRepository> = Api::namespaced(cluster().client().await, &n);
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: "where"}}});
    repos
        .patch("charts", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let mut spec: HelmReleaseSpec = serde_json::from_value(json!({
        "interval": "1h",
        "chart": {"spec": {"chart": "where", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
        "targetNamespace": t,
        "install": {"disableWait": true},
        "upgrade": {"disableWait": true},
    }))
    .unwrap();
    let hrs = apply(&n, &HelmRelease::new("app", spec.clone())).await;
    let hr = wait(&hrs, "app", "installed", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    // Flux's default storage: the HelmRelease's namespace; the objects and .Release.Namespace: the target
    let release = format!("{t}-app");
    assert_eq!(
        ready(&hr).unwrap().2,
        format!("Helm install succeeded for release {t}/{release}.v1 with chart where@0.1.0")
    );
    assert_eq!(
        hr.status.as_ref().unwrap().storage_namespace.as_deref(),
        Some(n.as_str())
    );
    assert_eq!(
        history(&n, &release),
        vec![(1, "deployed".into(), "where-0.1.0".into())]
    );
    assert!(
        release_secrets(&t, &release).await.is_empty(),
        "no release Secret beside the objects"
    );
    let kube = cluster().client().await;
    let cms = |ns: &str| Api::<ConfigMap>::namespaced(kube.clone(), ns);
    let where_cm = cms(&t).get("where").await.unwrap();
    assert_eq!(where_cm.data.unwrap()["namespace"], t);

    // an upgrade moves the Secrets in for helm and back out
    spec.values = Some(json!({"replicaCount": 2}));
    apply(&n, &HelmRelease::new("app", spec.clone())).await;
    wait(&hrs, "app", "upgraded", |h| {
        ready(h).is_some_and(|r| r.1 == "UpgradeSucceeded")
    })
    .await;
    assert_eq!(
        history(&n, &release),
        vec![
            (1, "superseded".into(), "where-0.1.0".into()),
            (2, "deployed".into(), "where-0.1.0".into())
        ]
    );
    assert!(release_secrets(&t, &release).await.is_empty());

    // a new storage namespace: the Secrets move there, no new revision
    spec.storage_namespace = Some(s.clone());
    apply(&n, &HelmRelease::new("app", spec.clone())).await;
    wait(&hrs, "app", "storage moved", |h| {
        h.status.as_ref().and_then(|s| s.storage_namespace.clone()) == Some(s.clone())
            && ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    assert_eq!(history(&s, &release).len(), 2, "{:?}", history(&s, &release));
    assert!(release_secrets(&n, &release).await.is_empty());
    assert_eq!(
        cms(&t).get("where").await.unwrap().metadata.uid,
        where_cm.metadata.uid,
        "the release's objects stay"
    );

    // an action cut short left the Secrets beside the objects: they go back before anything reads them
    let client = cluster().client().await;
    let (from, to) = (
        Api::<Secret>::namespaced(client.clone(), &s),
        Api::<Secret>::namespaced(client, &t),
    );
    for name in release_secrets(&s, &release).await {
        let secret = from.get(&name).await.unwrap();
        let copy = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                labels: secret.metadata.labels,
                ..Default::default()
            },
            type_: secret.type_,
            data: secret.data,
            ..Default::default()
        };
        to.create(&Default::default(), &copy).await.unwrap();
        from.delete(&name, &DeleteParams::default()).await.unwrap();
    }
    request_reconcile(&hrs, "app", "cut-short").await;
    assert!(release_secrets(&t, &release).await.is_empty());
    assert_eq!(history(&s, &release).len(), 2, "back in storage, no new revision");

    // a new target namespace: the previous release is uninstalled, a new one installed
    spec.target_namespace = Some(t2.clone());
    apply(&n, &HelmRelease::new("app", spec.clone())).await;
    let release2 = format!("{t2}-app");
    wait(&hrs, "app", "installed in the new target", |h| {
        ready(h).is_some_and(|r| r.2.contains(&format!("{t2}/{release2}.v1")))
    })
    .await;
    assert!(
        history(&s, &release).is_empty(),
        "the previous release is uninstalled"
    );
    assert!(cms(&t).get_opt("where").await.unwrap().is_none());
    assert_eq!(
        cms(&t2).get("where").await.unwrap().data.unwrap()["namespace"],
        t2
    );

    // deleted: uninstalled from its storage
    hrs.delete("app", &DeleteParams::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while hrs.get_opt("app").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the HelmRelease was not finalized");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(history(&s, &release2).is_empty());
    assert!(cms(&t2).get_opt("where").await.unwrap().is_none());
}

#[tokio::test]
async fn with_the_poller_a_rollback_waits_for_its_objects() {
    let env = Env::start("helm-rbwait", &[], false).await;
    let n = env.n.clone();
    let mut spec: HelmReleaseSpec = serde_json::from_value(json!({
        "interval": "1h",
        "chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
        "install": {"disableWait": true},
        "upgrade": {"timeout": "2s", "remediation": {"retries": 1}},
        "rollback": {"timeout": "2s"},
    }))
    .unwrap();
    let hrs = apply(&n, &HelmRelease::new("app", spec.clone())).await;
    wait(&hrs, "app", "installed", |h| {
        ready(h).is_some_and(|r| r.0 == "True")
    })
    .await;
    // nothing rolls out: the upgrade fails, and so does the rollback's wait
    spec.values = Some(json!({"replicaCount": 4}));
    apply(&n, &HelmRelease::new("app", spec)).await;
    let hr = wait(&hrs, "app", "the rollback failed", |h| {
        h.status
            .as_ref()
            .and_then(|s| conditions::get(&s.conditions, "Remediated"))
            .is_some_and(|c| c.reason == "RollbackFailed")
    })
    .await;
    let remediated = conditions::get(&hr.status.as_ref().unwrap().conditions, "Remediated").unwrap();
    assert_eq!(remediated.status, "False");
    assert!(
        remediated.message.contains("Deployment/") && remediated.message.contains(&format!("{n}/app.v1")),
        "{}",
        remediated.message
    );
}
