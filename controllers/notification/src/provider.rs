//! Providers: each type's payload, built as Flux builds it, and the delivery (the Provider's address,
//! token and headers from its Secret, bounded retries with backoff, its timeout).

use std::{collections::BTreeMap, time::Duration};

use driftless_api::notification::Provider;
use driftless_runtime::events::{FluxEvent, Severity};
use hmac::{Hmac, KeyInit, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

/// The provider types this controller delivers to.
pub const TYPES: [&str; 13] = [
    "github",
    "gitlab",
    "gitea",
    "generic",
    "generic-hmac",
    "slack",
    "discord",
    "rocket",
    "msteams",
    "googlechat",
    "telegram",
    "matrix",
    "alertmanager",
];

/// A delivery failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Provider cannot work as written (missing Secret, no address, unsupported type).
    #[error("{0}")]
    Config(String),
    /// The endpoint refused or did not answer, after every retry.
    #[error("{0}")]
    Send(String),
}

/// A client builder for providers, with the TLS crypto provider installed.
fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// The HTTP client of providers without TLS or proxy settings of their own.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(client_builder().build()?)
}

/// What a delivery needs, the Provider's Secret resolved.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// The type.
    pub type_: String,
    /// Where to send.
    pub address: String,
    /// `token` of the Secret.
    pub token: Option<String>,
    /// `spec.channel`.
    pub channel: Option<String>,
    /// `spec.username`.
    pub username: Option<String>,
    /// `headers` of the Secret.
    pub headers: BTreeMap<String, String>,
    /// `spec.timeout` (default 15s).
    pub timeout: Duration,
    /// `ca.crt` of `certSecretRef`: trusted besides the platform's roots.
    pub ca: Option<Vec<u8>>,
    /// `tls.crt` + `tls.key` of `certSecretRef`: a client certificate (PEM).
    pub identity: Option<Vec<u8>>,
    /// The proxy: `proxySecretRef` (`address`, `username`, `password`), else the deprecated `spec.proxy`.
    pub proxy: Option<(String, Option<(String, String)>)>,
}

impl Target {
    /// Whether delivering needs a client of its own (a CA, a client certificate, a proxy).
    fn own_client(&self) -> Option<Result<reqwest::Client, Error>> {
        if self.ca.is_none() && self.identity.is_none() && self.proxy.is_none() {
            return None;
        }
        let build = || -> anyhow::Result<reqwest::Client> {
            let mut builder = client_builder();
            if let Some(pem) = &self.ca {
                for cert in reqwest::Certificate::from_pem_bundle(pem)? {
                    builder = builder.add_root_certificate(cert);
                }
            }
            if let Some(pem) = &self.identity {
                builder = builder.identity(reqwest::Identity::from_pem(pem)?);
            }
            if let Some((address, auth)) = &self.proxy {
                let mut proxy = reqwest::Proxy::all(address)?;
                if let Some((user, password)) = auth {
                    proxy = proxy.basic_auth(user, password);
                }
                builder = builder.proxy(proxy);
            }
            Ok(builder.build()?)
        };
        Some(build().map_err(|e| Error::Config(format!("TLS or proxy settings: {e}"))))
    }
}

/// Resolves `provider`'s Secret (`address`, `token`, `headers`, `username`), and checks its type.
pub async fn target(client: &Client, provider: &Provider) -> Result<Target, Error> {
    let spec = &provider.spec;
    if !TYPES.contains(&spec.type_.as_str()) {
        return Err(Error::Config(format!(
            "provider type '{}' is not supported by driftless yet (supported: {})",
            spec.type_,
            TYPES.join(", ")
        )));
    }
    let mut t = Target {
        type_: spec.type_.clone(),
        address: spec.address.clone().unwrap_or_default(),
        channel: spec.channel.clone(),
        username: spec.username.clone(),
        timeout: spec
            .timeout
            .as_deref()
            .and_then(|d| driftless_api::meta::parse_duration(d).ok())
            .unwrap_or(Duration::from_secs(15)),
        ..Default::default()
    };
    if let Some(r) = &spec.secret_ref {
        let ns = provider.namespace().unwrap_or_default();
        let secret = Api::<Secret>::namespaced(client.clone(), &ns)
            .get_opt(&r.name)
            .await
            .map_err(|e| Error::Config(format!("failed to read Secret '{ns}/{}': {}", r.name, e)))?
            .ok_or_else(|| Error::Config(format!("Secret '{ns}/{}' not found", r.name)))?;
        let data = secret.data.unwrap_or_default();
        let get = |k: &str| {
            data.get(k)
                .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
        };
        if let Some(address) = get("address") {
            t.address = address;
        }
        t.token = get("token");
        if let Some(username) = get("username") {
            t.username = Some(username);
        }
        if let Some(headers) = get("headers") {
            t.headers = serde_yaml::from_str(&headers)
                .map_err(|e| Error::Config(format!("Secret '{ns}/{}': invalid headers: {e}", r.name)))?;
        }
    }
    let ns = provider.namespace().unwrap_or_default();
    let read = |name: String| {
        let ns = ns.clone();
        async move {
            Api::<Secret>::namespaced(client.clone(), &ns)
                .get_opt(&name)
                .await
                .map_err(|e| Error::Config(format!("failed to read Secret '{ns}/{name}': {e}")))?
                .map(|s| s.data.unwrap_or_default())
                .ok_or_else(|| Error::Config(format!("Secret '{ns}/{name}' not found")))
        }
    };
    if let Some(r) = &spec.cert_secret_ref {
        let data = read(r.name.clone()).await?;
        t.ca = data.get("ca.crt").map(|v| v.0.clone());
        if let (Some(cert), Some(key)) = (data.get("tls.crt"), data.get("tls.key")) {
            t.identity = Some([cert.0.as_slice(), b"\n", key.0.as_slice()].concat());
        }
        if t.ca.is_none() && t.identity.is_none() {
            return Err(Error::Config(format!(
                "Secret '{ns}/{}' has neither ca.crt nor tls.crt and tls.key",
                r.name
            )));
        }
    }
    if let Some(r) = &spec.proxy_secret_ref {
        let data = read(r.name.clone()).await?;
        let get = |k: &str| {
            data.get(k)
                .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
        };
        let address = get("address")
            .ok_or_else(|| Error::Config(format!("proxy Secret '{ns}/{}' has no address", r.name)))?;
        t.proxy = Some((address, get("username").zip(get("password"))));
    } else if let Some(proxy) = spec.proxy.as_ref().filter(|p| !p.is_empty()) {
        t.proxy = Some((proxy.clone(), None));
    }
    if !t.address.is_empty()
        && !reqwest::Url::parse(&t.address).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        return Err(Error::Config(format!(
            "provider {}/{}: invalid address: an http or https URL is needed",
            provider.namespace().unwrap_or_default(),
            provider.name_any()
        )));
    }
    if t.address.is_empty() && !matches!(t.type_.as_str(), "telegram") {
        return Err(Error::Config(format!(
            "provider {}/{} has no address (spec.address or the Secret's address key)",
            provider.namespace().unwrap_or_default(),
            provider.name_any()
        )));
    }
    Ok(t)
}

/// Flux's cleanup: only metadata of the involved object's group, with the group prefix removed
/// (`kustomize.toolkit.fluxcd.io/revision` → `revision`), checksums and digests left out.
pub fn clean_metadata(event: &FluxEvent) -> BTreeMap<String, String> {
    let api_version = event.involved_object.api_version.clone().unwrap_or_default();
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    event
        .metadata
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix(group)?.strip_prefix('/')?;
            (!matches!(key, "checksum" | "digest")).then(|| (key.to_string(), v.clone()))
        })
        .collect()
}

/// `kind/name.namespace`, lowercase kind, as Flux titles messages.
fn object_title(event: &FluxEvent) -> String {
    let o = &event.involved_object;
    format!(
        "{}/{}.{}",
        o.kind.clone().unwrap_or_default().to_lowercase(),
        o.name.clone().unwrap_or_default(),
        o.namespace.clone().unwrap_or_default()
    )
}

/// The request for `event` (its metadata already cleaned and completed by the Alert): URL, body, headers.
pub fn request(t: &Target, event: &FluxEvent) -> (String, Vec<u8>, Vec<(String, String)>) {
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    let error = event.severity == Severity::Error;
    let title = object_title(event);
    let slack = || {
        let fields: Vec<Value> = event
            .metadata
            .iter()
            .map(|(k, v)| json!({"title": k, "value": v, "short": false}))
            .collect();
        let mut p = json!({"attachments": [{
            "color": if error { "danger" } else { "good" },
            "author_name": title,
            "text": event.message,
            "mrkdwn_in": ["text"],
            "fields": fields,
        }]});
        if let Some(c) = &t.channel {
            p["channel"] = json!(c);
        }
        if let Some(u) = &t.username {
            p["username"] = json!(u);
        }
        p
    };
    if let Some((url, body, auth)) = commit_status(t, event) {
        headers.push(auth);
        return (
            url,
            serde_json::to_vec(&body).expect("JSON serialises"),
            with(headers, t),
        );
    }
    let (url, body) = match t.type_.as_str() {
        "generic" | "generic-hmac" => {
            headers.push(("gotk-component".into(), event.reporting_controller.clone()));
            let body = serde_json::to_vec(event).expect("events serialise");
            if t.type_ == "generic-hmac" {
                let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(
                    t.token.clone().unwrap_or_default().as_bytes(),
                )
                .expect("HMAC takes any key");
                mac.update(&body);
                headers.push((
                    "X-Signature".into(),
                    format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
                ));
            }
            return (t.address.clone(), body, with(headers, t));
        }
        "slack" | "rocket" => (t.address.clone(), slack()),
        "discord" => {
            let address = t.address.trim_end_matches('/');
            let url = if address.ends_with("/slack") {
                address.to_string()
            } else {
                format!("{address}/slack")
            };
            (url, slack())
        }
        "msteams" => {
            let facts: Vec<Value> = event
                .metadata
                .iter()
                .map(|(k, v)| json!({"title": k, "value": v}))
                .collect();
            let card = json!({
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": title, "weight": "bolder", "size": "medium", "wrap": true,
                     "color": if error { "attention" } else { "good" }},
                    {"type": "TextBlock", "text": event.message, "wrap": true},
                    {"type": "FactSet", "facts": facts},
                ],
            });
            (
                t.address.clone(),
                json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}),
            )
        }
        "googlechat" => {
            let mut sections = vec![json!({"widgets": [{"textParagraph": {"text": event.message}}]})];
            if !event.metadata.is_empty() {
                let widgets: Vec<Value> = event
                    .metadata
                    .iter()
                    .map(|(k, v)| json!({"keyValue": {"topLabel": k, "content": v}}))
                    .collect();
                sections.push(json!({"widgets": widgets}));
            }
            (
                t.address.clone(),
                json!({"cards": [{"header": {"title": title, "subtitle": event.reason}, "sections": sections}]}),
            )
        }
        "telegram" => {
            let base = if t.address.is_empty() {
                "https://api.telegram.org"
            } else {
                t.address.trim_end_matches('/')
            };
            let url = format!("{base}/bot{}/sendMessage", t.token.clone().unwrap_or_default());
            (
                url,
                json!({"chat_id": t.channel.clone().unwrap_or_default(), "text": text(event, &title), "parse_mode": "HTML"}),
            )
        }
        "matrix" => {
            let txn = format!("{:x}", rand_id(event));
            let url = format!(
                "{}/_matrix/client/r0/rooms/{}/send/m.room.message/{txn}",
                t.address.trim_end_matches('/'),
                t.channel.clone().unwrap_or_default()
            );
            (url, json!({"msgtype": "m.text", "body": text(event, &title)}))
        }
        "alertmanager" => {
            let mut labels: BTreeMap<String, String> = event.metadata.clone();
            let o = &event.involved_object;
            labels.insert(
                "alertname".into(),
                format!("Flux{}{}", o.kind.clone().unwrap_or_default(), event.reason),
            );
            labels.insert("severity".into(), if error { "error" } else { "info" }.into());
            labels.insert("reason".into(), event.reason.clone());
            labels.insert("kind".into(), o.kind.clone().unwrap_or_default());
            labels.insert("name".into(), o.name.clone().unwrap_or_default());
            labels.insert("namespace".into(), o.namespace.clone().unwrap_or_default());
            labels.insert("reportingController".into(), event.reporting_controller.clone());
            let summary = labels.remove("summary");
            let mut annotations = json!({"message": event.message});
            if let Some(s) = summary {
                annotations["summary"] = json!(s);
            }
            (
                t.address.clone(),
                json!([{"labels": labels, "annotations": annotations, "status": "firing", "startsAt": event.timestamp}]),
            )
        }
        _ => (t.address.clone(), json!({})),
    };
    if let Some(token) = &t.token
        && matches!(t.type_.as_str(), "slack" | "matrix")
    {
        headers.push(("Authorization".into(), format!("Bearer {token}")));
    }
    (
        url,
        serde_json::to_vec(&body).expect("JSON serialises"),
        with(headers, t),
    )
}

/// Whether the type reports commit statuses on a Git host.
pub fn is_commit_status(type_: &str) -> bool {
    matches!(type_, "github" | "gitlab" | "gitea")
}

/// The commit of the event's `revision` (`main@sha1:<hex>`, `sha1:<hex>` or a bare hex).
pub fn commit_of(event: &FluxEvent) -> Option<String> {
    let revision = event.metadata.get("revision")?;
    let hex = revision.rsplit(':').next()?;
    (hex.len() >= 7 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| hex.to_string())
}

/// A commit status for GitHub, GitLab or Gitea: URL, body, auth header. The address is the repository's
/// URL (`https://github.com/org/app`); the API is github.com's, or the host's `/api/v3` (GitHub
/// Enterprise), `/api/v4` (GitLab), `/api/v1` (Gitea).
fn commit_status(t: &Target, event: &FluxEvent) -> Option<(String, Value, (String, String))> {
    if !is_commit_status(&t.type_) {
        return None;
    }
    let sha = commit_of(event)?;
    let url = reqwest::Url::parse(&t.address).ok()?;
    let origin = match url.port() {
        Some(port) => format!("{}://{}:{port}", url.scheme(), url.host_str()?),
        None => format!("{}://{}", url.scheme(), url.host_str()?),
    };
    let repo = url.path().trim_matches('/').trim_end_matches(".git").to_string();
    let o = &event.involved_object;
    let context = format!(
        "{}/{}",
        o.kind.clone().unwrap_or_default().to_lowercase(),
        o.name.clone().unwrap_or_default()
    );
    let error = event.severity == Severity::Error;
    let description: String = event.message.chars().take(140).collect();
    let token = t.token.clone().unwrap_or_default();
    Some(match t.type_.as_str() {
        "github" => {
            let api = if url.host_str() == Some("github.com") {
                "https://api.github.com".to_string()
            } else {
                format!("{origin}/api/v3")
            };
            (
                format!("{api}/repos/{repo}/statuses/{sha}"),
                json!({"state": if error { "failure" } else { "success" }, "context": context, "description": description}),
                ("Authorization".into(), format!("Bearer {token}")),
            )
        }
        "gitlab" => (
            format!(
                "{origin}/api/v4/projects/{}/statuses/{sha}",
                repo.replace('/', "%2F")
            ),
            json!({"state": if error { "failed" } else { "success" }, "name": context, "description": description}),
            ("PRIVATE-TOKEN".into(), token),
        ),
        _ => (
            format!("{origin}/api/v1/repos/{repo}/statuses/{sha}"),
            json!({"state": if error { "failure" } else { "success" }, "context": context, "description": description}),
            ("Authorization".into(), format!("token {token}")),
        ),
    })
}

fn with(mut headers: Vec<(String, String)>, t: &Target) -> Vec<(String, String)> {
    headers.extend(t.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    headers
}

/// A plain-text rendering: title, message, metadata lines.
fn text(event: &FluxEvent, title: &str) -> String {
    let mut s = format!("{title}\n{}", event.message);
    for (k, v) in &event.metadata {
        s.push_str(&format!("\n{k}: {v}"));
    }
    s
}

/// A transaction id for Matrix, unique per event.
fn rand_id(event: &FluxEvent) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(event).unwrap_or_default().hash(&mut h);
    std::time::SystemTime::now().hash(&mut h);
    h.finish()
}

/// Delivers `event`: up to 4 attempts, 500ms apart then doubling, each bounded by the Provider's timeout;
/// a 4xx other than 429 is not retried.
pub async fn send(http: &reqwest::Client, t: &Target, event: &FluxEvent) -> Result<(), Error> {
    if is_commit_status(&t.type_) && commit_of(event).is_none() {
        // NB: a commit status needs a commit; events without a revision have nothing to report
        return Ok(());
    }
    let (url, body, headers) = request(t, event);
    let method = if t.type_ == "matrix" {
        reqwest::Method::PUT
    } else {
        reqwest::Method::POST
    };
    let own = t.own_client().transpose()?;
    let http = own.as_ref().unwrap_or(http);
    let mut delay = Duration::from_millis(500);
    let mut last = String::new();
    for attempt in 1..=4 {
        let mut req = http
            .request(method.clone(), &url)
            .timeout(t.timeout)
            .body(body.clone());
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => {
                last = format!("{} answered {}", redact(&url), r.status());
                if r.status().is_client_error() && r.status() != reqwest::StatusCode::TOO_MANY_REQUESTS {
                    break;
                }
            }
            Err(e) => last = format!("{}: {}", redact(&url), e.without_url()),
        }
        if attempt < 4 {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    Err(Error::Send(format!("sending the event failed: {last}")))
}

/// The URL without its path's secrets (Telegram tokens, webhook keys): scheme and host only.
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default()),
        Err(_) => "the provider".into(),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ObjectReference;

    use super::*;

    fn event(severity: Severity) -> FluxEvent {
        FluxEvent {
            involved_object: ObjectReference {
                api_version: Some("kustomize.toolkit.fluxcd.io/v1".into()),
                kind: Some("Kustomization".into()),
                name: Some("apps".into()),
                namespace: Some("flux-system".into()),
                ..Default::default()
            },
            severity,
            timestamp: "2026-11-22T00:00:00Z".into(),
            message: "Deployment/apps/web configured".into(),
            reason: "ReconciliationSucceeded".into(),
            metadata: BTreeMap::from([
                (
                    "kustomize.toolkit.fluxcd.io/revision".into(),
                    "main@sha1:abc".into(),
                ),
                ("kustomize.toolkit.fluxcd.io/checksum".into(), "x".into()),
                ("source.toolkit.fluxcd.io/other".into(), "y".into()),
            ]),
            reporting_controller: "kustomize-controller".into(),
            reporting_instance: String::new(),
        }
    }

    fn target(type_: &str) -> Target {
        Target {
            type_: type_.into(),
            address: "https://hooks.example.com/x".into(),
            token: Some("s3cret".into()),
            channel: Some("#ops".into()),
            username: Some("flux".into()),
            timeout: Duration::from_secs(1),
            ..Default::default()
        }
    }

    #[test]
    fn metadata_keeps_the_involved_group_without_prefix_checksums_or_others() {
        assert_eq!(
            clean_metadata(&event(Severity::Info)),
            BTreeMap::from([("revision".to_string(), "main@sha1:abc".to_string())])
        );
    }

    #[test]
    fn slack_payloads_are_flux_s_attachments() {
        let mut e = event(Severity::Error);
        e.metadata = clean_metadata(&e);
        let (url, body, headers) = request(&target("slack"), &e);
        assert_eq!(url, "https://hooks.example.com/x");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({"channel": "#ops", "username": "flux", "attachments": [{"color": "danger",
                "author_name": "kustomization/apps.flux-system", "text": "Deployment/apps/web configured",
                "mrkdwn_in": ["text"], "fields": [{"title": "revision", "value": "main@sha1:abc", "short": false}]}]})
        );
        assert!(headers.contains(&("Authorization".into(), "Bearer s3cret".into())));
        let (url, _, _) = request(&target("discord"), &e);
        assert_eq!(url, "https://hooks.example.com/x/slack");
    }

    #[test]
    fn generic_hmac_signs_the_event_body() {
        let e = event(Severity::Info);
        let (_, body, headers) = request(&target("generic-hmac"), &e);
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"s3cret").unwrap();
        mac.update(&body);
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(headers.contains(&("X-Signature".into(), want)));
        assert!(headers.contains(&("gotk-component".into(), "kustomize-controller".into())));
        assert_eq!(serde_json::from_slice::<FluxEvent>(&body).unwrap(), e);
    }

    #[test]
    fn commit_statuses_go_to_the_repository_s_commit() {
        let mut e = event(Severity::Error);
        e.metadata = clean_metadata(&e);
        e.metadata
            .insert("revision".into(), "main@sha1:0123456789abcdef".into());
        let t = |type_: &str, address: &str| Target {
            address: address.into(),
            ..target(type_)
        };
        let (url, body, headers) = request(&t("github", "https://github.com/org/app"), &e);
        assert_eq!(
            url,
            "https://api.github.com/repos/org/app/statuses/0123456789abcdef"
        );
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["state"], "failure");
        assert_eq!(body["context"], "kustomization/apps");
        assert!(headers.contains(&("Authorization".into(), "Bearer s3cret".into())));
        let (url, _, _) = request(&t("github", "https://git.corp:8443/org/app.git"), &e);
        assert_eq!(
            url,
            "https://git.corp:8443/api/v3/repos/org/app/statuses/0123456789abcdef"
        );
        let (url, body, headers) = request(&t("gitlab", "https://gitlab.com/group/sub/app"), &e);
        assert_eq!(
            url,
            "https://gitlab.com/api/v4/projects/group%2Fsub%2Fapp/statuses/0123456789abcdef"
        );
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["state"], "failed");
        assert!(headers.contains(&("PRIVATE-TOKEN".into(), "s3cret".into())));
        let (url, _, headers) = request(&t("gitea", "https://gitea.io/org/app"), &e);
        assert_eq!(
            url,
            "https://gitea.io/api/v1/repos/org/app/statuses/0123456789abcdef"
        );
        assert!(headers.contains(&("Authorization".into(), "token s3cret".into())));
        e.metadata.remove("revision");
        assert_eq!(commit_of(&e), None);
    }

    #[test]
    fn other_formats() {
        let mut e = event(Severity::Info);
        e.metadata = clean_metadata(&e);
        let body = |t: &str| serde_json::from_slice::<Value>(&request(&target(t), &e).1).unwrap();
        assert_eq!(
            body("msteams")["attachments"][0]["content"]["type"],
            "AdaptiveCard"
        );
        assert_eq!(
            body("googlechat")["cards"][0]["header"]["title"],
            "kustomization/apps.flux-system"
        );
        assert_eq!(
            body("alertmanager")[0]["labels"]["alertname"],
            "FluxKustomizationReconciliationSucceeded"
        );
        let (url, _, _) = request(
            &Target {
                address: String::new(),
                ..target("telegram")
            },
            &e,
        );
        assert_eq!(url, "https://api.telegram.org/bots3cret/sendMessage");
        assert_eq!(redact(&url), "https://api.telegram.org", "no token in logs");
    }
}
