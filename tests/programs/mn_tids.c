/* M:N proof: 1,000 threads alive at once each record the kernel thread id
 * they run on; main prints how many distinct ids there were. Natively that
 * is 1,000; under gshim it is about GOMAXPROCS (plus a few spare Ms). */
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

static int n = 1000;
static pid_t *tids;
static atomic_int started;

static void *worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    tids[i] = (pid_t)syscall(SYS_gettid);
    atomic_fetch_add_explicit(&started, 1, memory_order_release);
    /* stay alive until every thread has recorded its id */
    while (atomic_load_explicit(&started, memory_order_acquire) < n)
        sched_yield();
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        n = atoi(argv[1]);
    tids = calloc((size_t)n, sizeof *tids);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], &a, worker, (void *)(intptr_t)i) != 0) {
            printf("pthread_create %d failed\n", i);
            return 1;
        }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    qsort(tids, (size_t)n, sizeof *tids, cmp);
    int distinct = 0;
    for (int i = 0; i < n; i++)
        distinct += i == 0 || tids[i] != tids[i - 1];
    printf("threads: %d\n", n);
    printf("distinct kernel tids: %d\n", distinct);
    return 0;
}
