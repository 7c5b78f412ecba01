//! Conformance: every case under `tests/cases/` is built by our engine and by `kubectl kustomize` (the
//! oracle), and the results must be the same objects in the same order; cases with an `EXPECT_ERROR` file
//! must fail in both. Prints the oracle's version and the pass rate.

use std::{path::Path, process::Command};

mod fuzz;

use driftless_kustomize::{build, yaml};

fn oracle(dir: &Path) -> Result<Vec<serde_json::Value>, String> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|e| format!("kubectl: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).to_string());
    }
    yaml::parse_stream(&String::from_utf8_lossy(&out.stdout), "kubectl kustomize").map_err(|e| e.to_string())
}

#[test]
fn the_corpus_builds_exactly_as_kubectl_kustomize_builds_it() {
    let version = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .expect("kubectl is installed");
    println!(
        "oracle: {}",
        String::from_utf8_lossy(&version.stdout)
            .lines()
            .filter(|l| l.contains("Kustomize"))
            .collect::<String>()
    );
    let cases_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut cases: Vec<_> = std::fs::read_dir(&cases_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let expect_error = case.join("EXPECT_ERROR").exists();
        let ours = build(case, Path::new("."));
        let theirs = oracle(case);
        match (expect_error, ours, theirs) {
            (false, Ok(ours), Ok(theirs)) if ours == theirs => {}
            (false, Ok(ours), Ok(theirs)) => failures.push(format!(
                "{name}: differs\n--- ours\n{}\n--- kubectl kustomize\n{}",
                yaml::write_stream(&ours),
                yaml::write_stream(&theirs)
            )),
            (true, Err(_), Err(_)) => {}
            (expect, ours, theirs) => failures.push(format!(
                "{name}: expect_error={expect}, ours: {:?}, kubectl kustomize: {:?}",
                ours.map(|o| o.len()).map_err(|e| e.to_string()),
                theirs.map(|o| o.len())
            )),
        }
    }
    let passed = cases.len() - failures.len();
    println!(
        "conformance: {passed}/{} cases pass ({:.0}%)",
        cases.len(),
        100.0 * passed as f64 / cases.len() as f64
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn paths_outside_the_root_and_remote_resources_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(
        dir.path().join("outside.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    )
    .unwrap();
    std::fs::write(
        root.join("app/kustomization.yaml"),
        "resources:\n- ../../outside.yaml\n",
    )
    .unwrap();
    let err = build(&root, Path::new("app")).unwrap_err().to_string();
    assert!(err.contains("outside the build root"), "{err}");
    std::os::unix::fs::symlink(dir.path().join("outside.yaml"), root.join("app/link.yaml")).unwrap();
    std::fs::write(root.join("app/kustomization.yaml"), "resources:\n- link.yaml\n").unwrap();
    assert!(
        build(&root, Path::new("app"))
            .unwrap_err()
            .to_string()
            .contains("outside the build root")
    );
    std::fs::write(
        root.join("app/kustomization.yaml"),
        "resources:\n- https://github.com/org/repo//deploy?ref=v1\n",
    )
    .unwrap();
    let err = build(&root, Path::new("app")).unwrap_err().to_string();
    assert!(err.contains("--no-remote-bases"), "{err}");
    // a ../base that stays inside the root is fine
    std::fs::create_dir_all(root.join("base")).unwrap();
    std::fs::write(
        root.join("base/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    )
    .unwrap();
    std::fs::write(root.join("base/kustomization.yaml"), "resources:\n- cm.yaml\n").unwrap();
    std::fs::write(root.join("app/kustomization.yaml"), "resources:\n- ../base\n").unwrap();
    assert_eq!(build(&root, Path::new("app")).unwrap().len(), 1);
}

#[test]
fn a_directory_without_kustomization_gets_one_generated_and_cycles_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plain/sub")).unwrap();
    std::fs::write(
        dir.path().join("plain/a.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("plain/sub/b.yml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n",
    )
    .unwrap();
    let objects = build(dir.path(), Path::new("plain")).unwrap();
    let kinds: Vec<_> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Namespace", "ConfigMap"]);

    std::fs::create_dir_all(dir.path().join("x")).unwrap();
    std::fs::create_dir_all(dir.path().join("y")).unwrap();
    std::fs::write(dir.path().join("x/kustomization.yaml"), "resources:\n- ../y\n").unwrap();
    std::fs::write(dir.path().join("y/kustomization.yaml"), "resources:\n- ../x\n").unwrap();
    let err = build(dir.path(), Path::new("x")).unwrap_err().to_string();
    assert!(err.contains("cycle"), "{err}");
}

#[test]
fn plain_scalars_keep_their_type_through_the_build_and_substitution() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("base")).unwrap();
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(
        root.join("base/deploy.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: ${REPLICAS}\n  \
         template:\n    spec:\n      containers:\n      - name: app\n        image: app:${VERSION}\n        \
         env:\n        - name: VERSION\n          value: \"${VERSION}\"\n",
    )
    .unwrap();
    std::fs::write(
        root.join("base/kustomization.yaml"),
        "resources:\n- deploy.yaml\n",
    )
    .unwrap();
    std::fs::write(
        root.join("app/kustomization.yaml"),
        "resources:\n- ../base\nnamePrefix: ${PREFIX}-\npatches:\n- patch: |\n    apiVersion: apps/v1\n    \
         kind: Deployment\n    metadata:\n      name: web\n    spec:\n      paused: ${PAUSED:=false}\n",
    )
    .unwrap();

    let plain = build(root, Path::new("app")).unwrap();
    let text = serde_json::to_string(&plain).unwrap();
    assert!(!text.contains(yaml::PLAIN), "marks leaked out of build: {text}");
    assert_eq!(plain[0]["spec"]["replicas"], "${REPLICAS}");

    let mut objects = driftless_kustomize::build_marked(root, Path::new("app")).unwrap();
    let vars = [("REPLICAS", "3"), ("VERSION", "1.10"), ("PREFIX", "prod")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    driftless_kustomize::substitute::substitute_all(&mut objects, &vars, false).unwrap();
    let d = &objects[0];
    assert_eq!(d["metadata"]["name"], "prod-web");
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["spec"]["paused"], false);
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "app:1.10");
    assert_eq!(
        container["env"][0]["value"], "1.10",
        "a quoted scalar stays a string"
    );
}

#[test]
fn a_standalone_build_reads_bases_anywhere_and_files_only_in_their_own_directory() {
    use driftless_kustomize::{LoadRestrictor, build_standalone};
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    };
    write(
        "base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    );
    write(
        "base/kustomization.yaml",
        "namePrefix: b-\nresources:\n- cm.yaml\n",
    );
    write(
        "overlay/kustomization.yaml",
        "namePrefix: o-\nresources:\n- ../base\n",
    );
    let objects = build_standalone(&dir.path().join("overlay"), LoadRestrictor::RootOnly).unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["metadata"]["name"], "o-b-x");
    // a file of another directory: kustomize's LoadRestrictionsRootOnly refuses it, None allows it
    write("files/kustomization.yaml", "resources:\n- ../base/cm.yaml\n");
    let err = build_standalone(&dir.path().join("files"), LoadRestrictor::RootOnly)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("security; file") && err.contains("is not in or below"),
        "{err}"
    );
    let objects = build_standalone(&dir.path().join("files"), LoadRestrictor::None).unwrap();
    assert_eq!(objects[0]["metadata"]["name"], "x");
    // the controllers' build keeps everything inside its root
    let err = build(&dir.path().join("overlay"), Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside the build root"), "{err}");
}
