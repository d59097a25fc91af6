//! Build script: generates `include/mqttsync.h` with cbindgen (rewriting it only when its
//! content changes, and always writing a copy to `$OUT_DIR/mqttsync.h` that
//! `tests/header.rs` compares with the committed file), and gives the shared library its
//! soname.

use std::env;
use std::fs;
use std::path::PathBuf;

/// Shared-library soname; bump with incompatible ABI changes (and in packaging/).
const SONAME: &str = "libmqttsync.so.0";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src/capi");

    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));

    let config = cbindgen::Config::from_file(manifest.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("cbindgen.toml: {e}"));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(manifest.join("src/capi/mod.rs"))
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen failed on src/capi: {e}"));
    let mut header = Vec::new();
    bindings.write(&mut header);

    fs::write(out_dir.join("mqttsync.h"), &header).expect("write $OUT_DIR/mqttsync.h");
    println!(
        "cargo:rustc-env=MQTTSYNC_GENERATED_HEADER={}",
        out_dir.join("mqttsync.h").display()
    );

    let target = manifest.join("include/mqttsync.h");
    if fs::read(&target).ok().as_deref() != Some(&header[..]) {
        fs::create_dir_all(manifest.join("include")).expect("create include/");
        fs::write(&target, &header).expect("write include/mqttsync.h");
    }

    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "freebsd" || os == "netbsd" || os == "openbsd" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");
    }
    hot_code(&manifest, &os);
}

/// Has the linker put the code that creating, connecting and idling clients run together
/// at the start of the shared library, and the constants before the exception tables
/// (`link/hot-code.ld`, made by `scripts/hot_code.py`): the kernel maps a library's pages
/// into a process in pieces of 64 KiB or more around each page used, so spread out, those
/// few hundred functions made a program map most of the library for its first idle client.
/// `MQTTSYNC_NO_HOT_CODE=1` leaves the default layout (for a linker without `INSERT` in
/// linker scripts, such as mold or gold; checked with rust-lld, the default, and GNU ld).
fn hot_code(manifest: &std::path::Path, os: &str) {
    let script = manifest.join("link/hot-code.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-env-changed=MQTTSYNC_NO_HOT_CODE");
    if os == "linux" && script.exists() && env::var_os("MQTTSYNC_NO_HOT_CODE").is_none() {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-T,{}", script.display());
    }
}
