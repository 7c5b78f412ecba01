//! A real S3-compatible server on loopback: moto's server mode (from PyPI, installed by
//! `hack/tools.sh`); stopped when dropped. Buckets and objects are made with plain S3 API requests
//! (`curl --aws-sigv4`: moto checks no signature, but an unsigned request may not overwrite an object).

use std::process::Command;

use crate::{
    free_port,
    git::{Server, spawn},
    tool,
};

/// The access key the helpers sign with (any key is accepted).
pub const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
/// Its secret.
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// A running S3 server.
pub struct S3Server {
    port: u16,
    _server: Server,
}

impl S3Server {
    /// Starts one on a free port.
    pub fn start() -> Self {
        let port = free_port();
        let server = spawn(
            Command::new(tool("moto_server")).args(["-H", "127.0.0.1", "-p", &port.to_string()]),
            "moto_server",
            port,
        );
        Self {
            port,
            _server: server,
        }
    }

    /// `127.0.0.1:<port>`, a Bucket's `endpoint` (with `insecure: true`).
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn curl(&self, args: &[&str], path: &str) {
        let out = Command::new("curl")
            .args(["-sS", "-f", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
            .arg(format!("{ACCESS_KEY}:{SECRET_KEY}"))
            .args(args)
            .arg(self.url(path))
            .output()
            .expect("running curl");
        assert!(
            out.status.success(),
            "curl {args:?} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates the bucket `name`.
    pub fn create_bucket(&self, name: &str) {
        self.curl(&["-X", "PUT"], name);
    }

    /// Writes `key` in `bucket`.
    pub fn put(&self, bucket: &str, key: &str, content: &str) {
        self.curl(
            &[
                "-X",
                "PUT",
                "-H",
                "content-type: application/octet-stream",
                "--data-binary",
                content,
            ],
            &format!("{bucket}/{key}"),
        );
    }

    /// Deletes `key` from `bucket`.
    pub fn delete(&self, bucket: &str, key: &str) {
        self.curl(&["-X", "DELETE"], &format!("{bucket}/{key}"));
    }
}
