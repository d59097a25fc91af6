/* Subscriber using MQTTClient_receive (no callbacks): prints COUNT messages and exits.
 * Usage: subscriber [URI] [TOPIC] [COUNT] [TIMEOUT_S]  (defaults tcp://localhost:1883 mqttsync/c 3 30)
 * Prints "subscribed" once the subscription is in place (scripts can wait for it). */
#include <stdio.h>
#include <stdlib.h>
#include "MQTTClient.h"

int main(int argc, char *argv[])
{
    const char *uri = argc > 1 ? argv[1] : "tcp://localhost:1883";
    const char *topic = argc > 2 ? argv[2] : "mqttsync/c";
    int count = argc > 3 ? atoi(argv[3]) : 3;
    int timeout_s = argc > 4 ? atoi(argv[4]) : 30;
    MQTTClient client;
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
    int rc, got = 0, waited_ms = 0;

    if ((rc = MQTTClient_create(&client, uri, "mqttsync-c-subscriber", MQTTCLIENT_PERSISTENCE_NONE, NULL)) != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "create failed: %s\n", MQTTClient_strerror(rc));
        return 1;
    }
    opts.keepAliveInterval = 20;
    opts.cleansession = 1;
    if ((rc = MQTTClient_connect(client, &opts)) != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "connect failed: %d\n", rc);
        MQTTClient_destroy(&client);
        return 1;
    }
    if ((rc = MQTTClient_subscribe(client, topic, 2)) != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "subscribe failed: %d\n", rc);
        MQTTClient_destroy(&client);
        return 1;
    }
    printf("subscribed\n");
    fflush(stdout);
    while (got < count && waited_ms < timeout_s * 1000) {
        char *topic_name = NULL;
        int topic_len = 0;
        MQTTClient_message *msg = NULL;
        rc = MQTTClient_receive(client, &topic_name, &topic_len, &msg, 1000);
        if (rc != MQTTCLIENT_SUCCESS) {
            fprintf(stderr, "receive failed: %d\n", rc);
            break;
        }
        if (msg == NULL) { /* timeout: no message within a second */
            waited_ms += 1000;
            continue;
        }
        printf("%s %.*s (QoS %d)\n", topic_name, msg->payloadlen, (char *)msg->payload, msg->qos);
        fflush(stdout);
        MQTTClient_freeMessage(&msg);
        MQTTClient_free(topic_name);
        got++;
    }
    MQTTClient_disconnect(client, 1000);
    MQTTClient_destroy(&client);
    return got == count ? 0 : 1;
}
