//! YAML streams in and out: documents parsed into objects (empty documents skipped, `List` kinds
//! expanded), and objects written as a `---`-separated stream.

use crate::{Error, Object, Result};

/// Parses a multi-document YAML stream; `origin` names it in errors.
pub fn parse_stream(text: &str, origin: &str) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).map_err(|e| Error::Yaml {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        if value.is_null() {
            continue;
        }
        let object: Object = serde_json::to_value(&value).map_err(|e| Error::Yaml {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        if !object.is_object() {
            return Err(Error::Yaml {
                path: origin.to_string(),
                message: "a document is not a mapping".into(),
            });
        }
        let is_list = object
            .get("kind")
            .and_then(|k| k.as_str())
            .is_some_and(|k| k.ends_with("List"))
            && object.get("items").is_some_and(|i| i.is_array());
        if is_list {
            out.extend(object["items"].as_array().cloned().unwrap_or_default());
        } else {
            out.push(object);
        }
    }
    Ok(out)
}

/// Writes objects as a YAML stream, `---` between documents, as `kubectl kustomize` does.
pub fn write_stream(objects: &[Object]) -> String {
    objects
        .iter()
        .map(|o| serde_yaml::to_string(o).expect("JSON values serialise to YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}
