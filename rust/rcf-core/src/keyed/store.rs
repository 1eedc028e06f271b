//! Where evicted keys go: the [`Store`] trait (get / put of a key's forest bytes), a directory
//! store, and an in-memory store for tests. A key's record is exactly [`Forest::to_bytes`]
//! (versioned and checksummed), so `RandomCutForest.from_bytes(record)` reads it too.
//!
//! [`Forest::to_bytes`]: crate::Forest::to_bytes
use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::seed::fnv1a64;

/// Saved forests by key. Errors are the store's own (a Python exception in the binding).
pub trait Store {
    /// The store's error type.
    type Error;
    /// The bytes saved for `key`, or `None` when the store has none.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, Self::Error>;
    /// Saves `bytes` for `key`, replacing what was there.
    fn put(&mut self, key: &str, bytes: &[u8]) -> Result<(), Self::Error>;
}

/// No store: nothing is ever found, and saving is not possible (the collection never evicts
/// to it; idle keys are forgotten).
pub struct NoStore;

impl Store for NoStore {
    type Error = Infallible;
    fn get(&mut self, _key: &str) -> Result<Option<Vec<u8>>, Infallible> {
        Ok(None)
    }
    fn put(&mut self, _key: &str, _bytes: &[u8]) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Records in memory (tests, and a model of any key-value store).
#[derive(Default, Debug, Clone)]
pub struct MemStore {
    /// The records.
    pub records: HashMap<String, Vec<u8>>,
    /// Number of `put` calls so far.
    pub puts: usize,
}

impl Store for MemStore {
    type Error = Infallible;
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, Infallible> {
        Ok(self.records.get(key).cloned())
    }
    fn put(&mut self, key: &str, bytes: &[u8]) -> Result<(), Infallible> {
        self.puts += 1;
        self.records.insert(key.to_owned(), bytes.to_vec());
        Ok(())
    }
}

/// One file per key in a directory; written to a temporary file and renamed into place, so a
/// process that dies leaves the old record or the new one, never half of one. (No fsync per
/// record: surviving a power loss is the file system's business.)
#[derive(Debug, Clone)]
pub struct DirStore {
    dir: PathBuf,
}

impl DirStore {
    /// A store in `dir` (created with its parents when missing).
    pub fn new(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        Ok(DirStore { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `key`: see [`file_name`].
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.dir.join(file_name(key))
    }
}

/// A key's file name: ASCII letters, digits, `-` and `_` as they are, every other byte of the
/// UTF-8 key as `%XX`, then `.rcf`. Names longer than 120 characters keep their first 100 and
/// add `~` and the key's FNV-1a hash in hex (a collision is caught on load: the record's seed
/// must be the key's).
pub fn file_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len() + 4);
    for &b in key.as_bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    if name.len() > 120 {
        name.truncate(100);
        name.push_str(&format!("~{:016x}", fnv1a64(key.as_bytes())));
    }
    name.push_str(".rcf");
    name
}

impl Store for DirStore {
    type Error = std::io::Error;

    fn get(&mut self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path_of(key)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn put(&mut self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path_of(key);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            std::fs::rename(&tmp, &path)
        };
        let r = write();
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(file_name("host-1"), "host-1.rcf");
        assert_eq!(file_name("a/b"), "a%2Fb.rcf");
        assert_eq!(file_name(".."), "%2E%2E.rcf");
        assert_eq!(file_name("é"), "%C3%A9.rcf");
        let long = "x".repeat(500);
        let n = file_name(&long);
        assert!(n.len() < 140, "{n}");
        assert_ne!(n, file_name(&"x".repeat(501)));
    }

    #[test]
    fn directory_store_round_trips_and_misses_cleanly() {
        let dir = std::env::temp_dir().join(format!("rcf-keyed-{}", std::process::id()));
        let mut s = DirStore::new(&dir).unwrap();
        assert_eq!(s.get("k/1").unwrap(), None);
        s.put("k/1", b"abc").unwrap();
        s.put("k/1", b"abcd").unwrap();
        assert_eq!(s.get("k/1").unwrap().as_deref(), Some(&b"abcd"[..]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
