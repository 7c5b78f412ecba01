//! source-controller end to end on the test cluster, impersonating its own ServiceAccount from
//! `config/` (so the RBAC there is proven enough), against real Git servers on loopback.

mod artifactgenerator;
mod bucket;
mod content;
mod gitrepository;
mod helmchart;
mod helmrepository;
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

/// What the tests read of any source kind.
pub trait Source:
    kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + serde::Serialize
    + std::fmt::Debug
{
    /// `status.conditions`.
    fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>;
    /// `status.artifact`.
    fn artifact(&self) -> Option<driftless_api::meta::Artifact>;
    /// `status.lastHandledReconcileAt`.
    fn handled(&self) -> Option<String>;
}

macro_rules! source {
    ($($kind:ty),*) => {$(
        impl Source for $kind {
            fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
                self.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()
            }
            fn artifact(&self) -> Option<driftless_api::meta::Artifact> {
                self.status.as_ref().and_then(|s| s.artifact.clone())
            }
            fn handled(&self) -> Option<String> {
                self.status.as_ref().and_then(|s| s.reconcile_request.last_handled_reconcile_at.clone())
            }
        }
    )*};
}
source!(
    driftless_api::source::OCIRepository,
    driftless_api::source::HelmRepository,
    driftless_api::source::HelmChart,
    driftless_api::source::GitRepository,
    driftless_api::source::Bucket
);

/// The objects of kind `K` in the harness's namespace.
pub fn objects<K: Source>(h: &Harness) -> Api<K> {
    Api::namespaced(h.api.clone().into_client(), h.ns.name())
}

/// Creates or replaces (server-side apply) `obj`.
pub async fn apply<K: Source>(h: &Harness, obj: &K) {
    let name = obj.meta().name.clone().expect("a name");
    objects::<K>(h)
        .patch(
            &name,
            &kube::api::PatchParams::apply("test").force(),
            &kube::api::Patch::Apply(obj),
        )
        .await
        .unwrap();
}

/// Waits until `pred` holds for `name`, or panics with its last status.
pub async fn wait_for<K: Source>(h: &Harness, name: &str, what: &str, pred: impl Fn(&K) -> bool) -> K {
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    loop {
        let obj = objects::<K>(h).get(name).await.unwrap();
        if pred(&obj) {
            return obj;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {obj:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Ready condition's status, reason and message.
pub fn ready_of<K: Source>(obj: &K) -> Option<(String, String, String)> {
    let conditions = obj.conditions();
    let c = driftless_runtime::conditions::get(&conditions, "Ready")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Waits until `name` is Ready at `revision`.
pub async fn ready_at<K: Source>(h: &Harness, name: &str, revision: &str) -> K {
    wait_for(h, name, &format!("Ready at {revision}"), |o: &K| {
        driftless_runtime::conditions::is_ready(&o.conditions(), o.meta().generation)
            && o.artifact().is_some_and(|a| a.revision == revision)
    })
    .await
}

/// Waits until `name` is Ready=False with `reason`.
pub async fn failed_with<K: Source>(h: &Harness, name: &str, reason: &str) -> K {
    wait_for(h, name, &format!("Ready=False {reason}"), |o: &K| {
        ready_of(o).is_some_and(|(status, r, _)| status == "False" && r == reason)
    })
    .await
}

/// Requests a reconcile of `name` and waits until it is handled.
pub async fn request<K: Source>(h: &Harness, name: &str, at: &str) -> K {
    let patch = serde_json::json!({"metadata": {"annotations": {driftless_api::meta::RECONCILE_REQUEST_ANNOTATION: at}}});
    objects::<K>(h)
        .patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    wait_for(h, name, "the request handled", |o: &K| {
        o.handled().as_deref() == Some(at)
    })
    .await
}

/// Downloads the artifact of `obj` from the server, checking its URL and digest.
pub async fn fetch_artifact<K: Source>(h: &Harness, obj: &K) -> Vec<u8> {
    use sha2::Digest;
    let artifact = obj.artifact().expect("an artifact");
    let url = format!("http://{}/{}", h.artifact_addr, artifact.path);
    assert_eq!(artifact.url, url, "the advertised URL is the server's");
    let bytes = reqwest::get(&url)
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    assert_eq!(
        artifact.digest,
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes))),
        "the served bytes have the advertised digest"
    );
    bytes
}
