//! MQTT over WebSocket (`ws://`, `wss://`) and through HTTP CONNECT proxies, against a real
//! mosquitto per test.
//!
//! Debian's mosquitto 2.0.11 cannot open a WebSocket listener here, so a small
//! WebSocket-to-TCP bridge in this file ([`Bridge`]) stands in front of the harness broker:
//! it accepts the upgrade (subprotocol `mqtt`, one path), records what the client sent,
//! splits what the broker sends into small frames (so the client must reassemble), and can
//! stall, cut or close connections. [`Proxy`] is a small HTTP CONNECT proxy with optional
//! basic authentication.

mod common;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::{build_c_program, c_dir, run_prog, unique_client_id, Broker, DEADLINE};
use mqttsync::{
    Client, ConnectOptions, Error, Message, ProtocolVersion, QoS, State, Step, TlsOptions,
};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::{HeaderValue, StatusCode};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::Message as WsMessage;

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V31,
    ProtocolVersion::V311,
    ProtocolVersion::V5,
];
const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

// ---- the WebSocket bridge ----

enum Sock {
    Plain(TcpStream),
    Tls(Box<native_tls::TlsStream<TcpStream>>),
}

impl Sock {
    fn tcp(&self) -> &TcpStream {
        match self {
            Sock::Plain(s) => s,
            Sock::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Plain(s) => s.read(buf),
            Sock::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Plain(s) => s.write(buf),
            Sock::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sock::Plain(s) => s.flush(),
            Sock::Tls(s) => s.flush(),
        }
    }
}

#[derive(Clone)]
struct BridgeConfig {
    broker: SocketAddr,
    path: String,
    /// Choose subprotocol `mqtt` when offered (false: choose none).
    subprotocol: bool,
    /// Largest frame sent to the client.
    split: usize,
    tls: Option<native_tls::TlsAcceptor>,
}

/// What a client sent in its upgrade request.
#[derive(Debug, Clone)]
struct Upgrade {
    path: String,
    headers: Vec<(String, String)>,
}

impl Upgrade {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct BridgeShared {
    upgrades: Mutex<Vec<Upgrade>>,
    /// Sizes of the binary frames received from each client, by connection number.
    client_frames: Mutex<HashMap<usize, Vec<usize>>>,
    frames_to_clients: AtomicUsize,
    conns: AtomicUsize,
    stall: AtomicBool,
    /// Bumped to close every current connection with a WebSocket close frame.
    close_gen: AtomicUsize,
}

struct Bridge {
    port: u16,
    shared: Arc<BridgeShared>,
}

impl Bridge {
    fn start(broker: &Broker) -> Bridge {
        Bridge::with(BridgeConfig {
            broker: broker.addr(),
            path: "/mqtt".into(),
            subprotocol: true,
            split: 7,
            tls: None,
        })
    }

    fn with(cfg: BridgeConfig) -> Bridge {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let shared = Arc::new(BridgeShared::default());
        let sh = shared.clone();
        let cfg = Arc::new(cfg);
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                let (cfg, sh) = (cfg.clone(), sh.clone());
                std::thread::spawn(move || serve_ws(conn, &cfg, &sh));
            }
        });
        Bridge { port, shared }
    }

    fn uri(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    fn upgrades(&self) -> Vec<Upgrade> {
        self.shared.upgrades.lock().unwrap().clone()
    }

    fn client_frames(&self, conn: usize) -> Vec<usize> {
        self.shared
            .client_frames
            .lock()
            .unwrap()
            .get(&conn)
            .cloned()
            .unwrap_or_default()
    }
}

fn serve_ws(conn: TcpStream, cfg: &BridgeConfig, sh: &BridgeShared) {
    let sock = match &cfg.tls {
        Some(acc) => match acc.accept(conn) {
            Ok(s) => Sock::Tls(Box::new(s)),
            Err(_) => return,
        },
        None => Sock::Plain(conn),
    };
    // tungstenite's callback type fixes the error type.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let path = req.uri().path().to_string();
        sh.upgrades.lock().unwrap().push(Upgrade {
            path: path.clone(),
            headers,
        });
        if path != cfg.path {
            let mut e = ErrorResponse::new(Some("no MQTT here".into()));
            *e.status_mut() = StatusCode::NOT_FOUND;
            return Err(e);
        }
        let offered = req
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|p| p.trim() == "mqtt"));
        if cfg.subprotocol && offered {
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
        }
        Ok(resp)
    };
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let Ok(mut ws) = tungstenite::accept_hdr_with_config(sock, callback, Some(config)) else {
        return;
    };
    let Ok(mut broker) = TcpStream::connect(cfg.broker) else {
        return;
    };
    let id = sh.conns.fetch_add(1, Ordering::SeqCst);
    let close_gen = sh.close_gen.load(Ordering::SeqCst);
    ws.get_ref().tcp().set_nonblocking(true).unwrap();
    broker.set_nonblocking(true).unwrap();
    let mut to_broker: Vec<u8> = Vec::new();
    let mut ws_dirty = false;
    let mut buf = vec![0u8; 64 * 1024];
    // Ends the broker side: what the client sent is delivered first (it may be DISCONNECT).
    let finish = |broker: &mut TcpStream, pending: &[u8]| {
        let _ = broker.set_nonblocking(false);
        let _ = broker.write_all(pending);
        let _ = broker.shutdown(std::net::Shutdown::Both);
    };
    loop {
        if sh.close_gen.load(Ordering::SeqCst) != close_gen {
            let _ = ws.close(None);
            let _ = ws.get_ref().tcp().set_nonblocking(false);
            let _ = ws.flush();
            finish(&mut broker, &to_broker);
            return;
        }
        if sh.stall.load(Ordering::SeqCst) {
            std::thread::park_timeout(Duration::from_millis(10));
            continue;
        }
        let mut fds = [
            libc::pollfd {
                fd: ws.get_ref().tcp().as_raw_fd(),
                events: libc::POLLIN | if ws_dirty { libc::POLLOUT } else { 0 },
                revents: 0,
            },
            libc::pollfd {
                fd: broker.as_raw_fd(),
                events: libc::POLLIN
                    | if to_broker.is_empty() {
                        0
                    } else {
                        libc::POLLOUT
                    },
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, 20) };
        // Client -> broker.
        loop {
            match ws.read() {
                Ok(WsMessage::Binary(b)) => {
                    sh.client_frames
                        .lock()
                        .unwrap()
                        .entry(id)
                        .or_default()
                        .push(b.len());
                    to_broker.extend_from_slice(&b);
                }
                Ok(WsMessage::Close(_)) => {
                    finish(&mut broker, &to_broker);
                    return;
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    finish(&mut broker, &to_broker);
                    return;
                }
            }
        }
        while !to_broker.is_empty() {
            match broker.write(&to_broker) {
                Ok(n) => {
                    to_broker.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
        // Broker -> client, in frames of at most `split` bytes.
        loop {
            match broker.read(&mut buf) {
                Ok(0) => {
                    let _ = ws.get_ref().tcp().set_nonblocking(false);
                    let _ = ws.close(None);
                    let _ = ws.flush();
                    return;
                }
                Ok(n) => {
                    for chunk in buf[..n].chunks(cfg.split) {
                        sh.frames_to_clients.fetch_add(1, Ordering::Relaxed);
                        match ws.write(WsMessage::binary(chunk.to_vec())) {
                            Ok(()) => {}
                            Err(tungstenite::Error::Io(e))
                                if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(_) => {
                                finish(&mut broker, &to_broker);
                                return;
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
        match ws.flush() {
            Ok(()) => ws_dirty = false,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                ws_dirty = true
            }
            Err(_) => {
                finish(&mut broker, &to_broker);
                return;
            }
        }
    }
}

// ---- the HTTP CONNECT proxy ----

#[derive(Clone, Default)]
struct ProxyConfig {
    /// Expected `Proxy-Authorization` value; others get 407.
    auth: Option<String>,
    /// Answer every CONNECT with this status.
    refuse: Option<u16>,
    /// Accept and never answer.
    silent: bool,
    /// Host names only the proxy knows.
    hosts: Vec<(String, SocketAddr)>,
}

#[derive(Debug, Clone)]
struct Seen {
    target: String,
    auth: Option<String>,
}

struct Proxy {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    fn start(cfg: ProxyConfig) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let cfg = Arc::new(cfg);
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                let (cfg, seen) = (cfg.clone(), s2.clone());
                std::thread::spawn(move || serve_proxy(conn, &cfg, &seen));
            }
        });
        Proxy { port, seen }
    }

    fn uri(&self, userinfo: &str) -> String {
        format!("http://{userinfo}127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_proxy(mut c: TcpStream, cfg: &ProxyConfig, seen: &Mutex<Vec<Seen>>) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match c.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let mut parts = request.split(' ');
    if parts.next() != Some("CONNECT") {
        let _ = c.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
        return;
    }
    let target = parts.next().unwrap_or_default().to_string();
    let auth = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, v)| v.trim().to_string());
    seen.lock().unwrap().push(Seen {
        target: target.clone(),
        auth: auth.clone(),
    });
    if cfg.silent {
        let _ = c.read(&mut [0u8; 16]);
        return;
    }
    if let Some(status) = cfg.refuse {
        let _ = write!(
            c,
            "HTTP/1.1 {status} Forbidden\r\nContent-Length: 0\r\n\r\n"
        );
        return;
    }
    if cfg.auth.is_some() && auth != cfg.auth {
        let _ = c.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
              Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
        );
        return;
    }
    let (host, port) = target.rsplit_once(':').unwrap_or((&target, "0"));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match cfg.hosts.iter().find(|(h, _)| h == host) {
        Some((_, a)) => vec![*a],
        None => (host, port.parse().unwrap_or(0))
            .to_socket_addrs()
            .map(|a| a.collect())
            .unwrap_or_default(),
    };
    let Ok(upstream) = TcpStream::connect(&addrs[..]) else {
        let _ = c.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    if c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (mut c2, mut u2) = (c.try_clone().unwrap(), upstream.try_clone().unwrap());
    let (mut c1, mut u1) = (c, upstream);
    let t = std::thread::spawn(move || {
        let _ = io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(std::net::Shutdown::Write);
    });
    let _ = io::copy(&mut u1, &mut c1);
    let _ = c1.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
}

// ---- a test PKI ----

/// A CA and a server certificate (localhost, 127.0.0.1) signed by it, made with the
/// openssl CLI.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    acceptor: native_tls::TlsAcceptor,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl CLI not found: run .ci/run or apt-get install openssl");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut a = vec![
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=mqttsync ws test CA",
        ];
        a.extend(ec);
        a.extend([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        run(&a);
        let mut a = vec!["req", "-subj", "/CN=localhost"];
        a.extend(ec);
        a.extend(["-keyout", "server.key", "-out", "server.csr"]);
        run(&a);
        std::fs::write(
            p("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ]);
        let cert = std::fs::read(p("server.pem")).unwrap();
        let key = std::fs::read(p("server.key")).unwrap();
        let id = native_tls::Identity::from_pkcs8(&cert, &key).unwrap();
        let acceptor = native_tls::TlsAcceptor::new(id).unwrap();
        Pki {
            ca: p("ca.pem"),
            _dir: dir,
            acceptor,
        }
    }

    fn tls(&self) -> TlsOptions {
        TlsOptions {
            ca_file: Some(self.ca.clone()),
            ..TlsOptions::default()
        }
    }
}

// ---- helpers ----

fn opts(uri: &str, prefix: &str, v: ProtocolVersion) -> ConnectOptions {
    ConnectOptions::new(uri)
        .client_id(unique_client_id(prefix))
        .version(v)
        .connect_timeout(DEADLINE)
}

fn round_trip(c: &Client, topic: &str) {
    c.subscribe(topic, QoS::AtLeastOnce).unwrap();
    c.publish_wait(Message::new(topic, "ping over the wire").qos(QoS::AtLeastOnce))
        .unwrap();
    let m = c.messages().recv_timeout(DEADLINE).unwrap();
    assert_eq!(m.payload_str(), Some("ping over the wire"));
}

fn connect_err(o: ConnectOptions) -> Error {
    match Client::connect(o) {
        Ok(_) => panic!("connect succeeded"),
        Err(e) => e,
    }
}

// ---- WebSocket ----

#[test]
fn ws_every_qos_both_ways_in_every_version() {
    let broker = Broker::start();
    let bridge = Bridge::start(&broker);
    let uri = bridge.uri("ws", "");
    for v in VERSIONS {
        let sub = Client::connect(opts(&uri, "wssub", v)).unwrap();
        let publ = Client::connect(opts(&uri, "wspub", v)).unwrap();
        for sub_qos in QOS {
            let topic = format!("ws/{v:?}/{sub_qos:?}");
            assert_eq!(sub.subscribe(&topic, sub_qos).unwrap(), sub_qos);
            for pub_qos in QOS {
                let payload = format!("{v:?} {sub_qos:?} {pub_qos:?}");
                publ.publish_wait(Message::new(&topic, payload.clone()).qos(pub_qos))
                    .unwrap();
                let m = sub.messages().recv_timeout(DEADLINE).unwrap();
                assert_eq!(m.topic, topic);
                assert_eq!(m.payload_str(), Some(payload.as_str()));
                assert_eq!(m.qos, pub_qos.min(sub_qos));
            }
        }
        assert!(
            sub.messages().try_recv().unwrap().is_none(),
            "no duplicates"
        );
        sub.disconnect().unwrap();
        publ.disconnect().unwrap();
    }
    // Everything the broker sent came in frames of at most 7 bytes: most packets spanned
    // several frames.
    assert!(bridge.shared.frames_to_clients.load(Ordering::Relaxed) > 100);
    let up = bridge.upgrades();
    assert_eq!(up.len(), 6);
    for u in up {
        assert_eq!(u.path, "/mqtt", "default path");
        assert_eq!(u.header("sec-websocket-protocol"), Some("mqtt"));
        assert_eq!(
            u.header("host"),
            Some(format!("127.0.0.1:{}", bridge.port).as_str())
        );
    }
}

#[test]
fn ws_large_message_spans_many_frames_both_ways() {
    let broker = Broker::start();
    let bridge = Bridge::with(BridgeConfig {
        broker: broker.addr(),
        path: "/mqtt".into(),
        subprotocol: true,
        split: 16 * 1024,
        tls: None,
    });
    let uri = bridge.uri("ws", "/mqtt");
    let sub = Client::connect(opts(&uri, "bigsub", ProtocolVersion::V5)).unwrap();
    sub.subscribe("big", QoS::ExactlyOnce).unwrap();
    let publ = Client::connect(opts(&uri, "bigpub", ProtocolVersion::V5)).unwrap();
    let payload: Vec<u8> = (0..1u32 << 20).map(|i| (i * 31 % 257) as u8).collect();
    for qos in QOS {
        publ.publish_wait(Message::new("big", payload.clone()).qos(qos))
            .unwrap();
        let m = sub.messages().recv_timeout(DEADLINE).unwrap();
        assert_eq!(m.qos, qos);
        assert!(m.payload[..] == payload[..], "payload intact");
    }
    // Connection 1 is the publisher: each 1 MiB PUBLISH went out in several frames.
    let frames = bridge.client_frames(1);
    let big = frames.iter().filter(|&&n| n > 100_000).count();
    assert!(big >= 3 * 4, "publisher frames: {frames:?}");
    // And towards the subscriber in 16 KiB frames.
    assert!(bridge.shared.frames_to_clients.load(Ordering::Relaxed) >= 3 * 64);
}

#[test]
fn ws_will_on_abnormal_drop_not_on_disconnect() {
    let broker = Broker::start();
    let bridge = Bridge::start(&broker);
    let uri = bridge.uri("ws", "/mqtt");
    let watcher = Client::connect(opts(&broker.uri(), "watch", ProtocolVersion::V311)).unwrap();
    watcher.subscribe("will/ws", QoS::AtLeastOnce).unwrap();
    let polite = Client::connect(
        opts(&uri, "polite", ProtocolVersion::V311)
            .will(Message::new("will/ws", "polite").qos(QoS::AtLeastOnce)),
    )
    .unwrap();
    polite.disconnect().unwrap();
    let rude = Client::connect(
        opts(&uri, "rude", ProtocolVersion::V311)
            .will(Message::new("will/ws", "rude").qos(QoS::AtLeastOnce)),
    )
    .unwrap();
    rude.abort();
    let m = watcher.messages().recv_timeout(DEADLINE).unwrap();
    assert_eq!(
        m.payload_str(),
        Some("rude"),
        "the will of the dropped client only"
    );
    watcher
        .publish_wait(Message::new("will/ws", "marker").qos(QoS::AtLeastOnce))
        .unwrap();
    let m = watcher.messages().recv_timeout(DEADLINE).unwrap();
    assert_eq!(m.payload_str(), Some("marker"));
}

#[test]
fn ws_custom_headers_reach_the_server() {
    let broker = Broker::start();
    let bridge = Bridge::start(&broker);
    let c = Client::connect(
        opts(&bridge.uri("ws", "/mqtt"), "hdr", ProtocolVersion::V311).http_headers(vec![
            ("Authorization".into(), "Bearer t0ken".into()),
            ("X-Tenant".into(), "blue".into()),
            ("X-Tenant".into(), "green".into()),
        ]),
    )
    .unwrap();
    round_trip(&c, "hdr");
    let up = bridge.upgrades();
    let u = &up[0];
    assert_eq!(u.header("authorization"), Some("Bearer t0ken"));
    let tenants: Vec<&str> = u
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("x-tenant"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(tenants, ["blue", "green"], "repeated headers kept in order");
    assert_eq!(u.header("sec-websocket-protocol"), Some("mqtt"));

    // Handshake headers cannot be overridden; bad names are refused before connecting.
    for (k, v) in [
        ("Upgrade", "h2c"),
        ("Bad Name", "x"),
        ("X-Ok", "a\r\nInjected: 1"),
    ] {
        let e = connect_err(
            opts(&bridge.uri("ws", "/mqtt"), "hdr", ProtocolVersion::V311)
                .http_headers(vec![(k.into(), v.into())]),
        );
        assert!(matches!(e, Error::InvalidArgument(_)), "{k}: {e}");
    }
    assert_eq!(
        bridge.upgrades().len(),
        1,
        "no connection for refused headers"
    );
}

#[test]
fn ws_path_is_honoured() {
    let broker = Broker::start();
    let bridge = Bridge::with(BridgeConfig {
        broker: broker.addr(),
        path: "/gateway/mqtt".into(),
        subprotocol: true,
        split: 7,
        tls: None,
    });
    let c = Client::connect(opts(
        &bridge.uri("ws", "/gateway/mqtt"),
        "path",
        ProtocolVersion::V311,
    ))
    .unwrap();
    round_trip(&c, "path");
    // The default path /mqtt is not served there: a clear error with the status.
    let t0 = Instant::now();
    let e = connect_err(opts(&bridge.uri("ws", ""), "path", ProtocolVersion::V311));
    assert!(t0.elapsed() < DEADLINE);
    match &e {
        Error::WebSocket {
            url,
            status,
            message,
        } => {
            assert_eq!(*status, Some(404));
            assert_eq!(url, &format!("ws://127.0.0.1:{}/mqtt", bridge.port));
            assert!(message.contains("404"), "{message}");
        }
        other => panic!("expected a WebSocket error, got {other}"),
    }
    let paths: Vec<String> = bridge.upgrades().into_iter().map(|u| u.path).collect();
    assert_eq!(paths, ["/gateway/mqtt", "/mqtt"]);
}

#[test]
fn ws_server_choosing_no_subprotocol_is_refused() {
    let broker = Broker::start();
    let bridge = Bridge::with(BridgeConfig {
        broker: broker.addr(),
        path: "/mqtt".into(),
        subprotocol: false,
        split: 7,
        tls: None,
    });
    let e = connect_err(opts(&bridge.uri("ws", ""), "nosub", ProtocolVersion::V311));
    match &e {
        Error::WebSocket {
            status, message, ..
        } => {
            assert_eq!(*status, None);
            assert!(message.contains("subprotocol"), "{message}");
        }
        other => panic!("expected a WebSocket error, got {other}"),
    }
}

#[test]
fn ws_server_close_frame_is_a_connection_loss() {
    let broker = Broker::start();
    let bridge = Bridge::start(&broker);
    let (tx, rx) = mpsc::channel();
    let c = Client::connect(
        opts(&bridge.uri("ws", ""), "close", ProtocolVersion::V311).on_connection_lost(move |e| {
            let _ = tx.send(e.report());
        }),
    )
    .unwrap();
    round_trip(&c, "close");
    bridge.shared.close_gen.fetch_add(1, Ordering::SeqCst);
    let cause = rx.recv_timeout(DEADLINE).expect("loss reported");
    assert!(cause.contains("closed by the server"), "{cause}");
    assert_eq!(c.state(), State::Disconnected);
    let e = c.messages().recv_timeout(DEADLINE).unwrap_err();
    assert!(matches!(e, Error::ConnectionLost(_)), "{e}");
    // A new connection through the same bridge works.
    c.reconnect().unwrap();
    round_trip(&c, "close2");
}

#[test]
fn ws_keepalive_detects_a_stalled_server() {
    let broker = Broker::start();
    let bridge = Bridge::start(&broker);
    let lost = Arc::new(Mutex::new(None::<Instant>));
    let (tx, rx) = mpsc::channel();
    let l2 = lost.clone();
    let c = Client::connect(
        opts(&bridge.uri("ws", ""), "wska", ProtocolVersion::V311)
            .keep_alive(Duration::from_secs(1))
            .on_connection_lost(move |e| {
                *l2.lock().unwrap() = Some(Instant::now());
                let _ = tx.send(e.report());
            }),
    )
    .unwrap();
    c.subscribe("ka", QoS::AtMostOnce).unwrap();
    let frozen = Instant::now();
    bridge.shared.stall.store(true, Ordering::SeqCst);
    let cause = rx.recv_timeout(Duration::from_secs(10));
    bridge.shared.stall.store(false, Ordering::SeqCst);
    let cause = cause.expect("connection loss reported");
    assert!(cause.contains("keepalive"), "cause: {cause}");
    let took = lost.lock().unwrap().unwrap() - frozen;
    // As over TCP: PINGREQ after 1 s idle, declared dead 0.5 s later.
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "took {took:?}"
    );
    assert_eq!(c.state(), State::Disconnected);
    let e = c.messages().recv_timeout(DEADLINE).unwrap_err();
    assert!(matches!(e, Error::ConnectionLost(_)), "{e}");
    c.reconnect().unwrap();
    round_trip(&c, "ka2");
}

#[test]
fn ws_upgrade_respects_the_connect_deadline() {
    // A server that accepts TCP and never answers the upgrade.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let (_s, _) = l.accept().unwrap();
        let _ = stop_rx.recv();
    });
    let timeout = Duration::from_millis(500);
    let t0 = Instant::now();
    let e = connect_err(
        opts(
            &format!("ws://127.0.0.1:{port}/mqtt"),
            "dl",
            ProtocolVersion::V311,
        )
        .connect_timeout(timeout),
    );
    let took = t0.elapsed();
    stop_tx.send(()).unwrap();
    holder.join().unwrap();
    assert!(
        matches!(
            e,
            Error::Timeout {
                step: Step::Handshake,
                ..
            }
        ),
        "{e}"
    );
    assert!(took < timeout + Duration::from_millis(500), "{took:?}");
}

#[test]
fn wss_verifies_the_server_with_the_tls_options() {
    let pki = Pki::new();
    let broker = Broker::start();
    let bridge = Bridge::with(BridgeConfig {
        broker: broker.addr(),
        path: "/mqtt".into(),
        subprotocol: true,
        split: 5,
        tls: Some(pki.acceptor.clone()),
    });
    let uri = bridge.uri("wss", "");
    assert!(uri.starts_with("wss://127.0.0.1:"));
    for v in VERSIONS {
        let c = Client::connect(opts(&uri, "wss", v).tls(pki.tls())).unwrap();
        round_trip(&c, &format!("wss/{v:?}"));
        c.disconnect().unwrap();
    }
    // The same certificate by name (server_name), as with ssl://.
    let c = Client::connect(opts(&uri, "wss", ProtocolVersion::V311).tls(TlsOptions {
        server_name: Some("localhost".into()),
        ..pki.tls()
    }))
    .unwrap();
    round_trip(&c, "wss/name");
    // Without the test CA the server is not trusted.
    let e = connect_err(opts(&uri, "wss", ProtocolVersion::V311));
    assert!(matches!(e, Error::Tls { .. }), "{e}");
    // A name the certificate does not hold.
    let e = connect_err(opts(&uri, "wss", ProtocolVersion::V311).tls(TlsOptions {
        server_name: Some("other.example".into()),
        ..pki.tls()
    }));
    assert!(matches!(e, Error::Tls { .. }), "{e}");
    // Verification off, explicitly: connects.
    let c = Client::connect(opts(&uri, "wss", ProtocolVersion::V311).tls(TlsOptions {
        verify_certificate: false,
        verify_hostname: false,
        ..TlsOptions::default()
    }))
    .unwrap();
    round_trip(&c, "wss/noverify");
    // 3 versions + by name + no verification: the failed handshakes never upgraded.
    assert_eq!(bridge.upgrades().len(), 5);
}

// ---- HTTP CONNECT proxy ----

#[test]
fn proxy_carries_tcp_and_ws() {
    let broker = Broker::start();
    let bridge = Bridge::start(&broker);
    let proxy = Proxy::start(ProxyConfig {
        hosts: vec![("broker.proxy-only.test".into(), broker.addr())],
        ..ProxyConfig::default()
    });
    let c = Client::connect(
        opts(&broker.uri(), "ptcp", ProtocolVersion::V311).http_proxy(&proxy.uri("")),
    )
    .unwrap();
    round_trip(&c, "proxy/tcp");
    let c = Client::connect(
        opts(&bridge.uri("ws", ""), "pws", ProtocolVersion::V5).http_proxy(&proxy.uri("")),
    )
    .unwrap();
    round_trip(&c, "proxy/ws");
    // The broker's name is resolved by the proxy, not by the client.
    let c = Client::connect(
        opts(
            &format!("tcp://broker.proxy-only.test:{}", broker.port()),
            "pname",
            ProtocolVersion::V311,
        )
        .http_proxy(&proxy.uri("")),
    )
    .unwrap();
    round_trip(&c, "proxy/name");
    let targets: Vec<String> = proxy.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        targets,
        [
            format!("127.0.0.1:{}", broker.port()),
            format!("127.0.0.1:{}", bridge.port),
            format!("broker.proxy-only.test:{}", broker.port()),
        ]
    );
    assert!(proxy.seen().iter().all(|s| s.auth.is_none()));
    // The HTTPS proxy setting does not apply to servers without TLS.
    let c = Client::connect(
        opts(&broker.uri(), "pdirect", ProtocolVersion::V311).https_proxy("http://127.0.0.1:1"),
    )
    .unwrap();
    round_trip(&c, "proxy/direct");
    assert_eq!(proxy.seen().len(), 3);
}

#[test]
fn proxy_basic_auth_right_and_wrong() {
    let broker = Broker::start();
    let bridge = Bridge::start(&broker);
    let proxy = Proxy::start(ProxyConfig {
        // base64("alice:s3cret")
        auth: Some("Basic YWxpY2U6czNjcmV0".into()),
        ..ProxyConfig::default()
    });
    let c = Client::connect(
        opts(&bridge.uri("ws", ""), "pauth", ProtocolVersion::V311)
            .http_proxy(&proxy.uri("alice:s3cret@")),
    )
    .unwrap();
    round_trip(&c, "proxy/auth");
    // Percent-escapes in the user info are decoded.
    let c = Client::connect(
        opts(&broker.uri(), "pauth", ProtocolVersion::V311)
            .http_proxy(&proxy.uri("alice:s3cr%65t@")),
    )
    .unwrap();
    round_trip(&c, "proxy/auth2");
    for userinfo in ["alice:wrong@", ""] {
        let e = connect_err(
            opts(&bridge.uri("ws", ""), "pauth", ProtocolVersion::V311)
                .http_proxy(&proxy.uri(userinfo)),
        );
        match &e {
            Error::Proxy {
                proxy: p,
                status,
                message,
            } => {
                assert_eq!(*status, Some(407));
                assert_eq!(p, &format!("127.0.0.1:{}", proxy.port));
                assert!(
                    message.contains("407 Proxy Authentication Required"),
                    "{message}"
                );
                assert!(!e.to_string().contains("wrong"), "no password in {e}");
            }
            other => panic!("expected a proxy error, got {other}"),
        }
    }
    let auths: Vec<Option<String>> = proxy.seen().into_iter().map(|s| s.auth).collect();
    assert_eq!(
        auths,
        [
            Some("Basic YWxpY2U6czNjcmV0".to_string()),
            Some("Basic YWxpY2U6czNjcmV0".to_string()),
            Some("Basic YWxpY2U6d3Jvbmc=".to_string()), // base64("alice:wrong")
            None,
        ]
    );
}

#[test]
fn refusing_proxy_reports_its_status() {
    let broker = Broker::start();
    let proxy = Proxy::start(ProxyConfig {
        refuse: Some(403),
        ..ProxyConfig::default()
    });
    let e =
        connect_err(opts(&broker.uri(), "p403", ProtocolVersion::V311).http_proxy(&proxy.uri("")));
    match &e {
        Error::Proxy {
            status, message, ..
        } => {
            assert_eq!(*status, Some(403));
            assert!(message.contains("HTTP/1.1 403 Forbidden"), "{message}");
            assert!(
                message.contains(&format!("127.0.0.1:{}", broker.port())),
                "target named: {message}"
            );
        }
        other => panic!("expected a proxy error, got {other}"),
    }
    assert_eq!(
        proxy.seen()[0].target,
        format!("127.0.0.1:{}", broker.port())
    );
}

#[test]
fn proxy_failures_are_bounded_by_the_connect_deadline() {
    let broker = Broker::start();
    let silent = Proxy::start(ProxyConfig {
        silent: true,
        ..ProxyConfig::default()
    });
    let timeout = Duration::from_millis(500);
    let t0 = Instant::now();
    let e = connect_err(
        opts(&broker.uri(), "psilent", ProtocolVersion::V311)
            .http_proxy(&silent.uri(""))
            .connect_timeout(timeout),
    );
    let took = t0.elapsed();
    assert!(
        matches!(
            e,
            Error::Timeout {
                step: Step::Handshake,
                ..
            }
        ),
        "{e}"
    );
    assert!(took < timeout + Duration::from_millis(500), "{took:?}");
    // Nothing listens at the proxy's address: the TCP step fails.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let e = connect_err(
        opts(&broker.uri(), "pdead", ProtocolVersion::V311)
            .http_proxy(&format!("127.0.0.1:{dead_port}")),
    );
    assert!(matches!(e, Error::Tcp { .. }), "{e}");
    // An unusable proxy URI is an argument error.
    let e = connect_err(
        opts(&broker.uri(), "pbad", ProtocolVersion::V311).http_proxy("socks5://127.0.0.1:1"),
    );
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

#[test]
fn https_proxy_carries_wss_end_to_end() {
    let pki = Pki::new();
    let broker = Broker::start();
    let bridge = Bridge::with(BridgeConfig {
        broker: broker.addr(),
        path: "/mqtt".into(),
        subprotocol: true,
        split: 100,
        tls: Some(pki.acceptor.clone()),
    });
    let proxy = Proxy::start(ProxyConfig::default());
    let c = Client::connect(
        opts(&bridge.uri("wss", ""), "pwss", ProtocolVersion::V5)
            .tls(pki.tls())
            // The HTTP proxy is for servers without TLS: it must not be used here.
            .http_proxy("http://127.0.0.1:1")
            .https_proxy(&proxy.uri("")),
    )
    .unwrap();
    round_trip(&c, "proxy/wss");
    let targets: Vec<String> = proxy.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(targets, [format!("127.0.0.1:{}", bridge.port)]);
    // TLS verification applies through the tunnel too.
    let e = connect_err(
        opts(&bridge.uri("wss", ""), "pwss", ProtocolVersion::V5).https_proxy(&proxy.uri("")),
    );
    assert!(matches!(e, Error::Tls { .. }), "{e}");
}

#[test]
fn c_api_over_ws_with_headers_and_through_a_proxy() {
    // The same MQTTClient.h scenario as over TCP, on ws:// with httpHeaders (connect
    // options version 7) and through an HTTP CONNECT proxy (httpProxy, version 8).
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("client_ws");
    build_c_program("cc", &c_dir().join("client_ws.c"), &exe, &[]);
    let broker = Broker::start();
    let bridge = Bridge::start(&broker);
    let uri = bridge.uri("ws", "/mqtt");
    let r = run_prog(&exe, &[&uri], &[], Duration::from_secs(60));
    r.assert_clean("client_ws direct");
    assert_eq!(
        r.stdout.matches("received over ws").count(),
        3,
        "{}",
        r.stdout
    );
    assert_eq!(bridge.upgrades()[0].header("x-from-c"), Some("mqttsync"));
    // As in Paho (measured with Debian's 1.3.11): the URI without its scheme, path kept.
    let want = format!("returned serverURI={}\n", uri.trim_start_matches("ws://"));
    assert!(
        want.contains(":") && want.contains("/mqtt") && r.stdout.contains(&want),
        "{want:?}:\n{}",
        r.stdout
    );

    let proxy = Proxy::start(ProxyConfig::default());
    let r = run_prog(&exe, &[&uri, &proxy.uri("")], &[], Duration::from_secs(60));
    r.assert_clean("client_ws through the proxy");
    let targets: Vec<String> = proxy.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(targets, [format!("127.0.0.1:{}", bridge.port)]);
    assert_eq!(bridge.upgrades().len(), 2);

    // No proxy option and no headers: the proxy comes from `http_proxy` in the
    // environment, read at connect as Paho does (the client keeps no HTTP options then).
    let env_proxy = Proxy::start(ProxyConfig::default());
    let r = run_prog(
        &exe,
        &[&uri, "env"],
        &[("http_proxy", &env_proxy.uri(""))],
        Duration::from_secs(60),
    );
    r.assert_clean("client_ws through the environment's proxy");
    let targets: Vec<String> = env_proxy.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(targets, [format!("127.0.0.1:{}", bridge.port)]);
    assert_eq!(bridge.upgrades().len(), 3);
}
