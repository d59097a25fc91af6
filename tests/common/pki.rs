//! A test PKI generated once per test binary with the openssl crate (no `openssl` process):
//! a CA, an untrusted CA, server certificates (good, wrong host, expired) and client
//! certificates with every key format Paho users hand over; plus TLS harness brokers.
//! Shared by tests/tls.rs (Rust API) and tests/capi_tls.rs (C API).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::symm::Cipher;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

use super::broker::{Broker, TlsFiles};

pub const KEY_PASSWORD: &str = "s3cret pass";

// ---------------------------------------------------------------------------------------
// PKI
// ---------------------------------------------------------------------------------------

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn rsa_key() -> Rsa<Private> {
    Rsa::generate(2048).unwrap()
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

enum CertKind<'a> {
    Ca,
    Server(&'a [&'a str]),
    Client,
}

/// Issues a certificate for `key`, signed by `issuer` (self-signed when `None`), valid from
/// `from` to `to` (Unix seconds).
fn issue(
    cn: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    kind: CertKind<'_>,
    from: i64,
    to: i64,
) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("O", "mqttsync tests").unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(127, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    match issuer {
        Some((cert, _)) => b.set_issuer_name(cert.subject_name()).unwrap(),
        None => b.set_issuer_name(&name).unwrap(),
    }
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(from).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(to).unwrap()).unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))
        .unwrap();
    b.append_extension(ski).unwrap();
    if issuer.is_some() {
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))
            .unwrap();
        b.append_extension(aki).unwrap();
    }
    match kind {
        CertKind::Ca => {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .unwrap(),
            )
            .unwrap();
        }
        CertKind::Server(names) => {
            b.append_extension(BasicConstraints::new().build().unwrap())
                .unwrap();
            b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
                .unwrap();
            let mut san = SubjectAlternativeName::new();
            for n in names {
                if n.parse::<std::net::IpAddr>().is_ok() {
                    san.ip(n);
                } else {
                    san.dns(n);
                }
            }
            let san = san
                .build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))
                .unwrap();
            b.append_extension(san).unwrap();
        }
        CertKind::Client => {
            b.append_extension(BasicConstraints::new().build().unwrap())
                .unwrap();
            b.append_extension(ExtendedKeyUsage::new().client_auth().build().unwrap())
                .unwrap();
        }
    }
    let signer = issuer.map(|(_, k)| k).unwrap_or(key);
    b.sign(signer, MessageDigest::sha256()).unwrap();
    b.build()
}

/// Every file the tests use, written once per test binary.
pub struct Pki {
    pub ca: PathBuf,
    /// The CA certificate itself (for the CA-dir tests).
    pub ca_cert: X509,
    /// A CA nobody trusts.
    pub other_ca: PathBuf,
    /// Server certificate for IP 127.0.0.1 and DNS localhost, and its key.
    pub server: PathBuf,
    pub server_key: PathBuf,
    /// Server certificate for other.example only.
    pub wrong_host: PathBuf,
    pub wrong_host_key: PathBuf,
    /// Server certificate that expired yesterday.
    pub expired: PathBuf,
    pub expired_key: PathBuf,
    /// Self-signed server certificate for 127.0.0.1 / localhost, and its key.
    pub self_signed: PathBuf,
    pub self_signed_key: PathBuf,
    /// Client certificates and keys in the formats Paho users have.
    pub client_rsa: PathBuf,
    pub client_rsa_pkcs1: PathBuf,
    pub client_rsa_pkcs1_encrypted: PathBuf,
    pub client_ec: PathBuf,
    pub client_ec_sec1: PathBuf,
    pub client_ec_pkcs8_encrypted: PathBuf,
    pub client_ec_pkcs8: PathBuf,
    pub client_combined: PathBuf,
    /// Client certificate issued by an intermediate CA: leaf + intermediate in one file.
    pub client_chain: PathBuf,
    pub client_chain_key: PathBuf,
    /// Client certificate from the untrusted CA.
    pub client_untrusted: PathBuf,
    pub client_untrusted_key: PathBuf,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(make_pki)
}

fn make_pki() -> Pki {
    let d = super::run_subdir("pki");
    let write = |name: &str, parts: &[&[u8]]| -> PathBuf {
        let p = d.join(name);
        std::fs::write(&p, parts.concat()).unwrap();
        p
    };
    let now = now_unix();
    let (from, to) = (now - 3600, now + 30 * 86400);

    let ca_key = ec_key();
    let ca_cert = issue("mqttsync test CA", &ca_key, None, CertKind::Ca, from, to);
    let ca = write("ca.pem", &[&ca_cert.to_pem().unwrap()]);
    let ca_i = Some((&ca_cert, &ca_key));

    let other_key = ec_key();
    let other_cert = issue("untrusted CA", &other_key, None, CertKind::Ca, from, to);
    let other_ca = write("other-ca.pem", &[&other_cert.to_pem().unwrap()]);

    let server_cert_file = |name: &str, names: &[&str], from: i64, to: i64| {
        let key = ec_key();
        let cert = issue(names[0], &key, ca_i, CertKind::Server(names), from, to);
        (
            write(&format!("{name}.pem"), &[&cert.to_pem().unwrap()]),
            write(
                &format!("{name}.key"),
                &[&key.private_key_to_pem_pkcs8().unwrap()],
            ),
        )
    };
    let (server, server_key) = server_cert_file("server", &["127.0.0.1", "localhost"], from, to);
    let (wrong_host, wrong_host_key) = server_cert_file("wrong-host", &["other.example"], from, to);
    let (expired, expired_key) = server_cert_file(
        "expired",
        &["127.0.0.1", "localhost"],
        now - 30 * 86400,
        now - 86400,
    );

    // Self-signed server certificate (issued by its own key, not by a CA).
    let self_key = ec_key();
    let self_cert = issue(
        "127.0.0.1",
        &self_key,
        None,
        CertKind::Server(&["127.0.0.1", "localhost"]),
        from,
        to,
    );
    let self_signed = write("self-signed.pem", &[&self_cert.to_pem().unwrap()]);
    let self_signed_key = write(
        "self-signed.key",
        &[&self_key.private_key_to_pem_pkcs8().unwrap()],
    );

    // RSA client: PKCS#1 plain and traditionally encrypted (Proc-Type: 4,ENCRYPTED).
    let rsa = rsa_key();
    let rsa_pkey = PKey::from_rsa(rsa.clone()).unwrap();
    let rsa_cert = issue("client-rsa", &rsa_pkey, ca_i, CertKind::Client, from, to)
        .to_pem()
        .unwrap();
    let client_rsa = write("client-rsa.pem", &[&rsa_cert]);
    let client_rsa_pkcs1 = write(
        "client-rsa.pkcs1.key",
        &[&rsa.private_key_to_pem().unwrap()],
    );
    let client_rsa_pkcs1_encrypted = write(
        "client-rsa.pkcs1-enc.key",
        &[&rsa
            .private_key_to_pem_passphrase(Cipher::aes_256_cbc(), KEY_PASSWORD.as_bytes())
            .unwrap()],
    );

    // EC client: SEC1, PKCS#8, encrypted PKCS#8, and certificate + key in one file.
    let ec = ec_key();
    let ec_cert = issue("client-ec", &ec, ca_i, CertKind::Client, from, to)
        .to_pem()
        .unwrap();
    let client_ec = write("client-ec.pem", &[&ec_cert]);
    let client_ec_sec1 = write(
        "client-ec.sec1.key",
        &[&ec.ec_key().unwrap().private_key_to_pem().unwrap()],
    );
    let client_ec_pkcs8 = write(
        "client-ec.pkcs8.key",
        &[&ec.private_key_to_pem_pkcs8().unwrap()],
    );
    let client_ec_pkcs8_encrypted = write(
        "client-ec.pkcs8-enc.key",
        &[&ec
            .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), KEY_PASSWORD.as_bytes())
            .unwrap()],
    );
    let client_combined = write(
        "client-ec.combined.pem",
        &[
            &ec_cert,
            &ec.ec_key().unwrap().private_key_to_pem().unwrap(),
        ],
    );

    // Client under an intermediate CA: the broker knows only the root, so the client must
    // send the intermediate.
    let inter_key = ec_key();
    let inter_cert = issue("intermediate CA", &inter_key, ca_i, CertKind::Ca, from, to);
    let chain_key = ec_key();
    let chain_cert = issue(
        "client-chain",
        &chain_key,
        Some((&inter_cert, &inter_key)),
        CertKind::Client,
        from,
        to,
    );
    let client_chain = write(
        "client-chain.pem",
        &[&chain_cert.to_pem().unwrap(), &inter_cert.to_pem().unwrap()],
    );
    let client_chain_key = write(
        "client-chain.key",
        &[&chain_key.private_key_to_pem_pkcs8().unwrap()],
    );

    let untrusted_key = ec_key();
    let untrusted_cert = issue(
        "client-untrusted",
        &untrusted_key,
        Some((&other_cert, &other_key)),
        CertKind::Client,
        from,
        to,
    );
    let client_untrusted = write("client-untrusted.pem", &[&untrusted_cert.to_pem().unwrap()]);
    let client_untrusted_key = write(
        "client-untrusted.key",
        &[&untrusted_key.private_key_to_pem_pkcs8().unwrap()],
    );

    Pki {
        ca,
        ca_cert,
        other_ca,
        server,
        server_key,
        wrong_host,
        wrong_host_key,
        expired,
        expired_key,
        self_signed,
        self_signed_key,
        client_rsa,
        client_rsa_pkcs1,
        client_rsa_pkcs1_encrypted,
        client_ec,
        client_ec_sec1,
        client_ec_pkcs8_encrypted,
        client_ec_pkcs8,
        client_combined,
        client_chain,
        client_chain_key,
        client_untrusted,
        client_untrusted_key,
    }
}

pub fn tls_broker(cert: &Path, key: &Path, require_certificate: bool) -> Broker {
    Broker::builder()
        .tls(TlsFiles {
            ca_file: pki().ca.clone(),
            cert_file: cert.to_path_buf(),
            key_file: key.to_path_buf(),
            require_certificate,
        })
        .start()
}

pub fn good_broker() -> Broker {
    tls_broker(&pki().server, &pki().server_key, false)
}

pub fn mutual_broker() -> Broker {
    tls_broker(&pki().server, &pki().server_key, true)
}

/// The TLS-PSK identity every [`psk_broker`] knows, and its key.
pub const PSK_IDENTITY: &str = "mqttsync-psk-client";
pub const PSK_KEY: [u8; 16] = [
    0x5a, 0x17, 0x02, 0xc3, 0x9e, 0x44, 0x81, 0x6d, 0x0f, 0xb2, 0x73, 0x28, 0xe5, 0x91, 0x3c, 0x60,
];
/// The identity hint a [`psk_broker`] sends (TLS 1.2 only; TLS 1.3 has no hints).
pub const PSK_HINT: &str = "mqttsync-test-hint";

/// A broker whose listener does TLS-PSK only (no certificate): mosquitto's `psk_hint` and
/// a `psk_file` holding [`PSK_IDENTITY`] and [`PSK_KEY`]. Its URI is `ssl://127.0.0.1:PORT`
/// (the harness's `uri()` says `tcp://`, as it has no certificate files).
pub fn psk_broker(extra: &[&str]) -> Broker {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let file = super::run_subdir("psk").join("psk.txt");
        let hex: String = PSK_KEY.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&file, format!("{PSK_IDENTITY}:{hex}\n")).unwrap();
        file
    });
    let mut b = Broker::builder()
        .extra_config(&format!("psk_hint {PSK_HINT}"))
        .extra_config(&format!("psk_file {}", file.display()));
    for line in extra {
        b = b.extra_config(line);
    }
    b.start()
}
