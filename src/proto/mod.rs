//! Sans-IO MQTT protocol core: packet types, codec and the session state machine.
//!
//! Nothing in here touches sockets, threads or the clock; time is always an argument.

pub mod codec;
pub mod packet;
pub mod properties;
pub mod reason;
pub mod session;

pub use codec::{decode, encode, encoded_len, DecodeError, EncodeError, Frame, Framer};
pub use packet::*;
pub use properties::{Properties, Property, PropertyType};
