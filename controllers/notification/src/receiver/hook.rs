//! The hook server: finds the Receiver of a path, verifies the hook ([`super::verify`]) and sets
//! `reconcile.fluxcd.io/requestedAt` on every resource the Receiver names and its filters let through.

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use driftless_api::meta::RECONCILE_REQUEST_ANNOTATION;
use driftless_runtime::error::api_message;
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, ListParams, Patch, PatchParams},
    core::GroupVersionKind,
    discovery::ApiResource,
};
use serde_json::json;
use tracing::{info, warn};

use super::{verify::verify_gcr, *};

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
        driftless_runtime::refs::cross_namespace(
            ctx.config.no_cross_namespace_refs,
            &entry.namespace,
            &r.kind,
            &ns,
            &r.name,
        )?;
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
    use super::*;

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
}
