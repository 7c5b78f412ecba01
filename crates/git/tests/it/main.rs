//! driftless-git against real Git servers on loopback (git http-backend behind lighttpd with basic auth,
//! sshd with a key and known_hosts).

use std::time::Duration;

use driftless_git::{Auth, Cache, Error, Options, Reference};
use driftless_testkit::git::{GitHttp, GitSsh, RepoRoot};

fn http_auth(server: &GitHttp) -> Auth {
    Auth {
        username: Some(server.username.clone()),
        password: Some(server.password.clone()),
        ..Default::default()
    }
}

fn opts<'a>(url: &'a str, auth: &'a Auth) -> Options<'a> {
    Options {
        url,
        auth,
        proxy: None,
        timeout: Duration::from_secs(30),
    }
}

#[test]
fn http_fetch_resolves_refs_and_checks_out_with_fluxs_revisions() {
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let first = repo.commit(
        &[
            ("deploy/app.yaml", "v: 1\n"),
            ("bin/run.sh", "#!/bin/sh\n"),
            ("docs/readme.md", "hi\n"),
        ],
        "first commit",
    );
    repo.tag("v1.0.0");
    let second = repo.commit(&[("deploy/app.yaml", "v: 2\n")], "second commit\n\nwith a body");
    repo.tag("v1.1.0");
    repo.branch("dev");
    let server = GitHttp::start(&root, "flux", "s3cret");
    let url = server.url("fleet");
    let auth = http_auth(&server);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());

    let heads = cache.ls_remote(opts(&url, &auth)).unwrap();
    let resolved = Reference::Branch("main".into()).resolve(&heads).unwrap().unwrap();
    assert_eq!(resolved.revision, format!("main@sha1:{second}"));

    let fetched = cache
        .fetch(opts(&url, &auth), &Reference::Branch("main".into()))
        .unwrap();
    assert_eq!(fetched, resolved, "ls-remote and fetch agree");
    let out = tempfile::tempdir().unwrap();
    let checkout = cache.checkout(&url, &fetched, out.path(), None, None).unwrap();
    assert_eq!(checkout.subject, "second commit");
    assert_eq!(
        std::fs::read_to_string(out.path().join("deploy/app.yaml")).unwrap(),
        "v: 2\n"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(out.path().join("bin/run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );

    let tag = cache
        .fetch(opts(&url, &auth), &Reference::Tag("v1.0.0".into()))
        .unwrap();
    assert_eq!(
        tag.revision,
        format!("v1.0.0@sha1:{first}"),
        "an annotated tag resolves to its commit"
    );
    let semver = cache
        .fetch(opts(&url, &auth), &Reference::Semver(">=1.0.0 <2.0.0".into()))
        .unwrap();
    assert_eq!(semver.revision, format!("v1.1.0@sha1:{second}"));
    let commit = cache
        .fetch(
            opts(&url, &auth),
            &Reference::Commit {
                sha: first.clone(),
                branch: Some("main".into()),
            },
        )
        .unwrap();
    assert_eq!(commit.revision, format!("main@sha1:{first}"));
    let bare = cache
        .fetch(
            opts(&url, &auth),
            &Reference::Commit {
                sha: first.clone(),
                branch: None,
            },
        )
        .unwrap();
    assert_eq!(bare.revision, format!("sha1:{first}"));
    let name = cache
        .fetch(opts(&url, &auth), &Reference::Name("refs/heads/dev".into()))
        .unwrap();
    assert_eq!(name.revision, format!("refs/heads/dev@sha1:{second}"));

    let sparse_out = tempfile::tempdir().unwrap();
    cache
        .checkout(&url, &tag, sparse_out.path(), Some(&["deploy".to_string()]), None)
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(sparse_out.path().join("deploy/app.yaml")).unwrap(),
        "v: 1\n"
    );
    assert!(!sparse_out.path().join("docs").exists() && !sparse_out.path().join("bin").exists());
}

#[test]
fn bad_credentials_missing_refs_and_dead_hosts_fail_with_what_to_fix() {
    let root = RepoRoot::default();
    root.repo("fleet").commit(&[("a.yaml", "a")], "first");
    let server = GitHttp::start(&root, "flux", "s3cret");
    let url = server.url("fleet");
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());

    let wrong = Auth {
        username: Some("flux".into()),
        password: Some("wrong".into()),
        ..Default::default()
    };
    let err = cache
        .fetch(opts(&url, &wrong), &Reference::Branch("main".into()))
        .unwrap_err();
    assert!(err.is_auth(), "{err}");
    let none = Auth::default();
    let err = cache.ls_remote(opts(&url, &none)).unwrap_err();
    assert!(err.is_auth(), "{err}");

    let auth = http_auth(&server);
    let err = cache
        .fetch(opts(&url, &auth), &Reference::Branch("nope".into()))
        .unwrap_err();
    assert!(matches!(err, Error::RefNotFound(_)), "{err}");
    assert!(err.to_string().contains("'nope'"), "{err}");
    let err = cache
        .fetch(opts(&url, &auth), &Reference::Semver(">=9".into()))
        .unwrap_err();
    assert_eq!(err.to_string(), "no match found for semver: >=9");

    let dead = format!(
        "http://127.0.0.1:{}/git/fleet.git",
        driftless_testkit::free_port()
    );
    let err = cache
        .fetch(opts(&dead, &auth), &Reference::Branch("main".into()))
        .unwrap_err();
    assert!(!err.is_auth() && err.to_string().contains(&dead), "{err}");
}

#[test]
fn ssh_fetch_needs_the_servers_host_key_in_known_hosts() {
    let root = RepoRoot::default();
    let sha = root.repo("fleet").commit(&[("a.yaml", "a")], "first");
    let server = GitSsh::start(&root);
    let url = server.url("fleet");
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());
    let auth = Auth {
        identity: Some(server.identity.clone()),
        known_hosts: Some(server.known_hosts.clone()),
        ..Default::default()
    };
    let resolved = cache
        .fetch(opts(&url, &auth), &Reference::Branch("main".into()))
        .unwrap();
    assert_eq!(resolved.commit, sha);
    let heads = cache.ls_remote(opts(&url, &auth)).unwrap();
    assert!(heads.iter().any(|(n, o)| n == "refs/heads/main" && *o == sha));

    let stranger = format!(
        "{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        server.known_hosts.split(' ').next().unwrap()
    );
    let wrong_host = Auth {
        known_hosts: Some(stranger),
        ..auth.clone()
    };
    let err = cache.ls_remote(opts(&url, &wrong_host)).unwrap_err();
    assert!(err.is_auth() && err.to_string().contains("known_hosts"), "{err}");
}

#[test]
fn submodules_are_fetched_with_the_parents_credentials_when_asked() {
    let root = RepoRoot::default();
    let lib = root.repo("lib");
    let lib_sha = lib.commit(&[("lib.yaml", "lib")], "lib");
    let app = root.repo("app");
    app.commit(&[("app.yaml", "app")], "app");
    let app_sha = app.add_submodule("../lib.git", "vendor/lib", "add lib");
    let server = GitHttp::start(&root, "flux", "s3cret");
    let url = server.url("app");
    let auth = http_auth(&server);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());
    let resolved = cache
        .fetch(opts(&url, &auth), &Reference::Branch("main".into()))
        .unwrap();
    assert_eq!(resolved.commit, app_sha);

    let without = tempfile::tempdir().unwrap();
    cache
        .checkout(&url, &resolved, without.path(), None, None)
        .unwrap();
    assert!(
        !without.path().join("vendor/lib/lib.yaml").exists(),
        "submodules only when asked"
    );

    let with = tempfile::tempdir().unwrap();
    cache
        .checkout(&url, &resolved, with.path(), None, Some(opts(&url, &auth)))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(with.path().join("vendor/lib/lib.yaml")).unwrap(),
        "lib"
    );
    let _ = lib_sha;
    assert_eq!(
        driftless_git::cache::resolve_relative_url("http://h/git/app.git", "../lib.git"),
        "http://h/git/lib.git"
    );
    assert_eq!(
        driftless_git::cache::resolve_relative_url("ssh://h/a/b/app", "../../c/lib"),
        "ssh://h/a/c/lib"
    );
    assert_eq!(
        driftless_git::cache::resolve_relative_url("http://h/app.git", "https://other/x.git"),
        "https://other/x.git"
    );
}

#[test]
fn https_with_the_secrets_ca_and_client_certificate_fetches_and_anything_else_is_refused() {
    use driftless_git::tls::Tls;
    use driftless_testkit::pki::Pki;
    let root = RepoRoot::default();
    let head = root.repo("fleet").commit(&[("a.yaml", "a: 1\n")], "first");
    let pki = Pki::new();
    let server = GitHttp::start_tls(&root, "flux", "s3cret", &pki, true);
    let url = server.url("fleet");
    assert!(url.starts_with("https://"), "{url}");
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());
    let with = |ca: Option<String>, client: Option<&Pki>| Auth {
        tls: Tls {
            ca: ca.map(String::into_bytes),
            cert: client.map(|p| p.pem("client.crt").into_bytes()),
            key: client.map(|p| p.pem("client.key").into_bytes()),
        },
        ..http_auth(&server)
    };
    let main = Reference::Branch("main".into());

    // the Secret's CA and a client certificate it signed: ls-remote, fetch and checkout work
    let good = with(Some(pki.pem("ca.crt")), Some(&pki));
    let heads = cache.ls_remote(opts(&url, &good)).unwrap();
    assert!(heads.iter().any(|(_, oid)| *oid == head), "{heads:?}");
    let fetched = cache.fetch(opts(&url, &good), &main).unwrap();
    assert_eq!(fetched.revision, format!("main@sha1:{head}"));
    let out = tempfile::tempdir().unwrap();
    cache.checkout(&url, &fetched, out.path(), None, None).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.path().join("a.yaml")).unwrap(),
        "a: 1\n"
    );

    // no CA: the platform's roots do not trust the server
    let err = cache.fetch(opts(&url, &http_auth(&server)), &main).unwrap_err();
    assert!(!matches!(err, Error::Auth { .. }), "{err}");
    // another CA: the server's certificate is refused, and the message says so
    let other = Pki::new();
    let err = cache
        .fetch(opts(&url, &with(Some(other.pem("ca.crt")), Some(&pki))), &main)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("connection to '{url}' failed")) && err.contains("certificate"),
        "{err}"
    );
    // the right CA without a client certificate, or with one the server's CA did not sign
    for client in [None, Some(&other)] {
        let err = cache
            .fetch(opts(&url, &with(Some(pki.pem("ca.crt")), client)), &main)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("connection to"), "{err}");
    }
    // a certificate without its key is a spec error that names both keys
    let half = Auth {
        tls: Tls {
            cert: Some(pki.pem("client.crt").into_bytes()),
            ..Default::default()
        },
        ..good.clone()
    };
    let err = cache.fetch(opts(&url, &half), &main).unwrap_err().to_string();
    assert!(err.contains("'tls.crt' and 'tls.key'"), "{err}");
    // wrong credentials through the bridge are still an authentication failure
    let wrong = Auth {
        password: Some("wrong".into()),
        ..good.clone()
    };
    assert!(matches!(
        cache.fetch(opts(&url, &wrong), &main).unwrap_err(),
        Error::Auth { .. }
    ));
}

#[test]
fn a_proxy_carries_http_and_https_fetches_and_a_wrong_one_fails() {
    use driftless_git::tls::Tls;
    use driftless_testkit::{pki::Pki, proxy::Proxy};
    let root = RepoRoot::default();
    let head = root.repo("fleet").commit(&[("a.yaml", "a")], "first");
    let plain = GitHttp::start(&root, "flux", "s3cret");
    let pki = Pki::new();
    let tls = GitHttp::start_tls(&root, "flux", "s3cret", &pki, false);
    let proxy = Proxy::start("gate", "k33per");
    let through = proxy.url().replace("http://", "http://gate:k33per@");
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());
    let main = Reference::Branch("main".into());
    let via = |url: &str, auth: &Auth, proxy: &str| {
        cache.fetch(
            Options {
                proxy: Some(proxy),
                ..opts(url, auth)
            },
            &main,
        )
    };

    // plain HTTP: libgit2 talks to the proxy
    let url = plain.url("fleet");
    let fetched = via(&url, &http_auth(&plain), &through).unwrap();
    assert_eq!(fetched.commit, head);
    let port = |u: &str| {
        u.split(':')
            .nth(2)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    assert!(proxy.log().contains(&port(&url)), "{}", proxy.log());

    // HTTPS with the Secret's CA: the TLS bridge tunnels through the proxy (CONNECT)
    let url = tls.url("fleet");
    let with_ca = Auth {
        tls: Tls {
            ca: Some(pki.pem("ca.crt").into_bytes()),
            ..Default::default()
        },
        ..http_auth(&tls)
    };
    assert_eq!(via(&url, &with_ca, &through).unwrap().commit, head);
    assert!(
        proxy.log().contains(&format!("127.0.0.1:{}", port(&url))),
        "{}",
        proxy.log()
    );

    // wrong proxy credentials, or no proxy listening: the fetch fails rather than going around it
    let wrong = proxy.url().replace("http://", "http://gate:nope@");
    let dead = format!("http://127.0.0.1:{}", driftless_testkit::free_port());
    for bad in [&wrong, &dead] {
        assert!(
            via(&plain.url("fleet"), &http_auth(&plain), bad).is_err(),
            "{bad}"
        );
        assert!(via(&url, &with_ca, bad).is_err(), "{bad} (https)");
    }
}

#[test]
fn a_bearer_token_lists_refs_and_fetches_and_a_wrong_one_is_refused() {
    let root = RepoRoot::default();
    let head = root.repo("fleet").commit(&[("a.yaml", "a")], "first");
    let server = GitHttp::start_bearer(&root, "t0ken");
    let url = server.url("fleet");
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());
    let bearer = |token: &str| Auth {
        bearer_token: Some(token.into()),
        ..Default::default()
    };
    let main = Reference::Branch("main".into());

    // libgit2 sends custom headers when fetching only: listing refs goes through the bridge
    let heads = cache.ls_remote(opts(&url, &bearer("t0ken"))).unwrap();
    let listed = main.resolve(&heads).unwrap().unwrap();
    assert_eq!(listed.revision, format!("main@sha1:{head}"));
    let fetched = cache.fetch(opts(&url, &bearer("t0ken")), &main).unwrap();
    assert_eq!(fetched, listed);

    for wrong in [bearer("nope"), Auth::default()] {
        let err = cache.ls_remote(opts(&url, &wrong)).unwrap_err().to_string();
        assert!(!err.contains("t0ken") && !err.contains("nope"), "{err}");
        assert!(cache.fetch(opts(&url, &wrong), &main).is_err());
    }
}

/// `git log -1 --format=<format> <rev>` in the bare repository `bare`.
fn git_log(bare: &std::path::Path, rev: &str, format: &str) -> String {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(["log", "-1", &format!("--format={format}"), rev])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_worktree_commits_what_changed_and_pushes_it_never_over_a_moved_branch() {
    use driftless_git::{Author, Worktree};
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let first = repo.commit(
        &[
            (
                "apps/app.yaml",
                "image: app:1.0.0 # {\"$imagepolicy\": \"a:app\"}\n",
            ),
            ("old.yaml", "x\n"),
        ],
        "first",
    );
    let server = GitHttp::start(&root, "flux", "s3cret");
    let url = server.url("fleet");
    let auth = http_auth(&server);
    let author = Author {
        name: "Flux Bot",
        email: "bot@example.com",
    };

    let dir = tempfile::tempdir().unwrap();
    let work = Worktree::clone(opts(&url, &auth), "main", &dir.path().join("w")).unwrap();
    assert_eq!(
        work.commit(&author, "nothing").unwrap(),
        None,
        "nothing changed, nothing committed"
    );
    std::fs::write(
        work.path().join("apps/app.yaml"),
        "image: app:1.1.0 # {\"$imagepolicy\": \"a:app\"}\n",
    )
    .unwrap();
    std::fs::write(work.path().join("apps/new.yaml"), "new\n").unwrap();
    std::fs::remove_file(work.path().join("old.yaml")).unwrap();
    let commit = work
        .commit(&author, "Update app to 1.1.0")
        .unwrap()
        .expect("a commit");
    work.push(opts(&url, &auth), "main").unwrap();
    assert_eq!(git_log(repo.bare(), "main", "%H"), commit);
    assert_eq!(
        git_log(repo.bare(), "main", "%P"),
        first,
        "on top of what was checked out"
    );
    assert_eq!(
        git_log(repo.bare(), "main", "%an <%ae>|%s"),
        "Flux Bot <bot@example.com>|Update app to 1.1.0"
    );
    let files = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo.bare())
        .args(["ls-tree", "-r", "--name-only", "main"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&files.stdout),
        "apps/app.yaml\napps/new.yaml\n",
        "the deletion too"
    );

    // to another branch, which the push creates
    work.push(opts(&url, &auth), "image-updates").unwrap();
    assert_eq!(git_log(repo.bare(), "image-updates", "%H"), commit);

    // someone pushes meanwhile: ours is not a fast-forward any more, and is refused, not forced
    let dir2 = tempfile::tempdir().unwrap();
    let stale = Worktree::clone(opts(&url, &auth), "main", &dir2.path().join("w")).unwrap();
    let other = Worktree::clone(opts(&url, &auth), "main", &dir2.path().join("other")).unwrap();
    std::fs::write(other.path().join("theirs.yaml"), "t\n").unwrap();
    let theirs = other.commit(&author, "theirs").unwrap().unwrap();
    other.push(opts(&url, &auth), "main").unwrap();
    std::fs::write(stale.path().join("apps/app.yaml"), "image: app:1.2.0\n").unwrap();
    stale
        .commit(&author, "Update app to 1.2.0")
        .unwrap()
        .expect("a commit");
    let err = stale.push(opts(&url, &auth), "main").unwrap_err();
    assert!(matches!(err, Error::Rejected(_)), "{err}");
    assert!(err.to_string().contains("not a fast-forward"), "{err}");
    assert_eq!(git_log(repo.bare(), "main", "%H"), theirs, "theirs stays");

    // bad credentials and a missing branch say what is wrong
    let wrong = Auth {
        password: Some("nope".into()),
        ..http_auth(&server)
    };
    let dir3 = tempfile::tempdir().unwrap();
    let err = Worktree::clone(opts(&url, &wrong), "main", &dir3.path().join("a"))
        .err()
        .unwrap();
    assert!(matches!(err, Error::Auth { .. }), "{err}");
    let err = Worktree::clone(opts(&url, &auth), "nope", &dir3.path().join("b"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("'nope'"), "{err}");
}

#[test]
fn a_push_over_https_uses_the_secrets_ca_and_client_certificate() {
    use driftless_git::{Author, Worktree, tls::Tls};
    use driftless_testkit::pki::Pki;
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    repo.commit(&[("a.yaml", "a: 1\n")], "first");
    let pki = Pki::new();
    let server = GitHttp::start_tls(&root, "flux", "s3cret", &pki, true);
    let url = server.url("fleet");
    let auth = Auth {
        tls: Tls {
            ca: Some(pki.pem("ca.crt").into_bytes()),
            cert: Some(pki.pem("client.crt").into_bytes()),
            key: Some(pki.pem("client.key").into_bytes()),
        },
        ..http_auth(&server)
    };
    let dir = tempfile::tempdir().unwrap();
    let work = Worktree::clone(opts(&url, &auth), "main", &dir.path().join("w")).unwrap();
    std::fs::write(work.path().join("a.yaml"), "a: 2\n").unwrap();
    let commit = work
        .commit(
            &Author {
                name: "bot",
                email: "bot@example.com",
            },
            "a: 2",
        )
        .unwrap()
        .unwrap();
    work.push(opts(&url, &auth), "main").unwrap();
    assert_eq!(git_log(repo.bare(), "main", "%H"), commit);
}

#[test]
fn a_worktree_at_a_tag_or_commit_commits_on_top_and_signs_detached() {
    use driftless_git::push::{Author, Worktree};
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let first = repo.commit(&[("a.yaml", "a: 1\n")], "first");
    repo.tag("v1.0.0");
    let second = repo.commit(&[("a.yaml", "a: 2\n")], "second");
    repo.tag("v1.1.0");
    repo.commit(&[("a.yaml", "a: 3\n")], "third");
    let server = GitHttp::start(&root, "flux", "s3cret");
    let url = server.url("fleet");
    let auth = http_auth(&server);
    let author = Author {
        name: "bot",
        email: "bot@example.com",
    };

    // the highest tag of a range, checked out detached, a signed commit on top, pushed to a new branch
    let dir = tempfile::tempdir().unwrap();
    let (work, resolved) = Worktree::clone_at(
        opts(&url, &auth),
        &Reference::Semver("1.0.x".into()),
        &dir.path().join("w"),
    )
    .unwrap();
    assert_eq!(resolved.revision, format!("v1.0.0@sha1:{first}"));
    assert_eq!(
        std::fs::read_to_string(work.path().join("a.yaml")).unwrap(),
        "a: 1\n"
    );
    std::fs::write(work.path().join("a.yaml"), "a: 10\n").unwrap();
    let key = driftless_testkit::git::GpgKey::generate("Bot <bot@example.com>");
    let exported = std::process::Command::new(driftless_testkit::tool("gpg"))
        .env("GNUPGHOME", key.home.path())
        .args(["--batch", "--armor", "--export-secret-keys", &key.fingerprint])
        .output()
        .unwrap();
    assert!(exported.status.success());
    let data = std::collections::BTreeMap::from([("git.asc".to_string(), exported.stdout)]);
    let signer = driftless_git::Signer::from_secret(&data, "test/signing").unwrap();
    let commit = work
        .commit_signed(&author, "on the tag", Some(&signer))
        .unwrap()
        .expect("a commit");
    assert_eq!(work.head().unwrap(), commit, "HEAD moved, detached");
    work.push_refspec(opts(&url, &auth), "+HEAD:refs/heads/from-tag")
        .unwrap();
    assert_eq!(
        git_log(repo.bare(), "from-tag", "%H %P"),
        format!("{commit} {first}")
    );
    let raw = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo.bare())
        .args(["cat-file", "commit", "from-tag"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&raw.stdout).contains("gpgsig -----BEGIN PGP SIGNATURE-----"));

    // a commit, and a tag by name
    let dir = tempfile::tempdir().unwrap();
    let (_, resolved) = Worktree::clone_at(
        opts(&url, &auth),
        &Reference::Commit {
            sha: second.clone(),
            branch: None,
        },
        &dir.path().join("w"),
    )
    .unwrap();
    assert_eq!(resolved.revision, format!("sha1:{second}"));
    let dir = tempfile::tempdir().unwrap();
    let (work, resolved) = Worktree::clone_at(
        opts(&url, &auth),
        &Reference::Tag("v1.1.0".into()),
        &dir.path().join("w"),
    )
    .unwrap();
    assert_eq!(resolved.revision, format!("v1.1.0@sha1:{second}"));
    assert_eq!(
        std::fs::read_to_string(work.path().join("a.yaml")).unwrap(),
        "a: 2\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let err = Worktree::clone_at(
        opts(&url, &auth),
        &Reference::Tag("v9".into()),
        &dir.path().join("w"),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("v9"), "{err}");
}
