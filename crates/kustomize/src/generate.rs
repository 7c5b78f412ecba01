//! `configMapGenerator` and `secretGenerator` (literals, files, env files; `behavior` create, merge,
//! replace; `type`; `options` and `generatorOptions`), and kustomize's content-hash name suffix.

use std::{collections::BTreeMap, path::Path};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{Object, transform::Res};

/// One `configMapGenerator` or `secretGenerator` entry.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Generator {
    /// The name (before prefix, suffix and hash).
    pub name: String,
    /// The namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `create` (default), `merge` or `replace`.
    #[serde(default)]
    pub behavior: Option<String>,
    /// `key=value` pairs.
    #[serde(default)]
    pub literals: Vec<String>,
    /// `path` or `key=path`.
    #[serde(default)]
    pub files: Vec<String>,
    /// Env files (`KEY=VALUE` lines).
    #[serde(default)]
    pub envs: Vec<String>,
    /// The deprecated single env file.
    #[serde(default)]
    pub env: Option<String>,
    /// Secret type (default `Opaque`).
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// Per-generator options.
    #[serde(default)]
    pub options: Option<Options>,
}

/// `generatorOptions` and a generator's `options`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Options {
    /// Labels on the generated object.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations on the generated object.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// No content-hash suffix.
    #[serde(default)]
    pub disable_name_suffix_hash: Option<bool>,
    /// `immutable: true` on the object.
    #[serde(default)]
    pub immutable: Option<bool>,
}

/// The data of a generator: key → bytes, in kustomize's order of sources (files, literals, envs).
fn data(
    g: &Generator,
    dir: &Path,
    read: &dyn Fn(&Path) -> Result<Vec<u8>, String>,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    let mut put = |k: String, v: Vec<u8>, what: &str| -> Result<(), String> {
        if out.insert(k.clone(), v).is_some() {
            return Err(format!(
                "configmap/secret '{}': key '{k}' {what} is already present",
                g.name
            ));
        }
        Ok(())
    };
    for env in g.envs.iter().chain(&g.env) {
        let text =
            String::from_utf8(read(&dir.join(env))?).map_err(|_| format!("env file '{env}' is not UTF-8"))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_start_matches('\u{feff}').trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("env file '{env}' line {}: '{line}' is not KEY=VALUE", i + 1))?;
            put(k.trim().to_string(), v.as_bytes().to_vec(), "from an env file")?;
        }
    }
    for lit in &g.literals {
        let (k, v) = lit
            .split_once('=')
            .ok_or_else(|| format!("literal '{lit}' is not key=value"))?;
        // kustomize's removeQuotes: one pair of matching double or single quotes around the value
        let quoted = v.len() >= 2 && (v.starts_with('"') || v.starts_with('\'')) && v.ends_with(&v[..1]);
        let v = if quoted { &v[1..v.len() - 1] } else { v };
        put(k.to_string(), v.as_bytes().to_vec(), "from a literal")?;
    }
    for file in &g.files {
        let (k, path) = match file.split_once('=') {
            Some((k, p)) => (k.to_string(), p),
            None => (
                Path::new(file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                file.as_str(),
            ),
        };
        put(k, read(&dir.join(path))?, "from a file")?;
    }
    Ok(out)
}

/// Builds the object of `g` (a ConfigMap or, when `secret`, a Secret) with `defaults` (`generatorOptions`).
pub fn generate(
    g: &Generator,
    secret: bool,
    defaults: Option<&Options>,
    dir: &Path,
    read: &dyn Fn(&Path) -> Result<Vec<u8>, String>,
) -> Result<(Object, bool), String> {
    let data = data(g, dir, read)?;
    let mut labels = defaults.map(|d| d.labels.clone()).unwrap_or_default();
    let mut annotations = defaults.map(|d| d.annotations.clone()).unwrap_or_default();
    let own = g.options.clone().unwrap_or_default();
    labels.extend(own.labels.clone());
    annotations.extend(own.annotations.clone());
    let disable = own
        .disable_name_suffix_hash
        .or(defaults.and_then(|d| d.disable_name_suffix_hash))
        .unwrap_or(false);
    let immutable = own
        .immutable
        .or(defaults.and_then(|d| d.immutable))
        .unwrap_or(false);
    let mut meta = Map::new();
    meta.insert("name".into(), json!(g.name));
    if let Some(ns) = &g.namespace {
        meta.insert("namespace".into(), json!(ns));
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), json!(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), json!(annotations));
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!("v1"));
    obj.insert("kind".into(), json!(if secret { "Secret" } else { "ConfigMap" }));
    obj.insert("metadata".into(), Value::Object(meta));
    let b64 = |v: &[u8]| wrapped_base64(v);
    if secret {
        obj.insert(
            "type".into(),
            json!(g.type_.clone().unwrap_or_else(|| "Opaque".into())),
        );
        if !data.is_empty() {
            let d: Map<String, Value> = data.iter().map(|(k, v)| (k.clone(), json!(b64(v)))).collect();
            obj.insert("data".into(), Value::Object(d));
        }
    } else {
        let (text, binary): (Vec<_>, Vec<_>) = data.iter().partition(|(_, v)| std::str::from_utf8(v).is_ok());
        if !text.is_empty() {
            let d: Map<String, Value> = text
                .iter()
                .map(|(k, v)| ((*k).clone(), json!(String::from_utf8_lossy(v))))
                .collect();
            obj.insert("data".into(), Value::Object(d));
        }
        if !binary.is_empty() {
            let d: Map<String, Value> = binary
                .iter()
                .map(|(k, v)| ((*k).clone(), json!(b64(v))))
                .collect();
            obj.insert("binaryData".into(), Value::Object(d));
        }
    }
    if immutable {
        obj.insert("immutable".into(), json!(true));
    }
    Ok((Value::Object(obj), !disable))
}

/// Merges a `merge`-behaviour generated object into the existing one: data, labels and annotations.
pub fn merge_into(existing: &mut Object, generated: &Object) {
    for key in ["data", "binaryData"] {
        if let Some(new) = generated.get(key).and_then(Value::as_object) {
            let map = existing
                .as_object_mut()
                .expect("objects are maps")
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(map) = map.as_object_mut() {
                map.extend(new.clone());
            }
        }
    }
    for key in ["labels", "annotations"] {
        if let Some(new) = generated
            .pointer(&format!("/metadata/{key}"))
            .and_then(Value::as_object)
        {
            let meta = existing["metadata"].as_object_mut().expect("metadata is a map");
            let map = meta.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if let Some(map) = map.as_object_mut() {
                map.extend(new.clone());
            }
        }
    }
}

/// Go's `json.Marshal` of a string map in key order, HTML characters escaped as Go escapes them.
fn go_json(v: &Value) -> String {
    serde_json::to_string(v)
        .expect("JSON serialises")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Base64 as kustomize writes generated values: in lines of 70 characters, each ending in a newline, once
/// the encoding is 70 characters or more.
fn wrapped_base64(v: &[u8]) -> String {
    const LINE: usize = 70;
    let encoded = base64::engine::general_purpose::STANDARD.encode(v);
    if encoded.len() < LINE {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    for chunk in encoded.as_bytes().chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

/// kustomize's content hash of a ConfigMap or Secret: sha256 of its kind, an empty name, (type,) data (and
/// binaryData) as Go's JSON, the first 10 hex digits with 0 1 3 a e spelled g h k m t.
pub fn content_hash(o: &Object) -> String {
    let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
    let mut m = Map::new();
    m.insert("kind".into(), json!(kind));
    // NB: kustomize (v5) hashes with an empty name, so prefixes and suffixes do not change the hash
    m.insert("name".into(), json!(""));
    // kyaml reads a missing field as "": a generator without entries hashes `"data":""`
    m.insert("data".into(), o.get("data").cloned().unwrap_or(json!("")));
    if kind == "Secret" {
        m.insert("type".into(), o.get("type").cloned().unwrap_or(json!("")));
    } else if let Some(b) = o
        .get("binaryData")
        .filter(|b| b.as_object().is_some_and(|m| !m.is_empty()))
    {
        m.insert("binaryData".into(), b.clone());
    }
    let digest = hex::encode(Sha256::digest(go_json(&Value::Object(m)).as_bytes()));
    digest[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

/// Appends the content hash to every resource generated with one, and returns the renames.
pub fn apply_hashes(resources: &mut [Res]) -> Vec<crate::refs::Rename> {
    let mut renames = Vec::new();
    for r in resources.iter_mut().filter(|r| r.hashed) {
        let hash = content_hash(&r.obj);
        let old = r.obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let new = format!("{old}-{hash}");
        r.obj["metadata"]["name"] = json!(new);
        renames.push(crate::refs::Rename::of(&r.obj, old, new));
    }
    renames
}
