//! source-controller end to end on the test cluster, impersonating its own ServiceAccount from
//! `config/` (so the RBAC there is proven enough), against real Git servers on loopback.

mod content;
mod gitrepository;
mod ocirepository;
mod provider;

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use driftless_api::source::GitRepository;
use driftless_testkit::cluster::{TestNamespace, cluster};
use kube::Api;
use source_controller::{Args, run_with};
use tempfile::TempDir;

pub const SERVICE_ACCOUNT: &str = "system:serviceaccount:flux-system:source-controller";

/// A source-controller watching only its test's namespace.
pub struct Harness {
    pub ns: TestNamespace,
    pub api: Api<GitRepository>,
    pub storage: TempDir,
    pub artifact_addr: SocketAddr,
    /// `--git-cache-path`.
    pub cache: TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(prefix: &str) -> Harness {
    start_with(prefix, &[]).await
}

/// [`start`] with more flags.
pub async fn start_with(prefix: &str, flags: &[&str]) -> Harness {
    driftless_runtime::telemetry::init(&driftless_runtime::flags::LogArgs {
        log_level: driftless_runtime::flags::LogLevel::Info,
        log_encoding: driftless_runtime::flags::LogEncoding::Console,
    });
    cluster().install_crds().await;
    cluster().apply_kustomization("config/default");
    let ns = cluster().namespace(prefix).await;
    let storage = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let args = Args::parse_from(
        [
            "source-controller".to_string(),
            "--metrics-addr=127.0.0.1:0".into(),
            "--health-addr=127.0.0.1:0".into(),
            "--storage-addr=127.0.0.1:0".into(),
            format!("--storage-path={}", storage.path().display()),
            format!("--git-cache-path={}", cache.path().display()),
            "--watch-all-namespaces=false".into(),
            format!("--runtime-namespace={}", ns.name()),
            "--min-retry-delay=200ms".into(),
            "--max-retry-delay=2s".into(),
            "--artifact-retention-ttl=1h".into(),
        ]
        .into_iter()
        .chain(flags.iter().map(|f| f.to_string())),
    );
    let client = cluster().client_as(SERVICE_ACCOUNT).await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        run_with(client, args, move |addr| {
            let _ = tx.send(addr);
        })
        .await
        .expect("source-controller runs");
    });
    let artifact_addr = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .expect("the artifact server starts")
        .unwrap();
    let api = Api::namespaced(cluster().client().await, ns.name());
    Harness {
        ns,
        api,
        storage,
        artifact_addr,
        cache,
        task,
    }
}
