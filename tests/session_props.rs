//! Property tests of the session state machine: the check the `session` fuzz target runs
//! (`fuzz/session_check.rs`), here on proptest-generated programs and on the regression
//! inputs and corpus kept in `fuzz/corpus/session/`.

use proptest::collection::vec;
use proptest::prelude::*;

#[path = "../fuzz/session_check.rs"]
mod session_check;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary programs: no panic, every invariant holds after every step.
    #[test]
    fn arbitrary_programs_keep_the_invariants(data in vec(any::<u8>(), 0..600)) {
        let _ = session_check::check_session(&data);
    }

    /// Programs biased to the interesting ops (publish, server packets, time), so long
    /// flows with acknowledgements and reconnects happen often.
    #[test]
    fn flow_heavy_programs_keep_the_invariants(
        head in any::<[u8; 3]>(),
        ops in vec((prop_oneof![Just(0u8), Just(1), Just(6), Just(7), Just(4), Just(8), Just(2)], any::<[u8; 4]>()), 0..200),
    ) {
        let mut data = head.to_vec();
        for (op, args) in ops {
            data.push(op);
            data.extend_from_slice(&args);
        }
        let _ = session_check::check_session(&data);
    }
}

/// Every input kept in the fuzz corpus (including the crashes the fuzzer found, as
/// regressions) still passes.
#[test]
fn fuzz_corpus_passes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/session");
    let mut n = 0;
    let mut messages = 0;
    let mut connects = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/session exists") {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        let stats = session_check::check_session(&data);
        messages += stats.messages;
        connects += stats.connects;
        n += 1;
    }
    assert!(n >= 10, "corpus has only {n} inputs");
    // The corpus reaches deep states, not only the CONNECT.
    assert!(
        connects > n && messages > 0,
        "corpus too shallow: {connects} connects, {messages} messages"
    );
}
