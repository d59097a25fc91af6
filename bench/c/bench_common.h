/*
 * Helpers shared by the C benchmark drivers (paho_bench.c, mosq_bench.c): clocks, CPU time,
 * /proc/self/status, the result line and the payload. Every driver, C or Rust, takes the
 * same arguments and prints the same RESULT line (see bench/src/main.rs):
 *
 *   PROG pub  HOST PORT QOS SIZE WINDOW SECS        publish-only for SECS seconds, then
 *                                                    wait for completion: all acks (QoS 1/2)
 *                                                    or a QoS 1 "fence" publish acked (QoS 0)
 *   PROG e2e  HOST PORT QOS SIZE WINDOW SECS MODE   publisher -> broker -> subscriber in this
 *                                                    process, publishing for SECS seconds,
 *                                                    then every message must arrive; MODE is
 *                                                    recv (blocking receive call) or cb
 *   PROG lat  HOST PORT COUNT                       QoS 1 publish -> own subscription, COUNT
 *                                                    round trips or 3 s (p50 / p99)
 *   PROG conn HOST PORT SECS [cb]                   connect + disconnect cycles for SECS;
 *                                                    cb: with callbacks set before connect
 *   PROG idle HOST PORT NCLIENTS                    N idle connected clients: RSS, threads
 *
 * Publishing stops after SECS or 256 MiB of payload, whichever comes first.
 * Throughput = messages / (first publish .. completion); the window is the number of
 * unacknowledged QoS 1/2 publishes allowed; cpu_us is getrusage(RUSAGE_SELF) user+sys over
 * the same interval, all threads of the process.
 *
 * Exit 0 with a RESULT line, 1 on failure (reason on stderr), 2 if the workload (e.g. a
 * receive mode) does not exist in this client's API.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* User + system CPU time of the whole process (all threads), in microseconds. */
static double cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec
		+ ru.ru_stime.tv_usec;
}

/* VmRSS (KiB), RssAnon (KiB: private memory, code pages excluded) and Threads of this
 * process. */
struct proc_mem {
	long rss_kb, anon_kb, threads;
};

static struct proc_mem proc_status(void)
{
	char line[256];
	struct proc_mem m = { -1, -1, -1 };
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return m;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			m.rss_kb = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "RssAnon:", 8) == 0)
			m.anon_kb = strtol(line + 8, NULL, 10);
		else if (strncmp(line, "Threads:", 8) == 0)
			m.threads = strtol(line + 8, NULL, 10);
	}
	fclose(f);
	return m;
}

/* The idle workload's result line: memory before the first client and with all connected. */
static void print_idle(struct proc_mem before, struct proc_mem after)
{
	printf("RESULT rss0_kb=%ld rss_kb=%ld anon0_kb=%ld anon_kb=%ld threads0=%ld threads=%ld\n",
		before.rss_kb, after.rss_kb, before.anon_kb, after.anon_kb, before.threads,
		after.threads);
	fflush(stdout);
	/* scripts/hot_code.py profiles what runs up to this point (create, connect, idle), not
	 * what the clients' close runs afterwards. */
	if (getenv("BENCH_IDLE_EXIT"))
		_exit(0);
	/* tests/packaging.rs reads the process's mappings here: the clients stay connected
	 * until it closes standard input. */
	if (getenv("BENCH_IDLE_HOLD")) {
		char buf[64];
		while (fread(buf, 1, sizeof buf, stdin) > 0)
			;
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* q-quantile (0..1) of n values; sorts them. */
static double quantile(double *v, int n, double q)
{
	int i;
	if (n <= 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_double);
	i = (int)(q * (n - 1) + 0.5);
	return v[i];
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "FAIL: %s (rc=%d)\n", what, rc);
	exit(1);
}

static char *make_payload(int size)
{
	char *p = malloc(size > 0 ? size : 1);
	int i;
	if (!p)
		die("malloc", 0);
	for (i = 0; i < size; i++)
		p[i] = (char)('a' + i % 26);
	return p;
}

/* Latency: COUNT round trips after the warm-up, or fewer if 3 s have passed (at least 20):
 * a client with 40 ms round trips would otherwise take minutes. */
static int lat_going(long i, long warm, long count, double start)
{
	return i < count + warm && (i < warm + 20 || now_s() - start < 3.0);
}

/* Connect cycles: at least 5, at most 2000, as many as fit in secs. */
static int keep_going(long i, double t0, double secs)
{
	return i < 5 || (i < 2000 && now_s() - t0 < secs);
}

/* A cell also stops after 256 MiB of payload, so a client that queues without bound cannot
 * take gigabytes (the same cap for every client). */
static long max_msgs(int size)
{
	return (256L << 20) / (size > 0 ? size : 1);
}

static void print_throughput(long msgs, double secs, double cpu)
{
	printf("RESULT msgs=%ld secs=%.6f cpu_us=%.1f\n", msgs, secs, cpu);
	fflush(stdout);
}

#endif
