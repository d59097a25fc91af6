#!/usr/bin/env bash
# The project's single test command: ./scripts/test.sh
# Checks the tools the tests need, then runs every stage. Any failing stage fails the run.
set -euo pipefail

cd "$(dirname "$0")/.."

# ---- tools -------------------------------------------------------------------------------
# Debian/Ubuntu: every package of scripts/packages.txt (the list .ci/run uses too); run as
# root, the missing ones are installed (one apt-get update, one apt-get install).
# Elsewhere (no dpkg): the commands and the Paho header the tests need are checked by name.
have() { PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v "$1" >/dev/null 2>&1; }

if have dpkg-query; then
  scripts/install-packages.sh
else
  miss=()
  for cmd in mosquitto mosquitto_passwd mosquitto_pub mosquitto_sub openssl cmake pkg-config \
    cc c++ clang valgrind; do
    have "$cmd" || miss+=("command $cmd")
  done
  for header in MQTTClient.h mqtt/async_client.h mosquitto.h openssl/ssl.h; do
    [[ -e /usr/include/$header || -e /usr/local/include/$header ]] || miss+=("header $header")
  done
  if ((${#miss[@]})); then
    echo "test.sh: missing (see scripts/packages.txt for the Debian package names):" >&2
    printf '  %s\n' "${miss[@]}" >&2
    exit 1
  fi
fi
for cmd in cargo rustfmt cargo-clippy; do
  have "$cmd" || { echo "test.sh: missing Rust tool: $cmd" >&2; exit 1; }
done

stage() { echo; echo "==== test.sh: $* ===="; }

# Disk: a full build and test run needs about 4-5 GB (target/ and the C programs it builds).
# Say so up front; a full disk otherwise shows up as a linker error deep in the run.
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [[ -n "$free_kb" && "$free_kb" -lt $((5 * 1024 * 1024)) ]]; then
  echo "test.sh: warning: only $((free_kb / 1024)) MB free here; the run needs about 5 GB" >&2
fi

# ---- stages ------------------------------------------------------------------------------
stage "cargo fmt --check"
cargo fmt --check

stage "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

stage "cargo doc --no-deps --document-private-items (rustdoc warnings are errors: broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --document-private-items --quiet

stage "cargo test --all-targets"
log=$(mktemp)
quick_out=$(mktemp -d)
trap 'rm -rf "$log" "$quick_out"' EXIT
cargo test --all-targets 2>&1 | tee "$log"

stage "cargo test --doc"
cargo test --doc 2>&1 | tee -a "$log"

stage "benchmark smoke run: ./bench/run.sh --quick (builds and runs every client once)"
./bench/run.sh --quick --out "$quick_out" >/dev/null

# ==== MORE STAGES GO HERE ====================================================================
# The C side already runs inside `cargo test` (so it counts in the totals below):
#   tests/header.rs, abi.rs        header / ABI probes (C99, C++11, gcc, clang)
#   tests/capi_c.rs, capi_client.rs C programs vs Paho C, drop-in on libpaho-mqtt3c.so.1,
#                                   AddressSanitizer + LeakSanitizer, valgrind memcheck of
#                                   the threaded pub/sub program on the shared library
#   tests/capi_tls.rs               TLS through MQTTClient_SSLOptions
#   tests/packaging.rs              install-c.sh, pkg-config and CMake (static and shared)
#   tests/c_examples.rs             examples/c built with CMake (static and shared) and run
# Append the output of further stages to "$log" only if it uses cargo's "test result:" lines.
# ============================================================================================

# Sum of every "test result:" line above (each stage already failed the run on failure).
results=$(grep -E '^test result: ' "$log" || true)
passed=$(grep -Eo '[0-9]+ passed' <<<"$results" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' <<<"$results" | awk '{s+=$1} END {print s+0}')
echo
echo "total: $passed passed, $failed failed"
