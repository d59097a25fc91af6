//! mqttsync: a blocking, thread-per-client MQTT client (3.1, 3.1.1, 5.0) with a C API
//! that is a drop-in replacement for Eclipse Paho C's `MQTTClient.h`.
//!
//! Connect with [`Client::connect`] and [`ConnectOptions`], publish a [`Message`] (a
//! [`DeliveryToken`] tells when the server has it), receive from [`Client::messages`] or with
//! callbacks. Everything fails with one [`Error`]. In-flight messages survive a crash with a
//! [`persist::FileStore`]; [`topic`] checks and matches topic names and filters; the MQTT
//! vocabulary the API uses ([`QoS`], [`SubscribeFilter`], [`Properties`], reason codes in
//! [`reason`] ...) is re-exported here.
//!
//! The protocol core, the transports and the C layer are not part of the Rust API (see
//! `src/lib.rs` for how tests and fuzz targets reach the internals).

#![warn(missing_docs)]

// The C API: its `#[no_mangle] extern "C"` functions are exported from the static and shared
// libraries whatever this module's visibility; public (and hidden from the documentation)
// only so that cbindgen and the C-side tests see the items. It is built on the public Rust
// API only (see its module documentation).
#[doc(hidden)]
#[allow(non_snake_case, non_camel_case_types)]
pub mod capi;
mod client;
mod error;
pub mod persist;
mod proto;
pub mod topic;
pub(crate) mod tracehook;
mod transport;

pub use client::{
    Client, ConnectInfo, ConnectOptions, Delivered, DeliveryEvent, DeliveryToken, Message,
    Messages, Payload, ReconnectCredentials, ReconnectOptions, Scheme, ServerUri, State, Stats,
    TlsOptions, TlsPsk, TlsVersion,
};
pub use error::{Error, LostCause, Result, Step, TlsErrorKind};
pub use proto::codec::{DecodeError, EncodeError};
pub use proto::properties::{Properties, Property};
pub use proto::session::{CommandError, SessionError};
pub use proto::{
    Disconnect, ProtocolVersion, QoS, RetainHandling, SubAck, SubscribeFilter, SubscribeOptions,
    UnsubAck,
};

/// MQTT 5 properties: the list type, one property, and the property identifiers.
pub mod properties {
    pub use crate::proto::properties::{
        id, property_name, property_type, Properties, Property, PropertyType,
    };
}

/// MQTT reason codes (v5) with their names, and the names of v3 CONNACK return codes.
pub mod reason {
    pub use crate::proto::reason::*;
}

/// Internals for this crate's own tests, fuzz targets and the examples' mini broker: the
/// codec, the session state machine and every packet type, the persistence record format,
/// the transport. **Not part of the API**: hidden from the documentation, no stability
/// promise, changed in any release without notice.
///
/// Why a hidden public module rather than `#[cfg(fuzzing)]` (as quinn does for its fuzz
/// targets) or `#[cfg(test)]`: integration tests (`tests/*.rs`), the fuzz crate (`fuzz/`,
/// built with `--cfg fuzzing`) and the examples are all separate crates built against the
/// ordinary library, where neither cfg is set; one module reached the same way by all of
/// them keeps a single build of the library and one list of what the internals are. The
/// modules themselves stay private (`mod proto`, `mod transport`), so nothing here leaks
/// into the public paths.
#[doc(hidden)]
pub mod internals {
    /// The sans-IO protocol core, with the layout the tests were written against.
    pub mod proto {
        pub use crate::proto::codec::{
            decode, encode, encoded_len, DecodeError, EncodeError, Frame, Framer,
        };
        pub use crate::proto::packet::*;
        pub use crate::proto::properties::{Properties, Property, PropertyType};
        pub use crate::proto::{codec, properties, reason, session};
    }
    /// Persistence internals: the record format and the file store's directory names.
    pub mod persist {
        pub use crate::persist::file::client_dir_name;
        pub use crate::persist::Persister;
        /// The record format of stored packets.
        pub mod record {
            pub use crate::persist::record::*;
        }
    }
    /// Opening a transport stream (TCP, TLS, WebSocket) without a client.
    pub mod transport {
        pub use crate::transport::{open, Stream};
    }
}
