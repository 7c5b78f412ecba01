//! Reproducible `.tar.gz`: regular files only, in sorted path order, uid/gid 0, no owner names, zero mtime,
//! modes normalised to 0644/0755, and a gzip header without time or name — so the same tree gives the same
//! bytes and digest whenever and wherever it was checked out. The digest is computed while writing.

use std::{
    fs::File,
    io::{self, Write},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

use crate::ignore::Filter;

/// A writer that hashes and counts what passes through.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The inner writer, the `sha256:<hex>` digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.written,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The files of `dir` that go into an artifact, relative, in the order they are archived.
pub fn files(dir: &Path, filter: &Filter) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    walk(dir, dir, filter, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(root: &Path, dir: &Path, filter: &Filter, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        // NB: symlink_metadata, so links are neither followed nor archived
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if !filter.is_excluded(&path, true) {
                walk(root, &path, filter, out)?;
            }
        } else if kind.is_file() && !filter.is_excluded(&path, false) {
            out.push(
                path.strip_prefix(root)
                    .expect("walked under the root")
                    .to_path_buf(),
            );
        }
    }
    Ok(())
}

/// Writes the reproducible archive of `dir` (filtered) to `out`; returns the `sha256:` digest of the
/// compressed bytes and their size.
pub fn write_archive<W: Write>(dir: &Path, filter: &Filter, out: W) -> io::Result<(W, String, u64)> {
    let gz = GzBuilder::new()
        .mtime(0)
        .write(HashingWriter::new(out), Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for rel in files(dir, filter)? {
        let path = dir.join(&rel);
        let meta = std::fs::metadata(&path)?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(meta.len());
        header.set_mode(if meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_username("")?;
        header.set_groupname("")?;
        let name = rel
            .to_str()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a non UTF-8 file name"))?;
        tar.append_data(&mut header, name, File::open(&path)?)?;
    }
    let gz = tar.into_inner()?;
    let hashing = gz.finish()?;
    Ok(hashing.finish())
}

#[cfg(test)]
mod tests {
    use std::{thread::sleep, time::Duration};

    use super::*;

    fn tree(files: &[(&str, &str, u32)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content, mode) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        dir
    }

    fn archive(dir: &Path) -> (Vec<u8>, String) {
        let filter = Filter::for_source(dir, None).unwrap();
        let (bytes, digest, size) = write_archive(dir, &filter, Vec::new()).unwrap();
        assert_eq!(size as usize, bytes.len());
        (bytes, digest)
    }

    const FILES: &[(&str, &str, u32)] = &[
        ("b/deploy.yaml", "kind: Deployment\n", 0o600),
        ("a.yaml", "kind: ConfigMap\n", 0o664),
        ("bin/run.sh", "#!/bin/sh\n", 0o700),
        (".git/HEAD", "ref: refs/heads/main\n", 0o644),
    ];

    #[test]
    fn the_same_tree_gives_the_same_bytes_whenever_it_was_written() {
        let one = tree(FILES);
        sleep(Duration::from_millis(1100));
        let two = tree(&[FILES[3], FILES[2], FILES[1], FILES[0]]);
        let (a, da) = archive(one.path());
        let (b, db) = archive(two.path());
        assert_eq!(da, db);
        assert_eq!(a, b);
        assert!(da.starts_with("sha256:") && da.len() == 7 + 64);
    }

    #[test]
    fn entries_are_sorted_normalised_and_regular_files_only() {
        let dir = tree(FILES);
        std::os::unix::fs::symlink("a.yaml", dir.path().join("link.yaml")).unwrap();
        let (bytes, _) = archive(dir.path());
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let entries: Vec<_> = tar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                    h.entry_type(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("a.yaml".to_string(), 0o644, 0, 0, tar::EntryType::Regular),
                ("b/deploy.yaml".to_string(), 0o644, 0, 0, tar::EntryType::Regular),
                ("bin/run.sh".to_string(), 0o755, 0, 0, tar::EntryType::Regular),
            ],
            ".git excluded, the symlink skipped, modes normalised"
        );
    }

    #[test]
    fn a_content_change_changes_the_digest() {
        let one = tree(FILES);
        let two = tree(&[("a.yaml", "kind: Secret\n", 0o644)]);
        assert_ne!(archive(one.path()).1, archive(two.path()).1);
    }
}
