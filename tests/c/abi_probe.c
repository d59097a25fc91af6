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
#include "MQTTAsync.h"

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


/* MQTTAsync.h */
#define F_a_init(X) X(MQTTAsync_init_options, struct_id) X(MQTTAsync_init_options, struct_version) \
    X(MQTTAsync_init_options, do_openssl_init)

#define F_a_message(X) X(MQTTAsync_message, struct_id) X(MQTTAsync_message, struct_version) \
    X(MQTTAsync_message, payloadlen) X(MQTTAsync_message, payload) X(MQTTAsync_message, qos) \
    X(MQTTAsync_message, retained) X(MQTTAsync_message, dup) X(MQTTAsync_message, msgid) \
    X(MQTTAsync_message, properties)

#define F_a_connectData(X) X(MQTTAsync_connectData, struct_id) \
    X(MQTTAsync_connectData, struct_version) X(MQTTAsync_connectData, username) \
    X(MQTTAsync_connectData, binarypwd) X(MQTTAsync_connectData, binarypwd.len) \
    X(MQTTAsync_connectData, binarypwd.data)

#define F_a_failureData(X) X(MQTTAsync_failureData, token) X(MQTTAsync_failureData, code) \
    X(MQTTAsync_failureData, message)

#define F_a_failureData5(X) X(MQTTAsync_failureData5, struct_id) \
    X(MQTTAsync_failureData5, struct_version) X(MQTTAsync_failureData5, token) \
    X(MQTTAsync_failureData5, reasonCode) X(MQTTAsync_failureData5, properties) \
    X(MQTTAsync_failureData5, code) X(MQTTAsync_failureData5, message) \
    X(MQTTAsync_failureData5, packet_type)

#define F_a_successData(X) X(MQTTAsync_successData, token) X(MQTTAsync_successData, alt) \
    X(MQTTAsync_successData, alt.qos) X(MQTTAsync_successData, alt.qosList) \
    X(MQTTAsync_successData, alt.pub) X(MQTTAsync_successData, alt.pub.message) \
    X(MQTTAsync_successData, alt.pub.destinationName) X(MQTTAsync_successData, alt.connect) \
    X(MQTTAsync_successData, alt.connect.serverURI) \
    X(MQTTAsync_successData, alt.connect.MQTTVersion) \
    X(MQTTAsync_successData, alt.connect.sessionPresent)

#define F_a_successData5(X) X(MQTTAsync_successData5, struct_id) \
    X(MQTTAsync_successData5, struct_version) X(MQTTAsync_successData5, token) \
    X(MQTTAsync_successData5, reasonCode) X(MQTTAsync_successData5, properties) \
    X(MQTTAsync_successData5, alt) X(MQTTAsync_successData5, alt.sub) \
    X(MQTTAsync_successData5, alt.sub.reasonCodeCount) \
    X(MQTTAsync_successData5, alt.sub.reasonCodes) X(MQTTAsync_successData5, alt.pub) \
    X(MQTTAsync_successData5, alt.pub.message) X(MQTTAsync_successData5, alt.pub.destinationName) \
    X(MQTTAsync_successData5, alt.connect) X(MQTTAsync_successData5, alt.connect.serverURI) \
    X(MQTTAsync_successData5, alt.connect.MQTTVersion) \
    X(MQTTAsync_successData5, alt.connect.sessionPresent) X(MQTTAsync_successData5, alt.unsub) \
    X(MQTTAsync_successData5, alt.unsub.reasonCodeCount) \
    X(MQTTAsync_successData5, alt.unsub.reasonCodes)

#define F_a_responseOptions(X) X(MQTTAsync_responseOptions, struct_id) \
    X(MQTTAsync_responseOptions, struct_version) X(MQTTAsync_responseOptions, onSuccess) \
    X(MQTTAsync_responseOptions, onFailure) X(MQTTAsync_responseOptions, context) \
    X(MQTTAsync_responseOptions, token) X(MQTTAsync_responseOptions, onSuccess5) \
    X(MQTTAsync_responseOptions, onFailure5) X(MQTTAsync_responseOptions, properties) \
    X(MQTTAsync_responseOptions, subscribeOptions) \
    X(MQTTAsync_responseOptions, subscribeOptionsCount) \
    X(MQTTAsync_responseOptions, subscribeOptionsList)

#define F_a_createOptions(X) X(MQTTAsync_createOptions, struct_id) \
    X(MQTTAsync_createOptions, struct_version) X(MQTTAsync_createOptions, sendWhileDisconnected) \
    X(MQTTAsync_createOptions, maxBufferedMessages) X(MQTTAsync_createOptions, MQTTVersion) \
    X(MQTTAsync_createOptions, allowDisconnectedSendAtAnyTime) \
    X(MQTTAsync_createOptions, deleteOldestMessages) X(MQTTAsync_createOptions, restoreMessages) \
    X(MQTTAsync_createOptions, persistQoS0)

#define F_a_willOptions(X) X(MQTTAsync_willOptions, struct_id) \
    X(MQTTAsync_willOptions, struct_version) X(MQTTAsync_willOptions, topicName) \
    X(MQTTAsync_willOptions, message) X(MQTTAsync_willOptions, retained) \
    X(MQTTAsync_willOptions, qos) X(MQTTAsync_willOptions, payload) \
    X(MQTTAsync_willOptions, payload.len) X(MQTTAsync_willOptions, payload.data)

#define F_a_SSLOptions(X) X(MQTTAsync_SSLOptions, struct_id) \
    X(MQTTAsync_SSLOptions, struct_version) X(MQTTAsync_SSLOptions, trustStore) \
    X(MQTTAsync_SSLOptions, keyStore) X(MQTTAsync_SSLOptions, privateKey) \
    X(MQTTAsync_SSLOptions, privateKeyPassword) X(MQTTAsync_SSLOptions, enabledCipherSuites) \
    X(MQTTAsync_SSLOptions, enableServerCertAuth) X(MQTTAsync_SSLOptions, sslVersion) \
    X(MQTTAsync_SSLOptions, verify) X(MQTTAsync_SSLOptions, CApath) \
    X(MQTTAsync_SSLOptions, ssl_error_cb) X(MQTTAsync_SSLOptions, ssl_error_context) \
    X(MQTTAsync_SSLOptions, ssl_psk_cb) X(MQTTAsync_SSLOptions, ssl_psk_context) \
    X(MQTTAsync_SSLOptions, disableDefaultTrustStore) X(MQTTAsync_SSLOptions, protos) \
    X(MQTTAsync_SSLOptions, protos_len)

#define F_a_nameValue(X) X(MQTTAsync_nameValue, name) X(MQTTAsync_nameValue, value)

#define F_a_connectOptions(X) X(MQTTAsync_connectOptions, struct_id) \
    X(MQTTAsync_connectOptions, struct_version) X(MQTTAsync_connectOptions, keepAliveInterval) \
    X(MQTTAsync_connectOptions, cleansession) X(MQTTAsync_connectOptions, maxInflight) \
    X(MQTTAsync_connectOptions, will) X(MQTTAsync_connectOptions, username) \
    X(MQTTAsync_connectOptions, password) X(MQTTAsync_connectOptions, connectTimeout) \
    X(MQTTAsync_connectOptions, retryInterval) X(MQTTAsync_connectOptions, ssl) \
    X(MQTTAsync_connectOptions, onSuccess) X(MQTTAsync_connectOptions, onFailure) \
    X(MQTTAsync_connectOptions, context) X(MQTTAsync_connectOptions, serverURIcount) \
    X(MQTTAsync_connectOptions, serverURIs) X(MQTTAsync_connectOptions, MQTTVersion) \
    X(MQTTAsync_connectOptions, automaticReconnect) X(MQTTAsync_connectOptions, minRetryInterval) \
    X(MQTTAsync_connectOptions, maxRetryInterval) X(MQTTAsync_connectOptions, binarypwd) \
    X(MQTTAsync_connectOptions, binarypwd.len) X(MQTTAsync_connectOptions, binarypwd.data) \
    X(MQTTAsync_connectOptions, cleanstart) X(MQTTAsync_connectOptions, connectProperties) \
    X(MQTTAsync_connectOptions, willProperties) X(MQTTAsync_connectOptions, onSuccess5) \
    X(MQTTAsync_connectOptions, onFailure5) X(MQTTAsync_connectOptions, httpHeaders) \
    X(MQTTAsync_connectOptions, httpProxy) X(MQTTAsync_connectOptions, httpsProxy)

#define F_a_disconnectOptions(X) X(MQTTAsync_disconnectOptions, struct_id) \
    X(MQTTAsync_disconnectOptions, struct_version) X(MQTTAsync_disconnectOptions, timeout) \
    X(MQTTAsync_disconnectOptions, onSuccess) X(MQTTAsync_disconnectOptions, onFailure) \
    X(MQTTAsync_disconnectOptions, context) X(MQTTAsync_disconnectOptions, properties) \
    X(MQTTAsync_disconnectOptions, reasonCode) X(MQTTAsync_disconnectOptions, onSuccess5) \
    X(MQTTAsync_disconnectOptions, onFailure5)

static MQTTAsync_init_options ia_init = MQTTAsync_init_options_initializer;
static MQTTAsync_message ia_message = MQTTAsync_message_initializer;
static MQTTAsync_connectData ia_cdata = MQTTAsync_connectData_initializer;
static MQTTAsync_failureData5 ia_fail5 = MQTTAsync_failureData5_initializer;
static MQTTAsync_responseOptions ia_resp = MQTTAsync_responseOptions_initializer;
static MQTTAsync_callOptions ia_call = MQTTAsync_callOptions_initializer;
static MQTTAsync_createOptions ia_create = MQTTAsync_createOptions_initializer;
static MQTTAsync_createOptions ia_create5 = MQTTAsync_createOptions_initializer5;
static MQTTAsync_willOptions ia_will = MQTTAsync_willOptions_initializer;
static MQTTAsync_SSLOptions ia_ssl = MQTTAsync_SSLOptions_initializer;
static MQTTAsync_connectOptions ia_conn = MQTTAsync_connectOptions_initializer;
static MQTTAsync_connectOptions ia_conn5 = MQTTAsync_connectOptions_initializer5;
static MQTTAsync_connectOptions ia_conn_ws = MQTTAsync_connectOptions_initializer_ws;
static MQTTAsync_connectOptions ia_conn5_ws = MQTTAsync_connectOptions_initializer5_ws;
static MQTTAsync_disconnectOptions ia_disc = MQTTAsync_disconnectOptions_initializer;
static MQTTAsync_disconnectOptions ia_disc5 = MQTTAsync_disconnectOptions_initializer5;

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
    /* MQTTAsync.h */
    TYPE(MQTTAsync) TYPE(MQTTAsync_token) TYPE(enum MQTTASYNC_TRACE_LEVELS)
    TYPE(MQTTAsync_messageArrived*) TYPE(MQTTAsync_deliveryComplete*)
    TYPE(MQTTAsync_connectionLost*) TYPE(MQTTAsync_connected*) TYPE(MQTTAsync_disconnected*)
    TYPE(MQTTAsync_updateConnectOptions*) TYPE(MQTTAsync_onSuccess*) TYPE(MQTTAsync_onSuccess5*)
    TYPE(MQTTAsync_onFailure*) TYPE(MQTTAsync_onFailure5*) TYPE(MQTTAsync_traceCallback*)
    TYPE(MQTTAsync_init_options) F_a_init(FIELD)
    TYPE(MQTTAsync_message) F_a_message(FIELD)
    TYPE(MQTTAsync_connectData) F_a_connectData(FIELD)
    TYPE(MQTTAsync_failureData) F_a_failureData(FIELD)
    TYPE(MQTTAsync_failureData5) F_a_failureData5(FIELD)
    TYPE(MQTTAsync_successData) F_a_successData(FIELD)
    TYPE(MQTTAsync_successData5) F_a_successData5(FIELD)
    TYPE(MQTTAsync_responseOptions) F_a_responseOptions(FIELD)
    TYPE(MQTTAsync_callOptions)
    TYPE(MQTTAsync_createOptions) F_a_createOptions(FIELD)
    TYPE(MQTTAsync_willOptions) F_a_willOptions(FIELD)
    TYPE(MQTTAsync_SSLOptions) F_a_SSLOptions(FIELD)
    TYPE(MQTTAsync_nameValue) F_a_nameValue(FIELD)
    TYPE(MQTTAsync_connectOptions) F_a_connectOptions(FIELD)
    TYPE(MQTTAsync_disconnectOptions) F_a_disconnectOptions(FIELD)
    CONST(MQTTASYNC_SUCCESS) CONST(MQTTASYNC_FAILURE) CONST(MQTTASYNC_PERSISTENCE_ERROR)
    CONST(MQTTASYNC_DISCONNECTED) CONST(MQTTASYNC_MAX_MESSAGES_INFLIGHT)
    CONST(MQTTASYNC_BAD_UTF8_STRING) CONST(MQTTASYNC_NULL_PARAMETER)
    CONST(MQTTASYNC_TOPICNAME_TRUNCATED) CONST(MQTTASYNC_BAD_STRUCTURE) CONST(MQTTASYNC_BAD_QOS)
    CONST(MQTTASYNC_NO_MORE_MSGIDS) CONST(MQTTASYNC_OPERATION_INCOMPLETE)
    CONST(MQTTASYNC_MAX_BUFFERED_MESSAGES) CONST(MQTTASYNC_SSL_NOT_SUPPORTED)
    CONST(MQTTASYNC_BAD_PROTOCOL) CONST(MQTTASYNC_BAD_MQTT_OPTION)
    CONST(MQTTASYNC_WRONG_MQTT_VERSION) CONST(MQTTASYNC_0_LEN_WILL_TOPIC)
    CONST(MQTTASYNC_COMMAND_IGNORED) CONST(MQTTASYNC_MAX_BUFFERED) CONST(MQTTASYNC_TRUE)
    CONST(MQTTASYNC_TRACE_MAXIMUM) CONST(MQTTASYNC_TRACE_MEDIUM) CONST(MQTTASYNC_TRACE_MINIMUM)
    CONST(MQTTASYNC_TRACE_PROTOCOL) CONST(MQTTASYNC_TRACE_ERROR) CONST(MQTTASYNC_TRACE_SEVERE)
    CONST(MQTTASYNC_TRACE_FATAL)
    INIT("MQTTAsync_init_options_initializer", MQTTAsync_init_options, ia_init, F_a_init)
    INIT("MQTTAsync_message_initializer", MQTTAsync_message, ia_message, F_a_message)
    INIT("MQTTAsync_connectData_initializer", MQTTAsync_connectData, ia_cdata, F_a_connectData)
    INIT("MQTTAsync_failureData5_initializer", MQTTAsync_failureData5, ia_fail5, F_a_failureData5)
    INIT("MQTTAsync_responseOptions_initializer", MQTTAsync_responseOptions, ia_resp, F_a_responseOptions)
    INIT("MQTTAsync_callOptions_initializer", MQTTAsync_responseOptions, ia_call, F_a_responseOptions)
    INIT("MQTTAsync_createOptions_initializer", MQTTAsync_createOptions, ia_create, F_a_createOptions)
    INIT("MQTTAsync_createOptions_initializer5", MQTTAsync_createOptions, ia_create5, F_a_createOptions)
    INIT("MQTTAsync_willOptions_initializer", MQTTAsync_willOptions, ia_will, F_a_willOptions)
    INIT("MQTTAsync_SSLOptions_initializer", MQTTAsync_SSLOptions, ia_ssl, F_a_SSLOptions)
    INIT("MQTTAsync_connectOptions_initializer", MQTTAsync_connectOptions, ia_conn, F_a_connectOptions)
    INIT("MQTTAsync_connectOptions_initializer5", MQTTAsync_connectOptions, ia_conn5, F_a_connectOptions)
    INIT("MQTTAsync_connectOptions_initializer_ws", MQTTAsync_connectOptions, ia_conn_ws, F_a_connectOptions)
    INIT("MQTTAsync_connectOptions_initializer5_ws", MQTTAsync_connectOptions, ia_conn5_ws, F_a_connectOptions)
    INIT("MQTTAsync_disconnectOptions_initializer", MQTTAsync_disconnectOptions, ia_disc, F_a_disconnectOptions)
    INIT("MQTTAsync_disconnectOptions_initializer5", MQTTAsync_disconnectOptions, ia_disc5, F_a_disconnectOptions)
    return 0;
}
