//! The chart: the HelmChart a `chart.spec` template makes and owns, and the download of the chart's
//! artifact, its digest checked.

use std::{io::Write, path::Path};

use driftless_api::helm::{HelmRelease, HelmReleaseStatus};
use futures::StreamExt;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Error, steps::helm_chart_name};
use crate::{Context, FIELD_MANAGER};

/// Creates (server-side apply) the HelmChart a `chart.spec` template describes, labelled as the
/// HelmRelease's; one made for an earlier template (or for a release now on `chartRef`) is deleted.
pub(super) async fn reconcile_chart_template(
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
pub(super) async fn download(ctx: &Context, url: &str, digest: &str, dest: &Path) -> Result<(), Error> {
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

/// The CustomResourceDefinitions in the `crds/` directories of the chart archive at `path` (its own and
/// those of the subcharts it carries unpacked), as helm installs them.
pub(super) fn chart_crds(path: &Path) -> Result<Vec<Value>, String> {
    let limits = driftless_helm::chart::Limits {
        max_file: 5 << 20,
        max_total: 100 << 20,
    };
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut crds = Vec::new();
    driftless_helm::chart::walk_archive(file, limits, |name, content| {
        let parts: Vec<&str> = name.split('/').collect();
        let in_crds = match parts.as_slice() {
            ["crds", file] => Some(*file),
            [rest @ .., "crds", file] if rest.len() % 2 == 0 && rest.chunks(2).all(|c| c[0] == "charts") => {
                Some(*file)
            }
            _ => None,
        };
        if in_crds.is_some_and(|f| f.ends_with(".yaml") || f.ends_with(".yml") || f.ends_with(".json")) {
            let mut text = String::new();
            std::io::Read::read_to_string(content, &mut text)
                .map_err(|e| driftless_helm::chart::Error::Invalid(format!("{name}: {e}")))?;
            let objects = driftless_kustomize::yaml::parse_stream(&text, name)
                .map_err(|e| driftless_helm::chart::Error::Invalid(e.to_string()))?;
            crds.extend(
                objects
                    .into_iter()
                    .filter(|o| o["kind"] == "CustomResourceDefinition"),
            );
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(crds)
}
