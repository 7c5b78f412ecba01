//! An S3 API client for the `generic` Bucket provider, as much as a Bucket needs: does the bucket
//! exist, list its objects (ListObjectsV2, every page) with their ETags, download one object to a file.
//! Requests are signed with AWS Signature Version 4 (`UNSIGNED-PAYLOAD` bodies are never sent: only GET
//! and HEAD) when an access key is given, anonymous otherwise; path-style URLs, virtual-hosted for
//! `*.amazonaws.com`.

use std::{io::Write, time::Duration};

use futures::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The SHA-256 of an empty body, the payload hash of every request here.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An access key.
#[derive(Clone)]
pub struct Keys {
    /// `accesskey`.
    pub access: String,
    /// `secretkey`.
    pub secret: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

/// Why an S3 request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an S3 error.
    #[error("{code}: {message} (status {status})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The S3 error code (`NoSuchBucket`, `AccessDenied`…).
        code: String,
        /// Its message.
        message: String,
    },
    /// The request could not be made.
    #[error("{0}")]
    Request(String),
    /// An object over the size limit.
    #[error("object '{key}' is over the limit of {limit} bytes")]
    TooLarge {
        /// The object.
        key: String,
        /// The limit.
        limit: u64,
    },
    /// Writing a download failed.
    #[error("writing '{key}': {source}")]
    Io {
        /// The object.
        key: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the error is a missing object or bucket.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { status: 404, .. })
    }
}

/// A client of one bucket.
pub struct Bucket {
    http: reqwest::Client,
    scheme: &'static str,
    endpoint: String,
    bucket: String,
    region: String,
    keys: Option<Keys>,
    virtual_host: bool,
}

/// An object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// Its key.
    pub key: String,
    /// Its ETag, without quotes.
    pub etag: String,
}

impl Bucket {
    /// A client of `bucket` at `endpoint` (`host[:port]`), over HTTP when `insecure`.
    pub fn new(
        http: reqwest::Client,
        endpoint: &str,
        bucket: &str,
        region: Option<&str>,
        insecure: bool,
        keys: Option<Keys>,
    ) -> Self {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let virtual_host = endpoint.ends_with("amazonaws.com") && !bucket.contains('.');
        Self {
            http,
            scheme: if insecure { "http" } else { "https" },
            endpoint,
            bucket: bucket.to_string(),
            region: region
                .filter(|r| !r.is_empty())
                .unwrap_or("us-east-1")
                .to_string(),
            keys,
            virtual_host,
        }
    }

    /// The host and the path of `key` (empty: the bucket itself).
    fn location(&self, key: &str) -> (String, String) {
        let encoded = uri_encode(key, false);
        if self.virtual_host {
            (
                format!("{}.{}", self.bucket, self.endpoint),
                format!("/{encoded}"),
            )
        } else if key.is_empty() {
            (
                self.endpoint.clone(),
                format!("/{}", uri_encode(&self.bucket, false)),
            )
        } else {
            (
                self.endpoint.clone(),
                format!("/{}/{encoded}", uri_encode(&self.bucket, false)),
            )
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        key: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, Error> {
        let (host, path) = self.location(key);
        let mut sorted: Vec<(String, String)> =
            query.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        sorted.sort();
        let canonical_query = sorted
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
            .collect::<Vec<_>>()
            .join("&");
        let url = if canonical_query.is_empty() {
            format!("{}://{host}{path}", self.scheme)
        } else {
            format!("{}://{host}{path}?{canonical_query}", self.scheme)
        };
        let mut request = self.http.request(method.clone(), &url);
        if let Some(keys) = &self.keys {
            let now = chrono::Utc::now();
            let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
            let headers = [
                ("host", host.clone()),
                ("x-amz-content-sha256", EMPTY_SHA256.to_string()),
                ("x-amz-date", amz_date.clone()),
            ];
            let authorization = sign(
                method.as_str(),
                &path,
                &canonical_query,
                &headers,
                keys,
                &self.region,
                &amz_date,
            );
            request = request
                .header("x-amz-content-sha256", EMPTY_SHA256)
                .header("x-amz-date", amz_date)
                .header("authorization", authorization);
        }
        let resp = request
            .send()
            .await
            .map_err(|e| Error::Request(driftless_runtime::error::chain(&e)))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let (code, message) = api_error(&body);
        Err(Error::Api {
            status,
            code: code.unwrap_or_else(|| match status {
                404 => "NotFound".into(),
                403 => "AccessDenied".into(),
                _ => format!("HTTP {status}"),
            }),
            message: message.unwrap_or_default(),
        })
    }

    /// Whether the bucket exists (`HEAD`; 404 is no).
    pub async fn exists(&self) -> Result<bool, Error> {
        match self.send(reqwest::Method::HEAD, "", &[]).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every object under `prefix`, following continuation tokens.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Object>, Error> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2".to_string())];
            if !prefix.is_empty() {
                query.push(("prefix", prefix.to_string()));
            }
            if let Some(t) = &token {
                query.push(("continuation-token", t.clone()));
            }
            let body = self
                .send(reqwest::Method::GET, "", &query)
                .await?
                .text()
                .await
                .map_err(|e| Error::Request(e.to_string()))?;
            let page = parse_listing(&body).map_err(Error::Request)?;
            objects.extend(page.objects);
            match page.next {
                Some(next) if page.truncated => token = Some(next),
                _ => break,
            }
        }
        Ok(objects)
    }

    /// Streams `key` into `out`, refusing more than `limit` bytes; returns its ETag.
    pub async fn get(
        &self,
        key: &str,
        out: &mut std::fs::File,
        limit: u64,
        timeout: Duration,
    ) -> Result<String, Error> {
        let op = async {
            let resp = self.send(reqwest::Method::GET, key, &[]).await?;
            let etag = resp
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .trim_matches('"')
                .to_string();
            let mut body = resp.bytes_stream();
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| Error::Request(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(Error::TooLarge {
                        key: key.to_string(),
                        limit,
                    });
                }
                out.write_all(&chunk).map_err(|source| Error::Io {
                    key: key.to_string(),
                    source,
                })?;
            }
            Ok(etag)
        };
        tokio::time::timeout(timeout, op)
            .await
            .map_err(|_| Error::Request(format!("timeout after {timeout:?}")))?
    }
}

/// The `Authorization` header of a request: AWS Signature Version 4 over the method, path, query,
/// `headers` (lower-case names, signed in order of name) and the empty payload's hash.
pub fn sign(
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &[(&str, String)],
    keys: &Keys,
    region: &str,
    amz_date: &str,
) -> String {
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_lowercase(), v.trim().to_string()))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let payload = headers
        .iter()
        .find(|(k, _)| k == "x-amz-content-sha256")
        .map_or(EMPTY_SHA256, |(_, v)| v.as_str());
    let canonical_request =
        format!("{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload}");
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/s3/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let hmac = |key: &[u8], data: &str| {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    let k_date = hmac(format!("AWS4{}", keys.secret).as_bytes(), date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, "s3");
    let k_signing = hmac(&k_service, "aws4_request");
    let signature = hex::encode(hmac(&k_signing, &string_to_sign));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        keys.access
    )
}

/// URI-encodes as SigV4 wants: unreserved characters kept, `/` kept in paths.
fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

struct Listing {
    objects: Vec<Object>,
    truncated: bool,
    next: Option<String>,
}

/// Reads a ListObjectsV2 answer.
fn parse_listing(xml: &str) -> Result<Listing, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut listing = Listing {
        objects: Vec::new(),
        truncated: false,
        next: None,
    };
    let (mut key, mut etag) = (String::new(), String::new());
    loop {
        match reader.read_event().map_err(|e| format!("invalid listing: {e}"))? {
            Event::Start(e) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref().as_bytes()).to_string());
                if path.last().map(String::as_str) == Some("Contents") {
                    key.clear();
                    etag.clear();
                }
            }
            Event::End(_) => {
                if path.last().map(String::as_str) == Some("Contents") {
                    listing.objects.push(Object {
                        key: key.clone(),
                        etag: etag.trim_matches('"').to_string(),
                    });
                }
                path.pop();
            }
            event @ (Event::Text(_) | Event::GeneralRef(_)) => {
                // NB: entity references (`&amp;`) come as events of their own
                let text = match event {
                    Event::Text(t) => t.xml10_content().to_string(),
                    Event::GeneralRef(r) => quick_xml::escape::unescape(&format!("&{};", r.xml10_content()))
                        .map_err(|e| format!("invalid listing: {e}"))?
                        .to_string(),
                    _ => unreachable!("matched above"),
                };
                match path.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                    [_, "Contents", "Key"] => key.push_str(&text),
                    [_, "Contents", "ETag"] => etag.push_str(&text),
                    [_, "IsTruncated"] => listing.truncated = text == "true",
                    [_, "NextContinuationToken"] => listing.next = Some(text),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(listing)
}

/// The `Code` and `Message` of an S3 error document.
fn api_error(xml: &str) -> (Option<String>, Option<String>) {
    let field = |tag: &str| {
        let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
        let end = xml[start..].find(&format!("</{tag}>"))? + start;
        Some(xml[start..end].to_string())
    };
    (field("Code"), field("Message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_keys() -> Keys {
        Keys {
            access: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        }
    }

    #[test]
    fn signatures_match_awss_published_examples() {
        // "Example: GET Object" of the S3 Signature Version 4 documentation
        let auth = sign(
            "GET",
            "/test.txt",
            "",
            &[
                ("host", "examplebucket.s3.amazonaws.com".into()),
                ("range", "bytes=0-9".into()),
                ("x-amz-content-sha256", EMPTY_SHA256.into()),
                ("x-amz-date", "20130524T000000Z".into()),
            ],
            &example_keys(),
            "us-east-1",
            "20130524T000000Z",
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        // "Example: GET Bucket (List Objects)"
        let auth = sign(
            "GET",
            "/",
            "max-keys=2&prefix=J",
            &[
                ("host", "examplebucket.s3.amazonaws.com".into()),
                ("x-amz-content-sha256", EMPTY_SHA256.into()),
                ("x-amz-date", "20130524T000000Z".into()),
            ],
            &example_keys(),
            "us-east-1",
            "20130524T000000Z",
        );
        assert!(
            auth.ends_with("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
            "{auth}"
        );
    }

    #[test]
    fn listings_and_errors_are_read() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>true</IsTruncated>
<Contents><Key>apps/a &amp; b.yaml</Key><ETag>&quot;abc&quot;</ETag><Size>3</Size></Contents>
<Contents><Key>apps/c.yaml</Key><ETag>"def"</ETag></Contents>
<NextContinuationToken>tok</NextContinuationToken></ListBucketResult>"#;
        let page = parse_listing(xml).unwrap();
        assert_eq!(
            page.objects,
            vec![
                Object {
                    key: "apps/a & b.yaml".into(),
                    etag: "abc".into()
                },
                Object {
                    key: "apps/c.yaml".into(),
                    etag: "def".into()
                }
            ]
        );
        assert!(page.truncated);
        assert_eq!(page.next.as_deref(), Some("tok"));
        let (code, message) = api_error("<Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>");
        assert_eq!(
            (code.as_deref(), message.as_deref()),
            (Some("NoSuchBucket"), Some("gone"))
        );
        assert_eq!(uri_encode("a b/c+d", false), "a%20b/c%2Bd");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
    }
}
