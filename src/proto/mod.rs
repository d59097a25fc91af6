//! Sans-IO MQTT protocol core: packet types, codec and the session state machine.
//!
//! Nothing in here touches sockets, threads or the clock; time is always an argument.

pub mod codec;
pub mod packet;
pub mod properties;
pub mod reason;
pub mod session;

pub use packet::*;
pub use properties::{Properties, Property};

/// Hasher for small integer keys (packet ids): one multiplication instead of SipHash.
/// Packet ids come from our own allocator or are echoed by the server; a hostile server
/// can only make its own connection's lookups slower, never wrong.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by packet id (or another small integer) with [`IdHasher`].
pub(crate) type IdMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;
/// A set of packet ids with [`IdHasher`].
pub(crate) type IdSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<IdHasher>>;

/// State that is empty while a connection is idle, kept out of line: one pointer while it
/// is not there, a box made on the first mutable use. Reads of an absent value see
/// [`Quiet::empty`]; [`Lazy::release`] frees the box once it is empty again (memory per
/// idle client: the maps and queues a busy connection needs cost 32 bytes each even when
/// empty).
#[derive(Debug)]
pub(crate) struct Lazy<T: Quiet>(Option<Box<T>>);

/// A type with a shared empty value, for [`Lazy`].
pub(crate) trait Quiet: Default + 'static {
    /// The empty value that reads of an absent [`Lazy`] see.
    fn empty() -> &'static Self;
    /// Whether this value holds nothing (its box may go).
    fn is_quiet(&self) -> bool;
}

impl<T: Quiet> Lazy<T> {
    /// Absent: no allocation.
    pub(crate) const fn new() -> Self {
        Lazy(None)
    }

    /// The value, if it has been made (mutable use without making it).
    pub(crate) fn existing_mut(&mut self) -> Option<&mut T> {
        self.0.as_deref_mut()
    }

    /// Frees the box if the value is empty; `false` if it is kept.
    pub(crate) fn release(&mut self) -> bool {
        if self.0.as_deref().is_some_and(|t| !t.is_quiet()) {
            return false;
        }
        self.0 = None;
        true
    }
}

impl<T: Quiet> Default for Lazy<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Quiet> std::ops::Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_deref().unwrap_or(T::empty())
    }
}

impl<T: Quiet> std::ops::DerefMut for Lazy<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}
