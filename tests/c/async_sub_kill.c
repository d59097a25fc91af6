/* A slow QoS 1/2 subscriber on MQTTAsync for tests/receive_kill.rs, killed with SIGKILL at
 * random points (the MQTTAsync twin of sub_kill.c).
 *
 *   async_sub_kill URI CLIENT_ID OUT_FILE PERSIST_DIR
 *
 * File persistence in PERSIST_DIR, cleansession = 0, subscribed to rk/1 at QoS 1 and rk/2
 * at QoS 2 (MQTTAsync_subscribeMany from the connect's onSuccess). messageArrived
 * "processes" each message: one line "<qos> <payload>\n" appended to OUT_FILE with a single
 * write(2) (whole or absent after a kill), then 2 ms of work, then it returns 1. OUT_FILE.ready
 * is created once the subscription is acknowledged. Runs until killed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "MQTTAsync.h"

static int out_fd = -1;
static const char* ready_path;
static MQTTAsync client;

static int arrived(void* ctx, char* topic, int topic_len, MQTTAsync_message* m)
{
    char line[96];
    int plen = m->payloadlen < 32 ? m->payloadlen : 32;
    int n = snprintf(line, sizeof line, "%d %.*s\n", m->qos, plen, (const char*)m->payload);
    struct timespec ts = { 0, 2 * 1000 * 1000 };
    (void)ctx;
    (void)topic_len;
    if (write(out_fd, line, (size_t)n) != n)
    {
        perror("write");
        exit(3);
    }
    nanosleep(&ts, NULL);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void subscribed(void* ctx, MQTTAsync_successData* d)
{
    int fd = open(ready_path, O_WRONLY | O_CREAT, 0644);
    (void)ctx;
    (void)d;
    if (fd >= 0)
        close(fd);
}

static void failed(void* ctx, MQTTAsync_failureData* d)
{
    fprintf(stderr, "%s failed: %d\n", (const char*)ctx, d ? d->code : -999);
    exit(1);
}

static void connected(void* ctx, MQTTAsync_successData* d)
{
    static char* topics[] = { "rk/1", "rk/2" };
    static int qos[] = { 1, 2 };
    MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
    int rc;
    (void)ctx;
    (void)d;
    r.onSuccess = subscribed;
    r.onFailure = failed;
    r.context = "subscribe";
    if ((rc = MQTTAsync_subscribeMany(client, 2, topics, qos, &r)) != MQTTASYNC_SUCCESS)
    {
        fprintf(stderr, "subscribe: %d\n", rc);
        exit(1);
    }
}

int main(int argc, char** argv)
{
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
    char ready[4096];
    int rc;
    if (argc != 5)
    {
        fprintf(stderr, "usage: async_sub_kill URI CLIENT_ID OUT_FILE PERSIST_DIR\n");
        return 2;
    }
    out_fd = open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out_fd < 0)
    {
        perror("open");
        return 2;
    }
    snprintf(ready, sizeof ready, "%s.ready", argv[3]);
    ready_path = ready;
    rc = MQTTAsync_create(&client, argv[1], argv[2], MQTTCLIENT_PERSISTENCE_DEFAULT, argv[4]);
    if (rc != MQTTASYNC_SUCCESS)
    {
        fprintf(stderr, "create: %d\n", rc);
        return 1;
    }
    if ((rc = MQTTAsync_setCallbacks(client, NULL, NULL, arrived, NULL)) != MQTTASYNC_SUCCESS)
    {
        fprintf(stderr, "setCallbacks: %d\n", rc);
        return 1;
    }
    opts.cleansession = 0;
    opts.keepAliveInterval = 20;
    opts.onSuccess = connected;
    opts.onFailure = failed;
    opts.context = "connect";
    if ((rc = MQTTAsync_connect(client, &opts)) != MQTTASYNC_SUCCESS)
    {
        fprintf(stderr, "connect: %d\n", rc);
        return 1;
    }
    for (;;)
    {
        struct timespec ts = { 1, 0 };
        nanosleep(&ts, NULL);
    }
}
