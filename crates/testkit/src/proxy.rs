//! A real HTTP proxy on loopback: Debian's `tinyproxy`, with basic auth, allowing CONNECT to any port
//! (HTTPS through it); its log says which requests went through. Stopped when dropped.

use std::{
    fs,
    process::{Child, Command, Stdio},
};

use tempfile::TempDir;

use crate::{free_port, tool, wait_for_port};

/// A running proxy.
pub struct Proxy {
    port: u16,
    /// Its user.
    pub username: String,
    /// Its password.
    pub password: String,
    child: Child,
    dir: TempDir,
}

impl Proxy {
    /// Starts one requiring `username`/`password`.
    pub fn start(username: &str, password: &str) -> Self {
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("driftless-proxy-")
            .tempdir()
            .expect("a temp dir");
        // NB: no ConnectPort line allows CONNECT to every port
        let conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nLogLevel Info\nLogFile \"{log}\"\n\
             MaxClients 50\nBasicAuth {username} {password}\n",
            log = dir.path().join("proxy.log").display()
        );
        let conf_path = dir.path().join("tinyproxy.conf");
        fs::write(&conf_path, conf).expect("a tinyproxy config");
        let child = Command::new(tool("tinyproxy"))
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tinyproxy (run hack/tools.sh)");
        let proxy = Self {
            port,
            username: username.into(),
            password: password.into(),
            child,
            dir,
        };
        assert!(
            wait_for_port(port, 10),
            "tinyproxy did not listen on 127.0.0.1:{port}"
        );
        proxy
    }

    /// `http://127.0.0.1:<port>`, without credentials.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it logged so far (each proxied request names its target).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
