//! The runner: one mosquitto, the C drivers, every workload on every client, the tables
//! (medians over repetitions; ratios to the raw ceiling computed within each repetition)
//! and the chart.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BENCH_DIR: &str = env!("CARGO_MANIFEST_DIR");

struct Opts {
    quick: bool,
    reps: usize,
    secs: f64,
    lat_count: usize,
    idle_sizes: Vec<usize>,
    out: PathBuf,
    command: String,
    /// `--rows TEXT`: only the throughput rows whose label contains TEXT (no latency,
    /// connect or idle-client sections).
    rows: Option<String>,
    /// `--clients a,b`: only these clients (the raw ceiling always runs).
    clients: Option<Vec<String>>,
    /// `--sections throughput,latency,idle`: only these parts of the run (default: all, or
    /// throughput alone with `--rows`).
    sections: Option<Vec<String>>,
}

impl Opts {
    fn section(&self, name: &str) -> bool {
        match &self.sections {
            Some(v) => v.iter().any(|s| s == name),
            None => name == "throughput" || self.rows.is_none(),
        }
    }
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut o = Opts {
        quick,
        reps: if quick { 1 } else { 3 },
        secs: if quick { 0.1 } else { 1.0 },
        lat_count: if quick { 20 } else { 5000 },
        idle_sizes: if quick {
            vec![1, 10]
        } else {
            vec![1, 100, 1000, 10_000]
        },
        out: if quick {
            std::env::temp_dir().join(format!("mqttbench-quick-{}", std::process::id()))
        } else {
            Path::new(BENCH_DIR).join("results")
        },
        command: String::new(),
        rows: None,
        clients: None,
        sections: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--quick" => {}
            "--reps" => o.reps = val(a)?.parse().map_err(|_| "bad --reps")?,
            "--secs" => o.secs = val(a)?.parse().map_err(|_| "bad --secs")?,
            "--out" => o.out = PathBuf::from(val(a)?),
            "--rows" => o.rows = Some(val(a)?),
            "--clients" => o.clients = Some(val(a)?.split(',').map(String::from).collect()),
            "--sections" => {
                let v: Vec<String> = val(a)?.split(',').map(String::from).collect();
                if let Some(x) = v
                    .iter()
                    .find(|x| !["throughput", "latency", "idle"].contains(&x.as_str()))
                {
                    return Err(format!("unknown section {x} (throughput, latency, idle)"));
                }
                o.sections = Some(v);
            }
            x => return Err(format!("unknown option {x}")),
        }
    }
    o.reps = o.reps.max(1);
    Ok(o)
}

// ---- clients -----------------------------------------------------------------------------

struct Client {
    name: &'static str,
    cmd: Vec<String>,
}

fn run_cmd(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// Builds the C drivers into `work` and lists every client, the ceiling first.
fn clients(work: &Path) -> Result<Vec<Client>, String> {
    let c_dir = Path::new(BENCH_DIR).join("c");
    let exe = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .display()
        .to_string();
    let rust = |name: &'static str| Client {
        name,
        cmd: vec![exe.clone(), "worker".into(), name.into()],
    };
    let paho = work.join("paho_bench");
    run_cmd(
        Command::new(cc())
            .args(["-O2", "-o"])
            .arg(&paho)
            .arg(c_dir.join("paho_bench.c"))
            .args(["-lpaho-mqtt3c", "-lpthread"]),
        "building bench/c/paho_bench.c against Paho C (libpaho-mqtt-dev)",
    )?;
    let paho_async = work.join("paho_async_bench");
    run_cmd(
        Command::new(cc())
            .args(["-O2", "-o"])
            .arg(&paho_async)
            .arg(c_dir.join("async_bench.c"))
            .args(["-lpaho-mqtt3as", "-lpthread"]),
        "building bench/c/async_bench.c against Paho C's MQTTAsync (libpaho-mqtt-dev)",
    )?;
    let mosq = work.join("mosq_bench");
    run_cmd(
        Command::new(cc())
            .args(["-O2", "-o"])
            .arg(&mosq)
            .arg(c_dir.join("mosq_bench.c"))
            .args(["-lmosquitto", "-lpthread"]),
        "building bench/c/mosq_bench.c (libmosquitto-dev)",
    )?;
    let mut v = vec![rust("raw"), rust("mqttsync")];

    // ==== HOOK: mqttsync's C API column ======================================================
    // When the repository has its Paho-compatible header (include/MQTTClient.h), the very
    // same bench/c/paho_bench.c is compiled against it and libmqttsync (built here, release)
    // and becomes the "mqttsync-c" column. Nothing else needs to change.
    let root = Path::new(BENCH_DIR).join("..");
    if root.join("include/MQTTClient.h").exists() {
        let built = build_libmqttsync(&root)?;
        // The library's soname is libmqttsync.so.0: give the loader that name.
        let lib_dir = work.join("lib");
        std::fs::create_dir_all(&lib_dir).map_err(|e| format!("{}: {e}", lib_dir.display()))?;
        for name in ["libmqttsync.so", "libmqttsync.so.0"] {
            let link = lib_dir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(built.join("libmqttsync.so"), &link)
                .map_err(|e| format!("{}: {e}", link.display()))?;
        }
        let ours = work.join("mqttsync_c_bench");
        run_cmd(
            Command::new(cc())
                .args(["-O2", "-o"])
                .arg(&ours)
                .arg("-I")
                .arg(root.join("include"))
                .arg(c_dir.join("paho_bench.c"))
                .arg(format!("-L{}", lib_dir.display()))
                .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
                .args(["-lmqttsync", "-lpthread", "-ldl", "-lm"]),
            "building bench/c/paho_bench.c against mqttsync's include/MQTTClient.h",
        )?;
        v.push(Client {
            name: "mqttsync-c",
            cmd: vec![ours.display().to_string()],
        });
        // The same for the asynchronous API: bench/c/async_bench.c against our
        // include/MQTTAsync.h is "mqttsync-async" (Paho's libpaho-mqtt3as is "paho-async").
        if root.join("include/MQTTAsync.h").exists() {
            let ours = work.join("mqttsync_async_bench");
            run_cmd(
                Command::new(cc())
                    .args(["-O2", "-o"])
                    .arg(&ours)
                    .arg("-I")
                    .arg(root.join("include"))
                    .arg(c_dir.join("async_bench.c"))
                    .arg(format!("-L{}", lib_dir.display()))
                    .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
                    .args(["-lmqttsync", "-lpthread", "-ldl", "-lm"]),
                "building bench/c/async_bench.c against mqttsync's include/MQTTAsync.h",
            )?;
            v.push(Client {
                name: "mqttsync-async",
                cmd: vec![ours.display().to_string()],
            });
        }
    }
    // ==========================================================================================

    v.push(Client {
        name: "paho-c",
        cmd: vec![paho.display().to_string()],
    });
    v.push(Client {
        name: "paho-async",
        cmd: vec![paho_async.display().to_string()],
    });
    v.push(Client {
        name: "libmosquitto",
        cmd: vec![mosq.display().to_string()],
    });
    v.push(rust("rumqttc"));
    Ok(v)
}

/// `cargo build --release --lib` of the main crate; returns the directory of libmqttsync.so.
fn build_libmqttsync(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_cmd(
        Command::new(cargo)
            .args(["build", "--release", "--lib", "--manifest-path"])
            .arg(root.join("Cargo.toml")),
        "cargo build --release --lib (libmqttsync)",
    )?;
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let dir = target.join("release");
    if dir.join("libmqttsync.so").exists() {
        Ok(dir)
    } else {
        Err(format!("no libmqttsync.so in {}", dir.display()))
    }
}

// ---- broker ------------------------------------------------------------------------------

struct Broker {
    child: Child,
    port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mosquitto_path() -> PathBuf {
    for p in ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("mosquitto")
}

fn start_broker(work: &Path) -> Result<Broker, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let conf = work.join("mosquitto.conf");
    // Tuned not to throttle: no Nagle, no in-flight or queue limit, errors only.
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n\
             max_inflight_messages 0\nmax_queued_messages 0\nmax_queued_bytes 0\n\
             max_inflight_bytes 0\npersistence false\nlog_dest stderr\nlog_type error\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let log = std::fs::File::create(work.join("mosquitto.log")).map_err(|e| e.to_string())?;
    let child = Command::new(mosquitto_path())
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting mosquitto: {e} (apt-get install mosquitto)"))?;
    let mut b = Broker { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(b);
        }
        if let Ok(Some(st)) = b.child.try_wait() {
            let log = std::fs::read_to_string(work.join("mosquitto.log")).unwrap_or_default();
            return Err(format!("mosquitto exited ({st}): {log}"));
        }
        if Instant::now() > deadline {
            return Err("mosquitto did not listen within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lets 1000 clients (and the broker's 1000 sockets) fit.
fn raise_nofile() {
    // SAFETY: plain getrlimit/setrlimit on a struct we own.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

// ---- one run -----------------------------------------------------------------------------

type Fields = HashMap<String, f64>;

/// Runs one client process; Ok(None) when the workload is not in that client's API.
fn run_one(
    c: &Client,
    port: u16,
    workload: &str,
    rest: &[String],
    timeout: Duration,
) -> Result<Option<Fields>, String> {
    let mut cmd = Command::new(&c.cmd[0]);
    cmd.args(&c.cmd[1..])
        .arg(workload)
        .arg("127.0.0.1")
        .arg(port.to_string())
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!("{} {} {}", c.name, workload, rest.join(" "));
    let child = cmd.spawn().map_err(|e| format!("{what}: {e}"))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(timeout) {
        Ok(r) => r.map_err(|e| format!("{what}: {e}"))?,
        Err(_) => {
            // SAFETY: kill(2) of the child we spawned (still unreaped: the waiting thread
            // holds it), by its own pid.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            return Err(format!("{what}: no result within {timeout:?} (killed)"));
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(2) => return Ok(None),
        _ => {
            return Err(format!(
                "{what}: {} — {}",
                out.status,
                stderr.trim().lines().last().unwrap_or("(no message)")
            ))
        }
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| format!("{what}: no RESULT line in {stdout:?} / {stderr:?}"))?;
    let f = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| v.parse::<f64>().ok().map(|v| (k.to_string(), v)))
        .collect();
    Ok(Some(f))
}

fn field(f: &Fields, k: &str) -> Result<f64, String> {
    f.get(k).copied().ok_or_else(|| format!("result lacks {k}"))
}

// ---- workloads ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Kind {
    Pub { qos: u8, size: usize, window: u16 },
    E2e { qos: u8, cb: bool },
}

struct Row {
    label: String,
    kind: Kind,
}

const E2E_SIZE: usize = 64;
const E2E_WINDOW: u16 = 100;

fn rows(quick: bool) -> Vec<Row> {
    let mut v = Vec::new();
    let sizes: &[usize] = if quick { &[64] } else { &[64, 4096] };
    for &size in sizes {
        let s = if size == 64 { "64 B" } else { "4 KiB" };
        v.push(Row {
            label: format!("publish QoS 0, {s}"),
            kind: Kind::Pub {
                qos: 0,
                size,
                window: 100,
            },
        });
    }
    let windows: &[u16] = if quick { &[100] } else { &[10, 100, 1000] };
    for qos in [1u8, 2] {
        for &size in sizes {
            let s = if size == 64 { "64 B" } else { "4 KiB" };
            for &window in windows {
                v.push(Row {
                    label: format!("publish QoS {qos}, {s}, window {window}"),
                    kind: Kind::Pub { qos, size, window },
                });
            }
        }
    }
    for qos in [0u8, 1, 2] {
        for cb in [false, true] {
            v.push(Row {
                label: format!(
                    "end-to-end QoS {qos}, {}",
                    if cb { "callback" } else { "receive" }
                ),
                kind: Kind::E2e { qos, cb },
            });
        }
    }
    v
}

#[derive(Clone, Copy)]
struct Cell {
    rate: f64,
    ratio: f64,
    cpu_per_msg: f64,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1}k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            s.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let dpkg = |p: &str| sh("dpkg-query", &["-W", "-f=${Version}", p]);
    format!(
        "{cores} cores ({cpu}), Linux {}, loopback; {}; Paho C {} (Debian libpaho-mqtt1.3), \
         libmosquitto {}, rumqttc 0.24 (blocking), {}",
        sh("uname", &["-r"]),
        sh(&mosquitto_path().display().to_string(), &["-h"]),
        dpkg("libpaho-mqtt1.3"),
        dpkg("libmosquitto1"),
        sh("rustc", &["-V"]),
    )
}

// ---- main --------------------------------------------------------------------------------

pub fn main(args: &[String]) -> Result<(), String> {
    let mut o = parse(args)?;
    o.command = if o.quick {
        "./bench/run.sh --quick".into()
    } else {
        format!("./bench/run.sh{}", {
            let extra: Vec<&str> = args.iter().map(String::as_str).collect();
            if extra.is_empty() {
                String::new()
            } else {
                format!(" {}", extra.join(" "))
            }
        })
    };
    let started = Instant::now();
    raise_nofile();
    let work = std::env::temp_dir().join(format!("mqttbench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&o.out).map_err(|e| e.to_string())?;
    let mut clients = clients(&work)?;
    if let Some(keep) = &o.clients {
        clients.retain(|c| c.name == "raw" || keep.iter().any(|k| k == c.name));
    }
    let broker = start_broker(&work)?;
    let port = broker.port;
    let names: Vec<&str> = clients.iter().map(|c| c.name).collect();
    eprintln!(
        "mqttbench: broker on 127.0.0.1:{port}; clients: {}; {} repetition(s) of {} s per cell",
        names.join(", "),
        o.reps,
        o.secs
    );
    let timeout = Duration::from_secs_f64(o.secs + 90.0);
    let secs = format!("{}", o.secs);

    // Throughput rows: cells[row][client] = one Cell per repetition.
    let mut rows = rows(o.quick);
    if let Some(f) = &o.rows {
        rows.retain(|r| r.label.contains(f.as_str()));
    }
    if !o.section("throughput") {
        rows.clear();
    }
    let (lat_section, idle_section) = (o.section("latency"), o.section("idle"));
    let mut cells: Vec<Vec<Vec<Cell>>> = vec![vec![Vec::new(); clients.len()]; rows.len()];
    let mut lat: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); clients.len()];
    // (connect, disconnect, connect with callbacks set), one per repetition.
    let mut conn: Vec<Vec<(f64, f64, Option<f64>)>> = vec![Vec::new(); clients.len()];
    for rep in 0..o.reps {
        // raw e2e result of this repetition by QoS: the ceiling of both receive modes.
        let mut raw_e2e: HashMap<u8, Fields> = HashMap::new();
        for (ri, row) in rows.iter().enumerate() {
            let mut got: Vec<Option<Fields>> = vec![None; clients.len()];
            // Rotate the order within a repetition so no client always runs first.
            for k in 0..clients.len() {
                let ci = (k + rep + ri) % clients.len();
                let c = &clients[ci];
                let (workload, rest) = match row.kind {
                    Kind::Pub { qos, size, window } => (
                        "pub",
                        vec![
                            qos.to_string(),
                            size.to_string(),
                            window.to_string(),
                            secs.clone(),
                        ],
                    ),
                    Kind::E2e { qos, cb } => {
                        if c.name == "raw" {
                            if let Some(f) = raw_e2e.get(&qos) {
                                got[ci] = Some(f.clone());
                                continue;
                            }
                        }
                        (
                            "e2e",
                            vec![
                                qos.to_string(),
                                E2E_SIZE.to_string(),
                                E2E_WINDOW.to_string(),
                                secs.clone(),
                                if cb { "cb" } else { "recv" }.to_string(),
                            ],
                        )
                    }
                };
                let r = run_one(c, port, workload, &rest, timeout)?;
                if let (Kind::E2e { qos, .. }, "raw", Some(f)) = (row.kind, c.name, &r) {
                    raw_e2e.insert(qos, f.clone());
                }
                got[ci] = r;
            }
            let rate = |f: &Fields| -> Result<f64, String> {
                Ok(field(f, "msgs")? / field(f, "secs")?.max(1e-9))
            };
            let ceiling = match &got[0] {
                Some(f) => rate(f)?,
                None => return Err(format!("raw ceiling missing for {}", row.label)),
            };
            let mut line = format!("[rep {}/{}] {:<40}", rep + 1, o.reps, row.label);
            for (ci, g) in got.iter().enumerate() {
                if let Some(f) = g {
                    let r = rate(f)?;
                    cells[ri][ci].push(Cell {
                        rate: r,
                        ratio: r / ceiling,
                        cpu_per_msg: field(f, "cpu_us")? / field(f, "msgs")?.max(1.0),
                    });
                    line += &format!(" {}={}", clients[ci].name, fmt_rate(r));
                }
            }
            eprintln!("{line}");
        }
        for (ci, c) in clients.iter().enumerate().filter(|_| lat_section) {
            if let Some(f) = run_one(c, port, "lat", &[o.lat_count.to_string()], timeout)? {
                lat[ci].push((
                    field(&f, "p50_us")?,
                    field(&f, "p99_us")?,
                    field(&f, "msgs")?,
                ));
            }
            let with_cb = [secs.clone(), "cb".to_string()];
            let cb = match run_one(c, port, "conn", &with_cb, timeout)? {
                Some(f) => Some(field(&f, "connect_us")?),
                None => None,
            };
            if let Some(f) = run_one(c, port, "conn", std::slice::from_ref(&secs), timeout)? {
                conn[ci].push((field(&f, "connect_us")?, field(&f, "disconnect_us")?, cb));
            }
        }
        if lat_section {
            let mut line = format!(
                "[rep {}/{}] latency p50 / connect / with callbacks:",
                rep + 1,
                o.reps
            );
            for (ci, c) in clients.iter().enumerate() {
                let (l, k) = (lat[ci].last(), conn[ci].last());
                line += &format!(
                    " {}={:.0}/{:.0}/{}",
                    c.name,
                    l.map_or(f64::NAN, |x| x.0),
                    k.map_or(f64::NAN, |x| x.0),
                    k.and_then(|x| x.2)
                        .map_or("—".into(), |x| format!("{x:.0}"))
                );
            }
            eprintln!("{line}");
        }
    }
    // Idle clients: once (memory and thread counts barely vary between runs).
    // A client that cannot hold N connections is a finding, not a failed run: noted.
    let mut idle: Vec<Vec<Result<Option<Fields>, String>>> = vec![Vec::new(); clients.len()];
    for (ci, c) in clients.iter().enumerate().filter(|_| idle_section) {
        for &n in &o.idle_sizes {
            let r = run_one(c, port, "idle", &[n.to_string()], Duration::from_secs(300));
            if let Err(e) = &r {
                eprintln!("idle clients: {e}");
            }
            idle[ci].push(r);
        }
        eprintln!("idle clients: {} done", c.name);
    }
    drop(broker);

    let md = report(
        &o,
        &clients,
        &rows,
        &cells,
        &lat,
        &conn,
        &idle,
        started.elapsed(),
    );
    std::fs::File::create(o.out.join("latest.md"))
        .and_then(|mut f| f.write_all(md.as_bytes()))
        .map_err(|e| e.to_string())?;
    println!("{md}");
    let chart_rows: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    let values: Vec<Vec<Option<f64>>> = cells
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| median(&mut c.iter().map(|x| x.rate).collect::<Vec<_>>()))
                .collect()
        })
        .collect();
    let png = o.out.join("throughput.png");
    match crate::chart::draw(&png, &chart_rows, &names, &values, o.reps) {
        Ok(()) => eprintln!(
            "mqttbench: wrote {} and {}",
            o.out.join("latest.md").display(),
            png.display()
        ),
        Err(e) => eprintln!("mqttbench: chart not written: {e}"),
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn report(
    o: &Opts,
    clients: &[Client],
    rows: &[Row],
    cells: &[Vec<Vec<Cell>>],
    lat: &[Vec<(f64, f64, f64)>],
    conn: &[Vec<(f64, f64, Option<f64>)>],
    idle: &[Vec<Result<Option<Fields>, String>>],
    took: Duration,
) -> String {
    let mut s = String::new();
    let header = |first: &str| {
        let mut h = format!("| {first} |");
        let mut sep = "|---|".to_string();
        for c in clients {
            h += &format!(" {} |", c.name);
            sep += "---:|";
        }
        format!("{h}\n{sep}\n")
    };
    s += "# mqttsync benchmark results\n\n";
    s += &format!(
        "Produced by `{}` in {:.0} s. {} repetition(s), {} s of publishing per cell; \
         every cell is the median over repetitions.\n\n",
        o.command,
        took.as_secs_f64(),
        o.reps,
        o.secs
    );
    s += &format!("Machine: {}.\n\n", machine());
    s += "Broker: one mosquitto started by the runner: `set_tcp_nodelay true`, \
          `max_inflight_messages 0`, `max_queued_messages 0` (no limits), errors-only log. \
          Every client run is its own process. `raw` is the ceiling: pre-encoded PUBLISH \
          packets written with large `write` calls, same window, same completion rule.\n\n";
    s += "## Throughput (messages/s; in parentheses: ratio to raw, computed within each \
          repetition, median)\n\n";
    s += "Publish-only: nobody subscribes; a cell ends when every QoS 1/2 publish is \
          acknowledged (window = unacknowledged publishes allowed), or for QoS 0 when one QoS 1 \
          \"fence\" publish sent after them is acknowledged; QoS 0 publishes accepted but not \
          yet written are kept to 1000 where the library would queue without bound \
          (mqttsync, libmosquitto). Each cell publishes for the given time (or 256 MiB). End-to-end: publisher and subscriber \
          (two connections, one process), 64 B, window 100, subscription at the same QoS, every \
          message counted (a lost one fails the run); `receive` = a blocking receive call, \
          `callback` = message callback; the raw ceiling of both is the same hand-written \
          subscriber. — = not in that client's API.\n\n";
    s += &header("workload");
    for (ri, row) in rows.iter().enumerate() {
        s += &format!("| {} |", row.label);
        for (ci, _) in clients.iter().enumerate() {
            let v = &cells[ri][ci];
            let rate = median(&mut v.iter().map(|c| c.rate).collect::<Vec<_>>());
            let ratio = median(&mut v.iter().map(|c| c.ratio).collect::<Vec<_>>());
            s += &match (rate, ratio) {
                (Some(r), _) if ci == 0 => format!(" {} |", fmt_rate(r)),
                (Some(r), Some(q)) => format!(" {} ({:.2}) |", fmt_rate(r), q),
                _ => " — |".to_string(),
            };
        }
        s += "\n";
    }
    s += "\n![throughput](throughput.png)\n\n";

    s += "## Client CPU time per message (µs, user + system of the client process, all \
          threads; end-to-end rows include both the publishing and the subscribing client)\n\n";
    s += &header("workload");
    for (ri, row) in rows.iter().enumerate() {
        s += &format!("| {} |", row.label);
        for v in &cells[ri] {
            s += &match median(&mut v.iter().map(|c| c.cpu_per_msg).collect::<Vec<_>>()) {
                Some(x) => format!(" {x:.2} |"),
                None => " — |".into(),
            };
        }
        s += "\n";
    }

    s += &format!(
        "\n## QoS 1 round-trip latency and connect time\n\nLatency: µs from the publish \
         call to the message in hand, 64 B QoS 1 through the client's own subscription; up to \
         {} round trips per run, or as many as fit in 3 s (at least 20), after a warm-up; the \
         acknowledgement is awaited between round trips (untimed).\n\n",
        o.lat_count
    );
    s += "| client | p50 (µs) | p99 (µs) | round trips | connect (µs, median) | \
          connect, callbacks set (µs, median) | disconnect (µs, median) |\n\
          |---|---:|---:|---:|---:|---:|---:|\n";
    // Ratio to raw within each repetition, then the median (as for throughput).
    let ratio = |ci: usize, f: &dyn Fn(usize, usize) -> Option<f64>| {
        let mut v: Vec<f64> = (0..o.reps)
            .filter_map(|rep| Some(f(ci, rep)? / f(0, rep)?))
            .collect();
        median(&mut v)
    };
    for (ci, c) in clients.iter().enumerate() {
        let p50 = median(&mut lat[ci].iter().map(|x| x.0).collect::<Vec<_>>());
        let p99 = median(&mut lat[ci].iter().map(|x| x.1).collect::<Vec<_>>());
        let nlat = median(&mut lat[ci].iter().map(|x| x.2).collect::<Vec<_>>());
        let cn = median(&mut conn[ci].iter().map(|x| x.0).collect::<Vec<_>>());
        let dc = median(&mut conn[ci].iter().map(|x| x.1).collect::<Vec<_>>());
        let cb = median(&mut conn[ci].iter().filter_map(|x| x.2).collect::<Vec<_>>());
        let lat_r = ratio(ci, &|c, r| lat[c].get(r).map(|x| x.0));
        let cn_r = ratio(ci, &|c, r| conn[c].get(r).map(|x| x.0));
        // The raw socket has no callbacks: its plain connect is the ceiling of both.
        let cb_r = ratio(ci, &|c, r| {
            let x = conn[c].get(r)?;
            if c == 0 {
                Some(x.0)
            } else {
                x.2
            }
        });
        let f = |x: Option<f64>| x.map(|x| format!("{x:.0}")).unwrap_or("—".into());
        let fr = |x: Option<f64>, r: Option<f64>| match (x, r) {
            (Some(x), Some(r)) if ci > 0 => format!("{x:.0} ({r:.2}x)"),
            _ => f(x),
        };
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            c.name,
            fr(p50, lat_r),
            f(p99),
            f(nlat),
            fr(cn, cn_r),
            if ci == 0 { "—".into() } else { fr(cb, cb_r) },
            f(dc)
        );
    }
    s += "\nIn parentheses: ratio to raw, computed within each repetition, median. Connect = \
          create + TCP + CONNECT/CONNACK; with callbacks: message, connection-lost and delivery \
          callbacks set before connecting (Paho C: `MQTTClient_setCallbacks`; libmosquitto \
          always has them; the raw socket's plain connect is the ceiling of both); disconnect \
          = DISCONNECT + close + freeing the client (its threads finished).\n";

    s += "\n## Idle connected clients in one process (one run)\n\n\
          Each client with a message callback set (libmosquitto: always; rumqttc has none), \
          measured 1.5 s after the last connect. Per client = (RSS with N clients − RSS \
          before the first) / N; threads = the process's total with N clients connected.\n\n";
    s += "| client |";
    let mut sep = "|---|".to_string();
    for n in &o.idle_sizes {
        s += &format!(" {n}: KiB/client | {n}: RSS MiB | {n}: threads |");
        sep += "---:|---:|---:|";
    }
    s += &format!("\n{sep}\n");
    let mut notes = Vec::new();
    s += &idle_rows(clients, idle, &o.idle_sizes, |n, r| match r {
        Err(e) => {
            notes.push(e);
            format!(" fails ({}) | — | — |", notes.len())
        }
        Ok(None) => " — | — | — |".into(),
        Ok(Some(f)) => {
            let g = |k: &str| f.get(k).copied().unwrap_or(f64::NAN);
            format!(
                " {:.0} | {:.1} | {:.0} |",
                (g("rss_kb") - g("rss0_kb")) / n as f64,
                g("rss_kb") / 1024.0,
                g("threads")
            )
        }
    });
    for (i, e) in notes.iter().enumerate() {
        s += &format!("\n({}) {e}\n", i + 1);
    }
    s += "\nPrivate memory per client, KiB: the same runs, RssAnon (heap, stacks and other \
          anonymous memory) instead of RSS. RSS also counts the library's code pages the first \
          client touches (shared with every process using the library, and clean), which \
          dominate the per-client RSS at small N.\n\n| client |";
    let mut sep = "|---|".to_string();
    for n in &o.idle_sizes {
        s += &format!(" {n} |");
        sep += "---:|";
    }
    s += &format!("\n{sep}\n");
    s += &idle_rows(clients, idle, &o.idle_sizes, |n, r| match r {
        Ok(Some(f)) => {
            let g = |k: &str| f.get(k).copied().unwrap_or(f64::NAN);
            format!(" {:.1} |", (g("anon_kb") - g("anon0_kb")) / n as f64)
        }
        Err(_) => " fails |".into(),
        Ok(None) => " — |".into(),
    });
    s
}

/// The rows of an idle-clients table: one per client that ran the workload, one cell per
/// number of clients (`cell` gets the number and that run's result).
fn idle_rows(
    clients: &[Client],
    idle: &[Vec<Result<Option<Fields>, String>>],
    sizes: &[usize],
    mut cell: impl FnMut(usize, Result<Option<Fields>, String>) -> String,
) -> String {
    let mut s = String::new();
    for (ci, c) in clients.iter().enumerate() {
        if idle[ci].iter().all(|r| matches!(r, Ok(None))) {
            continue;
        }
        s += &format!("| {} |", c.name);
        for (k, &n) in sizes.iter().enumerate() {
            s += &cell(n, idle[ci].get(k).cloned().unwrap_or(Ok(None)));
        }
        s += "\n";
    }
    s
}
