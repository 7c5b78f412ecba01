//! SOPS decryption end to end, on the files the real sops wrote (`../shared/fixtures/sops`, Flux's
//! kustomize-controller fixtures): age and OpenPGP Secrets, encrypted env and binary files read by
//! generators, the global age key of `--sops-age-secret`, and a tampered file that applies nothing.

use super::*;

fn fixtures() -> Option<std::path::PathBuf> {
    let dir = driftless_testkit::shared_dir()?.join("fixtures/sops/flux/controller/testdata/sops");
    dir.is_dir().then_some(dir)
}

#[tokio::test]
async fn encrypted_secrets_and_generator_files_are_decrypted_while_building() {
    let Some(dir) = fixtures() else {
        eprintln!("SKIPPED: ../shared/fixtures is absent (a user's clone); CI always has it");
        return;
    };
    let h = start_with("ks-sops", &["--sops-age-secret=sops-global"]).await;
    let n = h.ns.name().to_string();
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
    let head = h.repo.commit(
        &[
            (
                "sops/kustomization.yaml",
                "resources:\n- age.yaml\n- pgp.yaml\n- vault.yaml\n- global.yaml\n- envs\n- files\n",
            ),
            ("sops/age.yaml", &read("algorithms/age.yaml")),
            ("sops/pgp.yaml", &read("algorithms/pgp.yaml")),
            ("sops/vault.yaml", &read("algorithms/vault.yaml")),
            ("sops/global.yaml", &read("global/secret.yaml")),
            ("sops/envs/kustomization.yaml", &read("envs/kustomization.yaml")),
            ("sops/envs/env.env", &read("envs/env.env")),
            ("sops/files/kustomization.yaml", &read("files/kustomization.yaml")),
            ("sops/files/file.txt", &read("files/file.txt")),
        ],
        "encrypted manifests",
    );
    request_fleet(&h, "sops").await;
    let admin = cluster().client().await;
    let keys = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sops-keys"},
        "stringData": {"identity.agekey": read("keys/age.txt"), "identity.asc": read("keys/pgp.asc")}});
    Api::<Secret>::namespaced(admin.clone(), &n)
        .patch("sops-keys", &PatchParams::apply("t"), &Patch::Apply(&keys))
        .await
        .unwrap();
    let global = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sops-global"},
        "stringData": {"global.agekey": read("keys/age-global.txt")}});
    Api::<Secret>::namespaced(admin.clone(), &n)
        .patch("sops-global", &PatchParams::apply("t"), &Patch::Apply(&global))
        .await
        .unwrap();
    create(
        &h,
        "sops",
        KustomizationSpec {
            target_namespace: Some(n.clone()),
            decryption: Some(driftless_api::kustomize::Decryption {
                provider: "sops".into(),
                secret_ref: Some(LocalObjectReference {
                    name: "sops-keys".into(),
                }),
                ..Default::default()
            }),
            ..spec("./sops", true)
        },
    )
    .await;
    wait_until(&h, "sops", "the decrypted apply", |o| applied(o, &head)).await;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &n);
    let mut found = 0;
    for s in secrets.list(&Default::default()).await.unwrap().items {
        let name = s.metadata.name.clone().unwrap_or_default();
        if !["age", "pgp", "global-age-secret", "envs-secret", "files-secret"].contains(&name.as_str()) {
            continue;
        }
        found += 1;
        for (k, v) in s.data.unwrap_or_default() {
            let text = String::from_utf8_lossy(&v.0).to_string();
            assert!(
                !text.contains("ENC[") && !text.is_empty(),
                "{name}/{k} is not decrypted: {text}"
            );
        }
    }
    assert_eq!(found, 5, "the age, pgp, global, env-file and binary-file Secrets");
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), &n);
    let env_cm = cms.get("envs-configmap").await.unwrap().data.unwrap();
    assert!(!env_cm["key"].contains("ENC["));

    // a file changed after encryption: the MAC check fails the build and nothing is applied
    let tampered = read("algorithms/age.yaml").replace("name: age", "name: age-tampered");
    let broken = h.repo.commit(&[("sops/age.yaml", &tampered)], "tampered");
    request_fleet(&h, "tampered").await;
    let obj = wait_until(&h, "sops", "the MAC failure", |o| failed_at(o, &broken)).await;
    let (_, reason, message) = ready(&obj).unwrap();
    assert_eq!(reason, "BuildFailed");
    assert!(
        message.contains("age.yaml") && message.contains("MAC mismatch"),
        "{message}"
    );
    assert!(
        secrets.get_opt("age-tampered").await.unwrap().is_none(),
        "a tampered Secret was applied"
    );
}
