//! TLS against a real mosquitto: server verification (CA file, CA dir, unknown CA, wrong
//! host, expired), SNI / verification name, mutual TLS with every client key format Paho
//! users hand over, password authentication over TLS, minimum version; plus IPv6 loopback.
//!
//! The PKI (tests/common/pki.rs) is generated per test run with the openssl crate into a
//! temp dir (no `openssl` process). Error cases print the exact message OpenSSL gave
//! (visible with --nocapture).

mod common;

use std::path::Path;
use std::time::Duration;

use common::pki::{
    good_broker, mutual_broker, pki, psk_broker, tls_broker, KEY_PASSWORD, PSK_HINT, PSK_IDENTITY,
    PSK_KEY,
};
use common::{unique_client_id, Broker, TlsFiles, DEADLINE};
use mqttsync::{
    Client, ConnectOptions, Error, Message, ProtocolVersion, QoS, TlsErrorKind, TlsOptions, TlsPsk,
    TlsVersion,
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn trust_ca() -> TlsOptions {
    TlsOptions {
        ca_file: Some(pki().ca.clone()),
        ..Default::default()
    }
}

fn client_opts(uri: &str, tls: TlsOptions) -> ConnectOptions {
    ConnectOptions::new(uri)
        .client_id(unique_client_id("tls"))
        .connect_timeout(DEADLINE)
        .tls(tls)
}

fn connect(uri: &str, tls: TlsOptions) -> mqttsync::Result<Client> {
    Client::connect(client_opts(uri, tls))
}

/// Connects, subscribes, publishes at `qos` and receives the message back.
#[track_caller]
fn round_trip(c: &Client, topic: &str, qos: QoS) {
    assert_eq!(c.subscribe(topic, qos).unwrap(), qos);
    let payload = format!("over TLS at {qos:?}");
    c.publish_wait(Message::new(topic, payload.clone()).qos(qos))
        .unwrap();
    let m = c.messages().recv_timeout(DEADLINE).unwrap();
    assert_eq!(m.topic, topic);
    assert_eq!(m.payload_str(), Some(payload.as_str()));
    assert_eq!(m.qos, qos);
}

#[track_caller]
fn connect_ok(uri: &str, tls: TlsOptions) -> Client {
    let c = connect(uri, tls).unwrap_or_else(|e| panic!("connect to {uri}: {e}"));
    round_trip(&c, "tls/check", QoS::AtLeastOnce);
    c
}

/// Expects a TLS error of `kind`; prints and returns its message.
#[track_caller]
fn expect_tls<T>(r: mqttsync::Result<T>, kind: TlsErrorKind, case: &str) -> String {
    match r {
        Err(Error::Tls { kind: k, message }) => {
            eprintln!("[{case}] -> {k:?}: {message}");
            assert_eq!(k, kind, "{case}: {message}");
            message
        }
        Err(e) => panic!("{case}: expected Error::Tls {{ {kind:?} }}, got {e:?}"),
        Ok(_) => panic!("{case}: expected Error::Tls {{ {kind:?} }}, connected"),
    }
}

// ---------------------------------------------------------------------------------------
// Server verification
// ---------------------------------------------------------------------------------------

#[test]
fn ca_file_publish_and_receive_every_qos_v311_and_v5() {
    let broker = good_broker();
    assert!(broker.uri().starts_with("ssl://"));
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let c = Client::connect(client_opts(&broker.uri(), trust_ca()).version(v)).unwrap();
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            round_trip(&c, &format!("tls/{v:?}/{qos:?}"), qos);
        }
        c.close().unwrap();
    }
}

#[test]
fn ca_file_only_without_system_roots() {
    let broker = good_broker();
    let tls = TlsOptions {
        use_system_roots: false,
        ..trust_ca()
    };
    connect_ok(&broker.uri(), tls).close().unwrap();
}

#[test]
fn mqtts_and_tls_schemes_work_too() {
    let broker = good_broker();
    for scheme in ["mqtts", "tls"] {
        let uri = format!("{scheme}://127.0.0.1:{}", broker.port());
        connect_ok(&uri, trust_ca()).close().unwrap();
    }
}

#[test]
fn ca_dir_with_hashed_name_and_plain_name() {
    let broker = good_broker();
    let ca = &pki().ca_cert;
    // c_rehash style: <subject hash>.0
    let hashed = tempfile::tempdir().unwrap();
    let name = format!("{:08x}.0", ca.subject_name_hash());
    std::fs::write(hashed.path().join(name), ca.to_pem().unwrap()).unwrap();
    // Something else in the directory is skipped.
    std::fs::write(hashed.path().join("README"), "not a certificate").unwrap();
    std::fs::create_dir(hashed.path().join("subdir")).unwrap();
    let tls = TlsOptions {
        ca_dir: Some(hashed.path().to_path_buf()),
        use_system_roots: false,
        ..Default::default()
    };
    connect_ok(&broker.uri(), tls).close().unwrap();

    // Plain name, DER encoded, plus a hash symlink to it (the /etc/ssl/certs layout).
    let plain = tempfile::tempdir().unwrap();
    let file = plain.path().join("mqttsync-test-ca.crt");
    std::fs::write(&file, ca.to_der().unwrap()).unwrap();
    std::os::unix::fs::symlink(
        &file,
        plain
            .path()
            .join(format!("{:08x}.0", ca.subject_name_hash())),
    )
    .unwrap();
    let tls = TlsOptions {
        ca_dir: Some(plain.path().to_path_buf()),
        use_system_roots: false,
        ..Default::default()
    };
    connect_ok(&broker.uri(), tls).close().unwrap();
}

#[test]
fn ca_dir_without_certificates_is_a_configuration_error() {
    let broker = good_broker();
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("notes.txt"), "nothing here").unwrap();
    let tls = TlsOptions {
        ca_dir: Some(empty.path().to_path_buf()),
        ..Default::default()
    };
    expect_tls(
        connect(&broker.uri(), tls),
        TlsErrorKind::Configuration,
        "empty ca_dir",
    );
    let tls = TlsOptions {
        ca_dir: Some(empty.path().join("missing")),
        ..Default::default()
    };
    expect_tls(
        connect(&broker.uri(), tls),
        TlsErrorKind::Configuration,
        "missing ca_dir",
    );
}

#[test]
fn unknown_ca_is_unknown_ca() {
    let broker = good_broker();
    let tls = TlsOptions {
        ca_file: Some(pki().other_ca.clone()),
        ..Default::default()
    };
    let m = expect_tls(
        connect(&broker.uri(), tls),
        TlsErrorKind::UnknownCa,
        "other CA",
    );
    assert!(m.contains("certificate verify failed"), "{m}");
    // System roots only: our test CA is not among them.
    expect_tls(
        connect(&broker.uri(), TlsOptions::default()),
        TlsErrorKind::UnknownCa,
        "system roots only",
    );
    // No trust at all.
    let tls = TlsOptions {
        use_system_roots: false,
        ..Default::default()
    };
    expect_tls(
        connect(&broker.uri(), tls),
        TlsErrorKind::UnknownCa,
        "no roots",
    );
    // An `ssl://` URI without TLS options verifies too.
    let r = Client::connect(
        ConnectOptions::new(&broker.uri())
            .client_id(unique_client_id("tls"))
            .connect_timeout(DEADLINE),
    );
    expect_tls(r, TlsErrorKind::UnknownCa, "no TlsOptions");
}

#[test]
fn unknown_ca_connects_only_with_verify_certificate_false() {
    let broker = good_broker();
    let tls = TlsOptions {
        verify_certificate: false,
        ..Default::default()
    };
    connect_ok(&broker.uri(), tls).close().unwrap();
}

#[test]
fn wrong_host_is_name_mismatch() {
    let broker = tls_broker(&pki().wrong_host, &pki().wrong_host_key, false);
    // By IP: the certificate names only other.example.
    let m = expect_tls(
        connect(&broker.uri(), trust_ca()),
        TlsErrorKind::NameMismatch,
        "wrong host by IP",
    );
    assert!(
        m.to_ascii_lowercase().contains("ip address mismatch"),
        "{m}"
    );
    // By name (localhost resolves to ::1 and/or 127.0.0.1; the broker listens on the latter).
    let by_name = format!("ssl://localhost:{}", broker.port());
    let m = expect_tls(
        connect(&by_name, trust_ca()),
        TlsErrorKind::NameMismatch,
        "wrong host by name",
    );
    assert!(m.to_ascii_lowercase().contains("hostname mismatch"), "{m}");
    // server_name naming another host than the certificate.
    let tls = TlsOptions {
        server_name: Some("localhost".into()),
        ..trust_ca()
    };
    expect_tls(
        connect(&broker.uri(), tls),
        TlsErrorKind::NameMismatch,
        "server_name localhost",
    );
}

#[test]
fn wrong_host_connects_with_verify_hostname_false() {
    let broker = tls_broker(&pki().wrong_host, &pki().wrong_host_key, false);
    let tls = TlsOptions {
        verify_hostname: false,
        ..trust_ca()
    };
    connect_ok(&broker.uri(), tls).close().unwrap();
}

#[test]
fn wrong_host_connects_with_server_name_of_the_certificate() {
    let broker = tls_broker(&pki().wrong_host, &pki().wrong_host_key, false);
    let tls = TlsOptions {
        server_name: Some("other.example".into()),
        ..trust_ca()
    };
    connect_ok(&broker.uri(), tls).close().unwrap();
}

#[test]
fn server_name_and_host_name_verification_on_good_certificate() {
    let broker = good_broker();
    // Connecting by IP, verifying (and SNI) as localhost.
    let tls = TlsOptions {
        server_name: Some("localhost".into()),
        ..trust_ca()
    };
    connect_ok(&broker.uri(), tls).close().unwrap();
    // Connecting by name: DNS, dual stack (::1 refused when listed first), then TLS.
    let by_name = format!("ssl://localhost:{}", broker.port());
    connect_ok(&by_name, trust_ca()).close().unwrap();
}

#[test]
fn expired_certificate_is_expired() {
    let broker = tls_broker(&pki().expired, &pki().expired_key, false);
    let m = expect_tls(
        connect(&broker.uri(), trust_ca()),
        TlsErrorKind::Expired,
        "expired",
    );
    assert!(m.contains("certificate has expired"), "{m}");
    // Turning verification off (explicitly) accepts it.
    let tls = TlsOptions {
        verify_certificate: false,
        ..trust_ca()
    };
    connect_ok(&broker.uri(), tls).close().unwrap();
}

#[test]
fn bad_ca_file_is_a_configuration_error() {
    let broker = good_broker();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "no PEM here").unwrap();
    for (case, path) in [
        ("missing CA file", dir.path().join("nope.pem")),
        ("CA file without certificate", junk),
    ] {
        let tls = TlsOptions {
            ca_file: Some(path),
            ..Default::default()
        };
        expect_tls(
            connect(&broker.uri(), tls),
            TlsErrorKind::Configuration,
            case,
        );
    }
}

#[test]
fn plain_tcp_port_with_ssl_scheme_is_a_tls_error_not_a_hang() {
    let broker = Broker::start();
    let uri = format!("ssl://127.0.0.1:{}", broker.port());
    match connect(&uri, trust_ca()) {
        Err(Error::Tls { kind, message }) => {
            eprintln!("[TLS to plain MQTT port] -> {kind:?}: {message}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Minimum version
// ---------------------------------------------------------------------------------------

/// A one-connection TLS server speaking at most TLS 1.2 (mosquitto 2.0's `tls_version` is
/// only a minimum). Returns its address and the server side's handshake outcome.
fn tls12_server(
    require_certificate: bool,
) -> (String, std::thread::JoinHandle<Result<(), String>>) {
    tls12_server_with(require_certificate, None)
}

/// [`tls12_server`] accepting only the TLS 1.2 cipher suites of `ciphers` (OpenSSL list).
fn tls12_server_with(
    require_certificate: bool,
    ciphers: Option<&str>,
) -> (String, std::thread::JoinHandle<Result<(), String>>) {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
    let p = pki();
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    b.set_certificate_chain_file(&p.server).unwrap();
    b.set_private_key_file(&p.server_key, SslFiletype::PEM)
        .unwrap();
    b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    if let Some(c) = ciphers {
        b.set_cipher_list(c).unwrap();
    }
    if require_certificate {
        b.set_ca_file(&p.ca).unwrap();
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    let acceptor = b.build();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("ssl://{}", listener.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let (sock, _) = listener.accept().map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut tls = acceptor.accept(sock).map_err(|e| e.to_string())?;
        let _ = tls.shutdown();
        Ok(())
    });
    (uri, h)
}

fn open(uri: &str, tls: &TlsOptions) -> mqttsync::Result<mqttsync::internals::transport::Stream> {
    let uri = mqttsync::ServerUri::parse(uri).unwrap();
    mqttsync::internals::transport::open(
        &uri,
        Some(tls),
        std::time::Instant::now() + DEADLINE,
        DEADLINE,
    )
}

#[test]
fn min_version_is_enforced() {
    let (uri, server) = tls12_server(false);
    let tls12 = TlsOptions {
        min_version: Some(TlsVersion::Tls12),
        ..trust_ca()
    };
    open(&uri, &tls12).unwrap();
    server.join().unwrap().unwrap();

    let (uri, server) = tls12_server(false);
    let tls13 = TlsOptions {
        min_version: Some(TlsVersion::Tls13),
        ..trust_ca()
    };
    let m = expect_tls(
        open(&uri, &tls13).map(|_| ()),
        TlsErrorKind::HandshakeRefused,
        "min TLS 1.3 vs 1.2 server",
    );
    assert!(m.contains("protocol version"), "{m}");
    assert!(server.join().unwrap().is_err());
}

#[test]
fn tls12_server_requiring_client_certificate_refuses_in_the_handshake() {
    let (uri, server) = tls12_server(true);
    let m = expect_tls(
        open(&uri, &trust_ca()).map(|_| ()),
        TlsErrorKind::HandshakeRefused,
        "no client cert, TLS 1.2",
    );
    assert!(m.contains("alert"), "{m}");
    assert!(server.join().unwrap().is_err());

    // With a client certificate it completes.
    let (uri, server) = tls12_server(true);
    let p = pki();
    open(
        &uri,
        &with_client(&p.client_ec, Some(&p.client_ec_sec1), None),
    )
    .unwrap();
    server.join().unwrap().unwrap();
}

// ---------------------------------------------------------------------------------------
// Mutual TLS
// ---------------------------------------------------------------------------------------

fn with_client(cert: &Path, key: Option<&Path>, password: Option<&str>) -> TlsOptions {
    TlsOptions {
        client_cert: Some(cert.to_path_buf()),
        client_key: key.map(Path::to_path_buf),
        key_password: password.map(str::to_string),
        ..trust_ca()
    }
}

#[test]
fn mutual_tls_without_client_certificate_is_refused_tls13() {
    let broker = mutual_broker();
    let m = expect_tls(
        connect(&broker.uri(), trust_ca()),
        TlsErrorKind::HandshakeRefused,
        "no client cert, TLS 1.3",
    );
    assert!(m.contains("certificate required"), "{m}");
}

#[test]
fn mutual_tls_client_certificate_from_unknown_ca_is_refused() {
    let broker = mutual_broker();
    let p = pki();
    let tls = with_client(&p.client_untrusted, Some(&p.client_untrusted_key), None);
    expect_tls(
        connect(&broker.uri(), tls),
        TlsErrorKind::HandshakeRefused,
        "client cert from unknown CA",
    );
}

#[test]
fn mutual_tls_every_key_format() {
    let broker = mutual_broker();
    let p = pki();
    let cases: [(&str, &Path, Option<&Path>, Option<&str>); 8] = [
        ("RSA PKCS#1", &p.client_rsa, Some(&p.client_rsa_pkcs1), None),
        (
            "RSA PKCS#1 traditionally encrypted",
            &p.client_rsa,
            Some(&p.client_rsa_pkcs1_encrypted),
            Some(KEY_PASSWORD),
        ),
        ("EC SEC1", &p.client_ec, Some(&p.client_ec_sec1), None),
        ("EC PKCS#8", &p.client_ec, Some(&p.client_ec_pkcs8), None),
        (
            "EC encrypted PKCS#8",
            &p.client_ec,
            Some(&p.client_ec_pkcs8_encrypted),
            Some(KEY_PASSWORD),
        ),
        (
            "certificate and key in one file",
            &p.client_combined,
            None,
            None,
        ),
        (
            "certificate and key in one file, given twice",
            &p.client_combined,
            Some(&p.client_combined),
            None,
        ),
        (
            "leaf + intermediate chain",
            &p.client_chain,
            Some(&p.client_chain_key),
            None,
        ),
    ];
    for (i, (case, cert, key, password)) in cases.into_iter().enumerate() {
        let c = connect(&broker.uri(), with_client(cert, key, password))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        round_trip(&c, &format!("mtls/{i}"), QoS::ExactlyOnce);
        c.close().unwrap();
    }
}

#[test]
fn mutual_tls_key_problems_are_configuration_errors() {
    let broker = mutual_broker();
    let p = pki();
    let m = expect_tls(
        connect(
            &broker.uri(),
            with_client(
                &p.client_ec,
                Some(&p.client_ec_pkcs8_encrypted),
                Some("wrong"),
            ),
        ),
        TlsErrorKind::Configuration,
        "encrypted PKCS#8, wrong password",
    );
    assert!(m.contains("key_password"), "{m}");
    expect_tls(
        connect(
            &broker.uri(),
            with_client(
                &p.client_rsa,
                Some(&p.client_rsa_pkcs1_encrypted),
                Some("wrong"),
            ),
        ),
        TlsErrorKind::Configuration,
        "traditional encrypted PEM, wrong password",
    );
    let m = expect_tls(
        connect(
            &broker.uri(),
            with_client(&p.client_ec, Some(&p.client_ec_pkcs8_encrypted), None),
        ),
        TlsErrorKind::Configuration,
        "encrypted PKCS#8, no password",
    );
    assert!(m.contains("no key_password"), "{m}");
    let m = expect_tls(
        connect(
            &broker.uri(),
            with_client(&p.client_ec, Some(&p.client_rsa_pkcs1), None),
        ),
        TlsErrorKind::Configuration,
        "key of another certificate",
    );
    assert!(m.contains("does not belong"), "{m}");
    expect_tls(
        connect(&broker.uri(), with_client(&p.client_ec, None, None)),
        TlsErrorKind::Configuration,
        "certificate without key",
    );
    expect_tls(
        connect(&broker.uri(), with_client(&p.client_ec, Some(&p.ca), None)),
        TlsErrorKind::Configuration,
        "key file holding a certificate",
    );
    expect_tls(
        connect(
            &broker.uri(),
            with_client(&p.client_ec_sec1, Some(&p.client_ec_sec1), None),
        ),
        TlsErrorKind::Configuration,
        "certificate file holding only a key",
    );
    expect_tls(
        connect(
            &broker.uri(),
            with_client(Path::new("/nonexistent/client.pem"), None, None),
        ),
        TlsErrorKind::Configuration,
        "missing certificate file",
    );
    let key_only = TlsOptions {
        client_key: Some(p.client_ec_pkcs8.clone()),
        ..trust_ca()
    };
    expect_tls(
        connect(&broker.uri(), key_only),
        TlsErrorKind::Configuration,
        "key without certificate",
    );
}

// ---------------------------------------------------------------------------------------
// Password over TLS
// ---------------------------------------------------------------------------------------

#[test]
fn password_over_tls() {
    let broker = Broker::builder()
        .tls(TlsFiles {
            ca_file: pki().ca.clone(),
            cert_file: pki().server.clone(),
            key_file: pki().server_key.clone(),
            require_certificate: false,
        })
        .password("alice", "right")
        .start();
    let wrong = Client::connect(
        client_opts(&broker.uri(), trust_ca()).credentials("alice", Some(b"wrong")),
    );
    match wrong {
        // MQTT 3.1.1 CONNACK 4 (bad user name or password) or 5 (not authorized).
        Err(Error::ConnectionRefused { code, .. }) => {
            assert!(code == 4 || code == 5, "code {code}")
        }
        other => panic!("expected ConnectionRefused, got {other:?}"),
    }
    let anonymous = Client::connect(client_opts(&broker.uri(), trust_ca()));
    assert!(
        matches!(anonymous, Err(Error::ConnectionRefused { .. })),
        "{anonymous:?}"
    );
    let c = Client::connect(
        client_opts(&broker.uri(), trust_ca()).credentials("alice", Some(b"right")),
    )
    .unwrap();
    round_trip(&c, "auth/tls", QoS::ExactlyOnce);
    c.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// IPv6 loopback (plain TCP)
// ---------------------------------------------------------------------------------------

#[test]
fn ipv6_loopback_publish_and_receive() {
    let broker = Broker::builder().listener_ipv6(true).start();
    let uri = format!("tcp://[::1]:{}", broker.port());
    let c = Client::connect(
        ConnectOptions::new(&uri)
            .client_id(unique_client_id("v6"))
            .connect_timeout(DEADLINE),
    )
    .unwrap();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        round_trip(&c, &format!("v6/{qos:?}"), qos);
    }
    // The broker saw an IPv6 client.
    assert!(
        broker.wait_for_log("::1", Duration::from_secs(5)),
        "{}",
        broker.log()
    );
    c.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// Failure texts
// ---------------------------------------------------------------------------------------

/// The Display of an error: the cause in words, OpenSSL's short reason, and nothing of
/// OpenSSL's source paths, error codes or our enum's Debug names.
#[track_caller]
fn assert_readable(e: &Error, words: &str, reason: &str) {
    let text = e.to_string();
    eprintln!("{text}");
    assert!(text.starts_with("TLS connection failed: "), "{text}");
    assert!(text.contains(words), "should say {words:?}: {text}");
    assert!(
        text.contains(&format!("(OpenSSL: {reason}")),
        "should give OpenSSL's reason {reason:?}: {text}"
    );
    for noise in [
        ".c:",
        "error:0",
        "ssl/",
        "UnknownCa",
        "NameMismatch",
        "HandshakeRefused",
        "Expired",
    ] {
        assert!(!text.contains(noise), "{noise:?} in {text}");
    }
}

fn connect_err(uri: &str, tls: TlsOptions) -> Error {
    match connect(uri, tls) {
        Err(e) => e,
        Ok(_) => panic!("connected to {uri}"),
    }
}

#[test]
fn failure_texts_name_the_cause_then_openssl_reason() {
    let good = good_broker();
    let e = connect_err(
        &good.uri(),
        TlsOptions {
            ca_file: Some(pki().other_ca.clone()),
            use_system_roots: false,
            ..Default::default()
        },
    );
    assert!(matches!(
        e,
        Error::Tls {
            kind: TlsErrorKind::UnknownCa,
            ..
        }
    ));
    // mosquitto sends its CA certificate along with its own.
    assert_readable(
        &e,
        "the server's certificate chain ends in a self-signed CA certificate that is not \
         trusted",
        "certificate verify failed: self-signed certificate in certificate chain",
    );

    let wrong = tls_broker(&pki().wrong_host, &pki().wrong_host_key, false);
    let e = connect_err(&wrong.uri(), trust_ca());
    assert_readable(
        &e,
        "does not match the IP address 127.0.0.1",
        "certificate verify failed: IP address mismatch",
    );
    let e = connect_err(&format!("ssl://localhost:{}", wrong.port()), trust_ca());
    assert_readable(
        &e,
        "does not match the host name localhost",
        "certificate verify failed: hostname mismatch",
    );

    let expired = tls_broker(&pki().expired, &pki().expired_key, false);
    let e = connect_err(&expired.uri(), trust_ca());
    assert_readable(
        &e,
        "the server's certificate has expired",
        "certificate verify failed: certificate has expired",
    );

    // TLS 1.3: the refusal of a missing client certificate comes after the handshake.
    let mutual = mutual_broker();
    let e = connect_err(&mutual.uri(), trust_ca());
    assert!(matches!(
        e,
        Error::Tls {
            kind: TlsErrorKind::HandshakeRefused,
            ..
        }
    ));
    assert_readable(
        &e,
        "the server refused the TLS handshake: it requires a client certificate",
        "tlsv13 alert certificate required",
    );

    // Configuration errors say so, and name the file.
    let e = connect_err(
        &good.uri(),
        TlsOptions {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        },
    );
    let text = e.to_string();
    assert!(
        text.starts_with("TLS configuration error: CA file /nonexistent/ca.pem"),
        "{text}"
    );
}

#[test]
fn untrusted_self_signed_server_certificate_is_reported_as_such() {
    let broker = tls_broker(&pki().self_signed, &pki().self_signed_key, false);
    for (case, tls) in [
        ("test CA only", trust_ca()),
        ("system roots", TlsOptions::default()),
        // The OpenSSL path (cipher list) words it the same way.
        (
            "cipher list",
            TlsOptions {
                ciphers: Some("TLS_AES_128_GCM_SHA256".into()),
                ..trust_ca()
            },
        ),
    ] {
        let e = connect_err(&broker.uri(), tls);
        assert!(
            matches!(
                e,
                Error::Tls {
                    kind: TlsErrorKind::UnknownCa,
                    ..
                }
            ),
            "{case}: {e:?}"
        );
        assert_readable(
            &e,
            "the server's certificate is self-signed and not trusted",
            "certificate verify failed: self-signed certificate",
        );
    }
    // Trusting the certificate itself makes it work.
    let tls = TlsOptions {
        ca_file: Some(pki().self_signed.clone()),
        ..Default::default()
    };
    connect_ok(&broker.uri(), tls).close().unwrap();
}

// ---------------------------------------------------------------------------------------
// Cipher lists
// ---------------------------------------------------------------------------------------

/// The cipher suite a stream negotiated.
fn cipher_of(s: &mqttsync::internals::transport::Stream) -> String {
    match s {
        mqttsync::internals::transport::Stream::OpenSsl(t) => t
            .ssl()
            .current_cipher()
            .map(|c| c.name().to_string())
            .unwrap_or_default(),
        other => panic!("a cipher list should use the OpenSSL stream, got {other:?}"),
    }
}

#[test]
fn tls13_cipher_list_restricts_the_handshake() {
    let broker = Broker::builder()
        .tls(common::TlsFiles {
            ca_file: pki().ca.clone(),
            cert_file: pki().server.clone(),
            key_file: pki().server_key.clone(),
            require_certificate: false,
        })
        .extra_config("ciphers_tls1.3 TLS_AES_256_GCM_SHA384")
        .start();
    let with = |list: &str| TlsOptions {
        ciphers: Some(list.into()),
        ..trust_ca()
    };
    // One the server accepts: connects, and that suite is used.
    let s = open(&broker.uri(), &with("TLS_AES_256_GCM_SHA384")).unwrap();
    assert_eq!(cipher_of(&s), "TLS_AES_256_GCM_SHA384");
    drop(s);
    connect_ok(
        &broker.uri(),
        with("TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"),
    )
    .close()
    .unwrap();
    // Only one it refuses (and TLS 1.3 as minimum, so no fallback to TLS 1.2): refused.
    let tls = TlsOptions {
        min_version: Some(TlsVersion::Tls13),
        ..with("TLS_AES_128_GCM_SHA256")
    };
    let m = expect_tls(
        connect(&broker.uri(), tls),
        TlsErrorKind::HandshakeRefused,
        "TLS 1.3 suite the server refuses",
    );
    assert!(m.contains("handshake failure"), "{m}");
}

#[test]
fn tls12_cipher_list_restricts_the_handshake() {
    let server_list = "ECDHE-ECDSA-AES256-GCM-SHA384";
    let with = |list: &str| TlsOptions {
        ciphers: Some(list.into()),
        ..trust_ca()
    };
    let (uri, server) = tls12_server_with(false, Some(server_list));
    let s = open(&uri, &with("ECDHE-ECDSA-AES256-GCM-SHA384")).unwrap();
    assert_eq!(cipher_of(&s), "ECDHE-ECDSA-AES256-GCM-SHA384");
    drop(s);
    server.join().unwrap().unwrap();
    // Same list, the other way round: the client offers only a suite the server lacks.
    let (uri, server) = tls12_server_with(false, Some(server_list));
    let m = expect_tls(
        open(&uri, &with("ECDHE-ECDSA-AES128-GCM-SHA256")).map(|_| ()),
        TlsErrorKind::HandshakeRefused,
        "TLS 1.2 suite the server lacks",
    );
    assert!(m.contains("handshake failure"), "{m}");
    assert!(server.join().unwrap().is_err());
    // A list OpenSSL cannot use at all is a configuration error, found before connecting.
    let good = good_broker();
    let m = expect_tls(
        connect(&good.uri(), with("NO-SUCH-CIPHER")),
        TlsErrorKind::Configuration,
        "unknown cipher",
    );
    assert!(
        m.contains("NO-SUCH-CIPHER") && m.contains("no cipher match"),
        "{m}"
    );
    // An empty list means the defaults (native-tls path).
    let s = open(&good.uri(), &with("")).unwrap();
    assert!(
        matches!(s, mqttsync::internals::transport::Stream::Tls(_)),
        "{s:?}"
    );
}

// ---------------------------------------------------------------------------------------
// TLS-PSK
// ---------------------------------------------------------------------------------------

fn psk_uri(b: &Broker) -> String {
    format!("ssl://127.0.0.1:{}", b.port())
}

#[test]
fn psk_publish_and_receive_v311_and_v5() {
    let broker = psk_broker(&[]);
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let tls = TlsOptions {
            psk: Some(TlsPsk::new(PSK_IDENTITY, PSK_KEY)),
            // No certificate is involved: the default trust settings do not get in the way.
            ..Default::default()
        };
        let c = Client::connect(client_opts(&psk_uri(&broker), tls).version(v)).unwrap();
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            round_trip(&c, &format!("psk/{v:?}/{qos:?}"), qos);
        }
        c.close().unwrap();
    }
    // The key never shows in Debug output.
    let dbg = format!("{:?}", TlsPsk::new(PSK_IDENTITY, PSK_KEY));
    assert!(
        dbg.contains(PSK_IDENTITY) && dbg.contains("16 bytes"),
        "{dbg}"
    );
    assert!(!dbg.contains("90") && !dbg.contains("5a"), "{dbg}");
}

/// `openssl s_server` doing TLS 1.2 PSK only, with an identity hint, for one connection.
/// Returns the process and its `ssl://` URI.
fn openssl_psk_server_tls12(hint: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let hex: String = PSK_KEY.iter().map(|b| format!("{b:02x}")).collect();
    let mut child = std::process::Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            "127.0.0.1:0",
            "-nocert",
            "-tls1_2",
            "-naccept",
            "1",
        ])
        .args([
            "-psk",
            &hex,
            "-psk_identity",
            PSK_IDENTITY,
            "-psk_hint",
            hint,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl CLI not found: run scripts/install-packages.sh");
    let out = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    let addr = loop {
        let line = lines.next().expect("s_server ended before ACCEPT").unwrap();
        if let Some(a) = line.strip_prefix("ACCEPT ") {
            break a.trim().to_string();
        }
    };
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, format!("ssl://{addr}"))
}

#[test]
fn psk_callback_gets_the_tls12_identity_hint() {
    let (mut server, uri) = openssl_psk_server_tls12(PSK_HINT);
    let hints = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = hints.clone();
    let psk = TlsPsk::from_callback(move |hint| {
        seen.lock()
            .unwrap()
            .push(hint.map(|h| String::from_utf8_lossy(h).into_owned()));
        Some((PSK_IDENTITY.into(), PSK_KEY.to_vec()))
    });
    let tls = TlsOptions {
        psk: Some(psk),
        ..Default::default()
    };
    let s = open(&uri, &tls);
    let _ = server.kill();
    let _ = server.wait();
    let s = s.unwrap();
    assert!(cipher_of(&s).contains("PSK"), "{}", cipher_of(&s));
    // OpenSSL first asks for a key for its TLS 1.3 offer (no hint there), then, once the
    // server has chosen TLS 1.2, with the server's hint.
    let hints = hints.lock().unwrap();
    assert_eq!(hints.last(), Some(&Some(PSK_HINT.to_string())), "{hints:?}");
}

#[test]
fn psk_with_tls13_has_no_hint() {
    let broker = psk_broker(&[]);
    let hints = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = hints.clone();
    let psk = TlsPsk::from_callback(move |hint| {
        seen.lock().unwrap().push(hint.map(<[u8]>::to_vec));
        Some((PSK_IDENTITY.into(), PSK_KEY.to_vec()))
    });
    let tls = TlsOptions {
        psk: Some(psk),
        ..Default::default()
    };
    let s = open(&psk_uri(&broker), &tls).unwrap();
    assert!(cipher_of(&s).starts_with("TLS_"), "{}", cipher_of(&s));
    drop(s);
    assert!(hints.lock().unwrap().iter().all(Option::is_none));
    assert!(!hints.lock().unwrap().is_empty());
}

#[test]
fn psk_wrong_key_unknown_identity_or_no_key_fail() {
    let broker = psk_broker(&[]);
    for (case, psk) in [
        ("wrong key", TlsPsk::new(PSK_IDENTITY, [7u8; 16])),
        ("unknown identity", TlsPsk::new("somebody-else", PSK_KEY)),
        ("callback gives up", TlsPsk::from_callback(|_| None)),
    ] {
        let tls = TlsOptions {
            psk: Some(psk),
            ..Default::default()
        };
        match connect(&psk_uri(&broker), tls) {
            Err(e @ Error::Tls { .. }) => {
                eprintln!("[{case}] {e}");
                let text = e.to_string();
                assert!(!text.contains(".c:") && !text.contains("error:0"), "{text}");
            }
            other => panic!("{case}: expected a TLS error, got {other:?}"),
        }
    }
    // Without PSK the PSK-only listener cannot be used at all.
    match connect(&psk_uri(&broker), TlsOptions::default()) {
        Err(Error::Tls { .. }) => {}
        other => panic!("no PSK: expected a TLS error, got {other:?}"),
    }
}
