//! The credentials of a GitRepository's remote, for every controller that talks to it — source-controller
//! fetches with them, image automation pushes with them — read one way: the `secretRef` Secret's keys
//! (basic auth, bearer token, SSH key and known_hosts, CA and client certificate), the `proxySecretRef`
//! proxy, and the tokens a provider issues instead (`spec.provider`: a GitHub App installation token, an
//! Azure DevOps token by workload identity; [`provider`]), cached until shortly before they expire —
//! and those of an OCI registry ([`oci`]).
#![warn(missing_docs)]

pub mod helm;
pub mod oci;
pub mod provider;

use std::collections::BTreeMap;

use driftless_api::source::{GitProvider, GitRepository};
use driftless_git::{Auth, auth::RemoteUrl};
use driftless_runtime::error::api_message;
use kube::ResourceExt;

pub use provider::{AzureArgs, Tokens};

/// Why the credentials could not be had. Each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Secret the spec names is missing or unreadable.
    #[error("failed to get secret '{namespace}/{name}': {}", api_message(source))]
    GetSecret {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The ServiceAccount whose image pull secrets are wanted is missing or unreadable.
    #[error("failed to get service account '{namespace}/{name}': {}", api_message(source))]
    GetServiceAccount {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The spec or a Secret cannot work: only a change helps.
    #[error("{0}")]
    InvalidSpec(String),
    /// The Secret's keys do not fit the URL (an SSH URL without a key, half a certificate pair).
    #[error("{0}")]
    Authenticate(#[source] driftless_git::Error),
    /// The provider issued no token.
    #[error("failed to get credentials from the '{provider}' provider: {message}")]
    Provider {
        /// `github` or `azure`.
        provider: &'static str,
        /// Why.
        message: String,
    },
    /// The spec needs a feature gate that is off.
    #[error("{0}")]
    FeatureGateDisabled(String),
}

/// What the providers need: the token cache, the controller's Azure identity, and whether
/// `spec.serviceAccountName` may name the identity (`ObjectLevelWorkloadIdentity`).
#[derive(Default)]
pub struct Providers {
    /// Issued tokens.
    pub tokens: Tokens,
    /// The controller's Azure workload identity.
    pub azure: AzureArgs,
    /// The `ObjectLevelWorkloadIdentity` feature gate.
    pub object_level_identity: bool,
}

/// How to reach a repository's remote.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// Its credentials.
    pub auth: Auth,
    /// The proxy URL (`http://user:pass@host:port`) of `proxySecretRef`.
    pub proxy: Option<String>,
    /// The `secretRef` Secret's data, when there is one (its other keys: a GitHub App's, …).
    pub secret: Option<BTreeMap<String, Vec<u8>>>,
}

/// The credentials of `repo`'s remote, read with `client` (the controller's, or a tenant's).
pub async fn for_repository(
    client: &kube::Client,
    repo: &GitRepository,
    providers: &Providers,
) -> Result<Credentials, Error> {
    let ns = repo.namespace().unwrap_or_default();
    let url = RemoteUrl::parse(&repo.spec.url).map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let secret = match &repo.spec.secret_ref {
        Some(r) => Some((
            secret_data(client, &ns, &r.name).await?,
            format!("{ns}/{}", r.name),
        )),
        None => None,
    };
    let mut auth = match &secret {
        Some((data, name)) => {
            let auth = Auth::from_secret(data);
            auth.validate(&url, name).map_err(Error::Authenticate)?;
            auth
        }
        None => Auth::default(),
    };
    let proxy = match &repo.spec.proxy_secret_ref {
        Some(r) => Some(proxy_url(
            &secret_data(client, &ns, &r.name).await?,
            &format!("{ns}/{}", r.name),
        )?),
        None => None,
    };
    provider_credentials(
        client,
        repo,
        &ns,
        secret.as_ref(),
        proxy.as_deref(),
        providers,
        &mut auth,
    )
    .await?;
    Ok(Credentials {
        auth,
        proxy,
        secret: secret.map(|(data, _)| data),
    })
}

/// The data of the Secret `ns/name`.
pub async fn secret_data(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    driftless_runtime::refs::secret_data(client, ns, name)
        .await
        .map_err(|source| Error::GetSecret {
            namespace: ns.to_string(),
            name: name.to_string(),
            source,
        })
}

/// The proxy URL of a `proxySecretRef` Secret (`address`, optional `username` and `password`, which go
/// into the URL percent-encoded); `secret` names it in errors.
pub fn proxy_url(data: &BTreeMap<String, Vec<u8>>, secret: &str) -> Result<String, Error> {
    let get = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(v).to_string())
            .filter(|v| !v.is_empty())
    };
    let address = get("address").ok_or_else(|| {
        Error::InvalidSpec(format!(
            "invalid proxy secret '{secret}': key 'address' is missing"
        ))
    })?;
    let encode = |v: &str| {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    match (get("username"), get("password"), address.split_once("://")) {
        (Some(u), p, Some((scheme, rest))) => Ok(format!(
            "{scheme}://{}{}@{rest}",
            encode(&u),
            p.map(|p| format!(":{}", encode(&p))).unwrap_or_default()
        )),
        _ => Ok(address),
    }
}

/// Replaces the static credentials with the token `spec.provider` issues.
async fn provider_credentials(
    client: &kube::Client,
    obj: &GitRepository,
    ns: &str,
    secret: Option<&(BTreeMap<String, Vec<u8>>, String)>,
    proxy: Option<&str>,
    providers: &Providers,
    auth: &mut Auth,
) -> Result<(), Error> {
    use provider::{AzureIdentity, GITHUB_TOKEN_USER};
    let kind = obj.spec.provider.unwrap_or_default();
    if obj.spec.service_account_name.is_some() && kind != GitProvider::Azure {
        return Err(Error::InvalidSpec(
            "spec.serviceAccountName is only supported with the 'azure' provider".into(),
        ));
    }
    match kind {
        GitProvider::Generic => {}
        GitProvider::Github => {
            let (data, name) = secret.ok_or_else(|| {
                Error::InvalidSpec(
                    "the 'github' provider needs spec.secretRef with the GitHub App's githubAppID, \
                     githubAppInstallationID and githubAppPrivateKey"
                        .into(),
                )
            })?;
            let token = provider::github_token(data, name, &auth.tls, proxy, &providers.tokens)
                .await
                .map_err(|message| Error::Provider {
                    provider: "github",
                    message,
                })?;
            auth.username = Some(GITHUB_TOKEN_USER.into());
            auth.password = Some(token);
        }
        GitProvider::Aws => {
            return Err(Error::InvalidSpec(
                "the 'aws' provider (AWS CodeCommit with the controller's AWS identity) is not supported \
                 by driftless yet: use spec.secretRef with HTTPS Git credentials"
                    .into(),
            ));
        }
        GitProvider::Azure => {
            let identity = match &obj.spec.service_account_name {
                Some(_) if !providers.object_level_identity => {
                    return Err(Error::FeatureGateDisabled(
                        "to use spec.serviceAccountName for provider authentication please enable the \
                         ObjectLevelWorkloadIdentity feature gate in the controller"
                            .into(),
                    ));
                }
                Some(name) => AzureIdentity::ServiceAccount {
                    client,
                    namespace: ns,
                    name,
                },
                None => AzureIdentity::Controller,
            };
            let token = provider::azure_token(identity, &providers.azure, proxy, &providers.tokens)
                .await
                .map_err(|message| Error::Provider {
                    provider: "azure",
                    message,
                })?;
            auth.bearer_token = Some(token);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_proxy_secret_becomes_a_url_with_its_credentials_encoded() {
        assert_eq!(
            proxy_url(&data(&[("address", "http://proxy:3128")]), "ns/p").unwrap(),
            "http://proxy:3128"
        );
        assert_eq!(
            proxy_url(
                &data(&[
                    ("address", "http://proxy:3128"),
                    ("username", "u@x"),
                    ("password", "p:w/")
                ]),
                "ns/p"
            )
            .unwrap(),
            "http://u%40x:p%3Aw%2F@proxy:3128"
        );
        let err = proxy_url(&data(&[("username", "u")]), "ns/p").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid proxy secret 'ns/p': key 'address' is missing"
        );
    }
}
