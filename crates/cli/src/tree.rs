//! `driftless tree kustomization|helmrelease <name>`: what the object applied, as a tree — a
//! Kustomization's inventory, a HelmRelease's objects from its latest Helm release — with nested
//! Kustomizations and HelmReleases expanded and each object's health (kstatus's rules).

use std::io::Read as _;

use base64::Engine as _;
use driftless_ssa::health::{self, Rules};
use kube::{Api, Client, api::DynamicObject};
use serde_json::Value;

use crate::objects::{self, Place, at};

/// One line of the tree.
pub struct Node {
    /// The object.
    pub place: Place,
    /// Its health: `Current`, else kstatus's status and why.
    pub health: String,
    /// What it applied, when it is a Kustomization or a HelmRelease.
    pub children: Vec<Node>,
}

/// `Kind/namespace/name`, or `Kind/name` for a cluster-scoped object.
pub fn label(p: &Place) -> String {
    if p.namespace.is_empty() {
        format!("{}/{}", p.kind, p.name)
    } else {
        format!("{}/{}/{}", p.kind, p.namespace, p.name)
    }
}

/// The objects a HelmRelease's latest release holds, from Helm's storage Secret.
async fn release_objects(client: &Client, hr: &Value) -> anyhow::Result<Vec<Place>> {
    let Some(latest) = hr.pointer("/status/history/0") else {
        return Ok(Vec::new());
    };
    let release = at(latest, "/name");
    let version = latest.get("version").and_then(Value::as_i64).unwrap_or(0);
    let namespace = at(latest, "/namespace");
    let storage = [
        at(hr, "/status/storageNamespace"),
        at(hr, "/spec/storageNamespace"),
        // Flux's default storage: the HelmRelease's namespace
        at(hr, "/metadata/namespace"),
    ]
    .into_iter()
    .find(|s| !s.is_empty())
    .unwrap_or_default();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), storage);
    let Some(secret) = secrets
        .get_opt(&format!("sh.helm.release.v1.{release}.v{version}"))
        .await?
    else {
        return Ok(Vec::new());
    };
    let Some(data) = secret.data.and_then(|d| d.get("release").cloned()) else {
        return Ok(Vec::new());
    };
    let gz = base64::engine::general_purpose::STANDARD.decode(&data.0)?;
    let mut json = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut json)?;
    let release: Value = serde_json::from_str(&json)?;
    let mut places = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(at(&release, "/manifest")) {
        let Ok(o) = <Value as serde::Deserialize>::deserialize(doc) else {
            continue;
        };
        if o.is_null() || at(&o, "/kind").is_empty() {
            continue;
        }
        places.push(Place {
            api_version: at(&o, "/apiVersion").to_string(),
            kind: at(&o, "/kind").to_string(),
            namespace: match at(&o, "/metadata/namespace") {
                "" => namespace.to_string(),
                ns => ns.to_string(),
            },
            name: at(&o, "/metadata/name").to_string(),
        });
    }
    Ok(places)
}

/// The children of `o` (a Kustomization or a HelmRelease, with its `kind`), each with its own below.
pub fn children<'a>(
    client: &'a Client,
    o: &'a Value,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Vec<Node>>> + Send + 'a>> {
    Box::pin(async move {
        let places = match at(o, "/kind") {
            "Kustomization" => objects::inventory(o),
            "HelmRelease" => release_objects(client, o).await?,
            _ => Vec::new(),
        };
        let rules = Rules::default();
        let mut nodes = Vec::new();
        for mut place in places {
            let live = objects::get(client, &place).await?;
            let health = match &live {
                None => "NotFound".to_string(),
                Some(l) => {
                    if at(l, "/metadata/namespace").is_empty() {
                        place.namespace.clear();
                    }
                    let (status, why) = health::compute(l, &rules);
                    match status {
                        health::Status::Current => status.to_string(),
                        _ => format!("{status}: {why}"),
                    }
                }
            };
            let nested = match &live {
                Some(l) if depth < 16 && matches!(place.kind.as_str(), "Kustomization" | "HelmRelease") => {
                    children(client, l, depth + 1).await?
                }
                _ => Vec::new(),
            };
            nodes.push(Node {
                place,
                health,
                children: nested,
            });
        }
        Ok(nodes)
    })
}

fn draw(nodes: &[Node], prefix: &str, out: &mut String) {
    for (i, n) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        out.push_str(&format!(
            "{prefix}{}{} ({})\n",
            if last { "└── " } else { "├── " },
            label(&n.place),
            n.health
        ));
        draw(
            &n.children,
            &format!("{prefix}{}", if last { "    " } else { "│   " }),
            out,
        );
    }
}

/// Prints the tree of the Kustomization or HelmRelease `name` in `namespace`.
pub async fn run(
    client: &Client,
    kind: &driftless_api::kinds::Kind,
    namespace: &str,
    name: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        matches!(kind.kind.as_str(), "Kustomization" | "HelmRelease"),
        "tree shows a Kustomization or a HelmRelease, not a {}",
        kind.kind
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &kind.api_resource());
    let Some(root) = api.get_opt(name).await? else {
        anyhow::bail!(
            "{} object '{name}' not found in {namespace:?} namespace",
            kind.kind
        );
    };
    let mut root = serde_json::to_value(root)?;
    root["kind"] = kind.kind.clone().into();
    let nodes = children(client, &root, 0).await?;
    let mut out = format!("{}/{namespace}/{name}\n", kind.kind);
    draw(&nodes, "", &mut out);
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: &str, ns: &str, name: &str, children: Vec<Node>) -> Node {
        Node {
            place: Place {
                api_version: "v1".into(),
                kind: kind.into(),
                namespace: ns.into(),
                name: name.into(),
            },
            health: "Current".into(),
            children,
        }
    }

    #[test]
    fn trees_are_drawn_as_flux_draws_them() {
        let nodes = vec![
            node("Namespace", "", "apps", vec![]),
            node(
                "Kustomization",
                "flux-system",
                "nested",
                vec![
                    node("ConfigMap", "apps", "a", vec![]),
                    node("ConfigMap", "apps", "b", vec![]),
                ],
            ),
            node("Deployment", "apps", "podinfo", vec![]),
        ];
        let mut out = String::new();
        draw(&nodes, "", &mut out);
        assert_eq!(
            out,
            "├── Namespace/apps (Current)\n\
             ├── Kustomization/flux-system/nested (Current)\n\
             │   ├── ConfigMap/apps/a (Current)\n\
             │   └── ConfigMap/apps/b (Current)\n\
             └── Deployment/apps/podinfo (Current)\n"
        );
    }
}
