//! The dashboard's pages, rendered on the server as plain HTML.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use driftless_api::kinds::Kind;
use serde_json::Value;

use super::{Filter, drift::Report};
use crate::{
    diff::Change,
    get,
    objects::{at, conditions},
    table::{age, truncate_hex},
    tree::{self, Node},
    why,
};

/// Rows per overview page.
pub const PAGE: usize = 200;

/// `s` escaped for HTML text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` as a URL path segment.
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An object's key in pages and change events: `Kind/namespace/name`.
pub fn key(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}/{namespace}/{name}")
}

fn object_href(kind: &str, namespace: &str, name: &str) -> String {
    format!("/o/{}/{}/{}", seg(kind), seg(namespace), seg(name))
}

/// A whole page around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · driftless</title><link rel="stylesheet" href="/assets/dashboard.css">
<script>document.documentElement.dataset.theme = localStorage.getItem("driftless-theme") || "";</script>
</head><body>
<header><a class="brand" href="/">driftless</a><span id="live" class="live" title="live updates">●</span>
<span class="spacer"></span><span class="hint">/ search · j k move · Enter open</span>
<button id="theme" type="button" title="dark or light">◐</button></header>
<div id="flash" role="status" aria-live="polite"></div>
<main id="main">{body}</main>
<script src="/assets/dashboard.js"></script>
</body></html>"#,
        title = esc(title)
    )
}

/// Ready as the overview sorts it: failing, progressing, ready.
fn rank(status: &str) -> u8 {
    match status {
        "False" => 0,
        "Unknown" => 1,
        _ => 2,
    }
}

/// Ready's status, reason and message.
fn ready(o: &Value) -> (String, String, String) {
    let (status, message) = get::ready(o);
    let reason = crate::objects::condition(o, "Ready")
        .map(|c| at(c, "/reason").to_string())
        .unwrap_or_default();
    let status = if crate::objects::condition(o, "Ready").is_none() {
        "Unknown".to_string()
    } else {
        status
    };
    (status, reason, message)
}

/// When the object last changed what it holds: a Kustomization's or release's latest history entry, a
/// source's artifact, else Ready's transition.
fn updated(kind: &str, o: &Value) -> String {
    let candidates = match kind {
        "Kustomization" => ["/status/history/0/lastReconciled", "/status/conditions"],
        "HelmRelease" => ["/status/history/0/lastDeployed", "/status/conditions"],
        _ => ["/status/artifact/lastUpdateTime", "/status/conditions"],
    };
    let first = at(o, candidates[0]);
    if !first.is_empty() {
        return first.to_string();
    }
    crate::objects::condition(o, "Ready")
        .map(|c| at(c, "/lastTransitionTime").to_string())
        .unwrap_or_default()
}

fn time(t: &str) -> String {
    if t.is_empty() {
        return String::new();
    }
    let ago = chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| {
            let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .num_seconds()
                .max(0);
            format!("{} ago", age(Duration::from_secs(secs as u64)))
        })
        .unwrap_or_else(|| t.to_string());
    format!(
        r#"<time datetime="{}" title="{}">{}</time>"#,
        esc(t),
        esc(t),
        esc(&ago)
    )
}

fn badge(status: &str, suspended: bool) -> String {
    let (class, text) = match status {
        _ if suspended => ("suspended", "Suspended"),
        "True" => ("ok", "Ready"),
        "False" => ("bad", "Failing"),
        _ => ("wait", "Progressing"),
    };
    format!(r#"<span class="badge {class}">{text}</span>"#)
}

/// The overview's row of `o`.
pub fn row(kind: &Kind, o: &Value) -> String {
    let (namespace, name) = (at(o, "/metadata/namespace"), at(o, "/metadata/name"));
    let (status, reason, message) = ready(o);
    let suspended = get::suspended(o) == "True";
    let revision = get::revision(&kind.kind, o);
    format!(
        r#"<tr id="{key}" data-ready="{status}" data-suspended="{suspended}"><td>{kind}</td><td>{ns}</td><td><a href="{href}">{name}</a></td><td>{badge}</td><td>{reason}</td><td class="message">{message}</td><td class="revision" title="{revision}">{short}</td><td>{updated}</td><td class="suspend">{susp}</td></tr>"#,
        key = esc(&key(&kind.kind, namespace, name)),
        kind = esc(&kind.kind),
        ns = esc(namespace),
        href = object_href(&kind.kind, namespace, name),
        name = esc(name),
        badge = badge(&status, suspended),
        reason = esc(&reason),
        message = esc(&message),
        revision = esc(&revision),
        short = esc(&truncate_hex(&revision)),
        updated = time(&updated(&kind.kind, o)),
        susp = if suspended { "True" } else { "False" },
    )
}

fn matches(kind: &Kind, o: &Value, filter: &Filter) -> bool {
    let (namespace, name) = (at(o, "/metadata/namespace"), at(o, "/metadata/name"));
    if !filter.kind.is_empty() && filter.kind != kind.kind {
        return false;
    }
    if !filter.namespace.is_empty() && filter.namespace != namespace {
        return false;
    }
    let (status, reason, message) = ready(o);
    let suspended = get::suspended(o) == "True";
    let by_status = match filter.status.as_str() {
        "failing" => status == "False" && !suspended,
        "ready" => status == "True" && !suspended,
        "progressing" => status == "Unknown" && !suspended,
        "suspended" => suspended,
        _ => true,
    };
    if !by_status {
        return false;
    }
    let text = format!("{} {namespace} {name} {reason} {message}", kind.kind).to_lowercase();
    filter
        .q
        .split_whitespace()
        .all(|w| text.contains(&w.to_lowercase()))
}

/// Per kind: total, failing, ready.
pub fn counts(objects: &[(&'static Kind, Value)]) -> String {
    let mut per: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for (k, o) in objects {
        let e = per.entry(k.kind.as_str()).or_default();
        e.0 += 1;
        match ready(o).0.as_str() {
            "False" => e.1 += 1,
            "True" => e.2 += 1,
            _ => {}
        }
    }
    let mut out = String::from(r#"<ul id="counts" class="counts">"#);
    let total: usize = per.values().map(|c| c.0).sum();
    let failing: usize = per.values().map(|c| c.1).sum();
    let _ = write!(
        out,
        r#"<li class="total"><a href="/">{total} objects</a>, <a href="/?status=failing" class="{}">{failing} failing</a></li>"#,
        if failing > 0 { "bad" } else { "" }
    );
    for (kind, (n, bad, ok)) in per {
        let _ = write!(
            out,
            r#"<li><a href="/?kind={kind}">{kind}</a> <span class="n">{n}</span> <span class="ok">{ok} ready</span>{}</li>"#,
            if bad > 0 {
                format!(r#" <span class="bad">{bad} failing</span>"#)
            } else {
                String::new()
            }
        );
    }
    out.push_str("</ul>");
    out
}

fn options(values: impl IntoIterator<Item = String>, selected: &str, any: &str) -> String {
    let mut out = format!(r#"<option value="">{any}</option>"#);
    for v in values {
        let _ = write!(
            out,
            r#"<option value="{v}"{}>{v}</option>"#,
            if v == selected { " selected" } else { "" },
            v = esc(&v)
        );
    }
    out
}

/// The overview: counts, filters, then every matching object, failing first.
pub fn overview(
    objects: &[(&'static Kind, Value)],
    filter: &Filter,
    read_only: bool,
    confined: Option<&str>,
) -> String {
    let mut shown: Vec<&(&'static Kind, Value)> =
        objects.iter().filter(|(k, o)| matches(k, o, filter)).collect();
    shown.sort_by_key(|(k, o)| {
        (
            rank(&ready(o).0),
            k.kind.clone(),
            at(o, "/metadata/namespace").to_string(),
            at(o, "/metadata/name").to_string(),
        )
    });
    let pages = shown.len().div_ceil(PAGE).max(1);
    let page = filter.page.min(pages - 1);
    let kinds: std::collections::BTreeSet<String> = objects.iter().map(|(k, _)| k.kind.clone()).collect();
    let namespaces: std::collections::BTreeSet<String> = objects
        .iter()
        .map(|(_, o)| at(o, "/metadata/namespace").to_string())
        .collect();
    let mut body = String::new();
    if let Some(ns) = confined {
        let _ = write!(
            body,
            r#"<p class="note">Listing every namespace is not allowed: showing namespace {}.</p>"#,
            esc(ns)
        );
    }
    if read_only {
        body.push_str(r#"<p class="note">Read-only dashboard.</p>"#);
    }
    body.push_str(&counts(objects));
    let _ = write!(
        body,
        r#"<form class="filters" method="get" action="/">
<input id="q" name="q" type="search" placeholder="Search kind, namespace, name, reason, message" value="{q}" aria-label="search">
<select name="kind" aria-label="kind">{kinds}</select>
<select name="namespace" aria-label="namespace">{namespaces}</select>
<select name="status" aria-label="status">{statuses}</select>
<button type="submit">Filter</button></form>"#,
        q = esc(&filter.q),
        kinds = options(kinds, &filter.kind, "every kind"),
        namespaces = options(namespaces, &filter.namespace, "every namespace"),
        statuses = options(
            ["failing", "progressing", "ready", "suspended"].map(String::from),
            &filter.status,
            "any status"
        ),
    );
    let _ = write!(
        body,
        r#"<p class="shown"><span id="shown">{}</span> shown{}</p>"#,
        shown.len(),
        if pages > 1 {
            format!(", page {} of {pages}", page + 1)
        } else {
            String::new()
        }
    );
    body.push_str(
        r#"<table id="objects" class="objects"><thead><tr><th>Kind</th><th>Namespace</th><th>Name</th><th>Ready</th><th>Reason</th><th>Message</th><th>Revision</th><th>Updated</th><th>Suspended</th></tr></thead><tbody>"#,
    );
    for (k, o) in shown.iter().skip(page * PAGE).take(PAGE) {
        body.push_str(&row(k, o));
    }
    body.push_str("</tbody></table>");
    if pages > 1 {
        body.push_str(r#"<nav class="pages">"#);
        let link = |p: usize| {
            format!(
                "/?q={}&kind={}&namespace={}&status={}&page={p}",
                seg(&filter.q),
                seg(&filter.kind),
                seg(&filter.namespace),
                seg(&filter.status)
            )
        };
        if page > 0 {
            let _ = write!(
                body,
                r#"<a href="{}" rel="prev">← previous</a> "#,
                esc(&link(page - 1))
            );
        }
        if page + 1 < pages {
            let _ = write!(
                body,
                r#"<a href="{}" rel="next">next →</a>"#,
                esc(&link(page + 1))
            );
        }
        body.push_str("</nav>");
    }
    self::page("Overview", &body)
}

/// What the object page shows.
pub struct ObjectPage<'a> {
    pub kind: &'static Kind,
    pub object: &'a Value,
    /// The `why` chain, when not Ready.
    pub why: Option<&'a str>,
    pub dependencies: &'a [(&'static str, why::Ref)],
    pub needed_by: &'a [why::Ref],
    /// Its sources (and includes), as the watch cache has them.
    pub sources: &'a [(why::Ref, Option<Value>)],
    pub events: &'a [Value],
    pub read_only: bool,
    /// Whether the kind is reconciled (Alert and Provider are not).
    pub actions: bool,
}

fn ref_link(r: &why::Ref) -> String {
    format!(
        r#"<a href="{}">{}</a>"#,
        object_href(&r.kind, &r.namespace, &r.name),
        esc(&r.to_string())
    )
}

/// The object page's content (also sent alone when the object changes).
pub fn object(p: &ObjectPage) -> String {
    let o = p.object;
    let (kind, namespace, name) = (
        &p.kind.kind,
        at(o, "/metadata/namespace"),
        at(o, "/metadata/name"),
    );
    let (status, reason, message) = ready(o);
    let suspended = get::suspended(o) == "True";
    let href = object_href(kind, namespace, name);
    let mut watch = vec![key(kind, namespace, name)];
    watch.extend(p.sources.iter().map(|(r, _)| key(&r.kind, &r.namespace, &r.name)));
    let mut b = format!(
        r#"<div id="object" data-watch="{watch}"><h1>{kind} <span class="ns">{ns}/</span>{name} {badge}</h1>"#,
        watch = esc(&watch.join(" ")),
        kind = esc(kind),
        ns = esc(namespace),
        name = esc(name),
        badge = badge(&status, suspended)
    );
    let _ = write!(
        b,
        r#"<p class="message">{}{}</p>"#,
        if reason.is_empty() {
            String::new()
        } else {
            format!("<b>{}</b>: ", esc(&reason))
        },
        esc(&message)
    );
    b.push_str(r#"<div class="actions">"#);
    if p.actions {
        let disabled = if p.read_only {
            r#" disabled title="read-only dashboard""#
        } else {
            ""
        };
        let _ = write!(
            b,
            r#"<button type="button" data-action="{href}/reconcile"{disabled}>Reconcile</button>"#
        );
        if suspended {
            let _ = write!(
                b,
                r#"<button type="button" data-action="{href}/resume"{disabled}>Resume</button>"#
            );
        } else {
            let _ = write!(
                b,
                r#"<button type="button" data-action="{href}/suspend"{disabled}>Suspend</button>"#
            );
        }
    }
    if matches!(kind.as_str(), "Kustomization" | "HelmRelease") {
        let _ = write!(b, r#"<a class="button" href="{href}/tree">Tree</a>"#);
    }
    if kind == "Kustomization" {
        let _ = write!(b, r#"<a class="button" href="{href}/drift">Drift</a>"#);
    }
    let _ = write!(
        b,
        r#"<a class="button" href="/live?apiVersion={}&amp;kind={}&amp;namespace={}&amp;name={}">YAML</a></div>"#,
        seg(&p.kind.api_version()),
        seg(kind),
        seg(namespace),
        seg(name)
    );
    if let Some(chain) = p.why {
        let _ = write!(
            b,
            r#"<section id="why"><h2>Why it is not Ready</h2><pre>{}</pre></section>"#,
            esc(chain)
        );
    }
    b.push_str(r#"<section id="conditions"><h2>Conditions</h2><table><thead><tr><th>Type</th><th>Status</th><th>Reason</th><th>Message</th><th>Since</th></tr></thead><tbody>"#);
    for c in conditions(o) {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"message\">{}</td><td>{}</td></tr>",
            esc(at(c, "/type")),
            esc(at(c, "/status")),
            esc(at(c, "/reason")),
            esc(at(c, "/message")),
            time(at(c, "/lastTransitionTime"))
        );
    }
    b.push_str("</tbody></table>");
    let generation = o.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = o.pointer("/status/observedGeneration").and_then(Value::as_i64);
    if let (Some(g), Some(seen)) = (generation, observed) {
        let _ = write!(
            b,
            r#"<p class="small">generation {g}, observed {seen}; last handled request {}</p>"#,
            esc(at(o, "/status/lastHandledReconcileAt"))
        );
    }
    b.push_str("</section>");
    if !p.sources.is_empty() {
        b.push_str(r#"<section id="source"><h2>Source</h2>"#);
        for (r, src) in p.sources {
            let _ = write!(b, "<h3>{}</h3>", ref_link(r));
            match src {
                None => b.push_str(r#"<p class="error">not found</p>"#),
                Some(s) => {
                    let (st, _, msg) = ready(s);
                    let _ = write!(
                        b,
                        "<p>{} {}</p>",
                        badge(&st, get::suspended(s) == "True"),
                        esc(&msg)
                    );
                    if let Some(a) = s.pointer("/status/artifact") {
                        let _ = write!(
                            b,
                            r#"<dl class="artifact"><dt>Revision</dt><dd>{}</dd><dt>Digest</dt><dd>{}</dd><dt>URL</dt><dd>{}</dd><dt>Updated</dt><dd>{}</dd><dt>Size</dt><dd>{}</dd></dl>"#,
                            esc(at(a, "/revision")),
                            esc(at(a, "/digest")),
                            esc(at(a, "/url")),
                            time(at(a, "/lastUpdateTime")),
                            a.get("size")
                                .and_then(Value::as_u64)
                                .map(|s| format!("{s} bytes"))
                                .unwrap_or_default()
                        );
                    }
                }
            }
        }
        b.push_str("</section>");
    }
    let depends: Vec<&why::Ref> = p
        .dependencies
        .iter()
        .filter(|(rel, _)| *rel == "depends on")
        .map(|(_, r)| r)
        .collect();
    if !depends.is_empty() || !p.needed_by.is_empty() {
        b.push_str(r#"<section id="depends"><h2>Dependencies</h2>"#);
        let list = |title: &str, refs: &[&why::Ref]| {
            let mut s = format!("<h3>{title}</h3><ul>");
            if refs.is_empty() {
                s.push_str("<li>none</li>");
            }
            for r in refs {
                let _ = write!(s, "<li>{}</li>", ref_link(r));
            }
            s + "</ul>"
        };
        b.push_str(&list("Depends on", &depends));
        b.push_str(&list("Needed by", &p.needed_by.iter().collect::<Vec<_>>()));
        b.push_str("</section>");
    }
    if let Some(history) = o
        .pointer("/status/history")
        .and_then(Value::as_array)
        .filter(|h| !h.is_empty())
    {
        b.push_str(r#"<section id="history"><h2>History</h2><table>"#);
        if kind == "HelmRelease" {
            b.push_str("<thead><tr><th>Version</th><th>Chart</th><th>App</th><th>Status</th><th>Deployed</th><th>Test hooks</th></tr></thead><tbody>");
            for h in history {
                let _ = write!(
                    b,
                    "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    h.get("version").and_then(Value::as_i64).unwrap_or_default(),
                    esc(at(h, "/chartName")),
                    esc(at(h, "/chartVersion")),
                    esc(at(h, "/appVersion")),
                    esc(at(h, "/status")),
                    time(at(h, "/lastDeployed")),
                    h.get("testHooks")
                        .and_then(Value::as_object)
                        .map(|t| t.len())
                        .unwrap_or(0)
                );
            }
        } else {
            b.push_str("<thead><tr><th>Revision</th><th>Status</th><th>Runs</th><th>First</th><th>Last</th><th>Took</th><th>Digest</th></tr></thead><tbody>");
            for h in history {
                let _ = write!(
                    b,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"revision\">{}</td></tr>",
                    esc(at(h, "/metadata/revision")),
                    esc(at(h, "/lastReconciledStatus")),
                    h.get("totalReconciliations")
                        .and_then(Value::as_i64)
                        .unwrap_or_default(),
                    time(at(h, "/firstReconciled")),
                    time(at(h, "/lastReconciled")),
                    esc(at(h, "/lastReconciledDuration")),
                    esc(&truncate_hex(at(h, "/digest")))
                );
            }
        }
        b.push_str("</tbody></table></section>");
    }
    b.push_str(r#"<section id="events"><h2>Events</h2>"#);
    if p.events.is_empty() {
        b.push_str("<p>none</p>");
    } else {
        b.push_str("<table><thead><tr><th>Type</th><th>Reason</th><th>Message</th><th>Count</th><th>Last</th></tr></thead><tbody>");
        for e in p.events {
            let last = [
                at(e, "/lastTimestamp"),
                at(e, "/eventTime"),
                at(e, "/metadata/creationTimestamp"),
            ]
            .into_iter()
            .find(|t| !t.is_empty())
            .unwrap_or_default();
            let _ = write!(
                b,
                r#"<tr class="{}"><td>{}</td><td>{}</td><td class="message">{}</td><td>{}</td><td>{}</td></tr>"#,
                if at(e, "/type") == "Warning" {
                    "warning"
                } else {
                    ""
                },
                esc(at(e, "/type")),
                esc(at(e, "/reason")),
                esc(at(e, "/message")),
                e.get("count").and_then(Value::as_i64).unwrap_or(1),
                time(last)
            );
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("</section></div>");
    b
}

fn tree_nodes(nodes: &[Node], out: &mut String) {
    out.push_str("<ul>");
    for n in nodes {
        let p = &n.place;
        let class = if n.health == "Current" {
            "ok"
        } else if n.health.starts_with("InProgress") {
            "wait"
        } else {
            "bad"
        };
        let _ = write!(
            out,
            r#"<li><a href="/live?apiVersion={}&amp;kind={}&amp;namespace={}&amp;name={}">{}</a> <span class="health {class}">{}</span>"#,
            seg(&p.api_version),
            seg(&p.kind),
            seg(&p.namespace),
            seg(&p.name),
            esc(&tree::label(p)),
            esc(&n.health)
        );
        if matches!(p.kind.as_str(), "Kustomization" | "HelmRelease")
            && p.api_version.contains("toolkit.fluxcd.io")
        {
            let _ = write!(
                out,
                r#" <a class="small" href="{}">object page</a>"#,
                object_href(&p.kind, &p.namespace, &p.name)
            );
        }
        if !n.children.is_empty() {
            tree_nodes(&n.children, out);
        }
        out.push_str("</li>");
    }
    out.push_str("</ul>");
}

/// The inventory tree of `kind` `namespace/name`.
pub fn tree(kind: &str, namespace: &str, name: &str, nodes: &[Node]) -> String {
    let mut b = format!(
        r#"<div id="tree" data-watch="{}"><h1>Tree of <a href="{}">{} {}/{}</a></h1>"#,
        esc(&key(kind, namespace, name)),
        object_href(kind, namespace, name),
        esc(kind),
        esc(namespace),
        esc(name)
    );
    if nodes.is_empty() {
        b.push_str("<p>It has applied nothing yet.</p>");
    } else {
        tree_nodes(nodes, &mut b);
    }
    b.push_str("</div>");
    b
}

fn diff_html(diff: &str) -> String {
    let mut out = String::from("<pre class=\"diff\">");
    for line in diff.lines() {
        let class = match line.as_bytes().first() {
            Some(b'+') if !line.starts_with("+++") => "add",
            Some(b'-') if !line.starts_with("---") => "del",
            Some(b'@') => "hunk",
            _ => "",
        };
        // NB: each line a block, so no newline between them
        let _ = write!(out, r#"<span class="{class}">{}</span>"#, esc(line));
    }
    out.push_str("</pre>");
    out
}

/// A drift report.
pub fn drift(namespace: &str, name: &str, report: &Report) -> String {
    let mut b = format!(
        r#"<h1>Drift of <a href="{}">Kustomization {}/{}</a></h1><p>A server-side dry-run of revision <code>{}</code> against the cluster now.</p>"#,
        object_href("Kustomization", namespace, name),
        esc(namespace),
        esc(name),
        esc(&report.revision)
    );
    if let Some(note) = &report.note {
        let _ = write!(b, r#"<p class="note">{}</p>"#, esc(note));
    }
    if report.changes.is_empty() {
        b.push_str(r#"<p id="nodrift" class="ok">No drift: the cluster is as the revision says.</p>"#);
    }
    b.push_str(r#"<div id="changes">"#);
    for (who, change) in &report.changes {
        match change {
            Change::Created => {
                let _ = write!(
                    b,
                    r#"<h3>{} <span class="badge wait">missing: would be created</span></h3>"#,
                    esc(who)
                );
            }
            Change::Deleted => {
                let _ = write!(
                    b,
                    r#"<h3>{} <span class="badge wait">would be pruned</span></h3>"#,
                    esc(who)
                );
            }
            Change::Drifted(diff) => {
                let _ = write!(
                    b,
                    r#"<h3>{} <span class="badge bad">drifted</span></h3>{}"#,
                    esc(who),
                    diff_html(diff)
                );
            }
        }
    }
    b.push_str("</div>");
    b
}

/// An object's live YAML: no managed fields, Secret values masked.
pub fn live(label: &str, o: &Value) -> String {
    let mut o = o.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    if at(&o, "/kind") == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(values) = o.get_mut(field).and_then(Value::as_object_mut) {
                for v in values.values_mut() {
                    *v = Value::from("***");
                }
            }
        }
    }
    let yaml = driftless_yaml::to_string(&o).unwrap_or_default();
    format!(r#"<h1>{}</h1><pre id="yaml">{}</pre>"#, esc(label), esc(&yaml))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_is_escaped_and_paths_encoded() {
        assert_eq!(esc(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn secrets_are_masked_in_live_yaml() {
        let page = live(
            "Secret/a/s",
            &json!({"kind": "Secret", "metadata": {"name": "s", "managedFields": [{}]}, "data": {"k": "c2VjcmV0"}}),
        );
        assert!(
            !page.contains("c2VjcmV0") && page.contains("***") && !page.contains("managedFields"),
            "{page}"
        );
    }

    #[test]
    fn failing_objects_come_first_and_filters_narrow() {
        let ks = driftless_api::kinds::get("Kustomization").unwrap();
        let mk = |name: &str, status: &str| {
            (
                ks,
                json!({"metadata": {"name": name, "namespace": "a"}, "status": {"conditions": [{"type": "Ready", "status": status, "reason": "R", "message": format!("{name} msg")}]}}),
            )
        };
        let objects = vec![mk("good", "True"), mk("broken", "False"), mk("coming", "Unknown")];
        let page = overview(&objects, &Filter::default(), false, None);
        let (broken, coming, good) = (
            page.find("broken").unwrap(),
            page.find("coming").unwrap(),
            page.find("good").unwrap(),
        );
        assert!(broken < coming && coming < good);
        let filtered = overview(
            &objects,
            &Filter {
                status: "failing".into(),
                ..Filter::default()
            },
            false,
            None,
        );
        assert!(filtered.contains("Kustomization/a/broken") && !filtered.contains("Kustomization/a/good"));
        let searched = overview(
            &objects,
            &Filter {
                q: "GOOD msg".into(),
                ..Filter::default()
            },
            false,
            None,
        );
        assert!(searched.contains("Kustomization/a/good") && !searched.contains("Kustomization/a/coming"));
    }
}
