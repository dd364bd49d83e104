/* Mutex lock/unlock cost.
 *   bench_mutex [ops=10000000] [threads=1]
 * threads=1: uncontended lock/inc/unlock of a default mutex by one thread,
 *   measured twice: first while the program has no other thread
 *   (ns_single_threaded: glibc then drops the lock prefix of its atomics),
 *   then with a second thread alive, parked in a condvar wait (ns_per_op:
 *   the case of any threaded program, where mutexes matter);
 *   prints: RESULT name=mutex ops=N ns_per_op=X ns_single_threaded=Y
 * threads=T>1: T threads hammer one mutex, each ops/T lock/inc/unlock;
 *   the counter is checked; ns_per_op = wall time / ops (one lock+unlock
 *   of the whole program's throughput);
 *   prints: RESULT name=mutex-contended threads=T ops=N ns_per_op=X */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static long per_thread;
static atomic_int ready, go;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* the second thread of the uncontended case: parked until the end */
static pthread_mutex_t idle_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_c = PTHREAD_COND_INITIALIZER;
static int idle_stop;
static void *idle_fn(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&idle_m);
    while (!idle_stop)
        pthread_cond_wait(&idle_c, &idle_m);
    pthread_mutex_unlock(&idle_m);
    return NULL;
}

static void *hammer(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ready, 1);
    while (!atomic_load_explicit(&go, memory_order_acquire))
        sched_yield();   /* start together, after all were created */
    for (long i = 0; i < per_thread; i++) {
        pthread_mutex_lock(&m);
        counter++;
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long ops = argc > 1 ? atol(argv[1]) : 10000000;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (ops < 1)
        ops = 1;
    if (threads < 1)
        threads = 1;

    if (threads == 1) {
        double ns[2];
        pthread_t idle;
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1 && pthread_create(&idle, NULL, idle_fn, NULL) != 0)
                return 1;
            for (long i = 0; i < 10000; i++) {   /* warm up */
                pthread_mutex_lock(&m);
                pthread_mutex_unlock(&m);
            }
            counter = 0;
            double start = now_ns();
            for (long i = 0; i < ops; i++) {
                pthread_mutex_lock(&m);
                counter++;
                pthread_mutex_unlock(&m);
            }
            ns[pass] = (now_ns() - start) / (double)ops;
            if (counter != ops)
                return 1;
        }
        pthread_mutex_lock(&idle_m);
        idle_stop = 1;
        pthread_cond_signal(&idle_c);
        pthread_mutex_unlock(&idle_m);
        pthread_join(idle, NULL);
        printf("RESULT name=mutex ops=%ld ns_per_op=%.2f ns_single_threaded=%.2f\n", ops, ns[1],
               ns[0]);
        return 0;
    }

    per_thread = ops / threads;
    ops = per_thread * threads;
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    if (!t)
        return 1;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, hammer, NULL) != 0)
            return 1;
    /* wait (yielding, so that at GOMAXPROCS=1 they get to run) until all
     * threads are waiting for go */
    while (atomic_load(&ready) < threads)
        sched_yield();
    double start = now_ns();
    atomic_store_explicit(&go, 1, memory_order_release);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double ns = (now_ns() - start) / (double)ops;
    if (counter != ops) {
        fprintf(stderr, "counter %ld, want %ld\n", counter, ops);
        return 1;
    }
    printf("RESULT name=mutex-contended threads=%d ops=%ld ns_per_op=%.2f\n", threads, ops, ns);
    return 0;
}
