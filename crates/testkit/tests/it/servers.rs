use std::process::Command;

use driftless_testkit::{
    git::{GitDaemon, GitHttp, GitSsh, RepoRoot},
    registry::Registry,
    tool,
};

fn ls_remote(url: &str, env: &[(&str, String)]) -> (bool, String) {
    let out = Command::new("git")
        .args(["ls-remote", url])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn git_http_serves_with_basic_auth_only() {
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let sha = repo.commit(&[("apps/cm.yaml", "kind: ConfigMap\n")], "first");
    let server = GitHttp::start(&root, "flux", "s3cret");
    let url = server.url("fleet");
    let with_creds = url.replace("http://", "http://flux:s3cret@");
    let (ok, out) = ls_remote(&with_creds, &[]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{sha}\trefs/heads/main")), "{out}");
    let (ok, out) = ls_remote(&url, &[]);
    assert!(!ok, "anonymous access must be refused: {out}");
    let (ok, _) = ls_remote(&url.replace("http://", "http://flux:wrong@"), &[]);
    assert!(!ok, "a wrong password must be refused");
}

#[test]
fn git_http_with_a_bearer_token_serves_that_token_only() {
    let root = RepoRoot::default();
    let sha = root.repo("fleet").commit(&[("a.yaml", "a")], "first");
    let server = GitHttp::start_bearer(&root, "t0ken");
    let url = server.url("fleet");
    let header = |value: &str| {
        vec![
            ("GIT_CONFIG_COUNT", "1".to_string()),
            ("GIT_CONFIG_KEY_0", "http.extraHeader".to_string()),
            ("GIT_CONFIG_VALUE_0", format!("Authorization: {value}")),
        ]
    };
    let (ok, out) = ls_remote(&url, &header("Bearer t0ken"));
    assert!(ok && out.contains(&sha), "{out}");
    for refused in ["Bearer other", "Basic Zmx1eDpzM2NyZXQ="] {
        let (ok, out) = ls_remote(&url, &header(refused));
        assert!(!ok, "{refused} must be refused: {out}");
    }
    let (ok, _) = ls_remote(&url, &[]);
    assert!(!ok, "anonymous access must be refused");
}

#[test]
fn git_https_needs_the_ca_and_a_client_certificate() {
    let root = RepoRoot::default();
    let sha = root.repo("fleet").commit(&[("a.yaml", "a")], "first");
    let pki = driftless_testkit::pki::Pki::new();
    let server = GitHttp::start_tls(&root, "flux", "s3cret", &pki, true);
    let url = server.url("fleet").replace("https://", "https://flux:s3cret@");
    let ca = ("GIT_SSL_CAINFO", pki.path("ca.crt").display().to_string());
    let cert = ("GIT_SSL_CERT", pki.path("client.crt").display().to_string());
    let key = ("GIT_SSL_KEY", pki.path("client.key").display().to_string());
    let (ok, out) = ls_remote(&url, &[ca.clone(), cert, key]);
    assert!(ok && out.contains(&sha), "{out}");
    let (ok, out) = ls_remote(&url, &[ca]);
    assert!(!ok, "a missing client certificate must be refused: {out}");
    let (ok, out) = ls_remote(&url, &[]);
    assert!(!ok, "an unknown CA must be refused: {out}");
}

#[test]
fn git_ssh_serves_with_the_client_key_and_known_hosts() {
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let sha = repo.commit(&[("README.md", "hi\n")], "first");
    let server = GitSsh::start(&root);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    std::fs::write(&key, &server.identity).unwrap();
    let mut perms = std::fs::metadata(&key).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&key, perms).unwrap();
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, format!("{}\n", server.known_hosts)).unwrap();
    let ssh = format!(
        "{} -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
        tool("ssh").display(),
        key.display(),
        known.display()
    );
    let (ok, out) = ls_remote(&server.url("fleet"), &[("GIT_SSH_COMMAND", ssh.clone())]);
    assert!(ok, "{out}");
    assert!(out.contains(&sha), "{out}");
    // a host key that is not the server's is refused
    std::fs::write(
        &known,
        format!(
            "{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
            server.known_hosts.split(' ').next().unwrap()
        ),
    )
    .unwrap();
    let (ok, _) = ls_remote(&server.url("fleet"), &[("GIT_SSH_COMMAND", ssh)]);
    assert!(!ok, "an unknown host key must be refused");
}

#[test]
fn git_daemon_serves_clones() {
    let root = RepoRoot::default();
    let repo = root.repo("fleet");
    let sha = repo.commit(&[("a.txt", "a")], "first");
    repo.tag("v1.0.0");
    let server = GitDaemon::start(&root);
    let (ok, out) = ls_remote(&server.url("fleet"), &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("{sha}\trefs/heads/main")) && out.contains("refs/tags/v1.0.0"),
        "{out}"
    );
}

#[test]
fn registry_stores_and_serves_artifacts() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.yaml"), "kind: ConfigMap\n").unwrap();
    let reference = format!("{}/manifests/app:v1", registry.host());
    let push = Command::new(tool("oras"))
        .current_dir(dir.path())
        .args(["push", "--plain-http", &reference, "app.yaml"])
        .output()
        .unwrap();
    assert!(push.status.success(), "{}", String::from_utf8_lossy(&push.stderr));
    let out = dir.path().join("out");
    let pull = Command::new(tool("oras"))
        .args(["pull", "--plain-http", &reference, "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(pull.status.success(), "{}", String::from_utf8_lossy(&pull.stderr));
    assert_eq!(
        std::fs::read_to_string(out.join("app.yaml")).unwrap(),
        "kind: ConfigMap\n"
    );
}
