//! `driftless-runtime` against the real test cluster: status writes by server-side apply, the watch
//! trigger, Kubernetes Events, and leader election between two processes with a handover on SIGTERM.

mod events;
mod leader;
mod lifecycle;
mod manager;
mod status;
mod trigger;

use driftless_api::source::{GitRepository, GitRepositorySpec};
use driftless_testkit::cluster::cluster;
use kube::{
    Api,
    api::{Patch, PatchParams},
};

/// Creates the GitRepository `name` in `namespace` (CRDs installed first).
pub async fn git_repository(namespace: &str, name: &str) -> (Api<GitRepository>, GitRepository) {
    cluster().install_crds().await;
    let api: Api<GitRepository> = Api::namespaced(cluster().client().await, namespace);
    let obj = GitRepository::new(
        name,
        GitRepositorySpec {
            url: "https://example.com/repo".into(),
            interval: "5m".into(),
            ..Default::default()
        },
    );
    let created = api
        .patch(name, &PatchParams::apply("test"), &Patch::Apply(&obj))
        .await
        .unwrap();
    (api, created)
}
