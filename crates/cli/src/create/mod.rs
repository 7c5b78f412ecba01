//! `driftless create …` and `driftless delete`: flux's `create` commands — sources, Kustomizations,
//! HelmReleases, receivers, alerts, providers and the Secrets they read — written with flux's flags and
//! defaults. `--export` prints the YAML instead of applying it; otherwise the object is server-side applied
//! and, for a kind with a reconciler, waited for until Ready.

mod args;

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

pub use self::args::*;

use base64::Engine as _;
use driftless_api::kinds::{self, Kind};
use serde_json::{Map, Value, json};

use crate::{cluster::Cluster, log};

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
            } else if a.creds.username.is_some() || a.creds.ca_file.is_some() {
                anyhow::ensure!(
                    scheme != "ssh",
                    "for ssh, create the Secret with `create secret git` and pass --secret-ref"
                );
                let mut data = BTreeMap::new();
                credentials(&a.creds, &mut data)?;
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
                    anyhow::ensure!(
                        a.creds.username.is_some() && a.creds.password.is_some(),
                        "--username and --password (or --bearer-token) are required for http(s)"
                    );
                }
                credentials(&a.creds, &mut data)?;
            }
            secret(&a.common, namespace, None, data)
        }
        SecretKind::Helm(a) | SecretKind::Tls(a) => {
            let mut data = BTreeMap::new();
            credentials(&a.creds, &mut data)?;
            for (key, file) in [("tls.crt", &a.cert_file), ("tls.key", &a.key_file)] {
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

/// The Secret keys of `c`: `username` and `password` (both given), `ca.crt`.
fn credentials(c: &Credentials, data: &mut BTreeMap<&str, String>) -> anyhow::Result<()> {
    if let (Some(u), Some(p)) = (&c.username, &c.password) {
        data.insert("username", u.clone());
        data.insert("password", p.clone());
    }
    if let Some(ca) = &c.ca_file {
        data.insert("ca.crt", read(ca)?);
    }
    Ok(())
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
        out += &driftless_yaml::to_string(o)?;
    }
    print!("{out}");
    Ok(())
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
        crate::objects::apply(&cluster.client, secret, "driftless").await?;
        log::success("authentication configured");
    }
    log::action(&format!("applying {kind}"));
    let created = crate::objects::apply(&cluster.client, &object, "driftless").await?;
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

/// Asks `question` on the terminal; an error unless answered yes, and where no one can answer.
pub fn confirm(question: &str) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "not going ahead without asking: pass --silent to skip the question ({question})"
    );
    eprint!("{question}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    anyhow::ensure!(matches!(answer.trim(), "y" | "Y" | "yes"), "aborting");
    Ok(())
}

/// `delete <kind> <name>`: asks first unless `silent` (and refuses to ask where no one can answer).
pub async fn delete(cluster: &Cluster, kind: &Kind, name: &str, silent: bool) -> anyhow::Result<()> {
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
        confirm(&format!(
            "Are you sure you want to delete this {}",
            crate::kind::human(&kind.kind)
        ))?;
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
