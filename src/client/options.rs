//! Connection options and messages (server URIs and TLS options live in
//! [`crate::transport::config`] and are re-exported here).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::persist::Store;
use crate::proto::{properties::id as prop, LastWill, Properties, Property, ProtocolVersion, QoS};

pub(crate) use crate::transport::config::{check_header, HttpOptions};
pub use crate::transport::config::{Scheme, ServerUri, TlsOptions, TlsPsk, TlsVersion};

/// A message payload, from whatever the application has: owned bytes are taken as they
/// are (`Vec<u8>`, `String`, `Bytes`, `Box<[u8]>`), borrowed ones copied (`&str`, `&String`,
/// `&[u8]`, `&Vec<u8>`, `&[u8; N]`, `&Bytes` is a cheap clone).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload(pub Bytes);

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Self {
        Payload(b)
    }
}
impl From<&Bytes> for Payload {
    fn from(b: &Bytes) -> Self {
        Payload(b.clone())
    }
}
impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Self {
        Payload(Bytes::from(v))
    }
}
impl From<&Vec<u8>> for Payload {
    fn from(v: &Vec<u8>) -> Self {
        Payload(Bytes::copy_from_slice(v))
    }
}
impl From<Box<[u8]>> for Payload {
    fn from(v: Box<[u8]>) -> Self {
        Payload(Bytes::from(v))
    }
}
impl From<String> for Payload {
    fn from(s: String) -> Self {
        Payload(Bytes::from(s))
    }
}
impl From<&String> for Payload {
    fn from(s: &String) -> Self {
        Payload(Bytes::copy_from_slice(s.as_bytes()))
    }
}
impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Payload(Bytes::copy_from_slice(s.as_bytes()))
    }
}
impl From<&[u8]> for Payload {
    fn from(s: &[u8]) -> Self {
        Payload(Bytes::copy_from_slice(s))
    }
}
impl<const N: usize> From<&[u8; N]> for Payload {
    fn from(s: &[u8; N]) -> Self {
        Payload(Bytes::copy_from_slice(s))
    }
}
impl<const N: usize> From<[u8; N]> for Payload {
    fn from(s: [u8; N]) -> Self {
        Payload(Bytes::copy_from_slice(&s))
    }
}

/// An application message, outgoing or incoming.
///
/// An incoming QoS 1/2 message carries a receipt: the broker is told the client has it
/// (PUBACK / PUBREC) only once the application has done with it. Without
/// [`ConnectOptions::manual_acks`] that is when the application drops a message it got
/// from [`Messages`](crate::Messages) (the last clone of it) or the receiving thread asks
/// for the next one, whichever comes first, and when an `on_message` callback returns;
/// with it, when [`Message::ack`] is called. Equality compares the message's content and
/// flags, not the receipt.
#[derive(Debug, Clone)]
pub struct Message {
    /// Topic name.
    pub topic: String,
    /// Payload (shared, never copied by the library).
    pub payload: Bytes,
    /// Quality of service.
    pub qos: QoS,
    /// Retain flag (incoming: the message came from the retained store).
    pub retain: bool,
    /// Duplicate flag (incoming only).
    pub dup: bool,
    /// Packet identifier the message arrived with (incoming QoS 1/2 only; 0 otherwise,
    /// and ignored when publishing: the session assigns ids).
    pub packet_id: u16,
    /// v5 properties (user properties, response topic, correlation data, expiry, ...).
    pub properties: Properties,
    /// The acknowledgement still owed for an incoming QoS 1/2 message.
    pub(crate) receipt: Option<super::Receipt>,
    /// The same once `recv*` returned the message (without `manual_acks`): it goes when
    /// the last clone is dropped, unless the receiving thread's next `recv*` sent it.
    pub(crate) held: Option<std::sync::Arc<super::Held>>,
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.topic == other.topic
            && self.payload == other.payload
            && self.qos == other.qos
            && self.retain == other.retain
            && self.dup == other.dup
            && self.packet_id == other.packet_id
            && self.properties == other.properties
    }
}

impl Eq for Message {}

impl Message {
    /// A QoS 0, non-retained message. The topic from `&str`, `&String` or `String`; the
    /// payload from any [`Payload`] source (`&str`, `String`, `&[u8]`, `Vec<u8>`, `Bytes`,
    /// ...; borrowed data is copied).
    pub fn new(topic: impl Into<String>, payload: impl Into<Payload>) -> Message {
        Message {
            topic: topic.into(),
            payload: payload.into().0,
            qos: QoS::AtMostOnce,
            retain: false,
            dup: false,
            packet_id: 0,
            properties: Properties::new(),
            receipt: None,
            held: None,
        }
    }

    /// Acknowledges this incoming QoS 1/2 message to the broker (PUBACK for QoS 1, PUBREC
    /// for QoS 2, the latter after the received-QoS 2 marker is in the store): call it
    /// once the application has done what it must with the message (written it to its
    /// database, say). Needed only with [`ConnectOptions::manual_acks`]; without it the
    /// client acknowledges on its own when the message is handed over. Any thread; never
    /// blocks (the I/O thread sends the acknowledgement).
    ///
    /// Without `manual_acks`, on a message from [`Messages`](crate::Messages) it sends the
    /// acknowledgement now instead of when the message is dropped, and returns `Ok(())`.
    ///
    /// Returns `Ok(())` for messages that need no acknowledgement (QoS 0, messages built by
    /// the application). Errors: [`Error::AlreadyAcknowledged`] for a second call (also
    /// through a clone), [`Error::SessionEnded`] when the server has since started a new
    /// session (the packet id means nothing there; the broker of the old session will not
    /// resend it), [`Error::Closed`] when the client is closed.
    pub fn ack(&self) -> Result<()> {
        if let Some(held) = &self.held {
            held.release(true);
            return Ok(());
        }
        match &self.receipt {
            Some(r) => r.ack(),
            None => Ok(()),
        }
    }

    /// Whether this is an incoming QoS 1/2 message whose acknowledgement has not been
    /// sent on its way yet (see [`Message::ack`]).
    pub fn needs_ack(&self) -> bool {
        self.receipt.as_ref().is_some_and(|r| r.pending())
    }

    /// Sets the QoS.
    pub fn qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// Sets the retain flag.
    pub fn retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Sets the v5 properties.
    pub fn properties(mut self, properties: Properties) -> Self {
        self.properties = properties;
        self
    }

    /// Adds a v5 user property.
    pub fn user_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties
            .push(Property::UserProperty(name.into(), value.into()));
        self
    }

    /// The payload as UTF-8 text, if it is.
    pub fn payload_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
}

/// Automatic reconnection policy.
#[derive(Debug, Clone)]
pub struct ReconnectOptions {
    /// First delay after a loss.
    pub min_delay: Duration,
    /// Largest delay (the cap of the exponential backoff).
    pub max_delay: Duration,
    /// Publishes accepted while disconnected (beyond this they fail, counted). With
    /// [`persistence`](crate::ConnectOptions::persistence), QoS 1/2 publishes are stored
    /// as they are accepted, as when connected (a kill or a close before the next
    /// connection leaves them to the next client over the store); QoS 0 ones wait in
    /// memory.
    pub max_buffered: usize,
    /// Also retry the first connect (default `false`): [`Client::connect`] then returns a
    /// client in [`State::Reconnecting`](crate::State::Reconnecting) when the broker cannot
    /// be reached yet, and connects in the background with the same backoff (publishes
    /// are buffered meanwhile; `on_connected` reports the connection). As Paho's async
    /// client and paho-mqtt do. A refused CONNACK or a bad option still fails at once.
    ///
    /// [`Client::connect`]: crate::Client::connect
    pub retry_first_connect: bool,
}

impl Default for ReconnectOptions {
    fn default() -> Self {
        ReconnectOptions {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            max_buffered: 10_000,
            retry_first_connect: false,
        }
    }
}

/// What a [`ConnectOptions::before_reconnect`] hook may change before an automatic
/// reconnect attempt: the values of the next CONNECT (they stay for later attempts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconnectCredentials {
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Bytes>,
    /// v5 CONNECT properties.
    pub properties: Properties,
}

/// The hook of [`ConnectOptions::before_reconnect`] (run on the I/O thread).
pub(crate) type BeforeReconnect = Box<dyn FnMut(&mut ReconnectCredentials) -> bool + Send>;

/// Callback types (run on the client's dispatch thread; they may call the client).
pub(crate) type MessageCallback = Box<dyn FnMut(Message) + Send>;
pub(crate) type ConnectedCallback = Box<dyn FnMut(bool) + Send>;
pub(crate) type LostCallback = Box<dyn FnMut(&Error) + Send>;
pub(crate) type DeliveredCallback = Box<dyn FnMut(&crate::client::DeliveryEvent) + Send>;
pub(crate) type ServerDisconnectCallback = Box<dyn FnMut(&crate::proto::Disconnect) + Send>;

/// Everything [`Client::connect`](crate::Client::connect) needs.
pub struct ConnectOptions {
    pub(crate) servers: Vec<ServerUri>,
    pub(crate) client_id: String,
    pub(crate) version: ProtocolVersion,
    pub(crate) clean_start: bool,
    pub(crate) keep_alive: Duration,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Bytes>,
    pub(crate) will: Option<LastWill>,
    /// `will_delay`, kept so that the order of `will` and `will_delay` does not matter.
    pub(crate) will_delay: Option<u32>,
    pub(crate) properties: Properties,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) spin_wait: Duration,
    pub(crate) max_inflight: u16,
    pub(crate) max_queued: usize,
    pub(crate) incoming_capacity: usize,
    pub(crate) max_packet_size: usize,
    pub(crate) tls: Option<TlsOptions>,
    pub(crate) http: HttpOptions,
    pub(crate) reconnect: Option<ReconnectOptions>,
    pub(crate) resubscribe: bool,
    pub(crate) persistence: Option<Box<dyn Store>>,
    pub(crate) manual_acks: bool,
    pub(crate) on_message: Option<MessageCallback>,
    /// Filled with the client for `*_with_client` callbacks.
    pub(crate) client_slot: Option<Arc<crate::client::ClientSlot>>,
    pub(crate) on_connected: Option<ConnectedCallback>,
    pub(crate) on_connection_lost: Option<LostCallback>,
    pub(crate) on_delivered: Option<DeliveredCallback>,
    pub(crate) on_server_disconnect: Option<ServerDisconnectCallback>,
    pub(crate) before_reconnect: Option<BeforeReconnect>,
    pub(crate) error: Option<Error>,
}

/// [`ConnectOptions::spin_wait`]'s default.
pub(crate) const DEFAULT_SPIN_WAIT: Duration = Duration::from_micros(50);

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("servers", &self.servers)
            .field("client_id", &self.client_id)
            .field("version", &self.version)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("username", &self.username)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("spin_wait", &self.spin_wait)
            .field("max_inflight", &self.max_inflight)
            .finish_non_exhaustive()
    }
}

impl ConnectOptions {
    /// Checks what the setters could not check alone (combinations, and the first invalid
    /// value a setter met); [`Client::connect`](crate::Client::connect) calls it first.
    pub(crate) fn validate(&mut self) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.servers.is_empty() {
            return Err(Error::InvalidArgument("no server URI".into()));
        }
        if self.keep_alive.as_secs() > u64::from(u16::MAX) {
            return Err(Error::InvalidArgument("keepalive above 65535 s".into()));
        }
        if self.client_id.is_empty() && !self.clean_start && self.version != ProtocolVersion::V5 {
            return Err(Error::InvalidArgument(
                "an empty client id needs a clean session (MQTT-3.1.3-7)".into(),
            ));
        }
        if self.will_delay.is_some() && self.will.is_none() {
            return Err(Error::InvalidArgument("will_delay without a will".into()));
        }
        if let Some(w) = &self.will {
            crate::topic::validate_topic_name(&w.topic).map_err(|e| Error::InvalidTopic {
                topic: w.topic.clone(),
                reason: e.to_string(),
            })?;
        }
        if self.version != ProtocolVersion::V5 && !self.properties.is_empty() {
            return Err(Error::InvalidArgument("properties need MQTT 5".into()));
        }
        if self.password.is_some() && self.username.is_none() && self.version != ProtocolVersion::V5
        {
            return Err(Error::InvalidArgument(
                "a password needs a user name before MQTT 5 (MQTT-3.1.2-22)".into(),
            ));
        }
        Ok(())
    }

    /// Options for one broker URI, e.g. `"tcp://localhost:1883"`, MQTT 3.1.1, clean session,
    /// keepalive 60 s, connect timeout 30 s, request timeout 10 s, window 20.
    /// An invalid URI is reported by [`Client::connect`](crate::Client::connect).
    pub fn new(server_uri: &str) -> Self {
        let mut o = ConnectOptions {
            servers: Vec::new(),
            client_id: String::new(),
            version: ProtocolVersion::V311,
            clean_start: true,
            keep_alive: Duration::from_secs(60),
            username: None,
            password: None,
            will: None,
            will_delay: None,
            properties: Properties::new(),
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            spin_wait: DEFAULT_SPIN_WAIT,
            max_inflight: 20,
            max_queued: 10_000,
            incoming_capacity: 10_000,
            max_packet_size: crate::proto::codec::MAX_REMAINING_LENGTH + 5,
            tls: None,
            http: HttpOptions::default(),
            reconnect: None,
            resubscribe: true,
            persistence: None,
            manual_acks: false,
            on_message: None,
            client_slot: None,
            on_connected: None,
            on_connection_lost: None,
            on_delivered: None,
            on_server_disconnect: None,
            before_reconnect: None,
            error: None,
        };
        o.add_server(server_uri);
        o
    }

    fn add_server(&mut self, uri: &str) {
        match ServerUri::parse(uri) {
            Ok(u) => self.servers.push(u),
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e)
                }
            }
        }
    }

    /// Adds a further broker URI, tried in order after the ones before it.
    ///
    /// Failing over to another URI of the list, the client takes that server's session
    /// (session present or not) as its own, not the one it had: the packet ids of messages
    /// received from the previous server and not yet acknowledged name other messages
    /// there, so those acknowledgements are not sent (the previous server keeps the
    /// messages and sends them again if the client comes back), and everything the new
    /// server sends is delivered. Servers that share sessions (a cluster) may therefore
    /// deliver such a message twice, QoS 2 included; none is lost. Unacknowledged
    /// publishes are resent to the new server. With [`persistence`](Self::persistence),
    /// the store records which server the received-QoS 2 markers belong to, so a client
    /// started again over it (or a C client connecting again) knows that too.
    pub fn server(mut self, uri: &str) -> Self {
        self.add_server(uri);
        self
    }

    /// Client identifier (default empty: the broker assigns one; needs a clean session).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// Protocol version (default 3.1.1).
    pub fn version(mut self, v: ProtocolVersion) -> Self {
        self.version = v;
        self
    }

    /// Clean session (3.x) / clean start (5.0). Default true.
    pub fn clean_start(mut self, clean: bool) -> Self {
        self.clean_start = clean;
        self
    }

    /// v5 Session Expiry Interval in seconds (0 = ends with the connection, u32::MAX = never).
    pub fn session_expiry(mut self, secs: u32) -> Self {
        self.properties.remove(prop::SESSION_EXPIRY_INTERVAL);
        self.properties
            .push(Property::FourByte(prop::SESSION_EXPIRY_INTERVAL, secs));
        self
    }

    /// Keepalive interval (whole seconds; zero turns it off). Default 60 s.
    ///
    /// MQTT counts keepalive in whole seconds: a fraction is rounded up (500 ms becomes
    /// 1 s), so a short keepalive never turns keepalive off. `Duration::ZERO` turns it off.
    pub fn keep_alive(mut self, d: Duration) -> Self {
        self.keep_alive = if d.subsec_nanos() > 0 {
            Duration::from_secs(d.as_secs().saturating_add(1))
        } else {
            d
        };
        self
    }

    /// User name.
    pub fn username(mut self, user: impl Into<String>) -> Self {
        self.username = Some(user.into());
        self
    }

    /// Password, as text (`&str`, `String`) or bytes (`&[u8]`, `Vec<u8>`). MQTT 3 needs a
    /// user name with it.
    pub fn password(mut self, password: impl AsRef<[u8]>) -> Self {
        self.password = Some(Bytes::copy_from_slice(password.as_ref()));
        self
    }

    /// User name and optional binary password.
    pub fn credentials(mut self, user: impl Into<String>, password: Option<&[u8]>) -> Self {
        self.username = Some(user.into());
        self.password = password.map(Bytes::copy_from_slice);
        self
    }

    /// Last will: published by the broker if the connection drops without DISCONNECT.
    pub fn will(mut self, will: Message) -> Self {
        self.will = Some(LastWill {
            topic: will.topic,
            payload: will.payload,
            qos: will.qos,
            retain: will.retain,
            properties: will.properties,
        });
        if let Some(secs) = self.will_delay {
            self.apply_will_delay(secs);
        }
        self
    }

    /// v5 will delay interval (seconds), before or after [`will`](Self::will); without a
    /// will, [`Client::connect`](crate::Client::connect) fails with `InvalidArgument`.
    pub fn will_delay(mut self, secs: u32) -> Self {
        self.will_delay = Some(secs);
        self.apply_will_delay(secs);
        self
    }

    fn apply_will_delay(&mut self, secs: u32) {
        if let Some(w) = self.will.as_mut() {
            w.properties.remove(prop::WILL_DELAY_INTERVAL);
            w.properties
                .push(Property::FourByte(prop::WILL_DELAY_INTERVAL, secs));
        }
    }

    /// Extra v5 CONNECT properties (appended).
    pub fn properties(mut self, props: Properties) -> Self {
        self.properties.0.extend(props.0);
        self
    }

    /// Deadline for the whole connect (DNS, TCP, proxy tunnel, TLS, WebSocket upgrade,
    /// CONNACK) per server. Default 30 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How long a thread that waits for a reply from the broker polls the socket before it
    /// sleeps: the CONNACK of a connect or reconnect over plain TCP, a subscribe or
    /// unsubscribe, [`DeliveryToken::wait`](crate::DeliveryToken::wait),
    /// [`Messages::recv`](crate::Messages::recv) and its kin, while they read the socket
    /// themselves (the I/O thread sleeps). Default 50 µs; `Duration::ZERO` never polls.
    /// The CONNACK wait polls four times as long: a broker takes longer over a CONNECT
    /// than over a PUBACK (with 50 µs a local mosquitto's CONNACK came after the poll on
    /// every connect of the benchmarks' VM), and a connect is rare.
    ///
    /// Waking a thread that sleeps on an idle CPU takes tens of microseconds on many
    /// machines (deep idle states; in a virtual machine, an interrupt through the
    /// hypervisor), often longer than a broker on the same host takes to answer: a
    /// `subscribe` against a local mosquitto took 100 µs sleeping and 45 µs polling on the
    /// 2-CPU virtual machine of `bench/README.md`, a QoS 1 round trip 90 µs and 30 µs, a
    /// connect 161 µs and 124 µs.
    /// Budgets above 65 ms count as 65 ms, and no poll outlasts the wait's own deadline.
    /// The poll stops as soon as bytes arrive, so a fast reply costs no more CPU than the
    /// wake-up it saves. A wait in which nothing came within the budget (a distant broker,
    /// a quiet subscription) costs it in full: after one, 15 waits in 16 sleep at once
    /// until a poll is answered again, so a slow link pays at most a sixteenth of the
    /// budget per wait. At most one thread fewer than the CPUs the process may use polls
    /// at once, across all clients (the others sleep at once): a poll must never take the
    /// CPU from the thread or broker it waits for; so never with one CPU. Never on the
    /// thread that runs this client's callbacks, which waits between messages rather than
    /// for a reply.
    pub fn spin_wait(mut self, d: Duration) -> Self {
        self.spin_wait = d;
        self
    }

    /// Default deadline of blocking calls without an explicit one (subscribe, unsubscribe,
    /// waiting for queue room, disconnect). Default 10 s.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Outgoing QoS 1/2 in-flight window (default 20, which a stock mosquitto accepts; capped
    /// by the broker's v5 Receive Maximum). At least 1.
    pub fn max_inflight(mut self, n: u16) -> Self {
        self.max_inflight = n.max(1);
        self
    }

    /// Publishes waiting for the window beyond which `publish` blocks (default 10000).
    pub fn max_queued(mut self, n: usize) -> Self {
        self.max_queued = n.max(1);
        self
    }

    /// Incoming messages buffered for the application before the client stops reading the
    /// socket (back-pressure, so memory stays bounded). Default 10000. While reading is
    /// paused no acknowledgement is read either: an application that publishes and waits
    /// for PUBACKs on topics it also subscribes to must keep taking messages.
    pub fn incoming_capacity(mut self, n: usize) -> Self {
        self.incoming_capacity = n.max(1);
        self
    }

    /// Largest incoming packet accepted (bytes). Default: the protocol maximum.
    pub fn max_packet_size(mut self, n: usize) -> Self {
        self.max_packet_size = n;
        self
    }

    /// TLS settings (needed for verification options; `ssl://` URIs use the defaults).
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Extra HTTP headers for the WebSocket upgrade request of `ws://` and `wss://`
    /// servers, sent in this order after the handshake's own (Paho C `httpHeaders`).
    /// Typical uses: `Authorization` for brokers behind an authenticating gateway, cookies,
    /// `Origin`. A `Host` or `Sec-WebSocket-Protocol` given here replaces the default one
    /// (the default subprotocol is `mqtt`; with another list the server must still choose
    /// one of them). `Connection`, `Upgrade`, `Sec-WebSocket-Key` and
    /// `Sec-WebSocket-Version` belong to the handshake and are refused, like names that are
    /// not HTTP tokens and values with line breaks: [`Client::connect`](crate::Client::connect)
    /// reports [`Error::InvalidArgument`]. Ignored for `tcp://` and `ssl://` servers.
    /// Replaces headers set before.
    pub fn http_headers(mut self, headers: Vec<(String, String)>) -> Self {
        for (k, v) in &headers {
            if let Err(e) = check_header(k, v) {
                if self.error.is_none() {
                    self.error = Some(e);
                }
            }
        }
        self.http.headers = headers;
        self
    }

    fn set_proxy(&mut self, uri: &str, https: bool) {
        match crate::transport::proxy::ProxyUri::parse(uri) {
            Ok(p) if https => self.http.https_proxy = Some(p),
            Ok(p) => self.http.http_proxy = Some(p),
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e)
                }
            }
        }
    }

    /// HTTP CONNECT proxy for servers without TLS (`tcp://`, `mqtt://`, `ws://`), as Paho C's
    /// `httpProxy`: `http://[user:password@]host[:port]` (port 8080 when none is given; the
    /// `http://` may be left out; percent-escapes in the user name and password are
    /// decoded). The client connects to the proxy, sends `CONNECT broker-host:port` (with
    /// `Proxy-Authorization: Basic` when the URI holds credentials), and speaks MQTT (or
    /// WebSocket) through the tunnel once the proxy answers 2xx. Any other answer fails the
    /// connect with [`Error::Proxy`] carrying the status (e.g. 407 for wrong credentials).
    /// DNS of the broker's name is then done by the proxy. Everything counts against the
    /// connect timeout. An invalid URI is reported by
    /// [`Client::connect`](crate::Client::connect).
    pub fn http_proxy(mut self, uri: &str) -> Self {
        self.set_proxy(uri, false);
        self
    }

    /// HTTP CONNECT proxy for servers with TLS (`ssl://`, `mqtts://`, `tls://`, `wss://`), as
    /// Paho C's `httpsProxy`. Same URI form and behaviour as [`http_proxy`](Self::http_proxy):
    /// the client still speaks plain HTTP to the proxy (TLS to the proxy itself, an
    /// `https://` proxy URI, is not supported), and the TLS session with the broker runs
    /// end to end through the tunnel, verified with the [`TlsOptions`] as without a proxy.
    pub fn https_proxy(mut self, uri: &str) -> Self {
        self.set_proxy(uri, true);
        self
    }

    /// Whether to take proxies from the environment (default `false`).
    ///
    /// By default the Rust API never reads the environment: a proxy is used only when
    /// [`http_proxy`](Self::http_proxy) / [`https_proxy`](Self::https_proxy) set one, so a
    /// program's network path does not change with the shell it runs in. With `true`,
    /// and for the kind of server that has no explicit proxy, the variables are read at
    /// every connect attempt: `http_proxy` for servers without TLS, `https_proxy` (or
    /// `HTTPS_PROXY`) for servers with TLS, as Paho C does. Unlike Paho C, `no_proxy` (or
    /// `NO_PROXY`) is honoured: a comma-separated list of host names (matching the name and
    /// its subdomains; a leading `.` or `*.` is allowed), IP addresses, CIDR blocks
    /// (`10.0.0.0/8`), each optionally with `:port`, or `*` for all. The upper-case
    /// `HTTP_PROXY` is deliberately not read (in CGI programs a request header can set it,
    /// the "httpoxy" problem). `no_proxy` does not apply to explicitly set proxies.
    /// Paho C always reads these variables, so a Paho-compatible C layer turns this on.
    pub fn proxy_from_env(mut self, on: bool) -> Self {
        self.http.proxy_from_env = on;
        self
    }

    /// Turns on automatic reconnection (off by default: a lost connection is reported and
    /// the application calls [`Client::reconnect`](crate::Client::reconnect)).
    pub fn automatic_reconnect(mut self, r: ReconnectOptions) -> Self {
        self.reconnect = Some(r);
        self
    }

    /// After a reconnect that found no session on the broker (session present = 0), send
    /// SUBSCRIBE again for every subscription granted before (default true).
    pub fn resubscribe(mut self, on: bool) -> Self {
        self.resubscribe = on;
        self
    }

    /// Stores in-flight QoS 1/2 state so it survives a process restart.
    pub fn persistence(mut self, store: Box<dyn Store>) -> Self {
        self.persistence = Some(store);
        self
    }

    /// Acknowledge incoming QoS 1/2 messages only when the application calls
    /// [`Message::ack`] (default `false`).
    ///
    /// Without it the client acknowledges a message once the application has done with it:
    /// a message returned by `recv`/`recv_timeout`/`try_recv`/`iter` of
    /// [`Messages`](crate::Messages) when the same thread asks for the next message (or at
    /// disconnect/close), a message given to the `on_message` callback when the callback
    /// returns. Either way nothing is acknowledged that
    /// the application does not have: a message still queued in the client when the process
    /// dies, the connection drops or the client is closed is sent again by the broker (in a
    /// resumed session). With manual acknowledgement the application acknowledges after it
    /// has processed the message, so processing and acknowledgement cannot come apart.
    ///
    /// Unacknowledged messages count against the broker's in-flight limit for this client
    /// (MQTT 5: the Receive Maximum the client announces, by default
    /// `min(incoming_capacity, 65535)`; MQTT 3.1.1: the broker's own setting, 20 in a stock
    /// mosquitto): a client that never acknowledges stops receiving QoS 1/2 messages.
    pub fn manual_acks(mut self, on: bool) -> Self {
        self.manual_acks = on;
        self
    }

    /// Delivers incoming messages to this callback (on the client's dispatch thread) instead
    /// of the [`Messages`](crate::Messages) channel. The callback may call the client.
    /// A QoS 1/2 message is acknowledged when the callback returns (also if it panics), or,
    /// with [`manual_acks`](Self::manual_acks), when it calls [`Message::ack`].
    pub fn on_message(mut self, f: impl FnMut(Message) + Send + 'static) -> Self {
        self.on_message = Some(Box::new(f));
        self
    }

    /// As [`on_message`](Self::on_message), with the client itself: the callback can
    /// publish a reply, subscribe or disconnect without the application handing the client
    /// in through shared state.
    ///
    /// ```no_run
    /// # use mqttsync::{Client, ConnectOptions, Message, QoS};
    /// let client = Client::connect(
    ///     ConnectOptions::new("tcp://localhost:1883").on_message_with_client(|c, m| {
    ///         let _ = c.publish(Message::new("replies", m.payload.clone()).qos(QoS::AtLeastOnce));
    ///     }),
    /// )?;
    /// # Ok::<(), mqttsync::Error>(())
    /// ```
    pub fn on_message_with_client(
        mut self,
        mut f: impl FnMut(&crate::Client, Message) + Send + 'static,
    ) -> Self {
        let slot = self.client_slot();
        self.on_message = Some(Box::new(move |m| f(slot.get(), m)));
        self
    }

    /// As [`on_connection_lost`](Self::on_connection_lost), with the client itself (to
    /// reconnect, say).
    pub fn on_connection_lost_with_client(
        mut self,
        mut f: impl FnMut(&crate::Client, &Error) + Send + 'static,
    ) -> Self {
        let slot = self.client_slot();
        self.on_connection_lost = Some(Box::new(move |e| f(slot.get(), e)));
        self
    }

    fn client_slot(&mut self) -> Arc<crate::client::ClientSlot> {
        self.client_slot
            .get_or_insert_with(Default::default)
            .clone()
    }

    /// Called on the dispatch thread after every successful (re)connect with the
    /// session-present flag.
    pub fn on_connected(mut self, f: impl FnMut(bool) + Send + 'static) -> Self {
        self.on_connected = Some(Box::new(f));
        self
    }

    /// Called on the dispatch thread when the connection is lost, with the cause.
    pub fn on_connection_lost(mut self, f: impl FnMut(&Error) + Send + 'static) -> Self {
        self.on_connection_lost = Some(Box::new(f));
        self
    }

    /// Called on the dispatch thread when an outgoing QoS 1/2 publish completes
    /// (acknowledged or refused), in acknowledgement order.
    pub fn on_delivered(
        mut self,
        f: impl FnMut(&crate::client::DeliveryEvent) + Send + 'static,
    ) -> Self {
        self.on_delivered = Some(Box::new(f));
        self
    }

    /// Called before each connect attempt made in the background (automatic reconnects,
    /// and first-connect retries with
    /// [`retry_first_connect`](ReconnectOptions::retry_first_connect)) with the user name,
    /// password and v5 CONNECT properties that attempt will send; changes apply to it and
    /// to later attempts (e.g. a refreshed token as password). Return `false` to skip the
    /// attempt (the next one follows after the usual backoff).
    ///
    /// Runs on the client's I/O thread, which waits for it: keep it short, and do not
    /// call the client from it (a call that needs the I/O thread would wait for itself).
    /// Without [`automatic_reconnect`](Self::automatic_reconnect) it is never called.
    pub fn before_reconnect(
        mut self,
        f: impl FnMut(&mut ReconnectCredentials) -> bool + Send + 'static,
    ) -> Self {
        self.before_reconnect = Some(Box::new(f));
        self
    }

    /// Called on the dispatch thread when a v5 server sends DISCONNECT (before the
    /// connection-lost callback).
    pub fn on_server_disconnect(
        mut self,
        f: impl FnMut(&crate::proto::Disconnect) + Send + 'static,
    ) -> Self {
        self.on_server_disconnect = Some(Box::new(f));
        self
    }
}
