//! The real test cluster: `$DRIFTLESS_KUBECONFIG` when set (kind, k3d, a real cluster), otherwise the
//! project's own API server started (or attached to) by `hack/testcluster.sh`. Each test gets its own
//! namespace, deleted when the test ends.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client, Config,
    api::{Patch, PatchParams},
    config::{KubeConfigOptions, Kubeconfig},
};

/// A running cluster, by its kubeconfig (and, for an instance of `hack/testcluster.sh`, its name).
#[derive(Clone, Debug)]
pub struct TestCluster {
    kubeconfig: PathBuf,
    instance: Option<String>,
}

/// The cluster every test of this process uses: started once, reused across processes.
pub fn cluster() -> &'static TestCluster {
    static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| match std::env::var_os("DRIFTLESS_KUBECONFIG") {
        Some(path) => TestCluster {
            kubeconfig: PathBuf::from(path),
            instance: None,
        },
        None => start_instance("default"),
    })
}

/// Starts (or attaches to) the test-cluster instance `name`, e.g. a second one that plays a remote
/// cluster. Panics with the script's output when it cannot start.
pub fn start_instance(name: &str) -> TestCluster {
    let out = script("the test cluster did not start", &["start", name]);
    let kubeconfig = out.lines().last().unwrap_or_default();
    TestCluster {
        kubeconfig: PathBuf::from(kubeconfig),
        instance: Some(name.to_string()),
    }
}

/// Runs `hack/testcluster.sh args…`; its stdout, or a panic saying `what` went wrong, with its stderr.
fn script(what: &str, args: &[&str]) -> String {
    let script = crate::workspace_root().join("hack/testcluster.sh");
    let out = Command::new(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{what} ({}):\n{}\nrun `hack/testcluster.sh {}` to see why",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        args.join(" ")
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl TestCluster {
    fn instance(&self) -> &str {
        self.instance
            .as_deref()
            .expect("faults are injected only into an instance of hack/testcluster.sh")
    }

    /// Stops the API server with `signal` (`TERM`: a graceful stop, `KILL`: a crash); etcd keeps its data.
    pub fn kill_apiserver(&self, signal: &str) {
        script(
            "the API server did not stop",
            &["kill-apiserver", self.instance(), signal],
        );
    }

    /// Starts the API server stopped by [`TestCluster::kill_apiserver`] again (same port, same
    /// certificates, same etcd), and waits until it is ready.
    pub fn restart_apiserver(&self) {
        script(
            "the API server did not start again",
            &["restart-apiserver", self.instance()],
        );
    }

    /// Compacts etcd's history up to its current revision, so a watch resuming from an older
    /// resourceVersion is told "too old resource version"; returns that revision.
    pub fn compact_etcd(&self) -> u64 {
        script("etcd was not compacted", &["compact-etcd", self.instance()])
            .parse()
            .expect("a revision")
    }

    /// Stops the instance and removes its data.
    pub fn stop(&self) {
        script("the test cluster did not stop", &["stop", self.instance()]);
    }

    /// The kubeconfig file of the cluster.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A client for the cluster's admin (a fresh one per call: clients are bound to a test's runtime).
    pub async fn client(&self) -> Client {
        let config = self.config().await;
        Client::try_from(config).expect("a client for the test cluster")
    }

    /// A client that impersonates `user` (e.g. `system:serviceaccount:flux-system:source-controller`), so a
    /// controller runs with exactly the RBAC its install manifests grant.
    pub async fn client_as(&self, user: &str) -> Client {
        let mut config = self.config().await;
        config.auth_info.impersonate = Some(user.to_string());
        Client::try_from(config).expect("an impersonating client")
    }

    /// The client configuration of [`TestCluster::client_as`].
    pub async fn config_as(&self, user: &str) -> Config {
        let mut config = self.config().await;
        config.auth_info.impersonate = Some(user.to_string());
        config
    }

    /// Server-side applies a kustomize directory of the workspace (`config/default`, …) with kubectl.
    pub fn apply_kustomization(&self, dir: &str) {
        let path = crate::workspace_root().join(dir);
        self.kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            path.to_str().expect("a UTF-8 path"),
        ]);
    }

    /// The client configuration of the cluster's admin.
    pub async fn config(&self) -> Config {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.kubeconfig.display()));
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("a kubeconfig")
    }

    /// Server-side applies driftless's CRDs (`crds/`), and waits until they are established.
    pub async fn install_crds(&self) {
        let client = self.client().await;
        let api: Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = Api::all(client);
        for crd in driftless_api::crds::crds() {
            let name = crd.crd.metadata.name.clone().expect("a CRD has a name");
            api.patch(
                &name,
                &PatchParams::apply("driftless-testkit").force(),
                &Patch::Apply(&crd.crd),
            )
            .await
            .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
        }
        for crd in driftless_api::crds::crds() {
            let name = crd.crd.metadata.name.clone().expect("a CRD has a name");
            let established = kube::runtime::wait::await_condition(
                api.clone(),
                &name,
                kube::runtime::wait::conditions::is_crd_established(),
            );
            tokio::time::timeout(std::time::Duration::from_secs(30), established)
                .await
                .unwrap_or_else(|_| panic!("CRD {name} not established after 30s"))
                .expect("watching a CRD");
        }
    }

    /// A new namespace `<prefix>-<random>`, deleted when the returned guard drops.
    pub async fn namespace(&self, prefix: &str) -> TestNamespace {
        let name = format!("{prefix}-{}", crate::suffix());
        let api: Api<Namespace> = Api::all(self.client().await);
        let ns: Namespace = serde_json::from_value(
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
        .expect("a namespace");
        api.patch(
            &name,
            &PatchParams::apply("driftless-testkit"),
            &Patch::Apply(&ns),
        )
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        TestNamespace {
            name,
            kubeconfig: self.kubeconfig.clone(),
        }
    }

    /// Server-side applies `objects` with kubectl (for kinds without a typed client in the test).
    pub fn kubectl_apply(&self, objects: &[serde_json::Value]) {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
        let file = tempfile::NamedTempFile::new().expect("a temporary file");
        std::fs::write(file.path(), list.to_string()).expect("writing the objects");
        self.kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            file.path().to_str().expect("a UTF-8 path"),
        ]);
    }

    /// Runs `kubectl` against the cluster and returns its stdout; panics with stderr on failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

/// A namespace for one test, deleted (without waiting) on drop.
pub struct TestNamespace {
    name: String,
    kubeconfig: PathBuf,
}

impl TestNamespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // NB: kubectl, not the async client: a client cannot be driven from Drop
        let _ = Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .args([
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ])
            .output();
    }
}
