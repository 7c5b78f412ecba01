//! The Kubernetes client every controller uses: kube's, with a bound on each request and retries of
//! our own. A request that is not a watch gets [`REQUEST_TIMEOUT`] to be answered, retries included
//! (kube bounds connecting and each read, not a whole request), so a reconcile never waits forever on a
//! server that accepted a connection and went quiet; watches stay open, bounded by the server's
//! `timeoutSeconds` and kube's read timeout.
//!
//! A request answered 429, 503 or 504 is sent again after the server's `Retry-After` (or a short
//! backoff), a few times, within that bound — as client-go does. kube's own retry is off: it retries
//! for minutes with delays growing to 1000 s, and it hid from a watch that the server was refusing it
//! (a watch is never retried here: its own backoff, [`crate::backoff`], sees the answer).

use std::time::Duration;

use axum::http::{Request, Response, StatusCode, Uri};
use kube::client::Body;
use tower::BoxError;

/// How long the API server has to answer a request that is not a watch.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times a request answered 429, 503 or 504 is sent again.
pub const MAX_RETRIES: u32 = 5;

/// The longest `Retry-After` honoured; a longer one is waited for this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// A client for `config` whose requests other than watches time out after [`REQUEST_TIMEOUT`].
pub fn build(config: kube::Config) -> Result<kube::Client, kube::Error> {
    build_with_timeout(config, REQUEST_TIMEOUT)
}

/// A client for `config` whose requests other than watches time out after `timeout`.
pub fn build_with_timeout(mut config: kube::Config, timeout: Duration) -> Result<kube::Client, kube::Error> {
    config.default_retry = false;
    let default_namespace = config.default_namespace.clone();
    let inner = kube::Client::try_from(config)?;
    let service = tower::service_fn(move |req: Request<Body>| {
        let inner = inner.clone();
        async move { send(&inner, req, timeout).await }
    });
    Ok(kube::Client::new(service, default_namespace))
}

/// Whether `uri` asks for a watch (kube's `watch=true`, or the legacy `watch=1`).
fn is_watch(uri: &Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"))
}

/// Sends `req`: a watch as it is, anything else bounded by `timeout` and retried.
async fn send(
    client: &kube::Client,
    req: Request<Body>,
    timeout: Duration,
) -> Result<Response<Body>, BoxError> {
    if is_watch(req.uri()) {
        return Ok(client.send(req).await?);
    }
    tokio::time::timeout(timeout, retried(client, req))
        .await
        .map_err(|_| format!("the API server did not answer within {}s", timeout.as_secs()))?
}

/// How long to wait before sending again a request answered with `answer` after `attempt` retries,
/// or `None` when it is not to be retried.
fn retry_delay<B>(answer: &Response<B>, attempt: u32) -> Option<Duration> {
    let retryable = matches!(
        answer.status(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    );
    if !retryable || attempt >= MAX_RETRIES {
        return None;
    }
    let server = answer
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
    Some(server.unwrap_or_else(|| Duration::from_millis(200).saturating_mul(2u32.pow(attempt))))
}

async fn retried(client: &kube::Client, mut req: Request<Body>) -> Result<Response<Body>, BoxError> {
    for attempt in 0.. {
        // NB: a streamed body cannot be sent twice; kube sends every request body whole
        let again = req.body().try_clone().map(|body| {
            let mut copy = Request::new(body);
            *copy.method_mut() = req.method().clone();
            *copy.uri_mut() = req.uri().clone();
            *copy.headers_mut() = req.headers().clone();
            copy
        });
        let answer = client.send(req).await?;
        match (retry_delay(&answer, attempt), again) {
            (Some(delay), Some(again)) => {
                tracing::debug!(status = %answer.status(), ?delay, attempt, "API request retried");
                tokio::time::sleep(delay).await;
                req = again;
            }
            _ => return Ok(answer),
        }
    }
    unreachable!("the loop returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_is_retried_after_the_servers_delay_a_few_times() {
        let answer = |status: u16, after: Option<&str>| {
            let mut r = Response::builder().status(status);
            if let Some(a) = after {
                r = r.header("retry-after", a);
            }
            r.body(()).unwrap()
        };
        assert_eq!(
            retry_delay(&answer(429, Some("2")), 0),
            Some(Duration::from_secs(2))
        );
        assert_eq!(retry_delay(&answer(503, Some("3600")), 0), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_delay(&answer(504, None), 2),
            Some(Duration::from_millis(800))
        );
        assert_eq!(retry_delay(&answer(429, None), MAX_RETRIES), None, "gives up");
        assert_eq!(retry_delay(&answer(500, None), 0), None, "an error, not overload");
        assert_eq!(retry_delay(&answer(409, None), 0), None);
        assert_eq!(retry_delay(&answer(200, None), 0), None);
    }

    /// A server answering `failures` requests with 429 (`Retry-After: 0`), then `{}`; counts requests.
    async fn overloaded(failures: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        };
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let app = axum::Router::new().fallback(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < failures {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "0")],
                        r#"{"kind":"Status","status":"Failure","reason":"TooManyRequests","code":429}"#
                            .to_string(),
                    )
                } else {
                    (
                        StatusCode::OK,
                        [("content-type", "application/json")],
                        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_string(),
                    )
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    #[tokio::test]
    async fn a_request_answered_429_is_sent_again_and_a_watch_is_not() {
        use std::sync::atomic::Ordering;
        let (url, seen) = overloaded(2).await;
        let client = build(kube::Config::new(url.parse().unwrap())).unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client.clone(), "a");
        assert_eq!(api.get("x").await.unwrap().metadata.name.as_deref(), Some("x"));
        assert_eq!(seen.load(Ordering::SeqCst), 3, "two 429s, then the answer");
        let (url, seen) = overloaded(1).await;
        let client = build(kube::Config::new(url.parse().unwrap())).unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(client, "a");
        let err = api.watch(&Default::default(), "0").await.err().expect("refused");
        assert!(crate::error::is_unavailable(&err), "{err:?}");
        assert_eq!(seen.load(Ordering::SeqCst), 1, "a watch sees the 429 itself");
    }

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
