//! mqttbench: the benchmark suite of mqttsync.
//!
//! `mqttbench run [--quick] [--reps N] [--secs S] [--out DIR]` starts one mosquitto, builds
//! the C drivers, runs every workload on every client (each client run is its own process)
//! and writes `DIR/latest.md` and `DIR/throughput.png`.
//!
//! `mqttbench worker CLIENT WORKLOAD HOST PORT ARGS...` is one client run (CLIENT is
//! mqttsync, rumqttc or raw); the C drivers in `bench/c/` take the same WORKLOAD arguments.

mod chart;
mod common;
mod runner;
mod w_mqttsync;
mod w_raw;
mod w_rumqttc;

use common::{Args, Fail};

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = match argv.first().map(String::as_str) {
        Some("worker") if argv.len() >= 2 => worker(&argv[1], &argv[2..]),
        Some("run") => match runner::main(&argv[1..]) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("mqttbench: FAILED: {e}");
                1
            }
        },
        _ => {
            eprintln!(
                "usage: mqttbench run [--quick] [--reps N] [--secs S] [--out DIR]\n       \
                 mqttbench worker mqttsync|rumqttc|raw pub|e2e|lat|conn|idle HOST PORT ARGS..."
            );
            1
        }
    };
    std::process::exit(code);
}

fn worker(client: &str, args: &[String]) -> i32 {
    let r = Args::parse(args)
        .map_err(Fail::Error)
        .and_then(|a| match client {
            "mqttsync" => w_mqttsync::run(a),
            "rumqttc" => w_rumqttc::run(a),
            "raw" => w_raw::run(a),
            c => Err(Fail::Error(format!("unknown client {c}"))),
        });
    match r {
        Ok(()) => 0,
        Err(Fail::Unsupported(why)) => {
            eprintln!("{why}");
            2
        }
        Err(Fail::Error(e)) => {
            eprintln!("FAIL: {e}");
            1
        }
    }
}
