//! `driftless dashboard`: a web page of every Flux object, its conditions, `why` chain, history, events,
//! source, dependencies, inventory tree and drift, live, with reconcile, suspend and resume.
//!
//! One watch per kind (kube's reflector) keeps the objects in memory; every change is pushed to the open
//! pages over server-sent events, rendered as the row or fragment they show, so nothing polls. Pages are
//! rendered on the server from the same code the CLI prints with (`get`'s columns, `why`, `tree`,
//! `diff`); the little JavaScript there is (`assets/dashboard.js`) swaps what changed, filters by
//! keyboard and sends the actions. Actions are done as the signed-in identity: the local kubeconfig, or
//! in a cluster the user an authenticating proxy names in a header, by impersonation. `--read-only`
//! refuses them.

mod drift;
mod html;

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use axum::{
    Router,
    extract::{Path, Query, State as AxumState},
    http::{HeaderMap, StatusCode, header},
    response::{
        Html, IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
    routing::{get, post},
};
use driftless_api::kinds::{KINDS, Kind};
use futures::StreamExt;
use kube::{
    Api, Client,
    api::{DynamicObject, ListParams, Patch, PatchParams},
    runtime::{
        WatchStreamExt,
        reflector::{self, Store},
        watcher,
    },
};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::{
    cluster::Cluster,
    kind::is_static,
    objects::{Place, at},
    reconcile, tree, why,
};

/// The options of `driftless dashboard`.
#[derive(clap::Args, Clone, Debug)]
pub struct Options {
    /// The port to listen on (0: any free one).
    #[arg(long, default_value_t = 9080)]
    pub port: u16,
    /// The address to listen on: loopback by default; `0.0.0.0` in a cluster.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: IpAddr,
    /// Do not open the browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Refuse reconcile, suspend and resume.
    #[arg(long)]
    pub read_only: bool,
    /// In a cluster behind an authenticating proxy: the header naming the signed-in user, whom actions
    /// impersonate (requests without it may not act).
    #[arg(long)]
    pub user_header: Option<String>,
    /// With --user-header: the header listing the user's groups (comma-separated).
    #[arg(long)]
    pub groups_header: Option<String>,
}

/// One kind's objects, as its watch last saw them.
struct Watched {
    kind: &'static Kind,
    store: Store<DynamicObject>,
}

/// What every request shares.
struct Shared {
    cluster: Cluster,
    kinds: Vec<Watched>,
    /// Each change, as `(key, row HTML)`; `None` as the row when the object was deleted.
    changes: broadcast::Sender<Arc<(String, Option<String>)>>,
    options: Options,
    /// The namespace the watches are confined to, when listing every namespace is not allowed.
    confined: Option<String>,
}

type State = Arc<Shared>;

/// The objects of every watched kind, with their kind.
fn all(state: &Shared) -> Vec<(&'static Kind, Value)> {
    let mut out = Vec::new();
    for w in &state.kinds {
        for o in w.store.state() {
            out.push((w.kind, value_of(w.kind, &o)));
        }
    }
    out
}

/// `o` as JSON, with its kind and apiVersion (a dynamic watch's objects may lack them).
fn value_of(kind: &Kind, o: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    v["kind"] = kind.kind.clone().into();
    v["apiVersion"] = kind.api_version().into();
    v
}

/// The object `kind` `namespace/name` from the watch cache.
fn cached(state: &Shared, kind: &str, namespace: &str, name: &str) -> Option<(&'static Kind, Value)> {
    let w = state.kinds.iter().find(|w| w.kind.kind == kind)?;
    let o = w.store.find(|o| {
        o.metadata.namespace.as_deref() == Some(namespace) && o.metadata.name.as_deref() == Some(name)
    })?;
    Some((w.kind, value_of(w.kind, &o)))
}

/// Serves the dashboard until interrupted.
pub async fn run(cluster: Cluster, options: Options) -> anyhow::Result<()> {
    let (changes, _) = broadcast::channel(4096);
    let confined = match Api::<k8s_openapi::api::core::v1::Namespace>::all(cluster.client.clone())
        .list_metadata(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => None,
        Err(kube::Error::Api(s)) if s.code == 403 => {
            eprintln!(
                "► listing every namespace is not allowed: showing namespace {}",
                cluster.namespace
            );
            Some(cluster.namespace.clone())
        }
        Err(e) => return Err(anyhow::anyhow!("cannot reach the cluster: {e}")),
    };
    let mut kinds = Vec::new();
    let mut watches = Vec::new();
    for kind in KINDS.iter() {
        let ar = kind.api_resource();
        let api: Api<DynamicObject> = match &confined {
            Some(ns) => Api::namespaced_with(cluster.client.clone(), ns, &ar),
            None => Api::all_with(cluster.client.clone(), &ar),
        };
        // a kind whose CRD is not installed (its controller is not) is left out
        if let Err(e) = api.list_metadata(&ListParams::default().limit(1)).await {
            eprintln!("► {} not shown: {e}", kind.kind);
            continue;
        }
        let writer = reflector::store::Writer::new(ar.clone());
        let store = writer.as_reader();
        let changes = changes.clone();
        // NB: managed fields are most of an object's size and no page shows them
        let stream = reflector::reflector(
            writer,
            watcher(api, watcher::Config::default())
                .default_backoff()
                .modify(|o: &mut DynamicObject| o.metadata.managed_fields = None),
        );
        watches.push(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let (o, deleted) = match event {
                    Ok(watcher::Event::Apply(o)) => (o, false),
                    Ok(watcher::Event::Delete(o)) => (o, true),
                    Ok(_) => continue,
                    Err(e) => {
                        tracing_free_log(&format!("watching {}: {e}", kind.kind));
                        continue;
                    }
                };
                if changes.receiver_count() == 0 {
                    continue;
                }
                let v = value_of(kind, &o);
                let key = html::key(
                    &kind.kind,
                    at(&v, "/metadata/namespace"),
                    at(&v, "/metadata/name"),
                );
                let row = (!deleted).then(|| html::row(kind, &v));
                let _ = changes.send(Arc::new((key, row)));
            }
        }));
        kinds.push(Watched { kind, store });
    }
    for w in &kinds {
        w.store.wait_until_ready().await.ok();
    }
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(options.address, options.port)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let open = !options.no_browser;
    let state = Arc::new(Shared {
        cluster,
        kinds,
        changes,
        options,
        confined,
    });
    let app = router(state);
    println!("► dashboard on {url} (Ctrl-C to stop)");
    if open {
        open_browser(&url);
    }
    let served = axum::serve(listener, app).with_graceful_shutdown(async {
        tokio::signal::ctrl_c().await.ok();
    });
    let result = served.await;
    for w in watches {
        w.abort();
    }
    Ok(result?)
}

/// A watch error, on stderr (the CLI has no tracing subscriber).
fn tracing_free_log(message: &str) {
    eprintln!("✗ {message}");
}

fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_err()
    {
        println!("► open {url} in a browser");
    }
}

fn router(state: State) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/counts", get(counts))
        .route("/healthz", get(healthz))
        .route("/events", get(events))
        .route("/assets/dashboard.css", get(css))
        .route("/assets/dashboard.js", get(js))
        .route("/live", get(live))
        .route("/o/{kind}/{namespace}/{name}", get(object))
        .route("/o/{kind}/{namespace}/{name}/tree", get(tree_page))
        .route("/o/{kind}/{namespace}/{name}/drift", get(drift_page))
        .route("/o/{kind}/{namespace}/{name}/{action}", post(action))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Refuses requests for another host name when bound to loopback (DNS rebinding: a web page elsewhere
/// may not read the cluster through the user's browser), and actions not sent by the dashboard's own
/// script (no cross-site form can set its header).
async fn guard(
    AxumState(state): AxumState<State>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if state.options.address.is_loopback() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if !matches!(name, "127.0.0.1" | "localhost" | "[::1]") {
            return (StatusCode::FORBIDDEN, "the dashboard answers on localhost only").into_response();
        }
    }
    if request.method() == axum::http::Method::POST && !request.headers().contains_key("x-driftless-action") {
        return (StatusCode::FORBIDDEN, "actions are sent by the dashboard's page").into_response();
    }
    next.run(request).await
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/dashboard.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/dashboard.js"),
    )
        .into_response()
}

/// The overview's filters.
#[derive(Deserialize, Default)]
struct Filter {
    /// Words every shown object's kind, namespace, name, reason or message contains.
    #[serde(default)]
    q: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    namespace: String,
    /// `failing`, `ready`, `progressing`, `suspended`.
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: usize,
}

async fn overview(AxumState(state): AxumState<State>, Query(filter): Query<Filter>) -> Html<String> {
    let objects = all(&state);
    Html(html::overview(
        &objects,
        &filter,
        state.options.read_only,
        state.confined.as_deref(),
    ))
}

/// Liveness and readiness: every watch has listed its kind once (the server starts after that).
async fn healthz() -> &'static str {
    "ok"
}

async fn counts(AxumState(state): AxumState<State>) -> Html<String> {
    Html(html::counts(&all(&state)))
}

/// Server-sent events: each change as its key and new row (`change`), or its key alone (`gone`).
async fn events(AxumState(state): AxumState<State>) -> impl IntoResponse {
    let rx = state.changes.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(change) => match &change.1 {
                Some(row) => SseEvent::default()
                    .event("change")
                    .data(serde_json::json!({"key": change.0, "row": row}).to_string()),
                None => SseEvent::default().event("gone").data(change.0.clone()),
            },
            // too slow to keep up: the page reloads what it shows
            Err(broadcast::error::RecvError::Lagged(_)) => SseEvent::default().event("reload").data(""),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[derive(Deserialize)]
struct Fragment {
    #[serde(default)]
    fragment: bool,
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(html::page(
            "Not found",
            &format!("<p class=\"error\">{}</p>", html::esc(what)),
        )),
    )
        .into_response()
}

async fn object(
    AxumState(state): AxumState<State>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    Query(fragment): Query<Fragment>,
) -> Response {
    let Some((k, o)) = cached(&state, &kind, &namespace, &name) else {
        return not_found(&format!("{kind} {namespace}/{name} not found"));
    };
    let client = &state.cluster.client;
    let root = why::Ref {
        kind: kind.clone(),
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let mut chain = String::new();
    let ready = why::explain(client, &root, &mut chain).await;
    let chain = match ready {
        Ok(true) => None,
        Ok(false) => Some(chain),
        Err(e) => Some(format!("{chain}(cannot follow further: {e})\n")),
    };
    let dependencies = why::dependencies(&kind, &namespace, &o);
    let mut sources = Vec::new();
    for (relation, dep) in &dependencies {
        if *relation == "source" || *relation == "includes" {
            sources.push((
                dep.clone(),
                cached(&state, &dep.kind, &dep.namespace, &dep.name).map(|(_, v)| v),
            ));
        }
    }
    let needed_by: Vec<why::Ref> = all(&state)
        .iter()
        .filter(|(dk, dv)| {
            why::dependencies(&dk.kind, at(dv, "/metadata/namespace"), dv)
                .iter()
                .any(|(_, d)| *d == root)
        })
        .map(|(dk, dv)| why::Ref {
            kind: dk.kind.clone(),
            namespace: at(dv, "/metadata/namespace").to_string(),
            name: at(dv, "/metadata/name").to_string(),
        })
        .collect();
    let events = object_events(client, &kind, &namespace, &name, at(&o, "/metadata/uid")).await;
    let page = html::ObjectPage {
        kind: k,
        object: &o,
        why: chain.as_deref(),
        dependencies: &dependencies,
        needed_by: &needed_by,
        sources: &sources,
        events: &events,
        read_only: state.options.read_only,
        actions: !is_static(&k.kind),
    };
    let body = html::object(&page);
    if fragment.fragment {
        Html(body).into_response()
    } else {
        Html(html::page(&format!("{kind} {namespace}/{name}"), &body)).into_response()
    }
}

/// The object's Kubernetes Events, newest first.
async fn object_events(client: &Client, kind: &str, namespace: &str, name: &str, uid: &str) -> Vec<Value> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), namespace);
    let selector = format!("involvedObject.kind={kind},involvedObject.name={name}");
    let Ok(list) = api.list(&ListParams::default().fields(&selector)).await else {
        return Vec::new();
    };
    let mut events: Vec<Value> = list
        .items
        .into_iter()
        .filter(|e| uid.is_empty() || e.involved_object.uid.as_deref().is_none_or(|u| u == uid))
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect();
    let time = |e: &Value| {
        [
            at(e, "/lastTimestamp"),
            at(e, "/eventTime"),
            at(e, "/metadata/creationTimestamp"),
        ]
        .into_iter()
        .find(|t| !t.is_empty())
        .unwrap_or_default()
        .to_string()
    };
    events.sort_by_key(|e| std::cmp::Reverse(time(e)));
    events.truncate(50);
    events
}

async fn tree_page(
    AxumState(state): AxumState<State>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    Query(fragment): Query<Fragment>,
) -> Response {
    let Some((_, o)) = cached(&state, &kind, &namespace, &name) else {
        return not_found(&format!("{kind} {namespace}/{name} not found"));
    };
    let body = match tree::children(&state.cluster.client, &o, 0).await {
        Ok(nodes) => html::tree(&kind, &namespace, &name, &nodes),
        Err(e) => format!("<p class=\"error\">{}</p>", html::esc(&format!("{e:#}"))),
    };
    if fragment.fragment {
        Html(body).into_response()
    } else {
        Html(html::page(&format!("Tree of {kind} {namespace}/{name}"), &body)).into_response()
    }
}

async fn drift_page(
    AxumState(state): AxumState<State>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Response {
    if kind != "Kustomization" {
        return not_found("drift is computed for Kustomizations");
    }
    let body = match drift::compute(&state.cluster, &namespace, &name).await {
        Ok(report) => html::drift(&namespace, &name, &report),
        Err(e) => format!(
            "<h1>Drift of Kustomization {}/{}</h1><p class=\"error\">{}</p>",
            html::esc(&namespace),
            html::esc(&name),
            html::esc(&format!("{e:#}"))
        ),
    };
    Html(html::page(
        &format!("Drift of Kustomization {namespace}/{name}"),
        &body,
    ))
    .into_response()
}

/// `/live?apiVersion=&kind=&namespace=&name=`: an object's live YAML, Secret values masked.
async fn live(AxumState(state): AxumState<State>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let place = Place {
        api_version: get("apiVersion"),
        kind: get("kind"),
        namespace: get("namespace"),
        name: get("name"),
    };
    let label = tree::label(&place);
    match crate::objects::get(&state.cluster.client, &place).await {
        Ok(Some(o)) => Html(html::page(&label, &html::live(&label, &o))).into_response(),
        Ok(None) => not_found(&format!("{label} not found")),
        Err(e) => not_found(&format!("{label}: {e:#}")),
    }
}

/// The client an action runs as: the dashboard's own, or the proxy's user impersonated.
fn acting_client(state: &Shared, headers: &HeaderMap) -> Result<Client, (StatusCode, String)> {
    let Some(user_header) = &state.options.user_header else {
        return Ok(state.cluster.client.clone());
    };
    let user = headers
        .get(user_header.as_str())
        .and_then(|v| v.to_str().ok())
        .filter(|u| !u.is_empty())
        .ok_or((
            StatusCode::UNAUTHORIZED,
            format!("no signed-in user: the request has no {user_header} header"),
        ))?;
    let mut config = state.cluster.config.clone();
    config.auth_info.impersonate = Some(user.to_string());
    config.auth_info.impersonate_groups = state.options.groups_header.as_ref().map(|h| {
        headers
            .get(h.as_str())
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(String::from)
            .collect()
    });
    Client::try_from(config).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// POST `/o/{kind}/{namespace}/{name}/{reconcile|suspend|resume}`: the merge patch `driftless reconcile`,
/// `suspend` or `resume` sends, as the signed-in identity. The answer is a sentence for the page.
async fn action(
    AxumState(state): AxumState<State>,
    Path((kind, namespace, name, action)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if state.options.read_only {
        return (
            StatusCode::FORBIDDEN,
            "read-only dashboard: reconcile, suspend and resume are turned off (--read-only)",
        )
            .into_response();
    }
    let Some((k, o)) = cached(&state, &kind, &namespace, &name) else {
        return (
            StatusCode::NOT_FOUND,
            format!("{kind} {namespace}/{name} not found"),
        )
            .into_response();
    };
    if is_static(&k.kind) {
        return (StatusCode::BAD_REQUEST, format!("a {kind} is not reconciled")).into_response();
    }
    let patch = match action.as_str() {
        "reconcile" if o.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) => {
            return (StatusCode::CONFLICT, "the object is suspended: resume it first").into_response();
        }
        "reconcile" => reconcile::request_patch(k, reconcile::Options::default()),
        "suspend" => reconcile::suspend_patch(k, true),
        "resume" => reconcile::suspend_patch(k, false),
        other => return (StatusCode::NOT_FOUND, format!("no action {other}")).into_response(),
    };
    let client = match acting_client(&state, &headers) {
        Ok(c) => c,
        Err((code, message)) => return (code, message).into_response(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client, &namespace, &k.api_resource());
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            let done = match action.as_str() {
                "reconcile" => "reconcile requested",
                "suspend" => "suspended",
                _ => "resumed",
            };
            (StatusCode::OK, format!("{kind} {namespace}/{name} {done}")).into_response()
        }
        Err(kube::Error::Api(s)) => (
            StatusCode::from_u16(s.code).unwrap_or(StatusCode::BAD_GATEWAY),
            format!("the API server refused: {}", s.message),
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("the API server could not be reached: {e}"),
        )
            .into_response(),
    }
}
