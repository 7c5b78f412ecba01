//! Helm repository indexes, streamed: an `index.yaml` is walked event by event (yaml-rust2's pull
//! parser over a byte stream), never loaded whole, so a 100 MB index takes the memory of one chart
//! version at a time. [`walk`] checks it is an index (a mapping with `apiVersion` and `entries`) and
//! hands each chart version to a visitor; [`versions_of`] keeps those of one chart.

use std::io::{BufRead, Read};

use serde::Deserialize;
use serde_json::{Map, Value};
use yaml_rust2::{
    parser::{Event, Parser},
    scanner::TScalarStyle,
};

/// Why an index could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not YAML, or not an index.
    #[error("{0}")]
    Invalid(String),
    /// Reading the file failed.
    #[error("reading the index: {0}")]
    Io(#[from] std::io::Error),
}

/// One version of a chart, as an index lists it (Helm's `ChartVersion`: the chart's metadata, its
/// download URLs and digest).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChartVersion {
    /// The chart's name.
    #[serde(default)]
    pub name: String,
    /// Its version (SemVer 2).
    #[serde(default)]
    pub version: String,
    /// Where to download it, absolute or relative to the repository URL.
    #[serde(default)]
    pub urls: Vec<String>,
    /// The sha256 (hex) of the chart archive.
    #[serde(default)]
    pub digest: Option<String>,
    /// The chart API version.
    #[serde(default)]
    pub api_version: Option<String>,
    /// The version of the app it deploys.
    #[serde(default)]
    pub app_version: Option<String>,
    /// Whether the chart is deprecated.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub deprecated: bool,
}

fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::String(s) => s == "true",
        _ => false,
    })
}

/// What [`walk`] found of the index itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// `apiVersion`.
    pub api_version: String,
    /// How many charts (`entries` keys).
    pub charts: usize,
    /// How many chart versions.
    pub versions: usize,
}

/// UTF-8 characters of a byte stream, decoded a buffer at a time; a decoding or read error ends the
/// stream and is kept for the caller.
struct Chars<R> {
    reader: R,
    pending: std::collections::VecDeque<char>,
    carry: Vec<u8>,
    error: SharedError,
}

/// The read or decoding error that ended a [`Chars`] stream, seen by the walker after the parser stops.
type SharedError = std::rc::Rc<std::cell::RefCell<Option<std::io::Error>>>;

impl<R> Chars<R> {
    fn fail(&self, e: std::io::Error) {
        *self.error.borrow_mut() = Some(e);
    }
}

impl<R: BufRead> Iterator for Chars<R> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let not_utf8 =
            || std::io::Error::new(std::io::ErrorKind::InvalidData, "the index is not valid UTF-8");
        while self.pending.is_empty() {
            if self.error.borrow().is_some() {
                return None;
            }
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) => {
                    self.fail(e);
                    return None;
                }
            };
            if buf.is_empty() {
                if !self.carry.is_empty() {
                    self.fail(not_utf8());
                }
                return None;
            }
            let n = buf.len();
            self.carry.extend_from_slice(buf);
            self.reader.consume(n);
            let valid = match std::str::from_utf8(&self.carry) {
                Ok(s) => s.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(_) => {
                    self.fail(not_utf8());
                    return None;
                }
            };
            let text = std::str::from_utf8(&self.carry[..valid]).expect("checked above");
            self.pending.extend(text.chars());
            self.carry.drain(..valid);
        }
        self.pending.pop_front()
    }
}

struct Events<R: BufRead> {
    parser: Parser<Chars<R>>,
    error: SharedError,
}

impl<R: BufRead> Events<R> {
    fn next(&mut self) -> Result<Event, Error> {
        match self.parser.next_token() {
            Ok((event, _)) => Ok(event),
            Err(e) => Err(match self.error.borrow_mut().take() {
                Some(io) => Error::Io(io),
                None => Error::Invalid(format!("the index is not YAML: {e}")),
            }),
        }
    }

    /// The value that starts with `first`, as JSON (scalars as strings; plain `true`/`false` as booleans,
    /// plain `~`/`null`/empty as null).
    fn value(&mut self, first: Event, depth: usize) -> Result<Value, Error> {
        if depth > 64 {
            return Err(Error::Invalid("the index nests deeper than 64 levels".into()));
        }
        Ok(match first {
            Event::Scalar(s, style, _, _) => scalar(s, style),
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        Event::SequenceEnd => break,
                        e => items.push(self.value(e, depth + 1)?),
                    }
                }
                Value::Array(items)
            }
            Event::MappingStart(..) => {
                let mut map = Map::new();
                loop {
                    let key = match self.next()? {
                        Event::MappingEnd => break,
                        e => key_of(self.value(e, depth + 1)?),
                    };
                    let first = self.next()?;
                    let v = self.value(first, depth + 1)?;
                    map.insert(key, v);
                }
                Value::Object(map)
            }
            _ => Value::Null,
        })
    }

    /// Skips the value that starts with `first`.
    fn skip(&mut self, first: Event) -> Result<(), Error> {
        let mut depth = match first {
            Event::SequenceStart(..) | Event::MappingStart(..) => 1usize,
            _ => return Ok(()),
        };
        while depth > 0 {
            match self.next()? {
                Event::SequenceStart(..) | Event::MappingStart(..) => depth += 1,
                Event::SequenceEnd | Event::MappingEnd => depth -= 1,
                Event::StreamEnd => return Err(Error::Invalid("the index ends early".into())),
                _ => {}
            }
        }
        Ok(())
    }
}

fn scalar(s: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(s);
    }
    match s.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => Value::String(s),
    }
}

fn key_of(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Walks the index `reader` holds, calling `visit` with each chart's name and each of its versions;
/// returns what it found of the index. An index without `apiVersion`, or that is not YAML, is refused
/// with a message saying so; versions that are not mappings are skipped. `wanted` limits the versions
/// materialised to one chart's (the others are skipped unread).
pub fn walk(
    reader: impl Read,
    wanted: Option<&str>,
    mut visit: impl FnMut(&str, Value),
) -> Result<Summary, Error> {
    let error = SharedError::default();
    let mut events = Events {
        parser: Parser::new(Chars {
            reader: std::io::BufReader::with_capacity(64 << 10, reader),
            pending: Default::default(),
            carry: Vec::new(),
            error: error.clone(),
        }),
        error: error.clone(),
    };
    let result = walk_events(&mut events, wanted, &mut visit);
    // a read or UTF-8 error looks to the parser like an early end: report the cause
    if let Some(e) = error.borrow_mut().take() {
        return Err(Error::Io(e));
    }
    result
}

fn walk_events<R: BufRead>(
    events: &mut Events<R>,
    wanted: Option<&str>,
    visit: &mut impl FnMut(&str, Value),
) -> Result<Summary, Error> {
    let not_index = || {
        Error::Invalid(
            "the index is not a Helm repository index: a mapping with 'apiVersion' and 'entries' is expected"
                .into(),
        )
    };
    // StreamStart, DocumentStart, then the top-level mapping
    let mut first = events.next()?;
    while matches!(first, Event::StreamStart | Event::DocumentStart) {
        first = events.next()?;
    }
    if !matches!(first, Event::MappingStart(..)) {
        return Err(not_index());
    }
    let mut summary = Summary::default();
    let mut saw_entries = false;
    loop {
        let key = match events.next()? {
            Event::MappingEnd => break,
            Event::Scalar(k, ..) => k,
            other => {
                events.skip(other)?;
                let v = events.next()?;
                events.skip(v)?;
                continue;
            }
        };
        let value = events.next()?;
        match key.as_str() {
            "apiVersion" => {
                if let Value::String(v) = events.value(value, 0)? {
                    summary.api_version = v;
                }
            }
            "entries" => {
                saw_entries = true;
                match value {
                    Event::MappingStart(..) => loop {
                        let name = match events.next()? {
                            Event::MappingEnd => break,
                            e => key_of(events.value(e, 0)?),
                        };
                        summary.charts += 1;
                        let versions = events.next()?;
                        let materialise = wanted.is_none_or(|w| w == name);
                        match versions {
                            Event::SequenceStart(..) => loop {
                                match events.next()? {
                                    Event::SequenceEnd => break,
                                    e if materialise => {
                                        summary.versions += 1;
                                        let v = events.value(e, 0)?;
                                        if v.is_object() {
                                            visit(&name, v);
                                        }
                                    }
                                    e => {
                                        summary.versions += 1;
                                        events.skip(e)?;
                                    }
                                }
                            },
                            other => events.skip(other)?,
                        }
                    },
                    Event::Scalar(..) => {}
                    other => events.skip(other)?,
                }
            }
            _ => events.skip(value)?,
        }
    }
    if summary.api_version.is_empty() {
        return Err(Error::Invalid("no API version specified".into()));
    }
    // NB: Helm accepts an index without entries (an empty repository); so do we
    let _ = saw_entries;
    Ok(summary)
}

/// The versions of `chart` in the index, as the index lists them (Helm sorts them newest first).
pub fn versions_of(reader: impl Read, chart: &str) -> Result<Vec<ChartVersion>, Error> {
    let mut versions = Vec::new();
    walk(reader, Some(chart), |_, v| {
        if let Ok(cv) = serde_json::from_value::<ChartVersion>(v) {
            versions.push(cv);
        }
    })?;
    Ok(versions)
}

/// The version of `chart` that `range` picks among `versions` (an index's), as Flux does: an exact
/// version match first, then the highest SemVer in the range (`*` or empty: the highest stable one);
/// the message says which chart and range found nothing.
pub fn select(versions: &[ChartVersion], chart: &str, range: &str) -> Result<ChartVersion, String> {
    if versions.is_empty() {
        return Err("no chart name found".into());
    }
    if !range.is_empty()
        && let Some(exact) = versions.iter().find(|v| v.version == range)
    {
        return Ok(exact.clone());
    }
    let wanted = if range.is_empty() { "*" } else { range };
    let constraint = driftless_version::Constraint::parse(wanted).map_err(|e| e.to_string())?;
    let mut best: Option<(semver::Version, &ChartVersion)> = None;
    for cv in versions {
        let Some(v) = driftless_version::lenient_version(&cv.version) else {
            continue;
        };
        // NB: a later entry of an equal version does not replace the first (Helm lists newest first)
        if constraint.matches(&v) && best.as_ref().is_none_or(|(b, _)| v.cmp_precedence(b).is_gt()) {
            best = Some((v, cv));
        }
    }
    best.map(|(_, cv)| cv.clone())
        .ok_or_else(|| format!("no '{chart}' chart with version matching '{range}' found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"apiVersion: v1
entries:
  podinfo:
  - apiVersion: v2
    appVersion: "6.5.0"
    created: "2024-01-01T00:00:00Z"
    digest: abc
    name: podinfo
    urls:
    - https://example.com/podinfo-6.5.0.tgz
    version: 6.5.0
  - name: podinfo
    version: 6.4.0
    urls: [podinfo-6.4.0.tgz]
    deprecated: true
  redis:
  - name: redis
    version: 1.0.0
    urls: ["redis-1.0.0.tgz"]
generated: "2024-01-01T00:00:00Z"
"#;

    #[test]
    fn an_index_is_walked_and_one_charts_versions_kept() {
        let mut seen = Vec::new();
        let summary = walk(INDEX.as_bytes(), None, |name, v| {
            seen.push((name.to_string(), v["version"].clone()))
        })
        .unwrap();
        assert_eq!(
            summary,
            Summary {
                api_version: "v1".into(),
                charts: 2,
                versions: 3
            }
        );
        assert_eq!(seen.len(), 3);
        let versions = versions_of(INDEX.as_bytes(), "podinfo").unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0].version, "6.5.0");
        assert_eq!(versions[0].app_version.as_deref(), Some("6.5.0"));
        assert_eq!(versions[0].digest.as_deref(), Some("abc"));
        assert_eq!(versions[1].urls, vec!["podinfo-6.4.0.tgz"]);
        assert!(versions[1].deprecated);
        assert!(versions_of(INDEX.as_bytes(), "nope").unwrap().is_empty());
    }

    #[test]
    fn versions_are_selected_as_flux_does() {
        let cv = |v: &str| ChartVersion {
            name: "app".into(),
            version: v.into(),
            ..Default::default()
        };
        let versions = [cv("2.0.0-rc.1"), cv("1.10.0"), cv("1.9.0"), cv("v1.2")];
        let pick = |r: &str| select(&versions, "app", r).map(|c| c.version);
        assert_eq!(pick("").unwrap(), "1.10.0", "the highest stable");
        assert_eq!(pick("*").unwrap(), "1.10.0");
        assert_eq!(pick("<1.10.0").unwrap(), "1.9.0");
        assert_eq!(pick("2.0.0-rc.1").unwrap(), "2.0.0-rc.1", "an exact match first");
        assert_eq!(pick("~1.2").unwrap(), "v1.2");
        assert_eq!(
            pick(">=3").unwrap_err(),
            "no 'app' chart with version matching '>=3' found"
        );
        assert!(pick("not a range").unwrap_err().contains("improper constraint"));
        assert_eq!(select(&[], "app", "*").unwrap_err(), "no chart name found");
    }

    #[test]
    fn what_is_not_an_index_is_refused() {
        let err = |text: &str| walk(text.as_bytes(), None, |_, _| {}).unwrap_err().to_string();
        assert_eq!(err("entries: {}\n"), "no API version specified");
        assert!(
            err("- a\n- b\n").contains("not a Helm repository index"),
            "{}",
            err("- a\n")
        );
        assert!(
            err("apiVersion: v1\nentries: {a: [\n").contains("not YAML"),
            "{}",
            err("apiVersion: v1\nentries: {a: [\n")
        );
        assert!(err("<html>not found</html>").contains("not a Helm repository index"));
        let bad_utf8 = walk(
            &b"apiVersion: v1\nentries: {}\nx: \xff\xfe\n"[..],
            None,
            |_, _| {},
        );
        assert!(bad_utf8.is_err(), "{bad_utf8:?}");
    }

    #[test]
    fn multibyte_characters_split_across_buffers_decode() {
        // a reader that hands out one byte at a time
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let text = "apiVersion: v1\nentries:\n  café:\n  - name: café\n    version: 1.0.0\n    description: \"日本語\"\n";
        let versions = versions_of(OneByte(text.as_bytes()), "café").unwrap();
        assert_eq!(versions.len(), 1);
    }
}
