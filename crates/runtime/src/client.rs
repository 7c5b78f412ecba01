//! The Kubernetes client every controller uses: kube's, with a bound on each request. A request that
//! is not a watch gets [`REQUEST_TIMEOUT`] to be answered (kube bounds connecting and each read, not a
//! whole request), so a reconcile never waits forever on a server that accepted a connection and went
//! quiet; watches stay open, bounded by the server's `timeoutSeconds` and kube's read timeout.

use std::{
    task::{Context, Poll},
    time::Duration,
};

use axum::http::{Request, Uri};
use futures::future::BoxFuture;
use kube::client::{Body, ClientBuilder};
use tower::{BoxError, Layer, Service};

/// How long the API server has to answer a request that is not a watch.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for `config` whose requests other than watches time out after [`REQUEST_TIMEOUT`].
pub fn build(config: kube::Config) -> Result<kube::Client, kube::Error> {
    build_with_timeout(config, REQUEST_TIMEOUT)
}

/// A client for `config` whose requests other than watches time out after `timeout`.
pub fn build_with_timeout(config: kube::Config, timeout: Duration) -> Result<kube::Client, kube::Error> {
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&Bounded { timeout })
        .build())
}

/// Whether `uri` asks for a watch (kube's `watch=true`, or the legacy `watch=1`).
fn is_watch(uri: &Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"))
}

#[derive(Clone, Copy)]
struct Bounded {
    timeout: Duration,
}

impl<S> Layer<S> for Bounded {
    type Service = BoundedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BoundedService {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Clone)]
struct BoundedService<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Service<Request<Body>> for BoundedService<S>
where
    S: Service<Request<Body>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let watch = is_watch(req.uri());
        let timeout = self.timeout;
        let answer = self.inner.call(req);
        Box::pin(async move {
            if watch {
                return answer.await;
            }
            tokio::time::timeout(timeout, answer)
                .await
                .map_err(|_| format!("the API server did not answer within {}s", timeout.as_secs()))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_watches_are_unbounded() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert!(is_watch(&uri("/api/v1/configmaps?watch=true&resourceVersion=1")));
        assert!(is_watch(&uri("/api/v1/configmaps?labelSelector=a&watch=1")));
        assert!(!is_watch(&uri("/api/v1/configmaps?limit=500")));
        assert!(!is_watch(&uri("/api/v1/namespaces/a/configmaps/watch=true")));
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        // accepts connections and never answers
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let client = build_with_timeout(config, Duration::from_millis(300)).unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(client, "a");
        let started = std::time::Instant::now();
        let err = api.get("x").await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(crate::error::is_unavailable(&err), "{err:?}");
        assert!(err.to_string().contains("did not answer"), "{err}");
    }
}
