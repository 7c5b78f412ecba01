//! The apply: the target cluster's client (impersonation, `kubeConfig`), server-side apply wave by wave,
//! the inventory of what was applied, prune, and the deletion policy's cleanup.

use std::{collections::BTreeMap, time::Instant};

use driftless_api::{
    kustomize::{Kustomization, KustomizationStatus, ResourceInventory},
    meta::{format_duration, parse_duration},
};
use driftless_runtime::{conditions, reconcile::StatusWriter, request::is_suspended};
use driftless_ssa::{
    ResourceManager,
    health::{Rules, WaitError, WaitOptions},
    inventory_ref,
};
use kube::ResourceExt;
use serde_json::Value;
use tracing::info;

use crate::{Context, FIELD_MANAGER};

use super::*;

/// The owner labels of what `obj` applies, and which prune requires: `kustomize.toolkit.fluxcd.io/name`
/// and `…/namespace`.
pub(super) fn owner_labels(obj: &Kustomization) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), obj.name_any()),
        (NAMESPACE_LABEL.to_string(), obj.namespace().unwrap_or_default()),
    ])
}

/// The client that acts for `obj`: the cluster of `spec.kubeConfig` when set, impersonating
/// `spec.serviceAccountName` (or, locally, `--default-service-account`) when set; else the controller's.
/// A resource manager writing through `client`, resolving kinds through the controller's cache when
/// `obj` targets this cluster (a remote cluster serves kinds of its own).
pub(super) fn resource_manager(obj: &Kustomization, ctx: &Context, client: kube::Client) -> ResourceManager {
    let manager = ResourceManager::new(client, FIELD_MANAGER, driftless_ssa::KUSTOMIZE_GROUP);
    match obj.spec.kube_config {
        None => manager.with_kind_cache(ctx.kinds.clone()),
        Some(_) => manager,
    }
}

pub(super) async fn target_client(obj: &Kustomization, ctx: &Context) -> Result<kube::Client, Error> {
    use driftless_runtime::tenant::Error as E;
    let ns = obj.namespace().unwrap_or_default();
    let default_sa = (!ctx.config.default_service_account.is_empty() && obj.spec.kube_config.is_none())
        .then(|| ctx.config.default_service_account.clone());
    let sa = obj.spec.service_account_name.clone().or(default_sa);
    ctx.tenants
        .client(&ns, sa.as_deref(), obj.spec.kube_config.as_ref())
        .await
        .map_err(|e| match e {
            e @ E::SecretNotFound { .. } => Error::KubeConfigSecret(e),
            E::Invalid(message) => Error::InvalidSpec(message),
            E::Kube(e) => Error::Kube(e),
        })
}

/// The sync wave of an object: `driftless.io/wave`, else `argocd.argoproj.io/sync-wave`, else 0.
pub(super) fn wave(o: &Value) -> Result<i64, Error> {
    let Some((key, value)) = WAVE_ANNOTATIONS.iter().find_map(|k| {
        o.pointer("/metadata/annotations")
            .and_then(|a| a.get(*k))
            .and_then(Value::as_str)
            .map(|v| (*k, v))
    }) else {
        return Ok(0);
    };
    value.trim().parse().map_err(|_| Error::InvalidWave {
        object: driftless_ssa::subject(o),
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// On deletion: delete the inventory when `prune` (or `deletionPolicy: Delete`) says so.
pub(super) async fn cleanup(obj: &Kustomization, ctx: &Context) -> Result<(), Error> {
    use driftless_api::kustomize::DeletionPolicy;
    let delete = match obj.spec.deletion_policy.unwrap_or_default() {
        DeletionPolicy::MirrorPrune => obj.spec.prune,
        DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
        DeletionPolicy::Orphan => false,
    };
    if delete && !is_suspended(obj.spec.suspend) {
        let old = obj
            .status
            .as_ref()
            .and_then(|s| s.inventory.clone())
            .map(|i| i.entries)
            .unwrap_or_default();
        let client = target_client(obj, ctx).await?;
        let manager = resource_manager(obj, ctx, client);
        let changes = manager
            .prune(&old, &[], &owner_labels(obj))
            .await
            .map_err(|e| Error::from_ssa(e, true))?;
        let count = |action| changes.entries.iter().filter(|c| c.action == action).count();
        info!(
            deleted = count(driftless_ssa::Action::Deleted),
            skipped = count(driftless_ssa::Action::Skipped),
            "garbage collected the inventory"
        );
        if obj.spec.deletion_policy == Some(DeletionPolicy::WaitForTermination) {
            wait_for_termination(obj, &manager, &old).await?;
        }
    }
    Ok(())
}

/// `deletionPolicy: WaitForTermination`: the Kustomization goes only once what it deleted is gone
/// (finalizers done), waiting at most its timeout per attempt; still there, it is an error and the
/// deletion is tried again.
pub(super) async fn wait_for_termination(
    obj: &Kustomization,
    manager: &ResourceManager,
    deleted: &[driftless_api::kustomize::ResourceRef],
) -> Result<(), Error> {
    let interval = parse_duration(&obj.spec.interval).unwrap_or(std::time::Duration::from_secs(60));
    let deadline = tokio::time::Instant::now() + reconcile_timeout(obj, interval);
    loop {
        let left = manager
            .terminating(deleted)
            .await
            .map_err(|e| Error::from_ssa(e, true))?;
        if left.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::WaitForTermination(left));
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// What a successful apply leaves for the health check.
pub(super) struct Applied {
    pub(super) revision: String,
    pub(super) summary: String,
    pub(super) client: kube::Client,
    /// `healthCheckExprs`, compiled once per reconcile.
    pub(super) rules: Rules,
}

/// source → dependencies → build → apply (wave by wave, each wave healthy before the next) → prune;
/// updates the revisions and inventory in `status`.
pub(super) async fn run_steps(
    obj: &Kustomization,
    ctx: &Context,
    writer: &mut StatusWriter<Kustomization, KustomizationStatus>,
    status: &mut KustomizationStatus,
    digest: &mut Option<String>,
    origin: &mut Option<String>,
    timeout: std::time::Duration,
) -> Result<Applied, Error> {
    let source = fetch_source(obj, ctx).await?;
    status.last_attempted_revision = Some(source.revision.clone());
    origin.clone_from(&source.origin_revision);
    check_dependencies(obj, ctx, &source).await?;
    // a new revision is in progress until applied (and healthy), as Flux shows it; an unchanged one
    // writes nothing here, so an idle fleet stays write-free
    if status.last_applied_revision.as_deref() != Some(source.revision.as_str()) {
        let message = format!(
            "Building manifests for revision {} with a timeout of {}",
            source.revision,
            format_duration(timeout)
        );
        conditions::mark_progressing(&mut status.conditions, &message, obj.metadata.generation);
        writer.write(status).await.map_err(Error::Kube)?;
    }
    let client = target_client(obj, ctx).await?;
    let rules = health_rules(obj)?;
    let objects = build(obj, ctx, &client, &source).await?;
    *digest = Some(objects_digest(&objects));
    let labels = owner_labels(obj);
    let manager = resource_manager(obj, ctx, client.clone())
        .with_force(obj.spec.force.unwrap_or(false))
        .with_overridden_managers(&ctx.override_managers)
        .with_verified(ctx.verified.clone());
    let mut waves: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for o in objects {
        waves.entry(wave(&o)?).or_default().push(o);
    }
    let old = status
        .inventory
        .as_ref()
        .map(|i| i.entries.clone())
        .unwrap_or_default();
    let mut changes = driftless_ssa::ChangeSet::default();
    let mut new = Vec::new();
    let last = waves.keys().next_back().copied();
    for (number, group) in &waves {
        let mut applied = driftless_ssa::ChangeSet::default();
        let result = manager.apply_all_into(group, &labels, &mut applied).await;
        // NB: the inventory gains only what was applied (kept beside the old entries, so a later failing
        // wave does not orphan what the earlier ones created): an object the server refused was never
        // ours, and recording it would let a later revision prune someone else's object of that name
        let done: std::collections::HashSet<&str> =
            applied.entries.iter().map(|c| c.subject.as_str()).collect();
        let refs: Vec<_> = group
            .iter()
            .filter(|o| result.is_ok() || done.contains(driftless_ssa::subject(o).as_str()))
            .map(inventory_ref)
            .collect();
        new.extend(refs.iter().cloned());
        let mut entries: Vec<_> = old.iter().chain(&new).cloned().collect();
        entries.sort();
        entries.dedup();
        status.inventory = Some(ResourceInventory { entries });
        changes.entries.extend(applied.entries);
        result.map_err(|e| Error::from_ssa(e, false))?;
        if Some(*number) != last {
            let started = Instant::now();
            let options = WaitOptions {
                interval: poll_interval(refs.len()),
                timeout,
                fail_fast: true,
            };
            manager
                .wait_for_set(
                    &targets(&refs),
                    &rules,
                    options,
                    new_revision(obj, ctx, &source.revision),
                )
                .await
                .map_err(|e| match e {
                    WaitError::Canceled(reason) => Error::HealthCheckCanceled(reason),
                    e => Error::WaveHealthCheck {
                        wave: *number,
                        elapsed: format_duration(started.elapsed()),
                        source: e,
                    },
                })?;
        }
    }
    let mut entries = new.clone();
    entries.sort();
    status.inventory = Some(ResourceInventory { entries });
    if obj.spec.prune {
        let pruned = manager
            .prune(&old, &new, &labels)
            .await
            .map_err(|e| Error::from_ssa(e, true))?;
        changes.entries.extend(pruned.entries);
    }
    status.last_applied_revision = Some(source.revision.clone());
    status.last_applied_origin_revision = source.origin_revision;
    Ok(Applied {
        revision: source.revision,
        summary: changes.summary(),
        client,
        rules,
    })
}
