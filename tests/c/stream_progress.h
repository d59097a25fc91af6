/*
 * What a stream publisher killed at any point knows it sent (async_stream.c,
 * client_stream.c), as in tests/crash.rs: right after the store (user_store.h) wrote a
 * record holding message seq (payload "seq=NNNNNN"; its s-, s5- or o- record), PROGRESS says
 * seq + 1 (written to a temporary file, synced and renamed). A message is written to the
 * socket only after its record is, so at a start every message below PROGRESS has been
 * stored (and is in the store still, resent by the library, or completed), and none at or
 * above it nor above the store's highest record ever left the process:
 * start = max(PROGRESS, highest + 1) (stream_start).
 *
 * With AS_TRACE set, every record written and removed is logged to that file.
 * Include after user_store.h.
 */
#ifndef MQTTSYNC_TEST_STREAM_PROGRESS_H
#define MQTTSYNC_TEST_STREAM_PROGRESS_H

#include <pthread.h>
#include <time.h>

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

static void trace_put_begin(const char* key)
{
    if (trace_file)
        fprintf(trace_file, "%d begin put %s\n", (int)getpid(), key);
}

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
    if (strncmp(key, "s-", 2) != 0 && strncmp(key, "s5-", 3) != 0 && strncmp(key, "o-", 2) != 0)
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

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Where a run starts (see above); installs the store hooks. */
static long stream_start(const char* dir, const char* id, const char* progress_file)
{
    FILE* f;
    long start;
    progress_path = progress_file;
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
        before_put_hook = trace_put_begin;
        fprintf(trace_file, "%d start %ld\n", (int)getpid(), start);
    }
    return start;
}

/* A stream publisher's arguments (URI DIR ID TOTAL PROGRESS; exit status 2 for a wrong
 * count): stdout line-buffered, the user store's directory set, the store hooks installed
 * (stream_start). Returns where the run starts. */
static long stream_args(int argc, char** argv, const char** uri, const char** dir,
                        const char** id, long* total)
{
    if (argc != 6)
    {
        fprintf(stderr, "usage: %s URI DIR ID TOTAL PROGRESS\n", argv[0]);
        exit(2);
    }
    *uri = argv[1]; *dir = argv[2]; *id = argv[3]; *total = atol(argv[4]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    user_store.context = (void*)*dir;
    return stream_start(*dir, *id, argv[5]);
}

#endif
