//! SOPS decryption end to end, on the files the real sops wrote (`../shared/fixtures/sops`, Flux's
//! kustomize-controller fixtures): the whole fixture tree (age X25519 and post-quantum, OpenPGP, env and
//! binary generator files, patches, nested values, components), the global age key of
//! `--sops-age-secret`, and a tampered file that applies nothing.

use super::*;

fn fixtures() -> Option<std::path::PathBuf> {
    let dir = driftless_testkit::shared_dir()?.join("fixtures/sops/flux/controller/testdata/sops");
    dir.is_dir().then_some(dir)
}

/// The fixture tree as Flux's own decryption test uses it, without `remote` (it needs the network):
/// `(path in the repository, content)` under `sops/`, and the global key's folder under `global/`.
fn fixture_tree(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let folders = [
        "algorithms",
        "envs",
        "files",
        "patches",
        "inside",
        "component",
        "global",
    ];
    for folder in folders {
        for f in std::fs::read_dir(dir.join(folder)).unwrap() {
            let path = f.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let at = match folder {
                "global" => format!("global/{name}"),
                _ => format!("sops/{folder}/{name}"),
            };
            files.push((at, std::fs::read_to_string(&path).unwrap()));
        }
    }
    let root = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
    files.push(("sops/kustomization.yaml".into(), root.replace("  - remote\n", "")));
    files
}

#[tokio::test]
async fn the_fixture_tree_applies_the_secrets_flux_applies() {
    let Some(dir) = fixtures() else {
        eprintln!("SKIPPED: ../shared/fixtures is absent (a user's clone); CI always has it");
        return;
    };
    let h = start_with("ks-sops", &["--sops-age-secret=sops-global"]).await;
    let n = h.ns.name().to_string();
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
    let tree = fixture_tree(&dir);
    let files: Vec<(&str, &str)> = tree.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let head = h.fleet.repo.commit(&files, "encrypted manifests");
    request_fleet(&h, "sops").await;
    let admin = cluster().client().await;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &n);
    // the Kustomization's own keys: age (X25519 and post-quantum) and OpenPGP; the global key is
    // `--sops-age-secret`'s, read from the runtime namespace
    let keys = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sops-keys"},
        "stringData": {"age.agekey": read("keys/age.txt"), "age-pq.agekey": read("keys/age-pq.txt"),
            "pgp.asc": read("keys/pgp.asc"), "sops.vault-token": "secret"}});
    let global = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sops-global"},
        "stringData": {"identity.agekey": read("keys/age-global.txt")}});
    for (name, secret) in [("sops-keys", keys), ("sops-global", global)] {
        secrets
            .patch(name, &PatchParams::apply("t"), &Patch::Apply(&secret))
            .await
            .unwrap();
    }
    let decryption = |secret: Option<&str>| {
        Some(driftless_api::kustomize::Decryption {
            provider: "sops".into(),
            secret_ref: secret.map(|name| LocalObjectReference { name: name.into() }),
            ..Default::default()
        })
    };
    for (name, path, secret) in [
        ("sops", "./sops", Some("sops-keys")),
        ("global", "./global", None),
    ] {
        let spec = KustomizationSpec {
            target_namespace: Some(n.clone()),
            decryption: decryption(secret),
            ..spec(path, true)
        };
        create(&h, name, spec).await;
    }
    wait_until(&h, "sops", "the decrypted apply", |o| applied(o, &head)).await;
    wait_until(&h, "global", "the apply with the global key", |o| {
        applied(o, &head)
    })
    .await;

    // what Flux's own decryption test expects of this tree
    let text = |s: &Secret, key: &str| {
        let data = s.data.clone().unwrap_or_default();
        String::from_utf8(data.get(key).unwrap_or_else(|| panic!("no {key}")).0.clone()).unwrap()
    };
    let names = [
        "sops-algo-age",
        "sops-algo-age-pq",
        "sops-algo-pgp",
        "sops-algo-vault",
        "sops-component",
        "sops-envs-secret",
        "sops-files-secret",
        "sops-inside-secret",
    ];
    let mut versions = Vec::new();
    for name in names {
        let s = secrets.get(name).await.unwrap();
        assert_eq!(text(&s, "key"), "value", "{name}");
        versions.push(s.metadata.resource_version);
    }
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), &n);
    for name in ["sops-envs-configmap", "sops-files-configmap"] {
        let data = cms.get(name).await.unwrap().data.unwrap_or_default();
        assert_eq!(data.get("key").map(String::as_str), Some("value"), "{name}");
    }
    let patched = secrets.get("sops-patches-secret").await.unwrap();
    assert_eq!(
        (text(&patched, "key"), text(&patched, "merge2")),
        ("merge1".into(), "merge2".into())
    );
    let global = secrets.get("global-age-secret").await.unwrap();
    assert_eq!(text(&global, "key"), "global-value");

    // reconciling the same revision again leaves the decrypted Secrets unwritten
    let kustomizations = Api::<Kustomization>::namespaced(admin.clone(), &n);
    let request = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: "again"}}});
    kustomizations
        .patch("sops", &PatchParams::default(), &Patch::Merge(&request))
        .await
        .unwrap();
    wait_until(&h, "sops", "the requested reconcile", |o| {
        o.status
            .as_ref()
            .is_some_and(|s| s.reconcile_request.last_handled_reconcile_at.as_deref() == Some("again"))
            && applied(o, &head)
    })
    .await;
    for (name, version) in names.iter().zip(versions) {
        let now = secrets.get(name).await.unwrap().metadata.resource_version;
        assert_eq!(now, version, "{name} was written again");
    }

    // a file changed after encryption: the MAC check fails the build and nothing is applied
    let tampered = read("algorithms/age.yaml").replace("name: age", "name: age-tampered");
    let broken = h
        .fleet
        .repo
        .commit(&[("sops/algorithms/age.yaml", &tampered)], "tampered");
    request_fleet(&h, "tampered").await;
    let obj = wait_until(&h, "sops", "the MAC failure", |o| failed_at(o, &broken)).await;
    let (_, reason, message) = ready(&obj).unwrap();
    assert_eq!(reason, "BuildFailed");
    let reconciling = obj
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Reconciling"))
        .expect("a retried failure keeps Reconciling");
    assert_eq!(reconciling.reason, "ProgressingWithRetry");
    assert!(reconciling.message.contains(&broken), "{}", reconciling.message);
    assert!(
        message.contains("age.yaml") && message.contains("MAC mismatch"),
        "{message}"
    );
    assert!(
        secrets.get_opt("sops-algo-age-tampered").await.unwrap().is_none(),
        "a tampered Secret was applied"
    );
}
