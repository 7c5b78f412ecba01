//! The HTTP endpoints every controller serves: Prometheus `/metrics` on `--metrics-addr` and `/healthz`,
//! `/readyz` on `--health-addr`. Every listener takes an explicit address, `127.0.0.1:0` included, and
//! reports the address it bound.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use tokio::{net::TcpListener, task::JoinHandle};

use crate::{metrics::Metrics, progress::Progress};

/// A listen address that is not `host:port` or `:port`.
#[derive(Debug, thiserror::Error)]
#[error("invalid listen address {0:?}: use host:port or :port, e.g. :8080 or 127.0.0.1:0")]
pub struct AddrError(String);

/// Parses a Go-style listen address: `:8080` listens on every interface.
pub fn listen_addr(flag: &str) -> Result<SocketAddr, AddrError> {
    let full = if flag.starts_with(':') {
        format!("0.0.0.0{flag}")
    } else {
        flag.to_string()
    };
    full.parse().map_err(|_| AddrError(flag.to_string()))
}

/// Whether the controller is ready (`/readyz`): set once caches are synced and, with leader election,
/// always true for standbys too (they are healthy, just not leading).
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the process ready or not.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Whether it is ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// `/metrics`.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move {
                (
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.encode(),
                )
            }),
        )
        .with_state(metrics)
}

/// `/healthz` (alive: no reconcile wedged, no watch failing for minutes) and `/readyz` (ready, and every
/// watch receiving); a failing endpoint answers 503 with the reason.
pub fn health_router(readiness: Readiness, progress: Arc<Progress>) -> Router {
    let answer = |state: Result<(), String>| match state {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    };
    Router::new()
        .route(
            "/healthz",
            get(move |State((_, p)): State<(Readiness, Arc<Progress>)>| async move { answer(p.alive()) }),
        )
        .route(
            "/readyz",
            get(
                move |State((r, p)): State<(Readiness, Arc<Progress>)>| async move {
                    if r.get() {
                        answer(p.ready())
                    } else {
                        answer(Err("not ready".into()))
                    }
                },
            ),
        )
        .with_state((readiness, progress))
}

/// Binds `addr` and serves `router` in the background; returns the bound address.
pub async fn serve(
    addr: &str,
    router: Router,
) -> std::io::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    let addr = listen_addr(addr).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((
        bound,
        tokio::spawn(async move { axum::serve(listener, router).await }),
    ))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get_path(router: Router, path: &str) -> (StatusCode, String) {
        let resp = router
            .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[test]
    fn go_style_addresses_parse() {
        assert_eq!(listen_addr(":8080").unwrap().to_string(), "0.0.0.0:8080");
        assert_eq!(listen_addr("127.0.0.1:0").unwrap().to_string(), "127.0.0.1:0");
        assert!(listen_addr("8080").is_err());
        assert!(
            listen_addr("localhost")
                .unwrap_err()
                .to_string()
                .contains("host:port")
        );
    }

    #[tokio::test]
    async fn readyz_follows_readiness_and_healthz_is_always_ok() {
        let readiness = Readiness::default();
        let router = health_router(readiness.clone(), Default::default());
        assert_eq!(get_path(router.clone(), "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            get_path(router.clone(), "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        readiness.set(true);
        assert_eq!(get_path(router, "/readyz").await, (StatusCode::OK, "ok".into()));
    }

    #[tokio::test]
    async fn a_wedged_reconcile_fails_healthz_with_the_reason() {
        let readiness = Readiness::default();
        readiness.set(true);
        let progress = Arc::new(Progress::default());
        let router = health_router(readiness, progress.clone());
        let _stuck = progress.start("Kustomization/ns/apps".into(), std::time::Duration::ZERO);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let (status, body) = get_path(router.clone(), "/healthz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("Kustomization/ns/apps"), "{body}");
        assert_eq!(get_path(router, "/readyz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_are_served_on_an_explicit_loopback_port() {
        let metrics = Arc::new(Metrics::default());
        metrics.observe_reconcile(
            "Kustomization",
            "apps",
            "flux-system",
            std::time::Duration::from_secs(1),
        );
        let (addr, _task) = serve("127.0.0.1:0", metrics_router(metrics)).await.unwrap();
        assert_ne!(addr.port(), 0);
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.contains(r#"gotk_reconcile_duration_seconds_count{kind="Kustomization",name="apps",namespace="flux-system"} 1"#));
    }
}
