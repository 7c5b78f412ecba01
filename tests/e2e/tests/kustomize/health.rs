//! Health checks, dependencies and sync waves. The test cluster runs no workload controllers, so the
//! tests write the Deployments' status themselves: rolled out, still progressing, or past their deadline.

use super::*;

/// A Deployment of one replica named `name`, with `extra` lines under `metadata` (annotations…).
fn deployment(name: &str, image: &str, extra: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n{extra}spec:\n  replicas: 1\n  selector:\n    \
         matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      \
         containers:\n      - name: app\n        image: {image}\n"
    )
}

/// Writes the status a Deployment controller would: rolled out, or failed past its progress deadline.
async fn set_rollout(ns: &str, name: &str, rolled_out: bool) {
    let api: Api<Deployment> = Api::namespaced(cluster().client().await, ns);
    let generation = api.get(name).await.unwrap().metadata.generation.unwrap();
    let progressing = if rolled_out {
        json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"})
    } else {
        json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
               "message": "ReplicaSet has timed out progressing."})
    };
    let ready = i64::from(rolled_out);
    let status = json!({"status": {"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1,
        "availableReplicas": ready, "readyReplicas": ready,
        "conditions": [{"type": "Available", "status": if rolled_out { "True" } else { "False" }}, progressing]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

async fn wait_for_deployment(ns: &str, name: &str) {
    let api: Api<Deployment> = Api::namespaced(cluster().client().await, ns);
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.get_opt(name).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "Deployment {name} was not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn condition(obj: &Kustomization, kind: &str) -> Option<(String, String, String)> {
    let c = conditions::get(&obj.status.as_ref()?.conditions, kind)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn wait_reports_health_fails_fast_and_a_new_revision_cancels_the_wait() {
    let h = start("ks-health").await;
    let n = h.ns.name().to_string();
    let first = h
        .fleet
        .repo
        .commit(&[("health/web.yaml", &deployment("web", "nginx:1", ""))], "web");
    request_fleet(&h, "web").await;
    create(
        &h,
        "web",
        KustomizationSpec {
            target_namespace: Some(n.clone()),
            wait: Some(true),
            ..spec("./health", true)
        },
    )
    .await;
    // applied, then waiting: Reconciling and Ready Unknown say so
    let obj = wait_until(&h, "web", "the health check to start", |o| {
        condition(o, "Reconciling").is_some_and(|c| c.2.starts_with("Running health checks for revision"))
    })
    .await;
    let (status, reason, message) = condition(&obj, "Ready").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("Unknown", "Progressing"));
    assert!(
        message.contains(&first) && message.ends_with("with a timeout of 59m30s"),
        "{message}"
    );

    set_rollout(&n, "web", true).await;
    let obj = wait_until(&h, "web", "healthy", |o| applied(o, &first)).await;
    let (status, reason, message) = condition(&obj, "Healthy").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Succeeded"));
    assert!(message.starts_with("Health check passed in "), "{message}");
    assert!(condition(&obj, "Reconciling").is_none());

    // a rollout past its deadline fails the check at once, not at the timeout
    let second = h
        .fleet
        .repo
        .commit(&[("health/web.yaml", &deployment("web", "nginx:2", ""))], "web 2");
    request_fleet(&h, "web-2").await;
    wait_until(&h, "web", "the second health check", |o| {
        condition(o, "Reconciling").is_some_and(|c| c.2.contains(&second))
    })
    .await;
    set_rollout(&n, "web", false).await;
    let obj = wait_until(&h, "web", "the failed health check", |o| {
        condition(o, "Ready").is_some_and(|c| c.1 == "HealthCheckFailed")
    })
    .await;
    let (_, _, message) = condition(&obj, "Ready").unwrap();
    assert!(
        message.starts_with("health check failed after ")
            && message.ends_with(&format!(
                ": failed early due to stalled resources: [Deployment/{n}/web status: 'Failed']"
            )),
        "{message}"
    );
    assert_eq!(condition(&obj, "Healthy").unwrap().0, "False");

    // while a check waits, a newer revision cancels it and is applied at once
    let third = h
        .fleet
        .repo
        .commit(&[("health/web.yaml", &deployment("web", "nginx:3", ""))], "web 3");
    request_fleet(&h, "web-3").await;
    wait_until(&h, "web", "the third health check", |o| {
        condition(o, "Reconciling").is_some_and(|c| c.2.contains(&third))
    })
    .await;
    let fourth = h
        .fleet
        .repo
        .commit(&[("health/web.yaml", &deployment("web", "nginx:4", ""))], "web 4");
    request_fleet(&h, "web-4").await;
    wait_until(&h, "web", "the fourth revision applied", |o| {
        o.status
            .as_ref()
            .and_then(|s| s.last_applied_revision.as_deref())
            .is_some_and(|r| r.ends_with(&fourth))
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(cluster().client().await, &n);
    let image = deployments
        .get("web")
        .await
        .unwrap()
        .spec
        .template
        .spec
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("nginx:4"));
}

#[tokio::test]
async fn a_dependent_waits_for_its_dependency_and_starts_when_it_becomes_ready() {
    let h = start_with("ks-deps", &["--requeue-dependency=1h"]).await;
    let n = h.ns.name().to_string();
    let head = h.fleet.repo.commit(
        &[
            ("db/db.yaml", &deployment("db", "postgres:16", "")),
            ("app/app.yaml", &CM.replace("settings", "app")),
            ("side/side.yaml", &CM.replace("settings", "side")),
        ],
        "db, app, side",
    );
    request_fleet(&h, "deps").await;
    let reference = |name: &str, expr: Option<&str>| driftless_api::kustomize::DependencyReference {
        name: name.into(),
        namespace: None,
        ready_expr: expr.map(str::to_string),
    };
    create(
        &h,
        "db",
        KustomizationSpec {
            target_namespace: Some(n.clone()),
            wait: Some(true),
            ..spec("./db", true)
        },
    )
    .await;
    create(
        &h,
        "app",
        KustomizationSpec {
            target_namespace: Some(n.clone()),
            depends_on: Some(vec![reference("db", None)]),
            ..spec("./app", true)
        },
    )
    .await;
    // a readyExpr replaces the Ready check: this one holds while db is still unhealthy
    create(
        &h,
        "side",
        KustomizationSpec {
            target_namespace: Some(n.clone()),
            depends_on: Some(vec![reference(
                "db",
                Some("dep.metadata.name == 'db' && self.metadata.name == 'side'"),
            )]),
            ..spec("./side", true)
        },
    )
    .await;
    wait_until(&h, "side", "the readyExpr dependent", |o| applied(o, &head)).await;
    let obj = wait_until(&h, "app", "the dependency wait", |o| {
        ready(o).is_some_and(|r| r.1 == "DependencyNotReady")
    })
    .await;
    assert_eq!(
        ready(&obj).unwrap().2,
        format!("dependency '{n}/db' is not ready")
    );
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, &n);
    assert!(
        cms.get_opt("app").await.unwrap().is_none(),
        "applied before its dependency"
    );

    wait_for_deployment(&n, "db").await;
    set_rollout(&n, "db", true).await;
    wait_until(&h, "db", "db healthy", |o| applied(o, &head)).await;
    // --requeue-dependency is an hour: only the dependency's change can start it this soon
    wait_until(&h, "app", "the dependent started", |o| applied(o, &head)).await;
    assert!(cms.get_opt("app").await.unwrap().is_some());

    // across namespaces: a dependency elsewhere (this controller watches one namespace, so its status
    // is written here as its own controller would), and one that does not exist
    let other = cluster().namespace("ks-deps-other").await;
    let elsewhere: Api<Kustomization> = Api::namespaced(cluster().client().await, other.name());
    let remote = Kustomization::new("remote-db", spec("./db", false));
    elsewhere
        .patch("remote-db", &PatchParams::apply("t"), &Patch::Apply(&remote))
        .await
        .unwrap();
    let generation = elsewhere.get("remote-db").await.unwrap().metadata.generation;
    let ready_status = json!({"status": {"observedGeneration": generation, "conditions": [{"type": "Ready",
        "status": "True", "reason": "ReconciliationSucceeded", "message": "Applied revision: x",
        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    elsewhere
        .patch_status("remote-db", &PatchParams::default(), &Patch::Merge(&ready_status))
        .await
        .unwrap();
    let across = |name: &str| driftless_api::kustomize::DependencyReference {
        name: name.into(),
        namespace: Some(other.name().to_string()),
        ready_expr: None,
    };
    create(
        &h,
        "app-across",
        KustomizationSpec {
            target_namespace: Some(n.clone()),
            depends_on: Some(vec![across("remote-db")]),
            ..spec("./app", false)
        },
    )
    .await;
    wait_until(&h, "app-across", "the cross-namespace dependent", |o| {
        applied(o, &head)
    })
    .await;
    create(
        &h,
        "app-missing",
        KustomizationSpec {
            target_namespace: Some(n.clone()),
            depends_on: Some(vec![across("nowhere")]),
            ..spec("./app", false)
        },
    )
    .await;
    let obj = wait_until(&h, "app-missing", "the missing dependency", |o| {
        ready(o).is_some_and(|r| r.1 == "DependencyNotReady")
    })
    .await;
    assert!(
        ready(&obj)
            .unwrap()
            .2
            .starts_with(&format!("unable to get '{}/nowhere' dependency", other.name())),
        "{:?}",
        ready(&obj)
    );
}

#[tokio::test]
async fn sync_waves_apply_in_order_each_healthy_before_the_next() {
    let h = start("ks-waves").await;
    let n = h.ns.name().to_string();
    let wave = |key: &str, value: &str| format!("  annotations:\n    {key}: \"{value}\"\n");
    let late_cm = CM.replace(
        "name: settings\n",
        &format!("name: late\n{}", wave("argocd.argoproj.io/sync-wave", "2")),
    );
    let early_cm = CM.replace(
        "name: settings\n",
        &format!("name: early\n{}", wave("driftless.io/wave", "-1")),
    );
    let head = h.fleet.repo.commit(
        &[
            ("waves/db.yaml", &deployment("db", "postgres:16", "")),
            ("waves/early.yaml", &early_cm),
            ("waves/late.yaml", &late_cm),
        ],
        "waves",
    );
    request_fleet(&h, "waves").await;
    create(
        &h,
        "waves",
        KustomizationSpec {
            target_namespace: Some(n.clone()),
            ..spec("./waves", true)
        },
    )
    .await;
    // wave -1 (a ConfigMap: healthy at once), then wave 0 (the Deployment), then nothing until it is healthy
    wait_for_deployment(&n, "db").await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster().client().await, &n);
    assert!(
        cms.get_opt("early").await.unwrap().is_some(),
        "wave -1 comes first"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        cms.get_opt("late").await.unwrap().is_none(),
        "wave 2 went ahead of an unhealthy wave 0"
    );

    set_rollout(&n, "db", true).await;
    let obj = wait_until(&h, "waves", "every wave", |o| applied(o, &head)).await;
    assert!(cms.get_opt("late").await.unwrap().is_some());
    assert_eq!(obj.status.unwrap().inventory.unwrap().entries.len(), 3);
}

#[tokio::test]
async fn health_checks_name_the_objects_to_wait_for() {
    let h = start("ks-checks").await;
    let n = h.ns.name().to_string();
    let head = h.fleet.repo.commit(
        &[
            ("checks/db.yaml", &deployment("db", "postgres:16", "")),
            ("checks/cache.yaml", &deployment("cache", "redis:7", "")),
        ],
        "db and cache",
    );
    request_fleet(&h, "checks").await;
    let check = driftless_api::meta::NamespacedObjectKindReference {
        api_version: Some("apps/v1".into()),
        kind: "Deployment".into(),
        name: "db".into(),
        namespace: Some(n.clone()),
    };
    create(
        &h,
        "checks",
        KustomizationSpec {
            target_namespace: Some(n.clone()),
            health_checks: Some(vec![check]),
            ..spec("./checks", true)
        },
    )
    .await;
    wait_until(&h, "checks", "the health check to start", |o| {
        condition(o, "Reconciling").is_some_and(|c| c.2.starts_with("Running health checks"))
    })
    .await;
    // only db is checked: cache never rolls out, and it does not matter
    set_rollout(&n, "db", true).await;
    let obj = wait_until(&h, "checks", "healthy", |o| applied(o, &head)).await;
    assert_eq!(condition(&obj, "Healthy").unwrap().0, "True");
}
