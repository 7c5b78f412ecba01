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

/// Flux's `accessFrom` ACL (fluxcd/pkg `acl.HasAccessToRef`): an object in `own` may use the `kind`
/// `namespace/name` when both are in one namespace, or when the namespace `own` has the labels of one
/// of `access_from`'s selectors. Reads the Namespace `own` only when that is needed.
pub async fn has_access(
    client: &Client,
    own: &str,
    namespace: &str,
    name: &str,
    access_from: Option<&driftless_api::source::AccessFrom>,
) -> Result<(), String> {
    if namespace.is_empty() || namespace == own {
        return Ok(());
    }
    let Some(acl) = access_from else {
        return Err(format!(
            "'{namespace}/{name}' can't be accessed due to missing ACL labels on 'accessFrom'"
        ));
    };
    let ns = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .get(own)
        .await
        .map_err(|e| format!("reading the labels of namespace '{own}': {e}"))?;
    let labels = ns.metadata.labels.unwrap_or_default();
    let matches = acl.namespace_selectors.iter().any(|selector| {
        selector
            .match_labels
            .as_ref()
            .is_none_or(|want| want.iter().all(|(k, v)| labels.get(k) == Some(v)))
    });
    if matches {
        Ok(())
    } else {
        Err(format!(
            "'{namespace}/{name}' can't be accessed due to labels mismatch on namespace '{own}'"
        ))
    }
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
