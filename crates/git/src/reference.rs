//! Which commit a GitRepository wants, with Flux's precedence (commit > name > semver > tag > branch,
//! default branch `master`) and revision format (`main@sha1:<hex>`, `v1.0@sha1:<hex>`, `sha1:<hex>`).
//! Semver ranges use the Masterminds syntax Flux accepts (`>=1.0.0 <2.0.0`, `1.2.x`, `~1.2`, `^1`,
//! `1.2 - 1.4`, `||`).

use driftless_api::source::GitRepositoryRef;

use crate::{Error, Result};

/// What to check out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// A commit, optionally on a branch to fetch.
    Commit {
        /// The full SHA-1.
        sha: String,
        /// The branch it is expected on.
        branch: Option<String>,
    },
    /// A full reference name (`refs/heads/main`, `refs/pull/1/head`).
    Name(String),
    /// The highest tag within a semver range.
    Semver(String),
    /// A tag.
    Tag(String),
    /// A branch.
    Branch(String),
}

/// A reference resolved to a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Flux's revision string.
    pub revision: String,
    /// The commit's SHA-1.
    pub commit: String,
    /// The full reference it came from (`refs/heads/main`), none for a bare commit.
    pub refname: Option<String>,
}

impl Reference {
    /// The reference a `spec.ref` asks for.
    pub fn from_spec(spec: Option<&GitRepositoryRef>) -> Self {
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        let Some(r) = spec else {
            return Self::Branch("master".into());
        };
        if let Some(sha) = non_empty(&r.commit) {
            return Self::Commit {
                sha,
                branch: non_empty(&r.branch),
            };
        }
        if let Some(name) = non_empty(&r.name) {
            return Self::Name(name);
        }
        if let Some(range) = non_empty(&r.semver) {
            return Self::Semver(range);
        }
        if let Some(tag) = non_empty(&r.tag) {
            return Self::Tag(tag);
        }
        Self::Branch(non_empty(&r.branch).unwrap_or_else(|| "master".into()))
    }

    /// The refspecs to fetch for this reference.
    pub fn refspecs(&self) -> Vec<String> {
        match self {
            Self::Branch(b) | Self::Commit { branch: Some(b), .. } => {
                vec![format!("+refs/heads/{b}:refs/heads/{b}")]
            }
            Self::Commit { branch: None, .. } => vec![
                "+refs/heads/*:refs/heads/*".into(),
                "+refs/tags/*:refs/tags/*".into(),
            ],
            Self::Tag(t) => vec![format!("+refs/tags/{t}:refs/tags/{t}")],
            Self::Semver(_) => vec!["+refs/tags/*:refs/tags/*".into()],
            Self::Name(n) => vec![format!("+{n}:{n}")],
        }
    }

    /// Resolves against a remote's advertised refs (`(name, oid)`, peeled tags as `name^{}`). `None` for
    /// a bare commit, which needs its objects to be checked.
    pub fn resolve(&self, heads: &[(String, String)]) -> Result<Option<Resolved>> {
        let lookup = |name: &str| -> Option<String> {
            let peeled = format!("{name}^{{}}");
            heads
                .iter()
                .find(|(n, _)| *n == peeled)
                .or_else(|| heads.iter().find(|(n, _)| n == name))
                .map(|(_, o)| o.clone())
        };
        let found = |label: &str, refname: String, commit: String| Resolved {
            revision: format!("{label}@sha1:{commit}"),
            commit,
            refname: Some(refname),
        };
        Ok(Some(match self {
            Self::Branch(b) => {
                let name = format!("refs/heads/{b}");
                let commit = lookup(&name).ok_or_else(|| {
                    Error::RefNotFound(format!(
                        "unable to resolve branch '{b}': couldn't find remote ref \"{name}\""
                    ))
                })?;
                found(b, name, commit)
            }
            Self::Tag(t) => {
                let name = format!("refs/tags/{t}");
                let commit = lookup(&name).ok_or_else(|| {
                    Error::RefNotFound(format!(
                        "unable to resolve tag '{t}': couldn't find remote ref \"{name}\""
                    ))
                })?;
                found(t, name, commit)
            }
            Self::Name(n) => {
                let commit = lookup(n).ok_or_else(|| {
                    Error::RefNotFound(format!(
                        "unable to resolve ref '{n}': couldn't find remote ref \"{n}\""
                    ))
                })?;
                found(n, n.clone(), commit)
            }
            Self::Semver(range) => {
                let tags = heads
                    .iter()
                    .filter_map(|(n, _)| n.strip_prefix("refs/tags/"))
                    .map(|t| t.trim_end_matches("^{}"));
                let tag = highest_matching(range, tags)?;
                let name = format!("refs/tags/{tag}");
                let commit = lookup(&name).expect("the tag was listed");
                found(&tag, name, commit)
            }
            Self::Commit { .. } => return Ok(None),
        }))
    }
}

/// The revision of a checked-out commit for a bare `Commit` reference.
pub fn commit_revision(branch: Option<&str>, commit: &str) -> String {
    match branch {
        Some(b) => format!("{b}@sha1:{commit}"),
        None => format!("sha1:{commit}"),
    }
}

/// The highest tag within a Masterminds-style range.
pub fn highest_matching<'a>(range: &str, tags: impl Iterator<Item = &'a str>) -> Result<String> {
    driftless_version::highest_matching(range, tags)
        .map_err(|e| Error::Invalid(e.to_string()))?
        .ok_or_else(|| Error::RefNotFound(format!("no match found for semver: {range}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads() -> Vec<(String, String)> {
        [
            ("refs/heads/main", "a".repeat(40)),
            ("refs/heads/dev", "b".repeat(40)),
            ("refs/tags/v1.0.0", "c".repeat(40)),
            ("refs/tags/v1.0.0^{}", "d".repeat(40)),
            ("refs/tags/v1.2.0", "e".repeat(40)),
            ("refs/tags/v2.0.0-rc.1", "f".repeat(40)),
            ("refs/tags/1.3", "1".repeat(40)),
            ("refs/pull/7/head", "2".repeat(40)),
        ]
        .into_iter()
        .map(|(n, o)| (n.to_string(), o))
        .collect()
    }

    fn spec(branch: &str, tag: &str, semver: &str, name: &str, commit: &str) -> GitRepositoryRef {
        let s = |v: &str| (!v.is_empty()).then(|| v.to_string());
        GitRepositoryRef {
            branch: s(branch),
            tag: s(tag),
            semver: s(semver),
            name: s(name),
            commit: s(commit),
        }
    }

    #[test]
    fn precedence_is_commit_name_semver_tag_branch() {
        let all = spec("main", "v1", "1.x", "refs/heads/dev", "abc");
        assert_eq!(
            Reference::from_spec(Some(&all)),
            Reference::Commit {
                sha: "abc".into(),
                branch: Some("main".into())
            }
        );
        assert_eq!(
            Reference::from_spec(Some(&spec("main", "v1", "1.x", "refs/heads/dev", ""))),
            Reference::Name("refs/heads/dev".into())
        );
        assert_eq!(
            Reference::from_spec(Some(&spec("main", "v1", "1.x", "", ""))),
            Reference::Semver("1.x".into())
        );
        assert_eq!(
            Reference::from_spec(Some(&spec("main", "v1", "", "", ""))),
            Reference::Tag("v1".into())
        );
        assert_eq!(
            Reference::from_spec(Some(&spec("main", "", "", "", ""))),
            Reference::Branch("main".into())
        );
        assert_eq!(Reference::from_spec(None), Reference::Branch("master".into()));
    }

    #[test]
    fn revisions_use_fluxs_format() {
        let r = Reference::Branch("main".into())
            .resolve(&heads())
            .unwrap()
            .unwrap();
        assert_eq!(r.revision, format!("main@sha1:{}", "a".repeat(40)));
        let r = Reference::Tag("v1.0.0".into())
            .resolve(&heads())
            .unwrap()
            .unwrap();
        assert_eq!(
            r.revision,
            format!("v1.0.0@sha1:{}", "d".repeat(40)),
            "annotated tags resolve to the peeled commit"
        );
        let r = Reference::Name("refs/pull/7/head".into())
            .resolve(&heads())
            .unwrap()
            .unwrap();
        assert_eq!(r.revision, format!("refs/pull/7/head@sha1:{}", "2".repeat(40)));
        assert_eq!(commit_revision(None, "abc"), "sha1:abc");
        assert_eq!(commit_revision(Some("main"), "abc"), "main@sha1:abc");
    }

    #[test]
    fn missing_refs_say_which() {
        let err = Reference::Branch("nope".into())
            .resolve(&heads())
            .unwrap_err()
            .to_string();
        assert!(err.contains("branch 'nope'"), "{err}");
        let err = Reference::Semver(">=5.0.0".into())
            .resolve(&heads())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "no match found for semver: >=5.0.0");
    }
}
