/*
 * Return codes of the client functions on error paths. The first part prints "label rc"
 * lines and is built both against Eclipse Paho C (-lpaho-mqtt3c) and against mqttsync;
 * tests/capi_client.rs requires identical output. The second part (mqttsync only) checks
 * the defects mqttsync fixes: stale and garbage handles, QoS checked by publish, wildcard
 * topics, TLS without ssl options. Also run under AddressSanitizer/LeakSanitizer.
 *
 * usage: client_errors BROKER_URI CLOSED_URI SILENT_URI PASSWORD_BROKER_URI TMPDIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "MQTTClient.h"

#define CHECK(cond) do { if (!(cond)) { printf("CHECK FAILED line %d: %s\n", __LINE__, #cond); \
    failures++; } } while (0)
#define P(label, expr) printf("%s %d\n", label, (int)(expr))

static int failures = 0;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int arrived(void* ctx, char* topic, int len, MQTTClient_message* m)
{
    (void)ctx; (void)len;
    MQTTClient_free(topic);
    MQTTClient_freeMessage(&m);
    return 1;
}

int main(int argc, char** argv)
{
    const char* broker; const char* closed; const char* silent; const char* pwbroker;
    const char* tmp;
    MQTTClient c = NULL, c5 = NULL, tmpc = NULL;
    MQTTClient_createOptions co = MQTTClient_createOptions_initializer;
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
    MQTTClient_connectOptions opts5 = MQTTClient_connectOptions_initializer5;
    MQTTClient_willOptions will = MQTTClient_willOptions_initializer;
    MQTTClient_message msg = MQTTClient_message_initializer;
    MQTTResponse r;
    MQTTClient_deliveryToken dt = 0;
    MQTTClient_deliveryToken* toks = (MQTTClient_deliveryToken*)1;
    char* topic = NULL; int tlen = 0; MQTTClient_message* rm = NULL;
    char* topics[2]; int qoss[2];
    double t0, el;
    int rc;

    if (argc < 6) { fprintf(stderr, "usage\n"); return 2; }
    broker = argv[1]; closed = argv[2]; silent = argv[3]; pwbroker = argv[4]; tmp = argv[5];
    topics[0] = (char*)"a/b"; topics[1] = (char*)"c/#";

    /* ---- create ---- */
    P("create_null_uri", MQTTClient_create(&tmpc, NULL, "id", MQTTCLIENT_PERSISTENCE_NONE, NULL));
    P("create_null_id", MQTTClient_create(&tmpc, broker, NULL, MQTTCLIENT_PERSISTENCE_NONE, NULL));
    P("create_bad_utf8_id", MQTTClient_create(&tmpc, broker, "\xff\xfe", MQTTCLIENT_PERSISTENCE_NONE, NULL));
    P("create_empty_id_default", MQTTClient_create(&tmpc, broker, "", MQTTCLIENT_PERSISTENCE_DEFAULT, (void*)tmp));
    P("create_bad_scheme", MQTTClient_create(&tmpc, "foo://h:1", "id", MQTTCLIENT_PERSISTENCE_NONE, NULL));
    co.struct_id[0] = 'X';
    P("create_bad_opts_id", MQTTClient_createWithOptions(&tmpc, broker, "id", MQTTCLIENT_PERSISTENCE_NONE, NULL, &co));
    co.struct_id[0] = 'M'; co.struct_version = 1;
    P("create_bad_opts_version", MQTTClient_createWithOptions(&tmpc, broker, "id", MQTTCLIENT_PERSISTENCE_NONE, NULL, &co));
    co.struct_version = 0;
    P("create_empty_id_none", MQTTClient_create(&tmpc, broker, "", MQTTCLIENT_PERSISTENCE_NONE, NULL));
    MQTTClient_destroy(&tmpc);
    P("destroy_nulls_handle", tmpc == NULL);
    MQTTClient_destroy(&tmpc); /* NULL handle: ignored */
    P("create_no_scheme", MQTTClient_create(&tmpc, "127.0.0.1:1883", "id", MQTTCLIENT_PERSISTENCE_NONE, NULL));
    MQTTClient_destroy(&tmpc);

    /* ---- a v3 client, not connected ---- */
    P("create_v3", MQTTClient_create(&c, broker, "errs-v3", MQTTCLIENT_PERSISTENCE_NONE, NULL));
    P("isConnected_new", MQTTClient_isConnected(c));
    P("publish_null_topic", MQTTClient_publish(c, NULL, 1, "x", 0, 0, &dt));
    P("publish_bad_utf8", MQTTClient_publish(c, "\xff", 1, "x", 0, 0, &dt));
    P("publish_disconnected", MQTTClient_publish(c, "a/b", 1, "x", 1, 0, &dt));
    P("publishMessage_disconnected", MQTTClient_publishMessage(c, "a/b", &msg, &dt));
    msg.struct_id[0] = 'X';
    P("publishMessage_bad_struct", MQTTClient_publishMessage(c, "a/b", &msg, &dt));
    msg.struct_id[0] = 'M';
    P("subscribe_null_topic", MQTTClient_subscribe(c, NULL, 0));
    P("subscribe_qos3", MQTTClient_subscribe(c, "a/b", 3));
    P("subscribe_qos_neg", MQTTClient_subscribe(c, "a/b", -1));
    P("subscribe_disconnected", MQTTClient_subscribe(c, "a/b", 1));
    qoss[0] = 1; qoss[1] = 2;
    P("subscribeMany_disconnected", MQTTClient_subscribeMany(c, 2, topics, qoss));
    P("unsubscribe_null_topic", MQTTClient_unsubscribe(c, NULL));
    P("unsubscribe_disconnected", MQTTClient_unsubscribe(c, "a/b"));
    P("unsubscribeMany_disconnected", MQTTClient_unsubscribeMany(c, 2, topics));
    P("receive_disconnected", MQTTClient_receive(c, &topic, &tlen, &rm, 10));
    P("waitForCompletion_disconnected", MQTTClient_waitForCompletion(c, 1, 0));
    P("waitForCompletion_disconnected_100", MQTTClient_waitForCompletion(c, 1, 100));
    P("disconnect_disconnected", MQTTClient_disconnect(c, 0));
    P("setCommandTimeout_4999", MQTTClient_setCommandTimeout(c, 4999));
    P("setCommandTimeout_5000", MQTTClient_setCommandTimeout(c, 5000));
    P("setCallbacks_no_ma", MQTTClient_setCallbacks(c, NULL, NULL, NULL, NULL));
    rc = MQTTClient_getPendingDeliveryTokens(c, &toks);
    P("getPending_none", rc);
    P("getPending_none_null", toks == NULL);
    toks = (MQTTClient_deliveryToken*)1;
    P("getPending_null_handle", MQTTClient_getPendingDeliveryTokens(NULL, &toks));
    P("getPending_null_handle_sets_null", toks == NULL);
    r = MQTTClient_subscribe5(c, "a/b", 1, NULL, NULL);
    P("subscribe5_on_v3", r.reasonCode);
    r = MQTTClient_unsubscribe5(c, "a/b", NULL);
    P("unsubscribe5_on_v3", r.reasonCode);
    r = MQTTClient_publish5(c, "a/b", 1, "x", 0, 0, NULL, &dt);
    P("publish5_on_v3", r.reasonCode);
    r = MQTTClient_connect5(c, &opts5, NULL, NULL);
    P("connect5_on_v3", r.reasonCode);

    /* ---- connect option checks ---- */
    P("connect_null_opts", MQTTClient_connect(c, NULL));
    P("connect_null_handle", MQTTClient_connect(NULL, &opts));
    opts.struct_id[0] = 'X';
    P("connect_bad_id", MQTTClient_connect(c, &opts));
    opts.struct_id[0] = 'M'; opts.struct_version = 9;
    P("connect_bad_version", MQTTClient_connect(c, &opts));
    opts.struct_version = 8; opts.MQTTVersion = 7;
    P("connect_bad_mqtt_version", MQTTClient_connect(c, &opts));
    opts.MQTTVersion = MQTTVERSION_3_1_1; opts.cleanstart = 1;
    P("connect_cleanstart_v3", MQTTClient_connect(c, &opts));
    opts.cleanstart = 0;
    opts.will = &will;
    will.struct_id[0] = 'X';
    P("connect_will_bad_id", MQTTClient_connect(c, &opts));
    will.struct_id[0] = 'M'; will.qos = 3; will.topicName = "w"; will.message = "bye";
    P("connect_will_qos3", MQTTClient_connect(c, &opts));
    will.qos = 1; will.topicName = NULL;
    P("connect_will_null_topic", MQTTClient_connect(c, &opts));
    will.topicName = "";
    P("connect_will_empty_topic", MQTTClient_connect(c, &opts));
    opts.will = NULL;

    /* ---- network failures ---- */
    {
        MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
        char* uris[1];
        o.connectTimeout = 2;
        uris[0] = (char*)closed;
        o.serverURIs = uris; o.serverURIcount = 1;
        t0 = now_s();
        P("connect_closed_port", MQTTClient_connect(c, &o));
        el = now_s() - t0;
        P("connect_closed_port_fast", el < 1.5);
        uris[0] = (char*)silent;
        t0 = now_s();
        P("connect_silent_server", MQTTClient_connect(c, &o));
        el = now_s() - t0;
        P("connect_silent_after_timeout", el > 1.5 && el < 6.0);
        uris[0] = (char*)pwbroker;
        o.username = "user"; o.password = "wrong";
        P("connect_bad_password", MQTTClient_connect(c, &o));
        o.username = NULL; o.password = NULL;
        P("connect_no_credentials", MQTTClient_connect(c, &o));
        P("isConnected_after_refusals", MQTTClient_isConnected(c));
    }

    /* ---- connected v3 client ---- */
    opts.cleansession = 1;
    rc = MQTTClient_connect(c, &opts);
    P("connect_ok", rc);
    P("returned_version", opts.returned.MQTTVersion);
    P("returned_session_present", opts.returned.sessionPresent);
    P("returned_uri_has_no_scheme", opts.returned.serverURI != NULL && strstr(opts.returned.serverURI, "://") == NULL);
    P("isConnected", MQTTClient_isConnected(c));
    P("c_publish_null_topic", MQTTClient_publish(c, NULL, 1, "x", 0, 0, &dt));
    P("c_publish_bad_utf8", MQTTClient_publish(c, "\xff", 1, "x", 0, 0, &dt));
    msg.struct_version = 2;
    P("c_publishMessage_bad_version", MQTTClient_publishMessage(c, "a/b", &msg, &dt));
    msg.struct_version = 1;
    P("c_publishMessage_null_topic", MQTTClient_publishMessage(c, NULL, &msg, &dt));
    P("c_subscribe_null_topic", MQTTClient_subscribe(c, NULL, 0));
    P("c_subscribe_bad_utf8", MQTTClient_subscribe(c, "\xff", 0));
    P("c_subscribe_qos3", MQTTClient_subscribe(c, "a/b", 3));
    P("c_subscribe_qos_neg", MQTTClient_subscribe(c, "a/b", -1));
    P("c_unsubscribe_null_topic", MQTTClient_unsubscribe(c, NULL));
    P("subscribe_ok", MQTTClient_subscribe(c, "errs/#", 2));
    qoss[0] = 1; qoss[1] = 2;
    P("subscribeMany_ok", MQTTClient_subscribeMany(c, 2, topics, qoss));
    P("subscribeMany_granted0", qoss[0]);
    P("subscribeMany_granted1", qoss[1]);
    P("waitForCompletion_unknown", MQTTClient_waitForCompletion(c, 4242, 100));
    P("publish_qos1", MQTTClient_publish(c, "errs/x", 3, "abc", 1, 0, &dt));
    P("waitForCompletion_qos1", MQTTClient_waitForCompletion(c, dt, 5000));
    P("receive_timeout", MQTTClient_receive(c, &topic, &tlen, &rm, 2000));
    if (topic != NULL)
    {
        P("receive_topic_len", tlen);
        MQTTClient_free(topic);
        MQTTClient_freeMessage(&rm);
    }
    rc = MQTTClient_receive(c, &topic, &tlen, &rm, 100);
    P("receive_empty", rc);
    P("receive_empty_nulls", topic == NULL && rm == NULL);
    P("unsubscribe_ok", MQTTClient_unsubscribe(c, "errs/#"));
    P("unsubscribeMany_ok", MQTTClient_unsubscribeMany(c, 2, topics));
    P("disconnect_ok", MQTTClient_disconnect(c, 1000));
    P("isConnected_after_disconnect", MQTTClient_isConnected(c));
    P("waitForCompletion_done_disconnected", MQTTClient_waitForCompletion(c, dt, 0));
    P("disconnect_twice", MQTTClient_disconnect(c, 0));

    /* ---- returned.serverURI: the URI without its scheme, as given ---- */
    printf("returned_uri_create %s\n", opts.returned.serverURI ? opts.returned.serverURI : "(null)");
    {
        MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
        const char* hostport = strstr(broker, "://") ? strstr(broker, "://") + 3 : broker;
        const char* port = strrchr(hostport, ':');
        char by_name[128], no_scheme[128];
        char* uris[2];
        int i;
        snprintf(by_name, sizeof by_name, "tcp://localhost%s", port ? port : "");
        snprintf(no_scheme, sizeof no_scheme, "%s", hostport);
        o.connectTimeout = 5;
        o.serverURIs = uris;
        for (i = 0; i < 3; i++) {
            o.returned.serverURI = NULL;
            if (i == 0) { uris[0] = no_scheme; o.serverURIcount = 1; }
            else if (i == 1) { uris[0] = by_name; o.serverURIcount = 1; }
            else { uris[0] = (char*)closed; uris[1] = (char*)broker; o.serverURIcount = 2; }
            rc = MQTTClient_connect(c, &o);
            printf("returned_uri_%d rc %d %s\n", i, rc,
                rc == 0 && o.returned.serverURI ? o.returned.serverURI : "(null)");
            MQTTClient_disconnect(c, 1000);
        }
    }

    /* ---- v5 client ---- */
    co.MQTTVersion = MQTTVERSION_5;
    P("create_v5", MQTTClient_createWithOptions(&c5, broker, "errs-v5", MQTTCLIENT_PERSISTENCE_NONE, NULL, &co));
    P("connect_on_v5", MQTTClient_connect(c5, &opts));
    P("subscribe_on_v5", MQTTClient_subscribe(c5, "a/b", 0));
    P("publish_on_v5", MQTTClient_publish(c5, "a/b", 1, "x", 0, 0, &dt));
    P("unsubscribe_on_v5", MQTTClient_unsubscribe(c5, "a/b"));
    opts5.cleansession = 1;
    r = MQTTClient_connect5(c5, &opts5, NULL, NULL);
    P("connect5_cleansession", r.reasonCode);
    opts5.cleansession = 0;
    r = MQTTClient_connect5(c5, &opts5, NULL, NULL);
    P("connect5_ok", r.reasonCode);
    P("connect5_has_props", r.properties != NULL);
    MQTTResponse_free(r);
    r = MQTTClient_subscribe5(c5, "errs5/#", 2, NULL, NULL);
    P("subscribe5_ok", r.reasonCode);
    MQTTResponse_free(r);
    qoss[0] = 1; qoss[1] = 0;
    r = MQTTClient_subscribeMany5(c5, 2, topics, qoss, NULL, NULL);
    P("subscribeMany5_rc", r.reasonCode);
    P("subscribeMany5_count", r.reasonCodeCount);
    if (r.reasonCodeCount == 2) { P("subscribeMany5_c0", r.reasonCodes[0]); P("subscribeMany5_c1", r.reasonCodes[1]); }
    MQTTResponse_free(r);
    r = MQTTClient_unsubscribe5(c5, "errs5/#", NULL);
    P("unsubscribe5_ok", r.reasonCode);
    MQTTResponse_free(r);
    r = MQTTClient_unsubscribe5(c5, "never/subscribed", NULL);
    P("unsubscribe5_no_sub", r.reasonCode);
    MQTTResponse_free(r);
    P("c5_subscribe_on_v5", MQTTClient_subscribe(c5, "a/b", 0));
    P("c5_publish_on_v5", MQTTClient_publish(c5, "a/b", 1, "x", 0, 0, &dt));
    r = MQTTClient_subscribe5(c5, NULL, 0, NULL, NULL);
    P("c5_subscribe5_null_topic", r.reasonCode);
    r = MQTTClient_subscribe5(c5, "a/b", 3, NULL, NULL);
    P("c5_subscribe5_qos3", r.reasonCode);
    r = MQTTClient_publish5(c5, NULL, 1, "x", 0, 0, NULL, &dt);
    P("c5_publish5_null_topic", r.reasonCode);
    P("disconnect5", MQTTClient_disconnect5(c5, 1000, MQTTREASONCODE_NORMAL_DISCONNECTION, NULL));

#if defined(MQTTSYNC_H)
    printf("--- mqttsync only\n");
    {
        MQTTClient stale = c;
        MQTTClient garbage = (MQTTClient)(size_t)0x12345670;
        MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
        MQTTClient tls = NULL;

        /* Paho does not check the QoS of publish (it sends a malformed packet). */
        CHECK(MQTTClient_connect(c, &opts) == 0);
        CHECK(MQTTClient_publish(c, "a/b", 1, "x", 3, 0, &dt) == MQTTCLIENT_BAD_QOS);
        CHECK(MQTTClient_publish(c, "a/b", 1, "x", -1, 0, &dt) == MQTTCLIENT_BAD_QOS);
        CHECK(MQTTClient_publish(c, "a/+", 1, "x", 0, 0, &dt) == MQTTCLIENT_BAD_UTF8_STRING);
        CHECK(MQTTClient_publish(c, "a/#", 1, "x", 0, 0, &dt) == MQTTCLIENT_BAD_UTF8_STRING);
        CHECK(MQTTClient_publish(c, "", 1, "x", 0, 0, &dt) == MQTTCLIENT_BAD_UTF8_STRING);
        CHECK(MQTTClient_publish(c, "a/b", -1, "x", 0, 0, &dt) == MQTTCLIENT_FAILURE);
        CHECK(MQTTClient_publish(c, "a/b", 3, NULL, 0, 0, &dt) == MQTTCLIENT_NULL_PARAMETER);
        /* Paho answers -1 to any timeout-0 wait; mqttsync reports a finished/unknown token. */
        CHECK(MQTTClient_waitForCompletion(c, 4242, 0) == 0);
        dt = 0;
        CHECK(MQTTClient_publish(c, "errs/y", 1, "x", 1, 0, &dt) == 0 && dt > 0);
        CHECK(MQTTClient_waitForCompletion(c, dt, 5000) == 0);
        CHECK(MQTTClient_waitForCompletion(c, dt, 0) == 0);
        CHECK(MQTTClient_subscribe(c, "a/#/b", 0) == MQTTCLIENT_BAD_UTF8_STRING);
        msg.qos = 5;
        CHECK(MQTTClient_publishMessage(c, "a/b", &msg, &dt) == MQTTCLIENT_BAD_QOS);
        msg.qos = 0;
        CHECK(MQTTClient_publishMessage(c, "a/b", NULL, &dt) == MQTTCLIENT_NULL_PARAMETER);
        CHECK(MQTTClient_receive(c, NULL, &tlen, &rm, 10) == MQTTCLIENT_NULL_PARAMETER);
        CHECK(MQTTClient_getPendingDeliveryTokens(c, NULL) == MQTTCLIENT_NULL_PARAMETER);
        /* Paho accepts but ignores callbacks set while connected; mqttsync refuses them. */
        CHECK(MQTTClient_setCallbacks(c, NULL, NULL, arrived, NULL) == MQTTCLIENT_FAILURE);
        CHECK(MQTTClient_setDisconnected(c, NULL, NULL) == MQTTCLIENT_FAILURE);
        CHECK(MQTTClient_disconnect(c, 0) == 0);

        /* A destroyed handle (stale copy) and a garbage value: error codes, no crash. */
        MQTTClient_destroy(&c);
        CHECK(c == NULL);
        CHECK(MQTTClient_isConnected(stale) == 0);
        CHECK(MQTTClient_connect(stale, &opts) == MQTTCLIENT_NULL_PARAMETER);
        CHECK(MQTTClient_publish(stale, "a/b", 1, "x", 0, 0, &dt) == MQTTCLIENT_FAILURE);
        CHECK(MQTTClient_subscribe(stale, "a/b", 0) == MQTTCLIENT_FAILURE);
        CHECK(MQTTClient_unsubscribe(stale, "a/b") == MQTTCLIENT_FAILURE);
        CHECK(MQTTClient_receive(stale, &topic, &tlen, &rm, 10) == MQTTCLIENT_FAILURE);
        CHECK(MQTTClient_waitForCompletion(stale, 1, 10) == MQTTCLIENT_FAILURE);
        CHECK(MQTTClient_disconnect(stale, 0) == MQTTCLIENT_FAILURE);
        CHECK(MQTTClient_setCallbacks(stale, NULL, NULL, arrived, NULL) == MQTTCLIENT_FAILURE);
        CHECK(MQTTClient_setCommandTimeout(stale, 10000) == MQTTCLIENT_FAILURE);
        toks = (MQTTClient_deliveryToken*)1;
        CHECK(MQTTClient_getPendingDeliveryTokens(stale, &toks) == MQTTCLIENT_FAILURE);
        CHECK(toks == NULL);
        r = MQTTClient_subscribe5(stale, "a/b", 0, NULL, NULL);
        CHECK((int)r.reasonCode == MQTTCLIENT_FAILURE);
        MQTTClient_destroy(&stale); /* ignored */
        CHECK(MQTTClient_publish(garbage, "a/b", 1, "x", 0, 0, &dt) == MQTTCLIENT_FAILURE);
        CHECK(MQTTClient_isConnected(garbage) == 0);
        MQTTClient_destroy(&garbage);
        CHECK(garbage != NULL); /* not a handle: left alone */
        CHECK(MQTTClient_publish(NULL, "a/b", 1, "x", 0, 0, &dt) == MQTTCLIENT_FAILURE);
        r = MQTTClient_connect5(NULL, &opts5, NULL, NULL);
        CHECK((int)r.reasonCode == MQTTCLIENT_NULL_PARAMETER);

        /* TLS URI without ssl options (Paho's non-TLS build refuses the scheme at create). */
        CHECK(MQTTClient_create(&tls, "ssl://127.0.0.1:1", "tls", MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
        CHECK(MQTTClient_connect(tls, &o) == MQTTCLIENT_NULL_PARAMETER);
        MQTTClient_destroy(&tls);

        /* Unknown persistence type; USER without a table. */
        CHECK(MQTTClient_create(&tls, broker, "p", 7, NULL) == MQTTCLIENT_PERSISTENCE_ERROR);
        CHECK(MQTTClient_create(&tls, broker, "p", MQTTCLIENT_PERSISTENCE_USER, NULL) == MQTTCLIENT_PERSISTENCE_ERROR);
        CHECK(MQTTClient_create(NULL, broker, "p", MQTTCLIENT_PERSISTENCE_NONE, NULL) == MQTTCLIENT_NULL_PARAMETER);
    }
#endif
    MQTTClient_destroy(&c);
    MQTTClient_destroy(&c5);
    printf("failures: %d\n", failures);
    return 0;
}
