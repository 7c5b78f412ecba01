//! A real OCI registry on loopback: Debian's `docker-registry` (distribution 2.8), plain HTTP, storage in
//! a temporary directory; stopped when dropped. Artifacts are pushed with the real clients: `oras` (in
//! Flux's format, [`Registry::push_flux`]) and `crane`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use tempfile::TempDir;

use crate::{free_port, tool, wait_for_port};

/// A running registry.
pub struct Registry {
    port: u16,
    child: Option<Child>,
    conf: std::path::PathBuf,
    _dir: TempDir,
    /// The user and password it requires, if any.
    pub login: Option<(String, String)>,
    /// The CA its helpers trust (a TLS registry).
    ca: Option<PathBuf>,
}

impl Registry {
    /// Starts one on a free port.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts one that requires basic auth with `user` and `password` (an htpasswd file made by the real
    /// `htpasswd -B`); its helpers log in.
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        Self::start_with(Some((user, password)))
    }

    /// Starts one serving HTTPS with `pki`'s server certificate (for `127.0.0.1`); its helpers trust
    /// `pki`'s CA.
    pub fn start_tls(pki: &crate::pki::Pki) -> Self {
        let mut registry = Self::start_with_conf(None, Some(pki));
        registry.ca = Some(pki.path("ca.crt"));
        registry
    }

    fn start_with(login: Option<(&str, &str)>) -> Self {
        Self::start_with_conf(login, None)
    }

    fn start_with_conf(login: Option<(&str, &str)>, tls: Option<&crate::pki::Pki>) -> Self {
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("driftless-registry-")
            .tempdir()
            .expect("a temp dir");
        let mut conf = format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\n\
             http: {{addr: 127.0.0.1:{port}}}\n",
            dir.path().join("data").display()
        );
        if let Some(pki) = tls {
            conf = conf.replace(
                &format!("http: {{addr: 127.0.0.1:{port}}}"),
                &format!(
                    "http: {{addr: 127.0.0.1:{port}, tls: {{certificate: {}, key: {}}}}}",
                    pki.path("server.crt").display(),
                    pki.path("server.key").display()
                ),
            );
        }
        if let Some((user, password)) = login {
            let users = dir.path().join("htpasswd");
            run(Command::new("htpasswd")
                .args(["-Bbc"])
                .arg(&users)
                .args([user, password]));
            conf.push_str(&format!(
                "auth: {{htpasswd: {{realm: driftless, path: {}}}}}\n",
                users.display()
            ));
        }
        let conf_path = dir.path().join("config.yml");
        fs::write(&conf_path, conf).expect("a registry config");
        let child = serve(&conf_path);
        let registry = Self {
            port,
            child: Some(child),
            conf: conf_path,
            _dir: dir,
            login: login.map(|(u, p)| (u.to_string(), p.to_string())),
            ca: None,
        };
        assert!(
            wait_for_port(port, 10),
            "docker-registry did not listen on 127.0.0.1:{port}"
        );
        registry
    }

    /// `127.0.0.1:<port>`, the host part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `oci://127.0.0.1:<port>/<repository>`.
    pub fn url(&self, repository: &str) -> String {
        format!("oci://{}/{repository}", self.host())
    }

    /// Where the registry keeps its blobs and manifests.
    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// Pushes `files` as `repository:tag` in Flux's format (`flux push artifact`: a
    /// `application/vnd.cncf.flux.config.v1+json` config and one `…flux.content.v1.tar+gzip` layer made
    /// by `tar czf`) with the manifest `annotations`, using `oras`; returns the manifest digest.
    pub fn push_flux(
        &self,
        repository: &str,
        tag: &str,
        files: &[(&str, &str)],
        annotations: &[(&str, &str)],
    ) -> String {
        let work = tempfile::tempdir().expect("a temp dir");
        let content = work.path().join("content");
        for (path, text) in files {
            let file = content.join(path);
            fs::create_dir_all(file.parent().expect("a parent")).expect("a directory");
            fs::write(file, text).expect("a file");
        }
        fs::create_dir_all(&content).expect("a directory");
        run(Command::new("tar")
            .args(["czf", "layer.tar.gz", "-C", "content", "."])
            .current_dir(work.path()));
        fs::write(work.path().join("config.json"), "{}").expect("a config");
        let mut oras = Command::new(tool("oras"));
        oras.args([
            "push",
            "--config",
            "config.json:application/vnd.cncf.flux.config.v1+json",
        ])
        .args(self.plain_http())
        .args(self.credentials())
        .current_dir(work.path());
        for (k, v) in annotations {
            oras.args(["--annotation", &format!("{k}={v}")]);
        }
        oras.arg(format!("{}/{repository}:{tag}", self.host()))
            .arg("layer.tar.gz:application/vnd.cncf.flux.content.v1.tar+gzip");
        run(&mut oras);
        self.digest(repository, tag)
    }

    /// Pushes the `.tar.gz` (or `.tar`) at `layer` as a one-layer Docker image `repository:tag` with
    /// `crane append`; returns the manifest digest.
    pub fn push_crane(&self, repository: &str, tag: &str, layer: &Path) -> String {
        let reference = format!("{}/{repository}:{tag}", self.host());
        run(Command::new(tool("crane"))
            .args(["append", "--insecure", "-f"])
            .arg(layer)
            .args(["-t", &reference]));
        self.digest(repository, tag)
    }

    /// The manifest digest of `repository:tag` (`oras resolve`).
    pub fn digest(&self, repository: &str, tag: &str) -> String {
        run(Command::new(tool("oras"))
            .args(["resolve", &format!("{}/{repository}:{tag}", self.host())])
            .args(self.plain_http())
            .args(self.credentials()))
        .trim()
        .to_string()
    }

    /// Runs `oras` with `args` against this registry's host (plain HTTP); returns its output.
    pub fn oras(&self, args: &[&str]) -> String {
        run(Command::new(tool("oras"))
            .args(args)
            .args(self.plain_http())
            .args(self.credentials()))
    }

    /// `--plain-http`, unless the registry speaks TLS.
    fn plain_http(&self) -> Vec<&'static str> {
        if self.ca.is_some() {
            Vec::new()
        } else {
            vec!["--plain-http"]
        }
    }

    /// `--username`/`--password` (and `--ca-file`) of `oras` when the registry requires them.
    fn credentials(&self) -> Vec<String> {
        let mut args = match &self.login {
            Some((u, p)) => vec!["--username".into(), u.clone(), "--password".into(), p.clone()],
            None => Vec::new(),
        };
        if let Some(ca) = &self.ca {
            args.extend(["--ca-file".into(), ca.display().to_string()]);
        }
        args
    }

    /// A docker config JSON with this registry's login (or `user`/`password` given), as a
    /// `kubernetes.io/dockerconfigjson` Secret holds it.
    pub fn docker_config(&self, user: &str, password: &str) -> String {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, self.host())
    }
}

/// Runs a command, panicking with its output when it fails; returns its standard output.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e} (run hack/tools.sh)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn serve(conf: &Path) -> Child {
    Command::new(tool("docker-registry"))
        .arg("serve")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting docker-registry (run hack/tools.sh)")
}

impl Registry {
    /// Stops the registry (its port then refuses connections), as a registry going down; its content
    /// stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Makes the registry notify `url` of every push (distribution's `notifications` endpoint, as a
    /// registry's webhook does), with the `Authorization` header `authorization`; restarts it, content
    /// kept. Pulls and blob uploads are not told, only manifests.
    pub fn notify(&mut self, url: &str, authorization: &str) {
        let mut conf = fs::read_to_string(&self.conf).expect("the registry config");
        let blobs = [
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.config.v1+json",
            "application/octet-stream",
        ]
        .join(", ");
        conf.push_str(&format!(
            "notifications: {{endpoints: [{{name: hook, url: \"{url}\", headers: {{Authorization: [\"{authorization}\"]}}, \
             timeout: 2s, threshold: 3, backoff: 200ms, ignore: {{actions: [pull], mediatypes: [{blobs}]}}}}]}}\n"
        ));
        fs::write(&self.conf, conf).expect("the registry config");
        self.stop();
        self.resume();
    }

    /// Starts a stopped registry again on the same port, with the same content.
    pub fn resume(&mut self) {
        if self.child.is_none() {
            self.child = Some(serve(&self.conf));
            assert!(
                wait_for_port(self.port, 10),
                "docker-registry did not come back on {}",
                self.port
            );
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
