//! In-flight message persistence, modelled on Paho C's `MQTTClient_persistence` interface.
//!
//! A [`Store`] is a flat key/value store opened per (client id, server URI), with the same
//! eight operations as Paho's user persistence callbacks. Two stores are provided:
//! [`MemoryStore`] (Paho's `MQTTCLIENT_PERSISTENCE_NONE` in spirit) and [`FileStore`]
//! (Paho's `MQTTCLIENT_PERSISTENCE_DEFAULT` directory layout, with atomic writes).
//!
//! What the client stores — outgoing QoS 1/2 PUBLISH, outgoing PUBREL and incoming QoS 2
//! markers — uses Paho's key names (`s-<id>`, `sc-<id>`, `r-<id>`, v5 `s5-`...) and a
//! checksummed record around the MQTT encoding of the packet, plus one record of our own
//! (`server`) naming the server whose session the markers belong to; a [`Store`] only
//! sees keys and bytes. (Inside the crate: `record` is the format, `Persister` ties a
//! store and the format together and applies the session's persistence operations,
//! `load_all` reads everything back in insertion order.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::proto::codec::EncodeError;
use crate::proto::session::{PersistKey, PersistOp};
use crate::proto::{Packet, ProtocolVersion};

pub(crate) mod file;
mod memory;
pub(crate) mod record;

pub(crate) use file::client_dir_name;
pub use file::FileStore;
pub use memory::MemoryStore;
#[doc(hidden)]
pub use memory::OneSpaceMemoryStore;

/// Why a persistence operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// A file system operation failed.
    #[error("persistence I/O error on {}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A stored record is torn, truncated or otherwise unreadable.
    #[error("corrupt persisted record {key:?}: {reason}")]
    Corrupt {
        /// The key of the record (empty when not known at the point of detection).
        key: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The store is not open.
    #[error("persistence store is not open")]
    Closed,
    /// The key is empty or contains `/`, `\`, `..` or NUL.
    #[error("invalid persistence key {0:?}")]
    InvalidKey(String),
    /// A packet could not be encoded for storage.
    #[error("cannot encode packet for persistence")]
    Encode(#[from] EncodeError),
    /// A user-supplied (C API) persistence callback returned this non-zero code.
    #[error("user persistence callback failed with code {0}")]
    User(i32),
    /// The store holds in-flight records written under the other protocol family (MQTT 5
    /// records for an MQTT 3.x client, or the reverse): they cannot be resent in this
    /// session, and skipping them would lose them without a word. Clear the store (or use
    /// the version that wrote it).
    #[error("persistence store holds {found} in-flight records (e.g. {key:?}); this client speaks {wanted}")]
    OtherVersion {
        /// One of the records.
        key: String,
        /// The family the records belong to ("MQTT 5" or "MQTT 3.x").
        found: &'static str,
        /// The family of the client.
        wanted: &'static str,
    },
}

fn family(v5: bool) -> &'static str {
    if v5 {
        "MQTT 5"
    } else {
        "MQTT 3.x"
    }
}

/// Fails with [`PersistError::OtherVersion`] when `store` (open) holds in-flight records of
/// the other protocol family than `version`'s.
pub fn check_version(store: &mut dyn Store, version: ProtocolVersion) -> Result<()> {
    for name in store.keys()? {
        if let Some((_, v5)) = record::parse_key(&name) {
            if v5 != version.is_v5() {
                return Err(PersistError::OtherVersion {
                    key: name,
                    found: family(v5),
                    wanted: family(version.is_v5()),
                });
            }
        }
    }
    Ok(())
}

impl PersistError {
    /// For [`PersistError::Corrupt`], the same error naming `key`; other errors unchanged.
    pub fn with_key(self, key: &str) -> Self {
        match self {
            PersistError::Corrupt { reason, .. } => PersistError::Corrupt {
                key: key.to_owned(),
                reason,
            },
            other => other,
        }
    }
}

/// Shorthand for results of persistence operations.
pub type Result<T, E = PersistError> = std::result::Result<T, E>;

/// A persistent key/value store for one client, mirroring Paho's `MQTTClient_persistence`
/// callbacks (`open`, `close`, `put`, `get`, `remove`, `keys`, `clear`, `containskey`).
///
/// All operations except [`Store::open`] fail with [`PersistError::Closed`] when the store is
/// not open. Keys are validated with [`validate_key`].
pub trait Store: Send {
    /// Opens (creating if needed) the store for this client id and server URI. Opening an
    /// already open store does nothing, as in Paho.
    fn open(&mut self, client_id: &str, server_uri: &str) -> Result<()>;
    /// Closes the store; a store left empty is removed (Paho's `close`).
    fn close(&mut self) -> Result<()>;
    /// Stores the concatenation of `parts` under `key`, replacing any previous value.
    /// Atomic: after a crash the key holds either the old or the new content, never a mix.
    fn put(&mut self, key: &str, parts: &[&[u8]]) -> Result<()>;
    /// The value stored under `key`, or `None`.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Removes `key`; a missing key is not an error.
    fn remove(&mut self, key: &str) -> Result<()>;
    /// All keys in the store, in no particular order.
    fn keys(&mut self) -> Result<Vec<String>>;
    /// Removes every key.
    fn clear(&mut self) -> Result<()>;
    /// Whether `key` is present.
    fn contains_key(&mut self, key: &str) -> Result<bool>;
    /// Whether what is stored outlives the process (files, a database): then the client
    /// waits for a received-QoS 2 marker to be stored before the application goes on after
    /// acknowledging (so a kill cannot duplicate more than the message in hand). `true`
    /// unless the store keeps everything in memory.
    fn is_durable(&self) -> bool {
        true
    }
}

/// Checks that `key` can be used as a store key (and as a file name): non-empty, no `/`,
/// no `\`, no `..`, no NUL.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.contains('/')
        || key.contains('\\')
        || key.contains("..")
        || key.contains('\0')
    {
        return Err(PersistError::InvalidKey(key.to_owned()));
    }
    Ok(())
}

/// What [`Persister::load`] (and the tests' `load_all`) return: the good records in
/// insertion order, and the unreadable ones by key name with their error.
pub(crate) type LoadOutcome = (Vec<(PersistKey, Packet)>, Vec<(String, PersistError)>);

/// One record read back by [`Persister::load`] (or the tests' `load_all`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Loaded {
    key: PersistKey,
    seq: u64,
    packet: Packet,
}

/// Reads every record of this protocol family (`s-`/`sc-`/`r-` for 3.x, `s5-`/`sc5-`/`r5-`
/// for 5.0; other keys such as Paho's `q-`/`c-` are ignored).
///
/// Returns the good records in insertion order (the sequence number stored in each record,
/// not the packet id, which wraps around), and the unreadable ones with their error. Corrupt
/// records are reported and left in the store: the caller decides whether to remove them.
/// A failure to list the keys is reported under the key `""`.
#[cfg(test)]
pub(crate) fn load_all(store: &mut dyn Store, version: ProtocolVersion) -> LoadOutcome {
    let (good, bad) = load_inner(store, version);
    (good.into_iter().map(|l| (l.key, l.packet)).collect(), bad)
}

/// Packet ids of the outgoing QoS 1/2 messages `store` (open) holds in flight for a client
/// speaking `version` (a PUBLISH not yet acknowledged, or a PUBREL not yet completed), in
/// the order they were first stored; unreadable records are left out. What a restarted
/// client will resend (Paho lists these as delivery tokens right after create).
pub fn pending_packet_ids(store: &mut dyn Store, version: ProtocolVersion) -> Vec<u16> {
    let (good, _) = load_inner(store, version);
    let mut ids: Vec<u16> = Vec::new();
    for l in good {
        if let PersistKey::SentPublish(id) | PersistKey::SentPubRel(id) = l.key {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

fn load_inner(
    store: &mut dyn Store,
    version: ProtocolVersion,
) -> (Vec<Loaded>, Vec<(String, PersistError)>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let keys = match store.keys() {
        Ok(k) => k,
        Err(e) => return (good, vec![(String::new(), e)]),
    };
    for name in keys {
        let Some((key, v5)) = record::parse_key(&name) else {
            continue;
        };
        if v5 != version.is_v5() {
            continue;
        }
        let bytes = match store.get(&name) {
            Ok(Some(b)) => b,
            Ok(None) => continue, // removed between keys() and get()
            Err(e) => {
                bad.push((name, e));
                continue;
            }
        };
        match record::decode_record_seq(&bytes, version).and_then(|(seq, packet)| {
            record::check_matches_key(key, &packet)?;
            Ok((seq, packet))
        }) {
            Ok((seq, packet)) => good.push(Loaded { key, seq, packet }),
            Err(e) => {
                let e = e.with_key(&name);
                bad.push((name, e));
            }
        }
    }
    good.sort_by(|a, b| {
        a.seq
            .cmp(&b.seq)
            .then_with(|| record::key_name(a.key, false).cmp(&record::key_name(b.key, false)))
    });
    bad.sort_by(|a, b| a.0.cmp(&b.0));
    (good, bad)
}

/// A message in the client's record format, for a record an application keeps in the
/// client's store until the client takes the message (MQTTAsync's buffer of publishes made
/// while disconnected: [`Client::publish_replacing`](crate::Client::publish_replacing)
/// removes such a record once the client's own is written, or for QoS 0 once the message
/// is queued for the socket). `seq` orders such records. Fails with
/// [`PersistError::Encode`] for a message that cannot be encoded.
#[doc(hidden)]
pub fn encode_message_record(
    m: &crate::Message,
    version: ProtocolVersion,
    seq: u64,
) -> Result<Vec<u8>> {
    let packet = Packet::Publish(crate::proto::Publish {
        dup: false,
        qos: m.qos,
        retain: m.retain,
        topic: m.topic.clone(),
        // Not the id it will have: the session gives it one when it takes the message
        // (QoS 0 has none).
        pkid: u16::from(m.qos != crate::QoS::AtMostOnce),
        payload: m.payload.clone(),
        properties: m.properties.clone(),
    });
    record::encode_record_seq(&packet, version, seq)
}

/// The keys named by the outgoing PUBLISH records of `store` (either protocol family) as
/// the records they took the place of ([`Persister::put_replacing`]): a record still in
/// the store under such a key holds a message the client has already taken (a kill came
/// between the two writes), and must not be sent again. Unreadable records are skipped.
#[doc(hidden)]
pub fn replaced_keys(store: &mut dyn Store) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for name in store.keys()? {
        if !matches!(
            record::parse_key(&name),
            Some((PersistKey::SentPublish(_), _))
        ) {
            continue;
        }
        if let Ok(Some(bytes)) = store.get(&name) {
            if let Some(k) = record::replaced_key(&bytes) {
                out.insert(k.to_owned());
            }
        }
    }
    Ok(out)
}

/// Reads back what [`encode_message_record`] wrote; [`PersistError::Corrupt`] for anything
/// else.
#[doc(hidden)]
pub fn decode_message_record(bytes: &[u8], version: ProtocolVersion) -> Result<crate::Message> {
    match record::decode_record(bytes, version)? {
        Packet::Publish(p) => {
            let mut m = crate::Message::new(p.topic, p.payload)
                .qos(p.qos)
                .retain(p.retain);
            m.properties = p.properties;
            Ok(m)
        }
        _ => Err(PersistError::Corrupt {
            key: String::new(),
            reason: "not a PUBLISH",
        }),
    }
}

/// Whether `bytes` are a record of the client's format whose write was cut short
/// ([`record::is_torn`]): what a kill leaves of a record being written through a store that
/// writes in place. Such a record held a packet that had not gone out yet (every record is
/// written before its packet is sent), so it can be removed; anything else unreadable may
/// hold a message and is left alone.
#[doc(hidden)]
pub fn is_torn_record(bytes: &[u8]) -> bool {
    record::is_torn(bytes)
}

/// A [`Store`] plus the record format: what the client uses to persist the session's
/// in-flight state.
///
/// Each stored record carries a sequence number so that [`Persister::load`] returns records in
/// the order they were first stored. Replacing a key keeps its sequence number (a re-stored
/// PUBLISH with DUP set keeps its place); a new key gets the next number.
#[doc(hidden)]
pub struct Persister {
    store: Box<dyn Store>,
    version: ProtocolVersion,
    next_seq: u64,
    seqs: BTreeMap<PersistKey, u64>,
    /// What the [`SERVER_KEY`] record holds: the server whose session the stored
    /// received-QoS 2 markers belong to.
    server: Option<String>,
}

/// The key of the record naming the server (its URI as the client was given it) whose
/// session the stored received-QoS 2 markers (`r-<id>`) belong to. Paho has no such
/// record: a client with several servers that restarts, or connects again, after a
/// failover would take the last server's markers for the first one's, and drop that
/// server's messages under the same packet ids as resends. Written before the first marker
/// after each change of server, removed on close when no marker is left. (Paho's own
/// restore drops a record it cannot read as a packet: a store handed back to Paho loses
/// only this record.)
pub(crate) const SERVER_KEY: &str = "server";

impl std::fmt::Debug for Persister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persister")
            .field("version", &self.version)
            .field("next_seq", &self.next_seq)
            .field("keys", &self.seqs.len())
            .finish_non_exhaustive()
    }
}

impl Persister {
    /// Wraps `store` (not yet opened) for a client speaking `version`.
    pub fn new(store: Box<dyn Store>, version: ProtocolVersion) -> Self {
        Persister {
            store,
            version,
            next_seq: 1,
            seqs: BTreeMap::new(),
            server: None,
        }
    }

    /// Opens the store and scans the existing records' headers so that new records are
    /// numbered after them. Unreadable records are skipped here (see [`Persister::load`]).
    ///
    /// Fails with [`PersistError::OtherVersion`] when the store holds records of the other
    /// protocol family.
    pub fn open(&mut self, client_id: &str, server_uri: &str) -> Result<()> {
        self.store.open(client_id, server_uri)?;
        check_version(self.store.as_mut(), self.version)?;
        self.seqs.clear();
        self.next_seq = 1;
        self.server = match self.store.get(SERVER_KEY) {
            Ok(Some(bytes)) => match record::unwrap(&bytes)
                .map(|(_, body)| String::from_utf8(body.to_vec()))
            {
                Ok(Ok(uri)) => Some(uri),
                _ => {
                    // Unknown server: the markers are taken to be the first connect's.
                    log::error!("persisted record {SERVER_KEY:?} is unreadable and was skipped");
                    None
                }
            },
            _ => None,
        };
        let v5 = self.version.is_v5();
        for name in self.store.keys()? {
            let Some((key, kv5)) = record::parse_key(&name) else {
                continue;
            };
            if kv5 != v5 {
                continue;
            }
            if let Ok(Some(bytes)) = self.store.get(&name) {
                if let Ok((seq, _)) = record::unwrap(&bytes) {
                    self.seqs.insert(key, seq);
                    self.next_seq = self.next_seq.max(seq.saturating_add(1));
                }
            }
        }
        Ok(())
    }

    /// Reads back every record of this protocol family in insertion order, and the
    /// unreadable ones (left in the store). See [`load_all`].
    pub fn load(&mut self) -> LoadOutcome {
        let (good, bad) = load_inner(self.store.as_mut(), self.version);
        for l in &good {
            self.seqs.insert(l.key, l.seq);
            self.next_seq = self.next_seq.max(l.seq.saturating_add(1));
        }
        (good.into_iter().map(|l| (l.key, l.packet)).collect(), bad)
    }

    /// Removes the record `name` if it is torn ([`is_torn_record`]); whether it did. A
    /// record that cannot be read from the store (a failing read transform) is not torn.
    pub fn remove_if_torn(&mut self, name: &str) -> Result<bool> {
        match self.store.get(name) {
            Ok(Some(bytes)) if record::is_torn(&bytes) => {
                self.store.remove(name)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Stores `packet` under `key` (replacing any previous record for that key).
    pub fn put(&mut self, key: PersistKey, packet: &Packet) -> Result<()> {
        self.put_replacing(key, packet, None)
    }

    /// As [`put`](Self::put); with `replaced`, the record names the record (not one of the
    /// session's) that held the message before the client took it, which the caller
    /// removes next: a restart that finds both knows the message was taken
    /// ([`replaced_keys`]).
    pub fn put_replacing(
        &mut self,
        key: PersistKey,
        packet: &Packet,
        replaced: Option<&str>,
    ) -> Result<()> {
        let seq = match self.seqs.get(&key) {
            Some(&s) => s,
            None => self.next_seq,
        };
        let bytes = match replaced {
            Some(r) => record::encode_record_replacing(packet, self.version, seq, r)?,
            None => record::encode_record_seq(packet, self.version, seq)?,
        };
        self.store
            .put(&record::key_name(key, self.version.is_v5()), &[&bytes])?;
        if self.seqs.insert(key, seq).is_none() {
            self.next_seq = self.next_seq.saturating_add(1);
        }
        Ok(())
    }

    /// Removes the record for `key` (missing is fine).
    pub fn remove(&mut self, key: PersistKey) -> Result<()> {
        self.store
            .remove(&record::key_name(key, self.version.is_v5()))?;
        self.seqs.remove(&key);
        Ok(())
    }

    /// The server (its URI as the client was given it) whose session the stored
    /// received-QoS 2 markers belong to, as recorded when the store was opened or since;
    /// `None` when no record says (a store written by an earlier version, or by Paho).
    pub fn server(&self) -> Option<&str> {
        self.server.as_deref()
    }

    /// Applies one change reported by the session; a received-QoS 2 marker is preceded
    /// by a record of `server` (the URI of the server whose session it belongs to) when
    /// the store names another one. The order matters after a crash: the markers of the
    /// previous server were removed (by the session, before any marker of the new one)
    /// when the record changes.
    pub fn apply_from(&mut self, op: &PersistOp, server: Option<&str>) -> Result<()> {
        if let (PersistOp::Put(PersistKey::ReceivedQos2(_), _), Some(uri)) = (op, server) {
            if self.server.as_deref() != Some(uri) {
                self.store
                    .put(SERVER_KEY, &[&record::wrap(0, uri.as_bytes())])?;
                self.server = Some(uri.to_owned());
            }
        }
        self.apply(op)
    }

    /// Applies one change reported by the session.
    pub fn apply(&mut self, op: &PersistOp) -> Result<()> {
        match op {
            PersistOp::Put(key, packet) => self.put(*key, packet),
            PersistOp::Remove(key) => self.remove(*key),
        }
    }

    /// Closes the store (removing it when empty). The server record goes first when no
    /// received-QoS 2 marker is left for it to speak for.
    pub fn close(&mut self) -> Result<()> {
        let markers = self
            .seqs
            .keys()
            .any(|k| matches!(k, PersistKey::ReceivedQos2(_)));
        let removed = if self.server.is_some() && !markers {
            self.server = None;
            self.store.remove(SERVER_KEY)
        } else {
            Ok(())
        };
        self.store.close().and(removed)
    }

    /// The underlying store (for records that are not the session's).
    pub fn store_mut(&mut self) -> &mut dyn Store {
        self.store.as_mut()
    }

    /// Gives back the underlying store.
    #[cfg(test)]
    pub fn into_store(self) -> Box<dyn Store> {
        self.store
    }
}

#[cfg(test)]
mod tests;
