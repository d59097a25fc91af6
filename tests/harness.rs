//! Tests of the test harness itself: a real mosquitto per test, on its own port, with the
//! options the other integration tests rely on.

mod common;

use std::net::{Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use common::*;

#[test]
fn two_brokers_in_parallel_get_different_ports() {
    let a = Broker::start();
    let b = Broker::start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    assert_eq!(a.uri(), format!("tcp://127.0.0.1:{}", a.port()));
    assert_eq!(a.host(), "127.0.0.1");
    TcpStream::connect(a.addr()).expect("broker a accepts");
    TcpStream::connect(b.addr()).expect("broker b accepts");
    // Each broker logs only its own traffic.
    mosquitto_pub(&a, &["-i", "only-a", "-t", "x", "-m", "1"]).assert_success();
    assert!(a.log().contains("only-a"));
    assert!(!b.log().contains("only-a"));
}

#[test]
fn mosquitto_sub_receives_what_mosquitto_pub_sends() {
    let broker = Broker::start();
    let id = unique_client_id("sub");
    let sub = mosquitto_sub_ready(&broker, &id, &["-t", "harness/t", "-C", "1", "-W", "10"]);
    mosquitto_pub(&broker, &["-t", "harness/t", "-m", "hello harness"]).assert_success();
    let out = sub.wait();
    assert!(out.success(), "{out:#?}");
    assert_eq!(out.stdout, "hello harness\n");
}

#[test]
fn cli_deadline_kills_a_tool_that_does_not_finish() {
    let broker = Broker::start();
    // No -C/-W: this subscriber would run forever.
    let sub = mosquitto_sub(&broker, &["-t", "nothing/comes"]);
    let out = sub.wait_timeout(Duration::from_millis(300));
    assert!(out.timed_out && out.status.is_none(), "{out:#?}");
}

#[test]
fn password_broker_refuses_wrong_credentials_and_accepts_right_ones() {
    let broker = Broker::builder()
        .password("alice", "s3cret")
        .password("bob", "hunter2")
        .start();
    let wrong = mosquitto_pub(
        &broker,
        &["-u", "alice", "-P", "wrong", "-t", "t", "-m", "x"],
    );
    assert!(!wrong.success() && !wrong.timed_out, "{wrong:#?}");
    let unknown = mosquitto_pub(
        &broker,
        &["-u", "eve", "-P", "s3cret", "-t", "t", "-m", "x"],
    );
    assert!(!unknown.success() && !unknown.timed_out, "{unknown:#?}");
    let anonymous = mosquitto_pub(&broker, &["-t", "t", "-m", "x"]);
    assert!(
        !anonymous.success() && !anonymous.timed_out,
        "{anonymous:#?}"
    );

    mosquitto_pub(
        &broker,
        &["-u", "alice", "-P", "s3cret", "-t", "t", "-m", "x"],
    )
    .assert_success();
    mosquitto_pub(
        &broker,
        &["-u", "bob", "-P", "hunter2", "-t", "t", "-m", "x"],
    )
    .assert_success();
    assert!(broker.log().contains("not authorised"), "{}", broker.log());
}

#[test]
fn restart_keeps_the_port_and_serves_again() {
    let mut broker = Broker::start();
    let port = broker.port();
    mosquitto_pub(&broker, &["-t", "t", "-m", "before"]).assert_success();
    broker.restart();
    assert_eq!(broker.port(), port);
    assert!(broker.is_running());
    mosquitto_pub(&broker, &["-t", "t", "-m", "after"]).assert_success();
    assert_eq!(broker.log_count(" running"), 2, "{}", broker.log());
}

#[test]
fn stop_then_start_again_and_kill() {
    let mut broker = Broker::start();
    let port = broker.port();
    broker.stop();
    assert!(!broker.is_running());
    assert!(
        TcpStream::connect(broker.addr()).is_err(),
        "port still open after stop"
    );
    broker.start_again();
    assert_eq!(broker.port(), port);
    TcpStream::connect(broker.addr()).expect("accepts after start_again");
    broker.kill();
    assert!(!broker.is_running());
    assert!(
        TcpStream::connect(broker.addr()).is_err(),
        "port still open after kill"
    );
}

#[test]
fn persistent_session_queue_survives_restart() {
    let mut broker = Broker::builder().persistence(true).start();
    let id = unique_client_id("persist");
    let topic = "harness/persist";
    // Create a persistent session (clean session off) with a QoS 1 subscription, then leave.
    let first = mosquitto_sub(&broker, &["-c", "-i", &id, "-q", "1", "-t", topic, "-E"]).wait();
    assert!(first.success(), "{first:#?}");
    // Published while the subscriber is offline: queued for it.
    mosquitto_pub(
        &broker,
        &["-q", "1", "-t", topic, "-m", "queued while offline"],
    )
    .assert_success();

    broker.restart(); // SIGTERM: mosquitto saves its database
    assert!(broker.dir().join("mosquitto.db").is_file());

    let second = mosquitto_sub(
        &broker,
        &[
            "-c", "-i", &id, "-q", "1", "-t", topic, "-C", "1", "-W", "10",
        ],
    )
    .wait();
    assert!(second.success(), "{second:#?}");
    assert_eq!(second.stdout, "queued while offline\n");
}

#[test]
fn without_persistence_the_queue_is_lost_on_restart() {
    // The counterpart of the test above: proves that it is persistence that kept the message.
    let mut broker = Broker::start();
    let id = unique_client_id("volatile");
    let topic = "harness/volatile";
    let first = mosquitto_sub(&broker, &["-c", "-i", &id, "-q", "1", "-t", topic, "-E"]).wait();
    assert!(first.success(), "{first:#?}");
    mosquitto_pub(&broker, &["-q", "1", "-t", topic, "-m", "lost"]).assert_success();
    broker.restart();
    let second = mosquitto_sub(
        &broker,
        &[
            "-c", "-i", &id, "-q", "1", "-t", topic, "-C", "1", "-W", "1",
        ],
    )
    .wait();
    assert_eq!(second.stdout, "", "{second:#?}");
}

#[test]
fn ipv6_listener_accepts_on_loopback() {
    let broker = Broker::builder().listener_ipv6(true).start();
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, broker.port()));
    TcpStream::connect(v6).expect("broker accepts on [::1]");
    TcpStream::connect(broker.addr()).expect("broker accepts on 127.0.0.1");
    let out = CliProcess::spawn_raw(
        "mosquitto_pub",
        &[
            "-h",
            "::1",
            "-p",
            &broker.port().to_string(),
            "-t",
            "t",
            "-m",
            "v6",
        ],
    )
    .wait();
    out.assert_success();
}

#[test]
fn max_queued_messages_and_extra_config_reach_the_config_file() {
    let broker = Broker::builder()
        .max_queued_messages(7)
        .extra_config("max_keepalive 120")
        .start();
    let conf = std::fs::read_to_string(broker.dir().join("mosquitto.conf")).unwrap();
    assert!(conf.contains("\nmax_queued_messages 7\n"), "{conf}");
    assert!(conf.contains("\nmax_keepalive 120\n"), "{conf}");
    assert!(conf.contains("allow_anonymous true"), "{conf}");
}

#[test]
fn unique_client_ids_are_unique_and_short() {
    let a = unique_client_id("averylongprefix");
    let b = unique_client_id("averylongprefix");
    assert_ne!(a, b);
    assert!(a.len() <= 23, "{a}");
}

#[test]
fn wait_until_reports_timeout() {
    assert!(wait_until(Duration::from_millis(50), || true));
    assert!(!wait_until(Duration::from_millis(50), || false));
}

#[test]
#[should_panic(expected = "mosquitto not found")]
fn missing_mosquitto_fails_loudly() {
    Broker::builder().binary("/nonexistent/mosquitto").start();
}

#[test]
fn tls_hook_serves_tls_with_given_files() {
    // A self-signed server certificate for 127.0.0.1, made with the openssl CLI.
    let certs = tempfile::tempdir().unwrap();
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl CLI not found: run .ci/run or apt-get install openssl");
    assert!(made.status.success(), "{made:?}");

    let broker = Broker::builder()
        .tls(TlsFiles {
            ca_file: cert.clone(),
            cert_file: cert.clone(),
            key_file: key,
            require_certificate: false,
        })
        .start();
    assert_eq!(broker.uri(), format!("ssl://127.0.0.1:{}", broker.port()));
    let cafile = cert.to_str().unwrap();
    mosquitto_pub(&broker, &["--cafile", cafile, "-t", "t", "-m", "over tls"]).assert_success();
    // A plain-TCP client cannot talk to the TLS listener.
    let plain = mosquitto_pub(&broker, &["-t", "t", "-m", "plain"]);
    assert!(!plain.success(), "{plain:#?}");
}

#[test]
fn start_again_retries_while_another_process_holds_the_port() {
    let mut broker = Broker::start();
    let port = broker.port();
    let log_path = broker.dir().join("mosquitto.log");
    broker.stop();
    // Someone else takes the port while the broker is down.
    let squatter = std::net::TcpListener::bind(broker.addr()).expect("take the port");
    let restarter = std::thread::spawn(move || {
        broker.start_again();
        broker
    });
    // Release it only once mosquitto has failed to bind at least once.
    let clashed = wait_until(DEADLINE, || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("Address already in use")
    });
    drop(squatter);
    assert!(clashed, "mosquitto never reported the port clash");
    let broker = restarter
        .join()
        .expect("start_again succeeded after the port was freed");
    assert_eq!(broker.port(), port);
    mosquitto_pub(&broker, &["-t", "t", "-m", "x"]).assert_success();
}
