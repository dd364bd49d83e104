/* Demo workload: a pool of worker threads counts the primes below a limit
 * and sums them, pulling chunks of the range from a shared atomic cursor.
 *
 * Uses only pthread_create/join/self/once/keys and sched_yield (no mutexes
 * or condition variables). The result goes to stdout; the number of
 * distinct kernel threads (gettid) that ran workers goes to stderr as
 * "kernel-threads: N", so stdout is identical natively and under gshim.
 *
 *   demo_workers [limit=5000000] [threads=128] */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHUNK 10000

static long limit = 5000000;
static int nthreads = 128;

/* Small primes up to sqrt(limit), built once by whichever worker is first. */
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static uint32_t *small_primes;
static int nsmall;

static void build_table(void)
{
    long root = 1;
    while (root * root <= limit)
        root++;
    char *composite = calloc((size_t)root + 1, 1);
    small_primes = malloc(sizeof *small_primes * ((size_t)root + 1));
    for (long i = 2; i <= root; i++) {
        if (composite[i])
            continue;
        small_primes[nsmall++] = (uint32_t)i;
        for (long j = i * i; j <= root; j += i)
            composite[j] = 1;
    }
    free(composite);
}

static int is_prime(long n)
{
    if (n < 2)
        return 0;
    for (int i = 0; i < nsmall; i++) {
        long p = small_primes[i];
        if (p * p > n)
            return 1;
        if (n % p == 0)
            return n == p;
    }
    return 1;
}

/* Per-thread tally in a pthread key; its destructor folds it into the
 * totals when the thread exits (before pthread_join returns). */
struct tally {
    long count;
    uint64_t sum;
    long chunks;
};
static pthread_key_t tally_key;
static atomic_long total_count, total_chunks;
static atomic_ulong total_sum;

static void tally_flush(void *p)
{
    struct tally *t = p;
    atomic_fetch_add_explicit(&total_count, t->count, memory_order_relaxed);
    atomic_fetch_add_explicit(&total_sum, t->sum, memory_order_relaxed);
    atomic_fetch_add_explicit(&total_chunks, t->chunks, memory_order_relaxed);
    free(t);
}

static atomic_long cursor;
static pid_t *tids; /* two per worker: at start and at exit */

static void *worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    tids[2 * id] = (pid_t)syscall(SYS_gettid);
    pthread_once(&table_once, build_table);
    struct tally *t = calloc(1, sizeof *t);
    pthread_setspecific(tally_key, t);
    for (;;) {
        long lo = atomic_fetch_add_explicit(&cursor, CHUNK, memory_order_relaxed);
        if (lo >= limit)
            break;
        long hi = lo + CHUNK < limit ? lo + CHUNK : limit;
        for (long n = lo; n < hi; n++)
            if (is_prime(n)) {
                t->count++;
                t->sum += (uint64_t)n;
            }
        t->chunks++;
        sched_yield(); /* let the other workers in */
    }
    tids[2 * id + 1] = (pid_t)syscall(SYS_gettid);
    return NULL;
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        limit = atol(argv[1]);
    if (argc > 2)
        nthreads = atoi(argv[2]);
    if (limit < 1 || nthreads < 1) {
        fprintf(stderr, "usage: %s [limit] [threads]\n", argv[0]);
        return 2;
    }
    tids = calloc(2 * (size_t)nthreads + 1, sizeof *tids);
    pthread_t *th = calloc((size_t)nthreads, sizeof *th);
    if (!tids || !th || pthread_key_create(&tally_key, tally_flush) != 0)
        return 2;
    for (int i = 0; i < nthreads; i++) {
        int r = pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
        if (r != 0) {
            fprintf(stderr, "pthread_create failed for worker %d: %d\n", i, r);
            return 1;
        }
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    tids[2 * nthreads] = (pid_t)syscall(SYS_gettid);

    printf("workers: %d, limit: %ld, chunks: %ld\n", nthreads, limit,
           atomic_load(&total_chunks));
    printf("primes below limit: %ld, sum: %llu\n", atomic_load(&total_count),
           (unsigned long long)atomic_load(&total_sum));

    size_t nt = 2 * (size_t)nthreads + 1;
    qsort(tids, nt, sizeof *tids, cmp_pid);
    int distinct = 0;
    for (size_t i = 0; i < nt; i++)
        distinct += i == 0 || tids[i] != tids[i - 1];
    fprintf(stderr, "kernel-threads: %d\n", distinct);
    return 0;
}
