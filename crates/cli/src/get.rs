//! `driftless get`: the tables of `flux get` — one row per object with its revision, suspension, Ready
//! status and message (hexadecimal digests cut to 8 characters, as flux does), and AGE — for one kind,
//! the sources, the image kinds or everything; `-A`, `--status-selector`, `-l`, `--watch`, `-o json|yaml`.

use std::time::Duration;

use driftless_api::kinds::{self, Kind};
use futures::{StreamExt, TryStreamExt};
use kube::api::{DynamicObject, ListParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

use crate::{
    cluster::{Cluster, explain},
    objects::{at, condition, conditions},
    table::{age, render, truncate_hex},
};

/// What `get` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// The table.
    Table,
    /// The objects as JSON (a `List` unless one was named).
    Json,
    /// The objects as YAML (a `List` unless one was named).
    Yaml,
}

/// The options of `get`.
pub struct Options {
    /// Every namespace.
    pub all_namespaces: bool,
    /// No header row.
    pub no_header: bool,
    /// `type=status` or `type!=status`.
    pub status_selector: Option<String>,
    /// A label selector.
    pub labels: Option<String>,
    /// Keep printing changes.
    pub watch: bool,
    /// The format.
    pub output: Output,
}

/// Flux's order of `get all`: the sources, the image kinds, then the rest.
const ALL: [&str; 13] = [
    "OCIRepository",
    "Bucket",
    "GitRepository",
    "HelmRepository",
    "HelmChart",
    "ImageRepository",
    "ImagePolicy",
    "ImageUpdateAutomation",
    "HelmRelease",
    "Kustomization",
    "Receiver",
    "Provider",
    "Alert",
];

/// The kinds `words` ask for (`all`, `sources all`, `images all` or one kind) and the object name, if any.
pub fn what(words: &[String]) -> Result<(Vec<&'static Kind>, Option<String>, bool), String> {
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let group = |range: std::ops::Range<usize>| ALL[range].iter().map(|k| registered(k)).collect::<Vec<_>>();
    match lower.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["all", rest @ ..] => Ok((group(0..ALL.len()), rest.first().map(|s| s.to_string()), true)),
        ["source" | "sources", "all", rest @ ..] => {
            Ok((group(0..5), rest.first().map(|s| s.to_string()), true))
        }
        ["image" | "images", "all", rest @ ..] => {
            Ok((group(5..8), rest.first().map(|s| s.to_string()), true))
        }
        _ => {
            let (kind, rest) = crate::kind::resolve(words)?;
            if rest.len() > 1 {
                return Err(format!("expected at most one name, got {}", rest.join(" ")));
            }
            Ok((vec![kind], rest.into_iter().next(), false))
        }
    }
}

fn registered(kind: &str) -> &'static Kind {
    kinds::get(kind).expect("a registered kind")
}

/// `get`: prints the table (or objects) of `kinds`; with `all`, kinds without objects or without a CRD are
/// skipped and each row's name says its kind.
pub async fn run(
    cluster: &Cluster,
    kinds: &[&'static Kind],
    name: Option<&str>,
    all: bool,
    opts: &Options,
    timeout: Duration,
) -> anyhow::Result<()> {
    let namespace = (!opts.all_namespaces).then_some(cluster.namespace.as_str());
    let where_ = match namespace {
        Some(ns) => format!("{ns:?} namespace"),
        None => "any namespace".to_string(),
    };
    let selector = opts.status_selector.as_deref().map(parse_selector).transpose()?;
    let mut params = ListParams::default();
    if let Some(name) = name {
        params = params.fields(&format!("metadata.name={name}"));
    }
    if let Some(labels) = &opts.labels {
        params = params.labels(labels);
    }
    if opts.watch {
        anyhow::ensure!(kinds.len() == 1, "--watch needs a single kind, got all");
        return watch(cluster, kinds[0], namespace, &params, opts, &selector, timeout).await;
    }
    // the kinds are listed at once: `get all` is as slow as its slowest list, not their sum
    let lists = futures::future::join_all(kinds.iter().map(|kind| {
        let api = cluster.api(kind, namespace);
        let params = params.clone();
        async move { (*kind, api.list(&params).await) }
    }))
    .await;
    let mut listed = Vec::new();
    for (kind, list) in lists {
        let list = match list {
            Ok(list) => list,
            Err(err) if all && crate::cluster::not_found(&err) => continue,
            Err(err) => return Err(explain(err, kind)),
        };
        let objects: Vec<Value> = list
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).expect("an object serializes"))
            .collect();
        if objects.is_empty() && !all {
            anyhow::bail!(match name {
                Some(name) => format!("{} object '{name}' not found in {where_}", kind.kind),
                None => format!("no {} objects found in {where_}", kind.kind),
            });
        }
        listed.push((kind, objects));
    }
    match opts.output {
        Output::Table => {
            for (kind, objects) in &listed {
                let rows: Vec<Vec<String>> = objects
                    .iter()
                    .filter(|o| selector.as_ref().is_none_or(|s| s.matches(o)))
                    .map(|o| row(kind, o, opts.all_namespaces, all))
                    .collect();
                if all && rows.is_empty() {
                    continue;
                }
                let header = if opts.no_header {
                    Vec::new()
                } else {
                    headers(kind, opts.all_namespaces)
                };
                print!("{}", render(&header, &rows));
                if all {
                    println!();
                }
            }
        }
        Output::Json | Output::Yaml => {
            let mut items: Vec<Value> = listed
                .into_iter()
                .flat_map(|(kind, objects)| objects.into_iter().map(move |o| with_type(kind, o)))
                .filter(|o| selector.as_ref().is_none_or(|s| s.matches(o)))
                .collect();
            let doc = if name.is_some() && items.len() == 1 {
                items.remove(0)
            } else {
                json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
            };
            print_doc(&doc, opts.output)?;
        }
    }
    Ok(())
}

fn print_doc(doc: &Value, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Yaml => print!("{}", driftless_yaml::to_string(doc)?),
        _ => println!("{}", serde_json::to_string_pretty(doc)?),
    }
    Ok(())
}

/// The object as kubectl prints it: with its apiVersion and kind, without managedFields.
fn with_type(kind: &Kind, mut o: Value) -> Value {
    if let Some(map) = o.as_object_mut() {
        map.insert("apiVersion".into(), kind.api_version().into());
        map.insert("kind".into(), kind.kind.clone().into());
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    }
    o
}

async fn watch(
    cluster: &Cluster,
    kind: &Kind,
    namespace: Option<&str>,
    params: &ListParams,
    opts: &Options,
    selector: &Option<Selector>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let api = cluster.api(kind, namespace);
    let list = api.list(params).await.map_err(|e| explain(e, kind))?;
    let print = |objects: &[&DynamicObject], header: bool| {
        let rows: Vec<Vec<String>> = objects
            .iter()
            .map(|o| serde_json::to_value(o).expect("an object serializes"))
            .filter(|o| selector.as_ref().is_none_or(|s| s.matches(o)))
            .map(|o| match opts.output {
                Output::Table => row(kind, &o, opts.all_namespaces, false),
                _ => Vec::new(),
            })
            .collect();
        let header = if header && !opts.no_header {
            headers(kind, opts.all_namespaces)
        } else {
            Vec::new()
        };
        print!("{}", render(&header, &rows));
    };
    print(&list.items.iter().collect::<Vec<_>>(), true);
    let mut wp = WatchParams::default().timeout(timeout.as_secs().clamp(1, 290) as u32);
    if let Some(f) = &params.field_selector {
        wp = wp.fields(f);
    }
    if let Some(l) = &params.label_selector {
        wp = wp.labels(l);
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut version = list.metadata.resource_version.unwrap_or_default();
    while tokio::time::Instant::now() < deadline {
        let mut stream = api.watch(&wp, &version).await?.boxed();
        loop {
            let next = tokio::time::timeout_at(deadline, stream.try_next()).await;
            let Ok(event) = next else { return Ok(()) };
            match event? {
                Some(WatchEvent::Added(o) | WatchEvent::Modified(o)) => {
                    version = o.metadata.resource_version.clone().unwrap_or(version);
                    print(&[&o], false);
                }
                Some(WatchEvent::Deleted(o)) => {
                    version = o.metadata.resource_version.clone().unwrap_or(version);
                }
                Some(WatchEvent::Bookmark(b)) => version = b.metadata.resource_version,
                Some(WatchEvent::Error(e)) if e.code == 410 => {
                    version = api
                        .list(params)
                        .await?
                        .metadata
                        .resource_version
                        .unwrap_or_default();
                    break;
                }
                Some(WatchEvent::Error(e)) => anyhow::bail!("watching {}: {}", kind.plural, e.message),
                None => break,
            }
        }
    }
    Ok(())
}

/// `--status-selector`: `ready=false`, `ready!=true` (condition type and status, any case).
#[derive(Debug, PartialEq)]
pub struct Selector {
    type_: String,
    status: String,
    negated: bool,
}

fn parse_selector(s: &str) -> anyhow::Result<Selector> {
    let (negated, parts) = match s.split_once("!=") {
        Some(p) => (true, Some(p)),
        None => (false, s.split_once('=')),
    };
    let Some((type_, status)) = parts else {
        anyhow::bail!("expected status selector in type=status or type!=status format, but found: {s}");
    };
    Ok(Selector {
        type_: type_.to_string(),
        status: status.to_string(),
        negated,
    })
}

impl Selector {
    fn matches(&self, o: &Value) -> bool {
        let found = conditions(o)
            .iter()
            .rev()
            .find(|c| at(c, "/type").eq_ignore_ascii_case(&self.type_))
            .is_some_and(|c| at(c, "/status").eq_ignore_ascii_case(&self.status));
        found != self.negated
    }
}

/// Ready's status and message, or flux's words for an object never reconciled.
pub fn ready(o: &Value) -> (String, String) {
    condition(o, "Ready")
        .map(|c| (at(c, "/status").to_string(), at(c, "/message").to_string()))
        .unwrap_or_else(|| ("False".into(), "waiting to be reconciled".into()))
}

/// `spec.suspend` as `True`/`False`.
pub fn suspended(o: &Value) -> String {
    let s = o
        .pointer("/spec/suspend")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if s { "True" } else { "False" }.to_string()
}

/// The columns of `kind` (before AGE), as flux names them.
fn columns(kind: &str) -> &'static [&'static str] {
    match kind {
        "ExternalArtifact" => &["Revision", "Source", "Ready", "Message"],
        "Receiver" | "Alert" | "ArtifactGenerator" => &["Suspended", "Ready", "Message"],
        "Provider" => &["Ready", "Message"],
        "ImageRepository" => &["Last scan", "Suspended", "Ready", "Message"],
        "ImagePolicy" => &["Image", "Tag", "Ready", "Message"],
        "ImageUpdateAutomation" => &["Last run", "Suspended", "Ready", "Message"],
        _ => &["Revision", "Suspended", "Ready", "Message"],
    }
}

fn headers(kind: &Kind, all_namespaces: bool) -> Vec<&'static str> {
    let mut h = Vec::new();
    if all_namespaces {
        h.push("Namespace");
    }
    h.push("Name");
    h.extend(columns(&kind.kind));
    h.push("Age");
    h
}

/// One row of `o`: flux's columns, then AGE.
pub fn row(kind: &Kind, o: &Value, all_namespaces: bool, with_kind: bool) -> Vec<String> {
    let mut row = Vec::new();
    if all_namespaces {
        row.push(at(o, "/metadata/namespace").to_string());
    }
    let name = at(o, "/metadata/name");
    row.push(if with_kind {
        format!("{}/{name}", kind.kind.to_lowercase())
    } else {
        name.to_string()
    });
    let (status, message) = ready(o);
    let artifact_revision = || at(o, "/status/artifact/revision").to_string();
    let cells: Vec<String> = match kind.kind.as_str() {
        "HelmRepository" if at(o, "/spec/type") == "oci" => vec![
            truncate_hex(&artifact_revision()),
            suspended(o),
            "True".into(),
            "Helm repository is Ready".into(),
        ],
        // a chart's revision is its version: not shortened
        "HelmChart" => vec![artifact_revision(), suspended(o), status, truncate_hex(&message)],
        "GitRepository" | "OCIRepository" | "HelmRepository" | "Bucket" => vec![
            truncate_hex(&artifact_revision()),
            suspended(o),
            status,
            truncate_hex(&message),
        ],
        "ExternalArtifact" => {
            let source = o
                .pointer("/spec/sourceRef")
                .map(|r| format!("{}/{}/{}", at(r, "/kind"), at(r, "/namespace"), at(r, "/name")))
                .unwrap_or_default();
            vec![
                truncate_hex(&artifact_revision()),
                source,
                status,
                truncate_hex(&message),
            ]
        }
        "Kustomization" => vec![
            truncate_hex(at(o, "/status/lastAppliedRevision")),
            suspended(o),
            status,
            truncate_hex(&message),
        ],
        "HelmRelease" => vec![helm_revision(o), suspended(o), status, message],
        "Receiver" => vec![suspended(o), status, message],
        "Alert" => vec![suspended(o), "True".into(), "Alert is Ready".into()],
        "Provider" => vec!["True".into(), "Provider is Ready".into()],
        "ArtifactGenerator" => {
            let disabled =
                at(o, "/metadata/annotations/source.extensions.fluxcd.io~1reconcile") == "disabled";
            vec![if disabled { "True" } else { "False" }.into(), status, message]
        }
        "ImageRepository" => vec![
            at(o, "/status/lastScanResult/scanTime").into(),
            suspended(o),
            status,
            message,
        ],
        "ImagePolicy" => vec![
            at(o, "/status/latestRef/name").into(),
            at(o, "/status/latestRef/tag").into(),
            status,
            message,
        ],
        "ImageUpdateAutomation" => vec![
            at(o, "/status/lastAutomationRunTime").into(),
            suspended(o),
            status,
            message,
        ],
        _ => vec![String::new(), suspended(o), status, message],
    };
    row.extend(cells);
    row.push(created_age(o));
    row
}

/// What an object of `kind` is at: the revision a Kustomization applied, a release's chart version, a
/// source's artifact revision, a policy's latest image, an automation's last pushed commit.
pub fn revision(kind: &str, o: &Value) -> String {
    match kind {
        "Kustomization" => at(o, "/status/lastAppliedRevision").to_string(),
        "HelmRelease" => helm_revision(o),
        "ImagePolicy" => match (at(o, "/status/latestRef/name"), at(o, "/status/latestRef/tag")) {
            ("", _) => String::new(),
            (image, tag) => format!("{image}:{tag}"),
        },
        "ImageUpdateAutomation" => at(o, "/status/lastPushCommit").to_string(),
        _ => at(o, "/status/artifact/revision").to_string(),
    }
}

/// A HelmRelease's revision as flux shows it: the chart version of its latest release, else the last
/// attempted revision.
pub fn helm_revision(o: &Value) -> String {
    o.pointer("/status/history/0/chartVersion")
        .and_then(Value::as_str)
        .unwrap_or_else(|| at(o, "/status/lastAttemptedRevision"))
        .to_string()
}

fn created_age(o: &Value) -> String {
    chrono::DateTime::parse_from_rfc3339(at(o, "/metadata/creationTimestamp"))
        .ok()
        .map(|t| {
            let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .num_seconds()
                .max(0);
            age(Duration::from_secs(secs as u64))
        })
        .unwrap_or_else(|| "<unknown>".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn all_and_groups_list_flux_kinds_in_flux_order() {
        let (kinds, name, all) = what(&words("all")).unwrap();
        assert!(all && name.is_none());
        assert_eq!(kinds.len(), 13);
        assert_eq!(kinds[0].kind, "OCIRepository");
        let (kinds, _, _) = what(&words("sources all")).unwrap();
        let names: Vec<&str> = kinds.iter().map(|k| k.kind.as_str()).collect();
        assert_eq!(
            names,
            [
                "OCIRepository",
                "Bucket",
                "GitRepository",
                "HelmRepository",
                "HelmChart"
            ]
        );
        let (kinds, _, _) = what(&words("images all")).unwrap();
        assert_eq!(kinds.len(), 3);
        let (kinds, name, all) = what(&words("source git fleet")).unwrap();
        assert_eq!(
            (kinds[0].kind.as_str(), name.as_deref(), all),
            ("GitRepository", Some("fleet"), false)
        );
        assert!(what(&words("ks a b")).is_err());
    }

    #[test]
    fn rows_show_what_flux_shows() {
        let ks = registered("Kustomization");
        let o = json!({"metadata": {"name": "apps", "namespace": "flux-system",
                "creationTimestamp": chrono::Utc::now().to_rfc3339()},
            "spec": {"suspend": false},
            "status": {"lastAppliedRevision": format!("main@sha1:{}", "ab".repeat(20)),
                "conditions": [{"type": "Ready", "status": "True",
                    "message": format!("Applied revision: main@sha1:{}", "ab".repeat(20))}]}});
        assert_eq!(
            row(ks, &o, true, true),
            [
                "flux-system",
                "kustomization/apps",
                "main@sha1:abababab",
                "False",
                "True",
                "Applied revision: main@sha1:abababab",
                "0s"
            ]
        );
        assert_eq!(
            headers(ks, false),
            ["Name", "Revision", "Suspended", "Ready", "Message", "Age"]
        );
        let fresh = json!({"metadata": {"name": "new"}, "spec": {"suspend": true}});
        assert_eq!(
            row(registered("GitRepository"), &fresh, false, false),
            [
                "new",
                "",
                "True",
                "False",
                "waiting to be reconciled",
                "<unknown>"
            ]
        );
        let hr = json!({"metadata": {"name": "p"}, "status": {"history": [{"chartVersion": "6.3.5"}],
            "lastAttemptedRevision": "6.3.4"}});
        assert_eq!(helm_revision(&hr), "6.3.5");
        let policy = json!({"metadata": {"name": "p"}, "status": {"latestRef": {"name": "ghcr.io/x", "tag": "1.0.0"}}});
        assert_eq!(
            row(registered("ImagePolicy"), &policy, false, false)[1..3],
            ["ghcr.io/x", "1.0.0"]
        );
    }

    #[test]
    fn status_selectors_match_as_flux_matches_them() {
        let o = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let none = json!({});
        assert!(parse_selector("ready=false").unwrap().matches(&o));
        assert!(!parse_selector("Ready=True").unwrap().matches(&o));
        assert!(parse_selector("ready!=true").unwrap().matches(&o));
        assert!(parse_selector("ready!=true").unwrap().matches(&none));
        assert!(!parse_selector("ready=false").unwrap().matches(&none));
        assert!(parse_selector("ready").is_err());
    }
}
