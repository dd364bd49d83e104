/* Two threads ping-pong a turn variable through one mutex and one
 * condvar: each waits (pthread_cond_wait) until it is its turn, passes
 * the turn and signals.  One op = one round trip (main -> other -> main).
 *   bench_condvar [ops=50000]
 * prints: RESULT name=condvar ops=N ns_per_op=X */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int turn;   /* 0: main's turn, 1: the other thread's */
static long ops, other_rounds;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *other(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    for (long i = 0; i < ops; i++) {
        while (turn != 1)
            pthread_cond_wait(&c, &m);
        turn = 0;
        other_rounds++;
        pthread_cond_signal(&c);
    }
    pthread_mutex_unlock(&m);
    return NULL;
}

int main(int argc, char **argv)
{
    ops = argc > 1 ? atol(argv[1]) : 50000;
    if (ops < 1)
        ops = 1;
    pthread_t t;
    if (pthread_create(&t, NULL, other, NULL) != 0)
        return 1;
    double start = now_ns();
    pthread_mutex_lock(&m);
    for (long i = 0; i < ops; i++) {
        turn = 1;
        pthread_cond_signal(&c);
        while (turn != 0)
            pthread_cond_wait(&c, &m);
    }
    pthread_mutex_unlock(&m);
    double ns = (now_ns() - start) / (double)ops;
    pthread_join(t, NULL);
    if (other_rounds != ops) {
        fprintf(stderr, "other thread did %ld rounds, want %ld\n", other_rounds, ops);
        return 1;
    }
    printf("RESULT name=condvar ops=%ld ns_per_op=%.1f\n", ops, ns);
    return 0;
}
