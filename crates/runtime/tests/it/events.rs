use std::{collections::BTreeMap, time::Duration};

use driftless_runtime::events::{Recorder, Severity};
use driftless_testkit::cluster::cluster;
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use kube::{Api, Resource};

#[tokio::test]
async fn events_are_written_to_the_cluster() {
    let ns = cluster().namespace("events").await;
    let (_, repo) = super::git_repository(ns.name(), "repo").await;
    let reference: ObjectReference = repo.object_ref(&());
    let recorder = Recorder::new(Some(cluster().client().await), "source-controller", "sc-0", None);
    recorder.record(
        &reference,
        Severity::Error,
        "GitOperationFailed",
        "failed to checkout and determine revision",
        BTreeMap::new(),
    );
    recorder.record(
        &reference,
        Severity::Trace,
        "Progress",
        "not a Kubernetes event",
        BTreeMap::new(),
    );

    let api: Api<Event> = Api::namespaced(cluster().client().await, ns.name());
    let mut events = Vec::new();
    for _ in 0..100 {
        events = api.list(&Default::default()).await.unwrap().items;
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(events.len(), 1, "one event; trace is not written: {events:?}");
    let event = &events[0];
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.reason.as_deref(), Some("GitOperationFailed"));
    assert_eq!(
        event.message.as_deref(),
        Some("failed to checkout and determine revision")
    );
    assert_eq!(event.involved_object.kind.as_deref(), Some("GitRepository"));
    assert_eq!(event.involved_object.uid, repo.metadata.uid);
    assert_eq!(
        event.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("source-controller")
    );
}
