//! `driftless trace <kind>/<name>`: for any object of the cluster, the Kustomization or HelmRelease that
//! applied it, that one's source with its revision and origin, and on up the chain of Kustomizations that
//! applied those — `flux trace`'s report, followed to the root.

use kube::{Api, Client, api::DynamicObject};
use serde_json::Value;

use crate::objects::{self, Place, at};

fn line(out: &mut String, key: &str, value: &str) {
    out.push_str(&format!("{:<17}{value}\n", format!("{key}:")));
}

fn status_lines(out: &mut String, o: &Value) {
    match objects::condition(o, "Ready") {
        Some(c) => {
            let when = at(c, "/lastTransitionTime");
            if at(c, "/status") == "False" {
                line(out, "Status", &format!("Last reconciliation failed at {when}"));
            } else {
                line(out, "Status", &format!("Last reconciled at {when}"));
            }
            line(out, "Message", at(c, "/message"));
        }
        None => line(out, "Status", "Unknown"),
    }
}

async fn flux_object(
    client: &Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Option<Value>> {
    let Some(k) = driftless_api::kinds::get(kind) else {
        return Ok(None);
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &k.api_resource());
    Ok(api
        .get_opt(name)
        .await?
        .map(|o| serde_json::to_value(o).expect("an object serializes")))
}

/// The section of a source object.
fn source_section(out: &mut String, kind: &str, o: &Value) {
    out.push_str("---\n");
    line(out, kind, at(o, "/metadata/name"));
    line(out, "Namespace", at(o, "/metadata/namespace"));
    match kind {
        "ExternalArtifact" => {
            let r = |f: &str| at(o, &format!("/spec/sourceRef/{f}")).to_string();
            line(
                out,
                "Source",
                &format!("{}/{}/{}", r("kind"), r("namespace"), r("name")),
            );
        }
        "HelmChart" => {
            line(out, "Chart", at(o, "/spec/chart"));
            line(out, "Version", at(o, "/spec/version"));
        }
        _ => {
            let url = [at(o, "/spec/url"), at(o, "/spec/endpoint")]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or_default();
            line(out, "URL", url);
            for (field, key) in [
                ("/spec/ref/tag", "Tag"),
                ("/spec/ref/semver", "Tag"),
                ("/spec/ref/digest", "Digest"),
                ("/spec/ref/branch", "Branch"),
                ("/spec/bucketName", "Bucket"),
            ] {
                if !at(o, field).is_empty() {
                    line(out, key, at(o, field));
                    break;
                }
            }
        }
    }
    if !at(o, "/status/artifact/revision").is_empty() {
        line(out, "Revision", at(o, "/status/artifact/revision"));
        for (annotation, key) in [
            ("org.opencontainers.image.source", "Origin Source"),
            ("org.opencontainers.image.revision", "Origin Revision"),
        ] {
            if let Some(v) = o
                .pointer("/status/artifact/metadata")
                .and_then(|m| m.get(annotation))
            {
                line(out, key, v.as_str().unwrap_or_default());
            }
        }
    }
    status_lines(out, o);
}

/// The report for the object `place` of the cluster.
pub async fn trace(client: &Client, place: &Place) -> anyhow::Result<String> {
    let Some(object) = objects::get(client, place).await? else {
        anyhow::bail!(
            "{}/{} not found in {:?} namespace",
            place.kind,
            place.name,
            place.namespace
        );
    };
    let mut out = String::new();
    line(
        &mut out,
        "Object",
        &format!("{}/{}", place.kind.to_lowercase(), place.name),
    );
    if !place.namespace.is_empty() {
        line(&mut out, "Namespace", &place.namespace);
    }
    let Some(mut manager) = objects::manager(&object) else {
        line(&mut out, "Status", "Not managed by Flux");
        return Ok(out);
    };
    line(&mut out, "Status", "Managed by Flux");
    let mut seen = std::collections::HashSet::new();
    while seen.insert(manager.clone()) {
        let (kind, ns, name) = &manager;
        let Some(m) = flux_object(client, kind, ns, name).await? else {
            out.push_str("---\n");
            line(
                &mut out,
                kind,
                &format!("{name} (not found: deleted since it applied this?)"),
            );
            line(&mut out, "Namespace", ns);
            break;
        };
        out.push_str("---\n");
        line(&mut out, kind, name);
        line(&mut out, "Namespace", ns);
        if *kind == "Kustomization" {
            if !at(&m, "/spec/targetNamespace").is_empty() {
                line(&mut out, "Target", at(&m, "/spec/targetNamespace"));
            }
            line(&mut out, "Path", at(&m, "/spec/path"));
            line(&mut out, "Revision", at(&m, "/status/lastAppliedRevision"));
            status_lines(&mut out, &m);
            let source_ns = m
                .pointer("/spec/sourceRef/namespace")
                .and_then(Value::as_str)
                .unwrap_or(ns);
            let source_kind = at(&m, "/spec/sourceRef/kind");
            if let Some(s) =
                flux_object(client, source_kind, source_ns, at(&m, "/spec/sourceRef/name")).await?
            {
                source_section(&mut out, source_kind, &s);
            }
        } else {
            line(
                &mut out,
                "Release",
                &format!(
                    "{}/{}",
                    at(&m, "/status/history/0/namespace"),
                    at(&m, "/status/history/0/name")
                ),
            );
            line(
                &mut out,
                "Chart",
                &format!(
                    "{}@{}",
                    at(&m, "/status/history/0/chartName"),
                    at(&m, "/status/history/0/chartVersion")
                ),
            );
            line(&mut out, "Revision", &crate::get::helm_revision(&m));
            status_lines(&mut out, &m);
            if let Some((chart_ns, chart_name)) = at(&m, "/status/helmChart").split_once('/')
                && let Some(chart) = flux_object(client, "HelmChart", chart_ns, chart_name).await?
            {
                source_section(&mut out, "HelmChart", &chart);
                let source_kind = at(&chart, "/spec/sourceRef/kind");
                if let Some(s) =
                    flux_object(client, source_kind, chart_ns, at(&chart, "/spec/sourceRef/name")).await?
                {
                    source_section(&mut out, source_kind, &s);
                }
            } else if let Some(r) = m.pointer("/spec/chartRef") {
                let rns = r.get("namespace").and_then(Value::as_str).unwrap_or(ns);
                if let Some(s) = flux_object(client, at(r, "/kind"), rns, at(r, "/name")).await? {
                    source_section(&mut out, at(r, "/kind"), &s);
                }
            }
        }
        // on up: the Kustomization that applied this one
        match objects::manager(&m) {
            Some(up) => manager = up,
            None => break,
        }
    }
    Ok(out)
}
