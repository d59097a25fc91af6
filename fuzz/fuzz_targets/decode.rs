//! `cargo +nightly fuzz run decode`: Framer + decode for MQTT 3.1, 3.1.1 and 5.0 on
//! arbitrary bytes, re-encoding whatever decodes (see `../check.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    let _ = check::check_decode(data);
});
