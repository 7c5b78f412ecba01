//! `driftless build kustomization` prints what `kubectl kustomize` prints, and fails like it.

use std::{path::Path, process::Command};

fn cases() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kustomize/tests/cases")
}

#[test]
fn build_kustomization_prints_what_kubectl_kustomize_prints() {
    let dir = cases().join("all-core");
    let ours = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["build", "kustomization"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(ours.status.success(), "{}", String::from_utf8_lossy(&ours.stderr));
    let theirs = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap();
    let parse =
        |b: &[u8]| driftless_kustomize::yaml::parse_stream(&String::from_utf8_lossy(b), "out").unwrap();
    assert_eq!(parse(&ours.stdout), parse(&theirs.stdout));
}

#[test]
fn a_failing_build_exits_non_zero_with_the_error_on_stderr() {
    let dir = cases().join("error-missing-file");
    let out = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["build", "kustomization"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nope.yaml"), "{stderr}");
}
