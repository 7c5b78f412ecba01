//! Receivers: the reconciler gives each Receiver its path, `/hook/` + hex(sha256(token + name +
//! namespace)), and Ready; the server on `--receiverAddr` verifies each hook as its sender signs it and
//! sets `reconcile.fluxcd.io/requestedAt` on every resource the Receiver names, which makes them reconcile
//! at once. A hook that does not verify is refused before any API call.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Instant,
};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use driftless_api::{
    meta::{
        RECONCILE_REQUEST_ANNOTATION,
        conditions::{READY, RECONCILING, STALLED, reasons},
    },
    notification::{Receiver, ReceiverResource},
};
use driftless_runtime::{
    conditions, controller as run_loop,
    error::{ErrorClass, ReconcileError, api_message},
    manager::{watched_api, watcher_config},
    request::{handled_request, is_suspended},
    status::apply_status,
};
use hmac::{Hmac, KeyInit, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, ListParams, Patch, PatchParams},
    core::GroupVersionKind,
    discovery::ApiResource,
    runtime::controller::Action,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::{Context, FIELD_MANAGER};

/// Flux's kind name.
pub const KIND: &str = "Receiver";

/// The receiver types this controller verifies.
pub const TYPES: [&str; 12] = [
    "gcr",
    "generic",
    "generic-hmac",
    "github",
    "gitlab",
    "bitbucket",
    "harbor",
    "dockerhub",
    "quay",
    "nexus",
    "acr",
    "cdevents",
];

/// A ready Receiver, as the hook server needs it.
#[derive(Clone, Debug)]
pub struct Entry {
    namespace: String,
    name: String,
    type_: String,
    token: String,
    events: Vec<String>,
    resources: Vec<ReceiverResource>,
    filter: Option<String>,
}

/// Ready Receivers by webhook path, kept by the reconciler.
#[derive(Default)]
pub struct Paths(RwLock<HashMap<String, Entry>>);

impl Paths {
    fn set(&self, path: String, entry: Entry) {
        let mut paths = self.0.write().expect("paths lock");
        paths.retain(|_, e| !(e.namespace == entry.namespace && e.name == entry.name));
        paths.insert(path, entry);
    }

    fn remove(&self, namespace: &str, name: &str) {
        self.0
            .write()
            .expect("paths lock")
            .retain(|_, e| !(e.namespace == namespace && e.name == name));
    }

    fn get(&self, path: &str) -> Option<Entry> {
        self.0.read().expect("paths lock").get(path).cloned()
    }
}

/// `/hook/` + hex(sha256(token + name + namespace)), Flux's path.
pub fn webhook_path(token: &str, name: &str, namespace: &str) -> String {
    format!(
        "/hook/{}",
        hex::encode(Sha256::digest(format!("{token}{name}{namespace}").as_bytes()))
    )
}

/// A reconcile failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token Secret is missing or has no `token`.
    #[error("{0}")]
    Token(String),
    /// The spec cannot work.
    #[error("{0}")]
    InvalidSpec(String),
    /// The API server failed.
    #[error("kubernetes API: {}", api_message(.0))]
    Kube(#[source] kube::Error),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::Token(_) => reasons::TOKEN_NOT_FOUND,
            Error::InvalidSpec(_) => reasons::INVALID_SPEC,
            Error::Kube(_) => reasons::RECONCILIATION_FAILED,
        }
    }

    fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidSpec(_) => ErrorClass::Stalled,
            _ => ErrorClass::Transient,
        }
    }
}

/// Reconciles Receivers until the stream ends.
pub async fn run(ctx: Arc<Context>, paths: Arc<Paths>) {
    let api: Api<Receiver> = watched_api(ctx.client.clone(), &ctx.config);
    let (ctrl, _) = run_loop::for_kind(
        api,
        watcher_config(&ctx.config),
        ctx.config.concurrent,
        ctx.metrics.progress.clone(),
    );
    let state = Arc::new((ctx, paths));
    run_loop::drain(ctrl.run(reconcile, error_policy, state)).await;
}

type Shared = (Arc<Context>, Arc<Paths>);

fn error_policy(obj: Arc<Receiver>, err: &Error, state: Arc<Shared>) -> Action {
    let ctx = &state.0;
    ctx.metrics.count_error(KIND, err.reason());
    let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    ctx.retry.on_error(&key, err.class(), None)
}

async fn token(ctx: &Context, obj: &Receiver) -> Result<String, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj
        .spec
        .secret_ref
        .as_ref()
        .map(|r| r.name.clone())
        .ok_or_else(|| {
            Error::InvalidSpec("spec.secretRef is required: the Secret holding the token".into())
        })?;
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&name)
        .await
        .map_err(Error::Kube)?
        .ok_or_else(|| {
            Error::Token(format!(
                "unable to read token from secret '{ns}/{name}': not found"
            ))
        })?;
    secret
        .data
        .unwrap_or_default()
        .get("token")
        .map(|t| String::from_utf8_lossy(&t.0).trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::Token(format!(
                "invalid '{ns}/{name}' secret data: required field 'token'"
            ))
        })
}

async fn reconcile(obj: Arc<Receiver>, state: Arc<Shared>) -> Result<Action, Error> {
    let (ctx, paths) = (&state.0, &state.1);
    let started = Instant::now();
    let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    if obj.metadata.deletion_timestamp.is_some() {
        paths.remove(&ns, &name);
        return Ok(Action::await_change());
    }
    let api: Api<Receiver> = Api::namespaced(ctx.client.clone(), &ns);
    let old = obj.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let generation = obj.metadata.generation;
    let result = async {
        if is_suspended(obj.spec.suspend) {
            paths.remove(&ns, &name);
            return Ok(None);
        }
        if !TYPES.contains(&obj.spec.type_.as_str()) {
            return Err(Error::InvalidSpec(format!(
                "receiver type '{}' is not supported by driftless yet (supported: {})",
                obj.spec.type_,
                TYPES.join(", ")
            )));
        }
        let filters = obj
            .spec
            .resource_filter
            .iter()
            .chain(obj.spec.resources.iter().filter_map(|r| r.filter.as_ref()))
            .filter(|f| !f.is_empty());
        for f in filters {
            driftless_runtime::cel::compile(f)
                .map_err(|e| Error::InvalidSpec(format!("invalid CEL expression '{f}': {e}")))?;
        }
        let token = token(ctx, &obj).await?;
        let path = webhook_path(&token, &name, &ns);
        paths.set(
            path.clone(),
            Entry {
                namespace: ns.clone(),
                name: name.clone(),
                type_: obj.spec.type_.clone(),
                token,
                events: obj.spec.events.clone().unwrap_or_default(),
                resources: obj.spec.resources.clone(),
                filter: obj.spec.resource_filter.clone().filter(|f| !f.is_empty()),
            },
        );
        Ok(Some(path))
    }
    .await;
    status.observed_generation = generation;
    status.reconcile_request.last_handled_reconcile_at = handled_request(
        obj.as_ref(),
        old.reconcile_request.last_handled_reconcile_at.as_deref(),
    );
    conditions::delete(&mut status.conditions, RECONCILING);
    match &result {
        Ok(Some(path)) => {
            conditions::delete(&mut status.conditions, STALLED);
            conditions::mark_true(
                &mut status.conditions,
                READY,
                reasons::SUCCEEDED,
                &format!("Receiver initialized for path: {path}"),
                generation,
            );
            status.webhook_path = Some(path.clone());
        }
        Ok(None) => {}
        Err(e) => {
            paths.remove(&ns, &name);
            conditions::mark_failed_attempt(
                &mut status.conditions,
                e.class(),
                "Reconciliation in progress",
                generation,
            );
            if e.class() == ErrorClass::Stalled {
                conditions::mark_stalled(&mut status.conditions, e.reason(), &e.to_string(), generation);
            }
            conditions::mark_false(
                &mut status.conditions,
                READY,
                e.reason(),
                &e.to_string(),
                generation,
            );
            warn!(receiver = %format!("{ns}/{name}"), reason = e.reason(), error = %e, "receiver not ready");
        }
    }
    apply_status(&api, &name, FIELD_MANAGER, Some(&old), &status)
        .await
        .map_err(Error::Kube)?;
    ctx.metrics.observe_reconcile(KIND, &name, &ns, started.elapsed());
    result?;
    Ok(Action::await_change())
}

struct Hooks {
    ctx: Arc<Context>,
    paths: Arc<Paths>,
    tokeninfo: String,
}

/// The hook server's router and the path table the reconciler fills; `tokeninfo` is where Google ID
/// tokens of `gcr` hooks are checked.
pub fn router(ctx: Arc<Context>, max_body: usize, tokeninfo: &str) -> (Router, Arc<Paths>) {
    let paths = Arc::new(Paths::default());
    let state = Arc::new(Hooks {
        ctx,
        paths: paths.clone(),
        tokeninfo: tokeninfo.to_string(),
    });
    let router = Router::new()
        .route("/hook/{digest}", post(hook))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state);
    (router, paths)
}

/// The value of `name` in an `application/x-www-form-urlencoded` body, decoded.
fn url_form_field(body: &[u8], name: &str) -> Option<Vec<u8>> {
    let decode = |v: &[u8]| -> Vec<u8> {
        let mut out = Vec::with_capacity(v.len());
        let mut i = 0;
        while i < v.len() {
            match v[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < v.len() => {
                    match std::str::from_utf8(&v[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        out
    };
    body.split(|b| *b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        (decode(k) == name.as_bytes()).then(|| decode(v))
    })
}

/// What a verified hook asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Annotate the resources.
    Reconcile,
    /// A ping: answer, do nothing.
    Ping,
}

fn hmac_ok(algo: &str, token: &str, body: &[u8], hex_sig: &str) -> bool {
    let Ok(sig) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    macro_rules! check {
        ($hash:ty) => {{
            let mut mac = <Hmac<$hash> as KeyInit>::new_from_slice(token.as_bytes()).expect("any key");
            mac.update(body);
            mac.verify_slice(&sig).is_ok()
        }};
    }
    match algo {
        "sha1" => check!(sha1::Sha1),
        "sha256" => check!(sha2::Sha256),
        "sha512" => check!(sha2::Sha512),
        _ => false,
    }
}

/// `algo=hex` signature header (`sha256=…`).
fn signed(headers: &HeaderMap, name: &str, token: &str, body: &[u8]) -> Result<(), (StatusCode, String)> {
    let value = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or((StatusCode::UNAUTHORIZED, format!("missing {name} header")))?;
    let (algo, sig) = value
        .split_once('=')
        .ok_or((StatusCode::UNAUTHORIZED, format!("malformed {name} header")))?;
    if hmac_ok(&algo.to_lowercase(), token, body, sig) {
        Ok(())
    } else {
        Err((StatusCode::UNAUTHORIZED, "the signature does not match".into()))
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Constant-time comparison of a shared token.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn allowed(events: &[String], event: Option<&str>, what: &str) -> Result<(), (StatusCode, String)> {
    if events.is_empty() {
        return Ok(());
    }
    match event {
        Some(e) if events.iter().any(|a| a.eq_ignore_ascii_case(e)) => Ok(()),
        Some(e) => Err((
            StatusCode::BAD_REQUEST,
            format!("{what} event '{e}' is not in the receiver's events"),
        )),
        None => Err((StatusCode::BAD_REQUEST, format!("missing {what} event type"))),
    }
}

/// Checks a hook as its sender signs it; nothing here calls the API server.
pub fn verify(
    type_: &str,
    token: &str,
    events: &[String],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verdict, (StatusCode, String)> {
    let json_body = || {
        serde_json::from_slice::<serde_json::Value>(body)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("malformed payload: {e}")))
    };
    match type_ {
        "generic" => Ok(Verdict::Reconcile),
        "generic-hmac" => signed(headers, "X-Signature", token, body).map(|()| Verdict::Reconcile),
        "github" => {
            if headers.contains_key("X-Hub-Signature-256") {
                signed(headers, "X-Hub-Signature-256", token, body)?;
            } else {
                signed(headers, "X-Hub-Signature", token, body)?;
            }
            let event = header(headers, "X-GitHub-Event");
            if event == Some("ping") {
                return Ok(Verdict::Ping);
            }
            allowed(events, event, "GitHub")?;
            // NB: as Flux (go-github's ParseWebHook), a signed body that is not a JSON payload (or a
            // form with one in `payload`) is refused, not taken as a push
            let form = header(headers, "Content-Type")
                .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
            let payload = if form {
                url_form_field(body, "payload").unwrap_or_default()
            } else {
                body.to_vec()
            };
            serde_json::from_slice::<serde_json::Value>(&payload).map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("unable to parse the GitHub payload: {e}"),
                )
            })?;
            Ok(Verdict::Reconcile)
        }
        "gitlab" => {
            let given = header(headers, "X-Gitlab-Token").unwrap_or_default();
            if !same(given, token) {
                return Err((
                    StatusCode::UNAUTHORIZED,
                    "the X-Gitlab-Token does not match".into(),
                ));
            }
            allowed(events, header(headers, "X-Gitlab-Event"), "GitLab")?;
            Ok(Verdict::Reconcile)
        }
        "bitbucket" => {
            signed(headers, "X-Hub-Signature", token, body)?;
            let event = header(headers, "X-Event-Key");
            if event == Some("diagnostics:ping") {
                return Ok(Verdict::Ping);
            }
            allowed(events, event, "Bitbucket")?;
            Ok(Verdict::Reconcile)
        }
        "harbor" => {
            if !same(header(headers, "Authorization").unwrap_or_default(), token) {
                return Err((
                    StatusCode::UNAUTHORIZED,
                    "the Authorization header does not match".into(),
                ));
            }
            Ok(Verdict::Reconcile)
        }
        "nexus" => {
            let sig = header(headers, "X-Nexus-Webhook-Signature").ok_or((
                StatusCode::UNAUTHORIZED,
                "missing X-Nexus-Webhook-Signature header".into(),
            ))?;
            if !hmac_ok("sha1", token, body, sig) {
                return Err((StatusCode::UNAUTHORIZED, "the signature does not match".into()));
            }
            Ok(Verdict::Reconcile)
        }
        "dockerhub" | "quay" | "acr" => {
            let payload = json_body()?;
            let field = match type_ {
                "dockerhub" => "/callback_url",
                "quay" => "/docker_url",
                _ => "/target/repository",
            };
            if payload.pointer(field).is_none() {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("the payload has no {}", &field[1..]),
                ));
            }
            Ok(Verdict::Reconcile)
        }
        "cdevents" => {
            allowed(events, header(headers, "Ce-Type"), "CDEvents")?;
            json_body()?;
            Ok(Verdict::Reconcile)
        }
        "gcr" => {
            // the Google ID token is checked by `verify_gcr`; here, the Pub/Sub message of a push
            let payload = json_body()?;
            let data = payload.pointer("/message/data").and_then(|d| d.as_str()).ok_or((
                StatusCode::BAD_REQUEST,
                "the payload has no message.data".to_string(),
            ))?;
            let decoded =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data).map_err(|e| {
                    (
                        StatusCode::BAD_REQUEST,
                        format!("message.data is not base64: {e}"),
                    )
                })?;
            let action = serde_json::from_slice::<serde_json::Value>(&decoded)
                .ok()
                .and_then(|d| d.get("action").and_then(|a| a.as_str()).map(str::to_string));
            match action.as_deref() {
                Some("INSERT") => Ok(Verdict::Reconcile),
                Some(other) => Err((
                    StatusCode::BAD_REQUEST,
                    format!("GCR action '{other}' is not INSERT"),
                )),
                None => Err((StatusCode::BAD_REQUEST, "message.data has no action".into())),
            }
        }
        other => Err((
            StatusCode::BAD_REQUEST,
            format!("receiver type '{other}' is not supported"),
        )),
    }
}

/// A `gcr` hook's `Authorization: Bearer <Google ID token>`, checked at Google's tokeninfo endpoint as
/// Flux does: it must answer 200 with `email_verified`.
async fn verify_gcr(
    http: &reqwest::Client,
    tokeninfo: &str,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, String)> {
    let token = header(headers, "Authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty())
        .ok_or((
            StatusCode::UNAUTHORIZED,
            "missing or malformed bearer token".to_string(),
        ))?;
    let refused = |why: String| {
        (
            StatusCode::UNAUTHORIZED,
            format!("unable to verify the token: {why}"),
        )
    };
    let url = reqwest::Url::parse_with_params(tokeninfo, &[("id_token", token)])
        .map_err(|e| refused(format!("--gcr-tokeninfo-url: {e}")))?;
    let answer = http
        .get(url)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| refused(e.without_url().to_string()))?;
    if !answer.status().is_success() {
        return Err(refused(format!("tokeninfo answered {}", answer.status())));
    }
    let claims: serde_json::Value = answer.json().await.map_err(|e| refused(e.to_string()))?;
    let verified = claims
        .get("email_verified")
        .is_some_and(|v| v == "true" || v == &serde_json::Value::Bool(true));
    if !verified {
        return Err(refused("the token's email is not verified".into()));
    }
    Ok(())
}

/// The apiVersion Flux assumes for a resource kind without one.
fn default_api_version(kind: &str) -> String {
    driftless_api::kinds::get(kind).map_or_else(|| "source.toolkit.fluxcd.io/v1".into(), |k| k.api_version())
}

/// Whether `res` passes the Receiver's `resourceFilter` and the resource entry's `filter` (CEL, with
/// `res` the resource and `req` the hook's JSON body).
fn filtered_in(
    filters: &[&String],
    res: &serde_json::Value,
    req: &serde_json::Value,
) -> Result<bool, String> {
    for f in filters {
        let program = driftless_runtime::cel::compiled(f)?;
        if !driftless_runtime::cel::eval_bool(&program, &[("res", res), ("req", req)])? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Sets `requestedAt` on every resource the Receiver names (and its filters let through); returns how many.
async fn request_reconcile(ctx: &Context, entry: &Entry, body: &[u8]) -> Result<usize, String> {
    let req: serde_json::Value =
        serde_json::from_slice(body).unwrap_or(serde_json::Value::Object(Default::default()));
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: now}}});
    let mut count = 0;
    for r in &entry.resources {
        let ns = r.namespace.clone().unwrap_or_else(|| entry.namespace.clone());
        if ctx.config.no_cross_namespace_refs && ns != entry.namespace {
            return Err(format!(
                "cannot access {}/{ns}/{}, cross-namespace references have been blocked",
                r.kind, r.name
            ));
        }
        let api_version = r
            .api_version
            .clone()
            .unwrap_or_else(|| default_api_version(&r.kind));
        let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &r.kind));
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ar);
        let filters: Vec<&String> = entry
            .filter
            .iter()
            .chain(r.filter.iter().filter(|f| !f.is_empty()))
            .collect();
        let mut names: Vec<String> = if r.name == "*" {
            let selector = r
                .match_labels
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            api.list_metadata(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| format!("listing {} in {ns}: {}", r.kind, api_message(&e)))?
                .items
                .into_iter()
                .map(|o| o.name_any())
                .collect()
        } else {
            vec![r.name.clone()]
        };
        if !filters.is_empty() {
            let mut kept = Vec::new();
            for name in names {
                let Some(obj) = api
                    .get_opt(&name)
                    .await
                    .map_err(|e| format!("reading {}/{ns}/{name}: {}", r.kind, api_message(&e)))?
                else {
                    continue;
                };
                let res = serde_json::to_value(obj).map_err(|e| e.to_string())?;
                if filtered_in(&filters, &res, &req)
                    .map_err(|e| format!("filter of {}/{ns}/{name}: {e}", r.kind))?
                {
                    kept.push(name);
                }
            }
            names = kept;
        }
        for name in names {
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| format!("annotating {}/{ns}/{name}: {}", r.kind, api_message(&e)))?;
            count += 1;
        }
    }
    Ok(count)
}

async fn hook(
    State(hooks): State<Arc<Hooks>>,
    Path(digest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path = format!("/hook/{digest}");
    let Some(entry) = hooks.paths.get(&path) else {
        return (StatusCode::NOT_FOUND, "no receiver at this path".into());
    };
    if entry.type_ == "gcr"
        && let Err((status, message)) = verify_gcr(&hooks.ctx.http, &hooks.tokeninfo, &headers).await
    {
        info!(receiver = %format!("{}/{}", entry.namespace, entry.name), %status, message, "hook refused");
        return (status, message);
    }
    let verdict = match verify(&entry.type_, &entry.token, &entry.events, &headers, &body) {
        Ok(v) => v,
        Err((status, message)) => {
            info!(receiver = %format!("{}/{}", entry.namespace, entry.name), %status, message, "hook refused");
            return (status, message);
        }
    };
    if verdict == Verdict::Ping {
        return (StatusCode::OK, "pong".into());
    }
    match request_reconcile(&hooks.ctx, &entry, &body).await {
        Ok(n) => {
            info!(receiver = %format!("{}/{}", entry.namespace, entry.name), resources = n, "reconcile requested");
            (StatusCode::OK, String::new())
        }
        Err(message) => {
            warn!(receiver = %format!("{}/{}", entry.namespace, entry.name), error = %message, "hook not handled");
            (StatusCode::INTERNAL_SERVER_ERROR, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn sign(token: &str, body: &[u8]) -> String {
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(token.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_path_is_flux_s() {
        let want = format!(
            "/hook/{}",
            hex::encode(Sha256::digest(b"s3cretreceiverflux-system"))
        );
        assert_eq!(webhook_path("s3cret", "receiver", "flux-system"), want);
    }

    #[test]
    fn a_signed_github_hook_whose_body_is_not_a_json_payload_triggers_nothing() {
        let events = vec!["push".to_string()];
        let signed_push = |body: &[u8], form: bool| {
            let mut h = vec![
                ("X-Hub-Signature-256", sign("t", body)),
                ("X-GitHub-Event", "push".to_string()),
            ];
            if form {
                h.push(("Content-Type", "application/x-www-form-urlencoded".to_string()));
            }
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            verify("github", "t", &events, &headers(&h), body)
        };
        let refused = signed_push(b"not json", false).unwrap_err();
        assert_eq!(refused.0, StatusCode::BAD_REQUEST);
        assert!(refused.1.contains("payload"), "{}", refused.1);
        assert_eq!(
            signed_push(b"payload=%7B%22ref%22%3A+%22refs%2Fheads%2Fmain%22%7D", true),
            Ok(Verdict::Reconcile),
            "GitHub's form encoding carries the JSON in `payload`"
        );
        assert_eq!(
            signed_push(b"payload=nope", true).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn github_hooks_need_a_valid_signature_and_an_allowed_event() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let events = vec!["push".to_string()];
        let good = headers(&[
            ("X-Hub-Signature-256", &sign("t", body)),
            ("X-GitHub-Event", "push"),
        ]);
        assert_eq!(
            verify("github", "t", &events, &good, body),
            Ok(Verdict::Reconcile)
        );
        let bad = headers(&[
            ("X-Hub-Signature-256", &sign("other", body)),
            ("X-GitHub-Event", "push"),
        ]);
        assert_eq!(
            verify("github", "t", &events, &bad, body).unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );
        let missing = headers(&[("X-GitHub-Event", "push")]);
        assert_eq!(
            verify("github", "t", &events, &missing, body).unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );
        let other = headers(&[
            ("X-Hub-Signature-256", &sign("t", body)),
            ("X-GitHub-Event", "issues"),
        ]);
        assert_eq!(
            verify("github", "t", &events, &other, body).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
        let ping = headers(&[
            ("X-Hub-Signature-256", &sign("t", body)),
            ("X-GitHub-Event", "ping"),
        ]);
        assert_eq!(verify("github", "t", &events, &ping, body), Ok(Verdict::Ping));
    }

    #[test]
    fn gcr_pushes_must_be_inserts() {
        let message = |action: &str| {
            let data = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!(r#"{{"action":"{action}","tag":"gcr.io/p/app:1"}}"#),
            );
            format!(r#"{{"message":{{"data":"{data}","messageId":"1"}},"subscription":"s"}}"#).into_bytes()
        };
        assert_eq!(
            verify("gcr", "t", &[], &HeaderMap::new(), &message("INSERT")),
            Ok(Verdict::Reconcile)
        );
        assert_eq!(
            verify("gcr", "t", &[], &HeaderMap::new(), &message("DELETE"))
                .unwrap_err()
                .0,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn filters_see_the_resource_and_the_request() {
        let res = serde_json::json!({"metadata": {"name": "app", "labels": {"tier": "web"}}});
        let req = serde_json::json!({"tag": "v1.2.0-rc.1"});
        let f = |s: &str| s.to_string();
        let rc = f("req.tag.contains('-rc')");
        let web = f("res.metadata.labels.tier == 'web'");
        let db = f("res.metadata.name == 'db'");
        assert_eq!(filtered_in(&[&rc, &web], &res, &req), Ok(true));
        assert_eq!(filtered_in(&[&rc, &db], &res, &req), Ok(false));
        assert!(filtered_in(&[&f("res.(")], &res, &req).is_err());
    }

    #[test]
    fn other_senders() {
        let body = b"{}";
        assert!(verify("gitlab", "t", &[], &headers(&[("X-Gitlab-Token", "t")]), body).is_ok());
        assert!(verify("gitlab", "t", &[], &headers(&[("X-Gitlab-Token", "x")]), body).is_err());
        assert!(
            verify(
                "generic-hmac",
                "t",
                &[],
                &headers(&[("X-Signature", &sign("t", body))]),
                body
            )
            .is_ok()
        );
        assert!(verify("generic-hmac", "t", &[], &HeaderMap::new(), body).is_err());
        assert!(verify("harbor", "t", &[], &headers(&[("Authorization", "t")]), body).is_ok());
        assert!(verify("generic", "t", &[], &HeaderMap::new(), body).is_ok());
        assert!(verify("quay", "t", &[], &HeaderMap::new(), br#"{"docker_url":"x"}"#).is_ok());
        assert!(verify("quay", "t", &[], &HeaderMap::new(), b"nope").is_err());
    }
}
