/*
 * TLS through the C API (tests/capi_tls.rs): one connect with the MQTTClient_SSLOptions
 * given on the command line, then, when it must succeed, a QoS 0/1/2 round trip through
 * MQTTClient_receive.
 *
 * usage: client_tls URI CLIENT_ID [options]
 *   --ca FILE        trustStore              --capath DIR     CApath
 *   --cert FILE      keyStore                --key FILE       privateKey
 *   --pass PASSWORD  privateKeyPassword      --no-auth        enableServerCertAuth = 0
 *   --verify N       verify = N (default 0)  --tls12          sslVersion = TLS 1.2
 *   --alpn           protos = "mqtt"         --no-default     disableDefaultTrustStore = 1
 *   --ciphers LIST   enabledCipherSuites     --psk ID:HEXKEY  ssl_psk_cb giving ID and key
 *   --version N      struct_version (default 5)
 *   --expect-fail    connect must return MQTTCLIENT_FAILURE (and, with struct version 3+,
 *                    call ssl_error_cb at least once)
 * Prints "connect rc=N", "returned serverURI=..." after a successful connect, every ssl_error_cb call ("ssl_error_cb: TEXT") and every trace
 * line of level ERROR or above ("trace: TEXT"), then "failures: N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "MQTTClient.h"

#define CHECK(cond) do { if (!(cond)) { printf("CHECK FAILED line %d: %s\n", __LINE__, #cond); \
    fflush(stdout); failures++; } } while (0)

static int failures = 0;
static int error_calls = 0;
static int error_context_marker;

static int on_ssl_error(const char* str, size_t len, void* u)
{
    CHECK(u == &error_context_marker);
    CHECK(str != NULL && strlen(str) == len);
    printf("ssl_error_cb: %s\n", str ? str : "(null)");
    fflush(stdout);
    error_calls++;
    return 1;
}

/* --psk IDENTITY:HEXKEY */
struct psk_spec {
    char identity[129];
    unsigned char key[64];
    unsigned int key_len;
};
static int psk_calls = 0;

static unsigned int on_psk(const char* hint, char* identity, unsigned int max_identity_len,
    unsigned char* psk, unsigned int max_psk_len, void* u)
{
    const struct psk_spec* spec = (const struct psk_spec*)u;
    psk_calls++;
    printf("ssl_psk_cb hint=%s\n", hint ? hint : "(none)");
    fflush(stdout);
    CHECK(spec != NULL);
    if (spec == NULL || strlen(spec->identity) + 1 > max_identity_len || spec->key_len > max_psk_len)
        return 0;
    memcpy(identity, spec->identity, strlen(spec->identity) + 1);
    memcpy(psk, spec->key, spec->key_len);
    return spec->key_len;
}

/* Parses IDENTITY:HEXKEY; 0 on success. */
static int parse_psk(const char* arg, struct psk_spec* out)
{
    const char* colon = strrchr(arg, ':');
    size_t n, i;
    if (colon == NULL || (size_t)(colon - arg) >= sizeof out->identity)
        return -1;
    memcpy(out->identity, arg, (size_t)(colon - arg));
    out->identity[colon - arg] = '\0';
    n = strlen(colon + 1);
    if (n % 2 != 0 || n / 2 > sizeof out->key)
        return -1;
    for (i = 0; i < n / 2; i++) {
        unsigned int b;
        if (sscanf(colon + 1 + 2 * i, "%2x", &b) != 1)
            return -1;
        out->key[i] = (unsigned char)b;
    }
    out->key_len = (unsigned int)(n / 2);
    return 0;
}

static void on_trace(enum MQTTCLIENT_TRACE_LEVELS level, char* message)
{
    if (level >= MQTTCLIENT_TRACE_ERROR) {
        printf("trace: %s\n", message);
        fflush(stdout);
    }
}

/* Subscribes to TOPIC, publishes one message at QoS 0, 1 and 2 and receives each back. */
static void round_trip(MQTTClient c, const char* topic)
{
    int qos;
    CHECK(MQTTClient_subscribe(c, topic, 2) == MQTTCLIENT_SUCCESS);
    for (qos = 0; qos <= 2; qos++) {
        char payload[64];
        char* t = NULL;
        int tlen = 0;
        MQTTClient_message* m = NULL;
        MQTTClient_deliveryToken dt = 0;
        snprintf(payload, sizeof payload, "over TLS at QoS %d", qos);
        CHECK(MQTTClient_publish(c, topic, (int)strlen(payload), payload, qos, 0, &dt)
            == MQTTCLIENT_SUCCESS);
        CHECK(MQTTClient_waitForCompletion(c, dt, 10000) == MQTTCLIENT_SUCCESS);
        CHECK(MQTTClient_receive(c, &t, &tlen, &m, 10000) == MQTTCLIENT_SUCCESS);
        CHECK(m != NULL);
        if (m != NULL) {
            CHECK(t != NULL && strcmp(t, topic) == 0);
            CHECK(m->qos == qos);
            CHECK(m->payloadlen == (int)strlen(payload)
                && memcmp(m->payload, payload, strlen(payload)) == 0);
            if (m->qos == qos)
                printf("round trip QoS %d: ok\n", qos);
            MQTTClient_freeMessage(&m);
        }
        if (t != NULL)
            MQTTClient_free(t);
    }
}

int main(int argc, char** argv)
{
    MQTTClient c = NULL;
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
    MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
    static const unsigned char alpn[] = { 4, 'm', 'q', 't', 't' };
    static struct psk_spec psk;
    int expect_fail = 0, rc, i;
    char topic[128];

    if (argc < 3) {
        fprintf(stderr, "usage: client_tls URI CLIENT_ID [options]\n");
        return 2;
    }
    ssl.ssl_error_cb = on_ssl_error;
    ssl.ssl_error_context = &error_context_marker;
    for (i = 3; i < argc; i++) {
        const char* a = argv[i];
        const char* next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--ca") == 0 && next) { ssl.trustStore = next; i++; }
        else if (strcmp(a, "--capath") == 0 && next) { ssl.CApath = next; i++; }
        else if (strcmp(a, "--cert") == 0 && next) { ssl.keyStore = next; i++; }
        else if (strcmp(a, "--key") == 0 && next) { ssl.privateKey = next; i++; }
        else if (strcmp(a, "--pass") == 0 && next) { ssl.privateKeyPassword = next; i++; }
        else if (strcmp(a, "--ciphers") == 0 && next) { ssl.enabledCipherSuites = next; i++; }
        else if (strcmp(a, "--verify") == 0 && next) { ssl.verify = atoi(next); i++; }
        else if (strcmp(a, "--version") == 0 && next) { ssl.struct_version = atoi(next); i++; }
        else if (strcmp(a, "--no-auth") == 0) ssl.enableServerCertAuth = 0;
        else if (strcmp(a, "--tls12") == 0) ssl.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
        else if (strcmp(a, "--alpn") == 0) { ssl.protos = alpn; ssl.protos_len = sizeof alpn; }
        else if (strcmp(a, "--no-default") == 0) ssl.disableDefaultTrustStore = 1;
        else if (strcmp(a, "--psk") == 0 && next) {
            if (parse_psk(next, &psk) != 0) {
                fprintf(stderr, "client_tls: --psk IDENTITY:HEXKEY\n");
                return 2;
            }
            ssl.ssl_psk_cb = on_psk;
            ssl.ssl_psk_context = &psk;
            i++;
        }
        else if (strcmp(a, "--expect-fail") == 0) expect_fail = 1;
        else {
            fprintf(stderr, "client_tls: unknown option %s\n", a);
            return 2;
        }
    }
    MQTTClient_setTraceCallback(on_trace);
    MQTTClient_setTraceLevel(MQTTCLIENT_TRACE_ERROR);
    snprintf(topic, sizeof topic, "tls/%s", argv[2]);

    rc = MQTTClient_create(&c, argv[1], argv[2], MQTTCLIENT_PERSISTENCE_NONE, NULL);
    CHECK(rc == MQTTCLIENT_SUCCESS);
    if (rc != MQTTCLIENT_SUCCESS) {
        printf("failures: %d\n", failures);
        return 1;
    }
    opts.ssl = &ssl;
    opts.connectTimeout = 10;
    opts.keepAliveInterval = 20;
    rc = MQTTClient_connect(c, &opts);
    printf("connect rc=%d\n", rc);
    fflush(stdout);
    if (expect_fail) {
        CHECK(rc == MQTTCLIENT_FAILURE);
        CHECK(!MQTTClient_isConnected(c));
        if (ssl.struct_version >= 3)
            CHECK(error_calls >= 1);
        else
            CHECK(error_calls == 0);
    } else {
        CHECK(rc == MQTTCLIENT_SUCCESS);
        CHECK(error_calls == 0);
        if (ssl.ssl_psk_cb != NULL)
            CHECK(psk_calls >= 1);
        if (rc == MQTTCLIENT_SUCCESS) {
            printf("returned serverURI=%s\n",
                opts.returned.serverURI ? opts.returned.serverURI : "(null)");
            round_trip(c, topic);
            CHECK(MQTTClient_disconnect(c, 5000) == MQTTCLIENT_SUCCESS);
        }
    }
    MQTTClient_destroy(&c);
    CHECK(c == NULL);
    printf("failures: %d\n", failures);
    return failures == 0 ? 0 : 1;
}
