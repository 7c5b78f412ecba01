//! Post-rendering, as Flux's helm-controller does it: helm hands the rendered manifests to a
//! post-renderer, which runs each `spec.postRenderers[].kustomize` (its `patches` and `images`, built
//! by our kustomize engine with the manifests as its one resource), then sets `spec.commonMetadata`'s
//! labels and annotations, then the origin labels `helm.toolkit.fluxcd.io/name` and `/namespace` on
//! every object (they win over a common label of the same key).
//!
//! helm runs a post-renderer as a separate executable: this crate's binary answers
//! `helm-controller post-render <spec file>` ([`main`]), reading the manifests on stdin and writing the
//! result on stdout. The spec file is private to the release action and holds no values.

use std::{collections::BTreeMap, io::Read, path::Path};

use driftless_api::{
    helm::{HelmRelease, PostRenderer},
    kustomize::CommonMetadata,
};
use kube::ResourceExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The argument that makes the controller's binary a post-renderer.
pub const SUBCOMMAND: &str = "post-render";

/// What a post-render needs of the HelmRelease.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// `spec.postRenderers`.
    #[serde(default)]
    pub post_renderers: Vec<PostRenderer>,
    /// `spec.commonMetadata`.
    #[serde(default)]
    pub common_metadata: Option<CommonMetadata>,
    /// The HelmRelease's name and namespace: the origin labels.
    pub name: String,
    /// The HelmRelease's namespace.
    pub namespace: String,
}

impl Spec {
    /// The post-render of `obj`.
    pub fn of(obj: &HelmRelease) -> Self {
        Self {
            post_renderers: obj.spec.post_renderers.clone().unwrap_or_default(),
            common_metadata: obj.spec.common_metadata.clone(),
            name: obj.name_any(),
            namespace: obj.namespace().unwrap_or_default(),
        }
    }
}

/// Flux's `status.observedPostRenderersDigest` of `spec.postRenderers`: the sha256 of its JSON
/// (a trailing newline, as Go's encoder writes it); `None` without post-renderers.
pub fn post_renderers_digest(obj: &HelmRelease) -> Option<String> {
    obj.spec.post_renderers.as_ref().map(json_digest)
}

/// Flux's `status.observedCommonMetadataDigest`; `None` without `commonMetadata`.
pub fn common_metadata_digest(obj: &HelmRelease) -> Option<String> {
    obj.spec.common_metadata.as_ref().map(json_digest)
}

fn json_digest<T: Serialize>(value: &T) -> String {
    let mut json = serde_json::to_vec(value).expect("API types serialise");
    json.push(b'\n');
    format!("sha256:{}", hex::encode(Sha256::digest(&json)))
}

/// Post-renders `manifests` (a YAML stream) as `spec` says.
pub fn render(manifests: &str, spec: &Spec) -> Result<String, String> {
    let mut objects = driftless_kustomize::yaml::parse_stream(manifests, "helm-output.yaml")
        .map_err(|e| format!("reading the rendered manifests: {e}"))?;
    for (i, renderer) in spec.post_renderers.iter().enumerate() {
        if let Some(k) = &renderer.kustomize {
            objects = kustomize(&objects, k).map_err(|e| format!("post-renderer {i} (kustomize): {e}"))?;
        }
    }
    if let Some(common) = &spec.common_metadata {
        for o in &mut objects {
            set_all(o, "labels", common.labels.iter().flatten());
            set_all(o, "annotations", common.annotations.iter().flatten());
        }
    }
    let origin = BTreeMap::from([
        ("helm.toolkit.fluxcd.io/name".to_string(), spec.name.clone()),
        (
            "helm.toolkit.fluxcd.io/namespace".to_string(),
            spec.namespace.clone(),
        ),
    ]);
    for o in &mut objects {
        set_all(o, "labels", origin.iter());
    }
    Ok(driftless_kustomize::yaml::write_stream(&objects))
}

/// Sets each of `entries` in the object's `metadata.<field>`, creating it when missing.
fn set_all<'a>(o: &mut Value, field: &str, entries: impl Iterator<Item = (&'a String, &'a String)>) {
    let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let map = meta
        .entry(field)
        .or_insert_with(|| Value::Object(Default::default()));
    if !map.is_object() {
        *map = Value::Object(Default::default());
    }
    let map = map.as_object_mut().expect("made an object");
    for (k, v) in entries {
        map.insert(k.clone(), Value::String(v.clone()));
    }
}

/// One kustomize post-renderer: a kustomization with the manifests as its one resource, its `patches`
/// and `images`, built by our engine.
fn kustomize(
    objects: &[Value],
    k: &driftless_api::helm::KustomizePostRenderer,
) -> Result<Vec<Value>, String> {
    let dir = tempfile::Builder::new()
        .prefix("post-render-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).map_err(|e| e.to_string());
    write(
        "helm-output.yaml",
        &driftless_kustomize::yaml::write_stream(objects),
    )?;
    let mut kustomization = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["helm-output.yaml"],
    });
    if let Some(patches) = k.patches.as_ref().filter(|p| !p.is_empty()) {
        kustomization["patches"] = serde_json::to_value(patches).expect("patches serialise");
    }
    if let Some(images) = k.images.as_ref().filter(|i| !i.is_empty()) {
        kustomization["images"] = serde_json::to_value(images).expect("images serialise");
    }
    write(
        "kustomization.yaml",
        &serde_json::to_string(&kustomization).expect("JSON serialises"),
    )?;
    driftless_kustomize::build(dir.path(), Path::new(".")).map_err(|e| {
        // NB: the engine names the scratch files; the message should name what the user wrote
        e.to_string().replace(&format!("{}/", dir.path().display()), "")
    })
}

/// The post-renderer's entry point (`helm-controller post-render <spec file>`): the manifests from stdin,
/// the result to stdout; an error on stderr (helm shows it) and exit code 1.
pub fn main(spec_file: Option<std::ffi::OsString>) -> i32 {
    let run = || -> Result<String, String> {
        let path = spec_file.ok_or("usage: helm-controller post-render <spec file>")?;
        let text =
            std::fs::read(&path).map_err(|e| format!("reading {}: {e}", Path::new(&path).display()))?;
        let spec: Spec =
            serde_json::from_slice(&text).map_err(|e| format!("reading the post-render spec: {e}"))?;
        let mut manifests = String::new();
        std::io::stdin()
            .read_to_string(&mut manifests)
            .map_err(|e| format!("reading the manifests: {e}"))?;
        render(&manifests, &spec)
    };
    match run() {
        Ok(out) => {
            use std::io::Write;
            match std::io::stdout().write_all(out.as_bytes()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("writing the manifests: {e}");
                    1
                }
            }
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const MANIFESTS: &str = "---
# Source: app/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: app
  labels:
    app: web
spec:
  ports:
  - port: 80
---
# Source: app/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
      - name: web
        image: nginx:1.25
";

    fn spec(value: Value) -> Spec {
        serde_json::from_value(value).unwrap()
    }

    fn objects(out: &str) -> Vec<Value> {
        driftless_kustomize::yaml::parse_stream(out, "out").unwrap()
    }

    #[test]
    fn origin_labels_are_always_set_and_win_over_common_ones() {
        let out = render(
            MANIFESTS,
            &spec(json!({
                "name": "web", "namespace": "apps",
                "commonMetadata": {
                    "labels": {"team": "a", "helm.toolkit.fluxcd.io/name": "other"},
                    "annotations": {"owner": "ops"}
                }
            })),
        )
        .unwrap();
        let objs = objects(&out);
        assert_eq!(objs.len(), 2);
        for o in &objs {
            assert_eq!(o["metadata"]["labels"]["helm.toolkit.fluxcd.io/name"], "web");
            assert_eq!(
                o["metadata"]["labels"]["helm.toolkit.fluxcd.io/namespace"],
                "apps"
            );
            assert_eq!(o["metadata"]["labels"]["team"], "a");
            assert_eq!(o["metadata"]["annotations"]["owner"], "ops");
        }
        assert_eq!(objs[0]["metadata"]["labels"]["app"], "web", "kept");
        // only metadata: selectors and templates are the chart's
        assert!(objs[1]["spec"]["template"].get("metadata").is_none());
    }

    #[test]
    fn kustomize_patches_and_images_run_in_order() {
        let out = render(
            MANIFESTS,
            &spec(json!({
                "name": "web", "namespace": "apps",
                "postRenderers": [
                    {"kustomize": {
                        "patches": [{
                            "target": {"kind": "Deployment"},
                            "patch": "- op: add\n  path: /spec/replicas\n  value: 3\n"
                        }],
                        "images": [{"name": "nginx", "newTag": "1.27"}]
                    }},
                    {"kustomize": {
                        "patches": [{"patch": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 4\n"}]
                    }}
                ]
            })),
        )
        .unwrap();
        let objs = objects(&out);
        let deployment = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(
            deployment["spec"]["replicas"], 4,
            "the second renderer sees the first's output"
        );
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.27"
        );
    }

    #[test]
    fn a_bad_patch_says_which_renderer() {
        let err = render(
            MANIFESTS,
            &spec(json!({
                "name": "web", "namespace": "apps",
                "postRenderers": [{"kustomize": {"patches": [{"patch": "- op: replace\n  path: /nope/x\n  value: 1\n", "target": {"kind": "Service"}}]}}]
            })),
        )
        .unwrap_err();
        assert!(err.starts_with("post-renderer 0 (kustomize): "), "{err}");
        assert!(!err.contains("/tmp/"), "{err}");
    }

    #[test]
    fn digests_follow_flux() {
        let mut obj = HelmRelease::new("web", Default::default());
        assert_eq!(post_renderers_digest(&obj), None);
        obj.spec.post_renderers = Some(vec![]);
        // Go's json.Encoder of an empty slice: "[]\n"
        assert_eq!(
            post_renderers_digest(&obj).unwrap(),
            format!("sha256:{}", hex::encode(Sha256::digest(b"[]\n")))
        );
    }
}
