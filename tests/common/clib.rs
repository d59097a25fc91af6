//! Helpers shared by the tests that compile C code against mqttsync.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The crate's root directory.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `include/` of the crate.
pub fn include_dir() -> PathBuf {
    root().join("include")
}

/// `tests/c/` of the crate.
pub fn c_dir() -> PathBuf {
    root().join("tests/c")
}

/// Runs a command, panicking with its full output if it fails to start or exits non-zero.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// True if `prog` can be executed (`prog --version` succeeds).
pub fn have(prog: &str) -> bool {
    Command::new(prog)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Paths of the release static and shared libraries.
pub struct Libs {
    /// `libmqttsync.a`
    pub static_lib: PathBuf,
    /// `libmqttsync.so`
    pub shared_lib: PathBuf,
    /// What `rustc --print native-static-libs` reported for the static library.
    pub native_static_libs: Vec<String>,
}

/// The static link line that the packaging (pkg-config, CMake, README) documents for
/// `libmqttsync.a`: `rustc --print native-static-libs` plus OpenSSL, which the TLS transport
/// links. tests/packaging.rs checks that it covers what rustc reports.
pub const NATIVE_STATIC_LIBS: &[&str] = &[
    "-lssl",
    "-lcrypto",
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// The command that builds the C libraries, shared by the tests and scripts/install-c.sh
/// (so that they do not invalidate each other's build):
/// `cargo rustc --release --lib -- --print native-static-libs`.
pub fn cargo_build_c_libs() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root()).args([
        "rustc",
        "--release",
        "--lib",
        "--message-format=json-render-diagnostics",
    ]);
    if !cfg!(debug_assertions) {
        // Under `cargo test --release` the outer cargo may hold the release build lock:
        // build the C libraries in their own target directory.
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target"));
        cmd.arg("--target-dir").arg(target.join("c-libs"));
    }
    cmd.args(["--", "--print", "native-static-libs"]);
    cmd
}

/// Builds the libraries in release mode (once per test binary; cargo's own lock serialises
/// concurrent test binaries) and returns their paths, taken from cargo's JSON messages.
/// `cargo test` itself leaves only copies in `deps/`, so the tests never look there.
pub fn release_libs() -> &'static Libs {
    static LIBS: OnceLock<Libs> = OnceLock::new();
    LIBS.get_or_init(|| {
        let out = run(&mut cargo_build_c_libs());
        let text = String::from_utf8_lossy(&out.stdout);
        let mut static_lib = None;
        let mut shared_lib = None;
        for line in text.lines().filter(|l| l.contains("\"compiler-artifact\"")) {
            for piece in line.split('"') {
                if piece.ends_with("/libmqttsync.a") {
                    static_lib = Some(PathBuf::from(piece));
                } else if piece.ends_with("/libmqttsync.so") {
                    shared_lib = Some(PathBuf::from(piece));
                }
            }
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let native_static_libs = stderr
            .lines()
            .filter_map(|l| l.split("native-static-libs: ").nth(1))
            .next_back()
            .expect("rustc printed no native-static-libs line")
            .split_whitespace()
            .map(String::from)
            .collect();
        Libs {
            static_lib: static_lib.expect("cargo built no libmqttsync.a"),
            shared_lib: shared_lib.expect("cargo built no libmqttsync.so"),
            native_static_libs,
        }
    })
}

/// Installs the C library into `prefix` with scripts/install-c.sh (after building it
/// through [`release_libs`], so the script finds the build up to date).
pub fn install_c(prefix: &Path) {
    let libs = release_libs();
    let mut install = Command::new("sh");
    install.arg(root().join("scripts/install-c.sh")).arg(prefix);
    if !cfg!(debug_assertions) {
        // The target directory release_libs() used under `cargo test --release`:
        // <target>/c-libs/release/libmqttsync.a -> <target>/c-libs.
        if let Some(dir) = libs.static_lib.parent().and_then(Path::parent) {
            install.env("CARGO_TARGET_DIR", dir);
        }
    }
    run(&mut install);
}

/// Compiles `src` with `compiler` and the given flags into `out` and links it statically
/// against mqttsync.
pub fn build_c_program(compiler: &str, src: &Path, out: &Path, extra: &[&str]) {
    let libs = release_libs();
    let mut cmd = Command::new(compiler);
    cmd.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"])
        .args(extra)
        .arg("-I")
        .arg(include_dir())
        .arg(src)
        .arg("-o")
        .arg(out)
        .arg(&libs.static_lib)
        .args(NATIVE_STATIC_LIBS);
    run(&mut cmd);
}

/// Output of one program run.
pub struct Run {
    /// Exited by itself with status 0.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error (plus a note when it was killed at the deadline).
    pub stderr: String,
}

impl Run {
    /// Panics with the output unless the program exited with 0, its output ends with
    /// `failures: 0` and no sanitizer reported anything.
    #[track_caller]
    pub fn assert_clean(&self, what: &str) {
        assert!(
            self.ok && self.stdout.ends_with("failures: 0\n") && !self.stderr.contains("Sanitizer"),
            "{what} failed:\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `exe args` with a deadline (killed after it), collecting its output.
pub fn run_prog(exe: &Path, args: &[&str], envs: &[(&str, &str)], deadline: Duration) -> Run {
    let mut child = Command::new(exe)
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = t_out.join().unwrap_or_default();
    let mut stderr = t_err.join().unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\n[killed after {deadline:?}]"));
    }
    Run {
        ok: status.is_some_and(|s| s.success()),
        stdout,
        stderr,
    }
}

/// A directory for the executables of this test binary (kept for the whole run).
pub fn exe_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| super::run_subdir("exe"))
}

/// Serialises the builds (tests run in parallel and share executables).
pub fn build_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds `tests/c/<name>.c` against mqttsync's shared library (RPATH to a directory with
/// the `libmqttsync.so.0` soname link).
pub fn build_ours_shared(name: &str) -> PathBuf {
    build_shared_from(&c_dir().join(format!("{name}.c")), name, &[])
}

/// Builds the C source `src` (plus `extra` compiler arguments) against mqttsync's shared
/// library as [`build_ours_shared`] does; the executable is `<name>_ours_shared`.
pub fn build_shared_from(src: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let exe = exe_dir().join(format!("{name}_ours_shared"));
    let _one_at_a_time = build_lock();
    if !exe.exists() {
        let lib_dir = exe_dir().join("lib");
        std::fs::create_dir_all(&lib_dir).expect("lib dir");
        let so = lib_dir.join("libmqttsync.so.0");
        if !so.exists() {
            std::os::unix::fs::symlink(&release_libs().shared_lib, &so).expect("symlink");
        }
        run(Command::new("cc")
            .args(["-std=c99", "-D_POSIX_C_SOURCE=200809L", "-g", "-I"])
            .arg(include_dir())
            .args(extra)
            .arg(src)
            .arg("-o")
            .arg(&exe)
            .arg(&release_libs().shared_lib)
            .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
            .args(["-lpthread", "-lm"]));
    }
    exe
}

/// Builds `tests/c/<name>.c` against mqttsync's static library, with AddressSanitizer if
/// asked; the executable is `<name>_ours[_asan]`.
pub fn build_ours(name: &str, asan: bool) -> PathBuf {
    let exe = exe_dir().join(format!("{name}_ours{}", if asan { "_asan" } else { "" }));
    let _one_at_a_time = build_lock();
    if !exe.exists() {
        let mut flags = vec!["-D_POSIX_C_SOURCE=200809L"];
        if asan {
            flags.extend(["-fsanitize=address", "-fno-omit-frame-pointer"]);
        }
        build_c_program("cc", &c_dir().join(format!("{name}.c")), &exe, &flags);
    }
    exe
}

/// Builds `tests/c/<name>.c` against Eclipse Paho C's header and `-l<lib>`
/// (`paho-mqtt3c`, `paho-mqtt3as`, ...); the executable is `<name>_<lib>`.
pub fn build_paho(name: &str, lib: &str) -> PathBuf {
    let exe = exe_dir().join(format!("{name}_{lib}"));
    let _one_at_a_time = build_lock();
    if !exe.exists() {
        run(Command::new("cc")
            .args([
                "-std=c99",
                "-D_POSIX_C_SOURCE=200809L",
                "-g",
                "-I",
                "/usr/include",
            ])
            .arg(c_dir().join(format!("{name}.c")))
            .arg("-o")
            .arg(&exe)
            .args([&format!("-l{lib}"), "-lpthread"]));
    }
    exe
}
