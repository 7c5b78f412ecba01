//! The tags of every scanned repository, kept on the controller's volume in an embedded database
//! (redb: one file, transactional, crash-safe), so a restarted controller has them at once and an
//! ImagePolicy needs no registry. Flux keeps them in Badger under the canonical image name alone; here
//! an ImageRepository's tags are its own (`namespace/name` and the image), so two tenants scanning the
//! same image with different credentials never read each other's scan, and deleting the object deletes
//! its tags.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// Key: `<namespace>/<name>|<canonical image>`; value: the tags as a JSON array, newest scan's order.
const TAGS: TableDefinition<&str, &[u8]> = TableDefinition::new("tags");

/// The store could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("tag database: {0}")]
pub struct Error(String);

impl<E: Into<redb::Error>> From<E> for Error {
    fn from(e: E) -> Self {
        Error(e.into().to_string())
    }
}

/// Which repository's tags.
#[derive(Clone, Copy, Debug)]
pub struct RepoId<'a> {
    /// The ImageRepository's namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its canonical image name (`status.canonicalImageName`).
    pub canonical: &'a str,
}

impl RepoId<'_> {
    fn key(&self) -> String {
        format!("{}/{}|{}", self.namespace, self.name, self.canonical)
    }

    fn prefix(namespace: &str, name: &str) -> String {
        format!("{namespace}/{name}|")
    }
}

/// The tag database.
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error(format!("creating {}: {e}", dir.display())))?;
        }
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(TAGS)?;
        txn.commit()?;
        Ok(Self { db })
    }

    /// The tags stored for `repo`; empty when it was never scanned.
    pub fn tags(&self, repo: RepoId<'_>) -> Result<Vec<String>, Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TAGS)?;
        let Some(value) = table.get(repo.key().as_str())? else {
            return Ok(Vec::new());
        };
        serde_json::from_slice(value.value())
            .map_err(|e| Error(format!("reading tags of {}: {e}", repo.key())))
    }

    /// Replaces the tags of `repo` (and any it had under another image name); returns their checksum,
    /// Flux's scan revision (Adler-32 of the JSON array, in decimal).
    pub fn set_tags(&self, repo: RepoId<'_>, tags: &[String]) -> Result<String, Error> {
        let json = serde_json::to_vec(tags).map_err(|e| Error(e.to_string()))?;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(TAGS)?;
            remove_prefix(&mut table, &RepoId::prefix(repo.namespace, repo.name))?;
            table.insert(repo.key().as_str(), json.as_slice())?;
        }
        txn.commit()?;
        Ok(adler32(&json).to_string())
    }

    /// Forgets the tags of the ImageRepository `namespace/name`.
    pub fn delete(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(TAGS)?;
            remove_prefix(&mut table, &RepoId::prefix(namespace, name))?;
        }
        txn.commit()?;
        Ok(())
    }
}

fn remove_prefix(table: &mut redb::Table<'_, &str, &[u8]>, prefix: &str) -> Result<(), Error> {
    let keys: Vec<String> = table
        .range(prefix..)?
        .map_while(|entry| {
            let (k, _) = entry.ok()?;
            let k = k.value().to_string();
            k.starts_with(prefix).then_some(k)
        })
        .collect();
    for k in keys {
        table.remove(k.as_str())?;
    }
    Ok(())
}

/// Adler-32 (`hash/adler32`), Flux's scan revision.
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id<'a>(name: &'a str, canonical: &'a str) -> RepoId<'a> {
        RepoId {
            namespace: "apps",
            name,
            canonical,
        }
    }

    #[test]
    fn tags_survive_reopening_and_belong_to_their_repository() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/tags.redb");
        let tags: Vec<String> = ["1.0.1", "1.0.0"].map(String::from).to_vec();
        {
            let store = Store::open(&path).unwrap();
            assert!(store.tags(id("web", "r/web")).unwrap().is_empty());
            let sum = store.set_tags(id("web", "r/web"), &tags).unwrap();
            // Flux's checksum of the same JSON
            assert_eq!(sum, adler32(br#"["1.0.1","1.0.0"]"#).to_string());
            store.set_tags(id("web2", "r/web"), &["x".to_string()]).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.tags(id("web", "r/web")).unwrap(), tags);
        assert_eq!(store.tags(id("web2", "r/web")).unwrap(), vec!["x".to_string()]);
        // a new image name replaces the old one's tags
        store
            .set_tags(id("web", "r/other"), &["2.0.0".to_string()])
            .unwrap();
        assert!(store.tags(id("web", "r/web")).unwrap().is_empty());
        store.delete("apps", "web").unwrap();
        assert!(store.tags(id("web", "r/other")).unwrap().is_empty());
        assert_eq!(store.tags(id("web2", "r/web")).unwrap(), vec!["x".to_string()]);
    }

    #[test]
    fn adler32_is_zlibs() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }
}
