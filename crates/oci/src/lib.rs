//! OCI registries, for every controller that reads them — source-controller's OCIRepository (and OCI
//! Helm charts), image-reflector-controller's tag scans — on the maintained `oci-client` distribution
//! client: repository URLs read as Flux reads them ([`Repository`]), registry credentials from docker
//! config JSON Secrets ([`Keychain`]), TLS and proxy settings ([`Options`]), and a [`Client`] that lists
//! tags, resolves a tag, digest or semver range to a manifest digest with one `HEAD`, reads manifests and
//! streams a layer to a file, bounded and verified against its digest.
#![warn(missing_docs)]

mod keychain;
mod push;

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use oci_client::{
    Reference, RegistryOperation,
    client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol},
    errors::OciDistributionError,
    manifest::{OciDescriptor, OciImageManifest},
    secrets::RegistryAuth,
};
use tokio::io::AsyncWriteExt;

pub use keychain::Keychain;
pub use push::CREATED_ANNOTATION;

/// Flux's media type of an artifact's config (`flux push artifact`).
pub const FLUX_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
/// Flux's media type of an artifact's content layer.
pub const FLUX_CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// Helm's media type of a chart layer (`helm push`).
pub const HELM_CHART_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The annotation naming the source an artifact was built from.
pub const SOURCE_ANNOTATION: &str = "org.opencontainers.image.source";
/// The annotation naming the source revision an artifact was built from.
pub const REVISION_ANNOTATION: &str = "org.opencontainers.image.revision";

/// What went wrong; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not `oci://<host>/<repository>`, or has a tag.
    #[error("{0}")]
    InvalidUrl(String),
    /// A docker config JSON, certificate or filter that cannot be used.
    #[error("{0}")]
    InvalidConfig(String),
    /// No tag matches the semver range (after the filter).
    #[error("no match found for semver: {0}")]
    NoMatch(String),
    /// The semver range does not parse.
    #[error(transparent)]
    InvalidRange(#[from] driftless_version::Invalid),
    /// The registry refused the credentials, or asks for some.
    #[error("{0}")]
    Unauthorized(String),
    /// The tag, digest or blob is not in the repository.
    #[error("{0}")]
    NotFound(String),
    /// Bytes that do not hash to their digest.
    #[error("{0}")]
    DigestMismatch(String),
    /// A layer over the size limit.
    #[error("layer {digest} is over the limit of {limit} bytes")]
    TooLarge {
        /// The layer's digest.
        digest: String,
        /// The limit.
        limit: u64,
    },
    /// The registry could not be reached, or answered with an error.
    #[error("{0}")]
    Registry(String),
    /// The operation took longer than allowed.
    #[error("timeout after {0:?}")]
    Timeout(Duration),
    /// Writing a download failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    fn from_client(e: OciDistributionError, what: &str) -> Self {
        use OciDistributionError as E;
        match e {
            E::AuthenticationFailure(m) => Error::Unauthorized(format!("{what}: authentication failed: {m}")),
            E::UnauthorizedError { url } => Error::Unauthorized(format!("{what}: unauthorized: {url}")),
            E::ImageManifestNotFoundError(m) => Error::NotFound(format!("{what}: not found: {m}")),
            E::DigestError(d) => Error::DigestMismatch(format!("{what}: {d}")),
            E::RegistryError { envelope, url } => {
                use oci_client::errors::OciErrorCode as C;
                let text = format!("{what}: {url}: {envelope}");
                if envelope
                    .errors
                    .iter()
                    .any(|e| matches!(e.code, C::Unauthorized | C::Denied))
                {
                    Error::Unauthorized(text)
                } else if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        C::ManifestUnknown | C::NameUnknown | C::BlobUnknown | C::NotFound
                    )
                }) {
                    Error::NotFound(text)
                } else {
                    Error::Registry(text)
                }
            }
            E::ServerError {
                code: 401 | 403,
                url,
                message,
            } => Error::Unauthorized(format!("{what}: {url}: {message}")),
            E::ServerError {
                code: 404,
                url,
                message,
            } => Error::NotFound(format!("{what}: {url}: {message}")),
            other => Error::Registry(format!("{what}: {}", chain(&other))),
        }
    }
}

use driftless_runtime::error::chain;

/// A repository, read from `oci://<host>[:<port>]/<path>` as Flux reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    /// The registry host (and port); `docker.io` for Docker Hub.
    pub registry: String,
    /// The repository path (`library/nginx` on Docker Hub).
    pub repository: String,
}

impl Repository {
    /// Parses an `oci://` URL; a tag or digest in it is refused, with Flux's message.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let rest = url
            .strip_prefix("oci://")
            .ok_or_else(|| Error::InvalidUrl("URL must be in format 'oci://<domain>/<org>/<repo>'".into()))?;
        let rest = rest.trim_end_matches('/');
        if rest.contains('@') {
            return Err(Error::InvalidUrl(
                "URL must not contain a digest; use spec.ref.digest".into(),
            ));
        }
        // a colon after the last '/' is a tag (a colon before it is the registry's port)
        let last = rest.rsplit('/').next().unwrap_or(rest);
        if rest.contains('/')
            && let Some((_, tag)) = last.split_once(':')
        {
            return Err(Error::InvalidUrl(format!(
                "URL must not contain a tag; remove ':{tag}'"
            )));
        }
        let reference: Reference = rest
            .parse()
            .map_err(|e| Error::InvalidUrl(format!("invalid repository URL '{url}': {e}")))?;
        Ok(Self {
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
        })
    }

    /// The reference of a tag in it.
    pub fn tag(&self, tag: &str) -> Reference {
        Reference::with_tag(self.registry.clone(), self.repository.clone(), tag.to_string())
    }

    /// The reference of a digest in it.
    pub fn digest(&self, digest: &str) -> Reference {
        Reference::with_digest(self.registry.clone(), self.repository.clone(), digest.to_string())
    }

    /// The host without its port.
    fn host(&self) -> &str {
        let r = self.registry.as_str();
        if let Some(v6) = r.strip_prefix('[') {
            return v6.split(']').next().unwrap_or(v6);
        }
        r.rsplit_once(':').map_or(r, |(h, _)| h)
    }

    /// Whether the registry may be spoken to over plain HTTP without `insecure` — loopback, `localhost`,
    /// private (RFC 1918) addresses and `.local` names, as go-containerregistry (and so Flux) allows.
    pub fn allows_http(&self) -> bool {
        let host = self.host();
        if host == "localhost" || host.ends_with(".local") {
            return true;
        }
        match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private(),
            Ok(IpAddr::V6(ip)) => ip.is_loopback(),
            Err(_) => false,
        }
    }
}

/// How to reach a registry.
#[derive(Clone, Default)]
pub struct Options {
    /// Plain HTTP, or HTTPS without verifying the server's certificate when no CA is given (Flux's
    /// `spec.insecure`).
    pub insecure: bool,
    /// CA certificates (PEM) trusted besides the platform's (`ca.crt` of `certSecretRef`).
    pub ca: Option<Vec<u8>>,
    /// A client certificate and key (`tls.crt`, `tls.key`).
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
    /// A proxy URL.
    pub proxy: Option<String>,
    /// The bound of each operation.
    pub timeout: Duration,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("insecure", &self.insecure)
            .field("ca", &self.ca.is_some())
            .field("client_cert", &self.client_cert.is_some())
            .field("proxy", &self.proxy.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Which registries answered plain HTTP, remembered per host so each is probed once per process.
#[derive(Default)]
pub struct Schemes(Mutex<BTreeMap<String, bool>>);

/// A tag, digest or semver range resolved to a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The tag, when the reference was a tag or semver range.
    pub tag: Option<String>,
    /// The manifest's digest (`sha256:<hex>`).
    pub digest: String,
}

impl Resolved {
    /// Flux's revision: `<tag>@<digest>`, or the digest alone for a digest reference.
    pub fn revision(&self) -> String {
        match &self.tag {
            Some(t) => format!("{t}@{}", self.digest),
            None => self.digest.clone(),
        }
    }
}

/// What to pull, in Flux's precedence: digest, then semver (with a tag filter), then tag (`latest`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// A manifest digest.
    Digest(String),
    /// The highest tag in a range, among the tags the filter (a regular expression) matches.
    Semver {
        /// The range.
        range: String,
        /// The filter.
        filter: Option<String>,
        /// The selected layer's media type: Helm chart tags spell `+` as `_`.
        media_type: Option<String>,
    },
    /// A tag.
    Tag(String),
}

/// A client of one repository, with its credentials.
pub struct Client {
    inner: oci_client::Client,
    auth: RegistryAuth,
    repo: Repository,
    timeout: Duration,
}

impl Client {
    /// A client for `repo` with the credentials `keychain` has for its registry. A registry that may be
    /// spoken to over HTTP (insecure, or see [`Repository::allows_http`]) is probed once (remembered in
    /// `schemes`): HTTPS when it answers HTTPS, HTTP otherwise.
    pub async fn new(
        repo: &Repository,
        keychain: &Keychain,
        options: &Options,
        schemes: &Schemes,
    ) -> Result<Self, Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if options.client_cert.is_some() {
            return Err(Error::InvalidConfig(
                "client certificates (tls.crt, tls.key) are not supported for OCI registries yet: \
                 remove them from the certSecretRef Secret (ca.crt is supported)"
                    .into(),
            ));
        }
        let mut config = ClientConfig {
            read_timeout: Some(options.timeout),
            connect_timeout: Some(options.timeout.min(Duration::from_secs(30))),
            https_proxy: options.proxy.clone(),
            http_proxy: options.proxy.clone(),
            accept_invalid_certificates: options.insecure && options.ca.is_none(),
            user_agent: "driftless/source-controller",
            ..Default::default()
        };
        if let Some(ca) = &options.ca {
            config.extra_root_certificates = pem_certificates(ca)?;
        }
        if (options.insecure || repo.allows_http()) && !plain_https(repo, &config, options, schemes).await {
            config.protocol = ClientProtocol::Http;
        }
        let inner = oci_client::Client::try_from(config)
            .map_err(|e| Error::InvalidConfig(format!("building the registry client: {}", chain(&e))))?;
        Ok(Self {
            inner,
            auth: keychain.auth_for(&repo.registry),
            repo: repo.clone(),
            timeout: options.timeout,
        })
    }

    async fn bounded<T>(
        &self,
        what: &str,
        op: impl Future<Output = Result<T, OciDistributionError>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.timeout, op)
            .await
            .map_err(|_| Error::Timeout(self.timeout))?
            .map_err(|e| Error::from_client(e, what))
    }

    /// Every tag of the repository, following the registry's pages.
    pub async fn tags(&self) -> Result<Vec<String>, Error> {
        const PAGE: usize = 1000;
        let image = self.repo.tag("latest");
        let mut tags: Vec<String> = Vec::new();
        loop {
            let last = tags.last().cloned();
            let page = self
                .bounded(
                    "listing tags",
                    self.inner
                        .list_tags(&image, &self.auth, Some(PAGE), last.as_deref()),
                )
                .await?;
            let n = page.tags.len();
            tags.extend(page.tags);
            // NB: a registry that ignores `n` answers everything at once
            if n < PAGE || tags.last() == last.as_ref() {
                break;
            }
        }
        Ok(tags)
    }

    /// Resolves what is wanted to a manifest digest: a digest as it is (no request), a tag with one
    /// manifest `HEAD`, a semver range with the tag list and one `HEAD`.
    pub async fn resolve(&self, wanted: &Wanted) -> Result<Resolved, Error> {
        let tag = match wanted {
            Wanted::Digest(d) => {
                return Ok(Resolved {
                    tag: None,
                    digest: d.clone(),
                });
            }
            Wanted::Tag(t) => t.clone(),
            Wanted::Semver {
                range,
                filter,
                media_type,
            } => {
                let helm = media_type.as_deref() == Some(HELM_CHART_MEDIA_TYPE);
                let tags = self.tags().await?;
                highest(&tags, range, filter.as_deref(), helm)?
            }
        };
        let digest = self
            .bounded(
                &format!("resolving tag '{tag}'"),
                self.inner.fetch_manifest_digest(&self.repo.tag(&tag), &self.auth),
            )
            .await?;
        Ok(Resolved {
            tag: Some(tag),
            digest,
        })
    }

    /// The image manifest of `digest` (an index resolves to its linux/amd64 entry) and its digest.
    pub async fn manifest(&self, digest: &str) -> Result<(OciImageManifest, String), Error> {
        self.bounded(
            &format!("pulling manifest {digest}"),
            self.inner
                .pull_image_manifest(&self.repo.digest(digest), &self.auth),
        )
        .await
    }

    /// Streams the blob `layer` into `dest` (created), checking its digest and refusing more than
    /// `limit` bytes; returns its size.
    pub async fn pull_to(&self, layer: &OciDescriptor, dest: &Path, limit: u64) -> Result<u64, Error> {
        if u64::try_from(layer.size).unwrap_or(0) > limit {
            return Err(Error::TooLarge {
                digest: layer.digest.clone(),
                limit,
            });
        }
        let io = |source| Error::Io {
            path: dest.display().to_string(),
            source,
        };
        let what = format!("pulling layer {}", layer.digest);
        let image = self.repo.digest(&layer.digest);
        let op = async {
            // NB: an authenticated registry needs its token before the first blob request
            self.inner
                .store_auth_if_needed(image.resolve_registry(), &self.auth)
                .await;
            let mut stream = self
                .inner
                .pull_blob_stream(&image, layer)
                .await
                .map_err(|e| Error::from_client(e, &what))?;
            let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
            let mut written = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| {
                    match e
                        .get_ref()
                        .map(|inner| inner.is::<oci_client::errors::DigestError>())
                    {
                        Some(true) => Error::DigestMismatch(format!("{what}: {e}")),
                        _ => Error::Registry(format!("{what}: {}", chain(&e))),
                    }
                })?;
                written += chunk.len() as u64;
                if written > limit {
                    return Err(Error::TooLarge {
                        digest: layer.digest.clone(),
                        limit,
                    });
                }
                file.write_all(&chunk).await.map_err(io)?;
            }
            file.flush().await.map_err(io)?;
            Ok(written)
        };
        tokio::time::timeout(self.timeout, op)
            .await
            .map_err(|_| Error::Timeout(self.timeout))?
    }

    /// Authenticates for pulls now, so a refused credential shows as such rather than as a missing tag.
    pub async fn login(&self) -> Result<(), Error> {
        if matches!(self.auth, RegistryAuth::Anonymous) {
            return Ok(());
        }
        self.bounded(
            "authenticating",
            self.inner
                .auth(&self.repo.tag("latest"), &self.auth, RegistryOperation::Pull),
        )
        .await
        .map(|_| ())
    }
}

/// Whether an HTTP-capable registry answers HTTPS (remembered per host).
async fn plain_https(repo: &Repository, config: &ClientConfig, options: &Options, schemes: &Schemes) -> bool {
    if let Some(https) = schemes.0.lock().expect("schemes lock").get(&repo.registry) {
        return *https;
    }
    let mut builder = reqwest::Client::builder()
        .timeout(options.timeout.min(Duration::from_secs(5)))
        .danger_accept_invalid_certs(true);
    if let Some(proxy) = &options.proxy
        && let Ok(p) = reqwest::Proxy::all(proxy)
    {
        builder = builder.proxy(p);
    }
    let _ = config;
    let Ok(probe) = builder.build() else {
        return false;
    };
    let https = probe
        .get(format!("https://{}/v2/", repo.registry))
        .send()
        .await
        .is_ok();
    schemes
        .0
        .lock()
        .expect("schemes lock")
        .insert(repo.registry.clone(), https);
    https
}

fn pem_certificates(pem: &[u8]) -> Result<Vec<Certificate>, Error> {
    let text = String::from_utf8_lossy(pem);
    let blocks: Vec<Certificate> = text
        .split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("-----BEGIN CERTIFICATE-----"))
        .map(|b| Certificate {
            encoding: CertificateEncoding::Pem,
            data: b.trim().as_bytes().to_vec(),
        })
        .collect();
    if blocks.is_empty() {
        return Err(Error::InvalidConfig("ca.crt holds no PEM certificate".into()));
    }
    Ok(blocks)
}

/// The highest tag in `range` among `tags` the `filter` matches; Helm chart tags spell semver's `+` as
/// `_` (`helm`), as Flux maps them.
pub fn highest(tags: &[String], range: &str, filter: Option<&str>, helm: bool) -> Result<String, Error> {
    let filter = filter
        .filter(|f| !f.is_empty())
        .map(|f| {
            regex::Regex::new(f).map_err(|e| Error::InvalidConfig(format!("invalid semverFilter '{f}': {e}")))
        })
        .transpose()?;
    let candidates: Vec<String> = tags
        .iter()
        .filter(|t| filter.as_ref().is_none_or(|f| f.is_match(t)))
        .map(|t| if helm { t.replace('_', "+") } else { t.clone() })
        .collect();
    let constraint = driftless_version::Constraint::parse(range)?;
    let (_, best) = constraint
        .highest(candidates.iter().map(String::as_str))
        .ok_or_else(|| Error::NoMatch(range.to_string()))?;
    Ok(if helm {
        best.replace('+', "_")
    } else {
        best.to_string()
    })
}

/// Shared, cheaply cloned [`Schemes`].
pub type SharedSchemes = Arc<Schemes>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_as_flux_reads_them() {
        let r = Repository::parse("oci://127.0.0.1:5000/org/app").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "org/app");
        assert!(r.allows_http());
        let r = Repository::parse("oci://ghcr.io/stefanprodan/manifests/podinfo").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("ghcr.io", "stefanprodan/manifests/podinfo")
        );
        assert!(!r.allows_http());
        assert!(
            Repository::parse("oci://localhost:5000/app")
                .unwrap()
                .allows_http()
        );
        assert!(Repository::parse("oci://10.1.2.3/app").unwrap().allows_http());
        assert_eq!(
            Repository::parse("oci://ghcr.io/org/app:v1")
                .unwrap_err()
                .to_string(),
            "URL must not contain a tag; remove ':v1'"
        );
        assert_eq!(
            Repository::parse("https://ghcr.io/org/app")
                .unwrap_err()
                .to_string(),
            "URL must be in format 'oci://<domain>/<org>/<repo>'"
        );
        assert!(
            Repository::parse("oci://ghcr.io/Org/App").is_err(),
            "repositories are lower case"
        );
    }

    #[test]
    fn revisions_are_tag_at_digest_or_the_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let tagged = Resolved {
            tag: Some("v1.0.0".into()),
            digest: d.clone(),
        };
        assert_eq!(tagged.revision(), format!("v1.0.0@{d}"));
        let bare = Resolved {
            tag: None,
            digest: d.clone(),
        };
        assert_eq!(bare.revision(), d);
    }

    #[test]
    fn semver_picks_the_highest_filtered_tag() {
        let tags: Vec<String> = ["1.0.0", "1.2.0", "1.3.0-rc.1", "2.0.0", "latest", "1.2.1-dev"]
            .map(String::from)
            .to_vec();
        assert_eq!(highest(&tags, ">=1.0.0 <2.0.0", None, false).unwrap(), "1.2.0");
        assert_eq!(highest(&tags, "*", None, false).unwrap(), "2.0.0");
        assert_eq!(
            highest(&tags, ">=1.2.1-0", Some(".*-dev$"), false).unwrap(),
            "1.2.1-dev"
        );
        assert_eq!(
            highest(&tags, ">=3.0.0", None, false).unwrap_err().to_string(),
            "no match found for semver: >=3.0.0"
        );
        assert!(highest(&tags, "*", Some("("), false).is_err());
        let helm: Vec<String> = ["0.1.0_build.1", "0.1.0", "0.2.0_meta"]
            .map(String::from)
            .to_vec();
        assert_eq!(highest(&helm, "0.2.x", None, true).unwrap(), "0.2.0_meta");
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        assert!(pem_certificates(b"not a certificate").is_err());
        let two = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificates(two.as_bytes()).unwrap().len(), 2);
    }
}
