//! The credentials of an OCI registry, read one way for every kind that pulls from one (OCIRepository,
//! OCI HelmRepository charts, ImageRepository): the `secretRef` docker config JSON Secret, the
//! `imagePullSecrets` of `serviceAccountName`, the `certSecretRef` CA (and client certificate), the
//! `proxySecretRef` proxy.

use driftless_api::meta::LocalObjectReference;
use driftless_oci::{Keychain, Options};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;

use crate::{Error, proxy_url, secret_data};

/// What an object's spec names for reaching its registry.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegistryRefs<'a> {
    /// Its namespace.
    pub namespace: &'a str,
    /// `spec.secretRef`.
    pub secret: Option<&'a LocalObjectReference>,
    /// `spec.serviceAccountName`.
    pub service_account: Option<&'a str>,
    /// `spec.certSecretRef`.
    pub cert_secret: Option<&'a LocalObjectReference>,
    /// `spec.proxySecretRef`.
    pub proxy_secret: Option<&'a LocalObjectReference>,
    /// `spec.insecure`.
    pub insecure: bool,
}

/// The registry credentials and connection options of `refs`, read with `client`; `timeout` bounds
/// each registry operation.
pub async fn for_registry(
    client: &kube::Client,
    refs: RegistryRefs<'_>,
    timeout: std::time::Duration,
) -> Result<(Keychain, Options), Error> {
    let ns = refs.namespace;
    let invalid = |e: driftless_oci::Error| Error::InvalidSpec(e.to_string());
    let mut keychain = Keychain::default();
    if let Some(r) = refs.secret {
        let data = secret_data(client, ns, &r.name).await?;
        keychain = Keychain::from_secret(&data, &format!("{ns}/{}", r.name)).map_err(invalid)?;
    }
    if let Some(sa) = refs.service_account.filter(|s| !s.is_empty()) {
        let account = Api::<ServiceAccount>::namespaced(client.clone(), ns)
            .get(sa)
            .await
            .map_err(|source| Error::GetServiceAccount {
                namespace: ns.to_string(),
                name: sa.to_string(),
                source,
            })?;
        for pull in account.image_pull_secrets.unwrap_or_default() {
            let data = secret_data(client, ns, &pull.name).await?;
            keychain.extend(Keychain::from_secret(&data, &format!("{ns}/{}", pull.name)).map_err(invalid)?);
        }
    }
    let mut options = Options {
        insecure: refs.insecure,
        timeout,
        ..Default::default()
    };
    if let Some(r) = refs.cert_secret {
        let data = secret_data(client, ns, &r.name).await?;
        let get = |k: &str| data.get(k).filter(|v| !v.is_empty()).cloned();
        options.ca = get("ca.crt").or_else(|| get("caFile"));
        options.client_cert = match (
            get("tls.crt").or_else(|| get("certFile")),
            get("tls.key").or_else(|| get("keyFile")),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(Error::InvalidSpec(format!(
                    "secret '{ns}/{}': 'tls.crt' and 'tls.key' go together: add the missing one",
                    r.name
                )));
            }
        };
        if options.ca.is_none() && options.client_cert.is_none() {
            return Err(Error::InvalidSpec(format!(
                "secret '{ns}/{}' has none of 'ca.crt', 'tls.crt' and 'tls.key'",
                r.name
            )));
        }
    }
    if let Some(r) = refs.proxy_secret {
        let name = format!("{ns}/{}", r.name);
        options.proxy = Some(proxy_url(&secret_data(client, ns, &r.name).await?, &name)?);
    }
    Ok((keychain, options))
}
