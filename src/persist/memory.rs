//! In-memory [`Store`].

use std::collections::HashMap;

use super::{client_dir_name, validate_key, PersistError, Result, Store};

/// A [`Store`] kept in memory: nothing survives the process, but the contents do survive a
/// `close`/`open` of the same client id and server URI (useful to simulate a restart).
///
/// Like the file store, each (client id, server URI) pair has its own key space, and an empty
/// key space is dropped on `close`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    spaces: HashMap<String, HashMap<String, Vec<u8>>>,
    current: Option<String>,
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

    fn space(&mut self) -> Result<&mut HashMap<String, Vec<u8>>> {
        let name = self.current.as_ref().ok_or(PersistError::Closed)?;
        Ok(self.spaces.entry(name.clone()).or_default())
    }
}

impl Store for MemoryStore {
    fn is_durable(&self) -> bool {
        false
    }

    fn open(&mut self, client_id: &str, server_uri: &str) -> Result<()> {
        if self.current.is_none() {
            let name = client_dir_name(client_id, server_uri);
            self.spaces.entry(name.clone()).or_default();
            self.current = Some(name);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        let name = self.current.take().ok_or(PersistError::Closed)?;
        if self.spaces.get(&name).is_some_and(|s| s.is_empty()) {
            self.spaces.remove(&name);
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
