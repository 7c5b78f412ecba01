//! A real OCI registry on loopback: Debian's `docker-registry` (distribution 2.8), plain HTTP, storage in
//! a temporary directory; stopped when dropped.

use std::{
    fs,
    process::{Child, Command, Stdio},
};

use tempfile::TempDir;

use crate::{free_port, tool, wait_for_port};

/// A running registry.
pub struct Registry {
    port: u16,
    child: Child,
    _dir: TempDir,
}

impl Registry {
    /// Starts one on a free port.
    pub fn start() -> Self {
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("driftless-registry-")
            .tempdir()
            .expect("a temp dir");
        let conf = format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\n\
             http: {{addr: 127.0.0.1:{port}}}\n",
            dir.path().join("data").display()
        );
        let conf_path = dir.path().join("config.yml");
        fs::write(&conf_path, conf).expect("a registry config");
        let child = Command::new(tool("docker-registry"))
            .arg("serve")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry (run hack/tools.sh)");
        let registry = Self {
            port,
            child,
            _dir: dir,
        };
        assert!(
            wait_for_port(port, 10),
            "docker-registry did not listen on 127.0.0.1:{port}"
        );
        registry
    }

    /// `127.0.0.1:<port>`, the host part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
