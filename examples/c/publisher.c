/* Publisher: connect, publish QoS 0, 1 and 2 messages, wait for each delivery, disconnect.
 * Usage: publisher [URI] [TOPIC] [COUNT]   (defaults tcp://localhost:1883 mqttsync/c 3)
 * A plain Paho C MQTTClient.h program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "MQTTClient.h"

int main(int argc, char *argv[])
{
    const char *uri = argc > 1 ? argv[1] : "tcp://localhost:1883";
    const char *topic = argc > 2 ? argv[2] : "mqttsync/c";
    int count = argc > 3 ? atoi(argv[3]) : 3;
    MQTTClient client;
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
    int rc;

    rc = MQTTClient_create(&client, uri, "mqttsync-c-publisher", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    if (rc != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "create failed: %s\n", MQTTClient_strerror(rc));
        return 1;
    }
    opts.keepAliveInterval = 20;
    opts.cleansession = 1;
    opts.connectTimeout = 5;
    rc = MQTTClient_connect(client, &opts);
    if (rc != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "connect failed: %d (%s)\n", rc, MQTTClient_strerror(rc));
        MQTTClient_destroy(&client);
        return 1;
    }
    for (int i = 0; i < count; i++) {
        char payload[64];
        MQTTClient_message msg = MQTTClient_message_initializer;
        MQTTClient_deliveryToken token = 0;
        snprintf(payload, sizeof payload, "message %d", i);
        msg.payload = payload;
        msg.payloadlen = (int)strlen(payload);
        msg.qos = i % 3;
        msg.retained = 0;
        rc = MQTTClient_publishMessage(client, topic, &msg, &token);
        if (rc == MQTTCLIENT_SUCCESS)
            rc = MQTTClient_waitForCompletion(client, token, 5000);
        if (rc != MQTTCLIENT_SUCCESS) {
            fprintf(stderr, "publish %d failed: %d (%s)\n", i, rc, MQTTClient_strerror(rc));
            MQTTClient_disconnect(client, 1000);
            MQTTClient_destroy(&client);
            return 1;
        }
        printf("delivered \"%s\" at QoS %d\n", payload, msg.qos);
    }
    MQTTClient_disconnect(client, 5000);
    MQTTClient_destroy(&client);
    return 0;
}
