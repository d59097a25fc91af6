//! The C API: a drop-in replacement for Eclipse Paho C's synchronous `MQTTClient.h`
//! (source and ABI compatible with Paho C 1.3.11/1.3.12).
//!
//! - [`types`]: `#[repr(C)]` structures, typedefs and constants with Paho's layout;
//! - [`properties`]: `MQTTProperties_*`, `MQTTPropertyName`, `MQTTReasonCode_toString`;
//! - [`misc`]: `MQTTClient_strerror`, version info, global init, trace, free functions;
//! - [`convert`]: Rust <-> C conversions for the client functions;
//! - [`ffi`]: the panic boundary, structure checks and `malloc` helpers;
//! - [`trace`]: the process-wide trace sink.
//!
//! The C header `include/mqttsync.h` is generated from this module by `build.rs`
//! (cbindgen, configured by `cbindgen.toml`); `include/MQTTClient.h` and the other Paho
//! header names include it.

pub mod async_client;
pub mod async_types;
pub mod client;
pub mod connect_opts;
pub mod convert;
pub mod ffi;
pub mod handles;
pub mod misc;
pub mod persistence;
pub mod properties;
pub mod trace;
pub mod types;

pub use async_types::*;
pub use types::*;
