//! Transports: DNS with a deadline, TCP (socket2), TLS (native-tls), WebSocket
//! ([`crate::ws`]) and HTTP CONNECT proxies, one `Stream` type.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::client::options::{HttpOptions, Scheme, ServerUri, TlsOptions, TlsVersion};
use crate::error::{Error, Result, Step, TlsErrorKind};

/// A connected byte stream to the broker.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<native_tls::TlsStream<TcpStream>>),
    /// WebSocket over a `Tcp` or `Tls` stream.
    Ws(Box<crate::ws::WsStream>),
}

impl Stream {
    /// The underlying TCP socket.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => s.get_ref(),
            Stream::Ws(s) => s.get_ref().tcp(),
        }
    }

    /// Switches the socket between blocking and non-blocking mode.
    pub fn set_nonblocking(&self, nb: bool) -> io::Result<()> {
        if let (Stream::Ws(s), true) = (self, nb) {
            s.connected();
        }
        self.tcp().set_nonblocking(nb)
    }

    /// Read/write timeouts for the blocking phase (connect handshake).
    pub fn set_timeouts(&self, d: Option<Duration>) -> io::Result<()> {
        let d = d.map(|d| d.max(Duration::from_millis(1)));
        self.tcp().set_read_timeout(d)?;
        self.tcp().set_write_timeout(d)
    }

    /// Closes both directions without any protocol goodbye.
    pub fn shutdown(&self) {
        let _ = self.tcp().shutdown(std::net::Shutdown::Both);
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.tcp().as_raw_fd()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Ws(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    // std's TcpStream writes with MSG_NOSIGNAL on Linux, so a vanished peer gives EPIPE,
    // never SIGPIPE, also when the library is loaded into a C program.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Ws(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Ws(s) => s.flush(),
        }
    }
}

fn remaining(deadline: Instant, step: Step, total: Duration) -> Result<Duration> {
    let now = Instant::now();
    if now >= deadline {
        return Err(Error::timeout(step, total));
    }
    Ok(deadline - now)
}

/// Resolves `host:port` on a helper thread so that the deadline holds even when the
/// system resolver hangs. IPv6 and IPv4 addresses are interleaved (IPv6 first).
pub fn resolve(
    host: &str,
    port: u16,
    deadline: Instant,
    total: Duration,
) -> Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let left = remaining(deadline, Step::Dns, total)?;
    let (tx, rx) = crossbeam_channel::bounded(1);
    let h = host.to_string();
    std::thread::Builder::new()
        .name("mqttsync-dns".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let r = (h.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>());
            let _ = tx.send(r);
        })
        .map_err(Error::Io)?;
    let addrs = match rx.recv_timeout(left) {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            return Err(Error::Dns {
                host: host.to_string(),
                source: e,
            })
        }
        Err(_) => return Err(Error::timeout(Step::Dns, total)),
    };
    if addrs.is_empty() {
        return Err(Error::Dns {
            host: host.to_string(),
            source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
        });
    }
    let (v6, v4): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|a| a.is_ipv6());
    let mut out = Vec::with_capacity(v6.len() + v4.len());
    let (mut a, mut b) = (v6.into_iter(), v4.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => break,
            (x, y) => {
                out.extend(x);
                out.extend(y);
            }
        }
    }
    Ok(out)
}

/// Connects to the first address that accepts, trying every address in turn within the
/// deadline; sets TCP_NODELAY and keeps the socket blocking.
pub fn connect_tcp(addrs: &[SocketAddr], deadline: Instant, total: Duration) -> Result<TcpStream> {
    let mut last: Option<Error> = None;
    for (i, addr) in addrs.iter().enumerate() {
        let left = remaining(deadline, Step::TcpConnect, total)?;
        // Leave time for the addresses after this one, unless this is the last.
        let share = if i + 1 < addrs.len() {
            (left / 2).max(Duration::from_millis(250)).min(left)
        } else {
            left
        };
        let sock = Socket::new(
            Domain::for_address(*addr),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .map_err(Error::Io)?;
        match sock.connect_timeout(&(*addr).into(), share) {
            Ok(()) => {
                sock.set_nodelay(true).map_err(Error::Io)?;
                return Ok(sock.into());
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut && Instant::now() >= deadline => {
                return Err(Error::timeout(Step::TcpConnect, total));
            }
            Err(e) => {
                log::debug!("TCP connect to {addr} failed: {e}");
                last = Some(Error::Tcp {
                    addr: addr.to_string(),
                    source: e,
                });
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::InvalidArgument("no address to connect to".into())))
}

fn tls_config_error(msg: String) -> Error {
    Error::Tls {
        kind: TlsErrorKind::Configuration,
        message: msg,
    }
}

fn read_file(p: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| tls_config_error(format!("{}: {e}", p.display())))
}

/// Builds a native-tls connector from the options.
pub fn tls_connector(opts: &TlsOptions) -> Result<native_tls::TlsConnector> {
    let mut b = native_tls::TlsConnector::builder();
    b.disable_built_in_roots(!opts.use_system_roots);
    b.danger_accept_invalid_certs(!opts.verify_certificate);
    b.danger_accept_invalid_hostnames(!opts.verify_hostname);
    if let Some(ca) = &opts.ca_file {
        let pem = read_file(ca)?;
        let certs = native_tls::Certificate::stack_from_pem(&pem)
            .map_err(|e| tls_config_error(format!("CA file {}: {e}", ca.display())))?;
        if certs.is_empty() {
            return Err(tls_config_error(format!(
                "CA file {} holds no certificate",
                ca.display()
            )));
        }
        for c in certs {
            b.add_root_certificate(c);
        }
    }
    if let Some(dir) = &opts.ca_dir {
        let rd = std::fs::read_dir(dir)
            .map_err(|e| tls_config_error(format!("CA dir {}: {e}", dir.display())))?;
        for ent in rd.flatten() {
            let p = ent.path();
            if !p.is_file() {
                continue;
            }
            let Ok(pem) = std::fs::read(&p) else { continue };
            if let Ok(certs) = native_tls::Certificate::stack_from_pem(&pem) {
                for c in certs {
                    b.add_root_certificate(c);
                }
            }
        }
    }
    if let Some(cert) = &opts.client_cert {
        let cert_pem = read_file(cert)?;
        let key_pem = match &opts.client_key {
            Some(k) => read_file(k)?,
            None => cert_pem.clone(),
        };
        let id = native_tls::Identity::from_pkcs8(&cert_pem, &key_pem)
            .map_err(|e| tls_config_error(format!("client certificate/key: {e}")))?;
        b.identity(id);
    }
    if let Some(v) = opts.min_version {
        b.min_protocol_version(Some(match v {
            TlsVersion::Tls10 => native_tls::Protocol::Tlsv10,
            TlsVersion::Tls11 => native_tls::Protocol::Tlsv11,
            TlsVersion::Tls12 => native_tls::Protocol::Tlsv12,
        }));
    }
    if !opts.alpn.is_empty() {
        let v: Vec<&str> = opts.alpn.iter().map(String::as_str).collect();
        b.request_alpns(&v);
    }
    b.build().map_err(|e| tls_config_error(e.to_string()))
}

/// Classifies a handshake error message into a [`TlsErrorKind`].
pub fn classify_tls_error(msg: &str) -> TlsErrorKind {
    let m = msg.to_ascii_lowercase();
    if m.contains("hostname mismatch")
        || m.contains("host name mismatch")
        || m.contains("ip address mismatch")
    {
        TlsErrorKind::NameMismatch
    } else if m.contains("expired") || m.contains("not yet valid") {
        TlsErrorKind::Expired
    } else if m.contains("unable to get local issuer")
        || m.contains("self-signed")
        || m.contains("self signed")
        || m.contains("unknown ca")
        || m.contains("unable to get issuer")
    {
        TlsErrorKind::UnknownCa
    } else if m.contains("alert")
        || m.contains("handshake failure")
        || m.contains("certificate required")
    {
        TlsErrorKind::HandshakeRefused
    } else {
        TlsErrorKind::Other
    }
}

/// Opens the transport for `uri` (DNS, TCP, TLS, WebSocket upgrade), all within
/// `deadline`, without proxy or extra HTTP headers.
/// The returned stream is blocking with read/write timeouts set to the time left.
pub fn open(
    uri: &ServerUri,
    tls: Option<&TlsOptions>,
    deadline: Instant,
    total: Duration,
) -> Result<Stream> {
    open_with(uri, tls, &HttpOptions::default(), deadline, total)
}

/// [`open`] with the HTTP options: a CONNECT proxy (explicit or from the environment) and
/// the extra headers of the WebSocket upgrade.
pub(crate) fn open_with(
    uri: &ServerUri,
    tls: Option<&TlsOptions>,
    http: &HttpOptions,
    deadline: Instant,
    total: Duration,
) -> Result<Stream> {
    let env = |k: &str| std::env::var(k).ok();
    let tcp = match crate::proxy::select(http, uri, &env)? {
        Some(p) => crate::proxy::connect(&p, &uri.host, uri.port, deadline, total)?,
        None => {
            let addrs = resolve(&uri.host, uri.port, deadline, total)?;
            connect_tcp(&addrs, deadline, total)?
        }
    };
    let _ = SockRef::from(&tcp).set_keepalive(false);
    let base = match uri.scheme {
        Scheme::Tcp | Scheme::Ws => {
            let s = Stream::Tcp(tcp);
            s.set_timeouts(Some(remaining(deadline, Step::ConnAck, total)?))?;
            Ok(s)
        }
        Scheme::Tls | Scheme::Wss => {
            let default = TlsOptions::default();
            let opts = tls.unwrap_or(&default);
            let connector = tls_connector(opts)?;
            let left = remaining(deadline, Step::TlsHandshake, total)?;
            tcp.set_read_timeout(Some(left))?;
            tcp.set_write_timeout(Some(left))?;
            let name = opts.server_name.clone().unwrap_or_else(|| uri.host.clone());
            match connector.connect(&name, tcp) {
                Ok(s) => {
                    let s = Stream::Tls(Box::new(s));
                    s.set_timeouts(Some(remaining(deadline, Step::ConnAck, total)?))?;
                    Ok(s)
                }
                Err(native_tls::HandshakeError::Failure(e)) => {
                    let message = e.to_string();
                    Err(Error::Tls {
                        kind: classify_tls_error(&message),
                        message,
                    })
                }
                Err(native_tls::HandshakeError::WouldBlock(_)) => {
                    Err(Error::timeout(Step::TlsHandshake, total))
                }
            }
        }
    }?;
    match uri.scheme {
        Scheme::Ws | Scheme::Wss => {
            let ws = crate::ws::handshake(base, uri, &http.headers, deadline, total)?;
            Ok(Stream::Ws(Box::new(ws)))
        }
        Scheme::Tcp | Scheme::Tls => Ok(base),
    }
}
