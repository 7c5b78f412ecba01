//! For consumers (kustomize-controller, helm-controller): download an artifact, verify its digest while
//! streaming it to disk, and unpack it safely — refusing absolute paths, `..`, links, devices and
//! archives over a size limit — so nothing from a tarball lands outside the target directory.

use std::{
    fs::File,
    io::{self, Read, Write},
    path::{Component, Path, PathBuf},
};

use futures::StreamExt;

use crate::archive::HashingWriter;

/// Limits on what a consumer accepts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest download, compressed (bytes).
    pub max_download: u64,
    /// Largest total of unpacked file sizes (bytes).
    pub max_unpacked: u64,
    /// Most entries in the archive.
    pub max_entries: u64,
    /// Skip link entries instead of refusing the archive (Flux skips them in OCI layers, which are
    /// not ours; our own artifacts never hold any).
    pub skip_links: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_download: 100 << 20,
            max_unpacked: 1 << 30,
            max_entries: 100_000,
            skip_links: false,
        }
    }
}

/// Why an artifact could not be fetched or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP request failed.
    #[error("failed to download artifact from {url}: {source}")]
    Download {
        /// The artifact URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("failed to download artifact from {url}, status: {status}")]
    Status {
        /// The artifact URL.
        url: String,
        /// The HTTP status.
        status: reqwest::StatusCode,
    },
    /// The digest names an algorithm we do not compute.
    #[error("unsupported digest {0:?}: only sha256 is supported")]
    UnsupportedDigest(String),
    /// The bytes do not have the digest the source advertised.
    #[error("failed to verify artifact: computed digest {computed} doesn't match advertised '{expected}'")]
    DigestMismatch {
        /// The advertised digest.
        expected: String,
        /// What the downloaded bytes hash to.
        computed: String,
    },
    /// The archive or download is larger than allowed.
    #[error("artifact exceeds the limit: {0}")]
    TooLarge(String),
    /// An entry would land outside the target directory, or is not a regular file or directory.
    #[error("refusing tarball entry {entry:?}: {why}")]
    UnsafeEntry {
        /// The entry's path as written in the archive.
        entry: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Reading or writing files failed.
    #[error("failed to unpack artifact into {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An HTTP client for artifact downloads (rustls with the ring provider, `timeout` per request).
pub fn http_client(timeout: std::time::Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("an HTTP client")
}

/// Downloads `url`, checks it has `digest`, and unpacks it into `dest` (created if missing); returns
/// the size of the files unpacked.
pub async fn fetch_and_unpack(
    client: &reqwest::Client,
    url: &str,
    digest: &str,
    dest: &Path,
    limits: Limits,
) -> Result<u64, Error> {
    if !digest.starts_with("sha256:") {
        return Err(Error::UnsupportedDigest(digest.to_string()));
    }
    let download = |source| Error::Download {
        url: url.to_string(),
        source,
    };
    let resp = client.get(url).send().await.map_err(download)?;
    if !resp.status().is_success() {
        return Err(Error::Status {
            url: url.to_string(),
            status: resp.status(),
        });
    }
    let tmp = tempfile::tempfile().map_err(io_err(dest))?;
    let mut hashing = HashingWriter::new(tmp);
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(download)?;
        hashing.write_all(&chunk).map_err(io_err(dest))?;
        if hashing.written() > limits.max_download {
            return Err(Error::TooLarge(format!(
                "download over {} bytes",
                limits.max_download
            )));
        }
    }
    let (mut file, computed, _) = hashing.finish();
    if computed != digest {
        return Err(Error::DigestMismatch {
            expected: digest.to_string(),
            computed,
        });
    }
    io::Seek::rewind(&mut file).map_err(io_err(dest))?;
    let dest = dest.to_path_buf();
    tokio::task::spawn_blocking(move || unpack(file, &dest, limits))
        .await
        .expect("unpacking does not panic")
}

/// Unpacks a `.tar.gz` (or a plain `.tar`, told apart by gzip's magic bytes) into `dest`, refusing
/// anything unsafe (see [`Error::UnsafeEntry`]); returns the size of the files unpacked.
pub fn unpack(reader: impl Read, dest: &Path, limits: Limits) -> Result<u64, Error> {
    std::fs::create_dir_all(dest).map_err(io_err(dest))?;
    let mut reader = io::BufReader::new(reader);
    let gzip = io::BufRead::fill_buf(&mut reader)
        .map_err(io_err(dest))?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut archive = tar::Archive::new(reader);
    let mut total = 0u64;
    let mut count = 0u64;
    for entry in archive.entries().map_err(io_err(dest))? {
        let mut entry = entry.map_err(io_err(dest))?;
        count += 1;
        if count > limits.max_entries {
            return Err(Error::TooLarge(format!(
                "more than {} entries",
                limits.max_entries
            )));
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).to_string();
        let rel = PathBuf::from(&name);
        let unsafe_entry = |why| Error::UnsafeEntry {
            entry: name.clone(),
            why,
        };
        if rel.is_absolute() {
            return Err(unsafe_entry("absolute path"));
        }
        for c in rel.components() {
            match c {
                Component::Normal(_) | Component::CurDir => {}
                Component::ParentDir => return Err(unsafe_entry("path escapes the target directory")),
                Component::RootDir | Component::Prefix(_) => return Err(unsafe_entry("absolute path")),
            }
        }
        let target = dest.join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(io_err(&target))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                total = total.saturating_add(entry.header().size().unwrap_or(u64::MAX));
                if total > limits.max_unpacked {
                    return Err(Error::TooLarge(format!(
                        "unpacked size over {} bytes",
                        limits.max_unpacked
                    )));
                }
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                let mode = entry.header().mode().unwrap_or(0o644);
                let mut out = File::create(&target).map_err(io_err(&target))?;
                // NB: bounded copy: the header size is checked above, the reader cannot exceed it
                io::copy(&mut (&mut entry).take(limits.max_unpacked), &mut out).map_err(io_err(&target))?;
                let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode))
                    .map_err(io_err(&target))?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link if limits.skip_links => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                return Err(unsafe_entry("links are not allowed"));
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                return Err(unsafe_entry("device and fifo entries are not allowed"));
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName => {}
            _ => return Err(unsafe_entry("unsupported entry type")),
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A .tar.gz with raw entries, bypassing the tar crate's own path checks.
    fn tarball(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // write the name bytes directly so `..` and absolute paths reach the archive
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if !link.is_empty() {
                gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_cksum();
            builder.append(&h, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn unpack_bytes(bytes: &[u8], limits: Limits) -> (tempfile::TempDir, Result<u64, Error>) {
        let dir = tempfile::tempdir().unwrap();
        let result = unpack(bytes, &dir.path().join("out"), limits);
        (dir, result)
    }

    #[test]
    fn regular_trees_unpack() {
        let bytes = tarball(&[
            ("apps/app.yaml", tar::EntryType::Regular, b"kind: ConfigMap\n", ""),
            ("run.sh", tar::EntryType::Regular, b"#!/bin/sh\n", ""),
        ]);
        let (dir, result) = unpack_bytes(&bytes, Limits::default());
        result.unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out/apps/app.yaml")).unwrap(),
            "kind: ConfigMap\n"
        );
    }

    #[test]
    fn unsafe_entries_are_refused_and_nothing_escapes() {
        let cases: &[(&str, tar::EntryType, &str, &str)] = &[
            ("../escape.yaml", tar::EntryType::Regular, "", "escapes"),
            ("a/../../escape.yaml", tar::EntryType::Regular, "", "escapes"),
            ("/tmp/abs.yaml", tar::EntryType::Regular, "", "absolute"),
            ("link", tar::EntryType::Symlink, "/etc/passwd", "links"),
            ("hard", tar::EntryType::Link, "apps/app.yaml", "links"),
            ("dev", tar::EntryType::Char, "", "device"),
            ("fifo", tar::EntryType::Fifo, "", "fifo"),
        ];
        for (name, kind, link, why) in cases {
            let bytes = tarball(&[(name, *kind, b"x", link)]);
            let (dir, result) = unpack_bytes(&bytes, Limits::default());
            let err = result.expect_err(name).to_string();
            assert!(err.contains(why), "{name}: {err}");
            assert!(!dir.path().join("escape.yaml").exists());
        }
    }

    #[test]
    fn links_can_be_skipped_and_plain_tars_unpack() {
        let bytes = tarball(&[
            ("link", tar::EntryType::Symlink, b"", "/etc/passwd"),
            ("app.yaml", tar::EntryType::Regular, b"kind: A", ""),
        ]);
        let skipping = Limits {
            skip_links: true,
            ..Limits::default()
        };
        let (dir, result) = unpack_bytes(&bytes, skipping);
        result.unwrap();
        assert!(!dir.path().join("out/link").exists(), "the link was skipped");
        assert_eq!(
            std::fs::read(dir.path().join("out/app.yaml")).unwrap(),
            b"kind: A"
        );
        // the same entries, not gzipped
        let mut plain = Vec::new();
        io::copy(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain).unwrap();
        let (dir, result) = unpack_bytes(&plain, skipping);
        result.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("out/app.yaml")).unwrap(),
            b"kind: A"
        );
    }

    #[test]
    fn archives_over_the_limits_are_refused() {
        let bytes = tarball(&[("big", tar::EntryType::Regular, &[0u8; 4096], "")]);
        let (_dir, result) = unpack_bytes(
            &bytes,
            Limits {
                max_unpacked: 1024,
                ..Limits::default()
            },
        );
        assert!(matches!(result, Err(Error::TooLarge(_))));
        let many: Vec<_> = (0..5)
            .map(|i| (format!("f{i}"), tar::EntryType::Regular, &b"x"[..], ""))
            .collect();
        let many: Vec<_> = many.iter().map(|(n, k, d, l)| (n.as_str(), *k, *d, *l)).collect();
        let (_dir, result) = unpack_bytes(
            &tarball(&many),
            Limits {
                max_entries: 3,
                ..Limits::default()
            },
        );
        assert!(matches!(result, Err(Error::TooLarge(_))));
    }
}
