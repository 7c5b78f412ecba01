//! Events: a Kubernetes Event (core/v1, as Flux's recorder writes them) on the object, and a POST of Flux's
//! event JSON to `--events-addr`
//! (notification-controller). Both are sent in the background, with retry and timeout, so recording an
//! event never blocks a reconcile; a full queue drops the event with a warning.

use std::{collections::BTreeMap, time::Duration};

use driftless_api::meta::conditions::READY;

use k8s_openapi::{
    api::core::v1::{Event as KubeEvent, EventSource, ObjectReference},
    apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, ObjectMeta, Time},
    jiff::{Timestamp, Unit},
};
use kube::{Api, Client, api::PostParams};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// Severity of an event, as Flux names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A normal state change.
    Info,
    /// A failure.
    Error,
    /// Progress details (not sent as a Kubernetes Event).
    Trace,
}

/// Flux's event object (fluxcd/pkg `apis/event/v1beta1.Event`), the body POSTed to notification-controller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxEvent {
    /// The object this event is about.
    pub involved_object: ObjectReference,
    /// `info`, `error` or `trace`.
    pub severity: Severity,
    /// When it happened (RFC 3339).
    pub timestamp: String,
    /// Human-readable description.
    pub message: String,
    /// PascalCase reason, as the condition reason.
    pub reason: String,
    /// Group-prefixed keys such as `source.toolkit.fluxcd.io/revision`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The controller that reported it (`source-controller`).
    pub reporting_controller: String,
    /// The instance (pod) that reported it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

/// How events are POSTed.
#[derive(Clone, Debug)]
pub struct PostOptions {
    /// Attempts per event, the first included.
    pub attempts: u32,
    /// Delay before the second attempt; doubles after each failure.
    pub retry_delay: Duration,
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Events waiting to be sent before new ones are dropped.
    pub queue: usize,
}

impl Default for PostOptions {
    fn default() -> Self {
        Self {
            attempts: 4,
            retry_delay: Duration::from_millis(250),
            timeout: Duration::from_secs(15),
            queue: 1024,
        }
    }
}

/// Records events for one controller.
#[derive(Clone)]
pub struct Recorder {
    kube: Option<Client>,
    post: Option<mpsc::Sender<FluxEvent>>,
    controller: String,
    instance: String,
}

impl Recorder {
    /// A recorder that writes Kubernetes Events through `client` (if any) and POSTs Flux events to
    /// `events_addr` (if non-empty; a bare `host:port` means `http://host:port/`).
    pub fn new(client: Option<Client>, controller: &str, instance: &str, events_addr: Option<&str>) -> Self {
        Self::with_options(client, controller, instance, events_addr, PostOptions::default())
    }

    /// [`Recorder::new`] with explicit POST options.
    pub fn with_options(
        client: Option<Client>,
        controller: &str,
        instance: &str,
        events_addr: Option<&str>,
        options: PostOptions,
    ) -> Self {
        let kube = client;
        let post = events_addr
            .filter(|a| !a.is_empty())
            .map(|addr| spawn_poster(events_url(addr), options));
        Self {
            kube,
            post,
            controller: controller.to_string(),
            instance: instance.to_string(),
        }
    }

    /// Records a failed reconcile as an error event, unless `previous` (the object's conditions before
    /// this run) already has Ready with the same reason and message: a failure repeated at every retry is
    /// reported once.
    pub fn record_failure(
        &self,
        object: &ObjectReference,
        previous: &[Condition],
        reason: &str,
        message: &str,
    ) {
        let unchanged = crate::conditions::get(previous, READY)
            .is_some_and(|c| c.reason == reason && c.message == message);
        if !unchanged {
            self.record(object, Severity::Error, reason, message, BTreeMap::new());
        }
    }

    /// Records an event about `object`: a Kubernetes Event (not for `trace`) and a Flux event POST.
    /// Returns at once.
    pub fn record(
        &self,
        object: &ObjectReference,
        severity: Severity,
        reason: &str,
        message: &str,
        metadata: BTreeMap<String, String>,
    ) {
        if let (Some(kube), true) = (&self.kube, severity != Severity::Trace) {
            let event = self.kube_event(object, severity, reason, message);
            let namespace = event.metadata.namespace.clone().unwrap_or_default();
            let api: Api<KubeEvent> = Api::namespaced(kube.clone(), &namespace);
            tokio::spawn(async move {
                if let Err(err) = api.create(&PostParams::default(), &event).await {
                    warn!(error = %err, "could not write a Kubernetes event");
                }
            });
        }
        if let Some(post) = &self.post {
            let event = FluxEvent {
                involved_object: object.clone(),
                severity,
                timestamp: Timestamp::now()
                    .round(Unit::Second)
                    .unwrap_or_else(|_| Timestamp::now())
                    .to_string(),
                message: message.to_string(),
                reason: reason.to_string(),
                metadata,
                reporting_controller: self.controller.clone(),
                reporting_instance: self.instance.clone(),
            };
            if post.try_send(event).is_err() {
                warn!(reason, "event queue full or closed: event dropped");
            }
        }
    }
}

impl Recorder {
    fn kube_event(
        &self,
        object: &ObjectReference,
        severity: Severity,
        reason: &str,
        message: &str,
    ) -> KubeEvent {
        let now = Timestamp::now();
        let name = object.name.as_deref().unwrap_or("object");
        KubeEvent {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(object.namespace.clone().unwrap_or_else(|| "default".into())),
                ..Default::default()
            },
            involved_object: object.clone(),
            reason: Some(reason.to_string()),
            message: Some(truncate(message, 1024)),
            type_: Some(
                if severity == Severity::Error {
                    "Warning"
                } else {
                    "Normal"
                }
                .to_string(),
            ),
            source: Some(EventSource {
                component: Some(self.controller.clone()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            count: Some(1),
            action: Some(reason.to_string()),
            reporting_component: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        }
    }
}

/// `--events-addr` as a URL: Flux takes a full URL; a bare `host:port` is accepted too.
pub fn events_url(addr: &str) -> String {
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}/")
    }
}

fn truncate(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_string();
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_string()
}

fn spawn_poster(url: String, options: PostOptions) -> mpsc::Sender<FluxEvent> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (tx, mut rx) = mpsc::channel::<FluxEvent>(options.queue);
    let client = reqwest::Client::builder()
        .timeout(options.timeout)
        .build()
        .expect("an HTTP client");
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            post_with_retry(&client, &url, &event, &options).await;
        }
    });
    tx
}

async fn post_with_retry(client: &reqwest::Client, url: &str, event: &FluxEvent, options: &PostOptions) {
    let mut delay = options.retry_delay;
    for attempt in 1..=options.attempts {
        match client.post(url).json(event).send().await {
            Ok(resp) if resp.status().is_success() => {
                debug!(reason = %event.reason, "event posted");
                return;
            }
            // 429: notification-controller's duplicate filter already has it
            Ok(resp) if resp.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => return,
            Ok(resp) => warn!(status = %resp.status(), attempt, "event POST refused"),
            Err(err) => warn!(error = %err, attempt, "event POST failed"),
        }
        if attempt < options.attempts {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    warn!(reason = %event.reason, url, "event dropped after retries");
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
    use serde_json::{Value, json};

    use super::*;

    #[derive(Clone, Default)]
    struct Sink {
        received: Arc<Mutex<Vec<Value>>>,
        fail_first: Arc<Mutex<u32>>,
    }

    async fn receive(State(sink): State<Sink>, Json(body): Json<Value>) -> StatusCode {
        let mut fail = sink.fail_first.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        sink.received.lock().unwrap().push(body);
        StatusCode::ACCEPTED
    }

    async fn serve(sink: Sink) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", post(receive)).with_state(sink);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr.to_string()
    }

    fn git_repository() -> ObjectReference {
        ObjectReference {
            api_version: Some("source.toolkit.fluxcd.io/v1".into()),
            kind: Some("GitRepository".into()),
            name: Some("podinfo".into()),
            namespace: Some("flux-system".into()),
            uid: Some("4f7e".into()),
            ..Default::default()
        }
    }

    async fn wait_for(sink: &Sink, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            if sink.received.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sink.received.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn events_are_posted_in_fluxs_format() {
        let sink = Sink::default();
        let addr = serve(sink.clone()).await;
        let recorder = Recorder::new(None, "source-controller", "source-controller-abc", Some(&addr));
        let metadata = [(
            "source.toolkit.fluxcd.io/revision".to_string(),
            "main@sha1:abc".to_string(),
        )]
        .into();
        recorder.record(
            &git_repository(),
            Severity::Info,
            "NewArtifact",
            "stored artifact",
            metadata,
        );
        let got = wait_for(&sink, 1).await;
        assert_eq!(got.len(), 1);
        let event = &got[0];
        assert_eq!(event["involvedObject"]["kind"], "GitRepository");
        assert_eq!(event["involvedObject"]["namespace"], "flux-system");
        assert_eq!(event["severity"], "info");
        assert_eq!(event["reason"], "NewArtifact");
        assert_eq!(event["message"], "stored artifact");
        assert_eq!(
            event["metadata"],
            json!({"source.toolkit.fluxcd.io/revision": "main@sha1:abc"})
        );
        assert_eq!(event["reportingController"], "source-controller");
        assert_eq!(event["reportingInstance"], "source-controller-abc");
        assert!(event["timestamp"].as_str().unwrap().parse::<Timestamp>().is_ok());
    }

    #[tokio::test]
    async fn a_failure_already_in_ready_is_not_reported_again() {
        let sink = Sink::default();
        let addr = serve(sink.clone()).await;
        let recorder = Recorder::new(None, "source-controller", "i", Some(&addr));
        let mut previous = Vec::new();
        crate::conditions::mark_false(&mut previous, READY, "GitOperationFailed", "boom", Some(1));
        let object = git_repository();
        recorder.record_failure(&object, &previous, "GitOperationFailed", "boom");
        recorder.record_failure(&object, &previous, "GitOperationFailed", "other message");
        recorder.record_failure(&object, &previous, "AuthenticationFailed", "boom");
        wait_for(&sink, 2).await;
        // time for a third (wrong) event to arrive
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got: Vec<_> = sink
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["reason"].as_str().unwrap(),
                    e["message"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            got,
            ["GitOperationFailed other message", "AuthenticationFailed boom"]
        );
    }

    #[tokio::test]
    async fn failed_posts_are_retried() {
        let sink = Sink::default();
        *sink.fail_first.lock().unwrap() = 2;
        let addr = serve(sink.clone()).await;
        let options = PostOptions {
            retry_delay: Duration::from_millis(5),
            ..Default::default()
        };
        let recorder = Recorder::with_options(None, "kustomize-controller", "k", Some(&addr), options);
        recorder.record(
            &git_repository(),
            Severity::Error,
            "BuildFailed",
            "boom",
            BTreeMap::new(),
        );
        let got = wait_for(&sink, 1).await;
        assert_eq!(got.len(), 1, "delivered after two refusals");
        assert_eq!(got[0]["severity"], "error");
    }

    #[tokio::test]
    async fn an_unreachable_receiver_does_not_block_recording() {
        // nothing listens on port 9 of loopback; record() must still return at once for many events
        let options = PostOptions {
            queue: 4,
            attempts: 1,
            ..Default::default()
        };
        let recorder = Recorder::with_options(None, "c", "i", Some("127.0.0.1:9"), options);
        for _ in 0..100 {
            recorder.record(&git_repository(), Severity::Info, "R", "m", BTreeMap::new());
        }
    }

    #[test]
    fn events_addr_accepts_urls_and_host_ports() {
        assert_eq!(
            events_url("http://notification-controller.flux-system.svc/"),
            "http://notification-controller.flux-system.svc/"
        );
        assert_eq!(events_url("127.0.0.1:9090"), "http://127.0.0.1:9090/");
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let msg = "é".repeat(600);
        let cut = truncate(&msg, 1024);
        assert!(cut.len() <= 1024 && msg.starts_with(&cut));
    }
}
