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

static int a_arrived(void* context, char* topicName, int topicLen, MQTTAsync_message* message)
{
    (void)context; (void)topicName; (void)topicLen; (void)message;
    return 1;
}
static void a_delivered(void* context, MQTTAsync_token token) { (void)context; (void)token; }
static void a_connected(void* context, char* cause) { (void)context; (void)cause; }
static int a_update(void* context, MQTTAsync_connectData* data) { (void)context; (void)data; return 0; }
static void a_ok(void* context, MQTTAsync_successData* r) { (void)context; (void)r; }
static void a_ok5(void* context, MQTTAsync_successData5* r) { (void)context; (void)r; }
static void a_fail(void* context, MQTTAsync_failureData* r) { (void)context; (void)r; }
static void a_fail5(void* context, MQTTAsync_failureData5* r) { (void)context; (void)r; }
static void a_tracer(enum MQTTASYNC_TRACE_LEVELS level, char* message) { (void)level; (void)message; }

/* Every MQTTAsync.h type, initializer and function. */
static int use_async(int run)
{
    MQTTAsync_connectOptions c1 = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions c2 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_connectOptions c3 = MQTTAsync_connectOptions_initializer_ws;
    MQTTAsync_connectOptions c4 = MQTTAsync_connectOptions_initializer5_ws;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer;
    MQTTAsync_createOptions create5 = MQTTAsync_createOptions_initializer5;
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_init_options init = MQTTAsync_init_options_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    MQTTAsync_callOptions co = MQTTAsync_callOptions_initializer;
    MQTTAsync_disconnectOptions d1 = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnectOptions d2 = MQTTAsync_disconnectOptions_initializer5;
    MQTTAsync_connectData cd = MQTTAsync_connectData_initializer;
    MQTTAsync_successData5 s5 = MQTTAsync_successData5_initializer;
    MQTTAsync_failureData5 f5 = MQTTAsync_failureData5_initializer;
    MQTTAsync_successData s;
    MQTTAsync_failureData f;
    MQTTAsync_nameValue headers[2] = { {"a", "b"}, {NULL, NULL} };
    MQTTAsync client = NULL;
    MQTTAsync_token tok = 0;
    MQTTAsync_token* pending = NULL;
    MQTTAsync_messageArrived* ma = a_arrived;
    MQTTAsync_deliveryComplete* dc = a_delivered;
    MQTTAsync_connectionLost* cl = a_connected;
    MQTTAsync_connected* con = a_connected;
    MQTTAsync_disconnected* dis = disconnected;
    MQTTAsync_updateConnectOptions* upd = a_update;
    MQTTAsync_onSuccess* ok = a_ok;
    MQTTAsync_onSuccess5* ok5 = a_ok5;
    MQTTAsync_onFailure* fail = a_fail;
    MQTTAsync_onFailure5* fail5 = a_fail5;
    MQTTAsync_traceCallback* tc = a_tracer;
    char* topics[1] = { (char*)"t" };
    int qoss[1] = { 1 };
    int sum = 0;

    memset(&s, 0, sizeof s);
    memset(&f, 0, sizeof f);
    c1.will = &will;
    c1.ssl = &ssl;
    c1.httpHeaders = headers;
    c1.onSuccess = ok;
    c1.onFailure = fail;
    c2.onSuccess5 = ok5;
    c2.onFailure5 = fail5;
    ro.onSuccess = ok;
    co.onFailure = fail;
    if (run)
    {
        MQTTAsync_message* pm = NULL;
        MQTTAsync_global_init(&init);
        MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
        MQTTAsync_setTraceCallback(tc);
        sum += MQTTAsync_create(&client, "tcp://localhost:1", "c", MQTTCLIENT_PERSISTENCE_NONE, NULL);
        sum += MQTTAsync_createWithOptions(&client, "tcp://localhost:1", "c",
                                           MQTTCLIENT_PERSISTENCE_NONE, NULL, &create);
        sum += MQTTAsync_setCallbacks(client, NULL, cl, ma, dc);
        sum += MQTTAsync_setConnectionLostCallback(client, NULL, cl);
        sum += MQTTAsync_setMessageArrivedCallback(client, NULL, ma);
        sum += MQTTAsync_setDeliveryCompleteCallback(client, NULL, dc);
        sum += MQTTAsync_setConnected(client, NULL, con);
        sum += MQTTAsync_setDisconnected(client, NULL, dis);
        sum += MQTTAsync_setUpdateConnectOptions(client, NULL, upd);
        sum += MQTTAsync_setBeforePersistenceWrite(client, NULL, before_write);
        sum += MQTTAsync_setAfterPersistenceRead(client, NULL, after_read);
        sum += MQTTAsync_connect(client, &c1);
        sum += MQTTAsync_reconnect(client);
        sum += MQTTAsync_isConnected(client);
        sum += MQTTAsync_subscribe(client, "t", 1, &ro);
        sum += MQTTAsync_subscribeMany(client, 1, topics, qoss, &co);
        sum += MQTTAsync_unsubscribe(client, "t", &ro);
        sum += MQTTAsync_unsubscribeMany(client, 1, topics, &ro);
        sum += MQTTAsync_send(client, "t", 1, "x", 0, 0, &ro);
        sum += MQTTAsync_sendMessage(client, "t", &msg, &ro);
        sum += MQTTAsync_getPendingTokens(client, &pending);
        sum += MQTTAsync_isComplete(client, tok);
        sum += MQTTAsync_waitForCompletion(client, tok, 1);
        sum += MQTTAsync_disconnect(client, &d1);
        sum += MQTTAsync_strerror(MQTTASYNC_MAX_BUFFERED_MESSAGES) != NULL;
        sum += MQTTAsync_getVersionInfo() != NULL;
        MQTTAsync_free(pending);
        MQTTAsync_free(MQTTAsync_malloc(1));
        MQTTAsync_freeMessage(&pm);
        MQTTAsync_destroy(&client);
    }
    sum += c1.keepAliveInterval + c2.cleanstart + c3.keepAliveInterval + c4.MQTTVersion;
    sum += will.struct_version + ssl.struct_version + create.MQTTVersion + create5.MQTTVersion;
    sum += msg.struct_version + d1.timeout + d2.struct_version + cd.struct_version;
    sum += s5.alt.sub.reasonCodeCount + f5.packet_type + s.alt.qos + f.code + s.token;
    sum += (ok != NULL) + (fail != NULL) + (upd != NULL) + tok;
    sum += MQTTASYNC_SUCCESS + MQTTASYNC_NO_MORE_MSGIDS + MQTTASYNC_OPERATION_INCOMPLETE +
           MQTTASYNC_MAX_BUFFERED_MESSAGES + MQTTASYNC_SSL_NOT_SUPPORTED +
           MQTTASYNC_COMMAND_IGNORED + MQTTASYNC_MAX_BUFFERED + MQTTASYNC_TRUE +
           MQTTASYNC_TRACE_FATAL;
    return sum;
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
    sum += use_async(run);
    return sum;
}
