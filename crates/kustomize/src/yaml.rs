//! YAML streams in and out: documents parsed into objects (empty documents skipped, `List` kinds
//! expanded), and objects written as a `---`-separated stream.
//!
//! Plain scalars and post-build substitution: Flux substitutes `${var}` in the YAML text kustomize prints,
//! and kustomize keeps each scalar's source style, so `replicas: ${REPLICAS}` becomes the number `3` while
//! `version: "${VERSION}"` stays the string `"1.0"`. Objects here are JSON values, which have no style, so
//! while parsing, a *plain* (unquoted) string scalar containing `${` gets a leading [`PLAIN`] mark; the
//! mark travels with the value through every transform, tells the substitution to re-read the result as a
//! YAML scalar, and is removed before anything leaves the crate ([`strip_marks`]). Values under
//! `metadata`, `apiVersion`, `kind` and `image` are never marked: they are strings whatever they hold.

use yaml_rust2::{
    parser::{Event, Parser},
    scanner::TScalarStyle,
};

use crate::{Error, Object, Result};

/// The mark of a plain scalar that holds `${`: U+FDD0, a Unicode noncharacter, which no text contains.
pub const PLAIN: char = '\u{FDD0}';

/// Decrypts what is encrypted in a build's inputs (SOPS, by kustomize-controller): whole documents, and
/// the files generators read.
pub trait Decrypt: Send + Sync {
    /// `doc` decrypted when it carries sops metadata (and a Secret's data values that are sops documents),
    /// else as it is.
    fn document(
        &self,
        doc: serde_yaml::Value,
        origin: &str,
    ) -> std::result::Result<serde_yaml::Value, String>;
    /// The bytes of a file a generator reads, decrypted when they are a sops file, else as they are.
    fn file(&self, bytes: Vec<u8>, path: &std::path::Path) -> std::result::Result<Vec<u8>, String>;
}

/// Parses a multi-document YAML stream; `origin` names it in errors.
pub fn parse_stream(text: &str, origin: &str) -> Result<Vec<Object>> {
    parse_stream_with(text, origin, None)
}

/// [`parse_stream`], decrypting documents with `decrypt` before anything else reads them (their key
/// order matters to the MAC, so it happens on the ordered YAML value).
pub fn parse_stream_with(text: &str, origin: &str, decrypt: Option<&dyn Decrypt>) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    // the style pass runs only when there is something to mark, and gives up (marks nothing more) at
    // the first disagreement with serde_yaml's reading
    let mut styles = text.contains("${").then(|| Styles::new(text));
    for doc in serde_yaml::Deserializer::from_str(text) {
        let mut value: serde_yaml::Value = serde::Deserialize::deserialize(doc).map_err(|e| Error::Yaml {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        if let Some(s) = &mut styles
            && s.document(&mut value).is_err()
        {
            styles = None;
        }
        // NB: Secrets go through too: their data values may be sops documents themselves
        if let Some(d) = decrypt
            && (value.get("sops").is_some() || value.get("kind").and_then(|k| k.as_str()) == Some("Secret"))
        {
            value = d.document(value, origin).map_err(|message| Error::Yaml {
                path: origin.to_string(),
                message,
            })?;
        }
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

/// Removes every [`PLAIN`] mark from `obj`'s strings.
pub fn strip_marks(obj: &mut Object) {
    match obj {
        Object::String(s) if s.contains(PLAIN) => s.retain(|c| c != PLAIN),
        Object::Array(items) => items.iter_mut().for_each(strip_marks),
        Object::Object(map) => map.values_mut().for_each(strip_marks),
        _ => {}
    }
}

/// Keys whose values are never marked.
const UNMARKED: [&str; 4] = ["metadata", "apiVersion", "kind", "image"];

/// Walks yaml-rust2's events beside serde_yaml's values to find plain scalars.
struct Styles<'a> {
    parser: Parser<std::str::Chars<'a>>,
}

/// The two readings disagree; marking stops.
struct Mismatch;

impl<'a> Styles<'a> {
    fn new(text: &'a str) -> Self {
        let mut parser = Parser::new_from_str(text);
        let _ = parser.next_token(); // StreamStart
        Self { parser }
    }

    fn next(&mut self) -> Result<Event, Mismatch> {
        self.parser.next_token().map(|(e, _)| e).map_err(|_| Mismatch)
    }

    fn document(&mut self, value: &mut serde_yaml::Value) -> Result<(), Mismatch> {
        if self.next()? != Event::DocumentStart {
            return Err(Mismatch);
        }
        self.node(value, true)?;
        match self.next()? {
            Event::DocumentEnd => Ok(()),
            _ => Err(Mismatch),
        }
    }

    fn node(&mut self, value: &mut serde_yaml::Value, mark: bool) -> Result<(), Mismatch> {
        use serde_yaml::Value;
        let value = match value {
            Value::Tagged(t) => &mut t.value,
            v => v,
        };
        match (self.next()?, value) {
            // serde_yaml expanded the alias; its copy stays unmarked
            (Event::Alias(_), _) => Ok(()),
            (Event::Scalar(text, style, _, tag), value) => {
                if let Value::String(s) = value
                    && mark
                    && style == TScalarStyle::Plain
                    && tag.is_none()
                    && *s == text
                    && s.contains("${")
                {
                    s.insert(0, PLAIN);
                }
                match value {
                    Value::Sequence(_) | Value::Mapping(_) => Err(Mismatch),
                    _ => Ok(()),
                }
            }
            (Event::SequenceStart(..), Value::Sequence(items)) => {
                for item in items {
                    self.node(item, mark)?;
                }
                match self.next()? {
                    Event::SequenceEnd => Ok(()),
                    _ => Err(Mismatch),
                }
            }
            (Event::MappingStart(..), Value::Mapping(map)) => {
                for (key, item) in map.iter_mut() {
                    self.skip()?;
                    let unmarked = key.as_str().is_some_and(|k| UNMARKED.contains(&k));
                    self.node(item, mark && !unmarked)?;
                }
                match self.next()? {
                    Event::MappingEnd => Ok(()),
                    _ => Err(Mismatch),
                }
            }
            _ => Err(Mismatch),
        }
    }

    /// Consumes one node (a mapping key).
    fn skip(&mut self) -> Result<(), Mismatch> {
        let mut depth = 0usize;
        loop {
            match self.next()? {
                Event::SequenceStart(..) | Event::MappingStart(..) => depth += 1,
                Event::SequenceEnd | Event::MappingEnd => depth = depth.checked_sub(1).ok_or(Mismatch)?,
                Event::Scalar(..) | Event::Alias(_) => {}
                _ => return Err(Mismatch),
            }
            if depth == 0 {
                return Ok(());
            }
        }
    }
}

/// Writes objects as a YAML stream, `---` between documents, as `kubectl kustomize` does.
pub fn write_stream(objects: &[Object]) -> String {
    objects
        .iter()
        .map(|o| driftless_yaml::to_string(o).expect("JSON values serialise to YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn marked(s: &str) -> String {
        format!("{PLAIN}{s}")
    }

    #[test]
    fn plain_scalars_with_variables_are_marked_quoted_ones_are_not() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${NAME}\n  labels:\n    v: ${V}\n\
                    data:\n  plain: ${A}\n  double: \"${B}\"\n  single: '${C}'\n  block: |\n    ${D}\n  \
                    none: text\n  list:\n  - ${E}\n  - \"${F}\"\n  image: ${IMG}\n  tagged: !!str ${G}\n";
        let objects = parse_stream(text, "t").unwrap();
        assert_eq!(
            objects[0],
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "${NAME}", "labels": {"v": "${V}"}},
                   "data": {"plain": marked("${A}"), "double": "${B}", "single": "${C}", "block": "${D}\n",
                            "none": "text", "list": [marked("${E}"), "${F}"], "image": "${IMG}",
                            "tagged": "${G}"}})
        );
    }

    #[test]
    fn marks_follow_documents_and_survive_aliases() {
        let text = "a: 1\n---\n---\nb: &x ${X}\nc: *x\nd:\n- ${Y}\n";
        let objects = parse_stream(text, "t").unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(
            objects[1],
            json!({"b": marked("${X}"), "c": "${X}", "d": [marked("${Y}")]})
        );
    }

    #[test]
    fn strip_marks_leaves_the_text() {
        let mut obj = json!({"a": [marked("${X}")], "b": format!("p-{}", marked("${Y}")), "c": 1});
        strip_marks(&mut obj);
        assert_eq!(obj, json!({"a": ["${X}"], "b": "p-${Y}", "c": 1}));
    }
}
