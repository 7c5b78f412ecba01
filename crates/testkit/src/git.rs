//! Real Git on loopback: bare repositories with a helper to commit ([`Repo`]), served by `git daemon`
//! ([`GitDaemon`]), by `git http-backend` behind lighttpd with basic auth ([`GitHttp`]) and by sshd with a
//! key and known_hosts ([`GitSsh`]). Servers stop when dropped.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use tempfile::TempDir;

use crate::{free_port, tool, wait_for_port};

fn git(dir: &Path, args: &[&str]) -> String {
    git_env(dir, args, &[])
}

fn git_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> String {
    let out = Command::new("git")
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "driftless test")
        .env("GIT_AUTHOR_EMAIL", "test@driftless.io")
        .env("GIT_COMMITTER_NAME", "driftless test")
        .env("GIT_COMMITTER_EMAIL", "test@driftless.io")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A directory of bare repositories, the root every server below serves.
pub struct RepoRoot {
    dir: TempDir,
}

impl Default for RepoRoot {
    fn default() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("driftless-git-")
                .tempdir()
                .expect("a temp dir"),
        }
    }
}

impl RepoRoot {
    /// The directory holding `<name>.git`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A new bare repository `<name>.git` with default branch `main`, and a work tree to commit from.
    pub fn repo(&self, name: &str) -> Repo {
        let bare = self.dir.path().join(format!("{name}.git"));
        fs::create_dir_all(&bare).expect("a repo dir");
        git(&bare, &["init", "--quiet", "--bare", "--initial-branch=main"]);
        git(&bare, &["config", "http.receivepack", "true"]);
        let work = tempfile::Builder::new()
            .prefix("driftless-work-")
            .tempdir()
            .expect("a temp dir");
        git(work.path(), &["init", "--quiet", "--initial-branch=main"]);
        git(
            work.path(),
            &["remote", "add", "origin", bare.to_str().expect("a UTF-8 path")],
        );
        Repo { bare, work }
    }
}

/// A bare repository and a work tree whose commits are pushed to it.
pub struct Repo {
    bare: PathBuf,
    work: TempDir,
}

impl Repo {
    /// The bare repository.
    pub fn bare(&self) -> &Path {
        &self.bare
    }

    /// Writes `files` (path, content), commits them on `main` and pushes; returns the commit SHA-1. Files
    /// ending in `.sh` are executable.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let file = self.work.path().join(path);
            fs::create_dir_all(file.parent().expect("a file has a parent")).expect("a directory");
            fs::write(&file, content).expect("a file");
            if path.ends_with(".sh") {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).expect("an executable file");
            }
        }
        self.commit_all(message)
    }

    /// Removes `paths`, commits and pushes; returns the commit SHA-1.
    pub fn remove(&self, paths: &[&str], message: &str) -> String {
        for path in paths {
            let file = self.work.path().join(path);
            if file.is_dir() {
                fs::remove_dir_all(file)
            } else {
                fs::remove_file(file)
            }
            .expect("removing a file");
        }
        self.commit_all(message)
    }

    /// Like [`Repo::commit`], signed with `key`.
    pub fn commit_signed(&self, files: &[(&str, &str)], message: &str, key: &GpgKey) -> String {
        for (path, content) in files {
            let file = self.work.path().join(path);
            fs::create_dir_all(file.parent().expect("a file has a parent")).expect("a directory");
            fs::write(&file, content).expect("a file");
        }
        let signing = format!("user.signingkey={}", key.fingerprint);
        let env = [("GNUPGHOME", key.home.path())];
        git(self.work.path(), &["add", "--all"]);
        git_env(
            self.work.path(),
            &["-c", &signing, "commit", "--quiet", "-S", "-m", message],
            &env,
        );
        git(self.work.path(), &["push", "--quiet", "origin", "HEAD:main"]);
        git(self.work.path(), &["rev-parse", "HEAD"])
    }

    /// Adds the repository at `url` (relative to this one's remote, e.g. `../lib.git`) as a submodule at
    /// `path`, commits and pushes; returns the commit SHA-1.
    pub fn add_submodule(&self, url: &str, path: &str, message: &str) -> String {
        git(
            self.work.path(),
            &[
                "-c",
                "protocol.file.allow=always",
                "submodule",
                "add",
                "--quiet",
                url,
                path,
            ],
        );
        self.commit_all(message)
    }

    /// Tags the last commit with a tag signed by `key`, and pushes it.
    pub fn tag_signed(&self, name: &str, key: &GpgKey) {
        let signing = format!("user.signingkey={}", key.fingerprint);
        git_env(
            self.work.path(),
            &["-c", &signing, "tag", "-s", name, "-m", name],
            &[("GNUPGHOME", key.home.path())],
        );
        git(self.work.path(), &["push", "--quiet", "origin", name]);
    }

    fn commit_all(&self, message: &str) -> String {
        git(self.work.path(), &["add", "--all"]);
        git(
            self.work.path(),
            &["commit", "--quiet", "--allow-empty", "-m", message],
        );
        git(self.work.path(), &["push", "--quiet", "origin", "HEAD:main"]);
        git(self.work.path(), &["rev-parse", "HEAD"])
    }

    /// `git revert` of the last commit, pushed; returns the new commit's SHA-1.
    pub fn revert_last(&self) -> String {
        git(self.work.path(), &["revert", "--no-edit", "HEAD"]);
        git(self.work.path(), &["push", "--quiet", "origin", "HEAD:main"]);
        git(self.work.path(), &["rev-parse", "HEAD"])
    }

    /// Tags the last commit (annotated) and pushes the tag.
    pub fn tag(&self, name: &str) {
        git(self.work.path(), &["tag", "-a", name, "-m", name]);
        git(self.work.path(), &["push", "--quiet", "origin", name]);
    }

    /// Creates and pushes `branch` at the last commit.
    pub fn branch(&self, branch: &str) {
        git(
            self.work.path(),
            &["push", "--quiet", "origin", &format!("HEAD:refs/heads/{branch}")],
        );
    }
}

/// A child process killed when dropped.
pub(crate) struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn spawn(cmd: &mut Command, what: &str, port: u16) -> Server {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let server = Server(child);
    assert!(
        wait_for_port(port, 10),
        "{what} did not listen on 127.0.0.1:{port} within 10s"
    );
    server
}

/// `git daemon` serving a [`RepoRoot`] read-write on `git://127.0.0.1:<port>/<name>.git`.
pub struct GitDaemon {
    port: u16,
    _server: Server,
}

impl GitDaemon {
    /// Starts it.
    pub fn start(root: &RepoRoot) -> Self {
        let port = free_port();
        let base = format!("--base-path={}", root.path().display());
        // NB: git-daemon itself, not `git daemon`, which forks it and would outlive a kill
        let exec_path = git(root.path(), &["--exec-path"]);
        let server = spawn(
            Command::new(Path::new(&exec_path).join("git-daemon")).args([
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                &base,
                "--listen=127.0.0.1",
                &format!("--port={port}"),
            ]),
            "git daemon",
            port,
        );
        Self {
            port,
            _server: server,
        }
    }

    /// The URL of the repository `name`.
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}.git", self.port)
    }
}

/// `git http-backend` behind lighttpd, with basic auth, serving a [`RepoRoot`] on
/// `http://127.0.0.1:<port>/git/<name>.git`, or over HTTPS ([`GitHttp::start_tls`]).
pub struct GitHttp {
    port: u16,
    scheme: &'static str,
    /// The user basic auth accepts.
    pub username: String,
    /// Its password.
    pub password: String,
    access_log: PathBuf,
    conf: PathBuf,
    _dir: TempDir,
    server: Option<Server>,
}

impl GitHttp {
    /// Stops the server (its port then refuses connections), as a Git host going down.
    pub fn stop(&mut self) {
        self.server = None;
    }

    /// Starts a stopped server again on the same port.
    pub fn resume(&mut self) {
        if self.server.is_none() {
            self.server = Some(spawn(
                Command::new(tool("lighttpd")).arg("-D").arg("-f").arg(&self.conf),
                "lighttpd",
                self.port,
            ));
        }
    }

    /// Starts it with the credentials `username`/`password`.
    pub fn start(root: &RepoRoot, username: &str, password: &str) -> Self {
        Self::start_with(root, username, password, None)
    }

    /// Starts it over HTTPS with `pki`'s server certificate; with `client_certs`, a client certificate
    /// signed by `pki`'s CA is required.
    pub fn start_tls(
        root: &RepoRoot,
        username: &str,
        password: &str,
        pki: &crate::pki::Pki,
        client_certs: bool,
    ) -> Self {
        Self::start_with(root, username, password, Some((pki, client_certs)))
    }

    /// Starts it requiring `Authorization: Bearer <token>` instead of basic auth (others get 403).
    pub fn start_bearer(root: &RepoRoot, token: &str) -> Self {
        let mut server = Self::start_with(root, "", token, None);
        server.username.clear();
        server
    }

    /// Basic auth with `username`/`password`; with an empty `username`, `password` is a bearer token.
    fn start_with(
        root: &RepoRoot,
        username: &str,
        password: &str,
        tls: Option<(&crate::pki::Pki, bool)>,
    ) -> Self {
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("driftless-lighttpd-")
            .tempdir()
            .expect("a temp dir");
        let users = dir.path().join("users");
        fs::write(&users, format!("{username}:{password}\n")).expect("a users file");
        let backend = tool("git-http-backend");
        let tls_conf = match tls {
            None => String::new(),
            Some((pki, client_certs)) => {
                let mut c = format!(
                    "server.modules += (\"mod_openssl\")\nssl.engine = \"enable\"\nssl.pemfile = \"{}\"\nssl.privkey = \"{}\"\n",
                    pki.path("server.crt").display(),
                    pki.path("server.key").display()
                );
                if client_certs {
                    c += &format!(
                        "ssl.ca-file = \"{}\"\nssl.verifyclient.activate = \"enable\"\nssl.verifyclient.enforce = \"enable\"\n",
                        pki.path("ca.crt").display()
                    );
                }
                c
            }
        };
        let access = if username.is_empty() {
            format!(
                "$REQUEST_HEADER[\"Authorization\"] != \"Bearer {password}\" {{\n    url.access-deny = (\"\")\n  }}"
            )
        } else {
            format!(
                "auth.backend = \"plain\"\n  auth.backend.plain.userfile = \"{}\"\n  \
                 auth.require = (\"/git/\" => (\"method\" => \"basic\", \"realm\" => \"git\", \"require\" => \"valid-user\"))",
                users.display()
            )
        };
        let conf = format!(
            r#"server.modules = ("mod_access", "mod_auth", "mod_authn_file", "mod_alias", "mod_cgi", "mod_setenv", "mod_accesslog")
{tls_conf}
accesslog.filename = "{dir}/access.log"
accesslog.format = "%r %>s"
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{root}"
server.errorlog = "{dir}/error.log"
alias.url = ("/git/" => "{backend}/")
$HTTP["url"] =~ "^/git/" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "1")
  {access}
}}
"#,
            root = root.path().display(),
            dir = dir.path().display(),
            backend = backend.display(),
        );
        let conf_path = dir.path().join("lighttpd.conf");
        fs::write(&conf_path, conf).expect("a lighttpd config");
        let server = spawn(
            Command::new(tool("lighttpd")).arg("-D").arg("-f").arg(&conf_path),
            "lighttpd",
            port,
        );
        Self {
            port,
            scheme: if tls.is_some() { "https" } else { "http" },
            access_log: dir.path().join("access.log"),
            username: username.into(),
            password: password.into(),
            conf: conf_path,
            _dir: dir,
            server: Some(server),
        }
    }

    /// The URL of the repository `name` (without credentials).
    pub fn url(&self, name: &str) -> String {
        format!("{}://127.0.0.1:{}/git/{name}.git", self.scheme, self.port)
    }

    /// The requests served so far, `METHOD /path HTTP/1.1 status` each (lighttpd writes its access log
    /// in batches: wait for the line you expect before counting others).
    pub fn requests(&self) -> Vec<String> {
        fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// sshd on loopback serving a [`RepoRoot`] over SSH as `root`, with a generated client key and the
/// known_hosts line of its host key.
pub struct GitSsh {
    port: u16,
    root: PathBuf,
    /// The client's private key (OpenSSH format), as a Secret's `identity`.
    pub identity: String,
    /// The client's public key.
    pub identity_pub: String,
    /// A known_hosts line for the server, as a Secret's `known_hosts`.
    pub known_hosts: String,
    _dir: TempDir,
    _server: Server,
}

impl GitSsh {
    /// Starts it.
    pub fn start(root: &RepoRoot) -> Self {
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("driftless-sshd-")
            .tempdir()
            .expect("a temp dir");
        let keygen = |name: &str| {
            let path = dir.path().join(name);
            let out = Command::new(tool("ssh-keygen"))
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "driftless-test", "-f"])
                .arg(&path)
                .output()
                .expect("ssh-keygen runs");
            assert!(
                out.status.success(),
                "ssh-keygen: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            path
        };
        let host_key = keygen("host_key");
        let client_key = keygen("client_key");
        let authorized = dir.path().join("authorized_keys");
        fs::copy(client_key.with_extension("pub"), &authorized).expect("authorized_keys");
        fs::create_dir_all("/run/sshd").expect("sshd's privilege separation directory");
        let conf = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {auth}\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile {dir}/sshd.pid\n\
             LogLevel ERROR\n",
            host = host_key.display(),
            auth = authorized.display(),
            dir = dir.path().display(),
        );
        let conf_path = dir.path().join("sshd_config");
        fs::write(&conf_path, conf).expect("an sshd config");
        let server = spawn(
            Command::new(tool("sshd"))
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&conf_path),
            "sshd",
            port,
        );
        let host_pub = fs::read_to_string(host_key.with_extension("pub")).expect("the host public key");
        let mut parts = host_pub.split_whitespace();
        let known_hosts = format!(
            "[127.0.0.1]:{port} {} {}",
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        );
        Self {
            port,
            root: root.path().to_path_buf(),
            identity: fs::read_to_string(&client_key).expect("the client key"),
            identity_pub: fs::read_to_string(client_key.with_extension("pub"))
                .expect("the client public key"),
            known_hosts,
            _dir: dir,
            _server: server,
        }
    }

    /// The URL of the repository `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "ssh://root@127.0.0.1:{}{}/{name}.git",
            self.port,
            self.root.display()
        )
    }
}

/// An OpenPGP signing key made by the real `gpg`, in its own GNUPGHOME.
pub struct GpgKey {
    /// The GNUPGHOME holding it.
    pub home: TempDir,
    /// Its fingerprint.
    pub fingerprint: String,
    /// Its ASCII-armored public key, as a verification Secret holds it.
    pub public_armored: String,
}

impl GpgKey {
    /// Generates an ed25519 signing key without passphrase for `uid` ("Name <email>").
    pub fn generate(uid: &str) -> Self {
        let home = tempfile::Builder::new()
            .prefix("driftless-gnupg-")
            .tempdir()
            .expect("a temp dir");
        let gpg = |args: &[&str]| {
            let out = Command::new(tool("gpg"))
                .env("GNUPGHOME", home.path())
                .args(["--batch", "--yes"])
                .args(args)
                .output()
                .expect("gpg runs");
            assert!(
                out.status.success(),
                "gpg {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        gpg(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "ed25519",
            "sign",
            "never",
        ]);
        let listing = gpg(&["--with-colons", "--list-keys", uid]);
        let fingerprint = listing
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("a fingerprint")
            .to_string();
        let public_armored = gpg(&["--armor", "--export", &fingerprint]);
        Self {
            home,
            fingerprint,
            public_armored,
        }
    }
}
