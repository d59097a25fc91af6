// Shared flag parsing for the `pub` and `sub` examples (mosquitto_pub / mosquitto_sub style).

use std::time::Duration;

use mqttsync::{ConnectOptions, Error, ProtocolVersion, QoS};

pub struct Common {
    pub host: String,
    pub port: u16,
    pub topic: Option<String>,
    pub qos: QoS,
    pub id: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub keepalive: u64,
    pub version: ProtocolVersion,
    pub verbose: bool,
    pub clean: bool,
}

/// A bad argument, as mosquitto_pub/mosquitto_sub report it: the error, a pointer to
/// `--help`, exit status 1.
pub fn fail(prog: &str, what: &str) -> ! {
    eprintln!("Error: {what}\n\nUse '{prog} --help' to see usage.");
    std::process::exit(1)
}

/// Reports a failed connect and exits with mosquitto_pub/sub's status: the CONNACK return
/// code (MQTT 3) or reason code (MQTT 5) when the broker refused, else 1.
pub fn connect_failed(e: &Error) -> ! {
    eprintln!("Connection error: {}", e.report());
    match e {
        Error::ConnectionRefused { code, .. } => std::process::exit(i32::from(*code)),
        _ => std::process::exit(1),
    }
}

pub fn usage(prog: &str, extra: &str) -> ! {
    eprintln!(
        "usage: {prog} [-h host] [-p port] -t topic [-q 0|1|2] [-i id] [-u user] [-P password] \
         [-k keepalive] [-V mqttv31|mqttv311|mqttv5] {extra}"
    );
    std::process::exit(2)
}

/// Parses the common flags; unknown flags are handed to `other(flag, value_source)`.
pub fn parse(
    prog: &str,
    extra: &str,
    mut other: impl FnMut(&str, &mut dyn FnMut() -> String) -> bool,
) -> Common {
    let mut c = Common {
        host: "localhost".into(),
        port: 1883,
        topic: None,
        qos: QoS::AtMostOnce,
        id: None,
        user: None,
        password: None,
        keepalive: 60,
        version: ProtocolVersion::V311,
        verbose: false,
        clean: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].clone();
        let mut next = || {
            i += 1;
            match args.get(i) {
                Some(v) => v.clone(),
                None => usage(prog, extra),
            }
        };
        match flag.as_str() {
            "-h" | "--host" => c.host = next(),
            "-p" | "--port" => {
                let v = next();
                c.port = v
                    .parse()
                    .ok()
                    .filter(|&p: &u16| p != 0)
                    .unwrap_or_else(|| fail(prog, &format!("Invalid port given: {v}")))
            }
            "-t" | "--topic" => c.topic = Some(next()),
            "-q" | "--qos" => {
                let v = next();
                c.qos = v
                    .parse::<u8>()
                    .ok()
                    .and_then(QoS::from_u8)
                    .unwrap_or_else(|| fail(prog, &format!("Invalid QoS given: {v}")))
            }
            "-i" | "--id" => c.id = Some(next()),
            "-u" | "--username" => c.user = Some(next()),
            "-P" | "--pw" => c.password = Some(next()),
            "-k" | "--keepalive" => {
                let v = next();
                c.keepalive = v
                    .parse()
                    .ok()
                    .filter(|&k: &u64| k == 0 || (5..=65535).contains(&k))
                    .unwrap_or_else(|| fail(prog, &format!("Invalid keepalive given: {v}")))
            }
            "-V" | "--protocol-version" => {
                c.version = match next().as_str() {
                    "mqttv31" | "31" => ProtocolVersion::V31,
                    "mqttv311" | "311" => ProtocolVersion::V311,
                    "mqttv5" | "5" => ProtocolVersion::V5,
                    other => fail(
                        prog,
                        &format!("Invalid protocol version argument given: {other}"),
                    ),
                }
            }
            "-v" | "--verbose" => c.verbose = true,
            "-c" | "--disable-clean-session" => c.clean = false,
            "--help" => usage(prog, extra),
            f => {
                if !other(f, &mut next) {
                    usage(prog, extra)
                }
            }
        }
        i += 1;
    }
    c
}

pub fn options(c: &Common, default_id: &str) -> ConnectOptions {
    let host = if c.host.contains(':') && !c.host.starts_with('[') {
        format!("[{}]", c.host)
    } else {
        c.host.clone()
    };
    let id =
        c.id.clone()
            .unwrap_or_else(|| format!("{default_id}-{}", std::process::id()));
    let mut o = ConnectOptions::new(&format!("tcp://{host}:{}", c.port))
        .client_id(id)
        .version(c.version)
        .clean_start(c.clean)
        .keep_alive(Duration::from_secs(c.keepalive))
        .connect_timeout(Duration::from_secs(10));
    if let Some(u) = &c.user {
        o = o.credentials(u.clone(), c.password.as_deref().map(str::as_bytes));
    }
    o
}
