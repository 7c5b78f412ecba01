//! What a release does in its cluster, beside helm's own work: the cluster and user it is made on
//! (`kubeConfig`, impersonation), the wait for its objects (`waitStrategy: poller`, kstatus and
//! `healthCheckExprs`), drift detection and correction, and its inventory.

use std::time::Duration;

use driftless_api::helm::HelmRelease;
use kube::ResourceExt;
use serde_json::Value;

use super::Error;
use crate::{
    Context,
    helm::{Helm, Release, Revision},
};

/// What drift detection found and did.
#[derive(Debug, Default, PartialEq)]
pub struct DriftOutcome {
    /// Flux's "Cluster state of release … has drifted from the desired state:" message, when it has.
    pub detected: Option<String>,
    /// `enabled` mode: the correction's event (`DriftCorrected`, or `DriftCorrectionFailed` as `Err`).
    pub corrected: Option<Result<String, String>>,
}

/// The cluster and user a release is made on: helm's configuration and the user it impersonates, and a
/// client for the same cluster and user (drift, inventory, a pending release's recovery).
pub struct Target {
    /// The cluster's client configuration (the controller's, or `spec.kubeConfig`'s).
    pub config: kube::Config,
    /// `system:serviceaccount:<namespace>:<serviceAccountName>`, when one acts.
    pub as_user: Option<String>,
    /// A client of that cluster, as that user.
    pub client: kube::Client,
}

/// The target of `obj`: `spec.kubeConfig`'s cluster when set, as `serviceAccountName` (there, or here
/// with `--default-service-account`) when one is named.
pub async fn target_cluster(obj: &HelmRelease, ctx: &Context) -> Result<Target, Error> {
    use driftless_runtime::tenant::Error as E;
    let ns = obj.namespace().unwrap_or_default();
    let kube_config = obj.spec.kube_config.as_ref();
    let sa = obj
        .spec
        .service_account_name
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            Some(ctx.default_service_account.clone()).filter(|s| !s.is_empty() && kube_config.is_none())
        });
    let tenant_error = |e: E| match e {
        E::SecretNotFound { .. } => Error::Values(format!("could not get client config: {e}")),
        E::Invalid(message) => Error::InvalidSpec(message),
        E::Kube(e) => Error::Kube(e),
    };
    let client = ctx
        .tenants
        .client(&ns, sa.as_deref(), kube_config)
        .await
        .map_err(tenant_error)?;
    let config = match kube_config {
        None => ctx.kube_config.clone(),
        Some(reference) => driftless_runtime::tenant::remote_config(&ctx.client, &ns, reference)
            .await
            .map_err(tenant_error)?,
    };
    Ok(Target {
        config,
        as_user: sa.map(|sa| format!("system:serviceaccount:{ns}:{sa}")),
        client,
    })
}

/// Whether the release's objects are waited for by us (`waitStrategy: poller`, Flux's default: kstatus
/// and `healthCheckExprs`) rather than by `helm --wait` (`legacy`, the default with `UseHelm3Defaults`).
pub(super) fn polls(obj: &HelmRelease, features: crate::Features) -> bool {
    match &obj.spec.wait_strategy {
        Some(w) => w.name != "legacy",
        None => !features.use_helm3_defaults,
    }
}

/// The CEL rules of `spec.healthCheckExprs`.
pub(super) fn health_rules(obj: &HelmRelease) -> Result<driftless_ssa::health::Rules, Error> {
    driftless_ssa::health::Rules::from_checks(obj.spec.health_check_exprs.as_deref().unwrap_or_default())
        .map_err(Error::InvalidSpec)
}

/// Waits until every object of the release is ready by kstatus's rules and `rules` (Jobs complete only
/// with `jobs`), as helm v4's poller does for Flux; the error names the objects that are not.
pub(super) async fn wait_until_ready(
    client: &kube::Client,
    objects: &[Value],
    rules: &driftless_ssa::health::Rules,
    jobs: bool,
    timeout: Duration,
) -> Result<(), String> {
    let targets: Vec<driftless_ssa::health::Target> = objects
        .iter()
        .filter(|o| jobs || !(o["kind"] == "Job" && o["apiVersion"] == "batch/v1"))
        .map(driftless_ssa::inventory_ref)
        .filter_map(|r| driftless_ssa::parse_ref(&r))
        .map(|(namespace, name, gvk)| driftless_ssa::health::Target { gvk, namespace, name })
        .collect();
    let options = driftless_ssa::health::WaitOptions {
        interval: Duration::from_millis((500 + 10 * targets.len() as u64).min(5000)),
        timeout,
        fail_fast: false,
    };
    manager(client)
        .wait_for_set(&targets, rules, options, std::future::pending())
        .await
        .map_err(|e| e.to_string())
}

/// A release whose objects did not become ready is left as `helm --wait` leaves it: the new revision
/// `failed` (with helm's description), and after an upgrade the revision it replaced `deployed` again.
pub(super) async fn record_failed_wait(
    client: &kube::Client,
    helm: &Helm,
    release: &Release,
    replaced: Option<&Revision>,
    waited: &str,
) {
    let (storage, name) = (release.storage.as_str(), release.name.as_str());
    let Ok(history) = helm.history(release).await else {
        return;
    };
    let Some(latest) = history.last() else {
        return;
    };
    let description = match replaced {
        Some(_) => format!("Upgrade \"{name}\" failed: {waited}"),
        None => format!("Release \"{name}\" failed: {waited}"),
    };
    let deployed = |s: &str| s == "deployed";
    if let Err(e) = crate::unlock::set_status(
        client,
        storage,
        name,
        latest.revision,
        deployed,
        "failed",
        Some(&description),
    )
    .await
    {
        tracing::warn!(release = %name, error = %e, "could not mark the release failed");
    }
    if let Some(previous) = replaced.filter(|p| p.revision != latest.revision)
        && let Err(e) = crate::unlock::set_status(
            client,
            storage,
            name,
            previous.revision,
            |s| s == "superseded",
            "deployed",
            None,
        )
        .await
    {
        tracing::warn!(release = %name, error = %e, "could not restore the replaced revision");
    }
}

/// Whether `driftDetection.mode` is `enabled` or `warn`.
pub(super) fn detects_drift(obj: &HelmRelease) -> bool {
    obj.spec
        .drift_detection
        .as_ref()
        .and_then(|d| d.mode.as_deref())
        .is_some_and(|m| m == "enabled" || m == "warn")
}

/// The objects of the release's current manifest (hooks left out), each namespaced kind in the release's
/// namespace when it names none, with the metadata helm gives what it creates (as Flux's diff sets it).
pub(super) async fn release_objects(
    client: &kube::Client,
    helm: &Helm,
    release: &Release,
) -> Result<Vec<Value>, Error> {
    let (namespace, name) = (release.namespace.as_str(), release.name.as_str());
    let manifest = helm
        .manifest(release)
        .await
        .map_err(|e| Error::Helm(format!("failed to get the release manifest: {e}")))?;
    let mut objects: Vec<Value> = driftless_kustomize::yaml::parse_stream(&manifest, "manifest")
        .map_err(|e| Error::Helm(format!("failed to read objects from release manifest: {e}")))?
        .into_iter()
        .filter(|o| o.get("kind").is_some() && o.pointer("/metadata/annotations/helm.sh~1hook").is_none())
        .collect();
    for o in &mut objects {
        let meta = &mut o["metadata"];
        meta["labels"]["app.kubernetes.io/managed-by"] = "Helm".into();
        meta["annotations"]["meta.helm.sh/release-name"] = name.into();
        meta["annotations"]["meta.helm.sh/release-namespace"] = namespace.into();
    }
    manager(client)
        .default_namespaces(&mut objects, namespace)
        .await
        .map_err(|e| Error::Helm(format!("failed to read objects from release manifest: {e}")))?;
    Ok(objects)
}

/// Drift is found and corrected as helm itself would write: its field manager (Flux's).
fn manager(client: &kube::Client) -> driftless_ssa::ResourceManager {
    driftless_ssa::ResourceManager::new(client.clone(), "helm", driftless_ssa::HELM_GROUP)
}

/// The inventory of the release's objects (Flux's `status.inventory`).
pub(super) fn inventory(objects: &[Value]) -> driftless_api::kustomize::ResourceInventory {
    let mut entries: Vec<_> = objects.iter().map(driftless_ssa::inventory_ref).collect();
    entries.sort_by(|a, b| a.id.cmp(&b.id));
    entries.dedup();
    driftless_api::kustomize::ResourceInventory { entries }
}

/// Drift detection (`driftDetection.mode` enabled or warn, and not disabled by the
/// `helm.toolkit.fluxcd.io/driftDetection` annotation on the HelmRelease): each object of the release
/// dry-run against the cluster, `ignore` rules' paths left out, objects labelled or annotated
/// `helm.toolkit.fluxcd.io/driftDetection: disabled` left alone; in `enabled` mode what drifted is
/// corrected without a new Helm revision.
pub(super) async fn drift(
    obj: &HelmRelease,
    client: &kube::Client,
    objects: &[Value],
    full_name: &str,
) -> Result<DriftOutcome, Error> {
    const KEY: &str = "helm.toolkit.fluxcd.io/driftDetection";
    if obj.annotations().get(KEY).is_some_and(|v| v == "disabled") {
        return Ok(DriftOutcome::default());
    }
    let rules = obj
        .spec
        .drift_detection
        .as_ref()
        .and_then(|d| d.ignore.clone())
        .unwrap_or_default();
    let targets: Vec<Option<driftless_kustomize::patch::Target>> = rules
        .iter()
        .map(|r| {
            r.target
                .as_ref()
                .map(|t| serde_json::from_value(serde_json::to_value(t).expect("selectors serialise")))
                .transpose()
                .map_err(|e| Error::InvalidSpec(format!("invalid driftDetection.ignore target: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let disabled = |o: &Value| {
        ["labels", "annotations"]
            .iter()
            .any(|f| o["metadata"][f][KEY].as_str() == Some("disabled"))
    };
    let paths_of = |o: &Value| -> Option<Vec<String>> {
        if disabled(o) {
            return None;
        }
        Some(
            rules
                .iter()
                .zip(&targets)
                .filter(|(_, t)| t.as_ref().is_none_or(|t| t.matches(o)))
                .flat_map(|(r, _)| r.paths.iter().cloned())
                .collect(),
        )
    };
    let manager = manager(client);
    let drifts = manager
        .drift(objects, &paths_of)
        .await
        .map_err(|e| Error::Helm(format!("unable to determine cluster state: {e}")))?;
    if drifts.is_empty() {
        return Ok(DriftOutcome::default());
    }
    let summary: Vec<String> = drifts.iter().map(driftless_ssa::Drift::summary).collect();
    let detected = format!(
        "Cluster state of release {full_name} has drifted from the desired state:\n{}",
        summary.join("\n")
    );
    let mode = obj.spec.drift_detection.as_ref().and_then(|d| d.mode.as_deref());
    if mode != Some("enabled") {
        return Ok(DriftOutcome {
            detected: Some(detected),
            corrected: None,
        });
    }
    let (changes, failures) = manager.correct(&drifts).await;
    let corrected = if failures.is_empty() {
        Ok(format!(
            "Cluster state of release {full_name} has been corrected:\n{}",
            changes.summary()
        ))
    } else {
        let partially = if changes.entries.is_empty() {
            ""
        } else {
            "partially "
        };
        let mut message = format!(
            "Failed to {partially}correct cluster state of release {full_name}:\n{}",
            failures
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        if !changes.entries.is_empty() {
            message.push_str(&format!("\n\nSuccessful corrections:\n{}", changes.summary()));
        }
        Err(message)
    };
    Ok(DriftOutcome {
        detected: Some(detected),
        corrected: Some(corrected),
    })
}

/// Applies the chart's CRDs as `crds` says before an action helm would not (or not fully) apply them
/// for: only the missing ones (`Create`), or all of them, replacing what is there (`CreateReplace`).
pub(super) async fn apply_crds(client: &kube::Client, crds: Vec<Value>, replace: bool) -> Result<(), String> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    let mut wanted = Vec::new();
    for crd in crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let exists = api
            .get_opt(&name)
            .await
            .map_err(|e| driftless_runtime::error::api_message(&e))?
            .is_some();
        if replace || !exists {
            wanted.push(crd);
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    manager(client)
        .apply_all(&wanted, &Default::default())
        .await
        .map(|_| ())
        .map_err(|e| format!("failed to apply CRDs: {e}"))
}
