//! Conversions between the Rust protocol types and the C structures handed across the API.
//!
//! Everything given to C is allocated with `malloc` (so `MQTTClient_free`,
//! `MQTTClient_freeMessage`, `MQTTProperties_free` and `MQTTResponse_free` release it);
//! everything read from C is copied into owned Rust values, after validation.
//!
//! Error values are `MQTTCLIENT_*` codes: `MQTTCLIENT_NULL_PARAMETER`,
//! `MQTTCLIENT_BAD_STRUCTURE`, `MQTTCLIENT_BAD_QOS`, `MQTTCLIENT_BAD_UTF8_STRING`,
//! `MQTTCLIENT_FAILURE` (malformed value) or
//! [`MQTTSYNC_MEMORY_ERROR`](super::ffi::MQTTSYNC_MEMORY_ERROR) (malloc failed).

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;

use bytes::Bytes;

use super::ffi::{c_array, c_bytes_dup, c_malloc, copy_versioned};
use super::properties::{add_property, c_property_type, free_properties, props_slice, VBI_MAX};
use super::types::enums::*;
use super::types::*;
use crate::properties::{property_type, PropertyType};
use crate::{Properties, Property};

/// `s` as a C string, in one allocation; a NUL inside (none in a valid topic) becomes a
/// space.
pub fn c_string(s: &str) -> CString {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend(s.bytes().map(|b| if b == 0 { b' ' } else { b }));
    CString::new(v).unwrap_or_default()
}

/// Builds a C property list (array and data allocated with `malloc`) from Rust properties.
/// The caller owns the result: it goes to C, or is released with `MQTTProperties_free`.
/// A property whose variant does not match its identifier's type, an unknown identifier,
/// or a value too long for the wire gives `MQTTCLIENT_FAILURE`; nothing is leaked on error.
pub fn properties_to_c(props: &Properties) -> Result<MQTTProperties, c_int> {
    let mut out = MQTTProperties::empty();
    for p in props.iter() {
        let r = property_to_c_borrowed(p).and_then(|(c, _keep)| {
            // SAFETY: `out` is our own malloc-backed list; `c` points into `p`'s data,
            // which is alive for this call; add_property copies it.
            unsafe { add_property(&mut out, &c) }
        });
        if let Err(rc) = r {
            // SAFETY: out holds only malloc'd data created by add_property.
            unsafe { free_properties(&mut out) };
            return Err(rc);
        }
    }
    Ok(out)
}

/// Like [`properties_to_c`], but the `MQTTProperties` structure itself is allocated with
/// `malloc` too (for `MQTTResponse.properties`, freed by `MQTTResponse_free`).
pub fn properties_to_c_boxed(props: &Properties) -> Result<*mut MQTTProperties, c_int> {
    let list = properties_to_c(props)?;
    match c_malloc(std::mem::size_of::<MQTTProperties>()) {
        Ok(p) => {
            let p = p.cast::<MQTTProperties>();
            // SAFETY: p is a fresh malloc block of the right size (malloc aligns for it).
            unsafe { p.write(list) };
            Ok(p)
        }
        Err(rc) => {
            let mut list = list;
            // SAFETY: list was built by properties_to_c and is owned here.
            unsafe { free_properties(&mut list) };
            Err(rc)
        }
    }
}

/// An `MQTTLenString` pointing into Rust-owned bytes (valid while they are).
fn len_string(b: &[u8]) -> Result<MQTTLenString, c_int> {
    Ok(MQTTLenString {
        len: c_int::try_from(b.len()).map_err(|_| MQTTCLIENT_FAILURE)?,
        data: b.as_ptr().cast_mut().cast::<c_char>(),
    })
}

/// Makes a C property that borrows `p`'s data. The `()` is a reminder that the result
/// must not outlive `p`.
fn property_to_c_borrowed(p: &Property) -> Result<(MQTTProperty, ()), c_int> {
    let id = p.id();
    let ty = property_type(id).ok_or(MQTTCLIENT_FAILURE)?;
    let empty = MQTTLenString {
        len: 0,
        data: ptr::null_mut(),
    };
    let value = match (p, ty) {
        (Property::Byte(_, v), PropertyType::Byte) => MQTTProperty_value { byte: *v },
        (Property::TwoByte(_, v), PropertyType::TwoByteInteger) => {
            MQTTProperty_value { integer2: *v }
        }
        (Property::FourByte(_, v), PropertyType::FourByteInteger)
        | (Property::VarInt(_, v), PropertyType::VariableByteInteger) => {
            MQTTProperty_value { integer4: *v }
        }
        (Property::Binary(_, b), PropertyType::BinaryData) => MQTTProperty_value {
            strings: MQTTProperty_strings {
                data: len_string(b)?,
                value: empty,
            },
        },
        (Property::String(_, s), PropertyType::Utf8String) => MQTTProperty_value {
            strings: MQTTProperty_strings {
                data: len_string(s.as_bytes())?,
                value: empty,
            },
        },
        (Property::UserProperty(k, v), PropertyType::Utf8StringPair) => MQTTProperty_value {
            strings: MQTTProperty_strings {
                data: len_string(k.as_bytes())?,
                value: len_string(v.as_bytes())?,
            },
        },
        _ => return Err(MQTTCLIENT_FAILURE),
    };
    Ok((
        MQTTProperty {
            identifier: c_int::from(id),
            value,
        },
        (),
    ))
}

/// Copies the bytes of a C length-delimited value.
///
/// # Safety
/// If `s.len > 0`, `s.data` is NULL or points to `s.len` readable bytes.
unsafe fn len_string_bytes(s: &MQTTLenString) -> Result<Vec<u8>, c_int> {
    let n = usize::try_from(s.len).map_err(|_| MQTTCLIENT_FAILURE)?;
    if n > 65_535 {
        return Err(MQTTCLIENT_FAILURE);
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    if s.data.is_null() {
        return Err(MQTTCLIENT_NULL_PARAMETER);
    }
    // SAFETY: non-NULL with n readable bytes per the contract.
    Ok(unsafe { std::slice::from_raw_parts(s.data.cast::<u8>(), n) }.to_vec())
}

/// Reads a C property list into Rust properties (NULL gives an empty list).
///
/// Unknown identifiers, negative or over-long lengths and variable byte integers over
/// 268435455 give `MQTTCLIENT_FAILURE`; string properties that are not UTF-8 give
/// `MQTTCLIENT_BAD_UTF8_STRING`.
///
/// # Safety
/// `props` is NULL or a valid list whose entries' data is readable.
pub unsafe fn properties_from_c(props: *const MQTTProperties) -> Result<Properties, c_int> {
    let mut out = Properties::new();
    // SAFETY: forwarded contract.
    for p in unsafe { props_slice(props) } {
        let id = u8::try_from(p.identifier).map_err(|_| MQTTCLIENT_FAILURE)?;
        let ty = c_property_type(p.identifier);
        // SAFETY: each branch reads the union member that belongs to the identifier's
        // type; the contract makes string data readable.
        let prop = unsafe {
            match ty {
                MQTTPROPERTY_TYPE_BYTE => Property::Byte(id, p.value.byte),
                MQTTPROPERTY_TYPE_TWO_BYTE_INTEGER => Property::TwoByte(id, p.value.integer2),
                MQTTPROPERTY_TYPE_FOUR_BYTE_INTEGER => Property::FourByte(id, p.value.integer4),
                MQTTPROPERTY_TYPE_VARIABLE_BYTE_INTEGER => {
                    let v = p.value.integer4;
                    if v > VBI_MAX {
                        return Err(MQTTCLIENT_FAILURE);
                    }
                    Property::VarInt(id, v)
                }
                MQTTPROPERTY_TYPE_BINARY_DATA => {
                    Property::Binary(id, Bytes::from(len_string_bytes(&p.value.strings.data)?))
                }
                MQTTPROPERTY_TYPE_UTF_8_ENCODED_STRING => Property::String(
                    id,
                    String::from_utf8(len_string_bytes(&p.value.strings.data)?)
                        .map_err(|_| MQTTCLIENT_BAD_UTF8_STRING)?,
                ),
                MQTTPROPERTY_TYPE_UTF_8_STRING_PAIR => Property::UserProperty(
                    String::from_utf8(len_string_bytes(&p.value.strings.data)?)
                        .map_err(|_| MQTTCLIENT_BAD_UTF8_STRING)?,
                    String::from_utf8(len_string_bytes(&p.value.strings.value)?)
                        .map_err(|_| MQTTCLIENT_BAD_UTF8_STRING)?,
                ),
                _ => return Err(MQTTCLIENT_FAILURE),
            }
        };
        out.push(prop);
    }
    Ok(out)
}

/// A message given by C (`MQTTClient_publishMessage(5)`), copied and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFromC {
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// QoS 0, 1 or 2.
    pub qos: u8,
    /// The retained flag.
    pub retained: bool,
    /// MQTT 5 properties (empty for a version 0 structure).
    pub properties: Properties,
}

/// Validates and copies a C message: NULL gives `MQTTCLIENT_NULL_PARAMETER`, a wrong
/// eyecatcher/version (not `MQTM` 0-1) `MQTTCLIENT_BAD_STRUCTURE`, a QoS outside 0-2
/// `MQTTCLIENT_BAD_QOS`, a negative `payloadlen` `MQTTCLIENT_FAILURE`, NULL payload with a
/// positive length `MQTTCLIENT_NULL_PARAMETER`. Properties are read only from version 1.
///
/// # Safety
/// `msg` is NULL or points to a message of the version it declares, whose payload and
/// properties are readable.
pub unsafe fn message_from_c(msg: *const MQTTClient_message) -> Result<MessageFromC, c_int> {
    // SAFETY: forwarded contract.
    let (m, version) = unsafe { copy_versioned(msg)? };
    let qos = u8::try_from(m.qos)
        .ok()
        .filter(|q| *q <= 2)
        .ok_or(MQTTCLIENT_BAD_QOS)?;
    // SAFETY: payload readable for payloadlen bytes per the contract.
    let payload = unsafe { super::ffi::bytes_from_c(m.payload.cast_const(), m.payloadlen)? };
    let properties = if version >= 1 {
        // SAFETY: version 1 messages carry a valid property list (contract).
        unsafe { properties_from_c(&m.properties)? }
    } else {
        Properties::new()
    };
    Ok(MessageFromC {
        payload: payload.to_vec(),
        qos,
        retained: m.retained != 0,
        properties,
    })
}

/// Builds a message for the application (`messageArrived`, `MQTTClient_receive`): a
/// version 1 `MQTTClient_message` allocated with `malloc`, the payload copied into its own
/// `malloc` block (followed by a NUL byte, which `payloadlen` does not count), and the
/// properties converted. Free it with `MQTTClient_freeMessage`.
pub fn message_to_c(
    payload: &[u8],
    qos: u8,
    retained: bool,
    dup: bool,
    msgid: u16,
    props: &Properties,
) -> Result<*mut MQTTClient_message, c_int> {
    let payloadlen = c_int::try_from(payload.len()).map_err(|_| MQTTCLIENT_FAILURE)?;
    let mut properties = properties_to_c(props)?;
    let free_props = |p: &mut MQTTProperties| {
        // SAFETY: built by properties_to_c and owned here.
        unsafe { free_properties(p) }
    };
    let data = match c_bytes_dup(payload) {
        Ok(d) => d,
        Err(rc) => {
            free_props(&mut properties);
            return Err(rc);
        }
    };
    let m = match c_malloc(std::mem::size_of::<MQTTClient_message>()) {
        Ok(m) => m.cast::<MQTTClient_message>(),
        Err(rc) => {
            free_props(&mut properties);
            // SAFETY: data was malloc'd just above.
            unsafe { libc::free(data.cast()) };
            return Err(rc);
        }
    };
    // SAFETY: m is a fresh malloc block of the right size and alignment.
    unsafe {
        m.write(MQTTClient_message {
            struct_id: [
                b'M' as c_char,
                b'Q' as c_char,
                b'T' as c_char,
                b'M' as c_char,
            ],
            struct_version: 1,
            payloadlen,
            payload: data.cast::<c_void>(),
            qos: c_int::from(qos),
            retained: c_int::from(retained),
            dup: c_int::from(dup),
            msgid: c_int::from(msgid),
            properties,
        })
    };
    Ok(m)
}

/// Builds an `MQTTResponse` (version 1) for an MQTT 5 call: `reason_code`, a `malloc`'d
/// copy of `reason_codes` when it is not empty (subscribeMany5 / unsubscribeMany5), and a
/// `malloc`'d property list when `props` is given. Free with `MQTTResponse_free`.
pub fn response_to_c(
    reason_code: u8,
    reason_codes: &[u8],
    props: Option<&Properties>,
) -> Result<MQTTResponse, c_int> {
    let mut r = MQTTResponse::new();
    r.reasonCode = c_int::from(reason_code);
    if !reason_codes.is_empty() {
        let codes: Vec<MQTTReasonCodes> = reason_codes.iter().map(|&c| c_int::from(c)).collect();
        r.reasonCodes = c_array(&codes)?;
        r.reasonCodeCount = c_int::try_from(codes.len()).map_err(|_| MQTTCLIENT_FAILURE)?;
    }
    if let Some(p) = props {
        match properties_to_c_boxed(p) {
            Ok(p) => r.properties = p,
            Err(rc) => {
                // SAFETY: reasonCodes is NULL or was malloc'd just above.
                unsafe { libc::free(r.reasonCodes.cast()) };
                return Err(rc);
            }
        }
    }
    Ok(r)
}

/// A `MQTTResponse` carrying only an error code (reasonCode = `rc`, nothing allocated), as
/// Paho returns for a failed MQTT 5 call (e.g. `MQTTCLIENT_DISCONNECTED`).
pub fn response_error(rc: c_int) -> MQTTResponse {
    let mut r = MQTTResponse::new();
    r.reasonCode = rc;
    r
}

/// Copies a topic name into a `malloc`'d NUL-terminated string for the application
/// (freed with `MQTTClient_free`); returns it with its length in bytes.
pub fn topic_to_c(topic: &str) -> Result<(*mut c_char, c_int), c_int> {
    let len = c_int::try_from(topic.len()).map_err(|_| MQTTCLIENT_FAILURE)?;
    Ok((c_bytes_dup(topic.as_bytes())?, len))
}

#[cfg(test)]
mod tests {
    use super::super::misc::{MQTTClient_freeMessage, MQTTResponse_free};
    use super::super::properties::*;
    use super::*;
    use crate::properties::id;

    fn all_kinds() -> Properties {
        Properties::new()
            .with(Property::Byte(id::PAYLOAD_FORMAT_INDICATOR, 1))
            .with(Property::FourByte(id::MESSAGE_EXPIRY_INTERVAL, 3600))
            .with(Property::String(id::CONTENT_TYPE, "text/plain".into()))
            .with(Property::String(id::RESPONSE_TOPIC, String::new()))
            .with(Property::Binary(
                id::CORRELATION_DATA,
                Bytes::from_static(b"\0\x01\xff"),
            ))
            .with(Property::VarInt(id::SUBSCRIPTION_IDENTIFIER, 268_435_455))
            .with(Property::TwoByte(id::TOPIC_ALIAS, 7))
            .with(Property::UserProperty("k".into(), "v1".into()))
            .with(Property::UserProperty("k".into(), "".into()))
    }

    #[test]
    fn properties_round_trip_through_c() {
        let rust = all_kinds();
        let mut c = properties_to_c(&rust).unwrap();
        assert_eq!(c.count, 9);
        // Wire length: 2 + 5 + 13 + 3 + 6 + 5 + 3 + (1+2+1+2+2) + (1+2+1+2+0)
        assert_eq!(c.length, 2 + 5 + 13 + 3 + 6 + 5 + 3 + 8 + 6);
        assert_eq!(unsafe { MQTTProperties_len(&mut c) }, c.length + 1);
        let back = unsafe { properties_from_c(&c) }.unwrap();
        assert_eq!(back, rust);
        // Strings are NUL-terminated copies.
        let ct = unsafe { MQTTProperties_getProperty(&mut c, MQTTPROPERTY_CODE_CONTENT_TYPE) };
        let s = unsafe { std::ffi::CStr::from_ptr((*ct).value.strings.data.data) };
        assert_eq!(s.to_str().unwrap(), "text/plain");
        assert_eq!(
            unsafe { MQTTProperties_propertyCount(&mut c, MQTTPROPERTY_CODE_USER_PROPERTY) },
            2
        );
        unsafe { MQTTProperties_free(&mut c) };
        assert_eq!((c.count, c.max_count, c.length), (0, 0, 0));
        assert!(c.array.is_null());
    }

    #[test]
    fn mismatched_variant_is_rejected() {
        // MQTT 5 section 2.2.2.2: the identifier decides the type.
        let bad = Properties::new().with(Property::Byte(id::MESSAGE_EXPIRY_INTERVAL, 1));
        assert_eq!(properties_to_c(&bad).unwrap_err(), MQTTCLIENT_FAILURE);
        let unknown = Properties::new().with(Property::Byte(0x7f, 1));
        assert_eq!(properties_to_c(&unknown).unwrap_err(), MQTTCLIENT_FAILURE);
        let too_long =
            Properties::new().with(Property::String(id::CONTENT_TYPE, "x".repeat(70_000)));
        assert_eq!(properties_to_c(&too_long).unwrap_err(), MQTTCLIENT_FAILURE);
    }

    #[test]
    fn from_c_rejects_bad_utf8_and_unknown_ids() {
        let mut c = MQTTProperties::empty();
        let bytes = [0xffu8, 0xfe];
        let p = MQTTProperty {
            identifier: MQTTPROPERTY_CODE_CONTENT_TYPE,
            value: MQTTProperty_value {
                strings: MQTTProperty_strings {
                    data: MQTTLenString {
                        len: 2,
                        data: bytes.as_ptr().cast_mut().cast(),
                    },
                    value: MQTTLenString {
                        len: 0,
                        data: ptr::null_mut(),
                    },
                },
            },
        };
        assert_eq!(unsafe { MQTTProperties_add(&mut c, &p) }, 0);
        assert_eq!(
            unsafe { properties_from_c(&c) }.unwrap_err(),
            MQTTCLIENT_BAD_UTF8_STRING
        );
        unsafe { MQTTProperties_free(&mut c) };
        let bad_id = MQTTProperty {
            identifier: 0x7f,
            value: MQTTProperty_value { integer4: 1 },
        };
        assert_eq!(
            unsafe { MQTTProperties_add(&mut c, &bad_id) },
            MQTT_INVALID_PROPERTY_ID
        );
        assert!(unsafe { properties_from_c(ptr::null()) }
            .unwrap()
            .is_empty());
    }

    #[test]
    fn message_round_trip_and_free() {
        let props = Properties::new().with(Property::String(id::CONTENT_TYPE, "a".into()));
        let mut m = message_to_c(b"hello", 2, true, false, 42, &props).unwrap();
        let back = unsafe { message_from_c(m) }.unwrap();
        assert_eq!(back.payload, b"hello");
        assert_eq!((back.qos, back.retained), (2, true));
        assert_eq!(back.properties, props);
        unsafe {
            assert_eq!((*m).msgid, 42);
            assert_eq!(
                *(*m).payload.cast::<u8>().add(5),
                0,
                "payload NUL-terminated"
            );
            MQTTClient_freeMessage(&mut m);
        }
        assert!(m.is_null());
    }

    #[test]
    fn message_from_c_validates() {
        let mut m = MQTTClient_message {
            struct_id: [
                b'M' as c_char,
                b'Q' as c_char,
                b'T' as c_char,
                b'M' as c_char,
            ],
            struct_version: 0,
            payloadlen: 2,
            payload: ptr::null_mut(),
            qos: 0,
            retained: 0,
            dup: 0,
            msgid: 0,
            properties: MQTTProperties::empty(),
        };
        assert_eq!(
            unsafe { message_from_c(&m) }.unwrap_err(),
            MQTTCLIENT_NULL_PARAMETER
        );
        m.payloadlen = 0;
        m.qos = 3;
        assert_eq!(
            unsafe { message_from_c(&m) }.unwrap_err(),
            MQTTCLIENT_BAD_QOS
        );
        m.qos = 1;
        m.struct_version = 2;
        assert_eq!(
            unsafe { message_from_c(&m) }.unwrap_err(),
            MQTTCLIENT_BAD_STRUCTURE
        );
        m.struct_version = 0;
        assert_eq!(unsafe { message_from_c(&m) }.unwrap().qos, 1);
        assert_eq!(
            unsafe { message_from_c(ptr::null()) }.unwrap_err(),
            MQTTCLIENT_NULL_PARAMETER
        );
    }

    #[test]
    fn response_with_codes_and_properties() {
        let props = Properties::new().with(Property::String(id::REASON_STRING, "why".into()));
        let r = response_to_c(0x80, &[0, 1, 0x80], Some(&props)).unwrap();
        assert_eq!(r.reasonCode, 0x80);
        assert_eq!(r.reasonCodeCount, 3);
        unsafe {
            assert_eq!(*r.reasonCodes.add(2), 0x80);
            assert_eq!(properties_from_c(r.properties).unwrap(), props);
            MQTTResponse_free(r);
        }
        let e = response_error(MQTTCLIENT_DISCONNECTED);
        assert_eq!(e.reasonCode, -3);
        assert!(e.properties.is_null());
        let (t, len) = topic_to_c("a/b").unwrap();
        assert_eq!(len, 3);
        unsafe { libc::free(t.cast()) };
    }
}
