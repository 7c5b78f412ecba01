use std::{collections::BTreeSet, fs, path::PathBuf};

use driftless_api::crds::{crds, kustomization, to_yaml};

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crds")
}

#[test]
fn crds_directory_is_current() {
    let mut stale = Vec::new();
    let generated = crds();
    for crd in &generated {
        let path = crds_dir().join(&crd.file_name);
        match fs::read_to_string(&path) {
            Ok(on_disk) if on_disk == to_yaml(&crd.crd) => {}
            Ok(_) => stale.push(format!("{} differs", crd.file_name)),
            Err(err) => stale.push(format!("{} unreadable: {err}", crd.file_name)),
        }
    }
    match fs::read_to_string(crds_dir().join("kustomization.yaml")) {
        Ok(on_disk) if on_disk == kustomization(&generated) => {}
        _ => stale.push("kustomization.yaml differs".into()),
    }
    let mut expected: BTreeSet<_> = generated.iter().map(|c| c.file_name.clone()).collect();
    expected.insert("kustomization.yaml".into());
    for entry in fs::read_dir(crds_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if !expected.contains(&name) {
            stale.push(format!("{name} is not generated any more"));
        }
    }
    assert!(
        stale.is_empty(),
        "crds/ is stale, run `cargo run -p driftless-crdgen`: {stale:#?}"
    );
}

/// group, version, kind, plural, short names, status subresource, printer columns
type KindRow<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a [&'a str],
    bool,
    &'a [&'a str],
);

/// Flux's group, version, kind, plural, short names, scope, status subresource and printer columns.
#[test]
fn every_kind_has_fluxs_names_and_columns() {
    let ready = ["Ready", "Status"];
    #[rustfmt::skip]
    let table: &[KindRow] = &[
        ("source.toolkit.fluxcd.io", "v1", "GitRepository", "gitrepositories", &["gitrepo"], true, &["URL", "Age", "Ready", "Status"]),
        ("source.toolkit.fluxcd.io", "v1", "OCIRepository", "ocirepositories", &["ocirepo"], true, &["URL", "Ready", "Status", "Age"]),
        ("source.toolkit.fluxcd.io", "v1", "HelmRepository", "helmrepositories", &["helmrepo"], true, &["URL", "Age", "Ready", "Status"]),
        ("source.toolkit.fluxcd.io", "v1", "HelmChart", "helmcharts", &["hc"], true, &["Chart", "Version", "Source Kind", "Source Name", "Age", "Ready", "Status"]),
        ("source.toolkit.fluxcd.io", "v1", "Bucket", "buckets", &[], true, &["Endpoint", "Age", "Ready", "Status"]),
        ("source.toolkit.fluxcd.io", "v1", "ExternalArtifact", "externalartifacts", &["ea"], true, &["Age", "Ready", "Status", "Source"]),
        ("source.extensions.fluxcd.io", "v1beta1", "ArtifactGenerator", "artifactgenerators", &["ag"], true, &["Age", "Ready", "Status"]),
        ("kustomize.toolkit.fluxcd.io", "v1", "Kustomization", "kustomizations", &["ks"], true, &["Age", "Ready", "Status"]),
        ("helm.toolkit.fluxcd.io", "v2", "HelmRelease", "helmreleases", &["hr"], true, &["Age", "Ready", "Status"]),
        ("notification.toolkit.fluxcd.io", "v1", "Receiver", "receivers", &[], true, &["Age", "Ready", "Status"]),
        ("notification.toolkit.fluxcd.io", "v1beta3", "Alert", "alerts", &[], false, &["Age"]),
        ("notification.toolkit.fluxcd.io", "v1beta3", "Provider", "providers", &[], false, &["Age"]),
        ("image.toolkit.fluxcd.io", "v1", "ImageRepository", "imagerepositories", &["imgrepo", "imagerepo"], true, &["Image", "Tags", "Ready", "Status", "Last scan", "Age"]),
        ("image.toolkit.fluxcd.io", "v1", "ImagePolicy", "imagepolicies", &["imgpol", "imagepol"], true, &["Image", "Tag", "Ready", "Status", "Age"]),
        ("image.toolkit.fluxcd.io", "v1", "ImageUpdateAutomation", "imageupdateautomations", &["iua", "imgupd", "imgauto"], true, &["Ready", "Status", "Last run", "Age"]),
    ];
    let generated = crds();
    assert_eq!(generated.len(), table.len());
    for (group, version, kind, plural, short, status, columns) in table {
        let crd = &generated
            .iter()
            .find(|c| c.crd.spec.names.kind == *kind)
            .unwrap_or_else(|| panic!("no CRD for {kind}"))
            .crd;
        assert_eq!(crd.spec.group, *group, "{kind}");
        assert_eq!(crd.spec.names.plural, *plural, "{kind}");
        assert_eq!(crd.spec.scope, "Namespaced", "{kind}");
        assert_eq!(
            crd.spec.names.short_names.clone().unwrap_or_default(),
            *short,
            "{kind}"
        );
        assert_eq!(crd.spec.versions.len(), 1, "{kind}");
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, *version, "{kind}");
        assert!(v.served && v.storage, "{kind}");
        assert_eq!(
            v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(),
            *status,
            "{kind} status"
        );
        let names: Vec<_> = v
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, *columns, "{kind} printer columns");
        for col in v
            .additional_printer_columns
            .iter()
            .flatten()
            .filter(|c| ready.contains(&c.name.as_str()))
        {
            assert!(
                col.json_path
                    .starts_with(".status.conditions[?(@.type==\"Ready\")]"),
                "{kind}"
            );
        }
    }
}

#[test]
fn every_field_has_a_description() {
    fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
        let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else {
            if let Some(items) = schema.get("items") {
                walk(&format!("{path}[]"), items, missing);
            }
            if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                walk(&format!("{path}{{}}"), extra, missing);
            }
            return;
        };
        for (name, prop) in props {
            let here = format!("{path}.{name}");
            // the root's metadata is described by Kubernetes itself (as in Flux's CRDs)
            if name == "metadata" && !path.contains('.') {
                continue;
            }
            if prop
                .get("description")
                .and_then(|d| d.as_str())
                .is_none_or(str::is_empty)
            {
                missing.push(here.clone());
            }
            walk(&here, prop, missing);
        }
    }
    let mut missing = Vec::new();
    for crd in crds() {
        let schema = serde_json::to_value(&crd.crd.spec.versions[0].schema).unwrap();
        walk(&crd.crd.spec.names.kind, &schema["openAPIV3Schema"], &mut missing);
    }
    assert!(
        missing.is_empty(),
        "fields without a description (kubectl explain): {missing:#?}"
    );
}

#[test]
fn sources_default_their_status_to_unobserved() {
    for crd in crds() {
        let schema = serde_json::to_value(&crd.crd.spec.versions[0].schema).unwrap();
        let default = &schema["openAPIV3Schema"]["properties"]["status"]["default"];
        let kind = &crd.crd.spec.names.kind;
        match kind.as_str() {
            // NB: an ArtifactGenerator's status has no observedGeneration (source-watcher's)
            "ExternalArtifact" | "ArtifactGenerator" | "Alert" | "Provider" => {
                assert!(default.is_null(), "{kind}")
            }
            _ => assert_eq!(default, &serde_json::json!({"observedGeneration": -1}), "{kind}"),
        }
    }
}

/// Flux's released CRDs against ours, by `../shared/reference/flux-crds/compare.py`: no difference at all
/// but descriptions — no field missing or extra, the same types, enums, defaults, required fields,
/// patterns, lengths, formats, list and map types, CEL rules, and the same CRD names, columns and
/// categories.
#[test]
fn our_crds_are_fluxs_but_for_descriptions() {
    let Some(shared) = driftless_testkit::shared_dir() else {
        return;
    };
    let reference = shared.join("reference/flux-crds");
    let out = std::env::temp_dir().join(format!("driftless-crd-compare-{}.json", std::process::id()));
    let status = std::process::Command::new("python3")
        .arg(reference.join("compare.py"))
        .arg("--ours")
        .arg(crds_dir())
        .arg("--flux")
        .arg(reference.join("crds"))
        .arg("--json")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs compare.py");
    assert!(status.success(), "compare.py failed: {status}");
    let report: serde_json::Value = serde_json::from_str(&fs::read_to_string(&out).unwrap()).unwrap();
    let _ = fs::remove_file(&out);
    let mut problems = Vec::new();
    for only in ["flux_only_kinds", "ours_only_kinds"] {
        for kind in report[only].as_array().into_iter().flatten() {
            problems.push(format!("{only}: {kind}"));
        }
    }
    for kind in report["kinds"].as_array().expect("kinds") {
        for crd in kind["crd"].as_array().into_iter().flatten() {
            problems.push(format!("{}: {crd}", kind["kind"]));
        }
        for version in kind["versions"].as_array().into_iter().flatten() {
            let at = format!("{} {}", kind["kind"], version["version"]);
            for field in version["missing"].as_array().into_iter().flatten() {
                problems.push(format!("{at}: Flux's field {field} is missing"));
            }
            for (key, list) in version.as_object().into_iter().flatten() {
                if key.starts_with("extra") || key == "implicit_root_missing" {
                    for field in list.as_array().into_iter().flatten() {
                        problems.push(format!("{at}: {field} is ours only"));
                    }
                }
            }
            for diff in version["diffs"].as_array().into_iter().flatten() {
                problems.push(format!("{at}: {diff}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
