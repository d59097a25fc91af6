//! Directories kept for a whole run of one test binary (built C programs, the test PKI).
//!
//! A `TempDir` held in a `static` is never dropped: the test harness exits without running
//! destructors, so every run used to leave its built programs in `/tmp` (hundreds of MB per
//! run of the C tests; a long day of test runs filled the disk). Here every such directory
//! lives under `<target>/tmp/runs/<pid>`, which is removed when the process exits (`atexit`),
//! and the directory of a run that was killed is removed by the next test binary that starts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `<target>/tmp/runs`: one subdirectory per running test process.
fn runs_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("runs")
}

/// The process that made [`run_dir`]; a forked child must not remove it at its exit.
static OWNER: OnceLock<(u32, PathBuf)> = OnceLock::new();

extern "C" fn remove_at_exit() {
    if let Some((pid, dir)) = OWNER.get() {
        if *pid == std::process::id() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Removes the directories of test processes that no longer exist.
fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// This process's run directory, made (and older runs' swept) on first use.
pub fn run_dir() -> &'static Path {
    &OWNER
        .get_or_init(|| {
            let root = runs_root();
            sweep(&root);
            let dir = root.join(std::process::id().to_string());
            // A directory of an earlier process with the same id is stale.
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("run dir");
            // SAFETY: `remove_at_exit` is a plain `extern "C" fn()` that only reads a
            // fully initialised `OnceLock` and removes files; registering it has no other
            // precondition.
            let rc = unsafe { libc::atexit(remove_at_exit) };
            assert_eq!(rc, 0, "atexit");
            (std::process::id(), dir)
        })
        .1
}

/// A new directory inside [`run_dir`] named after `prefix`, kept until the run ends.
pub fn run_subdir(prefix: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .tempdir_in(run_dir())
        .expect("run subdir")
        .keep()
}

/// Every file under `dir`, at any depth (none when `dir` does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
