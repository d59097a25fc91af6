/*
 * Benchmark driver for the Paho C synchronous API (MQTTClient.h).
 *
 * One source, two libraries: compiled against Debian's Paho C (/usr/include/MQTTClient.h,
 * -lpaho-mqtt3c) it is the "paho-c" column; compiled against mqttsync's drop-in header
 * (include/MQTTClient.h, -lmqttsync) it is the "mqttsync-c" column. It uses only the
 * documented MQTTClient.h API, so no source change is needed.
 *
 * How the API is used (Paho's fastest documented way for each workload):
 * - pub, e2e cb: clients have callbacks (MQTTClient_setCallbacks), so the library's
 *   background thread reads acks; the window is kept by counting deliveryComplete calls.
 * - e2e recv: MQTTClient_receive works only while no client of the process has callbacks,
 *   so the publisher waits for its oldest token with MQTTClient_waitForCompletion.
 * - lat: no callbacks (receive + waitForCompletion); conn: without callbacks, or with
 *   them (`conn SECS cb`: create, setCallbacks, connect, as a Paho program with callbacks
 *   does; Paho C then starts its background thread in connect).
 * - idle: callbacks set, as a subscribing application has them.
 *
 * Arguments and output: see bench_common.h.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include "MQTTClient.h"
#include "bench_common.h"

#define WAIT_MS 30000UL
#define STALL_S 10.0

static char uri[128];
static char topic[96];

/* Shared by the callbacks of one process (one publisher and one subscriber at most). */
struct state {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long completed; /* deliveryComplete calls for QoS 1/2 publishes, fence excluded */
	MQTTClient_deliveryToken fence_dt;
	int fence_pending;
	int fence_done;
	long received;
	long expected; /* LONG_MAX until the publisher is done */
	double last_at;
};

static struct state st = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0,
	0, LONG_MAX, 0 };

static void conn_lost(void *ctx, char *cause)
{
	(void)ctx;
	fprintf(stderr, "FAIL: connection lost: %s\n", cause ? cause : "(no cause)");
	exit(1);
}

static int on_message(void *ctx, char *topic_name, int topic_len, MQTTClient_message *m)
{
	(void)ctx;
	(void)topic_len;
	MQTTClient_freeMessage(&m);
	MQTTClient_free(topic_name);
	pthread_mutex_lock(&st.mu);
	st.received++;
	st.last_at = now_s();
	if (st.received >= st.expected)
		pthread_cond_broadcast(&st.cv);
	pthread_mutex_unlock(&st.mu);
	return 1;
}

static void on_delivered(void *ctx, MQTTClient_deliveryToken dt)
{
	(void)ctx;
	pthread_mutex_lock(&st.mu);
	if (st.fence_pending && dt == st.fence_dt)
		st.fence_done = 1;
	else
		st.completed++;
	pthread_cond_broadcast(&st.cv);
	pthread_mutex_unlock(&st.mu);
}

static MQTTClient new_client(const char *role, int i, int window, int with_cb)
{
	MQTTClient c;
	MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
	char id[64];
	int rc;

	snprintf(id, sizeof id, "paho-%d-%s-%d", (int)getpid(), role, i);
	rc = MQTTClient_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
	if (rc != MQTTCLIENT_SUCCESS)
		die("MQTTClient_create", rc);
	if (with_cb) {
		rc = MQTTClient_setCallbacks(c, NULL, conn_lost, on_message, on_delivered);
		if (rc != MQTTCLIENT_SUCCESS)
			die("MQTTClient_setCallbacks", rc);
	}
	o.keepAliveInterval = 60;
	o.cleansession = 1;
	o.reliable = 0;
	o.MQTTVersion = MQTTVERSION_3_1_1;
	o.maxInflightMessages = window > 0 ? window : 10;
	rc = MQTTClient_connect(c, &o);
	if (rc != MQTTCLIENT_SUCCESS)
		die("MQTTClient_connect", rc);
	return c;
}

static void close_client(MQTTClient c)
{
	MQTTClient_disconnect(c, 10000);
	MQTTClient_destroy(&c);
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

/* QoS 0 only: one QoS 1 publish acknowledged proves the broker has read everything. */
static void fence_cb(MQTTClient c, const char *payload, int size)
{
	int rc;
	pthread_mutex_lock(&st.mu);
	rc = MQTTClient_publish(c, topic, size, (void *)payload, 1, 0, &st.fence_dt);
	if (rc != MQTTCLIENT_SUCCESS)
		die("fence publish", rc);
	st.fence_pending = 1;
	while (!st.fence_done)
		pthread_cond_wait(&st.cv, &st.mu);
	pthread_mutex_unlock(&st.mu);
}

/* Callback mode: publishes for secs seconds with at most `window` QoS 1/2 publishes
 * unacknowledged, then waits for all acknowledgements. Returns the count. */
static long publish_cb(MQTTClient c, int qos, const char *payload, int size, int window,
	double t0, double secs)
{
	long n = 0;
	int rc;
	while (now_s() - t0 < secs && n < max_msgs(size)) {
		MQTTClient_deliveryToken dt = 0;
		if (qos > 0) {
			pthread_mutex_lock(&st.mu);
			if (n - st.completed >= window)
				wait_at_least(&st.completed, n - window + 1, "acknowledgements");
			pthread_mutex_unlock(&st.mu);
		}
		while ((rc = MQTTClient_publish(c, topic, size, (void *)payload, qos, 0, &dt))
			== MQTTCLIENT_MAX_MESSAGES_INFLIGHT)
			sched_yield(); /* the library's count lags its callback by a moment */
		if (rc != MQTTCLIENT_SUCCESS)
			die("MQTTClient_publish", rc);
		n++;
	}
	if (qos > 0) {
		pthread_mutex_lock(&st.mu);
		wait_at_least(&st.completed, n, "acknowledgements");
		pthread_mutex_unlock(&st.mu);
	}
	return n;
}

/* No-callback mode: the window is a ring of tokens; the oldest is waited for. */
static long publish_tokens(MQTTClient c, int qos, const char *payload, int size, int window,
	double t0, double secs)
{
	MQTTClient_deliveryToken *ring = calloc(window, sizeof *ring);
	long head = 0, outstanding = 0, n = 0;
	int rc;
	while (now_s() - t0 < secs && n < max_msgs(size)) {
		MQTTClient_deliveryToken dt = 0;
		for (;;) {
			if (qos > 0 && outstanding == window) {
				rc = MQTTClient_waitForCompletion(c, ring[head % window], WAIT_MS);
				if (rc != MQTTCLIENT_SUCCESS)
					die("waitForCompletion", rc);
				head++;
				outstanding--;
			}
			rc = MQTTClient_publish(c, topic, size, (void *)payload, qos, 0, &dt);
			if (rc != MQTTCLIENT_MAX_MESSAGES_INFLIGHT)
				break;
			if (outstanding == 0)
				MQTTClient_yield();
			else
				outstanding = window; /* wait for the oldest, then retry */
		}
		if (rc != MQTTCLIENT_SUCCESS)
			die("MQTTClient_publish", rc);
		if (qos > 0) {
			ring[(head + outstanding) % window] = dt;
			outstanding++;
		}
		n++;
	}
	while (outstanding > 0) {
		rc = MQTTClient_waitForCompletion(c, ring[head % window], WAIT_MS);
		if (rc != MQTTCLIENT_SUCCESS)
			die("waitForCompletion", rc);
		head++;
		outstanding--;
	}
	free(ring);
	return n;
}

static int run_pub(int qos, int size, int window, double secs)
{
	char *payload = make_payload(size);
	MQTTClient c = new_client("pub", 0, window, 1);
	double t0 = now_s(), c0 = cpu_us();
	long n = publish_cb(c, qos, payload, size, window, t0, secs);
	if (qos == 0)
		fence_cb(c, payload, size);
	print_throughput(n, now_s() - t0, cpu_us() - c0);
	close_client(c);
	free(payload);
	return 0;
}

/* ---- end to end ------------------------------------------------------------------------- */

struct receiver {
	MQTTClient sub;
	long got;
};

static void *receive_loop(void *arg)
{
	struct receiver *r = arg;
	double last = now_s();
	for (;;) {
		char *t = NULL;
		int tl = 0;
		MQTTClient_message *m = NULL;
		int rc;
		if (r->got >= __atomic_load_n(&st.expected, __ATOMIC_ACQUIRE))
			break;
		rc = MQTTClient_receive(r->sub, &t, &tl, &m, 100);
		if (rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED)
			die("MQTTClient_receive", rc);
		if (m) {
			MQTTClient_freeMessage(&m);
			MQTTClient_free(t);
			r->got++;
			last = now_s();
		} else if (now_s() - last > STALL_S) {
			break;
		}
	}
	pthread_mutex_lock(&st.mu);
	st.received = r->got;
	st.last_at = last;
	pthread_mutex_unlock(&st.mu);
	return NULL;
}

static int run_e2e(int qos, int size, int window, double secs, const char *mode)
{
	char *payload = make_payload(size);
	int cb = strcmp(mode, "cb") == 0;
	struct receiver r = { NULL, 0 };
	MQTTClient pub;
	pthread_t th;
	double t0, c0, end;
	long n;
	int rc;

	r.sub = new_client("sub", 0, window, cb);
	rc = MQTTClient_subscribe(r.sub, topic, qos);
	if (rc != MQTTCLIENT_SUCCESS)
		die("MQTTClient_subscribe", rc);
	pub = new_client("pub", 0, window, cb);

	t0 = now_s();
	c0 = cpu_us();
	if (cb) {
		n = publish_cb(pub, qos, payload, size, window, t0, secs);
		pthread_mutex_lock(&st.mu);
		st.expected = n;
		if (st.received < n) {
			long last = st.received;
			double progress = now_s();
			while (st.received < n) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += 1;
				pthread_cond_timedwait(&st.cv, &st.mu, &ts);
				if (st.received != last) {
					last = st.received;
					progress = now_s();
				} else if (now_s() - progress > STALL_S) {
					break;
				}
			}
		}
	} else {
		pthread_create(&th, NULL, receive_loop, &r);
		n = publish_tokens(pub, qos, payload, size, window, t0, secs);
		__atomic_store_n(&st.expected, n, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
		pthread_mutex_lock(&st.mu);
	}
	end = st.last_at;
	if (st.received != n) {
		fprintf(stderr, "FAIL: lost messages: received %ld of %ld\n", st.received, n);
		exit(1);
	}
	pthread_mutex_unlock(&st.mu);
	print_throughput(n, end - t0, cpu_us() - c0);
	close_client(pub);
	close_client(r.sub);
	free(payload);
	return 0;
}

/* ---- latency, connect, idle ------------------------------------------------------------- */

static int run_lat(long count)
{
	MQTTClient c = new_client("lat", 0, 10, 0);
	long warm = count / 10 < 50 ? count / 10 : 50, i, n = 0;
	double *v = calloc(count, sizeof *v), c0, lat_start;
	char *payload = make_payload(64);
	int rc = MQTTClient_subscribe(c, topic, 1);
	if (rc != MQTTCLIENT_SUCCESS)
		die("MQTTClient_subscribe", rc);
	c0 = cpu_us();
	lat_start = now_s();
	for (i = 0; lat_going(i, warm, count, lat_start); i++) {
		MQTTClient_deliveryToken dt = 0;
		MQTTClient_message *m = NULL;
		char *t = NULL;
		int tl = 0;
		double t0 = now_s(), t1;
		rc = MQTTClient_publish(c, topic, 64, payload, 1, 0, &dt);
		if (rc != MQTTCLIENT_SUCCESS)
			die("MQTTClient_publish", rc);
		rc = MQTTClient_receive(c, &t, &tl, &m, (unsigned long)(STALL_S * 1000));
		if (rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED)
			die("MQTTClient_receive", rc);
		if (!m) {
			fprintf(stderr, "FAIL: lost messages: round trip %ld never came back\n", i);
			exit(1);
		}
		t1 = now_s();
		MQTTClient_freeMessage(&m);
		MQTTClient_free(t);
		rc = MQTTClient_waitForCompletion(c, dt, WAIT_MS);
		if (rc != MQTTCLIENT_SUCCESS)
			die("waitForCompletion", rc);
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
		MQTTClient c = new_client("conn", (int)i, 10, with_cb);
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

static int run_idle(long n)
{
	MQTTClient *cs = calloc(n, sizeof *cs);
	struct proc_mem before = proc_status(), after;
	long i;
	for (i = 0; i < n; i++)
		cs[i] = new_client("idle", (int)i, 10, 1);
	sleep_ms(1500);
	after = proc_status();
	print_idle(before, after);
	for (i = 0; i < n; i++)
		close_client(cs[i]);
	free(cs);
	return 0;
}

int main(int argc, char **argv)
{
	const char *w;
	if (argc < 4) {
		fprintf(stderr, "usage: %s pub|e2e|lat|conn|idle HOST PORT ARGS...\n", argv[0]);
		return 1;
	}
	w = argv[1];
	snprintf(uri, sizeof uri, "tcp://%s:%s", argv[2], argv[3]);
	snprintf(topic, sizeof topic, "bench/paho/%d", (int)getpid());
	if (strcmp(w, "pub") == 0 && argc == 8)
		return run_pub(atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atof(argv[7]));
	if (strcmp(w, "e2e") == 0 && argc == 9)
		return run_e2e(atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atof(argv[7]), argv[8]);
	if (strcmp(w, "lat") == 0 && argc == 5)
		return run_lat(atol(argv[4]));
	if (strcmp(w, "conn") == 0 && argc == 5)
		return run_conn(atof(argv[4]), 0);
	if (strcmp(w, "conn") == 0 && argc == 6 && strcmp(argv[5], "cb") == 0)
		return run_conn(atof(argv[4]), 1);
	if (strcmp(w, "idle") == 0 && argc == 5)
		return run_idle(atol(argv[4]));
	fprintf(stderr, "bad arguments\n");
	return 1;
}
