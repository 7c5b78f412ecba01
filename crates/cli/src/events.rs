//! `driftless events [--for <kind>/<name>] [-A] [--types Warning] [--watch]`: the Kubernetes Events of
//! Flux objects as `flux events` prints them (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE), oldest first;
//! with `--for` an object's events and its source's.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use serde_json::Value;

use crate::{
    cluster::Cluster,
    table::{age, render},
};

use k8s_openapi::jiff::Timestamp;

fn since(t: Option<Timestamp>) -> String {
    t.map(|t| {
        age(Duration::from_secs(
            (Timestamp::now().as_second() - t.as_second()).max(0) as u64,
        ))
    })
    .unwrap_or_else(|| "<unknown>".into())
}

fn first_time(e: &Event) -> Option<Timestamp> {
    e.event_time
        .as_ref()
        .map(|t| t.0)
        .or(e.first_timestamp.as_ref().map(|t| t.0))
}

fn last_time(e: &Event) -> Option<Timestamp> {
    e.series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
        .or(e.last_timestamp.as_ref().map(|t| t.0))
        .or(first_time(e))
}

/// LAST SEEN as flux writes it: `5m`, or `2m (x4 over 10m)` for a repeated event.
fn last_seen(e: &Event) -> String {
    let count = e.series.as_ref().and_then(|s| s.count).or(e.count).unwrap_or(1);
    if count > 1 {
        format!("{} (x{count} over {})", since(last_time(e)), since(first_time(e)))
    } else {
        since(first_time(e))
    }
}

fn row(e: &Event, with_ns: bool) -> Vec<String> {
    let mut row = Vec::new();
    if with_ns {
        row.push(e.metadata.namespace.clone().unwrap_or_default());
    }
    let o = &e.involved_object;
    row.extend([
        last_seen(e),
        e.type_.clone().unwrap_or_default(),
        e.reason.clone().unwrap_or_default(),
        format!(
            "{}/{}",
            o.kind.clone().unwrap_or_default(),
            o.name.clone().unwrap_or_default()
        ),
        e.message.clone().unwrap_or_default().trim_end().to_string(),
    ]);
    row
}

fn header(with_ns: bool) -> Vec<&'static str> {
    let mut h = if with_ns { vec!["Namespace"] } else { Vec::new() };
    h.extend(["Last seen", "Type", "Reason", "Object", "Message"]);
    h
}

/// The options of `events`.
pub struct Options {
    /// `<kind>[/<name>]`.
    pub for_: Option<String>,
    /// Every namespace.
    pub all_namespaces: bool,
    /// Only these types (Normal, Warning).
    pub types: Vec<String>,
    /// Keep printing new events.
    pub watch: bool,
}

/// Prints the events.
pub async fn run(cluster: &Cluster, opts: &Options, timeout: Duration) -> anyhow::Result<()> {
    let namespace = (!opts.all_namespaces).then_some(cluster.namespace.clone());
    // the (kind, name, namespace) whose events to show; None: every Flux kind's
    let mut targets: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    if let Some(sel) = &opts.for_ {
        let (kind_word, name) = match sel.split_once('/') {
            Some((k, n)) => (k, Some(n.to_string())),
            None => (sel.as_str(), None),
        };
        let kind = driftless_api::kinds::find(kind_word)
            .ok_or_else(|| anyhow::anyhow!("unknown kind '{kind_word}': {}", crate::kind::known()))?;
        targets.push((kind.kind.clone(), name.clone(), namespace.clone()));
        if let Some(name) = name {
            let api = cluster.api(kind, Some(&cluster.namespace));
            if let Some(o) = api.get_opt(&name).await? {
                let o = serde_json::to_value(o)?;
                let source = o.pointer("/spec/sourceRef").or(o.pointer("/spec/chartRef"));
                if let Some(r) = source {
                    let field = |f: &str| r.get(f).and_then(Value::as_str).map(String::from);
                    let ns = field("namespace").unwrap_or_else(|| cluster.namespace.clone());
                    if let Some(kind) = field("kind") {
                        targets.push((kind, field("name"), Some(ns)));
                    }
                }
            }
        }
    }
    let with_ns = namespace.is_none() || targets.iter().any(|(_, _, ns)| ns != &namespace);
    let is_flux = |e: &Event| {
        let kind = e.involved_object.kind.as_deref().unwrap_or_default();
        driftless_api::kinds::get(kind).is_some()
            && (opts.types.is_empty()
                || opts
                    .types
                    .iter()
                    .any(|t| e.type_.as_deref().is_some_and(|ty| ty.eq_ignore_ascii_case(t))))
    };
    let queries: Vec<(Option<String>, ListParams)> = if targets.is_empty() {
        vec![(namespace.clone(), ListParams::default())]
    } else {
        targets
            .iter()
            .map(|(kind, name, ns)| {
                let mut f = format!("involvedObject.kind={kind}");
                if let Some(n) = name {
                    f += &format!(",involvedObject.name={n}");
                }
                (ns.clone(), ListParams::default().fields(&f))
            })
            .collect()
    };
    let api_in = |ns: &Option<String>| -> Api<Event> {
        match ns {
            Some(ns) => Api::namespaced(cluster.client.clone(), ns),
            None => Api::all(cluster.client.clone()),
        }
    };
    let mut events = Vec::new();
    let mut versions = Vec::new();
    for (ns, params) in &queries {
        let list = api_in(ns).list(params).await?;
        versions.push(list.metadata.resource_version.clone().unwrap_or_default());
        events.extend(list.items.into_iter().filter(|e| is_flux(e)));
    }
    events.sort_by_key(last_time);
    let rows: Vec<Vec<String>> = events.iter().map(|e| row(e, with_ns)).collect();
    if !opts.watch {
        if rows.is_empty() {
            match &namespace {
                None => crate::log::failure("No events found."),
                Some(ns) => crate::log::failure(&format!("No events found in {ns} namespace.")),
            }
            return Ok(());
        }
        print!("{}", render(&header(with_ns), &rows));
        return Ok(());
    }
    print!("{}", render(&header(with_ns), &rows));
    let deadline = tokio::time::Instant::now() + timeout;
    let mut streams = Vec::new();
    for ((ns, params), version) in queries.iter().zip(versions) {
        let mut wp = WatchParams::default().timeout(timeout.as_secs().clamp(1, 290) as u32);
        if let Some(f) = &params.field_selector {
            wp = wp.fields(f);
        }
        streams.push(api_in(ns).watch(&wp, &version).await?.boxed());
    }
    let mut merged = futures::stream::select_all(streams);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, merged.try_next())
        .await
        .map(|r| r.ok().flatten())
    {
        if let WatchEvent::Added(e) | WatchEvent::Modified(e) = event
            && is_flux(&e)
        {
            print!("{}", render(&[], &[row(&e, with_ns)]));
        }
    }
    Ok(())
}
