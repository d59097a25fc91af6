//! HTTP CONNECT proxies: proxy URIs, the environment (`http_proxy`, `https_proxy`,
//! `no_proxy`) and the tunnel handshake.
//!
//! Which proxy a connection uses follows Paho C: servers without TLS (`tcp://`, `ws://`)
//! go through the HTTP proxy, servers with TLS (`ssl://`, `wss://`) through the HTTPS
//! proxy. In both cases the client speaks plain HTTP to the proxy (`CONNECT host:port`),
//! and TLS, when the server URI asks for it, runs end to end through the tunnel.

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use super::config::{HttpOptions, Scheme, ServerUri};
use crate::error::{Error, Result, Step};

/// Port used when a proxy URI names none (Paho C's default).
pub(crate) const DEFAULT_PROXY_PORT: u16 = 8080;

/// Largest proxy answer head accepted (status line and headers).
const MAX_HEAD: usize = 16 * 1024;

/// A parsed `http://[user:password@]host[:port][/]` proxy URI.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ProxyUri {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// `user:password` (percent-decoded) for `Proxy-Authorization: Basic`.
    pub credentials: Option<Vec<u8>>,
}

impl std::fmt::Debug for ProxyUri {
    // Never prints the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyUri")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ProxyUri {
    /// Parses a proxy URI. The scheme may be `http://` or absent; a trailing `/` is allowed.
    /// `https://` (TLS to the proxy itself) is refused: it is not supported.
    pub fn parse(uri: &str) -> Result<ProxyUri> {
        // The message never repeats the URI: it may hold a password.
        let bad = |why: &str| Error::InvalidArgument(format!("proxy URI: {why}"));
        let uri = uri.trim();
        let rest = match uri.find("://") {
            Some(i) => {
                let scheme = uri[..i].to_ascii_lowercase();
                match scheme.as_str() {
                    "http" => &uri[i + 3..],
                    "https" => {
                        return Err(bad(
                            "https:// (TLS to the proxy) is not supported; use http://",
                        ))
                    }
                    _ => return Err(bad("scheme must be http://")),
                }
            }
            None => uri,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(bad("a proxy URI has no path"));
        }
        let (credentials, hostport) = match rest.rfind('@') {
            Some(i) => (Some(percent_decode(&rest[..i])), &rest[i + 1..]),
            None => (None, rest),
        };
        let (host, port) = split_host_port(hostport, DEFAULT_PROXY_PORT)
            .ok_or_else(|| bad("expected host[:port] (IPv6 addresses in brackets)"))?;
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        Ok(ProxyUri {
            host,
            port,
            credentials,
        })
    }

    /// `host:port` for messages (IPv6 in brackets), without credentials.
    pub fn display(&self) -> String {
        authority(&self.host, self.port)
    }
}

/// `host:port` with IPv6 literals in brackets.
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn split_host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(h) = s.strip_prefix('[') {
        let end = h.find(']')?;
        let after = &h[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((h[..end].to_string(), port));
    }
    match s.rfind(':') {
        Some(i) if s[..i].contains(':') => None, // bare IPv6 needs brackets
        Some(i) => Some((s[..i].to_string(), s[i + 1..].parse().ok()?)),
        None => Some((s.to_string(), default_port)),
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Standard base64 with padding (RFC 4648), for `Proxy-Authorization: Basic`.
pub(crate) fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The environment as the proxy selection sees it (a function so tests need not touch the
/// process environment).
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn env_var(env: Env<'_>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| env(n))
        .find(|v| !v.trim().is_empty())
}

/// The proxy to use for `uri`, if any: the explicit one for its kind (HTTP for servers
/// without TLS, HTTPS for servers with TLS), else, with `proxy_from_env`, the environment's
/// (`http_proxy`; `https_proxy` or `HTTPS_PROXY`) unless `no_proxy` / `NO_PROXY` exempts
/// the server. The upper-case `HTTP_PROXY` is not read: in CGI programs any client can set
/// it through a `Proxy:` request header ("httpoxy"), which is why curl ignores it as well.
pub(crate) fn select(
    http: &HttpOptions,
    uri: &ServerUri,
    env: Env<'_>,
) -> Result<Option<ProxyUri>> {
    let tls = matches!(uri.scheme, Scheme::Tls | Scheme::Wss);
    let explicit = if tls {
        &http.https_proxy
    } else {
        &http.http_proxy
    };
    if let Some(p) = explicit {
        return Ok(Some(p.clone()));
    }
    if !http.proxy_from_env {
        return Ok(None);
    }
    let (var, value) = if tls {
        ("https_proxy", env_var(env, &["https_proxy", "HTTPS_PROXY"]))
    } else {
        ("http_proxy", env_var(env, &["http_proxy"]))
    };
    let Some(value) = value else {
        return Ok(None);
    };
    if let Some(no) = env_var(env, &["no_proxy", "NO_PROXY"]) {
        if no_proxy_matches(&no, &uri.host, uri.port) {
            log::debug!("{uri}: no_proxy exempts the server from the proxy");
            return Ok(None);
        }
    }
    ProxyUri::parse(&value).map(Some).map_err(|e| match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("{m} (from ${var})")),
        other => other,
    })
}

/// Whether a `no_proxy` list exempts `host:port`. Entries are separated by commas (or
/// white space); `*` exempts every host; `example.com` and `.example.com` exempt that
/// domain and its subdomains; an entry with `:port` exempts that port only; IP addresses
/// match exactly and `addr/bits` entries match a CIDR block. Case does not matter.
pub(crate) fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let host_ip: Option<IpAddr> = host.parse().ok();
    for entry in list
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if entry == "*" {
            return true;
        }
        let entry = entry.to_ascii_lowercase();
        // CIDR block.
        if let Some((net, bits)) = entry.split_once('/') {
            if let (Some(ip), Ok(net), Ok(bits)) = (host_ip, net.parse::<IpAddr>(), bits.parse()) {
                if cidr_contains(net, bits, ip) {
                    return true;
                }
            }
            continue;
        }
        // Optional port: "host:port", "[v6]:port"; a bare IPv6 address has no port.
        let (name, want_port) = if entry.parse::<IpAddr>().is_ok() {
            (entry.clone(), None)
        } else {
            match split_host_port(&entry, 0) {
                Some((h, 0)) => (h, None),
                Some((h, p)) => (h, Some(p)),
                None => continue,
            }
        };
        if want_port.is_some_and(|p| p != port) {
            continue;
        }
        if let (Some(ip), Ok(e)) = (host_ip, name.parse::<IpAddr>()) {
            if ip == e {
                return true;
            }
            continue;
        }
        let name = name.trim_start_matches("*.").trim_start_matches('.');
        let name = name.trim_end_matches('.');
        if name.is_empty() {
            continue;
        }
        if host == name
            || (host.len() > name.len()
                && host.ends_with(name)
                && host.as_bytes()[host.len() - name.len() - 1] == b'.')
        {
            return true;
        }
    }
    false
}

fn cidr_contains(net: IpAddr, bits: u32, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

fn remaining(deadline: Instant, total: Duration) -> Result<Duration> {
    let now = Instant::now();
    if now >= deadline {
        return Err(Error::timeout(Step::Handshake, total));
    }
    Ok((deadline - now).max(Duration::from_millis(1)))
}

fn io_err(e: io::Error, total: Duration, proxy: &ProxyUri) -> Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            Error::timeout(Step::Handshake, total)
        }
        _ => Error::Proxy {
            proxy: proxy.display(),
            status: None,
            message: format!("connection to the proxy failed: {e}"),
        },
    }
}

/// Connects to the proxy and opens a tunnel to `host:port` with `CONNECT`, all within
/// `deadline`. Returns the blocking socket, positioned right after the proxy's answer.
pub(crate) fn connect(
    proxy: &ProxyUri,
    host: &str,
    port: u16,
    deadline: Instant,
    total: Duration,
) -> Result<TcpStream> {
    let addrs = crate::transport::resolve(&proxy.host, proxy.port, deadline, total)?;
    let mut tcp = crate::transport::connect_tcp(&addrs, deadline, total)?;
    let target = authority(host, port);
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(c) = &proxy.credentials {
        req.push_str("Proxy-Authorization: Basic ");
        req.push_str(&base64(c));
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let left = remaining(deadline, total)?;
    tcp.set_write_timeout(Some(left))?;
    tcp.write_all(req.as_bytes())
        .map_err(|e| io_err(e, total, proxy))?;
    // Read the answer head byte by byte: whatever follows it belongs to the tunnel.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() >= MAX_HEAD {
            return Err(Error::Proxy {
                proxy: proxy.display(),
                status: None,
                message: format!("answer head longer than {MAX_HEAD} bytes"),
            });
        }
        tcp.set_read_timeout(Some(remaining(deadline, total)?))?;
        match tcp.read(&mut byte) {
            Ok(0) => {
                let line = first_line(&head);
                return Err(Error::Proxy {
                    proxy: proxy.display(),
                    status: parse_status(&line),
                    message: if line.is_empty() {
                        "the proxy closed the connection without answering".into()
                    } else {
                        format!("the proxy closed the connection after {line:?}")
                    },
                });
            }
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e, total, proxy)),
        }
    }
    let line = first_line(&head);
    match parse_status(&line) {
        Some(s) if (200..300).contains(&s) => {
            log::debug!("proxy {} opened a tunnel to {target}", proxy.display());
            Ok(tcp)
        }
        Some(s) => Err(Error::Proxy {
            proxy: proxy.display(),
            status: Some(s),
            message: format!("CONNECT {target} refused: {line}"),
        }),
        None => Err(Error::Proxy {
            proxy: proxy.display(),
            status: None,
            message: format!("not an HTTP answer: {line:?}"),
        }),
    }
}

fn first_line(head: &[u8]) -> String {
    let end = head
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(head.len());
    String::from_utf8_lossy(&head[..end.min(200)]).into_owned()
}

/// The status code of an `HTTP/1.x NNN reason` line.
fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.split_ascii_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn uri(s: &str) -> ServerUri {
        ServerUri::parse(s).unwrap()
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    #[test]
    fn parses_proxy_uris() {
        let p = ProxyUri::parse("http://proxy.example:3128").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.credentials),
            ("proxy.example", 3128, None)
        );
        let p = ProxyUri::parse("proxy.example").unwrap();
        assert_eq!(p.port, DEFAULT_PROXY_PORT);
        let p = ProxyUri::parse("http://u%40x:p%3Ass@[::1]:8888/").unwrap();
        assert_eq!(p.host, "::1");
        assert_eq!(p.port, 8888);
        assert_eq!(p.credentials.as_deref(), Some(&b"u@x:p:ss"[..]));
        assert_eq!(p.display(), "[::1]:8888");
        // The last '@' separates: a password may hold a raw '@'.
        let p = ProxyUri::parse("http://user:p@ss@host:1").unwrap();
        assert_eq!(p.credentials.as_deref(), Some(&b"user:p@ss"[..]));
        assert_eq!(p.host, "host");
        assert!(
            !format!("{p:?}").contains("p@ss"),
            "Debug hides credentials"
        );
    }

    #[test]
    fn rejects_bad_proxy_uris_without_echoing_secrets() {
        for bad in [
            "https://proxy:443",
            "socks5://proxy:1080",
            "http://",
            "http://host:notaport",
            "http://host:1/path",
            "http://::1:8080",
        ] {
            let e = ProxyUri::parse(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e}");
        }
        let e = ProxyUri::parse("http://user:secret@host:x").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn parses_status_lines() {
        assert_eq!(
            parse_status("HTTP/1.1 200 Connection established"),
            Some(200)
        );
        assert_eq!(
            parse_status("HTTP/1.0 407 Proxy Authentication Required"),
            Some(407)
        );
        assert_eq!(parse_status("HTTP/1.1 403"), Some(403));
        assert_eq!(parse_status("SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status("HTTP/1.1 2000 x"), None);
        assert_eq!(parse_status(""), None);
    }

    #[test]
    fn no_proxy_rules() {
        let m = no_proxy_matches;
        assert!(m("*", "anything", 1));
        assert!(m("example.com", "example.com", 1));
        assert!(m("example.com", "broker.example.com", 1));
        assert!(m(".example.com", "broker.example.com", 1));
        assert!(m(".example.com", "example.com", 1));
        assert!(m("*.example.com", "a.b.example.com", 1));
        assert!(!m("example.com", "badexample.com", 1));
        assert!(!m("example.com", "example.com.evil", 1));
        assert!(m("EXAMPLE.com", "Broker.Example.COM", 1));
        assert!(m("localhost, 127.0.0.1 ,::1", "127.0.0.1", 1));
        assert!(m("localhost,127.0.0.1,::1", "::1", 1));
        assert!(m("localhost,127.0.0.1,[::1]", "::1", 1));
        assert!(!m("127.0.0.1", "127.0.0.2", 1));
        assert!(m("10.0.0.0/8", "10.1.2.3", 1));
        assert!(!m("10.0.0.0/8", "11.1.2.3", 1));
        assert!(m("fd00::/8", "fd12::1", 1));
        assert!(!m("10.0.0.0/8", "host.example", 1));
        assert!(m("broker.example:8883", "broker.example", 8883));
        assert!(!m("broker.example:8883", "broker.example", 1883));
        assert!(m("[::1]:1883", "::1", 1883));
        assert!(!m("[::1]:1883", "::1", 1884));
        assert!(!m("", "example.com", 1));
        assert!(!m(" , ,", "example.com", 1));
        assert!(!m(".", "example.com", 1));
        assert!(m("example.com.", "example.com", 1));
    }

    fn opts(from_env: bool) -> HttpOptions {
        HttpOptions {
            proxy_from_env: from_env,
            ..HttpOptions::default()
        }
    }

    #[test]
    fn environment_is_ignored_unless_asked_for() {
        let env = env_of(&[
            ("http_proxy", "http://envproxy:1"),
            ("https_proxy", "http://envproxy:2"),
        ]);
        assert_eq!(
            select(&opts(false), &uri("tcp://b:1883"), &env).unwrap(),
            None
        );
        assert_eq!(select(&opts(false), &uri("wss://b"), &env).unwrap(), None);
        let p = select(&opts(true), &uri("tcp://b:1883"), &env)
            .unwrap()
            .unwrap();
        assert_eq!(p.port, 1);
        let p = select(&opts(true), &uri("ws://b"), &env).unwrap().unwrap();
        assert_eq!(p.port, 1);
        let p = select(&opts(true), &uri("ssl://b"), &env).unwrap().unwrap();
        assert_eq!(p.port, 2);
        let p = select(&opts(true), &uri("wss://b"), &env).unwrap().unwrap();
        assert_eq!(p.port, 2);
    }

    #[test]
    fn explicit_proxy_wins_over_environment_and_no_proxy() {
        let env = env_of(&[("http_proxy", "http://envproxy:1"), ("no_proxy", "*")]);
        let mut o = opts(true);
        o.http_proxy = Some(ProxyUri::parse("http://mine:9").unwrap());
        let p = select(&o, &uri("tcp://b"), &env).unwrap().unwrap();
        assert_eq!((p.host.as_str(), p.port), ("mine", 9));
        // The HTTPS proxy is separate: a TLS server does not use the HTTP proxy.
        assert_eq!(select(&o, &uri("ssl://b"), &env).unwrap(), None);
        let mut o = opts(false);
        o.https_proxy = Some(ProxyUri::parse("mine:9").unwrap());
        assert!(select(&o, &uri("wss://b"), &env).unwrap().is_some());
        assert!(select(&o, &uri("ws://b"), &env).unwrap().is_none());
    }

    #[test]
    fn no_proxy_and_variable_spellings() {
        let env = env_of(&[
            ("HTTP_PROXY", "http://httpoxy:1"),
            ("HTTPS_PROXY", "http://upper:2"),
            ("NO_PROXY", "internal.example,10.0.0.0/8"),
        ]);
        // Upper-case HTTP_PROXY is never read.
        assert_eq!(select(&opts(true), &uri("tcp://b"), &env).unwrap(), None);
        let p = select(&opts(true), &uri("ssl://b"), &env).unwrap().unwrap();
        assert_eq!(p.host, "upper");
        assert_eq!(
            select(&opts(true), &uri("ssl://x.internal.example"), &env).unwrap(),
            None
        );
        assert_eq!(
            select(&opts(true), &uri("wss://10.9.8.7"), &env).unwrap(),
            None
        );
        // Lower case wins over upper case; an empty value counts as unset.
        let env = env_of(&[
            ("https_proxy", "http://lower:3"),
            ("HTTPS_PROXY", "http://upper:2"),
            ("http_proxy", " "),
            ("no_proxy", ""),
            ("NO_PROXY", "*"),
        ]);
        let p = select(&opts(true), &uri("ssl://b"), &env).unwrap();
        assert_eq!(p, None, "NO_PROXY=* applies when no_proxy is empty");
        let env = env_of(&[
            ("https_proxy", "http://lower:3"),
            ("HTTPS_PROXY", "http://upper:2"),
        ]);
        let p = select(&opts(true), &uri("ssl://b"), &env).unwrap().unwrap();
        assert_eq!(p.host, "lower");
    }

    #[test]
    fn bad_environment_proxy_is_reported_with_its_variable() {
        let env = env_of(&[("https_proxy", "socks5://x:1")]);
        let e = select(&opts(true), &uri("ssl://b"), &env).unwrap_err();
        assert!(e.to_string().contains("$https_proxy"), "{e}");
    }
}
