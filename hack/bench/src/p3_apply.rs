//! P3: server-side apply of N objects with driftless's apply engine (`driftless_ssa`), against the API
//! server's ceiling measured in the same run: a raw loop of one apply PATCH per object at the same
//! concurrency. Then both apply the same set again, unchanged: driftless must write nothing (counted as
//! the growth of the cluster's resourceVersion, i.e. etcd writes).
//!
//! `p3-apply <objects> <concurrency>` (cluster from `KUBECONFIG`) prints, in milliseconds:
//!   raw-first / ssa-first         first apply of every object
//!   raw-again / ssa-again         applying the unchanged set again
//!   writes-raw / writes-ssa       etcd writes made by each re-apply

use std::{collections::BTreeMap, time::Instant};

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde_json::{Value, json};

fn objects(ns: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": format!("cm-{i:05}"), "namespace": ns, "labels": {"app": "p3"}},
                   "data": {"index": i.to_string(), "payload": "x".repeat(128)}})
        })
        .collect()
}

/// The cluster's current resourceVersion (etcd's revision): grows by one per write.
async fn revision(client: &Client) -> anyhow::Result<u64> {
    let list = Api::<Namespace>::all(client.clone())
        .list_metadata(&ListParams::default().limit(1))
        .await?;
    Ok(list.metadata.resource_version.unwrap_or_default().parse()?)
}

async fn raw_loop(client: &Client, set: &[Value], concurrency: usize) -> anyhow::Result<u128> {
    let started = Instant::now();
    futures::stream::iter(set.iter().cloned())
        .map(|o| {
            let client = client.clone();
            async move {
                let api: Api<ConfigMap> =
                    Api::namespaced(client, o["metadata"]["namespace"].as_str().unwrap_or_default());
                let name = o["metadata"]["name"].as_str().unwrap_or_default().to_string();
                api.patch(&name, &PatchParams::apply("raw-loop").force(), &Patch::Apply(&o))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(started.elapsed().as_millis())
}

async fn namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    Api::<Namespace>::all(client.clone())
        .patch(name, &PatchParams::apply("p3"), &Patch::Apply(&ns))
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().context("objects")?.parse()?;
    let concurrency: usize = args.next().context("concurrency")?.parse()?;
    let client = Client::try_default().await?;
    let suffix = std::process::id();
    let (raw_ns, ssa_ns) = (format!("p3-raw-{suffix}"), format!("p3-ssa-{suffix}"));
    namespace(&client, &raw_ns).await?;
    namespace(&client, &ssa_ns).await?;

    let raw_set = objects(&raw_ns, n);
    let raw_first = raw_loop(&client, &raw_set, concurrency).await?;
    let before = revision(&client).await?;
    let raw_again = raw_loop(&client, &raw_set, concurrency).await?;
    let raw_writes = revision(&client).await? - before;

    // as kustomize-controller runs it: objects verified unchanged are remembered across reconciles
    let manager = driftless_ssa::ResourceManager::new(
        client.clone(),
        "kustomize-controller",
        driftless_ssa::KUSTOMIZE_GROUP,
    )
    .with_concurrency(concurrency)
    .with_verified(Default::default());
    let labels = BTreeMap::from([("kustomize.toolkit.fluxcd.io/name".to_string(), "p3".to_string())]);
    let ssa_set = objects(&ssa_ns, n);
    let started = Instant::now();
    manager.apply_all(&ssa_set, &labels).await?;
    let ssa_first = started.elapsed().as_millis();
    let before = revision(&client).await?;
    let started = Instant::now();
    let changes = manager.apply_all(&ssa_set, &labels).await?;
    let ssa_again = started.elapsed().as_millis();
    let ssa_writes = revision(&client).await? - before;
    anyhow::ensure!(!changes.has_changes(), "the re-apply reported changes");

    println!("raw-first {raw_first}");
    println!("ssa-first {ssa_first}");
    println!("raw-again {raw_again}");
    println!("ssa-again {ssa_again}");
    println!("writes-raw {raw_writes}");
    println!("writes-ssa {ssa_writes}");
    for ns in [raw_ns, ssa_ns] {
        // NB: the test cluster runs no namespace controller: empty the namespace first
        let _ = Api::<ConfigMap>::namespaced(client.clone(), &ns)
            .delete_collection(&DeleteParams::background(), &ListParams::default())
            .await;
        let _ = Api::<Namespace>::all(client.clone())
            .delete(&ns, &DeleteParams::background())
            .await;
    }
    Ok(())
}
