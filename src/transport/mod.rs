//! Transports: DNS with a deadline and TCP ([`tcp`]), TLS ([`tls`]), WebSocket ([`ws`]) and
//! HTTP CONNECT proxies ([`proxy`]), one [`Stream`] type; their configuration (server URI
//! and scheme table, TLS and HTTP options) in [`config`].

pub mod config;
pub mod proxy;
mod tcp;
mod tls;
pub mod ws;

#[allow(unused_imports)]
use tcp::*;
#[allow(unused_imports)]
pub use tcp::{connect_tcp, resolve};
#[allow(unused_imports)]
use tls::*;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use crate::error::{Error, Result, Step, TlsErrorKind};
use config::{HttpOptions, Scheme, ServerUri, TlsOptions, TlsVersion};

/// A connected byte stream to the broker.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<native_tls::TlsStream<TcpStream>>),
    /// TLS over TCP through OpenSSL directly: used when [`TlsOptions::ciphers`] or
    /// [`TlsOptions::psk`] is set, which native-tls cannot express.
    #[cfg(target_os = "linux")]
    OpenSsl(Box<openssl::ssl::SslStream<TcpStream>>),
    /// WebSocket over a `Tcp` or `Tls` stream.
    Ws(Box<crate::transport::ws::WsStream>),
}

impl Stream {
    /// The underlying TCP socket.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => s.get_ref(),
            #[cfg(target_os = "linux")]
            Stream::OpenSsl(s) => s.get_ref(),
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
            #[cfg(target_os = "linux")]
            Stream::OpenSsl(s) => s.read(buf),
            Stream::Ws(s) => s.read(buf),
        }
    }
}

/// A TLS write; after a reset, the alert the server sent before it closed says why.
fn write_tls<S: Read + Write>(s: &mut S, buf: &[u8]) -> io::Result<usize> {
    match s.write(buf) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ) =>
        {
            Err(pending_tls_alert(s).unwrap_or(e))
        }
        r => r,
    }
}

impl Write for Stream {
    // std's TcpStream writes with MSG_NOSIGNAL on Linux, so a vanished peer gives EPIPE,
    // never SIGPIPE, also when the library is loaded into a C program.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => write_tls(s.as_mut(), buf),
            #[cfg(target_os = "linux")]
            Stream::OpenSsl(s) => write_tls(s.as_mut(), buf),
            Stream::Ws(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            #[cfg(target_os = "linux")]
            Stream::OpenSsl(s) => s.flush(),
            Stream::Ws(s) => s.flush(),
        }
    }
}

/// Turns an I/O error of the connection into an [`Error`], lifting TLS failures that show
/// up only after the handshake into [`Error::Tls`]: with TLS 1.3 the server checks the
/// client certificate after the client has finished its handshake, so a refusal (alert
/// `certificate required`, `unknown ca`, ...) arrives on the first read, or as a reset on
/// the first write (then [`Stream`]'s `write` fetches the alert from the receive buffer).
pub fn io_error(e: io::Error) -> Error {
    if is_tls_protocol_error(&e) {
        let text = e.get_ref().map_or_else(|| e.to_string(), |i| i.to_string());
        #[cfg(target_os = "linux")]
        let reasons = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<openssl::ssl::Error>())
            .and_then(|ssl| ssl.ssl_error())
            .map_or_else(|| short_reasons(&text), stack_reasons);
        #[cfg(not(target_os = "linux"))]
        let reasons = short_reasons(&text);
        return handshake_error("", &reasons, None, &text);
    }
    Error::from(e)
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
    let tcp = match crate::transport::proxy::select(http, uri, &env)? {
        Some(p) => crate::transport::proxy::connect(&p, &uri.host, uri.port, deadline, total)?,
        None => {
            let addrs = resolve(&uri.host, uri.port, deadline, total)?;
            connect_tcp(&addrs, deadline, total)?
        }
    };
    let base = match uri.scheme {
        // The socket's timeouts already end at the deadline (`connect_tcp`).
        Scheme::Tcp | Scheme::Ws => Ok::<_, Error>(Stream::Tcp(tcp)),
        Scheme::Tls | Scheme::Wss => {
            let default = TlsOptions::default();
            let opts = tls.unwrap_or(&default);
            let name = opts.server_name.clone().unwrap_or_else(|| uri.host.clone());
            let s = tls_handshake(opts, &name, tcp, deadline, total)?;
            if crate::tracehook::enabled(crate::tracehook::MEDIUM) {
                crate::tracehook::emit(
                    crate::tracehook::MEDIUM,
                    format_args!("TLS handshake with {name} done{}", tls_summary(&s)),
                );
            }
            s.set_timeouts(Some(remaining(deadline, Step::ConnAck, total)?))?;
            Ok(s)
        }
    }?;
    match uri.scheme {
        Scheme::Ws | Scheme::Wss => {
            // A maximal MQTT packet, with room for others sharing its frame.
            let max_in = 2 * (crate::proto::codec::MAX_REMAINING_LENGTH + 5);
            let ws = ws::handshake(base, uri, &http.headers, max_in, deadline, total)?;
            Ok(Stream::Ws(Box::new(ws)))
        }
        Scheme::Tcp | Scheme::Tls => Ok(base),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use socket2::{Domain, Protocol, Socket, Type};
    use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
    #[allow(unused_imports)]
    use std::net::{SocketAddr, ToSocketAddrs};
    #[allow(unused_imports)]
    use std::path::Path;

    fn closed_port_v4() -> SocketAddr {
        // Bound and released: nothing listens there, so a connect is refused at once.
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap()
    }

    fn secs(n: u64) -> (Instant, Duration) {
        let d = Duration::from_secs(n);
        (Instant::now() + d, d)
    }

    #[test]
    fn connect_tcp_skips_refused_address_at_once() {
        let open = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addrs = [closed_port_v4(), open.local_addr().unwrap()];
        let (deadline, total) = secs(10);
        let t0 = Instant::now();
        let s = connect_tcp(&addrs, deadline, total).unwrap();
        assert_eq!(s.peer_addr().unwrap(), addrs[1]);
        // A refusal starts the next attempt without waiting for the attempt delay.
        assert!(
            t0.elapsed() < CONNECTION_ATTEMPT_DELAY,
            "{:?}",
            t0.elapsed()
        );
        assert!(s.nodelay().unwrap());
        // Blocking again for the handshake phase.
        let (_, _) = open.accept().unwrap();
    }

    #[test]
    fn connect_tcp_all_refused_reports_last_address() {
        let addrs = [closed_port_v4(), closed_port_v4()];
        let (deadline, total) = secs(10);
        match connect_tcp(&addrs, deadline, total) {
            Err(Error::Tcp { addr, source }) => {
                assert_eq!(addr, addrs[1].to_string());
                assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused);
            }
            other => panic!("expected Error::Tcp, got {other:?}"),
        }
    }

    #[test]
    fn connect_tcp_no_address_is_invalid_argument() {
        let (deadline, total) = secs(1);
        assert!(matches!(
            connect_tcp(&[], deadline, total),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn connect_tcp_dual_stack_v6_closed_v4_listening() {
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = v4.local_addr().unwrap().port();
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
        let addrs = [v6, v4.local_addr().unwrap()];
        let (deadline, total) = secs(10);
        let s = connect_tcp(&addrs, deadline, total).unwrap();
        assert_eq!(s.peer_addr().unwrap(), addrs[1]);
    }

    #[test]
    fn connect_tcp_dual_stack_v6_listening_v4_closed() {
        let v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
        let port = v6.local_addr().unwrap().port();
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        // v4 first this time: refused, then ::1 accepts.
        let addrs = [v4, v6.local_addr().unwrap()];
        let (deadline, total) = secs(10);
        let s = connect_tcp(&addrs, deadline, total).unwrap();
        assert_eq!(s.peer_addr().unwrap(), addrs[1]);
    }

    /// A loopback address whose connects hang (no traffic leaves the machine): a listener
    /// with backlog 0 whose accept queue is full drops further SYNs. Returns the listener
    /// and the fillers, which must stay alive.
    fn stalled_listener() -> (Socket, Vec<Socket>, SocketAddr) {
        let l = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        l.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        l.listen(0).unwrap();
        let addr = l.local_addr().unwrap().as_socket().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..8 {
            let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
            match s.connect_timeout(&addr.into(), Duration::from_millis(300)) {
                Ok(()) => fillers.push(s),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return (l, fillers, addr);
                }
                Err(e) => panic!("filling the accept queue: {e}"),
            }
        }
        panic!("could not fill the accept queue of a backlog-0 listener");
    }

    #[test]
    fn connect_tcp_starts_next_address_after_attempt_delay() {
        let (_l, _fillers, stalled) = stalled_listener();
        let open = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addrs = [stalled, open.local_addr().unwrap()];
        let (deadline, total) = secs(10);
        let t0 = Instant::now();
        let s = connect_tcp(&addrs, deadline, total).unwrap();
        let took = t0.elapsed();
        assert_eq!(s.peer_addr().unwrap(), addrs[1]);
        // The second attempt ran in parallel after the delay, not after the first timed out.
        assert!(took >= CONNECTION_ATTEMPT_DELAY, "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn connect_tcp_honours_deadline_when_nothing_answers() {
        let (_l, _fillers, stalled) = stalled_listener();
        let total = Duration::from_millis(400);
        let t0 = Instant::now();
        let r = connect_tcp(&[stalled], t0 + total, total);
        assert!(
            matches!(
                r,
                Err(Error::Timeout {
                    step: Step::TcpConnect,
                    ..
                })
            ),
            "{r:?}"
        );
        assert!(t0.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn connect_tcp_leaves_timeouts_ending_at_the_deadline() {
        let open = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let one = [open.local_addr().unwrap()];
        let two = [closed_port_v4(), open.local_addr().unwrap()];
        for addrs in [&one[..], &two[..]] {
            let (deadline, total) = secs(10);
            let s = connect_tcp(addrs, deadline, total).unwrap();
            assert!(s.nodelay().unwrap());
            for t in [s.read_timeout().unwrap(), s.write_timeout().unwrap()] {
                let t = t.expect("a timeout is set");
                assert!(t <= total && t > Duration::from_secs(9), "{t:?}");
            }
        }
    }

    #[test]
    fn private_key_block_finds_key_after_certificate_and_params() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\
            -----BEGIN EC PARAMETERS-----\nBggq\n-----END EC PARAMETERS-----\n\
            -----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n";
        let b = private_key_block(pem).unwrap();
        assert!(b.starts_with(b"-----BEGIN EC PRIVATE KEY-----"));
        assert!(b.ends_with(b"-----END EC PRIVATE KEY-----"));
        let enc = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nxx\n-----END RSA PRIVATE KEY-----";
        assert_eq!(private_key_block(enc).unwrap(), &enc[..]);
        assert!(
            private_key_block(b"-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----")
                .is_none()
        );
        assert!(private_key_block(b"-----BEGIN PRIVATE KEY-----\nAA\n").is_none());
        assert!(private_key_block(b"").is_none());
    }

    #[test]
    fn handshake_error_texts_name_the_cause_then_the_short_reason() {
        let text = |reasons: &[&str], verify: Option<&str>, fallback: &str| {
            let r: Vec<String> = reasons.iter().map(|s| s.to_string()).collect();
            match handshake_error("broker.example", &r, verify, fallback) {
                Error::Tls { kind, message } => (kind, message),
                other => panic!("{other:?}"),
            }
        };
        use TlsErrorKind::*;
        let v = "certificate verify failed";
        for (reasons, verify, kind, want) in [
            (
                &[v][..],
                Some("unable to get local issuer certificate"),
                UnknownCa,
                "the server's certificate is not trusted (issued by an unknown CA) (OpenSSL: \
              certificate verify failed: unable to get local issuer certificate)",
            ),
            (
                &[v],
                Some("self-signed certificate"),
                UnknownCa,
                "the server's certificate is self-signed and not trusted (OpenSSL: certificate \
              verify failed: self-signed certificate)",
            ),
            (
                &[v],
                Some("self signed certificate"),
                UnknownCa,
                "the server's certificate is self-signed and not trusted (OpenSSL: certificate \
              verify failed: self signed certificate)",
            ),
            (
                &[v],
                Some("Hostname mismatch"),
                NameMismatch,
                "the server's certificate does not match the host name broker.example (OpenSSL: \
              certificate verify failed: Hostname mismatch)",
            ),
            (
                &[v],
                Some("certificate is not yet valid"),
                Expired,
                "the server's certificate is not valid yet (OpenSSL: certificate verify failed: \
              certificate is not yet valid)",
            ),
            (
                &["tlsv1 alert unknown ca"],
                None,
                HandshakeRefused,
                "the server refused the TLS handshake: it does not accept the client certificate \
              (OpenSSL: tlsv1 alert unknown ca)",
            ),
            (
                &["wrong version number"],
                None,
                Other,
                "the TLS handshake failed (OpenSSL: wrong version number)",
            ),
            (
                &[],
                None,
                Other,
                "the TLS handshake failed: Connection reset by peer (os error 104)",
            ),
        ] {
            let (k, m) = text(reasons, verify, "Connection reset by peer (os error 104)");
            assert_eq!((k, m.as_str()), (kind, want));
        }
    }

    #[test]
    fn short_reasons_drop_codes_and_source_paths() {
        let stack = "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate \
                     verify failed:../ssl/statem/statem_clnt.c:1889:, error:0A000410:SSL \
                     routines:ssl3_read_bytes:sslv3 alert handshake failure:../ssl/record/\
                     rec_layer_s3.c:1602:SSL alert number 40";
        assert_eq!(
            short_reasons(stack),
            ["certificate verify failed", "sslv3 alert handshake failure"]
        );
        assert_eq!(short_reasons("unexpected EOF"), ["unexpected EOF"]);
        assert!(short_reasons(" ").is_empty());
    }

    #[test]
    fn cipher_lists_split_by_protocol_version() {
        assert_eq!(
            split_cipher_list("ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256,!aNULL HIGH"),
            (
                "ECDHE-RSA-AES128-GCM-SHA256:!aNULL:HIGH".to_string(),
                "TLS_AES_128_GCM_SHA256".to_string()
            )
        );
        assert_eq!(split_cipher_list(""), (String::new(), String::new()));
    }

    /// The exact messages OpenSSL 3.0 gives through native-tls (seen in tests/tls.rs),
    /// plus the OpenSSL 1.1 spellings of the verification results.
    #[test]
    fn classify_tls_error_on_real_messages() {
        let verify = |r: &str| {
            format!(
                "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate \
                 verify failed:../ssl/statem/statem_clnt.c:1889: ({r})"
            )
        };
        use TlsErrorKind::*;
        for (msg, kind) in [
            (
                verify("self-signed certificate in certificate chain"),
                UnknownCa,
            ),
            (
                verify("self signed certificate in certificate chain"),
                UnknownCa,
            ),
            (verify("self-signed certificate"), UnknownCa),
            (verify("unable to get local issuer certificate"), UnknownCa),
            (verify("unable to verify the first certificate"), UnknownCa),
            (verify("IP address mismatch"), NameMismatch),
            (verify("hostname mismatch"), NameMismatch),
            (verify("Hostname mismatch"), NameMismatch),
            (verify("certificate has expired"), Expired),
            (verify("certificate is not yet valid"), Expired),
            (
                "error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate \
                 required:../ssl/record/rec_layer_s3.c:1602:SSL alert number 116"
                    .into(),
                HandshakeRefused,
            ),
            (
                "error:0A000410:SSL routines:ssl3_read_bytes:sslv3 alert handshake \
                 failure:../ssl/record/rec_layer_s3.c:1602:SSL alert number 40"
                    .into(),
                HandshakeRefused,
            ),
            // The server does not know *our* CA: a refusal, not UnknownCa.
            (
                "error:0A000418:SSL routines:ssl3_read_bytes:tlsv1 alert unknown \
                 ca:../ssl/record/rec_layer_s3.c:1602:SSL alert number 48"
                    .into(),
                HandshakeRefused,
            ),
            (
                "error:0A00042E:SSL routines:ssl3_read_bytes:tlsv1 alert protocol \
                 version:../ssl/record/rec_layer_s3.c:1602:SSL alert number 70"
                    .into(),
                HandshakeRefused,
            ),
            ("Connection reset by peer (os error 104)".into(), Other),
            ("".into(), Other),
        ] {
            assert_eq!(classify_tls_error(&msg), kind, "{msg}");
        }
    }
}
