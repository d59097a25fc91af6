#!/usr/bin/env bash
# Runs the whole benchmark suite: builds the bench crate (release), then one run of
# `mqttbench run`, which starts its own mosquitto, builds the C drivers and measures every
# client. Writes bench/results/latest.md and bench/results/throughput.png.
#
#   ./bench/run.sh            full run (3 repetitions, ~15 minutes on 2 cores)
#   ./bench/run.sh --quick    smoke run (tiny cells, 1 repetition, < 60 s); results go to a
#                             temporary directory, not bench/results
#   other options: --reps N, --secs S (publishing time per cell), --out DIR,
#                  --rows TEXT (only rows whose label contains TEXT, no latency/connect/idle
#                  sections), --clients a,b (only these clients; the raw ceiling always runs),
#                  --sections throughput,latency,idle (only these parts of the run)
#
# Needs: mosquitto, libpaho-mqtt-dev, libmosquitto-dev, a C compiler, fonts-dejavu-core (for
# the chart only).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --quiet --manifest-path Cargo.toml
exe="${CARGO_TARGET_DIR:-$PWD/target}/release/mqttbench"
exec "$exe" run "$@"
