/*
 * An MQTTAsync publisher of a numbered stream, to be killed (SIGKILL) at any point and
 * started again (mqttsync; run by tests/capi_async.rs).
 *
 *   async_stream URI DIR ID TOTAL PROGRESS
 *
 * Publishes "seq=NNNNNN" for seq = START .. TOTAL-1 to astream/t, QoS 2 for odd seq and
 * QoS 1 for even, through the user persistence of user_store.h (DIR/ID), with
 * sendWhileDisconnected and automatic reconnect (the harness stops the broker at times),
 * at most 200 messages unfinished at a time; MQTT 3.1.1, or MQTT 5 with AS_V5 set (a session
 * expiry of an hour). Prints "START n", then "DONE" once every message has completed and
 * the handle is destroyed.
 *
 * Where a run starts, from the store's writes: stream_progress.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "MQTTAsync.h"

#include "user_store.h"
#include "stream_progress.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int connected;

static void on_connect(void* ctx, MQTTAsync_successData* d)
{
    (void)ctx; (void)d;
    pthread_mutex_lock(&mu);
    connected = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void on_connect_fail(void* ctx, MQTTAsync_failureData* d)
{
    (void)ctx;
    fprintf(stderr, "connect failed: %d\n", d ? d->code : -999);
    exit(3);
}

static int pending(MQTTAsync c)
{
    MQTTAsync_token* t = NULL;
    int n = 0;
    if (MQTTAsync_getPendingTokens(c, &t) != MQTTASYNC_SUCCESS)
        return 1 << 30;
    while (t && t[n] != -1)
        n++;
    MQTTAsync_free(t);
    return n;
}

int main(int argc, char** argv)
{
    MQTTAsync c;
    int v5 = getenv("AS_V5") != NULL;
    MQTTAsync_createOptions o = MQTTAsync_createOptions_initializer;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
    MQTTProperties props = MQTTProperties_initializer;
    const char *uri, *dir, *id;
    long total, start, seq, waited = 0;
    int rc;

    start = stream_args(argc, argv, &uri, &dir, &id, &total);

    o.sendWhileDisconnected = 1;
    o.maxBufferedMessages = 100000;
    if (v5)
    {
        /* The session outlives the connection (an hour), as cleansession 0 does in 3.1.1. */
        MQTTProperty expiry;
        expiry.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
        expiry.value.integer4 = 3600;
        MQTTProperties_add(&props, &expiry);
        o.MQTTVersion = MQTTVERSION_5;
        co = co5;
        co.cleanstart = 0;
        co.connectProperties = &props;
    }
    else
        co.cleansession = 0;
    rc = MQTTAsync_createWithOptions(&c, uri, id, MQTTCLIENT_PERSISTENCE_USER, &user_store, &o);
    if (rc != MQTTASYNC_SUCCESS)
    {
        fprintf(stderr, "create: %d\n", rc);
        return 3;
    }
    co.keepAliveInterval = 20;
    co.automaticReconnect = 1;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 1;
    co.onSuccess = on_connect;
    co.onFailure = on_connect_fail;
    if (MQTTAsync_connect(c, &co) != MQTTASYNC_SUCCESS)
        return 3;
    pthread_mutex_lock(&mu);
    while (!connected)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    printf("START %ld\n", start);

    for (seq = start; seq < total; seq++)
    {
        char payload[32];
        snprintf(payload, sizeof payload, "seq=%06ld", seq);
        while (pending(c) >= 200)
            sleep_ms(1);
        while ((rc = MQTTAsync_send(c, "astream/t", (int)strlen(payload), payload,
                    seq % 2 ? 2 : 1, 0, NULL)) != MQTTASYNC_SUCCESS)
        {
            if (trace_file)
                fprintf(trace_file, "%d send %ld rc %d\n", (int)getpid(), seq, rc);
            if (++waited > 60000)
            {
                fprintf(stderr, "send %ld: %d\n", seq, rc);
                return 4;
            }
            sleep_ms(1);
        }
    }
    while (pending(c) > 0)
    {
        if (++waited > 60000)
        {
            fprintf(stderr, "%d messages never completed\n", pending(c));
            return 4;
        }
        sleep_ms(1);
    }
    {
        MQTTAsync_disconnectOptions dc = MQTTAsync_disconnectOptions_initializer;
        dc.timeout = 1000;
        MQTTAsync_disconnect(c, &dc);
        sleep_ms(100);
    }
    MQTTAsync_destroy(&c);
    printf("DONE\n");
    return 0;
}
