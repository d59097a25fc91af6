//! The generated header: it is current, and it compiles alone (and through each of Paho's
//! header names) as C99 and C++11 with -Wall -Wextra -Werror -pedantic, using every
//! initializer macro, type and function.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const HEADERS: &[&str] = &[
    "mqttsync.h",
    "MQTTClient.h",
    "MQTTAsync.h",
    "MQTTProperties.h",
    "MQTTReasonCodes.h",
    "MQTTSubscribeOpts.h",
    "MQTTClientPersistence.h",
    "MQTTExportDeclarations.h",
];

/// The header cbindgen generates now (build.rs writes it to $OUT_DIR on every build of the
/// crate) must equal include/mqttsync.h. With MQTTSYNC_CHECK_COMMITTED_HEADER=1 (or CI set),
/// the committed version (git HEAD) must equal it too.
#[test]
fn header_is_current() {
    let generated = std::fs::read_to_string(env!("MQTTSYNC_GENERATED_HEADER")).unwrap();
    let on_disk = std::fs::read_to_string(include_dir().join("mqttsync.h")).unwrap();
    assert!(
        generated == on_disk,
        "include/mqttsync.h is stale: rebuild (cargo build) to regenerate it and commit it"
    );
    let strict = std::env::var_os("MQTTSYNC_CHECK_COMMITTED_HEADER").is_some()
        || std::env::var_os("CI").is_some();
    if strict {
        let out = run(Command::new("git")
            .current_dir(root())
            .args(["show", "HEAD:include/mqttsync.h"]));
        assert!(
            out.stdout == generated.as_bytes(),
            "the committed include/mqttsync.h differs from what cbindgen generates; commit it"
        );
    }
}

fn compilers() -> Vec<(&'static str, &'static [&'static str])> {
    let c: &'static [&'static str] = &["-x", "c", "-std=c99"];
    let cxx: &'static [&'static str] = &["-x", "c++", "-std=c++11"];
    let mut v = vec![("cc", c), ("c++", cxx)];
    if have("clang") {
        v.push(("clang", c));
        v.push(("clang++", cxx));
    }
    v
}

fn compile_only(compiler: &str, lang: &[&str], defines: &[String], src: &Path, obj: &PathBuf) {
    run(Command::new(compiler)
        .args(lang)
        .args(["-Wall", "-Wextra", "-Werror", "-pedantic", "-c"])
        .args(defines)
        .arg("-I")
        .arg(include_dir())
        .arg(src)
        .arg("-o")
        .arg(obj));
}

#[test]
fn header_compiles_as_c99_and_cpp11_through_every_name() {
    let dir = tempfile::tempdir().unwrap();
    let src = c_dir().join("header_use.c");
    for (compiler, lang) in compilers() {
        for h in HEADERS {
            let obj = dir.path().join(format!("{compiler}-{h}.o"));
            compile_only(compiler, lang, &[format!("-DHEADER=\"{h}\"")], &src, &obj);
        }
    }
}

#[test]
fn header_included_twice_and_all_names_together() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("all.c");
    let mut text = String::new();
    for h in HEADERS.iter().chain(HEADERS.iter()) {
        text.push_str(&format!("#include \"{h}\"\n"));
    }
    text.push_str("#define HEADER \"mqttsync.h\"\n");
    text.push_str(&format!(
        "#include \"{}\"\n",
        c_dir().join("header_use.c").display()
    ));
    std::fs::write(&src, text).unwrap();
    for (compiler, lang) in compilers() {
        compile_only(
            compiler,
            lang,
            &[],
            &src,
            &dir.path().join(format!("{compiler}.o")),
        );
    }
}

/// Mixing implementations is detected: a real Paho header before ours is an #error; a real
/// Paho header after ours is skipped by its include guard.
#[test]
fn mixing_with_paho_headers_is_detected() {
    if !Path::new("/usr/include/MQTTClient.h").exists() {
        panic!("/usr/include/MQTTClient.h missing: install libpaho-mqtt-dev");
    }
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("before.c");
    std::fs::write(
        &before,
        "#include </usr/include/MQTTProperties.h>\n#include \"mqttsync.h\"\nint x;\n",
    )
    .unwrap();
    let out = Command::new("cc")
        .args(["-std=c99", "-c", "-I"])
        .arg(include_dir())
        .arg(&before)
        .arg("-o")
        .arg(dir.path().join("before.o"))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "Paho header before ours must not compile"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("a header of Eclipse Paho C"));

    let after = dir.path().join("after.c");
    std::fs::write(
        &after,
        "#include \"MQTTClient.h\"\n#include </usr/include/MQTTClient.h>\n\
         #include </usr/include/MQTTProperties.h>\nint x;\n",
    )
    .unwrap();
    run(Command::new("cc")
        .args(["-std=c99", "-Wall", "-Werror", "-c", "-I"])
        .arg(include_dir())
        .arg(&after)
        .arg("-o")
        .arg(dir.path().join("after.o")));
}

/// Every exported function is declared with a doc comment (cbindgen copies `///` docs).
#[test]
fn every_function_is_documented() {
    let h = std::fs::read_to_string(include_dir().join("mqttsync.h")).unwrap();
    let body = h.split("extern \"C\" {").nth(1).expect("extern C block");
    let mut prev_is_doc = false;
    let mut undocumented = Vec::new();
    for line in body.lines() {
        let t = line.trim();
        if t.ends_with("*/") {
            prev_is_doc = true;
            continue;
        }
        let is_decl = t.contains('(')
            && !t.starts_with('*')
            && !t.starts_with('#')
            && !t.starts_with("//")
            && !line.starts_with(' ');
        if is_decl && !prev_is_doc {
            undocumented.push(t.to_string());
        }
        if !t.is_empty() && !t.starts_with('*') && !t.starts_with("/*") {
            prev_is_doc = false;
        }
    }
    assert!(undocumented.is_empty(), "undocumented: {undocumented:#?}");
}
