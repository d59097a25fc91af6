//! Helpers shared by the Rust workers: the argument forms (same as the C drivers, see
//! `bench/c/bench_common.h`), clocks, CPU time, `/proc/self/status` and the RESULT line.

use std::time::{Duration, Instant};

/// How long an end-to-end run may go without a message before it counts as lost.
pub const STALL: Duration = Duration::from_secs(10);

/// One workload as given on the command line.
#[derive(Debug, Clone)]
pub enum Work {
    /// Publish-only for `secs`, then completion (acks, or the QoS 1 fence for QoS 0).
    Pub {
        qos: u8,
        size: usize,
        window: u16,
        secs: f64,
    },
    /// Publisher -> broker -> subscriber in one process; `cb` = callbacks, else receive.
    E2e {
        qos: u8,
        size: usize,
        window: u16,
        secs: f64,
        cb: bool,
    },
    /// QoS 1 round trips through the client's own subscription.
    Lat { count: usize },
    /// Connect + disconnect cycles for `secs`; `cb`: with callbacks set before connect.
    Conn { secs: f64, cb: bool },
    /// `n` idle connected clients.
    Idle { n: usize },
}

/// Parsed worker arguments: `WORKLOAD HOST PORT ARGS...`.
pub struct Args {
    pub host: String,
    pub port: u16,
    pub work: Work,
}

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse::<T>().map_err(|_| format!("bad {what}: {s:?}"))
}

impl Args {
    pub fn parse(a: &[String]) -> Result<Args, String> {
        if a.len() < 4 {
            return Err("usage: WORKLOAD HOST PORT ARGS...".into());
        }
        let host = a[1].clone();
        let port = num(&a[2], "port")?;
        let work = match (a[0].as_str(), a.len()) {
            ("pub", 7) => Work::Pub {
                qos: num(&a[3], "qos")?,
                size: num(&a[4], "size")?,
                window: num(&a[5], "window")?,
                secs: num(&a[6], "secs")?,
            },
            ("e2e", 8) => Work::E2e {
                qos: num(&a[3], "qos")?,
                size: num(&a[4], "size")?,
                window: num(&a[5], "window")?,
                secs: num(&a[6], "secs")?,
                cb: match a[7].as_str() {
                    "cb" => true,
                    "recv" => false,
                    m => return Err(format!("bad mode {m:?}")),
                },
            },
            ("lat", 4) => Work::Lat {
                count: num(&a[3], "count")?,
            },
            ("conn", 4) => Work::Conn {
                secs: num(&a[3], "secs")?,
                cb: false,
            },
            ("conn", 5) if a[4] == "cb" => Work::Conn {
                secs: num(&a[3], "secs")?,
                cb: true,
            },
            ("idle", 4) => Work::Idle {
                n: num(&a[3], "clients")?,
            },
            _ => return Err(format!("bad arguments: {a:?}")),
        };
        Ok(Args { host, port, work })
    }
}

/// Failure of a worker: printed to stderr by `main`, exit 1 (or 2 for `Unsupported`).
#[derive(Debug)]
pub enum Fail {
    /// The client's API has no such workload (exit 2).
    Unsupported(&'static str),
    /// Anything else (exit 1).
    Error(String),
}

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Fail {
        Fail::Error(e.to_string())
    }
}

pub fn fail<T>(msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Error(msg.into()))
}

/// User + system CPU time of the whole process (all threads), in microseconds.
pub fn cpu_us() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is always valid.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Memory and threads of this process (`/proc/self/status`).
#[derive(Clone, Copy)]
pub struct ProcMem {
    /// VmRSS, KiB.
    pub rss_kb: i64,
    /// RssAnon, KiB: private memory (heap, stacks), code pages excluded.
    pub anon_kb: i64,
    pub threads: i64,
}

pub fn proc_status() -> ProcMem {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(-1)
    };
    ProcMem {
        rss_kb: field("VmRSS:"),
        anon_kb: field("RssAnon:"),
        threads: field("Threads:"),
    }
}

/// q-quantile (0..1) of the values (sorted in place), nearest rank.
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((q * (v.len() - 1) as f64) + 0.5) as usize]
}

/// A cell also stops after 256 MiB of payload, so a client that queues without bound cannot
/// take gigabytes (the same cap for every client, C drivers included).
pub fn max_msgs(size: usize) -> u64 {
    ((256usize << 20) / size.max(1)) as u64
}

pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

pub fn print_throughput(msgs: u64, secs: f64, cpu: f64) {
    println!("RESULT msgs={msgs} secs={secs:.6} cpu_us={cpu:.1}");
}

pub fn print_latency(v: &mut [f64], cpu: f64) {
    let p10 = quantile(v, 0.1);
    let p50 = quantile(v, 0.5);
    let p99 = quantile(v, 0.99);
    // p10: the path itself, least touched by other load on a shared machine.
    println!(
        "RESULT p50_us={p50:.1} p99_us={p99:.1} cpu_us={cpu:.1} msgs={} p10_us={p10:.1}",
        v.len()
    );
}

pub fn print_conn(c: &mut [f64], d: &mut [f64]) {
    println!(
        "RESULT connect_us={:.1} disconnect_us={:.1} cycles={}",
        quantile(c, 0.5),
        quantile(d, 0.5),
        c.len()
    );
}

/// Connect cycles: at least 5, at most 2000, as many as fit in `secs`.
pub fn keep_going(i: usize, start: Instant, secs: f64) -> bool {
    i < 5 || (i < 2000 && start.elapsed().as_secs_f64() < secs)
}

pub fn print_idle(before: ProcMem, after: ProcMem) {
    println!(
        "RESULT rss0_kb={} rss_kb={} anon0_kb={} anon_kb={} threads0={} threads={}",
        before.rss_kb, after.rss_kb, before.anon_kb, after.anon_kb, before.threads, after.threads
    );
}

/// Latency: `count` round trips after the warm-up, or fewer once 3 s have passed (at least
/// 20): a client with 40 ms round trips would otherwise take minutes.
pub fn lat_going(i: usize, warm: usize, count: usize, start: Instant) -> bool {
    i < count + warm && (i < warm + 20 || start.elapsed() < Duration::from_secs(3))
}

/// Warm-up round trips before latency samples are kept.
pub fn warmup(count: usize) -> usize {
    (count / 10).min(50)
}

pub fn topic(client: &str) -> String {
    format!("bench/{client}/{}", std::process::id())
}

pub fn client_id(client: &str, role: &str, i: usize) -> String {
    format!("{client}-{}-{role}-{i}", std::process::id())
}
