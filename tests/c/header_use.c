/*
 * Uses every type, constant, initializer macro and function of the header, to prove that it
 * compiles on its own as C99 and C++11 with -Wall -Wextra -Werror -pedantic.
 * HEADER is the header under test (mqttsync.h or one of Paho's names), set with -D.
 */
#include HEADER

#include <string.h>

static int arrived(void* context, char* topicName, int topicLen, MQTTClient_message* message)
{
    (void)context; (void)topicName; (void)topicLen; (void)message;
    return 1;
}
static void delivered(void* context, MQTTClient_deliveryToken dt) { (void)context; (void)dt; }
static void lost(void* context, char* cause) { (void)context; (void)cause; }
static void disconnected(void* context, MQTTProperties* props, enum MQTTReasonCodes rc)
{
    (void)context; (void)props; (void)rc;
}
static void published(void* context, int dt, int packet_type, MQTTProperties* props,
                      enum MQTTReasonCodes rc)
{
    (void)context; (void)dt; (void)packet_type; (void)props; (void)rc;
}
static void tracer(enum MQTTCLIENT_TRACE_LEVELS level, char* message) { (void)level; (void)message; }
static int before_write(void* context, int bufcount, char* buffers[], int buflens[])
{
    (void)context; (void)bufcount; (void)buffers; (void)buflens;
    return 0;
}
static int after_read(void* context, char** buffer, int* buflen)
{
    (void)context; (void)buffer; (void)buflen;
    return 0;
}

int use_header(int run);
int use_header(int run)
{
    MQTTClient_connectOptions c1 = MQTTClient_connectOptions_initializer;
    MQTTClient_connectOptions c2 = MQTTClient_connectOptions_initializer5;
    MQTTClient_connectOptions c3 = MQTTClient_connectOptions_initializer_ws;
    MQTTClient_connectOptions c4 = MQTTClient_connectOptions_initializer5_ws;
    MQTTClient_willOptions will = MQTTClient_willOptions_initializer;
    MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
    MQTTClient_createOptions create = MQTTClient_createOptions_initializer;
    MQTTClient_createOptions create5 = MQTTClient_createOptions_initializer5;
    MQTTClient_message msg = MQTTClient_message_initializer;
    MQTTClient_init_options init = MQTTClient_init_options_initializer;
    MQTTProperties props = MQTTProperties_initializer;
    MQTTSubscribe_options subopts = MQTTSubscribe_options_initializer;
    MQTTResponse response = MQTTResponse_initializer;
    MQTTClient_nameValue headers[2] = { {"a", "b"}, {NULL, NULL} };
    MQTTClient_persistence pers;
    MQTTProperty prop;
    MQTTClient client = NULL;
    MQTTClient_deliveryToken dt = 0;
    MQTTClient_token tok = 0;
    MQTTClient_messageArrived* ma = arrived;
    MQTTClient_deliveryComplete* dc = delivered;
    MQTTClient_connectionLost* cl = lost;
    MQTTClient_disconnected* dis = disconnected;
    MQTTClient_published* pub = published;
    MQTTClient_traceCallback* tc = tracer;
    MQTTPersistence_beforeWrite* bw = before_write;
    MQTTPersistence_afterRead* ar = after_read;
    enum MQTTPropertyTypes ptype = MQTTPROPERTY_TYPE_UTF_8_STRING_PAIR;
    enum MQTTReasonCodes rc = MQTTREASONCODE_NORMAL_DISCONNECTION;
    enum MQTTCLIENT_TRACE_LEVELS level = MQTTCLIENT_TRACE_ERROR;
    int sum = 0;

    memset(&pers, 0, sizeof pers);
    prop.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
    prop.value.data.len = 1;
    prop.value.data.data = (char*)"k";
    prop.value.value.len = 1;
    prop.value.value.data = (char*)"v";
    c1.will = &will;
    c1.ssl = &ssl;
    c1.httpHeaders = headers;
    msg.properties = props;

    if (run)
    {
        MQTTClient_message* pm = &msg;
        MQTTProperties copy;
        MQTTClient_global_init(&init);
        MQTTClient_setTraceLevel(level);
        MQTTClient_setTraceCallback(tc);
        sum += MQTTProperties_add(&props, &prop);
        sum += MQTTProperties_len(&props);
        sum += MQTTProperties_hasProperty(&props, MQTTPROPERTY_CODE_USER_PROPERTY);
        sum += MQTTProperties_propertyCount(&props, MQTTPROPERTY_CODE_USER_PROPERTY);
        sum += MQTTProperties_getNumericValue(&props, MQTTPROPERTY_CODE_TOPIC_ALIAS);
        sum += MQTTProperties_getNumericValueAt(&props, MQTTPROPERTY_CODE_TOPIC_ALIAS, 1);
        sum += MQTTProperties_getProperty(&props, MQTTPROPERTY_CODE_USER_PROPERTY) != NULL;
        sum += MQTTProperties_getPropertyAt(&props, MQTTPROPERTY_CODE_USER_PROPERTY, 0) != NULL;
        copy = MQTTProperties_copy(&props);
        MQTTProperties_free(&copy);
        MQTTProperties_free(&props);
        sum += MQTTPropertyName(MQTTPROPERTY_CODE_CONTENT_TYPE) != NULL;
        sum += MQTTProperty_getType(MQTTPROPERTY_CODE_CONTENT_TYPE);
        sum += MQTTReasonCode_toString(rc) != NULL;
        sum += MQTTClient_strerror(MQTTCLIENT_BAD_QOS) != NULL;
        sum += MQTTClient_getVersionInfo() != NULL;
        MQTTClient_free(MQTTClient_malloc(1));
        MQTTClient_freeMessage(&pm);
        MQTTResponse_free(response);
    }
    sum += c1.keepAliveInterval + c2.cleanstart + c3.keepAliveInterval + c4.MQTTVersion;
    sum += will.struct_version + ssl.struct_version + create.MQTTVersion + create5.MQTTVersion;
    sum += subopts.noLocal + response.version + (int)ptype + (int)level + dt + tok;
    sum += (client == NULL) + (ma != NULL) + (dc != NULL) + (cl != NULL) + (dis != NULL);
    sum += (pub != NULL) + (bw != NULL) + (ar != NULL) + (pers.popen == NULL);
    sum += MQTTCLIENT_SUCCESS + MQTTCLIENT_FAILURE + MQTTCLIENT_PERSISTENCE_DEFAULT +
           MQTTCLIENT_PERSISTENCE_NONE + MQTTCLIENT_PERSISTENCE_USER +
           MQTTCLIENT_PERSISTENCE_ERROR + MQTT_SSL_VERSION_TLS_1_2 + MQTTVERSION_3_1_1 +
           MQTT_BAD_SUBSCRIBE + MQTT_INVALID_PROPERTY_ID + MQTTCLIENT_0_LEN_WILL_TOPIC;
    return sum;
}
