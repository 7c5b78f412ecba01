//! The steps of a HelmRelease reconcile: the chart, the values, the release.

use std::{io::Write, path::Path, time::Duration};

use driftless_api::{
    helm::{HelmRelease, HelmReleaseStatus, ReleaseSnapshot},
    meta::parse_duration,
};
use driftless_runtime::sources::artifact;
use futures::StreamExt;
use k8s_openapi::{
    api::core::v1::{ConfigMap, Secret},
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tracing::{debug, info};

use super::{CHART_REF_KINDS, Error, chart_source};
use crate::{
    Context, FIELD_MANAGER,
    helm::{Action, Helm, Revision},
};

/// Releases kept in `status.history` (Flux's).
const HISTORY: usize = 5;

/// What a successful run did: the release action's reason and message, when one ran, and the tests'.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `InstallSucceeded`/`UpgradeSucceeded` and Flux's message.
    pub released: Option<(&'static str, String)>,
    /// The `helm test` result when tests ran (a failure here was ignored, as the spec asks).
    pub tested: Option<Result<String, String>>,
    /// Drift detection, when it ran.
    pub drift: Option<DriftOutcome>,
}

/// What drift detection found and did.
#[derive(Debug, Default, PartialEq)]
pub struct DriftOutcome {
    /// Flux's "Cluster state of release … has drifted from the desired state:" message, when it has.
    pub detected: Option<String>,
    /// `enabled` mode: the correction's event (`DriftCorrected`, or `DriftCorrectionFailed` as `Err`).
    pub corrected: Option<Result<String, String>>,
}

/// `spec.timeout` (Flux's default 5m).
pub fn timeout(obj: &HelmRelease) -> Duration {
    obj.spec
        .timeout
        .as_deref()
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or(Duration::from_secs(300))
}

/// The HelmChart a `chart.spec` template makes: `<namespace>-<name>` (Flux's).
pub fn helm_chart_name(obj: &HelmRelease) -> String {
    format!("{}-{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Where the release's objects go: `targetNamespace`, else the HelmRelease's namespace.
pub fn target_namespace(obj: &HelmRelease) -> String {
    obj.spec
        .target_namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| obj.namespace().unwrap_or_default())
}

/// Flux's release name: `releaseName`, else `<targetNamespace>-<name>` with a target namespace, else the
/// name; over 53 characters it is shortened and given a hash suffix.
pub fn release_name(obj: &HelmRelease) -> String {
    if let Some(n) = obj.spec.release_name.as_deref().filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    let name = match obj.spec.target_namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => format!("{ns}-{}", obj.name_any()),
        None => obj.name_any(),
    };
    if name.len() <= 53 {
        return name;
    }
    let hash = hex::encode(Sha256::digest(name.as_bytes()));
    format!("{}-{}", &name[..40], &hash[..12])
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

/// Runs the steps, updating `status` as they go.
pub async fn run(obj: &HelmRelease, ctx: &Context, status: &mut HelmReleaseStatus) -> Result<Outcome, Error> {
    let ns = obj.namespace().unwrap_or_default();
    if obj.spec.chart.is_some() == obj.spec.chart_ref.is_some() {
        return Err(Error::InvalidSpec(
            "exactly one of spec.chart and spec.chartRef must be set".into(),
        ));
    }
    // NB: the object comes from the watch's cache, which may not have the status the previous run wrote
    // yet; a release action is not idempotent, so what decides one is read from the API server
    if let Some(fresh) = Api::<HelmRelease>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&obj.name_any())
        .await?
        .and_then(|o| o.status)
    {
        status.history = fresh.history;
        status.failures = fresh.failures;
        status.install_failures = fresh.install_failures;
        status.upgrade_failures = fresh.upgrade_failures;
        status.helm_chart = fresh.helm_chart;
        status.last_attempted_generation = fresh.last_attempted_generation;
        status.last_handled_force_at = fresh.last_handled_force_at;
        status.last_handled_reset_at = fresh.last_handled_reset_at;
    }
    // a new generation (or a reset request) starts the failure counts again
    let reset_at = obj.annotations().get("reconcile.fluxcd.io/resetAt").cloned();
    if status.last_attempted_generation != obj.metadata.generation || reset_at != status.last_handled_reset_at
    {
        status.failures = None;
        status.install_failures = None;
        status.upgrade_failures = None;
        status.last_handled_reset_at = reset_at;
    }

    // dependencies first: nothing is released before they are Ready
    let depends_on = obj.spec.depends_on.as_deref().unwrap_or_default();
    if !depends_on.is_empty() {
        use driftless_runtime::dependencies::{self, Error as E, Options};
        let options = Options {
            no_cross_namespace_refs: ctx.config.no_cross_namespace_refs,
            additive_cel: false,
        };
        dependencies::check(&ctx.client, obj, depends_on, options, |_: &HelmRelease| true)
            .await
            .map_err(|e| match e {
                E::NotReady(message) => Error::DependencyNotReady {
                    message,
                    retry: ctx.config.requeue_dependency,
                },
                E::Invalid(message) => Error::InvalidSpec(message),
                E::Kube(e) => Error::Kube(e),
            })?;
    }

    // chart
    reconcile_chart_template(obj, ctx, status).await?;
    let source = chart_source(obj).expect("chart or chartRef is set");
    let kinds: Vec<&str> = CHART_REF_KINDS.to_vec();
    let chart_artifact = artifact(
        &ctx.client,
        &kinds,
        &ns,
        &source,
        ctx.config.no_cross_namespace_refs,
    )
    .await
    .map_err(|e| {
        Error::Artifact(match &e {
            driftless_runtime::sources::Error::NotFound(_)
            | driftless_runtime::sources::Error::NotReady(_) => {
                format!(
                    "{} '{}/{}' is not ready: {e}",
                    source.kind, source.namespace, source.name
                )
            }
            _ => e.to_string(),
        })
    })?;
    let work = tempfile::Builder::new()
        .prefix("helmrelease-")
        .tempdir()
        .map_err(|e| Error::Artifact(format!("failed to create a working directory: {e}")))?;
    let chart_path = work.path().join("chart.tgz");
    download(ctx, &chart_artifact.url, &chart_artifact.digest, &chart_path).await?;
    let limits = driftless_helm::chart::Limits {
        max_file: 5 << 20,
        max_total: 100 << 20,
    };
    let path = chart_path.clone();
    let meta = tokio::task::spawn_blocking(move || driftless_helm::chart::archive_metadata(&path, limits))
        .await
        .expect("reading a chart does not panic")
        .map_err(|e| Error::Artifact(format!("failed to load chart from '{}': {e}", chart_artifact.url)))?;
    let revision = if source.kind == "HelmChart" {
        meta.version.clone()
    } else {
        // NB: Flux's revision of a chart from an OCI artifact: its version and the digest's first 12
        format!(
            "{}+{}",
            meta.version,
            chart_artifact
                .digest
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect::<String>()
        )
    };

    // values
    let values = compose_values(obj, ctx).await?;
    let values_json = serde_json::to_vec(&values).expect("values serialise");
    let config_digest = format!("sha256:{}", hex::encode(Sha256::digest(&values_json)));
    let values_yaml = driftless_yaml::to_string(&values)
        .map_err(|e| Error::Values(format!("failed to write values: {e}")))?;
    status.last_attempted_revision = Some(revision.clone());
    status.last_attempted_config_digest = Some(config_digest.clone());
    status.last_attempted_generation = obj.metadata.generation;
    let target = target_namespace(obj);
    status.storage_namespace = Some(target.clone());

    // release
    let release = release_name(obj);
    let cluster = target_cluster(obj, ctx).await?;
    let helm = Helm::new(&ctx.helm, &cluster.config, cluster.as_user.clone())
        .map_err(|e| Error::Helm(format!("failed to set up helm: {e}")))?;
    let mut history = helm
        .history(&release, &target)
        .await
        .map_err(|e| Error::Helm(format!("failed to get last release revision: {e}")))?;
    // a release left pending by an action that never finished (the controller was killed mid-way):
    // helm refuses any other action on it ("another operation is in progress"); marked failed, it can go on
    if let Some(pending) = history
        .last()
        .filter(|r| r.status.starts_with("pending-"))
        .cloned()
    {
        crate::unlock::unlock(
            &cluster.client,
            &target,
            &release,
            pending.revision,
            &pending.status,
        )
        .await
        .map_err(|e| {
            Error::Helm(format!(
                "failed to recover release {target}/{release} from {}: {e}",
                pending.status
            ))
        })?;
        history = helm
            .history(&release, &target)
            .await
            .map_err(|e| Error::Helm(format!("failed to get last release revision: {e}")))?;
    }
    let deployed = history.iter().rev().find(|r| r.status == "deployed").cloned();
    let chart_id = format!("{}-{}", meta.name, meta.version);
    let force_at = obj.annotations().get("reconcile.fluxcd.io/forceAt").cloned();
    let forced = force_at.is_some() && force_at != status.last_handled_force_at;
    let post_renderers_digest = crate::postrender::post_renderers_digest(obj);
    let common_metadata_digest = crate::postrender::common_metadata_digest(obj);
    let unchanged = deployed.as_ref().is_some_and(|d| {
        d.chart == chart_id
            && status.history.as_ref().and_then(|h| h.first()).is_some_and(|s| {
                s.version == d.revision && s.config_digest == config_digest && s.chart_version == meta.version
            })
    }) && status.observed_post_renderers_digest == post_renderers_digest
        && status.observed_common_metadata_digest == common_metadata_digest;
    if unchanged && !forced {
        debug!(%release, "release up to date");
        let revision = deployed.as_ref().map_or(0, |d| d.revision);
        let objects = if status.inventory.is_none() || detects_drift(obj) {
            Some(release_objects(&cluster.client, &helm, &release, &target).await?)
        } else {
            None
        };
        if status.inventory.is_none()
            && let Some(objects) = &objects
        {
            status.inventory = Some(inventory(objects));
        }
        let drift = match objects {
            Some(objects) if detects_drift(obj) => Some(
                drift(
                    obj,
                    &cluster.client,
                    &objects,
                    &format!("{target}/{release}.v{revision}"),
                )
                .await?,
            ),
            _ => None,
        };
        return Ok(Outcome {
            drift,
            ..Default::default()
        });
    }
    status.last_handled_force_at = force_at;

    // failures past the remediation retries wait for a change of the spec or a reset
    let install = obj.spec.install.clone().unwrap_or_default();
    let upgrade = obj.spec.upgrade.clone().unwrap_or_default();
    let install_retries = install.remediation.as_ref().and_then(|r| r.retries).unwrap_or(0);
    let upgrade_retries = upgrade.remediation.as_ref().and_then(|r| r.retries).unwrap_or(0);
    let is_upgrade = deployed.is_some();
    let (failures, retries, action) = if is_upgrade {
        (status.upgrade_failures.unwrap_or(0), upgrade_retries, "upgrade")
    } else {
        (status.install_failures.unwrap_or(0), install_retries, "install")
    };
    if retries >= 0 && failures > retries {
        return Err(Error::RetriesExceeded(format!(
            "Failed to {action} after {failures} attempt(s)"
        )));
    }
    // a release left without a deployed revision (a failed or interrupted install) goes first
    if deployed.is_none() && !history.is_empty() {
        info!(%release, "removing a release without a deployed revision before installing");
        helm.uninstall(&release, &target, false, timeout(obj))
            .await
            .map_err(|e| Error::Helm(format!("failed to uninstall the failed release: {e}")))?;
    }
    let action_timeout = if is_upgrade {
        upgrade.timeout.as_deref()
    } else {
        install.timeout.as_deref()
    }
    .and_then(|t| parse_duration(t).ok())
    .unwrap_or_else(|| timeout(obj));
    let flags = flags(obj, is_upgrade);
    status.last_attempted_release_action = Some(action.to_string());
    let started = std::time::Instant::now();
    let result = helm
        .release(
            &Action {
                release: &release,
                namespace: &target,
                chart: &chart_path,
                values: values_yaml.as_bytes(),
                timeout: action_timeout,
                flags,
                post_render: Some((&ctx.post_renderer, &crate::postrender::Spec::of(obj))),
            },
            is_upgrade,
        )
        .await;
    let waits = !if is_upgrade {
        upgrade.disable_wait.unwrap_or(false)
    } else {
        install.disable_wait.unwrap_or(false)
    };
    let result = match result {
        Ok(()) if waits && polls(obj) => {
            let jobs = !if is_upgrade {
                upgrade.disable_wait_for_jobs.unwrap_or(false)
            } else {
                install.disable_wait_for_jobs.unwrap_or(false)
            };
            let remaining = action_timeout
                .saturating_sub(started.elapsed())
                .max(Duration::from_secs(1));
            let objects = release_objects(&cluster.client, &helm, &release, &target).await?;
            let rules = health_rules(obj)?;
            match wait_until_ready(&cluster.client, &objects, &rules, jobs, remaining).await {
                Ok(()) => Ok(()),
                Err(waited) => {
                    record_failed_wait(
                        &cluster.client,
                        &helm,
                        (&release, &target),
                        deployed.as_ref().filter(|_| is_upgrade),
                        &waited,
                    )
                    .await;
                    Err(crate::helm::Failed(waited))
                }
            }
        }
        other => other,
    };
    status.last_attempted_release_action_duration = Some(format!("{:.3}s", started.elapsed().as_secs_f64()));
    if let Err(failed) = result {
        status.failures = Some(status.failures.unwrap_or(0) + 1);
        let message = format!(
            "Helm {action} failed for release {target}/{release} with chart {}@{}: {failed}",
            meta.name, meta.version
        );
        if is_upgrade {
            let n = status.upgrade_failures.unwrap_or(0) + 1;
            status.upgrade_failures = Some(n);
            // remediation: back to the last deployed revision (Flux's default strategy), or uninstall
            let strategy = upgrade
                .remediation
                .as_ref()
                .and_then(|r| r.strategy.clone())
                .unwrap_or_else(|| "rollback".into());
            let remediate_last = upgrade
                .remediation
                .as_ref()
                .and_then(|r| r.remediate_last_failure)
                .unwrap_or(upgrade_retries > 0);
            if n <= upgrade_retries || remediate_last {
                let _ = if strategy == "uninstall" {
                    helm.uninstall(&release, &target, false, action_timeout).await
                } else {
                    helm.rollback(&release, &target, 0, action_timeout, &[]).await
                };
            }
            return Err(Error::Upgrade(message));
        }
        let n = status.install_failures.unwrap_or(0) + 1;
        status.install_failures = Some(n);
        let remediate_last = install
            .remediation
            .as_ref()
            .and_then(|r| r.remediate_last_failure)
            .unwrap_or(install_retries > 0);
        if n <= install_retries || remediate_last {
            let _ = helm.uninstall(&release, &target, false, action_timeout).await;
        }
        return Err(Error::Install(message));
    }

    // the new release, on top of the history
    let history = helm
        .history(&release, &target)
        .await
        .map_err(|e| Error::Helm(format!("failed to get last release revision: {e}")))?;
    let latest = history
        .last()
        .cloned()
        .ok_or_else(|| Error::Helm("the release has no revision after the action".into()))?;
    let snapshot = snapshot(&release, &target, &latest, &meta, &config_digest, status, action);
    let mut snapshots = vec![snapshot];
    snapshots.extend(
        status
            .history
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.version != latest.revision),
    );
    snapshots.truncate(HISTORY);
    status.history = Some(snapshots);
    status.observed_post_renderers_digest = post_renderers_digest;
    status.observed_common_metadata_digest = common_metadata_digest;
    status.inventory = Some(inventory(
        &release_objects(&cluster.client, &helm, &release, &target).await?,
    ));
    status.failures = None;
    status.install_failures = None;
    status.upgrade_failures = None;
    let (reason, verb) = if is_upgrade {
        ("UpgradeSucceeded", "upgrade")
    } else {
        ("InstallSucceeded", "install")
    };
    let full = format!("{target}/{release}.v{}", latest.revision);
    let chart_at = format!("{}@{}", meta.name, meta.version);

    // tests, when enabled; a failure is the release's unless ignored
    let test = obj.spec.test.clone().unwrap_or_default();
    let mut tested = None;
    if test.enable.unwrap_or(false) {
        let timeout = test
            .timeout
            .as_deref()
            .and_then(|t| parse_duration(t).ok())
            .unwrap_or_else(|| timeout(obj));
        let filters: Vec<String> = test
            .filters
            .unwrap_or_default()
            .iter()
            .flat_map(|f| {
                let negate = if f.exclude.unwrap_or(false) { "!" } else { "" };
                ["--filter".to_string(), format!("{negate}name={}", f.name)]
            })
            .collect();
        let ignore = test.ignore_failures.unwrap_or(false)
            || if is_upgrade {
                upgrade.remediation.as_ref().and_then(|r| r.ignore_test_failures)
            } else {
                install.remediation.as_ref().and_then(|r| r.ignore_test_failures)
            }
            .unwrap_or(false);
        match helm.test(&release, &target, timeout, &filters).await {
            Ok(()) => {
                tested = Some(Ok(format!(
                    "Helm test succeeded for release {full} with chart {chart_at}"
                )))
            }
            Err(failed) => {
                let message = format!("Helm test failed for release {full} with chart {chart_at}: {failed}");
                if !ignore {
                    status.failures = Some(status.failures.unwrap_or(0) + 1);
                    if is_upgrade {
                        status.upgrade_failures = Some(status.upgrade_failures.unwrap_or(0) + 1);
                    } else {
                        status.install_failures = Some(status.install_failures.unwrap_or(0) + 1);
                    }
                    return Err(Error::Test(message));
                }
                tested = Some(Err(message));
            }
        }
    }
    Ok(Outcome {
        released: Some((
            reason,
            format!("Helm {verb} succeeded for release {full} with chart {chart_at}"),
        )),
        tested,
        drift: None,
    })
}

/// Whether the release's objects are waited for by us (`waitStrategy: poller`, Flux's default: kstatus
/// and `healthCheckExprs`) rather than by `helm --wait` (`legacy`).
fn polls(obj: &HelmRelease) -> bool {
    obj.spec.wait_strategy.as_ref().is_none_or(|w| w.name != "legacy")
}

/// The CEL rules of `spec.healthCheckExprs`.
fn health_rules(obj: &HelmRelease) -> Result<driftless_ssa::health::Rules, Error> {
    let exprs: Vec<(String, String, driftless_ssa::health::Expressions)> = obj
        .spec
        .health_check_exprs
        .iter()
        .flatten()
        .map(|c| {
            (
                c.api_version.clone(),
                c.kind.clone(),
                driftless_ssa::health::Expressions {
                    in_progress: c.in_progress.clone(),
                    failed: c.failed.clone(),
                    current: c.current.clone(),
                },
            )
        })
        .collect();
    driftless_ssa::health::Rules::new(exprs.iter().map(|(a, k, e)| (a.as_str(), k.as_str(), e)))
        .map_err(Error::InvalidSpec)
}

/// Waits until every object of the release is ready by kstatus's rules and `rules` (Jobs complete only
/// with `jobs`), as helm v4's poller does for Flux; the error names the objects that are not.
async fn wait_until_ready(
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
async fn record_failed_wait(
    client: &kube::Client,
    helm: &Helm,
    (release, namespace): (&str, &str),
    replaced: Option<&Revision>,
    waited: &str,
) {
    let Ok(history) = helm.history(release, namespace).await else {
        return;
    };
    let Some(latest) = history.last() else {
        return;
    };
    let description = match replaced {
        Some(_) => format!("Upgrade \"{release}\" failed: {waited}"),
        None => format!("Release \"{release}\" failed: {waited}"),
    };
    let deployed = |s: &str| s == "deployed";
    if let Err(e) = crate::unlock::set_status(
        client,
        namespace,
        release,
        latest.revision,
        deployed,
        "failed",
        Some(&description),
    )
    .await
    {
        tracing::warn!(%release, error = %e, "could not mark the release failed");
    }
    if let Some(previous) = replaced.filter(|p| p.revision != latest.revision)
        && let Err(e) = crate::unlock::set_status(
            client,
            namespace,
            release,
            previous.revision,
            |s| s == "superseded",
            "deployed",
            None,
        )
        .await
    {
        tracing::warn!(%release, error = %e, "could not restore the replaced revision");
    }
}

/// Whether `driftDetection.mode` is `enabled` or `warn`.
fn detects_drift(obj: &HelmRelease) -> bool {
    obj.spec
        .drift_detection
        .as_ref()
        .and_then(|d| d.mode.as_deref())
        .is_some_and(|m| m == "enabled" || m == "warn")
}

/// The objects of the release's current manifest (hooks left out), each namespaced kind in the release's
/// namespace when it names none, with the metadata helm gives what it creates (as Flux's diff sets it).
async fn release_objects(
    client: &kube::Client,
    helm: &Helm,
    release: &str,
    namespace: &str,
) -> Result<Vec<Value>, Error> {
    let manifest = helm
        .manifest(release, namespace)
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
        meta["annotations"]["meta.helm.sh/release-name"] = release.into();
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
fn inventory(objects: &[Value]) -> driftless_api::kustomize::ResourceInventory {
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
async fn drift(
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

/// The helm flags of the spec's install or upgrade settings.
fn flags(obj: &HelmRelease, upgrade: bool) -> Vec<String> {
    let mut flags = Vec::new();
    let mut flag = |on: bool, f: &str| {
        if on {
            flags.push(f.to_string());
        }
    };
    let max_history = obj.spec.max_history.unwrap_or(5);
    let legacy = !polls(obj);
    if upgrade {
        let u = obj.spec.upgrade.clone().unwrap_or_default();
        flag(legacy && !u.disable_wait.unwrap_or(false), "--wait");
        flag(
            legacy && !u.disable_wait.unwrap_or(false) && !u.disable_wait_for_jobs.unwrap_or(false),
            "--wait-for-jobs",
        );
        flag(u.disable_hooks.unwrap_or(false), "--no-hooks");
        flag(
            u.disable_openapi_validation.unwrap_or(false),
            "--disable-openapi-validation",
        );
        flag(u.force.unwrap_or(false), "--force");
        flag(u.cleanup_on_fail.unwrap_or(false), "--cleanup-on-fail");
        if u.preserve_values.unwrap_or(false) {
            flags.push("--reuse-values".into());
        } else {
            flags.push("--reset-values".into());
        }
        if u.crds.is_some_and(|c| c == driftless_api::helm::CrdsPolicy::Skip) {
            flags.push("--skip-crds".into());
        }
        flags.push(format!("--history-max={max_history}"));
    } else {
        let i = obj.spec.install.clone().unwrap_or_default();
        flag(legacy && !i.disable_wait.unwrap_or(false), "--wait");
        flag(
            legacy && !i.disable_wait.unwrap_or(false) && !i.disable_wait_for_jobs.unwrap_or(false),
            "--wait-for-jobs",
        );
        flag(i.disable_hooks.unwrap_or(false), "--no-hooks");
        flag(
            i.disable_openapi_validation.unwrap_or(false),
            "--disable-openapi-validation",
        );
        flag(i.create_namespace.unwrap_or(false), "--create-namespace");
        flag(i.replace.unwrap_or(false), "--replace");
        if i.skip_crds.unwrap_or(false) || i.crds.is_some_and(|c| c == driftless_api::helm::CrdsPolicy::Skip)
        {
            flags.push("--skip-crds".into());
        }
    }
    flags
}

fn time_of(updated: &str) -> Time {
    let ts = updated
        .parse::<k8s_openapi::jiff::Timestamp>()
        .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now());
    Time(ts)
}

fn snapshot(
    release: &str,
    namespace: &str,
    latest: &Revision,
    meta: &driftless_helm::chart::Metadata,
    config_digest: &str,
    status: &HelmReleaseStatus,
    action: &str,
) -> ReleaseSnapshot {
    let first_deployed = status
        .history
        .as_ref()
        .and_then(|h| h.last())
        .map(|s| s.first_deployed.clone())
        .unwrap_or_else(|| time_of(&latest.updated));
    let digest = format!(
        "sha256:{}",
        hex::encode(Sha256::digest(
            format!(
                "{namespace}/{release}.v{}/{}/{config_digest}",
                latest.revision, latest.chart
            )
            .as_bytes()
        ))
    );
    ReleaseSnapshot {
        api_version: Some("v2".into()),
        digest,
        name: release.to_string(),
        namespace: namespace.to_string(),
        version: latest.revision,
        status: latest.status.clone(),
        chart_name: meta.name.clone(),
        chart_version: meta.version.clone(),
        app_version: Some(latest.app_version.clone()).filter(|a| !a.is_empty()),
        config_digest: config_digest.to_string(),
        first_deployed,
        last_deployed: time_of(&latest.updated),
        deleted: None,
        test_hooks: None,
        oci_digest: None,
        action: Some(action.to_string()),
    }
}

/// Creates (server-side apply) the HelmChart a `chart.spec` template describes, labelled as the
/// HelmRelease's; one made for an earlier template (or for a release now on `chartRef`) is deleted.
async fn reconcile_chart_template(
    obj: &HelmRelease,
    ctx: &Context,
    status: &mut HelmReleaseStatus,
) -> Result<(), Error> {
    let ns = obj.namespace().unwrap_or_default();
    let wanted = obj.spec.chart.as_ref().map(|t| {
        let chart_ns = t.spec.source_ref.namespace.clone().unwrap_or(ns.clone());
        (chart_ns, helm_chart_name(obj), t)
    });
    let wanted_id = wanted.as_ref().map(|(cns, name, _)| format!("{cns}/{name}"));
    if let Some(old) = status.helm_chart.clone()
        && Some(&old) != wanted_id.as_ref()
        && let Some((old_ns, old_name)) = old.split_once('/')
    {
        let api: Api<driftless_api::source::HelmChart> = Api::namespaced(ctx.client.clone(), old_ns);
        match api.delete(old_name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        status.helm_chart = None;
    }
    let Some((chart_ns, name, template)) = wanted else {
        return Ok(());
    };
    driftless_runtime::refs::cross_namespace(
        ctx.config.no_cross_namespace_refs,
        &ns,
        "HelmChart",
        &chart_ns,
        &name,
    )
    .map_err(Error::InvalidSpec)?;
    let spec = &template.spec;
    let mut chart_spec = json!({
        "chart": spec.chart,
        "sourceRef": {"kind": spec.source_ref.kind, "name": spec.source_ref.name},
        "interval": spec.interval.clone().unwrap_or_else(|| obj.spec.interval.clone()),
    });
    if let Some(v) = &spec.version {
        chart_spec["version"] = json!(v);
    }
    if let Some(v) = &spec.reconcile_strategy {
        chart_spec["reconcileStrategy"] = serde_json::to_value(v).unwrap_or(Value::Null);
    }
    if let Some(v) = &spec.values_files {
        chart_spec["valuesFiles"] = json!(v);
    }
    if let Some(v) = spec.ignore_missing_values_files {
        chart_spec["ignoreMissingValuesFiles"] = json!(v);
    }
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert("helm.toolkit.fluxcd.io/name".into(), obj.name_any());
    labels.insert("helm.toolkit.fluxcd.io/namespace".into(), ns.clone());
    let mut metadata = json!({"name": name, "namespace": chart_ns, "labels": labels});
    if let Some(a) = template.metadata.as_ref().and_then(|m| m.annotations.clone()) {
        metadata["annotations"] = json!(a);
    }
    let chart = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmChart",
        "metadata": metadata,
        "spec": chart_spec,
    });
    let api: Api<driftless_api::source::HelmChart> = Api::namespaced(ctx.client.clone(), &chart_ns);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&chart),
    )
    .await?;
    status.helm_chart = Some(format!("{chart_ns}/{name}"));
    Ok(())
}

/// Downloads `url` into `dest`, checking it has `digest`.
async fn download(ctx: &Context, url: &str, digest: &str, dest: &Path) -> Result<(), Error> {
    let failed = |m: String| Error::Artifact(format!("failed to download the chart from '{url}': {m}"));
    let resp = ctx
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| failed(driftless_runtime::error::chain(&e)))?;
    if !resp.status().is_success() {
        return Err(failed(format!("status {}", resp.status())));
    }
    let mut file = std::fs::File::create(dest).map_err(|e| failed(e.to_string()))?;
    let mut hasher = Sha256::new();
    let mut body = resp.bytes_stream();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| failed(e.to_string()))?;
        size += chunk.len() as u64;
        if size > 100 << 20 {
            return Err(failed("over 100 MiB".into()));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(|e| failed(e.to_string()))?;
    }
    let computed = format!("sha256:{}", hex::encode(hasher.finalize()));
    if computed != digest {
        return Err(failed(format!(
            "computed digest {computed} doesn't match advertised '{digest}'"
        )));
    }
    Ok(())
}

/// Deep merge: mappings key by key, anything else replaces (Flux's MergeMaps).
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing @ Value::Object(_)) if v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// A value as Helm's `--set` types it: booleans, integers and null, else a string.
fn typed(value: &str) -> Value {
    match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        v => match v.parse::<i64>() {
            Ok(n) if !(v.starts_with('0') && v.len() > 1) => Value::from(n),
            _ => Value::String(v.to_string()),
        },
    }
}

/// Sets `path` (`a.b.c`, with `\.` for a literal dot) in `values`.
fn set_path(values: &mut Value, path: &str, value: Value) {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                current.push('.');
                chars.next();
            }
            '.' => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    let mut node = values;
    for (i, part) in parts.iter().enumerate() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let map = node.as_object_mut().expect("made an object");
        if i == parts.len() - 1 {
            map.insert(part.clone(), value);
            return;
        }
        node = map
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The values: `valuesFrom` in order, then `values` on top, as Flux composes them.
async fn compose_values(obj: &HelmRelease, ctx: &Context) -> Result<Value, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let mut result = Value::Object(Map::new());
    for r in obj.spec.values_from.clone().unwrap_or_default() {
        let key = r
            .values_key
            .clone()
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "values.yaml".into());
        let optional = r.optional.unwrap_or(false);
        let found: Option<Option<Vec<u8>>> = match r.kind.as_str() {
            "ConfigMap" => Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&r.name)
                .await?
                .map(|cm| {
                    cm.data
                        .and_then(|d| d.get(&key).map(|v| v.clone().into_bytes()))
                        .or_else(|| cm.binary_data.and_then(|d| d.get(&key).map(|v| v.0.clone())))
                }),
            "Secret" => Api::<Secret>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&r.name)
                .await?
                .map(|s| s.data.and_then(|d| d.get(&key).map(|v| v.0.clone()))),
            other => {
                return Err(Error::InvalidSpec(format!(
                    "unsupported ValuesReference kind '{other}'"
                )));
            }
        };
        let data = match found {
            Some(Some(data)) => data,
            _ if optional => continue,
            None => {
                return Err(Error::Values(format!(
                    "could not find {} '{ns}/{}'",
                    r.kind, r.name
                )));
            }
            Some(None) => {
                return Err(Error::Values(format!(
                    "missing key '{key}' in {} '{ns}/{}'",
                    r.kind, r.name
                )));
            }
        };
        match r.target_path.as_deref().filter(|p| !p.is_empty()) {
            Some(path) => {
                let text = String::from_utf8_lossy(&data).trim().to_string();
                set_path(&mut result, path, typed(&text));
            }
            None => {
                // NB: the message names the reference, never the values
                let parsed: Value = serde_yaml::from_slice(&data).map_err(|_| {
                    Error::Values(format!(
                        "unable to read values from key '{key}' in {} '{ns}/{}': not YAML",
                        r.kind, r.name
                    ))
                })?;
                match parsed {
                    Value::Object(_) => merge(&mut result, parsed),
                    Value::Null => {}
                    _ => {
                        return Err(Error::Values(format!(
                            "unable to read values from key '{key}' in {} '{ns}/{}': not a mapping",
                            r.kind, r.name
                        )));
                    }
                }
            }
        }
    }
    if let Some(values) = obj.spec.values.clone() {
        merge(&mut result, values);
    }
    Ok(result)
}

/// Uninstalls the release (unless suspended) and deletes the HelmChart made for it.
pub async fn uninstall(obj: &HelmRelease, ctx: &Context) -> Result<(), Error> {
    if obj.spec.suspend.unwrap_or(false) {
        return Ok(());
    }
    let target = target_namespace(obj);
    let release = release_name(obj);
    let keep_history = obj
        .spec
        .uninstall
        .as_ref()
        .and_then(|u| u.keep_history)
        .unwrap_or(false);
    let cluster = target_cluster(obj, ctx).await?;
    let helm = Helm::new(&ctx.helm, &cluster.config, cluster.as_user)
        .map_err(|e| Error::Helm(format!("failed to set up helm: {e}")))?;
    helm.uninstall(&release, &target, keep_history, timeout(obj))
        .await
        .map_err(|e| Error::Helm(format!("failed to uninstall release {target}/{release}: {e}")))?;
    if let Some((chart_ns, chart)) = obj
        .status
        .as_ref()
        .and_then(|s| s.helm_chart.as_deref())
        .and_then(|c| c.split_once('/'))
    {
        let api: Api<driftless_api::source::HelmChart> = Api::namespaced(ctx.client.clone(), chart_ns);
        match api.delete(chart, &DeleteParams::default()).await {
            Ok(_) | Err(kube::Error::Api(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    info!(%release, "uninstalled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use driftless_api::helm::HelmReleaseSpec;

    use super::*;

    #[test]
    fn release_names_follow_flux() {
        let mut obj = HelmRelease::new("podinfo", HelmReleaseSpec::default());
        assert_eq!(release_name(&obj), "podinfo");
        obj.spec.target_namespace = Some("apps".into());
        assert_eq!(release_name(&obj), "apps-podinfo");
        obj.spec.release_name = Some("web".into());
        assert_eq!(release_name(&obj), "web");
        obj.spec.release_name = None;
        obj.spec.target_namespace = Some("a".repeat(50));
        assert_eq!(release_name(&obj).len(), 53);
    }

    #[test]
    fn values_merge_deeply_and_target_paths_are_typed() {
        let mut v = json!({"image": {"repository": "nginx", "tag": "1"}, "replicas": 1});
        merge(&mut v, json!({"image": {"tag": "2"}, "extra": [1]}));
        assert_eq!(
            v,
            json!({"image": {"repository": "nginx", "tag": "2"}, "replicas": 1, "extra": [1]})
        );
        set_path(&mut v, "ingress.enabled", typed("true"));
        set_path(&mut v, "a\\.b.c", typed("007"));
        set_path(&mut v, "replicas", typed("3"));
        assert_eq!(v["ingress"]["enabled"], json!(true));
        assert_eq!(v["a.b"]["c"], json!("007"));
        assert_eq!(v["replicas"], json!(3));
    }
}
