//! Which files go into an artifact: Flux's default exclusions, `.sourceignore` files (gitignore syntax,
//! scoped to their directory) and `spec.ignore`, evaluated in that order so a later pattern (`!*.png`)
//! overrules an earlier one.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Version-control files, never in an artifact unless re-included.
pub const EXCLUDE_VCS: &[&str] = &[".git/", ".gitignore", ".gitmodules", ".gitattributes"];
/// Binary and archive extensions.
pub const EXCLUDE_EXT: &[&str] = &[
    "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
];
/// CI configuration.
pub const EXCLUDE_CI: &[&str] = &[
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
];
/// Tool configuration that is not for the cluster.
pub const EXCLUDE_EXTRA: &[&str] = &["**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml"];

/// The file name of in-repository ignore files.
pub const SOURCEIGNORE: &str = ".sourceignore";

/// A pattern that does not parse as gitignore syntax.
#[derive(Debug, thiserror::Error)]
#[error("invalid ignore pattern in {origin}: {source}")]
pub struct PatternError {
    origin: String,
    #[source]
    source: ignore::Error,
}

/// An ordered list of gitignore matchers; the last one that matches a path decides.
#[derive(Default)]
pub struct Filter {
    layers: Vec<Gitignore>,
}

fn layer(
    root: &Path,
    lines: impl IntoIterator<Item = String>,
    origin: &str,
) -> Result<Gitignore, PatternError> {
    let mut builder = GitignoreBuilder::new(root);
    for line in lines {
        builder.add_line(None, &line).map_err(|source| PatternError {
            origin: origin.to_string(),
            source,
        })?;
    }
    builder.build().map_err(|source| PatternError {
        origin: origin.to_string(),
        source,
    })
}

impl Filter {
    /// Flux's filter for a checkout in `root`: the default exclusions, every `.sourceignore` under `root`
    /// (shallow ones first) and `spec_ignore`.
    pub fn for_source(root: &Path, spec_ignore: Option<&str>) -> Result<Self, PatternError> {
        let defaults = [EXCLUDE_VCS, EXCLUDE_EXT, EXCLUDE_CI, EXCLUDE_EXTRA].concat();
        let mut filter = Self {
            layers: vec![layer(
                root,
                defaults.iter().map(|s| s.to_string()),
                "default exclusions",
            )?],
        };
        let mut ignore_files = Vec::new();
        find_sourceignore(root, &mut ignore_files);
        ignore_files.sort_by_key(|p| (p.components().count(), p.clone()));
        for file in ignore_files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let dir = file.parent().unwrap_or(root);
            filter.layers.push(layer(
                dir,
                text.lines().map(str::to_string),
                &file.display().to_string(),
            )?);
        }
        if let Some(spec) = spec_ignore {
            filter
                .layers
                .push(layer(root, spec.lines().map(str::to_string), "spec.ignore")?);
        }
        Ok(filter)
    }

    /// A filter of just `patterns` relative to `root`.
    pub fn from_patterns(root: &Path, patterns: &str) -> Result<Self, PatternError> {
        Ok(Self {
            layers: vec![layer(root, patterns.lines().map(str::to_string), "patterns")?],
        })
    }

    /// Whether `path` (absolute, under the root) is excluded.
    pub fn is_excluded(&self, path: &Path, is_dir: bool) -> bool {
        let mut excluded = false;
        for layer in &self.layers {
            if !path.starts_with(layer.path()) {
                continue;
            }
            let m = layer.matched_path_or_any_parents(path, is_dir);
            if m.is_ignore() {
                excluded = true;
            } else if m.is_whitelist() {
                excluded = false;
            }
        }
        excluded
    }
}

fn find_sourceignore(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() && entry.file_name() != ".git" {
            find_sourceignore(&path, out);
        } else if kind.is_file() && entry.file_name() == SOURCEIGNORE {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        dir
    }

    #[test]
    fn defaults_exclude_vcs_ci_and_binaries() {
        let dir = tree(&[]);
        let f = Filter::for_source(dir.path(), None).unwrap();
        let root = dir.path();
        for excluded in [
            ".git/config",
            ".github/workflows/ci.yaml",
            "logo.png",
            "deploy/.sops.yaml",
            ".gitignore",
        ] {
            assert!(f.is_excluded(&root.join(excluded), false), "{excluded}");
        }
        for kept in ["deploy/app.yaml", "kustomization.yaml", "README.md"] {
            assert!(!f.is_excluded(&root.join(kept), false), "{kept}");
        }
    }

    #[test]
    fn sourceignore_files_are_scoped_to_their_directory() {
        let dir = tree(&[
            (".sourceignore", "*.md\n"),
            ("apps/.sourceignore", "secret.yaml\n"),
        ]);
        let f = Filter::for_source(dir.path(), None).unwrap();
        let root = dir.path();
        assert!(f.is_excluded(&root.join("docs/README.md"), false));
        assert!(f.is_excluded(&root.join("apps/secret.yaml"), false));
        assert!(
            !f.is_excluded(&root.join("infra/secret.yaml"), false),
            "apps/.sourceignore applies under apps/ only"
        );
    }

    #[test]
    fn spec_ignore_overrules_the_defaults() {
        let dir = tree(&[]);
        let f = Filter::for_source(dir.path(), Some("/*\n!/deploy\n!*.png\n")).unwrap();
        let root = dir.path();
        assert!(f.is_excluded(&root.join("src/main.rs"), false));
        assert!(!f.is_excluded(&root.join("deploy/app.yaml"), false));
        assert!(
            !f.is_excluded(&root.join("deploy/logo.png"), false),
            "a later negation re-includes"
        );
    }
}
