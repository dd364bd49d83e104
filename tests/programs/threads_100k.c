/* 100,000 threads alive at once: a join chain in which thread i joins
 * thread i-1, and thread 0 waits (yielding) until every thread has started.
 * Then the chain unwinds; each thread adds its index to the value it joined,
 * so the last one returns n*(n-1)/2. Run under gshim only: natively the
 * kernel's thread limits usually stop it first. */
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

static int n = 100000;
static pthread_t *t;
static atomic_int started;
static atomic_int all_created;

static void *link_fn(void *arg)
{
    intptr_t i = (intptr_t)arg;
    atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
    if (i == 0) {
        while (!atomic_load_explicit(&all_created, memory_order_acquire))
            sched_yield();
        return (void *)0;
    }
    void *prev;
    if (pthread_join(t[i - 1], &prev) != 0)
        return (void *)-1;
    if ((intptr_t)prev < 0)
        return prev;
    return (void *)((intptr_t)prev + i);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        n = atoi(argv[1]);
    t = calloc((size_t)n, sizeof *t);
    if (!t)
        return 2;
    for (int i = 0; i < n; i++) {
        int r = pthread_create(&t[i], NULL, link_fn, (void *)(intptr_t)i);
        if (r != 0) {
            printf("pthread_create %d failed: %s\n", i, strerror(r));
            atomic_store(&all_created, 1);
            return 1;
        }
    }
    /* every thread has started, so all n are alive at once */
    while (atomic_load_explicit(&started, memory_order_relaxed) < n)
        sched_yield();
    int live_peak = atomic_load(&started);
    atomic_store_explicit(&all_created, 1, memory_order_release);
    void *rv;
    pthread_join(t[n - 1], &rv);
    long long want = (long long)n * (n - 1) / 2;
    printf("threads alive at once: %d\n", live_peak);
    printf("checksum: %lld (%s)\n", (long long)(intptr_t)rv,
           (long long)(intptr_t)rv == want ? "ok" : "WRONG");
    return (long long)(intptr_t)rv == want ? 0 : 1;
}
