//! The build: load a kustomization (or generate one), gather its resources depth first, apply its
//! transformers, and sort the result in kustomize's legacy order.

use std::path::{Path, PathBuf};

use crate::{
    Error, Object, Result,
    kustomization::{FILE_NAMES, Kustomization},
    order::{field, legacy_sort},
    transform::{self, Res},
    yaml,
};

/// Builds the kustomization at `path` (relative to `root`, or absolute under it). Nothing outside
/// `root` may be read. When `path` has no kustomization file, one listing its YAML files is generated,
/// as Flux does.
pub fn build(root: &Path, path: &Path) -> Result<Vec<Object>> {
    let root = root.canonicalize().map_err(|source| Error::Io {
        path: root.display().to_string(),
        source,
    })?;
    let dir = inside(&root, &root.join(path), &root)?;
    let mut stack = Vec::new();
    let mut resources = load_dir(&root, &dir, &mut stack, true)?;
    let mut objects: Vec<Object> = resources.drain(..).map(|r| r.obj).collect();
    legacy_sort(&mut objects);
    Ok(objects)
}

/// `path` canonicalised, refused when it leaves `root` (`..`, symlinks).
fn inside(root: &Path, path: &Path, from: &Path) -> Result<PathBuf> {
    let canonical = path.canonicalize().map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    if !canonical.starts_with(root) {
        return Err(Error::Invalid {
            path: from.display().to_string(),
            message: format!(
                "'{}' is outside the build root '{}'",
                path.display(),
                root.display()
            ),
        });
    }
    Ok(canonical)
}

fn kustomization_file(dir: &Path) -> Result<Option<PathBuf>> {
    let found: Vec<PathBuf> = FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        _ => Err(Error::Invalid {
            path: dir.display().to_string(),
            message: format!("found multiple kustomization files: {}", FILE_NAMES.join(", ")),
        }),
    }
}

fn is_remote(entry: &str) -> bool {
    entry.contains("://")
        || entry.starts_with("git@")
        || entry.starts_with("github.com/")
        || entry.starts_with("gitlab.com/")
}

fn load_dir(root: &Path, dir: &Path, stack: &mut Vec<PathBuf>, top: bool) -> Result<Vec<Res>> {
    if stack.contains(&dir.to_path_buf()) {
        return Err(Error::Invalid {
            path: dir.display().to_string(),
            message: format!(
                "cycle detected: {} → {}",
                stack
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" → "),
                dir.display()
            ),
        });
    }
    let (kustomization, origin) = match kustomization_file(dir)? {
        Some(file) => {
            let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
                path: file.display().to_string(),
                source,
            })?;
            (Kustomization::parse(&text, &file.display().to_string())?, file)
        }
        None if top => (generated(dir)?, dir.to_path_buf()),
        None => {
            return Err(Error::Invalid {
                path: dir.display().to_string(),
                message: format!(
                    "unable to find one of {} in directory",
                    FILE_NAMES
                        .iter()
                        .map(|n| format!("'{n}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    };
    if kustomization.kind.as_deref() == Some("Component") && top {
        return Err(Error::Invalid {
            path: origin.display().to_string(),
            message: "a Component cannot be built on its own".into(),
        });
    }
    stack.push(dir.to_path_buf());
    let mut resources = Vec::new();
    for entry in kustomization.resources.iter().chain(&kustomization.bases) {
        if is_remote(entry) {
            return Err(Error::Invalid {
                path: origin.display().to_string(),
                message: format!(
                    "remote resource '{entry}' refused: remote bases are disabled (--no-remote-bases=true)"
                ),
            });
        }
        let target = inside(root, &dir.join(entry), &origin)?;
        if target.is_dir() {
            resources.extend(load_dir(root, &target, stack, false)?);
        } else {
            resources.extend(load_file(&target)?);
        }
    }
    stack.pop();
    check_unique(&resources, &origin)?;
    transform::apply(&kustomization, &mut resources);
    Ok(resources)
}

fn load_file(file: &Path) -> Result<Vec<Res>> {
    let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
        path: file.display().to_string(),
        source,
    })?;
    let objects = yaml::parse_stream(&text, &file.display().to_string())?;
    objects
        .into_iter()
        .map(|obj| {
            if field(&obj, &["kind"]).is_empty() || field(&obj, &["apiVersion"]).is_empty() {
                return Err(Error::Invalid {
                    path: file.display().to_string(),
                    message: "a resource is missing apiVersion or kind".into(),
                });
            }
            let original_name = field(&obj, &["metadata", "name"]).to_string();
            Ok(Res { obj, original_name })
        })
        .collect()
}

/// kustomize refuses two resources with the same group, kind, namespace and name.
fn check_unique(resources: &[Res], origin: &Path) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for r in resources {
        let id = (
            field(&r.obj, &["apiVersion"])
                .split('/')
                .rev()
                .nth(1)
                .unwrap_or("")
                .to_string(),
            field(&r.obj, &["kind"]).to_string(),
            field(&r.obj, &["metadata", "namespace"]).to_string(),
            field(&r.obj, &["metadata", "name"]).to_string(),
        );
        if !seen.insert(id.clone()) {
            return Err(Error::Invalid {
                path: origin.display().to_string(),
                message: format!(
                    "may not add resource with an already registered id: {}/{} {}",
                    id.1, id.3, id.2
                ),
            });
        }
    }
    Ok(())
}

/// Flux's generated kustomization: every YAML file under `dir` (directories with their own
/// kustomization included as such), sorted.
fn generated(dir: &Path) -> Result<Kustomization> {
    let mut resources = Vec::new();
    collect(dir, dir, &mut resources)?;
    resources.sort();
    Ok(Kustomization {
        resources,
        ..Default::default()
    })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("under the root")
            .display()
            .to_string();
        if path.is_dir() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if kustomization_file(&path)?.is_some() {
                out.push(rel);
            } else {
                collect(root, &path, out)?;
            }
        } else if rel.ends_with(".yaml") || rel.ends_with(".yml") {
            out.push(rel);
        }
    }
    Ok(())
}
