//! Library-wide C functions that need no client: `MQTTClient_strerror`,
//! `MQTTClient_getVersionInfo`, `MQTTClient_global_init`, tracing, and the free functions.

use std::cell::UnsafeCell;
use std::io::Write;
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;

use super::ffi::{check_struct, guard};
use super::properties::free_properties;
use super::trace;
use super::types::enums::*;
use super::types::*;

macro_rules! cs {
    ($s:expr) => {
        concat!($s, "\0").as_ptr().cast::<c_char>()
    };
}

thread_local! {
    /// Per-thread buffer for "Unknown error code N" (Paho uses one static buffer for the
    /// whole process, which two threads can overwrite under each other).
    static STRERROR_BUF: UnsafeCell<[u8; 40]> = const { UnsafeCell::new([0; 40]) };
}

/// Returns a text for a return code: Paho's wording for the `MQTTCLIENT_*` codes and
/// "Unknown error code N" for anything else (as Paho does; its header says NULL, its code
/// never returns NULL).
///
/// Ownership: do not free the result. Known codes give static strings. Unknown codes give a
/// per-thread buffer that stays valid until the same thread calls `MQTTClient_strerror`
/// again (or exits), so the function is thread-safe. Any thread.
#[no_mangle]
pub extern "C" fn MQTTClient_strerror(code: c_int) -> *const c_char {
    guard(cs!("Unknown error code"), || match code {
        MQTTCLIENT_SUCCESS => cs!("Success"),
        MQTTCLIENT_FAILURE => cs!("Failure"),
        MQTTCLIENT_DISCONNECTED => cs!("Disconnected"),
        MQTTCLIENT_MAX_MESSAGES_INFLIGHT => cs!("Maximum in-flight messages amount reached"),
        MQTTCLIENT_BAD_UTF8_STRING => cs!("Invalid UTF8 string"),
        MQTTCLIENT_NULL_PARAMETER => cs!("Invalid (NULL) parameter"),
        MQTTCLIENT_TOPICNAME_TRUNCATED => {
            cs!("Topic containing NULL characters has been truncated")
        }
        MQTTCLIENT_BAD_STRUCTURE => cs!("Bad structure"),
        MQTTCLIENT_BAD_QOS => cs!("Invalid QoS value"),
        MQTTCLIENT_SSL_NOT_SUPPORTED => cs!("SSL is not supported"),
        MQTTCLIENT_BAD_MQTT_VERSION => cs!("Unrecognized MQTT version"),
        MQTTCLIENT_BAD_PROTOCOL => cs!("Invalid protocol scheme"),
        MQTTCLIENT_BAD_MQTT_OPTION => cs!("Options for wrong MQTT version"),
        MQTTCLIENT_WRONG_MQTT_VERSION => cs!("Client created for another version of MQTT"),
        MQTTCLIENT_0_LEN_WILL_TOPIC => cs!("Zero length will topic on connect"),
        _ => STRERROR_BUF.with(|cell| {
            let buf = cell.get();
            // SAFETY: the buffer belongs to this thread and no reference to it is alive
            // (earlier results are raw pointers the C caller holds; overwriting them is the
            // documented behaviour). 40 bytes hold the longest text (35 bytes) and a NUL.
            let b = unsafe { &mut *buf };
            let mut w = &mut b[..39];
            let _ = write!(w, "Unknown error code {code}");
            let used = 39 - w.len();
            b[used] = 0;
            b.as_ptr().cast::<c_char>()
        }),
    })
}

/// `Sync` wrapper for the version table (it holds raw pointers to static strings).
struct VersionTable(UnsafeCell<[MQTTClient_nameValue; 4]>);
// SAFETY: the table is never written by this library; C receives a non-const pointer only
// because Paho's prototype says so (writing through it is undefined, as for Paho's own
// static table).
unsafe impl Sync for VersionTable {}

static VERSION_INFO: VersionTable = VersionTable(UnsafeCell::new([
    MQTTClient_nameValue {
        name: cs!("Product name"),
        value: cs!("mqttsync (Eclipse Paho C MQTTClient compatible)"),
    },
    MQTTClient_nameValue {
        name: cs!("Version"),
        value: cs!(env!("CARGO_PKG_VERSION")),
    },
    MQTTClient_nameValue {
        name: cs!("Paho C API"),
        value: cs!("1.3.12"),
    },
    MQTTClient_nameValue {
        name: ptr::null(),
        value: ptr::null(),
    },
]));

/// Returns a static array of name/value pairs describing the library ("Product name",
/// "Version", "Paho C API"), ending with an entry whose `name` is NULL.
///
/// Ownership: static; do not free or modify. Any thread.
#[no_mangle]
pub extern "C" fn MQTTClient_getVersionInfo() -> *mut MQTTClient_nameValue {
    VERSION_INFO.0.get().cast::<MQTTClient_nameValue>()
}

/// Global initialisation (optional). Checks the structure (eyecatcher `MQTG`, version 0)
/// and otherwise does nothing: mqttsync has no global state to set up, and OpenSSL
/// initialises itself, so `do_openssl_init` has no effect. NULL or a bad structure is
/// reported to the trace callback and ignored (the function returns nothing, as in Paho).
///
/// Threads: any thread, any time (Paho requires it before any client exists; mqttsync does
/// not care).
///
/// # Safety
/// `inits` is NULL or points to a readable `MQTTClient_init_options`.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_global_init(inits: *mut MQTTClient_init_options) {
    guard((), || {
        // SAFETY: NULL or readable per the contract.
        if let Err(rc) = unsafe { check_struct(inits.cast_const()) } {
            trace::trace(
                MQTTCLIENT_TRACE_ERROR,
                &format!("MQTTClient_global_init: invalid init options ({rc}), ignored"),
            );
        }
    })
}

/// Sets the level of trace lines passed to the trace callback: lines at `level` or above
/// are delivered (1 = maximum detail ... 7 = fatal only). Default `MQTTCLIENT_TRACE_MINIMUM`.
/// What each level adds: `MQTTCLIENT_TRACE_ERROR` and above, failures (connect, TLS,
/// persistence, callbacks); `MQTTCLIENT_TRACE_PROTOCOL`, one line per MQTT packet sent
/// (`<client id> -> PUBLISH id 2 QoS 1 retain 0 dup 0 payload 6 bytes (20 bytes)`) or
/// received (`<client id> <- PUBACK id 2 (4 bytes)`); `MQTTCLIENT_TRACE_MINIMUM`, connect
/// attempts with the server URI and their outcome; `MQTTCLIENT_TRACE_MEDIUM`, each TCP
/// address tried and the TLS protocol and cipher agreed; `MQTTCLIENT_TRACE_MAXIMUM`, a
/// second line per packet with topic names, filters, user names and property identifiers.
/// Payloads, passwords and keys are never traced, at any level (only lengths).
/// Process-wide; any thread; returns nothing.
#[no_mangle]
pub extern "C" fn MQTTClient_setTraceLevel(level: MQTTCLIENT_TRACE_LEVELS) {
    guard((), || trace::set_level(level))
}

/// Sets the process-wide trace callback (NULL turns tracing off; no line is formatted
/// then). The callback runs on the thread that produced the line (an application thread in
/// connect/publish/subscribe, or a client's I/O thread), possibly on several threads at
/// once; the message belongs to the library and is valid only during the call; the
/// callback must not call any MQTTClient function. Any thread; returns nothing.
#[no_mangle]
pub extern "C" fn MQTTClient_setTraceCallback(callback: MQTTClient_traceCallback) {
    guard((), || trace::set_callback(callback))
}

/// Frees memory allocated by the library and given to the application (topic names,
/// delivery token arrays). Equivalent to C's `free()`; NULL is ignored. Any thread.
///
/// # Safety
/// `ptr` is NULL or was allocated by this library (or with `malloc`) and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_free(ptr: *mut c_void) {
    // SAFETY: malloc'd or NULL per the contract; free(NULL) is a no-op.
    guard((), || unsafe { libc::free(ptr) })
}

/// Allocates memory that `MQTTClient_free` (or `free`) releases, e.g. for buffers that a
/// user persistence hands to the library. Returns NULL when out of memory. (Added in
/// Paho 1.3.13; provided for compatibility.) Any thread.
#[no_mangle]
pub extern "C" fn MQTTClient_malloc(size: usize) -> *mut c_void {
    // SAFETY: malloc has no preconditions.
    guard(ptr::null_mut(), || unsafe { libc::malloc(size) })
}

/// Frees a message received from the library (`MQTTClient_receive`, `messageArrived`):
/// its payload, its properties and the structure, then sets `*msg` to NULL. Does not free
/// the topic name (use `MQTTClient_free`). NULL or `*msg == NULL` is ignored. Any thread.
///
/// A QoS 1/2 message from `MQTTClient_receive` that is still unacknowledged is
/// acknowledged to the server now (PUBACK / PUBREC): the application has done with it.
/// (Paho acknowledges before `receive` returns; see `MQTTClient_receive`.)
///
/// # Safety
/// `msg` is NULL or points to NULL or to a message allocated by this library.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_freeMessage(msg: *mut *mut MQTTClient_message) {
    guard((), || {
        if msg.is_null() {
            return;
        }
        // SAFETY: msg is non-NULL and points to a valid pointer per the contract.
        let m = unsafe { *msg };
        if m.is_null() {
            return;
        }
        super::client::message_freed(m as usize);
        // SAFETY: m was allocated by this library (malloc'd struct, malloc'd payload and
        // properties); it is not used after being freed and *msg is reset.
        unsafe {
            free_properties(&mut (*m).properties);
            libc::free((*m).payload);
            libc::free(m.cast());
            *msg = ptr::null_mut();
        }
    })
}

/// Frees the memory held by an `MQTTResponse` returned by an MQTT 5 call: the
/// `reasonCodes` array and the `properties` (list and structure). Takes the structure by
/// value, so the caller's copy still holds the (now dangling) pointers. Any thread.
///
/// # Safety
/// `response` was returned by this library and not freed before.
#[no_mangle]
pub unsafe extern "C" fn MQTTResponse_free(response: MQTTResponse) {
    guard((), || {
        // SAFETY: both pointers are NULL or were malloc'd by this library (contract).
        unsafe {
            if response.reasonCodeCount > 0 && !response.reasonCodes.is_null() {
                libc::free(response.reasonCodes.cast());
            }
            if !response.properties.is_null() {
                free_properties(&mut *response.properties);
                libc::free(response.properties.cast());
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn s(p: *const c_char) -> String {
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    #[test]
    fn strerror_known_and_unknown() {
        assert_eq!(s(MQTTClient_strerror(-3)), "Disconnected");
        assert_eq!(s(MQTTClient_strerror(-2)), "Unknown error code -2");
        assert_eq!(
            s(MQTTClient_strerror(i32::MIN)),
            "Unknown error code -2147483648"
        );
        // Another thread's unknown code does not overwrite this thread's buffer.
        let mine = MQTTClient_strerror(12345);
        std::thread::spawn(|| {
            let _ = MQTTClient_strerror(999);
        })
        .join()
        .unwrap();
        assert_eq!(s(mine), "Unknown error code 12345");
    }

    #[test]
    fn version_info_is_null_terminated() {
        let mut p = MQTTClient_getVersionInfo();
        let mut names = Vec::new();
        unsafe {
            while !(*p).name.is_null() {
                names.push((s((*p).name), s((*p).value)));
                p = p.add(1);
            }
        }
        assert_eq!(
            names[1],
            ("Version".into(), env!("CARGO_PKG_VERSION").into())
        );
        assert_eq!(names.len(), 3);
    }
}
