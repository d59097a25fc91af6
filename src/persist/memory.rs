//! In-memory [`Store`].

use std::collections::BTreeMap;

use super::{client_dir_name, validate_key, PersistError, Result, Store};

/// A [`Store`] kept in memory: nothing survives the process, but the contents do survive a
/// `close`/`open` of the same client id and server URI (useful to simulate a restart).
///
/// Like the file store, each (client id, server URI) pair has its own key space, and an empty
/// key space is dropped on `close`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Closed key spaces that hold records, by name (an empty one is not kept).
    spaces: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// The open key space: its name and records, out of `spaces` while open (an idle
    /// client with nothing in flight keeps no allocation here but the name).
    current: Option<(String, BTreeMap<String, Vec<u8>>)>,
}

impl MemoryStore {
    /// An empty, closed store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the store is open.
    pub fn is_open(&self) -> bool {
        self.current.is_some()
    }

    fn space(&mut self) -> Result<&mut BTreeMap<String, Vec<u8>>> {
        self.current
            .as_mut()
            .map(|(_, records)| records)
            .ok_or(PersistError::Closed)
    }
}

impl Store for MemoryStore {
    fn is_durable(&self) -> bool {
        false
    }

    fn open(&mut self, client_id: &str, server_uri: &str) -> Result<()> {
        if self.current.is_none() {
            let name = client_dir_name(client_id, server_uri);
            let records = self.spaces.remove(&name).unwrap_or_default();
            self.current = Some((name, records));
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        let (name, records) = self.current.take().ok_or(PersistError::Closed)?;
        if !records.is_empty() {
            self.spaces.insert(name, records);
        }
        Ok(())
    }

    fn put(&mut self, key: &str, parts: &[&[u8]]) -> Result<()> {
        validate_key(key)?;
        let space = self.space()?;
        space.insert(key.to_owned(), parts.concat());
        Ok(())
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        validate_key(key)?;
        Ok(self.space()?.get(key).cloned())
    }

    fn remove(&mut self, key: &str) -> Result<()> {
        validate_key(key)?;
        self.space()?.remove(key);
        Ok(())
    }

    fn keys(&mut self) -> Result<Vec<String>> {
        Ok(self.space()?.keys().cloned().collect())
    }

    fn clear(&mut self) -> Result<()> {
        self.space()?.clear();
        Ok(())
    }

    fn contains_key(&mut self, key: &str) -> Result<bool> {
        validate_key(key)?;
        Ok(self.space()?.contains_key(key))
    }
}
