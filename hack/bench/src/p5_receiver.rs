//! P5: notification-controller's webhook receivers on loopback, against baselines run in the same process:
//!   (a) hooks it refuses (bad signature: no API call) against a minimal axum handler answering 401;
//!   (b) valid hooks, each annotating one GitRepository, against a raw merge-PATCH loop to the API server
//!       at the same concurrency;
//!   (c) webhook → the GitRepository's reconcile handled (`status.lastHandledReconcileAt` equals the
//!       requested time), one hook at a time, with source-controller running and an unchanged revision:
//!       p50 and p99.
//!
//! `p5-receiver <requests> <concurrency> <latency samples>` on the test cluster (hack/testcluster.sh).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser as _;
use driftless_api::{
    meta::LocalObjectReference,
    notification::{Receiver, ReceiverResource, ReceiverSpec},
    source::GitRepository,
};
use driftless_testkit::cluster::cluster;
use futures::{StreamExt, TryStreamExt};
use hmac::{Hmac, KeyInit, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;

const TOKEN: &str = "p5-token";

fn sign(body: &[u8], token: &str) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(token.as_bytes()).expect("any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends `n` POSTs to `url` at `concurrency`, each made by `sign`; returns requests per second and checks
/// every answer has `status`.
async fn hammer(
    http: &reqwest::Client,
    url: &str,
    n: usize,
    concurrency: usize,
    token: &str,
    status: u16,
) -> anyhow::Result<f64> {
    let body = br#"{"ref":"refs/heads/main"}"#.to_vec();
    let signature = sign(&body, token);
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|_| {
            let req = http
                .post(url)
                .header("X-GitHub-Event", "push")
                .header("X-Hub-Signature-256", &signature)
                .body(body.clone())
                .send();
            async move {
                let r = req.await?;
                anyhow::ensure!(r.status().as_u16() == status, "answered {}", r.status());
                Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().context("requests")?.parse()?;
    let concurrency: usize = args.next().context("concurrency")?.parse()?;
    let samples: usize = args.next().context("latency samples")?.parse()?;
    cluster().install_crds().await;
    let ns = cluster().namespace("p5").await;
    let n_s = ns.name().to_string();
    let admin = cluster().client().await;

    // the Git server and a GitRepository, reconciled by source-controller
    let fleet = driftless_e2e::Fleet::start(
        &n_s,
        &[(
            "app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
        )],
    )
    .await;
    let token = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "stringData": {"token": TOKEN}});
    Api::<Secret>::namespaced(admin.clone(), &n_s)
        .patch("token", &PatchParams::apply("p5"), &Patch::Apply(&token))
        .await?;
    let common = |name: &str| {
        vec![
            name.to_string(),
            "--metrics-addr=127.0.0.1:0".into(),
            "--health-addr=127.0.0.1:0".into(),
            "--watch-all-namespaces=false".into(),
            format!("--runtime-namespace={n_s}"),
            "--log-level=error".into(),
        ]
    };
    let mut nargs = common("notification-controller");
    nargs.extend([
        "--events-addr=127.0.0.1:0".to_string(),
        "--receiverAddr=127.0.0.1:0".into(),
    ]);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let client = admin.clone();
    tokio::spawn(async move {
        notification_controller::run_with(
            client,
            notification_controller::Args::parse_from(nargs),
            move |b| {
                let _ = tx.send(b);
            },
        )
        .await
    });
    let bound = rx.await?;
    let storage = tempfile::tempdir()?;
    let mut sargs = common("source-controller");
    sargs.extend([
        "--storage-addr=127.0.0.1:0".to_string(),
        format!("--storage-path={}", storage.path().display()),
    ]);
    let client = admin.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        source_controller::run_with(client, source_controller::Args::parse_from(sargs), move |a| {
            let _ = tx.send(a);
        })
        .await
    });
    rx.await?;
    let gits: Api<GitRepository> = Api::namespaced(admin.clone(), &n_s);
    let receiver = Receiver::new(
        "github",
        ReceiverSpec {
            type_: "github".into(),
            secret_ref: Some(LocalObjectReference { name: "token".into() }),
            resources: vec![ReceiverResource {
                kind: "GitRepository".into(),
                name: "fleet".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let receivers: Api<Receiver> = Api::namespaced(admin.clone(), &n_s);
    receivers
        .patch("github", &PatchParams::apply("p5"), &Patch::Apply(&receiver))
        .await?;
    let path = loop {
        if let Some(p) = receivers.get("github").await?.status.and_then(|s| s.webhook_path) {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let hook = format!("http://{}{path}", bound.receivers);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;

    // (a) refused hooks against a minimal handler
    let minimal = axum::Router::new().route(
        "/hook/{digest}",
        axum::routing::post(|| async { (axum::http::StatusCode::UNAUTHORIZED, "no") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let minimal_url = format!("http://{}{path}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, minimal).await });
    let base_refused = hammer(&http, &minimal_url, n, concurrency, "wrong", 401).await?;
    let refused = hammer(&http, &hook, n, concurrency, "wrong", 401).await?;

    // (b) valid hooks against a raw merge-PATCH loop on the same object, same concurrency
    let valid_n = (n / 10).max(10);
    let started = Instant::now();
    futures::stream::iter(0..valid_n)
        .map(|i| {
            let gits = gits.clone();
            async move {
                let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": format!("raw-{i}")}}});
                gits.patch("fleet", &PatchParams::default(), &Patch::Merge(&patch)).await
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let base_valid = valid_n as f64 / started.elapsed().as_secs_f64();
    let valid = hammer(&http, &hook, valid_n, concurrency, TOKEN, 200).await?;

    // (c) one hook at a time: POST → the GitRepository's reconcile of that request handled
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latencies = Vec::with_capacity(samples);
    let body = br#"{"ref":"refs/heads/main"}"#.to_vec();
    for _ in 0..samples {
        let before = gits.get("fleet").await?;
        let previous = before
            .metadata
            .annotations
            .unwrap_or_default()
            .get("reconcile.fluxcd.io/requestedAt")
            .cloned();
        let started = Instant::now();
        let r = http
            .post(&hook)
            .header("X-GitHub-Event", "push")
            .header("X-Hub-Signature-256", sign(&body, TOKEN))
            .body(body.clone())
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "hook answered {}", r.status());
        loop {
            let g = gits.get("fleet").await?;
            let requested = g
                .metadata
                .annotations
                .unwrap_or_default()
                .get("reconcile.fluxcd.io/requestedAt")
                .cloned();
            let handled = g
                .status
                .and_then(|s| s.reconcile_request.last_handled_reconcile_at);
            if requested.is_some() && requested != previous && handled == requested {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "the reconcile was not handled"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1];
    println!("refused {refused:.0}");
    println!("refused-base {base_refused:.0}");
    println!("valid {valid:.0}");
    println!("valid-base {base_valid:.0}");
    println!("latency-p50 {:.1}", pct(0.5).as_secs_f64() * 1000.0);
    println!("latency-p99 {:.1}", pct(0.99).as_secs_f64() * 1000.0);
    drop(fleet);
    Ok(())
}
