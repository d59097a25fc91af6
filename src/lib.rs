//! mqttsync: a blocking, thread-per-client MQTT client (3.1, 3.1.1, 5.0) with a C API
//! that is a drop-in replacement for Eclipse Paho C's `MQTTClient.h`.

#![warn(missing_docs)]

#[allow(non_snake_case, non_camel_case_types)]
pub mod capi;
pub mod client;
pub mod error;
pub mod persist;
pub mod proto;
pub(crate) mod proxy;
pub mod topic;
pub mod transport;
pub mod ws;

pub use client::{
    Client, ConnectInfo, ConnectOptions, Delivered, DeliveryEvent, DeliveryToken, Message,
    Messages, ReconnectOptions, State, Stats, TlsOptions, TlsVersion,
};
pub use error::{Error, LostCause, Result, Step, TlsErrorKind};
pub use proto::session::{CommandError, SessionError};
pub use proto::{ProtocolVersion, QoS};
