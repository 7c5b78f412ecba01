use std::{fs, path::PathBuf};

use driftless_api::{
    crds::crds,
    extensions::ArtifactGenerator,
    helm::HelmRelease,
    image::{ImagePolicy, ImageRepository, ImageUpdateAutomation},
    kustomize::Kustomization,
    notification::{Alert, Provider, Receiver},
    source::{Bucket, ExternalArtifact, GitRepository, HelmChart, HelmRepository, OCIRepository},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Every document of every file in `tests/corpus/`, with its origin for messages.
pub fn corpus() -> Vec<(String, Value)> {
    let mut files: Vec<_> = fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            let name = format!("{}#{i}", file.file_name().unwrap().to_string_lossy());
            docs.push((name, value));
        }
    }
    docs
}

fn round_trip<K: DeserializeOwned + Serialize>(origin: &str, manifest: &Value) {
    let typed: K = serde_json::from_value(manifest.clone())
        .unwrap_or_else(|err| panic!("{origin} does not parse: {err}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        &back, manifest,
        "{origin} does not serialise back to the same JSON"
    );
}

#[test]
fn corpus_covers_every_kind() {
    let kinds: std::collections::BTreeSet<_> = corpus()
        .iter()
        .map(|(_, v)| v["kind"].as_str().unwrap().to_string())
        .collect();
    let expected: std::collections::BTreeSet<_> =
        crds().iter().map(|c| c.crd.spec.names.kind.clone()).collect();
    assert_eq!(kinds, expected);
}

#[test]
fn corpus_round_trips_through_our_types() {
    for (origin, manifest) in corpus() {
        match manifest["kind"].as_str().unwrap() {
            "GitRepository" => round_trip::<GitRepository>(&origin, &manifest),
            "OCIRepository" => round_trip::<OCIRepository>(&origin, &manifest),
            "HelmRepository" => round_trip::<HelmRepository>(&origin, &manifest),
            "HelmChart" => round_trip::<HelmChart>(&origin, &manifest),
            "Bucket" => round_trip::<Bucket>(&origin, &manifest),
            "ExternalArtifact" => round_trip::<ExternalArtifact>(&origin, &manifest),
            "ArtifactGenerator" => round_trip::<ArtifactGenerator>(&origin, &manifest),
            "Kustomization" => round_trip::<Kustomization>(&origin, &manifest),
            "HelmRelease" => round_trip::<HelmRelease>(&origin, &manifest),
            "Receiver" => round_trip::<Receiver>(&origin, &manifest),
            "Alert" => round_trip::<Alert>(&origin, &manifest),
            "Provider" => round_trip::<Provider>(&origin, &manifest),
            "ImageRepository" => round_trip::<ImageRepository>(&origin, &manifest),
            "ImagePolicy" => round_trip::<ImagePolicy>(&origin, &manifest),
            "ImageUpdateAutomation" => round_trip::<ImageUpdateAutomation>(&origin, &manifest),
            other => panic!("{origin}: unexpected kind {other}"),
        }
    }
}

/// The JSON schema validator of a kind's generated CRD.
fn validator(kind: &str) -> jsonschema::Validator {
    let crd = crds()
        .into_iter()
        .find(|c| c.crd.spec.names.kind == kind)
        .unwrap()
        .crd;
    let schema =
        serde_json::to_value(&crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn schema_errors(manifest: &Value) -> Vec<String> {
    let validator = validator(manifest["kind"].as_str().unwrap());
    validator
        .iter_errors(manifest)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn corpus_validates_against_our_crd_schemas() {
    for (origin, manifest) in corpus() {
        let errors = schema_errors(&manifest);
        assert!(errors.is_empty(), "{origin}: {errors:#?}");
    }
}

#[test]
fn schemas_refuse_what_flux_refuses() {
    let (_, git) = corpus()
        .into_iter()
        .find(|(o, _)| o == "gitrepository.yaml#0")
        .unwrap();
    let cases: &[(&str, Value, &str)] = &[
        ("interval", serde_json::json!("5 minutes"), "/spec/interval"),
        ("url", serde_json::json!("ftp://example.com/repo"), "/spec/url"),
        ("timeout", serde_json::json!("1h"), "/spec/timeout"),
        ("provider", serde_json::json!("gitlab"), "/spec/provider"),
    ];
    for (field, bad, at) in cases {
        let mut manifest = git.clone();
        manifest["spec"][field] = bad.clone();
        let errors = schema_errors(&manifest);
        assert!(
            errors.iter().any(|e| e.ends_with(at)),
            "{field}={bad} accepted: {errors:?}"
        );
    }
    let mut no_url = git.clone();
    no_url["spec"].as_object_mut().unwrap().remove("url");
    assert!(
        !schema_errors(&no_url).is_empty(),
        "a GitRepository without url is accepted"
    );
}
