//! In-memory [`Store`]s.

use std::collections::BTreeMap;

use super::{client_dir_name, validate_key, PersistError, Result, Store};

/// One key space's records, with the [`Store`] operations on them (keys validated).
#[derive(Debug, Default)]
struct Records(BTreeMap<String, Vec<u8>>);

impl Records {
    fn put(&mut self, key: &str, parts: &[&[u8]]) -> Result<()> {
        validate_key(key)?;
        self.0.insert(key.to_owned(), parts.concat());
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        validate_key(key)?;
        Ok(self.0.get(key).cloned())
    }

    fn remove(&mut self, key: &str) -> Result<()> {
        validate_key(key)?;
        self.0.remove(key);
        Ok(())
    }

    fn keys(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    fn contains_key(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        Ok(self.0.contains_key(key))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A [`Store`] kept in memory: nothing survives the process, but the contents do survive a
/// `close`/`open` of the same client id and server URI (useful to simulate a restart).
///
/// Like the file store, each (client id, server URI) pair has its own key space, and an empty
/// key space is dropped on `close`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Closed key spaces that hold records, by name (an empty one is not kept).
    spaces: BTreeMap<String, Records>,
    /// The open key space: its name and records, out of `spaces` while open (an idle
    /// client with nothing in flight keeps no allocation here but the name).
    current: Option<(String, Records)>,
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

    fn space(&mut self) -> Result<&mut Records> {
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
        self.space()?.put(key, parts)
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        self.space()?.get(key)
    }

    fn remove(&mut self, key: &str) -> Result<()> {
        self.space()?.remove(key)
    }

    fn keys(&mut self) -> Result<Vec<String>> {
        Ok(self.space()?.keys())
    }

    fn clear(&mut self) -> Result<()> {
        self.space()?.clear();
        Ok(())
    }

    fn contains_key(&mut self, key: &str) -> Result<bool> {
        self.space()?.contains_key(key)
    }
}

/// A [`Store`] kept in memory with one key space, whatever client id and server URI it is
/// opened with: for a store that is only ever opened for one client (the C API's
/// `MQTTCLIENT_PERSISTENCE_NONE`, whose handle opens it with its create arguments). It
/// keeps no key space name, which a [`MemoryStore`] keeps per client (memory per handle).
/// Records survive `close`/`open`.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct OneSpaceMemoryStore {
    records: Records,
    open: bool,
}

impl OneSpaceMemoryStore {
    fn space(&mut self) -> Result<&mut Records> {
        if self.open {
            Ok(&mut self.records)
        } else {
            Err(PersistError::Closed)
        }
    }
}

impl Store for OneSpaceMemoryStore {
    fn is_durable(&self) -> bool {
        false
    }

    fn open(&mut self, _client_id: &str, _server_uri: &str) -> Result<()> {
        self.open = true;
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        if !std::mem::replace(&mut self.open, false) {
            return Err(PersistError::Closed);
        }
        Ok(())
    }

    fn put(&mut self, key: &str, parts: &[&[u8]]) -> Result<()> {
        self.space()?.put(key, parts)
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        self.space()?.get(key)
    }

    fn remove(&mut self, key: &str) -> Result<()> {
        self.space()?.remove(key)
    }

    fn keys(&mut self) -> Result<Vec<String>> {
        Ok(self.space()?.keys())
    }

    fn clear(&mut self) -> Result<()> {
        self.space()?.clear();
        Ok(())
    }

    fn contains_key(&mut self, key: &str) -> Result<bool> {
        self.space()?.contains_key(key)
    }
}
