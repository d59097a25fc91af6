/* A slow QoS 1/2 subscriber for tests/receive_kill.rs, killed with SIGKILL at random points.
 *
 *   sub_kill URI CLIENT_ID MODE OUT_FILE PERSIST_DIR
 *
 * MODE is "callback" (messageArrived) or "receive" (MQTTClient_receive). File persistence
 * in PERSIST_DIR, cleansession = 0, subscribed to rk/1 at QoS 1 and rk/2 at QoS 2. Each
 * message is "processed": one line "<qos> <payload>\n" is appended to OUT_FILE with a single
 * write(2) (whole or absent after a kill), then the program works on it for 2 ms before it
 * takes the next one. OUT_FILE.ready is created once subscribed. Runs until killed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "MQTTClient.h"

static int out_fd = -1;

static void process(const MQTTClient_message *m) {
    char line[96];
    int plen = m->payloadlen < 32 ? m->payloadlen : 32;
    int n = snprintf(line, sizeof line, "%d %.*s\n", m->qos, plen, (const char *)m->payload);
    if (write(out_fd, line, (size_t)n) != n) {
        perror("write");
        exit(3);
    }
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static int arrived(void *ctx, char *topic, int topic_len, MQTTClient_message *m) {
    (void)ctx;
    (void)topic_len;
    process(m);
    MQTTClient_freeMessage(&m);
    MQTTClient_free(topic);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: sub_kill URI CLIENT_ID callback|receive OUT_FILE PERSIST_DIR\n");
        return 2;
    }
    int callbacks = strcmp(argv[3], "callback") == 0;
    out_fd = open(argv[4], O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out_fd < 0) {
        perror("open");
        return 2;
    }
    MQTTClient c;
    int rc = MQTTClient_create(&c, argv[1], argv[2], MQTTCLIENT_PERSISTENCE_DEFAULT, argv[5]);
    if (rc != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "create: %d\n", rc);
        return 1;
    }
    if (callbacks && (rc = MQTTClient_setCallbacks(c, NULL, NULL, arrived, NULL)) != 0) {
        fprintf(stderr, "setCallbacks: %d\n", rc);
        return 1;
    }
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
    opts.cleansession = 0;
    opts.keepAliveInterval = 20;
    if ((rc = MQTTClient_connect(c, &opts)) != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "connect: %d\n", rc);
        return 1;
    }
    char *topics[] = {"rk/1", "rk/2"};
    int qos[] = {1, 2};
    if ((rc = MQTTClient_subscribeMany(c, 2, topics, qos)) != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "subscribe: %d\n", rc);
        return 1;
    }
    char ready[4096];
    snprintf(ready, sizeof ready, "%s.ready", argv[4]);
    int fd = open(ready, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) {
        close(fd);
    }
    for (;;) {
        if (callbacks) {
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
            continue;
        }
        char *topic = NULL;
        int len = 0;
        MQTTClient_message *m = NULL;
        rc = MQTTClient_receive(c, &topic, &len, &m, 1000);
        if (rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED) {
            fprintf(stderr, "receive: %d\n", rc);
            return 1;
        }
        if (m) {
            process(m);
            MQTTClient_freeMessage(&m);
            MQTTClient_free(topic);
        }
    }
}
