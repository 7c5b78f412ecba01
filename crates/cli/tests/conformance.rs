//! kustomize's own test cases (`../shared/fixtures/kustomize-conformance`, found through the testkit's
//! shared-dir helper) run through `driftless build kustomization` by the shared tool, which compares each
//! output with what `kubectl kustomize` printed, as kubectl reads YAML. Every case is expected to pass
//! except those listed, each with its reason, in `tests/conformance-known.txt`: a case that passed can
//! never silently stop passing, and a listed case that passes now is reported so the list shrinks.

use std::{collections::BTreeMap, path::Path, process::Command};

#[test]
fn kustomizes_own_cases_pass_except_the_listed_ones() {
    let Some(shared) = driftless_testkit::shared_dir() else {
        return;
    };
    let known_text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-known.txt"))
            .expect("tests/conformance-known.txt");
    // `<case>: <reason>` per line; `#` comments
    let known: BTreeMap<&str, &str> = known_text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(": ").unwrap_or((l, "")))
        .collect();
    let out = Command::new("python3")
        .arg(shared.join("tools/kustomize-conformance.py"))
        .arg(env!("CARGO_BIN_EXE_driftless"))
        .output()
        .expect("python3 runs the shared conformance tool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("kustomize conformance "),
        "the tool failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let failed: BTreeMap<&str, &str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL "))
        .map(|l| l.split_once(": ").unwrap_or((l, "")))
        .collect();
    let summary = stdout.lines().last().unwrap_or_default();
    println!("{summary} ({} listed as known differences)", known.len());
    let fixed: Vec<&&str> = known.keys().filter(|k| !failed.contains_key(*k)).collect();
    if !fixed.is_empty() {
        println!("now passing, remove from tests/conformance-known.txt: {fixed:?}");
    }
    let regressions: Vec<String> = failed
        .iter()
        .filter(|(name, _)| !known.contains_key(*name))
        .map(|(name, why)| format!("{name}: {why}"))
        .collect();
    assert!(
        regressions.is_empty(),
        "cases failing that are not known differences:\n{}",
        regressions.join("\n")
    );
}
