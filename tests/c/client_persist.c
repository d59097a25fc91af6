/*
 * Persistence across a process restart (tests/capi_client.rs drives it):
 *   client_persist publish KIND URI DIR CLIENTID
 *     connects (cleansession 0), prints "ready", waits for DIR/go (the harness freezes the
 *     broker first), publishes three QoS 1/2 messages that cannot be acknowledged, checks
 *     they are pending, and exits abruptly (_exit, no disconnect);
 *   client_persist resend KIND URI DIR CLIENTID
 *     connects with the same client id and cleansession 0: the stored messages are resent;
 *     disconnect waits for their completion, after which the store must be empty.
 *   client_persist withdraw user URI DIR CLIENTID
 *     connects with a command timeout of 5 s and a store that takes 6 s to write each s-
 *     record: one thread publishes p1 (QoS 1), another p2 100 ms later, which the client
 *     cannot take on record within the command timeout: MQTTClient_publish returns
 *     MQTTCLIENT_MAX_MESSAGES_INFLIGHT and the message is never sent. p2 is published
 *     again after p1's publish returned; prints "withdrawn: RC" and "again: RC", then
 *     disconnects (both delivered by then).
 * KIND is "file" (MQTTCLIENT_PERSISTENCE_DEFAULT, context DIR) or "user"
 * (MQTTCLIENT_PERSISTENCE_USER with the callbacks below, one file per key in DIR/user/<id>).
 */
#include <pthread.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "MQTTClient.h"

#define CHECK(cond) do { if (!(cond)) { printf("CHECK FAILED line %d: %s\n", __LINE__, #cond); \
    fflush(stdout); failures++; } } while (0)

static int failures = 0;
static char user_root[2048];
static int user_calls[8];

/* ---- user persistence: one file per key ---- */

static char* join(const char* dir, const char* name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char* p = (char*)malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int u_open(void** handle, const char* clientID, const char* serverURI, void* context)
{
    char* dir;
    (void)serverURI;
    user_calls[0]++;
    mkdir((const char*)context, 0700);
    dir = join((const char*)context, clientID);
    if (dir == NULL)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    mkdir(dir, 0700);
    *handle = dir;
    return 0;
}

static int u_close(void* handle)
{
    user_calls[1]++;
    free(handle);
    return 0;
}

static long put_ms; /* withdraw: a slow disk for s- records */

static int u_put(void* handle, char* key, int bufcount, char* buffers[], int buflens[])
{
    char* path = join((char*)handle, key);
    FILE* f;
    int i, rc = 0;
    user_calls[2]++;
    if (put_ms > 0 && strncmp(key, "s-", 2) == 0)
    {
        struct timespec ts = { put_ms / 1000, (put_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (path == NULL || (f = fopen(path, "wb")) == NULL)
    {
        free(path);
        return MQTTCLIENT_PERSISTENCE_ERROR;
    }
    for (i = 0; i < bufcount; i++)
        if (fwrite(buffers[i], 1, (size_t)buflens[i], f) != (size_t)buflens[i])
            rc = MQTTCLIENT_PERSISTENCE_ERROR;
    if (fclose(f) != 0)
        rc = MQTTCLIENT_PERSISTENCE_ERROR;
    free(path);
    return rc;
}

static int u_get(void* handle, char* key, char** buffer, int* buflen)
{
    char* path = join((char*)handle, key);
    FILE* f;
    long n;
    char* buf;
    user_calls[3]++;
    if (path == NULL || (f = fopen(path, "rb")) == NULL)
    {
        free(path);
        return MQTTCLIENT_PERSISTENCE_ERROR;
    }
    free(path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (char*)MQTTClient_malloc(n > 0 ? (size_t)n : 1); /* the library frees it */
    if (buf == NULL || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n))
    {
        free(buf);
        fclose(f);
        return MQTTCLIENT_PERSISTENCE_ERROR;
    }
    fclose(f);
    *buffer = buf;
    *buflen = (int)n;
    return 0;
}

static int u_remove(void* handle, char* key)
{
    char* path = join((char*)handle, key);
    int rc;
    user_calls[4]++;
    rc = (path && unlink(path) == 0) ? 0 : MQTTCLIENT_PERSISTENCE_ERROR;
    free(path);
    return rc;
}

static int u_keys(void* handle, char*** keys, int* nkeys)
{
    DIR* d = opendir((char*)handle);
    struct dirent* e;
    int n = 0, cap = 8;
    char** k;
    user_calls[5]++;
    *keys = NULL;
    *nkeys = 0;
    if (d == NULL)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    k = (char**)malloc((size_t)cap * sizeof(char*));
    while (k && (e = readdir(d)) != NULL)
    {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap)
        {
            char** k2 = (char**)realloc(k, (size_t)(cap *= 2) * sizeof(char*));
            if (k2 == NULL)
                break;
            k = k2;
        }
        k[n] = (char*)malloc(strlen(e->d_name) + 1);
        if (k[n])
            strcpy(k[n++], e->d_name);
    }
    closedir(d);
    if (n == 0)
    {
        free(k);
        return 0;
    }
    *keys = k; /* the library frees each key and the array */
    *nkeys = n;
    return 0;
}

static int u_clear(void* handle)
{
    char** keys = NULL;
    int n = 0, i;
    user_calls[6]++;
    if (u_keys(handle, &keys, &n) != 0)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    for (i = 0; i < n; i++)
    {
        u_remove(handle, keys[i]);
        free(keys[i]);
    }
    free(keys);
    return 0;
}

static int u_containskey(void* handle, char* key)
{
    char* path = join((char*)handle, key);
    int rc;
    user_calls[7]++;
    rc = (path && access(path, F_OK) == 0) ? 0 : MQTTCLIENT_PERSISTENCE_ERROR;
    free(path);
    return rc;
}

static int count_files(const char* dir)
{
    DIR* d = opendir(dir);
    struct dirent* e;
    int n = 0;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static int p2_rc = 99;

static void* publish_p2(void* c)
{
    struct timespec t = { 0, 100000000L }; /* p1's publish is inside its store write */
    nanosleep(&t, NULL);
    p2_rc = MQTTClient_publish((MQTTClient)c, "T/persist", 2, "p2", 1, 0, NULL);
    return NULL;
}

int main(int argc, char** argv)
{
    const char *mode, *kind, *uri, *dir, *id;
    MQTTClient c = NULL;
    MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
    MQTTClient_persistence user;
    int rc, i, user_kind;
    MQTTClient_deliveryToken restored[8];
    int restored_n = 0;
    char go[4096], client_dir[4096];

    if (argc < 6) { fprintf(stderr, "usage\n"); return 2; }
    mode = argv[1]; kind = argv[2]; uri = argv[3]; dir = argv[4]; id = argv[5];
    setvbuf(stdout, NULL, _IOLBF, 0);
    user_kind = strcmp(kind, "user") == 0;
    snprintf(user_root, sizeof user_root, "%s/user", dir);
    snprintf(client_dir, sizeof client_dir, "%s/%s", user_root, id);
    snprintf(go, sizeof go, "%s/go", dir);

    memset(&user, 0, sizeof user);
    user.context = user_root;
    user.popen = u_open; user.pclose = u_close; user.pput = u_put; user.pget = u_get;
    user.premove = u_remove; user.pkeys = u_keys; user.pclear = u_clear;
    user.pcontainskey = u_containskey;

    if (user_kind)
        rc = MQTTClient_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_USER, &user);
    else
        rc = MQTTClient_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_DEFAULT, (void*)dir);
    CHECK(rc == 0);
    if (user_kind)
        CHECK(user_calls[0] == 1); /* opened at create, as Paho */
    o.cleansession = 0;
    if (strcmp(mode, "resend") == 0)
    {
        /* The Paho contract: messages left in flight by the killed run have tokens right
         * after create, before any connect. */
        MQTTClient_deliveryToken* pending = NULL;
        CHECK(MQTTClient_getPendingDeliveryTokens(c, &pending) == 0);
        CHECK(pending != NULL);
        while (pending && pending[restored_n] != -1 && restored_n < 8)
        {
            restored[restored_n] = pending[restored_n];
            restored_n++;
        }
        CHECK(restored_n == 3);
        MQTTClient_free(pending);
    }
    if (strcmp(mode, "withdraw") == 0)
        CHECK(MQTTClient_setCommandTimeout(c, 5000) == 0); /* the least; publish: from the connect */
    rc = MQTTClient_connect(c, &o);
    CHECK(rc == 0);

    if (strcmp(mode, "withdraw") == 0)
    {
        pthread_t th;
        MQTTClient_deliveryToken dt = 0;
        put_ms = 6000;
        CHECK(pthread_create(&th, NULL, publish_p2, c) == 0);
        CHECK(MQTTClient_publish(c, "T/persist", 2, "p1", 1, 0, &dt) == 0);
        pthread_join(th, NULL);
        printf("withdrawn: %d\n", p2_rc);
        put_ms = 0;
        printf("again: %d\n", MQTTClient_publish(c, "T/persist", 2, "p2", 1, 0, NULL));
        CHECK(MQTTClient_waitForCompletion(c, dt, 10000) == 0);
        CHECK(MQTTClient_disconnect(c, 10000) == 0); /* waits for p2 */
        CHECK(count_files(client_dir) == 0);
        MQTTClient_destroy(&c);
        printf("failures: %d\n", failures);
        return failures != 0;
    }

    if (strcmp(mode, "publish") == 0)
    {
        MQTTClient_deliveryToken dt[3];
        MQTTClient_deliveryToken* pending = NULL;
        const char* payloads[3] = { "p1", "p2", "p3" };
        int qos[3] = { 1, 2, 1 };
        struct timespec t = { 0, 20000000 };
        int waited = 0, n = 0;

        printf("ready\n");
        while (access(go, F_OK) != 0 && waited++ < 1500) /* the harness's barrier, 30 s max */
            nanosleep(&t, NULL);
        CHECK(access(go, F_OK) == 0);
        for (i = 0; i < 3; i++)
        {
            dt[i] = 0;
            CHECK(MQTTClient_publish(c, "T/persist", 2, payloads[i], qos[i], 0, &dt[i]) == 0);
            CHECK(dt[i] > 0);
        }
        CHECK(MQTTClient_waitForCompletion(c, dt[0], 200) == MQTTCLIENT_FAILURE); /* frozen */
        CHECK(MQTTClient_getPendingDeliveryTokens(c, &pending) == 0);
        CHECK(pending != NULL);
        while (pending && pending[n] != -1)
            n++;
        CHECK(n == 3);
        MQTTClient_free(pending);
        if (user_kind)
            CHECK(count_files(client_dir) >= 3);
        printf("published %d\nfailures: %d\n", n, failures);
        fflush(stdout);
        _exit(0); /* crash-like exit: no disconnect, no destroy */
    }

    /* resend: each restored message completes under its token */
    for (i = 0; i < restored_n; i++)
        CHECK(MQTTClient_waitForCompletion(c, restored[i], 10000) == MQTTCLIENT_SUCCESS);
    {
        MQTTClient_deliveryToken* pending = NULL;
        CHECK(MQTTClient_getPendingDeliveryTokens(c, &pending) == 0);
        CHECK(pending == NULL);
        MQTTClient_free(pending);
    }
    CHECK(MQTTClient_disconnect(c, 10000) == 0); /* waits for the resent messages */
    if (user_kind)
        CHECK(count_files(client_dir) == 0);
    MQTTClient_destroy(&c);
    if (user_kind)
        CHECK(user_calls[1] == 1); /* closed at destroy */
    printf("resent\nfailures: %d\n", failures);
    return 0;
}
