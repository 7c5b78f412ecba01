//! P9 (OCI): new digest → stored artifact with source-controller's OCIRepository pipeline (one manifest
//! `HEAD`, the manifest, the layer streamed and verified, extracted, archived reproducibly + sha256),
//! without the cluster, against a registry on loopback.
//!
//! `p9-oci <registry host> <repository> <scratch dir> <runs> <push command>` prints, in milliseconds:
//!   new-digest  the artifact of a new push (`<push command> <i>` run before each), median of <runs>
//!   unchanged   an unchanged digest detected with one manifest HEAD, median of max(<runs>, 10)

use std::{path::Path, process::Command, sync::Arc, time::Instant};

use driftless_api::source::OCILayerSelector;
use driftless_artifact::{Storage, storage::Owner};
use driftless_oci::{Client, Keychain, Options, Repository, Schemes, Wanted};
use source_controller::ocirepository::steps::{Pulled, pull_artifact};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, repository, scratch, runs, push] = args.as_slice() else {
        anyhow::bail!("usage: p9-oci <registry host> <repository> <scratch dir> <runs> <push command>");
    };
    let runs: usize = runs.parse()?;
    let scratch = Path::new(scratch);
    let storage = Arc::new(Storage::new(
        &scratch.join("storage"),
        "bench",
        std::time::Duration::from_secs(60),
        2,
    )?);
    let url = format!("oci://{host}/{repository}");
    let repo = Repository::parse(&url)?;
    let options = Options {
        timeout: std::time::Duration::from_secs(600),
        ..Default::default()
    };
    let client = Client::new(&repo, &Keychain::default(), &options, &Schemes::default()).await?;
    let latest = Wanted::Tag("latest".into());
    let owner = Owner {
        kind: "OCIRepository",
        namespace: "bench",
        name: "p9",
    };
    let selector = OCILayerSelector::default();

    let mut new_digest = Vec::new();
    for i in 0..runs {
        let status = Command::new("sh").arg("-c").arg(format!("{push} {i}")).status()?;
        anyhow::ensure!(status.success(), "pushing run {i} failed");
        let t = Instant::now();
        let resolved = client.resolve(&latest).await?;
        let revision = resolved.revision();
        let artifact = pull_artifact(
            &client,
            Pulled {
                url: &url,
                digest: &resolved.digest,
                revision: &revision,
                selector: &selector,
                ignore: None,
            },
            storage.clone(),
            owner,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        new_digest.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(artifact.digest.starts_with("sha256:"));
    }
    println!("new-digest {:.1}", median(new_digest));

    let stored = client.resolve(&latest).await?.revision();
    let mut unchanged = Vec::new();
    for _ in 0..runs.max(10) {
        let t = Instant::now();
        let revision = client.resolve(&latest).await?.revision();
        anyhow::ensure!(revision == stored, "the digest changed");
        unchanged.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("unchanged {:.1}", median(unchanged));
    Ok(())
}
