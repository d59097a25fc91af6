//! Connection options, server URIs and messages.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::persist::Store;
use crate::proto::{properties::id as prop, LastWill, Properties, Property, ProtocolVersion, QoS};

/// Transport scheme of a server URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `tcp://`, `mqtt://` or no scheme.
    Tcp,
    /// `ssl://`, `mqtts://`, `tls://`.
    Tls,
    /// `ws://`.
    Ws,
    /// `wss://`.
    Wss,
}

impl Scheme {
    /// True for the TLS-carrying schemes.
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Tls | Scheme::Wss)
    }
}

/// A parsed broker address: `scheme://host:port/path`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerUri {
    /// Transport.
    pub scheme: Scheme,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port (default 1883, 8883 for TLS, 80/443 for ws/wss).
    pub port: u16,
    /// WebSocket path (default `/mqtt`); empty for TCP.
    pub path: String,
    /// The URI as given.
    pub original: String,
}

impl ServerUri {
    /// Parses `tcp://`, `mqtt://`, `ssl://`, `mqtts://`, `tls://`, `ws://`, `wss://` URIs;
    /// no scheme means TCP. IPv6 literals go in brackets: `tcp://[::1]:1883`.
    pub fn parse(uri: &str) -> Result<ServerUri> {
        let bad = |why: &str| Error::InvalidArgument(format!("server URI {uri:?}: {why}"));
        let (scheme, rest) = match uri.find("://") {
            Some(i) => {
                let s = &uri[..i];
                let scheme = match s.to_ascii_lowercase().as_str() {
                    "tcp" | "mqtt" => Scheme::Tcp,
                    "ssl" | "mqtts" | "tls" => Scheme::Tls,
                    "ws" => Scheme::Ws,
                    "wss" => Scheme::Wss,
                    _ => return Err(bad("unknown scheme")),
                };
                (scheme, &uri[i + 3..])
            }
            None => (Scheme::Tcp, uri),
        };
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let default_port = match scheme {
            Scheme::Tcp => 1883,
            Scheme::Tls => 8883,
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let end = h.find(']').ok_or_else(|| bad("unclosed '['"))?;
            let host = &h[..end];
            let after = &h[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse::<u16>().map_err(|_| bad("invalid port"))?,
                None if after.is_empty() => default_port,
                None => return Err(bad("garbage after ']'")),
            };
            (host.to_string(), port)
        } else {
            match hostport.rfind(':') {
                Some(i) => (
                    hostport[..i].to_string(),
                    hostport[i + 1..]
                        .parse::<u16>()
                        .map_err(|_| bad("invalid port"))?,
                ),
                None => (hostport.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let path = match scheme {
            Scheme::Ws | Scheme::Wss if path.is_empty() => "/mqtt".to_string(),
            Scheme::Ws | Scheme::Wss => path.to_string(),
            _ => String::new(),
        };
        Ok(ServerUri {
            scheme,
            host,
            port,
            path,
            original: uri.to_string(),
        })
    }
}

impl fmt::Display for ServerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// Minimum TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.0
    Tls10,
    /// TLS 1.1
    Tls11,
    /// TLS 1.2
    Tls12,
    /// TLS 1.3
    Tls13,
}

/// TLS settings for `ssl://`, `mqtts://`, `tls://` and `wss://` servers.
///
/// The defaults verify the server's certificate against the system trust store and its
/// host name; turning either check off must be done explicitly.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// PEM file of CA certificates to trust (Paho's `trustStore`).
    pub ca_file: Option<PathBuf>,
    /// Directory of CA certificates to trust (Paho's `CApath`, e.g. `/etc/ssl/certs`): every
    /// file in it holding PEM certificates (or one DER certificate) is loaded, whatever its
    /// name, so both `c_rehash` hashed names (`1a2b3c4d.0`) and plain names work.
    pub ca_dir: Option<PathBuf>,
    /// Also trust the system's default CA store (default true).
    pub use_system_roots: bool,
    /// PEM client certificate, followed by its intermediate CA certificates (sent as the
    /// chain). May also hold the private key (then leave `client_key` unset).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate: PKCS#8 (`BEGIN PRIVATE KEY`), encrypted
    /// PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`), SEC1
    /// (`BEGIN EC PRIVATE KEY`), or a traditionally encrypted PEM key
    /// (`Proc-Type: 4,ENCRYPTED`). Needs `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Password of an encrypted private key. A wrong or missing password is a
    /// [`TlsErrorKind::Configuration`](crate::TlsErrorKind::Configuration) error.
    pub key_password: Option<String>,
    /// Verify the server certificate chain (default true).
    pub verify_certificate: bool,
    /// Verify that the certificate matches the host (default true).
    pub verify_hostname: bool,
    /// Name used for SNI and for host name verification instead of the URI's host (useful
    /// when connecting by IP address to a broker whose certificate names a host).
    pub server_name: Option<String>,
    /// ALPN protocols to offer.
    pub alpn: Vec<String>,
    /// Minimum protocol version (default: OpenSSL's, TLS 1.2 on current systems). Unlike
    /// Paho's `sslVersion` with OpenSSL 1.1+, this is enforced.
    pub min_version: Option<TlsVersion>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            ca_file: None,
            ca_dir: None,
            use_system_roots: true,
            client_cert: None,
            client_key: None,
            key_password: None,
            verify_certificate: true,
            verify_hostname: true,
            server_name: None,
            alpn: Vec::new(),
            min_version: None,
        }
    }
}

/// HTTP-level transport settings: extra headers of the WebSocket upgrade request and
/// HTTP CONNECT proxies. Set through [`ConnectOptions`].
#[derive(Debug, Clone, Default)]
pub(crate) struct HttpOptions {
    /// Extra headers of the WebSocket upgrade request, in order.
    pub headers: Vec<(String, String)>,
    /// Proxy for servers without TLS (`tcp://`, `ws://`).
    pub http_proxy: Option<crate::proxy::ProxyUri>,
    /// Proxy for servers with TLS (`ssl://`, `wss://`).
    pub https_proxy: Option<crate::proxy::ProxyUri>,
    /// Read `http_proxy` / `https_proxy` / `no_proxy` from the environment at connect time.
    pub proxy_from_env: bool,
}

/// Headers the WebSocket handshake writes itself; a caller may not set them.
const RESERVED_HEADERS: [&str; 4] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
];

fn check_header(name: &str, value: &str) -> Result<()> {
    let bad = |why: &str| Error::InvalidArgument(format!("HTTP header {name:?}: {why}"));
    let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(bad("not a valid header name"));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(bad("set by the WebSocket handshake itself"));
    }
    if value.bytes().any(|c| c == b'\r' || c == b'\n' || c == 0) {
        return Err(bad("the value holds a line break or NUL"));
    }
    Ok(())
}

/// An application message, outgoing or incoming.
///
/// An incoming QoS 1/2 message carries a receipt: the broker is told the client has it
/// (PUBACK / PUBREC) only when the application took it (automatically, see
/// [`ConnectOptions::manual_acks`]) or when [`Message::ack`] is called. Equality compares
/// the message's content and flags, not the receipt.
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
    /// A QoS 0, non-retained message.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Message {
        Message {
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            dup: false,
            packet_id: 0,
            properties: Properties::new(),
            receipt: None,
        }
    }

    /// Acknowledges this incoming QoS 1/2 message to the broker (PUBACK for QoS 1, PUBREC
    /// for QoS 2, the latter after the received-QoS 2 marker is in the store): call it
    /// once the application has done what it must with the message (written it to its
    /// database, say). Needed only with [`ConnectOptions::manual_acks`]; without it the
    /// client acknowledges on its own when the message is handed over. Any thread; never
    /// blocks (the I/O thread sends the acknowledgement).
    ///
    /// Returns `Ok(())` for messages that need no acknowledgement (QoS 0, messages built by
    /// the application). Errors: [`Error::AlreadyAcknowledged`] for a second call (also
    /// through a clone), [`Error::SessionEnded`] when the server has since started a new
    /// session (the packet id means nothing there; the broker of the old session will not
    /// resend it), [`Error::Closed`] when the client is closed.
    pub fn ack(&self) -> Result<()> {
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
    /// Publishes accepted while disconnected (beyond this they fail, counted).
    pub max_buffered: usize,
}

impl Default for ReconnectOptions {
    fn default() -> Self {
        ReconnectOptions {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            max_buffered: 10_000,
        }
    }
}

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
    pub(crate) properties: Properties,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
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
    pub(crate) on_connected: Option<ConnectedCallback>,
    pub(crate) on_connection_lost: Option<LostCallback>,
    pub(crate) on_delivered: Option<DeliveredCallback>,
    pub(crate) on_server_disconnect: Option<ServerDisconnectCallback>,
    pub(crate) error: Option<Error>,
}

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
            properties: Properties::new(),
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
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
            on_connected: None,
            on_connection_lost: None,
            on_delivered: None,
            on_server_disconnect: None,
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
    pub fn keep_alive(mut self, d: Duration) -> Self {
        self.keep_alive = d;
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
        self
    }

    /// v5 will delay interval (seconds); needs a will set before.
    pub fn will_delay(mut self, secs: u32) -> Self {
        if let Some(w) = self.will.as_mut() {
            w.properties.remove(prop::WILL_DELAY_INTERVAL);
            w.properties
                .push(Property::FourByte(prop::WILL_DELAY_INTERVAL, secs));
        }
        self
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
        match crate::proxy::ProxyUri::parse(uri) {
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
