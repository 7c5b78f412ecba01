//! Controllers started in process against the test cluster, each impersonating its own ServiceAccount from
//! `config/` (so the RBAC there is what the tests prove), watching one test namespace: what the end-to-end
//! tests in `tests/` and the benchmarks in `hack/bench/` start, written once.

use clap::Parser;
use driftless_api::{
    meta::LocalObjectReference,
    source::{GitRepository, GitRepositoryRef, GitRepositorySpec},
};
use driftless_testkit::{
    cluster::{TestCluster, cluster},
    git::{GitHttp, Repo, RepoRoot},
};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use tokio::task::JoinHandle;

/// The ServiceAccount user a controller runs as.
pub fn service_account(controller: &str) -> String {
    format!("system:serviceaccount:flux-system:{controller}")
}

/// The flags every controller gets: loopback servers, only the namespace `ns` watched (and its runtime
/// namespace), quick retries.
pub fn args(controller: &str, ns: &str) -> Vec<String> {
    vec![
        controller.to_string(),
        "--metrics-addr=127.0.0.1:0".into(),
        "--health-addr=127.0.0.1:0".into(),
        "--watch-all-namespaces=false".into(),
        format!("--runtime-namespace={ns}"),
        "--min-retry-delay=200ms".into(),
        "--max-retry-delay=2s".into(),
    ]
}

/// `base` with `flags` added, a flag of `flags` replacing the one of the same name in `base`.
fn with_flags(mut base: Vec<String>, flags: &[String]) -> Vec<String> {
    let name = |f: &str| f.split('=').next().unwrap_or_default().to_string();
    base.retain(|b| !flags.iter().any(|f| name(f) == name(b)));
    base.extend(flags.iter().cloned());
    base
}

/// A source-controller storing into `storage`, with `flags` added; returns its artifact server's address.
pub async fn source(
    ns: &str,
    storage: &std::path::Path,
    flags: &[String],
) -> (std::net::SocketAddr, JoinHandle<()>) {
    source_on(cluster(), ns, storage, flags).await
}

/// [`source`] on the cluster `tc`.
pub async fn source_on(
    tc: &TestCluster,
    ns: &str,
    storage: &std::path::Path,
    flags: &[String],
) -> (std::net::SocketAddr, JoinHandle<()>) {
    let config = tc.config_as(&service_account("source-controller")).await;
    source_with(config, ns, storage, flags).await
}

/// [`source`] with the client configuration `config`.
pub async fn source_with(
    config: kube::Config,
    ns: &str,
    storage: &std::path::Path,
    flags: &[String],
) -> (std::net::SocketAddr, JoinHandle<()>) {
    let mut argv = args("source-controller", ns);
    argv.extend([
        "--storage-addr=127.0.0.1:0".to_string(),
        format!("--storage-path={}", storage.display()),
    ]);
    let argv = with_flags(argv, flags);
    let client = driftless_runtime::client::build(config).expect("a client");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        source_controller::run_with(client, source_controller::Args::parse_from(argv), move |a| {
            let _ = tx.send(a);
        })
        .await
        .expect("source-controller runs")
    });
    (rx.await.expect("the artifact server starts"), task)
}

/// A kustomize-controller with `flags` added.
pub async fn kustomize(ns: &str, flags: &[String]) -> JoinHandle<()> {
    kustomize_on(cluster(), ns, flags).await
}

/// [`kustomize`] on the cluster `tc`.
pub async fn kustomize_on(tc: &TestCluster, ns: &str, flags: &[String]) -> JoinHandle<()> {
    kustomize_with(
        tc.config_as(&service_account("kustomize-controller")).await,
        ns,
        flags,
    )
}

/// [`kustomize`] with the client configuration `config`.
pub fn kustomize_with(config: kube::Config, ns: &str, flags: &[String]) -> JoinHandle<()> {
    let argv = with_flags(args("kustomize-controller", ns), flags);
    let parsed = kustomize_controller::Args::parse_from(argv);
    tokio::spawn(async move {
        kustomize_controller::run_with(config, parsed)
            .await
            .expect("kustomize-controller runs")
    })
}

/// A helm-controller watching `ns`, running the helm of `hack/tools.sh`, with `flags` added.
pub async fn helm(ns: &str, flags: &[String]) -> JoinHandle<()> {
    let config = cluster().config_as(&service_account("helm-controller")).await;
    let mut argv = with_flags(args("helm-controller", ns), flags);
    argv.push(format!(
        "--helm-binary={}",
        driftless_testkit::tool("helm").display()
    ));
    argv.push(format!("--post-renderer={}", post_renderer().display()));
    let parsed = helm_controller::Args::parse_from(argv);
    tokio::spawn(async move {
        helm_controller::run_with(config, parsed)
            .await
            .expect("helm-controller runs")
    })
}

/// This package's `helm-post-renderer` binary, which cargo builds beside the test and benchmark binaries
/// (`target/<profile>/`, their `deps/` one level down).
pub fn post_renderer() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the running binary's path");
    let mut dir = exe.parent().expect("a binary is in a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("helm-post-renderer");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p driftless-e2e --bin helm-post-renderer`",
        path.display()
    );
    path
}

/// An image-reflector-controller keeping its tag database under `storage`, with `flags` added.
pub async fn image_reflector(ns: &str, storage: &std::path::Path, flags: &[String]) -> JoinHandle<()> {
    let config = cluster()
        .config_as(&service_account("image-reflector-controller"))
        .await;
    let mut argv = with_flags(args("image-reflector-controller", ns), flags);
    argv.push(format!("--storage-path={}", storage.display()));
    let parsed = image_reflector_controller::Args::parse_from(argv);
    tokio::spawn(async move {
        image_reflector_controller::run_with(config, parsed)
            .await
            .expect("image-reflector-controller runs")
    })
}

/// An image-automation-controller with `flags` added.
pub async fn image_automation(ns: &str, flags: &[String]) -> JoinHandle<()> {
    let config = cluster()
        .config_as(&service_account("image-automation-controller"))
        .await;
    let parsed = image_automation_controller::Args::parse_from(with_flags(
        args("image-automation-controller", ns),
        flags,
    ));
    tokio::spawn(async move {
        image_automation_controller::run_with(config, parsed)
            .await
            .expect("image-automation-controller runs")
    })
}

/// A notification-controller on loopback ports with `flags` added; returns where its servers listen.
pub async fn notification(ns: &str, flags: &[String]) -> (notification_controller::Bound, JoinHandle<()>) {
    notification_on(cluster(), ns, flags).await
}

/// [`notification`] on the cluster `tc`.
pub async fn notification_on(
    tc: &TestCluster,
    ns: &str,
    flags: &[String],
) -> (notification_controller::Bound, JoinHandle<()>) {
    let config = tc.config_as(&service_account("notification-controller")).await;
    notification_with(config, ns, flags).await
}

/// [`notification`] with the client configuration `config`.
pub async fn notification_with(
    config: kube::Config,
    ns: &str,
    flags: &[String],
) -> (notification_controller::Bound, JoinHandle<()>) {
    let mut argv = args("notification-controller", ns);
    argv.extend([
        "--events-addr=127.0.0.1:0".to_string(),
        "--receiverAddr=127.0.0.1:0".into(),
    ]);
    let argv = with_flags(argv, flags);
    let client = driftless_runtime::client::build(config).expect("a client");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        notification_controller::run_with(
            client,
            notification_controller::Args::parse_from(argv),
            move |b| {
                let _ = tx.send(b);
            },
        )
        .await
        .expect("notification-controller runs")
    });
    (rx.await.expect("the servers start"), task)
}

/// A Git repository `fleet` with `files`, served over HTTP with basic auth, and the GitRepository
/// `fleet` (branch main, interval 1h) in `ns` reading it with the Secret `auth`.
pub struct Fleet {
    /// The repository, to commit to.
    pub repo: Repo,
    /// The first commit.
    pub head: String,
    /// The server.
    pub server: GitHttp,
    _root: RepoRoot,
}

impl Fleet {
    /// Commits `files`, serves them and creates the Secret and the GitRepository.
    pub async fn start(ns: &str, files: &[(&str, &str)]) -> Self {
        Self::start_on(cluster(), ns, files).await
    }

    /// [`Fleet::start`] on the cluster `tc`.
    pub async fn start_on(tc: &TestCluster, ns: &str, files: &[(&str, &str)]) -> Self {
        let root = RepoRoot::default();
        let repo = root.repo("fleet");
        let head = repo.commit(files, "first");
        let server = GitHttp::start(&root, "flux", "s3cret");
        let admin = tc.client().await;
        let auth = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "auth"},
            "stringData": {"username": "flux", "password": "s3cret"}});
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), ns)
            .patch("auth", &PatchParams::apply("t").force(), &Patch::Apply(&auth))
            .await
            .expect("the auth Secret");
        let git = GitRepository::new(
            "fleet",
            GitRepositorySpec {
                url: server.url("fleet"),
                interval: "1h".into(),
                reference: Some(GitRepositoryRef {
                    branch: Some("main".into()),
                    ..Default::default()
                }),
                secret_ref: Some(LocalObjectReference { name: "auth".into() }),
                ..Default::default()
            },
        );
        Api::<GitRepository>::namespaced(admin, ns)
            .patch("fleet", &PatchParams::apply("t").force(), &Patch::Apply(&git))
            .await
            .expect("the GitRepository");
        Self {
            repo,
            head,
            server,
            _root: root,
        }
    }
}
