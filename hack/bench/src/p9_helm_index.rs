//! P9 (Helm index): a chart repository's index.yaml → stored artifact with source-controller's
//! HelmRepository pipeline (streamed to disk and hashed, walked event by event, stored), without the
//! cluster. Its peak RSS (measured around this process) is the figure: the goal is below twice the
//! index's size.
//!
//! `p9-helm-index <index url> <scratch dir> <runs>` prints, in milliseconds:
//!   index  the stored index, median of <runs>

use std::{path::Path, sync::Arc, time::Instant};

use driftless_artifact::{Storage, storage::Owner};
use source_controller::helmrepository::steps::download;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, scratch, runs] = args.as_slice() else {
        anyhow::bail!("usage: p9-helm-index <index url> <scratch dir> <runs>");
    };
    let runs: usize = runs.parse()?;
    let storage = Arc::new(Storage::new(
        &Path::new(scratch).join("storage"),
        "bench",
        std::time::Duration::from_secs(60),
        2,
    )?);
    let creds = driftless_credentials::helm::HelmCredentials::default();
    let http = creds.http_client()?;
    let mut times = Vec::new();
    let mut charts = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let file = tempfile::NamedTempFile::new_in(scratch)?;
        let (digest, _) = download(
            &creds,
            &http,
            url,
            file.as_file(),
            1 << 30,
            std::time::Duration::from_secs(600),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let path = file.path().to_path_buf();
        let storage = storage.clone();
        charts = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
            let summary = driftless_helm::index::walk(std::fs::File::open(&path)?, None, |_, _| {})?;
            let owner = Owner {
                kind: "HelmRepository",
                namespace: "bench",
                name: "p9",
            };
            storage.store_file(
                owner,
                &format!("index-{digest}.yaml"),
                &format!("sha256:{digest}"),
                &path,
                Some("index.yaml"),
            )?;
            Ok(summary.versions)
        })
        .await??;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("index {:.1}", median(times));
    println!("versions {charts}");
    Ok(())
}
