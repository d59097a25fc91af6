//! `cargo +nightly fuzz run session`: drives `proto::session::Session` with a program read
//! from the input (connect, CONNACK, raw and well-formed server bytes, publishes,
//! subscribes, time passing, lost connections) and checks its invariants after every step
//! (see `../session_check.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../session_check.rs"]
mod session_check;

fuzz_target!(|data: &[u8]| {
    let _ = session_check::check_session(data);
});
