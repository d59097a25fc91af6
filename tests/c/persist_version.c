/*
 * A store of the other MQTT version (tests/capi_client.rs writes an MQTT 5 record into DIR
 * first):
 *   persist_version URI CLIENTID DIR
 * MQTTClient_create / MQTTAsync_create for MQTT 3 fail with a persistence error instead of
 * skipping the record silently; createWithOptions for MQTT 5 opens the same store.
 */
#include <stdio.h>
#include "MQTTClient.h"
#include "MQTTAsync.h"

#define CHECK(cond) do { if (!(cond)) { printf("CHECK FAILED line %d: %s\n", __LINE__, #cond); \
    failures++; } } while (0)

int main(int argc, char** argv)
{
    int failures = 0;
    MQTTClient c = NULL;
    MQTTClient_createOptions co = MQTTClient_createOptions_initializer;
    if (argc != 4) {
        fprintf(stderr, "usage: persist_version URI CLIENTID DIR\n");
        return 2;
    }
    CHECK(MQTTClient_create(&c, argv[1], argv[2], MQTTCLIENT_PERSISTENCE_DEFAULT, argv[3])
          == MQTTCLIENT_PERSISTENCE_ERROR);
    CHECK(c == NULL);
    co.MQTTVersion = MQTTVERSION_5;
    CHECK(MQTTClient_createWithOptions(&c, argv[1], argv[2], MQTTCLIENT_PERSISTENCE_DEFAULT,
                                       argv[3], &co) == MQTTCLIENT_SUCCESS);
    MQTTClient_destroy(&c);
    {
        /* The same for MQTTAsync. */
        MQTTAsync a = NULL;
        MQTTAsync_createOptions ao = MQTTAsync_createOptions_initializer;
        CHECK(MQTTAsync_create(&a, argv[1], argv[2], MQTTCLIENT_PERSISTENCE_DEFAULT, argv[3])
              == MQTTASYNC_PERSISTENCE_ERROR);
        CHECK(a == NULL);
        ao.MQTTVersion = MQTTVERSION_5;
        CHECK(MQTTAsync_createWithOptions(&a, argv[1], argv[2], MQTTCLIENT_PERSISTENCE_DEFAULT,
                                          argv[3], &ao) == MQTTASYNC_SUCCESS);
        MQTTAsync_destroy(&a);
    }
    printf("failures: %d\n", failures);
    return failures != 0;
}
