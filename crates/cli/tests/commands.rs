//! `driftless get`, `reconcile`, `suspend` and `resume` against the test cluster, with source-controller
//! and kustomize-controller running in process: what each prints, its exit code and what it changed.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use driftless_e2e::Fleet;
use driftless_testkit::cluster::cluster;
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams},
};
use serde_json::{Value, json};

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  v: \"1\"\n";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn driftless(ns: &str, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args)
        .args(["-n", ns, "--timeout", "60s"])
        .env("KUBECONFIG", cluster().kubeconfig())
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ks_api(client: kube::Client, ns: &str) -> Api<DynamicObject> {
    let ar = driftless_api::kinds::get("Kustomization").unwrap().api_resource();
    Api::namespaced_with(client, ns, &ar)
}

async fn ready_at(api: &Api<DynamicObject>, name: &str, revision: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = serde_json::to_value(api.get(name).await.unwrap()).unwrap();
        if o.pointer("/status/lastAppliedRevision").and_then(Value::as_str) == Some(revision) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never applied {revision}: {o}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The cells of the table row whose first cell is `name`.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split('\t').map(str::trim_end).collect::<Vec<_>>())
        .find(|cells| cells[0] == name)
        .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
}

// the controllers run on this runtime's workers while the test blocks on the CLI's process
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_reconcile_suspend_and_resume_work_as_flux_s() {
    let tc = cluster();
    tc.install_crds().await;
    tc.apply_kustomization("config/default");
    let ns = tc.namespace("cli").await;
    let n = ns.name().to_string();
    let artifacts = tempfile::tempdir().unwrap();
    let quiet = ["--log-level=error".to_string()];
    let _source = driftless_e2e::source(&n, artifacts.path(), &quiet).await;
    let _kustomize = driftless_e2e::kustomize(&n, &quiet).await;
    let fleet = Fleet::start(&n, &[("apps/cm.yaml", CM)]).await;
    let ks = ks_api(tc.client().await, &n);
    let obj = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps"},
        "spec": {"interval": "1h", "path": "./apps", "prune": true, "targetNamespace": n,
                 "sourceRef": {"kind": "GitRepository", "name": "fleet"}}});
    ks.patch("apps", &PatchParams::apply("t"), &Patch::Apply(&obj))
        .await
        .unwrap();
    let first = format!("main@sha1:{}", fleet.head);
    ready_at(&ks, "apps", &first).await;

    // get: flux's columns, the digest cut to 8 characters, AGE
    let short = &fleet.head[..8];
    let out = driftless(&n, &["get", "kustomizations"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let header: Vec<&str> = out
        .stdout
        .lines()
        .next()
        .unwrap()
        .split('\t')
        .map(str::trim_end)
        .collect();
    assert_eq!(
        header,
        ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE", "AGE"]
    );
    let cells = row(&out.stdout, "apps");
    assert_eq!(
        cells[..5],
        [
            "apps",
            &format!("main@sha1:{short}"),
            "False",
            "True",
            &format!("Applied revision: main@sha1:{short}")
        ]
    );
    assert!(cells[5].ends_with('s'), "an age: {}", cells[5]);
    let out = driftless(&n, &["get", "source", "git", "fleet"]);
    assert_eq!(
        row(&out.stdout, "fleet")[1..4],
        [format!("main@sha1:{short}").as_str(), "False", "True"]
    );
    let out = driftless(&n, &["get", "all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    row(&out.stdout, "gitrepository/fleet");
    row(&out.stdout, "kustomization/apps");
    let has = |table: &str| {
        table.lines().any(|l| {
            let cells: Vec<&str> = l.split('\t').map(str::trim_end).collect();
            cells[0] == n && cells.get(1) == Some(&"apps")
        })
    };
    let out = driftless(&n, &["get", "ks", "-A", "--status-selector", "ready=true"]);
    assert!(has(&out.stdout), "{}", out.stdout);
    let out = driftless(&n, &["get", "ks", "-A", "--status-selector", "ready=false"]);
    assert!(!has(&out.stdout), "{}", out.stdout);
    let out = driftless(&n, &["get", "ks", "-A", "--no-header"]);
    assert!(has(&out.stdout), "{}", out.stdout);
    assert!(!out.stdout.contains("NAME"));
    let out = driftless(&n, &["get", "ks", "apps", "-o", "json"]);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["kind"], "Kustomization");
    assert!(doc["metadata"].get("managedFields").is_none());
    let out = driftless(&n, &["get", "ks", "-o", "yaml"]);
    assert!(
        out.stdout.starts_with("apiVersion: v1\nitems:\n"),
        "{}",
        out.stdout
    );
    // --watch: the table, then a row per change until the timeout
    let watcher = {
        let n = n.clone();
        std::thread::spawn(move || {
            let out = Command::new(env!("CARGO_BIN_EXE_driftless"))
                .args(["get", "ks", "apps", "--watch", "-n", &n, "--timeout", "4s"])
                .env("KUBECONFIG", cluster().kubeconfig())
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let label = json!({"metadata": {"labels": {"watched": "yes"}}});
    ks.patch("apps", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    let (code, watched) = tokio::task::spawn_blocking(move || watcher.join().unwrap())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    assert!(watched.starts_with("NAME"), "{watched}");
    let unlabel = json!({"metadata": {"labels": {"watched": null}}});
    ks.patch("apps", &PatchParams::default(), &Patch::Merge(&unlabel))
        .await
        .unwrap();
    assert!(
        watched.lines().filter(|l| l.starts_with("apps")).count() >= 2,
        "a row for the change: {watched}"
    );
    // --context: the kubeconfig's own works, another is refused by name
    let context = tc.kubectl(&["config", "current-context"]);
    let out = driftless(&n, &["get", "ks", "--context", context.trim()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = driftless(&n, &["get", "ks", "--context", "nope"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("nope"), "{}", out.stderr);

    // reconcile --with-source: a new commit, fetched and applied, and said so
    let second = fleet
        .repo
        .commit(&[("apps/cm.yaml", &CM.replace("\"1\"", "\"2\""))], "two");
    let out = driftless(&n, &["reconcile", "ks", "apps", "--with-source"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "► annotating GitRepository fleet in {n} namespace\n✔ GitRepository annotated\n\
             ◎ waiting for GitRepository reconciliation\n✔ fetched revision main@sha1:{second}\n\
             ► annotating Kustomization apps in {n} namespace\n✔ Kustomization annotated\n\
             ◎ waiting for Kustomization reconciliation\n✔ applied revision main@sha1:{second}\n"
        )
    );

    // a failing revision: reported at once, exit 1
    fleet.repo.commit(&[("apps/cm.yaml", "kind: [unclosed")], "bad");
    let started = Instant::now();
    let out = driftless(&n, &["reconcile", "kustomization", "apps", "--with-source"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("✗ Kustomization reconciliation failed: '"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(30), "not at the timeout");
    let out = driftless(&n, &["get", "ks", "--status-selector", "ready=false"]);
    assert_eq!(row(&out.stdout, "apps")[3], "False");
    fleet.repo.commit(&[("apps/cm.yaml", CM)], "fixed");

    // suspend: marked, a reconcile refused; resume: waits for the reconcile it causes
    let out = driftless(&n, &["suspend", "ks", "apps"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!("► suspending kustomization apps in {n} namespace\n✔ kustomization suspended\n")
    );
    let o = serde_json::to_value(ks.get("apps").await.unwrap()).unwrap();
    assert_eq!(o["spec"]["suspend"], true);
    assert_eq!(row(&driftless(&n, &["get", "ks"]).stdout, "apps")[2], "True");
    let out = driftless(&n, &["reconcile", "ks", "apps"]);
    assert_eq!((out.code, out.stderr.as_str()), (1, "✗ resource is suspended\n"));
    driftless(&n, &["reconcile", "source", "git", "fleet"]);
    let out = driftless(&n, &["resume", "ks", "apps"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!(
            "► resuming kustomization apps in {n} namespace\n✔ kustomization resumed\n\
             ◎ waiting for Kustomization reconciliation\n✔ Kustomization apps reconciliation completed\n\
             ✔ applied revision main@sha1:"
        )),
        "{}",
        out.stderr
    );
    let out = driftless(&n, &["suspend", "ks", "apps", "nope"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains(&format!("✗ Kustomization nope not found in {n} namespace")),
        "{}",
        out.stderr
    );
    driftless(&n, &["resume", "ks", "--all", "--wait=false"]);

    // diff: the local directory against the cluster, as the controller would apply it
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("cm.yaml"), CM).unwrap();
    let out = driftless(
        &n,
        &[
            "diff",
            "kustomization",
            "apps",
            "--path",
            local.path().to_str().unwrap(),
        ],
    );
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    // drift: someone changed the live object; the unchanged directory would put it back
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(tc.client().await, &n);
    let set = |v: &str| json!({"data": {"v": v}});
    cms.patch("app", &PatchParams::default(), &Patch::Merge(set("9")))
        .await
        .unwrap();
    let out = driftless(
        &n,
        &["diff", "ks", "apps", "--path", local.path().to_str().unwrap()],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.contains("-  v: \"9\"\n+  v: \"1\"\n"),
        "{}",
        out.stdout
    );
    cms.patch("app", &PatchParams::default(), &Patch::Merge(set("1")))
        .await
        .unwrap();
    std::fs::write(local.path().join("cm.yaml"), CM.replace("\"1\"", "\"3\"")).unwrap();
    std::fs::write(
        local.path().join("extra.yaml"),
        CM.replace("name: app", "name: extra"),
    )
    .unwrap();
    let out = driftless(
        &n,
        &["diff", "ks", "apps", "--path", local.path().to_str().unwrap()],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    for want in [
        format!(
            "► ConfigMap/{n}/app drifted\n--- ConfigMap/{n}/app (cluster)\n+++ ConfigMap/{n}/app (--path)\n"
        ),
        "-  v: \"1\"\n+  v: \"3\"\n".to_string(),
        format!("► ConfigMap/{n}/extra created\n"),
    ] {
        assert!(out.stdout.contains(&want), "{want} in\n{}", out.stdout);
    }
    std::fs::remove_file(local.path().join("cm.yaml")).unwrap();
    let out = driftless(
        &n,
        &["diff", "ks", "apps", "--path", local.path().to_str().unwrap()],
    );
    assert!(
        out.stdout.contains(&format!("► ConfigMap/{n}/app deleted\n")),
        "{}",
        out.stdout
    );
    assert_eq!(
        cms.get("app").await.unwrap().data.unwrap()["v"],
        "1",
        "a dry run changes nothing"
    );
    assert!(cms.get_opt("extra").await.unwrap().is_none());
    let out = driftless(&n, &["diff", "ks", "apps", "--path", "/nonexistent"]);
    assert_eq!(out.code, 2, "{}", out.stderr);

    // tree, trace, events, export
    let out = driftless(&n, &["tree", "ks", "apps"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("Kustomization/{n}/apps\n└── ConfigMap/{n}/app (Current)\n")
    );
    let out = driftless(&n, &["trace", "configmap/app"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let applied =
        serde_json::to_value(ks.get("apps").await.unwrap()).unwrap()["status"]["lastAppliedRevision"]
            .as_str()
            .unwrap()
            .to_string();
    for want in [
        "Object:          configmap/app\n".to_string(),
        format!("Namespace:       {n}\nStatus:          Managed by Flux\n---\nKustomization:   apps\n"),
        format!("Target:          {n}\nPath:            ./apps\nRevision:        {applied}\n"),
        "---\nGitRepository:   fleet\n".to_string(),
        "Branch:          main\n".to_string(),
    ] {
        assert!(out.stdout.contains(&want), "{want} in\n{}", out.stdout);
    }
    let out = driftless(&n, &["events", "--for", "Kustomization/apps"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("LAST SEEN"), "{}", out.stdout);
    assert!(out.stdout.contains("\tKustomization/apps"), "{}", out.stdout);
    let objects: Vec<&str> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(3).unwrap().trim_end())
        .filter(|o| !o.is_empty()) // the continuation lines of a message of several lines
        .collect();
    assert!(
        objects.contains(&"GitRepository/fleet"),
        "its source's too: {}",
        out.stdout
    );
    assert!(
        objects
            .iter()
            .all(|o| *o == "Kustomization/apps" || *o == "GitRepository/fleet"),
        "{}",
        out.stdout
    );
    let out = driftless(&n, &["export", "ks", "apps"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with(&format!(
            "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  namespace: {n}\nspec:\n"
        )),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("status:") && !out.stdout.contains("uid:"),
        "{}",
        out.stdout
    );
    let out = driftless(&n, &["completion", "bash"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("_driftless()"), "a bash completion function");

    // create: a source with its credentials Secret and a Kustomization, each waited for; delete
    let url = fleet.server.url("fleet");
    let out = driftless(
        &n,
        &[
            "create", "source", "git", "fleet2", "--url", &url, "--branch", "main", "-u", "flux", "-p",
            "s3cret",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(
            "✚ generating GitRepository\n► applying secret with repository credentials\n✔ authentication configured\n\
             ► applying GitRepository\n✔ GitRepository created\n◎ waiting for GitRepository reconciliation\n\
             ✔ GitRepository fleet2 is ready\n✔ fetched revision main@sha1:"
        ),
        "{}",
        out.stderr
    );
    let out = driftless(
        &n,
        &[
            "create",
            "ks",
            "apps2",
            "--source",
            "GitRepository/fleet2",
            "--path",
            "./apps",
            "--target-namespace",
            &n,
            "--interval",
            "10m",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("✔ Kustomization apps2 is ready\n✔ applied revision main@sha1:"),
        "{}",
        out.stderr
    );
    let o = serde_json::to_value(ks.get("apps2").await.unwrap()).unwrap();
    assert_eq!(o["spec"]["interval"], "10m0s");
    let out = driftless(
        &n,
        &[
            "create",
            "ks",
            "apps2",
            "--source",
            "fleet2",
            "--path",
            "./apps",
            "--target-namespace",
            &n,
        ],
    );
    assert!(out.stderr.contains("✔ Kustomization updated\n"), "{}", out.stderr);
    let out = driftless(&n, &["delete", "ks", "apps2"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("pass --silent"), "{}", out.stderr);
    let out = driftless(&n, &["delete", "ks", "apps2", "--silent"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        ks.get_opt("apps2")
            .await
            .unwrap()
            .is_none_or(|o| o.metadata.deletion_timestamp.is_some())
    );

    // errors say what to do
    let out = driftless(&n, &["get", "ks", "nope"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            format!("✗ Kustomization object 'nope' not found in {n:?} namespace\n").as_str()
        )
    );
    let out = driftless(&n, &["get", "helmreleases"]);
    assert_eq!(
        out.stderr,
        format!("✗ no HelmRelease objects found in {n:?} namespace\n")
    );
    let out = driftless(&n, &["reconcile", "ks", "nope"]);
    assert_eq!(
        out.stderr,
        format!("✗ Kustomization object 'nope' not found in {n:?} namespace\n")
    );
    let out = driftless(&n, &["get", "deployments"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("✗ unknown kind 'deployments': the known kinds are source git"),
        "{}",
        out.stderr
    );
    let _ = second;
}

#[test]
fn without_a_kubeconfig_the_error_says_how_to_give_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["get", "ks"])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.starts_with("✗ no cluster to talk to"), "{stderr}");
    assert!(
        stderr.contains("pass --kubeconfig FILE or set KUBECONFIG"),
        "{stderr}"
    );
}

fn on(kubeconfig: &std::path::Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// On a cluster of its own: install applies every component and its CRDs, check reports what runs and
/// what is installed, uninstall removes all of it — Flux objects too, their finalizers dropped first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_check_and_uninstall() {
    let tc = driftless_testkit::cluster::start_instance("cli");
    let kc = tc.kubeconfig().to_path_buf();
    let out = on(
        &kc,
        &[
            "install",
            "--components-extra",
            "image-reflector-controller,image-automation-controller",
            "--wait=false",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "► installing components in flux-system namespace\n✔ 15 CRDs applied\n✔ install finished\n"
    );
    let deployments = tc.kubectl(&["-n", "flux-system", "get", "deployments", "-o", "name"]);
    assert_eq!(deployments.lines().count(), 6, "{deployments}");
    // this cluster runs no pods: the rollout never finishes, and install says so
    let out = on(&kc, &["install", "--timeout", "2s"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("◎ verifying installation\n✗ source-controller: deployment not ready after 2s"),
        "{}",
        out.stderr
    );
    let out = on(&kc, &["check"]);
    assert_eq!(out.code, 1);
    for want in [
        "► checking prerequisites\n✔ Kubernetes 1.",
        "✗ source-controller: deployment not ready",
        "► ghcr.io/driftless-io/source-controller:",
        "✔ gitrepositories.source.toolkit.fluxcd.io/v1\n",
        "✔ imagepolicies.image.toolkit.fluxcd.io/v1\n",
        "✗ check failed\n",
    ] {
        assert!(out.stderr.contains(want), "{want} in\n{}", out.stderr);
    }
    let out = on(&kc, &["check", "--pre"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.ends_with("✔ prerequisites checks passed\n"),
        "{}",
        out.stderr
    );

    // a Flux object with a finalizer no controller will run
    tc.kubectl_apply(&[
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "fleet", "namespace": "default", "finalizers": ["finalizers.fluxcd.io"]},
        "spec": {"url": "https://example.com/x.git", "interval": "1m"}}),
    ]);
    let out = on(&kc, &["uninstall"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("pass --silent"), "{}", out.stderr);
    let out = on(&kc, &["uninstall", "--silent"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for want in [
        "► deleting components in flux-system namespace\n",
        "✔ Deployment/source-controller deleted\n",
        "✔ GitRepository/default/fleet finalizers deleted\n",
        "✔ CustomResourceDefinition/gitrepositories.source.toolkit.fluxcd.io deleted\n",
        "✔ Namespace/flux-system deleted\n✔ uninstall finished\n",
    ] {
        assert!(out.stderr.contains(want), "{want} in\n{}", out.stderr);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // a CRD goes once the API server has removed its objects
        let crds = tc.kubectl(&["get", "crds", "-o", "name"]);
        if !crds.contains("fluxcd.io") {
            break;
        }
        assert!(Instant::now() < deadline, "left: {crds}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = on(&kc, &["get", "ks", "-A"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("✗ the Kustomization CRD (kustomizations.kustomize.toolkit.fluxcd.io) is not installed in this cluster"),
        "{}",
        out.stderr
    );
    let out = on(&kc, &["check"]);
    assert!(
        out.stderr
            .contains("✗ gitrepositories.source.toolkit.fluxcd.io: not installed"),
        "{}",
        out.stderr
    );
    tc.stop();
}

/// push artifact → an OCIRepository (source-controller in process) stores it with its origin; pull gets
/// the files back; tag and list; the registry's credentials are used and a wrong password is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_push_pull_tag_and_list_in_flux_s_format() {
    let tc = cluster();
    tc.install_crds().await;
    tc.apply_kustomization("config/default");
    let ns = tc.namespace("cli-oci").await;
    let n = ns.name().to_string();
    let storage = tempfile::tempdir().unwrap();
    let _source = driftless_e2e::source(&n, storage.path(), &["--log-level=error".to_string()]).await;
    let registry = driftless_testkit::registry::Registry::start_with_auth("me", "pw");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("apps")).unwrap();
    std::fs::write(dir.path().join("apps/cm.yaml"), CM).unwrap();
    std::fs::write(dir.path().join("apps/notes.md"), "left out").unwrap();
    let url = format!("{}:v1", registry.url("deploy"));
    let path = dir.path().to_str().unwrap().to_string();
    let push = |creds: &str| {
        driftless(
            &n,
            &[
                "push",
                "artifact",
                &url,
                "--path",
                &path,
                "--source",
                "https://github.com/org/fleet",
                "--revision",
                "main@sha1:0123456789abcdef0123456789abcdef01234567",
                "--ignore-paths",
                "*.md",
                "--creds",
                creds,
            ],
        )
    };
    let out = push("me:wrong");
    assert_eq!(out.code, 1, "{}", out.stderr);
    let out = push("me:pw");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let digest = registry.digest("deploy", "v1");
    assert_eq!(
        out.stderr,
        format!(
            "► pushing artifact to {}/deploy:v1\n✔ artifact successfully pushed to {}/deploy@{digest}\n",
            registry.host(),
            registry.host()
        )
    );
    // the same files again: the same layer (reproducible), so the same content digest
    let manifest: Value = serde_json::from_str(&registry.oras(&[
        "manifest",
        "fetch",
        &format!("{}/deploy:v1", registry.host()),
        "--plain-http",
        "-u",
        "me",
        "-p",
        "pw",
    ]))
    .unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.cncf.flux.content.v1.tar+gzip"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.cncf.flux.config.v1+json"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.source"],
        "https://github.com/org/fleet"
    );

    // an OCIRepository consumes it
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
        "stringData": {"username": "me", "password": "pw"}});
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(tc.client().await, &n)
        .patch("creds", &PatchParams::apply("t"), &Patch::Apply(&secret))
        .await
        .unwrap();
    let ar = driftless_api::kinds::get("OCIRepository").unwrap().api_resource();
    let repos: Api<DynamicObject> = Api::namespaced_with(tc.client().await, &n, &ar);
    let repo = json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository", "metadata": {"name": "deploy"},
        "spec": {"url": registry.url("deploy"), "ref": {"tag": "v1"}, "interval": "1h", "secretRef": {"name": "creds"}}});
    repos
        .patch("deploy", &PatchParams::apply("t"), &Patch::Apply(&repo))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored = loop {
        let o = serde_json::to_value(repos.get("deploy").await.unwrap()).unwrap();
        if o.pointer("/status/artifact/revision").is_some() {
            break o;
        }
        assert!(Instant::now() < deadline, "never stored: {o}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stored["status"]["artifact"]["revision"], format!("v1@{digest}"));
    assert_eq!(
        stored["status"]["artifact"]["metadata"]["org.opencontainers.image.revision"],
        "main@sha1:0123456789abcdef0123456789abcdef01234567"
    );

    // pull: the files back, the ignored one left out
    let output = tempfile::tempdir().unwrap();
    let out = driftless(
        &n,
        &[
            "pull",
            "artifact",
            &url,
            "--output",
            output.path().to_str().unwrap(),
            "--creds",
            "me:pw",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("✔ source https://github.com/org/fleet\n✔ revision main@sha1:0123456789abcdef"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(output.path().join("apps/cm.yaml")).unwrap(),
        CM
    );
    assert!(!output.path().join("apps/notes.md").exists(), "--ignore-paths");

    // tag, list
    let out = driftless(
        &n,
        &["tag", "artifact", &url, "--tag", "latest", "--creds", "me:pw"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(registry.digest("deploy", "latest"), digest);
    let out = driftless(
        &n,
        &["list", "artifacts", &registry.url("deploy"), "--creds", "me:pw"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let cells = row(&out.stdout, &format!("{}/deploy:latest", registry.host()));
    assert_eq!(
        cells[1..4],
        [
            digest.as_str(),
            "https://github.com/org/fleet",
            "main@sha1:0123456789abcdef0123456789abcdef01234567"
        ]
    );
    row(&out.stdout, &format!("{}/deploy:v1", registry.host()));
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@x"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// bootstrap git: from an empty repository to a cluster that reconciles itself from it (source-controller
/// and kustomize-controller in process, as their ServiceAccounts, on a cluster instance of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_makes_a_cluster_sync_itself_from_an_empty_repository() {
    let tc = driftless_testkit::cluster::start_instance("bootstrap");
    let kc = tc.kubeconfig().to_path_buf();
    let root = driftless_testkit::git::RepoRoot::default();
    let repo = root.repo("fleet");
    let server = driftless_testkit::git::GitHttp::start(&root, "flux", "s3cret");
    let url = server.url("fleet");
    let args = |url: &str| -> Vec<String> {
        [
            "bootstrap",
            "git",
            "--url",
            url,
            "--branch",
            "main",
            "--path",
            "clusters/dev",
            "-u",
            "flux",
            "-p",
            "s3cret",
            "--wait=false",
            "--timeout",
            "120s",
        ]
        .map(String::from)
        .to_vec()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args(&url))
        .env("KUBECONFIG", &kc)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // the controllers start once their RBAC and CRDs are installed, as their Deployments would
    let deadline = Instant::now() + Duration::from_secs(60);
    while !tc
        .kubectl(&["get", "clusterrolebindings", "-o", "name"])
        .contains("kustomize-controller")
    {
        assert!(Instant::now() < deadline, "the install never came");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let storage = tempfile::tempdir().unwrap();
    let quiet = ["--log-level=error".to_string()];
    let (_, source) = driftless_e2e::source_on(&tc, "flux-system", storage.path(), &quiet).await;
    let kustomize = driftless_e2e::kustomize_on(&tc, "flux-system", &quiet).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for want in [
        "► cloning branch \"main\" from Git repository",
        "✔ branch \"main\" does not exist yet: starting it\n",
        "✔ committed component and sync manifests to \"main\"",
        "► installing components in flux-system namespace\n",
        "✔ source secret up to date\n",
        "✔ GitRepository reconciled successfully: fetched revision main@sha1:",
        "✔ Kustomization reconciled successfully: applied revision main@sha1:",
    ] {
        assert!(stderr.contains(want), "{want} in\n{stderr}");
    }
    let files = git(repo.bare(), &["ls-tree", "-r", "--name-only", "main"]);
    assert_eq!(
        files,
        "clusters/dev/flux-system/gotk-components.yaml\nclusters/dev/flux-system/gotk-sync.yaml\nclusters/dev/flux-system/kustomization.yaml\n"
    );
    // the cluster applies itself: its Kustomization's inventory holds its own sync objects and the controllers
    let ks: Api<DynamicObject> = ks_api(tc.client().await, "flux-system");
    let o = serde_json::to_value(ks.get("flux-system").await.unwrap()).unwrap();
    let inventory = o["status"]["inventory"].to_string();
    for id in [
        "flux-system_flux-system_kustomize.toolkit.fluxcd.io_Kustomization",
        "flux-system_flux-system_source.toolkit.fluxcd.io_GitRepository",
        "flux-system_source-controller_apps_Deployment",
    ] {
        assert!(inventory.contains(id), "{id} in {inventory}");
    }
    // what is pushed next is applied
    let work = tempfile::tempdir().unwrap();
    git(work.path(), &["clone", "-q", repo.bare().to_str().unwrap(), "."]);
    std::fs::create_dir_all(work.path().join("clusters/dev/apps")).unwrap();
    std::fs::write(
        work.path().join("clusters/dev/apps/cm.yaml"),
        CM.replace("name: app", "name: app\n  namespace: default"),
    )
    .unwrap();
    git(work.path(), &["add", "."]);
    git(work.path(), &["commit", "-qm", "an app"]);
    git(work.path(), &["push", "-q", "origin", "main"]);
    let out = on(&kc, &["reconcile", "ks", "flux-system", "--with-source"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        tc.kubectl(&["-n", "default", "get", "configmaps", "-o", "name"])
            .contains("configmap/app")
    );
    // again: nothing to commit, everything already so
    let out = on(&kc, &args(&url).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("✔ component and sync manifests are up to date\n"),
        "{}",
        out.stderr
    );
    // the controllers go first: the API server's graceful stop waits for open watches to end
    source.abort();
    kustomize.abort();
    let _ = (source.await, kustomize.await);
    drop(server);
    tc.stop();
}
