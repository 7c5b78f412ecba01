//! The words a Flux user types for a kind — `source git`, `kustomization`, `ks`, `image repository`,
//! `alert-provider`, `helmrelease/podinfo` — resolved through the shared kind registry, and the names
//! `flux` prints for each kind in its messages.

use driftless_api::kinds::{self, Kind};

/// Flux's sub-command words after `source`/`sources` and `image`/`images`.
const TWO_WORDS: [(&str, &str, &str); 9] = [
    ("source", "git", "GitRepository"),
    ("source", "oci", "OCIRepository"),
    ("source", "helm", "HelmRepository"),
    ("source", "chart", "HelmChart"),
    ("source", "bucket", "Bucket"),
    ("source", "external", "ExternalArtifact"),
    ("image", "repository", "ImageRepository"),
    ("image", "policy", "ImagePolicy"),
    ("image", "update", "ImageUpdateAutomation"),
];

/// What `words` name: a kind and the words after it (the object names). `kustomization/apps` names the
/// kind and the object at once.
pub fn resolve(words: &[String]) -> Result<(&'static Kind, Vec<String>), String> {
    let Some(first) = words.first() else {
        return Err(format!("a kind is required: {}", known()));
    };
    if let Some((kind, name)) = first.split_once('/') {
        let k = single(kind)?;
        let mut rest = vec![name.to_string()];
        rest.extend(words[1..].iter().cloned());
        return Ok((k, rest));
    }
    let group = first.to_lowercase();
    let group = group.trim_end_matches('s');
    if group == "source" || group == "image" {
        let Some(second) = words.get(1) else {
            return Err(format!("{first} needs a kind after it: {}", sub_words(group)));
        };
        let second = second.to_lowercase();
        let second = match second.as_str() {
            "external-artifact" => "external",
            "repositories" => "repository",
            "policies" => "policy",
            s => s.trim_end_matches('s'),
        };
        return TWO_WORDS
            .iter()
            .find(|(g, w, _)| *g == group && *w == second)
            .map(|(_, _, kind)| (registered(kind), words[2..].to_vec()))
            .ok_or_else(|| format!("unknown {group} kind '{}': {}", words[1], sub_words(group)));
    }
    Ok((single(first)?, words[1..].to_vec()))
}

fn registered(kind: &str) -> &'static Kind {
    kinds::get(kind).expect("a registered kind")
}

fn single(word: &str) -> Result<&'static Kind, String> {
    let lower = word.to_lowercase();
    let word_for_kind = match lower.as_str() {
        "alert-provider" | "alert-providers" | "alertprovider" | "alertproviders" => "Provider",
        "hr" | "hrs" => "HelmRelease",
        _ => word,
    };
    kinds::find(word_for_kind)
        .or_else(|| kinds::find(lower.trim_end_matches('s')))
        .ok_or_else(|| format!("unknown kind '{word}': {}", known()))
}

fn sub_words(group: &str) -> String {
    let words: Vec<&str> = TWO_WORDS
        .iter()
        .filter(|(g, _, _)| *g == group)
        .map(|(_, w, _)| *w)
        .collect();
    format!("one of {}", words.join(", "))
}

/// The kinds and the words that name them, for an error message.
pub fn known() -> String {
    let mut names: Vec<String> = TWO_WORDS.iter().map(|(g, w, _)| format!("{g} {w}")).collect();
    names.extend(
        [
            "kustomization (ks)",
            "helmrelease (hr)",
            "receiver",
            "alert",
            "alert-provider",
            "artifactgenerator",
        ]
        .map(String::from),
    );
    format!("the known kinds are {}", names.join(", "))
}

/// How `flux` names `kind` in its action lines (`resuming source git fleet …`).
pub fn human(kind: &str) -> &'static str {
    match kind {
        "GitRepository" => "source git",
        "OCIRepository" => "source oci",
        "HelmRepository" => "source helm",
        "HelmChart" => "source chart",
        "Bucket" => "source bucket",
        "ExternalArtifact" => "source external-artifact",
        "Kustomization" => "kustomization",
        "HelmRelease" => "helmrelease",
        "Receiver" => "receiver",
        "Alert" => "alert",
        "Provider" => "alert provider",
        "ImageRepository" => "image repository",
        "ImagePolicy" => "image policy",
        "ImageUpdateAutomation" => "image update automation",
        _ => "artifactgenerator",
    }
}

/// Kinds that have no reconciler of their own (they carry no status): Flux's "static" objects.
pub fn is_static(kind: &str) -> bool {
    matches!(kind, "Alert" | "Provider")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn kind_of(s: &str) -> (String, Vec<String>) {
        let (k, rest) = resolve(&words(s)).unwrap();
        (k.kind.clone(), rest)
    }

    #[test]
    fn flux_words_name_their_kinds() {
        assert_eq!(kind_of("source git fleet").0, "GitRepository");
        assert_eq!(kind_of("sources helm").0, "HelmRepository");
        assert_eq!(kind_of("source external-artifact x").0, "ExternalArtifact");
        assert_eq!(kind_of("images repository").0, "ImageRepository");
        assert_eq!(kind_of("image update auto").0, "ImageUpdateAutomation");
        assert_eq!(kind_of("image policies").0, "ImagePolicy");
        assert_eq!(kind_of("ks apps"), ("Kustomization".into(), vec!["apps".into()]));
        assert_eq!(kind_of("kustomizations").0, "Kustomization");
        assert_eq!(kind_of("hr podinfo").0, "HelmRelease");
        assert_eq!(kind_of("helmreleases").0, "HelmRelease");
        assert_eq!(kind_of("alert-providers").0, "Provider");
        assert_eq!(kind_of("alerts").0, "Alert");
        assert_eq!(kind_of("receivers").0, "Receiver");
        assert_eq!(kind_of("GitRepository x").0, "GitRepository");
        assert_eq!(
            kind_of("kustomization/apps other"),
            ("Kustomization".into(), vec!["apps".into(), "other".into()])
        );
    }

    #[test]
    fn an_unknown_kind_lists_the_known_ones() {
        let err = resolve(&words("deployment x")).unwrap_err();
        assert!(
            err.starts_with("unknown kind 'deployment': the known kinds are source git"),
            "{err}"
        );
        let err = resolve(&words("source svn")).unwrap_err();
        assert_eq!(
            err,
            "unknown source kind 'svn': one of git, oci, helm, chart, bucket, external"
        );
        assert!(
            resolve(&words("source"))
                .unwrap_err()
                .starts_with("source needs a kind")
        );
        assert!(resolve(&[]).unwrap_err().starts_with("a kind is required"));
    }
}
