//! The command-line examples `pub` and `sub` behave like mosquitto_pub / mosquitto_sub on
//! bad arguments (checked before connecting, same message, exit status 1) and on a refused
//! connection (exit status = CONNACK return code / MQTT 5 reason code).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::Broker;

/// `target/<profile>/examples/<name>` (cargo builds the examples for `cargo test
/// --all-targets`; built here when missing).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--example", name]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        assert!(cmd.status().unwrap().success(), "building example {name}");
    }
    path
}

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(example(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_arguments_are_refused_before_connecting() {
    // Port 1 has no broker: a tool that connected first would fail differently.
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "pub",
            &["-p", "1", "-t", "a", "-m", "x", "-q", "3"],
            "Error: Invalid QoS given: 3",
        ),
        (
            "sub",
            &["-p", "1", "-t", "a", "-q", "3"],
            "Error: Invalid QoS given: 3",
        ),
        (
            "pub",
            &["-p", "1", "-t", "a/+", "-m", "x"],
            "Error: Invalid publish topic 'a/+', does it contain '+' or '#'?",
        ),
        (
            "sub",
            &["-p", "1", "-t", "a/#/b"],
            "Error: Invalid subscription topic 'a/#/b', are all '+' and '#' wildcards correct?",
        ),
    ];
    for (tool, args, msg) in cases {
        let o = run(tool, args);
        assert_eq!(o.status.code(), Some(1), "{tool} {args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).starts_with(msg),
            "{tool} {args:?}: {}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("Connection"), "{tool} connected first");
    }
}

#[test]
fn a_refused_connection_exits_with_the_connack_code() {
    let broker = Broker::builder().password("user", "secret").start();
    let port = broker.port().to_string();
    for (tool, version, code) in [
        ("pub", "mqttv311", 5),
        ("pub", "mqttv5", 0x87),
        ("sub", "mqttv311", 5),
        ("sub", "mqttv5", 0x87),
    ] {
        let mut args = vec![
            "-p", &port, "-t", "a", "-V", version, "-u", "user", "-P", "wrong",
        ];
        if tool == "pub" {
            args.extend(["-m", "x"]);
        }
        let o = run(tool, &args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{tool} {version}: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).starts_with("Connection error:"),
            "{}",
            stderr(&o)
        );
    }
    // And with the right password it works.
    let o = run(
        "pub",
        &[
            "-p", &port, "-t", "a", "-m", "x", "-u", "user", "-P", "secret", "-q", "1",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
