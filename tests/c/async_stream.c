/*
 * An MQTTAsync publisher of a numbered stream, to be killed (SIGKILL) at any point and
 * started again (mqttsync; run by tests/capi_async.rs).
 *
 *   async_stream URI DIR ID TOTAL PROGRESS
 *
 * Publishes "seq=NNNNNN" for seq = START .. TOTAL-1 to astream/t, QoS 2 for odd seq and
 * QoS 1 for even, through the user persistence of user_store.h (DIR/ID), with
 * sendWhileDisconnected and automatic reconnect (the harness stops the broker at times),
 * at most 200 messages unfinished at a time. Prints "START n", then "DONE" once every
 * message has completed and the handle is destroyed.
 *
 * What the program knows was sent, as in tests/crash.rs: right after the store wrote a
 * record of message seq (its s- or o- record), PROGRESS says seq + 1 (written to a
 * temporary file and renamed). A message is written to the socket only after its record
 * is, so at a start every message below PROGRESS has been stored (and is in the store
 * still, resent by the library, or completed), and none at or above it nor above the
 * store's highest record ever left the process: START = max(PROGRESS, highest + 1).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "MQTTAsync.h"

#include "user_store.h"

static const char* progress_path;
static long progress;
static pthread_mutex_t progress_mu = PTHREAD_MUTEX_INITIALIZER;

/* The "seq=NNNNNN" in a record, or -1. */
static long seq_in(const char* buf, int len)
{
    int i;
    for (i = 0; i + 10 <= len; i++)
        if (memcmp(buf + i, "seq=", 4) == 0)
        {
            char digits[7];
            memcpy(digits, buf + i + 4, 6);
            digits[6] = 0;
            return atol(digits);
        }
    return -1;
}

static void write_progress(long next)
{
    char tmp[4096];
    FILE* f;
    snprintf(tmp, sizeof tmp, "%s.tmp", progress_path);
    f = fopen(tmp, "w");
    if (!f)
        abort();
    fprintf(f, "%ld\n", next);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, progress_path) != 0)
        abort();
}

static FILE* trace_file;

static void trace_remove(const char* key)
{
    if (trace_file)
        fprintf(trace_file, "%d remove %s\n", (int)getpid(), key);
}

static void after_put(const char* key, int count, char** bufs, int* lens)
{
    int i;
    if (trace_file)
    {
        long sq = -1;
        for (i = 0; i < count && sq < 0; i++)
            sq = seq_in(bufs[i], lens[i]);
        fprintf(trace_file, "%d put %s seq %ld\n", (int)getpid(), key, sq);
    }
    if (strncmp(key, "s-", 2) != 0 && strncmp(key, "o-", 2) != 0)
        return;
    for (i = 0; i < count; i++)
    {
        long seq = seq_in(bufs[i], lens[i]);
        if (seq >= 0)
        {
            pthread_mutex_lock(&progress_mu);
            if (seq + 1 > progress)
            {
                progress = seq + 1;
                write_progress(progress);
            }
            pthread_mutex_unlock(&progress_mu);
            return;
        }
    }
}

/* The highest seq among the records in DIR/ID, or -1. */
static long highest_stored(const char* dir, const char* id)
{
    char path[4096];
    long best = -1;
    DIR* d;
    struct dirent* e;
    snprintf(path, sizeof path, "%s/%s", dir, id);
    d = opendir(path);
    while (d && (e = readdir(d)) != NULL)
    {
        char file[8192], buf[1 << 16];
        FILE* f;
        int n;
        if (e->d_name[0] == '.')
            continue;
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        f = fopen(file, "rb");
        if (!f)
            continue;
        n = (int)fread(buf, 1, sizeof buf, f);
        fclose(f);
        if (seq_in(buf, n) > best)
            best = seq_in(buf, n);
    }
    if (d)
        closedir(d);
    return best;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int connected;

static void on_connect(void* ctx, MQTTAsync_successData* d)
{
    (void)ctx; (void)d;
    pthread_mutex_lock(&mu);
    connected = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void on_connect_fail(void* ctx, MQTTAsync_failureData* d)
{
    (void)ctx;
    fprintf(stderr, "connect failed: %d\n", d ? d->code : -999);
    exit(3);
}

static int pending(MQTTAsync c)
{
    MQTTAsync_token* t = NULL;
    int n = 0;
    if (MQTTAsync_getPendingTokens(c, &t) != MQTTASYNC_SUCCESS)
        return 1 << 30;
    while (t && t[n] != -1)
        n++;
    MQTTAsync_free(t);
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int main(int argc, char** argv)
{
    MQTTAsync c;
    MQTTAsync_createOptions o = MQTTAsync_createOptions_initializer;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    const char *uri, *dir, *id;
    long total, start, seq, waited = 0;
    FILE* f;
    int rc;

    if (argc != 6)
    {
        fprintf(stderr, "usage: %s URI DIR ID TOTAL PROGRESS\n", argv[0]);
        return 2;
    }
    uri = argv[1]; dir = argv[2]; id = argv[3]; total = atol(argv[4]); progress_path = argv[5];
    setvbuf(stdout, NULL, _IOLBF, 0);
    f = fopen(progress_path, "r");
    if (f)
    {
        if (fscanf(f, "%ld", &progress) != 1)
            progress = 0;
        fclose(f);
    }
    start = progress;
    if (highest_stored(dir, id) + 1 > start)
        start = highest_stored(dir, id) + 1;
    after_put_hook = after_put;
    if (getenv("AS_TRACE"))
    {
        trace_file = fopen(getenv("AS_TRACE"), "a");
        setvbuf(trace_file, NULL, _IOLBF, 0);
        before_remove_hook = trace_remove;
        fprintf(trace_file, "%d start %ld\n", (int)getpid(), start);
    }

    o.sendWhileDisconnected = 1;
    o.maxBufferedMessages = 100000;
    user_store.context = (void*)dir;
    rc = MQTTAsync_createWithOptions(&c, uri, id, MQTTCLIENT_PERSISTENCE_USER, &user_store, &o);
    if (rc != MQTTASYNC_SUCCESS)
    {
        fprintf(stderr, "create: %d\n", rc);
        return 3;
    }
    co.cleansession = 0;
    co.keepAliveInterval = 20;
    co.automaticReconnect = 1;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 1;
    co.onSuccess = on_connect;
    co.onFailure = on_connect_fail;
    if (MQTTAsync_connect(c, &co) != MQTTASYNC_SUCCESS)
        return 3;
    pthread_mutex_lock(&mu);
    while (!connected)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    printf("START %ld\n", start);

    for (seq = start; seq < total; seq++)
    {
        char payload[32];
        snprintf(payload, sizeof payload, "seq=%06ld", seq);
        while (pending(c) >= 200)
            sleep_ms(1);
        while ((rc = MQTTAsync_send(c, "astream/t", (int)strlen(payload), payload,
                    seq % 2 ? 2 : 1, 0, NULL)) != MQTTASYNC_SUCCESS)
        {
            if (trace_file)
                fprintf(trace_file, "%d send %ld rc %d\n", (int)getpid(), seq, rc);
            if (++waited > 60000)
            {
                fprintf(stderr, "send %ld: %d\n", seq, rc);
                return 4;
            }
            sleep_ms(1);
        }
    }
    while (pending(c) > 0)
    {
        if (++waited > 60000)
        {
            fprintf(stderr, "%d messages never completed\n", pending(c));
            return 4;
        }
        sleep_ms(1);
    }
    {
        MQTTAsync_disconnectOptions dc = MQTTAsync_disconnectOptions_initializer;
        dc.timeout = 1000;
        MQTTAsync_disconnect(c, &dc);
        sleep_ms(100);
    }
    MQTTAsync_destroy(&c);
    printf("DONE\n");
    return 0;
}
