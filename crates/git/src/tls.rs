//! HTTPS with a custom CA (`ca.crt`) or a client certificate (`tls.crt` + `tls.key`), and proxies.
//!
//! libgit2 verifies TLS against the process's CA store only, cannot present a client certificate, and
//! connects to `http://` servers directly even when given a proxy; registering a custom transport with it
//! needs `unsafe`. So for a remote with such settings or behind a proxy a
//! [`Bridge`] listens on a random loopback port for the duration of one operation, under a random first
//! path segment only that operation knows: libgit2 speaks plain HTTP to it, and the bridge forwards every request to the real remote over TLS (rustls, through reqwest)
//! with the Secret's CA trusted besides the platform's and its client certificate presented. It forwards
//! to that one remote only, and the proxy of `proxySecretRef` is used by the bridge, not by libgit2.
//! libgit2 cannot send custom headers when it only lists a remote's refs either, so a bearer token
//! (`bearerToken`, or a provider's token) is added by the bridge to each request that has none.

use std::sync::{Arc, Mutex};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::{Error, Result};

/// TLS settings of a remote, as PEM.
#[derive(Clone, Default)]
pub struct Tls {
    /// CA certificates trusted besides the platform's (`ca.crt`).
    pub ca: Option<Vec<u8>>,
    /// The client certificate chain (`tls.crt`).
    pub cert: Option<Vec<u8>>,
    /// The client certificate's private key (`tls.key`).
    pub key: Option<Vec<u8>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("ca", &self.ca.is_some())
            .field("cert", &self.cert.is_some())
            .field("key", &self.key.is_some())
            .finish()
    }
}

impl Tls {
    /// Whether any setting is given (a bridge is needed).
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// An HTTP client trusting `ca` besides the platform's CAs and presenting the client certificate, through
    /// `proxy` when given (also for API calls a provider makes to the Git host).
    pub fn http_client(&self, proxy: Option<&str>) -> Result<reqwest::Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let invalid = |what: &str, e: reqwest::Error| Error::Invalid(format!("invalid {what}: {e}"));
        // NB: HTTP/1.1 as libgit2 speaks it: a push's chunked request body over HTTP/2 is refused by
        // servers that hand it to a CGI (lighttpd answers 411)
        let mut builder = reqwest::Client::builder()
            .http1_only()
            .redirect(reqwest::redirect::Policy::limited(10));
        if let Some(pem) = &self.ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| invalid("'ca.crt'", e))?;
            if certs.is_empty() {
                return Err(Error::Invalid(
                    "invalid 'ca.crt': no PEM certificate in it".into(),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let mut pem = cert.clone();
                pem.push(b'\n');
                pem.extend_from_slice(key);
                let identity =
                    reqwest::Identity::from_pem(&pem).map_err(|e| invalid("'tls.crt'/'tls.key' pair", e))?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(Error::Invalid(
                    "both 'tls.crt' and 'tls.key' are required for a client certificate".into(),
                ));
            }
        }
        // NB: without a proxy of its own, the environment's (HTTPS_PROXY, NO_PROXY…) applies
        if let Some(url) = proxy {
            let proxy = reqwest::Proxy::all(url).map_err(|e| invalid("proxy", e))?;
            // NB: no idle connections kept: a proxy (tinyproxy) closes a kept-alive one when it likes, and a
            // request sent on it as it closes fails with "connection closed before message completed"
            builder = builder.no_proxy().proxy(proxy).pool_max_idle_per_host(0);
        }
        builder.build().map_err(|e| invalid("TLS settings", e))
    }
}

/// Whether the environment names a proxy (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, in either case), which
/// the bridge's client honours with `NO_PROXY`, as Flux does.
pub fn env_proxy() -> bool {
    ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"].iter().any(|k| {
        [k.to_string(), k.to_lowercase()]
            .iter()
            .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()))
    })
}

/// What the forwarding handler shares.
struct Forward {
    /// `scheme://host[:port]` of the remote.
    origin: String,
    /// The random first path segment only libgit2 knows: another local process cannot use the bridge
    /// (and its client certificate) while it listens.
    key: String,
    client: reqwest::Client,
    /// `Authorization` for requests that come without one (a bearer token), marked sensitive.
    authorization: Option<HeaderValue>,
    /// The first failure talking to the remote (a TLS error, a refused connection), for the error message.
    failure: Mutex<Option<String>>,
}

/// A loopback HTTP forwarder to one HTTP(S) remote, stopped when dropped.
pub(crate) struct Bridge {
    /// The URL libgit2 uses instead of the remote's.
    pub(crate) url: String,
    shared: Arc<Forward>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bridge {
    /// Starts a bridge to the remote `url` with `tls`, through `proxy` when given (else the environment's),
    /// sending `bearer_token` with requests that carry no `Authorization` of their own.
    pub(crate) fn start(
        url: &str,
        tls: &Tls,
        proxy: Option<&str>,
        bearer_token: Option<&str>,
    ) -> Result<Self> {
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(scheme, _)| *scheme == "https" || *scheme == "http")
            .ok_or_else(|| {
                Error::Invalid(format!("a bridge serves http:// and https:// URLs, not '{url}'"))
            })?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (user, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        let key = {
            use rand::Rng;
            let bytes: [u8; 16] = rand::rng().random();
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let authorization = bearer_token
            .map(|t| {
                HeaderValue::from_str(&format!("Bearer {t}")).map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
            })
            .transpose()
            .map_err(|_| Error::Invalid("the bearer token is not a valid HTTP header value".into()))?;
        let shared = Arc::new(Forward {
            origin: format!("{scheme}://{host}"),
            key: key.clone(),
            client: tls.http_client(proxy)?,
            authorization,
            failure: Mutex::default(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| Error::Io {
                context: "binding the TLS bridge".into(),
                source,
            })?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new().fallback(forward).with_state(shared.clone());
        let thread = std::thread::Builder::new()
            .name("git-tls-bridge".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the TLS bridge");
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    // NB: stopping lets requests in flight finish, but a connection left open does not
                    // hold the bridge (and the Git operation dropping it) for more than a few seconds
                    let (drain, drained) = tokio::sync::oneshot::channel::<()>();
                    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                        let _ = drained.await;
                    });
                    let server = std::future::IntoFuture::into_future(server);
                    tokio::pin!(server);
                    tokio::select! {
                        _ = &mut server => {}
                        _ = stopped => {
                            let _ = drain.send(());
                            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
                        }
                    }
                });
            })
            .map_err(|source| Error::Io {
                context: "starting the TLS bridge".into(),
                source,
            })?;
        let user = user.map(|u| format!("{u}@")).unwrap_or_default();
        Ok(Self {
            url: format!("http://{user}127.0.0.1:{port}/{key}{path}"),
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The first failure talking to the remote, if any.
    pub(crate) fn failure(&self) -> Option<String> {
        self.shared.failure.lock().expect("bridge failure").clone()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Headers that belong to one connection, not to the request or response.
const HOP_BY_HOP: [HeaderName; 5] = [
    header::HOST,
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

async fn forward(State(shared): State<Arc<Forward>>, request: Request) -> Response {
    let Some(path) = request
        .uri()
        .path_and_query()
        .and_then(|p| p.as_str().strip_prefix('/')?.strip_prefix(shared.key.as_str()))
        .filter(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
        .map(str::to_string)
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut outgoing = shared
        .client
        .request(request.method().clone(), format!("{}{path}", shared.origin));
    for (name, value) in request.headers() {
        if !HOP_BY_HOP.contains(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    if let Some(authorization) = &shared.authorization
        && !request.headers().contains_key(header::AUTHORIZATION)
    {
        outgoing = outgoing.header(header::AUTHORIZATION, authorization.clone());
    }
    let body = reqwest::Body::wrap_stream(request.into_body().into_data_stream());
    match outgoing.body(body).send().await {
        Ok(response) => {
            let mut out = Response::builder().status(response.status());
            for (name, value) in response.headers() {
                if !HOP_BY_HOP.contains(name) && name != header::CONTENT_LENGTH {
                    out = out.header(name, value);
                }
            }
            out.body(Body::from_stream(response.bytes_stream()))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(e) => {
            let message = error_chain(&e);
            shared
                .failure
                .lock()
                .expect("bridge failure")
                .get_or_insert(message.clone());
            (StatusCode::BAD_GATEWAY, message).into_response()
        }
    }
}

/// An error with its causes, `a: b: c` (reqwest's own message hides the TLS reason in its sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_requests_under_the_bridges_key_are_forwarded() {
        // NB: nothing listens on the remote's port: a forwarded request fails there, with 502
        let tls = Tls {
            ca: None,
            cert: None,
            key: None,
        };
        let bridge = Bridge::start("https://127.0.0.1:9/git/fleet.git", &tls, None, None).unwrap();
        let url = &bridge.url;
        let base = url.trim_end_matches("/git/fleet.git");
        let key_segment = base.rsplit('/').next().unwrap();
        assert_eq!(key_segment.len(), 32, "{url}");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let status = |u: String| {
            let client = client.clone();
            async move { client.get(u).send().await.unwrap().status().as_u16() }
        };
        let root = base.trim_end_matches(key_segment);
        assert_eq!(status(format!("{root}git/fleet.git/info/refs")).await, 404);
        assert_eq!(status(format!("{root}{key_segment}x/git/fleet.git")).await, 404);
        assert_eq!(
            status(format!("{url}/info/refs?service=git-upload-pack")).await,
            502
        );
        assert!(bridge.failure().is_some_and(|f| f.contains("127.0.0.1:9")));
    }

    #[test]
    fn a_connection_left_half_open_does_not_hold_the_bridge() {
        use std::io::Write;
        let bridge = Bridge::start("http://127.0.0.1:9/fleet.git", &Tls::default(), None, None).unwrap();
        let port = bridge
            .url
            .split(':')
            .nth(2)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let mut stuck = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        // a request whose headers never end
        stuck.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let started = std::time::Instant::now();
        drop(bridge);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "{:?}",
            started.elapsed()
        );
    }
}
