/* Many threads alive at once: thread i joins thread i-1; thread 0 waits
 * (yielding) until main has created them all, then the chain unwinds.
 * Natively pthread_create may fail (EAGAIN: pid_max, vm.max_map_count,
 * RLIMIT_NPROC) before the target; that is reported, not an error.
 *   bench_100k [threads=100000] [stack_kib=0 (default attributes)]
 * prints: RESULT name=threads-100k requested=N created=K complete=0|1
 *         wall_ms=X maxrss_kib=Y kib_per_thread=Z */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static pthread_t *t;
static atomic_int all_created;

static void *link_fn(void *arg)
{
    intptr_t i = (intptr_t)arg;
    if (i == 0) {
        while (!atomic_load_explicit(&all_created, memory_order_acquire))
            sched_yield();
        return (void *)0;
    }
    void *prev;
    if (pthread_join(t[i - 1], &prev) != 0)
        return (void *)-1;
    return (intptr_t)prev < 0 ? prev : (void *)((intptr_t)prev + i);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    long stack_kib = argc > 2 ? atol(argv[2]) : 0;
    if (n < 1)
        n = 1;
    t = calloc((size_t)n, sizeof *t);
    if (!t)
        return 1;
    pthread_attr_t attr, *ap = NULL;
    if (stack_kib > 0) {
        pthread_attr_init(&attr);
        if (pthread_attr_setstacksize(&attr, (size_t)stack_kib * 1024) != 0) {
            fprintf(stderr, "bad stack size\n");
            return 1;
        }
        ap = &attr;
    }
    double start = now_ms();
    long created = 0;
    int err = 0;
    for (; created < n; created++) {
        err = pthread_create(&t[created], ap, link_fn, (void *)(intptr_t)created);
        if (err != 0)
            break;
    }
    if (err)
        fprintf(stderr, "pthread_create #%ld: %s (stopping there)\n", created, strerror(err));
    atomic_store_explicit(&all_created, 1, memory_order_release);
    void *rv = NULL;
    if (created > 0)
        pthread_join(t[created - 1], &rv);
    double wall = now_ms() - start;
    long long want = (long long)created * (created - 1) / 2;
    if ((long long)(intptr_t)rv != want) {
        fprintf(stderr, "wrong checksum %lld, want %lld\n", (long long)(intptr_t)rv, want);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT name=threads-100k requested=%ld created=%ld complete=%d wall_ms=%.1f "
           "maxrss_kib=%ld kib_per_thread=%.2f\n",
           n, created, created == n, wall, ru.ru_maxrss,
           created ? (double)ru.ru_maxrss / (double)created : 0.0);
    return 0;
}
