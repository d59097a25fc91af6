/* MQTTClient.h over WebSocket (and optionally an HTTP CONNECT proxy): connect options
 * version 8 with httpHeaders and httpProxy, then a QoS 0/1/2 round trip through the
 * client's own subscription with MQTTClient_receive. Prints "failures: N" last.
 * Usage: client_ws URI [PROXY_URI] */
#include <stdio.h>
#include <string.h>
#include "MQTTClient.h"

static int failures;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            failures++;                                                           \
            printf("FAIL line %d: ", __LINE__);                                   \
            printf(__VA_ARGS__);                                                  \
            printf("\n");                                                         \
        }                                                                         \
    } while (0)

int main(int argc, char *argv[])
{
    MQTTClient c;
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer_ws;
    MQTTClient_nameValue headers[] = {{"X-From-C", "mqttsync"}, {NULL, NULL}};
    const char *topic = "c/ws";
    int rc, qos;

    if (argc < 2) {
        printf("usage: client_ws URI [PROXY | env]\nfailures: 1\n");
        return 1;
    }
    rc = MQTTClient_create(&c, argv[1], "c-ws-client", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    CHECK(rc == MQTTCLIENT_SUCCESS, "create %d", rc);
    if (argc > 2 && strcmp(argv[2], "env") == 0) {
        /* No headers and no proxy option: a proxy only from the environment. */
    } else {
        opts.httpHeaders = headers;
        if (argc > 2)
            opts.httpProxy = argv[2];
    }
    opts.connectTimeout = 10;
    rc = MQTTClient_connect(c, &opts);
    CHECK(rc == MQTTCLIENT_SUCCESS, "connect %d", rc);
    if (rc == MQTTCLIENT_SUCCESS)
        printf("returned serverURI=%s\n", opts.returned.serverURI ? opts.returned.serverURI : "(null)");
    rc = MQTTClient_subscribe(c, topic, 2);
    CHECK(rc == MQTTCLIENT_SUCCESS, "subscribe %d", rc);
    for (qos = 0; qos <= 2 && failures == 0; qos++) {
        char payload[32];
        char *t = NULL;
        int tlen = 0;
        MQTTClient_message *m = NULL;
        MQTTClient_deliveryToken dt = 0;
        snprintf(payload, sizeof payload, "over ws at %d", qos);
        rc = MQTTClient_publish(c, topic, (int)strlen(payload), payload, qos, 0, &dt);
        CHECK(rc == MQTTCLIENT_SUCCESS, "publish %d", rc);
        if (qos > 0) {
            rc = MQTTClient_waitForCompletion(c, dt, 5000);
            CHECK(rc == MQTTCLIENT_SUCCESS, "waitForCompletion %d", rc);
        }
        rc = MQTTClient_receive(c, &t, &tlen, &m, 5000);
        CHECK(rc == MQTTCLIENT_SUCCESS && m != NULL, "receive %d", rc);
        if (m != NULL) {
            CHECK(m->payloadlen == (int)strlen(payload) && memcmp(m->payload, payload, strlen(payload)) == 0,
                  "payload");
            CHECK(m->qos == qos, "qos %d", m->qos);
            printf("received %.*s\n", m->payloadlen, (char *)m->payload);
            MQTTClient_freeMessage(&m);
            MQTTClient_free(t);
        }
    }
    rc = MQTTClient_disconnect(c, 1000);
    CHECK(rc == MQTTCLIENT_SUCCESS, "disconnect %d", rc);
    MQTTClient_destroy(&c);
    printf("failures: %d\n", failures);
    return failures != 0;
}
