//! TLS: native-tls, and OpenSSL directly on Linux for what native-tls cannot express
//! (cipher lists, TLS-PSK, key formats); failure texts in words.

use std::io::{self, Read};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;

/// After a write failed with a reset: the TLS alert the server sent before it closed, if it
/// is still in the receive buffer. With TLS 1.3 a server that refuses the client
/// certificate (or its absence) does so after the client's handshake has finished; the
/// client's CONNECT then meets a reset, and only the alert says why.
pub(super) fn pending_tls_alert(s: &mut impl Read) -> Option<io::Error> {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Err(e) if is_tls_protocol_error(&e) => Some(e),
        _ => None,
    }
}

/// Whether an I/O error of a TLS stream carries a TLS protocol error (not a socket error).
pub(super) fn is_tls_protocol_error(e: &io::Error) -> bool {
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

pub(super) fn tls_config_error(msg: String) -> Error {
    Error::Tls {
        kind: TlsErrorKind::Configuration,
        message: msg,
    }
}

pub(super) fn read_file(what: &str, p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| tls_config_error(format!("{what} {}: {e}", p.display())))
}

/// The first PEM block whose label ends in `PRIVATE KEY` (`PRIVATE KEY`,
/// `ENCRYPTED PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`, ...), with its
/// `Proc-Type`/`DEK-Info` headers, so that a file holding certificates, EC parameters and a
/// key in any order can be used as the key file.
pub(super) fn private_key_block(pem: &[u8]) -> Option<&[u8]> {
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

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads the client certificate (chain) and key into what `Identity::from_pkcs8` takes:
/// the certificates as PEM (leaf first, then the chain) and the key as unencrypted PKCS#8
/// PEM. Accepts PKCS#8, encrypted PKCS#8, PKCS#1 (`RSA PRIVATE KEY`), SEC1
/// (`EC PRIVATE KEY`), traditionally encrypted PEM (`Proc-Type: 4,ENCRYPTED`), and
/// certificate and key in one file (`key == None`).
#[cfg(target_os = "linux")]
pub(super) fn identity_pem(
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
pub(super) fn identity_pem(
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
pub(super) fn ca_dir_certificates(dir: &Path) -> Result<Vec<native_tls::Certificate>> {
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

/// True when `opts` asks for what only OpenSSL used directly can do: a cipher list or
/// TLS-PSK.
pub(super) fn needs_openssl(opts: &TlsOptions) -> bool {
    opts.ciphers
        .as_deref()
        .is_some_and(|c| !c.trim().is_empty())
        || opts.psk.is_some()
}

/// The TLS handshake over `tcp`, verifying the certificate for `name`, within `deadline`.
pub(super) fn tls_handshake(
    opts: &TlsOptions,
    name: &str,
    tcp: TcpStream,
    deadline: Instant,
    total: Duration,
) -> Result<Stream> {
    if needs_openssl(opts) {
        #[cfg(target_os = "linux")]
        {
            let connector = openssl_connector(opts)?;
            let left = remaining(deadline, Step::TlsHandshake, total)?;
            tcp.set_read_timeout(Some(left))?;
            tcp.set_write_timeout(Some(left))?;
            return openssl_handshake(&connector, opts, name, tcp, total);
        }
        #[cfg(not(target_os = "linux"))]
        return Err(tls_config_error(
            "a cipher list (ciphers / enabledCipherSuites) and TLS-PSK need OpenSSL, which \
             is used on Linux only; refusing to connect with other ciphers or without the \
             pre-shared key"
                .into(),
        ));
    }
    let connector = tls_connector(opts)?;
    let left = remaining(deadline, Step::TlsHandshake, total)?;
    tcp.set_read_timeout(Some(left))?;
    tcp.set_write_timeout(Some(left))?;
    match connector.connect(name, tcp) {
        Ok(s) => Ok(Stream::Tls(Box::new(s))),
        Err(native_tls::HandshakeError::Failure(e)) => Err(native_tls_failure(&e, name)),
        Err(native_tls::HandshakeError::WouldBlock(_)) => {
            Err(Error::timeout(Step::TlsHandshake, total))
        }
    }
}

/// The protocol version and cipher suite of a TLS stream, when known, for traces.
pub(super) fn tls_summary(s: &Stream) -> String {
    match s {
        #[cfg(target_os = "linux")]
        Stream::OpenSsl(t) => format!(
            ": {} {}",
            t.ssl().version_str(),
            t.ssl().current_cipher().map_or("", |c| c.name())
        ),
        _ => String::new(),
    }
}

/// Splits an OpenSSL cipher list into its TLS 1.2-and-below part and its TLS 1.3 part
/// (suite names starting with `TLS_`), each `:`-separated. OpenSSL also accepts `,` and
/// spaces as separators.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(super) fn split_cipher_list(list: &str) -> (String, String) {
    let (mut legacy, mut tls13) = (Vec::new(), Vec::new());
    for entry in list
        .split([':', ',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if entry.starts_with("TLS_") {
            tls13.push(entry);
        } else {
            legacy.push(entry);
        }
    }
    (legacy.join(":"), tls13.join(":"))
}

/// OpenSSL's short reason of each error in `stack` (`certificate verify failed`, `tlsv13
/// alert certificate required`...), without codes and source file paths; repeats dropped.
#[cfg(target_os = "linux")]
pub(super) fn stack_reasons(stack: &openssl::error::ErrorStack) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in stack.errors() {
        let r = e
            .reason()
            .map_or_else(|| format!("error {:08X}", e.code()), str::to_owned);
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// A configuration error carrying OpenSSL's short reasons.
#[cfg(target_os = "linux")]
pub(super) fn openssl_config_error(what: &str, e: &openssl::error::ErrorStack) -> Error {
    let why = stack_reasons(e).join("; ");
    tls_config_error(if why.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {why}")
    })
}

/// An OpenSSL connector for the options that native-tls cannot express (a cipher list,
/// TLS-PSK), configured like native-tls's for everything else: system roots unless turned
/// off, CA file and directory, verification, client certificate, minimum version, ALPN.
#[cfg(target_os = "linux")]
pub(super) fn openssl_connector(opts: &TlsOptions) -> Result<openssl::ssl::SslConnector> {
    use openssl::pkey::PKey;
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::X509;

    let mut b = SslConnector::builder(SslMethod::tls_client())
        .map_err(|e| openssl_config_error("TLS context", &e))?;
    if !opts.use_system_roots {
        let store = X509StoreBuilder::new().map_err(|e| openssl_config_error("CA store", &e))?;
        b.set_cert_store(store.build());
    }
    let mut trust = Vec::new();
    if let Some(ca) = &opts.ca_file {
        let pem = read_file("CA file", ca)?;
        let certs = X509::stack_from_pem(&pem)
            .map_err(|e| openssl_config_error(&format!("CA file {}", ca.display()), &e))?;
        if certs.is_empty() {
            return Err(tls_config_error(format!(
                "CA file {} holds no certificate",
                ca.display()
            )));
        }
        trust.extend(certs);
    }
    if let Some(dir) = &opts.ca_dir {
        for c in ca_dir_certificates(dir)? {
            let der = c
                .to_der()
                .map_err(|e| tls_config_error(format!("CA dir {}: {e}", dir.display())))?;
            trust.push(
                X509::from_der(&der)
                    .map_err(|e| openssl_config_error(&format!("CA dir {}", dir.display()), &e))?,
            );
        }
    }
    for c in trust {
        // A certificate already in the store is not an error worth failing for.
        let _ = b.cert_store_mut().add_cert(c);
    }
    b.set_verify(if opts.verify_certificate {
        SslVerifyMode::PEER
    } else {
        SslVerifyMode::NONE
    });
    match (&opts.client_cert, &opts.client_key) {
        (Some(cert), key) => {
            let (chain, key) = identity_pem(cert, key.as_deref(), opts.key_password.as_deref())?;
            let bad =
                |e: openssl::error::ErrorStack| openssl_config_error("client certificate/key", &e);
            let certs = X509::stack_from_pem(&chain).map_err(bad)?;
            let key = PKey::private_key_from_pem(&key).map_err(bad)?;
            let mut certs = certs.into_iter();
            if let Some(leaf) = certs.next() {
                b.set_certificate(&leaf).map_err(bad)?;
            }
            for c in certs {
                b.add_extra_chain_cert(c).map_err(bad)?;
            }
            b.set_private_key(&key).map_err(bad)?;
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
        b.set_min_proto_version(Some(match v {
            TlsVersion::Tls10 => SslVersion::TLS1,
            TlsVersion::Tls11 => SslVersion::TLS1_1,
            TlsVersion::Tls12 => SslVersion::TLS1_2,
            TlsVersion::Tls13 => SslVersion::TLS1_3,
        }))
        .map_err(|e| openssl_config_error("minimum TLS version", &e))?;
    }
    if !opts.alpn.is_empty() {
        let mut wire = Vec::new();
        for p in &opts.alpn {
            let len = u8::try_from(p.len())
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| tls_config_error(format!("ALPN protocol {p:?}: bad length")))?;
            wire.push(len);
            wire.extend_from_slice(p.as_bytes());
        }
        b.set_alpn_protos(&wire)
            .map_err(|e| openssl_config_error("ALPN", &e))?;
    }
    let (legacy, tls13) = split_cipher_list(opts.ciphers.as_deref().unwrap_or(""));
    if !legacy.is_empty() {
        b.set_cipher_list(&legacy)
            .map_err(|e| openssl_config_error(&format!("cipher list {legacy:?}"), &e))?;
    } else if opts.psk.is_some() {
        // The connector's own default list leaves the PSK suites out; OpenSSL's has them.
        b.set_cipher_list("DEFAULT")
            .map_err(|e| openssl_config_error("cipher list \"DEFAULT\"", &e))?;
    }
    if !tls13.is_empty() {
        b.set_ciphersuites(&tls13)
            .map_err(|e| openssl_config_error(&format!("TLS 1.3 cipher suites {tls13:?}"), &e))?;
    }
    if let Some(psk) = opts.psk.clone() {
        b.set_psk_client_callback(move |_ssl, hint, identity_out, key_out| {
            let refuse = || Err(openssl::error::ErrorStack::get());
            // A panicking application callback must not unwind through OpenSSL.
            let asked =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| psk.credentials(hint)));
            let Some((identity, key)) = asked.ok().flatten() else {
                log::debug!("TLS-PSK: no identity and key for this server");
                return refuse();
            };
            // The identity goes out as a C string.
            if identity.len() >= identity_out.len() || key.len() > key_out.len() {
                log::debug!("TLS-PSK: identity or key longer than OpenSSL takes");
                return refuse();
            }
            identity_out[..identity.len()].copy_from_slice(&identity);
            identity_out[identity.len()] = 0;
            key_out[..key.len()].copy_from_slice(&key);
            Ok(key.len())
        });
    }
    Ok(b.build())
}

#[cfg(target_os = "linux")]
pub(super) fn openssl_handshake(
    connector: &openssl::ssl::SslConnector,
    opts: &TlsOptions,
    name: &str,
    tcp: TcpStream,
    total: Duration,
) -> Result<Stream> {
    use openssl::ssl::HandshakeError;
    use openssl::x509::X509VerifyResult;

    let config = connector
        .configure()
        .map_err(|e| openssl_config_error("TLS connection", &e))?
        .verify_hostname(opts.verify_hostname && opts.verify_certificate);
    match config.connect(name, tcp) {
        Ok(s) => Ok(Stream::OpenSsl(Box::new(s))),
        Err(HandshakeError::SetupFailure(e)) => Err(openssl_config_error("TLS connection", &e)),
        Err(HandshakeError::Failure(mid)) => {
            let v = mid.ssl().verify_result();
            let verify = (v != X509VerifyResult::OK).then(|| v.error_string().to_string());
            let err = mid.error();
            let reasons = err.ssl_error().map(stack_reasons).unwrap_or_default();
            let fallback = err
                .io_error()
                .map_or_else(|| err.to_string(), ToString::to_string);
            Err(handshake_error(
                name,
                &reasons,
                verify.as_deref(),
                &fallback,
            ))
        }
        Err(HandshakeError::WouldBlock(_)) => Err(Error::timeout(Step::TlsHandshake, total)),
    }
}

/// The short reasons in the text of OpenSSL errors (`error:0A000086:SSL
/// routines:function:reason:file:line:data`, several joined by `, `): the reason fields;
/// text that is not in that form is returned as it is.
pub(super) fn short_reasons(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in text.split("error:").skip(1) {
        // code, library, function, reason, file, line, data
        if let Some(reason) = part.split(':').nth(3) {
            let reason = reason.trim().to_string();
            if !reason.is_empty() && !out.contains(&reason) {
                out.push(reason);
            }
        }
    }
    if out.is_empty() && !text.trim().is_empty() {
        out.push(text.trim().to_string());
    }
    out
}

/// The error for a failed native-tls handshake with the server named `name`.
pub(super) fn native_tls_failure(e: &native_tls::Error, name: &str) -> Error {
    let text = e.to_string();
    // native-tls appends the certificate verification result as ` (<result>)`.
    let verify = text
        .contains("certificate verify failed")
        .then(|| {
            text.trim_end()
                .strip_suffix(')')
                .and_then(|t| t.rfind('(').map(|i| t[i + 1..].to_string()))
        })
        .flatten();
    #[cfg(target_os = "linux")]
    let stack = std::error::Error::source(e).and_then(|s| {
        match s.downcast_ref::<openssl::error::ErrorStack>() {
            Some(stack) => Some(stack_reasons(stack)),
            // A socket error: no OpenSSL reason to quote (the text is the fallback).
            None if s.is::<io::Error>() => Some(Vec::new()),
            None => None,
        }
    });
    #[cfg(not(target_os = "linux"))]
    let stack: Option<Vec<String>> = None;
    let reasons = stack.unwrap_or_else(|| {
        let without = match &verify {
            Some(v) => text
                .trim_end()
                .trim_end_matches(&format!("({v})"))
                .trim_end(),
            None => &text,
        };
        short_reasons(without)
    });
    handshake_error(name, &reasons, verify.as_deref(), &text)
}

/// A handshake failure in words: what went wrong, then OpenSSL's short reasons and the
/// certificate verification result, e.g. `the server's certificate is self-signed and not
/// trusted (OpenSSL: certificate verify failed: self-signed certificate)`. `fallback` is
/// used when OpenSSL gave no reason (a socket error).
pub(super) fn handshake_error(
    name: &str,
    reasons: &[String],
    verify: Option<&str>,
    fallback: &str,
) -> Error {
    let joined = reasons.join("; ");
    let kind = classify_tls_error(&match verify {
        Some(v) => format!("{joined} ({v})"),
        None if joined.is_empty() => fallback.to_string(),
        None => joined.clone(),
    });
    let cause = describe_tls_failure(kind, verify.unwrap_or(""), &joined, name);
    let message = match verify {
        Some(v) if joined.is_empty() => format!("{cause} (OpenSSL: {v})"),
        Some(v) => format!("{cause} (OpenSSL: {joined}: {v})"),
        None if joined.is_empty() => format!("{cause}: {fallback}"),
        None => format!("{cause} (OpenSSL: {joined})"),
    };
    Error::Tls { kind, message }
}

/// The cause of a handshake failure of `kind` in words, refined by the verification
/// result and OpenSSL's reasons.
pub(super) fn describe_tls_failure(
    kind: TlsErrorKind,
    verify: &str,
    reasons: &str,
    name: &str,
) -> String {
    let v = verify.to_ascii_lowercase();
    let r = reasons.to_ascii_lowercase();
    let self_signed = v.starts_with("self-signed") || v.starts_with("self signed");
    match kind {
        TlsErrorKind::UnknownCa if self_signed && v.contains("in certificate chain") => {
            "the server's certificate chain ends in a self-signed CA certificate that is not \
             trusted"
                .into()
        }
        TlsErrorKind::UnknownCa if self_signed => {
            "the server's certificate is self-signed and not trusted".into()
        }
        TlsErrorKind::UnknownCa => {
            "the server's certificate is not trusted (issued by an unknown CA)".into()
        }
        TlsErrorKind::NameMismatch if v.contains("ip address") => {
            format!("the server's certificate does not match the IP address {name}")
        }
        TlsErrorKind::NameMismatch => {
            format!("the server's certificate does not match the host name {name}")
        }
        TlsErrorKind::Expired if v.contains("not yet valid") => {
            "the server's certificate is not valid yet".into()
        }
        TlsErrorKind::Expired => "the server's certificate has expired".into(),
        TlsErrorKind::HandshakeRefused => {
            let why = if r.contains("certificate required") {
                ": it requires a client certificate"
            } else if r.contains("alert unknown ca")
                || r.contains("alert bad certificate")
                || r.contains("alert certificate unknown")
            {
                ": it does not accept the client certificate"
            } else if r.contains("protocol version") {
                ": no TLS version acceptable to both sides"
            } else if r.contains("handshake failure") {
                ": no cipher suite (or pre-shared key) acceptable to both sides"
            } else {
                ""
            };
            format!("the server refused the TLS handshake{why}")
        }
        TlsErrorKind::Configuration => "the TLS settings cannot be used".into(),
        TlsErrorKind::Other => "the TLS handshake failed".into(),
    }
}

/// OpenSSL's certificate verification results (`X509_verify_cert_error_string`, in the
/// spellings of OpenSSL 1.1 and 3.x) and their kinds. native-tls appends the verification
/// result to a handshake error as ` (<text>)`.
pub(super) const VERIFY_RESULTS: &[(&str, TlsErrorKind)] = &[
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
