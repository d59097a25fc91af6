/*
 * Benchmark driver for Debian's libmosquitto, used the threaded way (mosquitto_loop_start:
 * one network thread per client, results through callbacks). libmosquitto has no blocking
 * receive call, so `e2e ... recv` exits 2 (not in this API). TCP_NODELAY is turned on
 * (MOSQ_OPT_TCP_NODELAY) as the other clients do by default.
 *
 * Arguments and output: see bench_common.h.
 */
#include <pthread.h>
#include <mosquitto.h>
#include "bench_common.h"

#define STALL_S 10.0

static const char *host;
static int port;
static char topic[96];

struct ctx {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int connected; /* 0 waiting, 1 ok, -1 refused */
	int subscribed;
	long acked;    /* on_publish calls (QoS 0: written; QoS 1/2: acknowledged) */
	long received; /* on_message calls */
	int fence_mid;
	int fence_done;
	double last_at;
};

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
	struct ctx *c = obj;
	(void)m;
	pthread_mutex_lock(&c->mu);
	c->connected = rc == 0 ? 1 : -1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
	struct ctx *c = obj;
	(void)m;
	pthread_mutex_lock(&c->mu);
	if (c->fence_mid && mid == c->fence_mid)
		c->fence_done = 1;
	else
		c->acked++;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	struct ctx *c = obj;
	(void)m;
	(void)msg;
	pthread_mutex_lock(&c->mu);
	c->received++;
	c->last_at = now_s();
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
	struct ctx *c = obj;
	(void)m;
	(void)mid;
	(void)n;
	(void)granted;
	pthread_mutex_lock(&c->mu);
	c->subscribed = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
	(void)m;
	(void)obj;
	if (rc != 0) {
		fprintf(stderr, "FAIL: connection lost (rc=%d)\n", rc);
		exit(1);
	}
}

/* Waits (c->mu held) until *field >= target; fails after STALL_S without progress. */
static void wait_for(struct ctx *c, volatile long *field, long target, const char *what)
{
	long last = *field;
	double progress = now_s();
	while (*field < target) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		if (*field != last) {
			last = *field;
			progress = now_s();
		} else if (now_s() - progress > STALL_S) {
			fprintf(stderr, "FAIL: %s: %ld of %ld\n", what, *field, target);
			exit(1);
		}
	}
}

static struct mosquitto *new_client(struct ctx *c, const char *role, int i, int window)
{
	char id[64];
	struct mosquitto *m;
	int rc;
	memset(c, 0, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	snprintf(id, sizeof id, "mosq-%d-%s-%d", (int)getpid(), role, i);
	m = mosquitto_new(id, true, c);
	if (!m)
		die("mosquitto_new", 0);
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_max_inflight_messages_set(m, window > 0 ? (unsigned)window : 20);
	mosquitto_connect_callback_set(m, on_connect);
	mosquitto_publish_callback_set(m, on_publish);
	mosquitto_message_callback_set(m, on_message);
	mosquitto_subscribe_callback_set(m, on_subscribe);
	mosquitto_disconnect_callback_set(m, on_disconnect);
	rc = mosquitto_connect(m, host, port, 60);
	if (rc != MOSQ_ERR_SUCCESS)
		die("mosquitto_connect", rc);
	rc = mosquitto_loop_start(m);
	if (rc != MOSQ_ERR_SUCCESS)
		die("mosquitto_loop_start", rc);
	pthread_mutex_lock(&c->mu);
	{
		double until = now_s() + STALL_S;
		while (c->connected == 0 && now_s() < until) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		}
	}
	pthread_mutex_unlock(&c->mu);
	if (c->connected == 0) {
		/* Seen with ~340 clients: each takes a socket and a socket pair, and the network
		 * thread's select() cannot watch descriptors past FD_SETSIZE (1024). */
		fprintf(stderr, "FAIL: client %d (%s) got no CONNACK within %.0f s (socket fd %d)\n",
			i, role, STALL_S, mosquitto_socket(m));
		exit(1);
	}
	if (c->connected < 0)
		die("CONNACK refused", 0);
	return m;
}

static void close_client(struct mosquitto *m)
{
	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, false);
	mosquitto_destroy(m);
}

/* Publishes for secs seconds. libmosquitto queues without bound beyond its in-flight limit,
 * so the window is also kept here: at most `window` QoS 1/2 publishes unacknowledged (QoS 0:
 * at most QOS0_QUEUE not yet written). Then waits for all; returns the count. */
#define QOS0_QUEUE 1000
static long publish_all(struct mosquitto *m, struct ctx *c, int qos, const char *payload,
	int size, int window, double t0, double secs, int fence)
{
	long n = 0, limit = qos > 0 ? window : QOS0_QUEUE;
	int rc;
	while (now_s() - t0 < secs && n < max_msgs(size)) {
		pthread_mutex_lock(&c->mu);
		if (n - c->acked >= limit)
			wait_for(c, &c->acked, n - limit + 1, "publishes completed");
		pthread_mutex_unlock(&c->mu);
		rc = mosquitto_publish(m, NULL, topic, size, payload, qos, false);
		if (rc != MOSQ_ERR_SUCCESS)
			die("mosquitto_publish", rc);
		n++;
	}
	pthread_mutex_lock(&c->mu);
	wait_for(c, &c->acked, n, "publishes completed");
	pthread_mutex_unlock(&c->mu);
	if (qos == 0 && fence) {
		int mid = 0;
		/* The mid is known only after the call returns; hold the lock so on_publish
		 * cannot run before fence_mid is set. */
		pthread_mutex_lock(&c->mu);
		rc = mosquitto_publish(m, &mid, topic, size, payload, 1, false);
		if (rc != MOSQ_ERR_SUCCESS)
			die("fence publish", rc);
		c->fence_mid = mid;
		while (!c->fence_done)
			pthread_cond_wait(&c->cv, &c->mu);
		pthread_mutex_unlock(&c->mu);
	}
	return n;
}

static int run_pub(int qos, int size, int window, double secs)
{
	struct ctx c;
	char *payload = make_payload(size);
	struct mosquitto *m = new_client(&c, "pub", 0, window);
	double t0 = now_s(), c0 = cpu_us();
	long n = publish_all(m, &c, qos, payload, size, window, t0, secs, 1);
	print_throughput(n, now_s() - t0, cpu_us() - c0);
	close_client(m);
	free(payload);
	return 0;
}

static int run_e2e(int qos, int size, int window, double secs, const char *mode)
{
	struct ctx sc, pc;
	struct mosquitto *sub, *pub;
	char *payload;
	double t0, c0, end;
	long count;
	int rc;
	if (strcmp(mode, "cb") != 0) {
		fprintf(stderr, "libmosquitto has no blocking receive\n");
		return 2;
	}
	payload = make_payload(size);
	sub = new_client(&sc, "sub", 0, window);
	rc = mosquitto_subscribe(sub, NULL, topic, qos);
	if (rc != MOSQ_ERR_SUCCESS)
		die("mosquitto_subscribe", rc);
	pthread_mutex_lock(&sc.mu);
	while (!sc.subscribed)
		pthread_cond_wait(&sc.cv, &sc.mu);
	pthread_mutex_unlock(&sc.mu);
	pub = new_client(&pc, "pub", 0, window);
	t0 = now_s();
	c0 = cpu_us();
	count = publish_all(pub, &pc, qos, payload, size, window, t0, secs, 0);
	pthread_mutex_lock(&sc.mu);
	{
		long last = sc.received;
		double progress = now_s();
		while (sc.received < count) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&sc.cv, &sc.mu, &ts);
			if (sc.received != last) {
				last = sc.received;
				progress = now_s();
			} else if (now_s() - progress > STALL_S) {
				fprintf(stderr, "FAIL: lost messages: received %ld of %ld\n", sc.received,
					count);
				exit(1);
			}
		}
	}
	end = sc.last_at;
	pthread_mutex_unlock(&sc.mu);
	print_throughput(count, end - t0, cpu_us() - c0);
	close_client(pub);
	close_client(sub);
	free(payload);
	return 0;
}

static int run_lat(long count)
{
	struct ctx c;
	struct mosquitto *m = new_client(&c, "lat", 0, 10);
	long warm = count / 10 < 50 ? count / 10 : 50, i, n = 0;
	double *v = calloc(count, sizeof *v), c0, lat_start;
	char *payload = make_payload(64);
	int rc = mosquitto_subscribe(m, NULL, topic, 1);
	if (rc != MOSQ_ERR_SUCCESS)
		die("mosquitto_subscribe", rc);
	pthread_mutex_lock(&c.mu);
	while (!c.subscribed)
		pthread_cond_wait(&c.cv, &c.mu);
	pthread_mutex_unlock(&c.mu);
	c0 = cpu_us();
	lat_start = now_s();
	for (i = 0; lat_going(i, warm, count, lat_start); i++) {
		double t0 = now_s(), t1;
		pthread_mutex_lock(&c.mu);
		rc = mosquitto_publish(m, NULL, topic, 64, payload, 1, false);
		if (rc != MOSQ_ERR_SUCCESS)
			die("mosquitto_publish", rc);
		wait_for(&c, &c.received, i + 1, "lost messages: round trips back");
		t1 = now_s();
		wait_for(&c, &c.acked, i + 1, "PUBACKs");
		pthread_mutex_unlock(&c.mu);
		if (i >= warm)
			v[n++] = (t1 - t0) * 1e6;
	}
	{
		double cpu = cpu_us() - c0;
		double p50 = quantile(v, n, 0.50), p99 = quantile(v, n, 0.99);
		double p10 = quantile(v, n, 0.10);
		printf("RESULT p50_us=%.1f p99_us=%.1f cpu_us=%.1f msgs=%ld p10_us=%.1f\n", p50, p99,
			cpu, n, p10);
	}
	close_client(m);
	free(v);
	free(payload);
	return 0;
}

static int run_conn(double secs)
{
	double *cv = calloc(2000, sizeof *cv), *dv = calloc(2000, sizeof *dv), start = now_s();
	long i;
	for (i = 0; keep_going(i, start, secs); i++) {
		struct ctx c;
		double t0 = now_s(), t1, t2;
		struct mosquitto *m = new_client(&c, "conn", (int)i, 10);
		t1 = now_s();
		close_client(m);
		t2 = now_s();
		cv[i] = (t1 - t0) * 1e6;
		dv[i] = (t2 - t1) * 1e6;
	}
	printf("RESULT connect_us=%.1f disconnect_us=%.1f cycles=%ld\n", quantile(cv, i, 0.5),
		quantile(dv, i, 0.5), i);
	free(cv);
	free(dv);
	return 0;
}

static int run_idle(long n)
{
	struct mosquitto **ms = calloc(n, sizeof *ms);
	struct ctx *cs = calloc(n, sizeof *cs);
	struct proc_mem before = proc_status(), after;
	long i;
	for (i = 0; i < n; i++)
		ms[i] = new_client(&cs[i], "idle", (int)i, 10);
	sleep_ms(1500);
	after = proc_status();
	print_idle(before, after);
	for (i = 0; i < n; i++)
		close_client(ms[i]);
	free(ms);
	free(cs);
	return 0;
}

int main(int argc, char **argv)
{
	const char *w;
	int rc;
	if (argc < 4) {
		fprintf(stderr, "usage: %s pub|e2e|lat|conn|idle HOST PORT ARGS...\n", argv[0]);
		return 1;
	}
	w = argv[1];
	host = argv[2];
	port = atoi(argv[3]);
	snprintf(topic, sizeof topic, "bench/mosq/%d", (int)getpid());
	mosquitto_lib_init();
	if (strcmp(w, "pub") == 0 && argc == 8)
		rc = run_pub(atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atof(argv[7]));
	else if (strcmp(w, "e2e") == 0 && argc == 9)
		rc = run_e2e(atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atof(argv[7]), argv[8]);
	else if (strcmp(w, "lat") == 0 && argc == 5)
		rc = run_lat(atol(argv[4]));
	else if (strcmp(w, "conn") == 0 && (argc == 5 || (argc == 6 && strcmp(argv[5], "cb") == 0)))
		rc = run_conn(atof(argv[4])); /* callbacks are always set (new_client) */
	else if (strcmp(w, "idle") == 0 && argc == 5)
		rc = run_idle(atol(argv[4]));
	else {
		fprintf(stderr, "bad arguments\n");
		rc = 1;
	}
	mosquitto_lib_cleanup();
	return rc;
}
