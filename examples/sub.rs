//! `sub`: subscribe and print messages, like `mosquitto_sub`.
//!
//! cargo run --example sub -- -h localhost -t 'sensors/#' -q 1 -v -C 10

#[path = "support/cli.rs"]
mod cli_common;

use std::io::Write;

use mqttsync::{Client, Error};

fn main() {
    let mut count: Option<u64> = None;
    let mut wait: Option<u64> = None;
    let extra = "[-v] [-C count] [-W seconds] [-c]";
    let c = cli_common::parse("sub", extra, |flag, next| match flag {
        "-C" => {
            count = next().parse().ok();
            true
        }
        "-W" => {
            wait = next().parse().ok();
            true
        }
        _ => false,
    });
    let Some(topic) = c.topic.clone() else {
        cli_common::usage("sub", extra)
    };
    // Checked before connecting, as mosquitto_sub does.
    if mqttsync::topic::validate_topic_filter(&topic).is_err() {
        cli_common::fail(
            "sub",
            &format!(
                "Invalid subscription topic '{topic}', are all '+' and '#' wildcards correct?"
            ),
        );
    }
    let client = match Client::connect(cli_common::options(&c, "mqttsync-sub")) {
        Ok(c) => c,
        Err(e) => cli_common::connect_failed(&e),
    };
    if let Err(e) = client.subscribe(&topic, c.qos) {
        eprintln!("sub: subscribe to {topic} failed: {}", e.report());
        std::process::exit(1);
    }
    let messages = client.messages();
    let deadline = wait.map(|s| std::time::Instant::now() + std::time::Duration::from_secs(s));
    let mut got = 0u64;
    let stdout = std::io::stdout();
    while count.is_none_or(|n| got < n) {
        let r = match deadline {
            Some(d) => {
                messages.recv_timeout(d.saturating_duration_since(std::time::Instant::now()))
            }
            None => messages.recv(),
        };
        match r {
            Ok(m) => {
                let mut out = stdout.lock();
                if c.verbose {
                    let _ = write!(out, "{} ", m.topic);
                }
                let _ = out.write_all(&m.payload);
                let _ = out.write_all(b"\n");
                let _ = out.flush();
                got += 1;
            }
            Err(Error::Timeout { .. }) => {
                eprintln!("sub: timed out waiting for messages");
                std::process::exit(27);
            }
            Err(e) => {
                eprintln!("sub: {}", e.report());
                std::process::exit(1);
            }
        }
    }
    let _ = client.close();
}
