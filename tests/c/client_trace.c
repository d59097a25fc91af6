/*
 * MQTTClient_setTraceCallback / MQTTClient_setTraceLevel (tests/capi_client.rs): at
 * MQTTCLIENT_TRACE_PROTOCOL a connect, subscribe, QoS 0/1/2 publishes received back,
 * unsubscribe and disconnect must produce one line per packet, with packet ids that pair up
 * (SUBSCRIBE/SUBACK, PUBLISH/PUBACK, PUBLISH/PUBREC/PUBREL/PUBCOMP); at
 * MQTTCLIENT_TRACE_MAXIMUM topic names show up too; the payload never does; with the
 * callback removed nothing more arrives.
 *
 * usage: client_trace BROKER_URI CLIENT_ID
 * Prints every line received ("trace[LEVEL] LINE"), then "failures: N".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "MQTTClient.h"

#define CHECK(cond) do { if (!(cond)) { printf("CHECK FAILED line %d: %s\n", __LINE__, #cond); \
    fflush(stdout); failures++; } } while (0)

#define PAYLOAD "TOPSECRET-payload-4711"
#define MAX_LINES 512

static int failures = 0;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char* lines[MAX_LINES];
static int levels[MAX_LINES];
static int count = 0;

static void on_trace(enum MQTTCLIENT_TRACE_LEVELS level, char* message)
{
    pthread_mutex_lock(&lock);
    if (count < MAX_LINES) {
        size_t n = strlen(message);
        lines[count] = malloc(n + 1);
        if (lines[count] != NULL)
            memcpy(lines[count], message, n + 1);
        levels[count] = (int)level;
        count++;
    }
    pthread_mutex_unlock(&lock);
}

static void forget_lines(void)
{
    int i;
    pthread_mutex_lock(&lock);
    for (i = 0; i < count; i++) {
        printf("trace[%d] %s\n", levels[i], lines[i] ? lines[i] : "(null)");
        free(lines[i]);
    }
    count = 0;
    pthread_mutex_unlock(&lock);
    fflush(stdout);
}

/* The first line (from index `from`) containing `needle`, or -1. */
static int find(const char* needle, int from)
{
    int i, found = -1;
    pthread_mutex_lock(&lock);
    for (i = from; i < count && found < 0; i++)
        if (lines[i] != NULL && strstr(lines[i], needle) != NULL)
            found = i;
    pthread_mutex_unlock(&lock);
    return found;
}

/* The packet id after "<needle>id " in the first line containing it, or -1. */
static int id_after(const char* needle, int from)
{
    int i = find(needle, from), id = -1;
    if (i >= 0) {
        const char* p = strstr(lines[i], needle) + strlen(needle);
        if (sscanf(p, " id %d", &id) != 1)
            id = -1;
    }
    return id;
}

/* The packet id of the first "<dir_type> id N QoS <qos>" line, or -1. */
static int id_of(const char* dir_type, int qos)
{
    char want[32];
    int i, id = -1;
    snprintf(want, sizeof want, " QoS %d ", qos);
    for (i = find(dir_type, 0); i >= 0 && id < 0; i = find(dir_type, i + 1)) {
        const char* p = strstr(lines[i], dir_type) + strlen(dir_type);
        if (strstr(p, want) != NULL && sscanf(p, " id %d", &id) != 1)
            id = -1;
    }
    return id;
}

static int any_contains(const char* needle)
{
    return find(needle, 0) >= 0;
}

/* "<dir> <TYPE> id <id>" appears. */
static int has_packet(const char* dir_type, int id)
{
    char needle[64];
    snprintf(needle, sizeof needle, "%s id %d ", dir_type, id);
    return any_contains(needle);
}

static int session(const char* uri, const char* id)
{
    MQTTClient c = NULL;
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
    MQTTClient_deliveryToken dt;
    char topic[128];
    int qos, rc;

    snprintf(topic, sizeof topic, "trace/%s", id);
    rc = MQTTClient_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
    CHECK(rc == MQTTCLIENT_SUCCESS);
    if (rc != MQTTCLIENT_SUCCESS)
        return -1;
    opts.cleansession = 1;
    opts.connectTimeout = 10;
    rc = MQTTClient_connect(c, &opts);
    CHECK(rc == MQTTCLIENT_SUCCESS);
    CHECK(MQTTClient_subscribe(c, topic, 2) == MQTTCLIENT_SUCCESS);
    for (qos = 0; qos <= 2; qos++) {
        char* t = NULL;
        int tlen = 0;
        MQTTClient_message* m = NULL;
        CHECK(MQTTClient_publish(c, topic, (int)strlen(PAYLOAD), PAYLOAD, qos, 0, &dt) == 0);
        if (qos > 0)
            CHECK(MQTTClient_waitForCompletion(c, dt, 10000) == MQTTCLIENT_SUCCESS);
        CHECK(MQTTClient_receive(c, &t, &tlen, &m, 10000) == MQTTCLIENT_SUCCESS && m != NULL);
        if (m != NULL)
            MQTTClient_freeMessage(&m);
        if (t != NULL)
            MQTTClient_free(t);
    }
    {
        /* A received QoS 1/2 message is acknowledged when this thread comes back to
         * receive: this call sends the PUBREC of the QoS 2 copy, and its wait lets the
         * PUBREL / PUBCOMP exchange finish (nothing else arrives). */
        char* t = NULL;
        int tlen = 0;
        MQTTClient_message* m = NULL;
        CHECK(MQTTClient_receive(c, &t, &tlen, &m, 1000) == MQTTCLIENT_SUCCESS && m == NULL);
    }
    CHECK(MQTTClient_unsubscribe(c, topic) == MQTTCLIENT_SUCCESS);
    CHECK(MQTTClient_disconnect(c, 5000) == MQTTCLIENT_SUCCESS);
    MQTTClient_destroy(&c);
    return 0;
}

int main(int argc, char** argv)
{
    char id[100], needle[200];
    int i, sub, pub1, pub2, in1, in2;

    if (argc < 3) {
        fprintf(stderr, "usage: client_trace BROKER_URI CLIENT_ID\n");
        return 2;
    }

    /* ---- PROTOCOL ---- */
    MQTTClient_setTraceCallback(on_trace);
    MQTTClient_setTraceLevel(MQTTCLIENT_TRACE_PROTOCOL);
    snprintf(id, sizeof id, "%s-p", argv[2]);
    session(argv[1], id);

    snprintf(needle, sizeof needle, "%s -> CONNECT", id);
    CHECK(any_contains(needle));
    snprintf(needle, sizeof needle, "%s <- CONNACK code 0x00", id);
    CHECK(any_contains(needle));
    sub = id_after("-> SUBSCRIBE", 0);
    CHECK(sub > 0);
    CHECK(has_packet("<- SUBACK", sub));
    /* Our QoS 1 publish and its PUBACK; the copy coming back and our PUBACK for it. */
    CHECK(any_contains("-> PUBLISH id 0 QoS 0 retain 0 dup 0 payload 22 bytes"));
    pub1 = id_of("-> PUBLISH", 1);
    CHECK(pub1 > 0);
    CHECK(has_packet("<- PUBACK", pub1));
    in1 = id_of("<- PUBLISH", 1);
    CHECK(in1 > 0);
    CHECK(has_packet("-> PUBACK", in1));
    /* QoS 2 both ways. */
    pub2 = id_of("-> PUBLISH", 2);
    CHECK(pub2 > 0);
    CHECK(has_packet("<- PUBREC", pub2));
    CHECK(has_packet("-> PUBREL", pub2));
    CHECK(has_packet("<- PUBCOMP", pub2));
    in2 = id_of("<- PUBLISH", 2);
    CHECK(in2 > 0);
    CHECK(has_packet("-> PUBREC", in2));
    CHECK(has_packet("<- PUBREL", in2));
    CHECK(has_packet("-> PUBCOMP", in2));
    CHECK(any_contains("-> UNSUBSCRIBE id "));
    CHECK(any_contains("<- UNSUBACK id "));
    CHECK(any_contains("-> DISCONNECT"));
    CHECK(any_contains(" bytes)")); /* lengths */
    /* Not at this level: topics (MAXIMUM) and connect attempts (MINIMUM). */
    CHECK(!any_contains("details:"));
    CHECK(!any_contains("connecting to"));
    CHECK(!any_contains(PAYLOAD));
    pthread_mutex_lock(&lock);
    for (i = 0; i < count; i++)
        CHECK(levels[i] >= MQTTCLIENT_TRACE_PROTOCOL);
    pthread_mutex_unlock(&lock);
    forget_lines();

    /* ---- MAXIMUM ---- */
    MQTTClient_setTraceLevel(MQTTCLIENT_TRACE_MAXIMUM);
    snprintf(id, sizeof id, "%s-m", argv[2]);
    session(argv[1], id);
    snprintf(needle, sizeof needle, "%s: connecting to %s", id, argv[1]);
    CHECK(any_contains(needle));
    snprintf(needle, sizeof needle, "%s: connected to %s", id, argv[1]);
    CHECK(any_contains(needle));
    CHECK(any_contains("TCP connect to "));
    snprintf(needle, sizeof needle, "-> PUBLISH details: topic \"trace/%s\"", id);
    CHECK(any_contains(needle));
    snprintf(needle, sizeof needle, "-> SUBSCRIBE details: \"trace/%s\" (QoS 2", id);
    CHECK(any_contains(needle));
    CHECK(!any_contains(PAYLOAD));
    forget_lines();

    /* ---- callback removed: silence ---- */
    MQTTClient_setTraceCallback(NULL);
    snprintf(id, sizeof id, "%s-n", argv[2]);
    session(argv[1], id);
    pthread_mutex_lock(&lock);
    CHECK(count == 0);
    pthread_mutex_unlock(&lock);

    printf("failures: %d\n", failures);
    return failures == 0 ? 0 : 1;
}
