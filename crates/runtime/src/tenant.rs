//! The client a reconcile acts with on behalf of a tenant: the controller's own, the controller's
//! impersonating `system:serviceaccount:<namespace>:<serviceAccountName>` (so the tenant's RBAC decides
//! what may be applied), or one for a remote cluster read from a `spec.kubeConfig` Secret (impersonating
//! the ServiceAccount there too, when one is named). Impersonating clients are cached per user: a
//! reconcile does not build a connection pool.

use std::{collections::HashMap, sync::Mutex};

use driftless_api::meta::KubeConfigReference;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig Secret is missing.
    #[error("kubeconfig Secret '{namespace}/{name}' not found")]
    SecretNotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The reference or the kubeconfig cannot work: only a change helps.
    #[error("{0}")]
    Invalid(String),
    /// The API server failed.
    #[error("kubernetes API: {}", crate::error::api_message(.0))]
    Kube(#[from] kube::Error),
}

/// The controller's client and configuration, and the impersonating clients made from them.
pub struct Tenants {
    client: Client,
    config: kube::Config,
    impersonating: Mutex<HashMap<String, Client>>,
}

impl Tenants {
    /// Tenants of the controller whose client is `client`, made from `config`.
    pub fn new(client: Client, config: kube::Config) -> Self {
        Self {
            client,
            config,
            impersonating: Mutex::default(),
        }
    }

    /// The controller's own client.
    pub fn controller(&self) -> &Client {
        &self.client
    }

    /// The client for an object in `namespace` acting as its `service_account` (none: the
    /// controller's), on the cluster of `kube_config` when given.
    pub async fn client(
        &self,
        namespace: &str,
        service_account: Option<&str>,
        kube_config: Option<&KubeConfigReference>,
    ) -> Result<Client, Error> {
        let user = service_account.map(|sa| format!("system:serviceaccount:{namespace}:{sa}"));
        let Some(reference) = kube_config else {
            let Some(user) = user else {
                return Ok(self.client.clone());
            };
            if let Some(client) = self.impersonating.lock().expect("client cache").get(&user) {
                return Ok(client.clone());
            }
            let mut config = self.config.clone();
            config.auth_info.impersonate = Some(user.clone());
            config.auth_info.impersonate_groups = None;
            let client = crate::client::build(config)?;
            self.impersonating
                .lock()
                .expect("client cache")
                .insert(user, client.clone());
            return Ok(client);
        };
        let mut config = remote_config(&self.client, namespace, reference).await?;
        if let Some(user) = user {
            config.auth_info.impersonate = Some(user);
        }
        Ok(crate::client::build(config)?)
    }
}

/// The configuration in the `spec.kubeConfig` Secret of `namespace` (key `value` or `value.yaml`
/// unless the reference names one).
pub async fn remote_config(
    client: &Client,
    namespace: &str,
    reference: &KubeConfigReference,
) -> Result<kube::Config, Error> {
    let secret_ref = reference
        .secret_ref
        .as_ref()
        .ok_or_else(|| Error::Invalid("spec.kubeConfig needs a secretRef".into()))?;
    let name = &secret_ref.name;
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
        .ok_or_else(|| Error::SecretNotFound {
            namespace: namespace.to_string(),
            name: name.clone(),
        })?;
    let data = secret.data.unwrap_or_default();
    let keys: Vec<&str> = match secret_ref.key.as_deref() {
        Some(key) => vec![key],
        None => vec!["value", "value.yaml"],
    };
    let text = keys
        .iter()
        .find_map(|k| data.get(*k))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "kubeconfig Secret '{namespace}/{name}' has no key {}",
                keys.join(" or ")
            ))
        })?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&text)
        .map_err(|e| Error::Invalid(format!("kubeconfig Secret '{namespace}/{name}': {e}")))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| Error::Invalid(format!("kubeconfig Secret '{namespace}/{name}': {e}")))
}
