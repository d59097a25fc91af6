//! Packaging: scripts/install-c.sh installs the libraries, headers, pkg-config and CMake
//! files into a prefix; a C program then builds against the static and the shared library
//! with pkg-config and with CMake's find_package, and runs.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let out = run(Command::new("pkg-config")
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .env_remove("PKG_CONFIG_LIBDIR")
        .args(args));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn needed(exe: &Path) -> String {
    String::from_utf8_lossy(&run(Command::new("readelf").arg("-d").arg(exe)).stdout).into_owned()
}

fn check_runs(exe: &Path, lib_dir: Option<&Path>) {
    let mut cmd = Command::new(exe);
    if let Some(d) = lib_dir {
        cmd.env("LD_LIBRARY_PATH", d);
    }
    let out = run(&mut cmd);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("mqttsync") && text.contains(env!("CARGO_PKG_VERSION")),
        "unexpected output from {}: {text}",
        exe.display()
    );
    assert!(text.trim_end().ends_with("Invalid QoS value"), "{text}");
}

#[test]
fn install_then_build_with_pkg_config_and_cmake() {
    for tool in ["pkg-config", "cmake", "readelf"] {
        assert!(have(tool), "{tool} is required for the packaging test");
    }
    let libs = release_libs();
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("prefix");
    install_c(&prefix);

    // Layout, soname and symlinks.
    let lib = prefix.join("lib");
    let version = env!("CARGO_PKG_VERSION");
    assert!(lib.join("libmqttsync.a").is_file());
    assert!(lib.join(format!("libmqttsync.so.{version}")).is_file());
    assert_eq!(
        std::fs::read_link(lib.join("libmqttsync.so.0")).unwrap(),
        Path::new(&format!("libmqttsync.so.{version}"))
    );
    assert_eq!(
        std::fs::read_link(lib.join("libmqttsync.so")).unwrap(),
        Path::new("libmqttsync.so.0")
    );
    assert!(needed(&lib.join("libmqttsync.so.0")).contains("Library soname: [libmqttsync.so.0]"));
    for h in [
        "mqttsync.h",
        "MQTTClient.h",
        "MQTTProperties.h",
        "MQTTReasonCodes.h",
        "MQTTSubscribeOpts.h",
        "MQTTClientPersistence.h",
        "MQTTExportDeclarations.h",
    ] {
        assert!(
            prefix.join("include/mqttsync").join(h).is_file(),
            "{h} not installed"
        );
    }

    // The documented static link line covers what rustc reports.
    let static_libs = pkg_config(&prefix, &["--libs", "mqttsync-static"]);
    for l in &libs.native_static_libs {
        assert!(
            static_libs.contains(l),
            "rustc needs {l} for the static library but the packaged line is {static_libs:?}"
        );
    }
    let documented: Vec<String> = NATIVE_STATIC_LIBS.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        &static_libs[1..],
        &documented[..],
        "pkg-config line differs from the documented one"
    );

    let src = c_dir().join("use_mqttsync.c");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    // pkg-config, shared.
    let shared_exe = work.join("use_shared");
    run(Command::new("cc")
        .arg(&src)
        .arg("-o")
        .arg(&shared_exe)
        .args(pkg_config(&prefix, &["--cflags", "--libs", "mqttsync"])));
    assert!(needed(&shared_exe).contains("[libmqttsync.so.0]"));
    check_runs(&shared_exe, Some(&lib));

    // The README's line for a prefix outside the loader's path: the rpath from pkg-config's
    // libdir, so the program runs without LD_LIBRARY_PATH.
    let rpath_exe = work.join("use_shared_rpath");
    let libdir = pkg_config(&prefix, &["--variable=libdir", "mqttsync"]);
    assert_eq!(libdir.len(), 1, "{libdir:?}");
    run(Command::new("cc")
        .arg(&src)
        .arg("-o")
        .arg(&rpath_exe)
        .args(pkg_config(&prefix, &["--cflags", "--libs", "mqttsync"]))
        .arg(format!("-Wl,-rpath,{}", libdir[0])));
    check_runs(&rpath_exe, None);

    // pkg-config, static.
    let static_exe = work.join("use_static");
    run(Command::new("cc")
        .arg(&src)
        .arg("-o")
        .arg(&static_exe)
        .args(pkg_config(
            &prefix,
            &["--cflags", "--libs", "mqttsync-static"],
        )));
    assert!(!needed(&static_exe).contains("libmqttsync"));
    check_runs(&static_exe, None);

    // CMake find_package with both imported targets.
    let proj = tmp.path().join("cmake-project");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::copy(&src, proj.join("main.c")).unwrap();
    std::fs::write(
        proj.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.13)\n\
         project(use_mqttsync C)\n\
         find_package(mqttsync 0.1 CONFIG REQUIRED)\n\
         add_executable(use_shared main.c)\n\
         target_link_libraries(use_shared PRIVATE mqttsync::mqttsync)\n\
         add_executable(use_static main.c)\n\
         target_link_libraries(use_static PRIVATE mqttsync::mqttsync-static)\n",
    )
    .unwrap();
    let build = tmp.path().join("cmake-build");
    run(Command::new("cmake")
        .arg("-S")
        .arg(&proj)
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())));
    run(Command::new("cmake").arg("--build").arg(&build));
    // CMake puts the imported library's directory in the build RPATH.
    check_runs(&build.join("use_shared"), None);
    assert!(needed(&build.join("use_shared")).contains("[libmqttsync.so.0]"));
    check_runs(&build.join("use_static"), None);
    assert!(!needed(&build.join("use_static")).contains("libmqttsync"));

    // A version that does not match is refused.
    let bad = tmp.path().join("cmake-bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.13)\nproject(x C)\nfind_package(mqttsync 1.0 CONFIG REQUIRED)\n",
    )
    .unwrap();
    let status = Command::new("cmake")
        .arg("-S")
        .arg(&bad)
        .arg("-B")
        .arg(tmp.path().join("cmake-bad-build"))
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
        .output()
        .unwrap();
    assert!(
        !status.status.success(),
        "find_package(mqttsync 1.0) must fail for 0.x"
    );
}
