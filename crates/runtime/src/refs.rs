//! References from one object to another, checked and read one way: the cross-namespace check of
//! `--no-cross-namespace-refs`, and the data of a Secret a spec names.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
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

/// The data of the Secret `namespace/name`; a missing one is the API server's 404.
pub async fn secret_data(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, kube::Error> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(name)
        .await?;
    Ok(secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect())
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
