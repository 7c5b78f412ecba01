//! The `Setters` update strategy: YAML files (`.yaml`, `.yml`, `Kustomization`) under the update path
//! that hold the marker token are read with a YAML parser, and each scalar value whose line comment is
//! a marker — `# {"$imagepolicy": "<namespace>:<policy>"}`, or with `:tag`, `:name`, `:digest` — gets
//! the policy's latest image (`name:tag`, or `name:tag@digest` when the policy reflects digests), tag,
//! name or digest. Flux rewrites such files through kyaml, which may re-indent and re-quote them; here
//! only the marked scalar's bytes are replaced, in its own quoting style (a plain scalar whose new value
//! would read as a number or boolean is double-quoted, as kyaml does), and every other byte of the file
//! stays as it was.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use yaml_rust2::{
    parser::{Event, Parser},
    scanner::TScalarStyle,
};

/// The token a file must hold to be read at all (Flux's screening reader).
pub const TOKEN: &str = "\"$imagepolicy\"";

/// A file under the update path that cannot be updated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A file with markers that is not YAML.
    #[error("{path} holds an image policy marker but is not valid YAML: {message}")]
    NotYaml {
        /// The file, relative to the repository.
        path: String,
        /// The parser's words.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The update path leaves the repository.
    #[error("spec.update.path '{0}' is outside the repository")]
    OutsidePath(String),
}

/// The object a change was made in (Flux's `ObjectIdentifier`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectId {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
}

/// One value changed (Flux's `Change`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// The value before.
    pub old_value: String,
    /// The value written.
    pub new_value: String,
    /// The setter: `<namespace>:<policy>` with its `:tag`, `:name` or `:digest` suffix.
    pub setter: String,
}

/// A marker naming a policy no setter exists for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unknown {
    /// The file.
    pub path: String,
    /// Its line (1-based).
    pub line: usize,
    /// The setter named.
    pub setter: String,
}

/// What an update did: per file, per object, the changes (Flux's `update.Result`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Result {
    /// Changes by file (relative path) and object.
    pub files: BTreeMap<String, BTreeMap<ObjectId, Vec<Change>>>,
    /// Markers naming setters that do not exist.
    pub unknown: Vec<Unknown>,
}

/// The setters of a policy `namespace:name` whose latest image is `image`.
pub fn policy_setters(
    setters: &mut BTreeMap<String, String>,
    namespace: &str,
    name: &str,
    image: &str,
    tag: &str,
    digest: Option<&str>,
) {
    let base = format!("{namespace}:{name}");
    let digest = digest.filter(|d| !d.is_empty());
    let full = match digest {
        Some(d) => format!("{image}:{tag}@{d}"),
        None => format!("{image}:{tag}"),
    };
    setters.insert(format!("{base}:tag"), tag.to_string());
    setters.insert(format!("{base}:name"), image.to_string());
    if let Some(d) = digest {
        setters.insert(format!("{base}:digest"), d.to_string());
    }
    setters.insert(base, full);
}

/// A marked scalar found in a file.
struct Marked {
    start: usize,
    end: usize,
    style: TScalarStyle,
    old: String,
    setter: String,
    line: usize,
    doc: usize,
}

/// Updates the text of one file; `None` when nothing changed.
pub fn update_text(
    path: &str,
    text: &str,
    setters: &BTreeMap<String, String>,
    result: &mut Result,
) -> std::result::Result<Option<String>, Error> {
    let (marked, objects) = scan(path, text)?;
    let mut out = text.to_string();
    let mut changes: Vec<(ObjectId, Change)> = Vec::new();
    // NB: from the end, so earlier offsets stay valid
    for m in marked.iter().rev() {
        let Some(new) = setters.get(&m.setter) else {
            if !m.setter.ends_with(":digest") || !setters.contains_key(m.setter.trim_end_matches(":digest")) {
                result.unknown.push(Unknown {
                    path: path.to_string(),
                    line: m.line,
                    setter: m.setter.clone(),
                });
            }
            continue;
        };
        if *new == m.old {
            continue;
        }
        out.replace_range(m.start..m.end, &render(new, m.style));
        changes.push((
            objects.get(&m.doc).cloned().unwrap_or_default(),
            Change {
                old_value: m.old.clone(),
                new_value: new.clone(),
                setter: m.setter.clone(),
            },
        ));
    }
    if changes.is_empty() {
        return Ok(None);
    }
    changes.reverse();
    let file = result.files.entry(path.to_string()).or_default();
    for (object, change) in changes {
        file.entry(object).or_default().push(change);
    }
    Ok(Some(out))
}

/// The marked value scalars of `text`, and the object of each document.
fn scan(path: &str, text: &str) -> std::result::Result<(Vec<Marked>, BTreeMap<usize, ObjectId>), Error> {
    enum Frame {
        Map { expect_key: bool, key: Option<String> },
        Seq,
    }
    let bytes: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut marked = Vec::new();
    let mut objects: BTreeMap<usize, ObjectId> = BTreeMap::new();
    let mut doc = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| Error::NotYaml {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        let is_node = matches!(
            event,
            Event::Scalar(..) | Event::MappingStart(..) | Event::SequenceStart(..) | Event::Alias(_)
        );
        let mut is_key = false;
        if is_node && let Some(Frame::Map { expect_key, .. }) = stack.last_mut() {
            is_key = *expect_key;
            *expect_key = !*expect_key;
        }
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart => doc += 1,
            Event::MappingStart(..) => stack.push(Frame::Map {
                expect_key: true,
                key: None,
            }),
            Event::SequenceStart(..) => stack.push(Frame::Seq),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::Scalar(value, style, _, _) => {
                if is_key {
                    if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                        *key = Some(value);
                    }
                    continue;
                }
                // the object's identity: top-level apiVersion/kind, metadata.name/namespace
                let keys: Vec<Option<&str>> = stack
                    .iter()
                    .map(|f| match f {
                        Frame::Map { key, .. } => key.as_deref(),
                        Frame::Seq => None,
                    })
                    .collect();
                let object = objects.entry(doc).or_default();
                match keys.as_slice() {
                    [Some("apiVersion")] => object.api_version = value.clone(),
                    [Some("kind")] => object.kind = value.clone(),
                    [Some("metadata"), Some("name")] => object.name = value.clone(),
                    [Some("metadata"), Some("namespace")] => object.namespace = value.clone(),
                    _ => {}
                }
                let Some(&start) = bytes.get(mark.index()) else {
                    continue;
                };
                let Some(end) = scalar_end(text, start, &value, style) else {
                    continue;
                };
                if let Some(setter) = marker(text, end) {
                    marked.push(Marked {
                        start,
                        end,
                        style,
                        old: value,
                        setter,
                        line: mark.line(),
                        doc,
                    });
                }
            }
            _ => {}
        }
    }
    Ok((marked, objects))
}

/// Where the scalar that starts at `start` ends in the source, for the styles a marker may follow.
fn scalar_end(text: &str, start: usize, value: &str, style: TScalarStyle) -> Option<usize> {
    let src = &text[start..];
    match style {
        TScalarStyle::Plain => {
            (!value.contains('\n') && src.starts_with(value)).then_some(start + value.len())
        }
        TScalarStyle::SingleQuoted => {
            let b = src.as_bytes();
            if b.first() != Some(&b'\'') {
                return None;
            }
            let mut i = 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return Some(start + i + 1);
                }
                i += 1;
            }
            None
        }
        TScalarStyle::DoubleQuoted => {
            let b = src.as_bytes();
            if b.first() != Some(&b'"') {
                return None;
            }
            let mut i = 1;
            while i < b.len() {
                match b[i] {
                    b'\\' => i += 2,
                    b'"' => return Some(start + i + 1),
                    _ => i += 1,
                }
            }
            None
        }
        TScalarStyle::Literal | TScalarStyle::Folded => None,
    }
}

/// The setter of the marker comment that follows `end` on its line, if there is one.
fn marker(text: &str, end: usize) -> Option<String> {
    let rest = &text[end..];
    let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
    if !line.starts_with([' ', '\t']) {
        return None;
    }
    let comment = line.trim_start().strip_prefix('#')?;
    let comment = comment.trim_start_matches('#').trim_end_matches('\r');
    let fields: BTreeMap<String, serde_json::Value> = serde_json::from_str(comment.trim()).ok()?;
    if fields.values().any(|v| !v.is_string()) {
        return None;
    }
    let name = fields.get("$imagepolicy")?.as_str()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// `value` in `style`, as a marked scalar is written back.
fn render(value: &str, style: TScalarStyle) -> String {
    match style {
        TScalarStyle::SingleQuoted => format!("'{}'", value.replace('\'', "''")),
        TScalarStyle::Plain if plain_safe(value) => value.to_string(),
        _ => format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")),
    }
}

/// Whether `value` reads back as the same string when written plain (and not as a number, a boolean,
/// null, or YAML syntax — in YAML 1.1's reading too, as kyaml's `IsYaml1_1NonString` checks).
fn plain_safe(value: &str) -> bool {
    if value.is_empty()
        || value != value.trim()
        || value.contains(['\n', '\r', '\t'])
        || value.contains(": ")
        || value.contains(" #")
        || value.ends_with(':')
        || value == "-"
        || value.starts_with("- ")
        || value.starts_with([
            '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`',
        ])
    {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "y" | "yes"
            | "n"
            | "no"
            | "true"
            | "false"
            | "on"
            | "off"
            | "null"
            | "~"
            | ".inf"
            | "-.inf"
            | "+.inf"
            | ".nan"
    ) {
        return false;
    }
    !looks_numeric(value)
}

/// Numbers as YAML 1.1 or 1.2 may read them: integers (with signs, `0x`, `0o`, `0b`, leading zeros,
/// underscores), floats, exponents, and sexagesimal `1:30`.
fn looks_numeric(value: &str) -> bool {
    let v = value.strip_prefix(['+', '-']).unwrap_or(value);
    if v.is_empty() {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    if let Some(h) = lower.strip_prefix("0x") {
        return !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit() || c == '_');
    }
    if let Some(o) = lower.strip_prefix("0o").or_else(|| lower.strip_prefix("0b")) {
        return !o.is_empty() && o.chars().all(|c| c.is_ascii_digit() || c == '_');
    }
    if v.split(':').count() > 1 {
        return v
            .split(':')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '_' || c == '.'));
    }
    let digits = v.replace('_', "");
    digits.parse::<f64>().is_ok()
        && digits
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
}

/// Updates every file under `root/path` (a relative path, confined to `root`) with `setters`.
pub fn update_tree(
    root: &Path,
    path: &str,
    setters: &BTreeMap<String, String>,
) -> std::result::Result<Result, Error> {
    let base = confine(root, path)?;
    let mut result = Result::default();
    let mut files: BTreeSet<PathBuf> = BTreeSet::new();
    walk(&base, &mut files).map_err(|e| Error::Io {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    let rel_base = if base.is_file() {
        base.parent().unwrap_or(&base).to_path_buf()
    } else {
        base.clone()
    };
    for file in files {
        let rel = file
            .strip_prefix(&rel_base)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        let io = |e: std::io::Error| Error::Io {
            path: rel.clone(),
            message: e.to_string(),
        };
        let Ok(text) = std::fs::read_to_string(&file) else {
            // NB: not UTF-8, so not YAML a marker could be in
            continue;
        };
        if !text.contains(TOKEN) {
            continue;
        }
        if let Some(updated) = update_text(&rel, &text, setters, &mut result)? {
            std::fs::write(&file, updated).map_err(io)?;
        }
    }
    Ok(result)
}

fn confine(root: &Path, path: &str) -> std::result::Result<PathBuf, Error> {
    let mut out = root.to_path_buf();
    for part in Path::new(path).components() {
        match part {
            std::path::Component::Normal(p) => out.push(p),
            std::path::Component::CurDir | std::path::Component::RootDir => {}
            std::path::Component::ParentDir => {
                if out == root {
                    return Err(Error::OutsidePath(path.to_string()));
                }
                out.pop();
            }
            std::path::Component::Prefix(_) => return Err(Error::OutsidePath(path.to_string())),
        }
    }
    Ok(out)
}

/// Regular YAML files under `dir`; symbolic links are not followed (a link may point outside the
/// repository) and `.git` is skipped.
fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.is_file() {
        out.insert(dir.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_symlink() {
            continue;
        }
        if kind.is_dir() {
            if entry.file_name() != ".git" {
                walk(&path, out)?;
            }
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") || name.ends_with(".yml") || name == "Kustomization" {
            out.insert(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
