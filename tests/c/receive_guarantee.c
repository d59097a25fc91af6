/*
 * Nothing lost on the receiving side (tests/capi_client.rs drives it, on mqttsync and on
 * Paho C):
 *   receive_guarantee unread URI DIR
 *     a subscriber (file persistence in DIR, cleansession 0) is sent 30 QoS 1 and 30 QoS 2
 *     messages but never calls MQTTClient_receive; it disconnects and is destroyed. Created
 *     again with the same client id and persistence, it receives all 60, QoS 2 once each.
 *   receive_guarantee callbacks URI DIR
 *     the same subscriber, disconnected without reading, is given a messageArrived callback
 *     and connects again: the callback gets all 60, QoS 2 once each.
 *   receive_guarantee own URI DIR
 *     Paho's persistence case: a client publishes 30 messages at QoS 1 and 30 at QoS 2 to
 *     its own subscription, disconnects at once (timeout 0) without reading and is
 *     destroyed; created again, getPendingDeliveryTokens lists what was unfinished, and
 *     after connect every message arrives, QoS 2 once, and every listed token completes.
 *   receive_guarantee freed URI DIR
 *     the broker lets one QoS 1/2 message be in flight to a client at a time (the harness
 *     sets max_inflight_messages 1). A subscriber (no persistence) is sent three messages;
 *     it receives the first and keeps it while a second thread waits in receive: the
 *     second message can come only once the first is acknowledged, and all the subscriber
 *     does is free the first (MQTTClient_freeMessage). Then the same with the second
 *     message, received by that thread and freed by the main thread. Paho acknowledges as
 *     it reads, so it passes as well.
 * Prints "failures: N" last.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "MQTTClient.h"

#define CHECK(cond) do { if (!(cond)) { printf("CHECK FAILED line %d: %s\n", __LINE__, #cond); \
    fflush(stdout); failures++; } } while (0)

#define N 30

static int failures = 0;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int seen[3][N];

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void note(const MQTTClient_message* m)
{
    char buf[32];
    int q = 0, i = -1;
    int len = m->payloadlen < 31 ? m->payloadlen : 31;
    memcpy(buf, m->payload, (size_t)len);
    buf[len] = 0;
    if (sscanf(buf, "%d %d", &q, &i) == 2 && (q == 1 || q == 2) && i >= 0 && i < N) {
        pthread_mutex_lock(&lock);
        seen[q][i]++;
        pthread_mutex_unlock(&lock);
    } else {
        printf("unexpected payload %s\n", buf);
        failures++;
    }
}

static int distinct(int q)
{
    int n = 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < N; i++)
        n += seen[q][i] > 0;
    pthread_mutex_unlock(&lock);
    return n;
}

static int dups(int q)
{
    int n = 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < N; i++)
        n += seen[q][i] > 1 ? seen[q][i] - 1 : 0;
    pthread_mutex_unlock(&lock);
    return n;
}

static int arrived(void* ctx, char* topic, int topic_len, MQTTClient_message* m)
{
    (void)ctx;
    (void)topic_len;
    note(m);
    MQTTClient_freeMessage(&m);
    MQTTClient_free(topic);
    return 1;
}

static void connect_sub(MQTTClient c)
{
    MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
    o.cleansession = 0;
    o.keepAliveInterval = 20;
    CHECK(MQTTClient_connect(c, &o) == MQTTCLIENT_SUCCESS);
}

/* Publishes the 60 messages from a second client and waits for each to complete. */
static void publish_all(const char* uri, const char* id)
{
    MQTTClient p;
    MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
    CHECK(MQTTClient_create(&p, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    CHECK(MQTTClient_connect(p, &o) == MQTTCLIENT_SUCCESS);
    for (int i = 0; i < N; i++) {
        for (int q = 1; q <= 2; q++) {
            char payload[16];
            MQTTClient_deliveryToken t = 0;
            int len = snprintf(payload, sizeof payload, "%d %d", q, i);
            CHECK(MQTTClient_publish(p, q == 1 ? "rg/1" : "rg/2", len, payload, q, 0, &t) == 0);
            CHECK(MQTTClient_waitForCompletion(p, t, 5000) == MQTTCLIENT_SUCCESS);
        }
    }
    MQTTClient_disconnect(p, 1000);
    MQTTClient_destroy(&p);
}

static int own(const char* uri, const char* dir)
{
    MQTTClient c;
    char id[64];
    char* topics[] = {"rg/1", "rg/2"};
    int qos[] = {1, 2};
    MQTTClient_deliveryToken* pending = NULL;
    int npending = 0;
    snprintf(id, sizeof id, "rg-own-%ld", (long)getpid());
    CHECK(MQTTClient_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_DEFAULT, (void*)dir) == 0);
    connect_sub(c);
    CHECK(MQTTClient_subscribeMany(c, 2, topics, qos) == MQTTCLIENT_SUCCESS);
    for (int i = 0; i < N; i++) {
        for (int q = 1; q <= 2; q++) {
            char payload[16];
            int len = snprintf(payload, sizeof payload, "%d %d", q, i);
            CHECK(MQTTClient_publish(c, q == 1 ? "rg/1" : "rg/2", len, payload, q, 0, NULL) == 0);
        }
    }
    CHECK(MQTTClient_disconnect(c, 0) == MQTTCLIENT_SUCCESS);
    MQTTClient_destroy(&c);

    CHECK(MQTTClient_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_DEFAULT, (void*)dir) == 0);
    CHECK(MQTTClient_getPendingDeliveryTokens(c, &pending) == MQTTCLIENT_SUCCESS);
    while (pending && pending[npending] != -1)
        npending++;
    connect_sub(c);
    for (int i = 0; i < npending; i++)
        CHECK(MQTTClient_waitForCompletion(c, pending[i], 10000) == MQTTCLIENT_SUCCESS);
    MQTTClient_free(pending);
    for (int idle = 0; idle < 5 && (distinct(1) < N || distinct(2) < N);) {
        char* topic = NULL;
        int len = 0;
        MQTTClient_message* m = NULL;
        CHECK(MQTTClient_receive(c, &topic, &len, &m, 1000) == MQTTCLIENT_SUCCESS);
        if (m) {
            note(m);
            MQTTClient_freeMessage(&m);
            MQTTClient_free(topic);
        } else {
            idle++;
        }
    }
    printf("QoS 1 received %d/%d (duplicates %d), QoS 2 received %d/%d (duplicates %d); "
           "%d tokens pending after create\n",
           distinct(1), N, dups(1), distinct(2), N, dups(2), npending);
    CHECK(distinct(1) == N);
    CHECK(distinct(2) == N);
    CHECK(dups(2) == 0);
    MQTTClient_disconnect(c, 1000);
    MQTTClient_destroy(&c);
    printf("failures: %d\n", failures);
    return failures != 0;
}

struct taker {
    MQTTClient c;
    MQTTClient_message* m;
    char* topic;
};

static void* take_one(void* arg)
{
    struct taker* t = arg;
    int len = 0;
    int rc = MQTTClient_receive(t->c, &t->topic, &len, &t->m, 10000);
    CHECK(rc == MQTTCLIENT_SUCCESS);
    return NULL;
}

static int payload_is(const MQTTClient_message* m, const char* want)
{
    return m && m->payloadlen == (int)strlen(want) && memcmp(m->payload, want, strlen(want)) == 0;
}

/* Frees m (and its topic) while another thread waits in receive, and checks that this
 * thread gets the message with payload want: it comes only once m is acknowledged. */
static void free_while_next_waits(struct taker* t, MQTTClient_message* m, char* topic,
                                  const char* want)
{
    pthread_t th;
    t->m = NULL;
    t->topic = NULL;
    CHECK(pthread_create(&th, NULL, take_one, t) == 0);
    MQTTClient_freeMessage(&m);
    MQTTClient_free(topic);
    pthread_join(th, NULL);
    CHECK(payload_is(t->m, want));
}

static int freed(const char* uri)
{
    MQTTClient c, p;
    MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
    char id[64], pid[64];
    const char* payloads[] = {"1 0", "2 0", "1 1"};
    char* topic = NULL;
    int len = 0;
    MQTTClient_message* first = NULL;
    struct taker t = {0};
    snprintf(id, sizeof id, "rg-freed-%ld", (long)getpid());
    snprintf(pid, sizeof pid, "rgp-freed-%ld", (long)getpid());
    CHECK(MQTTClient_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    CHECK(MQTTClient_connect(c, &o) == MQTTCLIENT_SUCCESS);
    CHECK(MQTTClient_subscribe(c, "rg/#", 2) == MQTTCLIENT_SUCCESS);
    CHECK(MQTTClient_create(&p, uri, pid, MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    CHECK(MQTTClient_connect(p, &o) == MQTTCLIENT_SUCCESS);
    for (int i = 0; i < 3; i++) {
        MQTTClient_deliveryToken dt = 0;
        int q = payloads[i][0] - '0';
        CHECK(MQTTClient_publish(p, q == 1 ? "rg/1" : "rg/2", 3, (void*)payloads[i], q, 0, &dt) == 0);
        CHECK(MQTTClient_waitForCompletion(p, dt, 5000) == MQTTCLIENT_SUCCESS);
    }
    CHECK(MQTTClient_receive(c, &topic, &len, &first, 10000) == MQTTCLIENT_SUCCESS);
    CHECK(payload_is(first, payloads[0]));
    /* The second message waits at the broker until the first is acknowledged. */
    t.c = c;
    free_while_next_waits(&t, first, topic, payloads[1]);
    /* Freed by another thread than the one that received it. */
    free_while_next_waits(&t, t.m, t.topic, payloads[2]);
    printf("freed: the third message %s\n", t.m ? "came" : "did not come");
    MQTTClient_freeMessage(&t.m);
    MQTTClient_free(t.topic);
    MQTTClient_disconnect(p, 1000);
    MQTTClient_destroy(&p);
    MQTTClient_disconnect(c, 1000);
    MQTTClient_destroy(&c);
    printf("failures: %d\n", failures);
    return failures != 0;
}

int main(int argc, char** argv)
{
    MQTTClient c;
    char sub_id[64], pub_id[64];
    char* topics[] = {"rg/1", "rg/2"};
    int qos[] = {1, 2};
    int unread;
    if (argc != 4) {
        fprintf(stderr, "usage: receive_guarantee unread|callbacks|own|freed URI DIR\n");
        return 2;
    }
    unread = strcmp(argv[1], "unread") == 0;
    if (strcmp(argv[1], "own") == 0)
        return own(argv[2], argv[3]);
    if (strcmp(argv[1], "freed") == 0)
        return freed(argv[2]);
    snprintf(sub_id, sizeof sub_id, "rg-%c-%ld", argv[1][0], (long)getpid());
    snprintf(pub_id, sizeof pub_id, "rgp-%c-%ld", argv[1][0], (long)getpid());

    CHECK(MQTTClient_create(&c, argv[2], sub_id, MQTTCLIENT_PERSISTENCE_DEFAULT, argv[3]) == 0);
    connect_sub(c);
    CHECK(MQTTClient_subscribeMany(c, 2, topics, qos) == MQTTCLIENT_SUCCESS);
    publish_all(argv[2], pub_id);
    /* Time for a client that reads ahead to take the messages in (the outcome must not
     * depend on it: what was not read in is still the broker's). */
    sleep_ms(300);
    CHECK(MQTTClient_disconnect(c, 1000) == MQTTCLIENT_SUCCESS);

    if (unread) {
        MQTTClient_destroy(&c);
        CHECK(MQTTClient_create(&c, argv[2], sub_id, MQTTCLIENT_PERSISTENCE_DEFAULT, argv[3]) == 0);
        connect_sub(c);
        for (int idle = 0; idle < 5 && (distinct(1) < N || distinct(2) < N);) {
            char* topic = NULL;
            int len = 0;
            MQTTClient_message* m = NULL;
            int rc = MQTTClient_receive(c, &topic, &len, &m, 1000);
            CHECK(rc == MQTTCLIENT_SUCCESS);
            if (m) {
                note(m);
                MQTTClient_freeMessage(&m);
                MQTTClient_free(topic);
            } else {
                idle++;
            }
        }
    } else {
        CHECK(MQTTClient_setCallbacks(c, NULL, NULL, arrived, NULL) == MQTTCLIENT_SUCCESS);
        connect_sub(c);
        for (int waited = 0; waited < 5000 && (distinct(1) < N || distinct(2) < N); waited += 10)
            sleep_ms(10);
    }
    printf("QoS 1 received %d/%d (duplicates %d), QoS 2 received %d/%d (duplicates %d)\n",
           distinct(1), N, dups(1), distinct(2), N, dups(2));
    CHECK(distinct(1) == N);
    CHECK(distinct(2) == N);
    CHECK(dups(2) == 0);
    MQTTClient_disconnect(c, 1000);
    MQTTClient_destroy(&c);
    printf("failures: %d\n", failures);
    return failures != 0;
}
