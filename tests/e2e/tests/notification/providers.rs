//! Every provider's payload, sent by the real delivery code to a local HTTP server that records it.

use std::{collections::BTreeMap, time::Duration};

use driftless_runtime::events::{FluxEvent, Severity};
use k8s_openapi::api::core::v1::ObjectReference;
use notification_controller::provider::{Target, clean_metadata, http_client, send};

use super::*;

fn event() -> FluxEvent {
    let mut e = FluxEvent {
        involved_object: ObjectReference {
            api_version: Some("kustomize.toolkit.fluxcd.io/v1".into()),
            kind: Some("Kustomization".into()),
            name: Some("apps".into()),
            namespace: Some("flux-system".into()),
            ..Default::default()
        },
        severity: Severity::Info,
        timestamp: "2026-11-22T00:00:00Z".into(),
        message: "Deployment/apps/web configured".into(),
        reason: "ReconciliationSucceeded".into(),
        metadata: BTreeMap::from([(
            "kustomize.toolkit.fluxcd.io/revision".into(),
            "main@sha1:0123456789ab".into(),
        )]),
        reporting_controller: "kustomize-controller".into(),
        reporting_instance: String::new(),
    };
    e.metadata = clean_metadata(&e);
    e
}

#[tokio::test]
async fn each_provider_delivers_its_documented_payload() {
    let (base, seen) = recorder().await;
    let http = http_client().unwrap();
    let target = |type_: &str, address: String| Target {
        type_: type_.into(),
        address,
        token: Some("tok".into()),
        channel: Some("room".into()),
        timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("generic", format!("{base}/generic"), "/generic", "/message"),
        ("generic-hmac", format!("{base}/hmac"), "/hmac", "/message"),
        (
            "slack",
            format!("{base}/slack-hook"),
            "/slack-hook",
            "/attachments/0/text",
        ),
        (
            "rocket",
            format!("{base}/rocket"),
            "/rocket",
            "/attachments/0/text",
        ),
        (
            "discord",
            format!("{base}/api/webhooks/1/x"),
            "/api/webhooks/1/x/slack",
            "/attachments/0/text",
        ),
        (
            "msteams",
            format!("{base}/teams"),
            "/teams",
            "/attachments/0/content/body/1/text",
        ),
        (
            "googlechat",
            format!("{base}/chat"),
            "/chat",
            "/cards/0/sections/0/widgets/0/textParagraph/text",
        ),
        ("telegram", base.clone(), "/bottok/sendMessage", "/text"),
        (
            "matrix",
            base.clone(),
            "/_matrix/client/r0/rooms/room/send/m.room.message/",
            "/body",
        ),
        (
            "alertmanager",
            format!("{base}/api/v2/alerts"),
            "/api/v2/alerts",
            "/0/annotations/message",
        ),
        (
            "github",
            format!("{base}/org/app"),
            "/api/v3/repos/org/app/statuses/0123456789ab",
            "/description",
        ),
        (
            "gitlab",
            format!("{base}/group/app"),
            "/api/v4/projects/group%2Fapp/statuses/0123456789ab",
            "/description",
        ),
        (
            "gitea",
            format!("{base}/org/app"),
            "/api/v1/repos/org/app/statuses/0123456789ab",
            "/description",
        ),
    ];
    for (type_, address, path, message_at) in cases {
        seen.lock().unwrap().clear();
        send(&http, &target(type_, address), &event()).await.unwrap();
        let (got_path, body) = seen.lock().unwrap().first().cloned().unwrap();
        assert!(got_path.starts_with(path), "{type_}: {got_path}");
        let message = body
            .pointer(message_at)
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(
            message.contains("Deployment/apps/web configured"),
            "{type_}: {body}"
        );
    }
}

#[tokio::test]
async fn a_proxy_carries_the_delivery() {
    let (proxy, seen) = recorder().await;
    let t = Target {
        type_: "generic".into(),
        address: "http://provider.invalid/hook".into(),
        timeout: Duration::from_secs(2),
        proxy: Some((proxy, Some(("user".into(), "pass".into())))),
        ..Default::default()
    };
    send(&http_client().unwrap(), &t, &event()).await.unwrap();
    assert_eq!(seen.lock().unwrap()[0].0, "/hook");
}

#[tokio::test]
async fn a_dead_endpoint_is_retried_then_reported() {
    let t = Target {
        type_: "generic".into(),
        address: "http://127.0.0.1:9/hook".into(),
        timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let err = send(&http_client().unwrap(), &t, &event())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() >= Duration::from_millis(3000),
        "three backoffs: 0.5 + 1 + 2 s"
    );
    assert!(
        err.starts_with("sending the event failed: http://127.0.0.1"),
        "{err}"
    );
}
