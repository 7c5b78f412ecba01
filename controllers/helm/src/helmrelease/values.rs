//! The values of a release: `valuesFrom` (ConfigMaps and Secrets, whole or at a `targetPath`) in order,
//! then `values`, deep-merged as Flux merges them. Never logged: they hold secrets.

use driftless_api::helm::HelmRelease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, ResourceExt};
use serde_json::{Map, Value};

use super::Error;
use crate::Context;

/// Deep merge: mappings key by key, anything else replaces (Flux's MergeMaps).
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing @ Value::Object(_)) if v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// A value as Helm's `--set` types it: booleans, integers and null, else a string.
fn typed(value: &str) -> Value {
    match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        v => match v.parse::<i64>() {
            Ok(n) if !(v.starts_with('0') && v.len() > 1) => Value::from(n),
            _ => Value::String(v.to_string()),
        },
    }
}

/// Sets `path` (`a.b.c`, with `\.` for a literal dot) in `values`.
fn set_path(values: &mut Value, path: &str, value: Value) {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                current.push('.');
                chars.next();
            }
            '.' => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    let mut node = values;
    for (i, part) in parts.iter().enumerate() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let map = node.as_object_mut().expect("made an object");
        if i == parts.len() - 1 {
            map.insert(part.clone(), value);
            return;
        }
        node = map
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The values: `valuesFrom` in order, then `values` on top, as Flux composes them.
pub(super) async fn compose_values(obj: &HelmRelease, ctx: &Context) -> Result<Value, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let mut result = Value::Object(Map::new());
    for r in obj.spec.values_from.clone().unwrap_or_default() {
        let key = r
            .values_key
            .clone()
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "values.yaml".into());
        let optional = r.optional.unwrap_or(false);
        let found: Option<Option<Vec<u8>>> = match r.kind.as_str() {
            "ConfigMap" => Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&r.name)
                .await?
                .map(|cm| {
                    cm.data
                        .and_then(|d| d.get(&key).map(|v| v.clone().into_bytes()))
                        .or_else(|| cm.binary_data.and_then(|d| d.get(&key).map(|v| v.0.clone())))
                }),
            "Secret" => Api::<Secret>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&r.name)
                .await?
                .map(|s| s.data.and_then(|d| d.get(&key).map(|v| v.0.clone()))),
            other => {
                return Err(Error::InvalidSpec(format!(
                    "unsupported ValuesReference kind '{other}'"
                )));
            }
        };
        let data = match found {
            Some(Some(data)) => data,
            _ if optional => continue,
            None => {
                return Err(Error::Values(format!(
                    "could not find {} '{ns}/{}'",
                    r.kind, r.name
                )));
            }
            Some(None) => {
                return Err(Error::Values(format!(
                    "missing key '{key}' in {} '{ns}/{}'",
                    r.kind, r.name
                )));
            }
        };
        match r.target_path.as_deref().filter(|p| !p.is_empty()) {
            Some(path) => {
                let text = String::from_utf8_lossy(&data).trim().to_string();
                set_path(&mut result, path, typed(&text));
            }
            None => {
                // NB: the message names the reference, never the values
                let parsed: Value = serde_yaml::from_slice(&data).map_err(|_| {
                    Error::Values(format!(
                        "unable to read values from key '{key}' in {} '{ns}/{}': not YAML",
                        r.kind, r.name
                    ))
                })?;
                match parsed {
                    Value::Object(_) => merge(&mut result, parsed),
                    Value::Null => {}
                    _ => {
                        return Err(Error::Values(format!(
                            "unable to read values from key '{key}' in {} '{ns}/{}': not a mapping",
                            r.kind, r.name
                        )));
                    }
                }
            }
        }
    }
    if let Some(values) = obj.spec.values.clone() {
        merge(&mut result, values);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_merge_deeply_and_target_paths_are_typed() {
        let mut v = json!({"image": {"repository": "nginx", "tag": "1"}, "replicas": 1});
        merge(&mut v, json!({"image": {"tag": "2"}, "extra": [1]}));
        assert_eq!(
            v,
            json!({"image": {"repository": "nginx", "tag": "2"}, "replicas": 1, "extra": [1]})
        );
        set_path(&mut v, "ingress.enabled", typed("true"));
        set_path(&mut v, "a\\.b.c", typed("007"));
        set_path(&mut v, "replicas", typed("3"));
        assert_eq!(v["ingress"]["enabled"], json!(true));
        assert_eq!(v["a.b"]["c"], json!("007"));
        assert_eq!(v["replicas"], json!(3));
    }
}
