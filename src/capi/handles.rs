//! What every C client API (`MQTTClient.h`, `MQTTAsync.h`) needs about handles and errors:
//! the validity table that turns handles into live objects, the raw-context wrapper passed
//! back to C callbacks, and the mapping of Rust errors to Paho return codes.
//!
//! A handle is an opaque number, never a pointer: every call looks it up before touching
//! anything, so a destroyed or garbage handle gives an error code instead of a crash.
//! Numbers come from one process-wide counter and are never reused, so a handle of one API
//! passed to the other API is not found either.

use std::collections::BTreeMap;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::types::*;
use crate::{Error, Step};

/// Next handle number, shared by every [`Registry`] (multiplied by 16 and offset, so handles
/// look like aligned pointers and are never NULL).
static NEXT_HANDLE: AtomicUsize = AtomicUsize::new(1);

/// Live handles of one API by number. A validity table only: lookups clone the `Arc` and
/// release the lock at once.
pub struct Registry<T> {
    map: Mutex<BTreeMap<usize, Arc<T>>>,
}

impl<T> Registry<T> {
    /// An empty table (usable in a `static`).
    pub const fn new() -> Self {
        Registry {
            map: Mutex::new(BTreeMap::new()),
        }
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<usize, Arc<T>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `v` and returns its new handle (never NULL, never reused).
    pub fn insert(&self, v: Arc<T>) -> *mut c_void {
        let n = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        let key = 0x1_0000usize.wrapping_add(n.wrapping_mul(16));
        self.map().insert(key, v);
        key as *mut c_void
    }

    /// The live object behind `h`, or `None` for NULL, destroyed or garbage values. Never
    /// dereferences `h`.
    pub fn get(&self, h: *mut c_void) -> Option<Arc<T>> {
        if h.is_null() {
            return None;
        }
        self.map().get(&(h as usize)).cloned()
    }

    /// Unregisters `h`; returns the object if it was live.
    pub fn remove(&self, h: *mut c_void) -> Option<Arc<T>> {
        self.map().remove(&(h as usize))
    }
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A raw pointer passed back to C callbacks (the application's context).
#[derive(Clone, Copy, Debug)]
pub struct SendPtr(pub *mut c_void);
// SAFETY: the pointer is the application's opaque callback context; mqttsync never
// dereferences it, it only hands it back to the application's callbacks (as Paho does from
// its own threads).
unsafe impl Send for SendPtr {}
// SAFETY: as above; never dereferenced.
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The NULL context.
    pub const NULL: SendPtr = SendPtr(std::ptr::null_mut());
}

/// Maps a Rust error to a Paho return code (the one place where this is decided; the
/// `MQTTCLIENT_*` and `MQTTASYNC_*` codes used here have the same values).
///
/// - not connected, connection lost, client closed: `MQTTCLIENT_DISCONNECTED` (-3);
/// - invalid topic (wildcards in a topic name, empty topic, bad filter):
///   `MQTTCLIENT_BAD_UTF8_STRING` (-5), the code Paho uses for bad topics;
/// - no room to queue a publish, or to take it into the session (and the store), within
///   the command timeout: `MQTTCLIENT_MAX_MESSAGES_INFLIGHT` (-4);
/// - persistence failures: `MQTTCLIENT_PERSISTENCE_ERROR` (-2);
/// - a refused CONNACK: its code (1-5 for MQTT 3, the reason code for MQTT 5);
/// - everything else (DNS, TCP, TLS, proxy, WebSocket, timeouts, protocol errors, bad
///   option values): `MQTTCLIENT_FAILURE` (-1).
pub fn error_code(e: &Error) -> c_int {
    match e {
        Error::NotConnected | Error::ConnectionLost(_) | Error::Closed => MQTTCLIENT_DISCONNECTED,
        Error::InvalidTopic { .. } => MQTTCLIENT_BAD_UTF8_STRING,
        Error::Timeout {
            step: Step::Queue, ..
        }
        | Error::Withdrawn => MQTTCLIENT_MAX_MESSAGES_INFLIGHT,
        Error::Persistence(_) => MQTTCLIENT_PERSISTENCE_ERROR,
        Error::ConnectionRefused { code, .. } => c_int::from(*code),
        _ => MQTTCLIENT_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn handles_are_unique_across_registries() {
        static A: Registry<u8> = Registry::new();
        static B: Registry<u8> = Registry::new();
        let a = A.insert(Arc::new(1));
        let b = B.insert(Arc::new(2));
        assert_ne!(a, b);
        assert!(B.get(a).is_none() && A.get(b).is_none());
        assert_eq!(A.get(a).map(|v| *v), Some(1));
        assert!(A.remove(a).is_some());
        assert!(A.get(a).is_none() && A.remove(a).is_none());
        assert!(A.get(std::ptr::null_mut()).is_none());
    }

    #[test]
    fn errors_map_to_paho_codes() {
        assert_eq!(error_code(&Error::NotConnected), MQTTCLIENT_DISCONNECTED);
        assert_eq!(
            error_code(&Error::Timeout {
                step: Step::Queue,
                after: Duration::ZERO
            }),
            MQTTCLIENT_MAX_MESSAGES_INFLIGHT
        );
        assert_eq!(
            error_code(&Error::InvalidTopic {
                topic: "a/+".into(),
                reason: String::new()
            }),
            MQTTCLIENT_BAD_UTF8_STRING
        );
        assert_eq!(
            error_code(&Error::Protocol(crate::SessionError::Protocol("x".into()))),
            MQTTCLIENT_FAILURE
        );
        assert_eq!(
            error_code(&Error::ConnectionLost(crate::LostCause::IoThreadPanicked)),
            MQTTCLIENT_DISCONNECTED
        );
        assert_eq!(
            error_code(&Error::from(crate::persist::PersistError::Closed)),
            MQTTCLIENT_PERSISTENCE_ERROR
        );
    }
}
