//! `pub`: publish one message, like `mosquitto_pub`.
//!
//! cargo run --example pub -- -h localhost -p 1883 -t greetings -m "hello" -q 1 [-r]

#[path = "support/cli.rs"]
mod cli_common;

use mqttsync::{Client, Message};

fn main() {
    let mut message: Option<String> = None;
    let mut retain = false;
    let mut null_message = false;
    let extra = "(-m message | -n) [-r]";
    let c = cli_common::parse("pub", extra, |flag, next| match flag {
        "-m" | "--message" => {
            message = Some(next());
            true
        }
        "-n" | "--null-message" => {
            null_message = true;
            true
        }
        "-r" | "--retain" => {
            retain = true;
            true
        }
        _ => false,
    });
    let Some(topic) = c.topic.clone() else {
        cli_common::usage("pub", extra)
    };
    // Checked before connecting, as mosquitto_pub does.
    if mqttsync::topic::validate_topic_name(&topic).is_err() {
        cli_common::fail(
            "pub",
            &format!("Invalid publish topic '{topic}', does it contain '+' or '#'?"),
        );
    }
    let payload = match (message, null_message) {
        (Some(m), false) => m.into_bytes(),
        (None, true) => Vec::new(),
        _ => cli_common::usage("pub", extra),
    };
    let client = match Client::connect(cli_common::options(&c, "mqttsync-pub")) {
        Ok(c) => c,
        Err(e) => cli_common::connect_failed(&e),
    };
    let msg = Message::new(topic, payload).qos(c.qos).retain(retain);
    if let Err(e) = client.publish_wait(msg) {
        eprintln!("pub: publish failed: {}", e.report());
        std::process::exit(1);
    }
    if let Err(e) = client.close() {
        eprintln!("pub: disconnect failed: {}", e.report());
        std::process::exit(1);
    }
}
