/* A tiny program linked against an installed mqttsync (pkg-config and CMake tests). */
#include <stdio.h>
#include <string.h>
#include "MQTTClient.h"

int main(void)
{
    MQTTProperties props = MQTTProperties_initializer;
    MQTTProperty p;
    MQTTClient_nameValue* info = MQTTClient_getVersionInfo();
    int rc;

    p.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
    p.value.data.len = 3;
    p.value.data.data = (char*)"key";
    p.value.value.len = 5;
    p.value.value.data = (char*)"value";
    rc = MQTTProperties_add(&props, &p);
    if (rc != 0 || props.count != 1 || props.length != 13)
        return 1;
    MQTTProperties_free(&props);
    if (strcmp(MQTTClient_strerror(MQTTCLIENT_DISCONNECTED), "Disconnected") != 0)
        return 2;
    printf("%s %s: %s\n", info[0].value, info[1].value, MQTTClient_strerror(MQTTCLIENT_BAD_QOS));
    return 0;
}
