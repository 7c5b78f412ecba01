//! References from one object to another, checked and read one way: the cross-namespace check of
//! `--no-cross-namespace-refs`, and the data of a Secret or ConfigMap a spec names.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};

/// `--no-cross-namespace-refs`: when `blocked`, a reference from an object in `own` to the `kind`
/// `namespace/name` elsewhere is refused with Flux's message.
pub fn cross_namespace(
    blocked: bool,
    own: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<(), String> {
    if blocked && namespace != own {
        return Err(format!(
            "cannot access {kind}/{namespace}/{name}, cross-namespace references have been blocked"
        ));
    }
    Ok(())
}

/// The data of the Secret `namespace/name`, `None` when it does not exist.
pub async fn secret_data(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, kube::Error> {
    Ok(Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
        .map(|s| {
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect()
        }))
}

/// The data (and binary data) of the ConfigMap `namespace/name`, `None` when it does not exist.
pub async fn config_map_data(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, kube::Error> {
    Ok(Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
        .map(|c| {
            let text = c
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()));
            let binary = c
                .binary_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0));
            text.chain(binary).collect()
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_blocked_reference_to_another_namespace_is_refused() {
        assert_eq!(cross_namespace(false, "a", "GitRepository", "b", "x"), Ok(()));
        assert_eq!(cross_namespace(true, "a", "GitRepository", "a", "x"), Ok(()));
        assert_eq!(
            cross_namespace(true, "a", "GitRepository", "b", "x"),
            Err("cannot access GitRepository/b/x, cross-namespace references have been blocked".into())
        );
    }
}
