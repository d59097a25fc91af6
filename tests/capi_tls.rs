//! TLS through the C API end to end: tests/c/client_tls.c, built against mqttsync, connects
//! with `MQTTClient_SSLOptions` to TLS harness mosquitto brokers (PKI from
//! tests/common/pki.rs):
//! - trustStore / CApath / disableDefaultTrustStore / sslVersion / protos (ALPN), mutual
//!   TLS with keyStore + privateKey + privateKeyPassword: QoS 0/1/2 round trip;
//! - unknown CA, wrong host name (with `verify` 0 and 1), missing client certificate, wrong
//!   key password: connect returns -1 and `ssl_error_cb` (with its context) says why;
//! - `enableServerCertAuth = 0` connects to both;
//! - `enabledCipherSuites` restricts the handshake (a suite the server refuses fails, one
//!   it accepts works); `ssl_psk_cb` connects to a TLS-PSK mosquitto, on Paho and on us.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::pki::{
    good_broker, mutual_broker, pki, psk_broker, tls_broker, KEY_PASSWORD, PSK_IDENTITY, PSK_KEY,
};
use common::*;

/// tests/c/client_tls.c built against the static library, once per test binary.
fn exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = run_subdir("client_tls").join("client_tls");
        build_c_program(
            "cc",
            &c_dir().join("client_tls.c"),
            &exe,
            &["-D_POSIX_C_SOURCE=200809L"],
        );
        exe
    })
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// Runs the program against `uri` with `args`; asserts it passed its own checks.
#[track_caller]
fn client_tls(uri: &str, args: &[&str]) -> String {
    let id = unique_client_id("ctls");
    let mut full = vec![uri, id.as_str()];
    full.extend_from_slice(args);
    let r = run_prog(exe(), &full, &[], Duration::from_secs(60));
    r.assert_clean(&format!("client_tls {}", full.join(" ")));
    eprintln!("{}", r.stdout);
    r.stdout
}

/// The lines `ssl_error_cb: ...` of an output.
fn ssl_errors(out: &str) -> Vec<&str> {
    out.lines()
        .filter_map(|l| l.strip_prefix("ssl_error_cb: "))
        .collect()
}

#[track_caller]
fn assert_round_trip(out: &str) {
    assert!(out.contains("connect rc=0\n"), "{out}");
    for qos in 0..=2 {
        assert!(
            out.contains(&format!("round trip QoS {qos}: ok")),
            "QoS {qos} round trip missing:\n{out}"
        );
    }
}

/// A failed connect whose `ssl_error_cb` text names `kind` and contains `why`.
#[track_caller]
fn assert_refused(out: &str, kind: &str, why: &str) {
    assert!(out.contains("connect rc=-1\n"), "{out}");
    let errors = ssl_errors(out);
    assert_eq!(errors.len(), 1, "one ssl_error_cb call per connect:\n{out}");
    assert!(
        errors[0].contains(kind) && errors[0].to_ascii_lowercase().contains(why),
        "ssl_error_cb text should name {kind} / {why}: {}",
        errors[0]
    );
}

#[test]
fn trust_store_without_default_store_every_qos_with_tls12_minimum_and_alpn() {
    let broker = good_broker();
    let ca = path(&pki().ca);
    let out = client_tls(
        &broker.uri(),
        &[
            "--ca",
            &ca,
            "--no-default",
            "--tls12",
            "--alpn",
            "--verify",
            "1",
        ],
    );
    assert_round_trip(&out);
    // The other TLS schemes, and `verify = 0` (the initializer's value): still verified.
    let port = broker.port();
    for uri in [
        format!("mqtts://localhost:{port}"),
        format!("ssl://127.0.0.1:{port}"),
    ] {
        assert_round_trip(&client_tls(&uri, &["--ca", &ca, "--no-default"]));
    }
}

#[test]
fn ca_path_directory() {
    let broker = good_broker();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&pki().ca, dir.path().join("test-ca.pem")).unwrap();
    let out = client_tls(
        &broker.uri(),
        &["--capath", &path(dir.path()), "--no-default"],
    );
    assert_round_trip(&out);
    // An empty directory trusts nothing.
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("README"), "no certificates here").unwrap();
    let out = client_tls(
        &broker.uri(),
        &[
            "--capath",
            &path(empty.path()),
            "--no-default",
            "--expect-fail",
        ],
    );
    assert_eq!(ssl_errors(&out).len(), 1, "{out}");
}

#[test]
fn mutual_tls_with_key_store_private_key_and_password() {
    let broker = mutual_broker();
    let p = pki();
    let ca = path(&p.ca);
    // Certificate + encrypted PKCS#1 RSA key.
    assert_round_trip(&client_tls(
        &broker.uri(),
        &[
            "--ca",
            &ca,
            "--cert",
            &path(&p.client_rsa),
            "--key",
            &path(&p.client_rsa_pkcs1_encrypted),
            "--pass",
            KEY_PASSWORD,
        ],
    ));
    // Certificate and key in the keyStore file, no privateKey.
    assert_round_trip(&client_tls(
        &broker.uri(),
        &["--ca", &ca, "--cert", &path(&p.client_combined)],
    ));
    // Wrong password: a configuration error, reported before the handshake.
    let out = client_tls(
        &broker.uri(),
        &[
            "--ca",
            &ca,
            "--cert",
            &path(&p.client_rsa),
            "--key",
            &path(&p.client_rsa_pkcs1_encrypted),
            "--pass",
            "wrong",
            "--expect-fail",
        ],
    );
    assert_refused(&out, "TLS configuration error", "key");
    // No client certificate: the server refuses (with TLS 1.3 after the handshake).
    let out = client_tls(&broker.uri(), &["--ca", &ca, "--expect-fail"]);
    assert_refused(
        &out,
        "the server refused the TLS handshake: it requires a client certificate",
        "certificate required",
    );
}

#[test]
fn unknown_ca_fails_and_ssl_error_cb_says_why() {
    let broker = good_broker();
    let other = path(&pki().other_ca);
    let out = client_tls(
        &broker.uri(),
        &["--ca", &other, "--no-default", "--expect-fail"],
    );
    assert_refused(&out, "is not trusted", "certificate verify failed");
    // The same failure also reaches the trace callback.
    assert!(
        out.contains("trace: mqttsync: connect failed: TLS connection failed: the server's"),
        "{out}"
    );
    // A version 2 structure has no ssl_error_cb: the program checks it is not called.
    let out = client_tls(
        &broker.uri(),
        &[
            "--ca",
            &other,
            "--no-default",
            "--version",
            "2",
            "--expect-fail",
        ],
    );
    assert!(ssl_errors(&out).is_empty(), "{out}");
}

#[test]
fn wrong_host_name_fails_whatever_verify_says() {
    let broker = tls_broker(&pki().wrong_host, &pki().wrong_host_key, false);
    let ca = path(&pki().ca);
    for verify in ["0", "1"] {
        let out = client_tls(
            &broker.uri(),
            &["--ca", &ca, "--verify", verify, "--expect-fail"],
        );
        assert_refused(
            &out,
            "does not match the IP address 127.0.0.1",
            "address mismatch",
        );
    }
}

#[test]
fn server_cert_auth_off_connects_to_unknown_ca_and_wrong_host() {
    let wrong_host = tls_broker(&pki().wrong_host, &pki().wrong_host_key, false);
    assert_round_trip(&client_tls(
        &wrong_host.uri(),
        &["--ca", &path(&pki().ca), "--no-auth"],
    ));
    let good = good_broker();
    assert_round_trip(&client_tls(
        &good.uri(),
        &["--ca", &path(&pki().other_ca), "--no-default", "--no-auth"],
    ));
}

#[test]
fn cipher_list_restricts_the_handshake() {
    let broker = common::Broker::builder()
        .tls(TlsFiles {
            ca_file: pki().ca.clone(),
            cert_file: pki().server.clone(),
            key_file: pki().server_key.clone(),
            require_certificate: false,
        })
        .extra_config("ciphers_tls1.3 TLS_AES_256_GCM_SHA384")
        .start();
    let ca = path(&pki().ca);
    // A suite the server accepts.
    assert_round_trip(&client_tls(
        &broker.uri(),
        &["--ca", &ca, "--ciphers", "TLS_AES_256_GCM_SHA384"],
    ));
    // Only one it refuses, with TLS 1.3 pinned by the list (no TLS 1.2 name in it, so TLS
    // 1.2 would use the defaults: the server's 1.3 choice comes first anyway).
    let out = client_tls(
        &broker.uri(),
        &[
            "--ca",
            &ca,
            "--ciphers",
            "TLS_AES_128_GCM_SHA256",
            "--expect-fail",
        ],
    );
    assert_refused(
        &out,
        "the server refused the TLS handshake",
        "handshake failure",
    );
    // A list OpenSSL cannot use: a configuration error, in a version 0 structure too (no
    // ssl_error_cb there: the trace says why).
    let out = client_tls(
        &broker.uri(),
        &["--ca", &ca, "--ciphers", "NO-SUCH-CIPHER", "--expect-fail"],
    );
    assert_refused(&out, "TLS configuration error", "no cipher match");
    let out = client_tls(
        &broker.uri(),
        &[
            "--ca",
            &ca,
            "--ciphers",
            "NO-SUCH-CIPHER",
            "--version",
            "0",
            "--expect-fail",
        ],
    );
    assert!(
        out.contains("trace: mqttsync: connect failed: TLS configuration error: cipher list"),
        "{out}"
    );
    // An empty list means the default list.
    assert_round_trip(&client_tls(&broker.uri(), &["--ca", &ca, "--ciphers", ""]));
    // For a server without TLS the SSL options are not used (as in Paho).
    let plain = Broker::start();
    assert_round_trip(&client_tls(&plain.uri(), &["--ciphers", "NO-SUCH-CIPHER"]));
}

fn psk_arg(identity: &str, key: &[u8]) -> String {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    format!("{identity}:{hex}")
}

#[test]
fn psk_callback_connects_to_a_psk_broker() {
    let broker = psk_broker(&[]);
    let uri = format!("ssl://127.0.0.1:{}", broker.port());
    let good = psk_arg(PSK_IDENTITY, &PSK_KEY);
    let out = client_tls(&uri, &["--psk", &good]);
    assert_round_trip(&out);
    // TLS 1.3: the callback is asked without a hint.
    assert!(out.contains("ssl_psk_cb hint=(none)"), "{out}");
    // A wrong key or identity: refused, and ssl_error_cb says so.
    for bad in [
        psk_arg(PSK_IDENTITY, &[9; 16]),
        psk_arg("stranger", &PSK_KEY),
    ] {
        let out = client_tls(&uri, &["--psk", &bad, "--expect-fail"]);
        assert_refused(&out, "the server refused the TLS handshake", "alert");
    }
}

/// A TLS program built against Paho's header and `-lpaho-mqtt3cs` (Paho's TLS library)
/// passes against Paho, and unchanged when `libpaho-mqtt3cs.so.1` resolves to
/// `libmqttsync.so`.
#[test]
fn drop_in_replacement_for_libpaho_mqtt3cs() {
    let paho_lib = [
        "/usr/lib/x86_64-linux-gnu/libpaho-mqtt3cs.so",
        "/usr/lib/libpaho-mqtt3cs.so",
    ];
    assert!(
        Path::new("/usr/include/MQTTClient.h").exists()
            && paho_lib.iter().any(|p| Path::new(p).exists()),
        "install libpaho-mqtt-dev for the drop-in test"
    );
    let dir = tempfile::tempdir().unwrap();
    let exe = build_paho("client_tls", "paho-mqtt3cs");
    let lib_dir = dir.path().join("lib");
    std::fs::create_dir(&lib_dir).unwrap();
    std::os::unix::fs::symlink(
        &release_libs().shared_lib,
        lib_dir.join("libpaho-mqtt3cs.so.1"),
    )
    .unwrap();
    let ld = path(&lib_dir);

    // TLS-PSK through ssl_psk_cb: the same program works on Paho and on mqttsync.
    let psk = psk_broker(&[]);
    let psk_uri = format!("ssl://127.0.0.1:{}", psk.port());
    let key = psk_arg(PSK_IDENTITY, &PSK_KEY);
    for (who, envs) in [
        ("Paho", vec![]),
        ("mqttsync", vec![("LD_LIBRARY_PATH", ld.as_str())]),
    ] {
        let id = unique_client_id("ctlsp");
        let args = [psk_uri.as_str(), id.as_str(), "--psk", key.as_str()];
        let r = run_prog(&exe, &args, &envs, Duration::from_secs(60));
        r.assert_clean(&format!("client_tls --psk (Paho build) on {who}"));
        assert_round_trip(&r.stdout);
        assert!(r.stdout.contains("ssl_psk_cb hint="), "{who}: {}", r.stdout);
    }

    let broker = mutual_broker();
    let p = pki();
    let (ca, cert, key) = (
        path(&p.ca),
        path(&p.client_ec),
        path(&p.client_ec_pkcs8_encrypted),
    );
    let ok_args = [
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "--pass",
        KEY_PASSWORD,
        "--verify",
        "1",
    ];
    let fail_args = ["--ca", &path(&p.other_ca), "--verify", "1", "--expect-fail"];
    for (who, envs) in [
        ("Paho", vec![]),
        ("mqttsync", vec![("LD_LIBRARY_PATH", ld.as_str())]),
    ] {
        for (args, good) in [(&ok_args[..], true), (&fail_args[..], false)] {
            let id = unique_client_id("ctlsd");
            let mut full = vec![broker.uri(), id];
            full.extend(args.iter().map(|s| s.to_string()));
            let full: Vec<&str> = full.iter().map(String::as_str).collect();
            let r = run_prog(&exe, &full, &envs, Duration::from_secs(60));
            r.assert_clean(&format!(
                "client_tls (Paho build) on {who}: {}",
                full.join(" ")
            ));
            if good {
                assert_round_trip(&r.stdout);
                // Paho and mqttsync both give the URI without its scheme.
                let want = format!("returned serverURI=127.0.0.1:{}\n", broker.port());
                assert!(r.stdout.contains(&want), "{who}: {want:?}\n{}", r.stdout);
            } else {
                assert!(!ssl_errors(&r.stdout).is_empty(), "{who}: {}", r.stdout);
                let names_it = ssl_errors(&r.stdout)
                    .iter()
                    .any(|e| e.contains("is not trusted (OpenSSL: certificate verify failed"));
                assert_eq!(names_it, who == "mqttsync", "{who}: {}", r.stdout);
            }
        }
    }
}
