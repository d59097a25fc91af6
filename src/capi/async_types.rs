//! `#[repr(C)]` mirrors of every public type of Paho C 1.3.11/1.3.12's `MQTTAsync.h`, with
//! Paho's exact layout, and its `#define` constants with the same names and values.
//!
//! As in Paho, `MQTTAsync.h` shares `MQTTProperties`, `MQTTSubscribe_options`, the reason
//! codes and `MQTTClient_persistence` with `MQTTClient.h`, and has its own structures for
//! the rest. `MQTTAsync_message`, `MQTTAsync_willOptions`, `MQTTAsync_SSLOptions` and
//! `MQTTAsync_nameValue` are distinct types with the same layout as their `MQTTClient_`
//! counterparts (checked at compile time below), so the conversions written for the
//! synchronous API serve both through a pointer cast.
//!
//! Anonymous nested structs and unions of Paho are named types here
//! (`MQTTAsync_successData_alt`, ...); the field names are Paho's, so C source using
//! `data->alt.connect.serverURI` compiles unchanged. The callback typedefs, which Paho
//! declares as function types, and the trace-level enum are hand-written in
//! `cbindgen.toml`. `tests/abi.rs` compares everything with Paho's real header.

use std::os::raw::{c_char, c_int, c_uchar, c_uint, c_void};

use super::types::*;

/// A client handle (`typedef void* MQTTAsync`).
pub type MQTTAsync = *mut c_void;
/// A request token (`typedef int MQTTAsync_token`).
pub type MQTTAsync_token = c_int;
/// Trace levels (`enum MQTTASYNC_TRACE_LEVELS`; hand-written in the header).
pub type MQTTASYNC_TRACE_LEVELS = c_int;

/// Return code: success.
pub const MQTTASYNC_SUCCESS: c_int = 0;
/// Return code: generic failure.
pub const MQTTASYNC_FAILURE: c_int = -1;
/// Return code: persistence error (same value as `MQTTCLIENT_PERSISTENCE_ERROR`).
pub const MQTTASYNC_PERSISTENCE_ERROR: c_int = -2;
/// Return code: the client is disconnected.
pub const MQTTASYNC_DISCONNECTED: c_int = -3;
/// Return code: the maximum number of messages in flight has been reached.
pub const MQTTASYNC_MAX_MESSAGES_INFLIGHT: c_int = -4;
/// Return code: an invalid UTF-8 string (or topic) was given.
pub const MQTTASYNC_BAD_UTF8_STRING: c_int = -5;
/// Return code: a NULL parameter was given.
pub const MQTTASYNC_NULL_PARAMETER: c_int = -6;
/// Return code: the topic contains NUL characters and was truncated.
pub const MQTTASYNC_TOPICNAME_TRUNCATED: c_int = -7;
/// Return code: a structure has a bad eyecatcher or version.
pub const MQTTASYNC_BAD_STRUCTURE: c_int = -8;
/// Return code: a QoS outside 0-2.
pub const MQTTASYNC_BAD_QOS: c_int = -9;
/// Return code: no more message ids (tokens) available.
pub const MQTTASYNC_NO_MORE_MSGIDS: c_int = -10;
/// Return code: the request was not completed before the client was destroyed or
/// disconnected (given to `onFailure`).
pub const MQTTASYNC_OPERATION_INCOMPLETE: c_int = -11;
/// Return code: no more messages can be buffered (queue full).
pub const MQTTASYNC_MAX_BUFFERED_MESSAGES: c_int = -12;
/// Return code: TLS is not supported by this build.
pub const MQTTASYNC_SSL_NOT_SUPPORTED: c_int = -13;
/// Return code: unknown URI scheme.
pub const MQTTASYNC_BAD_PROTOCOL: c_int = -14;
/// Return code: an option for the wrong MQTT version.
pub const MQTTASYNC_BAD_MQTT_OPTION: c_int = -15;
/// Return code: a call for the wrong MQTT version of the client.
pub const MQTTASYNC_WRONG_MQTT_VERSION: c_int = -16;
/// Return code: zero-length will topic.
pub const MQTTASYNC_0_LEN_WILL_TOPIC: c_int = -17;
/// Return code: the command was ignored (e.g. a disconnect overtaken by another).
pub const MQTTASYNC_COMMAND_IGNORED: c_int = -18;
/// Return code: `maxBufferedMessages` must be >= 0.
pub const MQTTASYNC_MAX_BUFFERED: c_int = -19;
/// `MQTTAsync_isComplete` answer for a completed request.
pub const MQTTASYNC_TRUE: c_int = 1;

/// Trace level enumerators (`enum MQTTASYNC_TRACE_LEVELS`) for Rust code; in C they are
/// enumerators declared by hand in the header.
///
/// cbindgen:ignore
#[allow(missing_docs)]
pub mod async_enums {
    use std::os::raw::c_int;
    pub const MQTTASYNC_TRACE_MAXIMUM: c_int = 1;
    pub const MQTTASYNC_TRACE_MEDIUM: c_int = 2;
    pub const MQTTASYNC_TRACE_MINIMUM: c_int = 3;
    pub const MQTTASYNC_TRACE_PROTOCOL: c_int = 4;
    pub const MQTTASYNC_TRACE_ERROR: c_int = 5;
    pub const MQTTASYNC_TRACE_SEVERE: c_int = 6;
    pub const MQTTASYNC_TRACE_FATAL: c_int = 7;
}

/// Global initialisation options (`MQTTAsync_init_options`, eyecatcher `MQTG`, version 0).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_init_options {
    /// The eyecatcher for this structure. Must be MQTG.
    pub struct_id: [c_char; 4],
    /// The version number of this structure. Must be 0.
    pub struct_version: c_int,
    /// 1: the library initialises OpenSSL (no effect in mqttsync).
    pub do_openssl_init: c_int,
}

/// A message (`MQTTAsync_message`, eyecatcher `MQTM`, versions 0-1); same layout as
/// `MQTTClient_message`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_message {
    /// The eyecatcher for this structure. Must be MQTM.
    pub struct_id: [c_char; 4],
    /// The version number of this structure: 0, or 1 with properties.
    pub struct_version: c_int,
    /// Payload length in bytes.
    pub payloadlen: c_int,
    /// The payload.
    pub payload: *mut c_void,
    /// Quality of service: 0, 1 or 2.
    pub qos: c_int,
    /// The retained flag.
    pub retained: c_int,
    /// The duplicate flag (incoming messages only).
    pub dup: c_int,
    /// The MQTT packet identifier (incoming messages only).
    pub msgid: c_int,
    /// MQTT 5 properties (version 1).
    pub properties: MQTTProperties,
}

/// `binarypwd` inside [`MQTTAsync_connectData`] (an anonymous struct in C).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_connectData_binarypwd {
    /// Binary password length.
    pub len: c_int,
    /// Binary password data.
    pub data: *const c_void,
}

/// Connect data the application may change before a reconnect
/// (`MQTTAsync_connectData`, eyecatcher `MQCD`, version 0).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_connectData {
    /// The eyecatcher for this structure. Will be MQCD.
    pub struct_id: [c_char; 4],
    /// The version number of this structure. Will be 0.
    pub struct_version: c_int,
    /// The user name (NULL: none).
    pub username: *const c_char,
    /// The binary password (data NULL: none).
    pub binarypwd: MQTTAsync_connectData_binarypwd,
}

/// Failure data given to `onFailure` (`MQTTAsync_failureData`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_failureData {
    /// The token of the failed request.
    pub token: MQTTAsync_token,
    /// The error code (an `MQTTASYNC_*` code, or a CONNACK return code).
    pub code: c_int,
    /// Optional text explaining the error (may be NULL).
    pub message: *const c_char,
}

/// MQTT 5 failure data given to `onFailure5` (`MQTTAsync_failureData5`, eyecatcher `MQFD`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_failureData5 {
    /// The eyecatcher for this structure. Will be MQFD.
    pub struct_id: [c_char; 4],
    /// The version number of this structure. Will be 0.
    pub struct_version: c_int,
    /// The token of the failed request.
    pub token: MQTTAsync_token,
    /// The MQTT reason code returned by the server.
    pub reasonCode: MQTTReasonCodes,
    /// The properties of the acknowledgement, if any.
    pub properties: MQTTProperties,
    /// The library error code.
    pub code: c_int,
    /// Optional text explaining the error (may be NULL).
    pub message: *const c_char,
    /// Packet type on which the failure occurred (publish flows).
    pub packet_type: c_int,
}

/// `pub` inside the success data unions: the message published and its topic.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_successData_pub {
    /// The message sent to the server.
    pub message: MQTTAsync_message,
    /// The topic the message was sent to.
    pub destinationName: *mut c_char,
}

/// `connect` inside the success data unions.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_successData_connect {
    /// The server connected to.
    pub serverURI: *mut c_char,
    /// The MQTT version in use.
    pub MQTTVersion: c_int,
    /// The session present flag of the CONNACK.
    pub sessionPresent: c_int,
}

/// `alt` of [`MQTTAsync_successData`] (an anonymous union in C).
#[repr(C)]
#[derive(Clone, Copy)]
pub union MQTTAsync_successData_alt {
    /// Subscribe to one filter: the granted QoS.
    pub qos: c_int,
    /// Subscribe to several filters: the granted QoS of each.
    pub qosList: *mut c_int,
    /// Publish: the message.
    pub r#pub: MQTTAsync_successData_pub,
    /// Connect: server, version, session present.
    pub connect: MQTTAsync_successData_connect,
}

/// Success data given to `onSuccess` (`MQTTAsync_successData`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MQTTAsync_successData {
    /// The token of the request.
    pub token: MQTTAsync_token,
    /// What the request returned, by request type.
    pub alt: MQTTAsync_successData_alt,
}

/// `sub` / `unsub` inside [`MQTTAsync_successData5_alt`]: the reason codes returned.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_successData5_codes {
    /// Number of reason codes.
    pub reasonCodeCount: c_int,
    /// The reason codes.
    pub reasonCodes: *mut MQTTReasonCodes,
}

/// `alt` of [`MQTTAsync_successData5`] (an anonymous union in C).
#[repr(C)]
#[derive(Clone, Copy)]
pub union MQTTAsync_successData5_alt {
    /// Subscribe to several filters: the SUBACK reason codes.
    pub sub: MQTTAsync_successData5_codes,
    /// Publish: the message.
    pub r#pub: MQTTAsync_successData_pub,
    /// Connect: server, version, session present.
    pub connect: MQTTAsync_successData_connect,
    /// Unsubscribe from several filters: the UNSUBACK reason codes.
    pub unsub: MQTTAsync_successData5_codes,
}

/// MQTT 5 success data given to `onSuccess5` (`MQTTAsync_successData5`, eyecatcher `MQSD`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MQTTAsync_successData5 {
    /// The eyecatcher for this structure. Will be MQSD.
    pub struct_id: [c_char; 4],
    /// The version number of this structure. Will be 0.
    pub struct_version: c_int,
    /// The token of the request.
    pub token: MQTTAsync_token,
    /// The MQTT 5 reason code returned.
    pub reasonCode: MQTTReasonCodes,
    /// The MQTT 5 properties returned, if any.
    pub properties: MQTTProperties,
    /// What the request returned, by request type.
    pub alt: MQTTAsync_successData5_alt,
}

/// Per-call options: completion callbacks and MQTT 5 input (`MQTTAsync_responseOptions`,
/// also named `MQTTAsync_callOptions`; eyecatcher `MQTR`, versions 0-1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_responseOptions {
    /// The eyecatcher for this structure. Must be MQTR.
    pub struct_id: [c_char; 4],
    /// The version number of this structure: 0, or 1 with the MQTT 5 fields.
    pub struct_version: c_int,
    /// Called when the request completes successfully (may be NULL).
    pub onSuccess: MQTTAsync_onSuccess,
    /// Called when the request fails (may be NULL).
    pub onFailure: MQTTAsync_onFailure,
    /// Passed to the callbacks.
    pub context: *mut c_void,
    /// Output: the token of the request.
    pub token: MQTTAsync_token,
    /// MQTT 5 success callback (version 1).
    pub onSuccess5: MQTTAsync_onSuccess5,
    /// MQTT 5 failure callback (version 1).
    pub onFailure5: MQTTAsync_onFailure5,
    /// MQTT 5 properties of the request (version 1).
    pub properties: MQTTProperties,
    /// MQTT 5 subscription options for `MQTTAsync_subscribe` (version 1).
    pub subscribeOptions: MQTTSubscribe_options,
    /// Number of entries of `subscribeOptionsList` (`MQTTAsync_subscribeMany`).
    pub subscribeOptionsCount: c_int,
    /// Subscription options per filter (`MQTTAsync_subscribeMany`).
    pub subscribeOptionsList: *mut MQTTSubscribe_options,
}

/// The newer name of [`MQTTAsync_responseOptions`].
pub type MQTTAsync_callOptions = MQTTAsync_responseOptions;

/// Create options (`MQTTAsync_createOptions`, eyecatcher `MQCO`, versions 0-2).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_createOptions {
    /// The eyecatcher for this structure. Must be MQCO.
    pub struct_id: [c_char; 4],
    /// The version number of this structure: 0 to 2.
    pub struct_version: c_int,
    /// Accept publishes while disconnected (buffered until connected).
    pub sendWhileDisconnected: c_int,
    /// The most publishes buffered while disconnected.
    pub maxBufferedMessages: c_int,
    /// MQTT version of the client (version 1+): `MQTTVERSION_5` for MQTT 5.
    pub MQTTVersion: c_int,
    /// Buffer publishes before the first connect too (version 2+).
    pub allowDisconnectedSendAtAnyTime: c_int,
    /// When the buffer is full, drop the oldest message instead of refusing (version 2+).
    pub deleteOldestMessages: c_int,
    /// Restore messages from persistence at create, or clear it (version 2+).
    pub restoreMessages: c_int,
    /// Persist buffered QoS 0 publishes (version 2+).
    pub persistQoS0: c_int,
}

/// `payload` inside [`MQTTAsync_willOptions`] (an anonymous struct in C).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_willOptions_payload {
    /// Binary payload length.
    pub len: c_int,
    /// Binary payload data.
    pub data: *const c_void,
}

/// Last will (`MQTTAsync_willOptions`, eyecatcher `MQTW`, versions 0-1); same layout as
/// `MQTTClient_willOptions`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_willOptions {
    /// The eyecatcher for this structure. Must be MQTW.
    pub struct_id: [c_char; 4],
    /// The version number of this structure: 0, or 1 with the binary payload.
    pub struct_version: c_int,
    /// The will topic.
    pub topicName: *const c_char,
    /// The will payload as a string (used when not NULL).
    pub message: *const c_char,
    /// The retained flag of the will.
    pub retained: c_int,
    /// The QoS of the will.
    pub qos: c_int,
    /// The binary payload, used when `message` is NULL (version 1).
    pub payload: MQTTAsync_willOptions_payload,
}

/// TLS options (`MQTTAsync_SSLOptions`, eyecatcher `MQTS`, versions 0-5); same layout as
/// `MQTTClient_SSLOptions`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_SSLOptions {
    /// The eyecatcher for this structure. Must be MQTS.
    pub struct_id: [c_char; 4],
    /// The version number of this structure: 0 to 5.
    pub struct_version: c_int,
    /// PEM file of trusted CA certificates.
    pub trustStore: *const c_char,
    /// PEM file of the client certificate chain (may include the key).
    pub keyStore: *const c_char,
    /// PEM file of the client private key.
    pub privateKey: *const c_char,
    /// Password of the private key.
    pub privateKeyPassword: *const c_char,
    /// Cipher list (not supported by mqttsync unless NULL or empty).
    pub enabledCipherSuites: *const c_char,
    /// Verify the server certificate (and, in mqttsync, its host name).
    pub enableServerCertAuth: c_int,
    /// Minimum TLS version (version 1+).
    pub sslVersion: c_int,
    /// Post-connect host name check (version 2+; implied by `enableServerCertAuth`).
    pub verify: c_int,
    /// Directory of CA certificates (version 2+).
    pub CApath: *const c_char,
    /// Receives TLS error texts (version 3+).
    pub ssl_error_cb:
        Option<unsafe extern "C" fn(str: *const c_char, len: usize, u: *mut c_void) -> c_int>,
    /// Context of `ssl_error_cb` (version 3+).
    pub ssl_error_context: *mut c_void,
    /// TLS-PSK callback (version 4+; not supported by mqttsync).
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
    /// Context of `ssl_psk_cb` (version 4+).
    pub ssl_psk_context: *mut c_void,
    /// Do not load the default CA certificates (version 4+).
    pub disableDefaultTrustStore: c_int,
    /// ALPN protocol list in wire format (version 5+).
    pub protos: *const c_uchar,
    /// Length of `protos` (version 5+).
    pub protos_len: c_uint,
}

/// A name/value pair (`MQTTAsync_nameValue`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_nameValue {
    /// The name.
    pub name: *const c_char,
    /// The value.
    pub value: *const c_char,
}

/// `binarypwd` inside [`MQTTAsync_connectOptions`] (an anonymous struct in C).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_connectOptions_binarypwd {
    /// Binary password length.
    pub len: c_int,
    /// Binary password data.
    pub data: *const c_void,
}

/// Connect options (`MQTTAsync_connectOptions`, eyecatcher `MQTC`, versions 0-8).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_connectOptions {
    /// The eyecatcher for this structure. Must be MQTC.
    pub struct_id: [c_char; 4],
    /// The version number of this structure: 0 to 8.
    pub struct_version: c_int,
    /// Keepalive interval in seconds (0: none).
    pub keepAliveInterval: c_int,
    /// Clean session (MQTT 3).
    pub cleansession: c_int,
    /// Most QoS 1/2 messages in flight at once.
    pub maxInflight: c_int,
    /// Last will (may be NULL).
    pub will: *mut MQTTAsync_willOptions,
    /// User name (may be NULL).
    pub username: *const c_char,
    /// Password (may be NULL).
    pub password: *const c_char,
    /// Connect timeout in seconds.
    pub connectTimeout: c_int,
    /// In-session retry interval (not used: MQTT 3.1.1 and 5 resend only on reconnect).
    pub retryInterval: c_int,
    /// TLS options (version 1+; may be NULL).
    pub ssl: *mut MQTTAsync_SSLOptions,
    /// Called when the connect succeeds.
    pub onSuccess: MQTTAsync_onSuccess,
    /// Called when the connect fails.
    pub onFailure: MQTTAsync_onFailure,
    /// Passed to the callbacks.
    pub context: *mut c_void,
    /// Number of entries of `serverURIs` (version 2+).
    pub serverURIcount: c_int,
    /// Servers tried in order (version 2+).
    pub serverURIs: *const *mut c_char,
    /// MQTT version to connect with (version 3+).
    pub MQTTVersion: c_int,
    /// Reconnect automatically after a loss (version 4+).
    pub automaticReconnect: c_int,
    /// First reconnect delay in seconds (version 4+).
    pub minRetryInterval: c_int,
    /// Largest reconnect delay in seconds (version 4+).
    pub maxRetryInterval: c_int,
    /// Binary password, used when `password` is NULL (version 5+).
    pub binarypwd: MQTTAsync_connectOptions_binarypwd,
    /// MQTT 5 clean start (version 6+).
    pub cleanstart: c_int,
    /// MQTT 5 CONNECT properties (version 6+).
    pub connectProperties: *mut MQTTProperties,
    /// MQTT 5 will properties (version 6+).
    pub willProperties: *mut MQTTProperties,
    /// MQTT 5 success callback (version 6+).
    pub onSuccess5: MQTTAsync_onSuccess5,
    /// MQTT 5 failure callback (version 6+).
    pub onFailure5: MQTTAsync_onFailure5,
    /// HTTP headers of the WebSocket upgrade, ending with a NULL name (version 7+).
    pub httpHeaders: *const MQTTAsync_nameValue,
    /// HTTP proxy (version 8+).
    pub httpProxy: *const c_char,
    /// HTTPS proxy (version 8+).
    pub httpsProxy: *const c_char,
}

/// Disconnect options (`MQTTAsync_disconnectOptions`, eyecatcher `MQTD`, versions 0-1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MQTTAsync_disconnectOptions {
    /// The eyecatcher for this structure. Must be MQTD.
    pub struct_id: [c_char; 4],
    /// The version number of this structure: 0, or 1 with the MQTT 5 fields.
    pub struct_version: c_int,
    /// Milliseconds to wait for in-flight messages before disconnecting.
    pub timeout: c_int,
    /// Called when the disconnect completes.
    pub onSuccess: MQTTAsync_onSuccess,
    /// Called when the disconnect fails.
    pub onFailure: MQTTAsync_onFailure,
    /// Passed to the callbacks.
    pub context: *mut c_void,
    /// MQTT 5 DISCONNECT properties (version 1).
    pub properties: MQTTProperties,
    /// MQTT 5 DISCONNECT reason code (version 1).
    pub reasonCode: MQTTReasonCodes,
    /// MQTT 5 success callback (version 1).
    pub onSuccess5: MQTTAsync_onSuccess5,
    /// MQTT 5 failure callback (version 1).
    pub onFailure5: MQTTAsync_onFailure5,
}

// ---------------------------------------------------------------------------------------
// Callback types: function types in C (hand-written in the header), nullable function
// pointers here.
// ---------------------------------------------------------------------------------------

/// `MQTTAsync_messageArrived`: return 1 when consumed (the application frees message and
/// topic), 0 to have the message delivered again.
pub type MQTTAsync_messageArrived = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        topicName: *mut c_char,
        topicLen: c_int,
        message: *mut MQTTAsync_message,
    ) -> c_int,
>;
/// `MQTTAsync_deliveryComplete`: a QoS 1/2 publish was acknowledged.
pub type MQTTAsync_deliveryComplete =
    Option<unsafe extern "C" fn(context: *mut c_void, token: MQTTAsync_token)>;
/// `MQTTAsync_connectionLost`: the connection dropped.
pub type MQTTAsync_connectionLost =
    Option<unsafe extern "C" fn(context: *mut c_void, cause: *mut c_char)>;
/// `MQTTAsync_connected`: a connect (first or automatic reconnect) succeeded.
pub type MQTTAsync_connected =
    Option<unsafe extern "C" fn(context: *mut c_void, cause: *mut c_char)>;
/// `MQTTAsync_disconnected`: the MQTT 5 server sent DISCONNECT.
pub type MQTTAsync_disconnected = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        properties: *mut MQTTProperties,
        reasonCode: MQTTReasonCodes,
    ),
>;
/// `MQTTAsync_updateConnectOptions`: may change user name and password before a
/// reconnect; returns non-zero when it changed them.
pub type MQTTAsync_updateConnectOptions =
    Option<unsafe extern "C" fn(context: *mut c_void, data: *mut MQTTAsync_connectData) -> c_int>;
/// `MQTTAsync_onSuccess`.
pub type MQTTAsync_onSuccess =
    Option<unsafe extern "C" fn(context: *mut c_void, response: *mut MQTTAsync_successData)>;
/// `MQTTAsync_onSuccess5`.
pub type MQTTAsync_onSuccess5 =
    Option<unsafe extern "C" fn(context: *mut c_void, response: *mut MQTTAsync_successData5)>;
/// `MQTTAsync_onFailure`.
pub type MQTTAsync_onFailure =
    Option<unsafe extern "C" fn(context: *mut c_void, response: *mut MQTTAsync_failureData)>;
/// `MQTTAsync_onFailure5`.
pub type MQTTAsync_onFailure5 =
    Option<unsafe extern "C" fn(context: *mut c_void, response: *mut MQTTAsync_failureData5)>;
/// `MQTTAsync_traceCallback`.
pub type MQTTAsync_traceCallback =
    Option<unsafe extern "C" fn(level: MQTTASYNC_TRACE_LEVELS, message: *mut c_char)>;

// The shared conversions read these through the MQTTClient_ twins: same size and field
// offsets (the ABI test compares the C side with Paho).
const _: () = {
    use std::mem::size_of;
    assert!(size_of::<MQTTAsync_message>() == size_of::<MQTTClient_message>());
    assert!(size_of::<MQTTAsync_willOptions>() == size_of::<MQTTClient_willOptions>());
    assert!(size_of::<MQTTAsync_SSLOptions>() == size_of::<MQTTClient_SSLOptions>());
    assert!(size_of::<MQTTAsync_nameValue>() == size_of::<MQTTClient_nameValue>());
};
