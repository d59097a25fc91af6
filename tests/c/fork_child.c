/*
 * fork() after using the library (tests/capi_client.rs): the parent creates, connects,
 * publishes, disconnects and destroys a client, then forks while its finished client
 * threads wait for reuse; the child creates a new client, connects, publishes at
 * QoS 1 and waits for completion; the parent does the same again after the child is done.
 *   fork_child URI
 * Prints "failures: N" last (the child's result is folded into the parent's).
 */
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "MQTTClient.h"

#define CHECK(cond) do { if (!(cond)) { printf("[%ld] CHECK FAILED line %d: %s\n", \
    (long)getpid(), __LINE__, #cond); fflush(stdout); failures++; } } while (0)

static int failures = 0;

static void round_trip(const char* uri, const char* who)
{
    MQTTClient c = NULL;
    MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
    MQTTClient_deliveryToken t = 0;
    char id[64];
    snprintf(id, sizeof id, "fork-%s-%ld", who, (long)getpid());
    CHECK(MQTTClient_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL) == 0);
    CHECK(MQTTClient_connect(c, &o) == MQTTCLIENT_SUCCESS);
    CHECK(MQTTClient_publish(c, "fork/t", 2, "hi", 1, 0, &t) == MQTTCLIENT_SUCCESS);
    CHECK(MQTTClient_waitForCompletion(c, t, 5000) == MQTTCLIENT_SUCCESS);
    CHECK(MQTTClient_disconnect(c, 1000) == MQTTCLIENT_SUCCESS);
    MQTTClient_destroy(&c);
}

int main(int argc, char** argv)
{
    pid_t pid;
    int status = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: fork_child URI\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    round_trip(argv[1], "parent");
    {
        /* The scenario: fork while the finished client's threads wait for reuse (they
         * linger up to 1 s); 100 ms lets them reach the pool. */
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    pid = fork();
    if (pid == 0) {
        alarm(20); /* a hang is a failure, not a stuck test */
        round_trip(argv[1], "child");
        printf("child done\n");
        _exit(failures != 0);
    }
    CHECK(pid > 0);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    round_trip(argv[1], "parent2");
    printf("failures: %d\n", failures);
    return failures != 0;
}
