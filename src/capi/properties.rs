//! `MQTTProperties_*`, `MQTTPropertyName`, `MQTTProperty_getType` and
//! `MQTTReasonCode_toString`, with Paho's semantics (`MQTTProperties.c`,
//! `MQTTReasonCodes.c` of Paho 1.3.x) plus NULL-safety: where Paho dereferences a NULL
//! argument, these return the "nothing found" value instead.

use std::os::raw::{c_char, c_int};
use std::ptr;

use super::ffi::{c_bytes_dup, guard, MQTTSYNC_MEMORY_ERROR};
use super::types::enums::*;
use super::types::*;
use crate::properties::{property_type, PropertyType};

macro_rules! cs {
    ($s:expr) => {
        concat!($s, "\0").as_ptr().cast::<c_char>()
    };
}

/// Largest value of an MQTT variable byte integer.
pub(crate) const VBI_MAX: u32 = 268_435_455;

/// Value returned by `MQTTProperties_getNumericValue(At)` when no property matches.
const NUMERIC_NOT_FOUND: c_int = -9_999_999;
/// Value returned by `MQTTProperties_getNumericValue(At)` for a non-numeric property.
const NUMERIC_WRONG_TYPE: c_int = -999_999;

/// The `MQTTPROPERTY_TYPE_*` of a property identifier, -1 if unknown.
pub(crate) fn c_property_type(id: c_int) -> c_int {
    let Ok(id) = u8::try_from(id) else { return -1 };
    match property_type(id) {
        Some(PropertyType::Byte) => MQTTPROPERTY_TYPE_BYTE,
        Some(PropertyType::TwoByteInteger) => MQTTPROPERTY_TYPE_TWO_BYTE_INTEGER,
        Some(PropertyType::FourByteInteger) => MQTTPROPERTY_TYPE_FOUR_BYTE_INTEGER,
        Some(PropertyType::VariableByteInteger) => MQTTPROPERTY_TYPE_VARIABLE_BYTE_INTEGER,
        Some(PropertyType::BinaryData) => MQTTPROPERTY_TYPE_BINARY_DATA,
        Some(PropertyType::Utf8String) => MQTTPROPERTY_TYPE_UTF_8_ENCODED_STRING,
        Some(PropertyType::Utf8StringPair) => MQTTPROPERTY_TYPE_UTF_8_STRING_PAIR,
        None => -1,
    }
}

/// Number of bytes of a variable byte integer (Paho's `MQTTPacket_VBIlen`).
pub(crate) fn vbi_len(v: u32) -> c_int {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// The properties of a C list as a slice (empty for NULL, a NULL array or a count <= 0).
///
/// # Safety
/// `props` is NULL or points to a valid `MQTTProperties` whose `array` holds `count`
/// initialised entries, alive and unchanged for `'a`.
pub(crate) unsafe fn props_slice<'a>(props: *const MQTTProperties) -> &'a [MQTTProperty] {
    if props.is_null() {
        return &[];
    }
    // SAFETY: non-NULL, valid per the contract.
    let p = unsafe { &*props };
    let n = usize::try_from(p.count).unwrap_or(0);
    if p.array.is_null() || n == 0 {
        return &[];
    }
    // SAFETY: array holds count initialised entries per the contract.
    unsafe { std::slice::from_raw_parts(p.array, n) }
}

fn is_string_type(t: c_int) -> bool {
    t == MQTTPROPERTY_TYPE_BINARY_DATA
        || t == MQTTPROPERTY_TYPE_UTF_8_ENCODED_STRING
        || t == MQTTPROPERTY_TYPE_UTF_8_STRING_PAIR
}

/// Checks a length-delimited value from C: 0..=65535 bytes, data non-NULL if len > 0.
fn len_string_ok(s: &MQTTLenString) -> bool {
    (0..=65_535).contains(&s.len) && (s.len == 0 || !s.data.is_null())
}

/// Duplicates `s.len` bytes of `s.data` (plus a NUL) with malloc.
///
/// # Safety
/// `s` passed [`len_string_ok`] and its data is readable.
unsafe fn dup_len_string(s: &MQTTLenString) -> Result<MQTTLenString, c_int> {
    let bytes: &[u8] = if s.len == 0 {
        &[]
    } else {
        // SAFETY: len_string_ok guarantees data is non-NULL for len > 0; the caller
        // guarantees len readable bytes.
        unsafe { std::slice::from_raw_parts(s.data.cast::<u8>(), s.len as usize) }
    };
    Ok(MQTTLenString {
        len: s.len,
        data: c_bytes_dup(bytes)?,
    })
}

/// The core of `MQTTProperties_add`, shared with the Rust conversions.
///
/// # Safety
/// `props` is a valid, writable list whose array (if any) was allocated with malloc;
/// `prop`'s string data (for string types) is readable for its length.
pub(crate) unsafe fn add_property(
    props: &mut MQTTProperties,
    prop: &MQTTProperty,
) -> Result<(), c_int> {
    let t = c_property_type(prop.identifier);
    if t < 0 {
        return Err(MQTT_INVALID_PROPERTY_ID);
    }
    let mut item = *prop;
    let len: c_int = if t == MQTTPROPERTY_TYPE_BYTE {
        1
    } else if t == MQTTPROPERTY_TYPE_TWO_BYTE_INTEGER {
        2
    } else if t == MQTTPROPERTY_TYPE_FOUR_BYTE_INTEGER {
        4
    } else if t == MQTTPROPERTY_TYPE_VARIABLE_BYTE_INTEGER {
        // SAFETY: integer4 is the member for this type; all union bit patterns are valid
        // for an unsigned int.
        let v = unsafe { prop.value.integer4 };
        if v > VBI_MAX {
            return Err(MQTTCLIENT_FAILURE);
        }
        vbi_len(v)
    } else {
        // SAFETY: string types use the `strings` member; raw pointers/ints accept any bits.
        let s = unsafe { prop.value.strings };
        let pair = t == MQTTPROPERTY_TYPE_UTF_8_STRING_PAIR;
        if !len_string_ok(&s.data) || (pair && !len_string_ok(&s.value)) {
            return Err(MQTTCLIENT_FAILURE);
        }
        // SAFETY: checked above; readable per the caller's contract.
        let data = unsafe { dup_len_string(&s.data)? };
        let value = if pair {
            // SAFETY: as above.
            match unsafe { dup_len_string(&s.value) } {
                Ok(v) => v,
                Err(e) => {
                    // SAFETY: data.data came from malloc just above.
                    unsafe { libc::free(data.data.cast()) };
                    return Err(e);
                }
            }
        } else {
            s.value
        };
        item.value.strings = MQTTProperty_strings { data, value };
        2 + s.data.len + if pair { 2 + s.value.len } else { 0 }
    };

    // Grow the array as Paho does (10 at first, then 10 more each time it is full).
    let count = props.count.max(0);
    if props.array.is_null() || count >= props.max_count {
        let new_max = if props.array.is_null() {
            10
        } else {
            count.saturating_add(10)
        };
        let bytes = (new_max as usize).saturating_mul(std::mem::size_of::<MQTTProperty>());
        // SAFETY: array is NULL or a malloc'd block (contract); realloc(NULL, n) = malloc.
        let grown = unsafe { libc::realloc(props.array.cast(), bytes) }.cast::<MQTTProperty>();
        if grown.is_null() {
            if is_string_type(t) {
                // SAFETY: these copies were malloc'd above and are not referenced elsewhere.
                unsafe {
                    libc::free(item.value.strings.data.data.cast());
                    if t == MQTTPROPERTY_TYPE_UTF_8_STRING_PAIR {
                        libc::free(item.value.strings.value.data.cast());
                    }
                }
            }
            return Err(MQTTSYNC_MEMORY_ERROR);
        }
        props.array = grown;
        props.max_count = new_max;
    }
    // SAFETY: count < max_count entries fit in the (possibly grown) array.
    unsafe { props.array.add(count as usize).write(item) };
    props.count = count + 1;
    props.length = props.length.saturating_add(len + 1);
    Ok(())
}

/// Frees the strings and array of a list and zeroes it (`MQTTProperties_free`).
///
/// # Safety
/// `props` is a valid list whose array and string data were allocated with malloc.
pub(crate) unsafe fn free_properties(props: &mut MQTTProperties) {
    // SAFETY: forwarded contract.
    for p in unsafe { props_slice(props) } {
        let t = c_property_type(p.identifier);
        if is_string_type(t) {
            // SAFETY: string-type entries own malloc'd data (and value for pairs).
            unsafe {
                libc::free(p.value.strings.data.data.cast());
                if t == MQTTPROPERTY_TYPE_UTF_8_STRING_PAIR {
                    libc::free(p.value.strings.value.data.cast());
                }
            }
        }
    }
    if !props.array.is_null() {
        // SAFETY: malloc'd per the contract.
        unsafe { libc::free(props.array.cast()) };
    }
    *props = MQTTProperties::empty();
}

fn find_at(props: &[MQTTProperty], propid: c_int, index: c_int) -> Option<usize> {
    let index = usize::try_from(index).ok()?;
    props
        .iter()
        .enumerate()
        .filter(|(_, p)| p.identifier == propid)
        .nth(index)
        .map(|(i, _)| i)
}

/// Returns the length of the properties structure when serialized on the wire, including
/// the variable byte integer that prefixes it: `length` plus the size of its encoding
/// (1 for NULL).
///
/// Ownership: borrows `props`. Threads: any thread, no locking (the caller must not
/// modify `props` concurrently).
///
/// # Safety
/// `props` is NULL or points to a valid `MQTTProperties`.
#[no_mangle]
pub unsafe extern "C" fn MQTTProperties_len(props: *mut MQTTProperties) -> c_int {
    guard(MQTTCLIENT_FAILURE, || {
        if props.is_null() {
            return 1;
        }
        // SAFETY: non-NULL and valid per the contract.
        let length = unsafe { (*props).length };
        length.saturating_add(vbi_len(u32::try_from(length).unwrap_or(0)))
    })
}

/// Adds a property to a list, copying its string/binary data (the caller keeps ownership
/// of `prop` and its data). The array grows as needed.
///
/// Returns 0 on success, `MQTT_INVALID_PROPERTY_ID` (-2) for an unknown identifier,
/// -1 (`MQTTCLIENT_FAILURE`) for a NULL argument or an invalid value (a negative length,
/// a length over 65535, NULL data with a positive length, or a variable byte integer over
/// 268435455 — Paho accepts these and later writes a malformed packet), and -99 when
/// memory runs out (the list is then unchanged).
///
/// Ownership: `props` owns the copies; release them with `MQTTProperties_free`.
/// Threads: any thread; the caller must not use `props` concurrently.
///
/// # Safety
/// `props` is NULL or a valid list (initialised with `MQTTProperties_initializer` or
/// filled by this library); `prop` is NULL or valid, with readable data for string types.
#[no_mangle]
pub unsafe extern "C" fn MQTTProperties_add(
    props: *mut MQTTProperties,
    prop: *const MQTTProperty,
) -> c_int {
    guard(MQTTCLIENT_FAILURE, || {
        if props.is_null() || prop.is_null() {
            return MQTTCLIENT_FAILURE;
        }
        // SAFETY: both non-NULL and valid per the contract; they cannot alias (one is a
        // list, the other a property the caller owns).
        match unsafe { add_property(&mut *props, &*prop) } {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    })
}

/// Frees all memory held by a property list (the copied strings and the array) and resets
/// it to empty. Does not free the `MQTTProperties` structure itself. NULL is ignored.
///
/// Threads: any thread; the caller must not use `props` concurrently.
///
/// # Safety
/// `props` is NULL or a valid list whose memory was allocated by this library
/// (`MQTTProperties_add`, `_copy`, or a received message).
#[no_mangle]
pub unsafe extern "C" fn MQTTProperties_free(props: *mut MQTTProperties) {
    guard((), || {
        if !props.is_null() {
            // SAFETY: non-NULL and valid per the contract.
            unsafe { free_properties(&mut *props) };
        }
    })
}

/// Returns a deep copy of a property list (an empty list for NULL). Entries that cannot
/// be copied (invalid, or out of memory) are skipped, as in Paho.
///
/// Ownership: the caller owns the copy and frees it with `MQTTProperties_free`.
/// Threads: any thread.
///
/// Threads: any thread, while no other thread modifies `props`.
///
/// # Safety
/// `props` is NULL or a valid list.
#[no_mangle]
pub unsafe extern "C" fn MQTTProperties_copy(props: *const MQTTProperties) -> MQTTProperties {
    guard(MQTTProperties::empty(), || {
        let mut out = MQTTProperties::empty();
        // SAFETY: valid or NULL per the contract.
        for p in unsafe { props_slice(props) } {
            // SAFETY: `out` is a list we own; `p` comes from a valid list.
            if let Err(rc) = unsafe { add_property(&mut out, p) } {
                super::trace::trace(
                    MQTTCLIENT_TRACE_ERROR,
                    &format!(
                        "MQTTProperties_copy: property {} skipped ({rc})",
                        p.identifier
                    ),
                );
            }
        }
        out
    })
}

/// Returns 1 if the list holds a property with this identifier, else 0 (also for NULL).
///
/// Threads: any thread, while no other thread modifies `props`.
///
/// # Safety
/// `props` is NULL or a valid list.
#[no_mangle]
pub unsafe extern "C" fn MQTTProperties_hasProperty(
    props: *mut MQTTProperties,
    propid: MQTTPropertyCodes,
) -> c_int {
    guard(0, || {
        // SAFETY: valid or NULL per the contract.
        c_int::from(
            unsafe { props_slice(props) }
                .iter()
                .any(|p| p.identifier == propid),
        )
    })
}

/// Returns how many properties with this identifier the list holds (0 for NULL).
///
/// Threads: any thread, while no other thread modifies `props`.
///
/// # Safety
/// `props` is NULL or a valid list.
#[no_mangle]
pub unsafe extern "C" fn MQTTProperties_propertyCount(
    props: *mut MQTTProperties,
    propid: MQTTPropertyCodes,
) -> c_int {
    guard(0, || {
        // SAFETY: valid or NULL per the contract.
        let n = unsafe { props_slice(props) }
            .iter()
            .filter(|p| p.identifier == propid)
            .count();
        c_int::try_from(n).unwrap_or(c_int::MAX)
    })
}

/// Returns the integer value of the `index`-th (0-based) property with this identifier:
/// -9999999 if there is none (or `props` is NULL), -999999 if it is not an integer
/// property. Like Paho, a negative index selects the first match.
///
/// Threads: any thread, while no other thread modifies `props`.
///
/// # Safety
/// `props` is NULL or a valid list.
#[no_mangle]
pub unsafe extern "C" fn MQTTProperties_getNumericValueAt(
    props: *mut MQTTProperties,
    propid: MQTTPropertyCodes,
    index: c_int,
) -> c_int {
    guard(NUMERIC_NOT_FOUND, || {
        // SAFETY: valid or NULL per the contract.
        let list = unsafe { props_slice(props) };
        let Some(i) = find_at(list, propid, index.max(0)) else {
            return NUMERIC_NOT_FOUND;
        };
        let p = &list[i];
        let t = c_property_type(p.identifier);
        // SAFETY: each branch reads the union member of the property's type; any bit
        // pattern is a valid integer.
        unsafe {
            if t == MQTTPROPERTY_TYPE_BYTE {
                c_int::from(p.value.byte)
            } else if t == MQTTPROPERTY_TYPE_TWO_BYTE_INTEGER {
                c_int::from(p.value.integer2)
            } else if t == MQTTPROPERTY_TYPE_FOUR_BYTE_INTEGER
                || t == MQTTPROPERTY_TYPE_VARIABLE_BYTE_INTEGER
            {
                p.value.integer4 as c_int
            } else {
                NUMERIC_WRONG_TYPE
            }
        }
    })
}

/// Returns the integer value of the first property with this identifier; see
/// `MQTTProperties_getNumericValueAt` for the error values.
///
/// Threads: any thread, while no other thread modifies `props`.
///
/// # Safety
/// `props` is NULL or a valid list.
#[no_mangle]
pub unsafe extern "C" fn MQTTProperties_getNumericValue(
    props: *mut MQTTProperties,
    propid: MQTTPropertyCodes,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { MQTTProperties_getNumericValueAt(props, propid, 0) }
}

/// Returns a pointer to the `index`-th (0-based) property with this identifier, or NULL.
///
/// Ownership: the pointer borrows from the list; it is invalidated by
/// `MQTTProperties_add` (the array may move) and `MQTTProperties_free`.
///
/// Threads: any thread, while no other thread modifies `props`.
///
/// # Safety
/// `props` is NULL or a valid list.
#[no_mangle]
pub unsafe extern "C" fn MQTTProperties_getPropertyAt(
    props: *mut MQTTProperties,
    propid: MQTTPropertyCodes,
    index: c_int,
) -> *mut MQTTProperty {
    guard(ptr::null_mut(), || {
        // SAFETY: valid or NULL per the contract.
        let list = unsafe { props_slice(props) };
        match find_at(list, propid, index) {
            // SAFETY: i < count, so the pointer stays inside the array (non-NULL here,
            // since props_slice returned a non-empty slice).
            Some(i) => unsafe { (*props).array.add(i) },
            None => ptr::null_mut(),
        }
    })
}

/// Returns a pointer to the first property with this identifier, or NULL. See
/// `MQTTProperties_getPropertyAt` for ownership.
///
/// Threads: any thread, while no other thread modifies `props`.
///
/// # Safety
/// `props` is NULL or a valid list.
#[no_mangle]
pub unsafe extern "C" fn MQTTProperties_getProperty(
    props: *mut MQTTProperties,
    propid: MQTTPropertyCodes,
) -> *mut MQTTProperty {
    // SAFETY: forwarded contract.
    unsafe { MQTTProperties_getPropertyAt(props, propid, 0) }
}

/// Returns the name of a property identifier (e.g. "MESSAGE_EXPIRY_INTERVAL"), or NULL for
/// an unknown identifier. The string is static: do not free it. Any thread.
#[no_mangle]
pub extern "C" fn MQTTPropertyName(value: MQTTPropertyCodes) -> *const c_char {
    guard(ptr::null(), || match value {
        MQTTPROPERTY_CODE_PAYLOAD_FORMAT_INDICATOR => cs!("PAYLOAD_FORMAT_INDICATOR"),
        MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL => cs!("MESSAGE_EXPIRY_INTERVAL"),
        MQTTPROPERTY_CODE_CONTENT_TYPE => cs!("CONTENT_TYPE"),
        MQTTPROPERTY_CODE_RESPONSE_TOPIC => cs!("RESPONSE_TOPIC"),
        MQTTPROPERTY_CODE_CORRELATION_DATA => cs!("CORRELATION_DATA"),
        MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER => cs!("SUBSCRIPTION_IDENTIFIER"),
        MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL => cs!("SESSION_EXPIRY_INTERVAL"),
        MQTTPROPERTY_CODE_ASSIGNED_CLIENT_IDENTIFER => cs!("ASSIGNED_CLIENT_IDENTIFER"),
        MQTTPROPERTY_CODE_SERVER_KEEP_ALIVE => cs!("SERVER_KEEP_ALIVE"),
        MQTTPROPERTY_CODE_AUTHENTICATION_METHOD => cs!("AUTHENTICATION_METHOD"),
        MQTTPROPERTY_CODE_AUTHENTICATION_DATA => cs!("AUTHENTICATION_DATA"),
        MQTTPROPERTY_CODE_REQUEST_PROBLEM_INFORMATION => cs!("REQUEST_PROBLEM_INFORMATION"),
        MQTTPROPERTY_CODE_WILL_DELAY_INTERVAL => cs!("WILL_DELAY_INTERVAL"),
        MQTTPROPERTY_CODE_REQUEST_RESPONSE_INFORMATION => cs!("REQUEST_RESPONSE_INFORMATION"),
        MQTTPROPERTY_CODE_RESPONSE_INFORMATION => cs!("RESPONSE_INFORMATION"),
        MQTTPROPERTY_CODE_SERVER_REFERENCE => cs!("SERVER_REFERENCE"),
        MQTTPROPERTY_CODE_REASON_STRING => cs!("REASON_STRING"),
        MQTTPROPERTY_CODE_RECEIVE_MAXIMUM => cs!("RECEIVE_MAXIMUM"),
        MQTTPROPERTY_CODE_TOPIC_ALIAS_MAXIMUM => cs!("TOPIC_ALIAS_MAXIMUM"),
        MQTTPROPERTY_CODE_TOPIC_ALIAS => cs!("TOPIC_ALIAS"),
        MQTTPROPERTY_CODE_MAXIMUM_QOS => cs!("MAXIMUM_QOS"),
        MQTTPROPERTY_CODE_RETAIN_AVAILABLE => cs!("RETAIN_AVAILABLE"),
        MQTTPROPERTY_CODE_USER_PROPERTY => cs!("USER_PROPERTY"),
        MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE => cs!("MAXIMUM_PACKET_SIZE"),
        MQTTPROPERTY_CODE_WILDCARD_SUBSCRIPTION_AVAILABLE => {
            cs!("WILDCARD_SUBSCRIPTION_AVAILABLE")
        }
        MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIERS_AVAILABLE => {
            cs!("SUBSCRIPTION_IDENTIFIERS_AVAILABLE")
        }
        MQTTPROPERTY_CODE_SHARED_SUBSCRIPTION_AVAILABLE => cs!("SHARED_SUBSCRIPTION_AVAILABLE"),
        _ => ptr::null(),
    })
}

/// Returns the data type (`MQTTPROPERTY_TYPE_*`) of a property identifier, or -1 for an
/// unknown identifier. Any thread.
#[no_mangle]
pub extern "C" fn MQTTProperty_getType(value: MQTTPropertyCodes) -> c_int {
    guard(-1, || c_property_type(value))
}

/// Returns the text of an MQTT 5 reason code (Paho's wording; 0 gives "SUCCESS"), or NULL
/// for an undefined value. The string is static: do not free it. Any thread.
#[no_mangle]
pub extern "C" fn MQTTReasonCode_toString(value: MQTTReasonCodes) -> *const c_char {
    guard(ptr::null(), || match value {
        MQTTREASONCODE_SUCCESS => cs!("SUCCESS"),
        MQTTREASONCODE_GRANTED_QOS_1 => cs!("Granted QoS 1"),
        MQTTREASONCODE_GRANTED_QOS_2 => cs!("Granted QoS 2"),
        MQTTREASONCODE_DISCONNECT_WITH_WILL_MESSAGE => cs!("Disconnect with Will Message"),
        MQTTREASONCODE_NO_MATCHING_SUBSCRIBERS => cs!("No matching subscribers"),
        MQTTREASONCODE_NO_SUBSCRIPTION_FOUND => cs!("No subscription found"),
        MQTTREASONCODE_CONTINUE_AUTHENTICATION => cs!("Continue authentication"),
        MQTTREASONCODE_RE_AUTHENTICATE => cs!("Re-authenticate"),
        MQTTREASONCODE_UNSPECIFIED_ERROR => cs!("Unspecified error"),
        MQTTREASONCODE_MALFORMED_PACKET => cs!("Malformed Packet"),
        MQTTREASONCODE_PROTOCOL_ERROR => cs!("Protocol error"),
        MQTTREASONCODE_IMPLEMENTATION_SPECIFIC_ERROR => cs!("Implementation specific error"),
        MQTTREASONCODE_UNSUPPORTED_PROTOCOL_VERSION => cs!("Unsupported Protocol Version"),
        MQTTREASONCODE_CLIENT_IDENTIFIER_NOT_VALID => cs!("Client Identifier not valid"),
        MQTTREASONCODE_BAD_USER_NAME_OR_PASSWORD => cs!("Bad User Name or Password"),
        MQTTREASONCODE_NOT_AUTHORIZED => cs!("Not authorized"),
        MQTTREASONCODE_SERVER_UNAVAILABLE => cs!("Server unavailable"),
        MQTTREASONCODE_SERVER_BUSY => cs!("Server busy"),
        MQTTREASONCODE_BANNED => cs!("Banned"),
        MQTTREASONCODE_SERVER_SHUTTING_DOWN => cs!("Server shutting down"),
        MQTTREASONCODE_BAD_AUTHENTICATION_METHOD => cs!("Bad authentication method"),
        MQTTREASONCODE_KEEP_ALIVE_TIMEOUT => cs!("Keep Alive timeout"),
        MQTTREASONCODE_SESSION_TAKEN_OVER => cs!("Session taken over"),
        MQTTREASONCODE_TOPIC_FILTER_INVALID => cs!("Topic filter invalid"),
        MQTTREASONCODE_TOPIC_NAME_INVALID => cs!("Topic name invalid"),
        MQTTREASONCODE_PACKET_IDENTIFIER_IN_USE => cs!("Packet Identifier in use"),
        MQTTREASONCODE_PACKET_IDENTIFIER_NOT_FOUND => cs!("Packet Identifier not found"),
        MQTTREASONCODE_RECEIVE_MAXIMUM_EXCEEDED => cs!("Receive Maximum exceeded"),
        MQTTREASONCODE_TOPIC_ALIAS_INVALID => cs!("Topic Alias invalid"),
        MQTTREASONCODE_PACKET_TOO_LARGE => cs!("Packet too large"),
        MQTTREASONCODE_MESSAGE_RATE_TOO_HIGH => cs!("Message rate too high"),
        MQTTREASONCODE_QUOTA_EXCEEDED => cs!("Quota exceeded"),
        MQTTREASONCODE_ADMINISTRATIVE_ACTION => cs!("Administrative action"),
        MQTTREASONCODE_PAYLOAD_FORMAT_INVALID => cs!("Payload format invalid"),
        MQTTREASONCODE_RETAIN_NOT_SUPPORTED => cs!("Retain not supported"),
        MQTTREASONCODE_QOS_NOT_SUPPORTED => cs!("QoS not supported"),
        MQTTREASONCODE_USE_ANOTHER_SERVER => cs!("Use another server"),
        MQTTREASONCODE_SERVER_MOVED => cs!("Server moved"),
        MQTTREASONCODE_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED => {
            cs!("Shared subscriptions not supported")
        }
        MQTTREASONCODE_CONNECTION_RATE_EXCEEDED => cs!("Connection rate exceeded"),
        MQTTREASONCODE_MAXIMUM_CONNECT_TIME => cs!("Maximum connect time"),
        MQTTREASONCODE_SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED => {
            cs!("Subscription Identifiers not supported")
        }
        MQTTREASONCODE_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED => {
            cs!("Wildcard Subscriptions not supported")
        }
        _ => ptr::null(),
    })
}
