//! In-flight message persistence (placeholder until the store lands).

/// Persistence failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// I/O.
    #[error("io")]
    Io,
}

/// A key-value store for in-flight messages.
pub trait Store: Send {
    /// Opens the store for a client.
    fn open(&mut self, client_id: &str, server_uri: &str) -> Result<(), PersistError>;
    /// Closes it.
    fn close(&mut self) -> Result<(), PersistError>;
    /// Writes atomically.
    fn put(&mut self, key: &str, parts: &[&[u8]]) -> Result<(), PersistError>;
    /// Reads.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, PersistError>;
    /// Removes.
    fn remove(&mut self, key: &str) -> Result<(), PersistError>;
    /// Lists keys.
    fn keys(&mut self) -> Result<Vec<String>, PersistError>;
    /// Removes all.
    fn clear(&mut self) -> Result<(), PersistError>;
    /// Whether a key exists.
    fn contains_key(&mut self, key: &str) -> Result<bool, PersistError>;
}
