//! Shared plumbing for every `extern "C"` function: the panic boundary, checks of Paho's
//! versioned structures, and allocation of memory that C code frees with `free()`.
//!
//! Conventions (all exports follow them):
//! - the body runs inside [`guard`], so a Rust panic becomes an error return, never an
//!   unwind into C;
//! - pointers are NULL-checked before use; versioned structures are checked with
//!   [`check_struct`] and only the fields their `struct_version` has are read
//!   ([`copy_versioned`]);
//! - outputs are written only on success;
//! - memory handed to C is allocated with `libc::malloc` (so C's `free` and
//!   `MQTTClient_free` both release it).

use std::mem::{size_of, MaybeUninit};
use std::ops::RangeInclusive;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use super::async_types::*;
use super::types::*;

/// Error code used when `malloc` fails. Paho uses the same value internally
/// (`PAHO_MEMORY_ERROR`, `Heap.h`); it is not one of the documented `MQTTCLIENT_*` codes.
pub const MQTTSYNC_MEMORY_ERROR: c_int = -99;

/// Runs `f`, turning a panic into `on_panic`. Every export's body goes through this.
///
/// The panic message is reported to the trace callback at `MQTTCLIENT_TRACE_FATAL`.
pub fn guard<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(non-string panic payload)");
            super::trace::trace(
                super::types::enums::MQTTCLIENT_TRACE_FATAL,
                &format!("mqttsync: internal panic caught at the C boundary: {what}"),
            );
            on_panic
        }
    }
}

/// Same as [`guard`] for functions returning an `int` code: a panic returns
/// `MQTTCLIENT_FAILURE`.
pub fn guard_rc(f: impl FnOnce() -> Result<(), c_int>) -> c_int {
    guard(MQTTCLIENT_FAILURE, || match f() {
        Ok(()) => MQTTCLIENT_SUCCESS,
        Err(rc) => rc,
    })
}

/// A Paho structure that starts with `char struct_id[4]; int struct_version;`.
///
/// # Safety
/// Implementors must be `#[repr(C)]`, start with exactly those two fields, and be valid
/// when all bytes are zero (integers, raw pointers, `Option<fn>`).
pub unsafe trait PahoStruct: Copy {
    /// The eyecatcher, e.g. `*b"MQTC"`.
    const ID: [u8; 4];
    /// The accepted `struct_version` values.
    const VERSIONS: RangeInclusive<c_int>;
    /// The number of leading bytes that a structure of version `v` has (the offset of the
    /// first field added after `v`, or the full size for the newest version).
    fn size_for_version(v: c_int) -> usize;
}

/// The common prefix of all [`PahoStruct`]s.
#[repr(C)]
#[derive(Clone, Copy)]
struct Header {
    struct_id: [c_char; 4],
    struct_version: c_int,
}

/// Checks a versioned Paho structure given by C: NULL gives `MQTTCLIENT_NULL_PARAMETER`;
/// a wrong eyecatcher or a `struct_version` outside `T::VERSIONS` gives
/// `MQTTCLIENT_BAD_STRUCTURE`. Returns the version.
///
/// Reads only the 8-byte header, so it is sound for structures of older (smaller) versions.
///
/// # Safety
/// `p` is NULL or points to at least 8 readable bytes.
pub unsafe fn check_struct<T: PahoStruct>(p: *const T) -> Result<c_int, c_int> {
    if p.is_null() {
        return Err(MQTTCLIENT_NULL_PARAMETER);
    }
    // SAFETY: p is non-NULL and, per the contract, points to at least the 8-byte header
    // common to all PahoStructs; read_unaligned needs no alignment.
    let h = unsafe { ptr::read_unaligned(p.cast::<Header>()) };
    let id_ok = h
        .struct_id
        .iter()
        .zip(T::ID.iter())
        .all(|(&a, &b)| a as u8 == b);
    if !id_ok || !T::VERSIONS.contains(&h.struct_version) {
        return Err(MQTTCLIENT_BAD_STRUCTURE);
    }
    Ok(h.struct_version)
}

/// Checks `p` with [`check_struct`] and copies the fields its version has into a full-size
/// value whose newer fields are zero. Returns the copy and the version.
///
/// A C program built against an older header passes a smaller structure; this never reads
/// past the end of it. Callers must still interpret fields according to the version
/// (a zero `maxInflightMessages` from a v5 structure means "absent", not 0).
///
/// # Safety
/// `p` is NULL or points to a structure whose `struct_version` bytes are readable (as C
/// guarantees for the version it declares).
pub unsafe fn copy_versioned<T: PahoStruct>(p: *const T) -> Result<(T, c_int), c_int> {
    // SAFETY: forwarded contract.
    let v = unsafe { check_struct(p)? };
    let n = T::size_for_version(v).min(size_of::<T>());
    let mut out = MaybeUninit::<T>::zeroed();
    // SAFETY: `p` has at least `n` readable bytes for version `v`; `out` has size_of::<T>()
    // >= n writable bytes; the regions cannot overlap (out is a fresh local).
    unsafe {
        ptr::copy_nonoverlapping(p.cast::<u8>(), out.as_mut_ptr().cast::<u8>(), n);
        // SAFETY: all-zero bytes are valid for T (PahoStruct contract), and the first n
        // bytes were copied from a valid T prefix.
        Ok((out.assume_init(), v))
    }
}

macro_rules! paho_struct {
    ($t:ty, $id:expr, $versions:expr, [$($v:expr => $first_new_field:ident),* $(,)?]) => {
        // SAFETY: the type is repr(C), begins with struct_id/struct_version and contains
        // only integers, raw pointers and Option<fn> (valid when zeroed).
        unsafe impl PahoStruct for $t {
            const ID: [u8; 4] = *$id;
            const VERSIONS: RangeInclusive<c_int> = $versions;
            #[allow(unreachable_patterns)]
            fn size_for_version(v: c_int) -> usize {
                match v {
                    $($v => ::std::mem::offset_of!($t, $first_new_field),)*
                    _ => size_of::<$t>(),
                }
            }
        }
    };
}

paho_struct!(MQTTClient_connectOptions, b"MQTC", 0..=8, [
    0 => ssl, 1 => serverURIcount, 2 => MQTTVersion, 3 => returned, 4 => binarypwd,
    5 => maxInflightMessages, 6 => httpHeaders, 7 => httpProxy,
]);
paho_struct!(MQTTClient_willOptions, b"MQTW", 0..=1, [0 => payload]);
paho_struct!(MQTTClient_SSLOptions, b"MQTS", 0..=5, [
    0 => sslVersion, 1 => verify, 2 => ssl_error_cb, 3 => ssl_psk_cb, 4 => protos,
]);
paho_struct!(MQTTClient_createOptions, b"MQCO", 0..=0, []);
paho_struct!(MQTTClient_message, b"MQTM", 0..=1, [0 => properties]);
paho_struct!(MQTTClient_init_options, b"MQTG", 0..=0, []);
paho_struct!(MQTTSubscribe_options, b"MQSO", 0..=0, []);

// MQTTAsync.h. Connect options versions 0 and 1 have the `ssl` field but Paho does not read
// it (nor `serverURIs`) before version 1 and 2; the readers check the version.
paho_struct!(MQTTAsync_connectOptions, b"MQTC", 0..=8, [
    0 => serverURIcount, 1 => serverURIcount, 2 => MQTTVersion, 3 => automaticReconnect,
    4 => binarypwd, 5 => cleanstart, 6 => httpHeaders, 7 => httpProxy,
]);
paho_struct!(MQTTAsync_responseOptions, b"MQTR", 0..=1, [0 => onSuccess5]);
paho_struct!(MQTTAsync_disconnectOptions, b"MQTD", 0..=1, [0 => properties]);
paho_struct!(MQTTAsync_createOptions, b"MQCO", 0..=2, [
    0 => MQTTVersion, 1 => allowDisconnectedSendAtAnyTime,
]);
paho_struct!(MQTTAsync_willOptions, b"MQTW", 0..=1, [0 => payload]);
paho_struct!(MQTTAsync_SSLOptions, b"MQTS", 0..=5, [
    0 => sslVersion, 1 => verify, 2 => ssl_error_cb, 3 => ssl_psk_cb, 4 => protos,
]);
paho_struct!(MQTTAsync_message, b"MQTM", 0..=1, [0 => properties]);
paho_struct!(MQTTAsync_init_options, b"MQTG", 0..=0, []);

/// `malloc(n)` that never asks for 0 bytes (so a successful result is never NULL).
pub fn c_malloc(n: usize) -> Result<*mut c_void, c_int> {
    // SAFETY: malloc has no preconditions; the result is checked for NULL.
    let p = unsafe { libc::malloc(n.max(1)) };
    if p.is_null() {
        Err(MQTTSYNC_MEMORY_ERROR)
    } else {
        Ok(p)
    }
}

/// Copies `bytes` into a new `malloc` block with a NUL byte after them (C frees it).
pub fn c_bytes_dup(bytes: &[u8]) -> Result<*mut c_char, c_int> {
    let p = c_malloc(bytes.len() + 1)?.cast::<u8>();
    // SAFETY: p has bytes.len() + 1 writable bytes, freshly allocated, so no overlap.
    unsafe {
        ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        *p.add(bytes.len()) = 0;
    }
    Ok(p.cast::<c_char>())
}

/// Copies a string into a new NUL-terminated `malloc` block (C frees it). Embedded NULs
/// are kept (the C side then needs the length).
pub fn c_strdup(s: &str) -> Result<*mut c_char, c_int> {
    c_bytes_dup(s.as_bytes())
}

/// Allocates an array of `items.len()` elements with `malloc` and copies `items` into it.
pub fn c_array<T: Copy>(items: &[T]) -> Result<*mut T, c_int> {
    let bytes = size_of::<T>()
        .checked_mul(items.len())
        .ok_or(MQTTSYNC_MEMORY_ERROR)?;
    let p = c_malloc(bytes)?.cast::<T>();
    // SAFETY: p has room for items.len() elements (malloc aligns for any scalar type);
    // fresh allocation, so no overlap.
    unsafe { ptr::copy_nonoverlapping(items.as_ptr(), p, items.len()) };
    Ok(p)
}

/// Borrows a NUL-terminated C string as UTF-8: NULL gives `MQTTCLIENT_NULL_PARAMETER`,
/// invalid UTF-8 `MQTTCLIENT_BAD_UTF8_STRING`.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives `'a` and is not mutated meanwhile.
pub unsafe fn str_from_c<'a>(p: *const c_char) -> Result<&'a str, c_int> {
    if p.is_null() {
        return Err(MQTTCLIENT_NULL_PARAMETER);
    }
    // SAFETY: non-NULL and NUL-terminated per the contract.
    let c = unsafe { std::ffi::CStr::from_ptr(p) };
    c.to_str().map_err(|_| MQTTCLIENT_BAD_UTF8_STRING)
}

/// Borrows `len` bytes at `data` (NULL with `len == 0` is an empty slice). A negative
/// length gives `MQTTCLIENT_FAILURE`; NULL with a positive length gives
/// `MQTTCLIENT_NULL_PARAMETER`.
///
/// # Safety
/// If `len > 0`, `data` points to `len` readable bytes that outlive `'a`.
pub unsafe fn bytes_from_c<'a>(data: *const c_void, len: c_int) -> Result<&'a [u8], c_int> {
    let n = usize::try_from(len).map_err(|_| MQTTCLIENT_FAILURE)?;
    if n == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(MQTTCLIENT_NULL_PARAMETER);
    }
    // SAFETY: data is non-NULL and has n readable bytes per the contract.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) })
}

/// Writes `value` through `out` if `out` is not NULL.
///
/// # Safety
/// `out` is NULL or valid for a write of `T`.
pub unsafe fn write_out<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable per the contract.
        unsafe { out.write(value) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &[u8; 4]) -> [c_char; 4] {
        [
            s[0] as c_char,
            s[1] as c_char,
            s[2] as c_char,
            s[3] as c_char,
        ]
    }

    #[test]
    fn check_struct_validates_id_and_version() {
        let mut o = MQTTClient_createOptions {
            struct_id: ids(b"MQCO"),
            struct_version: 0,
            MQTTVersion: 5,
        };
        assert_eq!(unsafe { check_struct(&o) }, Ok(0));
        o.struct_version = 1;
        assert_eq!(unsafe { check_struct(&o) }, Err(MQTTCLIENT_BAD_STRUCTURE));
        o.struct_version = 0;
        o.struct_id = ids(b"MQTC");
        assert_eq!(unsafe { check_struct(&o) }, Err(MQTTCLIENT_BAD_STRUCTURE));
        let null: *const MQTTClient_createOptions = ptr::null();
        assert_eq!(
            unsafe { check_struct(null) },
            Err(MQTTCLIENT_NULL_PARAMETER)
        );
    }

    #[test]
    fn version_sizes_follow_paho_history() {
        // v0 connect options end before `ssl`; the newest version is the whole struct.
        assert_eq!(MQTTClient_connectOptions::size_for_version(0), 56);
        assert_eq!(
            MQTTClient_connectOptions::size_for_version(8),
            size_of::<MQTTClient_connectOptions>()
        );
        assert_eq!(MQTTClient_message::size_for_version(0), 40);
        assert_eq!(MQTTClient_willOptions::size_for_version(0), 32);
    }

    #[test]
    fn copy_versioned_reads_only_the_declared_prefix() {
        // A v0 message laid out in a buffer exactly as large as v0: copying must not read
        // past it (Miri/ASan would flag it) and must zero the properties.
        #[repr(C)]
        struct V0 {
            struct_id: [c_char; 4],
            struct_version: c_int,
            payloadlen: c_int,
            payload: *mut c_void,
            qos: c_int,
            retained: c_int,
            dup: c_int,
            msgid: c_int,
        }
        let v0 = Box::new(V0 {
            struct_id: ids(b"MQTM"),
            struct_version: 0,
            payloadlen: 3,
            payload: ptr::null_mut(),
            qos: 1,
            retained: 1,
            dup: 0,
            msgid: 7,
        });
        assert_eq!(size_of::<V0>(), MQTTClient_message::size_for_version(0));
        let p = (&*v0 as *const V0).cast::<MQTTClient_message>();
        let (m, v) = unsafe { copy_versioned(p) }.unwrap();
        assert_eq!(v, 0);
        assert_eq!((m.payloadlen, m.qos, m.retained, m.msgid), (3, 1, 1, 7));
        assert_eq!(m.properties.count, 0);
        assert!(m.properties.array.is_null());
    }

    #[test]
    fn guard_turns_panic_into_value() {
        assert_eq!(guard(-1, || -> i32 { panic!("boom") }), -1);
        assert_eq!(guard_rc(|| Err(-8)), -8);
        assert_eq!(guard_rc(|| Ok(())), 0);
    }
}
