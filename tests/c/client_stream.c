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

static void give_up_after_a_minute(const char* what, int rc)
{
    if (++waited_ms > 60000)
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
    while (!MQTTClient_isConnected(c))
    {
        rc = MQTTClient_connect(c, &co);
        if (rc == MQTTCLIENT_SUCCESS)
            return;
        give_up_after_a_minute("connect", rc);
        sleep_ms(1);
    }
}

static int pending(MQTTClient c)
{
    MQTTClient_deliveryToken* t = NULL;
    int n = 0;
    if (MQTTClient_getPendingDeliveryTokens(c, &t) != MQTTCLIENT_SUCCESS)
        return 1 << 30;
    while (t && t[n] != -1)
        n++;
    MQTTClient_free(t);
    return n;
}

/* Until every publish made so far has completed. */
static void drain(MQTTClient c)
{
    while (pending(c) > 0)
    {
        ensure_connected(c);
        give_up_after_a_minute("completions", pending(c));
        sleep_ms(1);
    }
}

int main(int argc, char** argv)
{
    MQTTClient c;
    const char *uri, *dir, *id;
    long total, start, seq;
    int rc;

    if (argc != 6)
    {
        fprintf(stderr, "usage: %s URI DIR ID TOTAL PROGRESS\n", argv[0]);
        return 2;
    }
    uri = argv[1]; dir = argv[2]; id = argv[3]; total = atol(argv[4]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    start = stream_start(dir, id, argv[5]);

    user_store.context = (void*)dir;
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
            give_up_after_a_minute("publish", rc);
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
