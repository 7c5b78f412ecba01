//! The credentials of an HTTP(S) Helm chart repository: basic auth (`username`, `password`) from
//! `secretRef` (with the TLS keys Flux still reads there, deprecated), the CA and client certificate of
//! `certSecretRef` (which wins), and an HTTP client built from them.

use driftless_api::meta::LocalObjectReference;
use driftless_git::{Auth, tls::Tls};

use crate::{Error, secret_data};

/// How to reach a chart repository.
#[derive(Clone, Default)]
pub struct HelmCredentials {
    /// Basic auth.
    pub basic: Option<(String, String)>,
    /// TLS settings.
    pub tls: Tls,
}

impl std::fmt::Debug for HelmCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelmCredentials")
            .field("basic", &self.basic.as_ref().map(|(u, _)| u))
            .field("tls", &self.tls)
            .finish()
    }
}

impl HelmCredentials {
    /// An HTTP client with these TLS settings.
    pub fn http_client(&self) -> Result<reqwest::Client, Error> {
        self.tls
            .http_client(None)
            .map_err(|e| Error::InvalidSpec(e.to_string()))
    }

    /// `request` with basic auth, when there is some.
    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.basic {
            Some((u, p)) => request.basic_auth(u, Some(p)),
            None => request,
        }
    }
}

/// The credentials `secret` and `cert_secret` (in `namespace`) name, read with `client`.
pub async fn for_helm_repository(
    client: &kube::Client,
    namespace: &str,
    secret: Option<&LocalObjectReference>,
    cert_secret: Option<&LocalObjectReference>,
) -> Result<HelmCredentials, Error> {
    let mut creds = HelmCredentials::default();
    if let Some(r) = secret {
        let auth = Auth::from_secret(&secret_data(client, namespace, &r.name).await?);
        creds.basic = match (auth.username, auth.password) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => {
                return Err(Error::InvalidSpec(format!(
                    "invalid '{namespace}/{}' secret data: required fields 'username' and 'password'",
                    r.name
                )));
            }
        };
        creds.tls = auth.tls;
    }
    if let Some(r) = cert_secret {
        let tls = Auth::from_secret(&secret_data(client, namespace, &r.name).await?).tls;
        if !tls.is_set() {
            return Err(Error::InvalidSpec(format!(
                "secret '{namespace}/{}' has none of 'ca.crt', 'tls.crt' and 'tls.key'",
                r.name
            )));
        }
        creds.tls = tls;
    }
    Ok(creds)
}
