//! kustomize's default ("legacy") output order: by kind, Namespaces and CRDs first, webhooks last, then
//! by group/version/kind, then by namespace and name.

use crate::Object;

const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: &[&str] = &["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"];

fn kind_rank<S: AsRef<str>>(kind: &str, first: &[S], last: &[S]) -> i64 {
    if let Some(i) = first.iter().position(|k| k.as_ref() == kind) {
        return i as i64 - first.len() as i64;
    }
    if let Some(i) = last.iter().position(|k| k.as_ref() == kind) {
        return 1 + i as i64;
    }
    0
}

/// A string field of an object, empty when absent.
pub fn field<'a>(o: &'a Object, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(o, |v, k| v.get(*k))
        .and_then(|v| v.as_str())
        .unwrap_or("")
}

/// The sort key of an object.
fn key<S: AsRef<str>>(o: &Object, first: &[S], last: &[S]) -> (i64, String, String) {
    let api_version = field(o, &["apiVersion"]);
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_string()
        } else {
            s.to_string()
        }
    };
    let kind = field(o, &["kind"]);
    let gvk = format!("{}_{}_{}", or(group, "~G"), or(version, "~V"), or(kind, "~K"));
    let id = format!(
        "{}|{}",
        or(field(o, &["metadata", "namespace"]), "~X"),
        field(o, &["metadata", "name"])
    );
    (kind_rank(kind, first, last), gvk, id)
}

/// Sorts objects into kustomize's legacy order (stable).
pub fn legacy_sort(objects: &mut [Object]) {
    objects.sort_by_cached_key(|o| key(o, ORDER_FIRST, ORDER_LAST));
}

/// The legacy sort with custom first and last kinds (`sortOptions.legacySortOptions`).
pub fn legacy_sort_with(objects: &mut [Object], first: &[String], last: &[String]) {
    objects.sort_by_cached_key(|o| key(o, first, last));
}
