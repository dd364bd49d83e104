/* 1,000 threads, each yielding while it computes a little, all joined;
 * prints a checksum of their results. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NTHREADS 1000

static void *worker(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg, h = id * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 20; i++) {
        for (int j = 0; j < 100; j++)
            h = (h ^ (h >> 29)) * 0xBF58476D1CE4E5B9ull + (uint64_t)j;
        sched_yield();
    }
    return (void *)(uintptr_t)h;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : NTHREADS;
    pthread_t *t = calloc((size_t)n, sizeof *t);
    if (!t)
        return 2;
    for (int i = 0; i < n; i++) {
        int r = pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
        if (r != 0) {
            printf("pthread_create %d failed: %d\n", i, r);
            return 1;
        }
    }
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        sum = sum * 31 + (uint64_t)(uintptr_t)rv;
    }
    printf("threads: %d, checksum: %016llx\n", n, (unsigned long long)sum);
    free(t);
    return 0;
}
