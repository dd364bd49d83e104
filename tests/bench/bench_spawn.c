/* Create + join of short threads, one at a time.
 *   bench_spawn [ops=20000]
 * prints: RESULT name=spawn ops=N ns_per_op=X */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *noop(void *arg) { return arg; }

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long ops = argc > 1 ? atol(argv[1]) : 20000;
    if (ops < 1)
        ops = 1;
    pthread_t t;
    for (int i = 0; i < 100; i++) { /* warm up: stacks, caches */
        if (pthread_create(&t, NULL, noop, NULL) != 0)
            return 1;
        pthread_join(t, NULL);
    }
    double start = now_ns();
    for (long i = 0; i < ops; i++) {
        int r = pthread_create(&t, NULL, noop, (void *)(intptr_t)i);
        if (r != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(r));
            return 1;
        }
        void *rv;
        pthread_join(t, &rv);
        if (rv != (void *)(intptr_t)i)
            return 1;
    }
    double ns = (now_ns() - start) / (double)ops;
    printf("RESULT name=spawn ops=%ld ns_per_op=%.1f\n", ops, ns);
    return 0;
}
