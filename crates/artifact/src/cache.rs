//! A consumer's cache of unpacked artifacts, keyed by digest: the Kustomizations built from one artifact
//! (a monorepo, one path each) download, verify and unpack it once, not once each per reconcile.
//!
//! An artifact is content-addressed, so the tree unpacked for a digest is the tree of every URL
//! advertising that digest. Trees stay while they fit in the cache's byte budget; the least recently used
//! go first, and a tree still being read when it is evicted is deleted when its last reader is done.
//! Concurrent requests for one digest share one download. A failed download caches nothing.

use std::{
    collections::HashMap,
    io,
    path::Path,
    sync::{Arc, Mutex},
};

use crate::fetch::{Error, Limits, fetch_and_unpack};

/// One unpacked artifact; its directory is deleted when the last holder drops it after eviction.
#[derive(Debug)]
pub struct Unpacked {
    dir: tempfile::TempDir,
    size: u64,
}

impl Unpacked {
    /// The directory the artifact is unpacked in: read it, never write it (other builds share it).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Mirrors the tree into `dest` (created) with hard links — files are shared, not copied, and new
    /// files written into `dest` stay there — copying where a link cannot be made. Never write into a
    /// file of the mirror: it is the cached file.
    pub fn link_into(&self, dest: &Path) -> io::Result<()> {
        link_tree(self.dir.path(), dest)
    }
}

fn link_tree(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            link_tree(&source, &target)?;
        } else if std::fs::hard_link(&source, &target).is_err() {
            std::fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

type Slot = Arc<tokio::sync::OnceCell<Arc<Unpacked>>>;

#[derive(Default)]
struct Entries {
    slots: HashMap<String, (Slot, u64)>,
    tick: u64,
}

/// Unpacked artifacts by digest, under a private temporary directory removed with the cache.
pub struct UnpackCache {
    dir: tempfile::TempDir,
    budget: u64,
    entries: Mutex<Entries>,
}

impl std::fmt::Debug for UnpackCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnpackCache")
            .field("dir", &self.dir.path())
            .field("budget", &self.budget)
            .finish()
    }
}

impl UnpackCache {
    /// An empty cache keeping trees up to `budget` bytes of files in all; with 0 it keeps none (each
    /// request downloads, and its tree goes when the caller drops it).
    pub fn new(budget: u64) -> io::Result<Self> {
        Ok(Self {
            dir: tempfile::Builder::new()
                .prefix("driftless-artifacts-")
                .tempdir()?,
            budget,
            entries: Mutex::default(),
        })
    }

    /// The tree of the artifact with `digest`, downloaded from `url`, verified and unpacked (see
    /// [`fetch_and_unpack`]) unless it is cached already.
    pub async fn get(
        &self,
        client: &reqwest::Client,
        url: &str,
        digest: &str,
        limits: Limits,
    ) -> Result<Arc<Unpacked>, Error> {
        if self.budget == 0 {
            return self.fetch(client, url, digest, limits).await;
        }
        let slot = {
            let mut entries = self.entries.lock().expect("cache lock");
            entries.tick += 1;
            let tick = entries.tick;
            let (slot, used) = entries.slots.entry(digest.to_string()).or_default();
            *used = tick;
            slot.clone()
        };
        let unpacked = slot
            .get_or_try_init(|| self.fetch(client, url, digest, limits))
            .await;
        match unpacked {
            Ok(unpacked) => {
                let unpacked = unpacked.clone();
                let evicted = self.evict(digest);
                if !evicted.is_empty() {
                    // NB: the last holder of an evicted tree deletes it: not on this async thread
                    tokio::task::spawn_blocking(move || drop(evicted));
                }
                Ok(unpacked)
            }
            Err(e) => {
                // NB: forget the empty slot, unless another request filled it meanwhile
                let mut entries = self.entries.lock().expect("cache lock");
                if entries
                    .slots
                    .get(digest)
                    .is_some_and(|(s, _)| Arc::ptr_eq(s, &slot) && !s.initialized())
                {
                    entries.slots.remove(digest);
                }
                Err(e)
            }
        }
    }

    async fn fetch(
        &self,
        client: &reqwest::Client,
        url: &str,
        digest: &str,
        limits: Limits,
    ) -> Result<Arc<Unpacked>, Error> {
        // NB: dropped on failure, the directory goes with what was unpacked into it
        let dir = tempfile::tempdir_in(self.dir.path()).map_err(|source| Error::Io {
            path: self.dir.path().to_path_buf(),
            source,
        })?;
        let size = fetch_and_unpack(client, url, digest, dir.path(), limits).await?;
        Ok(Arc::new(Unpacked { dir, size }))
    }

    /// Removes the least recently used trees (never `keep`) until the rest fit in the budget; returns
    /// them, for the caller to drop off the lock.
    fn evict(&self, keep: &str) -> Vec<Slot> {
        let mut evicted = Vec::new();
        let mut entries = self.entries.lock().expect("cache lock");
        let size = |slot: &Slot| slot.get().map_or(0, |u| u.size);
        let mut total: u64 = entries.slots.values().map(|(slot, _)| size(slot)).sum();
        while total > self.budget {
            let oldest = entries
                .slots
                .iter()
                .filter(|(digest, (slot, _))| digest.as_str() != keep && slot.initialized())
                .min_by_key(|(_, (_, used))| *used)
                .map(|(digest, _)| digest.clone());
            let Some(oldest) = oldest else { break };
            if let Some((slot, _)) = entries.slots.remove(&oldest) {
                total -= size(&slot);
                evicted.push(slot);
            }
        }
        evicted
    }

    /// How many trees are cached.
    pub fn len(&self) -> usize {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .slots
            .values()
            .filter(|(slot, _)| slot.initialized())
            .count()
    }

    /// Whether no tree is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
