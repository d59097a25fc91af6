//! `#[repr(C)]` mirrors of every public type in Paho C 1.3.11/1.3.12's `MQTTClient.h`,
//! `MQTTProperties.h`, `MQTTReasonCodes.h`, `MQTTSubscribeOpts.h` and
//! `MQTTClientPersistence.h`, with Paho's exact layout, and the `#define` constants of
//! those headers with the same names and values.
//!
//! `tests/abi.rs` proves the layout: it compiles one probe against Paho's real header and
//! against `include/mqttsync.h` and requires identical `sizeof`/`offsetof`/constant output.
//!
//! Some C declarations cannot be expressed by cbindgen and are written by hand in
//! `cbindgen.toml` (`after_includes`): the four C enums, `MQTTLenString`, `MQTTProperty`
//! (a union with an anonymous struct member), and the callback typedefs, which Paho declares
//! as *function types* (`typedef void MQTTClient_connectionLost(void*, char*)`) rather than
//! pointer types. The Rust items for those are excluded from cbindgen's output and must stay
//! in sync with the hand-written C (the ABI test checks them).

use std::os::raw::{c_char, c_int, c_uchar, c_uint, c_ushort, c_void};

// ---------------------------------------------------------------------------------------
// Scalar typedefs
// ---------------------------------------------------------------------------------------

/// A client handle (`typedef void* MQTTClient`).
pub type MQTTClient = *mut c_void;

/// A delivery token: the packet identifier of a QoS 1/2 publication.
pub type MQTTClient_deliveryToken = c_int;

/// Synonym of [`MQTTClient_deliveryToken`].
pub type MQTTClient_token = c_int;

/// C `enum MQTTPropertyCodes` (an `int` holding an MQTT 5 property identifier).
/// Values from C are validated, never transmuted into a Rust enum.
pub type MQTTPropertyCodes = c_int;

/// C `enum MQTTPropertyTypes` (an `int`).
pub type MQTTPropertyTypes = c_int;

/// C `enum MQTTReasonCodes` (an `int` holding an MQTT 5 reason code).
pub type MQTTReasonCodes = c_int;

/// C `enum MQTTCLIENT_TRACE_LEVELS` (an `int`).
pub type MQTTCLIENT_TRACE_LEVELS = c_int;

// ---------------------------------------------------------------------------------------
// Return codes and other #define constants (MQTTClient.h, MQTTClientPersistence.h,
// MQTTProperties.h)
// ---------------------------------------------------------------------------------------

/// Return code: no error. Indicates successful completion of an MQTT client operation.
pub const MQTTCLIENT_SUCCESS: c_int = 0;
/// Return code: a generic error code indicating the failure of an MQTT client operation.
pub const MQTTCLIENT_FAILURE: c_int = -1;
/// Return code: the client is disconnected.
pub const MQTTCLIENT_DISCONNECTED: c_int = -3;
/// Return code: the maximum number of messages allowed to be simultaneously in-flight has
/// been reached.
pub const MQTTCLIENT_MAX_MESSAGES_INFLIGHT: c_int = -4;
/// Return code: an invalid UTF-8 string has been detected.
pub const MQTTCLIENT_BAD_UTF8_STRING: c_int = -5;
/// Return code: a NULL parameter has been supplied when this is invalid.
pub const MQTTCLIENT_NULL_PARAMETER: c_int = -6;
/// Return code: the topic has been truncated (the topic string includes embedded NUL
/// characters).
pub const MQTTCLIENT_TOPICNAME_TRUNCATED: c_int = -7;
/// Return code: a structure parameter does not have the correct eyecatcher and version
/// number.
pub const MQTTCLIENT_BAD_STRUCTURE: c_int = -8;
/// Return code: a QoS value that falls outside of the acceptable range (0, 1, 2).
pub const MQTTCLIENT_BAD_QOS: c_int = -9;
/// Return code: attempting SSL connection using non-SSL version of library.
pub const MQTTCLIENT_SSL_NOT_SUPPORTED: c_int = -10;
/// Return code: unrecognized MQTT version.
pub const MQTTCLIENT_BAD_MQTT_VERSION: c_int = -11;
/// Return code: protocol prefix in serverURI should be tcp://, ssl://, ws:// or wss://
/// (mqtt:// and mqtts:// are accepted too).
pub const MQTTCLIENT_BAD_PROTOCOL: c_int = -14;
/// Return code: option not applicable to the requested version of MQTT.
pub const MQTTCLIENT_BAD_MQTT_OPTION: c_int = -15;
/// Return code: call not applicable to the requested version of MQTT.
pub const MQTTCLIENT_WRONG_MQTT_VERSION: c_int = -16;
/// Return code: 0 length will topic on connect.
pub const MQTTCLIENT_0_LEN_WILL_TOPIC: c_int = -17;

/// Default MQTT version to connect with: 3.1.1, falling back to 3.1.
pub const MQTTVERSION_DEFAULT: c_int = 0;
/// MQTT version 3.1.
pub const MQTTVERSION_3_1: c_int = 3;
/// MQTT version 3.1.1.
pub const MQTTVERSION_3_1_1: c_int = 4;
/// MQTT version 5.
pub const MQTTVERSION_5: c_int = 5;
/// Bad return code from subscribe, as defined in the 3.1.1 specification.
pub const MQTT_BAD_SUBSCRIBE: c_int = 0x80;

/// `MQTTClient_SSLOptions.sslVersion`: the library's default (a minimum of TLS 1.2 in
/// mqttsync; see the README).
pub const MQTT_SSL_VERSION_DEFAULT: c_int = 0;
/// `MQTTClient_SSLOptions.sslVersion`: TLS 1.0.
pub const MQTT_SSL_VERSION_TLS_1_0: c_int = 1;
/// `MQTTClient_SSLOptions.sslVersion`: TLS 1.1.
pub const MQTT_SSL_VERSION_TLS_1_1: c_int = 2;
/// `MQTTClient_SSLOptions.sslVersion`: TLS 1.2.
pub const MQTT_SSL_VERSION_TLS_1_2: c_int = 3;

/// Persistence type: file-system based persistence (Paho's directory layout).
pub const MQTTCLIENT_PERSISTENCE_DEFAULT: c_int = 0;
/// Persistence type: memory-based persistence (nothing survives the process).
pub const MQTTCLIENT_PERSISTENCE_NONE: c_int = 1;
/// Persistence type: an application-specific persistence, given as an
/// `MQTTClient_persistence` structure.
pub const MQTTCLIENT_PERSISTENCE_USER: c_int = 2;
/// Application-specific persistence functions must return this error code if there is a
/// problem executing the function.
pub const MQTTCLIENT_PERSISTENCE_ERROR: c_int = -2;

/// `MQTTProperties_add` return code for an unknown property identifier.
pub const MQTT_INVALID_PROPERTY_ID: c_int = -2;

/// Values of the C enums (`enum MQTTPropertyCodes`, `enum MQTTPropertyTypes`,
/// `enum MQTTReasonCodes`, `enum MQTTCLIENT_TRACE_LEVELS`) for Rust code. In C they are
/// enumerators declared by hand in the header, so cbindgen must not emit them as macros.
///
/// cbindgen:ignore
#[allow(missing_docs)]
pub mod enums {
    use std::os::raw::c_int;

    pub const MQTTPROPERTY_CODE_PAYLOAD_FORMAT_INDICATOR: c_int = 1;
    pub const MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL: c_int = 2;
    pub const MQTTPROPERTY_CODE_CONTENT_TYPE: c_int = 3;
    pub const MQTTPROPERTY_CODE_RESPONSE_TOPIC: c_int = 8;
    pub const MQTTPROPERTY_CODE_CORRELATION_DATA: c_int = 9;
    pub const MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER: c_int = 11;
    pub const MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL: c_int = 17;
    pub const MQTTPROPERTY_CODE_ASSIGNED_CLIENT_IDENTIFER: c_int = 18;
    pub const MQTTPROPERTY_CODE_SERVER_KEEP_ALIVE: c_int = 19;
    pub const MQTTPROPERTY_CODE_AUTHENTICATION_METHOD: c_int = 21;
    pub const MQTTPROPERTY_CODE_AUTHENTICATION_DATA: c_int = 22;
    pub const MQTTPROPERTY_CODE_REQUEST_PROBLEM_INFORMATION: c_int = 23;
    pub const MQTTPROPERTY_CODE_WILL_DELAY_INTERVAL: c_int = 24;
    pub const MQTTPROPERTY_CODE_REQUEST_RESPONSE_INFORMATION: c_int = 25;
    pub const MQTTPROPERTY_CODE_RESPONSE_INFORMATION: c_int = 26;
    pub const MQTTPROPERTY_CODE_SERVER_REFERENCE: c_int = 28;
    pub const MQTTPROPERTY_CODE_REASON_STRING: c_int = 31;
    pub const MQTTPROPERTY_CODE_RECEIVE_MAXIMUM: c_int = 33;
    pub const MQTTPROPERTY_CODE_TOPIC_ALIAS_MAXIMUM: c_int = 34;
    pub const MQTTPROPERTY_CODE_TOPIC_ALIAS: c_int = 35;
    pub const MQTTPROPERTY_CODE_MAXIMUM_QOS: c_int = 36;
    pub const MQTTPROPERTY_CODE_RETAIN_AVAILABLE: c_int = 37;
    pub const MQTTPROPERTY_CODE_USER_PROPERTY: c_int = 38;
    pub const MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE: c_int = 39;
    pub const MQTTPROPERTY_CODE_WILDCARD_SUBSCRIPTION_AVAILABLE: c_int = 40;
    pub const MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIERS_AVAILABLE: c_int = 41;
    pub const MQTTPROPERTY_CODE_SHARED_SUBSCRIPTION_AVAILABLE: c_int = 42;

    pub const MQTTPROPERTY_TYPE_BYTE: c_int = 0;
    pub const MQTTPROPERTY_TYPE_TWO_BYTE_INTEGER: c_int = 1;
    pub const MQTTPROPERTY_TYPE_FOUR_BYTE_INTEGER: c_int = 2;
    pub const MQTTPROPERTY_TYPE_VARIABLE_BYTE_INTEGER: c_int = 3;
    pub const MQTTPROPERTY_TYPE_BINARY_DATA: c_int = 4;
    pub const MQTTPROPERTY_TYPE_UTF_8_ENCODED_STRING: c_int = 5;
    pub const MQTTPROPERTY_TYPE_UTF_8_STRING_PAIR: c_int = 6;

    pub const MQTTREASONCODE_SUCCESS: c_int = 0;
    pub const MQTTREASONCODE_NORMAL_DISCONNECTION: c_int = 0;
    pub const MQTTREASONCODE_GRANTED_QOS_0: c_int = 0;
    pub const MQTTREASONCODE_GRANTED_QOS_1: c_int = 1;
    pub const MQTTREASONCODE_GRANTED_QOS_2: c_int = 2;
    pub const MQTTREASONCODE_DISCONNECT_WITH_WILL_MESSAGE: c_int = 4;
    pub const MQTTREASONCODE_NO_MATCHING_SUBSCRIBERS: c_int = 16;
    pub const MQTTREASONCODE_NO_SUBSCRIPTION_FOUND: c_int = 17;
    pub const MQTTREASONCODE_CONTINUE_AUTHENTICATION: c_int = 24;
    pub const MQTTREASONCODE_RE_AUTHENTICATE: c_int = 25;
    pub const MQTTREASONCODE_UNSPECIFIED_ERROR: c_int = 128;
    pub const MQTTREASONCODE_MALFORMED_PACKET: c_int = 129;
    pub const MQTTREASONCODE_PROTOCOL_ERROR: c_int = 130;
    pub const MQTTREASONCODE_IMPLEMENTATION_SPECIFIC_ERROR: c_int = 131;
    pub const MQTTREASONCODE_UNSUPPORTED_PROTOCOL_VERSION: c_int = 132;
    pub const MQTTREASONCODE_CLIENT_IDENTIFIER_NOT_VALID: c_int = 133;
    pub const MQTTREASONCODE_BAD_USER_NAME_OR_PASSWORD: c_int = 134;
    pub const MQTTREASONCODE_NOT_AUTHORIZED: c_int = 135;
    pub const MQTTREASONCODE_SERVER_UNAVAILABLE: c_int = 136;
    pub const MQTTREASONCODE_SERVER_BUSY: c_int = 137;
    pub const MQTTREASONCODE_BANNED: c_int = 138;
    pub const MQTTREASONCODE_SERVER_SHUTTING_DOWN: c_int = 139;
    pub const MQTTREASONCODE_BAD_AUTHENTICATION_METHOD: c_int = 140;
    pub const MQTTREASONCODE_KEEP_ALIVE_TIMEOUT: c_int = 141;
    pub const MQTTREASONCODE_SESSION_TAKEN_OVER: c_int = 142;
    pub const MQTTREASONCODE_TOPIC_FILTER_INVALID: c_int = 143;
    pub const MQTTREASONCODE_TOPIC_NAME_INVALID: c_int = 144;
    pub const MQTTREASONCODE_PACKET_IDENTIFIER_IN_USE: c_int = 145;
    pub const MQTTREASONCODE_PACKET_IDENTIFIER_NOT_FOUND: c_int = 146;
    pub const MQTTREASONCODE_RECEIVE_MAXIMUM_EXCEEDED: c_int = 147;
    pub const MQTTREASONCODE_TOPIC_ALIAS_INVALID: c_int = 148;
    pub const MQTTREASONCODE_PACKET_TOO_LARGE: c_int = 149;
    pub const MQTTREASONCODE_MESSAGE_RATE_TOO_HIGH: c_int = 150;
    pub const MQTTREASONCODE_QUOTA_EXCEEDED: c_int = 151;
    pub const MQTTREASONCODE_ADMINISTRATIVE_ACTION: c_int = 152;
    pub const MQTTREASONCODE_PAYLOAD_FORMAT_INVALID: c_int = 153;
    pub const MQTTREASONCODE_RETAIN_NOT_SUPPORTED: c_int = 154;
    pub const MQTTREASONCODE_QOS_NOT_SUPPORTED: c_int = 155;
    pub const MQTTREASONCODE_USE_ANOTHER_SERVER: c_int = 156;
    pub const MQTTREASONCODE_SERVER_MOVED: c_int = 157;
    pub const MQTTREASONCODE_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: c_int = 158;
    pub const MQTTREASONCODE_CONNECTION_RATE_EXCEEDED: c_int = 159;
    pub const MQTTREASONCODE_MAXIMUM_CONNECT_TIME: c_int = 160;
    pub const MQTTREASONCODE_SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: c_int = 161;
    pub const MQTTREASONCODE_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: c_int = 162;

    pub const MQTTCLIENT_TRACE_MAXIMUM: c_int = 1;
    pub const MQTTCLIENT_TRACE_MEDIUM: c_int = 2;
    pub const MQTTCLIENT_TRACE_MINIMUM: c_int = 3;
    pub const MQTTCLIENT_TRACE_PROTOCOL: c_int = 4;
    pub const MQTTCLIENT_TRACE_ERROR: c_int = 5;
    pub const MQTTCLIENT_TRACE_SEVERE: c_int = 6;
    pub const MQTTCLIENT_TRACE_FATAL: c_int = 7;
}

// ---------------------------------------------------------------------------------------
// Properties (MQTTProperties.h)
// ---------------------------------------------------------------------------------------

/// A length-delimited string or binary value (`MQTTLenString`). Hand-written in the C
/// header.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTLenString {
    /// The length of the data in bytes.
    pub len: c_int,
    /// The data; not NUL-terminated in general (mqttsync's copies add a NUL after `len`).
    pub data: *mut c_char,
}

/// The anonymous `struct { MQTTLenString data; MQTTLenString value; }` inside
/// [`MQTTProperty_value`]. In C its members are reached as `prop.value.data` and
/// `prop.value.value`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTProperty_strings {
    /// The value of a string or binary property, or the name of a user property.
    pub data: MQTTLenString,
    /// The value of a user property.
    pub value: MQTTLenString,
}

/// The value union of an [`MQTTProperty`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union MQTTProperty_value {
    /// A byte property.
    pub byte: c_uchar,
    /// A two-byte integer property.
    pub integer2: c_ushort,
    /// A four-byte or variable-byte integer property.
    pub integer4: c_uint,
    /// A string, binary or user property (anonymous struct member in C).
    pub strings: MQTTProperty_strings,
}

/// One MQTT 5 property (`MQTTProperty`). Hand-written in the C header because its union
/// has an anonymous struct member.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MQTTProperty {
    /// The property identifier (`enum MQTTPropertyCodes`).
    pub identifier: MQTTPropertyCodes,
    /// The value; which member is valid depends on the identifier's type.
    pub value: MQTTProperty_value,
}

/// A list of MQTT 5 properties (`MQTTProperties`). Initialise with
/// `MQTTProperties_initializer`; free with `MQTTProperties_free`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTProperties {
    /// Number of property entries in the array.
    pub count: c_int,
    /// Number of entries the allocated array can hold.
    pub max_count: c_int,
    /// Byte length of all properties as encoded on the wire (without the length prefix).
    pub length: c_int,
    /// The properties; allocated with `malloc`.
    pub array: *mut MQTTProperty,
}

impl MQTTProperties {
    /// An empty list (`MQTTProperties_initializer`).
    pub const fn empty() -> Self {
        MQTTProperties {
            count: 0,
            max_count: 0,
            length: 0,
            array: std::ptr::null_mut(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Subscribe options (MQTTSubscribeOpts.h)
// ---------------------------------------------------------------------------------------

/// MQTT 5 subscription options (`MQTTSubscribe_options`, eyecatcher `MQSO`, version 0).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTSubscribe_options {
    /// The eyecatcher for this structure. Must be MQSO.
    pub struct_id: [c_char; 4],
    /// The version number of this structure. Must be 0.
    pub struct_version: c_int,
    /// 1: do not receive our own publications.
    pub noLocal: c_uchar,
    /// 1: keep the retain flag as on the original publish message.
    pub retainAsPublished: c_uchar,
    /// 0: send retained messages on subscribe; 1: only if the subscription is new; 2: never.
    pub retainHandling: c_uchar,
}

// ---------------------------------------------------------------------------------------
// MQTTClient.h structures
// ---------------------------------------------------------------------------------------

/// Global initialisation options (`MQTTClient_init_options`, eyecatcher `MQTG`, version 0).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTClient_init_options {
    /// The eyecatcher for this structure. Must be MQTG.
    pub struct_id: [c_char; 4],
    /// The version number of this structure. Must be 0.
    pub struct_version: c_int,
    /// 1: the library initialises OpenSSL (ignored: OpenSSL initialises itself).
    pub do_openssl_init: c_int,
}

/// A message (`MQTTClient_message`, eyecatcher `MQTM`, versions 0-1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTClient_message {
    /// The eyecatcher for this structure. Must be MQTM.
    pub struct_id: [c_char; 4],
    /// The version number of this structure: 0, or 1 if `properties` is present.
    pub struct_version: c_int,
    /// The length of the payload in bytes.
    pub payloadlen: c_int,
    /// The payload.
    pub payload: *mut c_void,
    /// The quality of service (0, 1, 2).
    pub qos: c_int,
    /// The retained flag.
    pub retained: c_int,
    /// The dup flag (received messages only).
    pub dup: c_int,
    /// The message identifier (received messages only).
    pub msgid: c_int,
    /// The MQTT 5 properties (version 1 only).
    pub properties: MQTTProperties,
}

/// Options for `MQTTClient_createWithOptions` (`MQTTClient_createOptions`, eyecatcher
/// `MQCO`, version 0).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTClient_createOptions {
    /// The eyecatcher for this structure. Must be MQCO.
    pub struct_id: [c_char; 4],
    /// The version number of this structure. Must be 0.
    pub struct_version: c_int,
    /// The MQTT version the client will use (`MQTTVERSION_*`).
    pub MQTTVersion: c_int,
}

/// The binary will payload inside [`MQTTClient_willOptions`] (an anonymous struct in C).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTClient_willOptions_payload {
    /// Binary payload length.
    pub len: c_int,
    /// Binary payload data.
    pub data: *const c_void,
}

/// Last will and testament (`MQTTClient_willOptions`, eyecatcher `MQTW`, versions 0-1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTClient_willOptions {
    /// The eyecatcher for this structure. Must be MQTW.
    pub struct_id: [c_char; 4],
    /// The version number of this structure: 0 or 1 (1 adds the binary payload).
    pub struct_version: c_int,
    /// The will topic.
    pub topicName: *const c_char,
    /// The will payload as a NUL-terminated string; if NULL, `payload` is used.
    pub message: *const c_char,
    /// The retained flag of the will message.
    pub retained: c_int,
    /// The QoS of the will message.
    pub qos: c_int,
    /// The binary will payload (version 1), used when `message` is NULL.
    pub payload: MQTTClient_willOptions_payload,
}

/// TLS options (`MQTTClient_SSLOptions`, eyecatcher `MQTS`, versions 0-5).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTClient_SSLOptions {
    /// The eyecatcher for this structure. Must be MQTS.
    pub struct_id: [c_char; 4],
    /// The version number of this structure: 0 to 5.
    pub struct_version: c_int,
    /// PEM file of the trusted CA certificates.
    pub trustStore: *const c_char,
    /// PEM file with the client certificate chain (and possibly its key).
    pub keyStore: *const c_char,
    /// PEM file with the client's private key, if not in `keyStore`.
    pub privateKey: *const c_char,
    /// Password of an encrypted private key.
    pub privateKeyPassword: *const c_char,
    /// OpenSSL cipher list (NULL or empty: the TLS library's defaults). TLS 1.3 suite names
    /// (`TLS_AES_128_GCM_SHA256`...) in it restrict TLS 1.3, the others TLS 1.2 and below
    /// (see `MQTTClient_connect`). Linux only: elsewhere a connect with a list fails.
    pub enabledCipherSuites: *const c_char,
    /// 1: verify the server certificate and (always, in mqttsync) its host name; 0: no
    /// verification at all.
    pub enableServerCertAuth: c_int,
    /// `MQTT_SSL_VERSION_*` (version 1).
    pub sslVersion: c_int,
    /// 1: verify the server host name (version 2). No effect in mqttsync: the host name is
    /// verified whenever `enableServerCertAuth` is 1.
    pub verify: c_int,
    /// Directory of CA certificates (version 2): every file in it holding PEM certificates
    /// (or one DER certificate) is trusted, hashed names (`c_rehash`) or not.
    pub CApath: *const c_char,
    /// Called with the text of the TLS failure that ended a connect (version 3).
    pub ssl_error_cb:
        Option<unsafe extern "C" fn(str_: *const c_char, len: usize, u: *mut c_void) -> c_int>,
    /// Context for `ssl_error_cb` (version 3).
    pub ssl_error_context: *mut c_void,
    /// TLS-PSK callback (version 4): called during the handshake, on the thread that
    /// called `MQTTClient_connect`, with the server's identity hint (NULL when it sent none,
    /// always with TLS 1.3), a buffer for the identity (`max_identity_len` bytes plus the
    /// terminating NUL), a buffer for the key (`max_psk_len` bytes) and `ssl_psk_context`;
    /// returns the key's length, or 0 to give up (the connect then fails). The buffers are
    /// the library's, valid during the call only. Linux only: elsewhere a connect with it
    /// set fails.
    pub ssl_psk_cb: Option<
        unsafe extern "C" fn(
            hint: *const c_char,
            identity: *mut c_char,
            max_identity_len: c_uint,
            psk: *mut c_uchar,
            max_psk_len: c_uint,
            u: *mut c_void,
        ) -> c_uint,
    >,
    /// Context for `ssl_psk_cb` (version 4).
    pub ssl_psk_context: *mut c_void,
    /// 1: do not load the default trust store (version 4).
    pub disableDefaultTrustStore: c_int,
    /// ALPN protocol list in wire format (version 5).
    pub protos: *const c_uchar,
    /// Length of `protos` (version 5).
    pub protos_len: c_uint,
}

/// A name/value pair (`MQTTClient_nameValue`), used for version information and HTTP
/// headers.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTClient_nameValue {
    /// The name.
    pub name: *const c_char,
    /// The value.
    pub value: *const c_char,
}

/// Values returned by a successful connect (`returned` inside
/// [`MQTTClient_connectOptions`], an anonymous struct in C; connect options version 4+).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTClient_connectOptions_returned {
    /// The serverURI connected to (without the scheme).
    pub serverURI: *const c_char,
    /// The MQTT version used to connect with.
    pub MQTTVersion: c_int,
    /// For MQTT 3.1.1, the session present flag returned in the CONNACK.
    pub sessionPresent: c_int,
}

/// A binary password (`binarypwd` inside [`MQTTClient_connectOptions`], an anonymous
/// struct in C; connect options version 5+).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTClient_connectOptions_binarypwd {
    /// Binary password length.
    pub len: c_int,
    /// Binary password data.
    pub data: *const c_void,
}

/// Connect options (`MQTTClient_connectOptions`, eyecatcher `MQTC`, versions 0-8).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTClient_connectOptions {
    /// The eyecatcher for this structure. Must be MQTC.
    pub struct_id: [c_char; 4],
    /// The version number of this structure: 0 to 8.
    pub struct_version: c_int,
    /// Keepalive interval in seconds.
    pub keepAliveInterval: c_int,
    /// MQTT 3 clean session flag.
    pub cleansession: c_int,
    /// 1: at most one QoS>0 message in flight.
    pub reliable: c_int,
    /// The last will, or NULL.
    pub will: *mut MQTTClient_willOptions,
    /// User name, or NULL.
    pub username: *const c_char,
    /// Password (string), or NULL.
    pub password: *const c_char,
    /// Connect timeout in seconds.
    pub connectTimeout: c_int,
    /// Unused by MQTTClient (kept for layout).
    pub retryInterval: c_int,
    /// TLS options (version 1), or NULL.
    pub ssl: *mut MQTTClient_SSLOptions,
    /// Number of entries in `serverURIs` (version 2).
    pub serverURIcount: c_int,
    /// Server URIs to try in order (version 2).
    pub serverURIs: *const *mut c_char,
    /// `MQTTVERSION_*` (version 3).
    pub MQTTVersion: c_int,
    /// Filled by a successful connect (version 4).
    pub returned: MQTTClient_connectOptions_returned,
    /// Binary password (version 5).
    pub binarypwd: MQTTClient_connectOptions_binarypwd,
    /// Maximum messages in flight, -1 for the default (version 6).
    pub maxInflightMessages: c_int,
    /// MQTT 5 clean start flag (version 6).
    pub cleanstart: c_int,
    /// HTTP headers for WebSocket connections, ending with a NULL name (version 7).
    pub httpHeaders: *const MQTTClient_nameValue,
    /// HTTP proxy (version 8).
    pub httpProxy: *const c_char,
    /// HTTPS proxy (version 8).
    pub httpsProxy: *const c_char,
}

/// The result of an MQTT 5 call (`MQTTResponse`). Free with `MQTTResponse_free`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTResponse {
    /// The version number of this structure (1).
    pub version: c_int,
    /// The MQTT 5 reason code returned.
    pub reasonCode: MQTTReasonCodes,
    /// Number of entries in `reasonCodes` (subscribeMany5 / unsubscribeMany5).
    pub reasonCodeCount: c_int,
    /// The reason codes (subscribeMany5 / unsubscribeMany5), allocated with `malloc`.
    pub reasonCodes: *mut MQTTReasonCodes,
    /// The properties returned, allocated with `malloc`, or NULL.
    pub properties: *mut MQTTProperties,
}

impl MQTTResponse {
    /// `MQTTResponse_initializer`: version 1, success, no codes, no properties.
    pub const fn new() -> Self {
        MQTTResponse {
            version: 1,
            reasonCode: 0,
            reasonCodeCount: 0,
            reasonCodes: std::ptr::null_mut(),
            properties: std::ptr::null_mut(),
        }
    }
}

impl Default for MQTTResponse {
    fn default() -> Self {
        Self::new()
    }
}

// ---------------------------------------------------------------------------------------
// Callback types. In C these are *function types* (hand-written in the header) that
// parameters use as `MQTTClient_connectionLost* cl`; in Rust they are the corresponding
// nullable function pointers, so a parameter is declared `cl: MQTTClient_connectionLost`.
// ---------------------------------------------------------------------------------------

/// `MQTTClient_messageArrived`: returns 1 when the message was consumed (the application
/// then frees it), 0 to have it redelivered.
pub type MQTTClient_messageArrived = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        topicName: *mut c_char,
        topicLen: c_int,
        message: *mut MQTTClient_message,
    ) -> c_int,
>;

/// `MQTTClient_deliveryComplete`: a QoS 1/2 publication was acknowledged.
pub type MQTTClient_deliveryComplete =
    Option<unsafe extern "C" fn(context: *mut c_void, dt: MQTTClient_deliveryToken)>;

/// `MQTTClient_connectionLost`: the connection dropped; `cause` is a reason text.
pub type MQTTClient_connectionLost =
    Option<unsafe extern "C" fn(context: *mut c_void, cause: *mut c_char)>;

/// `MQTTClient_disconnected`: the MQTT 5 server sent DISCONNECT.
pub type MQTTClient_disconnected = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        properties: *mut MQTTProperties,
        reasonCode: MQTTReasonCodes,
    ),
>;

/// `MQTTClient_published`: MQTT 5 publication completed (or PUBREC failure).
pub type MQTTClient_published = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        dt: c_int,
        packet_type: c_int,
        properties: *mut MQTTProperties,
        reasonCode: MQTTReasonCodes,
    ),
>;

/// `MQTTClient_traceCallback`: receives trace lines at or above the trace level.
pub type MQTTClient_traceCallback =
    Option<unsafe extern "C" fn(level: MQTTCLIENT_TRACE_LEVELS, message: *mut c_char)>;

/// `MQTTPersistence_beforeWrite` (declared by Paho's persistence header).
pub type MQTTPersistence_beforeWrite = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        bufcount: c_int,
        buffers: *mut *mut c_char,
        buflens: *mut c_int,
    ) -> c_int,
>;

/// `MQTTPersistence_afterRead` (declared by Paho's persistence header).
pub type MQTTPersistence_afterRead = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        buffer: *mut *mut c_char,
        buflen: *mut c_int,
    ) -> c_int,
>;

// ---------------------------------------------------------------------------------------
// User persistence (MQTTClientPersistence.h). These typedefs are pointer types in Paho too.
// ---------------------------------------------------------------------------------------

/// Opens the persistent store for a client; sets `*handle`.
pub type Persistence_open = Option<
    unsafe extern "C" fn(
        handle: *mut *mut c_void,
        clientID: *const c_char,
        serverURI: *const c_char,
        context: *mut c_void,
    ) -> c_int,
>;
/// Closes the persistent store.
pub type Persistence_close = Option<unsafe extern "C" fn(handle: *mut c_void) -> c_int>;
/// Stores the concatenation of `bufcount` buffers under `key`.
pub type Persistence_put = Option<
    unsafe extern "C" fn(
        handle: *mut c_void,
        key: *mut c_char,
        bufcount: c_int,
        buffers: *mut *mut c_char,
        buflens: *mut c_int,
    ) -> c_int,
>;
/// Retrieves the data stored under `key` into a buffer allocated with `malloc`.
pub type Persistence_get = Option<
    unsafe extern "C" fn(
        handle: *mut c_void,
        key: *mut c_char,
        buffer: *mut *mut c_char,
        buflen: *mut c_int,
    ) -> c_int,
>;
/// Removes the data stored under `key`.
pub type Persistence_remove =
    Option<unsafe extern "C" fn(handle: *mut c_void, key: *mut c_char) -> c_int>;
/// Returns all keys, in arrays allocated with `malloc`.
pub type Persistence_keys = Option<
    unsafe extern "C" fn(
        handle: *mut c_void,
        keys: *mut *mut *mut c_char,
        nkeys: *mut c_int,
    ) -> c_int,
>;
/// Clears the store.
pub type Persistence_clear = Option<unsafe extern "C" fn(handle: *mut c_void) -> c_int>;
/// Returns 0 if `key` is stored, `MQTTCLIENT_PERSISTENCE_ERROR` otherwise.
pub type Persistence_containskey =
    Option<unsafe extern "C" fn(handle: *mut c_void, key: *mut c_char) -> c_int>;

/// An application-defined persistent store (`MQTTClient_persistence`), passed as the
/// context of `MQTTCLIENT_PERSISTENCE_USER`. All eight functions are required.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTClient_persistence {
    /// Passed to `popen` as its `context`.
    pub context: *mut c_void,
    /// Open.
    pub popen: Persistence_open,
    /// Close.
    pub pclose: Persistence_close,
    /// Put.
    pub pput: Persistence_put,
    /// Get.
    pub pget: Persistence_get,
    /// Remove.
    pub premove: Persistence_remove,
    /// Keys.
    pub pkeys: Persistence_keys,
    /// Clear.
    pub pclear: Persistence_clear,
    /// Contains key.
    pub pcontainskey: Persistence_containskey,
}
