//! A proxy in front of the API server that the fault suite turns bad for a while: it answers every
//! request (or every status write) with an error status (429 with `Retry-After`, 500) or answers slowly, and cuts the responses
//! in flight (open watches) when it turns, as a restarting load balancer would. The controllers talk
//! plain HTTP to it, naming the user they impersonate; it forwards with the admin's credentials.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderName, StatusCode},
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use tokio::sync::watch;

/// How the proxy answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forwards every request.
    Pass,
    /// Answers every request with this status and a Kubernetes `Status` body.
    Fail(u16),
    /// Forwards every request after this long.
    Slow(Duration),
    /// Answers every write of a `status` subresource with this status, forwards the rest.
    FailStatusWrites(u16),
}

struct Shared {
    admin: kube::Client,
    mode: Mutex<Mode>,
    /// Bumped when the mode changes: responses in flight end.
    cut: watch::Sender<u64>,
}

/// A running proxy; stops when dropped.
pub struct ApiProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Request headers passed on: what the request is, and whom it impersonates.
fn forwarded(name: &HeaderName) -> bool {
    let name = name.as_str();
    matches!(name, "accept" | "content-type") || name.starts_with("impersonate-")
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let mode = *shared.mode.lock().unwrap();
    let status_write = req.method() != axum::http::Method::GET && req.uri().path().ends_with("/status");
    match mode {
        Mode::Fail(code) => return failure(code),
        Mode::FailStatusWrites(code) if status_write => return failure(code),
        Mode::FailStatusWrites(_) => {}
        // a slow server that turns fast answers what it was holding
        Mode::Slow(delay) => {
            let mut turned = shared.cut.subscribe();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = turned.changed() => {}
            }
        }
        Mode::Pass => {}
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 << 20).await else {
        return failure(400);
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = axum::http::Request::builder().method(parts.method).uri(path);
    for (name, value) in parts.headers.iter().filter(|(n, _)| forwarded(n)) {
        out = out.header(name, value);
    }
    let out = out.body(kube::client::Body::from(body.to_vec())).unwrap();
    let answer = match shared.admin.send(out).await {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let (parts, body) = answer.into_parts();
    // a response in flight ends when the mode changes (a watch is cut off)
    let mut cut = shared.cut.subscribe();
    let stream = Body::new(body)
        .into_data_stream()
        .take_until(async move { cut.changed().await.ok() });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The answer of an API server that cannot serve: `code` with a Kubernetes `Status`.
fn failure(code: u16) -> Response {
    let reason = if code == 429 {
        "TooManyRequests"
    } else {
        "InternalError"
    };
    let mut status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": format!("fault suite: the API server answers {code}"),
        "reason": reason, "code": code});
    if code == 429 {
        // as kube-apiserver's priority and fairness answers
        status["details"] = serde_json::json!({"retryAfterSeconds": 1});
    }
    let mut response = (
        StatusCode::from_u16(code).unwrap(),
        [("content-type", "application/json")],
        status.to_string(),
    )
        .into_response();
    if code == 429 {
        response.headers_mut().insert("retry-after", "1".parse().unwrap());
    }
    response
}

impl ApiProxy {
    /// Starts one on loopback forwarding with `admin`.
    pub async fn start(admin: kube::Client) -> Self {
        let shared = Arc::new(Shared {
            admin,
            mode: Mutex::new(Mode::Pass),
            cut: watch::channel(0).0,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, shared, task }
    }

    /// From now on, answer as `mode`; responses in flight end.
    pub fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
        self.shared.cut.send_modify(|n| *n += 1);
    }

    /// A client configuration that reaches the API server through the proxy as `user`.
    pub fn config_as(&self, user: &str) -> kube::Config {
        let mut config = kube::Config::new(format!("http://{}", self.addr).parse().unwrap());
        config.auth_info.impersonate = Some(user.to_string());
        config
    }
}
