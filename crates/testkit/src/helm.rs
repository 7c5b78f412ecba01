//! A real HTTP Helm chart repository on loopback: charts made by the real `helm create` and
//! `helm package`, the index by `helm repo index`, served by lighttpd (with basic auth when asked);
//! stopped when dropped.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;

use crate::{
    free_port,
    git::{Server, spawn},
    tool,
};

/// A running chart repository.
pub struct ChartRepo {
    port: u16,
    scheme: &'static str,
    dir: TempDir,
    server: Option<Server>,
}

impl ChartRepo {
    /// Starts an empty one; with `auth`, every request needs basic auth with that user and password.
    pub fn start(auth: Option<(&str, &str)>) -> Self {
        Self::start_with(auth, None)
    }

    /// Starts an empty one over HTTPS with `pki`'s server certificate.
    pub fn start_tls(pki: &crate::pki::Pki) -> Self {
        Self::start_with(None, Some(pki))
    }

    fn start_with(auth: Option<(&str, &str)>, tls: Option<&crate::pki::Pki>) -> Self {
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("driftless-charts-")
            .tempdir()
            .expect("a temp dir");
        let root = dir.path().join("charts");
        fs::create_dir_all(&root).expect("a charts directory");
        let access = match auth {
            Some((user, password)) => {
                let users = dir.path().join("users");
                fs::write(&users, format!("{user}:{password}\n")).expect("a users file");
                format!(
                    "auth.backend = \"plain\"\nauth.backend.plain.userfile = \"{}\"\n\
                     auth.require = (\"/\" => (\"method\" => \"basic\", \"realm\" => \"charts\", \"require\" => \"valid-user\"))\n",
                    users.display()
                )
            }
            None => String::new(),
        };
        let tls_conf = match tls {
            Some(pki) => format!(
                "server.modules += (\"mod_openssl\")\nssl.engine = \"enable\"\nssl.pemfile = \"{}\"\nssl.privkey = \"{}\"\n",
                pki.path("server.crt").display(),
                pki.path("server.key").display()
            ),
            None => String::new(),
        };
        let conf = format!(
            r#"server.modules = ("mod_access", "mod_auth", "mod_authn_file", "mod_accesslog")
{tls_conf}
accesslog.filename = "{dir}/access.log"
accesslog.format = "%r %>s"
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{root}"
server.errorlog = "{dir}/error.log"
mimetype.assign = (".yaml" => "text/yaml", ".tgz" => "application/gzip")
server.stat-cache-engine = "disable"
{access}"#,
            dir = dir.path().display(),
            root = root.display(),
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
            dir,
            server: Some(server),
        }
    }

    /// Stops the server (its port then refuses connections), as a chart repository going down.
    pub fn stop(&mut self) {
        self.server = None;
    }

    /// Starts a stopped server again on the same port.
    pub fn resume(&mut self) {
        if self.server.is_none() {
            let conf = self.dir.path().join("lighttpd.conf");
            self.server = Some(spawn(
                Command::new(tool("lighttpd")).arg("-D").arg("-f").arg(&conf),
                "lighttpd",
                self.port,
            ));
        }
    }

    /// `http://127.0.0.1:<port>` (`https://` over TLS).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// The directory served (charts and `index.yaml`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("charts")
    }

    /// Makes the chart `name` at `version` with `helm create` (with the `extra` files written into
    /// it), packages it into the repository and indexes it again; returns the archive's path.
    pub fn add_chart(&self, name: &str, version: &str, extra: &[(&str, &str)]) -> PathBuf {
        let work = tempfile::tempdir().expect("a temp dir");
        let chart = create_chart(work.path(), name, version, extra);
        helm(
            Command::new(tool("helm"))
                .arg("package")
                .arg(&chart)
                .arg("-d")
                .arg(self.root()),
        );
        self.reindex();
        self.root().join(format!("{name}-{version}.tgz"))
    }

    /// Runs `helm repo index` over the repository (chart URLs relative to it).
    pub fn reindex(&self) {
        helm(
            Command::new(tool("helm"))
                .args(["repo", "index"])
                .arg(self.root()),
        );
    }

    /// The requests served so far, `METHOD /path HTTP/1.1 status` each.
    pub fn requests(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// `helm create <name>` in `dir`, at `version`, with the `extra` files written into it (paths relative
/// to the chart); returns the chart directory.
pub fn create_chart(dir: &Path, name: &str, version: &str, extra: &[(&str, &str)]) -> PathBuf {
    helm(
        Command::new(tool("helm"))
            .arg("create")
            .arg(name)
            .current_dir(dir),
    );
    let chart = dir.join(name);
    let meta = chart.join("Chart.yaml");
    let text = fs::read_to_string(&meta).expect("Chart.yaml");
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("version:") {
                format!("version: {version}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(&meta, text + "\n").expect("Chart.yaml");
    for (path, text) in extra {
        let file = chart.join(path);
        fs::create_dir_all(file.parent().expect("a parent")).expect("a directory");
        fs::write(file, text).expect("an extra chart file");
    }
    chart
}

/// Runs `helm`, panicking with its output when it fails; returns its standard output.
pub fn helm(cmd: &mut Command) -> String {
    let out = cmd
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("driftless-helm-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("driftless-helm-config"),
        )
        .env("HELM_DATA_HOME", std::env::temp_dir().join("driftless-helm-data"))
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
