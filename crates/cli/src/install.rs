//! `driftless install`, `uninstall` and `check`: the manifests of `config/` (built into the binary at
//! compile time with driftless's own kustomize engine) applied with server-side apply and waited for;
//! removed again, CRDs and objects included unless kept; and the cluster checked — API server version,
//! controllers running, CRDs present and the same as this binary's.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use serde_json::Value;

use crate::{cluster::Cluster, log, objects};

/// flux's default components.
pub const DEFAULT: [&str; 4] = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
];

/// The components `--components-extra` may add.
pub const EXTRA: [&str; 2] = ["image-reflector-controller", "image-automation-controller"];

/// The oldest Kubernetes the controllers are tested against.
const MIN_MINOR: u32 = 30;

const NAMESPACE: &str = include_str!(concat!(env!("OUT_DIR"), "/namespace.yaml"));
const CRDS: &str = include_str!(concat!(env!("OUT_DIR"), "/crds.yaml"));
/// Flux's NetworkPolicies for the namespace (`config/policies`).
const POLICIES: &str = include_str!(concat!(env!("OUT_DIR"), "/policies.yaml"));

fn component_yaml(c: &str) -> Option<&'static str> {
    Some(match c {
        "source-controller" => include_str!(concat!(env!("OUT_DIR"), "/source-controller.yaml")),
        "kustomize-controller" => include_str!(concat!(env!("OUT_DIR"), "/kustomize-controller.yaml")),
        "helm-controller" => include_str!(concat!(env!("OUT_DIR"), "/helm-controller.yaml")),
        "notification-controller" => include_str!(concat!(env!("OUT_DIR"), "/notification-controller.yaml")),
        "image-reflector-controller" => {
            include_str!(concat!(env!("OUT_DIR"), "/image-reflector-controller.yaml"))
        }
        "image-automation-controller" => {
            include_str!(concat!(env!("OUT_DIR"), "/image-automation-controller.yaml"))
        }
        _ => return None,
    })
}

/// The API groups of the CRDs a component serves.
fn groups(c: &str) -> &'static [&'static str] {
    match c {
        "source-controller" => &["source.toolkit.fluxcd.io", "source.extensions.fluxcd.io"],
        "kustomize-controller" => &["kustomize.toolkit.fluxcd.io"],
        "helm-controller" => &["helm.toolkit.fluxcd.io"],
        "notification-controller" => &["notification.toolkit.fluxcd.io"],
        _ => &["image.toolkit.fluxcd.io"],
    }
}

fn parse(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|d| <Value as serde::Deserialize>::deserialize(d).ok())
        .filter(|v| v.is_object())
        .collect()
}

/// The components `components` and `extra` name, checked.
pub fn components(components: &[String], extra: &[String]) -> anyhow::Result<Vec<String>> {
    let mut all: Vec<String> = components.iter().chain(extra).cloned().collect();
    all.dedup();
    for c in &all {
        anyhow::ensure!(
            component_yaml(c).is_some(),
            "unknown component '{c}': the components are {}",
            DEFAULT
                .iter()
                .chain(&EXTRA)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(all)
}

/// The objects of an install of `components` into `namespace`, in apply order: the namespace, the CRDs
/// of those components, the components, then (with `network_policy`, as flux's default) Flux's
/// NetworkPolicies.
pub fn manifests(components: &[String], namespace: &str, network_policy: bool) -> Vec<Value> {
    let mut out = parse(NAMESPACE);
    out.extend(parse(CRDS).into_iter().filter(|crd| {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        components.iter().any(|c| groups(c).contains(&group))
    }));
    for c in components {
        out.extend(parse(component_yaml(c).expect("a checked component")));
    }
    if network_policy {
        out.extend(parse(POLICIES));
    }
    for o in &mut out {
        relocate(o, namespace);
    }
    out
}

/// Moves `o` from flux-system to `namespace` (its own namespace, a binding's subjects).
fn relocate(o: &mut Value, namespace: &str) {
    if o["kind"] == "Namespace" {
        o["metadata"]["name"] = namespace.into();
    }
    if o["metadata"]["namespace"] == "flux-system" {
        o["metadata"]["namespace"] = namespace.into();
    }
    if let Some(subjects) = o.get_mut("subjects").and_then(Value::as_array_mut) {
        for s in subjects {
            if s["namespace"] == "flux-system" {
                s["namespace"] = namespace.into();
            }
        }
    }
}

/// Prints the manifests as one YAML stream.
pub fn export(objects: &[Value]) -> anyhow::Result<()> {
    let mut out = String::new();
    for o in objects {
        out += "---\n";
        out += &driftless_yaml::to_string(o)?;
    }
    print!("{out}");
    Ok(())
}

fn deployment_ready(d: &Deployment) -> bool {
    let want = d.spec.replicas.unwrap_or(1);
    let s = d.status.clone().unwrap_or_default();
    s.observed_generation == d.metadata.generation
        && s.updated_replicas.unwrap_or(0) >= want
        && s.available_replicas.unwrap_or(0) >= want
}

async fn wait_crds(cluster: &Cluster, names: &[String], timeout: Duration) -> anyhow::Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    for name in names {
        let established = kube::runtime::wait::await_condition(
            api.clone(),
            name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        tokio::time::timeout(timeout, established)
            .await
            .map_err(|_| anyhow::anyhow!("CRD {name} not established after {}s", timeout.as_secs()))??;
    }
    Ok(())
}

/// Applies the manifests of `components` into the cluster's namespace, then (with `wait`) waits until
/// each Deployment is rolled out.
pub async fn install(
    cluster: &Cluster,
    components: &[String],
    network_policy: bool,
    wait: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let ns = cluster.namespace.as_str();
    let objects = manifests(components, ns, network_policy);
    log::action(&format!("installing components in {ns} namespace"));
    let (first, rest): (Vec<&Value>, Vec<&Value>) = objects
        .iter()
        .partition(|o| matches!(o["kind"].as_str(), Some("Namespace" | "CustomResourceDefinition")));
    let mut crds = Vec::new();
    for o in first {
        objects::apply(&cluster.client, o, "driftless").await?;
        if o["kind"] == "CustomResourceDefinition" {
            crds.push(o["metadata"]["name"].as_str().unwrap_or_default().to_string());
        }
    }
    wait_crds(cluster, &crds, timeout).await?;
    log::success(&format!("{} CRDs applied", crds.len()));
    for o in rest {
        objects::apply(&cluster.client, o, "driftless").await?;
    }
    log::success("install finished");
    if !wait {
        return Ok(());
    }
    log::waiting("verifying installation");
    wait_rolled_out(cluster, components, timeout).await?;
    log::success("install finished");
    Ok(())
}

/// Waits until the Deployment of each of `components` has rolled out, saying so for each.
pub async fn wait_rolled_out(
    cluster: &Cluster,
    components: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    let ns = cluster.namespace.as_str();
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), ns);
    let deadline = tokio::time::Instant::now() + timeout;
    for name in components {
        loop {
            if api.get_opt(name).await?.is_some_and(|d| deployment_ready(&d)) {
                log::success(&format!("{name}: deployment ready"));
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{name}: deployment not ready after {}s (kubectl -n {ns} describe deployment {name})",
                timeout.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

/// Removes the installation: its components; unless `keep_crds`, every Flux object (its finalizers
/// dropped first, as no controller is left to run them) and the CRDs; unless `keep_namespace`, the
/// namespace.
pub async fn uninstall(cluster: &Cluster, keep_crds: bool, keep_namespace: bool) -> anyhow::Result<()> {
    let ns = cluster.namespace.as_str();
    let all: Vec<String> = DEFAULT.iter().chain(&EXTRA).map(|s| s.to_string()).collect();
    let objects = manifests(&all, ns, true);
    log::action(&format!("deleting components in {ns} namespace"));
    for o in objects
        .iter()
        .filter(|o| !matches!(o["kind"].as_str(), Some("Namespace" | "CustomResourceDefinition")))
    {
        let place = objects::place_of(o);
        if objects::delete(&cluster.client, &place).await? {
            log::success(&format!("{}/{} deleted", place.kind, place.name));
        }
    }
    if !keep_crds {
        log::action("deleting toolkit.fluxcd.io finalizers in all namespaces");
        for kind in driftless_api::kinds::KINDS.iter() {
            let api = cluster.api(kind, None);
            let Ok(list) = api.list(&Default::default()).await else {
                continue;
            };
            for o in list.items {
                if o.metadata.finalizers.as_ref().is_some_and(|f| !f.is_empty()) {
                    let name = o.metadata.name.clone().unwrap_or_default();
                    let ns = o.metadata.namespace.clone().unwrap_or_default();
                    cluster
                        .api(kind, Some(&ns))
                        .patch(
                            &name,
                            &kube::api::PatchParams::default(),
                            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
                        )
                        .await?;
                    log::success(&format!("{}/{ns}/{name} finalizers deleted", kind.kind));
                }
            }
        }
        log::action("deleting toolkit.fluxcd.io custom resource definitions");
        for o in objects.iter().filter(|o| o["kind"] == "CustomResourceDefinition") {
            let place = objects::place_of(o);
            if objects::delete(&cluster.client, &place).await? {
                log::success(&format!("CustomResourceDefinition/{} deleted", place.name));
            }
        }
    }
    if !keep_namespace {
        let place = objects::Place {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: String::new(),
            name: ns.to_string(),
        };
        if objects::delete(&cluster.client, &place).await? {
            log::success(&format!("Namespace/{ns} deleted"));
        }
    }
    log::success("uninstall finished");
    Ok(())
}

/// The minor version of a Kubernetes `minor` field (`30`, `30+`).
fn minor(s: &str) -> u32 {
    s.trim_end_matches('+').parse().unwrap_or(0)
}

/// Checks the cluster; whether every check passed. With `pre`, only the prerequisites.
pub async fn check(cluster: &Cluster, pre: bool) -> anyhow::Result<bool> {
    let mut ok = true;
    log::action("checking prerequisites");
    let v = cluster.client.apiserver_version().await?;
    let version = v.git_version.trim_start_matches('v').to_string();
    if minor(&v.minor) >= MIN_MINOR {
        log::success(&format!("Kubernetes {version} >=1.{MIN_MINOR}.0-0"));
    } else {
        log::failure(&format!(
            "Kubernetes {version} <1.{MIN_MINOR}.0-0: upgrade the cluster"
        ));
        ok = false;
    }
    if pre {
        finish(ok, "prerequisites checks passed");
        return Ok(ok);
    }
    log::action("checking controllers");
    let ns = cluster.namespace.as_str();
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), ns);
    for c in DEFAULT.iter().chain(&EXTRA) {
        match api.get_opt(c).await? {
            None if EXTRA.contains(c) => {}
            None => {
                log::failure(&format!("{c}: deployment not found in {ns} (driftless install)"));
                ok = false;
            }
            Some(d) => {
                let image = d
                    .spec
                    .template
                    .spec
                    .as_ref()
                    .and_then(|s| s.containers.first())
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default();
                if deployment_ready(&d) {
                    log::success(&format!("{c}: deployment ready"));
                } else {
                    log::failure(&format!(
                        "{c}: deployment not ready (kubectl -n {ns} describe deployment {c})"
                    ));
                    ok = false;
                }
                log::action(&image);
            }
        }
    }
    log::action("checking crds");
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    for ours in driftless_api::crds::crds() {
        let name = ours.crd.metadata.name.clone().unwrap_or_default();
        let storage = ours
            .crd
            .spec
            .versions
            .iter()
            .find(|v| v.storage)
            .map(|v| v.name.clone())
            .unwrap_or_default();
        match crds.get_opt(&name).await? {
            None => {
                log::failure(&format!("{name}: not installed (driftless install)"));
                ok = false;
            }
            Some(theirs) => {
                let schema = |c: &CustomResourceDefinition| {
                    c.spec
                        .versions
                        .iter()
                        .map(|v| {
                            (
                                v.name.clone(),
                                serde_json::to_value(&v.schema).unwrap_or_default(),
                            )
                        })
                        .collect::<Vec<_>>()
                };
                if schema(&theirs) == schema(&ours.crd) {
                    log::success(&format!("{name}/{storage}"));
                } else {
                    log::failure(&format!(
                        "{name}: differs from this driftless's (another version installed it: driftless install updates it)"
                    ));
                    ok = false;
                }
            }
        }
    }
    finish(ok, "all checks passed");
    Ok(ok)
}

fn finish(ok: bool, passed: &str) {
    if ok {
        log::success(passed);
    } else {
        log::failure("check failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifests_hold_the_components_and_their_crds_only() {
        let objects = manifests(&["source-controller".into()], "gitops", true);
        assert_eq!(objects[0]["kind"], "Namespace");
        assert_eq!(objects[0]["metadata"]["name"], "gitops");
        let crds: Vec<&str> = objects
            .iter()
            .filter(|o| o["kind"] == "CustomResourceDefinition")
            .map(|o| o["spec"]["group"].as_str().unwrap())
            .collect();
        assert!(
            crds.len() >= 6 && crds.iter().all(|g| g.starts_with("source.")),
            "{crds:?}"
        );
        let deployments: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "Deployment").collect();
        assert_eq!(deployments.len(), 1);
        assert_eq!(deployments[0]["metadata"]["name"], "source-controller");
        assert_eq!(deployments[0]["metadata"]["namespace"], "gitops");
        for o in objects.iter().filter(|o| o["kind"] == "ClusterRoleBinding") {
            for s in o["subjects"].as_array().unwrap() {
                assert_eq!(s["namespace"], "gitops");
            }
        }
        let all: Vec<String> = DEFAULT.iter().chain(&EXTRA).map(|s| s.to_string()).collect();
        let every = manifests(&all, "flux-system", true);
        assert_eq!(
            every
                .iter()
                .filter(|o| o["kind"] == "CustomResourceDefinition")
                .count(),
            15
        );
        assert!(
            components(&["nope".into()], &[])
                .unwrap_err()
                .to_string()
                .contains("unknown component 'nope'")
        );
    }
}
