//! notification-controller end to end, with source-controller and kustomize-controller, all three
//! impersonating their ServiceAccounts from `config/`: a GitHub-style signed push to a Receiver makes the
//! GitRepository fetch at once and the Kustomization apply, and the events reach a recording "Slack".

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use driftless_api::{
    kustomize::{CrossNamespaceSourceReference, Kustomization, KustomizationSpec},
    meta::{LocalObjectReference, RECONCILE_REQUEST_ANNOTATION},
    notification::{Receiver, ReceiverResource, ReceiverSpec},
    source::{GitRepository, GitRepositorySpec},
};
use driftless_e2e::Fleet;
use driftless_testkit::cluster::{TestNamespace, cluster};
use hmac::{Hmac, KeyInit, Mac};
use k8s_openapi::api::core::v1::{ConfigMap, Event as KubeEvent, Secret};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

mod providers;

type Recorded = Arc<Mutex<Vec<(String, Value)>>>;

/// An HTTP endpoint that records every POST (path, JSON body), as Slack would receive them.
async fn recorder() -> (String, Recorded) {
    let seen: Recorded = Default::default();
    let sink = seen.clone();
    let app = axum::Router::new().fallback(axum::routing::any(
        move |uri: axum::http::Uri, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                sink.lock().unwrap().push((uri.path().to_string(), value));
                "ok"
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

struct Harness {
    ns: TestNamespace,
    events: String,
    receivers: String,
    head: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _storage: tempfile::TempDir,
    /// The Git repository `fleet` and its GitRepository.
    fleet: Fleet,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: blue\n";

async fn start(prefix: &str) -> Harness {
    cluster().install_crds().await;
    cluster().apply_kustomization("config/default");
    let ns = cluster().namespace(prefix).await;
    // a stand-in for Google's tokeninfo endpoint: the ID token "google-signed" is valid
    let tokeninfo = axum::Router::new().route(
        "/tokeninfo",
        axum::routing::get(
            |q: axum::extract::Query<std::collections::HashMap<String, String>>| async move {
                if q.get("id_token").map(String::as_str) == Some("google-signed") {
                    (
                        axum::http::StatusCode::OK,
                        r#"{"email": "gcr@p.iam.gserviceaccount.com", "email_verified": "true"}"#,
                    )
                } else {
                    (
                        axum::http::StatusCode::BAD_REQUEST,
                        r#"{"error": "invalid_token"}"#,
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tokeninfo_url = format!("http://{}/tokeninfo", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, tokeninfo).await.unwrap() });
    let (bound, notification) =
        driftless_e2e::notification(ns.name(), &[format!("--gcr-tokeninfo-url={tokeninfo_url}")]).await;
    let events = format!("http://{}/", bound.events);
    let storage = tempfile::tempdir().unwrap();
    let events_flag = [format!("--events-addr={events}")];
    let (_, source) = driftless_e2e::source(ns.name(), storage.path(), &events_flag).await;
    let kustomize = driftless_e2e::kustomize(ns.name(), &events_flag).await;
    let fleet = Fleet::start(ns.name(), &[("apps/cm.yaml", CM)]).await;
    Harness {
        ns,
        events,
        receivers: format!("http://{}", bound.receivers),
        head: fleet.head.clone(),
        tasks: vec![notification, source, kustomize],
        _storage: storage,
        fleet,
    }
}

/// Server-side applies `obj` (namespaced kind `K`) into `ns` as the test.
async fn put<K>(ns: &str, obj: Value)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    Api::<K>::namespaced(cluster().client().await, ns)
        .patch(&name, &PatchParams::apply("t").force(), &Patch::Apply(&obj))
        .await
        .unwrap();
}

/// A Receiver `name` of `type_` with the token Secret `secret`, for the GitRepository `resource` (a name or
/// `*`), with `more` spec fields.
fn receiver(name: &str, type_: &str, secret: &str, resource: &str, more: ReceiverSpec) -> Receiver {
    Receiver::new(
        name,
        ReceiverSpec {
            type_: type_.into(),
            secret_ref: Some(LocalObjectReference { name: secret.into() }),
            resources: vec![ReceiverResource {
                kind: "GitRepository".into(),
                name: resource.into(),
                ..Default::default()
            }],
            ..more
        },
    )
}

/// Applies `r` into `ns`; with `wait`, waits for its webhook path and returns it.
async fn apply_receiver(ns: &str, r: &Receiver, wait: bool) -> Option<String> {
    let receivers: Api<Receiver> = Api::namespaced(cluster().client().await, ns);
    let name = r.metadata.name.clone().unwrap();
    receivers
        .patch(&name, &PatchParams::apply("t"), &Patch::Apply(r))
        .await
        .unwrap();
    if !wait {
        return None;
    }
    Some(
        eventually(&format!("the path of receiver {name}"), async || {
            receivers.get(&name).await.ok()?.status?.webhook_path
        })
        .await,
    )
}

async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn github_signature(token: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn applied_revision(ns: &str) -> Option<String> {
    Api::<Kustomization>::namespaced(cluster().client().await, ns)
        .get("apps")
        .await
        .ok()?
        .status?
        .last_applied_revision
}

#[tokio::test]
async fn a_signed_push_reconciles_at_once_and_the_events_reach_slack() {
    let h = start("notify").await;
    let n = h.ns.name().to_string();
    let (slack, seen) = recorder().await;
    put::<Secret>(
        &n,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook-token"},
        "stringData": {"token": "hook-s3cret"}}),
    )
    .await;
    let provider = json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
        "metadata": {"name": "slack", "namespace": n},
        "spec": {"type": "slack", "address": format!("{slack}/services/T0/B0/x"), "channel": "#ops"}});
    let alert = json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
        "metadata": {"name": "ops", "namespace": n},
        "spec": {"providerRef": {"name": "slack"}, "eventSeverity": "info", "summary": "e2e cluster",
                 "eventSources": [{"kind": "Kustomization", "name": "*"}, {"kind": "GitRepository", "name": "*"}]}});
    // and a commit status on the "GitHub Enterprise" at the recorder, for the Kustomization's revision
    let github = json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
        "metadata": {"name": "github", "namespace": n},
        "spec": {"type": "github", "address": format!("{slack}/org/app"), "secretRef": {"name": "github-token"}}});
    let statuses = json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
        "metadata": {"name": "statuses", "namespace": n},
        "spec": {"providerRef": {"name": "github"}, "eventSources": [{"kind": "Kustomization", "name": "apps"}]}});
    put::<Secret>(
        &n,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "github-token"},
        "stringData": {"token": "ghp-test"}}),
    )
    .await;
    cluster().kubectl_apply(&[provider, alert, github, statuses]);
    let github_receiver = receiver(
        "github",
        "github",
        "hook-token",
        "fleet",
        ReceiverSpec {
            events: Some(vec!["push".into()]),
            ..Default::default()
        },
    );
    let path = apply_receiver(&n, &github_receiver, true).await.unwrap();
    assert_eq!(
        path,
        format!(
            "/hook/{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(format!(
                "hook-s3cretgithub{n}"
            )))
        )
    );
    let ks = Kustomization::new(
        "apps",
        KustomizationSpec {
            interval: "1h".into(),
            path: Some("./apps".into()),
            prune: true,
            target_namespace: Some(n.clone()),
            source_ref: CrossNamespaceSourceReference {
                kind: "GitRepository".into(),
                name: "fleet".into(),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    Api::<Kustomization>::namespaced(cluster().client().await, &n)
        .patch("apps", &PatchParams::apply("t"), &Patch::Apply(&ks))
        .await
        .unwrap();
    let head = h.head.clone();
    eventually("the first apply", async || {
        applied_revision(&n).await.filter(|r| r.ends_with(&head))
    })
    .await;

    // a push: the commit, then the hook, signed as GitHub signs it
    let pushed = h
        .fleet
        .repo
        .commit(&[("apps/extra.yaml", &CM.replace("settings", "extra"))], "extra");
    let http = reqwest::Client::new();
    let body = br#"{"ref":"refs/heads/main"}"#.to_vec();
    let started = Instant::now();
    let answer = http
        .post(format!("{}{path}", h.receivers))
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", github_signature("hook-s3cret", &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    eventually("the pushed commit applied", async || {
        applied_revision(&n).await.filter(|r| r.ends_with(&pushed))
    })
    .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "the push took {took:?}, as if waiting for the interval"
    );
    assert!(
        Api::<ConfigMap>::namespaced(cluster().client().await, &n)
            .get_opt("extra")
            .await
            .unwrap()
            .is_some()
    );
    // the change set reaches "Slack" in Slack's format
    let message = eventually("the Slack message", async || {
        seen.lock()
            .unwrap()
            .iter()
            .find(|(_, b)| {
                b["attachments"][0]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(&format!("ConfigMap/{n}/extra created")))
            })
            .cloned()
    })
    .await;
    assert_eq!(message.0, "/services/T0/B0/x");
    let attachment = &message.1["attachments"][0];
    assert_eq!(message.1["channel"], "#ops");
    assert_eq!(attachment["author_name"], format!("kustomization/apps.{n}"));
    assert_eq!(attachment["color"], "good");
    let fields = attachment["fields"].as_array().unwrap();
    assert!(
        fields
            .iter()
            .any(|f| f["title"] == "revision" && f["value"].as_str().is_some_and(|v| v.ends_with(&pushed))),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|f| f["title"] == "summary" && f["value"] == "e2e cluster"),
        "{fields:?}"
    );

    let status = eventually("the commit status", async || {
        seen.lock()
            .unwrap()
            .iter()
            .find(|(p, _)| p.ends_with(&format!("/statuses/{pushed}")))
            .cloned()
    })
    .await;
    assert_eq!(status.0, format!("/api/v3/repos/org/app/statuses/{pushed}"));
    assert_eq!(status.1["state"], "success");
    assert_eq!(status.1["context"], "kustomization/apps");

    // refused hooks change nothing: a bad signature (401), an unknown path (404)
    let gits: Api<GitRepository> = Api::namespaced(cluster().client().await, &n);
    let requested = |g: GitRepository| {
        g.metadata
            .annotations
            .unwrap_or_default()
            .get(RECONCILE_REQUEST_ANNOTATION)
            .cloned()
    };
    let before = requested(gits.get("fleet").await.unwrap());
    let bad = http
        .post(format!("{}{path}", h.receivers))
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", github_signature("wrong", &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let unsigned = http
        .post(format!("{}{path}", h.receivers))
        .header("X-GitHub-Event", "push")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let unknown = http
        .post(format!("{}/hook/0000", h.receivers))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        requested(gits.get("fleet").await.unwrap()),
        before,
        "a refused hook annotated"
    );
}

#[tokio::test]
async fn bad_events_are_refused_and_broken_providers_neither_crash_nor_block() {
    let h = start("notify-bad").await;
    let n = h.ns.name().to_string();
    let http = reqwest::Client::new();
    // malformed, incomplete, oversized
    let post = |body: Vec<u8>| {
        http.post(&h.events)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(post(b"{not json".to_vec()).await.unwrap().status(), 400);
    assert_eq!(post(br#"{"message": "m"}"#.to_vec()).await.unwrap().status(), 400);
    assert_eq!(post(vec![b' '; 2 << 20]).await.unwrap().status(), 413);

    // a Provider whose endpoint is down, one whose Secret is missing, and a working one
    let (good, seen) = recorder().await;
    let providers = [
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": {"name": "down", "namespace": n}, "spec": {"type": "generic", "address": "http://127.0.0.1:9/", "timeout": "1s"}}),
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": {"name": "no-secret", "namespace": n}, "spec": {"type": "slack", "secretRef": {"name": "missing"}}}),
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": {"name": "bad-address", "namespace": n}, "spec": {"type": "slack", "address": "hooks.slack.com/x"}}),
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": {"name": "good", "namespace": n}, "spec": {"type": "generic-hmac", "address": format!("{good}/hook")}}),
    ];
    let alerts: Vec<Value> = ["down", "no-secret", "bad-address", "good"]
        .iter()
        .map(|p| {
            json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
            "metadata": {"name": p, "namespace": n},
            "spec": {"providerRef": {"name": p}, "eventSources": [{"kind": "GitRepository", "name": "*"}]}})
        })
        .collect();
    cluster().kubectl_apply(&[providers.to_vec(), alerts].concat());
    let event = |message: &str| {
        serde_json::to_vec(
            &json!({"involvedObject": {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "name": "fleet", "namespace": n}, "severity": "info", "timestamp": "2026-11-22T00:00:00Z",
            "message": message, "reason": "NewArtifact", "reportingController": "source-controller",
            "metadata": {"source.toolkit.fluxcd.io/revision": "main@sha1:1"}}),
        )
        .unwrap()
    };
    assert_eq!(post(event("first")).await.unwrap().status(), 202);
    assert_eq!(
        post(event("first")).await.unwrap().status(),
        429,
        "a duplicate within the interval"
    );
    // the good provider gets it, while the one that is down is still retrying
    let got = eventually("the delivery to the working provider", async || {
        seen.lock()
            .unwrap()
            .iter()
            .find(|(_, b)| b["message"] == "first")
            .cloned()
    })
    .await;
    assert_eq!(got.0, "/hook");
    assert_eq!(
        post(event("second")).await.unwrap().status(),
        202,
        "the intake is not blocked"
    );
    eventually("the second delivery", async || {
        seen.lock()
            .unwrap()
            .iter()
            .find(|(_, b)| b["message"] == "second")
            .map(|_| ())
    })
    .await;
    // beyond Flux: an Alert annotated driftless.io/fold-window folds repeats into one message with a count
    let (folded_url, folded_seen) = recorder().await;
    cluster().kubectl_apply(&[
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": {"name": "folded", "namespace": n}, "spec": {"type": "generic", "address": format!("{folded_url}/f")}}),
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
            "metadata": {"name": "folded", "namespace": n, "annotations": {"driftless.io/fold-window": "2s"}},
            "spec": {"providerRef": {"name": "folded"}, "eventSources": [{"kind": "Kustomization", "name": "web"}]}}),
    ]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let failing = |i: usize| {
        serde_json::to_vec(&json!({"involvedObject": {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "name": "web", "namespace": n}, "severity": "error", "timestamp": "2026-11-22T00:00:00Z",
            "message": format!("health check failed after {i}s"), "reason": "HealthCheckFailed",
            "reportingController": "kustomize-controller"}))
        .unwrap()
    };
    for i in 1..=3 {
        assert_eq!(post(failing(i)).await.unwrap().status(), 202);
        // NB: accepted events are dispatched concurrently; a controller's repeats come apart in time
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let folded = eventually("the folded message", async || {
        let seen = folded_seen.lock().unwrap();
        (seen.len() >= 2).then(|| seen.clone())
    })
    .await;
    assert_eq!(
        folded.len(),
        2,
        "one message at once, one for the repeats: {folded:?}"
    );
    assert_eq!(folded[0].1["message"], "health check failed after 1s");
    assert_eq!(
        folded[1].1["message"],
        "health check failed after 3s\n(2 HealthCheckFailed events of this object folded into this one in the last 2s)"
    );

    // a Receiver's resourceFilter (CEL over the resource and the request) picks what is annotated
    let gits: Api<GitRepository> = Api::namespaced(cluster().client().await, &n);
    let other = GitRepository::new(
        "other",
        GitRepositorySpec {
            url: "https://git.invalid/other".into(),
            interval: "1h".into(),
            suspend: Some(true),
            ..Default::default()
        },
    );
    gits.patch("other", &PatchParams::apply("t"), &Patch::Apply(&other))
        .await
        .unwrap();
    put::<Secret>(
        &n,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "generic-token"},
        "stringData": {"token": "t"}}),
    )
    .await;
    let filtered = receiver(
        "filtered",
        "generic",
        "generic-token",
        "*",
        ReceiverSpec {
            resource_filter: Some("res.metadata.name == req.repository".into()),
            ..Default::default()
        },
    );
    let path = apply_receiver(&n, &filtered, true).await.unwrap();
    let answer = http
        .post(format!("{}{path}", h.receivers))
        .body(r#"{"repository": "fleet"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let requested = |g: GitRepository| {
        g.metadata
            .annotations
            .unwrap_or_default()
            .contains_key(RECONCILE_REQUEST_ANNOTATION)
    };
    assert!(
        requested(gits.get("fleet").await.unwrap()),
        "the filter let fleet through"
    );
    assert!(
        !requested(gits.get("other").await.unwrap()),
        "the filter kept other out"
    );

    // gcr: Google's ID token checked at tokeninfo, then the Pub/Sub message must be an INSERT
    let gcr = receiver("gcr", "gcr", "generic-token", "other", ReceiverSpec::default());
    let gcr_path = apply_receiver(&n, &gcr, true).await.unwrap();
    let push = |action: &str| {
        let data = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!(r#"{{"action":"{action}","tag":"gcr.io/p/app:1"}}"#),
        );
        format!(
            r#"{{"message":{{"data":"{data}","messageId":"1"}},"subscription":"projects/p/subscriptions/s"}}"#
        )
    };
    let send = |token: &'static str, body: String| {
        http.post(format!("{}{gcr_path}", h.receivers))
            .header("Authorization", format!("Bearer {token}"))
            .body(body)
            .send()
    };
    assert_eq!(send("forged", push("INSERT")).await.unwrap().status(), 401);
    assert!(
        !requested(gits.get("other").await.unwrap()),
        "a forged token annotated"
    );
    assert_eq!(send("google-signed", push("DELETE")).await.unwrap().status(), 400);
    assert_eq!(send("google-signed", push("INSERT")).await.unwrap().status(), 200);
    assert!(
        requested(gits.get("other").await.unwrap()),
        "a verified push did not annotate"
    );

    // the Provider without its Secret gets a Kubernetes Event saying so
    let kube_events: Api<KubeEvent> = Api::namespaced(cluster().client().await, &n);
    let event_on = async |name: &str| {
        eventually(&format!("the Event on Provider {name}"), async || {
            kube_events
                .list(&Default::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| e.involved_object.name.as_deref() == Some(name))
        })
        .await
    };
    let warning = event_on("no-secret").await;
    assert_eq!(warning.reason.as_deref(), Some("ProviderFailed"));
    assert!(
        warning.message.unwrap_or_default().contains("Secret"),
        "the message names the Secret"
    );
    let bad_address = event_on("bad-address").await;
    assert!(
        bad_address
            .message
            .unwrap_or_default()
            .contains("invalid address")
    );
}

#[tokio::test]
async fn a_receiver_without_its_secret_is_retried_until_the_secret_appears() {
    let h = start("nc-token").await;
    let n = h.ns.name().to_string();
    let waiting = receiver(
        "waiting",
        "generic",
        "late-token",
        "fleet",
        ReceiverSpec::default(),
    );
    apply_receiver(&n, &waiting, false).await;
    let receivers: Api<Receiver> = Api::namespaced(cluster().client().await, &n);
    let condition = |r: &Receiver, t: &str| {
        r.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == t))
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    let refused = eventually("TokenNotFound", async || {
        let r = receivers.get("waiting").await.ok()?;
        (condition(&r, "Ready")? == ("False".to_string(), "TokenNotFound".to_string())).then_some(r)
    })
    .await;
    assert_eq!(
        condition(&refused, "Reconciling"),
        Some(("True".to_string(), "ProgressingWithRetry".to_string())),
        "a missing Secret is retried"
    );
    put::<Secret>(
        &n,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "late-token"},
        "stringData": {"token": "late"}}),
    )
    .await;
    let ready = eventually("Ready once the Secret exists", async || {
        let r = receivers.get("waiting").await.ok()?;
        (condition(&r, "Ready")?.0 == "True").then_some(r)
    })
    .await;
    assert_eq!(condition(&ready, "Reconciling"), None);
    let path = ready.status.as_ref().unwrap().webhook_path.clone().unwrap();
    // the lifecycle's finalizer: deleting the Receiver takes its path down before it goes
    assert!(
        ready
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "finalizers.fluxcd.io"),
        "{:?}",
        ready.metadata.finalizers
    );
    receivers.delete("waiting", &Default::default()).await.unwrap();
    eventually("the Receiver is gone", async || {
        receivers.get_opt("waiting").await.ok()?.is_none().then_some(())
    })
    .await;
    let answer = reqwest::Client::new()
        .post(format!("{}{path}", h.receivers))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404, "a deleted Receiver triggers nothing");
}
