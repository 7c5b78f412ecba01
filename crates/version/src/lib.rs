//! Version ranges as Flux reads them: the Masterminds semver constraints (`>=1.0.0 <2.0.0`, `1.2.x`,
//! `~1.2`, `^1`, `1.2 - 1.4`, `!=1.3.0`, `||`) that GitRepository and OCIRepository `semver`, HelmChart
//! `version` and ImagePolicy `semver.range` take, over tags read leniently (`v1.2` is `1.2.0`).
//! Prereleases are in a range only when a comparator of the same `||` alternative names a prerelease — of
//! any version, as Masterminds v3 (`containsPre`) has it: `>=1.3.0-0` admits `2.0.0-alpha`.
#![warn(missing_docs)]

/// A range that does not parse; the message is Flux's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("semver parse error: improper constraint: {0}")]
pub struct Invalid(pub String);

/// The highest version within a Masterminds-style range, of `tags` read leniently ([`lenient_version`]);
/// `None` when none is in it.
pub fn highest_matching<'a>(
    range: &str,
    tags: impl Iterator<Item = &'a str>,
) -> Result<Option<String>, Invalid> {
    let constraint = Constraint::parse(range)?;
    Ok(constraint.highest(tags).map(|(_, t)| t.to_string()))
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
#[derive(Clone, Debug)]
pub struct Constraint {
    /// Each alternative: its comparators, the versions it excludes, whether it names a prerelease.
    alternatives: Vec<(semver::VersionReq, Vec<semver::Version>, bool)>,
}

impl Constraint {
    /// Parses a range (`>=1.0.0 <2.0.0`, `1.2.x`, `~1.2`, `^1`, `1.2 - 1.4`, `!=1.3.0`, `||`).
    pub fn parse(range: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid(range.to_string());
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
            let has_pre = req.comparators.iter().any(|c| !c.pre.is_empty());
            alternatives.push((req, excluded, has_pre));
        }
        Ok(Self { alternatives })
    }

    /// The highest of `tags` (read with [`lenient_version`]) in the range, with its version.
    pub fn highest<'a>(&self, tags: impl Iterator<Item = &'a str>) -> Option<(semver::Version, &'a str)> {
        let mut best: Option<(semver::Version, &str)> = None;
        for tag in tags {
            let Some(version) = lenient_version(tag) else {
                continue;
            };
            if self.matches(&version) && best.as_ref().is_none_or(|(v, _)| version > *v) {
                best = Some((version, tag));
            }
        }
        best
    }

    /// Whether `v` is in the range.
    pub fn matches(&self, v: &semver::Version) -> bool {
        self.alternatives.iter().any(|(req, excluded, has_pre)| {
            if excluded.contains(v) {
                return false;
            }
            if v.pre.is_empty() || !has_pre {
                return req.matches(v);
            }
            // NB: the semver crate admits a prerelease only when a comparator names one of the same
            // major.minor.patch; `>=<that version>-0`, which the prerelease always meets, opens it as
            // Masterminds does
            let mut open = req.clone();
            open.comparators.push(semver::Comparator {
                op: semver::Op::GreaterEq,
                major: v.major,
                minor: Some(v.minor),
                patch: Some(v.patch),
                pre: semver::Prerelease::new("0").expect("a prerelease"),
            });
            open.matches(v)
        })
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
        let pick = |range: &str| highest_matching(range, tags.iter().copied()).unwrap().unwrap();
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
        // Masterminds: a prerelease comparator admits prereleases of any version in the range
        assert_eq!(pick(">=1.3.0-0 <2.1.0"), "v2.0.0-rc.1");
        assert_eq!(pick(">=1.3.0-0 <2.0.0 || >=3.0.0"), "v3.0.0");
        assert_eq!(
            pick(">=1.0.0 <2.1.0"),
            "1.3",
            "no prerelease comparator, no prerelease"
        );
        assert_eq!(pick(">=1.0.0 <2.0.0 !=1.3.0"), "v1.2.0");
        assert_eq!(highest_matching(">=5.0.0", tags.iter().copied()), Ok(None));
        assert_eq!(
            highest_matching("not a range", tags.iter().copied())
                .unwrap_err()
                .to_string(),
            "semver parse error: improper constraint: not a range"
        );
    }
}
