/*
 * ABI probe: compiled once against Eclipse Paho C's real MQTTClient.h (-I/usr/include) and
 * once against mqttsync's (-I include); tests/abi.rs requires identical output.
 * Prints sizeof/alignment of every public type, offsetof/sizeof of every field of every
 * public struct (all struct versions' fields, nested ones included), the value of every
 * constant and enumerator, and the bytes of every initializer, field by field.
 */
#include <stdio.h>
#include <stddef.h>
#include "MQTTClient.h"
#include "MQTTClientPersistence.h"
#include "MQTTProperties.h"
#include "MQTTReasonCodes.h"
#include "MQTTSubscribeOpts.h"

#define ALIGNOF(T) ((unsigned long)offsetof(struct { char c; T t; }, t))
#define TYPE(T) printf("type %s size %lu align %lu\n", #T, (unsigned long)sizeof(T), ALIGNOF(T));
#define FIELD(T, f) printf("field %s.%s offset %lu size %lu\n", #T, #f, \
    (unsigned long)offsetof(T, f), (unsigned long)sizeof(((T*)0)->f));
#define CONST(c) printf("const %s = %ld\n", #c, (long)(c));

static void bytes(const char* what, const void* p, size_t n)
{
    const unsigned char* b = (const unsigned char*)p;
    size_t i;
    printf("%s =", what);
    for (i = 0; i < n; ++i)
        printf(" %02x", b[i]);
    printf("\n");
}

/* Field lists: X(type, field). Every field of every version. */
#define F_init_options(X) X(MQTTClient_init_options, struct_id) \
    X(MQTTClient_init_options, struct_version) X(MQTTClient_init_options, do_openssl_init)

#define F_message(X) X(MQTTClient_message, struct_id) X(MQTTClient_message, struct_version) \
    X(MQTTClient_message, payloadlen) X(MQTTClient_message, payload) \
    X(MQTTClient_message, qos) X(MQTTClient_message, retained) X(MQTTClient_message, dup) \
    X(MQTTClient_message, msgid) X(MQTTClient_message, properties) \
    X(MQTTClient_message, properties.count) X(MQTTClient_message, properties.max_count) \
    X(MQTTClient_message, properties.length) X(MQTTClient_message, properties.array)

#define F_createOptions(X) X(MQTTClient_createOptions, struct_id) \
    X(MQTTClient_createOptions, struct_version) X(MQTTClient_createOptions, MQTTVersion)

#define F_willOptions(X) X(MQTTClient_willOptions, struct_id) \
    X(MQTTClient_willOptions, struct_version) X(MQTTClient_willOptions, topicName) \
    X(MQTTClient_willOptions, message) X(MQTTClient_willOptions, retained) \
    X(MQTTClient_willOptions, qos) X(MQTTClient_willOptions, payload) \
    X(MQTTClient_willOptions, payload.len) X(MQTTClient_willOptions, payload.data)

#define F_SSLOptions(X) X(MQTTClient_SSLOptions, struct_id) \
    X(MQTTClient_SSLOptions, struct_version) X(MQTTClient_SSLOptions, trustStore) \
    X(MQTTClient_SSLOptions, keyStore) X(MQTTClient_SSLOptions, privateKey) \
    X(MQTTClient_SSLOptions, privateKeyPassword) X(MQTTClient_SSLOptions, enabledCipherSuites) \
    X(MQTTClient_SSLOptions, enableServerCertAuth) X(MQTTClient_SSLOptions, sslVersion) \
    X(MQTTClient_SSLOptions, verify) X(MQTTClient_SSLOptions, CApath) \
    X(MQTTClient_SSLOptions, ssl_error_cb) X(MQTTClient_SSLOptions, ssl_error_context) \
    X(MQTTClient_SSLOptions, ssl_psk_cb) X(MQTTClient_SSLOptions, ssl_psk_context) \
    X(MQTTClient_SSLOptions, disableDefaultTrustStore) X(MQTTClient_SSLOptions, protos) \
    X(MQTTClient_SSLOptions, protos_len)

#define F_nameValue(X) X(MQTTClient_nameValue, name) X(MQTTClient_nameValue, value)

#define F_connectOptions(X) X(MQTTClient_connectOptions, struct_id) \
    X(MQTTClient_connectOptions, struct_version) X(MQTTClient_connectOptions, keepAliveInterval) \
    X(MQTTClient_connectOptions, cleansession) X(MQTTClient_connectOptions, reliable) \
    X(MQTTClient_connectOptions, will) X(MQTTClient_connectOptions, username) \
    X(MQTTClient_connectOptions, password) X(MQTTClient_connectOptions, connectTimeout) \
    X(MQTTClient_connectOptions, retryInterval) X(MQTTClient_connectOptions, ssl) \
    X(MQTTClient_connectOptions, serverURIcount) X(MQTTClient_connectOptions, serverURIs) \
    X(MQTTClient_connectOptions, MQTTVersion) X(MQTTClient_connectOptions, returned) \
    X(MQTTClient_connectOptions, returned.serverURI) \
    X(MQTTClient_connectOptions, returned.MQTTVersion) \
    X(MQTTClient_connectOptions, returned.sessionPresent) \
    X(MQTTClient_connectOptions, binarypwd) X(MQTTClient_connectOptions, binarypwd.len) \
    X(MQTTClient_connectOptions, binarypwd.data) \
    X(MQTTClient_connectOptions, maxInflightMessages) X(MQTTClient_connectOptions, cleanstart) \
    X(MQTTClient_connectOptions, httpHeaders) X(MQTTClient_connectOptions, httpProxy) \
    X(MQTTClient_connectOptions, httpsProxy)

#define F_response(X) X(MQTTResponse, version) X(MQTTResponse, reasonCode) \
    X(MQTTResponse, reasonCodeCount) X(MQTTResponse, reasonCodes) X(MQTTResponse, properties)

#define F_persistence(X) X(MQTTClient_persistence, context) X(MQTTClient_persistence, popen) \
    X(MQTTClient_persistence, pclose) X(MQTTClient_persistence, pput) \
    X(MQTTClient_persistence, pget) X(MQTTClient_persistence, premove) \
    X(MQTTClient_persistence, pkeys) X(MQTTClient_persistence, pclear) \
    X(MQTTClient_persistence, pcontainskey)

#define F_lenString(X) X(MQTTLenString, len) X(MQTTLenString, data)

#define F_property(X) X(MQTTProperty, identifier) X(MQTTProperty, value) \
    X(MQTTProperty, value.byte) X(MQTTProperty, value.integer2) X(MQTTProperty, value.integer4) \
    X(MQTTProperty, value.data) X(MQTTProperty, value.data.len) X(MQTTProperty, value.data.data) \
    X(MQTTProperty, value.value) X(MQTTProperty, value.value.len) \
    X(MQTTProperty, value.value.data)

#define F_properties(X) X(MQTTProperties, count) X(MQTTProperties, max_count) \
    X(MQTTProperties, length) X(MQTTProperties, array)

#define F_subscribeOptions(X) X(MQTTSubscribe_options, struct_id) \
    X(MQTTSubscribe_options, struct_version) X(MQTTSubscribe_options, noLocal) \
    X(MQTTSubscribe_options, retainAsPublished) X(MQTTSubscribe_options, retainHandling)

/* Initializers, in static storage so that padding is zero and the bytes are comparable. */
static MQTTClient_connectOptions i_conn = MQTTClient_connectOptions_initializer;
static MQTTClient_connectOptions i_conn5 = MQTTClient_connectOptions_initializer5;
static MQTTClient_connectOptions i_conn_ws = MQTTClient_connectOptions_initializer_ws;
static MQTTClient_connectOptions i_conn5_ws = MQTTClient_connectOptions_initializer5_ws;
static MQTTClient_willOptions i_will = MQTTClient_willOptions_initializer;
static MQTTClient_SSLOptions i_ssl = MQTTClient_SSLOptions_initializer;
static MQTTClient_createOptions i_create = MQTTClient_createOptions_initializer;
static MQTTClient_message i_message = MQTTClient_message_initializer;
static MQTTClient_init_options i_init = MQTTClient_init_options_initializer;
static MQTTProperties i_props = MQTTProperties_initializer;
static MQTTSubscribe_options i_subopts = MQTTSubscribe_options_initializer;
static MQTTResponse i_response = MQTTResponse_initializer;

static const void* g_obj; /* the initializer being dumped */
#define INIT_FIELD(T, f) { char what[160]; \
    snprintf(what, sizeof what, "init %s.%s", #T, #f); \
    bytes(what, (const char*)g_obj + offsetof(T, f), sizeof(((T*)0)->f)); }
#define INIT(name, T, obj, FIELDS) g_obj = &obj; printf("initializer %s\n", name); \
    bytes("init bytes", &obj, sizeof obj); FIELDS(INIT_FIELD)

int main(void)
{
    /* Scalar and pointer typedefs, enums and callback types. */
    TYPE(MQTTClient) TYPE(MQTTClient_deliveryToken) TYPE(MQTTClient_token)
    TYPE(enum MQTTPropertyCodes) TYPE(enum MQTTPropertyTypes) TYPE(enum MQTTReasonCodes)
    TYPE(enum MQTTCLIENT_TRACE_LEVELS)
    TYPE(MQTTClient_messageArrived*) TYPE(MQTTClient_deliveryComplete*)
    TYPE(MQTTClient_connectionLost*) TYPE(MQTTClient_disconnected*)
    TYPE(MQTTClient_published*) TYPE(MQTTClient_traceCallback*)
    TYPE(MQTTPersistence_beforeWrite*) TYPE(MQTTPersistence_afterRead*)
    TYPE(Persistence_open) TYPE(Persistence_close) TYPE(Persistence_put) TYPE(Persistence_get)
    TYPE(Persistence_remove) TYPE(Persistence_keys) TYPE(Persistence_clear)
    TYPE(Persistence_containskey)

    /* Structures. */
    TYPE(MQTTClient_init_options) F_init_options(FIELD)
    TYPE(MQTTClient_message) F_message(FIELD)
    TYPE(MQTTClient_createOptions) F_createOptions(FIELD)
    TYPE(MQTTClient_willOptions) F_willOptions(FIELD)
    TYPE(MQTTClient_SSLOptions) F_SSLOptions(FIELD)
    TYPE(MQTTClient_nameValue) F_nameValue(FIELD)
    TYPE(MQTTClient_connectOptions) F_connectOptions(FIELD)
    TYPE(MQTTResponse) F_response(FIELD)
    TYPE(MQTTClient_persistence) F_persistence(FIELD)
    TYPE(MQTTLenString) F_lenString(FIELD)
    TYPE(MQTTProperty) F_property(FIELD)
    TYPE(MQTTProperties) F_properties(FIELD)
    TYPE(MQTTSubscribe_options) F_subscribeOptions(FIELD)

    /* #define constants. */
    CONST(MQTTCLIENT_SUCCESS) CONST(MQTTCLIENT_FAILURE) CONST(MQTTCLIENT_DISCONNECTED)
    CONST(MQTTCLIENT_MAX_MESSAGES_INFLIGHT) CONST(MQTTCLIENT_BAD_UTF8_STRING)
    CONST(MQTTCLIENT_NULL_PARAMETER) CONST(MQTTCLIENT_TOPICNAME_TRUNCATED)
    CONST(MQTTCLIENT_BAD_STRUCTURE) CONST(MQTTCLIENT_BAD_QOS) CONST(MQTTCLIENT_SSL_NOT_SUPPORTED)
    CONST(MQTTCLIENT_BAD_MQTT_VERSION) CONST(MQTTCLIENT_BAD_PROTOCOL)
    CONST(MQTTCLIENT_BAD_MQTT_OPTION) CONST(MQTTCLIENT_WRONG_MQTT_VERSION)
    CONST(MQTTCLIENT_0_LEN_WILL_TOPIC)
    CONST(MQTTVERSION_DEFAULT) CONST(MQTTVERSION_3_1) CONST(MQTTVERSION_3_1_1)
    CONST(MQTTVERSION_5) CONST(MQTT_BAD_SUBSCRIBE)
    CONST(MQTT_SSL_VERSION_DEFAULT) CONST(MQTT_SSL_VERSION_TLS_1_0)
    CONST(MQTT_SSL_VERSION_TLS_1_1) CONST(MQTT_SSL_VERSION_TLS_1_2)
    CONST(MQTTCLIENT_PERSISTENCE_DEFAULT) CONST(MQTTCLIENT_PERSISTENCE_NONE)
    CONST(MQTTCLIENT_PERSISTENCE_USER) CONST(MQTTCLIENT_PERSISTENCE_ERROR)
    CONST(MQTT_INVALID_PROPERTY_ID)

    /* Enumerators. */
    CONST(MQTTPROPERTY_CODE_PAYLOAD_FORMAT_INDICATOR) CONST(MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL)
    CONST(MQTTPROPERTY_CODE_CONTENT_TYPE) CONST(MQTTPROPERTY_CODE_RESPONSE_TOPIC)
    CONST(MQTTPROPERTY_CODE_CORRELATION_DATA) CONST(MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER)
    CONST(MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL)
    CONST(MQTTPROPERTY_CODE_ASSIGNED_CLIENT_IDENTIFER) CONST(MQTTPROPERTY_CODE_SERVER_KEEP_ALIVE)
    CONST(MQTTPROPERTY_CODE_AUTHENTICATION_METHOD) CONST(MQTTPROPERTY_CODE_AUTHENTICATION_DATA)
    CONST(MQTTPROPERTY_CODE_REQUEST_PROBLEM_INFORMATION)
    CONST(MQTTPROPERTY_CODE_WILL_DELAY_INTERVAL)
    CONST(MQTTPROPERTY_CODE_REQUEST_RESPONSE_INFORMATION)
    CONST(MQTTPROPERTY_CODE_RESPONSE_INFORMATION) CONST(MQTTPROPERTY_CODE_SERVER_REFERENCE)
    CONST(MQTTPROPERTY_CODE_REASON_STRING) CONST(MQTTPROPERTY_CODE_RECEIVE_MAXIMUM)
    CONST(MQTTPROPERTY_CODE_TOPIC_ALIAS_MAXIMUM) CONST(MQTTPROPERTY_CODE_TOPIC_ALIAS)
    CONST(MQTTPROPERTY_CODE_MAXIMUM_QOS) CONST(MQTTPROPERTY_CODE_RETAIN_AVAILABLE)
    CONST(MQTTPROPERTY_CODE_USER_PROPERTY) CONST(MQTTPROPERTY_CODE_MAXIMUM_PACKET_SIZE)
    CONST(MQTTPROPERTY_CODE_WILDCARD_SUBSCRIPTION_AVAILABLE)
    CONST(MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIERS_AVAILABLE)
    CONST(MQTTPROPERTY_CODE_SHARED_SUBSCRIPTION_AVAILABLE)
    CONST(MQTTPROPERTY_TYPE_BYTE) CONST(MQTTPROPERTY_TYPE_TWO_BYTE_INTEGER)
    CONST(MQTTPROPERTY_TYPE_FOUR_BYTE_INTEGER) CONST(MQTTPROPERTY_TYPE_VARIABLE_BYTE_INTEGER)
    CONST(MQTTPROPERTY_TYPE_BINARY_DATA) CONST(MQTTPROPERTY_TYPE_UTF_8_ENCODED_STRING)
    CONST(MQTTPROPERTY_TYPE_UTF_8_STRING_PAIR)
    CONST(MQTTREASONCODE_SUCCESS) CONST(MQTTREASONCODE_NORMAL_DISCONNECTION)
    CONST(MQTTREASONCODE_GRANTED_QOS_0) CONST(MQTTREASONCODE_GRANTED_QOS_1)
    CONST(MQTTREASONCODE_GRANTED_QOS_2) CONST(MQTTREASONCODE_DISCONNECT_WITH_WILL_MESSAGE)
    CONST(MQTTREASONCODE_NO_MATCHING_SUBSCRIBERS) CONST(MQTTREASONCODE_NO_SUBSCRIPTION_FOUND)
    CONST(MQTTREASONCODE_CONTINUE_AUTHENTICATION) CONST(MQTTREASONCODE_RE_AUTHENTICATE)
    CONST(MQTTREASONCODE_UNSPECIFIED_ERROR) CONST(MQTTREASONCODE_MALFORMED_PACKET)
    CONST(MQTTREASONCODE_PROTOCOL_ERROR) CONST(MQTTREASONCODE_IMPLEMENTATION_SPECIFIC_ERROR)
    CONST(MQTTREASONCODE_UNSUPPORTED_PROTOCOL_VERSION)
    CONST(MQTTREASONCODE_CLIENT_IDENTIFIER_NOT_VALID)
    CONST(MQTTREASONCODE_BAD_USER_NAME_OR_PASSWORD) CONST(MQTTREASONCODE_NOT_AUTHORIZED)
    CONST(MQTTREASONCODE_SERVER_UNAVAILABLE) CONST(MQTTREASONCODE_SERVER_BUSY)
    CONST(MQTTREASONCODE_BANNED) CONST(MQTTREASONCODE_SERVER_SHUTTING_DOWN)
    CONST(MQTTREASONCODE_BAD_AUTHENTICATION_METHOD) CONST(MQTTREASONCODE_KEEP_ALIVE_TIMEOUT)
    CONST(MQTTREASONCODE_SESSION_TAKEN_OVER) CONST(MQTTREASONCODE_TOPIC_FILTER_INVALID)
    CONST(MQTTREASONCODE_TOPIC_NAME_INVALID) CONST(MQTTREASONCODE_PACKET_IDENTIFIER_IN_USE)
    CONST(MQTTREASONCODE_PACKET_IDENTIFIER_NOT_FOUND)
    CONST(MQTTREASONCODE_RECEIVE_MAXIMUM_EXCEEDED) CONST(MQTTREASONCODE_TOPIC_ALIAS_INVALID)
    CONST(MQTTREASONCODE_PACKET_TOO_LARGE) CONST(MQTTREASONCODE_MESSAGE_RATE_TOO_HIGH)
    CONST(MQTTREASONCODE_QUOTA_EXCEEDED) CONST(MQTTREASONCODE_ADMINISTRATIVE_ACTION)
    CONST(MQTTREASONCODE_PAYLOAD_FORMAT_INVALID) CONST(MQTTREASONCODE_RETAIN_NOT_SUPPORTED)
    CONST(MQTTREASONCODE_QOS_NOT_SUPPORTED) CONST(MQTTREASONCODE_USE_ANOTHER_SERVER)
    CONST(MQTTREASONCODE_SERVER_MOVED) CONST(MQTTREASONCODE_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED)
    CONST(MQTTREASONCODE_CONNECTION_RATE_EXCEEDED) CONST(MQTTREASONCODE_MAXIMUM_CONNECT_TIME)
    CONST(MQTTREASONCODE_SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED)
    CONST(MQTTREASONCODE_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED)
    CONST(MQTTCLIENT_TRACE_MAXIMUM) CONST(MQTTCLIENT_TRACE_MEDIUM) CONST(MQTTCLIENT_TRACE_MINIMUM)
    CONST(MQTTCLIENT_TRACE_PROTOCOL) CONST(MQTTCLIENT_TRACE_ERROR) CONST(MQTTCLIENT_TRACE_SEVERE)
    CONST(MQTTCLIENT_TRACE_FATAL)

    /* Initializers. */
    INIT("MQTTClient_connectOptions_initializer", MQTTClient_connectOptions, i_conn, F_connectOptions)
    INIT("MQTTClient_connectOptions_initializer5", MQTTClient_connectOptions, i_conn5, F_connectOptions)
    INIT("MQTTClient_connectOptions_initializer_ws", MQTTClient_connectOptions, i_conn_ws, F_connectOptions)
    INIT("MQTTClient_connectOptions_initializer5_ws", MQTTClient_connectOptions, i_conn5_ws, F_connectOptions)
    INIT("MQTTClient_willOptions_initializer", MQTTClient_willOptions, i_will, F_willOptions)
    INIT("MQTTClient_SSLOptions_initializer", MQTTClient_SSLOptions, i_ssl, F_SSLOptions)
    INIT("MQTTClient_createOptions_initializer", MQTTClient_createOptions, i_create, F_createOptions)
    INIT("MQTTClient_message_initializer", MQTTClient_message, i_message, F_message)
    INIT("MQTTClient_init_options_initializer", MQTTClient_init_options, i_init, F_init_options)
    INIT("MQTTProperties_initializer", MQTTProperties, i_props, F_properties)
    INIT("MQTTSubscribe_options_initializer", MQTTSubscribe_options, i_subopts, F_subscribeOptions)
    INIT("MQTTResponse_initializer", MQTTResponse, i_response, F_response)
    return 0;
}
