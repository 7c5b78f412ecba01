//! `driftless push|pull|tag artifact` and `list artifacts`: Flux's OCI artifacts — a directory packed
//! reproducibly (the same files give the same digest), pushed with its origin in the manifest's
//! annotations so an OCIRepository consumes it; pulled back (digest checked, unpacked safely); tagged;
//! listed with their origins.

use std::{collections::BTreeMap, path::Path, time::Duration};

use driftless_oci::{Client, Keychain, Options, Repository, Schemes};

use crate::{log, table::render};

/// The flags every artifact command takes.
#[derive(clap::Args, Clone, Debug)]
pub struct Registry {
    /// Credentials for the registry: `user:password`.
    #[arg(long)]
    pub creds: Option<String>,
    /// Plain HTTP (or HTTPS without verifying the certificate).
    #[arg(long)]
    pub insecure_registry: bool,
}

/// `oci://host/repo:tag` split into the repository and the tag (`latest` when absent).
fn split(url: &str) -> anyhow::Result<(Repository, String)> {
    let (base, tag) = match url.rsplit_once('/') {
        Some((head, last)) => match last.split_once(':') {
            Some((name, tag)) => (format!("{head}/{name}"), tag.to_string()),
            None => (url.to_string(), "latest".to_string()),
        },
        None => (url.to_string(), "latest".to_string()),
    };
    Ok((Repository::parse(&base)?, tag))
}

async fn client(repo: &Repository, registry: &Registry, timeout: Duration) -> anyhow::Result<Client> {
    let keychain = match &registry.creds {
        Some(c) => {
            let (u, p) = c
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--creds must be user:password"))?;
            Keychain::basic(u, p)
        }
        None => Keychain::default(),
    };
    let options = Options {
        insecure: registry.insecure_registry,
        timeout,
        ..Default::default()
    };
    Ok(Client::new(repo, &keychain, &options, &Schemes::default()).await?)
}

fn name(repo: &Repository) -> String {
    format!("{}/{}", repo.registry, repo.repository)
}

/// `push artifact URL --path DIR --source S --revision R`.
#[allow(clippy::too_many_arguments)]
pub async fn push(
    url: &str,
    path: &Path,
    source: &str,
    revision: &str,
    annotations: &[String],
    ignore: &[String],
    registry: &Registry,
    timeout: Duration,
) -> anyhow::Result<()> {
    let (repo, tag) = split(url)?;
    let layer = if path.is_file() {
        std::fs::read(path)?
    } else {
        anyhow::ensure!(
            path.is_dir(),
            "--path {}: no such file or directory",
            path.display()
        );
        let filter = driftless_artifact::ignore::Filter::for_source(path, Some(&ignore.join("\n")))?;
        driftless_artifact::archive::write_archive(path, &filter, Vec::new())?.0
    };
    let mut meta = BTreeMap::from([
        (driftless_oci::SOURCE_ANNOTATION.to_string(), source.to_string()),
        (
            driftless_oci::REVISION_ANNOTATION.to_string(),
            revision.to_string(),
        ),
        (
            driftless_oci::CREATED_ANNOTATION.to_string(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
    ]);
    for a in annotations {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("annotation '{a}': expected key=value"))?;
        meta.insert(k.to_string(), v.to_string());
    }
    log::action(&format!("pushing artifact to {}:{tag}", name(&repo)));
    let digest = client(&repo, registry, timeout)
        .await?
        .push_artifact(&tag, layer, meta)
        .await?;
    log::success(&format!(
        "artifact successfully pushed to {}@{digest}",
        name(&repo)
    ));
    Ok(())
}

/// `pull artifact URL --output DIR`.
pub async fn pull(url: &str, output: &Path, registry: &Registry, timeout: Duration) -> anyhow::Result<()> {
    let (repo, tag) = split(url)?;
    log::action(&format!("pulling artifact from {}:{tag}", name(&repo)));
    let c = client(&repo, registry, timeout).await?;
    let (manifest, _) = c.manifest_of(&tag).await?;
    let annotations = manifest.annotations.clone().unwrap_or_default();
    if let Some(s) = annotations.get(driftless_oci::SOURCE_ANNOTATION) {
        log::success(&format!("source {s}"));
    }
    if let Some(r) = annotations.get(driftless_oci::REVISION_ANNOTATION) {
        log::success(&format!("revision {r}"));
    }
    let layer = manifest
        .layers
        .iter()
        .find(|l| l.media_type == driftless_oci::FLUX_CONTENT_MEDIA_TYPE)
        .or(manifest.layers.first())
        .ok_or_else(|| anyhow::anyhow!("the artifact has no layer"))?;
    let limits = driftless_artifact::fetch::Limits::default();
    let scratch = tempfile::tempdir()?;
    let file = scratch.path().join("layer.tar.gz");
    c.pull_to(layer, &file, limits.max_download).await?;
    std::fs::create_dir_all(output)?;
    driftless_artifact::fetch::unpack(std::fs::File::open(&file)?, output, limits)?;
    log::success(&format!("extracted artifact to {}", output.display()));
    Ok(())
}

/// `tag artifact URL --tag NEW…`.
pub async fn tag(url: &str, tags: &[String], registry: &Registry, timeout: Duration) -> anyhow::Result<()> {
    let (repo, from) = split(url)?;
    anyhow::ensure!(!tags.is_empty(), "--tag is required");
    log::action("tagging artifact");
    let c = client(&repo, registry, timeout).await?;
    for t in tags {
        c.retag(&from, t).await?;
        log::success(&format!("artifact tagged as {}:{t}", name(&repo)));
    }
    Ok(())
}

/// `list artifacts URL`: each tag with its digest and origin.
pub async fn list(
    url: &str,
    filter: Option<&str>,
    registry: &Registry,
    timeout: Duration,
) -> anyhow::Result<()> {
    let repo = Repository::parse(url)?;
    let c = client(&repo, registry, timeout).await?;
    let filter = filter.map(regex::Regex::new).transpose()?;
    let mut rows = Vec::new();
    for t in c.tags().await? {
        if filter.as_ref().is_some_and(|f| !f.is_match(&t)) {
            continue;
        }
        let (manifest, digest) = c.manifest_of(&t).await?;
        let a = manifest.annotations.unwrap_or_default();
        let get = |k: &str| a.get(k).cloned().unwrap_or_default();
        rows.push(vec![
            format!("{}:{t}", name(&repo)),
            digest,
            get(driftless_oci::SOURCE_ANNOTATION),
            get(driftless_oci::REVISION_ANNOTATION),
        ]);
    }
    print!("{}", render(&["Artifact", "Digest", "Source", "Revision"], &rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_repository_and_tag() {
        let (repo, tag) = split("oci://127.0.0.1:5000/org/app:v1.0").unwrap();
        assert_eq!(
            (repo.registry.as_str(), repo.repository.as_str(), tag.as_str()),
            ("127.0.0.1:5000", "org/app", "v1.0")
        );
        let (repo, tag) = split("oci://ghcr.io/org/app").unwrap();
        assert_eq!((repo.repository.as_str(), tag.as_str()), ("org/app", "latest"));
        assert!(split("https://ghcr.io/org/app:v1").is_err());
    }
}
