/* Two threads ping-pong a shared turn variable; each yields while it is
 * not its turn. One op = one round trip (main -> other -> main).
 *   bench_yield [ops=100000]
 * prints: RESULT name=yield ops=N ns_per_op=X */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static atomic_int turn; /* 0: main's turn, 1: the other thread's */
static long ops;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *other(void *arg)
{
    (void)arg;
    for (long i = 0; i < ops; i++) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != 1)
            sched_yield();
        atomic_store_explicit(&turn, 0, memory_order_release);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    ops = argc > 1 ? atol(argv[1]) : 100000;
    if (ops < 1)
        ops = 1;
    pthread_t t;
    if (pthread_create(&t, NULL, other, NULL) != 0)
        return 1;
    double start = now_ns();
    for (long i = 0; i < ops; i++) {
        atomic_store_explicit(&turn, 1, memory_order_release);
        while (atomic_load_explicit(&turn, memory_order_acquire) != 0)
            sched_yield();
    }
    double ns = (now_ns() - start) / (double)ops;
    pthread_join(t, NULL);
    printf("RESULT name=yield ops=%ld ns_per_op=%.1f\n", ops, ns);
    return 0;
}
