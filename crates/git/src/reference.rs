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
    let constraint = Constraint::parse(range)?;
    let mut best: Option<(semver::Version, &str)> = None;
    for tag in tags {
        let Some(version) = lenient_version(tag) else {
            continue;
        };
        if constraint.matches(&version) && best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, tag));
        }
    }
    best.map(|(_, t)| t.to_string())
        .ok_or_else(|| Error::RefNotFound(format!("no match found for semver: {range}")))
}

/// `v1.2`, `1.2.3-rc.1` → a semver version (missing parts are zero).
pub fn lenient_version(tag: &str) -> Option<semver::Version> {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    let (core, rest) = match t.find(['-', '+']) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let mut parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    while parts.len() < 3 {
        parts.push("0");
    }
    semver::Version::parse(&format!("{}{rest}", parts.join("."))).ok()
}

/// A parsed range: alternatives (`||`) of conjunctions.
struct Constraint {
    alternatives: Vec<(semver::VersionReq, Vec<semver::Version>)>,
}

impl Constraint {
    fn parse(range: &str) -> Result<Self> {
        let invalid = || Error::Invalid(format!("semver parse error: improper constraint: {range}"));
        let mut alternatives = Vec::new();
        for alt in range.split("||") {
            let mut comparators = Vec::new();
            let mut excluded = Vec::new();
            let tokens = tokenize(alt);
            let mut i = 0;
            while i < tokens.len() {
                // hyphen range: a - b
                if i + 2 < tokens.len() && tokens[i + 1] == "-" {
                    comparators.push(format!(">={}", pad(&tokens[i])));
                    comparators.push(format!("<={}", pad(&tokens[i + 2])));
                    i += 3;
                    continue;
                }
                let token = &tokens[i];
                if let Some(v) = token.strip_prefix("!=") {
                    excluded.push(lenient_version(v).ok_or_else(invalid)?);
                } else if token.starts_with(|c: char| c.is_ascii_digit() || c == 'v') {
                    let bare = token.strip_prefix('v').unwrap_or(token);
                    // Masterminds: a bare version is exact unless it has wildcards
                    if bare.contains(['x', 'X', '*']) || bare.split('.').count() < 3 {
                        comparators.push(bare.replace(['X', 'x'], "*"));
                    } else {
                        comparators.push(format!("={bare}"));
                    }
                } else if token == "*" || token == "x" || token == "X" {
                    comparators.push("*".into());
                } else {
                    let op_len = token
                        .find(|c: char| c.is_ascii_digit() || c == 'v' || c == '*')
                        .unwrap_or(token.len());
                    let (op, version) = token.split_at(op_len);
                    let version = version.strip_prefix('v').unwrap_or(version);
                    comparators.push(format!("{op}{}", version.replace(['X', 'x'], "*")));
                }
                i += 1;
            }
            let req = if comparators.is_empty() {
                semver::VersionReq::STAR
            } else {
                semver::VersionReq::parse(&comparators.join(", ")).map_err(|_| invalid())?
            };
            alternatives.push((req, excluded));
        }
        Ok(Self { alternatives })
    }

    fn matches(&self, v: &semver::Version) -> bool {
        self.alternatives
            .iter()
            .any(|(req, excluded)| req.matches(v) && !excluded.contains(v))
    }
}

fn pad(v: &str) -> String {
    lenient_version(v)
        .map(|v| v.to_string())
        .unwrap_or_else(|| v.to_string())
}

/// Splits a conjunction on commas and spaces, keeping operators attached to their version.
fn tokenize(s: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut pending_op = String::new();
    for raw in s.split([',', ' ']).map(str::trim).filter(|t| !t.is_empty()) {
        if raw.chars().all(|c| "<>=!~^".contains(c)) {
            pending_op.push_str(raw);
            continue;
        }
        tokens.push(format!("{pending_op}{raw}"));
        pending_op.clear();
    }
    tokens
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

    #[test]
    fn semver_ranges_follow_masterminds() {
        let tags = [
            "v1.0.0",
            "v1.2.0",
            "1.3",
            "v2.0.0-rc.1",
            "v2.1.0",
            "latest",
            "v3.0.0",
        ];
        let pick = |range: &str| highest_matching(range, tags.iter().copied()).unwrap();
        assert_eq!(pick(">=1.0.0 <2.0.0"), "1.3");
        assert_eq!(pick(">= 1.0.0, < 2.0.0"), "1.3");
        assert_eq!(pick("1.2.x"), "v1.2.0");
        assert_eq!(pick("~1.2"), "v1.2.0");
        assert_eq!(pick("^1"), "1.3");
        assert_eq!(pick("1.0 - 1.2"), "v1.2.0");
        assert_eq!(pick("1.0.0"), "v1.0.0", "a bare version is exact");
        assert_eq!(pick("<2.0.0 || >=3.0.0"), "v3.0.0");
        assert_eq!(
            pick("*"),
            "v3.0.0",
            "prereleases are not picked without a prerelease constraint"
        );
        assert_eq!(pick(">=2.0.0-rc.0 <2.1.0"), "v2.0.0-rc.1");
        assert_eq!(pick(">=1.0.0 <2.0.0 !=1.3.0"), "v1.2.0");
        assert!(matches!(
            highest_matching("not a range", tags.iter().copied()),
            Err(Error::Invalid(_))
        ));
    }
}
