//! `driftless why` against the test cluster: statuses written as the controllers would write them, the
//! chain printed down to the cause, and the exit code saying whether the object is Ready.

use std::process::Command;

use driftless_testkit::cluster::cluster;
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams},
    core::{ApiResource, GroupVersionKind},
};
use serde_json::{Value, json};

fn api(ns: &str, client: &kube::Client, group: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, "v1", kind);
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

async fn put(api: &Api<DynamicObject>, object: Value, ready: (&str, &str, &str)) {
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(&name, &PatchParams::apply("t"), &Patch::Apply(&object))
        .await
        .unwrap();
    let (status, reason, message) = ready;
    let status = json!({"status": {"observedGeneration": 1, "conditions": [{"type": "Ready",
        "status": status, "reason": reason, "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

fn why(ns: &str, object: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["why", object, "-n", ns])
        .env("KUBECONFIG", cluster().kubeconfig())
        .output()
        .unwrap();
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn why_follows_dependencies_and_sources_down_to_the_cause() {
    cluster().install_crds().await;
    let ns = cluster().namespace("why").await;
    let n = ns.name();
    let client = cluster().client().await;
    let ks = api(
        n,
        &client,
        "kustomize.toolkit.fluxcd.io",
        "Kustomization",
        "kustomizations",
    );
    let git = api(
        n,
        &client,
        "source.toolkit.fluxcd.io",
        "GitRepository",
        "gitrepositories",
    );
    let kustomization = |name: &str, source: &str, depends: &[&str]| {
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name}, "spec": {"interval": "10m", "prune": true, "path": "./",
            "sourceRef": {"kind": "GitRepository", "name": source},
            "dependsOn": depends.iter().map(|d| json!({"name": d})).collect::<Vec<_>>()}})
    };
    let repository = |name: &str| {
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": name}, "spec": {"interval": "1m", "url": "https://git.example/x"}})
    };
    put(
        &git,
        repository("fleet"),
        ("True", "Succeeded", "stored artifact for revision 'main@sha1:1'"),
    )
    .await;
    put(
        &git,
        repository("infra-repo"),
        ("False", "GitOperationFailed", "failed to checkout: auth failed"),
    )
    .await;
    put(
        &ks,
        kustomization("infra", "infra-repo", &[]),
        ("False", "ArtifactFailed", "Source is not ready"),
    )
    .await;
    put(
        &ks,
        kustomization("apps", "fleet", &["infra"]),
        ("False", "DependencyNotReady", "dependency 'infra' is not ready"),
    )
    .await;

    let (code, out) = why(n, "ks/apps");
    assert_eq!(code, 1, "{out}");
    let expected = [
        format!(
            "Kustomization {n}/apps: not Ready — Ready=False (DependencyNotReady): dependency 'infra' is not ready"
        ),
        format!("  └─ source GitRepository {n}/fleet: Ready — stored artifact for revision 'main@sha1:1'"),
        format!(
            "  └─ depends on Kustomization {n}/infra: not Ready — Ready=False (ArtifactFailed): Source is not ready"
        ),
        format!(
            "    └─ source GitRepository {n}/infra-repo: not Ready — Ready=False (GitOperationFailed): failed to checkout: auth failed"
        ),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);

    // Ready: one line, exit 0; a missing object: exit 1
    let (code, out) = why(n, "gitrepository/fleet");
    assert_eq!((code, out.lines().count()), (0, 1), "{out}");
    let (code, out) = why(n, "ks/nothing");
    assert_eq!(
        (code, out.trim()),
        (1, format!("Kustomization {n}/nothing: not found").as_str())
    );
    put(
        &ks,
        kustomization("orphan", "gone", &[]),
        ("False", "ArtifactFailed", "Source 'GitRepository/gone' not found"),
    )
    .await;
    let (_, out) = why(n, "ks/orphan");
    assert!(
        out.ends_with(&format!("└─ source GitRepository {n}/gone: not found\n")),
        "{out}"
    );

    // a kind it does not know: exit 2 with a message
    let out = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["why", "deployment/web"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Flux kind"));
}
