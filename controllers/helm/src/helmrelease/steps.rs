//! The steps of a HelmRelease reconcile: the chart, the values, the release action and its remediation,
//! the tests, the status history. What the release does in its cluster (waiting, drift, inventory) is
//! `cluster.rs`; the HelmChart of a `chart.spec` and the chart's download `chart.rs`; the values
//! `values.rs`.

use std::time::Duration;

use driftless_api::{
    helm::{CrdsPolicy, HelmRelease, HelmReleaseStatus, ReleaseSnapshot},
    meta::parse_duration,
};
use driftless_runtime::sources::artifact;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, ResourceExt, api::DeleteParams};
use sha2::{Digest, Sha256};
use tracing::{debug, info};

use super::{
    CHART_REF_KINDS, Error, Remediation,
    chart::{chart_crds, download, reconcile_chart_template},
    chart_source,
    cluster::{
        DriftOutcome, apply_crds, detects_drift, drift, health_rules, inventory, polls, record_failed_wait,
        release_objects, target_cluster, wait_until_ready,
    },
    target::{follow, previous, release as release_of},
    values::compose_values,
};
use crate::{
    Context,
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
        status.storage_namespace = fresh.storage_namespace;
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
            additive_cel: ctx.features.additive_cel_dependency_check,
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
    let revision = if source.kind == "HelmChart" || ctx.features.disable_chart_digest_tracking {
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

    // release
    let rel = release_of(obj);
    let (release, target) = (rel.name.clone(), rel.namespace.clone());
    let cluster = target_cluster(obj, ctx).await?;
    let helm = Helm::new(
        &ctx.helm,
        &cluster.config,
        cluster.as_user.clone(),
        cluster.client.clone(),
    )
    .map_err(|e| Error::Helm(format!("failed to set up helm: {e}")))?;
    follow(obj, &helm, &cluster.client, status, &rel).await?;
    status.storage_namespace = Some(rel.storage.clone());
    helm.restore(&rel).await.map_err(|e| Error::Helm(e.to_string()))?;
    let mut history = helm
        .history(&rel)
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
            &rel.storage,
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
            .history(&rel)
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
            Some(release_objects(&cluster.client, &helm, &rel).await?)
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
    // RetryOnFailure: no remediation, no limit; the failed action is tried again after its interval
    let retry = retry_interval(obj, is_upgrade, ctx.features.default_to_retry_on_failure);
    if retry.is_none() && retries >= 0 && failures > retries {
        return Err(Error::RetriesExceeded(format!(
            "Failed to {action} after {failures} attempt(s)"
        )));
    }
    // a release left without a deployed revision (a failed or interrupted install) goes first
    if deployed.is_none() && !history.is_empty() {
        info!(%release, "removing a release without a deployed revision before installing");
        helm.uninstall(&rel, false, timeout(obj), None)
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
    let polls = polls(obj, ctx.features);
    let flags = flags(obj, is_upgrade, !polls);
    status.last_attempted_release_action = Some(action.to_string());
    let started = std::time::Instant::now();
    // CRDs helm leaves alone: an upgrade's (`Create`, `CreateReplace`), an install's replaced ones
    let policy = if is_upgrade {
        upgrade.crds.unwrap_or(CrdsPolicy::Skip)
    } else if install.skip_crds.unwrap_or(false) {
        CrdsPolicy::Skip
    } else {
        install.crds.unwrap_or(CrdsPolicy::Create)
    };
    let crds = if policy == CrdsPolicy::CreateReplace || (is_upgrade && policy == CrdsPolicy::Create) {
        let path = chart_path.clone();
        match tokio::task::spawn_blocking(move || chart_crds(&path))
            .await
            .expect("reading a chart does not panic")
        {
            Ok(crds) => apply_crds(&cluster.client, crds, policy == CrdsPolicy::CreateReplace).await,
            Err(e) => Err(format!("failed to read the chart's CRDs: {e}")),
        }
    } else {
        Ok(())
    };
    let result = match crds {
        Err(e) => Err(crate::helm::Failed(e)),
        Ok(()) => {
            helm.release(
                &Action {
                    release: &rel,
                    chart: &chart_path,
                    values: values_yaml.as_bytes(),
                    timeout: action_timeout,
                    flags,
                    post_render: Some((&ctx.post_renderer, &crate::postrender::Spec::of(obj))),
                },
                is_upgrade,
            )
            .await
        }
    };
    let waits = !if is_upgrade {
        upgrade.disable_wait.unwrap_or(false)
    } else {
        install.disable_wait.unwrap_or(false)
    };
    // the release's objects, once read for the wait; the inventory reuses them
    let mut objects = None;
    let result = match result {
        Ok(()) if waits && polls => {
            let jobs = !if is_upgrade {
                upgrade.disable_wait_for_jobs.unwrap_or(false)
            } else {
                install.disable_wait_for_jobs.unwrap_or(false)
            };
            let remaining = action_timeout
                .saturating_sub(started.elapsed())
                .max(Duration::from_secs(1));
            let rules = health_rules(obj)?;
            let read = objects.insert(release_objects(&cluster.client, &helm, &rel).await?);
            match wait_until_ready(&cluster.client, read, &rules, jobs, remaining).await {
                Ok(()) => Ok(()),
                Err(waited) => {
                    record_failed_wait(
                        &cluster.client,
                        &helm,
                        &rel,
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
        let failure = |message: String, remediation: Option<Remediation>| {
            if is_upgrade {
                Error::Upgrade {
                    message,
                    retry,
                    remediation,
                }
            } else {
                Error::Install {
                    message,
                    retry,
                    remediation,
                }
            }
        };
        let (n, remediation_retries, remediate_last, strategy) = if is_upgrade {
            let n = status.upgrade_failures.unwrap_or(0) + 1;
            status.upgrade_failures = Some(n);
            let r = upgrade.remediation.as_ref();
            (
                n,
                upgrade_retries,
                r.and_then(|r| r.remediate_last_failure)
                    .unwrap_or(upgrade_retries > 0),
                // Flux's default: back to the last deployed revision
                r.and_then(|r| r.strategy.clone())
                    .unwrap_or_else(|| "rollback".into()),
            )
        } else {
            let n = status.install_failures.unwrap_or(0) + 1;
            status.install_failures = Some(n);
            let r = install.remediation.as_ref();
            (
                n,
                install_retries,
                r.and_then(|r| r.remediate_last_failure)
                    .unwrap_or(install_retries > 0),
                "uninstall".to_string(),
            )
        };
        if retry.is_some() || !(n <= remediation_retries || remediate_last) {
            return Err(failure(message, None));
        }
        let failed_revision = helm
            .history(&rel)
            .await
            .ok()
            .and_then(|h| h.last().map(|r| r.revision))
            .unwrap_or(1);
        let remediated = if strategy == "uninstall" {
            let current = format!("{target}/{release}.v{failed_revision}");
            let chart = format!("{}@{}", meta.name, meta.version);
            match helm.uninstall(&rel, false, action_timeout, cascade(obj)).await {
                Ok(()) => Ok((
                    "UninstallSucceeded",
                    format!("Helm uninstall remediation for release {current} with chart {chart} succeeded"),
                )),
                Err(e) => Err((
                    "UninstallFailed",
                    format!(
                        "Helm uninstall remediation for release {current} with chart {chart} failed: {e}"
                    ),
                )),
            }
        } else {
            let previous = deployed.as_ref().map_or(0, |d| d.revision);
            let chart = status
                .history
                .as_ref()
                .and_then(|h| h.iter().find(|s| s.version == previous).or_else(|| h.first()))
                .map(|s| format!("{}@{}", s.chart_name, s.chart_version))
                .unwrap_or_default();
            let full = format!("{target}/{release}.v{previous}");
            match rollback(obj, &helm, &cluster.client, &rel, polls).await {
                Ok(()) => Ok((
                    "RollbackSucceeded",
                    format!("Helm rollback to previous release {full} with chart {chart} succeeded"),
                )),
                Err(e) => Err((
                    "RollbackFailed",
                    format!("Helm rollback to previous release {full} with chart {chart} failed: {e}"),
                )),
            }
        };
        let remediation = match remediated {
            Ok((reason, message)) => Remediation {
                reason,
                message,
                succeeded: true,
            },
            Err((reason, message)) => {
                status.failures = Some(status.failures.unwrap_or(0) + 1);
                Remediation {
                    reason,
                    message,
                    succeeded: false,
                }
            }
        };
        return Err(failure(message, Some(remediation)));
    }

    // the new release, on top of the history
    let history = helm
        .history(&rel)
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
    let objects = match objects {
        Some(objects) => objects,
        None => release_objects(&cluster.client, &helm, &rel).await?,
    };
    status.inventory = Some(inventory(&objects));
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
        match helm.test(&rel, timeout, &filters).await {
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

/// `RetryOnFailure`'s interval (Flux's default 5m) when the action's strategy is that, or when none is
/// set and `DefaultToRetryOnFailure` is on; `None` for `RemediateOnFailure`, the default.
fn retry_interval(obj: &HelmRelease, upgrade: bool, default_to_retry: bool) -> Option<Duration> {
    let strategy = if upgrade {
        obj.spec.upgrade.as_ref().and_then(|u| u.strategy.as_ref())
    } else {
        obj.spec.install.as_ref().and_then(|i| i.strategy.as_ref())
    };
    let interval = match strategy {
        None if default_to_retry => None,
        None => return None,
        Some(s) if s.name == "RetryOnFailure" => s.retry_interval.as_deref(),
        Some(_) => return None,
    };
    Some(
        interval
            .and_then(|i| parse_duration(i).ok())
            .unwrap_or(Duration::from_secs(300)),
    )
}

/// `helm rollback` to the previous revision with `spec.rollback`'s settings (its own `timeout`, else the
/// spec's); with the poller, the rolled-back objects are waited for as after an install or upgrade.
async fn rollback(
    obj: &HelmRelease,
    helm: &Helm,
    client: &kube::Client,
    rel: &crate::helm::Release,
    polls: bool,
) -> Result<(), crate::helm::Failed> {
    let r = obj.spec.rollback.clone().unwrap_or_default();
    let timeout = r
        .timeout
        .as_deref()
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or_else(|| timeout(obj));
    let waits = !r.disable_wait.unwrap_or(false);
    let jobs = waits && !r.disable_wait_for_jobs.unwrap_or(false);
    let mut flags = Vec::new();
    for (on, flag) in [
        (waits && !polls, "--wait"),
        (jobs && !polls, "--wait-for-jobs"),
        (r.disable_hooks.unwrap_or(false), "--no-hooks"),
        (r.recreate.unwrap_or(false), "--recreate-pods"),
        (r.force.unwrap_or(false), "--force"),
        (r.cleanup_on_fail.unwrap_or(false), "--cleanup-on-fail"),
    ] {
        if on {
            flags.push(flag.to_string());
        }
    }
    let started = std::time::Instant::now();
    helm.rollback(rel, 0, timeout, &flags).await?;
    if waits && polls {
        let rules = health_rules(obj).map_err(|e| crate::helm::Failed(e.to_string()))?;
        let objects = release_objects(client, helm, rel)
            .await
            .map_err(|e| crate::helm::Failed(e.to_string()))?;
        let remaining = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        wait_until_ready(client, &objects, &rules, jobs, remaining)
            .await
            .map_err(crate::helm::Failed)?;
    }
    Ok(())
}

/// `uninstall.keepHistory`.
pub(super) fn keep_history(obj: &HelmRelease) -> bool {
    obj.spec
        .uninstall
        .as_ref()
        .and_then(|u| u.keep_history)
        .unwrap_or(false)
}

/// `uninstall.deletionPropagation` as helm's `--cascade` (Flux's default `background`).
pub(super) fn cascade(obj: &HelmRelease) -> Option<&str> {
    obj.spec
        .uninstall
        .as_ref()
        .and_then(|u| u.deletion_propagation.as_deref())
        .filter(|p| !p.is_empty())
}

/// The helm flags of the spec's install or upgrade settings.
fn flags(obj: &HelmRelease, upgrade: bool, legacy: bool) -> Vec<String> {
    let mut flags = Vec::new();
    let mut flag = |on: bool, f: &str| {
        if on {
            flags.push(f.to_string());
        }
    };
    let max_history = obj.spec.max_history.unwrap_or(5);
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

/// Uninstalls the release (unless suspended) and deletes the HelmChart made for it.
pub async fn uninstall(obj: &HelmRelease, ctx: &Context) -> Result<(), Error> {
    if obj.spec.suspend.unwrap_or(false) {
        return Ok(());
    }
    // the release the status records as made, else the one the spec makes
    let made = release_of(obj);
    let rel = obj
        .status
        .as_ref()
        .and_then(|status| previous(status, &made))
        .unwrap_or(made);
    let cluster = target_cluster(obj, ctx).await?;
    let helm = Helm::new(
        &ctx.helm,
        &cluster.config,
        cluster.as_user,
        cluster.client.clone(),
    )
    .map_err(|e| Error::Helm(format!("failed to set up helm: {e}")))?;
    helm.restore(&rel).await.map_err(|e| Error::Helm(e.to_string()))?;
    helm.uninstall(&rel, keep_history(obj), timeout(obj), cascade(obj))
        .await
        .map_err(|e| {
            Error::Helm(format!(
                "failed to uninstall release {}/{}: {e}",
                rel.namespace, rel.name
            ))
        })?;
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
    info!(release = %rel.name, "uninstalled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use driftless_api::helm::HelmReleaseSpec;

    use super::*;

    #[test]
    fn retry_on_failure_is_the_strategy_set_or_the_gates_default() {
        let mut obj: HelmRelease = HelmRelease::new("web", HelmReleaseSpec::default());
        assert_eq!(
            retry_interval(&obj, false, false),
            None,
            "Flux's default: remediate"
        );
        assert_eq!(retry_interval(&obj, true, true), Some(Duration::from_secs(300)));
        obj.spec = serde_json::from_value(serde_json::json!({
            "interval": "1h",
            "install": {"strategy": {"name": "RetryOnFailure", "retryInterval": "30s"}},
            "upgrade": {"strategy": {"name": "RemediateOnFailure"}},
        }))
        .unwrap();
        assert_eq!(retry_interval(&obj, false, false), Some(Duration::from_secs(30)));
        assert_eq!(
            retry_interval(&obj, true, true),
            None,
            "a strategy set wins over the gate"
        );
    }
}
