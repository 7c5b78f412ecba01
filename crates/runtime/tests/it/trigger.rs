use std::time::Duration;

use driftless_api::{meta::RECONCILE_REQUEST_ANNOTATION, source::GitRepository};
use driftless_runtime::request::trigger;
use driftless_testkit::cluster::cluster;
use futures::StreamExt;
use kube::{
    Api,
    api::{Patch, PatchParams},
    runtime::{PredicateConfig, WatchStreamExt, watcher},
};
use serde_json::json;

/// The next object the filtered watch lets through, if one comes within `secs`.
async fn next(
    stream: &mut (impl futures::Stream<Item = Result<GitRepository, watcher::Error>> + Unpin),
    secs: u64,
) -> Option<GitRepository> {
    tokio::time::timeout(Duration::from_secs(secs), stream.next())
        .await
        .ok()
        .flatten()
        .map(|r| r.unwrap())
}

#[tokio::test]
async fn a_requested_at_change_triggers_and_a_label_change_does_not() {
    let ns = cluster().namespace("trigger").await;
    let (api, _) = super::git_repository(ns.name(), "repo").await;
    let watched: Api<GitRepository> = Api::namespaced(cluster().client().await, ns.name());
    let mut stream = watcher(watched, watcher::Config::default())
        .applied_objects()
        .predicate_filter(trigger, PredicateConfig::default())
        .boxed();
    assert!(next(&mut stream, 10).await.is_some(), "the initial list passes");

    let label = json!({"metadata": {"labels": {"team": "a"}}});
    api.patch("repo", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    assert!(
        next(&mut stream, 2).await.is_none(),
        "a label change does not trigger a reconcile"
    );

    let request =
        json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: "2024-05-01T10:00:00Z"}}});
    let patched = api
        .patch("repo", &PatchParams::default(), &Patch::Merge(&request))
        .await
        .unwrap();
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "an annotation does not change the generation"
    );
    let got = next(&mut stream, 10)
        .await
        .expect("an annotation-only change triggers");
    assert_eq!(
        driftless_runtime::request::requested_at(&got),
        Some("2024-05-01T10:00:00Z")
    );

    let spec = json!({"spec": {"interval": "10m"}});
    api.patch("repo", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    let got = next(&mut stream, 10).await.expect("a spec change triggers");
    assert_eq!(got.metadata.generation, Some(2));
}
