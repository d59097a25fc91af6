//! Process-wide trace sink behind `MQTTClient_setTraceLevel` / `MQTTClient_setTraceCallback`.
//!
//! While a callback is set, this module also feeds the crate's trace hook
//! (`crate::tracehook`), which reports connect attempts (`MQTTCLIENT_TRACE_MINIMUM`), every
//! packet sent and received (`MQTTCLIENT_TRACE_PROTOCOL`: type, packet id, QoS, flags,
//! length) and their topics and property identifiers (`MQTTCLIENT_TRACE_MAXIMUM`); never
//! payload bytes.
//!
//! Paho's trace is process-wide, so this is too: one level and one callback, stored in
//! atomics. Library code reports through [`trace`] (or [`trace_enabled`] first, to skip
//! formatting): the line goes to the C callback if one is set and `level` is at or above
//! the trace level. Nothing here touches the `log` crate: installing a `log::Log` is the
//! application's choice, so the C layer does not install one. Client code that wants both
//! calls `log::...!` and [`trace`] side by side.
//!
//! The callback runs on whichever thread produced the line, with no library lock held; as
//! in Paho, it must not call the MQTT API. A callback that panics cannot exist (it is C), and
//! the message buffer passed to it is valid only during the call.

use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use super::types::enums::*;
use super::types::MQTTClient_traceCallback;

/// Paho's default trace level (`TRACE_MINIMUM`).
static LEVEL: AtomicI32 = AtomicI32::new(MQTTCLIENT_TRACE_MINIMUM);
/// The callback as an address; 0 = none.
static CALLBACK: AtomicUsize = AtomicUsize::new(0);

/// Sets the minimum level passed to the callback. Values outside 1..=7 are clamped.
pub fn set_level(level: c_int) {
    LEVEL.store(
        level.clamp(MQTTCLIENT_TRACE_MAXIMUM, MQTTCLIENT_TRACE_FATAL),
        Ordering::Relaxed,
    );
    feed_hook();
}

/// Points the crate's trace hook (packets, connect attempts) at [`trace`] while a callback
/// is set, at the current level; turns it off otherwise, so that library code formats
/// nothing when nobody listens.
fn feed_hook() {
    let on = CALLBACK.load(Ordering::Acquire) != 0;
    let sink: crate::tracehook::Sink = |level, line| trace(level, line);
    crate::tracehook::install(on.then_some(sink), level());
}

/// The current trace level.
pub fn level() -> c_int {
    LEVEL.load(Ordering::Relaxed)
}

/// Sets (or with `None` clears) the trace callback.
pub fn set_callback(cb: MQTTClient_traceCallback) {
    CALLBACK.store(cb.map_or(0, |f| f as usize), Ordering::Release);
    feed_hook();
}

fn callback() -> MQTTClient_traceCallback {
    let addr = CALLBACK.load(Ordering::Acquire);
    if addr == 0 {
        None
    } else {
        // SAFETY: the only non-zero values ever stored are addresses of
        // MQTTClient_traceCallback function pointers (set_callback).
        Some(unsafe {
            std::mem::transmute::<usize, unsafe extern "C" fn(c_int, *mut c_char)>(addr)
        })
    }
}

/// True if a line at `level` would reach a callback (use it to skip costly formatting).
pub fn trace_enabled(level: c_int) -> bool {
    CALLBACK.load(Ordering::Relaxed) != 0 && level >= LEVEL.load(Ordering::Relaxed)
}

/// Sends one trace line to the C callback, if one is set and `level` is at or above the
/// trace level. NUL bytes in `msg` are replaced by spaces. Never fails, never panics.
pub fn trace(level: c_int, msg: &str) {
    if level < LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let Some(cb) = callback() else { return };
    let mut buf: Vec<u8> = msg.bytes().map(|b| if b == 0 { b' ' } else { b }).collect();
    buf.push(0);
    // SAFETY: cb is a C function of the declared type; buf is NUL-terminated and lives
    // across the call. Paho passes `char*`, so the callee may even write into it.
    unsafe { cb(level, buf.as_mut_ptr().cast::<c_char>()) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    static SEEN: Mutex<Vec<(c_int, String)>> = Mutex::new(Vec::new());

    unsafe extern "C" fn record(level: c_int, msg: *mut c_char) {
        let s = unsafe { std::ffi::CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned();
        SEEN.lock().unwrap().push((level, s));
    }

    #[test]
    fn trace_filters_by_level_and_reaches_callback() {
        let _global = crate::tracehook::TEST_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        set_callback(Some(record));
        set_level(MQTTCLIENT_TRACE_ERROR);
        trace(MQTTCLIENT_TRACE_PROTOCOL, "filtered-out-line");
        trace(MQTTCLIENT_TRACE_SEVERE, "kept\0line");
        assert!(trace_enabled(MQTTCLIENT_TRACE_FATAL));
        assert!(!trace_enabled(MQTTCLIENT_TRACE_MINIMUM));
        set_callback(None);
        trace(MQTTCLIENT_TRACE_FATAL, "after-clear");
        set_level(MQTTCLIENT_TRACE_MINIMUM);
        let seen = SEEN.lock().unwrap();
        assert!(seen
            .iter()
            .all(|(_, m)| m != "filtered-out-line" && m != "after-clear"));
        assert!(seen
            .iter()
            .any(|(l, m)| *l == MQTTCLIENT_TRACE_SEVERE && m == "kept line"));
    }
}
