//! Transports: DNS with a deadline, TCP (socket2), TLS (native-tls), WebSocket
//! ([`crate::ws`]) and HTTP CONNECT proxies, one `Stream` type.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

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
            Stream::Tls(s) => match s.write(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                    ) =>
                {
                    Err(pending_tls_alert(s).unwrap_or(e))
                }
                r => r,
            },
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

/// After a write failed with a reset: the TLS alert the server sent before it closed, if it
/// is still in the receive buffer. With TLS 1.3 a server that refuses the client
/// certificate (or its absence) does so after the client's handshake has finished; the
/// client's CONNECT then meets a reset, and only the alert says why.
fn pending_tls_alert(s: &mut native_tls::TlsStream<TcpStream>) -> Option<io::Error> {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Err(e) if is_tls_protocol_error(&e) => Some(e),
        _ => None,
    }
}

/// Whether an I/O error of a TLS stream carries a TLS protocol error (not a socket error).
fn is_tls_protocol_error(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<openssl::ssl::Error>())
            .is_some_and(|ssl| ssl.ssl_error().is_some())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = e;
        false
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
        .map_err(Error::from)?;
    let addrs = match rx.recv_timeout(left) {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            return Err(Error::Dns {
                host: host.to_string(),
                source: e.into(),
            })
        }
        Err(_) => return Err(Error::timeout(Step::Dns, total)),
    };
    if addrs.is_empty() {
        return Err(Error::Dns {
            host: host.to_string(),
            source: io::Error::new(io::ErrorKind::NotFound, "no addresses").into(),
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

/// How long an attempt may run before the next address is tried in parallel
/// (RFC 8305 "Connection Attempt Delay", the recommended 250 ms).
pub const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connects to one of `addrs` within the deadline, happy-eyeballs style (RFC 8305, without
/// the DNS part): the first address is tried at once; while an attempt is pending the next
/// address is started after [`CONNECTION_ATTEMPT_DELAY`], and at once when an attempt fails.
/// The first connection to succeed wins and the others are closed. Sets TCP_NODELAY and
/// returns a blocking socket.
/// The returned socket's read and write timeouts are the time left until `deadline` (the
/// caller's next blocking step is bounded without another system call).
pub fn connect_tcp(addrs: &[SocketAddr], deadline: Instant, total: Duration) -> Result<TcpStream> {
    if let [addr] = addrs {
        return connect_one(*addr, deadline, total);
    }
    connect_tcp_staggered(addrs, deadline, total, CONNECTION_ATTEMPT_DELAY)
}

/// One address: a blocking connect bounded by the socket's send timeout, which Linux applies
/// to `connect` (it then fails with EINPROGRESS). Five system calls instead of the dozen of a
/// non-blocking connect watched by its own poller: connect latency.
fn connect_one(addr: SocketAddr, deadline: Instant, total: Duration) -> Result<TcpStream> {
    let left = remaining(deadline, Step::TcpConnect, total)?;
    let failed = |e: io::Error| {
        log::debug!("TCP connect to {addr} failed: {e}");
        Error::Tcp {
            addr: addr.to_string(),
            source: e.into(),
        }
    };
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(Error::from)?;
    sock.set_write_timeout(Some(left)).map_err(Error::from)?;
    sock.set_read_timeout(Some(left)).map_err(Error::from)?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e)
            if e.raw_os_error() == Some(libc::EINPROGRESS)
                || e.kind() == io::ErrorKind::WouldBlock =>
        {
            return Err(Error::timeout(Step::TcpConnect, total))
        }
        Err(e) => return Err(failed(e)),
    }
    sock.set_nodelay(true).map_err(Error::from)?;
    Ok(sock.into())
}

/// Starts a non-blocking connect; `true` when it completed at once.
fn start_connect(addr: SocketAddr) -> io::Result<(Socket, bool)> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_nonblocking(true)?;
    match sock.connect(&addr.into()) {
        Ok(()) => Ok((sock, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok((sock, false)),
        Err(e) => Err(e),
    }
}

fn finish_connect(sock: Socket, deadline: Instant, total: Duration) -> Result<TcpStream> {
    sock.set_nonblocking(false).map_err(Error::from)?;
    sock.set_nodelay(true).map_err(Error::from)?;
    let left = remaining(deadline, Step::TcpConnect, total)?;
    sock.set_write_timeout(Some(left)).map_err(Error::from)?;
    sock.set_read_timeout(Some(left)).map_err(Error::from)?;
    Ok(sock.into())
}

fn connect_tcp_staggered(
    addrs: &[SocketAddr],
    deadline: Instant,
    total: Duration,
    delay: Duration,
) -> Result<TcpStream> {
    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};

    if addrs.is_empty() {
        return Err(Error::InvalidArgument("no address to connect to".into()));
    }
    let mut poll = Poll::new().map_err(Error::from)?;
    let mut events = Events::with_capacity(addrs.len());
    // (index into addrs = mio token, socket) of the attempts under way.
    let mut pending: Vec<(usize, Socket)> = Vec::with_capacity(addrs.len());
    let mut next = 0usize;
    let mut next_start = Instant::now();
    let mut last: Option<Error> = None;
    let failed = |i: usize, e: io::Error| {
        log::debug!("TCP connect to {} failed: {e}", addrs[i]);
        Error::Tcp {
            addr: addrs[i].to_string(),
            source: e.into(),
        }
    };
    loop {
        // Start attempts: at once while none is pending, else one when the delay is up.
        while next < addrs.len() && (pending.is_empty() || Instant::now() >= next_start) {
            let i = next;
            next += 1;
            match start_connect(addrs[i]) {
                Ok((sock, true)) => return finish_connect(sock, deadline, total),
                Ok((sock, false)) => {
                    poll.registry()
                        .register(
                            &mut SourceFd(&sock.as_raw_fd()),
                            Token(i),
                            Interest::WRITABLE,
                        )
                        .map_err(Error::from)?;
                    pending.push((i, sock));
                    next_start = Instant::now() + delay;
                    break;
                }
                // Refused or unreachable at once: the next address goes now.
                Err(e) => last = Some(failed(i, e)),
            }
        }
        if pending.is_empty() {
            return Err(
                last.unwrap_or_else(|| Error::InvalidArgument("no address to connect to".into()))
            );
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::timeout(Step::TcpConnect, total));
        }
        let mut wait = deadline - now;
        if next < addrs.len() {
            wait = wait.min(next_start.saturating_duration_since(now));
        }
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(pos) = pending.iter().position(|(t, _)| *t == i) else {
                continue;
            };
            let outcome = match pending[pos].1.take_error() {
                Ok(None) => match pending[pos].1.peer_addr() {
                    Ok(_) => Ok(true),
                    // Woken before the connect finished: keep waiting.
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
                    Err(e) => Err(e),
                },
                Ok(Some(e)) | Err(e) => Err(e),
            };
            match outcome {
                Ok(false) => {}
                Ok(true) => {
                    let (_, sock) = pending.swap_remove(pos);
                    // The losers are closed when `pending` drops.
                    return finish_connect(sock, deadline, total);
                }
                Err(e) => {
                    let (_, sock) = pending.swap_remove(pos);
                    let _ = poll.registry().deregister(&mut SourceFd(&sock.as_raw_fd()));
                    last = Some(failed(i, e));
                    next_start = Instant::now();
                }
            }
        }
    }
}

fn tls_config_error(msg: String) -> Error {
    Error::Tls {
        kind: TlsErrorKind::Configuration,
        message: msg,
    }
}

fn read_file(what: &str, p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| tls_config_error(format!("{what} {}: {e}", p.display())))
}

/// The first PEM block whose label ends in `PRIVATE KEY` (`PRIVATE KEY`,
/// `ENCRYPTED PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`, ...), with its
/// `Proc-Type`/`DEK-Info` headers, so that a file holding certificates, EC parameters and a
/// key in any order can be used as the key file.
fn private_key_block(pem: &[u8]) -> Option<&[u8]> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let mut from = 0;
    while let Some(off) = find(&pem[from..], BEGIN) {
        let start = from + off;
        let label_start = start + BEGIN.len();
        let label_len = find(&pem[label_start..], b"-----")?;
        let label = &pem[label_start..label_start + label_len];
        let after = label_start + label_len + 5;
        if label.ends_with(b"PRIVATE KEY") {
            let mut end_marker = b"-----END ".to_vec();
            end_marker.extend_from_slice(label);
            end_marker.extend_from_slice(b"-----");
            let end = after + find(&pem[after..], &end_marker)? + end_marker.len();
            return Some(&pem[start..end]);
        }
        from = after;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads the client certificate (chain) and key into what `Identity::from_pkcs8` takes:
/// the certificates as PEM (leaf first, then the chain) and the key as unencrypted PKCS#8
/// PEM. Accepts PKCS#8, encrypted PKCS#8, PKCS#1 (`RSA PRIVATE KEY`), SEC1
/// (`EC PRIVATE KEY`), traditionally encrypted PEM (`Proc-Type: 4,ENCRYPTED`), and
/// certificate and key in one file (`key == None`).
#[cfg(target_os = "linux")]
fn identity_pem(
    cert_path: &Path,
    key_path: Option<&Path>,
    password: Option<&str>,
) -> Result<(Vec<u8>, Vec<u8>)> {
    use openssl::pkey::PKey;
    use openssl::x509::X509;

    let cert_pem = read_file("client certificate", cert_path)?;
    let certs = X509::stack_from_pem(&cert_pem).map_err(|e| {
        tls_config_error(format!("client certificate {}: {e}", cert_path.display()))
    })?;
    let Some(leaf) = certs.first() else {
        return Err(tls_config_error(format!(
            "client certificate {} holds no PEM certificate",
            cert_path.display()
        )));
    };
    let (key_pem, key_path) = match key_path {
        Some(k) => (read_file("client key", k)?, k),
        None => (cert_pem.clone(), cert_path),
    };
    let Some(block) = private_key_block(&key_pem) else {
        return Err(tls_config_error(format!(
            "client key {}: no PEM private key found",
            key_path.display()
        )));
    };
    let mut asked = false;
    let parsed = PKey::private_key_from_pem_callback(block, |buf| {
        asked = true;
        match password {
            Some(p) if p.len() <= buf.len() => {
                buf[..p.len()].copy_from_slice(p.as_bytes());
                Ok(p.len())
            }
            _ => Err(openssl::error::ErrorStack::get()),
        }
    });
    let key = match parsed {
        Ok(k) => k,
        Err(e) => {
            let why = match (asked, password) {
                (true, None) => "the key is encrypted and no key_password is set".to_string(),
                (true, Some(_)) => {
                    format!("cannot decrypt with key_password (wrong password?): {e}")
                }
                (false, _) => format!("unusable private key: {e}"),
            };
            return Err(tls_config_error(format!(
                "client key {}: {why}",
                key_path.display()
            )));
        }
    };
    let matches = leaf
        .public_key()
        .map(|pk| pk.public_eq(&key))
        .unwrap_or(false);
    if !matches {
        return Err(tls_config_error(format!(
            "client key {} does not belong to certificate {}",
            key_path.display(),
            cert_path.display()
        )));
    }
    let pkcs8 = key
        .private_key_to_pem_pkcs8()
        .map_err(|e| tls_config_error(format!("client key {}: {e}", key_path.display())))?;
    let mut chain = Vec::new();
    for c in &certs {
        let pem = c
            .to_pem()
            .map_err(|e| tls_config_error(format!("client certificate: {e}")))?;
        chain.extend_from_slice(&pem);
    }
    Ok((chain, pkcs8))
}

/// Without OpenSSL at hand only unencrypted PKCS#8 keys can be used.
#[cfg(not(target_os = "linux"))]
fn identity_pem(
    cert_path: &Path,
    key_path: Option<&Path>,
    _password: Option<&str>,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let cert_pem = read_file("client certificate", cert_path)?;
    let (key_pem, key_path) = match key_path {
        Some(k) => (read_file("client key", k)?, k),
        None => (cert_pem.clone(), cert_path),
    };
    match private_key_block(&key_pem) {
        Some(b) if b.starts_with(b"-----BEGIN PRIVATE KEY-----") => Ok((cert_pem, b.to_vec())),
        _ => Err(tls_config_error(format!(
            "client key {}: only unencrypted PKCS#8 keys are supported on this platform",
            key_path.display()
        ))),
    }
}

/// Every certificate in `dir` (OpenSSL's CApath, e.g. /etc/ssl/certs with its hashed-name
/// links): each regular file (or link to one) is read as PEM (all certificates in it) or,
/// failing that, as one DER certificate; other files are skipped. Duplicates (a file and
/// its hash link) are added once.
fn ca_dir_certificates(dir: &Path) -> Result<Vec<native_tls::Certificate>> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| tls_config_error(format!("CA dir {}: {e}", dir.display())))?;
    let mut paths: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    paths.sort();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for p in paths {
        if !p.is_file() {
            continue;
        }
        let Ok(bytes) = std::fs::read(&p) else {
            log::debug!("CA dir: cannot read {}", p.display());
            continue;
        };
        let certs = match native_tls::Certificate::stack_from_pem(&bytes) {
            Ok(c) if !c.is_empty() => c,
            _ => match native_tls::Certificate::from_der(&bytes) {
                Ok(c) => vec![c],
                Err(_) => continue,
            },
        };
        for c in certs {
            let Ok(der) = c.to_der() else { continue };
            if seen.insert(der) {
                out.push(c);
            }
        }
    }
    if out.is_empty() {
        return Err(tls_config_error(format!(
            "CA dir {} holds no certificate",
            dir.display()
        )));
    }
    Ok(out)
}

/// Builds a native-tls connector from the options.
///
/// Every problem with the files (missing, unreadable, no certificate, unusable key, wrong
/// key password, key not matching the certificate) is a [`TlsErrorKind::Configuration`]
/// error.
pub fn tls_connector(opts: &TlsOptions) -> Result<native_tls::TlsConnector> {
    let mut b = native_tls::TlsConnector::builder();
    b.disable_built_in_roots(!opts.use_system_roots);
    b.danger_accept_invalid_certs(!opts.verify_certificate);
    b.danger_accept_invalid_hostnames(!opts.verify_hostname);
    if let Some(ca) = &opts.ca_file {
        let pem = read_file("CA file", ca)?;
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
        for c in ca_dir_certificates(dir)? {
            b.add_root_certificate(c);
        }
    }
    match (&opts.client_cert, &opts.client_key) {
        (Some(cert), key) => {
            let (chain, key) = identity_pem(cert, key.as_deref(), opts.key_password.as_deref())?;
            let id = native_tls::Identity::from_pkcs8(&chain, &key)
                .map_err(|e| tls_config_error(format!("client certificate/key: {e}")))?;
            b.identity(id);
        }
        (None, Some(key)) => {
            return Err(tls_config_error(format!(
                "client key {} given without a client certificate",
                key.display()
            )))
        }
        (None, None) => {}
    }
    if let Some(v) = opts.min_version {
        b.min_protocol_version(Some(match v {
            TlsVersion::Tls10 => native_tls::Protocol::Tlsv10,
            TlsVersion::Tls11 => native_tls::Protocol::Tlsv11,
            TlsVersion::Tls12 => native_tls::Protocol::Tlsv12,
            TlsVersion::Tls13 => native_tls::Protocol::Tlsv13,
        }));
    }
    if !opts.alpn.is_empty() {
        let v: Vec<&str> = opts.alpn.iter().map(String::as_str).collect();
        b.request_alpns(&v);
    }
    b.build().map_err(|e| tls_config_error(e.to_string()))
}

/// OpenSSL's certificate verification results (`X509_verify_cert_error_string`, in the
/// spellings of OpenSSL 1.1 and 3.x) and their kinds. native-tls appends the verification
/// result to a handshake error as ` (<text>)`.
const VERIFY_RESULTS: &[(&str, TlsErrorKind)] = &[
    // X509_V_ERR_HOSTNAME_MISMATCH (62), _EMAIL_MISMATCH (63), _IP_ADDRESS_MISMATCH (64)
    ("hostname mismatch", TlsErrorKind::NameMismatch),
    ("email address mismatch", TlsErrorKind::NameMismatch),
    ("ip address mismatch", TlsErrorKind::NameMismatch),
    // X509_V_ERR_CERT_NOT_YET_VALID (9), _CERT_HAS_EXPIRED (10)
    ("certificate is not yet valid", TlsErrorKind::Expired),
    ("certificate has expired", TlsErrorKind::Expired),
    // X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT (2), _DEPTH_ZERO_SELF_SIGNED_CERT (18),
    // _SELF_SIGNED_CERT_IN_CHAIN (19), _UNABLE_TO_GET_ISSUER_CERT_LOCALLY (20),
    // _UNABLE_TO_VERIFY_LEAF_SIGNATURE (21), _CERT_SIGNATURE_FAILURE (7),
    // _INVALID_CA (24), _CERT_UNTRUSTED (27), _CERT_REJECTED (28)
    ("unable to get issuer certificate", TlsErrorKind::UnknownCa),
    ("self signed certificate", TlsErrorKind::UnknownCa),
    ("self-signed certificate", TlsErrorKind::UnknownCa),
    (
        "unable to get local issuer certificate",
        TlsErrorKind::UnknownCa,
    ),
    (
        "unable to verify the first certificate",
        TlsErrorKind::UnknownCa,
    ),
    ("certificate signature failure", TlsErrorKind::UnknownCa),
    ("invalid ca certificate", TlsErrorKind::UnknownCa),
    ("certificate not trusted", TlsErrorKind::UnknownCa),
    ("certificate rejected", TlsErrorKind::UnknownCa),
];

/// Classifies a TLS handshake error message (as native-tls/OpenSSL word it) into a
/// [`TlsErrorKind`].
///
/// First the certificate verification result that native-tls appends in parentheses
/// (`... certificate verify failed:... (certificate has expired)`) is looked up; then an
/// alert sent by the server (`tlsv13 alert certificate required`, `sslv3 alert handshake
/// failure`, `tlsv1 alert unknown ca` about our client certificate...) means the server
/// refused the handshake.
pub fn classify_tls_error(msg: &str) -> TlsErrorKind {
    let m = msg.to_ascii_lowercase();
    let verify_result = m
        .trim_end()
        .strip_suffix(')')
        .and_then(|s| s.rfind('(').map(|i| &s[i + 1..]));
    if let Some(v) = verify_result {
        if let Some((_, kind)) = VERIFY_RESULTS.iter().find(|(text, _)| v.starts_with(text)) {
            return *kind;
        }
    }
    if m.contains(" alert ") || m.contains("certificate required") {
        return TlsErrorKind::HandshakeRefused;
    }
    // A verification failure without the result appended (other TLS back ends, older
    // native-tls): look for the texts anywhere.
    if let Some((_, kind)) = VERIFY_RESULTS.iter().find(|(text, _)| m.contains(text)) {
        return *kind;
    }
    if m.contains("unknown ca") || m.contains("untrusted") || m.contains("not trusted") {
        TlsErrorKind::UnknownCa
    } else if m.contains("expired") {
        TlsErrorKind::Expired
    } else if m.contains("handshake failure") {
        TlsErrorKind::HandshakeRefused
    } else {
        TlsErrorKind::Other
    }
}

/// Turns an I/O error of the connection into an [`Error`], lifting TLS failures that show
/// up only after the handshake into [`Error::Tls`]: with TLS 1.3 the server checks the
/// client certificate after the client has finished its handshake, so a refusal (alert
/// `certificate required`, `unknown ca`, ...) arrives on the first read, or as a reset on
/// the first write (then [`Stream`]'s `write` fetches the alert from the receive buffer).
pub fn io_error(e: io::Error) -> Error {
    if is_tls_protocol_error(&e) {
        let message = e.get_ref().map_or_else(|| e.to_string(), |i| i.to_string());
        return Error::Tls {
            kind: classify_tls_error(&message),
            message,
        };
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
    let tcp = match crate::proxy::select(http, uri, &env)? {
        Some(p) => crate::proxy::connect(&p, &uri.host, uri.port, deadline, total)?,
        None => {
            let addrs = resolve(&uri.host, uri.port, deadline, total)?;
            connect_tcp(&addrs, deadline, total)?
        }
    };
    let base = match uri.scheme {
        // The socket's timeouts already end at the deadline (`connect_tcp`).
        Scheme::Tcp | Scheme::Ws => Ok(Stream::Tcp(tcp)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};

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
