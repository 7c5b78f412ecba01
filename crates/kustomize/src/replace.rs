//! `replacements`: a value read from one field of one object (`source`) written into fields of selected
//! objects (`targets`), with kustomize's field paths (`spec.containers.[name=app].image`, indexes, `*`)
//! and options (`delimiter`/`index` on either side, `create`).

use serde::Deserialize;
use serde_json::Value;

use crate::{patch::Target, transform::Res};

/// One replacement.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Replacement {
    /// A file holding the replacement (kustomize's `path:` form).
    #[serde(default)]
    pub path: Option<String>,
    /// Where the value comes from.
    #[serde(default)]
    pub source: Option<Source>,
    /// Where it goes.
    #[serde(default)]
    pub targets: Vec<TargetSpec>,
}

/// The source object and field.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    /// API group.
    #[serde(default)]
    pub group: Option<String>,
    /// API version.
    #[serde(default)]
    pub version: Option<String>,
    /// Kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The field (default `metadata.name`).
    #[serde(default)]
    pub field_path: Option<String>,
    /// `delimiter` and `index`: take one part of the value.
    #[serde(default)]
    pub options: Option<Options>,
}

/// A target: selected objects (less rejected ones) and their fields.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSpec {
    /// Objects written.
    #[serde(default)]
    pub select: Option<Target>,
    /// Objects left alone.
    #[serde(default)]
    pub reject: Vec<Target>,
    /// Fields written.
    #[serde(default)]
    pub field_paths: Vec<String>,
    /// `delimiter`/`index` (write one part), `create` (missing fields are created).
    #[serde(default)]
    pub options: Option<Options>,
}

/// Replacement options.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Options {
    /// Splits string values.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// The part of a split value.
    #[serde(default)]
    pub index: Option<i64>,
    /// Creates missing fields.
    #[serde(default)]
    pub create: Option<bool>,
}

/// A field path segment.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
    Match(String, String),
    All,
}

/// kustomize's field path: dot-separated, `[k=v]` picks a list item, `[key.with.dots]` a key, a number an
/// index, `*` every item.
fn segments(path: &str) -> Result<Vec<Seg>, String> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        let (seg, tail) = if let Some(inner) = rest.strip_prefix('[') {
            let end = inner
                .find(']')
                .ok_or_else(|| format!("unclosed '[' in field path '{path}'"))?;
            let seg = &inner[..end];
            let tail = inner[end + 1..].strip_prefix('.').unwrap_or(&inner[end + 1..]);
            (
                match seg.split_once('=') {
                    Some((k, v)) => Seg::Match(k.to_string(), v.to_string()),
                    None => Seg::Key(seg.to_string()),
                },
                tail,
            )
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            let seg = &rest[..end];
            let tail = rest.get(end + 1..).unwrap_or("");
            (
                match seg {
                    "*" => Seg::All,
                    s if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                        Seg::Index(s.parse().unwrap_or(0))
                    }
                    s => Seg::Key(s.to_string()),
                },
                tail,
            )
        };
        out.push(seg);
        rest = tail;
    }
    Ok(out)
}

fn get<'a>(v: &'a Value, segs: &[Seg]) -> Option<&'a Value> {
    let Some((first, rest)) = segs.split_first() else {
        return Some(v);
    };
    let next = match first {
        Seg::Key(k) => v.get(k)?,
        Seg::Index(i) => v.get(*i)?,
        Seg::Match(k, want) => v
            .as_array()?
            .iter()
            .find(|item| item.get(k).is_some_and(|x| scalar(x) == *want))?,
        Seg::All => return v.as_array()?.iter().find_map(|item| get(item, rest)),
    };
    get(next, rest)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Writes `value` at `segs` (every match of `*`); returns how many fields were written.
fn set(v: &mut Value, segs: &[Seg], value: &Value, opts: &Options) -> usize {
    let Some((first, rest)) = segs.split_first() else {
        *v = put(v, value, opts);
        return 1;
    };
    let create = opts.create.unwrap_or(false);
    match first {
        Seg::Key(k) => {
            if v.get(k).is_none() {
                if !create || !(v.is_object() || v.is_null()) {
                    return 0;
                }
                if v.is_null() {
                    *v = Value::Object(Default::default());
                }
                v[k.as_str()] = Value::Null;
            }
            set(&mut v[k.as_str()], rest, value, opts)
        }
        Seg::Index(i) => match v.get_mut(*i) {
            Some(item) => set(item, rest, value, opts),
            None => 0,
        },
        Seg::Match(k, want) => {
            let Some(items) = v.as_array_mut() else { return 0 };
            match items
                .iter_mut()
                .find(|item| item.get(k).is_some_and(|x| scalar(x) == *want))
            {
                Some(item) => set(item, rest, value, opts),
                None if create => {
                    let mut item = serde_json::json!({k.as_str(): want});
                    let n = set(&mut item, rest, value, opts);
                    items.push(item);
                    n
                }
                None => 0,
            }
        }
        Seg::All => v
            .as_array_mut()
            .map(|items| items.iter_mut().map(|item| set(item, rest, value, opts)).sum())
            .unwrap_or(0),
    }
}

/// The new value of a field: the whole value, or one part of the field's string replaced.
fn put(current: &Value, value: &Value, opts: &Options) -> Value {
    match (&opts.delimiter, current.as_str()) {
        (Some(d), Some(cur)) if !d.is_empty() => {
            let mut parts: Vec<String> = cur.split(d.as_str()).map(str::to_string).collect();
            let i = opts.index.unwrap_or(0);
            let v = scalar(value);
            if i < 0 {
                parts.insert(0, v);
            } else if (i as usize) < parts.len() {
                parts[i as usize] = v;
            } else {
                parts.push(v);
            }
            Value::String(parts.join(d))
        }
        _ => value.clone(),
    }
}

fn source_matches(s: &Source, r: &Res) -> bool {
    let o = &r.obj;
    let api_version = o.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    let name = o
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    eq(&s.group, group)
        && eq(&s.version, version)
        && eq(&s.kind, o.get("kind").and_then(Value::as_str).unwrap_or_default())
        && (eq(&s.name, name) || s.name.as_deref().is_none_or(|n| r.known_as(n)))
        && eq(
            &s.namespace,
            o.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        )
}

/// Applies `replacements` to `resources`, in order.
pub fn apply(replacements: &[Replacement], resources: &mut [Res]) -> Result<(), String> {
    for rep in replacements {
        let source = rep.source.as_ref().ok_or("a replacement needs a source")?;
        let found: Vec<&Res> = resources.iter().filter(|r| source_matches(source, r)).collect();
        let res = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(format!(
                    "nothing selected by replacement source {}",
                    describe(source)
                ));
            }
            _ => {
                return Err(format!(
                    "more than one object selected by replacement source {}",
                    describe(source)
                ));
            }
        };
        let path = source.field_path.as_deref().unwrap_or("metadata.name");
        let mut value = get(&res.obj, &segments(path)?).cloned().ok_or_else(|| {
            format!(
                "fieldPath `{path}` is missing for replacement source {}",
                describe(source)
            )
        })?;
        if let Some(Options {
            delimiter: Some(d),
            index,
            ..
        }) = &source.options
            && let Some(s) = value.as_str()
        {
            let parts: Vec<&str> = s.split(d.as_str()).collect();
            let i = index.unwrap_or(0);
            value = Value::String(
                usize::try_from(i)
                    .ok()
                    .and_then(|i| parts.get(i))
                    .ok_or_else(|| format!("options.index {i} is out of bounds for value {s}"))?
                    .to_string(),
            );
        }
        for t in &rep.targets {
            let opts = t.options.clone().unwrap_or_default();
            for r in resources.iter_mut() {
                // NB: kustomize selects by any of an object's ids, and rejects it when any of them is rejected
                let selected = t.select.as_ref().is_some_and(|s| s.selects(&r.obj, r.names()));
                if !selected || t.reject.iter().any(|x| x.selects(&r.obj, r.names())) {
                    continue;
                }
                for fp in &t.field_paths {
                    let segs = segments(fp)?;
                    if set(&mut r.obj, &segs, &value, &opts) == 0 && opts.create != Some(true) {
                        return Err(format!("unable to find field \"{fp}\" in replacement target"));
                    }
                }
            }
        }
    }
    Ok(())
}

fn describe(s: &Source) -> String {
    format!(
        "{}{}",
        s.kind.clone().map(|k| format!("{k}/")).unwrap_or_default(),
        s.name.clone().unwrap_or_default()
    )
}

/// The value at `path` (the first match of a `*`), for tests.
#[cfg(test)]
fn first(o: &crate::Object, path: &str) -> Option<Value> {
    get(o, &segments(path).ok()?).cloned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn field_paths_read_lists_by_key_index_and_bracketed_keys() {
        let o = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]},
                       "metadata": {"annotations": {"a.b/c": "v"}}});
        assert_eq!(first(&o, "spec.containers.[name=b].image"), Some(json!("y")));
        assert_eq!(first(&o, "spec.containers.0.image"), Some(json!("x")));
        assert_eq!(first(&o, "metadata.annotations.[a.b/c]"), Some(json!("v")));
        assert_eq!(first(&o, "spec.containers.*.image"), Some(json!("x")));
    }

    #[test]
    fn delimiters_replace_one_part() {
        let opts = Options {
            delimiter: Some(":".into()),
            index: Some(1),
            create: None,
        };
        assert_eq!(put(&json!("nginx:1.0"), &json!("2.0"), &opts), json!("nginx:2.0"));
    }
}
