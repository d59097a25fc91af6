/*
 * MQTTAsync scenario, built once against Eclipse Paho C (-lpaho-mqtt3as) and once against
 * mqttsync; tests/capi_async.rs requires the same output up to the line
 * "--- mqttsync only", after which come checks of the defects mqttsync fixes (stale
 * handles, destroy from a callback, one client's slow callback not stalling another).
 *
 * Every line printed is deterministic: the program waits for each callback (no sleeps as
 * synchronisation) and prints what the callbacks saw in a fixed order.
 * Usage: async_client BROKER_URI CLOSED_URI
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "MQTTAsync.h"

static int failures;
#define CHECK(c) do { if (!(c)) { printf("FAILED %s:%d %s\n", __FILE__, __LINE__, #c); ++failures; } } while (0)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- a log of callback events, waited on with a deadline ---- */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static char events[64][200];
static int nevents;

static void event(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void event(const char* fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&mu);
    if (nevents < 64)
    {
        va_start(ap, fmt);
        vsnprintf(events[nevents++], sizeof events[0], fmt, ap);
        va_end(ap);
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* Waits until n events are logged (10 s at most), prints them sorted, clears the log. */
static int cmp(const void* a, const void* b) { return strcmp((const char*)a, (const char*)b); }
static void expect(int n, const char* step)
{
    struct timespec dl;
    int i;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&mu);
    while (nevents < n)
        if (pthread_cond_timedwait(&cv, &mu, &dl) != 0)
            break;
    if (nevents != n)
    {
        printf("FAILED %s: %d events, expected %d\n", step, nevents, n);
        ++failures;
    }
    qsort(events, (size_t)nevents, sizeof events[0], cmp);
    for (i = 0; i < nevents; ++i)
        printf("%s: %s\n", step, events[i]);
    nevents = 0;
    pthread_mutex_unlock(&mu);
}

/* ---- callbacks ---- */
static int arrived(void* ctx, char* topic, int len, MQTTAsync_message* m)
{
    int nprops = m->properties.count;
    event("%s arrived %s len=%d qos=%d retained=%d payload=%.*s props=%d", (const char*)ctx, topic,
          len, m->qos, m->retained, m->payloadlen, (const char*)m->payload, nprops);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}
static void lost(void* ctx, char* cause) { (void)cause; event("%s connectionLost", (const char*)ctx); }
static void connected(void* ctx, char* cause) { event("%s connected: %s", (const char*)ctx, cause ? cause : "(null)"); }
static void delivered(void* ctx, MQTTAsync_token t) { event("%s deliveryComplete token>0=%d", (const char*)ctx, t > 0); }

static void on_ok(void* ctx, MQTTAsync_successData* r)
{
    const char* what = (const char*)ctx;
    if (strncmp(what, "connect", 7) == 0)
        event("%s onSuccess version=%d sessionPresent=%d uri=%s", what, r->alt.connect.MQTTVersion,
              r->alt.connect.sessionPresent, r->alt.connect.serverURI ? "set" : "null");
    else if (strcmp(what, "subscribe") == 0)
        event("%s onSuccess qos=%d", what, r->alt.qos);
    else if (strcmp(what, "subscribeMany") == 0)
        event("%s onSuccess qos=%d,%d", what, r->alt.qosList[0], r->alt.qosList[1]);
    else if (strncmp(what, "publish", 7) == 0)
        event("%s onSuccess qos=%d payload=%.*s topic=%s", what, r->alt.pub.message.qos,
              r->alt.pub.message.payloadlen, (const char*)r->alt.pub.message.payload,
              r->alt.pub.destinationName ? r->alt.pub.destinationName : "(null)");
    else
        event("%s onSuccess token>0=%d", what, r ? r->token > 0 : -1);
}
static void on_fail(void* ctx, MQTTAsync_failureData* r)
{
    event("%s onFailure code=%d", (const char*)ctx, r ? r->code : -999);
}
static void on_ok5(void* ctx, MQTTAsync_successData5* r)
{
    const char* what = (const char*)ctx;
    if (strncmp(what, "connect", 7) == 0)
        event("%s onSuccess5 rc=%d version=%d", what, r->reasonCode, r->alt.connect.MQTTVersion);
    else if (strcmp(what, "subscribeMany5") == 0)
        event("%s onSuccess5 count=%d codes=%d,%d", what, r->alt.sub.reasonCodeCount,
              r->alt.sub.reasonCodes[0], r->alt.sub.reasonCodes[1]);
    else
        event("%s onSuccess5 rc=%d", what, r->reasonCode);
}
static void on_fail5(void* ctx, MQTTAsync_failureData5* r)
{
    event("%s onFailure5 code=%d rc=%d", (const char*)ctx, r->code, r->reasonCode);
}

static MQTTAsync_responseOptions resp(const char* what)
{
    MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
    o.onSuccess = on_ok;
    o.onFailure = on_fail;
    o.context = (void*)what;
    return o;
}
static MQTTAsync_responseOptions resp5(const char* what)
{
    MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
    o.onSuccess5 = on_ok5;
    o.onFailure5 = on_fail5;
    o.context = (void*)what;
    return o;
}

static void errors(const char* uri, const char* closed)
{
    MQTTAsync c = NULL;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_createOptions cr = MQTTAsync_createOptions_initializer;
    MQTTAsync_responseOptions ro = resp("x");
    int rc;

    printf("create bad scheme: %d\n", MQTTAsync_create(&c, "foo://h:1", "e", MQTTCLIENT_PERSISTENCE_NONE, NULL));
    printf("create bad persistence: %d\n", MQTTAsync_create(&c, uri, "e", 42, NULL));
    cr.struct_id[0] = 'X';
    printf("createWithOptions bad struct: %d\n",
           MQTTAsync_createWithOptions(&c, uri, "e", MQTTCLIENT_PERSISTENCE_NONE, NULL, &cr));
    rc = MQTTAsync_create(&c, uri, "async-errors", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    printf("create: %d\n", rc);
    printf("setCallbacks NULL ma: %d\n", MQTTAsync_setCallbacks(c, NULL, NULL, NULL, NULL));
    printf("setCallbacks: %d\n", MQTTAsync_setCallbacks(c, (void*)"e", lost, arrived, delivered));
    printf("isConnected: %d\n", MQTTAsync_isConnected(c));
    printf("subscribe disconnected: %d\n", MQTTAsync_subscribe(c, "t", 1, &ro));
    printf("unsubscribe disconnected: %d\n", MQTTAsync_unsubscribe(c, "t", &ro));
    printf("send disconnected: %d\n", MQTTAsync_send(c, "t", 1, "x", 1, 0, &ro));
    printf("disconnect disconnected: %d\n", MQTTAsync_disconnect(c, NULL));
    printf("connect NULL: %d\n", MQTTAsync_connect(c, NULL));
    co.struct_id[0] = 'X';
    printf("connect bad struct: %d\n", MQTTAsync_connect(c, &co));
    co.struct_id[0] = 'M';
    co.struct_version = 9;
    printf("connect bad version: %d\n", MQTTAsync_connect(c, &co));
    MQTTAsync_destroy(&c);
    printf("destroy NULLs handle: %d\n", c == NULL);

    /* connect to a closed port: onFailure */
    rc = MQTTAsync_create(&c, closed, "async-closed", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    co = (MQTTAsync_connectOptions)MQTTAsync_connectOptions_initializer;
    co.onSuccess = on_ok;
    co.onFailure = on_fail;
    co.context = (void*)"connect-closed";
    co.connectTimeout = 5;
    printf("connect closed port: %d\n", MQTTAsync_connect(c, &co));
    expect(1, "closed");
    MQTTAsync_destroy(&c);
    (void)rc;
}

static void v3(const char* uri)
{
    MQTTAsync c = NULL;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_disconnectOptions dc = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_responseOptions r1 = resp("subscribe"), r2 = resp("subscribeMany");
    MQTTAsync_responseOptions p0 = resp("publish0"), p1 = resp("publish1"), p2 = resp("publish2");
    MQTTAsync_responseOptions u = resp("unsubscribe");
    MQTTAsync_message m = MQTTAsync_message_initializer;
    MQTTAsync_token* pending = NULL;
    char* topics[2] = { (char*)"T/async/b", (char*)"T/async/c" };
    int qos[2] = { 1, 0 };

    printf("create: %d\n", MQTTAsync_create(&c, uri, "async-v3", MQTTCLIENT_PERSISTENCE_NONE, NULL));
    printf("setCallbacks: %d\n", MQTTAsync_setCallbacks(c, (void*)"v3", lost, arrived, delivered));
    printf("setConnected: %d\n", MQTTAsync_setConnected(c, (void*)"v3", connected));
    co.onSuccess = on_ok;
    co.onFailure = on_fail;
    co.context = (void*)"connect";
    co.keepAliveInterval = 20;
    printf("connect: %d\n", MQTTAsync_connect(c, &co));
    expect(2, "connect");
    printf("isConnected: %d\n", MQTTAsync_isConnected(c));
    printf("subscribe: %d\n", MQTTAsync_subscribe(c, "T/async/a", 2, &r1));
    printf("subscribe token>0: %d\n", r1.token > 0);
    expect(1, "subscribe");
    printf("subscribeMany: %d\n", MQTTAsync_subscribeMany(c, 2, topics, qos, &r2));
    expect(1, "subscribeMany");
    printf("subscribe bad qos: %d\n", MQTTAsync_subscribe(c, "T/async/a", 3, NULL));
    printf("send bad qos: %d\n", MQTTAsync_send(c, "T/async/a", 1, "x", 3, 0, NULL));

    printf("send qos0: %d\n", MQTTAsync_send(c, "T/async/a", 2, "q0", 0, 0, &p0));
    expect(2, "qos0");
    printf("send qos1: %d\n", MQTTAsync_send(c, "T/async/a", 2, "q1", 1, 0, &p1));
    printf("send qos1 token>0: %d\n", p1.token > 0);
    expect(3, "qos1");
    printf("isComplete: %d\n", MQTTAsync_isComplete(c, p1.token));
    printf("waitForCompletion done: %d\n", MQTTAsync_waitForCompletion(c, p1.token, 1000));
    m.payload = (void*)"q2";
    m.payloadlen = 2;
    m.qos = 2;
    printf("sendMessage qos2: %d\n", MQTTAsync_sendMessage(c, "T/async/b", &m, &p2));
    printf("waitForCompletion qos2: %d\n", MQTTAsync_waitForCompletion(c, p2.token, 10000));
    expect(3, "qos2");
    printf("getPendingTokens: %d\n", MQTTAsync_getPendingTokens(c, &pending));
    printf("no pending: %d\n", pending == NULL);
    MQTTAsync_free(pending);
    printf("unsubscribe: %d\n", MQTTAsync_unsubscribe(c, "T/async/a", &u));
    expect(1, "unsubscribe");
    dc.onSuccess = on_ok;
    dc.onFailure = on_fail;
    dc.context = (void*)"disconnect";
    dc.timeout = 1000;
    printf("disconnect: %d\n", MQTTAsync_disconnect(c, &dc));
    expect(1, "disconnect");
    printf("isConnected after: %d\n", MQTTAsync_isConnected(c));
    MQTTAsync_destroy(&c);
}

static void v5(const char* uri)
{
    MQTTAsync c = NULL;
    MQTTAsync_createOptions cr = MQTTAsync_createOptions_initializer5;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_connectOptions co3 = MQTTAsync_connectOptions_initializer;
    MQTTAsync_responseOptions s = resp5("subscribe5"), sm = resp5("subscribeMany5");
    MQTTAsync_responseOptions p = resp5("publish5"), u = resp5("unsubscribe5");
    MQTTAsync_disconnectOptions dc = MQTTAsync_disconnectOptions_initializer5;
    MQTTAsync_message m = MQTTAsync_message_initializer;
    MQTTProperty prop;
    char* topics[2] = { (char*)"T/async5/b", (char*)"T/async5/c" };
    int qos[2] = { 2, 1 };

    printf("create5: %d\n", MQTTAsync_createWithOptions(&c, uri, "async-v5", MQTTCLIENT_PERSISTENCE_NONE, NULL, &cr));
    printf("setCallbacks5: %d\n", MQTTAsync_setCallbacks(c, (void*)"v5", lost, arrived, NULL));
    co3.cleanstart = 1;
    printf("connect v3 options with cleanstart: %d\n", MQTTAsync_connect(c, &co3));
    co.onSuccess5 = on_ok5;
    co.onFailure5 = on_fail5;
    co.context = (void*)"connect5";
    printf("connect5: %d\n", MQTTAsync_connect(c, &co));
    expect(1, "connect5");
    printf("subscribe5: %d\n", MQTTAsync_subscribe(c, "T/async5/a", 1, &s));
    expect(1, "subscribe5");
    printf("subscribeMany5: %d\n", MQTTAsync_subscribeMany(c, 2, topics, qos, &sm));
    expect(1, "subscribeMany5");
    prop.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
    prop.value.data.data = (char*)"k";
    prop.value.data.len = 1;
    prop.value.value.data = (char*)"v";
    prop.value.value.len = 1;
    MQTTProperties_add(&m.properties, &prop);
    m.payload = (void*)"p5";
    m.payloadlen = 2;
    m.qos = 1;
    printf("sendMessage5: %d\n", MQTTAsync_sendMessage(c, "T/async5/a", &m, &p));
    expect(2, "publish5");
    MQTTProperties_free(&m.properties);
    printf("unsubscribe5: %d\n", MQTTAsync_unsubscribe(c, "T/async5/a", &u));
    expect(1, "unsubscribe5");
    dc.onSuccess5 = on_ok5;
    dc.context = (void*)"disconnect5";
    printf("disconnect5: %d\n", MQTTAsync_disconnect(c, &dc));
    expect(1, "disconnect5");
    MQTTAsync_destroy(&c);
}

static void offline(const char* uri)
{
    MQTTAsync c = NULL;
    MQTTAsync_createOptions cr = MQTTAsync_createOptions_initializer;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_disconnectOptions dc = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_responseOptions r = resp("publish-buffered");

    cr.sendWhileDisconnected = 1;
    cr.maxBufferedMessages = 1;
    cr.allowDisconnectedSendAtAnyTime = 1;
    printf("create offline: %d\n", MQTTAsync_createWithOptions(&c, uri, "async-off", MQTTCLIENT_PERSISTENCE_NONE, NULL, &cr));
    printf("setCallbacks: %d\n", MQTTAsync_setCallbacks(c, (void*)"off", lost, arrived, NULL));
    printf("send buffered: %d\n", MQTTAsync_send(c, "T/async/off", 3, "buf", 1, 0, &r));
    printf("send over limit: %d\n", MQTTAsync_send(c, "T/async/off", 3, "two", 1, 0, NULL));
    co.onSuccess = on_ok;
    co.context = (void*)"connect-offline";
    printf("connect: %d\n", MQTTAsync_connect(c, &co));
    expect(2, "offline");
    printf("disconnect: %d\n", MQTTAsync_disconnect(c, &dc));
    MQTTAsync_destroy(&c);
}

/* Offline buffer while the client reconnects by itself: a second connection with the same
 * client id takes the session over, the client publishes three QoS 1 messages into a
 * buffer of two with deleteOldestMessages: the oldest gets onFailure (-12), and after the
 * automatic reconnect the newest two are delivered. (mqttsync only: Paho drops the
 * oldest without onFailure, and with both connections of one client id in one process it
 * loses the client's connection again after the reconnect.) */
static void reconnect_buffer(const char* uri)
{
    MQTTAsync c = NULL, k = NULL;
    MQTTAsync_createOptions cr = MQTTAsync_createOptions_initializer;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions ko = MQTTAsync_connectOptions_initializer;
    MQTTAsync_disconnectOptions dc = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_responseOptions r1 = resp("publish-rb1"), r2 = resp("publish-rb2"), r3 = resp("publish-rb3");

    cr.sendWhileDisconnected = 1;
    cr.maxBufferedMessages = 2;
    cr.deleteOldestMessages = 1;
    printf("create rbuf: %d\n", MQTTAsync_createWithOptions(&c, uri, "async-rbuf", MQTTCLIENT_PERSISTENCE_NONE, NULL, &cr));
    MQTTAsync_setCallbacks(c, (void*)"rb", lost, arrived, NULL);
    MQTTAsync_setConnected(c, (void*)"rb", connected);
    co.automaticReconnect = 1;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 2;
    co.onSuccess = on_ok;
    co.onFailure = on_fail;
    co.context = (void*)"connect-rb";
    printf("connect rbuf: %d\n", MQTTAsync_connect(c, &co));
    expect(2, "rbuf");
    MQTTAsync_create(&k, uri, "async-rbuf", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    ko.onSuccess = on_ok;
    ko.onFailure = on_fail;
    ko.context = (void*)"connect-takeover";
    printf("connect takeover: %d\n", MQTTAsync_connect(k, &ko));
    expect(2, "takeover");
    printf("isConnected after takeover: %d\n", MQTTAsync_isConnected(c));
    {
        int rc1 = MQTTAsync_send(c, "T/async/rbuf", 3, "rb1", 1, 0, &r1);
        int rc2 = MQTTAsync_send(c, "T/async/rbuf", 3, "rb2", 1, 0, &r2);
        int rc3 = MQTTAsync_send(c, "T/async/rbuf", 3, "rb3", 1, 0, &r3);
        printf("send while reconnecting: %d %d %d\n", rc1, rc2, rc3);
    }
    expect(1, "rbuf-dropped");
    expect(3, "rbuf-reconnected");
    MQTTAsync_destroy(&k);
    printf("disconnect rbuf: %d\n", MQTTAsync_disconnect(c, &dc));
    MQTTAsync_destroy(&c);
}

/* ---------------------------------------------------------------- mqttsync only ---- */

static MQTTAsync self_destroying;
static int destroy_in_callback(void* ctx, char* topic, int len, MQTTAsync_message* m)
{
    (void)ctx; (void)len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    MQTTAsync_destroy(&self_destroying);
    event("destroyed from messageArrived: %d", self_destroying == NULL);
    return 1;
}

static int refusals;
static int refuse_once(void* ctx, char* topic, int len, MQTTAsync_message* m)
{
    (void)ctx; (void)len;
    if (refusals++ == 0)
    {
        event("refused once");
        return 0; /* the library keeps and frees its copies, and delivers it again */
    }
    event("taken: %.*s", m->payloadlen, (const char*)m->payload);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static int slow(void* ctx, char* topic, int len, MQTTAsync_message* m)
{
    struct timespec t = { 2, 0 };
    (void)ctx; (void)len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    nanosleep(&t, NULL); /* deliberately slow: must not stall the other client */
    return 1;
}

/* waitForCompletion of a QoS 1 publish made inside messageArrived: the callback may run on
 * the thread that reports acknowledgements, which must not make the wait hang */
static MQTTAsync waiter;
static int wait_in_callback(void* ctx, char* topic, int len, MQTTAsync_message* m)
{
    MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
    double t0;
    int rc;
    (void)ctx; (void)len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    rc = MQTTAsync_send(waiter, "T/async/wfc-out", 1, "w", 1, 0, &r);
    t0 = now_s();
    rc = rc ? rc : MQTTAsync_waitForCompletion(waiter, r.token, 5000);
    event("waited in messageArrived: rc=%d complete=%d quick=%d", rc,
          MQTTAsync_isComplete(waiter, r.token), now_s() - t0 < 4.0);
    return 1;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void extras(const char* uri)
{
    MQTTAsync a = NULL, b = NULL, stale;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_responseOptions r = resp("x");
    double t0;

    /* NULL arguments (Paho crashes on these) */
    CHECK(MQTTAsync_create(NULL, uri, "e", MQTTCLIENT_PERSISTENCE_NONE, NULL) == MQTTASYNC_NULL_PARAMETER);
    CHECK(MQTTAsync_create(&a, NULL, "e", MQTTCLIENT_PERSISTENCE_NONE, NULL) == MQTTASYNC_NULL_PARAMETER);

    /* stale handle */
    MQTTAsync_create(&a, uri, "async-stale", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    stale = a;
    MQTTAsync_destroy(&a);
    CHECK(MQTTAsync_connect(stale, &co) == MQTTASYNC_FAILURE);
    CHECK(MQTTAsync_send(stale, "t", 1, "x", 0, 0, NULL) == MQTTASYNC_FAILURE);
    CHECK(MQTTAsync_subscribe(stale, "t", 0, NULL) == MQTTASYNC_FAILURE);
    CHECK(MQTTAsync_isConnected(stale) == 0);
    CHECK(MQTTAsync_setCallbacks(stale, NULL, lost, arrived, NULL) == MQTTASYNC_FAILURE);
    MQTTAsync_destroy(&stale);
    /* reconnect before any connect is an error (Paho returns 0 and does nothing) */
    MQTTAsync_create(&a, uri, "async-reconnect", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    CHECK(MQTTAsync_reconnect(a) == MQTTASYNC_FAILURE);
    MQTTAsync_destroy(&a);
    CHECK(MQTTAsync_strerror(MQTTASYNC_MAX_BUFFERED_MESSAGES) != NULL);

    /* destroy from inside messageArrived */
    MQTTAsync_create(&self_destroying, uri, "async-selfdestroy", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    MQTTAsync_setCallbacks(self_destroying, NULL, NULL, destroy_in_callback, NULL);
    co.onSuccess = on_ok;
    co.context = (void*)"connect-self";
    CHECK(MQTTAsync_connect(self_destroying, &co) == 0);
    expect(1, "self");
    r = resp("subscribe-self");
    CHECK(MQTTAsync_subscribe(self_destroying, "T/async/self", 1, &r) == 0);
    expect(1, "self-sub");
    CHECK(MQTTAsync_send(self_destroying, "T/async/self", 1, "x", 1, 0, NULL) == 0);
    expect(1, "self-destroy");

    /* messageArrived returning 0: the same message comes again */
    MQTTAsync_create(&a, uri, "async-refuse", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    MQTTAsync_setCallbacks(a, NULL, NULL, refuse_once, NULL);
    co.context = (void*)"connect-refuse";
    MQTTAsync_connect(a, &co);
    expect(1, "refuse");
    r = resp("subscribe-refuse");
    MQTTAsync_subscribe(a, "T/async/refuse", 1, &r);
    expect(1, "refuse-sub");
    MQTTAsync_send(a, "T/async/refuse", 5, "again", 1, 0, NULL);
    expect(2, "redelivered");
    MQTTAsync_destroy(&a);

    /* waitForCompletion inside messageArrived */
    MQTTAsync_create(&waiter, uri, "async-wfc", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    MQTTAsync_setCallbacks(waiter, NULL, NULL, wait_in_callback, NULL);
    co.context = (void*)"connect-wfc";
    MQTTAsync_connect(waiter, &co);
    expect(1, "wfc");
    r = resp("subscribe-wfc");
    MQTTAsync_subscribe(waiter, "T/async/wfc", 1, &r);
    expect(1, "wfc-sub");
    MQTTAsync_send(waiter, "T/async/wfc", 1, "x", 1, 0, NULL);
    expect(1, "wfc-wait");
    MQTTAsync_destroy(&waiter);

    /* a burst of QoS 0 publishes is taken (flow control), not refused with
       MQTTASYNC_MAX_BUFFERED_MESSAGES once the client's queue is full */
    MQTTAsync_create(&a, uri, "async-burst", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    co.context = (void*)"connect-burst";
    MQTTAsync_connect(a, &co);
    expect(1, "burst");
    {
        int i, refused = 0;
        for (i = 0; i < 20000; ++i)
            if (MQTTAsync_send(a, "T/async/burst", 16, "0123456789abcdef", 0, 0, NULL) != 0)
                ++refused;
        printf("burst of 20000 QoS 0 publishes, refused: %d\n", refused);
        CHECK(refused == 0);
    }
    MQTTAsync_destroy(&a);

    /* one client's slow callback does not stall another client */
    MQTTAsync_create(&a, uri, "async-slow", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    MQTTAsync_create(&b, uri, "async-fast", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    MQTTAsync_setCallbacks(a, NULL, NULL, slow, NULL);
    MQTTAsync_setCallbacks(b, (void*)"fast", NULL, arrived, NULL);
    co.context = (void*)"connect-slow";
    MQTTAsync_connect(a, &co);
    co.context = (void*)"connect-fast";
    MQTTAsync_connect(b, &co);
    expect(2, "two");
    r = resp("subscribe-slow");
    MQTTAsync_subscribe(a, "T/async/slow", 0, &r);
    expect(1, "two-sub");
    r = resp("subscribe-fast");
    MQTTAsync_subscribe(b, "T/async/fast", 0, &r);
    expect(1, "two-sub");
    MQTTAsync_send(a, "T/async/slow", 1, "s", 0, 0, NULL);
    t0 = now();
    MQTTAsync_send(b, "T/async/fast", 1, "f", 0, 0, NULL);
    expect(1, "fast");
    printf("fast client served while the other sleeps: %d\n", now() - t0 < 1.0);
    CHECK(now() - t0 < 1.0);
    MQTTAsync_destroy(&a);
    MQTTAsync_destroy(&b);
}

/* ---- the handle's own threads exist only while they have work ---- */

/* Threads of this process whose name starts with "mqttasync-" (a handle's command and
 * callback threads). */
#include <dirent.h>
static int handle_threads(void)
{
    DIR* d = opendir("/proc/self/task");
    struct dirent* e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
    {
        char path[300], name[64] = "";
        FILE* f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue; /* the thread has just ended */
        if (fgets(name, sizeof name, f) && strncmp(name, "mqttasync-", 10) == 0)
            ++n;
        fclose(f);
    }
    closedir(d);
    return n;
}

/* Polls until no handle thread is left (they leave after 0.5 s without work; there is no
 * event to wait on), 10 s at most; the number left. */
static int wait_no_handle_threads(void)
{
    double end = now_s() + 10;
    struct timespec t = { 0, 10 * 1000 * 1000 };
    int n;
    while ((n = handle_threads()) != 0 && now_s() < end)
        nanosleep(&t, NULL);
    return n;
}

/* onSuccess in the order the requests complete */
static char order[64];
static void on_ok_order(void* ctx, MQTTAsync_successData* r)
{
    (void)r;
    pthread_mutex_lock(&mu);
    strncat(order, (const char*)ctx, sizeof order - strlen(order) - 1);
    pthread_mutex_unlock(&mu);
    event("%s onSuccess", (const char*)ctx);
}

static MQTTAsync idle_self;
static void destroy_in_on_success(void* ctx, MQTTAsync_successData* r)
{
    (void)ctx; (void)r;
    MQTTAsync_destroy(&idle_self);
    event("destroyed from onSuccess: %d", idle_self == NULL);
}

static int after_destroy; /* callbacks that ran after MQTTAsync_destroy returned */
static int destroyed_flag;
static void count_after_destroy(void* ctx, MQTTAsync_successData* r)
{
    (void)ctx; (void)r;
    pthread_mutex_lock(&mu);
    after_destroy += destroyed_flag;
    pthread_mutex_unlock(&mu);
}
static void count_after_destroy_f(void* ctx, MQTTAsync_failureData* r)
{
    count_after_destroy(ctx, NULL);
    (void)r;
}

static void idle_threads(const char* uri)
{
    MQTTAsync a = NULL, b = NULL;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_responseOptions r;
    const char* digits[] = { "1", "2", "3", "4", "5" };
    char topic[32];
    int i;

    CHECK(MQTTAsync_create(&a, uri, "async-idle-a", MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    CHECK(MQTTAsync_create(&b, uri, "async-idle-b", MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    printf("handle threads after create: %d\n", handle_threads());
    MQTTAsync_setCallbacks(a, (void*)"a", NULL, arrived, NULL);
    co.onSuccess = on_ok;
    co.context = (void*)"connect-idle-a";
    CHECK(MQTTAsync_connect(a, &co) == 0);
    co.context = (void*)"connect-idle-b";
    CHECK(MQTTAsync_connect(b, &co) == 0);
    expect(2, "idle-connect");
    printf("handle threads once idle: %d\n", wait_no_handle_threads());

    /* requests made while idle start the command thread again; they run in order */
    order[0] = 0;
    for (i = 0; i < 5; ++i)
    {
        MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
        o.onSuccess = on_ok_order;
        o.context = (void*)digits[i];
        snprintf(topic, sizeof topic, "T/async/idle/%d", i + 1);
        CHECK(MQTTAsync_subscribe(a, topic, 1, &o) == 0);
    }
    expect(5, "idle-subs");
    printf("subscribes completed in order: %s\n", order);
    printf("handle threads once idle again: %d\n", wait_no_handle_threads());

    /* a message for an idle handle: messageArrived runs */
    CHECK(MQTTAsync_send(b, "T/async/idle/3", 4, "wake", 1, 0, NULL) == 0);
    expect(1, "idle-message");
    printf("handle threads once idle again: %d\n", wait_no_handle_threads());

    /* destroy from an onSuccess (on the callback thread, started again) */
    idle_self = a;
    r = resp("x");
    r.onSuccess = destroy_in_on_success;
    CHECK(MQTTAsync_unsubscribe(a, "T/async/idle/1", &r) == 0);
    expect(1, "idle-self-destroy");
    printf("handle threads after destroy in a callback: %d\n", wait_no_handle_threads());

    /* destroy with requests queued: their threads are joined, no callback runs after */
    for (i = 0; i < 5; ++i)
    {
        MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
        o.onSuccess = count_after_destroy;
        o.onFailure = count_after_destroy_f;
        CHECK(MQTTAsync_subscribe(b, "T/async/idle/b", 1, &o) == 0);
    }
    MQTTAsync_destroy(&b);
    pthread_mutex_lock(&mu);
    destroyed_flag = 1;
    pthread_mutex_unlock(&mu);
    printf("handle threads right after destroy: %d\n", handle_threads());
    printf("callbacks after destroy: %d\n", after_destroy);
}

int main(int argc, char** argv)
{
    MQTTAsync_nameValue* info = MQTTAsync_getVersionInfo();
    if (argc < 3)
    {
        fprintf(stderr, "usage: %s BROKER_URI CLOSED_URI\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    fprintf(stderr, "product: %s\n", info && info->name ? info->value : "?");
    errors(argv[1], argv[2]);
    v3(argv[1]);
    v5(argv[1]);
    offline(argv[1]);
    if (getenv("MQTTSYNC_EXTRAS"))
    {
        printf("--- mqttsync only\n");
        reconnect_buffer(argv[1]);
        extras(argv[1]);
        idle_threads(argv[1]);
    }
    printf("failures: %d\n", failures);
    return failures != 0;
}
