//! P10: a new image tag → the new image applied in the cluster, through the whole loop with the
//! receivers' webhooks on the path, as an installation runs it: the registry (Debian's
//! `docker-registry`) notifies a `harbor` Receiver of the push (distribution's notifications endpoint)
//! → the ImageRepository scans → the ImagePolicy picks the tag → the ImageUpdateAutomation commits and
//! pushes to the Git server → the Git server's post-receive hook sends a signed GitHub push event to a
//! `github` Receiver → the GitRepository fetches → the Kustomization applies the Deployment. Every
//! controller is in process, as its own ServiceAccount; intervals are an hour, so only the webhooks
//! move things.
//!
//! Baseline, same run: the same change made by hand with the real tools, one after the other — `crane
//! ls`, `git clone`, the tag edited, `git commit`, `git push`, `kubectl apply --server-side` — the floor
//! of doing it without controllers.
//!
//! `p10-image <runs>` on the test cluster: prints `loop-p50`, `loop-p99`, `base-p50`, `base-p99` (ms).

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use driftless_api::{image::ImagePolicy, notification::Receiver};
use driftless_e2e::Fleet;
use driftless_testkit::{cluster::cluster, registry::Registry, tool};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Secret};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

const TOKEN: &str = "p10-token";

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  selector:\n    matchLabels: {app: app}\n  template:\n    metadata:\n      labels: {app: app}\n    spec:\n      containers:\n        - name: app\n          image: IMAGE:1.0.0 # {\"$imagepolicy\": \"NS:app\"}\n";

async fn apply<K>(ns: &str, obj: Value) -> anyhow::Result<Api<K>>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + serde::Serialize
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(cluster().client().await, ns);
    let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
    api.patch(&name, &PatchParams::apply("p10").force(), &Patch::Apply(&obj))
        .await?;
    Ok(api)
}

fn layer(dir: &Path, tag: &str) -> anyhow::Result<std::path::PathBuf> {
    std::fs::write(dir.join("tag"), tag)?;
    let layer = dir.join(format!("{tag}.tar.gz"));
    anyhow::ensure!(
        Command::new("tar")
            .arg("czf")
            .arg(&layer)
            .arg("-C")
            .arg(dir)
            .arg("tag")
            .status()?
            .success()
    );
    Ok(layer)
}

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn webhook_path(receivers: &Api<Receiver>, name: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(p) = receivers.get(name).await?.status.and_then(|s| s.webhook_path) {
            return Ok(p);
        }
        anyhow::ensure!(Instant::now() < deadline, "receiver {name} not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn image_of(d: &Deployment) -> String {
    d.spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let tc = cluster();
    tc.install_crds().await;
    tc.apply_kustomization("config/default");
    let ns = tc.namespace("p10").await;
    let n = ns.name().to_string();
    let quiet = ["--log-level=error".to_string()];
    let artifacts = tempfile::tempdir()?;
    let tags_db = tempfile::tempdir()?;
    let (bound, _notification) = driftless_e2e::notification(&n, &quiet).await;
    let _source = driftless_e2e::source(&n, artifacts.path(), &quiet).await;
    let _kustomize = driftless_e2e::kustomize(&n, &quiet).await;
    let _reflector = driftless_e2e::image_reflector(&n, tags_db.path(), &quiet).await;
    let _automation = driftless_e2e::image_automation(&n, &quiet).await;

    let mut registry = Registry::start();
    let work = tempfile::tempdir()?;
    let image = format!("{}/app", registry.host());
    registry.push_crane("app", "1.0.0", &layer(work.path(), "1.0.0")?);
    let fleet = Fleet::start(
        &n,
        &[(
            "deploy/app.yaml",
            &DEPLOYMENT.replace("IMAGE", &image).replace("NS", &n),
        )],
    )
    .await;

    // the receivers, and the two webhooks pointed at them
    apply::<Secret>(
        &n,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook-token"}, "stringData": {"token": TOKEN}}),
    )
    .await?;
    let receivers = apply::<Receiver>(
        &n,
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver", "metadata": {"name": "registry"},
            "spec": {"type": "harbor", "secretRef": {"name": "hook-token"},
                     "resources": [{"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository", "name": "app"}]}}),
    )
    .await?;
    apply::<Receiver>(
        &n,
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver", "metadata": {"name": "git"},
            "spec": {"type": "github", "events": ["push"], "secretRef": {"name": "hook-token"},
                     "resources": [{"kind": "GitRepository", "name": "fleet"}]}}),
    )
    .await?;
    let registry_hook = format!(
        "http://{}{}",
        bound.receivers,
        webhook_path(&receivers, "registry").await?
    );
    let git_hook = format!(
        "http://{}{}",
        bound.receivers,
        webhook_path(&receivers, "git").await?
    );
    registry.notify(&registry_hook, TOKEN);
    let hook = fleet.repo.bare().join("hooks/post-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nPATH='{path}'\nbody='{{\"ref\":\"refs/heads/main\"}}'\n\
             sig=$(printf '%s' \"$body\" | openssl dgst -sha256 -hmac '{TOKEN}' -r | cut -d' ' -f1)\n\
             curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' -H \"X-Hub-Signature-256: sha256=$sig\" \
             --data \"$body\" '{git_hook}'\n",
            // the hook runs in the CGI environment lighttpd gives git http-backend: the tools are named by this PATH
            path = std::env::var("PATH").unwrap_or_default()
        ),
    )?;
    run(Command::new("chmod").arg("755").arg(&hook))?;

    // the pipeline's objects
    for obj in [
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository", "metadata": {"name": "app"},
            "spec": {"image": image, "interval": "1h"}}),
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy", "metadata": {"name": "app"},
            "spec": {"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": ">=1.0.0"}}}}),
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation", "metadata": {"name": "auto"},
            "spec": {"interval": "1h", "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                     "git": {"commit": {"author": {"email": "bot@example.com"}}, "push": {"branch": "main"}},
                     "update": {"path": "./deploy"}}}),
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "apps"},
            "spec": {"interval": "1h", "path": "./deploy", "prune": true, "targetNamespace": n,
                     "sourceRef": {"kind": "GitRepository", "name": "fleet"}}}),
    ] {
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
            cluster().client().await,
            &n,
            &driftless_api::kinds::get(obj["kind"].as_str().unwrap_or_default())
                .expect("a registered kind")
                .api_resource(),
        );
        let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
        api.patch(&name, &PatchParams::apply("p10").force(), &Patch::Apply(&obj))
            .await?;
    }
    let deployments: Api<Deployment> = Api::namespaced(cluster().client().await, &n);
    let policies: Api<ImagePolicy> = Api::namespaced(cluster().client().await, &n);
    let until = |want: String| {
        let deployments = deployments.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                if deployments
                    .get_opt("app")
                    .await?
                    .is_some_and(|d| image_of(&d) == want)
                {
                    return anyhow::Ok(());
                }
                anyhow::ensure!(Instant::now() < deadline, "{want} was not applied within 120 s");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    until(format!("{image}:1.0.0")).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while policies
        .get("app")
        .await?
        .status
        .and_then(|s| s.latest_ref)
        .is_none()
    {
        anyhow::ensure!(Instant::now() < deadline, "the policy picked nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // the loop: push a tag, wait until the cluster runs it
    let mut looped = Vec::with_capacity(runs);
    for i in 0..runs {
        let tag = format!("1.{}.0", i + 1);
        let layer = layer(work.path(), &tag)?;
        let started = Instant::now();
        registry.push_crane("app", &tag, &layer);
        until(format!("{image}:{tag}")).await?;
        looped.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    // the baseline: the same change by hand with the real tools, the controllers out of the way
    for (kind, name) in [
        ("ImageRepository", "app"),
        ("ImageUpdateAutomation", "auto"),
        ("Kustomization", "apps"),
    ] {
        let ar = driftless_api::kinds::get(kind)
            .expect("a registered kind")
            .api_resource();
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(cluster().client().await, &n, &ar);
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"suspend": true}})),
        )
        .await?;
    }
    std::fs::remove_file(&hook)?;
    let kubeconfig = tc.kubeconfig();
    let mut base = Vec::with_capacity(runs);
    let url = fleet
        .server
        .url("fleet")
        .replace("http://", "http://flux:s3cret@");
    for i in 0..runs {
        let tag = format!("2.{}.0", i + 1);
        let layer = layer(work.path(), &tag)?;
        let clone = tempfile::tempdir()?;
        let started = Instant::now();
        registry.push_crane("app", &tag, &layer);
        let tags = run(Command::new(tool("crane")).args(["ls", "--insecure", &image]))?;
        anyhow::ensure!(tags.lines().any(|t| t == tag), "crane ls lacks {tag}");
        run(Command::new("git")
            .args(["clone", "-q", "--branch", "main", &url])
            .arg(clone.path()))?;
        let file = clone.path().join("deploy/app.yaml");
        let text = std::fs::read_to_string(&file)?;
        let old = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("image: "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_default()
            .to_string();
        std::fs::write(&file, text.replace(&old, &format!("{image}:{tag}")))?;
        run(Command::new("git").current_dir(clone.path()).args([
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@x",
            "commit",
            "-qam",
            &tag,
        ]))?;
        run(Command::new("git")
            .current_dir(clone.path())
            .args(["push", "-q", "origin", "main"]))?;
        run(Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args([
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=base",
                "-n",
                &n,
                "-f",
            ])
            .arg(&file))?;
        base.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    println!("loop-p50 {:.0}", pct(&mut looped, 0.5));
    println!("loop-p99 {:.0}", pct(&mut looped, 0.99));
    println!("base-p50 {:.0}", pct(&mut base, 0.5));
    println!("base-p99 {:.0}", pct(&mut base, 0.99));
    drop(ns);
    Ok(())
}
