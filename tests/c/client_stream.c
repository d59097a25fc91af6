/*
 * An MQTTClient publisher of a numbered stream, to be killed (SIGKILL) at any point and
 * started again (mqttsync; run by tests/capi_client.rs).
 *
 *   client_stream URI DIR ID TOTAL PROGRESS
 *
 * Publishes "seq=NNNNNN" for seq = START .. TOTAL-1 to astream/t, QoS 2 for odd seq and
 * QoS 1 for even, through the user persistence of user_store.h (DIR/ID), waiting for the
 * completions after every 20; when the connection is gone (the harness stops the broker
 * at times) it connects again, as a Paho program does, and goes on. Prints "START n",
 * then "DONE" once every message has completed and the handle is destroyed.
 *
 * Where a run starts, from the store's writes: stream_progress.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "MQTTClient.h"

#include "user_store.h"
#include "stream_progress.h"

static long waited_ms;

/* Counts `ms` more of waiting; exits once a minute has been spent so. */
static void give_up_after_a_minute(const char* what, int rc, long ms)
{
    waited_ms += ms;
    if (waited_ms > 60000)
    {
        fprintf(stderr, "%s: %d\n", what, rc);
        exit(4);
    }
}

/* Connected, connecting again as often as it takes. */
static void ensure_connected(MQTTClient c)
{
    MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
    int rc;
    co.cleansession = 0;
    co.keepAliveInterval = 20;
    /* A window of 20 (Paho's default, reliable = 1, is one), so that a publish does not
     * wait: Paho's would wait in MQTTClient_yield, 100 ms a time. */
    co.reliable = 0;
    co.maxInflightMessages = 20;
    while (!MQTTClient_isConnected(c))
    {
        rc = MQTTClient_connect(c, &co);
        if (rc == MQTTCLIENT_SUCCESS)
            return;
        give_up_after_a_minute("connect", rc, 1);
        sleep_ms(1);
    }
}

/* How many publishes have not completed; the first one's token in *first. */
static int pending(MQTTClient c, MQTTClient_deliveryToken* first)
{
    MQTTClient_deliveryToken* t = NULL;
    int n = 0;
    if (MQTTClient_getPendingDeliveryTokens(c, &t) != MQTTCLIENT_SUCCESS)
        return 1 << 30;
    while (t && t[n] != -1)
        n++;
    if (n > 0)
        *first = t[0];
    MQTTClient_free(t);
    return n;
}

/* Until every publish made so far has completed. Waiting on a token is what makes Paho's
 * synchronous client (no callbacks set) read the acknowledgements; mqttsync's I/O thread
 * reads them anyway. */
static void drain(MQTTClient c)
{
    MQTTClient_deliveryToken first = 0;
    int n;
    while ((n = pending(c, &first)) > 0)
    {
        ensure_connected(c);
        if (MQTTClient_waitForCompletion(c, first, 100) != MQTTCLIENT_SUCCESS)
            give_up_after_a_minute("completions", n, 100);
    }
}

int main(int argc, char** argv)
{
    MQTTClient c;
    const char *uri, *dir, *id;
    long total, start, seq;
    int rc;

    start = stream_args(argc, argv, &uri, &dir, &id, &total);

    rc = MQTTClient_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_USER, &user_store);
    if (rc != MQTTCLIENT_SUCCESS)
    {
        fprintf(stderr, "create: %d\n", rc);
        return 3;
    }
    ensure_connected(c);
    printf("START %ld\n", start);

    for (seq = start; seq < total; seq++)
    {
        char payload[32];
        MQTTClient_deliveryToken dt;
        snprintf(payload, sizeof payload, "seq=%06ld", seq);
        while ((rc = MQTTClient_publish(c, "astream/t", (int)strlen(payload), payload,
                    seq % 2 ? 2 : 1, 0, &dt)) != MQTTCLIENT_SUCCESS)
        {
            give_up_after_a_minute("publish", rc, 1);
            ensure_connected(c);
            sleep_ms(1);
        }
        if (seq % 20 == 19)
            drain(c);
    }
    drain(c);
    MQTTClient_disconnect(c, 1000);
    MQTTClient_destroy(&c);
    printf("DONE\n");
    return 0;
}
