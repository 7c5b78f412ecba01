//! The file work of an ArtifactGenerator, as Flux's source-watcher does it: copy operations from the
//! unpacked sources (`@alias/<glob>`) into a staging directory (`@artifact/<path>`) — Overwrite, Merge
//! (YAML, Helm values style) or Extract (tarballs) — with exclusions, then the staging directory's
//! content hash, which names the artifact file.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use driftless_api::extensions::{CopyOperation, CopyStrategy};
use globset::{Glob, GlobBuilder, GlobMatcher};

use crate::common::secure_rel;

/// `@alias/pattern` → (alias, pattern).
pub fn parse_from(from: &str) -> Result<(&str, &str), String> {
    let rest = from.strip_prefix('@').ok_or("source must start with '@'")?;
    rest.split_once('/')
        .ok_or_else(|| "source format must be '@alias/pattern'".to_string())
}

/// `@artifact/path` → path.
pub fn parse_to(to: &str) -> Result<&str, String> {
    to.strip_prefix("@artifact/")
        .ok_or_else(|| "destination must start with '@artifact/'".to_string())
}

fn glob(pattern: &str, extract: bool) -> Result<GlobMatcher, String> {
    // NB: outside Extract, `**` is what Go's fs.Glob makes of it: `*`, within one path segment
    let pattern = if extract {
        pattern.to_string()
    } else {
        pattern.replace("**", "*")
    };
    Ok(GlobBuilder::new(&pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("invalid glob pattern '{pattern}': {e}"))?
        .compile_matcher())
}

fn contains_glob(p: &str) -> bool {
    p.contains(['*', '?', '[', ']'])
}

/// Every path under `root` (files and directories), relative, `/`-separated, sorted.
fn entries(root: &Path) -> Result<Vec<(String, bool)>, String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))? {
            let e = e.map_err(|e| e.to_string())?;
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/");
            let is_dir = e.file_type().map_err(|e| e.to_string())?.is_dir();
            if is_dir {
                stack.push(path);
            }
            out.push((rel, is_dir));
        }
    }
    out.sort();
    Ok(out)
}

/// The non-glob prefix of a pattern (`a/b/*.yaml` → `a/b`), exclusions are also matched relative to it.
fn selection_root(pattern: &str) -> String {
    let parts: Vec<&str> = pattern
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .take_while(|p| !contains_glob(p))
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

struct Excludes(Vec<(GlobMatcher, bool)>);

impl Excludes {
    fn new(patterns: &[String]) -> Result<Self, String> {
        patterns
            .iter()
            .map(|p| {
                Glob::new(p)
                    .map(|g| (g.compile_matcher(), !p.contains('/')))
                    .map_err(|_| format!("invalid exclude pattern '{p}'"))
            })
            .collect::<Result<_, _>>()
            .map(Excludes)
    }

    fn matches_one(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        self.0
            .iter()
            .any(|(g, name_only)| g.is_match(path) || (*name_only && g.is_match(name)))
    }

    /// Whether `path` (relative to the source root) is excluded, by itself or relative to `base`.
    fn excluded(&self, path: &str, base: &str) -> bool {
        if self.0.is_empty() {
            return false;
        }
        if self.matches_one(path) {
            return true;
        }
        let rel = if base == "." {
            Some(path)
        } else {
            path.strip_prefix(base).and_then(|r| r.strip_prefix('/'))
        };
        rel.is_some_and(|r| r != path && self.matches_one(r))
    }
}

/// Applies `op` from the unpacked `sources` (alias → directory) into `staging`.
pub fn apply_copy(
    op: &CopyOperation,
    sources: &BTreeMap<String, PathBuf>,
    staging: &Path,
) -> Result<(), String> {
    let (alias, pattern) =
        parse_from(&op.from).map_err(|e| format!("invalid copy source '{}': {e}", op.from))?;
    let dest = parse_to(&op.to).map_err(|e| format!("invalid copy destination '{}': {e}", op.to))?;
    let dest = secure_rel(dest)
        .ok_or_else(|| format!("invalid copy destination '{}': it leaves the artifact", op.to))?;
    let src = sources
        .get(alias)
        .ok_or_else(|| format!("source alias '{alias}' not found"))?;
    let strategy = op.strategy.unwrap_or_default();
    let excludes = Excludes::new(op.exclude.as_deref().unwrap_or_default())?;
    let dest_is_dir_hint = op.to.ends_with('/');
    let ctx = Copy {
        strategy,
        excludes: &excludes,
        src,
        staging,
    };
    if !contains_glob(pattern) {
        let rel = secure_rel(pattern).ok_or_else(|| format!("source '{pattern}' leaves the source"))?;
        let path = src.join(&rel);
        let rel_text = rel.to_string_lossy().replace('\\', "/");
        let meta =
            std::fs::symlink_metadata(&path).map_err(|_| format!("source '{rel_text}' does not exist"))?;
        if meta.is_dir() {
            if strategy == CopyStrategy::Extract {
                return Err(format!(
                    "extract strategy is not supported for directories, got '{rel_text}'"
                ));
            }
            let name = rel
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            return ctx.dir(&rel_text, &dest.join(name), &rel_text);
        }
        if excludes.excluded(&rel_text, ".") {
            return Ok(());
        }
        if strategy == CopyStrategy::Extract {
            if !is_tarball(&rel_text) {
                return Err(format!(
                    "extract strategy requires tarball file (.tar.gz or .tgz), got '{rel_text}'"
                ));
            }
            return extract(&path, &staging.join(&dest));
        }
        let target = if dest_is_dir_hint || staging.join(&dest).is_dir() {
            dest.join(rel.file_name().unwrap_or_default())
        } else {
            dest
        };
        return ctx.file(&rel_text, &target);
    }
    let matcher = glob(pattern, strategy == CopyStrategy::Extract)?;
    let base = selection_root(pattern);
    let matched: Vec<(String, bool)> = entries(src)?
        .into_iter()
        .filter(|(p, _)| matcher.is_match(p))
        .collect();
    if matched.is_empty() {
        return Err(format!("no files match pattern '{pattern}' in source '{alias}'"));
    }
    let kept: Vec<(String, bool)> = matched
        .into_iter()
        .filter(|(p, _)| !excludes.excluded(p, &base))
        .collect();
    if kept.is_empty() {
        return Err(format!(
            "all files matching pattern '{pattern}' in source '{alias}' were excluded"
        ));
    }
    for (path, is_dir) in kept {
        if strategy == CopyStrategy::Extract {
            if !is_dir && is_tarball(&path) {
                extract(&src.join(&path), &staging.join(&dest)).map_err(|e| {
                    format!("failed to extract tarball '{path}' to '{}': {e}", dest.display())
                })?;
            }
            continue;
        }
        // `dir/**` copies what is under dir; other patterns keep the matched path
        let rel = match pattern.strip_suffix("/**") {
            Some(prefix) => path
                .strip_prefix(&format!("{prefix}/"))
                .unwrap_or(&path)
                .to_string(),
            None => path.clone(),
        };
        let target = dest.join(&rel);
        if is_dir {
            ctx.dir(&path, &target, &base)?;
        } else {
            ctx.file(&path, &target)?;
        }
    }
    Ok(())
}

struct Copy<'a> {
    strategy: CopyStrategy,
    excludes: &'a Excludes,
    src: &'a Path,
    staging: &'a Path,
}

impl Copy<'_> {
    fn dir(&self, rel: &str, target: &Path, base: &str) -> Result<(), String> {
        std::fs::create_dir_all(self.staging.join(target)).map_err(|e| e.to_string())?;
        let root = self.src.join(rel);
        // an excluded directory takes everything under it along
        let mut skipped: Vec<String> = Vec::new();
        for (path, is_dir) in entries(&root)? {
            if skipped.iter().any(|s| path.starts_with(&format!("{s}/"))) {
                continue;
            }
            let full = if rel.is_empty() {
                path.clone()
            } else {
                format!("{rel}/{path}")
            };
            if self.excludes.excluded(&full, base) {
                if is_dir {
                    skipped.push(path);
                }
                continue;
            }
            if is_dir {
                std::fs::create_dir_all(self.staging.join(target).join(&path)).map_err(|e| e.to_string())?;
            } else {
                self.file(&full, &target.join(&path))?;
            }
        }
        Ok(())
    }

    fn file(&self, rel: &str, target: &Path) -> Result<(), String> {
        let from = self.src.join(rel);
        let meta = std::fs::symlink_metadata(&from).map_err(|e| e.to_string())?;
        if meta.file_type().is_symlink() {
            return Err(format!("'{rel}' is a link"));
        }
        let to = self.staging.join(target);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        if self.strategy == CopyStrategy::Merge && to.is_file() {
            return merge_yaml(&to, &from).map_err(|e| format!("failed to merge '{rel}': {e}"));
        }
        std::fs::copy(&from, &to)
            .map(|_| ())
            .map_err(|e| format!("failed to copy file '{rel}' to '{}': {e}", target.display()))
    }
}

fn is_tarball(path: &str) -> bool {
    let lower = path.to_lowercase();
    lower.ends_with(".tar.gz") || lower.ends_with(".tgz")
}

fn extract(tarball: &Path, into: &Path) -> Result<(), String> {
    let file = std::fs::File::open(tarball).map_err(|e| e.to_string())?;
    driftless_artifact::fetch::unpack(file, into, driftless_artifact::fetch::Limits::default())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Every document of a YAML file merged into one mapping.
fn load_yaml(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut out = serde_json::Value::Object(Default::default());
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc)
            .map_err(|e| format!("cannot unmarshal YAML document: {e}"))?;
        match value {
            serde_json::Value::Object(_) => merge_map(&mut out, value),
            serde_json::Value::Null => {}
            _ => return Err("cannot unmarshal YAML document: not a mapping".into()),
        }
    }
    Ok(out)
}

/// Overlay into base: mappings merge key by key, anything else replaces (Helm's values merge).
fn merge_map(base: &mut serde_json::Value, overlay: serde_json::Value) {
    match (base, overlay) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing @ serde_json::Value::Object(_)) if v.is_object() => merge_map(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn merge_yaml(dest: &Path, src: &Path) -> Result<(), String> {
    let mut base = load_yaml(dest)?;
    merge_map(&mut base, load_yaml(src)?);
    let text = driftless_yaml::to_string(&base).map_err(|e| e.to_string())?;
    std::fs::write(dest, text).map_err(|e| e.to_string())
}

/// The content hash that names an artifact file, as source-watcher computes it: adler32 over
/// `<adler32 of file>  <name>/<path>` lines of every file, sorted.
pub fn dir_hash(dir: &Path, name: &str) -> Result<String, String> {
    let mut files: Vec<String> = entries(dir)?
        .into_iter()
        .filter(|(_, is_dir)| !is_dir)
        .map(|(p, _)| p)
        .collect();
    files.sort_by(|a, b| format!("{name}/{a}").cmp(&format!("{name}/{b}")));
    let mut all = Adler32::default();
    for f in files {
        let mut one = Adler32::default();
        one.update(&std::fs::read(dir.join(&f)).map_err(|e| e.to_string())?);
        all.update(format!("{:x}  {name}/{f}\n", one.value()).as_bytes());
    }
    Ok(all.value().to_string())
}

/// Adler-32 (RFC 1950).
struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Self {
        Self { a: 1, b: 0 }
    }
}

impl Adler32 {
    fn update(&mut self, data: &[u8]) {
        const MOD: u32 = 65521;
        for chunk in data.chunks(5552) {
            for &byte in chunk {
                self.a += u32::from(byte);
                self.b += self.a;
            }
            self.a %= MOD;
            self.b %= MOD;
        }
    }

    fn value(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, c).unwrap();
        }
        dir
    }

    fn listed(dir: &Path) -> Vec<String> {
        entries(dir)
            .unwrap()
            .into_iter()
            .filter(|(_, d)| !d)
            .map(|(p, _)| p)
            .collect()
    }

    fn op(from: &str, to: &str, exclude: &[&str], strategy: Option<CopyStrategy>) -> CopyOperation {
        CopyOperation {
            from: from.into(),
            to: to.into(),
            exclude: (!exclude.is_empty()).then(|| exclude.iter().map(|s| s.to_string()).collect()),
            strategy,
        }
    }

    #[test]
    fn copies_follow_source_watchers_rules() {
        let src = tree(&[
            ("deploy/bases/frontend/deploy.yaml", "a"),
            ("deploy/bases/frontend/svc.yaml", "b"),
            ("deploy/bases/backend/deploy.yaml", "c"),
            ("deploy/bases/backend/README.md", "d"),
            ("deploy/bases/cache/redis/sts.yaml", "e"),
            ("deploy/bases/cache/kustomization.yaml", "f"),
        ]);
        let sources = BTreeMap::from([("git".to_string(), src.path().to_path_buf())]);
        let run = |ops: &[CopyOperation]| {
            let staging = tempfile::tempdir().unwrap();
            for o in ops {
                apply_copy(o, &sources, staging.path()).unwrap();
            }
            listed(staging.path())
        };
        assert_eq!(
            run(&[op("@git/deploy/bases/frontend/", "@artifact/", &[], None)]),
            vec!["frontend/deploy.yaml", "frontend/svc.yaml"],
            "a directory is copied under its name"
        );
        assert_eq!(
            run(&[op("@git/deploy/bases/backend/*.yaml", "@artifact/", &[], None)]),
            vec!["deploy/bases/backend/deploy.yaml"],
            "a glob keeps the matched path"
        );
        assert_eq!(
            run(&[op("@git/deploy/bases/cache/**", "@artifact/", &[], None)]),
            vec!["kustomization.yaml", "redis/sts.yaml"],
            "dir/** copies what is under dir"
        );
        assert_eq!(
            run(&[op("@git/deploy/bases/**", "@artifact/", &["*.md", "cache"], None)]),
            vec!["backend/deploy.yaml", "frontend/deploy.yaml", "frontend/svc.yaml"],
            "exclusions by name at any depth, and relative to the selection root"
        );
        assert_eq!(
            run(&[op(
                "@git/deploy/bases/frontend/svc.yaml",
                "@artifact/app/service.yaml",
                &[],
                None
            )]),
            vec!["app/service.yaml"]
        );
        let staging = tempfile::tempdir().unwrap();
        let err = apply_copy(
            &op("@git/nope/*.yaml", "@artifact/", &[], None),
            &sources,
            staging.path(),
        )
        .unwrap_err();
        assert_eq!(err, "no files match pattern 'nope/*.yaml' in source 'git'");
        let err = apply_copy(&op("@other/x", "@artifact/", &[], None), &sources, staging.path()).unwrap_err();
        assert_eq!(err, "source alias 'other' not found");
        let err = apply_copy(
            &op("@git/deploy", "@artifact/../x", &[], None),
            &sources,
            staging.path(),
        )
        .unwrap_err();
        assert!(err.contains("leaves the artifact"), "{err}");
    }

    #[test]
    fn yaml_merges_as_helm_values_and_hashes_name_content() {
        let src = tree(&[
            (
                "values.yaml",
                "image: {repository: nginx, tag: '1'}\nreplicas: 1\n",
            ),
            ("values-prod.yaml", "image: {tag: '2'}\nreplicas: 3\n"),
        ]);
        let sources = BTreeMap::from([("repo".to_string(), src.path().to_path_buf())]);
        let staging = tempfile::tempdir().unwrap();
        apply_copy(
            &op("@repo/values.yaml", "@artifact/chart/values.yaml", &[], None),
            &sources,
            staging.path(),
        )
        .unwrap();
        apply_copy(
            &op(
                "@repo/values-prod.yaml",
                "@artifact/chart/values.yaml",
                &[],
                Some(CopyStrategy::Merge),
            ),
            &sources,
            staging.path(),
        )
        .unwrap();
        let merged: serde_json::Value =
            serde_yaml::from_str(&std::fs::read_to_string(staging.path().join("chart/values.yaml")).unwrap())
                .unwrap();
        assert_eq!(merged["image"]["repository"], "nginx");
        assert_eq!(merged["image"]["tag"], "2");
        assert_eq!(merged["replicas"], 3);
        let a = dir_hash(staging.path(), "app").unwrap();
        assert_eq!(a, dir_hash(staging.path(), "app").unwrap());
        assert_ne!(
            a,
            dir_hash(staging.path(), "other").unwrap(),
            "the name is part of it"
        );
        let mut adler = Adler32::default();
        adler.update(b"Wikipedia");
        assert_eq!(adler.value(), 0x11E60398, "RFC 1950's checksum");
    }
}
