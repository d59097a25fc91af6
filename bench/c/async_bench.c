/*
 * Benchmark driver for the Paho C asynchronous API (MQTTAsync.h).
 *
 * One source, two libraries: compiled against Debian's Paho C (/usr/include/MQTTAsync.h,
 * -lpaho-mqtt3as) it is the "paho-async" column; compiled against mqttsync's drop-in header
 * (include/MQTTAsync.h, -lmqttsync) it is the "mqttsync-async" column. Only the documented
 * MQTTAsync.h API is used, so no source change is needed.
 *
 * How the API is used:
 * - every request (connect, subscribe, publish, disconnect) is completed through its
 *   onSuccess / onFailure callback; the calling thread waits on a condition variable;
 * - pub, e2e: the window is the number of publishes whose onSuccess has not come yet (for
 *   QoS 0, whose onSuccess says the library has taken the message, 1000, the cap of the
 *   other drivers for QoS 0 publishes not yet written); a publish refused because the
 *   library's queue is full (MQTTASYNC_MAX_BUFFERED_MESSAGES) is retried;
 * - e2e: messages arrive in messageArrived; MQTTAsync has no receive call, so the "recv"
 *   mode does not exist (exit 2);
 * - lat: publish -> own subscription, the message "in hand" when messageArrived runs;
 * - conn: create + connect (until onSuccess), then disconnect (until onSuccess) + destroy;
 *   `conn SECS cb` sets the callbacks (setCallbacks) before connecting;
 * - burst COUNT N: COUNT times, N QoS 0 publishes of 64 B sent at once, then every
 *   onSuccess awaited (a Paho C++ program that waits for its tokens); the p50 and p99 of
 *   the time from the first send to the last onSuccess. Not part of the runner's tables.
 *
 * Arguments and output: see bench_common.h.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include "MQTTAsync.h"
#include "bench_common.h"

#define STALL_S 10.0
#define QOS0_WINDOW 1000

static char uri[128];
static char topic[96];

/* Shared by the callbacks of one process (one publisher and one subscriber at most). */
struct state {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long completed; /* onSuccess of publishes, fence excluded */
	long fence_done;
	long received;
	long expected; /* LONG_MAX until the publisher is done */
	double last_at; /* when the last message arrived */
};

static struct state st = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0,
	LONG_MAX, 0 };

/* One request waited for by the calling thread. */
struct op {
	int done;
	int rc;
};

static void op_ok(void *ctx, MQTTAsync_successData *d)
{
	struct op *o = ctx;
	(void)d;
	pthread_mutex_lock(&st.mu);
	o->done = 1;
	o->rc = 0;
	pthread_cond_broadcast(&st.cv);
	pthread_mutex_unlock(&st.mu);
}

static void op_fail(void *ctx, MQTTAsync_failureData *d)
{
	struct op *o = ctx;
	pthread_mutex_lock(&st.mu);
	o->done = 1;
	o->rc = d ? (d->code ? d->code : -1) : -1;
	pthread_cond_broadcast(&st.cv);
	pthread_mutex_unlock(&st.mu);
}

/* Waits for the request's callback; fails after STALL_S. */
static void op_wait(struct op *o, const char *what)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += (time_t)STALL_S;
	pthread_mutex_lock(&st.mu);
	while (!o->done)
		if (pthread_cond_timedwait(&st.cv, &st.mu, &dl) != 0)
			break;
	pthread_mutex_unlock(&st.mu);
	if (!o->done)
		die(what, -1000);
	if (o->rc != 0)
		die(what, o->rc);
}

static void conn_lost(void *ctx, char *cause)
{
	(void)ctx;
	fprintf(stderr, "FAIL: connection lost: %s\n", cause ? cause : "(no cause)");
	exit(1);
}

static int on_message(void *ctx, char *topic_name, int topic_len, MQTTAsync_message *m)
{
	(void)ctx;
	(void)topic_len;
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic_name);
	pthread_mutex_lock(&st.mu);
	st.received++;
	st.last_at = now_s();
	pthread_cond_broadcast(&st.cv);
	pthread_mutex_unlock(&st.mu);
	return 1;
}

static void pub_ok(void *ctx, MQTTAsync_successData *d)
{
	(void)ctx;
	(void)d;
	pthread_mutex_lock(&st.mu);
	st.completed++;
	pthread_cond_broadcast(&st.cv);
	pthread_mutex_unlock(&st.mu);
}

static void pub_fail(void *ctx, MQTTAsync_failureData *d)
{
	(void)ctx;
	fprintf(stderr, "FAIL: publish onFailure (code=%d)\n", d ? d->code : 0);
	exit(1);
}

static void fence_ok(void *ctx, MQTTAsync_successData *d)
{
	(void)ctx;
	(void)d;
	pthread_mutex_lock(&st.mu);
	st.fence_done = 1;
	pthread_cond_broadcast(&st.cv);
	pthread_mutex_unlock(&st.mu);
}

static MQTTAsync new_client(const char *role, int i, int window, int with_cb)
{
	MQTTAsync c;
	MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
	struct op op = { 0, 0 };
	char id[64];
	int rc;

	snprintf(id, sizeof id, "pahoa-%d-%s-%d", (int)getpid(), role, i);
	rc = MQTTAsync_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
	if (rc != MQTTASYNC_SUCCESS)
		die("MQTTAsync_create", rc);
	if (with_cb) {
		rc = MQTTAsync_setCallbacks(c, NULL, conn_lost, on_message, NULL);
		if (rc != MQTTASYNC_SUCCESS)
			die("MQTTAsync_setCallbacks", rc);
	}
	o.keepAliveInterval = 60;
	o.cleansession = 1;
	o.MQTTVersion = MQTTVERSION_3_1_1;
	o.maxInflight = window > 0 ? window : 10;
	o.onSuccess = op_ok;
	o.onFailure = op_fail;
	o.context = &op;
	rc = MQTTAsync_connect(c, &o);
	if (rc != MQTTASYNC_SUCCESS)
		die("MQTTAsync_connect", rc);
	op_wait(&op, "connect");
	return c;
}

static void close_client(MQTTAsync c)
{
	MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
	struct op op = { 0, 0 };
	int rc;
	o.timeout = 10000;
	o.onSuccess = op_ok;
	o.onFailure = op_fail;
	o.context = &op;
	rc = MQTTAsync_disconnect(c, &o);
	if (rc != MQTTASYNC_SUCCESS)
		die("MQTTAsync_disconnect", rc);
	op_wait(&op, "disconnect");
	MQTTAsync_destroy(&c);
}

static void subscribe(MQTTAsync c, int qos)
{
	MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
	struct op op = { 0, 0 };
	int rc;
	r.onSuccess = op_ok;
	r.onFailure = op_fail;
	r.context = &op;
	rc = MQTTAsync_subscribe(c, topic, qos, &r);
	if (rc != MQTTASYNC_SUCCESS)
		die("MQTTAsync_subscribe", rc);
	op_wait(&op, "subscribe");
}

/* Waits (st.mu held) until *v >= target, failing after STALL_S without progress. */
static void wait_at_least(long *v, long target, const char *what)
{
	long last = *v;
	double progress = now_s();
	while (*v < target) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&st.cv, &st.mu, &ts);
		if (*v != last) {
			last = *v;
			progress = now_s();
		} else if (now_s() - progress > STALL_S) {
			fprintf(stderr, "FAIL: %s: %ld of %ld\n", what, *v, target);
			exit(1);
		}
	}
}

/* One publish; a full library queue is waited out (yielding). */
static void send_one(MQTTAsync c, const char *payload, int size, int qos,
	MQTTAsync_responseOptions *r)
{
	int rc;
	double since = 0;
	while ((rc = MQTTAsync_send(c, topic, size, (void *)payload, qos, 0, r))
		== MQTTASYNC_MAX_BUFFERED_MESSAGES) {
		if (since == 0)
			since = now_s();
		else if (now_s() - since > STALL_S)
			break;
		sched_yield();
	}
	if (rc != MQTTASYNC_SUCCESS)
		die("MQTTAsync_send", rc);
}

/* QoS 0 only: one QoS 1 publish acknowledged proves the broker has read everything. */
static void fence(MQTTAsync c, const char *payload, int size)
{
	MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
	r.onSuccess = fence_ok;
	r.onFailure = pub_fail;
	send_one(c, payload, size, 1, &r);
	pthread_mutex_lock(&st.mu);
	wait_at_least(&st.fence_done, 1, "onSuccess of the fence");
	pthread_mutex_unlock(&st.mu);
}

/* Publishes for secs seconds with at most `window` publishes whose onSuccess has not come,
 * then waits for every onSuccess. Returns the count. */
static long publish(MQTTAsync c, int qos, const char *payload, int size, int window,
	double t0, double secs)
{
	MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
	long n = 0;
	if (qos == 0)
		window = QOS0_WINDOW;
	r.onSuccess = pub_ok;
	r.onFailure = pub_fail;
	while (now_s() - t0 < secs && n < max_msgs(size)) {
		pthread_mutex_lock(&st.mu);
		if (n - st.completed >= window)
			wait_at_least(&st.completed, n - window + 1, "onSuccess of publishes");
		pthread_mutex_unlock(&st.mu);
		send_one(c, payload, size, qos, &r);
		n++;
	}
	pthread_mutex_lock(&st.mu);
	wait_at_least(&st.completed, n, "onSuccess of publishes");
	pthread_mutex_unlock(&st.mu);
	return n;
}

static int run_pub(int qos, int size, int window, double secs)
{
	char *payload = make_payload(size);
	MQTTAsync c = new_client("pub", 0, window, 1);
	double t0 = now_s(), c0 = cpu_us();
	long n = publish(c, qos, payload, size, window, t0, secs);
	if (qos == 0)
		fence(c, payload, size);
	print_throughput(n, now_s() - t0, cpu_us() - c0);
	close_client(c);
	free(payload);
	return 0;
}

/* ---- end to end ------------------------------------------------------------------------- */

static int run_e2e(int qos, int size, int window, double secs, const char *mode)
{
	char *payload;
	MQTTAsync pub, sub;
	double t0, c0, end;
	long n;

	if (strcmp(mode, "cb") != 0)
		return 2; /* no receive call in MQTTAsync */
	payload = make_payload(size);
	sub = new_client("sub", 0, window, 1);
	subscribe(sub, qos);
	pub = new_client("pub", 0, window, 1);

	t0 = now_s();
	c0 = cpu_us();
	n = publish(pub, qos, payload, size, window, t0, secs);
	pthread_mutex_lock(&st.mu);
	st.expected = n;
	if (st.received < n)
		wait_at_least(&st.received, n, "lost messages: received");
	end = st.last_at;
	if (st.received != n) {
		fprintf(stderr, "FAIL: lost messages: received %ld of %ld\n", st.received, n);
		exit(1);
	}
	pthread_mutex_unlock(&st.mu);
	print_throughput(n, end - t0, cpu_us() - c0);
	close_client(pub);
	close_client(sub);
	free(payload);
	return 0;
}

/* ---- latency, connect, idle ------------------------------------------------------------- */

static int run_lat(long count)
{
	MQTTAsync c = new_client("lat", 0, 10, 1);
	MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
	long warm = count / 10 < 50 ? count / 10 : 50, i, n = 0;
	double *v = calloc(count, sizeof *v), c0, lat_start;
	char *payload = make_payload(64);
	subscribe(c, 1);
	r.onSuccess = pub_ok;
	r.onFailure = pub_fail;
	c0 = cpu_us();
	lat_start = now_s();
	for (i = 0; lat_going(i, warm, count, lat_start); i++) {
		double t0 = now_s(), t1;
		send_one(c, payload, 64, 1, &r);
		pthread_mutex_lock(&st.mu);
		wait_at_least(&st.received, i + 1, "lost messages: round trip");
		t1 = st.last_at;
		/* the acknowledgement is awaited between round trips (untimed) */
		wait_at_least(&st.completed, i + 1, "onSuccess of publishes");
		pthread_mutex_unlock(&st.mu);
		if (i >= warm)
			v[n++] = (t1 - t0) * 1e6;
	}
	{
		double cpu = cpu_us() - c0;
		double p50 = quantile(v, n, 0.50), p99 = quantile(v, n, 0.99);
		printf("RESULT p50_us=%.1f p99_us=%.1f cpu_us=%.1f msgs=%ld\n", p50, p99, cpu, n);
	}
	close_client(c);
	free(v);
	free(payload);
	return 0;
}

static int run_burst(long count, long burst)
{
	MQTTAsync c = new_client("burst", 0, QOS0_WINDOW, 1);
	MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
	long warm = count / 10 < 50 ? count / 10 : 50, i, k, n = 0;
	double *v = calloc(count, sizeof *v), c0, start;
	char *payload = make_payload(64);
	r.onSuccess = pub_ok;
	r.onFailure = pub_fail;
	c0 = cpu_us();
	start = now_s();
	for (i = 0; lat_going(i, warm, count, start); i++) {
		double t0 = now_s(), t1;
		for (k = 0; k < burst; k++)
			send_one(c, payload, 64, 0, &r);
		pthread_mutex_lock(&st.mu);
		wait_at_least(&st.completed, (i + 1) * burst, "onSuccess of publishes");
		pthread_mutex_unlock(&st.mu);
		t1 = now_s();
		if (i >= warm)
			v[n++] = (t1 - t0) * 1e6;
	}
	printf("RESULT p50_us=%.1f p99_us=%.1f cpu_us=%.1f msgs=%ld\n", quantile(v, n, 0.50),
		quantile(v, n, 0.99), cpu_us() - c0, n);
	close_client(c);
	free(v);
	free(payload);
	return 0;
}

static int run_conn(double secs, int with_cb)
{
	double *cv = calloc(2000, sizeof *cv), *dv = calloc(2000, sizeof *dv), start = now_s();
	long i;
	for (i = 0; keep_going(i, start, secs); i++) {
		double t0 = now_s(), t1, t2;
		MQTTAsync c = new_client("conn", (int)i, 10, with_cb);
		t1 = now_s();
		close_client(c);
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

/* Idle clients: every connect is started, then every onSuccess awaited (the asynchronous
 * way; one after the other Paho's client takes about 0.1 s per connect and 0.2 s per
 * disconnect), and the same for the disconnects. */
static int run_idle(long n)
{
	MQTTAsync *cs = calloc(n, sizeof *cs);
	struct op *ops = calloc(n, sizeof *ops);
	struct proc_mem before = proc_status(), after;
	long i;
	int rc;
	for (i = 0; i < n; i++) {
		MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
		char id[64];
		snprintf(id, sizeof id, "pahoa-%d-idle-%ld", (int)getpid(), i);
		rc = MQTTAsync_create(&cs[i], uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
		if (rc != MQTTASYNC_SUCCESS)
			die("MQTTAsync_create", rc);
		o.keepAliveInterval = 60;
		o.cleansession = 1;
		o.MQTTVersion = MQTTVERSION_3_1_1;
		o.onSuccess = op_ok;
		o.onFailure = op_fail;
		o.context = &ops[i];
		rc = MQTTAsync_connect(cs[i], &o);
		if (rc != MQTTASYNC_SUCCESS)
			die("MQTTAsync_connect", rc);
	}
	for (i = 0; i < n; i++)
		op_wait(&ops[i], "connect");
	/* as paho_bench.c: past the 0.5 s after which idle library threads leave */
	sleep_ms(1500);
	after = proc_status();
	print_idle(before, after);
	for (i = 0; i < n; i++) {
		MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
		ops[i].done = 0;
		o.timeout = 10000;
		o.onSuccess = op_ok;
		o.onFailure = op_fail;
		o.context = &ops[i];
		rc = MQTTAsync_disconnect(cs[i], &o);
		if (rc != MQTTASYNC_SUCCESS)
			die("MQTTAsync_disconnect", rc);
	}
	for (i = 0; i < n; i++) {
		op_wait(&ops[i], "disconnect");
		MQTTAsync_destroy(&cs[i]);
	}
	free(ops);
	free(cs);
	return 0;
}

int main(int argc, char **argv)
{
	const char *w;
	if (argc < 4) {
		fprintf(stderr, "usage: %s pub|e2e|lat|burst|conn|idle HOST PORT ARGS...\n", argv[0]);
		return 1;
	}
	w = argv[1];
	snprintf(uri, sizeof uri, "tcp://%s:%s", argv[2], argv[3]);
	snprintf(topic, sizeof topic, "bench/pahoa/%d", (int)getpid());
	if (strcmp(w, "pub") == 0 && argc == 8)
		return run_pub(atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atof(argv[7]));
	if (strcmp(w, "e2e") == 0 && argc == 9)
		return run_e2e(atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atof(argv[7]), argv[8]);
	if (strcmp(w, "lat") == 0 && argc == 5)
		return run_lat(atol(argv[4]));
	if (strcmp(w, "burst") == 0 && argc == 6)
		return run_burst(atol(argv[4]), atol(argv[5]));
	if (strcmp(w, "conn") == 0 && argc == 5)
		return run_conn(atof(argv[4]), 0);
	if (strcmp(w, "conn") == 0 && argc == 6 && strcmp(argv[5], "cb") == 0)
		return run_conn(atof(argv[4]), 1);
	if (strcmp(w, "idle") == 0 && argc == 5)
		return run_idle(atol(argv[4]));
	fprintf(stderr, "bad arguments\n");
	return 1;
}
