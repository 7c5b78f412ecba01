use std::time::{Duration, Instant};

use driftless_api::{
    meta::{RECONCILE_REQUEST_ANNOTATION, conditions::READY},
    source::{GitRepository, GitRepositoryRef, GitRepositorySpec},
};
use driftless_runtime::conditions;
use driftless_testkit::{
    cluster::cluster,
    git::{GitHttp, GitSsh, RepoRoot},
};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Harness, start};

pub(crate) fn spec(url: &str, branch: &str, secret: Option<&str>, interval: &str) -> GitRepositorySpec {
    GitRepositorySpec {
        url: url.into(),
        interval: interval.into(),
        reference: Some(GitRepositoryRef {
            branch: Some(branch.into()),
            ..Default::default()
        }),
        secret_ref: secret.map(|s| driftless_api::meta::LocalObjectReference { name: s.into() }),
        ..Default::default()
    }
}

pub(crate) async fn create(h: &Harness, name: &str, spec: GitRepositorySpec) {
    let obj = GitRepository::new(name, spec);
    h.api
        .patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&obj))
        .await
        .unwrap();
}

pub(crate) async fn secret(h: &Harness, name: &str, data: serde_json::Value) {
    let api: Api<Secret> = Api::namespaced(cluster().client().await, h.ns.name());
    let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data});
    api.patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&s))
        .await
        .unwrap();
}

/// Waits until `pred` holds for the object, or panics with its last status.
pub(crate) async fn wait_until(
    h: &Harness,
    name: &str,
    what: &str,
    pred: impl Fn(&GitRepository) -> bool,
) -> GitRepository {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let obj = h.api.get(name).await.unwrap();
        if pred(&obj) {
            return obj;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: status {:#?}",
            obj.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `name` is not Ready (`what` names the failure for the timeout message); returns the
/// Ready reason and message.
pub(crate) async fn failed(h: &Harness, name: &str, what: &str) -> (String, String) {
    let obj = wait_until(h, name, what, |o| {
        ready(o).is_some_and(|(status, _, _)| status == "False")
    })
    .await;
    let (_, reason, message) = ready(&obj).unwrap();
    (reason, message)
}

pub(crate) fn ready(obj: &GitRepository) -> Option<(String, String, String)> {
    let c = conditions::get(&obj.status.as_ref()?.conditions, READY)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

pub(crate) fn is_ready_at(obj: &GitRepository, revision: &str) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        conditions::is_ready(&s.conditions, obj.metadata.generation)
            && s.artifact.as_ref().is_some_and(|a| a.revision == revision)
    })
}

pub(crate) async fn request_reconcile(h: &Harness, name: &str, at: &str) {
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: at}}});
    h.api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Whether `o` handled the reconcile request `at`.
pub(crate) fn handled(o: &GitRepository, at: &str) -> bool {
    o.status
        .as_ref()
        .is_some_and(|s| s.reconcile_request.last_handled_reconcile_at.as_deref() == Some(at))
}

/// Requests a reconcile of `name` at an unchanged revision and waits until it is handled.
pub(crate) async fn reconcile_now(h: &Harness, name: &str, at: &str) -> GitRepository {
    request_reconcile(h, name, at).await;
    wait_until(h, name, "the request handled", |o| handled(o, at)).await
}

pub(crate) async fn download(h: &Harness, obj: &GitRepository) -> Vec<u8> {
    let artifact = obj.status.as_ref().unwrap().artifact.as_ref().unwrap();
    let url = format!("http://{}/{}", h.artifact_addr, artifact.path);
    assert_eq!(artifact.url, url, "the advertised URL is the server's");
    reqwest::get(&url)
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

pub(crate) fn files_in(bytes: &[u8]) -> Vec<String> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    tar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

#[tokio::test]
async fn an_http_repository_becomes_ready_and_follows_new_commits() {
    let h = start("git-http").await;
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let first = repo.commit(
        &[
            ("deploy/app.yaml", "v: 1\n"),
            (".github/ci.yaml", "ci\n"),
            ("logo.png", "png"),
        ],
        "first",
    );
    let server = GitHttp::start(&root, "flux", "s3cret");
    secret(&h, "auth", json!({"username": "flux", "password": "s3cret"})).await;
    create(
        &h,
        "fleet",
        spec(&server.url("fleet"), "main", Some("auth"), "1h"),
    )
    .await;

    let rev1 = format!("main@sha1:{first}");
    let obj = wait_until(&h, "fleet", "Ready at the first commit", |o| {
        is_ready_at(o, &rev1)
    })
    .await;
    let status = obj.status.clone().unwrap();
    assert_eq!(
        ready(&obj).unwrap(),
        (
            "True".into(),
            "Succeeded".into(),
            format!("stored artifact for revision '{rev1}'")
        )
    );
    assert!(conditions::is_true(&status.conditions, "ArtifactInStorage"));
    assert_eq!(status.observed_generation, obj.metadata.generation);
    assert!(
        obj.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "finalizers.fluxcd.io")
    );
    let artifact = status.artifact.clone().unwrap();
    assert_eq!(
        artifact.path,
        format!("gitrepository/{}/fleet/{first}.tar.gz", h.ns.name())
    );
    let bytes = download(&h, &obj).await;
    assert_eq!(
        artifact.digest,
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        "the digest matches the served bytes"
    );
    assert_eq!(artifact.size, Some(bytes.len() as i64));
    assert_eq!(files_in(&bytes), ["deploy/app.yaml"], "default exclusions apply");

    // a new commit, then a reconcile request: handled at once, not at the 1h interval
    let second = repo.commit(&[("deploy/app.yaml", "v: 2\n")], "second");
    request_reconcile(&h, "fleet", "2024-06-01T00:00:00Z").await;
    let rev2 = format!("main@sha1:{second}");
    let obj = wait_until(&h, "fleet", "the second commit after requestedAt", |o| {
        is_ready_at(o, &rev2)
    })
    .await;
    assert!(handled(&obj, "2024-06-01T00:00:00Z"));
    let bytes2 = download(&h, &obj).await;
    assert_ne!(bytes, bytes2);
    let latest = reqwest::get(format!(
        "http://{}/gitrepository/{}/fleet/latest.tar.gz",
        h.artifact_addr,
        h.ns.name()
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    assert_eq!(latest.to_vec(), bytes2, "latest.tar.gz is the newest");

    // deleting the object removes its artifacts, and the finalizer lets it go
    h.api.delete("fleet", &DeleteParams::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.api.get_opt("fleet").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the GitRepository was not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !h.storage
            .path()
            .join(format!("gitrepository/{}/fleet", h.ns.name()))
            .exists()
    );
}

#[tokio::test]
async fn a_new_commit_is_picked_up_within_one_interval() {
    let h = start("git-interval").await;
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let first = repo.commit(&[("a.yaml", "1")], "first");
    let server = GitHttp::start(&root, "flux", "s3cret");
    secret(&h, "auth", json!({"username": "flux", "password": "s3cret"})).await;
    create(
        &h,
        "fleet",
        spec(&server.url("fleet"), "main", Some("auth"), "2s"),
    )
    .await;
    wait_until(&h, "fleet", "Ready", |o| {
        is_ready_at(o, &format!("main@sha1:{first}"))
    })
    .await;
    let second = repo.commit(&[("a.yaml", "2")], "second");
    let pushed = Instant::now();
    wait_until(&h, "fleet", "the new commit", |o| {
        is_ready_at(o, &format!("main@sha1:{second}"))
    })
    .await;
    assert!(
        pushed.elapsed() < Duration::from_secs(10),
        "picked up after {:?}, interval 2s",
        pushed.elapsed()
    );
}

#[tokio::test]
async fn bad_inputs_say_what_to_fix_and_keep_serving_the_last_artifact() {
    let h = start("git-bad").await;
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let first = repo.commit(&[("a.yaml", "1")], "first");
    repo.tag("v1.0.0");
    let server = GitHttp::start(&root, "flux", "s3cret");
    secret(&h, "auth", json!({"username": "flux", "password": "s3cret"})).await;
    secret(&h, "wrong", json!({"username": "flux", "password": "wr0ng-pass"})).await;
    let url = server.url("fleet");
    create(&h, "fleet", spec(&url, "main", Some("auth"), "1h")).await;
    let good = wait_until(&h, "fleet", "Ready", |o| {
        is_ready_at(o, &format!("main@sha1:{first}"))
    })
    .await;
    let good_artifact = good.status.clone().unwrap().artifact.unwrap();
    let served = download(&h, &good).await;

    let cases: Vec<(&str, GitRepositorySpec, &str, &str)> = vec![
        (
            "missing branch",
            spec(&url, "nope", Some("auth"), "1h"),
            "GitOperationFailed",
            "'nope'",
        ),
        (
            "missing secret",
            spec(&url, "main", Some("missing"), "1h"),
            "AuthenticationFailed",
            "failed to get secret",
        ),
        (
            "wrong password",
            spec(&url, "main", Some("wrong"), "1h"),
            "AuthenticationFailed",
            "authentication failed",
        ),
        (
            "no semver match",
            GitRepositorySpec {
                reference: Some(GitRepositoryRef {
                    semver: Some(">=2.0.0".into()),
                    ..Default::default()
                }),
                ..spec(&url, "main", Some("auth"), "1h")
            },
            "GitOperationFailed",
            "no match found for semver: >=2.0.0",
        ),
        (
            "unreachable host",
            spec(
                &format!(
                    "http://127.0.0.1:{}/git/fleet.git",
                    driftless_testkit::free_port()
                ),
                "main",
                Some("auth"),
                "1h",
            ),
            "GitOperationFailed",
            "127.0.0.1",
        ),
    ];
    for (case, bad, reason, message) in cases {
        let message = message.replace("NS", h.ns.name());
        create(&h, "fleet", bad).await;
        let obj = wait_until(&h, "fleet", case, |o| {
            ready(o).is_some_and(|(s, r, _)| s == "False" && r == reason)
                && o.status.as_ref().unwrap().observed_generation == o.metadata.generation
        })
        .await;
        let (_, _, msg) = ready(&obj).unwrap();
        assert!(msg.contains(&message), "{case}: {msg}");
        assert!(!msg.contains("Status {"), "{case}: no client debug output: {msg}");
        assert!(
            !msg.contains("s3cret") && !msg.contains("wr0ng-pass"),
            "{case}: no secret in the message: {msg}"
        );
        let status = obj.status.clone().unwrap();
        assert_eq!(
            status.artifact.as_ref(),
            Some(&good_artifact),
            "{case}: the last artifact stays in status"
        );
        assert!(conditions::is_true(&status.conditions, "FetchFailed"), "{case}");
        assert_eq!(download(&h, &obj).await, served, "{case}: and keeps being served");
    }
}

#[tokio::test]
async fn an_ssh_repository_needs_its_host_in_known_hosts() {
    let h = start("git-ssh").await;
    let root = RepoRoot::default();
    let sha = root.repo("fleet").commit(&[("a.yaml", "1")], "first");
    let server = GitSsh::start(&root);
    secret(
        &h,
        "ssh",
        json!({"identity": server.identity, "known_hosts": server.known_hosts}),
    )
    .await;
    create(&h, "fleet", spec(&server.url("fleet"), "main", Some("ssh"), "1h")).await;
    wait_until(&h, "fleet", "Ready over SSH", |o| {
        is_ready_at(o, &format!("main@sha1:{sha}"))
    })
    .await;

    secret(&h, "stranger", json!({"identity": server.identity, "known_hosts": format!("{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", server.known_hosts.split(' ').next().unwrap())})).await;
    create(
        &h,
        "other",
        spec(&server.url("fleet"), "main", Some("stranger"), "1h"),
    )
    .await;
    let obj = wait_until(&h, "other", "an unknown host key refused", |o| {
        ready(o).is_some_and(|(s, _, _)| s == "False")
    })
    .await;
    let (_, reason, msg) = ready(&obj).unwrap();
    assert_eq!(reason, "AuthenticationFailed", "{msg}");
    assert!(msg.contains("known_hosts"), "{msg}");
    let no_hosts = json!({"identity": server.identity});
    secret(&h, "incomplete", no_hosts).await;
    create(
        &h,
        "third",
        spec(&server.url("fleet"), "main", Some("incomplete"), "1h"),
    )
    .await;
    let obj = wait_until(&h, "third", "a Secret without known_hosts refused", |o| {
        ready(o).is_some_and(|(s, _, _)| s == "False")
    })
    .await;
    assert!(
        ready(&obj).unwrap().2.contains("required field 'known_hosts'"),
        "{:?}",
        ready(&obj)
    );
}

/// When the (only) repository in `h`'s Git cache was last fetched: libgit2 rewrites the bare cache's
/// FETCH_HEAD on every fetch, even one that brings nothing.
fn fetch_head(h: &Harness) -> std::time::SystemTime {
    let repos = std::fs::read_dir(h.cache.path()).unwrap();
    let repo = repos
        .map(|e| e.unwrap().path())
        .find(|p| p.join("FETCH_HEAD").exists());
    let head = repo.expect("a fetched repository").join("FETCH_HEAD");
    std::fs::metadata(head).unwrap().modified().unwrap()
}

#[tokio::test]
async fn the_same_commit_gives_byte_identical_artifacts_and_an_unchanged_one_is_not_repacked() {
    let h = start("git-repro").await;
    let root = RepoRoot::default();
    let sha = root.repo("fleet").commit(
        &[("b/x.yaml", "x"), ("a.yaml", "a"), ("run.sh", "#!/bin/sh\n")],
        "first",
    );
    let server = GitHttp::start(&root, "flux", "s3cret");
    secret(&h, "auth", json!({"username": "flux", "password": "s3cret"})).await;
    let rev = format!("main@sha1:{sha}");
    create(&h, "one", spec(&server.url("fleet"), "main", Some("auth"), "1h")).await;
    let one = wait_until(&h, "one", "one Ready", |o| is_ready_at(o, &rev)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    create(&h, "two", spec(&server.url("fleet"), "main", Some("auth"), "1h")).await;
    let two = wait_until(&h, "two", "two Ready", |o| is_ready_at(o, &rev)).await;
    let (a1, a2) = (
        one.status.clone().unwrap().artifact.unwrap(),
        two.status.clone().unwrap().artifact.unwrap(),
    );
    assert_eq!(a1.digest, a2.digest);
    assert_eq!(download(&h, &one).await, download(&h, &two).await);

    // a reconcile request at an unchanged revision: handled, nothing rewritten
    let file = h.storage.path().join(&a1.path);
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let fetched = fetch_head(&h);
    let again = reconcile_now(&h, "one", "2024-07-01T00:00:00Z").await;
    assert_eq!(
        again.status.unwrap().artifact.unwrap(),
        a1,
        "the artifact, lastUpdateTime included, is unchanged"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        mtime,
        "the file was not rewritten"
    );
    assert_eq!(fetch_head(&h), fetched, "the unchanged revision was not fetched");
}

#[tokio::test]
async fn a_bearer_token_fetches_and_an_unchanged_revision_is_only_listed() {
    let h = start("git-bearer").await;
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let sha = repo.commit(&[("a.yaml", "a")], "first");
    let server = GitHttp::start_bearer(&root, "t0ken");
    secret(&h, "token", json!({"bearerToken": "t0ken"})).await;
    let rev = format!("main@sha1:{sha}");
    create(
        &h,
        "fleet",
        spec(&server.url("fleet"), "main", Some("token"), "1h"),
    )
    .await;
    wait_until(&h, "fleet", "Ready", |o| is_ready_at(o, &rev)).await;
    let lists = || {
        server
            .requests()
            .iter()
            .filter(|r| r.starts_with("GET /git/fleet.git/info/refs?service=git-upload-pack "))
            .filter(|r| r.ends_with(" 200"))
            .count()
    };

    // a reconcile request at the same revision: the refs are listed (the bridge sends the token, which
    // libgit2 cannot when listing), nothing is fetched
    let (listed, fetched) = (lists(), fetch_head(&h));
    reconcile_now(&h, "fleet", "2024-07-01T00:00:00Z").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while lists() == listed {
        assert!(Instant::now() < deadline, "{:#?}", server.requests());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fetch_head(&h), fetched, "the unchanged revision was not fetched");

    // a new commit is fetched with the token
    let next = repo.commit(&[("a.yaml", "b")], "second");
    request_reconcile(&h, "fleet", "2024-07-01T00:00:01Z").await;
    let rev = format!("main@sha1:{next}");
    wait_until(&h, "fleet", "Ready at the new commit", |o| is_ready_at(o, &rev)).await;
}

#[tokio::test]
async fn https_with_the_secrets_ca_and_client_certificate_becomes_ready_and_a_wrong_ca_says_so() {
    use driftless_testkit::pki::Pki;
    let h = start("git-https").await;
    let root = RepoRoot::default();
    let first = root.repo("fleet").commit(&[("a.yaml", "1")], "first");
    let pki = Pki::new();
    let server = GitHttp::start_tls(&root, "flux", "s3cret", &pki, true);
    let url = server.url("fleet");
    let tls = |ca: &Pki| {
        json!({"username": "flux", "password": "s3cret", "ca.crt": ca.pem("ca.crt"),
            "tls.crt": pki.pem("client.crt"), "tls.key": pki.pem("client.key")})
    };
    secret(&h, "tls", tls(&pki)).await;
    create(&h, "fleet", spec(&url, "main", Some("tls"), "1h")).await;
    let rev = format!("main@sha1:{first}");
    let good = wait_until(&h, "fleet", "Ready over HTTPS", |o| is_ready_at(o, &rev)).await;
    let artifact = good.status.clone().unwrap().artifact.unwrap();

    // a CA that did not sign the server's certificate: what failed, and the last artifact stays
    let other = Pki::new();
    secret(&h, "tls", tls(&other)).await;
    request_reconcile(&h, "fleet", "other-ca").await;
    let (reason, message) = failed(&h, "fleet", "the TLS failure").await;
    assert_eq!(reason, "GitOperationFailed");
    assert!(
        message.contains("connection to") && message.contains("invalid peer certificate"),
        "{message}"
    );
    assert!(!message.contains("BEGIN"), "no PEM in status: {message}");
    let status = h.api.get("fleet").await.unwrap().status.unwrap();
    assert_eq!(status.artifact, Some(artifact), "the last artifact stays");
    // a failure that may pass is retried, and says so as Flux does
    let reconciling = conditions::get(&status.conditions, "Reconciling").unwrap();
    assert_eq!(
        (reconciling.status.as_str(), reconciling.reason.as_str()),
        ("True", "ProgressingWithRetry")
    );

    // a client certificate without its key: the Secret is what to fix
    secret(
        &h,
        "half",
        json!({"ca.crt": pki.pem("ca.crt"), "tls.crt": pki.pem("client.crt")}),
    )
    .await;
    create(&h, "half", spec(&url, "main", Some("half"), "1h")).await;
    let (reason, message) = failed(&h, "half", "the incomplete Secret").await;
    assert_eq!(reason, "AuthenticationFailed");
    assert!(message.contains("'tls.crt' and 'tls.key'"), "{message}");
}

#[tokio::test]
async fn a_proxy_secret_routes_fetches_through_that_proxy() {
    use driftless_testkit::proxy::Proxy;
    let h = start("git-proxy").await;
    let root = RepoRoot::default();
    let first = root.repo("fleet").commit(&[("a.yaml", "1")], "first");
    let server = GitHttp::start(&root, "flux", "s3cret");
    let proxy = Proxy::start("gate", "k33per");
    secret(&h, "auth", json!({"username": "flux", "password": "s3cret"})).await;
    secret(
        &h,
        "proxy",
        json!({"address": proxy.url(), "username": "gate", "password": "k33per"}),
    )
    .await;
    secret(&h, "no-address", json!({"username": "gate"})).await;
    let url = server.url("fleet");
    let via = |proxy_secret: &str| GitRepositorySpec {
        proxy_secret_ref: Some(driftless_api::meta::LocalObjectReference {
            name: proxy_secret.into(),
        }),
        ..spec(&url, "main", Some("auth"), "1h")
    };
    create(&h, "fleet", via("proxy")).await;
    let rev = format!("main@sha1:{first}");
    wait_until(&h, "fleet", "Ready through the proxy", |o| is_ready_at(o, &rev)).await;
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert!(
        proxy.log().contains(port),
        "the fetch went around the proxy: {}",
        proxy.log()
    );

    create(&h, "broken", via("no-address")).await;
    let (reason, message) = failed(&h, "broken", "the incomplete proxy Secret").await;
    assert_eq!(reason, "InvalidSpec");
    assert!(message.contains("key 'address' is missing"), "{message}");
}

#[tokio::test]
async fn ignore_sparse_checkout_suspend_and_timeout_act_as_in_flux() {
    let h = start("git-spec").await;
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let first = repo.commit(
        &[
            ("deploy/app.yaml", "a: 1\n"),
            ("deploy/notes.txt", "n\n"),
            ("deploy/.sourceignore", "*.tmp\n"),
            ("deploy/cache.tmp", "x\n"),
            ("deploy/logo.png", "png\n"),
            ("docs/guide.yaml", "g: 1\n"),
        ],
        "first",
    );
    let server = GitHttp::start(&root, "flux", "s3cret");
    secret(&h, "auth", json!({"username": "flux", "password": "s3cret"})).await;
    let url = server.url("fleet");

    // sparse checkout + .sourceignore + spec.ignore (a negation brings a default exclusion back)
    let shaped = GitRepositorySpec {
        sparse_checkout: Some(vec!["deploy".into()]),
        ignore: Some("/deploy/notes.txt\n!/deploy/logo.png\n".into()),
        ..spec(&url, "main", Some("auth"), "1h")
    };
    create(&h, "shaped", shaped).await;
    let rev = format!("main@sha1:{first}");
    let obj = wait_until(&h, "shaped", "Ready", |o| is_ready_at(o, &rev)).await;
    let mut files = files_in(&download(&h, &obj).await);
    files.sort();
    assert_eq!(
        files,
        ["deploy/.sourceignore", "deploy/app.yaml", "deploy/logo.png"]
    );
    let status = obj.status.unwrap();
    assert_eq!(status.observed_sparse_checkout, Some(vec!["deploy".to_string()]));
    assert_eq!(
        status.observed_ignore.as_deref(),
        Some("/deploy/notes.txt\n!/deploy/logo.png\n")
    );

    // suspended: neither the interval nor a reconcile request fetches the new commit; resumed, it does
    let suspended = GitRepositorySpec {
        suspend: Some(true),
        ..spec(&url, "main", Some("auth"), "1s")
    };
    create(
        &h,
        "held",
        GitRepositorySpec {
            suspend: None,
            ..suspended.clone()
        },
    )
    .await;
    wait_until(&h, "held", "Ready", |o| is_ready_at(o, &rev)).await;
    create(&h, "held", suspended.clone()).await;
    let second = repo.commit(&[("deploy/app.yaml", "a: 2\n")], "second");
    request_reconcile(&h, "held", "while-suspended").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = h.api.get("held").await.unwrap().status.unwrap();
    assert_eq!(held.artifact.unwrap().revision, rev, "a suspended object fetched");
    create(
        &h,
        "held",
        GitRepositorySpec {
            suspend: Some(false),
            ..suspended
        },
    )
    .await;
    let rev2 = format!("main@sha1:{second}");
    wait_until(&h, "held", "the new commit once resumed", |o| {
        is_ready_at(o, &rev2)
    })
    .await;

    // a server that accepts and never answers: the spec's timeout ends the fetch, and says so
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/git/fleet.git", silent.local_addr().unwrap());
    let slow = GitRepositorySpec {
        timeout: Some("2s".into()),
        ..spec(&silent_url, "main", None, "1h")
    };
    let started = Instant::now();
    create(&h, "slow", slow).await;
    let (reason, message) = failed(&h, "slow", "the timeout").await;
    assert_eq!(reason, "GitOperationFailed");
    assert!(message.contains("timeout"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[tokio::test]
async fn a_stored_artifact_replaced_on_disk_is_rebuilt_and_never_served_as_good() {
    let h = start("git-tamper").await;
    let root = RepoRoot::default();
    let sha = root.repo("fleet").commit(&[("a.yaml", "a")], "first");
    let server = GitHttp::start(&root, "flux", "s3cret");
    secret(&h, "auth", json!({"username": "flux", "password": "s3cret"})).await;
    let rev = format!("main@sha1:{sha}");
    create(&h, "one", spec(&server.url("fleet"), "main", Some("auth"), "1h")).await;
    let one = wait_until(&h, "one", "one Ready", |o| is_ready_at(o, &rev)).await;
    let artifact = one.status.clone().unwrap().artifact.unwrap();
    // replaced on disk by something else
    let file = h.storage.path().join(&artifact.path);
    std::fs::write(&file, b"not the artifact").unwrap();

    let again = reconcile_now(&h, "one", "tampered").await;
    let rebuilt = again.status.clone().unwrap().artifact.unwrap();
    assert_eq!(
        rebuilt.digest, artifact.digest,
        "the same commit, the same bytes again"
    );
    assert!(is_ready_at(&again, &rev));
    let served = download(&h, &again).await;
    assert_eq!(
        format!("sha256:{}", hex::encode(Sha256::digest(&served))),
        artifact.digest,
        "what is served matches the digest"
    );
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(cluster().client().await, h.ns.name());
    let found = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("ArtifactVerificationFailed"))
        .expect("a warning event for the corrupted artifact");
    assert_eq!(found.type_.as_deref(), Some("Warning"));
    assert!(
        found.message.unwrap_or_default().contains(&artifact.digest),
        "the event names the expected digest"
    );
}
