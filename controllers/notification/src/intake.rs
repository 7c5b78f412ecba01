//! The event intake on `--events-addr`: `POST /` with Flux's event JSON. Malformed or incomplete events
//! are refused (400), bodies over the limit too (413), and an event identical to one accepted within
//! `--rate-limit-interval` (same object, message, revision and token, as Flux keys it) is answered 429.
//! Accepted events (202) are dispatched in the background, so a slow provider never blocks the intake.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    routing::post,
};
use driftless_runtime::events::FluxEvent;
use sha2::{Digest, Sha256};

use crate::{Context, alert};

struct Intake {
    ctx: Arc<Context>,
    window: Duration,
    seen: Mutex<HashMap<String, Instant>>,
}

/// The intake's router.
pub fn router(ctx: Arc<Context>, window: Duration, max_body: usize) -> Router {
    let state = Arc::new(Intake {
        ctx,
        window,
        seen: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/", post(receive))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Flux's rate-limit key: the object, the message, and the revision and token metadata when present.
pub fn rate_key(event: &FluxEvent) -> String {
    let o = &event.involved_object;
    let mut parts = vec![
        "event".to_string(),
        o.name.clone().unwrap_or_default(),
        o.namespace.clone().unwrap_or_default(),
        o.kind.clone().unwrap_or_default(),
        event.message.clone(),
    ];
    for suffix in ["revision", "token"] {
        if let Some((_, v)) = event
            .metadata
            .iter()
            .find(|(k, _)| *k == suffix || k.ends_with(&format!("/{suffix}")))
        {
            parts.push(v.clone());
        }
    }
    hex::encode(Sha256::digest(parts.join("/").as_bytes()))
}

/// What an event must have.
pub fn validate(event: &FluxEvent) -> Result<(), String> {
    let o = &event.involved_object;
    for (field, value) in [
        ("involvedObject.kind", o.kind.as_deref()),
        ("involvedObject.name", o.name.as_deref()),
        ("involvedObject.namespace", o.namespace.as_deref()),
        ("reason", Some(event.reason.as_str())),
        ("message", Some(event.message.as_str())),
        ("reportingController", Some(event.reporting_controller.as_str())),
    ] {
        if value.is_none_or(str::is_empty) {
            return Err(format!("invalid event: {field} is required"));
        }
    }
    Ok(())
}

async fn receive(State(intake): State<Arc<Intake>>, body: Bytes) -> (StatusCode, String) {
    let event: FluxEvent = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("malformed event: {e}")),
    };
    if let Err(message) = validate(&event) {
        return (StatusCode::BAD_REQUEST, message);
    }
    let key = rate_key(&event);
    {
        let now = Instant::now();
        let mut seen = intake.seen.lock().expect("rate limit lock");
        if seen.len() > 10_000 {
            seen.retain(|_, at| now.duration_since(*at) < intake.window);
        }
        match seen.get(&key) {
            Some(at) if now.duration_since(*at) < intake.window => {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    "duplicate event within the rate-limit interval".into(),
                );
            }
            _ => {
                seen.insert(key, now);
            }
        }
    }
    tokio::spawn(alert::dispatch(intake.ctx.clone(), event));
    (StatusCode::ACCEPTED, String::new())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use driftless_runtime::events::Severity;
    use k8s_openapi::api::core::v1::ObjectReference;

    use super::*;

    fn event(message: &str, revision: &str) -> FluxEvent {
        FluxEvent {
            involved_object: ObjectReference {
                kind: Some("Kustomization".into()),
                name: Some("apps".into()),
                namespace: Some("flux-system".into()),
                ..Default::default()
            },
            severity: Severity::Info,
            timestamp: String::new(),
            message: message.into(),
            reason: "ReconciliationSucceeded".into(),
            metadata: BTreeMap::from([("kustomize.toolkit.fluxcd.io/revision".into(), revision.into())]),
            reporting_controller: "kustomize-controller".into(),
            reporting_instance: String::new(),
        }
    }

    #[test]
    fn the_rate_key_is_the_object_message_and_revision() {
        assert_eq!(rate_key(&event("m", "1")), rate_key(&event("m", "1")));
        assert_ne!(rate_key(&event("m", "1")), rate_key(&event("m", "2")));
        assert_ne!(rate_key(&event("m", "1")), rate_key(&event("n", "1")));
    }

    #[test]
    fn incomplete_events_are_refused() {
        assert!(validate(&event("m", "1")).is_ok());
        let mut e = event("m", "1");
        e.involved_object.name = None;
        assert_eq!(
            validate(&e).unwrap_err(),
            "invalid event: involvedObject.name is required"
        );
    }
}
