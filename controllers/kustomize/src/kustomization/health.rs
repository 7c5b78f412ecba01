//! The health checks: `wait` (every applied object) or `healthChecks` with `healthCheckExprs`, waited
//! for until healthy, failed, timed out, or canceled by a new source revision.

use std::{collections::BTreeMap, time::Instant};

use driftless_api::{
    kustomize::{Kustomization, KustomizationStatus},
    meta::{
        conditions::{HEALTHY, READY, reasons},
        format_duration,
    },
};
use driftless_runtime::{conditions, events::Severity, reconcile::StatusWriter};
use driftless_ssa::health::{Rules, Target, WaitError, WaitOptions};
use kube::{Resource, ResourceExt, core::GroupVersionKind};

use crate::Context;

use super::*;

/// The health-check targets of `objects` (inventory references).
pub(super) fn targets(refs: &[driftless_api::kustomize::ResourceRef]) -> Vec<Target> {
    refs.iter()
        .filter_map(driftless_ssa::parse_ref)
        .map(|(namespace, name, gvk)| Target { gvk, namespace, name })
        .collect()
}

/// The CEL rules of `spec.healthCheckExprs`.
pub(super) fn health_rules(obj: &Kustomization) -> Result<Rules, Error> {
    Rules::from_checks(obj.spec.health_check_exprs.as_deref().unwrap_or_default()).map_err(Error::InvalidSpec)
}

/// Completes when the source advertises a revision other than `revision`, with the reason.
pub(super) async fn new_revision(obj: &Kustomization, ctx: &Context, revision: &str) -> String {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        if let Ok(source) = fetch_source(obj, ctx).await
            && source.revision != revision
        {
            return format!(
                "health check canceled: a new revision of the source is available: {}",
                source.revision
            );
        }
    }
}

/// How often to look at `n` objects while waiting: every 0.5s for a few, up to every 5s for many.
pub(super) fn poll_interval(n: usize) -> std::time::Duration {
    std::time::Duration::from_millis((500 + 10 * n as u64).min(5000))
}

/// `wait` (every applied object) or `healthChecks`: waits until they are healthy and sets `Healthy`,
/// as Flux does; neither set removes `Healthy`. A new source revision cancels the wait.
pub(super) async fn check_health(
    obj: &Kustomization,
    ctx: &Context,
    status: &mut KustomizationStatus,
    writer: &mut StatusWriter<Kustomization, KustomizationStatus>,
    applied: &Applied,
    timeout: std::time::Duration,
) -> Result<(), Error> {
    let (ns, name, generation) = (
        obj.namespace().unwrap_or_default(),
        obj.name_any(),
        obj.metadata.generation,
    );
    let all = if obj.spec.wait.unwrap_or(false) {
        targets(&status.inventory.clone().unwrap_or_default().entries)
    } else {
        obj.spec
            .health_checks
            .iter()
            .flatten()
            .map(|c| {
                let api_version = c.api_version.clone().unwrap_or_default();
                let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
                Target {
                    gvk: GroupVersionKind::gvk(group, version, &c.kind),
                    namespace: c.namespace.clone().unwrap_or_default(),
                    name: c.name.clone(),
                }
            })
            .collect()
    };
    // NB: never wait for ourselves
    let all: Vec<Target> = all
        .into_iter()
        .filter(|t| !(t.gvk.kind == KIND && t.name == name && t.namespace == ns))
        .collect();
    if all.is_empty() {
        conditions::delete(&mut status.conditions, HEALTHY);
        return Ok(());
    }
    let was_healthy = conditions::is_true(&status.conditions, HEALTHY);
    let message = format!(
        "Running health checks for revision {} with a timeout of {}",
        applied.revision,
        format_duration(timeout)
    );
    conditions::mark_reconciling(&mut status.conditions, reasons::PROGRESSING, &message, generation);
    conditions::mark_unknown(
        &mut status.conditions,
        READY,
        reasons::PROGRESSING,
        &message,
        generation,
    );
    writer.write(status).await.map_err(Error::Kube)?;
    let manager = resource_manager(obj, ctx, applied.client.clone());
    let options = WaitOptions {
        interval: poll_interval(all.len()),
        timeout,
        fail_fast: ctx.fail_fast,
    };
    let started = Instant::now();
    let waited = manager
        .wait_for_set(
            &all,
            &applied.rules,
            options,
            new_revision(obj, ctx, &applied.revision),
        )
        .await;
    let elapsed = format_duration(started.elapsed());
    match waited {
        Ok(()) => {
            let message = format!("Health check passed in {elapsed}");
            conditions::mark_true(
                &mut status.conditions,
                HEALTHY,
                reasons::HEALTH_CHECK_SUCCEEDED,
                &message,
                generation,
            );
            if !was_healthy {
                let metadata = BTreeMap::from([(
                    "kustomize.toolkit.fluxcd.io/revision".to_string(),
                    applied.revision.clone(),
                )]);
                ctx.recorder.record(
                    &obj.object_ref(&()),
                    Severity::Info,
                    reasons::PROGRESSING,
                    &message,
                    metadata,
                );
            }
            Ok(())
        }
        Err(WaitError::Canceled(reason)) => Err(Error::HealthCheckCanceled(reason)),
        Err(e) => {
            let failed = Error::HealthCheck {
                elapsed: elapsed.to_string(),
                source: e,
            };
            conditions::mark_false(
                &mut status.conditions,
                HEALTHY,
                reasons::HEALTH_CHECK_FAILED,
                &failed.to_string(),
                generation,
            );
            Err(failed)
        }
    }
}
