//! mqttsync: a blocking, thread-per-client MQTT client (3.1, 3.1.1, 5.0) with a C API
//! that is a drop-in replacement for Eclipse Paho C's `MQTTClient.h`.

#![warn(missing_docs)]

pub mod proto;

#[allow(non_snake_case, non_camel_case_types)]
pub mod capi;
