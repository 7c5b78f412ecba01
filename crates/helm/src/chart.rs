//! Helm charts, read and packaged as Helm does, safely: a chart archive (`.tgz`, every entry under the
//! chart's directory) is streamed with each entry checked — no absolute path, no `..`, no link, no file
//! over the limit — and its `Chart.yaml` validated as Helm validates it; a chart directory is packaged
//! (its `.helmignore` honoured) into a reproducible archive; the default values are replaced by values
//! files merged in order, and the version given build metadata, as Flux's chart builders do.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{self, Read, Write},
    path::{Component, Path, PathBuf},
};

use serde::Deserialize;
pub use serde_yaml::Mapping;
use serde_yaml::Value;

/// Why a chart could not be read or packaged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The archive or directory is not a chart, or `Chart.yaml` is invalid.
    #[error("{0}")]
    Invalid(String),
    /// An entry that would escape the chart, or is not a regular file or directory.
    #[error("refusing chart archive entry {entry:?}: {why}")]
    UnsafeEntry {
        /// The entry's path.
        entry: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// A values file could not be merged.
    #[error("{0}")]
    Values(String),
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A dependency a chart declares in `Chart.yaml`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Dependency {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its version range.
    #[serde(default)]
    pub version: String,
    /// Where it comes from: a chart repository URL, `oci://…`, `file://…`, `@alias`, or empty (vendored).
    #[serde(default)]
    pub repository: String,
    /// The name it is used under.
    #[serde(default)]
    pub alias: Option<String>,
}

/// What Helm validates of `Chart.yaml`, and the dependencies.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// `apiVersion` (v1, v2).
    #[serde(default)]
    pub api_version: String,
    /// The chart's name.
    #[serde(default)]
    pub name: String,
    /// Its version.
    #[serde(default, deserialize_with = "string_or_number")]
    pub version: String,
    /// Its dependencies.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => serde_yaml::to_string(&other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    })
}

impl Metadata {
    /// Parses `Chart.yaml`.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        serde_yaml::from_slice(bytes).map_err(|e| Error::Invalid(format!("cannot load Chart.yaml: {e}")))
    }

    /// Helm's validation: an API version, a name, a SemVer version.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |m: String| Err(Error::Invalid(format!("validation: {m}")));
        if self.api_version.is_empty() {
            return invalid("chart.metadata.apiVersion is required".into());
        }
        if self.name.is_empty() {
            return invalid("chart.metadata.name is required".into());
        }
        if self.name.contains(['/', '\\']) || self.name == "." || self.name == ".." {
            return invalid(format!("chart.metadata.name {:?} is invalid", self.name));
        }
        if self.version.is_empty() {
            return invalid("chart.metadata.version is required".into());
        }
        if parse_version(&self.version).is_none() {
            return invalid(format!("chart.metadata.version {:?} is invalid", self.version));
        }
        Ok(())
    }
}

/// A chart version read as Helm reads it (`v` prefix and missing parts allowed).
pub fn parse_version(v: &str) -> Option<semver::Version> {
    driftless_version::lenient_version(v)
}

/// `version` with SemVer build metadata `meta` (replacing any), as Flux marks a chart built from a
/// source revision or with values files.
pub fn with_build_metadata(version: &str, meta: &str) -> Result<String, Error> {
    let mut v = parse_version(version).ok_or_else(|| {
        Error::Invalid(format!(
            "failed to parse version from chart metadata as SemVer: invalid semantic version {version:?}"
        ))
    })?;
    v.build = semver::BuildMetadata::new(meta)
        .map_err(|e| Error::Invalid(format!("failed to set SemVer metadata on chart version: {e}")))?;
    Ok(v.to_string())
}

/// Limits on what a chart may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest file in it.
    pub max_file: u64,
    /// The largest total.
    pub max_total: u64,
}

/// Checks a tar entry path: relative, no `..`; returns its components.
fn safe_path(name: &str) -> Result<Vec<String>, Error> {
    let unsafe_entry = |why| Error::UnsafeEntry {
        entry: name.to_string(),
        why,
    };
    let path = Path::new(name);
    if path.is_absolute() {
        return Err(unsafe_entry("absolute path"));
    }
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().to_string()),
            Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_entry("path escapes the chart directory")),
            Component::RootDir | Component::Prefix(_) => return Err(unsafe_entry("absolute path")),
        }
    }
    Ok(parts)
}

/// Streams the chart archive `reader`, checking every entry, and calls `visit` with each file's path
/// inside the chart (`templates/x.yaml`) and content; returns the chart's directory name (the first
/// path segment every entry shares).
pub fn walk_archive(
    reader: impl Read,
    limits: Limits,
    mut visit: impl FnMut(&str, &mut dyn Read) -> Result<(), Error>,
) -> Result<String, Error> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let mut top: Option<String> = None;
    let mut total = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| Error::Invalid(format!("not a chart archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Invalid(format!("not a chart archive: {e}")))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).to_string();
        let parts = safe_path(&name)?;
        let unsafe_entry = |why| Error::UnsafeEntry {
            entry: name.clone(),
            why,
        };
        match entry.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                return Err(unsafe_entry("links are not allowed"));
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName => continue,
            _ => return Err(unsafe_entry("not a regular file")),
        }
        let [first, rest @ ..] = parts.as_slice() else {
            continue;
        };
        if rest.is_empty() {
            return Err(unsafe_entry("a file outside the chart's directory"));
        }
        match &top {
            None => top = Some(first.clone()),
            Some(t) if t != first => return Err(unsafe_entry("a file outside the chart's directory")),
            Some(_) => {}
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > limits.max_file {
            return Err(Error::TooLarge(format!(
                "chart file {name:?} is {size} bytes, over the limit of {} bytes",
                limits.max_file
            )));
        }
        total = total.saturating_add(size);
        if total > limits.max_total {
            return Err(Error::TooLarge(format!(
                "chart is over the limit of {} bytes unpacked",
                limits.max_total
            )));
        }
        visit(&rest.join("/"), &mut (&mut entry).take(limits.max_file))?;
    }
    top.ok_or_else(|| Error::Invalid("the chart archive is empty".into()))
}

/// The `Chart.yaml` of the chart archive at `path`, validated; every entry is checked on the way.
pub fn archive_metadata(path: &Path, limits: Limits) -> Result<Metadata, Error> {
    let mut chart_yaml = None;
    walk_archive(
        File::open(path).map_err(io_err(path))?,
        limits,
        |name, content| {
            if name == "Chart.yaml" {
                let mut bytes = Vec::new();
                content.read_to_end(&mut bytes).map_err(io_err(Path::new(name)))?;
                chart_yaml = Some(bytes);
            }
            Ok(())
        },
    )?;
    let meta =
        Metadata::parse(&chart_yaml.ok_or_else(|| Error::Invalid("Chart.yaml file is missing".into()))?)?;
    meta.validate()?;
    Ok(meta)
}

/// Merges `overlay` into `base` as Flux's `transform.MergeMaps`: maps merge key by key, recursively;
/// anything else in `overlay` replaces.
pub fn merge_values(base: &mut Mapping, overlay: Mapping) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(Value::Mapping(b)), Value::Mapping(o)) => merge_values(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Parses a values file (`name` for errors) into a mapping; an empty file is an empty mapping.
pub fn parse_values(bytes: &[u8], name: &str) -> Result<Mapping, Error> {
    match serde_yaml::from_slice::<Value>(bytes) {
        Ok(Value::Mapping(m)) => Ok(m),
        Ok(Value::Null) => Ok(Mapping::new()),
        Ok(_) => Err(Error::Values(format!(
            "unmarshaling values from '{name}' failed: not a mapping"
        ))),
        Err(e) => Err(Error::Values(format!(
            "unmarshaling values from '{name}' failed: {e}"
        ))),
    }
}

/// Values as the YAML of a `values.yaml`.
pub fn values_yaml(values: &Mapping) -> Result<Vec<u8>, Error> {
    driftless_yaml::to_string(values)
        .map(String::into_bytes)
        .map_err(|e| Error::Values(format!("cannot write values: {e}")))
}

/// A chart to package: its directory name, files (path inside the chart → where the bytes are), and
/// replacements (path → bytes: `Chart.yaml` with a new version, the merged `values.yaml`).
#[derive(Default)]
pub struct Package {
    /// Files from disk, by path inside the chart.
    pub files: BTreeMap<String, PathBuf>,
    /// Files given as bytes (they win over `files`).
    pub replaced: BTreeMap<String, Vec<u8>>,
}

impl Package {
    /// Reads a chart directory, honouring its `.helmignore` (gitignore syntax, as Helm reads it);
    /// links are refused.
    pub fn from_dir(dir: &Path, limits: Limits) -> Result<Self, Error> {
        let mut ignore = ignore::gitignore::GitignoreBuilder::new(dir);
        let helmignore = dir.join(".helmignore");
        if helmignore.is_file()
            && let Some(e) = ignore.add(&helmignore)
        {
            return Err(Error::Invalid(format!("invalid .helmignore: {e}")));
        }
        let ignore = ignore
            .build()
            .map_err(|e| Error::Invalid(format!("invalid .helmignore: {e}")))?;
        let mut package = Package::default();
        let mut total = 0u64;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).map_err(io_err(&d))? {
                let entry = entry.map_err(io_err(&d))?;
                let path = entry.path();
                let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
                let rel = path
                    .strip_prefix(dir)
                    .expect("under the chart")
                    .to_string_lossy()
                    .replace('\\', "/");
                if ignore
                    .matched_path_or_any_parents(&path, meta.is_dir())
                    .is_ignore()
                {
                    continue;
                }
                if meta.file_type().is_symlink() {
                    return Err(Error::UnsafeEntry {
                        entry: rel,
                        why: "links are not allowed",
                    });
                }
                if meta.is_dir() {
                    stack.push(path);
                } else if meta.is_file() {
                    if meta.len() > limits.max_file {
                        return Err(Error::TooLarge(format!(
                            "chart file {rel:?} is {} bytes, over the limit of {} bytes",
                            meta.len(),
                            limits.max_file
                        )));
                    }
                    total += meta.len();
                    if total > limits.max_total {
                        return Err(Error::TooLarge(format!(
                            "chart is over the limit of {} bytes",
                            limits.max_total
                        )));
                    }
                    package.files.insert(rel, path);
                }
            }
        }
        Ok(package)
    }

    /// The bytes of `path` inside the chart, replaced or from disk.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        if let Some(b) = self.replaced.get(path) {
            return Ok(Some(b.clone()));
        }
        match self.files.get(path) {
            Some(p) => Ok(Some(std::fs::read(p).map_err(io_err(p))?)),
            None => Ok(None),
        }
    }

    /// Writes the chart as `<name>/…` into a reproducible `.tgz` at `out` (sorted entries, zero mtime,
    /// uid/gid 0, modes 0644).
    pub fn write(&self, name: &str, out: &Path) -> Result<(), Error> {
        let file = File::create(out).map_err(io_err(out))?;
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            io::BufWriter::new(file),
            flate2::Compression::default(),
        ));
        let mut paths: Vec<&String> = self.files.keys().chain(self.replaced.keys()).collect();
        paths.sort();
        paths.dedup();
        for path in paths {
            let bytes = match self.replaced.get(path) {
                Some(b) => b.clone(),
                None => {
                    let p = &self.files[path];
                    std::fs::read(p).map_err(io_err(p))?
                }
            };
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, format!("{name}/{path}"), &bytes[..])
                .map_err(io_err(out))?;
        }
        let gz = tar.into_inner().map_err(io_err(out))?;
        let mut w = gz.finish().map_err(io_err(out))?;
        w.flush().map_err(io_err(out))
    }
}

/// Reads the chart archive at `path` into a [`Package`] (its files unpacked under `into`).
pub fn unpack_archive(path: &Path, into: &Path, limits: Limits) -> Result<(String, Package), Error> {
    let mut package = Package::default();
    let top = walk_archive(
        File::open(path).map_err(io_err(path))?,
        limits,
        |name, content| {
            let target = into.join(name);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            let mut out = File::create(&target).map_err(io_err(&target))?;
            io::copy(content, &mut out).map_err(io_err(&target))?;
            package.files.insert(name.to_string(), target);
            Ok(())
        },
    )?;
    Ok((top, package))
}

/// `Chart.yaml` with `version` set, the other fields kept.
pub fn set_version(chart_yaml: &[u8], version: &str) -> Result<Vec<u8>, Error> {
    let mut doc: Value = serde_yaml::from_slice(chart_yaml)
        .map_err(|e| Error::Invalid(format!("cannot load Chart.yaml: {e}")))?;
    let Value::Mapping(m) = &mut doc else {
        return Err(Error::Invalid("cannot load Chart.yaml: not a mapping".into()));
    };
    m.insert(Value::String("version".into()), Value::String(version.into()));
    driftless_yaml::to_string(&doc)
        .map(String::into_bytes)
        .map_err(|e| Error::Invalid(format!("cannot write Chart.yaml: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_file: 1 << 20,
        max_total: 10 << 20,
    };

    fn archive(entries: &[(&str, tar::EntryType, &[u8])]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            file.reopen().unwrap(),
            flate2::Compression::fast(),
        ));
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if *kind == tar::EntryType::Symlink {
                gnu.linkname[..4].copy_from_slice(b"/etc");
            }
            h.set_cksum();
            builder.append(&h, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
        file
    }

    const CHART: &[u8] = b"apiVersion: v2\nname: app\nversion: 1.2.3\ndescription: x\n";

    #[test]
    fn archives_are_read_and_validated() {
        let a = archive(&[
            ("app/Chart.yaml", tar::EntryType::Regular, CHART),
            (
                "app/templates/cm.yaml",
                tar::EntryType::Regular,
                b"kind: ConfigMap",
            ),
        ]);
        let meta = archive_metadata(a.path(), LIMITS).unwrap();
        assert_eq!((meta.name.as_str(), meta.version.as_str()), ("app", "1.2.3"));
        let no_version = archive(&[(
            "app/Chart.yaml",
            tar::EntryType::Regular,
            b"apiVersion: v2\nname: app\n",
        )]);
        assert_eq!(
            archive_metadata(no_version.path(), LIMITS)
                .unwrap_err()
                .to_string(),
            "validation: chart.metadata.version is required"
        );
        let missing = archive(&[("app/values.yaml", tar::EntryType::Regular, b"a: 1")]);
        assert_eq!(
            archive_metadata(missing.path(), LIMITS).unwrap_err().to_string(),
            "Chart.yaml file is missing"
        );
    }

    #[test]
    fn unsafe_entries_are_refused() {
        for (name, kind, why) in [
            ("app/../../etc/passwd", tar::EntryType::Regular, "escapes"),
            ("/app/Chart.yaml", tar::EntryType::Regular, "absolute"),
            ("app/link", tar::EntryType::Symlink, "links"),
            ("other/Chart.yaml", tar::EntryType::Regular, "outside"),
        ] {
            let a = archive(&[
                ("app/Chart.yaml", tar::EntryType::Regular, CHART),
                (name, kind, b"x"),
            ]);
            let err = archive_metadata(a.path(), LIMITS).unwrap_err().to_string();
            assert!(err.contains(why), "{name}: {err}");
        }
        let big = vec![b'x'; 2048];
        let a = archive(&[
            ("app/Chart.yaml", tar::EntryType::Regular, CHART),
            ("app/big", tar::EntryType::Regular, &big),
        ]);
        let small = Limits {
            max_file: 1024,
            max_total: 1 << 20,
        };
        assert!(
            archive_metadata(a.path(), small)
                .unwrap_err()
                .to_string()
                .contains("over the limit")
        );
    }

    #[test]
    fn values_merge_deeply_and_versions_take_build_metadata() {
        let mut base = parse_values(
            b"image: {repository: nginx, tag: '1.0'}\nreplicas: 1\n",
            "values.yaml",
        )
        .unwrap();
        merge_values(
            &mut base,
            parse_values(b"image: {tag: '2.0'}\nextra: [a]\n", "prod.yaml").unwrap(),
        );
        let merged: Value = Value::Mapping(base);
        assert_eq!(merged["image"]["repository"], Value::from("nginx"));
        assert_eq!(merged["image"]["tag"], Value::from("2.0"));
        assert_eq!(merged["replicas"], Value::from(1));
        assert!(parse_values(b"- a\n", "list.yaml").is_err());
        assert_eq!(
            with_build_metadata("1.2.3", "abc123def456").unwrap(),
            "1.2.3+abc123def456"
        );
        assert_eq!(with_build_metadata("1.2.3+old", "7").unwrap(), "1.2.3+7");
        assert!(with_build_metadata("latest", "7").is_err());
        let chart = set_version(CHART, "1.2.3+7").unwrap();
        let meta = Metadata::parse(&chart).unwrap();
        assert_eq!(meta.version, "1.2.3+7");
    }

    #[test]
    fn packages_are_reproducible_and_honour_helmignore() {
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join("app");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(chart.join("Chart.yaml"), CHART).unwrap();
        std::fs::write(chart.join("templates/cm.yaml"), "kind: ConfigMap").unwrap();
        std::fs::write(chart.join("notes.bak"), "x").unwrap();
        std::fs::write(chart.join(".helmignore"), "*.bak\n").unwrap();
        let package = Package::from_dir(&chart, LIMITS).unwrap();
        assert!(package.files.contains_key("templates/cm.yaml"));
        assert!(!package.files.contains_key("notes.bak"), "ignored");
        let (a, b) = (dir.path().join("a.tgz"), dir.path().join("b.tgz"));
        package.write("app", &a).unwrap();
        package.write("app", &b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(archive_metadata(&a, LIMITS).unwrap().version, "1.2.3");
    }
}
