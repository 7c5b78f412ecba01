//! Picking the latest tag, as Flux's image-reflector-controller does (`internal/policy`): a semver range
//! (the highest version in it, of tags that are strict semver with an optional `v`), alphabetical or
//! numerical order (`asc`, the default, picks the last in ascending order — the highest), after an
//! optional `filterTags` regular expression whose `extract` template (`$1`, `$name`, `${name}`) makes the
//! value ordered while the original tag is what is picked.

use std::{cmp::Ordering, collections::BTreeMap};

use driftless_api::image::{ImagePolicyChoice, TagFilter};
use driftless_version::Constraint;

/// A spec that cannot work: only a change helps (Flux's `InvalidPolicy`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// No tag fits (Flux's words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoLatest {
    /// Nothing left after the filter.
    #[error("version list argument cannot be empty")]
    Empty,
    /// No tag is a version within the range.
    #[error("unable to determine latest version from provided list")]
    NoneInRange,
    /// A tag that numerical order cannot read as a number.
    #[error("failed to parse invalid numeric value '{0}'")]
    NotNumeric(String),
}

/// An ordering policy, checked.
#[derive(Debug, Clone)]
pub enum Policy {
    /// `semver.range`.
    SemVer(Constraint),
    /// `alphabetical.order`: `desc` picks the lowest.
    Alphabetical {
        /// Descending.
        desc: bool,
    },
    /// `numerical.order`: `desc` picks the lowest.
    Numerical {
        /// Descending.
        desc: bool,
    },
}

fn order(order: Option<&str>) -> Result<bool, Invalid> {
    match order.map(str::to_ascii_uppercase).as_deref() {
        None | Some("") | Some("ASC") => Ok(false),
        Some("DESC") => Ok(true),
        Some(_) => Err(Invalid(format!(
            "invalid order argument provided: '{}', must be one of: ASC, DESC",
            order.unwrap_or_default().to_ascii_uppercase()
        ))),
    }
}

impl Policy {
    /// The policy `choice` names; the first of semver, alphabetical, numerical that is set.
    pub fn from_spec(choice: &ImagePolicyChoice) -> Result<Self, Invalid> {
        let invalid = |e: String| Invalid(format!("invalid policy: {e}"));
        if let Some(s) = &choice.semver {
            return Constraint::parse(&s.range)
                .map(Policy::SemVer)
                .map_err(|e| invalid(e.to_string()));
        }
        if let Some(a) = &choice.alphabetical {
            return Ok(Policy::Alphabetical {
                desc: order(a.order.as_deref()).map_err(|e| invalid(e.0))?,
            });
        }
        if let Some(n) = &choice.numerical {
            return Ok(Policy::Numerical {
                desc: order(n.order.as_deref()).map_err(|e| invalid(e.0))?,
            });
        }
        Err(invalid("given ImagePolicyChoice object is invalid".into()))
    }

    /// The latest of `tags`.
    pub fn latest<'a>(&self, tags: &[&'a str]) -> Result<&'a str, NoLatest> {
        if tags.is_empty() {
            return Err(NoLatest::Empty);
        }
        match self {
            Policy::SemVer(range) => {
                let mut best: Option<(semver::Version, &str)> = None;
                for tag in tags {
                    let Some(v) = strict_version(tag) else {
                        continue;
                    };
                    if range.matches(&v)
                        && best
                            .as_ref()
                            .is_none_or(|(b, _)| v.cmp_precedence(b) == Ordering::Greater)
                    {
                        best = Some((v, tag));
                    }
                }
                best.map(|(_, t)| t).ok_or(NoLatest::NoneInRange)
            }
            Policy::Alphabetical { desc } => {
                let pick = if *desc {
                    tags.iter().min()
                } else {
                    tags.iter().max()
                };
                Ok(pick.expect("not empty"))
            }
            Policy::Numerical { desc } => {
                let mut best: Option<(f64, &str)> = None;
                for tag in tags {
                    let v: f64 = go_float(tag).ok_or_else(|| NoLatest::NotNumeric(tag.to_string()))?;
                    // NB: a later equal value wins, as Flux's loop does
                    let better = match best {
                        None => true,
                        Some((b, _)) => {
                            if *desc {
                                v <= b
                            } else {
                                v >= b
                            }
                        }
                    };
                    if better {
                        best = Some((v, tag));
                    }
                }
                Ok(best.expect("not empty").1)
            }
        }
    }
}

/// A tag as fluxcd/pkg's `version.ParseVersion` reads it: strict semver, with an optional leading `v`.
pub fn strict_version(tag: &str) -> Option<semver::Version> {
    semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

/// Go's `strconv.ParseFloat(s, 64)` for the forms tags take (digits, a point, an exponent, a sign,
/// underscores between digits are not allowed in tags' numbers).
fn go_float(s: &str) -> Option<f64> {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    if t.is_empty()
        || t.eq_ignore_ascii_case("inf")
        || t.eq_ignore_ascii_case("infinity")
        || t.eq_ignore_ascii_case("nan")
    {
        return s.parse().ok();
    }
    if !t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return None;
    }
    s.parse().ok()
}

/// `filterTags`, compiled.
#[derive(Debug, Clone)]
pub struct Filter {
    pattern: regex::Regex,
    extract: String,
}

impl Filter {
    /// Compiles `spec` (Flux's message on a bad pattern).
    pub fn new(spec: &TagFilter) -> Result<Self, Invalid> {
        let pattern = spec.pattern.clone().unwrap_or_default();
        let re = regex::Regex::new(&pattern).map_err(|e| {
            Invalid(format!(
                "failed to filter tags: invalid regular expression pattern '{pattern}': {e}"
            ))
        })?;
        Ok(Self {
            pattern: re,
            extract: spec.extract.clone().unwrap_or_default(),
        })
    }

    /// The tags that match, each under the value it is ordered by (the `extract` expansion, or the
    /// tag); the last tag of an expansion wins, as in Flux's map.
    pub fn apply<'a>(&self, tags: &[&'a str]) -> BTreeMap<String, &'a str> {
        let mut out = BTreeMap::new();
        for tag in tags {
            let Some(caps) = self.pattern.captures(tag) else {
                continue;
            };
            let key = if self.extract.is_empty() {
                tag.to_string()
            } else {
                let mut s = String::new();
                caps.expand(&self.extract, &mut s);
                s
            };
            out.insert(key, *tag);
        }
        out
    }
}

/// The latest tag of `tags` by `policy` after `filter`.
pub fn latest<'a>(policy: &Policy, filter: Option<&Filter>, tags: &[&'a str]) -> Result<&'a str, NoLatest> {
    match filter {
        None => policy.latest(tags),
        Some(f) => {
            let filtered = f.apply(tags);
            let keys: Vec<&str> = filtered.keys().map(String::as_str).collect();
            let key = policy.latest(&keys)?;
            Ok(filtered[key])
        }
    }
}

#[cfg(test)]
mod tests {
    use driftless_api::image::{OrderPolicy, SemVerPolicy};

    use super::*;

    fn semver(range: &str) -> Policy {
        Policy::from_spec(&ImagePolicyChoice {
            semver: Some(SemVerPolicy { range: range.into() }),
            ..Default::default()
        })
        .unwrap()
    }

    fn alpha(order: Option<&str>) -> Policy {
        Policy::from_spec(&ImagePolicyChoice {
            alphabetical: Some(OrderPolicy {
                order: order.map(String::from),
            }),
            ..Default::default()
        })
        .unwrap()
    }

    fn numeric(order: Option<&str>) -> Policy {
        Policy::from_spec(&ImagePolicyChoice {
            numerical: Some(OrderPolicy {
                order: order.map(String::from),
            }),
            ..Default::default()
        })
        .unwrap()
    }

    fn filter(pattern: &str, extract: &str) -> Filter {
        Filter::new(&TagFilter {
            pattern: Some(pattern.into()),
            extract: Some(extract.into()),
        })
        .unwrap()
    }

    /// The tables of Flux's policy tests: what each policy picks.
    #[test]
    fn each_policy_picks_what_flux_picks() {
        let versions = [
            "1.0.0",
            "1.0.1",
            "1.0.2",
            "1.1.0-alpha",
            "v1.2.0",
            "1.3.0",
            "2.0.0-rc.1",
            "latest",
        ];
        for (range, want) in [
            ("1.0.x", Ok("1.0.2")),
            (">=1.0.0 <1.2.0", Ok("1.0.2")),
            ("*", Ok("1.3.0")),
            (">=1.0.0", Ok("1.3.0")),
            (">=1.1.0-0 <1.2.0", Ok("1.1.0-alpha")),
            (">=1.2.0 <1.3.0", Ok("v1.2.0")),
            ("^1.0", Ok("1.3.0")),
            (">=2.0.0-0", Ok("2.0.0-rc.1")),
            (">=3.0.0", Err(NoLatest::NoneInRange)),
        ] {
            assert_eq!(semver(range).latest(&versions), want, "{range}");
        }
        // strict semver: `1.2` and `v1` are not versions
        assert_eq!(semver("*").latest(&["1.2", "v1", "1.0.0"]), Ok("1.0.0"));
        // the first of equal versions wins
        assert_eq!(semver("*").latest(&["v1.0.0", "1.0.0"]), Ok("v1.0.0"));

        let words = ["aaa", "bbb", "ccc", "xyz", "abc"];
        assert_eq!(alpha(None).latest(&words), Ok("xyz"));
        assert_eq!(alpha(Some("asc")).latest(&words), Ok("xyz"));
        assert_eq!(alpha(Some("desc")).latest(&words), Ok("aaa"));
        let stamps = [
            "RELEASE.2017-02-07T23-23-24Z",
            "RELEASE.2021-03-07T23-23-24Z",
            "RELEASE.2020-12-07T23-23-24Z",
        ];
        assert_eq!(alpha(None).latest(&stamps), Ok("RELEASE.2021-03-07T23-23-24Z"));

        let numbers = ["-62", "-88", "73", "72", "15", "16", "15.5", "1e2"];
        assert_eq!(numeric(None).latest(&numbers), Ok("1e2"));
        assert_eq!(numeric(Some("desc")).latest(&numbers), Ok("-88"));
        assert_eq!(
            numeric(None).latest(&["1", "a"]),
            Err(NoLatest::NotNumeric("a".into()))
        );
        assert_eq!(alpha(None).latest(&[]), Err(NoLatest::Empty));
    }

    #[test]
    fn a_filter_orders_by_what_it_extracts_and_picks_the_tag() {
        let tags = [
            "main-abc1234-1612345678",
            "main-def5678-1612345999",
            "dev-fff0000-1700000000",
            "1.0.0",
        ];
        let f = filter(r"^main-[a-f0-9]+-(?P<ts>[0-9]+)", "$ts");
        assert_eq!(
            latest(&numeric(None), Some(&f), &tags),
            Ok("main-def5678-1612345999")
        );
        let f = filter(r"^v?(?P<version>[0-9]+\.[0-9]+\.[0-9]+)$", "${version}");
        assert_eq!(
            latest(&semver(">=1.0.0"), Some(&f), &["v1.0.1", "1.0.0", "x"]),
            Ok("v1.0.1")
        );
        // no extract: the matching tags themselves
        let f = filter(r"^1\.", "");
        assert_eq!(latest(&semver("*"), Some(&f), &["1.0.0", "2.0.0"]), Ok("1.0.0"));
        // nothing matches
        let f = filter(r"^nope", "");
        assert_eq!(latest(&semver("*"), Some(&f), &["1.0.0"]), Err(NoLatest::Empty));
    }

    #[test]
    fn bad_specs_are_refused_with_fluxs_words() {
        let err = Policy::from_spec(&ImagePolicyChoice {
            semver: Some(SemVerPolicy {
                range: "not a range".into(),
            }),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.0.starts_with("invalid policy: "), "{err}");
        let err = Policy::from_spec(&ImagePolicyChoice {
            alphabetical: Some(OrderPolicy {
                order: Some("sideways".into()),
            }),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.0.contains("must be one of: ASC, DESC"), "{err}");
        assert!(Policy::from_spec(&ImagePolicyChoice::default()).is_err());
        let err = Filter::new(&TagFilter {
            pattern: Some("([".into()),
            extract: None,
        })
        .unwrap_err();
        assert!(err.0.contains("invalid regular expression pattern '(['"), "{err}");
    }
}
