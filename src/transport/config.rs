//! Transport configuration: server URIs and the scheme table (the one place that maps a
//! scheme name to a transport), TLS options, HTTP (WebSocket headers, proxies) options.
//! `client` re-exports what users need.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};

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
    /// The scheme table, the one place that maps a URI scheme name (any case) to its
    /// transport: `tcp`/`mqtt`, `ssl`/`mqtts`/`tls`, `ws`, `wss`.
    pub fn from_name(name: &str) -> Option<Scheme> {
        match name.to_ascii_lowercase().as_str() {
            "tcp" | "mqtt" => Some(Scheme::Tcp),
            "ssl" | "mqtts" | "tls" => Some(Scheme::Tls),
            "ws" => Some(Scheme::Ws),
            "wss" => Some(Scheme::Wss),
            _ => None,
        }
    }

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
                let scheme = Scheme::from_name(&uri[..i]).ok_or_else(|| bad("unknown scheme"))?;
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
            // A path means nothing on a TCP or TLS connection: most likely a mistake
            // (a WebSocket URI with the wrong scheme), so it is refused, not ignored.
            _ if !path.is_empty() && path != "/" => {
                return Err(bad("a path is only meaningful for ws:// and wss://"))
            }
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
    /// Restricts the cipher suites offered, in OpenSSL's cipher list syntax (`:`-separated,
    /// e.g. `"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256"`; Paho's
    /// `enabledCipherSuites`). Entries naming TLS 1.3 suites (`TLS_AES_128_GCM_SHA256`,
    /// `TLS_AES_256_GCM_SHA384`, `TLS_CHACHA20_POLY1305_SHA256`, ...) restrict TLS 1.3; the
    /// other entries restrict TLS 1.2 and below. A protocol version none of whose suites is
    /// named keeps OpenSSL's defaults for it (as Paho, which passes the list to
    /// `SSL_CTX_set_cipher_list`: a list of TLS 1.2 names leaves TLS 1.3 as it is; add
    /// `min_version` or a TLS 1.3 name to pin that down too). A list OpenSSL cannot use is
    /// a [`TlsErrorKind::Configuration`](crate::TlsErrorKind::Configuration) error; a list
    /// the server shares no suite with fails the handshake
    /// ([`TlsErrorKind::HandshakeRefused`](crate::TlsErrorKind::HandshakeRefused)).
    ///
    /// Linux only (OpenSSL): elsewhere a connect with this set fails with a
    /// `Configuration` error rather than use other ciphers than asked. `None` (the default)
    /// and `""` mean the TLS library's defaults.
    pub ciphers: Option<String>,
    /// TLS-PSK: authenticate with a pre-shared key instead of (or, with TLS 1.3 and a
    /// server that also has a certificate, ahead of) a certificate; see [`TlsPsk`]. The key
    /// is offered with the cipher suites of `ciphers`, or OpenSSL's default list (which
    /// holds the PSK suites) when `ciphers` is unset. Certificate options stay in force for
    /// servers that answer with a certificate anyway.
    ///
    /// Linux only (OpenSSL): elsewhere a connect with this set fails with a
    /// `Configuration` error.
    pub psk: Option<TlsPsk>,
}

/// A pre-shared key for TLS-PSK ([`TlsOptions::psk`]): a fixed identity and key, or a
/// callback asked during each handshake.
///
/// ```
/// use mqttsync::{TlsOptions, TlsPsk};
/// // mosquitto: `psk_hint ...` and a `psk_file` line `sensor-17:00112233445566778899aabbccddeeff`
/// let key = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
///            0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
/// let tls = TlsOptions { psk: Some(TlsPsk::new("sensor-17", key)), ..Default::default() };
/// # let _ = tls;
/// ```
#[derive(Clone)]
pub struct TlsPsk(PskSource);

/// The function behind [`TlsPsk::from_callback`].
type PskFn = dyn Fn(Option<&[u8]>) -> Option<(Vec<u8>, Vec<u8>)> + Send + Sync;

#[derive(Clone)]
enum PskSource {
    Fixed { identity: Vec<u8>, key: Vec<u8> },
    Callback(Arc<PskFn>),
}

impl TlsPsk {
    /// Longest identity OpenSSL accepts (bytes, without a terminating NUL).
    pub const MAX_IDENTITY_LEN: usize = 128;
    /// Longest key OpenSSL accepts (bytes).
    pub const MAX_KEY_LEN: usize = 256;

    /// A fixed identity (text, without NUL bytes) and key (the raw bytes, not hex; mosquitto's
    /// `psk_file` holds the hex form).
    pub fn new(identity: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        TlsPsk(PskSource::Fixed {
            identity: identity.into(),
            key: key.into(),
        })
    }

    /// A callback that gets the server's identity hint (TLS 1.2 servers may send one; TLS
    /// 1.3 has none) and returns `(identity, key)`, or `None` to give up (the handshake then
    /// fails). It runs on the thread doing the handshake: the one calling
    /// [`Client::connect`](crate::Client::connect), or the client's I/O thread when it
    /// reconnects. An identity longer than [`MAX_IDENTITY_LEN`](Self::MAX_IDENTITY_LEN) or
    /// holding a NUL byte, an empty key or one longer than
    /// [`MAX_KEY_LEN`](Self::MAX_KEY_LEN) counts as `None`, and so does a panic.
    pub fn from_callback(
        f: impl Fn(Option<&[u8]>) -> Option<(Vec<u8>, Vec<u8>)> + Send + Sync + 'static,
    ) -> Self {
        TlsPsk(PskSource::Callback(Arc::new(f)))
    }

    /// The identity and key to use for a server that sent `hint`, checked against the
    /// limits above.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn credentials(&self, hint: Option<&[u8]>) -> Option<(Vec<u8>, Vec<u8>)> {
        let (identity, key) = match &self.0 {
            PskSource::Fixed { identity, key } => (identity.clone(), key.clone()),
            PskSource::Callback(f) => f(hint)?,
        };
        let usable = identity.len() <= Self::MAX_IDENTITY_LEN
            && !identity.contains(&0)
            && !key.is_empty()
            && key.len() <= Self::MAX_KEY_LEN;
        usable.then_some((identity, key))
    }
}

impl fmt::Debug for TlsPsk {
    // Never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            PskSource::Fixed { identity, key } => f
                .debug_struct("TlsPsk")
                .field("identity", &String::from_utf8_lossy(identity))
                .field("key", &format_args!("<{} bytes>", key.len()))
                .finish(),
            PskSource::Callback(_) => f.write_str("TlsPsk(<callback>)"),
        }
    }
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
            ciphers: None,
            psk: None,
        }
    }
}

/// HTTP-level transport settings: extra headers of the WebSocket upgrade request and
/// HTTP CONNECT proxies. Set through [`ConnectOptions`](crate::ConnectOptions).
#[derive(Debug, Clone, Default)]
pub(crate) struct HttpOptions {
    /// Extra headers of the WebSocket upgrade request, in order.
    pub headers: Vec<(String, String)>,
    /// Proxy for servers without TLS (`tcp://`, `ws://`).
    pub http_proxy: Option<crate::transport::proxy::ProxyUri>,
    /// Proxy for servers with TLS (`ssl://`, `wss://`).
    pub https_proxy: Option<crate::transport::proxy::ProxyUri>,
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

pub(crate) fn check_header(name: &str, value: &str) -> Result<()> {
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
