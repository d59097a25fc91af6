/*
 * MQTTAsync: publishes in flight when the connection is lost complete under their tokens
 * after the application connects again itself (MQTTAsync_connect in connectionLost, as
 * Paho C++'s samples do). Run by tests/capi_async.rs, built against Paho C and against
 * mqttsync: the same output is expected from both.
 *
 *   async_inflight_reconnect URI ID [DIR]
 *
 * Connects (cleansession 0, keepalive 2 s, no automatic reconnect; with DIR, file
 * persistence in DIR, else none), prints "ready" and waits for a line on stdin (the
 * harness freezes the broker meanwhile). Sends m1 (QoS 1) and m2 (QoS 2) with onSuccess
 * and onFailure, prints "sent 2"; the keepalive finds the connection lost and
 * connectionLost prints "lost" and calls MQTTAsync_connect again (the main thread again
 * after each onFailure, until connected). The harness lets the broker go on; the program waits (30
 * s at most) for both sends' onSuccess, then prints what completed and the number of
 * failed checks, and disconnects.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "MQTTAsync.h"

static int failures;
#define CHECK(c) do { if (!(c)) { printf("FAILED %s:%d %s\n", __FILE__, __LINE__, #c); ++failures; } } while (0)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static MQTTAsync c;
static MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
static int connects, connect_fails, sends_ok, sends_failed, delivered_calls;

static void on_connect(void* ctx, MQTTAsync_successData* d)
{
    (void)ctx; (void)d;
    pthread_mutex_lock(&mu);
    connects++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void on_connect_fail(void* ctx, MQTTAsync_failureData* d)
{
    (void)ctx; (void)d;
    pthread_mutex_lock(&mu);
    connect_fails++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void lost(void* ctx, char* cause)
{
    (void)ctx; (void)cause;
    printf("lost\n");
    CHECK(MQTTAsync_connect(c, &co) == MQTTASYNC_SUCCESS);
}

static int arrived(void* ctx, char* topic, int len, MQTTAsync_message* m)
{
    (void)ctx; (void)len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void delivered(void* ctx, MQTTAsync_token t)
{
    (void)ctx; (void)t;
    pthread_mutex_lock(&mu);
    delivered_calls++;
    pthread_mutex_unlock(&mu);
}

static void send_ok(void* ctx, MQTTAsync_successData* d)
{
    (void)ctx; (void)d;
    pthread_mutex_lock(&mu);
    sends_ok++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void send_failed(void* ctx, MQTTAsync_failureData* d)
{
    (void)ctx;
    printf("send onFailure code=%d\n", d ? d->code : -999);
    pthread_mutex_lock(&mu);
    sends_failed++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* Waits (`secs` at most) until *v >= n; the value then. */
static int wait_for(const int* v, int n, int secs)
{
    struct timespec dl;
    int got;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += secs;
    pthread_mutex_lock(&mu);
    while (*v < n)
        if (pthread_cond_timedwait(&cv, &mu, &dl) != 0)
            break;
    got = *v;
    pthread_mutex_unlock(&mu);
    return got;
}

static MQTTAsync_token send_msg(const char* payload, int qos)
{
    MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
    r.onSuccess = send_ok;
    r.onFailure = send_failed;
    CHECK(MQTTAsync_send(c, "T/inflight", (int)strlen(payload), (void*)payload, qos, 0, &r)
        == MQTTASYNC_SUCCESS);
    CHECK(r.token > 0);
    return r.token;
}

int main(int argc, char** argv)
{
    char line[16];
    MQTTAsync_token t1, t2;
    MQTTAsync_disconnectOptions dc = MQTTAsync_disconnectOptions_initializer;

    if (argc < 3)
    {
        fprintf(stderr, "usage: %s URI ID [DIR]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(MQTTAsync_create(&c, argv[1], argv[2],
        argc > 3 ? MQTTCLIENT_PERSISTENCE_DEFAULT : MQTTCLIENT_PERSISTENCE_NONE,
        argc > 3 ? argv[3] : NULL) == MQTTASYNC_SUCCESS);
    CHECK(MQTTAsync_setCallbacks(c, NULL, lost, arrived, delivered) == MQTTASYNC_SUCCESS);
    co.cleansession = 0;
    co.keepAliveInterval = 2;
    co.connectTimeout = 2;
    co.onSuccess = on_connect;
    co.onFailure = on_connect_fail;
    CHECK(MQTTAsync_connect(c, &co) == MQTTASYNC_SUCCESS);
    CHECK(wait_for(&connects, 1, 10) == 1);
    printf("ready\n");
    if (!fgets(line, sizeof line, stdin)) /* the harness froze the broker */
        CHECK(0);
    t1 = send_msg("m1", 1);
    t2 = send_msg("m2", 2);
    printf("sent 2\n");
    /* lost, connected again (the harness lets the broker go on; Paho refuses a connect
     * made in the failed one's onFailure, so failures are retried from here), both done */
    {
        struct timespec dl, pause = { 0, 200 * 1000000L };
        int seen = 0, more = 1;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 30;
        while (more)
        {
            pthread_mutex_lock(&mu);
            while (connects < 2 && connect_fails == seen && more)
                more = pthread_cond_timedwait(&cv, &mu, &dl) == 0;
            more = more && connects < 2;
            seen = connect_fails;
            pthread_mutex_unlock(&mu);
            if (more)
            {
                nanosleep(&pause, NULL);
                CHECK(MQTTAsync_connect(c, &co) == MQTTASYNC_SUCCESS);
            }
        }
        CHECK(connects >= 2);
    }
    wait_for(&sends_ok, 2, 30);
    pthread_mutex_lock(&mu);
    printf("onSuccess %d onFailure %d deliveryComplete %d\n", sends_ok, sends_failed,
        delivered_calls);
    CHECK(sends_ok == 2 && sends_failed == 0 && delivered_calls == 2);
    pthread_mutex_unlock(&mu);
    CHECK(MQTTAsync_isComplete(c, t1) == 1);
    CHECK(MQTTAsync_isComplete(c, t2) == 1);
    CHECK(MQTTAsync_waitForCompletion(c, t1, 1000) == MQTTASYNC_SUCCESS);
    dc.timeout = 1000;
    CHECK(MQTTAsync_disconnect(c, &dc) == MQTTASYNC_SUCCESS);
    MQTTAsync_destroy(&c);
    printf("failures: %d\n", failures);
    return failures != 0;
}
