//! The artifact storage of source-controller: files under `<base>/<kind>/<namespace>/<name>/` — a
//! directory archived reproducibly ([`Storage::archive`]) or a stream or file stored as it is, hashed on
//! the way ([`Storage::store`]: a chart, an index, an OCI layer) — written atomically (temporary file +
//! rename in the same directory), a link to the newest (`latest.tar.gz`, or the name the kind uses),
//! [`settle`] for what every source kind does with a new artifact,
//! garbage collection by age (`--artifact-retention-ttl`) and count (`--artifact-retention-records`),
//! and removal of everything when the object goes.

use std::{
    collections::HashMap,
    io,
    path::{Component, Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use driftless_api::meta::Artifact;
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

use crate::{archive, ignore::Filter};

/// The link to the newest artifact of an object.
pub const LATEST: &str = "latest.tar.gz";

/// A storage operation failed (reason `StorageOperationFailed`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing or reading the storage directory failed.
    #[error("storage operation on {path} failed: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A path that would leave the storage directory.
    #[error("invalid artifact path {0:?}")]
    InvalidPath(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Storage settings and a lock per artifact directory.
pub struct Storage {
    base: PathBuf,
    hostname: String,
    retention_ttl: Duration,
    retention_records: usize,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    // NB: the size, mtime and digest each file had when last hashed, and when: a file whose size and
    // mtime are unchanged is hashed again only after FULL_CHECK_AFTER
    verified: Mutex<HashMap<PathBuf, (u64, SystemTime, String, std::time::Instant)>>,
}

/// How long a stored file whose size and mtime did not change is trusted before it is hashed again.
pub const FULL_CHECK_AFTER: Duration = Duration::from_secs(3600);

/// What [`Storage::check`] found of an artifact's file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Integrity {
    /// There, with the digest the artifact names.
    Intact,
    /// Not in storage.
    Missing,
    /// There with other content: the digest it has.
    Corrupted(String),
}

/// The object an artifact belongs to.
#[derive(Clone, Copy, Debug)]
pub struct Owner<'a> {
    /// Its kind (`GitRepository`).
    pub kind: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
}

impl Owner<'_> {
    /// `<kind-lower>/<namespace>/<name>`, the directory of its artifacts.
    pub fn dir(&self) -> String {
        artifact_dir(self.kind, self.namespace, self.name)
    }
}

/// What every source kind does with an artifact it just stored: the same revision and digest as
/// `previous` (the one in status) keep its `lastUpdateTime`, so an unchanged source writes no status;
/// the object's older files beyond the retention are deleted (a failure is logged: the new artifact
/// stands). Returns the artifact for status and whether it is a new one.
pub fn settle(storage: &Storage, previous: Option<&Artifact>, stored: Artifact) -> (Artifact, bool) {
    let changed = previous.is_none_or(|a| a.revision != stored.revision || a.digest != stored.digest);
    let artifact = match previous {
        Some(old) if !changed => Artifact {
            last_update_time: old.last_update_time.clone(),
            ..stored
        },
        _ => stored,
    };
    collect_garbage(storage, &artifact);
    (artifact, changed)
}

/// [`Storage::garbage_collect`] around `current`, logged.
pub fn collect_garbage(storage: &Storage, current: &Artifact) {
    match storage.garbage_collect(current) {
        Ok(deleted) if !deleted.is_empty() => {
            tracing::debug!(count = deleted.len(), "garbage collected old artifacts")
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "garbage collection failed"),
    }
}

/// `<kind-lower>/<namespace>/<name>`.
pub fn artifact_dir(kind: &str, namespace: &str, name: &str) -> String {
    format!("{}/{namespace}/{name}", kind.to_lowercase())
}

impl Storage {
    /// A storage rooted at `base` (created if missing) whose artifact URLs use `hostname`
    /// (`--storage-adv-addr`).
    pub fn new(
        base: &Path,
        hostname: &str,
        retention_ttl: Duration,
        retention_records: usize,
    ) -> Result<Self, Error> {
        std::fs::create_dir_all(base).map_err(io_err(base))?;
        let base = base.canonicalize().map_err(io_err(base))?;
        Ok(Self {
            base,
            hostname: hostname.to_string(),
            retention_ttl,
            retention_records: retention_records.max(1),
            locks: Mutex::default(),
            verified: Mutex::default(),
        })
    }

    /// The storage directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// `http://<hostname>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.hostname)
    }

    /// The local file of a storage-relative path; refuses paths that leave the storage.
    pub fn local_path(&self, path: &str) -> Result<PathBuf, Error> {
        let rel = Path::new(path);
        if path.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(Error::InvalidPath(path.to_string()));
        }
        Ok(self.base.join(rel))
    }

    /// Serialises writers of one object's artifacts (reconcile, GC, removal).
    fn lock(&self, dir: &str) -> Arc<Mutex<()>> {
        self.locks
            .lock()
            .expect("storage lock map")
            .entry(dir.to_string())
            .or_default()
            .clone()
    }

    /// Archives `source` (filtered) as `<kind>/<ns>/<name>/<file>` for `revision`, atomically, points
    /// `latest.tar.gz` at it, and returns the artifact with its digest, size and URL.
    pub fn archive(
        &self,
        owner: Owner<'_>,
        file: &str,
        revision: &str,
        source: &Path,
        filter: &Filter,
    ) -> Result<Artifact, Error> {
        self.put(owner, file, revision, Some(LATEST), |tmp| {
            archive::write_archive(source, filter, tmp).map_err(io_err(source))
        })
    }

    /// Stores what `content` reads (a chart `.tgz`, a repository index, an OCI layer) as
    /// `<kind>/<ns>/<name>/<file>` for `revision`, streamed to disk and hashed on the way, atomically;
    /// points the link `link` (`index.yaml`, `latest.tar.gz`) at it when given. Returns the artifact.
    pub fn store(
        &self,
        owner: Owner<'_>,
        file: &str,
        revision: &str,
        content: &mut dyn io::Read,
        link: Option<&str>,
    ) -> Result<Artifact, Error> {
        self.put(owner, file, revision, link, |tmp| {
            let path = tmp.path().to_path_buf();
            let mut hashing = archive::HashingWriter::new(tmp);
            io::copy(content, &mut hashing).map_err(io_err(&path))?;
            Ok(hashing.finish())
        })
    }

    /// [`Storage::store`] of the file at `path`.
    pub fn store_file(
        &self,
        owner: Owner<'_>,
        file: &str,
        revision: &str,
        path: &Path,
        link: Option<&str>,
    ) -> Result<Artifact, Error> {
        let mut content = io::BufReader::new(std::fs::File::open(path).map_err(io_err(path))?);
        self.store(owner, file, revision, &mut content, link)
    }

    /// Writes `<kind>/<ns>/<name>/<file>` with `write` (given a temporary file in the same directory,
    /// it returns that file, the digest and the size of what it wrote), then renames it into place and
    /// points `link` at it: a reader sees the old file or the new one, never a part.
    fn put(
        &self,
        owner: Owner<'_>,
        file: &str,
        revision: &str,
        link: Option<&str>,
        write: impl FnOnce(tempfile::NamedTempFile) -> Result<(tempfile::NamedTempFile, String, u64), Error>,
    ) -> Result<Artifact, Error> {
        let dir_rel = owner.dir();
        let path = format!("{dir_rel}/{file}");
        let target = self.local_path(&path)?;
        let dir = target
            .parent()
            .expect("artifact files have a directory")
            .to_path_buf();
        let lock = self.lock(&dir_rel);
        let _guard = lock.lock().expect("artifact lock");
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(io_err(&dir))?;
        let (tmp, digest, size) = write(tmp)?;
        tmp.as_file().sync_all().map_err(io_err(&target))?;
        tmp.persist(&target).map_err(|e| Error::Io {
            path: target.clone(),
            source: e.error,
        })?;
        if let Some(link) = link {
            self.link(&dir, link, file)?;
        }
        self.remember(&target, &digest);
        Ok(Artifact {
            path: path.clone(),
            url: self.url(&path),
            revision: revision.to_string(),
            digest,
            last_update_time: Time(Timestamp::now()),
            size: Some(size as i64),
            metadata: None,
        })
    }

    fn link(&self, dir: &Path, name: &str, file: &str) -> Result<(), Error> {
        let link = dir.join(name);
        let tmp = dir.join(format!(".tmp-{name}"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(file, &tmp).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &link).map_err(io_err(&link))
    }

    /// Whether the artifact's file is in storage.
    pub fn exists(&self, artifact: &Artifact) -> bool {
        self.local_path(&artifact.path).is_ok_and(|p| p.is_file())
    }

    /// Forgets what [`Storage::remember`] recorded of `path` (deleted), so the record does not outlive it.
    fn forget(&self, path: &Path) {
        self.verified.lock().expect("verified files").remove(path);
    }

    /// Records that `path` now has `digest`.
    fn remember(&self, path: &Path, digest: &str) {
        if let Ok(meta) = std::fs::metadata(path) {
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            self.verified.lock().expect("verified files").insert(
                path.to_path_buf(),
                (meta.len(), mtime, digest.to_string(), std::time::Instant::now()),
            );
        }
    }

    /// Whether the artifact's file is in storage with the digest the artifact names, cheaply: a file
    /// whose size and mtime are those it had when last hashed (by [`Storage::archive`] or here) is
    /// trusted for [`FULL_CHECK_AFTER`]; any other is hashed whole.
    pub fn check(&self, artifact: &Artifact) -> Result<Integrity, Error> {
        let path = self.local_path(&artifact.path)?;
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(Integrity::Missing),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Integrity::Missing),
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let known = self.verified.lock().expect("verified files").get(&path).cloned();
        if let Some((size, when, digest, at)) = known
            && size == meta.len()
            && when == mtime
            && digest == artifact.digest
            && at.elapsed() < FULL_CHECK_AFTER
        {
            return Ok(Integrity::Intact);
        }
        let digest = self.digest(&path)?;
        self.remember(&path, &digest);
        Ok(if digest == artifact.digest {
            Integrity::Intact
        } else {
            Integrity::Corrupted(digest)
        })
    }

    /// Deletes the artifact's file (a corrupted one, before it is rebuilt); gone already is fine.
    pub fn remove(&self, artifact: &Artifact) -> Result<(), Error> {
        let path = self.local_path(&artifact.path)?;
        self.forget(&path);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io { path, source: e }),
            _ => Ok(()),
        }
    }

    fn digest(&self, path: &Path) -> Result<String, Error> {
        let file = std::fs::File::open(path).map_err(io_err(path))?;
        let mut hashing = archive::HashingWriter::new(io::sink());
        io::copy(&mut io::BufReader::new(file), &mut hashing).map_err(io_err(path))?;
        Ok(hashing.finish().1)
    }

    /// Whether the artifact's file is in storage with the digest the artifact names.
    pub fn verify(&self, artifact: &Artifact) -> Result<bool, Error> {
        let path = self.local_path(&artifact.path)?;
        match self.digest(&path) {
            Ok(digest) => Ok(digest == artifact.digest),
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes old artifacts of the object of `current`: those older than the TTL, and the oldest beyond
    /// the retention count; never `current`. Returns what was deleted.
    pub fn garbage_collect(&self, current: &Artifact) -> Result<Vec<PathBuf>, Error> {
        let target = self.local_path(&current.path)?;
        let dir = target.parent().expect("artifact files have a directory");
        let dir_rel = Path::new(&current.path)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let lock = self.lock(&dir_rel);
        let _guard = lock.lock().expect("artifact lock");
        let mut candidates = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let path = entry.path();
            let meta = entry.metadata().map_err(io_err(&path))?;
            if !meta.is_file() || path == target || entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            candidates.push((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), path));
        }
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        let now = SystemTime::now();
        let mut deleted = Vec::new();
        for (i, (modified, path)) in candidates.into_iter().enumerate() {
            let expired = now.duration_since(modified).unwrap_or_default() > self.retention_ttl;
            // the current artifact is one of the records kept
            if expired || i + 1 >= self.retention_records {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                self.forget(&path);
                deleted.push(path);
            }
        }
        Ok(deleted)
    }

    /// Removes every artifact of the object (the finalizer's work); a missing directory is done already.
    pub fn remove_all(&self, owner: Owner<'_>) -> Result<(), Error> {
        let dir_rel = owner.dir();
        let dir = self.local_path(&dir_rel)?;
        let lock = self.lock(&dir_rel);
        let _guard = lock.lock().expect("artifact lock");
        self.verified
            .lock()
            .expect("verified files")
            .retain(|path, _| !path.starts_with(&dir));
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io { path: dir, source: e }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Owner<'static> = Owner {
        kind: "GitRepository",
        namespace: "flux-system",
        name: "podinfo",
    };

    fn source(content: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.yaml"), content).unwrap();
        dir
    }

    fn store(storage: &Storage, file: &str, content: &str) -> Artifact {
        let src = source(content);
        let filter = Filter::for_source(src.path(), None).unwrap();
        storage
            .archive(OWNER, file, &format!("main@sha1:{file}"), src.path(), &filter)
            .unwrap()
    }

    #[test]
    fn a_stream_is_stored_whole_with_its_digest_and_linked_by_name() {
        use sha2::Digest;
        let base = tempfile::tempdir().unwrap();
        let storage = Storage::new(base.path(), "sc", Duration::from_secs(60), 2).unwrap();
        let owner = Owner {
            kind: "HelmRepository",
            namespace: "flux-system",
            name: "podinfo",
        };
        // larger than any copy buffer: streamed, not read whole
        let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let artifact = storage
            .store(
                owner,
                "index-abc.yaml",
                "sha256:abc",
                &mut content.as_slice(),
                Some("index.yaml"),
            )
            .unwrap();
        let expected = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&content)));
        assert_eq!(artifact.digest, expected);
        assert_eq!(artifact.size, Some(content.len() as i64));
        assert_eq!(artifact.path, "helmrepository/flux-system/podinfo/index-abc.yaml");
        assert_eq!(
            artifact.url,
            "http://sc/helmrepository/flux-system/podinfo/index-abc.yaml"
        );
        let dir = base.path().join("helmrepository/flux-system/podinfo");
        assert_eq!(
            std::fs::read(dir.join("index.yaml")).unwrap(),
            content,
            "the link"
        );
        assert_eq!(storage.check(&artifact).unwrap(), Integrity::Intact);
        // a file, and no link: the old link stays
        let chart = base.path().join("chart.tgz");
        std::fs::write(&chart, b"chart").unwrap();
        let stored = storage
            .store_file(owner, "chart-1.0.0.tgz", "1.0.0", &chart, None)
            .unwrap();
        assert!(storage.verify(&stored).unwrap());
        assert_eq!(std::fs::read(dir.join("index.yaml")).unwrap(), content);
        // nothing half-written is left behind
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
    }

    #[test]
    fn settling_an_unchanged_artifact_keeps_its_time_and_collects_the_old_ones() {
        let base = tempfile::tempdir().unwrap();
        let storage = Storage::new(base.path(), "sc", Duration::from_secs(3600), 2).unwrap();
        let first = store(&storage, "a.tar.gz", "one");
        let (first, changed) = settle(&storage, None, first);
        assert!(changed);
        let mut old = first.clone();
        old.last_update_time = Time(Timestamp::UNIX_EPOCH);
        // the same revision stored again, byte for byte: not new, its time kept
        let again = store(&storage, "a.tar.gz", "one");
        let (again, changed) = settle(&storage, Some(&old), again);
        assert!(!changed);
        assert_eq!(again.last_update_time, old.last_update_time);
        // new revisions: new, and only the retention's records are kept
        let second = store(&storage, "b.tar.gz", "two");
        std::thread::sleep(Duration::from_millis(20));
        let third = store(&storage, "c.tar.gz", "three");
        let (third, changed) = settle(&storage, Some(&again), third);
        assert!(changed);
        assert!(storage.exists(&third) && storage.exists(&second));
        assert!(!storage.exists(&first), "beyond the two records kept");
    }

    #[test]
    fn artifacts_follow_the_flux_layout_and_verify() {
        let base = tempfile::tempdir().unwrap();
        let storage = Storage::new(
            base.path(),
            "source-controller.flux-system.svc.cluster.local.",
            Duration::from_secs(60),
            2,
        )
        .unwrap();
        let a = store(&storage, "abc.tar.gz", "one");
        assert_eq!(a.path, "gitrepository/flux-system/podinfo/abc.tar.gz");
        assert_eq!(
            a.url,
            "http://source-controller.flux-system.svc.cluster.local./gitrepository/flux-system/podinfo/abc.tar.gz"
        );
        assert!(storage.exists(&a) && storage.verify(&a).unwrap());
        let latest = base
            .path()
            .join("gitrepository/flux-system/podinfo/latest.tar.gz");
        assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("abc.tar.gz"));
        let mut tampered = a.clone();
        tampered.digest = "sha256:0000".into();
        assert!(!storage.verify(&tampered).unwrap());
        let leftovers: Vec<_> = std::fs::read_dir(base.path().join("gitrepository/flux-system/podinfo"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary files left: {leftovers:?}");
    }

    #[test]
    fn check_finds_a_replaced_file_and_records_go_with_their_files() {
        let base = tempfile::tempdir().unwrap();
        let storage = Storage::new(base.path(), "h", Duration::from_secs(3600), 1).unwrap();
        let a = store(&storage, "1.tar.gz", "1");
        assert_eq!(storage.check(&a).unwrap(), Integrity::Intact);
        let file = base.path().join(&a.path);
        std::fs::write(&file, b"something else").unwrap();
        let Integrity::Corrupted(found) = storage.check(&a).unwrap() else {
            panic!("a replaced file is not intact");
        };
        assert_ne!(found, a.digest);
        storage.remove(&a).unwrap();
        assert_eq!(storage.check(&a).unwrap(), Integrity::Missing);
        storage.remove(&a).unwrap();
        // what was hashed is forgotten when GC or removal deletes the file
        let b = store(&storage, "2.tar.gz", "2");
        std::thread::sleep(Duration::from_millis(20));
        let c = store(&storage, "3.tar.gz", "3");
        storage.garbage_collect(&c).unwrap();
        assert!(!storage.exists(&b));
        assert_eq!(
            storage.verified.lock().unwrap().len(),
            1,
            "only the current file's record"
        );
        storage.remove_all(OWNER).unwrap();
        assert!(storage.verified.lock().unwrap().is_empty());
    }

    #[test]
    fn gc_keeps_the_retention_count_and_never_the_current() {
        let base = tempfile::tempdir().unwrap();
        let storage = Storage::new(base.path(), "h", Duration::from_secs(3600), 2).unwrap();
        let old = store(&storage, "1.tar.gz", "1");
        std::thread::sleep(Duration::from_millis(20));
        let previous = store(&storage, "2.tar.gz", "2");
        std::thread::sleep(Duration::from_millis(20));
        let current = store(&storage, "3.tar.gz", "3");
        let deleted = storage.garbage_collect(&current).unwrap();
        assert_eq!(deleted.len(), 1);
        assert!(!storage.exists(&old) && storage.exists(&previous) && storage.exists(&current));
    }

    #[test]
    fn gc_deletes_expired_artifacts() {
        let base = tempfile::tempdir().unwrap();
        let storage = Storage::new(base.path(), "h", Duration::ZERO, 10).unwrap();
        let previous = store(&storage, "1.tar.gz", "1");
        std::thread::sleep(Duration::from_millis(20));
        let current = store(&storage, "2.tar.gz", "2");
        storage.garbage_collect(&current).unwrap();
        assert!(!storage.exists(&previous) && storage.exists(&current));
    }

    #[test]
    fn remove_all_deletes_the_object_directory_and_tolerates_absence() {
        let base = tempfile::tempdir().unwrap();
        let storage = Storage::new(base.path(), "h", Duration::from_secs(60), 2).unwrap();
        let a = store(&storage, "1.tar.gz", "1");
        storage.remove_all(OWNER).unwrap();
        assert!(!storage.exists(&a));
        storage.remove_all(OWNER).unwrap();
    }

    #[test]
    fn paths_that_leave_the_storage_are_refused() {
        let base = tempfile::tempdir().unwrap();
        let storage = Storage::new(base.path(), "h", Duration::from_secs(60), 2).unwrap();
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../b", ""] {
            assert!(storage.local_path(bad).is_err(), "{bad}");
        }
    }
}
