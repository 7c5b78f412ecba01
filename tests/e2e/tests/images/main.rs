//! The container images `hack/images.sh` builds without a container engine, pushed to a real registry
//! (Debian's docker-registry): each image's config (entrypoint, non-root user, OCI labels), and each
//! binary run from the image's own filesystem — chrooted into the unpacked layer as the image's user, so
//! only what the image holds is used — answering `--version`; helm-controller's `helm` too. And the
//! install manifests, every base and `config/default`, accepted by the test cluster's API server in a
//! server-side dry run.

use std::{path::Path, process::Command};

use driftless_testkit::{cluster::cluster, registry::Registry, tool, workspace_root};
use serde_json::Value;

/// (image, binary) for every image.
const IMAGES: [(&str, &str); 7] = [
    ("source-controller", "source-controller"),
    ("kustomize-controller", "kustomize-controller"),
    ("helm-controller", "helm-controller"),
    ("notification-controller", "notification-controller"),
    ("image-reflector-controller", "image-reflector-controller"),
    ("image-automation-controller", "image-automation-controller"),
    ("driftless", "driftless"),
];

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `exe` (a path inside `root`) with `args`, run from the image's filesystem as its user.
fn in_image(root: &Path, exe: &str, args: &[&str]) -> String {
    run(Command::new("chroot")
        .arg("--userspec=65532:65532")
        .arg(root)
        .arg(exe)
        .args(args))
}

#[test]
fn images_are_built_without_an_engine_pushed_and_run_from_their_own_layer() {
    let registry = Registry::start();
    let pushed = run(Command::new("bash")
        .arg(workspace_root().join("hack/images.sh"))
        .args([
            "--registry",
            &registry.host(),
            "--tag",
            "test",
            "--profile",
            "debug",
        ])
        .current_dir(workspace_root()));
    let crane = tool("crane");
    let version = env!("CARGO_PKG_VERSION");
    for (name, binary) in IMAGES {
        let reference = format!("{}/{name}:test", registry.host());
        assert!(
            pushed.lines().any(|l| l == reference),
            "{reference} pushed: {pushed}"
        );
        let config: Value = serde_json::from_str(&run(Command::new(&crane).args([
            "config",
            "--insecure",
            &reference,
        ])))
        .unwrap();
        let c = &config["config"];
        assert_eq!(
            c["Entrypoint"],
            serde_json::json!([format!("/usr/local/bin/{binary}")]),
            "{name}"
        );
        assert_eq!(c["User"], "65532:65532", "{name} runs as non-root");
        assert_eq!(config["os"], "linux");
        let labels = &c["Labels"];
        assert_eq!(labels["org.opencontainers.image.title"], name);
        assert_eq!(labels["org.opencontainers.image.version"], "test");
        assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
        assert_eq!(
            labels["org.opencontainers.image.source"],
            "https://github.com/driftless-io/driftless"
        );
        let revision = labels["org.opencontainers.image.revision"].as_str().unwrap();
        assert!(revision.len() == 40 || revision == "unknown", "{revision}");
        let manifest: Value = serde_json::from_str(&run(Command::new(&crane).args([
            "manifest",
            "--insecure",
            &reference,
        ])))
        .unwrap();
        assert_eq!(
            manifest["layers"].as_array().unwrap().len(),
            1,
            "{name}: one layer"
        );

        let root = tempfile::tempdir().unwrap();
        let tar = root.path().join("image.tar");
        run(Command::new(&crane)
            .args(["export", "--insecure", &reference])
            .arg(&tar));
        let fs = root.path().join("fs");
        std::fs::create_dir(&fs).unwrap();
        run(Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&fs));
        let said = in_image(&fs, &format!("/usr/local/bin/{binary}"), &["--version"]);
        assert_eq!(said.trim(), format!("{binary} {version}"), "{name}");
        if name == "helm-controller" {
            let helm = in_image(&fs, "/usr/local/bin/helm", &["version", "--short"]);
            assert!(helm.starts_with("v3.18."), "the pinned helm: {helm}");
            // helm runs the controller's own binary as its post-renderer
            std::fs::write(
                fs.join("tmp/spec.json"),
                r#"{"name": "web", "namespace": "apps", "commonMetadata": {"labels": {"team": "a"}}}"#,
            )
            .unwrap();
            let mut child = Command::new("chroot")
                .arg("--userspec=65532:65532")
                .arg(&fs)
                .args(["/usr/local/bin/helm-controller", "post-render", "/tmp/spec.json"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(
                &mut child.stdin.take().unwrap(),
                b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
            )
            .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            let rendered = String::from_utf8_lossy(&out.stdout);
            assert!(
                rendered.contains("helm.toolkit.fluxcd.io/name: web") && rendered.contains("team: a"),
                "{rendered}"
            );
        }
    }
}

#[tokio::test]
async fn every_install_manifest_passes_a_server_side_dry_run() {
    let tc = cluster();
    tc.install_crds().await;
    for dir in [
        "config/default",
        "config/source-controller",
        "config/kustomize-controller",
        "config/helm-controller",
        "config/notification-controller",
        "config/image-reflector-controller",
        "config/image-automation-controller",
        "config/dashboard",
        "config/dashboard-actions",
    ] {
        let path = workspace_root().join(dir);
        let applied = tc.kubectl(&[
            "apply",
            "--server-side",
            "--dry-run=server",
            "-k",
            path.to_str().unwrap(),
        ]);
        assert!(applied.contains("(server dry run)"), "{dir}: {applied}");
    }
}
