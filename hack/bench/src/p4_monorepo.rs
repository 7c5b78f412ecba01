//! P4m: many Kustomizations from one monorepo artifact — kustomize-controller's artifact cache (one
//! download and unpack per digest) against the same controller with the cache off
//! (`--artifact-cache-size-mib=0`: a download and unpack per reconcile, as Flux does), in the same run.
//!
//! `p4-monorepo <kustomizations> <filler files>`: a repository of `<kustomizations>` app directories (one
//! ConfigMap each, `targetNamespace` and `namePrefix` set so every build is an overlay) beside
//! `<filler files>` other files of ~2 KiB; for each mode, in a namespace of its own with its own
//! source-controller, the time until every Kustomization is Ready, then the time until every one has
//! handled a reconcile request at the unchanged revision. Prints `key value` lines for the script.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use driftless_api::{
    kustomize::{CrossNamespaceSourceReference, Kustomization, KustomizationSpec},
    source::GitRepository,
};
use driftless_runtime::conditions;
use driftless_testkit::cluster::cluster;
use kube::{
    Api,
    api::{Patch, PatchParams},
};

/// Filler text: lines of words, compressing about as well as YAML and Markdown do.
fn filler(i: usize) -> String {
    const WORDS: [&str; 16] = [
        "apiVersion",
        "replicas",
        "container",
        "image",
        "namespace",
        "selector",
        "labels",
        "port",
        "service",
        "volume",
        "secret",
        "config",
        "ingress",
        "health",
        "probe",
        "resources",
    ];
    let mut seed = i as u64 * 2_654_435_761 + 1;
    let mut text = String::with_capacity(2200);
    while text.len() < 2048 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        text.push_str(WORDS[(seed % 16) as usize]);
        text.push(if seed.is_multiple_of(7) { '\n' } else { ' ' });
    }
    text
}

async fn wait_all(
    api: &Api<Kustomization>,
    n: usize,
    done: impl Fn(&Kustomization) -> bool,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let list = api.list(&Default::default()).await?;
        if list.items.iter().filter(|k| done(k)).count() >= n {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "gave up after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One mode: returns (all Ready, all re-reconciled).
async fn run(files: &[(String, String)], n: usize, flags: &[String]) -> anyhow::Result<(Duration, Duration)> {
    let ns = cluster().namespace("p4m").await;
    let name = ns.name().to_string();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let fleet = driftless_e2e::Fleet::start(&name, &refs).await;
    let storage = tempfile::tempdir()?;
    let (_, source) = driftless_e2e::source(&name, storage.path(), &[]).await;
    let admin = cluster().client().await;
    let gits: Api<GitRepository> = Api::namespaced(admin.clone(), &name);
    let started = Instant::now();
    while !gits
        .get("fleet")
        .await?
        .status
        .and_then(|s| s.artifact)
        .is_some_and(|a| a.revision.ends_with(&fleet.head))
    {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(120), "no artifact");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kustomize = driftless_e2e::kustomize(&name, flags).await;
    let api: Api<Kustomization> = Api::namespaced(admin, &name);
    for i in 0..n {
        let k = Kustomization::new(
            &format!("app-{i}"),
            KustomizationSpec {
                interval: "1h".into(),
                path: Some(format!("./apps/app-{i}")),
                prune: true,
                target_namespace: Some(name.clone()),
                name_prefix: Some(format!("k{i}-")),
                source_ref: CrossNamespaceSourceReference {
                    kind: "GitRepository".into(),
                    name: "fleet".into(),
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        api.patch(&format!("app-{i}"), &PatchParams::apply("p4m"), &Patch::Apply(&k))
            .await?;
    }
    let ready = |k: &Kustomization| {
        k.status
            .as_ref()
            .is_some_and(|s| conditions::is_ready(&s.conditions, k.metadata.generation))
    };
    let first = wait_all(&api, n, ready).await?;
    let token = "p4m-again";
    let patch = serde_json::json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}});
    let again = Instant::now();
    for i in 0..n {
        api.patch(
            &format!("app-{i}"),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    wait_all(&api, n, |k| {
        k.status
            .as_ref()
            .is_some_and(|s| s.reconcile_request.last_handled_reconcile_at.as_deref() == Some(token))
    })
    .await?;
    let again = again.elapsed();
    kustomize.abort();
    source.abort();
    Ok((first, again))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().context("kustomizations")?.parse()?;
    let fill: usize = args.next().context("filler files")?.parse()?;
    cluster().install_crds().await;
    cluster().apply_kustomization("config/default");
    let mut files: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("apps/app-{i}/config.yaml"),
                format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\ndata:\n  app: \"{i}\"\n"
                ),
            )
        })
        .collect();
    files.extend((0..fill).map(|i| (format!("docs/{}/{i}.md", i % 100), filler(i))));
    let (first_off, again_off) = run(&files, n, &["--artifact-cache-size-mib=0".into()]).await?;
    let (first_on, again_on) = run(&files, n, &[]).await?;
    println!("first-cache {}", first_on.as_millis());
    println!("first-nocache {}", first_off.as_millis());
    println!("again-cache {}", again_on.as_millis());
    println!("again-nocache {}", again_off.as_millis());
    Ok(())
}
