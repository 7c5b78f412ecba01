//! Test-only helpers (a dev-dependency, never shipped): the real test cluster with a namespace per test
//! ([`cluster`]), local Git servers and repositories ([`git`]), a local OCI registry ([`registry`]), an
//! HTTP Helm chart repository ([`helm`]), and
//! the shared fixtures ([`shared_dir`]). Every helper fails the test with a message saying what is
//! missing and how to fix it when a real part cannot start; nothing is silently skipped.
#![warn(missing_docs)]

pub mod cluster;
pub mod git;
pub mod helm;
pub mod pki;
pub mod proxy;
pub mod registry;
pub mod s3;
pub mod simulator;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
};

/// The workspace root (where `Cargo.toml`, `hack/` and `crds/` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// `../shared` beside the workspace (or `$DRIFTLESS_SHARED`): fixtures made by real tools. `None` only in a
/// user's clone without it; CI always has it, so there (`CI` set) its absence fails the test.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("DRIFTLESS_SHARED") {
        Some(d) => PathBuf::from(d),
        None => workspace_root().join("../shared"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "shared fixtures not found at {}: CI must have them (set DRIFTLESS_SHARED)",
        dir.display()
    );
    eprintln!(
        "\n!!!! SKIPPING: shared fixtures not found at {} (set DRIFTLESS_SHARED); this test needs them !!!!\n",
        dir.display()
    );
    None
}

/// Where `hack/tools.sh` puts the binaries it does not apt-install (helm, oras, crane).
pub fn tools_bin() -> PathBuf {
    cache_dir().join("tools/bin")
}

/// `${XDG_CACHE_HOME:-~/.cache}/driftless`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"))
        .join("driftless")
}

/// The path of a tool: `hack/tools.sh`'s directory first, then `PATH`. Panics with the fix when missing.
pub fn tool(name: &str) -> PathBuf {
    let cached = tools_bin().join(name);
    if cached.exists() {
        return cached;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/usr/lib/git-core".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found: run hack/tools.sh (it installs the real parts tests use)")
        })
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A short random lowercase suffix for unique names.
pub fn suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..6)
        .map(|_| char::from(b'a' + rng.random_range(0..26)))
        .collect()
}

/// Waits until something accepts TCP connections on `port`, for at most `secs` seconds.
pub fn wait_for_port(port: u16, secs: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}
