//! C programs exercising the client-less C functions (tests/c/capi_test.c):
//! - built against Eclipse Paho C and against mqttsync, the shared part of the output must
//!   be identical (same strings, codes, lengths, lookups as Paho);
//! - mqttsync's build must pass its own checks, also under AddressSanitizer and
//!   LeakSanitizer (no errors, no leaks), with gcc and with clang.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const MARK: &str = "--- mqttsync only\n";

fn output_of(exe: &Path, envs: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(exe)
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn property_and_string_functions_behave_like_paho() {
    let have_paho = Path::new("/usr/include/MQTTClient.h").exists()
        && [
            "/usr/lib/x86_64-linux-gnu/libpaho-mqtt3c.so",
            "/usr/lib/libpaho-mqtt3c.so",
        ]
        .iter()
        .any(|p| Path::new(p).exists());
    assert!(
        have_paho,
        "Eclipse Paho C is needed for this comparison: install libpaho-mqtt-dev"
    );
    let dir = tempfile::tempdir().unwrap();
    let src = c_dir().join("capi_test.c");

    let paho_exe = dir.path().join("capi_test_paho");
    run(Command::new("cc")
        .args(["-std=c99", "-I", "/usr/include"])
        .arg(&src)
        .arg("-o")
        .arg(&paho_exe)
        .arg("-lpaho-mqtt3c"));
    let (ok, paho, err) = output_of(&paho_exe, &[]);
    assert!(ok, "Paho build of capi_test failed:\n{paho}\n{err}");

    let ours_exe = dir.path().join("capi_test_ours");
    build_c_program("cc", &src, &ours_exe, &[]);
    let (ok, ours, err) = output_of(&ours_exe, &[]);
    assert!(ok, "mqttsync build of capi_test failed:\n{ours}\n{err}");

    let (common_ours, extra) = ours.split_once(MARK).expect("mqttsync section missing");
    let common_paho = paho
        .strip_suffix("failures: 0\n")
        .expect("paho run incomplete");
    assert_eq!(common_ours, common_paho, "output differs from Paho's");
    assert!(
        extra.ends_with("failures: 0\n"),
        "mqttsync checks failed:\n{extra}"
    );
    assert!(extra.contains(&format!("Version = {}", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn c_program_is_clean_under_address_sanitizer() {
    let dir = tempfile::tempdir().unwrap();
    let src = c_dir().join("capi_test.c");
    let mut compilers = vec!["cc"];
    if have("clang") {
        compilers.push("clang");
    }
    for compiler in compilers {
        let exe = dir.path().join(format!("capi_test_asan_{compiler}"));
        build_c_program(
            compiler,
            &src,
            &exe,
            &["-fsanitize=address", "-fno-omit-frame-pointer"],
        );
        let (ok, out, err) = output_of(
            &exe,
            &[(
                "ASAN_OPTIONS",
                "detect_leaks=1:halt_on_error=1:abort_on_error=0",
            )],
        );
        assert!(
            ok && out.ends_with("failures: 0\n") && !err.contains("Sanitizer"),
            "{compiler} + ASan run failed:\n--- stdout\n{out}\n--- stderr\n{err}"
        );
    }
}
