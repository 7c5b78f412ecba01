//! The one narrow interface to the real `helm` v3 binary, as Argo CD drives its tools: release actions
//! (install, upgrade, rollback, uninstall, test) and the release history, against a private kubeconfig
//! written from the controller's client configuration (impersonating a tenant with `--kube-as-user`).
//! Releases are Helm's own release Secrets, so `helm list`, `helm history` and `helm rollback` keep
//! working for users. Values go to helm through a private file, never on its command line, and helm's
//! output is never logged with them.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use base64::Engine;
use serde::Deserialize;
use tokio::process::Command;

/// A helm action that failed: helm's own message (its stderr, trimmed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

/// One revision of a release, as `helm history -o json` lists it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Revision {
    /// The release revision.
    pub revision: i64,
    /// When it was made.
    pub updated: String,
    /// `deployed`, `failed`, `superseded`, `pending-install`…
    pub status: String,
    /// `<name>-<version>`.
    pub chart: String,
    /// The app version.
    #[serde(default)]
    pub app_version: String,
    /// What happened.
    #[serde(default)]
    pub description: String,
}

/// A release: its name, the namespace its objects go to (helm's `-n`, `.Release.Namespace`) and the
/// namespace its release Secrets are kept in (Flux's `storageNamespace`, [`crate::storage`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    /// The release name.
    pub name: String,
    /// Where its objects go.
    pub namespace: String,
    /// Where its release Secrets are kept.
    pub storage: String,
}

/// The helm binary with a kubeconfig, and a client of the same cluster for the release's storage.
pub struct Helm {
    bin: PathBuf,
    dir: tempfile::TempDir,
    as_user: Option<String>,
    client: kube::Client,
}

/// What an install or upgrade needs.
pub struct Action<'a> {
    /// The release.
    pub release: &'a Release,
    /// The chart archive.
    pub chart: &'a Path,
    /// The values, as YAML.
    pub values: &'a [u8],
    /// `--timeout`.
    pub timeout: Duration,
    /// Extra flags (`--wait`, `--create-namespace`, `--force`…).
    pub flags: Vec<String>,
    /// The post-renderer executable and what it renders ([`crate::postrender`]).
    pub post_render: Option<(&'a Path, &'a crate::postrender::Spec)>,
}

impl Helm {
    /// `bin` talking to the cluster of `config`, as `as_user` when given (a tenant's ServiceAccount);
    /// `client` (the same cluster, as the same user) moves release Secrets to and from their storage.
    pub fn new(
        bin: &Path,
        config: &kube::Config,
        as_user: Option<String>,
        client: kube::Client,
    ) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("helm-").tempdir()?;
        let kubeconfig = kubeconfig(config)?;
        let path = dir.path().join("kubeconfig");
        write_private(&path, kubeconfig.as_bytes())?;
        Ok(Self {
            bin: bin.to_path_buf(),
            dir,
            as_user,
            client,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            // helm's caches and configuration in the private directory, never the process's home
            .env("HELM_CACHE_HOME", self.dir.path().join("cache"))
            .env("HELM_CONFIG_HOME", self.dir.path().join("config"))
            .env("HELM_DATA_HOME", self.dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(user) = &self.as_user {
            cmd.arg("--kube-as-user").arg(user);
        }
        cmd
    }

    async fn run(&self, args: &[&str], bound: Duration) -> Result<String, Failed> {
        let mut cmd = self.command(args);
        let output = tokio::time::timeout(bound, cmd.output())
            .await
            .map_err(|_| Failed(format!("helm {} did not finish within {bound:?}", args[0])))?
            .map_err(|e| Failed(format!("running helm: {e} (install helm v3: hack/tools.sh)")))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).to_string())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(Failed(stderr.trim().trim_start_matches("Error: ").to_string()))
        }
    }

    /// Runs `action`, which changes `release`, with its Secrets in its namespace, where helm looks for
    /// them; they go back to their storage namespace after, whatever the outcome.
    async fn in_place<T>(
        &self,
        release: &Release,
        action: impl std::future::Future<Output = Result<T, Failed>>,
    ) -> Result<T, Failed> {
        if release.storage == release.namespace {
            return action.await;
        }
        crate::storage::move_release(&self.client, &release.name, &release.storage, &release.namespace)
            .await
            .map_err(|e| {
                Failed(format!(
                    "failed to move the release's Secrets from storage namespace '{}' to '{}': {e}",
                    release.storage, release.namespace
                ))
            })?;
        let result = action.await;
        match (self.restore(release).await, result) {
            (Ok(()), result) => result,
            (Err(Failed(e)), Ok(_)) => Err(Failed(e)),
            (Err(Failed(e)), Err(Failed(failed))) => Err(Failed(format!("{failed}; {e}"))),
        }
    }

    /// Moves the release's Secrets back to its storage namespace from its namespace, where an action cut
    /// short may have left them.
    pub async fn restore(&self, release: &Release) -> Result<(), Failed> {
        crate::storage::move_release(&self.client, &release.name, &release.namespace, &release.storage)
            .await
            .map(|_| ())
            .map_err(|e| {
                Failed(format!(
                    "failed to move the release's Secrets back to storage namespace '{}': {e}",
                    release.storage
                ))
            })
    }

    /// The release's history, newest last; empty when there is no release.
    pub async fn history(&self, release: &Release) -> Result<Vec<Revision>, Failed> {
        match self
            .run(
                &[
                    "history",
                    &release.name,
                    "-n",
                    &release.storage,
                    "-o",
                    "json",
                    "--max",
                    "20",
                ],
                Duration::from_secs(60),
            )
            .await
        {
            Ok(out) => serde_json::from_str(&out).map_err(|e| Failed(format!("reading helm history: {e}"))),
            Err(Failed(m)) if m.contains("release: not found") => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `helm install` (`upgrade: false`) or `helm upgrade` of `action`.
    pub async fn release(&self, action: &Action<'_>, upgrade: bool) -> Result<(), Failed> {
        let values = self.dir.path().join("values.yaml");
        write_private(&values, action.values).map_err(|e| Failed(format!("writing values: {e}")))?;
        let chart = action.chart.to_string_lossy().to_string();
        let values = values.to_string_lossy().to_string();
        let timeout = format!("{}s", action.timeout.as_secs().max(1));
        let mut args = vec![
            if upgrade { "upgrade" } else { "install" },
            &action.release.name,
            &chart,
            "-n",
            &action.release.namespace,
            "-f",
            &values,
            "--timeout",
            &timeout,
        ];
        args.extend(action.flags.iter().map(String::as_str));
        let spec_path = self.dir.path().join("post-render.json");
        let (renderer, spec_arg);
        if let Some((bin, spec)) = action.post_render {
            let json = serde_json::to_vec(spec).expect("the post-render spec serialises");
            write_private(&spec_path, &json)
                .map_err(|e| Failed(format!("writing the post-render spec: {e}")))?;
            renderer = bin.to_string_lossy().to_string();
            spec_arg = spec_path.to_string_lossy().to_string();
            args.extend([
                "--post-renderer",
                &renderer,
                "--post-renderer-args",
                crate::postrender::SUBCOMMAND,
                "--post-renderer-args",
                &spec_arg,
            ]);
        }
        let result = self
            .in_place(
                action.release,
                self.run(&args, action.timeout + Duration::from_secs(60)),
            )
            .await;
        let _ = std::fs::remove_file(self.dir.path().join("values.yaml"));
        let _ = std::fs::remove_file(&spec_path);
        result.map(|_| ())
    }

    /// `helm rollback` to `revision` (0: the previous one).
    pub async fn rollback(
        &self,
        release: &Release,
        revision: i64,
        timeout: Duration,
        flags: &[String],
    ) -> Result<(), Failed> {
        let revision = revision.to_string();
        let timeout_flag = format!("{}s", timeout.as_secs().max(1));
        let mut args = vec![
            "rollback",
            &release.name,
            &revision,
            "-n",
            &release.namespace,
            "--timeout",
            &timeout_flag,
        ];
        args.extend(flags.iter().map(String::as_str));
        self.in_place(release, self.run(&args, timeout + Duration::from_secs(60)))
            .await
            .map(|_| ())
    }

    /// `helm uninstall`, deleting with the `cascade` propagation when given (`background`, `foreground`,
    /// `orphan`).
    pub async fn uninstall(
        &self,
        release: &Release,
        keep_history: bool,
        timeout: Duration,
        cascade: Option<&str>,
    ) -> Result<(), Failed> {
        let timeout_flag = format!("{}s", timeout.as_secs().max(1));
        let mut args = vec![
            "uninstall",
            &release.name,
            "-n",
            &release.namespace,
            "--timeout",
            &timeout_flag,
        ];
        if keep_history {
            args.push("--keep-history");
        }
        if let Some(cascade) = cascade {
            args.extend(["--cascade", cascade]);
        }
        let uninstall = async {
            match self.run(&args, timeout + Duration::from_secs(60)).await {
                Err(Failed(m)) if m.contains("not found") => Ok(()),
                other => other.map(|_| ()),
            }
        };
        self.in_place(release, uninstall).await
    }

    /// The manifest of the release's current revision (`helm get manifest`).
    pub async fn manifest(&self, release: &Release) -> Result<String, Failed> {
        self.run(
            &["get", "manifest", &release.name, "-n", &release.storage],
            Duration::from_secs(60),
        )
        .await
    }

    /// `helm test`.
    pub async fn test(&self, release: &Release, timeout: Duration, filters: &[String]) -> Result<(), Failed> {
        let timeout_flag = format!("{}s", timeout.as_secs().max(1));
        let mut args = vec![
            "test",
            &release.name,
            "-n",
            &release.namespace,
            "--timeout",
            &timeout_flag,
        ];
        args.extend(filters.iter().map(String::as_str));
        self.in_place(release, self.run(&args, timeout + Duration::from_secs(60)))
            .await
            .map(|_| ())
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// A kubeconfig of `config`: its server, CA, and credentials (token, token file, client certificate,
/// basic auth), impersonation included.
pub fn kubeconfig(config: &kube::Config) -> std::io::Result<String> {
    use secrecy::ExposeSecret;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut cluster = serde_json::json!({"server": config.cluster_url.to_string().trim_end_matches('/')});
    if let Some(certs) = &config.root_cert {
        let pem: String = certs
            .iter()
            .map(|der| {
                let body = b64(der)
                    .as_bytes()
                    .chunks(64)
                    .map(|c| String::from_utf8_lossy(c).to_string())
                    .collect::<Vec<_>>()
                    .join("\n");
                format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
            })
            .collect();
        cluster["certificate-authority-data"] = b64(pem.as_bytes()).into();
    }
    if config.accept_invalid_certs {
        cluster["insecure-skip-tls-verify"] = true.into();
    }
    if let Some(name) = &config.tls_server_name {
        cluster["tls-server-name"] = name.clone().into();
    }
    let auth = &config.auth_info;
    let mut user = serde_json::json!({});
    if let Some(token) = &auth.token {
        user["token"] = token.expose_secret().to_string().into();
    }
    if let Some(file) = &auth.token_file {
        user["tokenFile"] = file.clone().into();
    }
    if let Some(cert) = &auth.client_certificate_data {
        user["client-certificate-data"] = cert.clone().into();
    }
    if let Some(key) = &auth.client_key_data {
        user["client-key-data"] = key.expose_secret().to_string().into();
    }
    if let Some(file) = &auth.client_certificate {
        user["client-certificate"] = file.clone().into();
    }
    if let Some(file) = &auth.client_key {
        user["client-key"] = file.clone().into();
    }
    if let (Some(u), Some(p)) = (&auth.username, &auth.password) {
        user["username"] = u.clone().into();
        user["password"] = p.expose_secret().to_string().into();
    }
    if let Some(as_user) = &auth.impersonate {
        user["as"] = as_user.clone().into();
    }
    if let Some(groups) = &auth.impersonate_groups {
        user["as-groups"] = serde_json::json!(groups);
    }
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    });
    serde_json::to_string(&doc).map_err(std::io::Error::other)
}
