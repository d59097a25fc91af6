#!/usr/bin/env bash
# The project's single test command: ./scripts/test.sh
# Checks the tools the tests need, then runs every stage. Any failing stage fails the run.
set -euo pipefail

cd "$(dirname "$0")/.."

# ---- tools -------------------------------------------------------------------------------
# command -> Debian package that provides it
declare -A TOOLS=(
  [mosquitto]=mosquitto
  [mosquitto_passwd]=mosquitto
  [mosquitto_pub]=mosquitto-clients
  [mosquitto_sub]=mosquitto-clients
  [openssl]=openssl
)

have() { PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v "$1" >/dev/null 2>&1; }

missing_pkgs() {
  local cmd
  for cmd in "${!TOOLS[@]}"; do
    have "$cmd" || echo "${TOOLS[$cmd]}"
  done | sort -u
}

missing=$(missing_pkgs)
if [[ -n "$missing" ]]; then
  if [[ $(id -u) -eq 0 ]] && have apt-get; then
    echo "test.sh: installing missing packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get update && apt-get install -y $missing \
      || echo "test.sh: apt-get install failed" >&2
    missing=$(missing_pkgs)
  fi
  if [[ -n "$missing" ]]; then
    echo "test.sh: missing tools; install these packages: $missing" >&2
    for cmd in "${!TOOLS[@]}"; do
      have "$cmd" || echo "  missing command: $cmd (package ${TOOLS[$cmd]})" >&2
    done
    exit 1
  fi
fi
for cmd in cargo rustfmt cargo-clippy; do
  have "$cmd" || { echo "test.sh: missing Rust tool: $cmd" >&2; exit 1; }
done

stage() { echo; echo "==== test.sh: $* ===="; }

# ---- stages ------------------------------------------------------------------------------
stage "cargo fmt --check"
cargo fmt --check

stage "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

stage "cargo test --all-targets"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --all-targets 2>&1 | tee "$log"

stage "cargo test --doc"
cargo test --doc 2>&1 | tee -a "$log"

stage "benchmark smoke run: ./bench/run.sh --quick (builds and runs every client once)"
./bench/run.sh --quick >/dev/null

# ==== MORE STAGES GO HERE ====================================================================
# (C header / ABI probe, C examples via CMake, Paho C test programs, ...). Append their
# output to "$log" only if it uses cargo's "test result:" lines.
# ============================================================================================

# Sum of every "test result:" line above (each stage already failed the run on failure).
results=$(grep -E '^test result: ' "$log" || true)
passed=$(grep -Eo '[0-9]+ passed' <<<"$results" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' <<<"$results" | awk '{s+=$1} END {print s+0}')
echo
echo "total: $passed passed, $failed failed"
