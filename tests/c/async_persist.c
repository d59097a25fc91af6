/*
 * MQTTAsync with file persistence across a killed process (mqttsync; run by
 * tests/capi_async.rs).
 *
 *   async_persist publish URI DIR ID   connects (cleansession 0), prints "ready", waits for a
 *                                      line on stdin (the harness freezes the broker
 *                                      meanwhile), publishes 3 QoS 1 messages, prints
 *                                      "published 3" and waits to be killed (SIGKILL)
 *   async_persist offline URI DIR ID   creates the client with sendWhileDisconnected (at any
 *                                      time) and,
 *                                      never connecting, sends 3 messages (QoS 1, 2, 1),
 *                                      prints "buffered 3" and waits to be killed
 *   async_persist resend URI DIR ID    creates the client again: MQTTAsync_getPendingTokens
 *                                      lists the 3 messages before any connect; after the
 *                                      connect each completes under its token
 *                                      (deliveryComplete, MQTTAsync_waitForCompletion) and
 *                                      none is pending any more
 *   async_persist burst URI DIR ID     buffers AP_BURST (80) QoS 1 messages before the first
 *                                      connect, connects: each gets onSuccess (none
 *                                      onFailure) within a minute
 *   async_persist handover URI DIR ID  as offline, through the user persistence below, then
 *                                      connects: the store's remove callback ends the process
 *                                      (_exit) when the library removes the first buffered
 *                                      publish's record, after the client's own record of it
 *                                      was written (the instant a kill could come between)
 *
 * With AP_USER_STORE set in the environment, every mode uses a user persistence
 * (MQTTCLIENT_PERSISTENCE_USER) that keeps each record in a file DIR/ID/KEY. With AP_QOS0
 * the third buffered message is QoS 0 (which gets no deliveryComplete: resend waits for
 * two), and with AP_PERSIST_QOS0=0 the create options say persistQoS0 = 0. With
 * AP_SLOW_PUT the user persistence takes 500 ms to store each s- record (AP_PUT_MS: that
 * many), and with
 * AP_TWO_SENDERS publish sends p2 from a second thread while p1's send is storing it (so
 * that the client's I/O thread, not the sending thread, stores p2 and p3; with AP_TWO_ONLY
 * there is no p3, and "returned 2" is printed as soon as both sends have returned).
 * AP_EXPECT: the number of messages resend finds pending (3).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "MQTTAsync.h"

#include "user_store.h"

static void slow_put(const char* key)
{
    long ms = getenv("AP_PUT_MS") ? atol(getenv("AP_PUT_MS")) : getenv("AP_SLOW_PUT") ? 500 : 0;
    if (ms > 0 && strncmp(key, "s-", 2) == 0)
    {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L }; /* a slow disk */
        nanosleep(&ts, NULL);
    }
}

static void exit_at_offline_remove(const char* key)
{
    if (strncmp(key, "o-", 2) == 0)
    {
        printf("exit at the removal of %s\n", key);
        fflush(stdout);
        _exit(9);
    }
}

static int failures;
#define CHECK(c) do { if (!(c)) { printf("FAILED %s:%d %s\n", __FILE__, __LINE__, #c); ++failures; } } while (0)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int connected_ok, connect_failed;
static MQTTAsync_token completed[16];
static int ncompleted;

static void on_connect(void* ctx, MQTTAsync_successData* d)
{
    (void)ctx; (void)d;
    pthread_mutex_lock(&mu);
    connected_ok = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void on_connect_fail(void* ctx, MQTTAsync_failureData* d)
{
    (void)ctx;
    printf("connect onFailure code=%d\n", d ? d->code : -999);
    pthread_mutex_lock(&mu);
    connect_failed = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void delivered(void* ctx, MQTTAsync_token t)
{
    (void)ctx;
    pthread_mutex_lock(&mu);
    if (ncompleted < 16)
        completed[ncompleted++] = t;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static int arrived(void* ctx, char* topic, int len, MQTTAsync_message* m)
{
    (void)ctx; (void)len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static int burst_ok, burst_failed;

static void burst_success(void* ctx, MQTTAsync_successData* d)
{
    (void)ctx; (void)d;
    pthread_mutex_lock(&mu);
    burst_ok++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void burst_failure(void* ctx, MQTTAsync_failureData* d)
{
    (void)ctx;
    printf("send failed: %d\n", d ? d->code : -999);
    pthread_mutex_lock(&mu);
    burst_failed++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* Waits (10 s at most) until *flag or *count >= n. */
static void wait_until(const int* flag, int n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&mu);
    while (*flag < n && !connect_failed)
        if (pthread_cond_timedwait(&cv, &mu, &dl) != 0)
            break;
    pthread_mutex_unlock(&mu);
}

static int count_tokens(MQTTAsync c, MQTTAsync_token* out, int max)
{
    MQTTAsync_token* pending = NULL;
    int n = 0;
    CHECK(MQTTAsync_getPendingTokens(c, &pending) == MQTTASYNC_SUCCESS);
    while (pending && pending[n] != -1)
    {
        if (n < max)
            out[n] = pending[n];
        n++;
    }
    MQTTAsync_free(pending);
    return n;
}

static void send_p(MQTTAsync c, int i)
{
    MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
    char payload[8];
    snprintf(payload, sizeof payload, "p%d", i);
    CHECK(MQTTAsync_send(c, "T/apersist", 2, payload, 1, 0, &r) == 0);
    CHECK(r.token > 0);
}

static int p1_started;

static void* send_p2(void* c)
{
    struct timespec ms = { 0, 1000000L }, settle = { 0, 100 * 1000000L };
    while (!__atomic_load_n(&p1_started, __ATOMIC_ACQUIRE))
        nanosleep(&ms, NULL);
    nanosleep(&settle, NULL); /* p1's send is inside its 500 ms store write */
    send_p(c, 2);
    return NULL;
}

int main(int argc, char** argv)
{
    const char *mode, *uri, *dir, *id;
    MQTTAsync c;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_token restored[16];
    int i, j, n = 0;

    if (argc < 5)
    {
        fprintf(stderr, "usage: %s publish|offline|handover|resend URI DIR ID\n", argv[0]);
        return 2;
    }
    mode = argv[1]; uri = argv[2]; dir = argv[3]; id = argv[4];
    setvbuf(stdout, NULL, _IOLBF, 0);
    before_put_hook = slow_put;

    if (strcmp(mode, "offline") == 0 || strcmp(mode, "handover") == 0)
    {
        MQTTAsync_createOptions o = MQTTAsync_createOptions_initializer;
        MQTTAsync_token tokens[4];
        o.sendWhileDisconnected = 1;
        o.allowDisconnectedSendAtAnyTime = 1; /* before the first connect too */
        o.maxBufferedMessages = 10;
        if (getenv("AP_PERSIST_QOS0"))
            o.persistQoS0 = atoi(getenv("AP_PERSIST_QOS0"));
        CHECK(MQTTAsync_createWithOptions(&c, uri, id, store_type(), store_context(dir),
            &o) == 0);
        for (i = 0; i < 3; i++)
        {
            MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
            char payload[8];
            snprintf(payload, sizeof payload, "b%d", i + 1);
            int qos = i == 1 ? 2 : (i == 2 && getenv("AP_QOS0")) ? 0 : 1;
            CHECK(MQTTAsync_send(c, "T/apersist", 2, payload, qos, 0, &r) == 0);
            CHECK(r.token > 0);
        }
        n = count_tokens(c, tokens, 4);
        printf("buffered %d\nfailures: %d\n", n, failures);
        if (strcmp(mode, "handover") == 0)
        {
            before_remove_hook = exit_at_offline_remove;
            co.cleansession = 0;
            CHECK(MQTTAsync_connect(c, &co) == 0);
            sleep(30); /* ends in up_remove */
            printf("no record was removed\n");
            return 1;
        }
        for (;;)
            pause(); /* killed here by the harness (SIGKILL), never connected */
    }
    if (strcmp(mode, "burst") == 0)
    {
        MQTTAsync_createOptions o = MQTTAsync_createOptions_initializer;
        int burst = atoi(getenv("AP_BURST") ? getenv("AP_BURST") : "80");
        o.sendWhileDisconnected = 1;
        o.allowDisconnectedSendAtAnyTime = 1;
        o.maxBufferedMessages = burst;
        CHECK(MQTTAsync_createWithOptions(&c, uri, id, store_type(), store_context(dir),
            &o) == 0);
        for (i = 0; i < burst; i++)
        {
            MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
            char payload[16];
            snprintf(payload, sizeof payload, "k%d", i);
            r.onSuccess = burst_success;
            r.onFailure = burst_failure;
            CHECK(MQTTAsync_send(c, "T/aburst", (int)strlen(payload), payload, 1, 0, &r) == 0);
        }
        co.cleansession = 0;
        co.onSuccess = on_connect;
        co.onFailure = on_connect_fail;
        CHECK(MQTTAsync_connect(c, &co) == 0);
        wait_until(&connected_ok, 1);
        {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += 60;
            pthread_mutex_lock(&mu);
            while (burst_ok + burst_failed < burst)
                if (pthread_cond_timedwait(&cv, &mu, &dl) != 0)
                    break;
            printf("ok %d failed %d of %d\n", burst_ok, burst_failed, burst);
            pthread_mutex_unlock(&mu);
        }
        CHECK(burst_ok == burst);
        MQTTAsync_destroy(&c);
        printf("failures: %d\n", failures);
        return failures != 0;
    }
    CHECK(MQTTAsync_create(&c, uri, id, store_type(), store_context(dir)) == 0);
    CHECK(MQTTAsync_setCallbacks(c, NULL, NULL, arrived, delivered) == 0);
    if (strcmp(mode, "resend") == 0)
    {
        /* The Paho contract: messages left in flight by the killed run have tokens right
         * after create, before any connect. */
        n = count_tokens(c, restored, 16);
        printf("pending after create: %d\n", n);
        CHECK(n == (getenv("AP_EXPECT") ? atoi(getenv("AP_EXPECT")) : 3));
        for (i = 0; i < n && i < 16; i++)
            CHECK(MQTTAsync_isComplete(c, restored[i]) == 0);
    }
    co.cleansession = 0;
    co.onSuccess = on_connect;
    co.onFailure = on_connect_fail;
    CHECK(MQTTAsync_connect(c, &co) == 0);
    wait_until(&connected_ok, 1);
    CHECK(connected_ok);

    if (strcmp(mode, "publish") == 0)
    {
        char line[16];
        MQTTAsync_token tokens[4];
        printf("ready\n");
        if (!fgets(line, sizeof line, stdin)) /* the harness froze the broker */
            CHECK(0);
        if (getenv("AP_TWO_SENDERS"))
        {
            pthread_t th;
            CHECK(pthread_create(&th, NULL, send_p2, c) == 0);
            __atomic_store_n(&p1_started, 1, __ATOMIC_RELEASE);
            send_p(c, 1);
            pthread_join(th, NULL);
            if (getenv("AP_TWO_ONLY"))
            {
                /* Killed on this line: at once, while the client may still be storing. */
                printf("returned 2\nfailures: %d\n", failures);
                for (;;)
                    pause();
            }
            send_p(c, 3);
        }
        else
            for (i = 0; i < 3; i++)
                send_p(c, i + 1);
        n = count_tokens(c, tokens, 4);
        printf("published %d\nfailures: %d\n", n, failures);
        for (;;)
            pause(); /* killed here by the harness (SIGKILL), messages in flight */
    }

    /* resend: each restored message completes under its token (deliveryComplete for
     * QoS 1/2) */
    {
        int qos12 = getenv("AP_QOS0") ? n - 1 : n, seen = 0;
        wait_until(&ncompleted, qos12);
        pthread_mutex_lock(&mu);
        printf("deliveryComplete calls: %d\n", ncompleted);
        for (i = 0; i < n && i < 16; i++)
            for (j = 0; j < ncompleted; j++)
                seen += completed[j] == restored[i];
        CHECK(seen == qos12);
        pthread_mutex_unlock(&mu);
    }
    for (i = 0; i < n && i < 16; i++)
    {
        CHECK(MQTTAsync_waitForCompletion(c, restored[i], 10000) == MQTTASYNC_SUCCESS);
        CHECK(MQTTAsync_isComplete(c, restored[i]) == 1);
    }
    printf("pending after the resend: %d\n", count_tokens(c, restored, 16));
    {
        MQTTAsync_disconnectOptions dc = MQTTAsync_disconnectOptions_initializer;
        dc.timeout = 1000;
        CHECK(MQTTAsync_disconnect(c, &dc) == 0);
    }
    MQTTAsync_destroy(&c);
    printf("failures: %d\n", failures);
    return failures != 0;
}
