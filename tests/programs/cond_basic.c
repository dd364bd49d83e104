/* Condition variables: signal and broadcast wake-ups, timed waits on both
 * clocks (condattr_setclock, pthread_cond_clockwait), EINVAL for a bad
 * timespec or clock, the mutex held again after every return, a bounded
 * producer/consumer queue with broadcast (4 producers, 4 consumers, exact
 * checksum), destroy right after a broadcast while the waiters are still
 * waking (and the memory re-used at once), and cancellation of a thread
 * blocked in pthread_cond_wait (its cleanup handler runs with the mutex
 * held, join gives PTHREAD_CANCELED). */
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

static void init_errorcheck(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}

/* ---- signal / broadcast ------------------------------------------------- */

#define NW 8
static pthread_mutex_t wm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wc = PTHREAD_COND_INITIALIZER;
static int waiting, tokens, go, woke;

static void *token_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wm);
    waiting++;
    while (tokens == 0)
        pthread_cond_wait(&wc, &wm);
    tokens--;
    woke++;
    pthread_mutex_unlock(&wm);
    return NULL;
}

static void *go_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wm);
    waiting++;
    while (!go)
        pthread_cond_wait(&wc, &wm);
    woke++;
    pthread_mutex_unlock(&wm);
    return NULL;
}

static void wait_for_waiters(int n)
{
    for (;;) {
        pthread_mutex_lock(&wm);
        int w = waiting;
        pthread_mutex_unlock(&wm);
        if (w >= n)
            return;
        sched_yield();
    }
}

static void test_signal_broadcast(void)
{
    printf("== signal / broadcast\n");
    pthread_t t[NW];

    /* signal: one token per signal, every waiter gets exactly one */
    waiting = tokens = woke = 0;
    for (int i = 0; i < NW; i++)
        pthread_create(&t[i], NULL, token_waiter, NULL);
    wait_for_waiters(NW);   /* all in (or about to enter) the wait */
    for (int i = 0; i < NW; i++) {
        pthread_mutex_lock(&wm);
        tokens++;
        pthread_cond_signal(&wc);
        pthread_mutex_unlock(&wm);
    }
    for (int i = 0; i < NW; i++)
        pthread_join(t[i], NULL);
    printf("signal x%d: %d waiters woke, %d tokens left\n", NW, woke, tokens);
    failures += woke != NW || tokens != 0;

    /* signal with the mutex released first (allowed by POSIX) */
    waiting = tokens = woke = 0;
    for (int i = 0; i < NW; i++)
        pthread_create(&t[i], NULL, token_waiter, NULL);
    wait_for_waiters(NW);
    for (int i = 0; i < NW; i++) {
        pthread_mutex_lock(&wm);
        tokens++;
        pthread_mutex_unlock(&wm);
        pthread_cond_signal(&wc);
    }
    for (int i = 0; i < NW; i++)
        pthread_join(t[i], NULL);
    printf("signal after unlock x%d: %d waiters woke\n", NW, woke);
    failures += woke != NW;

    /* broadcast wakes everybody */
    waiting = woke = go = 0;
    for (int i = 0; i < NW; i++)
        pthread_create(&t[i], NULL, go_waiter, NULL);
    wait_for_waiters(NW);
    pthread_mutex_lock(&wm);
    go = 1;
    pthread_cond_broadcast(&wc);
    pthread_mutex_unlock(&wm);
    for (int i = 0; i < NW; i++)
        pthread_join(t[i], NULL);
    printf("broadcast: %d of %d waiters woke\n", woke, NW);
    failures += woke != NW;

    check_eq("signal with no waiters", pthread_cond_signal(&wc), 0);
    check_eq("broadcast with no waiters", pthread_cond_broadcast(&wc), 0);
}

/* ---- timed waits -------------------------------------------------------- */

static void test_timed(void)
{
    printf("== timed waits\n");
    pthread_mutex_t m;
    pthread_cond_t c;
    pthread_condattr_t ca;
    clockid_t clk = -1;
    init_errorcheck(&m);

    pthread_condattr_init(&ca);
    pthread_condattr_getclock(&ca, &clk);
    check_true("condattr default clock is CLOCK_REALTIME", clk == CLOCK_REALTIME);
    check_eq("condattr_setclock(CLOCK_PROCESS_CPUTIME_ID)",
          pthread_condattr_setclock(&ca, CLOCK_PROCESS_CPUTIME_ID), EINVAL);
    pthread_cond_init(&c, &ca);   /* realtime */

    pthread_mutex_lock(&m);
    int64_t t0 = mono_ms();
    struct timespec ts = in_ms(CLOCK_REALTIME, 50);
    check_eq("timedwait (REALTIME cond) 50 ms", pthread_cond_timedwait(&c, &m, &ts), ETIMEDOUT);
    check_true("  ... waited >= ~50 ms", mono_ms() - t0 >= 45);
    check_eq("  ... mutex held again (errorcheck relock)", pthread_mutex_lock(&m), EDEADLK);
    ts.tv_sec = 0;
    ts.tv_nsec = 0;
    check_eq("timedwait, deadline in the past", pthread_cond_timedwait(&c, &m, &ts), ETIMEDOUT);
    ts = in_ms(CLOCK_REALTIME, 50);
    ts.tv_nsec = 1000000000L;
    check_eq("timedwait, tv_nsec = 1e9", pthread_cond_timedwait(&c, &m, &ts), EINVAL);
    ts.tv_nsec = -1;
    check_eq("timedwait, tv_nsec = -1", pthread_cond_timedwait(&c, &m, &ts), EINVAL);
    check_eq("  ... mutex still held (errorcheck relock)", pthread_mutex_lock(&m), EDEADLK);

    t0 = mono_ms();
    ts = in_ms(CLOCK_MONOTONIC, 50);
    check_eq("clockwait MONOTONIC 50 ms", pthread_cond_clockwait(&c, &m, CLOCK_MONOTONIC, &ts),
          ETIMEDOUT);
    check_true("  ... waited >= ~50 ms", mono_ms() - t0 >= 45);
    t0 = mono_ms();
    ts = in_ms(CLOCK_REALTIME, 50);
    check_eq("clockwait REALTIME 50 ms", pthread_cond_clockwait(&c, &m, CLOCK_REALTIME, &ts),
          ETIMEDOUT);
    check_true("  ... waited >= ~50 ms", mono_ms() - t0 >= 45);
    ts = in_ms(CLOCK_MONOTONIC, 50);
    check_eq("clockwait CLOCK_PROCESS_CPUTIME_ID",
          pthread_cond_clockwait(&c, &m, CLOCK_PROCESS_CPUTIME_ID, &ts), EINVAL);
    check_eq("clockwait clockid 12345", pthread_cond_clockwait(&c, &m, 12345, &ts), EINVAL);
    ts.tv_nsec = 1000000000L;
    check_eq("clockwait MONOTONIC, tv_nsec = 1e9",
          pthread_cond_clockwait(&c, &m, CLOCK_MONOTONIC, &ts), EINVAL);
    check_eq("  ... mutex still held (errorcheck relock)", pthread_mutex_lock(&m), EDEADLK);
    pthread_mutex_unlock(&m);
    check_eq("wait with the (errorcheck) mutex not held", pthread_cond_wait(&c, &m), EPERM);
    pthread_cond_destroy(&c);

    check_eq("condattr_setclock(CLOCK_MONOTONIC)", pthread_condattr_setclock(&ca, CLOCK_MONOTONIC), 0);
    pthread_condattr_getclock(&ca, &clk);
    check_true("condattr_getclock == CLOCK_MONOTONIC", clk == CLOCK_MONOTONIC);
    pthread_cond_init(&c, &ca);
    pthread_mutex_lock(&m);
    t0 = mono_ms();
    ts = in_ms(CLOCK_MONOTONIC, 50);
    check_eq("timedwait (MONOTONIC cond) 50 ms", pthread_cond_timedwait(&c, &m, &ts), ETIMEDOUT);
    check_true("  ... waited >= ~50 ms", mono_ms() - t0 >= 45);
    check_eq("  ... mutex held again (errorcheck relock)", pthread_mutex_lock(&m), EDEADLK);
    /* a MONOTONIC deadline is far in the past on the REALTIME scale and
     * the other way round: this one must time out at once */
    ts = in_ms(CLOCK_MONOTONIC, 0);
    check_eq("timedwait (MONOTONIC cond), deadline now", pthread_cond_timedwait(&c, &m, &ts),
          ETIMEDOUT);
    pthread_mutex_unlock(&m);
    pthread_cond_destroy(&c);
    pthread_condattr_destroy(&ca);
    pthread_mutex_destroy(&m);
}

/* A timed wait that is signalled before its deadline. */
static pthread_mutex_t sm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sc = PTHREAD_COND_INITIALIZER;
static int sflag;
static atomic_int swaiting;

static void *timed_waiter(void *arg)
{
    (void)arg;
    int r = 0;
    pthread_mutex_lock(&sm);
    atomic_store(&swaiting, 1);
    struct timespec ts = in_ms(CLOCK_REALTIME, 10000);
    while (!sflag && r == 0)
        r = pthread_cond_timedwait(&sc, &sm, &ts);
    pthread_mutex_unlock(&sm);
    return (void *)(intptr_t)r;
}

static void test_timed_signalled(void)
{
    pthread_t t;
    void *rv;
    pthread_create(&t, NULL, timed_waiter, NULL);
    while (!atomic_load(&swaiting))
        sched_yield();
    pthread_mutex_lock(&sm);
    sflag = 1;
    pthread_cond_signal(&sc);
    pthread_mutex_unlock(&sm);
    pthread_join(t, &rv);
    check_eq("timedwait (10 s) signalled early", (int)(intptr_t)rv, 0);
}

/* ---- producer / consumer ------------------------------------------------ */

#define QCAP 8
#define NPROD 4
#define NCONS 4
#define PER_PROD 25000

static struct {
    pthread_mutex_t m;
    pthread_cond_t not_full, not_empty;
    long buf[QCAP];
    int head, count, producers_left;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
       {0}, 0, 0, NPROD};

static void *producer(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (long i = 0; i < PER_PROD; i++) {
        long v = id * PER_PROD + i + 1;
        pthread_mutex_lock(&q.m);
        while (q.count == QCAP)
            pthread_cond_wait(&q.not_full, &q.m);
        q.buf[(q.head + q.count) % QCAP] = v;
        q.count++;
        pthread_cond_broadcast(&q.not_empty);
        pthread_mutex_unlock(&q.m);
    }
    pthread_mutex_lock(&q.m);
    if (--q.producers_left == 0)
        pthread_cond_broadcast(&q.not_empty);   /* consumers: no more */
    pthread_mutex_unlock(&q.m);
    return NULL;
}

struct cons_res {
    long sum, n;
};

static void *consumer(void *arg)
{
    struct cons_res *r = arg;
    for (;;) {
        pthread_mutex_lock(&q.m);
        while (q.count == 0 && q.producers_left > 0)
            pthread_cond_wait(&q.not_empty, &q.m);
        if (q.count == 0) {
            pthread_mutex_unlock(&q.m);
            return NULL;
        }
        long v = q.buf[q.head];
        q.head = (q.head + 1) % QCAP;
        q.count--;
        pthread_cond_broadcast(&q.not_full);
        pthread_mutex_unlock(&q.m);
        r->sum += v;
        r->n++;
    }
}

static void test_prodcons(void)
{
    printf("== producer / consumer (broadcast)\n");
    pthread_t p[NPROD], c[NCONS];
    struct cons_res res[NCONS];
    memset(res, 0, sizeof res);
    for (int i = 0; i < NCONS; i++)
        pthread_create(&c[i], NULL, consumer, &res[i]);
    for (intptr_t i = 0; i < NPROD; i++)
        pthread_create(&p[i], NULL, producer, (void *)i);
    for (int i = 0; i < NPROD; i++)
        pthread_join(p[i], NULL);
    long sum = 0, n = 0;
    for (int i = 0; i < NCONS; i++) {
        pthread_join(c[i], NULL);
        sum += res[i].sum;
        n += res[i].n;
    }
    long total = (long)NPROD * PER_PROD;
    long want = total * (total + 1) / 2;
    printf("%d producers x %d items, %d consumers: received %ld items, checksum %ld (want %ld)\n",
           NPROD, PER_PROD, NCONS, n, sum, want);
    failures += n != total || sum != want;
}

/* ---- destroy right after broadcast ------------------------------------- */

#define DW 4
#define DROUNDS 300

struct dslot {
    pthread_cond_t c;
    long pad[8];
};
static pthread_mutex_t dm = PTHREAD_MUTEX_INITIALIZER;
static struct dslot *dslot;
static int dgo, dwaiting, dwoke;

static void *dwaiter(void *arg)
{
    pthread_cond_t *c = arg;
    pthread_mutex_lock(&dm);
    dwaiting++;
    while (!dgo)
        pthread_cond_wait(c, &dm);
    dwoke++;
    pthread_mutex_unlock(&dm);
    return NULL;
}

static void test_destroy_after_broadcast(void)
{
    printf("== destroy right after broadcast\n");
    int bad_destroy = 0, bad_woke = 0;
    dslot = malloc(sizeof *dslot);
    for (int round = 0; round < DROUNDS; round++) {
        pthread_t t[DW];
        pthread_cond_init(&dslot->c, NULL);
        dgo = dwaiting = dwoke = 0;
        for (int i = 0; i < DW; i++)
            pthread_create(&t[i], NULL, dwaiter, &dslot->c);
        for (;;) {
            pthread_mutex_lock(&dm);
            if (dwaiting == DW)
                break;          /* all waiting: they released dm in wait */
            pthread_mutex_unlock(&dm);
            sched_yield();
        }
        dgo = 1;
        pthread_cond_broadcast(&dslot->c);
        /* POSIX: once broadcast has unblocked them, destroy is allowed,
         * even though they have not returned from the wait yet (they
         * need dm, which we hold). */
        if (round & 1) {
            pthread_mutex_unlock(&dm);
            bad_destroy += pthread_cond_destroy(&dslot->c) != 0;
        } else {
            bad_destroy += pthread_cond_destroy(&dslot->c) != 0;
            pthread_mutex_unlock(&dm);
        }
        /* and the memory is re-used at once */
        memset(dslot, 0xa5, sizeof *dslot);
        for (int i = 0; i < DW; i++)
            pthread_join(t[i], NULL);
        bad_woke += dwoke != DW;
    }
    free(dslot);
    printf("%d rounds of %d waiters: destroy errors %d, rounds with a waiter missing %d\n",
           DROUNDS, DW, bad_destroy, bad_woke);
    failures += bad_destroy || bad_woke;
}

/* ---- cancellation in pthread_cond_wait --------------------------------- */

static pthread_mutex_t cm;
static pthread_cond_t cc = PTHREAD_COND_INITIALIZER;
static int cwaiting;
static atomic_int handler_ran, handler_unlock_rc = -1;

static void cleanup_unlock(void *arg)
{
    (void)arg;
    atomic_store(&handler_ran, 1);
    /* errorcheck mutex: 0 only if this thread holds it, as POSIX wants */
    atomic_store(&handler_unlock_rc, pthread_mutex_unlock(&cm));
}

static void *cancel_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cm);
    pthread_cleanup_push(cleanup_unlock, NULL);
    cwaiting = 1;
    for (;;)
        pthread_cond_wait(&cc, &cm);   /* never signalled */
    pthread_cleanup_pop(1);
    return NULL;
}

static void test_cancel(void)
{
    printf("== cancellation in pthread_cond_wait\n");
    init_errorcheck(&cm);
    pthread_t t;
    void *rv = NULL;
    pthread_create(&t, NULL, cancel_waiter, NULL);
    for (;;) {
        pthread_mutex_lock(&cm);
        int w = cwaiting;
        pthread_mutex_unlock(&cm);
        if (w)
            break;   /* it holds cm until it waits: it is waiting now */
        sched_yield();
    }
    check_eq("pthread_cancel", pthread_cancel(t), 0);
    check_eq("join", pthread_join(t, &rv), 0);
    check_true("join result is PTHREAD_CANCELED", rv == PTHREAD_CANCELED);
    check_true("cleanup handler ran", atomic_load(&handler_ran));
    check_eq("handler's unlock (mutex re-acquired before it ran)", atomic_load(&handler_unlock_rc), 0);
    check_eq("mutex free afterwards: trylock", pthread_mutex_trylock(&cm), 0);
    pthread_mutex_unlock(&cm);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_signal_broadcast();
    test_timed();
    test_timed_signalled();
    test_prodcons();
    test_destroy_after_broadcast();
    test_cancel();
    return report_failures();
}
