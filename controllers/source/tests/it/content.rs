//! What goes into an artifact besides the checkout: other repositories' artifacts (`include`), only
//! signed commits and tags (`verify`), submodules.

use driftless_api::{
    meta::conditions::READY,
    source::{GitRepositoryRef, GitRepositorySpec},
};
use driftless_runtime::conditions;
use driftless_testkit::git::{GitHttp, RepoRoot};
use serde_json::json;

use super::{gitrepository::*, start};

#[tokio::test]
async fn includes_copy_another_repositorys_artifact_and_wait_for_it() {
    let h = start("git-include").await;
    let root = RepoRoot::default();
    let app_sha = root.repo("app").commit(&[("deploy/app.yaml", "app")], "app");
    let cfg_sha = root
        .repo("config")
        .commit(&[("shared/cm.yaml", "cm"), ("other/x.yaml", "x")], "config");
    let server = GitHttp::start(&root, "flux", "s3cret");
    secret(&h, "auth", json!({"username": "flux", "password": "s3cret"})).await;
    let include = driftless_api::source::GitRepositoryInclude {
        repository: driftless_api::meta::LocalObjectReference {
            name: "config".into(),
        },
        from_path: Some("shared".into()),
        to_path: Some("deploy/shared".into()),
    };
    let app = GitRepositorySpec {
        include: Some(vec![include]),
        ..spec(&server.url("app"), "main", Some("auth"), "1h")
    };
    create(&h, "app", app).await;
    let obj = wait_until(&h, "app", "waiting for the include", |o| {
        ready(o).is_some_and(|(s, r, _)| s == "False" && r == "IncludeUnavailable")
    })
    .await;
    assert!(ready(&obj).unwrap().2.contains("'config'"), "{:?}", ready(&obj));

    create(
        &h,
        "config",
        spec(&server.url("config"), "main", Some("auth"), "1h"),
    )
    .await;
    let obj = wait_until(&h, "app", "Ready with the include", |o| {
        is_ready_at(o, &format!("main@sha1:{app_sha}"))
    })
    .await;
    let status = obj.status.clone().unwrap();
    let included = status.included_artifacts.clone().unwrap();
    assert_eq!(included.len(), 1);
    assert_eq!(included[0].revision, format!("main@sha1:{cfg_sha}"));
    assert_eq!(status.observed_include, obj.spec.include);
    let mut files = files_in(&download(&h, &obj).await);
    files.sort();
    assert_eq!(files, ["deploy/app.yaml", "deploy/shared/cm.yaml"]);

    // a new commit in the included repository reaches the including one without waiting for its interval
    let cfg2 = root_repo_commit(&root, "config");
    request_reconcile(&h, "config", "2024-09-01T00:00:00Z").await;
    wait_until(&h, "app", "the new included revision", |o| {
        o.status
            .as_ref()
            .and_then(|s| s.included_artifacts.as_ref())
            .is_some_and(|a| a[0].revision == format!("main@sha1:{cfg2}"))
    })
    .await;
}

/// A second commit in an existing repository of `root` (through a fresh work tree).
fn root_repo_commit(root: &RepoRoot, name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let bare = root.path().join(format!("{name}.git"));
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .current_dir(dir.path())
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["clone", "-q", bare.to_str().unwrap(), "."]);
    std::fs::write(dir.path().join("shared/cm.yaml"), "cm2").unwrap();
    git(&["commit", "-qam", "second"]);
    git(&["push", "-q", "origin", "HEAD:main"]);
    git(&["rev-parse", "HEAD"])
}

#[tokio::test]
async fn verify_accepts_commits_and_tags_signed_by_a_listed_key_only() {
    use driftless_api::source::{GitRepositoryVerification, GitVerificationMode};
    use driftless_testkit::git::GpgKey;
    let h = start("git-verify").await;
    let trusted = GpgKey::generate("Trusted <trusted@driftless.io>");
    let stranger = GpgKey::generate("Stranger <stranger@driftless.io>");
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let signed = repo.commit_signed(&[("a.yaml", "1")], "signed", &trusted);
    repo.tag_signed("v1.0.0", &trusted);
    let server = GitHttp::start(&root, "flux", "s3cret");
    secret(&h, "auth", json!({"username": "flux", "password": "s3cret"})).await;
    secret(&h, "keys", json!({"trusted.asc": trusted.public_armored})).await;
    let verify = |mode| {
        Some(GitRepositoryVerification {
            mode: Some(mode),
            secret_ref: driftless_api::meta::LocalObjectReference { name: "keys".into() },
        })
    };
    let url = server.url("fleet");

    create(
        &h,
        "head",
        GitRepositorySpec {
            verification: verify(GitVerificationMode::Head),
            ..spec(&url, "main", Some("auth"), "1h")
        },
    )
    .await;
    let obj = wait_until(&h, "head", "a verified commit", |o| {
        is_ready_at(o, &format!("main@sha1:{signed}"))
    })
    .await;
    let status = obj.status.clone().unwrap();
    let verified = conditions::get(&status.conditions, "SourceVerified").unwrap();
    assert_eq!(verified.status, "True");
    assert!(
        verified.message.starts_with(&format!(
            "verified signature of\n\t- commit '{signed}' with key '"
        )),
        "{}",
        verified.message
    );
    assert_eq!(status.source_verification_mode, Some(GitVerificationMode::Head));

    let tag = GitRepositorySpec {
        verification: verify(GitVerificationMode::TagAndHEAD),
        reference: Some(GitRepositoryRef {
            tag: Some("v1.0.0".into()),
            ..Default::default()
        }),
        ..spec(&url, "main", Some("auth"), "1h")
    };
    create(&h, "tag", tag).await;
    let obj = wait_until(&h, "tag", "a verified tag", |o| {
        is_ready_at(o, &format!("v1.0.0@sha1:{signed}"))
    })
    .await;
    let msg = conditions::get(&obj.status.unwrap().conditions, "SourceVerified")
        .unwrap()
        .message
        .clone();
    assert!(
        msg.contains("tag 'v1.0.0'") && msg.contains(&format!("commit '{signed}'")),
        "{msg}"
    );

    // a commit by a key not in the Secret, then an unsigned one: refused, the verified artifact stays
    let good = h.api.get("head").await.unwrap().status.unwrap().artifact.unwrap();
    let foreign = repo.commit_signed(&[("a.yaml", "2")], "foreign", &stranger);
    request_reconcile(&h, "head", "2024-08-01T00:00:00Z").await;
    let obj = wait_until(&h, "head", "a foreign signature refused", |o| {
        ready(o).is_some_and(|(s, r, _)| s == "False" && r == "VerificationError")
    })
    .await;
    let status = obj.status.unwrap();
    assert!(
        ready_message(&status).contains(&format!("unable to verify commit '{foreign}'")),
        "{}",
        ready_message(&status)
    );
    assert_eq!(
        conditions::get(&status.conditions, "SourceVerified")
            .unwrap()
            .status,
        "False"
    );
    assert_eq!(status.artifact.unwrap(), good);
    let unsigned = repo.commit(&[("a.yaml", "3")], "unsigned");
    request_reconcile(&h, "head", "2024-08-02T00:00:00Z").await;
    let obj = wait_until(&h, "head", "an unsigned commit refused", |o| {
        o.status
            .as_ref()
            .is_some_and(|s| ready_message(s).contains(&unsigned))
    })
    .await;
    assert!(ready_message(obj.status.as_ref().unwrap()).contains("no signature"));
    // the new revision is known and not stored: ArtifactOutdated, as Flux says it
    let outdated = conditions::get(&obj.status.as_ref().unwrap().conditions, "ArtifactOutdated").unwrap();
    assert_eq!(
        (outdated.status.as_str(), outdated.reason.as_str()),
        ("True", "NewRevision")
    );
    assert!(outdated.message.contains(&unsigned), "{}", outdated.message);
}

fn ready_message(status: &driftless_api::source::GitRepositoryStatus) -> String {
    conditions::get(&status.conditions, READY)
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn submodules_are_included_when_recurse_submodules_is_set() {
    let h = start("git-submodules").await;
    let root = RepoRoot::default();
    root.repo("lib").commit(&[("lib.yaml", "lib")], "lib");
    let app = root.repo("app");
    app.commit(&[("app.yaml", "app")], "app");
    let sha = app.add_submodule("../lib.git", "vendor/lib", "add lib");
    let server = GitHttp::start(&root, "flux", "s3cret");
    secret(&h, "auth", json!({"username": "flux", "password": "s3cret"})).await;
    let with = GitRepositorySpec {
        recurse_submodules: Some(true),
        ..spec(&server.url("app"), "main", Some("auth"), "1h")
    };
    create(&h, "app", with).await;
    let obj = wait_until(&h, "app", "Ready with submodules", |o| {
        is_ready_at(o, &format!("main@sha1:{sha}"))
    })
    .await;
    assert_eq!(
        obj.status.as_ref().unwrap().observed_recurse_submodules,
        Some(true)
    );
    let mut files = files_in(&download(&h, &obj).await);
    files.sort();
    assert_eq!(
        files,
        ["app.yaml", "vendor/lib/lib.yaml"],
        ".gitmodules is excluded by default, the submodule's files are in"
    );
}
