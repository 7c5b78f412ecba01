//! P1: commit → stored artifact with driftless's source pipeline (shared bare-repo cache, checkout,
//! reproducible tar.gz + sha256), as source-controller runs it, without the cluster.
//!
//! `p1-source <url> <scratch dir> <work tree> <runs>` prints, in milliseconds:
//!   cold       first artifact from an empty cache
//!   new-commit artifact of a new commit (pushed from <work tree> before each run), incremental fetch
//!   unchanged  an unchanged revision detected with ls-remote only (median of <runs>)

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use driftless_artifact::{Storage, ignore::Filter, storage::Owner};
use driftless_git::{Auth, Cache, Options, Reference};

fn artifact(cache: &Cache, storage: &Storage, url: &str, scratch: &Path) -> anyhow::Result<String> {
    let auth = Auth::default();
    let opts = Options {
        url,
        auth: &auth,
        proxy: None,
        timeout: Duration::from_secs(600),
    };
    let resolved = cache.fetch(opts, &Reference::Branch("main".into()))?;
    let dir = tempfile::Builder::new().prefix("checkout-").tempdir_in(scratch)?;
    cache.checkout(url, &resolved, dir.path(), None, None)?;
    let filter = Filter::for_source(dir.path(), None)?;
    let owner = Owner {
        kind: "GitRepository",
        namespace: "bench",
        name: "p1",
    };
    let a = storage.archive(
        owner,
        &format!("{}.tar.gz", resolved.commit),
        &resolved.revision,
        dir.path(),
        &filter,
    )?;
    Ok(a.digest)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, scratch, work, runs] = args.as_slice() else {
        anyhow::bail!("usage: p1-source <url> <scratch dir> <work tree> <runs>");
    };
    let runs: usize = runs.parse()?;
    let scratch = Path::new(scratch);
    let cache = Cache::new(&scratch.join("cache"));
    let storage = Storage::new(&scratch.join("storage"), "bench", Duration::from_secs(60), 2)?;

    let t = Instant::now();
    artifact(&cache, &storage, url, scratch)?;
    println!("cold {:.1}", t.elapsed().as_secs_f64() * 1000.0);

    let mut new_commit = Vec::new();
    for i in 0..runs {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cd {work} && echo {i} > bench-change.txt && git add -A && git -c user.name=b -c user.email=b@b commit -qm change-{i} && git push -q origin HEAD:main"
            ))
            .status()?;
        anyhow::ensure!(status.success(), "committing in {work} failed");
        let t = Instant::now();
        artifact(&cache, &storage, url, scratch)?;
        new_commit.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("new-commit {:.1}", median(new_commit));

    let auth = Auth::default();
    let mut unchanged = Vec::new();
    for _ in 0..runs.max(5) {
        let t = Instant::now();
        let heads = cache.ls_remote(Options {
            url,
            auth: &auth,
            proxy: None,
            timeout: Duration::from_secs(60),
        })?;
        let resolved = Reference::Branch("main".into()).resolve(&heads)?;
        anyhow::ensure!(resolved.is_some());
        unchanged.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("unchanged {:.1}", median(unchanged));
    Ok(())
}
