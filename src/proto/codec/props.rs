//! Which MQTT 5 properties may appear in which packet (MQTT 5 section 2.2.2.2 table).

use crate::proto::properties::id::*;

/// A packet (or the will) that carries properties, as a bit so sets are cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ctx(u16);

impl Ctx {
    pub const CONNECT: Ctx = Ctx(1 << 0);
    pub const CONNACK: Ctx = Ctx(1 << 1);
    pub const PUBLISH: Ctx = Ctx(1 << 2);
    /// PUBACK, PUBREC, PUBREL and PUBCOMP.
    pub const PUBRESP: Ctx = Ctx(1 << 3);
    pub const SUBSCRIBE: Ctx = Ctx(1 << 4);
    pub const SUBACK: Ctx = Ctx(1 << 5);
    pub const UNSUBSCRIBE: Ctx = Ctx(1 << 6);
    pub const UNSUBACK: Ctx = Ctx(1 << 7);
    pub const DISCONNECT: Ctx = Ctx(1 << 8);
    pub const AUTH: Ctx = Ctx(1 << 9);
    /// Will properties in the CONNECT payload.
    pub const WILL: Ctx = Ctx(1 << 10);
}

const fn set(ctxs: &[Ctx]) -> u16 {
    let mut bits = 0;
    let mut i = 0;
    while i < ctxs.len() {
        bits |= ctxs[i].0;
        i += 1;
    }
    bits
}

/// The contexts in which property `id` may appear (0 for an unknown id).
fn allowed_in(id: u8) -> u16 {
    use Ctx as C;
    match id {
        PAYLOAD_FORMAT_INDICATOR
        | MESSAGE_EXPIRY_INTERVAL
        | CONTENT_TYPE
        | RESPONSE_TOPIC
        | CORRELATION_DATA => set(&[C::PUBLISH, C::WILL]),
        SUBSCRIPTION_IDENTIFIER => set(&[C::PUBLISH, C::SUBSCRIBE]),
        SESSION_EXPIRY_INTERVAL => set(&[C::CONNECT, C::CONNACK, C::DISCONNECT]),
        ASSIGNED_CLIENT_IDENTIFIER
        | SERVER_KEEP_ALIVE
        | RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => C::CONNACK.0,
        AUTHENTICATION_METHOD | AUTHENTICATION_DATA => set(&[C::CONNECT, C::CONNACK, C::AUTH]),
        REQUEST_PROBLEM_INFORMATION | REQUEST_RESPONSE_INFORMATION => C::CONNECT.0,
        WILL_DELAY_INTERVAL => C::WILL.0,
        SERVER_REFERENCE => set(&[C::CONNACK, C::DISCONNECT]),
        REASON_STRING => set(&[
            C::CONNACK,
            C::PUBRESP,
            C::SUBACK,
            C::UNSUBACK,
            C::DISCONNECT,
            C::AUTH,
        ]),
        RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | MAXIMUM_PACKET_SIZE => {
            set(&[C::CONNECT, C::CONNACK])
        }
        TOPIC_ALIAS => C::PUBLISH.0,
        USER_PROPERTY => u16::MAX,
        _ => 0,
    }
}

/// True if property `id` may appear in `ctx`.
pub(super) fn allowed(id: u8, ctx: Ctx) -> bool {
    allowed_in(id) & ctx.0 != 0
}

/// True if property `id` may appear more than once in `ctx` (user properties anywhere,
/// subscription identifiers in PUBLISH); any other repetition is a protocol error.
pub(super) fn may_repeat(id: u8, ctx: Ctx) -> bool {
    id == USER_PROPERTY || (id == SUBSCRIPTION_IDENTIFIER && ctx == Ctx::PUBLISH)
}

/// Tracks which once-only properties were seen (all known identifiers are below 64).
#[derive(Default)]
pub(super) struct Seen(u64);

impl Seen {
    /// Records `id`; false if it was already recorded.
    pub fn insert(&mut self, id: u8) -> bool {
        let bit = 1u64 << (id & 63);
        let fresh = self.0 & bit == 0;
        self.0 |= bit;
        fresh
    }
}
