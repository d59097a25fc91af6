/* Callback client with a last will: subscribes to TOPIC/# through callbacks, announces
 * "online" on TOPIC/status (retained), and sets the will "offline" on the same topic. It
 * answers every message on TOPIC/ping with a publish on TOPIC/pong from inside
 * messageArrived (allowed with mqttsync), and exits after COUNT pings: with "-k" it exits
 * without disconnecting (the broker then publishes the will).
 * Usage: callbacks_will [URI] [TOPIC] [COUNT] [-k] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "MQTTClient.h"

static MQTTClient client;
static const char *base;
static volatile int pings;
static volatile int lost;
static volatile MQTTClient_deliveryToken last_pong;

static int on_message(void *ctx, char *topic, int topic_len, MQTTClient_message *msg)
{
    char pong[256];
    (void)ctx;
    (void)topic_len;
    snprintf(pong, sizeof pong, "%s/pong", base);
    if (strstr(topic, "/ping") != NULL) {
        MQTTClient_deliveryToken token = 0;
        int rc = MQTTClient_publish(client, pong, msg->payloadlen, msg->payload, 1, 0, &token);
        printf("ping %.*s -> pong rc=%d\n", msg->payloadlen, (char *)msg->payload, rc);
        fflush(stdout);
        last_pong = token;
        pings++;
    }
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
    return 1; /* consumed: the application freed message and topic */
}

static void on_lost(void *ctx, char *cause)
{
    (void)ctx;
    printf("connection lost: %s\n", cause ? cause : "(no cause)");
    lost = 1;
}

static void on_delivered(void *ctx, MQTTClient_deliveryToken token)
{
    (void)ctx;
    (void)token;
}

int main(int argc, char *argv[])
{
    const char *uri = argc > 1 ? argv[1] : "tcp://localhost:1883";
    int count = argc > 3 ? atoi(argv[3]) : 1;
    int die = argc > 4 && strcmp(argv[4], "-k") == 0;
    char status[256], filter[256];
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
    MQTTClient_willOptions will = MQTTClient_willOptions_initializer;
    int rc;

    base = argc > 2 ? argv[2] : "mqttsync/c";
    snprintf(status, sizeof status, "%s/status", base);
    snprintf(filter, sizeof filter, "%s/#", base);
    if ((rc = MQTTClient_create(&client, uri, "mqttsync-c-callbacks", MQTTCLIENT_PERSISTENCE_NONE, NULL)) != MQTTCLIENT_SUCCESS)
        return 1;
    if ((rc = MQTTClient_setCallbacks(client, NULL, on_lost, on_message, on_delivered)) != MQTTCLIENT_SUCCESS)
        return 1;
    will.topicName = status;
    will.message = "offline";
    will.qos = 1;
    will.retained = 1;
    opts.will = &will;
    opts.keepAliveInterval = 5;
    if ((rc = MQTTClient_connect(client, &opts)) != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "connect failed: %d\n", rc);
        return 1;
    }
    if ((rc = MQTTClient_subscribe(client, filter, 1)) != MQTTCLIENT_SUCCESS)
        return 1;
    MQTTClient_publish(client, status, 6, "online", 1, 1, NULL);
    printf("ready\n");
    fflush(stdout);
    while (pings < count && !lost)
        MQTTClient_yield(); /* a short wait; mqttsync needs no yield for keepalive */
    /* publish returns once the pong is queued (mqttsync) or written (Paho), not once it
     * is acknowledged: wait for it, or _Exit below could drop it. */
    if (last_pong != 0)
        MQTTClient_waitForCompletion(client, last_pong, 5000);
    if (die) {
        printf("exiting without disconnect\n");
        fflush(stdout);
        _Exit(0);
    }
    MQTTClient_disconnect(client, 2000);
    MQTTClient_destroy(&client);
    return lost;
}
