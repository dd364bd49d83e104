/* Many threads waiting on one condvar: each thread locks the mutex,
 * counts itself, and waits until main broadcasts; main creates them all,
 * waits until every created thread waits, broadcasts once, joins all.
 * Natively pthread_create may fail (EAGAIN: pid_max, vm.max_map_count,
 * RLIMIT_NPROC) before the target; that is reported, not an error.
 *   bench_100k_cond [threads=100000] [stack_kib=0 (default attributes)]
 * prints: RESULT name=threads-100k-cond requested=N created=K complete=0|1
 *         wall_ms=X wake_ms=W maxrss_kib=Y kib_per_thread=Z
 * wall_ms: first create to last join; wake_ms: broadcast to last join. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;       /* the crowd waits here */
static pthread_cond_t all_in = PTHREAD_COND_INITIALIZER;  /* main waits here */
static long waiting, target = -1, woke;
static int go;

static void *waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    if (++waiting == target)
        pthread_cond_signal(&all_in);
    while (!go)
        pthread_cond_wait(&c, &m);
    woke++;
    pthread_mutex_unlock(&m);
    return NULL;
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
    pthread_t *t = calloc((size_t)n, sizeof *t);
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
        err = pthread_create(&t[created], ap, waiter, NULL);
        if (err != 0)
            break;
    }
    if (err)
        fprintf(stderr, "pthread_create #%ld: %s (stopping there)\n", created, strerror(err));
    pthread_mutex_lock(&m);
    target = created;
    while (waiting < created)
        pthread_cond_wait(&all_in, &m);
    double bcast = now_ms();
    go = 1;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    for (long i = 0; i < created; i++)
        pthread_join(t[i], NULL);
    double end = now_ms();
    if (woke != created) {
        fprintf(stderr, "%ld threads woke, want %ld\n", woke, created);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT name=threads-100k-cond requested=%ld created=%ld complete=%d wall_ms=%.1f "
           "wake_ms=%.1f maxrss_kib=%ld kib_per_thread=%.2f\n",
           n, created, created == n, end - start, end - bcast, ru.ru_maxrss,
           created ? (double)ru.ru_maxrss / (double)created : 0.0);
    return 0;
}
