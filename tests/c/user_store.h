/*
 * A user persistence (MQTTCLIENT_PERSISTENCE_USER) for the test programs: one file per
 * record in DIR/ID, written with fsync; hooks let a test slow a write down, watch what is
 * written or end the process at a removal. Include once, after MQTTAsync.h or
 * MQTTClient.h; needs _POSIX_C_SOURCE 200809L.
 */
#ifndef MQTTSYNC_TEST_USER_STORE_H
#define MQTTSYNC_TEST_USER_STORE_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* Hooks a test program may set: called before a record is written (`key`), after it was
 * written (the parts as given), and before one is removed. */
static void (*before_put_hook)(const char* key);
static void (*after_put_hook)(const char* key, int count, char** bufs, int* lens);
static void (*before_remove_hook)(const char* key);

static char* path_of(void* handle, const char* key)
{
    size_t n = strlen(handle) + strlen(key) + 2;
    char* p = malloc(n);
    snprintf(p, n, "%s/%s", (char*)handle, key);
    return p;
}

static int up_open(void** handle, const char* client_id, const char* server_uri, void* context)
{
    size_t n = strlen(context) + strlen(client_id) + 2;
    char* d = malloc(n);
    (void)server_uri;
    snprintf(d, n, "%s/%s", (char*)context, client_id);
    if (mkdir(d, 0700) != 0 && errno != EEXIST)
    {
        free(d);
        return MQTTCLIENT_PERSISTENCE_ERROR;
    }
    *handle = d;
    return 0;
}

static int up_close(void* handle)
{
    free(handle);
    return 0;
}

static int up_put(void* handle, char* key, int count, char** bufs, int* lens)
{
    char* p;
    if (before_put_hook)
        before_put_hook(key);
    p = path_of(handle, key);
    FILE* f = fopen(p, "wb");
    int i, ok = f != NULL;
    for (i = 0; ok && i < count; i++)
        ok = fwrite(bufs[i], 1, (size_t)lens[i], f) == (size_t)lens[i];
    if (f)
        ok = (fflush(f) == 0 && fsync(fileno(f)) == 0 && fclose(f) == 0) && ok;
    free(p);
    if (ok && after_put_hook)
        after_put_hook(key, count, bufs, lens);
    return ok ? 0 : MQTTCLIENT_PERSISTENCE_ERROR;
}

static int up_get(void* handle, char* key, char** buffer, int* len)
{
    char* p = path_of(handle, key);
    FILE* f = fopen(p, "rb");
    long n;
    free(p);
    if (!f)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    *buffer = malloc(n > 0 ? (size_t)n : 1);
    *len = (int)fread(*buffer, 1, (size_t)n, f);
    fclose(f);
    return 0;
}

static int up_remove(void* handle, char* key)
{
    char* p;
    if (before_remove_hook)
        before_remove_hook(key);
    p = path_of(handle, key);
    unlink(p);
    free(p);
    return 0;
}

static int up_keys(void* handle, char*** keys, int* nkeys)
{
    DIR* d = opendir(handle);
    struct dirent* e;
    int n = 0, cap = 16;
    char** out = malloc(cap * sizeof *out);
    while (d && (e = readdir(d)) != NULL)
    {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap)
            out = realloc(out, (cap *= 2) * sizeof *out);
        out[n++] = strdup(e->d_name);
    }
    if (d)
        closedir(d);
    *keys = out;
    *nkeys = n;
    return 0;
}

static int up_clear(void* handle)
{
    char** keys;
    int i, n;
    up_keys(handle, &keys, &n);
    for (i = 0; i < n; i++)
    {
        char* p = path_of(handle, keys[i]);
        unlink(p);
        free(p);
        free(keys[i]);
    }
    free(keys);
    return 0;
}

static int up_containskey(void* handle, char* key)
{
    char* p = path_of(handle, key);
    int r = access(p, F_OK) == 0 ? 0 : MQTTCLIENT_PERSISTENCE_ERROR;
    free(p);
    return r;
}

static MQTTClient_persistence user_store = {
    NULL, up_open, up_close, up_put, up_get, up_remove, up_keys, up_clear, up_containskey
};

/* MQTTAsync_create's persistence arguments: file persistence in DIR, or the user
 * persistence above with AP_USER_STORE. */
static inline int store_type(void)
{
    return getenv("AP_USER_STORE") ? MQTTCLIENT_PERSISTENCE_USER : MQTTCLIENT_PERSISTENCE_DEFAULT;
}

static inline void* store_context(const char* dir)
{
    if (!getenv("AP_USER_STORE"))
        return (void*)dir;
    user_store.context = (void*)dir;
    return &user_store;
}

#endif
