//! How each sender signs its hooks, checked before anything else is done: HMAC signatures, tokens,
//! Google ID tokens (`gcr`), the allowed events.

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};

/// The value of `name` in an `application/x-www-form-urlencoded` body, decoded.
fn url_form_field(body: &[u8], name: &str) -> Option<Vec<u8>> {
    let decode = |v: &[u8]| -> Vec<u8> {
        let mut out = Vec::with_capacity(v.len());
        let mut i = 0;
        while i < v.len() {
            match v[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < v.len() => {
                    match std::str::from_utf8(&v[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        out
    };
    body.split(|b| *b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        (decode(k) == name.as_bytes()).then(|| decode(v))
    })
}

/// What a verified hook asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Annotate the resources.
    Reconcile,
    /// A ping: answer, do nothing.
    Ping,
}

fn hmac_ok(algo: &str, token: &str, body: &[u8], hex_sig: &str) -> bool {
    let Ok(sig) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    macro_rules! check {
        ($hash:ty) => {{
            let mut mac = <Hmac<$hash> as KeyInit>::new_from_slice(token.as_bytes()).expect("any key");
            mac.update(body);
            mac.verify_slice(&sig).is_ok()
        }};
    }
    match algo {
        "sha1" => check!(sha1::Sha1),
        "sha256" => check!(sha2::Sha256),
        "sha512" => check!(sha2::Sha512),
        _ => false,
    }
}

/// `algo=hex` signature header (`sha256=…`).
fn signed(headers: &HeaderMap, name: &str, token: &str, body: &[u8]) -> Result<(), (StatusCode, String)> {
    let value = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or((StatusCode::UNAUTHORIZED, format!("missing {name} header")))?;
    let (algo, sig) = value
        .split_once('=')
        .ok_or((StatusCode::UNAUTHORIZED, format!("malformed {name} header")))?;
    if hmac_ok(&algo.to_lowercase(), token, body, sig) {
        Ok(())
    } else {
        Err((StatusCode::UNAUTHORIZED, "the signature does not match".into()))
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Constant-time comparison of a shared token.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn allowed(events: &[String], event: Option<&str>, what: &str) -> Result<(), (StatusCode, String)> {
    if events.is_empty() {
        return Ok(());
    }
    match event {
        Some(e) if events.iter().any(|a| a.eq_ignore_ascii_case(e)) => Ok(()),
        Some(e) => Err((
            StatusCode::BAD_REQUEST,
            format!("{what} event '{e}' is not in the receiver's events"),
        )),
        None => Err((StatusCode::BAD_REQUEST, format!("missing {what} event type"))),
    }
}

/// Checks a hook as its sender signs it; nothing here calls the API server.
pub fn verify(
    type_: &str,
    token: &str,
    events: &[String],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verdict, (StatusCode, String)> {
    let json_body = || {
        serde_json::from_slice::<serde_json::Value>(body)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("malformed payload: {e}")))
    };
    match type_ {
        "generic" => Ok(Verdict::Reconcile),
        "generic-hmac" => signed(headers, "X-Signature", token, body).map(|()| Verdict::Reconcile),
        "github" => {
            if headers.contains_key("X-Hub-Signature-256") {
                signed(headers, "X-Hub-Signature-256", token, body)?;
            } else {
                signed(headers, "X-Hub-Signature", token, body)?;
            }
            let event = header(headers, "X-GitHub-Event");
            if event == Some("ping") {
                return Ok(Verdict::Ping);
            }
            allowed(events, event, "GitHub")?;
            // NB: as Flux (go-github's ParseWebHook), a signed body that is not a JSON payload (or a
            // form with one in `payload`) is refused, not taken as a push
            let form = header(headers, "Content-Type")
                .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
            let payload = if form {
                url_form_field(body, "payload").unwrap_or_default()
            } else {
                body.to_vec()
            };
            serde_json::from_slice::<serde_json::Value>(&payload).map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("unable to parse the GitHub payload: {e}"),
                )
            })?;
            Ok(Verdict::Reconcile)
        }
        "gitlab" => {
            let given = header(headers, "X-Gitlab-Token").unwrap_or_default();
            if !same(given, token) {
                return Err((
                    StatusCode::UNAUTHORIZED,
                    "the X-Gitlab-Token does not match".into(),
                ));
            }
            allowed(events, header(headers, "X-Gitlab-Event"), "GitLab")?;
            Ok(Verdict::Reconcile)
        }
        "bitbucket" => {
            signed(headers, "X-Hub-Signature", token, body)?;
            let event = header(headers, "X-Event-Key");
            if event == Some("diagnostics:ping") {
                return Ok(Verdict::Ping);
            }
            allowed(events, event, "Bitbucket")?;
            Ok(Verdict::Reconcile)
        }
        "harbor" => {
            if !same(header(headers, "Authorization").unwrap_or_default(), token) {
                return Err((
                    StatusCode::UNAUTHORIZED,
                    "the Authorization header does not match".into(),
                ));
            }
            Ok(Verdict::Reconcile)
        }
        "nexus" => {
            let sig = header(headers, "X-Nexus-Webhook-Signature").ok_or((
                StatusCode::UNAUTHORIZED,
                "missing X-Nexus-Webhook-Signature header".into(),
            ))?;
            if !hmac_ok("sha1", token, body, sig) {
                return Err((StatusCode::UNAUTHORIZED, "the signature does not match".into()));
            }
            Ok(Verdict::Reconcile)
        }
        "dockerhub" | "quay" | "acr" => {
            let payload = json_body()?;
            let field = match type_ {
                "dockerhub" => "/callback_url",
                "quay" => "/docker_url",
                _ => "/target/repository",
            };
            if payload.pointer(field).is_none() {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("the payload has no {}", &field[1..]),
                ));
            }
            Ok(Verdict::Reconcile)
        }
        "cdevents" => {
            allowed(events, header(headers, "Ce-Type"), "CDEvents")?;
            json_body()?;
            Ok(Verdict::Reconcile)
        }
        "gcr" => {
            // the Google ID token is checked by `verify_gcr`; here, the Pub/Sub message of a push
            let payload = json_body()?;
            let data = payload.pointer("/message/data").and_then(|d| d.as_str()).ok_or((
                StatusCode::BAD_REQUEST,
                "the payload has no message.data".to_string(),
            ))?;
            let decoded =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data).map_err(|e| {
                    (
                        StatusCode::BAD_REQUEST,
                        format!("message.data is not base64: {e}"),
                    )
                })?;
            let action = serde_json::from_slice::<serde_json::Value>(&decoded)
                .ok()
                .and_then(|d| d.get("action").and_then(|a| a.as_str()).map(str::to_string));
            match action.as_deref() {
                Some("INSERT") => Ok(Verdict::Reconcile),
                Some(other) => Err((
                    StatusCode::BAD_REQUEST,
                    format!("GCR action '{other}' is not INSERT"),
                )),
                None => Err((StatusCode::BAD_REQUEST, "message.data has no action".into())),
            }
        }
        other => Err((
            StatusCode::BAD_REQUEST,
            format!("receiver type '{other}' is not supported"),
        )),
    }
}

/// A `gcr` hook's `Authorization: Bearer <Google ID token>`, checked at Google's tokeninfo endpoint as
/// Flux does: it must answer 200 with `email_verified`.
pub(super) async fn verify_gcr(
    http: &reqwest::Client,
    tokeninfo: &str,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, String)> {
    let token = header(headers, "Authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty())
        .ok_or((
            StatusCode::UNAUTHORIZED,
            "missing or malformed bearer token".to_string(),
        ))?;
    let refused = |why: String| {
        (
            StatusCode::UNAUTHORIZED,
            format!("unable to verify the token: {why}"),
        )
    };
    let url = reqwest::Url::parse_with_params(tokeninfo, &[("id_token", token)])
        .map_err(|e| refused(format!("--gcr-tokeninfo-url: {e}")))?;
    let answer = http
        .get(url)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| refused(e.without_url().to_string()))?;
    if !answer.status().is_success() {
        return Err(refused(format!("tokeninfo answered {}", answer.status())));
    }
    let claims: serde_json::Value = answer.json().await.map_err(|e| refused(e.to_string()))?;
    let verified = claims
        .get("email_verified")
        .is_some_and(|v| v == "true" || v == &serde_json::Value::Bool(true));
    if !verified {
        return Err(refused("the token's email is not verified".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn sign(token: &str, body: &[u8]) -> String {
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(token.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_signed_github_hook_whose_body_is_not_a_json_payload_triggers_nothing() {
        let events = vec!["push".to_string()];
        let signed_push = |body: &[u8], form: bool| {
            let mut h = vec![
                ("X-Hub-Signature-256", sign("t", body)),
                ("X-GitHub-Event", "push".to_string()),
            ];
            if form {
                h.push(("Content-Type", "application/x-www-form-urlencoded".to_string()));
            }
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            verify("github", "t", &events, &headers(&h), body)
        };
        let refused = signed_push(b"not json", false).unwrap_err();
        assert_eq!(refused.0, StatusCode::BAD_REQUEST);
        assert!(refused.1.contains("payload"), "{}", refused.1);
        assert_eq!(
            signed_push(b"payload=%7B%22ref%22%3A+%22refs%2Fheads%2Fmain%22%7D", true),
            Ok(Verdict::Reconcile),
            "GitHub's form encoding carries the JSON in `payload`"
        );
        assert_eq!(
            signed_push(b"payload=nope", true).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn github_hooks_need_a_valid_signature_and_an_allowed_event() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let events = vec!["push".to_string()];
        let good = headers(&[
            ("X-Hub-Signature-256", &sign("t", body)),
            ("X-GitHub-Event", "push"),
        ]);
        assert_eq!(
            verify("github", "t", &events, &good, body),
            Ok(Verdict::Reconcile)
        );
        let bad = headers(&[
            ("X-Hub-Signature-256", &sign("other", body)),
            ("X-GitHub-Event", "push"),
        ]);
        assert_eq!(
            verify("github", "t", &events, &bad, body).unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );
        let missing = headers(&[("X-GitHub-Event", "push")]);
        assert_eq!(
            verify("github", "t", &events, &missing, body).unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );
        let other = headers(&[
            ("X-Hub-Signature-256", &sign("t", body)),
            ("X-GitHub-Event", "issues"),
        ]);
        assert_eq!(
            verify("github", "t", &events, &other, body).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
        let ping = headers(&[
            ("X-Hub-Signature-256", &sign("t", body)),
            ("X-GitHub-Event", "ping"),
        ]);
        assert_eq!(verify("github", "t", &events, &ping, body), Ok(Verdict::Ping));
    }

    #[test]
    fn gcr_pushes_must_be_inserts() {
        let message = |action: &str| {
            let data = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!(r#"{{"action":"{action}","tag":"gcr.io/p/app:1"}}"#),
            );
            format!(r#"{{"message":{{"data":"{data}","messageId":"1"}},"subscription":"s"}}"#).into_bytes()
        };
        assert_eq!(
            verify("gcr", "t", &[], &HeaderMap::new(), &message("INSERT")),
            Ok(Verdict::Reconcile)
        );
        assert_eq!(
            verify("gcr", "t", &[], &HeaderMap::new(), &message("DELETE"))
                .unwrap_err()
                .0,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn other_senders() {
        let body = b"{}";
        assert!(verify("gitlab", "t", &[], &headers(&[("X-Gitlab-Token", "t")]), body).is_ok());
        assert!(verify("gitlab", "t", &[], &headers(&[("X-Gitlab-Token", "x")]), body).is_err());
        assert!(
            verify(
                "generic-hmac",
                "t",
                &[],
                &headers(&[("X-Signature", &sign("t", body))]),
                body
            )
            .is_ok()
        );
        assert!(verify("generic-hmac", "t", &[], &HeaderMap::new(), body).is_err());
        assert!(verify("harbor", "t", &[], &headers(&[("Authorization", "t")]), body).is_ok());
        assert!(verify("generic", "t", &[], &HeaderMap::new(), body).is_ok());
        assert!(verify("quay", "t", &[], &HeaderMap::new(), br#"{"docker_url":"x"}"#).is_ok());
        assert!(verify("quay", "t", &[], &HeaderMap::new(), b"nope").is_err());
    }
}
