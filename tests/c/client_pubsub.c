/*
 * Publish/subscribe through the C client API against a broker, written for Paho's API so
 * that the same source serves three builds (tests/capi_client.rs):
 *   - against mqttsync's header and library (with and without AddressSanitizer);
 *   - against Eclipse Paho C (-lpaho-mqtt3c), run as is: the reference;
 *   - the Paho build run with libpaho-mqtt3c.so.1 replaced by libmqttsync.so: the drop-in.
 * The `extras` parts use what only mqttsync allows (publish, subscribe and wait for
 * completion inside messageArrived, receive next to callback clients, reconnect from
 * connectionLost, destroy from a callback); they run when built against mqttsync or when
 * MQTTSYNC_EXTRAS is set (the Paho build on libmqttsync.so).
 *
 * usage: client_pubsub BROKER_URI DISCONNECTING_SERVER_URI (all scenarios)
 *        client_pubsub will-child BROKER_URI (connects with a will and exits abruptly)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "MQTTClient.h"

#define CHECK(cond) do { if (!(cond)) { printf("CHECK FAILED line %d: %s\n", __LINE__, #cond); \
    fflush(stdout); failures++; } } while (0)
#define WAIT_MS 10000

static int failures = 0;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void bump(int* v)
{
    pthread_mutex_lock(&mu);
    (*v)++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* Waits until *v >= target (or WAIT_MS); returns whether it got there. */
static int wait_for(int* v, int target)
{
    struct timespec dl;
    int ok;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&mu);
    while (*v < target)
        if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT)
            break;
    ok = *v >= target;
    pthread_mutex_unlock(&mu);
    return ok;
}

static int get(int* v)
{
    int r;
    pthread_mutex_lock(&mu);
    r = *v;
    pthread_mutex_unlock(&mu);
    return r;
}

static const char* uri;
static const char* disc_uri;
/* What only mqttsync allows: set when built against mqttsync, or at run time with
 * MQTTSYNC_EXTRAS=1 (the Paho build running on libmqttsync.so in the drop-in test). */
static int extras;
static char id_buf[64];

static const char* cid(const char* name)
{
    snprintf(id_buf, sizeof id_buf, "%s-%ld", name, (long)getpid());
    return id_buf;
}

static int payload_is(MQTTClient_message* m, const char* s)
{
    return m->payloadlen == (int)strlen(s) && memcmp(m->payload, s, strlen(s)) == 0;
}

/* ------------------------------------------------------------------------------------- */
/* A: receive mode, QoS 0/1/2, retained                                                   */
/* ------------------------------------------------------------------------------------- */

static void scenario_receive(void)
{
    MQTTClient sub = NULL, pub = NULL, late = NULL;
    MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
    MQTTClient_deliveryToken dt = 0, dts[3];
    MQTTClient_deliveryToken* pending = NULL;
    const char* payloads[3] = { "r0", "r1", "r2" };
    int got[3] = { 0, 0, 0 };
    int q, n = 0, rc;

    CHECK(MQTTClient_create(&sub, uri, cid("rsub"), MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    CHECK(MQTTClient_create(&pub, uri, cid("rpub"), MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    CHECK(MQTTClient_connect(sub, &o) == 0);
    CHECK(MQTTClient_connect(pub, &o) == 0);
    CHECK(MQTTClient_subscribe(sub, "T/recv/#", 2) == 0);
    for (q = 0; q < 3; q++)
    {
        dts[q] = 0;
        CHECK(MQTTClient_publish(pub, "T/recv/x", 2, payloads[q], q, 0, &dts[q]) == 0);
        if (q > 0)
            CHECK(dts[q] != 0);
    }
    for (q = 1; q < 3; q++)
        CHECK(MQTTClient_waitForCompletion(pub, dts[q], WAIT_MS) == 0);
    CHECK(MQTTClient_getPendingDeliveryTokens(pub, &pending) == 0);
    CHECK(pending == NULL);
    MQTTClient_free(pending);
    while (n < 3)
    {
        char* topic = NULL; int tlen = 0; MQTTClient_message* m = NULL;
        rc = MQTTClient_receive(sub, &topic, &tlen, &m, WAIT_MS);
        CHECK(rc == 0);
        if (rc != 0 || topic == NULL) { CHECK(!"message missing"); break; }
        CHECK(strcmp(topic, "T/recv/x") == 0);
        CHECK(tlen == 8);
        for (q = 0; q < 3; q++)
            if (payload_is(m, payloads[q]))
            {
                got[q]++;
                CHECK(m->qos == q);
                CHECK(m->retained == 0);
            }
        MQTTClient_free(topic);
        MQTTClient_freeMessage(&m);
        CHECK(m == NULL);
        n++;
    }
    CHECK(got[0] == 1 && got[1] == 1 && got[2] == 1);

    /* retained */
    CHECK(MQTTClient_publish(pub, "T/ret", 4, "keep", 1, 1, &dt) == 0);
    CHECK(MQTTClient_waitForCompletion(pub, dt, WAIT_MS) == 0);
    CHECK(MQTTClient_create(&late, uri, cid("rlate"), MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    CHECK(MQTTClient_connect(late, &o) == 0);
    CHECK(MQTTClient_subscribe(late, "T/ret", 1) == 0);
    {
        char* topic = NULL; int tlen = 0; MQTTClient_message* m = NULL;
        CHECK(MQTTClient_receive(late, &topic, &tlen, &m, WAIT_MS) == 0);
        CHECK(topic != NULL && m != NULL);
        if (m)
        {
            CHECK(m->retained == 1);
            CHECK(payload_is(m, "keep"));
            MQTTClient_freeMessage(&m);
        }
        MQTTClient_free(topic);
    }
    CHECK(MQTTClient_publish(pub, "T/ret", 0, "", 1, 1, &dt) == 0); /* clear it */
    CHECK(MQTTClient_waitForCompletion(pub, dt, WAIT_MS) == 0);

    CHECK(MQTTClient_disconnect(late, 1000) == 0);
    CHECK(MQTTClient_disconnect(sub, 1000) == 0);
    CHECK(MQTTClient_disconnect(pub, 1000) == 0);
    MQTTClient_destroy(&late);
    MQTTClient_destroy(&sub);
    MQTTClient_destroy(&pub);
    printf("receive: done\n");
}

/* ------------------------------------------------------------------------------------- */
/* B: callback mode                                                                       */
/* ------------------------------------------------------------------------------------- */

struct cb_state
{
    MQTTClient c;
    int arrived, delivered, lost, refused_calls, echoed, inside_done;
    int qos_of[3];
    MQTTClient_deliveryToken tokens[16];
    int ntokens;
    int extras;
};

static int cb_arrived(void* ctx, char* topic, int len, MQTTClient_message* m)
{
    struct cb_state* st = (struct cb_state*)ctx;
    MQTTClient_deliveryToken dt = 0;
    CHECK(len == 0); /* no NUL in the topic */
    if (strcmp(topic, "T/cb/refuse") == 0)
    {
        int calls;
        bump(&st->refused_calls);
        calls = get(&st->refused_calls);
        if (calls == 1)
            return 0; /* not consumed: the library keeps it and delivers it again */
    }
    else if (strcmp(topic, "T/cb/echo") == 0)
        /* Paho: "only connect may be called from a callback"; its publish times out here. */
        CHECK(MQTTClient_publish(st->c, "T/cb/echoed", 6, "echoed", 1, 0, &dt) == 0);
    else if (strcmp(topic, "T/cb/echoed") == 0)
        bump(&st->echoed);
    else if (strcmp(topic, "T/cb/inside") == 0 && st->extras)
    {
        /* mqttsync only: subscribe and wait for an acknowledgement inside the callback. */
        CHECK(MQTTClient_subscribe(st->c, "T/cb2/#", 1) == 0);
        CHECK(MQTTClient_publish(st->c, "T/cb2/x", 2, "in", 1, 0, &dt) == 0);
        CHECK(MQTTClient_waitForCompletion(st->c, dt, WAIT_MS) == 0);
        bump(&st->inside_done);
    }
    else if (strcmp(topic, "T/cb/data") == 0)
    {
        int q;
        for (q = 0; q < 3; q++)
        {
            char want[3] = { 'm', (char)('0' + q), 0 };
            if (payload_is(m, want))
            {
                pthread_mutex_lock(&mu);
                st->qos_of[q] = m->qos;
                pthread_mutex_unlock(&mu);
            }
        }
    }
    MQTTClient_free(topic);
    MQTTClient_freeMessage(&m);
    bump(&st->arrived);
    return 1;
}

static void cb_delivered(void* ctx, MQTTClient_deliveryToken dt)
{
    struct cb_state* st = (struct cb_state*)ctx;
    pthread_mutex_lock(&mu);
    if (st->ntokens < 16)
        st->tokens[st->ntokens++] = dt;
    pthread_mutex_unlock(&mu);
    bump(&st->delivered);
}

static void cb_lost(void* ctx, char* cause)
{
    struct cb_state* st = (struct cb_state*)ctx;
    (void)cause;
    bump(&st->lost);
}

static int has_token(struct cb_state* st, MQTTClient_deliveryToken dt)
{
    int i, r = 0;
    pthread_mutex_lock(&mu);
    for (i = 0; i < st->ntokens; i++)
        if (st->tokens[i] == dt)
            r = 1;
    pthread_mutex_unlock(&mu);
    return r;
}

static void scenario_callbacks(void)
{
    static struct cb_state st;
    MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
    MQTTClient_deliveryToken d1 = 0, d2 = 0, d0 = 0;
    int base;

    memset(&st, 0, sizeof st);
    st.qos_of[0] = st.qos_of[1] = st.qos_of[2] = -1;
    st.extras = extras;
    CHECK(MQTTClient_create(&st.c, uri, cid("cb"), MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    CHECK(MQTTClient_setCallbacks(st.c, &st, cb_lost, cb_arrived, cb_delivered) == 0);
    CHECK(MQTTClient_connect(st.c, &o) == 0);
    CHECK(MQTTClient_subscribe(st.c, "T/cb/#", 2) == 0);

    CHECK(MQTTClient_publish(st.c, "T/cb/data", 2, "m0", 0, 0, &d0) == 0);
    CHECK(MQTTClient_publish(st.c, "T/cb/data", 2, "m1", 1, 0, &d1) == 0);
    CHECK(MQTTClient_publish(st.c, "T/cb/data", 2, "m2", 2, 0, &d2) == 0);
    CHECK(wait_for(&st.arrived, 3));
    CHECK(wait_for(&st.delivered, 2));
    CHECK(has_token(&st, d1) && has_token(&st, d2));
    CHECK(get(&st.delivered) == 2); /* never for QoS 0 */
    CHECK(get(&st.qos_of[0]) == 0 && get(&st.qos_of[1]) == 1 && get(&st.qos_of[2]) == 2);

    /* messageArrived returning 0: the same message comes again */
    CHECK(MQTTClient_publish(st.c, "T/cb/refuse", 1, "r", 1, 0, &d1) == 0);
    CHECK(wait_for(&st.refused_calls, 2));

    if (st.extras)
    {
        /* mqttsync only: publishing from inside messageArrived */
        CHECK(MQTTClient_publish(st.c, "T/cb/echo", 1, "e", 1, 0, &d1) == 0);
        CHECK(wait_for(&st.echoed, 1));

        base = get(&st.arrived);
        CHECK(MQTTClient_publish(st.c, "T/cb/inside", 1, "i", 0, 0, &d1) == 0);
        CHECK(wait_for(&st.inside_done, 1));
        /* T/cb2/x arrives through the subscription made inside the callback */
        CHECK(wait_for(&st.arrived, base + 2));
    }

    CHECK(MQTTClient_disconnect(st.c, 1000) == 0);
    CHECK(get(&st.lost) == 0); /* not called after an explicit disconnect */
    MQTTClient_destroy(&st.c);
    printf("callbacks: done\n");
}

/* ------------------------------------------------------------------------------------- */
/* C: MQTT 5                                                                              */
/* ------------------------------------------------------------------------------------- */

struct v5_state
{
    int published, pub_type, pub_reason, disconnected, disc_reason, lost, arrived;
    int self_seen, props_ok;
};

static int v5_arrived(void* ctx, char* topic, int len, MQTTClient_message* m)
{
    struct v5_state* st = (struct v5_state*)ctx;
    (void)len;
    if (strcmp(topic, "T/v5/self") == 0)
        bump(&st->self_seen);
    if (strcmp(topic, "T/v5/x") == 0)
    {
        MQTTProperty* up = MQTTProperties_getProperty(&m->properties, MQTTPROPERTY_CODE_USER_PROPERTY);
        if (payload_is(m, "props") && up != NULL && up->value.data.len == 1
            && up->value.data.data[0] == 'k' && up->value.value.len == 1
            && up->value.value.data[0] == 'v')
            bump(&st->props_ok);
    }
    MQTTClient_free(topic);
    MQTTClient_freeMessage(&m);
    bump(&st->arrived);
    return 1;
}

static void v5_published(void* ctx, int dt, int packet_type, MQTTProperties* props,
                         enum MQTTReasonCodes reason)
{
    struct v5_state* st = (struct v5_state*)ctx;
    (void)dt; (void)props;
    pthread_mutex_lock(&mu);
    st->pub_type = packet_type;
    st->pub_reason = (int)reason;
    pthread_mutex_unlock(&mu);
    bump(&st->published);
}

static void v5_disconnected(void* ctx, MQTTProperties* props, enum MQTTReasonCodes reason)
{
    struct v5_state* st = (struct v5_state*)ctx;
    (void)props;
    pthread_mutex_lock(&mu);
    st->disc_reason = (int)reason;
    pthread_mutex_unlock(&mu);
    bump(&st->disconnected);
}

static void v5_lost(void* ctx, char* cause)
{
    struct v5_state* st = (struct v5_state*)ctx;
    (void)cause;
    bump(&st->lost);
}

static void scenario_v5(void)
{
    static struct v5_state st, st2, st3;
    MQTTClient rc5 = NULL, p5 = NULL, d1 = NULL;
    MQTTClient_createOptions co = MQTTClient_createOptions_initializer;
    MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer5;
    MQTTSubscribe_options so = MQTTSubscribe_options_initializer;
    MQTTProperties cprops = MQTTProperties_initializer, pprops = MQTTProperties_initializer;
    MQTTProperty p;
    MQTTResponse r;
    MQTTClient_deliveryToken dt = 0;
    char* topic = NULL; int tlen = 0; MQTTClient_message* m = NULL;

    memset(&st, 0, sizeof st);
    memset(&st2, 0, sizeof st2);
    memset(&st3, 0, sizeof st3);
    co.MQTTVersion = MQTTVERSION_5;
    CHECK(MQTTClient_createWithOptions(&rc5, uri, cid("v5r"), MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) == 0);
    CHECK(MQTTClient_createWithOptions(&p5, uri, cid("v5p"), MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) == 0);

    p.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
    p.value.integer4 = 0;
    CHECK(MQTTProperties_add(&cprops, &p) == 0);
    /* (Paho refuses MQTTClient_receive while any client has callbacks: all use callbacks) */
    CHECK(MQTTClient_setCallbacks(rc5, &st3, v5_lost, v5_arrived, NULL) == 0);
    r = MQTTClient_connect5(rc5, &o, &cprops, NULL);
    CHECK(r.reasonCode == MQTTREASONCODE_SUCCESS);
    MQTTResponse_free(r);

    CHECK(MQTTClient_setCallbacks(p5, &st, v5_lost, v5_arrived, NULL) == 0);
    CHECK(MQTTClient_setPublished(p5, &st, v5_published) == 0);
    r = MQTTClient_connect5(p5, &o, NULL, NULL);
    CHECK(r.reasonCode == MQTTREASONCODE_SUCCESS);
    MQTTResponse_free(r);

    so.noLocal = 1;
    r = MQTTClient_subscribe5(rc5, "T/v5/#", 2, &so, NULL);
    CHECK(r.reasonCode == MQTTREASONCODE_GRANTED_QOS_2);
    MQTTResponse_free(r);

    /* no local: our own publication does not come back */
    r = MQTTClient_publish5(rc5, "T/v5/self", 4, "self", 1, 0, NULL, &dt);
    CHECK(r.reasonCode == 0);
    CHECK(MQTTClient_waitForCompletion(rc5, dt, WAIT_MS) == 0);

    /* user property from another client arrives; published callback fires */
    p.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
    p.value.data.data = (char*)"k"; p.value.data.len = 1;
    p.value.value.data = (char*)"v"; p.value.value.len = 1;
    CHECK(MQTTProperties_add(&pprops, &p) == 0);
    r = MQTTClient_publish5(p5, "T/v5/x", 5, "props", 1, 0, &pprops, &dt);
    CHECK(r.reasonCode == 0);
    CHECK(wait_for(&st.published, 1));
    CHECK(get(&st.pub_type) == 4 /* PUBACK */ && get(&st.pub_reason) == 0);

    CHECK(wait_for(&st3.props_ok, 1));
    CHECK(get(&st3.self_seen) == 0); /* it would have come first */

    if (extras)
    {
        /* mqttsync only: a receive-mode client works while other clients use callbacks */
        MQTTClient rx = NULL;
        CHECK(MQTTClient_createWithOptions(&rx, uri, cid("v5rx"), MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) == 0);
        r = MQTTClient_connect5(rx, &o, NULL, NULL);
        CHECK(r.reasonCode == 0);
        MQTTResponse_free(r);
        r = MQTTClient_subscribe5(rx, "T/v5/#", 1, NULL, NULL);
        CHECK(r.reasonCode == 1);
        MQTTResponse_free(r);
        r = MQTTClient_publish5(p5, "T/v5/x", 5, "props", 1, 0, &pprops, &dt);
        CHECK(r.reasonCode == 0);
        CHECK(MQTTClient_receive(rx, &topic, &tlen, &m, WAIT_MS) == 0);
        CHECK(topic != NULL && m != NULL);
        if (m)
        {
            MQTTProperty* up = MQTTProperties_getProperty(&m->properties, MQTTPROPERTY_CODE_USER_PROPERTY);
            CHECK(payload_is(m, "props") && strcmp(topic, "T/v5/x") == 0 && tlen == 6);
            CHECK(up != NULL && up->value.value.len == 1 && up->value.value.data[0] == 'v');
            MQTTClient_freeMessage(&m);
        }
        MQTTClient_free(topic);
        MQTTClient_disconnect(rx, 1000);
        MQTTClient_destroy(&rx);
    }

    r = MQTTClient_unsubscribe5(rc5, "T/v5/#", NULL);
    CHECK(r.reasonCode == MQTTREASONCODE_SUCCESS);
    MQTTResponse_free(r);

    /* A server DISCONNECT (0x8E, session taken over; sent by a scripted server after the
     * first packet following CONNECT) reaches `disconnected`, not `connectionLost`. */
    CHECK(MQTTClient_createWithOptions(&d1, disc_uri, cid("disc"), MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) == 0);
    CHECK(MQTTClient_setCallbacks(d1, &st2, v5_lost, v5_arrived, NULL) == 0);
    CHECK(MQTTClient_setDisconnected(d1, &st2, v5_disconnected) == 0);
    r = MQTTClient_connect5(d1, &o, NULL, NULL);
    CHECK(r.reasonCode == 0);
    MQTTResponse_free(r);
    r = MQTTClient_publish5(d1, "T/x", 1, "x", 0, 0, NULL, &dt);
    CHECK(r.reasonCode == 0);
    CHECK(wait_for(&st2.disconnected, 1));
    CHECK(get(&st2.disc_reason) == MQTTREASONCODE_SESSION_TAKEN_OVER);
    CHECK(get(&st2.lost) == 0);

    MQTTClient_disconnect(d1, 0);
    MQTTClient_disconnect(rc5, 1000);
    MQTTClient_disconnect(p5, 1000);
    MQTTClient_destroy(&d1);
    MQTTClient_destroy(&rc5);
    MQTTClient_destroy(&p5);
    MQTTProperties_free(&cprops);
    MQTTProperties_free(&pprops);
    printf("v5: done\n");
}

/* ------------------------------------------------------------------------------------- */
/* E: reconnecting from connectionLost; destroying from inside a callback (mqttsync only)  */
/* ------------------------------------------------------------------------------------- */

struct recon_state
{
    MQTTClient c;
    MQTTClient_connectOptions* opts;
    int lost, cause_ok, reconnected, arrived;
};

static void recon_lost(void* ctx, char* cause)
{
    struct recon_state* st = (struct recon_state*)ctx;
    int rc;
    pthread_mutex_lock(&mu);
    st->cause_ok = cause != NULL && cause[0] != 0; /* Paho passes NULL */
    pthread_mutex_unlock(&mu);
    bump(&st->lost);
    rc = MQTTClient_connect(st->c, st->opts); /* allowed from connectionLost, also in Paho */
    if (rc == 0)
        bump(&st->reconnected);
}

static int recon_arrived(void* ctx, char* topic, int len, MQTTClient_message* m)
{
    struct recon_state* st = (struct recon_state*)ctx;
    (void)len;
    MQTTClient_free(topic);
    MQTTClient_freeMessage(&m);
    bump(&st->arrived);
    return 1;
}

struct destroy_state
{
    MQTTClient c;
    int destroyed;
};

static int destroy_arrived(void* ctx, char* topic, int len, MQTTClient_message* m)
{
    struct destroy_state* st = (struct destroy_state*)ctx;
    (void)len;
    MQTTClient_free(topic);
    MQTTClient_freeMessage(&m);
    MQTTClient_destroy(&st->c);
    CHECK(st->c == NULL);
    bump(&st->destroyed);
    return 1;
}

static void scenario_reconnect(void)
{
    static struct recon_state st;
    MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
    MQTTClient_connectOptions o2 = MQTTClient_connectOptions_initializer;
    MQTTClient intruder = NULL, pub = NULL;
    MQTTClient_deliveryToken dt = 0;
    char id[64];

    if (!extras)
    {
        /* Paho 1.3.11 crashes here (SIGSEGV in MQTTClient_run after the reconnect). */
        printf("reconnect: skipped\n");
        return;
    }
    memset(&st, 0, sizeof st);
    st.opts = &o;
    snprintf(id, sizeof id, "recon-%ld", (long)getpid());
    CHECK(MQTTClient_create(&st.c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    CHECK(MQTTClient_create(&intruder, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    CHECK(MQTTClient_create(&pub, uri, cid("rpub2"), MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    CHECK(MQTTClient_setCallbacks(st.c, &st, recon_lost, recon_arrived, NULL) == 0);
    CHECK(MQTTClient_connect(st.c, &o) == 0);
    CHECK(MQTTClient_subscribe(st.c, "T/recon", 1) == 0);
    /* Same client id: the broker drops the first connection; its callback reconnects
     * (which in turn drops the intruder). */
    CHECK(MQTTClient_connect(intruder, &o2) == 0);
    CHECK(wait_for(&st.lost, 1));
    CHECK(wait_for(&st.reconnected, 1));
    CHECK(get(&st.cause_ok) == 1);
    CHECK(MQTTClient_isConnected(st.c) == 1);
    CHECK(MQTTClient_subscribe(st.c, "T/recon", 1) == 0); /* clean session: subscribe again */
    CHECK(MQTTClient_connect(pub, &o2) == 0);
    CHECK(MQTTClient_publish(pub, "T/recon", 2, "hi", 1, 0, &dt) == 0);
    CHECK(wait_for(&st.arrived, 1));
    MQTTClient_disconnect(pub, 1000);
    MQTTClient_disconnect(st.c, 1000);
    MQTTClient_disconnect(intruder, 0);
    MQTTClient_destroy(&pub);
    MQTTClient_destroy(&st.c);
    MQTTClient_destroy(&intruder);

    {
        static struct destroy_state ds;
        MQTTClient p2 = NULL;
        memset(&ds, 0, sizeof ds);
        CHECK(MQTTClient_create(&ds.c, uri, cid("selfdestroy"), MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
        CHECK(MQTTClient_setCallbacks(ds.c, &ds, NULL, destroy_arrived, NULL) == 0);
        CHECK(MQTTClient_connect(ds.c, &o2) == 0);
        CHECK(MQTTClient_subscribe(ds.c, "T/destroy", 1) == 0);
        CHECK(MQTTClient_create(&p2, uri, cid("dpub"), MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
        CHECK(MQTTClient_connect(p2, &o2) == 0);
        CHECK(MQTTClient_publish(p2, "T/destroy", 1, "x", 1, 0, &dt) == 0);
        CHECK(MQTTClient_publish(p2, "T/destroy", 1, "y", 1, 0, &dt) == 0);
        CHECK(wait_for(&ds.destroyed, 1));
        CHECK(get(&ds.destroyed) == 1); /* no callback after destroy */
        MQTTClient_disconnect(p2, 1000);
        MQTTClient_destroy(&p2);
    }
    printf("reconnect: done\n");
}

/* ------------------------------------------------------------------------------------- */
/* D: will message on an abrupt exit (a child process)                                    */
/* ------------------------------------------------------------------------------------- */

static int will_child(void)
{
    MQTTClient c = NULL;
    MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
    MQTTClient_willOptions w = MQTTClient_willOptions_initializer;
    w.topicName = "T/will";
    w.message = "gone";
    w.qos = 1;
    o.will = &w;
    if (MQTTClient_create(&c, uri, cid("willc"), MQTTCLIENT_PERSISTENCE_NONE, NULL) != 0)
        _exit(3);
    if (MQTTClient_connect(c, &o) != 0)
        _exit(4);
    _exit(0); /* no DISCONNECT: the broker publishes the will */
}

static void scenario_will(const char* self)
{
    MQTTClient s = NULL;
    MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
    char* topic = NULL; int tlen = 0; MQTTClient_message* m = NULL;
    pid_t pid;
    int status = -1;

    CHECK(MQTTClient_create(&s, uri, cid("wsub"), MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    CHECK(MQTTClient_connect(s, &o) == 0);
    CHECK(MQTTClient_subscribe(s, "T/will", 1) == 0);
    fflush(stdout);
    pid = fork();
    if (pid == 0)
    {
        execl(self, self, "will-child", uri, (char*)NULL);
        _exit(5);
    }
    CHECK(pid > 0);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(MQTTClient_receive(s, &topic, &tlen, &m, WAIT_MS) == 0);
    CHECK(topic != NULL && m != NULL);
    if (m)
    {
        CHECK(payload_is(m, "gone"));
        MQTTClient_freeMessage(&m);
    }
    MQTTClient_free(topic);
    MQTTClient_disconnect(s, 1000);
    MQTTClient_destroy(&s);
    printf("will: done\n");
}

int main(int argc, char** argv)
{
    if (argc == 3 && strcmp(argv[1], "will-child") == 0)
    {
        uri = argv[2];
        return will_child();
    }
    if (argc < 3) { fprintf(stderr, "usage\n"); return 2; }
    uri = argv[1];
    disc_uri = argv[2];
    setvbuf(stdout, NULL, _IOLBF, 0);
#if defined(MQTTSYNC_H)
    extras = 1;
#else
    extras = getenv("MQTTSYNC_EXTRAS") != NULL;
#endif
    printf("product: %s\n", MQTTClient_getVersionInfo()[0].value);
    scenario_receive();
    scenario_callbacks();
    scenario_v5();
    scenario_reconnect();
    scenario_will(argv[0]);
    printf("failures: %d\n", failures);
    return 0;
}
