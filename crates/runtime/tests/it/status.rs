use driftless_api::{
    meta::conditions::{ARTIFACT_IN_STORAGE, READY},
    source::GitRepositoryStatus,
};
use driftless_runtime::{conditions, status::apply_status};
use driftless_testkit::cluster::cluster;

#[tokio::test]
async fn status_is_written_by_ssa_and_skipped_when_only_times_change() {
    let ns = cluster().namespace("status").await;
    let (api, created) = super::git_repository(ns.name(), "repo").await;
    assert_eq!(
        created.status.as_ref().and_then(|s| s.observed_generation),
        Some(-1),
        "the CRD defaults status to observedGeneration -1"
    );
    let mut status = GitRepositoryStatus {
        observed_generation: Some(1),
        ..Default::default()
    };
    conditions::mark_true(
        &mut status.conditions,
        ARTIFACT_IN_STORAGE,
        "Succeeded",
        "stored artifact",
        Some(1),
    );
    conditions::mark_true(
        &mut status.conditions,
        READY,
        "Succeeded",
        "stored artifact",
        Some(1),
    );

    assert!(
        apply_status(
            &api,
            "repo",
            "source-controller",
            created.status.as_ref(),
            &status
        )
        .await
        .unwrap()
    );
    let written = api.get("repo").await.unwrap();
    let got = written.status.clone().unwrap();
    assert_eq!(got.observed_generation, Some(1));
    assert!(conditions::is_ready(&got.conditions, Some(1)));
    assert!(
        written
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some("source-controller")
                && m.subresource.as_deref() == Some("status")),
        "written by the controller's field manager on /status"
    );

    // the same status with fresh transition times: no write
    let mut again = status.clone();
    for c in &mut again.conditions {
        c.last_transition_time =
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    }
    assert!(
        !apply_status(&api, "repo", "source-controller", Some(&got), &again)
            .await
            .unwrap()
    );
    assert_eq!(
        api.get("repo").await.unwrap().metadata.resource_version,
        written.metadata.resource_version
    );

    // a real change is written, and fields the manager dropped are removed
    let mut changed = status.clone();
    conditions::delete(&mut changed.conditions, ARTIFACT_IN_STORAGE);
    assert!(
        apply_status(&api, "repo", "source-controller", Some(&got), &changed)
            .await
            .unwrap()
    );
    let types: Vec<_> = api
        .get("repo")
        .await
        .unwrap()
        .status
        .unwrap()
        .conditions
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(types, [READY]);
}
