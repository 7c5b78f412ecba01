//! The flags of `driftless create …`, as flux names them.

use std::{path::PathBuf, time::Duration};

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

/// Basic auth and a CA file, as the commands that write credentials take them.
#[derive(clap::Args, Clone, Debug)]
pub struct Credentials {
    /// Basic auth user.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Basic auth password.
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// A CA file (`ca.crt`) for a server with a certificate of its own.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
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
    pub common: Common,
    /// The repository URL (ssh://, http://, https://).
    #[arg(long)]
    pub url: String,
    /// The branch.
    #[arg(long)]
    pub branch: Option<String>,
    /// A tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// A semver range of tags.
    #[arg(long = "tag-semver")]
    pub semver: Option<String>,
    /// A reference name (`refs/pull/1/head`).
    #[arg(long = "ref-name")]
    pub ref_name: Option<String>,
    /// A commit SHA.
    #[arg(long)]
    pub commit: Option<String>,
    /// An existing Secret with the credentials.
    #[arg(long)]
    pub secret_ref: Option<String>,
    /// Basic auth and a CA: a Secret named as the source is created with them.
    #[command(flatten)]
    pub creds: Credentials,
    /// `generic`, `azure` or `github`.
    #[arg(long)]
    pub provider: Option<String>,
    /// Paths to ignore (.sourceignore syntax), several with commas.
    #[arg(long, value_delimiter = ',')]
    pub ignore_paths: Vec<String>,
    /// Check out submodules too.
    #[arg(long)]
    pub recurse_submodules: bool,
}

/// `create source oci`.
#[derive(clap::Args, Debug)]
pub struct OciArgs {
    #[command(flatten)]
    pub common: Common,
    /// `oci://registry/repository`.
    #[arg(long)]
    pub url: String,
    /// A tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// A semver range of tags.
    #[arg(long = "tag-semver")]
    pub semver: Option<String>,
    /// A digest.
    #[arg(long)]
    pub digest: Option<String>,
    /// An existing docker-registry Secret.
    #[arg(long)]
    pub secret_ref: Option<String>,
    /// `generic`, `aws`, `azure` or `gcp`.
    #[arg(long)]
    pub provider: Option<String>,
    /// Plain HTTP.
    #[arg(long)]
    pub insecure: bool,
}

/// `create source helm`.
#[derive(clap::Args, Debug)]
pub struct HelmRepoArgs {
    #[command(flatten)]
    pub common: Common,
    /// The chart repository URL (`https://…`, or `oci://…`).
    #[arg(long)]
    pub url: String,
    /// An existing Secret with the credentials.
    #[arg(long)]
    pub secret_ref: Option<String>,
}

/// `create source bucket`.
#[derive(clap::Args, Debug)]
pub struct BucketArgs {
    #[command(flatten)]
    pub common: Common,
    /// The bucket's name.
    #[arg(long)]
    pub bucket_name: String,
    /// The S3 endpoint (host[:port]).
    #[arg(long)]
    pub endpoint: String,
    /// `generic`, `aws`, `gcp` or `azure`.
    #[arg(long, default_value = "generic")]
    pub provider: String,
    /// The region.
    #[arg(long)]
    pub region: Option<String>,
    /// Plain HTTP.
    #[arg(long)]
    pub insecure: bool,
    /// An existing Secret with `accesskey` and `secretkey`.
    #[arg(long)]
    pub secret_ref: Option<String>,
}

/// `create kustomization`.
#[derive(clap::Args, Debug)]
pub struct KustomizationArgs {
    #[command(flatten)]
    pub common: Common,
    /// The source: `<kind>/<name>[.<namespace>]` (GitRepository, OCIRepository, Bucket), or a
    /// GitRepository's name.
    #[arg(long)]
    pub source: String,
    /// The path in the source.
    #[arg(long, default_value = "./")]
    pub path: String,
    /// Delete what leaves the set.
    #[arg(long)]
    pub prune: bool,
    /// Wait for everything applied to be healthy.
    #[arg(long)]
    pub wait: bool,
    /// Workloads to wait for: `<kind>/<name>.<namespace>`.
    #[arg(long, value_delimiter = ',')]
    pub health_check: Vec<String>,
    /// How long health checks may take.
    #[arg(long, default_value = "2m", value_parser = parse_interval)]
    pub health_check_timeout: Duration,
    /// Kustomizations that must be Ready first: `<name>` or `<namespace>/<name>`.
    #[arg(long, value_delimiter = ',')]
    pub depends_on: Vec<String>,
    /// The ServiceAccount to impersonate.
    #[arg(long)]
    pub service_account: Option<String>,
    /// Override the namespace of every object.
    #[arg(long)]
    pub target_namespace: Option<String>,
    /// `sops`.
    #[arg(long)]
    pub decryption_provider: Option<String>,
    /// The Secret with the decryption keys.
    #[arg(long)]
    pub decryption_secret: Option<String>,
    /// How soon a failed reconcile is retried.
    #[arg(long, value_parser = parse_interval)]
    pub retry_interval: Option<Duration>,
}

/// `create helmrelease`.
#[derive(clap::Args, Debug)]
pub struct HelmReleaseArgs {
    #[command(flatten)]
    pub common: Common,
    /// The chart's source: `<kind>/<name>[.<namespace>]` (HelmRepository, GitRepository, Bucket).
    #[arg(long)]
    pub source: Option<String>,
    /// The chart's name (or its path in a GitRepository or Bucket).
    #[arg(long)]
    pub chart: Option<String>,
    /// A chart version or semver range.
    #[arg(long)]
    pub chart_version: Option<String>,
    /// A chart from an OCIRepository or HelmChart instead: `<kind>/<name>[.<namespace>]`.
    #[arg(long)]
    pub chart_ref: Option<String>,
    /// The release's name (default: `<targetNamespace>-<name>` as helm-controller names it).
    #[arg(long)]
    pub release_name: Option<String>,
    /// Install into this namespace.
    #[arg(long)]
    pub target_namespace: Option<String>,
    /// Create the target namespace.
    #[arg(long)]
    pub create_target_namespace: bool,
    /// Values files, merged in order.
    #[arg(long, value_delimiter = ',')]
    pub values: Vec<PathBuf>,
    /// HelmReleases that must be Ready first.
    #[arg(long, value_delimiter = ',')]
    pub depends_on: Vec<String>,
    /// The ServiceAccount to impersonate.
    #[arg(long)]
    pub service_account: Option<String>,
}

/// `create receiver`.
#[derive(clap::Args, Debug)]
pub struct ReceiverArgs {
    #[command(flatten)]
    pub common: Common,
    /// `generic`, `generic-hmac`, `github`, `gitlab`, `bitbucket`, `harbor`, `dockerhub`, `quay`, `gcr`,
    /// `nexus`, `acr`, `cdevents`.
    #[arg(long = "type")]
    pub type_: String,
    /// Events to accept (`push`, `ping`…).
    #[arg(long = "event", value_delimiter = ',')]
    pub events: Vec<String>,
    /// What to reconcile: `<kind>/<name>`.
    #[arg(long = "resource", value_delimiter = ',', required = true)]
    pub resources: Vec<String>,
    /// The Secret with the token.
    #[arg(long)]
    pub secret_ref: String,
}

/// `create alert`.
#[derive(clap::Args, Debug)]
pub struct AlertArgs {
    #[command(flatten)]
    pub common: Common,
    /// The Provider.
    #[arg(long)]
    pub provider_ref: String,
    /// `info` or `error`.
    #[arg(long, default_value = "info")]
    pub event_severity: String,
    /// Whose events: `<kind>/<name>` (`*` for all of a kind).
    #[arg(long = "event-source", value_delimiter = ',', required = true)]
    pub event_sources: Vec<String>,
}

/// `create alert-provider`.
#[derive(clap::Args, Debug)]
pub struct ProviderArgs {
    #[command(flatten)]
    pub common: Common,
    /// `slack`, `msteams`, `discord`, `generic`, `github`…
    #[arg(long = "type")]
    pub type_: String,
    /// The channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// The bot's user name.
    #[arg(long)]
    pub username: Option<String>,
    /// The webhook address.
    #[arg(long)]
    pub address: Option<String>,
    /// The Secret with the address or token.
    #[arg(long)]
    pub secret_ref: Option<String>,
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
    pub common: Common,
    /// The repository URL (its scheme says which credentials).
    #[arg(long)]
    pub url: String,
    #[command(flatten)]
    pub creds: Credentials,
    /// A bearer token instead of basic auth.
    #[arg(long)]
    pub bearer_token: Option<String>,
    /// The SSH private key (`identity`).
    #[arg(long)]
    pub private_key_file: Option<PathBuf>,
    /// The SSH server's known_hosts lines.
    #[arg(long)]
    pub known_hosts_file: Option<PathBuf>,
}

/// `create secret helm|tls`.
#[derive(clap::Args, Debug)]
pub struct SecretTlsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub creds: Credentials,
    /// A client certificate (`tls.crt`).
    #[arg(long)]
    pub cert_file: Option<PathBuf>,
    /// Its key (`tls.key`).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
}

/// `create secret oci`.
#[derive(clap::Args, Debug)]
pub struct SecretOciArgs {
    #[command(flatten)]
    pub common: Common,
    /// The registry (`ghcr.io`).
    #[arg(long)]
    pub url: String,
    /// The user.
    #[arg(short = 'u', long)]
    pub username: String,
    /// The password or token.
    #[arg(short = 'p', long)]
    pub password: String,
}
