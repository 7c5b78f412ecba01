//! ArtifactGenerator (Flux's source-watcher) in source-controller: a monorepo decomposed into
//! ExternalArtifacts, a commit to one folder giving a new artifact to that folder's only.

use std::time::{Duration, Instant};

use driftless_api::{
    extensions::{
        ArtifactGenerator, ArtifactGeneratorSpec, ArtifactSourceKind, ArtifactSourceReference, CopyOperation,
        OutputArtifact,
    },
    source::{ExternalArtifact, GitRepository},
};
use driftless_testkit::git::{GitHttp, RepoRoot};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;

use super::{Harness, apply, gitrepository, ready_at, start};

fn output(name: &str, from: &str) -> OutputArtifact {
    OutputArtifact {
        name: name.into(),
        copy: vec![CopyOperation {
            from: from.into(),
            to: "@artifact/".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn generator(h: &Harness, outputs: Vec<OutputArtifact>, alias: &str) {
    let obj = ArtifactGenerator::new(
        "fleet",
        ArtifactGeneratorSpec {
            sources: vec![ArtifactSourceReference {
                alias: alias.into(),
                name: "fleet".into(),
                kind: ArtifactSourceKind::GitRepository,
                ..Default::default()
            }],
            output_artifacts: outputs,
            ..Default::default()
        },
    );
    let api: Api<ArtifactGenerator> = Api::namespaced(h.api.clone().into_client(), h.ns.name());
    api.patch("fleet", &PatchParams::apply("test").force(), &Patch::Apply(&obj))
        .await
        .unwrap();
}

async fn wait_generator(
    h: &Harness,
    what: &str,
    pred: impl Fn(&ArtifactGenerator) -> bool,
) -> ArtifactGenerator {
    let api: Api<ArtifactGenerator> = Api::namespaced(h.api.clone().into_client(), h.ns.name());
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let obj = api.get("fleet").await.unwrap();
        if pred(&obj) {
            return obj;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:#?}",
            obj.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ready(obj: &ArtifactGenerator) -> Option<(String, String, String)> {
    let c = driftless_runtime::conditions::get(&obj.status.as_ref()?.conditions, "Ready")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn external(h: &Harness, name: &str) -> ExternalArtifact {
    Api::<ExternalArtifact>::namespaced(h.api.clone().into_client(), h.ns.name())
        .get(name)
        .await
        .unwrap()
}

fn digest_of(ea: &ExternalArtifact) -> String {
    ea.status
        .as_ref()
        .unwrap()
        .artifact
        .as_ref()
        .unwrap()
        .digest
        .clone()
}

#[tokio::test]
async fn a_monorepo_is_decomposed_and_a_commit_to_one_folder_changes_only_its_artifact() {
    let h = start("ag").await;
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let head = repo.commit(
        &[
            ("apps/podinfo.yaml", "kind: HelmRelease\n"),
            ("apps/README.md", "docs"),
            (
                "infrastructure/controllers/cert-manager.yaml",
                "kind: HelmRelease\n",
            ),
            ("infrastructure/configs/issuer.yaml", "kind: ClusterIssuer\n"),
        ],
        "first",
    );
    let server = GitHttp::start(&root, "flux", "s3cret");
    gitrepository::secret(&h, "auth", json!({"username": "flux", "password": "s3cret"})).await;
    apply(
        &h,
        &GitRepository::new(
            "fleet",
            gitrepository::spec(&server.url("fleet"), "main", Some("auth"), "1h"),
        ),
    )
    .await;
    ready_at::<GitRepository>(&h, "fleet", &format!("main@sha1:{head}")).await;

    let mut apps = output("apps", "@repo/apps/**");
    apps.copy[0].exclude = Some(vec!["*.md".into()]);
    apps.origin_revision = Some("@repo".into());
    let mut infra = output("infra", "@repo/infrastructure/**");
    infra.revision = Some("@repo".into());
    generator(&h, vec![apps, infra], "repo").await;
    let obj = wait_generator(&h, "Ready", |o| ready(o).is_some_and(|r| r.0 == "True")).await;
    assert_eq!(
        ready(&obj).unwrap().2,
        "reconciliation succeeded, generated 2 artifact(s)"
    );
    let status = obj.status.unwrap();
    assert_eq!(status.inventory.len(), 2);
    assert!(status.observed_sources_digest.unwrap().starts_with("sha256:"));

    let apps_ea = external(&h, "apps").await;
    let artifact = apps_ea.status.as_ref().unwrap().artifact.clone().unwrap();
    assert!(artifact.revision.starts_with("latest@sha256:"), "{artifact:?}");
    assert_eq!(
        artifact.metadata.as_ref().unwrap()["org.opencontainers.image.revision"],
        format!("main@sha1:{head}")
    );
    let ready_condition =
        driftless_runtime::conditions::get(&apps_ea.status.as_ref().unwrap().conditions, "Ready").unwrap();
    assert_eq!(
        (ready_condition.status.as_str(), ready_condition.message.as_str()),
        ("True", "Artifact is ready")
    );
    let bytes = reqwest::get(&artifact.url)
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let files = gitrepository::files_in(&bytes);
    assert_eq!(files, vec!["podinfo.yaml"], "README.md excluded");
    let infra_ea = external(&h, "infra").await;
    assert_eq!(
        infra_ea
            .status
            .as_ref()
            .unwrap()
            .artifact
            .as_ref()
            .unwrap()
            .revision,
        format!("main@sha1:{head}"),
        "revision: the source's"
    );
    assert_eq!(
        infra_ea.spec.source_ref.as_ref().unwrap().kind,
        "ArtifactGenerator"
    );

    // a commit to apps/ only: a new apps artifact, the same infra one
    let (apps_before, infra_before) = (digest_of(&apps_ea), digest_of(&infra_ea));
    let second = repo.commit(
        &[("apps/podinfo.yaml", "kind: HelmRelease\nspec: {}\n")],
        "apps only",
    );
    gitrepository::request_reconcile(&h, "fleet", "1").await;
    ready_at::<GitRepository>(&h, "fleet", &format!("main@sha1:{second}")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while digest_of(&external(&h, "apps").await) == apps_before {
        assert!(Instant::now() < deadline, "the apps artifact was not regenerated");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        digest_of(&external(&h, "infra").await),
        infra_before,
        "infra is untouched"
    );

    // an artifact taken out of the spec: its ExternalArtifact goes
    generator(&h, vec![output("apps", "@repo/apps/**")], "repo").await;
    wait_generator(&h, "one artifact", |o| {
        o.status.as_ref().is_some_and(|s| s.inventory.len() == 1) && ready(o).is_some_and(|r| r.0 == "True")
    })
    .await;
    let eas: Api<ExternalArtifact> = Api::namespaced(h.api.clone().into_client(), h.ns.name());
    assert!(
        eas.get_opt("infra").await.unwrap().is_none(),
        "the orphan is deleted"
    );

    // an inconsistent spec stalls with source-watcher's reason
    let mut bad = output("apps", "@repo/apps/**");
    bad.revision = Some("@nope".into());
    generator(&h, vec![bad], "repo").await;
    let obj = wait_generator(&h, "ValidationFailed", |o| {
        ready(o).is_some_and(|r| r.1 == "ValidationFailed")
    })
    .await;
    assert_eq!(
        ready(&obj).unwrap().2,
        "artifact apps revision source alias 'nope' not found"
    );
}
