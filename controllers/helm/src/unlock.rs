//! Beyond Flux: a release stuck in `pending-install`, `pending-upgrade` or `pending-rollback` — its
//! action never finished because the process running it was killed — is recovered by marking that
//! revision `failed` in Helm's own release Secret (its `status` label and the status inside the
//! encoded release), after which install, upgrade and rollback work again. Helm itself refuses any
//! action on such a release ("another operation (install/upgrade/rollback) is in progress"), the helm
//! failure Flux users report most.
//!
//! The same rewrite records the outcome of our own wait ([`set_status`]): a release whose objects did
//! not become ready is marked failed, as `helm --wait` would have left it.

use std::io::{Read, Write};

use base64::Engine;
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use tracing::warn;

/// Marks revision `revision` of `release` in `namespace` failed, if it is still `pending`.
pub async fn unlock(
    client: &kube::Client,
    namespace: &str,
    release: &str,
    revision: i64,
    pending: &str,
) -> Result<(), String> {
    let description = format!(
        "Release recovered by helm-controller: it was left {pending} by an action that never finished"
    );
    let changed = set_status(
        client,
        namespace,
        release,
        revision,
        |s| s.starts_with("pending-"),
        "failed",
        Some(&description),
    )
    .await?;
    if changed {
        warn!(%namespace, %release, revision, from = pending, "recovered a release left pending: marked failed");
    }
    Ok(())
}

/// Sets the status of revision `revision` of `release` to `to` (its Secret's `status` label and the
/// status inside the encoded release, with `description` when given) when its status `from` accepts;
/// whether it did.
pub async fn set_status(
    client: &kube::Client,
    namespace: &str,
    release: &str,
    revision: i64,
    from: impl Fn(&str) -> bool,
    to: &str,
    description: Option<&str>,
) -> Result<bool, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let name = format!("sh.helm.release.v1.{release}.v{revision}");
    let secret = api
        .get(&name)
        .await
        .map_err(|e| driftless_runtime::error::api_message(&e))?;
    let encoded = secret
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .ok_or_else(|| format!("release Secret '{name}' has no 'release' key"))?;
    let mut doc = decode(&encoded.0)?;
    let status = doc
        .pointer("/info/status")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_string();
    if !from(&status) {
        return Ok(false);
    }
    doc["info"]["status"] = to.into();
    if let Some(description) = description {
        doc["info"]["description"] = description.into();
    }
    let data = encode(&doc)?;
    let patch = serde_json::json!({
        "metadata": {"labels": {"status": to}},
        "data": {"release": ByteString(data)},
    });
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| driftless_runtime::error::api_message(&e))?;
    Ok(true)
}

/// A release as Helm stores it: base64 of gzipped JSON.
fn decode(stored: &[u8]) -> Result<serde_json::Value, String> {
    let gz = base64::engine::general_purpose::STANDARD
        .decode(stored)
        .map_err(|e| format!("release is not base64: {e}"))?;
    let mut json = Vec::new();
    if gz.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut json)
            .map_err(|e| format!("release is not gzip: {e}"))?;
    } else {
        json = gz;
    }
    serde_json::from_slice(&json).map_err(|e| format!("release is not JSON: {e}"))
}

fn encode(doc: &serde_json::Value) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(doc).map_err(|e| e.to_string())?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json).map_err(|e| e.to_string())?;
    let bytes = gz.finish().map_err(|e| e.to_string())?;
    Ok(base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_round_trip_helms_encoding() {
        let doc = serde_json::json!({"name": "web", "info": {"status": "pending-upgrade"}, "version": 2});
        let stored = encode(&doc).unwrap();
        assert_eq!(decode(&stored).unwrap(), doc);
        assert!(decode(b"!!").is_err());
    }
}
