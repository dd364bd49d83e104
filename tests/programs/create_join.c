/* create/join basics: return values, detached threads, pthread_exit,
 * joining an exited thread, tryjoin/timedjoin, EDEADLK, EINVAL, detaching
 * an exited thread, pthread_equal/pthread_self.
 *
 * Threads wait for each other only with atomics + sched_yield (mutexes and
 * condvars are tested elsewhere). Output is deterministic. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "prog.h"


static void wait_flag(atomic_int *f)
{
    while (!atomic_load_explicit(f, memory_order_acquire))
        sched_yield();
}

static void yield_n(int n)
{
    for (int i = 0; i < n; i++)
        sched_yield();
}

/* --- joinable threads returning values --- */
static void *ret_value(void *arg)
{
    intptr_t i = (intptr_t)arg;
    yield_n((int)i);
    return (void *)(i * 10);
}

/* --- detached threads --- */
static atomic_int detached_done;
static void *detached_fn(void *arg)
{
    yield_n((int)(intptr_t)arg);
    atomic_fetch_add_explicit(&detached_done, 1, memory_order_release);
    return NULL;
}

/* --- pthread_exit with a value, from a nested call --- */
static volatile int really_exit = 1;
static void nested_exit(int depth)
{
    if (depth == 0) {
        if (really_exit)
            pthread_exit((void *)(intptr_t)4242);
        return;
    }
    nested_exit(depth - 1);
    printf("FAIL: returned from pthread_exit\n");
}
static void *exit_fn(void *arg)
{
    (void)arg;
    nested_exit(3);
    return (void *)1;
}

/* --- a thread that signals it is about to finish --- */
static void *finish_fn(void *arg)
{
    atomic_store_explicit((atomic_int *)arg, 1, memory_order_release);
    return (void *)7;
}

/* --- a thread that waits until released --- */
struct gate {
    atomic_int started;
    atomic_int release;
};
static void *gated_fn(void *arg)
{
    struct gate *g = arg;
    atomic_store_explicit(&g->started, 1, memory_order_release);
    wait_flag(&g->release);
    return (void *)99;
}

/* --- pthread_self / pthread_equal / EDEADLK from a thread --- */
static pthread_t seen_self;
static void *self_fn(void *arg)
{
    (void)arg;
    seen_self = pthread_self();
    if (!pthread_equal(seen_self, pthread_self()))
        return (void *)1;
    if (pthread_join(pthread_self(), NULL) != EDEADLK)
        return (void *)2;
    return (void *)0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t t[8];
    void *rv;

    /* 1. joinable threads returning values */
    for (intptr_t i = 0; i < 8; i++)
        CHECK(pthread_create(&t[i], NULL, ret_value, (void *)i) == 0);
    printf("join values:");
    for (int i = 0; i < 8; i++) {
        CHECK(pthread_join(t[i], &rv) == 0);
        printf(" %ld", (long)(intptr_t)rv);
    }
    printf("\n");

    /* 2. detached threads, completion seen through an atomic */
    for (intptr_t i = 0; i < 8; i++) {
        CHECK(pthread_create(&t[i], NULL, detached_fn, (void *)i) == 0);
        CHECK(pthread_detach(t[i]) == 0);
    }
    while (atomic_load_explicit(&detached_done, memory_order_acquire) < 8)
        sched_yield();
    printf("detached done: %d\n", atomic_load(&detached_done));

    /* 3. pthread_exit with a value */
    CHECK(pthread_create(&t[0], NULL, exit_fn, NULL) == 0);
    CHECK(pthread_join(t[0], &rv) == 0);
    printf("pthread_exit value: %ld\n", (long)(intptr_t)rv);

    /* 4. joining a thread that already finished */
    atomic_int fin = 0;
    CHECK(pthread_create(&t[0], NULL, finish_fn, &fin) == 0);
    wait_flag(&fin);
    yield_n(100);
    CHECK(pthread_join(t[0], &rv) == 0);
    printf("join exited thread: %ld\n", (long)(intptr_t)rv);

    /* 5. pthread_tryjoin_np: EBUSY while running, then 0 */
    struct gate g = { 0, 0 };
    CHECK(pthread_create(&t[0], NULL, gated_fn, &g) == 0);
    wait_flag(&g.started);
    int r = pthread_tryjoin_np(t[0], &rv);
    printf("tryjoin running: %s\n", ename(r));
    atomic_store_explicit(&g.release, 1, memory_order_release);
    for (long spins = 0; (r = pthread_tryjoin_np(t[0], &rv)) == EBUSY; spins++) {
        if (spins > 100000000L)
            break;
        sched_yield();
    }
    printf("tryjoin finished: %s value %ld\n", ename(r), (long)(intptr_t)rv);

    /* 6. pthread_timedjoin_np: ETIMEDOUT, then success */
    struct gate g2 = { 0, 0 };
    struct timespec ts;
    CHECK(pthread_create(&t[0], NULL, gated_fn, &g2) == 0);
    wait_flag(&g2.started);
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    r = pthread_timedjoin_np(t[0], &rv, &ts);
    printf("timedjoin short: %s\n", ename(r));
    atomic_store_explicit(&g2.release, 1, memory_order_release);
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    rv = NULL;
    r = pthread_timedjoin_np(t[0], &rv, &ts);
    printf("timedjoin long: %s value %ld\n", ename(r), (long)(intptr_t)rv);

    /* 7. EDEADLK: joining self, from main and from a thread */
    printf("join self (main): %s\n", ename(pthread_join(pthread_self(), NULL)));
    CHECK(pthread_create(&t[0], NULL, self_fn, NULL) == 0);
    pthread_t created = t[0];
    CHECK(pthread_join(t[0], &rv) == 0);
    printf("self checks in thread: %ld\n", (long)(intptr_t)rv);

    /* 8. pthread_equal / pthread_self consistency */
    printf("equal(created, seen self): %d\n", pthread_equal(created, seen_self) != 0);
    printf("equal(main, created): %d\n", pthread_equal(pthread_self(), created) != 0);
    printf("equal(main, main): %d\n", pthread_equal(pthread_self(), pthread_self()) != 0);

    /* 9. EINVAL joining a detached (still running) thread */
    struct gate g3 = { 0, 0 };
    CHECK(pthread_create(&t[0], NULL, gated_fn, &g3) == 0);
    wait_flag(&g3.started);
    CHECK(pthread_detach(t[0]) == 0);
    printf("join detached: %s\n", ename(pthread_join(t[0], NULL)));
    atomic_store_explicit(&g3.release, 1, memory_order_release);

    pthread_attr_t attr;
    struct gate g4 = { 0, 0 };
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0);
    CHECK(pthread_create(&t[0], &attr, gated_fn, &g4) == 0);
    pthread_attr_destroy(&attr);
    wait_flag(&g4.started);
    printf("join created-detached: %s\n", ename(pthread_join(t[0], NULL)));
    atomic_store_explicit(&g4.release, 1, memory_order_release);

    /* 10. pthread_detach of a thread that already finished */
    atomic_int fin2 = 0;
    CHECK(pthread_create(&t[0], NULL, finish_fn, &fin2) == 0);
    wait_flag(&fin2);
    yield_n(100);
    printf("detach exited thread: %s\n", ename(pthread_detach(t[0])));

    /* Let the released detached threads run to the end. */
    yield_n(100);
    return report_failures();
}
