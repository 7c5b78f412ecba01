//! `driftless create …` and `driftless delete`: flux's `create` commands — sources, Kustomizations,
//! HelmReleases, receivers, alerts, providers and the Secrets they read — written with flux's flags and
//! defaults. `--export` prints the YAML instead of applying it; otherwise the object is server-side applied
//! and, for a kind with a reconciler, waited for until Ready.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use base64::Engine as _;
use driftless_api::kinds::{self, Kind};
use kube::api::{Patch, PatchParams};
use serde_json::{Map, Value, json};

use crate::{cluster::Cluster, log};

/// The flags every `create` takes.
#[derive(clap::Args, Clone, Debug)]
pub struct Common {
    /// The object's name.
    pub name: String,
    /// How often the controller reconciles it.
    #[arg(long, default_value = "1m", value_parser = parse_interval)]
    pub interval: Duration,
    /// Print the YAML instead of applying it.
    #[arg(long)]
    pub export: bool,
    /// Labels (`key=value`, several with commas or repeated).
    #[arg(long = "label", value_delimiter = ',')]
    pub labels: Vec<String>,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    driftless_api::meta::parse_duration(s).map_err(|e| e.to_string())
}

/// What to create.
#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// A source: `create source git|oci|helm|bucket NAME …`.
    Source {
        #[command(subcommand)]
        what: Source,
    },
    /// A Kustomization.
    #[command(visible_alias = "ks")]
    Kustomization(KustomizationArgs),
    /// A HelmRelease.
    #[command(visible_alias = "hr")]
    Helmrelease(HelmReleaseArgs),
    /// A Receiver (a webhook that triggers reconciles).
    Receiver(ReceiverArgs),
    /// An Alert (events of objects to a Provider).
    Alert(AlertArgs),
    /// A Provider (where alerts go).
    AlertProvider(ProviderArgs),
    /// A Secret a source or provider reads: `create secret git|helm|oci|tls NAME …`.
    Secret {
        #[command(subcommand)]
        what: SecretKind,
    },
}

/// The sources.
#[derive(clap::Subcommand, Debug)]
pub enum Source {
    /// A GitRepository.
    Git(GitArgs),
    /// An OCIRepository.
    Oci(OciArgs),
    /// A HelmRepository (an `oci://` URL makes it of type oci).
    Helm(HelmRepoArgs),
    /// A Bucket.
    Bucket(BucketArgs),
}

/// `create source git`.
#[derive(clap::Args, Debug)]
pub struct GitArgs {
    #[command(flatten)]
    common: Common,
    /// The repository URL (ssh://, http://, https://).
    #[arg(long)]
    url: String,
    /// The branch.
    #[arg(long)]
    branch: Option<String>,
    /// A tag.
    #[arg(long)]
    tag: Option<String>,
    /// A semver range of tags.
    #[arg(long = "tag-semver")]
    semver: Option<String>,
    /// A reference name (`refs/pull/1/head`).
    #[arg(long = "ref-name")]
    ref_name: Option<String>,
    /// A commit SHA.
    #[arg(long)]
    commit: Option<String>,
    /// An existing Secret with the credentials.
    #[arg(long)]
    secret_ref: Option<String>,
    /// Basic auth user: a Secret named as the source is created.
    #[arg(short = 'u', long)]
    username: Option<String>,
    /// Basic auth password.
    #[arg(short = 'p', long)]
    password: Option<String>,
    /// A CA file for a self-signed HTTPS server (goes into the Secret).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// `generic`, `azure` or `github`.
    #[arg(long)]
    provider: Option<String>,
    /// Paths to ignore (.sourceignore syntax), several with commas.
    #[arg(long, value_delimiter = ',')]
    ignore_paths: Vec<String>,
    /// Check out submodules too.
    #[arg(long)]
    recurse_submodules: bool,
}

/// `create source oci`.
#[derive(clap::Args, Debug)]
pub struct OciArgs {
    #[command(flatten)]
    common: Common,
    /// `oci://registry/repository`.
    #[arg(long)]
    url: String,
    /// A tag.
    #[arg(long)]
    tag: Option<String>,
    /// A semver range of tags.
    #[arg(long = "tag-semver")]
    semver: Option<String>,
    /// A digest.
    #[arg(long)]
    digest: Option<String>,
    /// An existing docker-registry Secret.
    #[arg(long)]
    secret_ref: Option<String>,
    /// `generic`, `aws`, `azure` or `gcp`.
    #[arg(long)]
    provider: Option<String>,
    /// Plain HTTP.
    #[arg(long)]
    insecure: bool,
}

/// `create source helm`.
#[derive(clap::Args, Debug)]
pub struct HelmRepoArgs {
    #[command(flatten)]
    common: Common,
    /// The chart repository URL (`https://…`, or `oci://…`).
    #[arg(long)]
    url: String,
    /// An existing Secret with the credentials.
    #[arg(long)]
    secret_ref: Option<String>,
}

/// `create source bucket`.
#[derive(clap::Args, Debug)]
pub struct BucketArgs {
    #[command(flatten)]
    common: Common,
    /// The bucket's name.
    #[arg(long)]
    bucket_name: String,
    /// The S3 endpoint (host[:port]).
    #[arg(long)]
    endpoint: String,
    /// `generic`, `aws`, `gcp` or `azure`.
    #[arg(long, default_value = "generic")]
    provider: String,
    /// The region.
    #[arg(long)]
    region: Option<String>,
    /// Plain HTTP.
    #[arg(long)]
    insecure: bool,
    /// An existing Secret with `accesskey` and `secretkey`.
    #[arg(long)]
    secret_ref: Option<String>,
}

/// `create kustomization`.
#[derive(clap::Args, Debug)]
pub struct KustomizationArgs {
    #[command(flatten)]
    common: Common,
    /// The source: `<kind>/<name>[.<namespace>]` (GitRepository, OCIRepository, Bucket), or a
    /// GitRepository's name.
    #[arg(long)]
    source: String,
    /// The path in the source.
    #[arg(long, default_value = "./")]
    path: String,
    /// Delete what leaves the set.
    #[arg(long)]
    prune: bool,
    /// Wait for everything applied to be healthy.
    #[arg(long)]
    wait: bool,
    /// Workloads to wait for: `<kind>/<name>.<namespace>`.
    #[arg(long, value_delimiter = ',')]
    health_check: Vec<String>,
    /// How long health checks may take.
    #[arg(long, default_value = "2m", value_parser = parse_interval)]
    health_check_timeout: Duration,
    /// Kustomizations that must be Ready first: `<name>` or `<namespace>/<name>`.
    #[arg(long, value_delimiter = ',')]
    depends_on: Vec<String>,
    /// The ServiceAccount to impersonate.
    #[arg(long)]
    service_account: Option<String>,
    /// Override the namespace of every object.
    #[arg(long)]
    target_namespace: Option<String>,
    /// `sops`.
    #[arg(long)]
    decryption_provider: Option<String>,
    /// The Secret with the decryption keys.
    #[arg(long)]
    decryption_secret: Option<String>,
    /// How soon a failed reconcile is retried.
    #[arg(long, value_parser = parse_interval)]
    retry_interval: Option<Duration>,
}

/// `create helmrelease`.
#[derive(clap::Args, Debug)]
pub struct HelmReleaseArgs {
    #[command(flatten)]
    common: Common,
    /// The chart's source: `<kind>/<name>[.<namespace>]` (HelmRepository, GitRepository, Bucket).
    #[arg(long)]
    source: Option<String>,
    /// The chart's name (or its path in a GitRepository or Bucket).
    #[arg(long)]
    chart: Option<String>,
    /// A chart version or semver range.
    #[arg(long)]
    chart_version: Option<String>,
    /// A chart from an OCIRepository or HelmChart instead: `<kind>/<name>[.<namespace>]`.
    #[arg(long)]
    chart_ref: Option<String>,
    /// The release's name (default: `<targetNamespace>-<name>` as helm-controller names it).
    #[arg(long)]
    release_name: Option<String>,
    /// Install into this namespace.
    #[arg(long)]
    target_namespace: Option<String>,
    /// Create the target namespace.
    #[arg(long)]
    create_target_namespace: bool,
    /// Values files, merged in order.
    #[arg(long, value_delimiter = ',')]
    values: Vec<PathBuf>,
    /// HelmReleases that must be Ready first.
    #[arg(long, value_delimiter = ',')]
    depends_on: Vec<String>,
    /// The ServiceAccount to impersonate.
    #[arg(long)]
    service_account: Option<String>,
}

/// `create receiver`.
#[derive(clap::Args, Debug)]
pub struct ReceiverArgs {
    #[command(flatten)]
    common: Common,
    /// `generic`, `generic-hmac`, `github`, `gitlab`, `bitbucket`, `harbor`, `dockerhub`, `quay`, `gcr`,
    /// `nexus`, `acr`, `cdevents`.
    #[arg(long = "type")]
    type_: String,
    /// Events to accept (`push`, `ping`…).
    #[arg(long = "event", value_delimiter = ',')]
    events: Vec<String>,
    /// What to reconcile: `<kind>/<name>`.
    #[arg(long = "resource", value_delimiter = ',', required = true)]
    resources: Vec<String>,
    /// The Secret with the token.
    #[arg(long)]
    secret_ref: String,
}

/// `create alert`.
#[derive(clap::Args, Debug)]
pub struct AlertArgs {
    #[command(flatten)]
    common: Common,
    /// The Provider.
    #[arg(long)]
    provider_ref: String,
    /// `info` or `error`.
    #[arg(long, default_value = "info")]
    event_severity: String,
    /// Whose events: `<kind>/<name>` (`*` for all of a kind).
    #[arg(long = "event-source", value_delimiter = ',', required = true)]
    event_sources: Vec<String>,
}

/// `create alert-provider`.
#[derive(clap::Args, Debug)]
pub struct ProviderArgs {
    #[command(flatten)]
    common: Common,
    /// `slack`, `msteams`, `discord`, `generic`, `github`…
    #[arg(long = "type")]
    type_: String,
    /// The channel.
    #[arg(long)]
    channel: Option<String>,
    /// The bot's user name.
    #[arg(long)]
    username: Option<String>,
    /// The webhook address.
    #[arg(long)]
    address: Option<String>,
    /// The Secret with the address or token.
    #[arg(long)]
    secret_ref: Option<String>,
}

/// The Secrets.
#[derive(clap::Subcommand, Debug)]
pub enum SecretKind {
    /// Git credentials: basic auth (with a CA) or an SSH key.
    Git(SecretGitArgs),
    /// Chart repository credentials: basic auth and TLS.
    Helm(SecretTlsArgs),
    /// A docker-registry Secret for OCI sources.
    Oci(SecretOciArgs),
    /// TLS files for a source or provider.
    Tls(SecretTlsArgs),
}

/// `create secret git`.
#[derive(clap::Args, Debug)]
pub struct SecretGitArgs {
    #[command(flatten)]
    common: Common,
    /// The repository URL (its scheme says which credentials).
    #[arg(long)]
    url: String,
    /// Basic auth user.
    #[arg(short = 'u', long)]
    username: Option<String>,
    /// Basic auth password.
    #[arg(short = 'p', long)]
    password: Option<String>,
    /// A bearer token instead.
    #[arg(long)]
    bearer_token: Option<String>,
    /// A CA file.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// The SSH private key (`identity`).
    #[arg(long)]
    private_key_file: Option<PathBuf>,
    /// The SSH server's known_hosts lines.
    #[arg(long)]
    known_hosts_file: Option<PathBuf>,
}

/// `create secret helm|tls`.
#[derive(clap::Args, Debug)]
pub struct SecretTlsArgs {
    #[command(flatten)]
    common: Common,
    /// Basic auth user.
    #[arg(short = 'u', long)]
    username: Option<String>,
    /// Basic auth password.
    #[arg(short = 'p', long)]
    password: Option<String>,
    /// A CA file (`ca.crt`).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// A client certificate (`tls.crt`).
    #[arg(long)]
    cert_file: Option<PathBuf>,
    /// Its key (`tls.key`).
    #[arg(long)]
    key_file: Option<PathBuf>,
}

/// `create secret oci`.
#[derive(clap::Args, Debug)]
pub struct SecretOciArgs {
    #[command(flatten)]
    common: Common,
    /// The registry (`ghcr.io`).
    #[arg(long)]
    url: String,
    /// The user.
    #[arg(short = 'u', long)]
    username: String,
    /// The password or token.
    #[arg(short = 'p', long)]
    password: String,
}

fn valid_name(name: &str) -> anyhow::Result<()> {
    let ok = (2..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    anyhow::ensure!(
        ok,
        "name '{name}' is invalid, it should adhere to standard defined in RFC 1123, the name can only contain \
         alphanumeric characters or '-'"
    );
    Ok(())
}

fn labels(common: &Common) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for l in &common.labels {
        let Some((k, v)) = l.split_once('=') else {
            anyhow::bail!("invalid label format '{l}', must be key=value");
        };
        out.insert(k.to_string(), json!(v));
    }
    Ok(out)
}

fn interval(common: &Common) -> String {
    driftless_api::meta::format_duration(common.interval)
}

/// `<kind>/<name>[.<namespace>]` (a bare name is of `default_kind`).
fn cross_ref(s: &str, default_kind: &str) -> Value {
    let (kind, rest) = s.split_once('/').unwrap_or((default_kind, s));
    let kind = kinds::find(kind).map(|k| k.kind.as_str()).unwrap_or(kind);
    match rest.split_once('.') {
        Some((name, ns)) => json!({"kind": kind, "name": name, "namespace": ns}),
        None => json!({"kind": kind, "name": rest}),
    }
}

fn insert_some(map: &mut Map<String, Value>, key: &str, v: Option<impl Into<Value>>) {
    if let Some(v) = v {
        map.insert(key.to_string(), v.into());
    }
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
}

fn secret(
    common: &Common,
    namespace: &str,
    type_: Option<&str>,
    data: BTreeMap<&str, String>,
) -> anyhow::Result<Value> {
    let mut s = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": common.name, "namespace": namespace},
        "stringData": data});
    if let Some(t) = type_ {
        s["type"] = json!(t);
    }
    let l = labels(common)?;
    if !l.is_empty() {
        s["metadata"]["labels"] = Value::Object(l);
    }
    Ok(s)
}

/// The object (and a Secret to go with it) `what` describes, in `namespace`.
pub fn object(what: &What, namespace: &str) -> anyhow::Result<(Value, Option<Value>)> {
    let flux = |kind: &str, common: &Common, spec: Value| -> anyhow::Result<Value> {
        let k = kinds::get(kind).expect("a registered kind");
        let mut meta = json!({"name": common.name, "namespace": namespace});
        let l = labels(common)?;
        if !l.is_empty() {
            meta["labels"] = Value::Object(l);
        }
        Ok(json!({"apiVersion": k.api_version(), "kind": kind, "metadata": meta, "spec": spec}))
    };
    Ok(match what {
        What::Source { what: Source::Git(a) } => {
            let scheme = a.url.split("://").next().unwrap_or_default();
            anyhow::ensure!(
                a.url.contains("://") && ["ssh", "http", "https"].contains(&scheme),
                "git URL scheme '{scheme}' not supported, can be: ssh, http and https"
            );
            let mut reference = Map::new();
            if let Some(c) = &a.commit {
                reference.insert("commit".into(), json!(c));
                insert_some(&mut reference, "branch", a.branch.clone());
            } else if let Some(n) = &a.ref_name {
                reference.insert("name".into(), json!(n));
            } else if let Some(s) = &a.semver {
                reference.insert("semver".into(), json!(s));
            } else if let Some(t) = &a.tag {
                reference.insert("tag".into(), json!(t));
            } else if let Some(b) = &a.branch {
                reference.insert("branch".into(), json!(b));
            } else {
                anyhow::bail!(
                    "a Git ref is required, use one of the following: --branch, --tag, --commit, --ref-name or --tag-semver"
                );
            }
            let mut spec = json!({"url": a.url, "interval": interval(&a.common), "ref": reference});
            if !a.ignore_paths.is_empty() {
                spec["ignore"] = json!(a.ignore_paths.join("\n"));
            }
            if a.recurse_submodules {
                spec["recurseSubmodules"] = json!(true);
            }
            if let Some(p) = &a.provider {
                spec["provider"] = json!(p);
            }
            let mut extra = None;
            if let Some(s) = &a.secret_ref {
                spec["secretRef"] = json!({"name": s});
            } else if a.username.is_some() || a.ca_file.is_some() {
                anyhow::ensure!(
                    scheme != "ssh",
                    "for ssh, create the Secret with `create secret git` and pass --secret-ref"
                );
                let mut data = BTreeMap::new();
                if let (Some(u), Some(p)) = (&a.username, &a.password) {
                    data.insert("username", u.clone());
                    data.insert("password", p.clone());
                }
                if let Some(ca) = &a.ca_file {
                    data.insert("ca.crt", read(ca)?);
                }
                extra = Some(secret(&a.common, namespace, None, data)?);
                spec["secretRef"] = json!({"name": a.common.name});
            }
            (flux("GitRepository", &a.common, spec)?, extra)
        }
        What::Source { what: Source::Oci(a) } => {
            anyhow::ensure!(a.url.starts_with("oci://"), "url must start with oci://");
            let mut reference = Map::new();
            insert_some(&mut reference, "digest", a.digest.clone());
            insert_some(&mut reference, "semver", a.semver.clone());
            insert_some(&mut reference, "tag", a.tag.clone());
            anyhow::ensure!(
                !reference.is_empty(),
                "one of --tag, --tag-semver or --digest is required"
            );
            let mut spec = json!({"url": a.url, "interval": interval(&a.common), "ref": reference});
            if let Some(s) = &a.secret_ref {
                spec["secretRef"] = json!({"name": s});
            }
            if let Some(p) = &a.provider {
                spec["provider"] = json!(p);
            }
            if a.insecure {
                spec["insecure"] = json!(true);
            }
            (flux("OCIRepository", &a.common, spec)?, None)
        }
        What::Source {
            what: Source::Helm(a),
        } => {
            let mut spec = json!({"url": a.url, "interval": interval(&a.common)});
            if a.url.starts_with("oci://") {
                spec["type"] = json!("oci");
            }
            if let Some(s) = &a.secret_ref {
                spec["secretRef"] = json!({"name": s});
            }
            (flux("HelmRepository", &a.common, spec)?, None)
        }
        What::Source {
            what: Source::Bucket(a),
        } => {
            let mut spec = json!({"bucketName": a.bucket_name, "endpoint": a.endpoint, "provider": a.provider,
                "interval": interval(&a.common)});
            if let Some(r) = &a.region {
                spec["region"] = json!(r);
            }
            if a.insecure {
                spec["insecure"] = json!(true);
            }
            if let Some(s) = &a.secret_ref {
                spec["secretRef"] = json!({"name": s});
            }
            (flux("Bucket", &a.common, spec)?, None)
        }
        What::Kustomization(a) => {
            let mut spec = json!({"interval": interval(&a.common), "path": a.path, "prune": a.prune,
                "sourceRef": cross_ref(&a.source, "GitRepository")});
            if a.wait {
                spec["wait"] = json!(true);
            }
            if a.wait || !a.health_check.is_empty() {
                spec["timeout"] = json!(driftless_api::meta::format_duration(a.health_check_timeout));
            }
            if !a.health_check.is_empty() {
                let checks: Vec<Value> = a
                    .health_check
                    .iter()
                    .map(|h| {
                        let (kind, rest) = h.split_once('/').unwrap_or(("", h));
                        let (name, ns) = rest.split_once('.').unwrap_or((rest, namespace));
                        let api_version = match kind {
                            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps/v1",
                            "HelmRelease" => "helm.toolkit.fluxcd.io/v2",
                            "Kustomization" => "kustomize.toolkit.fluxcd.io/v1",
                            _ => "v1",
                        };
                        json!({"apiVersion": api_version, "kind": kind, "name": name, "namespace": ns})
                    })
                    .collect();
                spec["healthChecks"] = json!(checks);
            }
            if !a.depends_on.is_empty() {
                spec["dependsOn"] = json!(depends_on(&a.depends_on));
            }
            if let Some(sa) = &a.service_account {
                spec["serviceAccountName"] = json!(sa);
            }
            if let Some(t) = &a.target_namespace {
                spec["targetNamespace"] = json!(t);
            }
            if let Some(p) = &a.decryption_provider {
                spec["decryption"] = json!({"provider": p});
                if let Some(s) = &a.decryption_secret {
                    spec["decryption"]["secretRef"] = json!({"name": s});
                }
            }
            if let Some(r) = a.retry_interval {
                spec["retryInterval"] = json!(driftless_api::meta::format_duration(r));
            }
            (flux("Kustomization", &a.common, spec)?, None)
        }
        What::Helmrelease(a) => {
            let mut spec = json!({"interval": interval(&a.common)});
            match (&a.chart_ref, &a.source, &a.chart) {
                (Some(r), _, _) => spec["chartRef"] = cross_ref(r, "OCIRepository"),
                (None, Some(source), Some(chart)) => {
                    let mut chart_spec = json!({"chart": chart, "sourceRef": cross_ref(source, "HelmRepository"),
                        "reconcileStrategy": "ChartVersion"});
                    if let Some(v) = &a.chart_version {
                        chart_spec["version"] = json!(v);
                    }
                    spec["chart"] = json!({"spec": chart_spec});
                }
                _ => anyhow::bail!("--source and --chart are required (or --chart-ref)"),
            }
            if let Some(r) = &a.release_name {
                spec["releaseName"] = json!(r);
            }
            if let Some(t) = &a.target_namespace {
                spec["targetNamespace"] = json!(t);
            }
            if a.create_target_namespace {
                spec["install"] = json!({"createNamespace": true});
            }
            if !a.depends_on.is_empty() {
                spec["dependsOn"] = json!(depends_on(&a.depends_on));
            }
            if let Some(sa) = &a.service_account {
                spec["serviceAccountName"] = json!(sa);
            }
            if !a.values.is_empty() {
                let mut merged = Value::Object(Map::new());
                for file in &a.values {
                    let v: Value = serde_yaml::from_str(&read(file)?)
                        .map_err(|e| anyhow::anyhow!("{}: not YAML: {e}", file.display()))?;
                    merge(&mut merged, v);
                }
                spec["values"] = merged;
            }
            (flux("HelmRelease", &a.common, spec)?, None)
        }
        What::Receiver(a) => {
            let resources: Vec<Value> = a
                .resources
                .iter()
                .map(|r| resource_ref(r))
                .collect::<anyhow::Result<_>>()?;
            let mut spec = json!({"type": a.type_, "resources": resources, "secretRef": {"name": a.secret_ref},
                "interval": interval(&a.common)});
            if !a.events.is_empty() {
                spec["events"] = json!(a.events);
            }
            (flux("Receiver", &a.common, spec)?, None)
        }
        What::Alert(a) => {
            let sources: Vec<Value> = a
                .event_sources
                .iter()
                .map(|r| resource_ref(r))
                .collect::<anyhow::Result<_>>()?;
            let spec = json!({"providerRef": {"name": a.provider_ref}, "eventSeverity": a.event_severity,
                "eventSources": sources});
            (flux("Alert", &a.common, spec)?, None)
        }
        What::AlertProvider(a) => {
            let mut spec = Map::new();
            spec.insert("type".into(), json!(a.type_));
            insert_some(&mut spec, "channel", a.channel.clone());
            insert_some(&mut spec, "username", a.username.clone());
            insert_some(&mut spec, "address", a.address.clone());
            if let Some(s) = &a.secret_ref {
                spec.insert("secretRef".into(), json!({"name": s}));
            }
            (flux("Provider", &a.common, Value::Object(spec))?, None)
        }
        What::Secret { what } => (secret_object(what, namespace)?, None),
    })
}

fn secret_object(what: &SecretKind, namespace: &str) -> anyhow::Result<Value> {
    match what {
        SecretKind::Git(a) => {
            let mut data = BTreeMap::new();
            if a.url.starts_with("ssh://") || a.private_key_file.is_some() {
                let key = a
                    .private_key_file
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("--private-key-file is required for ssh"))?;
                let hosts = a.known_hosts_file.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("--known-hosts-file is required for ssh (ssh-keyscan <host>)")
                })?;
                data.insert("identity", read(key)?);
                data.insert("known_hosts", read(hosts)?);
            } else {
                if let Some(t) = &a.bearer_token {
                    data.insert("bearerToken", t.clone());
                } else {
                    let (Some(u), Some(p)) = (&a.username, &a.password) else {
                        anyhow::bail!(
                            "--username and --password (or --bearer-token) are required for http(s)"
                        );
                    };
                    data.insert("username", u.clone());
                    data.insert("password", p.clone());
                }
                if let Some(ca) = &a.ca_file {
                    data.insert("ca.crt", read(ca)?);
                }
            }
            secret(&a.common, namespace, None, data)
        }
        SecretKind::Helm(a) | SecretKind::Tls(a) => {
            let mut data = BTreeMap::new();
            if let (Some(u), Some(p)) = (&a.username, &a.password) {
                data.insert("username", u.clone());
                data.insert("password", p.clone());
            }
            for (key, file) in [
                ("ca.crt", &a.ca_file),
                ("tls.crt", &a.cert_file),
                ("tls.key", &a.key_file),
            ] {
                if let Some(f) = file {
                    data.insert(key, read(f)?);
                }
            }
            anyhow::ensure!(
                !data.is_empty(),
                "nothing to put in the Secret: give credentials or TLS files"
            );
            secret(&a.common, namespace, None, data)
        }
        SecretKind::Oci(a) => {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", a.username, a.password));
            let config = json!({"auths": {a.url.trim_start_matches("oci://"): {"username": a.username,
                "password": a.password, "auth": auth}}});
            secret(
                &a.common,
                namespace,
                Some("kubernetes.io/dockerconfigjson"),
                BTreeMap::from([(".dockerconfigjson", config.to_string())]),
            )
        }
    }
}

fn depends_on(list: &[String]) -> Vec<Value> {
    list.iter()
        .map(|d| match d.split_once('/') {
            Some((ns, name)) => json!({"name": name, "namespace": ns}),
            None => json!({"name": d}),
        })
        .collect()
}

fn resource_ref(r: &str) -> anyhow::Result<Value> {
    let Some((kind, name)) = r.split_once('/') else {
        anyhow::bail!("'{r}': expected <kind>/<name>");
    };
    let k = kinds::find(kind)
        .ok_or_else(|| anyhow::anyhow!("unknown kind '{kind}': {}", crate::kind::known()))?;
    let (name, ns) = match name.split_once('.') {
        Some((n, ns)) => (n, Some(ns)),
        None => (name, None),
    };
    let mut v = json!({"apiVersion": k.api_version(), "kind": k.kind, "name": name});
    if let Some(ns) = ns {
        v["namespace"] = json!(ns);
    }
    Ok(v)
}

/// Merges `b` into `a` as Helm merges values files: maps key by key, anything else replaced.
fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn common(what: &What) -> &Common {
    match what {
        What::Source { what: Source::Git(a) } => &a.common,
        What::Source { what: Source::Oci(a) } => &a.common,
        What::Source {
            what: Source::Helm(a),
        } => &a.common,
        What::Source {
            what: Source::Bucket(a),
        } => &a.common,
        What::Kustomization(a) => &a.common,
        What::Helmrelease(a) => &a.common,
        What::Receiver(a) => &a.common,
        What::Alert(a) => &a.common,
        What::AlertProvider(a) => &a.common,
        What::Secret {
            what: SecretKind::Git(a),
        } => &a.common,
        What::Secret {
            what: SecretKind::Helm(a) | SecretKind::Tls(a),
        } => &a.common,
        What::Secret {
            what: SecretKind::Oci(a),
        } => &a.common,
    }
}

/// The namespace `what` goes to when exported without a cluster: `-n`, else flux-system.
pub fn export_namespace(flag: Option<&str>) -> String {
    flag.unwrap_or("flux-system").to_string()
}

/// Whether `what` only prints.
pub fn exporting(what: &What) -> bool {
    common(what).export
}

/// Prints the YAML of `what` (its Secret first).
pub fn export(what: &What, namespace: &str) -> anyhow::Result<()> {
    valid_name(&common(what).name)?;
    let (object, extra) = object(what, namespace)?;
    let mut out = String::new();
    for o in extra.iter().chain([&object]) {
        out += "---\n";
        out += &serde_yaml::to_string(o)?;
    }
    print!("{out}");
    Ok(())
}

async fn apply(cluster: &Cluster, o: &Value) -> anyhow::Result<bool> {
    let kind = o["kind"].as_str().unwrap_or_default();
    let name = o["metadata"]["name"].as_str().unwrap_or_default();
    let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
    let api: kube::Api<kube::api::DynamicObject> = match kinds::get(kind) {
        Some(k) => cluster.api(k, Some(ns)),
        None => kube::Api::namespaced_with(
            cluster.client.clone(),
            ns,
            &kube::core::ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
        ),
    };
    let existed = api.get_opt(name).await?.is_some();
    api.patch(name, &PatchParams::apply("driftless").force(), &Patch::Apply(o))
        .await
        .map_err(|e| match kinds::get(kind) {
            Some(k) => crate::cluster::explain(e, k),
            None => anyhow::Error::new(e),
        })?;
    Ok(!existed)
}

/// Applies `what` and, for a kind with a reconciler, waits until it is Ready.
pub async fn run(cluster: &Cluster, what: &What, timeout: Duration) -> anyhow::Result<()> {
    let name = &common(what).name;
    valid_name(name)?;
    let (object, extra) = object(what, &cluster.namespace)?;
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    log::line_generate(&format!("generating {kind}"));
    if let Some(secret) = &extra {
        log::action("applying secret with repository credentials");
        apply(cluster, secret).await?;
        log::success("authentication configured");
    }
    log::action(&format!("applying {kind}"));
    let created = apply(cluster, &object).await?;
    log::success(&format!("{kind} {}", if created { "created" } else { "updated" }));
    let Some(k) = kinds::get(&kind).filter(|k| !crate::kind::is_static(&k.kind)) else {
        return Ok(());
    };
    log::waiting(&format!("waiting for {kind} reconciliation"));
    let o = crate::reconcile::wait_ready(cluster, k, name, timeout).await?;
    log::success(&format!("{kind} {name} is ready"));
    log::success(&crate::reconcile::success_message(&kind, &o));
    Ok(())
}

/// `delete <kind> <name>`: asks first unless `silent` (and refuses to ask where no one can answer).
pub async fn delete(cluster: &Cluster, kind: &Kind, name: &str, silent: bool) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let api = cluster.api(kind, Some(&cluster.namespace));
    if api
        .get_opt(name)
        .await
        .map_err(|e| crate::cluster::explain(e, kind))?
        .is_none()
    {
        anyhow::bail!(
            "{} object '{name}' not found in {:?} namespace",
            kind.kind,
            cluster.namespace
        );
    }
    if !silent {
        anyhow::ensure!(
            std::io::stdin().is_terminal(),
            "not deleting without asking: pass --silent to delete {} {name} without a prompt",
            kind.kind
        );
        eprint!(
            "Are you sure you want to delete this {}? [y/N] ",
            crate::kind::human(&kind.kind)
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            anyhow::bail!("aborting");
        }
    }
    log::action(&format!(
        "deleting {} {name} in {} namespace",
        crate::kind::human(&kind.kind),
        cluster.namespace
    ));
    api.delete(name, &Default::default()).await?;
    log::success(&format!("{} deleted", crate::kind::human(&kind.kind)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        what: What,
    }

    fn made(args: &str) -> (Value, Option<Value>) {
        let t = T::parse_from(std::iter::once("t").chain(args.split_whitespace()));
        object(&t.what, "flux-system").unwrap()
    }

    #[test]
    fn objects_are_what_flux_creates() {
        let (git, secret) = made(
            "source git podinfo --url https://github.com/stefanprodan/podinfo --branch master --ignore-paths .cosign,non-existent-dir/",
        );
        assert_eq!(
            git,
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": "podinfo", "namespace": "flux-system"},
                "spec": {"url": "https://github.com/stefanprodan/podinfo", "interval": "1m0s",
                    "ref": {"branch": "master"}, "ignore": ".cosign\nnon-existent-dir/"}})
        );
        assert!(secret.is_none());
        let (git, secret) = made("source git p --url https://h/r --tag v1 -u me -p pw --interval 5m");
        assert_eq!(git["spec"]["ref"], json!({"tag": "v1"}));
        assert_eq!(git["spec"]["interval"], "5m0s");
        assert_eq!(git["spec"]["secretRef"], json!({"name": "p"}));
        assert_eq!(
            secret.unwrap()["stringData"],
            json!({"username": "me", "password": "pw"})
        );
        let (ks, _) = made(
            "kustomization apps --source GitRepository/fleet.infra --path ./apps --prune --target-namespace x --depends-on infra,other/db",
        );
        assert_eq!(
            ks["spec"],
            json!({"interval": "1m0s", "path": "./apps", "prune": true,
                "sourceRef": {"kind": "GitRepository", "name": "fleet", "namespace": "infra"},
                "targetNamespace": "x", "dependsOn": [{"name": "infra"}, {"name": "db", "namespace": "other"}]})
        );
        let (hr, _) =
            made("hr podinfo --source HelmRepository/charts --chart podinfo --chart-version >6.0.0");
        assert_eq!(
            hr["spec"]["chart"]["spec"],
            json!({"chart": "podinfo", "version": ">6.0.0", "reconcileStrategy": "ChartVersion",
                "sourceRef": {"kind": "HelmRepository", "name": "charts"}})
        );
        let (r, _) = made(
            "receiver gh --type github --event ping,push --resource GitRepository/fleet --secret-ref token",
        );
        assert_eq!(
            r["spec"]["resources"],
            json!([{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": "fleet"}])
        );
        let (s, _) = made("secret oci regcred --url ghcr.io -u me -p tok");
        assert_eq!(s["type"], "kubernetes.io/dockerconfigjson");
        let config: Value =
            serde_json::from_str(s["stringData"][".dockerconfigjson"].as_str().unwrap()).unwrap();
        assert_eq!(config["auths"]["ghcr.io"]["auth"], "bWU6dG9r");
    }

    #[test]
    fn bad_input_says_what_to_do() {
        let t = T::parse_from([
            "t",
            "source",
            "git",
            "p",
            "--url",
            "ftp://x/y",
            "--branch",
            "main",
        ]);
        assert!(
            object(&t.what, "ns")
                .unwrap_err()
                .to_string()
                .contains("scheme 'ftp' not supported")
        );
        let t = T::parse_from(["t", "source", "git", "p", "--url", "https://x/y"]);
        assert!(
            object(&t.what, "ns")
                .unwrap_err()
                .to_string()
                .starts_with("a Git ref is required")
        );
        assert!(valid_name("Bad_Name").is_err());
        assert!(valid_name("good-name").is_ok());
    }
}
