//! Certificates made by the real `openssl` for TLS tests: a CA, a server certificate for 127.0.0.1 and
//! localhost signed by it, and a client certificate signed by it. Each [`Pki`] is a fresh CA, so two of
//! them do not trust each other.

use std::{fs, path::Path, process::Command};

use tempfile::TempDir;

use crate::tool;

/// A CA with a server and a client certificate, as PEM files in a temporary directory.
pub struct Pki {
    dir: TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(tool("openssl"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    /// Makes the CA (`ca.crt`), the server certificate (`server.crt`/`server.key`, for 127.0.0.1 and
    /// localhost) and the client certificate (`client.crt`/`client.key`), EC P-256, valid two days.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("driftless-pki-")
            .tempdir()
            .expect("a temp dir");
        let d = dir.path();
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let ca_subject = format!("/CN=driftless test CA {}", crate::suffix());
        let mut ca = vec!["req", "-x509"];
        ca.extend(key);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            &ca_subject,
        ]);
        ca.extend([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(d, &ca);
        for (name, usage, san) in [
            (
                "server",
                "serverAuth",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
            ),
            ("client", "clientAuth", ""),
        ] {
            let (csr, crt, k) = (
                format!("{name}.csr"),
                format!("{name}.crt"),
                format!("{name}.key"),
            );
            let subject = format!("/CN=driftless test {name}");
            let mut req = vec!["req"];
            req.extend(key);
            req.extend(["-keyout", &k, "-out", &csr, "-subj", &subject]);
            openssl(d, &req);
            let ext = format!("{name}.ext");
            fs::write(
                d.join(&ext),
                format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n{san}"),
            )
            .expect("an extensions file");
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &crt,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
        Self { dir }
    }

    /// The path of one of the files (`ca.crt`, `server.crt`, `server.key`, `client.crt`, `client.key`).
    pub fn path(&self, file: &str) -> std::path::PathBuf {
        self.dir.path().join(file)
    }

    /// The content of one of the files.
    pub fn pem(&self, file: &str) -> String {
        fs::read_to_string(self.path(file)).expect("a PEM file")
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// A new RSA key pair, `(private key in PKCS#1 PEM, public key PEM)`, as a GitHub App's.
pub fn rsa_key_pair() -> (String, String) {
    let dir = tempfile::tempdir().expect("a temp dir");
    openssl(dir.path(), &["genrsa", "-traditional", "-out", "key.pem", "2048"]);
    openssl(
        dir.path(),
        &["rsa", "-in", "key.pem", "-pubout", "-out", "pub.pem"],
    );
    let read = |f: &str| fs::read_to_string(dir.path().join(f)).expect("a PEM file");
    (read("key.pem"), read("pub.pem"))
}
