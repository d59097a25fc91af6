//! Crate-internal trace hook: the protocol and connection lines that Paho's
//! `MQTTClient_setTraceCallback` users expect, without a global `log` logger.
//!
//! Library code calls the functions here next to its `log::trace!` lines. Each first checks
//! one atomic (the threshold, [`OFF`] unless a sink is installed), so a disabled trace costs
//! a load and a compare and formats nothing. The only sink today is the C API's trace
//! callback (`capi::trace` installs it with the level of `MQTTClient_setTraceLevel`).
//!
//! Levels are Paho's `MQTTCLIENT_TRACE_*` numbers (1 = most detail, 7 = fatal): connect
//! attempts at [`MINIMUM`], every packet sent or received at [`PROTOCOL`] (type, packet id,
//! QoS, flags, length), topic names, filters and property identifiers at [`MAXIMUM`].
//! Payloads are never traced, at any level: only their length.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::RwLock;

use crate::proto::{codec, Packet, Properties, ProtocolVersion, Publish};

/// Paho's `MQTTCLIENT_TRACE_MAXIMUM`: everything.
pub(crate) const MAXIMUM: i32 = 1;
/// Paho's `MQTTCLIENT_TRACE_MEDIUM`: transport steps (addresses tried, TLS outcome).
pub(crate) const MEDIUM: i32 = 2;
/// Paho's `MQTTCLIENT_TRACE_MINIMUM`: connect attempts and their outcome.
pub(crate) const MINIMUM: i32 = 3;
/// Paho's `MQTTCLIENT_TRACE_PROTOCOL`: one line per MQTT packet in or out.
pub(crate) const PROTOCOL: i32 = 4;
/// Threshold when no sink is installed: no level reaches it.
const OFF: i32 = i32::MAX;

/// Held by unit tests that install a sink (here and in `capi::trace`): one at a time.
#[cfg(test)]
pub(crate) static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Where lines go: `(level, line)`. Runs on the thread that produced the line.
pub(crate) type Sink = fn(i32, &str);

static THRESHOLD: AtomicI32 = AtomicI32::new(OFF);
static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Installs (or with `None` removes) the sink; lines at `level` or above reach it.
pub(crate) fn install(sink: Option<Sink>, level: i32) {
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = sink;
    THRESHOLD.store(if sink.is_some() { level } else { OFF }, Ordering::Relaxed);
}

/// True if a line at `level` would reach the sink.
#[inline]
pub(crate) fn enabled(level: i32) -> bool {
    level >= THRESHOLD.load(Ordering::Relaxed)
}

/// Sends a line at `level` to the sink, if enabled.
#[inline]
pub(crate) fn emit(level: i32, args: fmt::Arguments<'_>) {
    if enabled(level) {
        emit_now(level, args);
    }
}

#[cold]
fn emit_now(level: i32, args: fmt::Arguments<'_>) {
    let sink = *SINK.read().unwrap_or_else(|e| e.into_inner());
    if let Some(sink) = sink {
        sink(level, &args.to_string());
    }
}

/// A packet received by the client labelled `id` (its client identifier).
#[inline]
pub(crate) fn packet_in(id: &str, version: ProtocolVersion, packet: &Packet) {
    if enabled(PROTOCOL) {
        packet_line(id, "<-", version, packet, None);
    }
}

/// A packet handed to the transport by the client labelled `id`.
#[inline]
pub(crate) fn packet_out(id: &str, version: ProtocolVersion, packet: &Packet) {
    if enabled(PROTOCOL) {
        packet_line(id, "->", version, packet, None);
    }
}

/// A stored QoS 1/2 PUBLISH written straight from its flow, with `dup` as sent.
#[inline]
pub(crate) fn publish_out(id: &str, version: ProtocolVersion, publish: &Publish, dup: bool) {
    if enabled(PROTOCOL) {
        // Only when tracing: a copy so that the common formatter sees the packet as sent.
        let mut p = publish.clone();
        p.dup = dup;
        packet_line(id, "->", version, &Packet::Publish(p), Some(dup));
    }
}

/// One PROTOCOL line for `packet`, and at MAXIMUM a second with its details.
#[cold]
fn packet_line(id: &str, dir: &str, version: ProtocolVersion, packet: &Packet, dup: Option<bool>) {
    let mut line = String::with_capacity(96);
    let who = if id.is_empty() { "(no client id)" } else { id };
    let _ = write!(line, "{who} {dir} {}", packet.name());
    summary(&mut line, version, packet, dup);
    match codec::encoded_len(packet, version) {
        Ok(n) => {
            let _ = write!(line, " ({n} bytes)");
        }
        Err(_) => line.push_str(" (not encodable)"),
    }
    emit_now(PROTOCOL, format_args!("{line}"));
    if enabled(MAXIMUM) {
        let mut more = String::with_capacity(96);
        details(&mut more, packet);
        if !more.is_empty() {
            emit_now(
                MAXIMUM,
                format_args!("{who} {dir} {} details:{more}", packet.name()),
            );
        }
    }
}

/// The PROTOCOL part: packet id, QoS, flags, codes. Never payload bytes.
fn summary(out: &mut String, version: ProtocolVersion, packet: &Packet, dup: Option<bool>) {
    let v5 = version.is_v5();
    let _ = match packet {
        Packet::Connect(c) => write!(
            out,
            " MQTT {} clean {} keepalive {} will {} user {} password {}",
            match c.protocol {
                ProtocolVersion::V31 => "3.1",
                ProtocolVersion::V311 => "3.1.1",
                ProtocolVersion::V5 => "5",
            },
            u8::from(c.clean_start),
            c.keep_alive,
            u8::from(c.will.is_some()),
            u8::from(c.username.is_some()),
            u8::from(c.password.is_some()),
        ),
        Packet::ConnAck(a) => write!(
            out,
            " code {:#04x} session present {}",
            a.code,
            u8::from(a.session_present)
        ),
        Packet::Publish(p) => {
            let _ = write!(out, " id {} QoS {}", p.pkid, p.qos as u8);
            write!(
                out,
                " retain {} dup {} payload {} bytes",
                u8::from(p.retain),
                u8::from(dup.unwrap_or(p.dup)),
                p.payload.len()
            )
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            if v5 {
                write!(out, " id {} reason {:#04x}", r.pkid, r.reason)
            } else {
                write!(out, " id {}", r.pkid)
            }
        }
        Packet::Subscribe(s) => {
            let qos: Vec<u8> = s.filters.iter().map(|f| f.options.qos as u8).collect();
            write!(
                out,
                " id {} filters {} QoS {:?}",
                s.pkid,
                s.filters.len(),
                qos
            )
        }
        Packet::SubAck(a) => write!(out, " id {} codes {:02x?}", a.pkid, a.return_codes),
        Packet::Unsubscribe(u) => write!(out, " id {} filters {}", u.pkid, u.filters.len()),
        Packet::UnsubAck(a) if v5 => {
            write!(out, " id {} codes {:02x?}", a.pkid, a.reason_codes)
        }
        Packet::UnsubAck(a) => write!(out, " id {}", a.pkid),
        Packet::Disconnect(d) if v5 => write!(out, " reason {:#04x}", d.reason),
        Packet::Auth(a) => write!(out, " reason {:#04x}", a.reason),
        Packet::PingReq | Packet::PingResp | Packet::Disconnect(_) => Ok(()),
    };
}

/// The MAXIMUM part: topic names, filters, user names (never passwords), property
/// identifiers. Never payload bytes or property values.
fn details(out: &mut String, packet: &Packet) {
    let _ = match packet {
        Packet::Connect(c) => {
            let _ = write!(out, " client id {:?}", c.client_id);
            if let Some(u) = &c.username {
                let _ = write!(out, ", user {u:?}");
            }
            if let Some(w) = &c.will {
                let _ = write!(
                    out,
                    ", will topic {:?} QoS {} retain {} payload {} bytes",
                    w.topic,
                    w.qos as u8,
                    u8::from(w.retain),
                    w.payload.len()
                );
            }
            props(out, &c.properties)
        }
        Packet::ConnAck(a) => props(out, &a.properties),
        Packet::Publish(p) => {
            let _ = write!(out, " topic {:?}", p.topic);
            props(out, &p.properties)
        }
        Packet::Subscribe(s) => {
            for f in &s.filters {
                let _ = write!(
                    out,
                    " {:?} (QoS {}{}{}, retain handling {})",
                    f.filter,
                    f.options.qos as u8,
                    if f.options.no_local { ", no local" } else { "" },
                    if f.options.retain_as_published {
                        ", retain as published"
                    } else {
                        ""
                    },
                    f.options.retain_handling as u8
                );
            }
            props(out, &s.properties)
        }
        Packet::Unsubscribe(u) => {
            for f in &u.filters {
                let _ = write!(out, " {f:?}");
            }
            props(out, &u.properties)
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            props(out, &r.properties)
        }
        Packet::SubAck(a) => props(out, &a.properties),
        Packet::UnsubAck(a) => props(out, &a.properties),
        Packet::Disconnect(d) => props(out, &d.properties),
        Packet::Auth(a) => props(out, &a.properties),
        Packet::PingReq | Packet::PingResp => Ok(()),
    };
}

fn props(out: &mut String, p: &Properties) -> fmt::Result {
    if p.is_empty() {
        return Ok(());
    }
    out.push_str(" properties");
    for prop in p.iter() {
        write!(out, " {:#04x}", prop.id())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{PubResp, QoS, SubscribeFilter, SubscribeOptions};
    use std::sync::Mutex;

    static LINES: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());

    fn record(level: i32, line: &str) {
        LINES.lock().unwrap().push((level, line.to_string()));
    }

    /// One test for everything global (the threshold and sink are process-wide).
    #[test]
    fn lines_by_level_never_with_payloads() {
        let publish = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: "a/b".into(),
            pkid: 7,
            payload: bytes::Bytes::from_static(b"SECRET-PAYLOAD"),
            properties: Properties::new(),
        };
        let v = ProtocolVersion::V311;
        // Off: nothing, and `enabled` says so.
        let _global = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        install(None, MAXIMUM);
        assert!(!enabled(MAXIMUM) && !enabled(7));
        packet_out("tht-c1", v, &Packet::Publish(publish.clone()));
        assert!(LINES.lock().unwrap().is_empty());

        install(Some(record), PROTOCOL);
        assert!(enabled(PROTOCOL) && !enabled(MINIMUM));
        emit(MINIMUM, format_args!("filtered"));
        publish_out("tht-c1", v, &publish, true);
        packet_in("tht-c1", v, &Packet::PubAck(PubResp::new(7)));
        let sub = crate::proto::Subscribe {
            pkid: 3,
            filters: vec![SubscribeFilter {
                filter: "x/#".into(),
                options: SubscribeOptions {
                    qos: QoS::ExactlyOnce,
                    ..Default::default()
                },
            }],
            properties: Properties::new(),
        };
        packet_out("", v, &Packet::Subscribe(sub.clone()));
        // Lines of other tests running at the same time are left out.
        let ours = |l: &(i32, String)| {
            l.1.starts_with("tht-") || l.1.starts_with("(no client id) -> SUBSCRIBE id 3 ")
        };
        {
            let lines: Vec<(i32, String)> = LINES
                .lock()
                .unwrap()
                .iter()
                .filter(|l| ours(l))
                .cloned()
                .collect();
            let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
            assert_eq!(
                text,
                [
                    "tht-c1 -> PUBLISH id 7 QoS 1 retain 1 dup 1 payload 14 bytes (23 bytes)",
                    "tht-c1 <- PUBACK id 7 (4 bytes)",
                    "(no client id) -> SUBSCRIBE id 3 filters 1 QoS [2] (10 bytes)",
                ]
            );
            assert!(lines.iter().all(|(l, _)| *l == PROTOCOL));
        }
        LINES.lock().unwrap().clear();

        install(Some(record), MAXIMUM);
        packet_out("tht-c1", v, &Packet::Publish(publish.clone()));
        packet_out("tht-c1", v, &Packet::Subscribe(sub));
        emit(MEDIUM, format_args!("tht-medium line"));
        install(None, MAXIMUM);
        emit(7, format_args!("tht-after removal"));
        let lines: Vec<(i32, String)> = LINES
            .lock()
            .unwrap()
            .iter()
            .filter(|l| ours(l))
            .cloned()
            .collect();
        let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            text,
            [
                "tht-c1 -> PUBLISH id 7 QoS 1 retain 1 dup 0 payload 14 bytes (23 bytes)",
                "tht-c1 -> PUBLISH details: topic \"a/b\"",
                "tht-c1 -> SUBSCRIBE id 3 filters 1 QoS [2] (10 bytes)",
                "tht-c1 -> SUBSCRIBE details: \"x/#\" (QoS 2, retain handling 0)",
                "tht-medium line",
            ]
        );
        assert_eq!(lines[1].0, MAXIMUM);
        assert!(lines.iter().all(|(_, l)| !l.contains("SECRET")));
    }
}
