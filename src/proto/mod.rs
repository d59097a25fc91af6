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
