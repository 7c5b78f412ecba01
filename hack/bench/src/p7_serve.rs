//! P7: source-controller's artifact server, alone: `p7-serve <storage dir>` serves the directory as
//! source-controller does (`driftless_artifact::server`) on a loopback port, prints `addr <host:port>`
//! and runs until killed; `hack/bench/p7-serve.sh` puts nginx beside it and loads both with wrk.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use driftless_artifact::{Storage, server};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).context("storage dir")?;
    let storage = Storage::new(dir.as_ref(), "placeholder", Duration::from_secs(3600), 10)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("addr {}", listener.local_addr()?);
    axum::serve(listener, server::router(Arc::new(storage))).await?;
    Ok(())
}
