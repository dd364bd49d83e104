/* C11 <threads.h> synchronisation: mtx_plain/mtx_timed/mtx_recursive,
 * mtx_trylock thrd_busy, mtx_timedlock thrd_timedout, cnd_wait/cnd_signal/cnd_broadcast, cnd_timedwait thrd_timedout,
 * a mtx/cnd producer-consumer with an exact checksum, call_once from many
 * threads. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <threads.h>
#include <time.h>
#include "prog.h"

static const char *tname(int r)
{
    switch (r) {
    case thrd_success: return "thrd_success";
    case thrd_busy: return "thrd_busy";
    case thrd_error: return "thrd_error";
    case thrd_nomem: return "thrd_nomem";
    case thrd_timedout: return "thrd_timedout";
    default: return "other";
    }
}

static void check_thrd(const char *what, int got, int want)
{
    check_named(what, got, want, tname);
}

/* ---- a thread holding a mutex until told ------------------------------- */

static atomic_int hstate;
static int holder(void *arg)
{
    mtx_t *m = arg;
    int r = mtx_lock(m);
    atomic_store(&hstate, 1);
    while (atomic_load(&hstate) != 2)
        thrd_yield();
    mtx_unlock(m);
    return r;
}

static int other_trylock(void *arg)
{
    int r = mtx_trylock(arg);
    if (r == thrd_success)
        mtx_unlock(arg);
    return r;
}

static int on_other(thrd_start_t fn, void *arg)
{
    thrd_t t;
    int res = -1;
    if (thrd_create(&t, fn, arg) != thrd_success)
        return -1;
    thrd_join(t, &res);
    return res;
}

static void test_mtx(void)
{
    printf("== mtx\n");
    mtx_t m;
    check_thrd("mtx_init(mtx_plain)", mtx_init(&m, mtx_plain), thrd_success);
    check_thrd("lock", mtx_lock(&m), thrd_success);
    check_thrd("trylock by the owner", mtx_trylock(&m), thrd_busy);
    check_thrd("trylock by another thread", on_other(other_trylock, &m), thrd_busy);
    check_thrd("unlock", mtx_unlock(&m), thrd_success);
    check_thrd("trylock when free", mtx_trylock(&m), thrd_success);
    check_thrd("unlock", mtx_unlock(&m), thrd_success);
    check_thrd("another thread: trylock when free", on_other(other_trylock, &m), thrd_success);
    mtx_destroy(&m);

    check_thrd("mtx_init(mtx_timed)", mtx_init(&m, mtx_timed), thrd_success);
    struct timespec ts = in_ms(CLOCK_REALTIME, 1000);
    check_thrd("timedlock when free", mtx_timedlock(&m, &ts), thrd_success);
    check_thrd("unlock", mtx_unlock(&m), thrd_success);
    thrd_t h;
    atomic_store(&hstate, 0);
    thrd_create(&h, holder, &m);
    while (atomic_load(&hstate) != 1)
        thrd_yield();
    int64_t t0 = mono_ms();
    ts = in_ms(CLOCK_REALTIME, 50);
    check_thrd("timedlock held by another thread (50 ms)", mtx_timedlock(&m, &ts), thrd_timedout);
    check_true("  ... waited >= ~50 ms", mono_ms() - t0 >= 45);
    check_thrd("trylock held by another thread", mtx_trylock(&m), thrd_busy);
    atomic_store(&hstate, 2);
    ts = in_ms(CLOCK_REALTIME, 5000);
    check_thrd("timedlock, released while waiting", mtx_timedlock(&m, &ts), thrd_success);
    int res = -1;
    thrd_join(h, &res);
    check_thrd("holder's lock", res, thrd_success);
    check_thrd("unlock", mtx_unlock(&m), thrd_success);
    mtx_destroy(&m);

    check_thrd("mtx_init(mtx_plain | mtx_recursive)", mtx_init(&m, mtx_plain | mtx_recursive),
          thrd_success);
    check_thrd("lock 1", mtx_lock(&m), thrd_success);
    check_thrd("lock 2", mtx_lock(&m), thrd_success);
    check_thrd("lock 3", mtx_lock(&m), thrd_success);
    check_thrd("trylock by the owner (depth 4)", mtx_trylock(&m), thrd_success);
    check_thrd("trylock by another thread", on_other(other_trylock, &m), thrd_busy);
    check_thrd("unlock x3", mtx_unlock(&m), thrd_success);
    mtx_unlock(&m);
    mtx_unlock(&m);
    check_thrd("still held: trylock by another thread", on_other(other_trylock, &m), thrd_busy);
    check_thrd("unlock 1", mtx_unlock(&m), thrd_success);
    check_thrd("free: trylock by another thread", on_other(other_trylock, &m), thrd_success);
    mtx_destroy(&m);

    check_thrd("mtx_init(mtx_timed | mtx_recursive)", mtx_init(&m, mtx_timed | mtx_recursive),
          thrd_success);
    ts = in_ms(CLOCK_REALTIME, 1000);
    check_thrd("timedlock x2", mtx_timedlock(&m, &ts), thrd_success);
    check_thrd("  second", mtx_timedlock(&m, &ts), thrd_success);
    mtx_unlock(&m);
    check_thrd("unlock", mtx_unlock(&m), thrd_success);
    mtx_destroy(&m);
    /* mtx_init with an invalid type is undefined: glibc 2.36 returns
     * thrd_success, gshim thrd_error; not checked. */
}

/* ---- cnd ---------------------------------------------------------------- */

#define NW 6
static mtx_t cm;
static cnd_t cv;
static int waiting, tokens, go, woke;

static int token_waiter(void *arg)
{
    (void)arg;
    mtx_lock(&cm);
    waiting++;
    while (tokens == 0)
        if (cnd_wait(&cv, &cm) != thrd_success)
            return 1;
    tokens--;
    woke++;
    mtx_unlock(&cm);
    return 0;
}

static int go_waiter(void *arg)
{
    (void)arg;
    mtx_lock(&cm);
    waiting++;
    while (!go)
        if (cnd_wait(&cv, &cm) != thrd_success)
            return 1;
    woke++;
    mtx_unlock(&cm);
    return 0;
}

static void wait_waiting(int n)
{
    for (;;) {
        mtx_lock(&cm);
        int w = waiting;
        mtx_unlock(&cm);
        if (w >= n)
            return;
        thrd_yield();
    }
}

#define QCAP 4
#define NPROD 3
#define PER 20000
static long qbuf[QCAP];
static int qcount, qhead, prod_left;
static cnd_t not_full, not_empty;

static int producer(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (long i = 0; i < PER; i++) {
        mtx_lock(&cm);
        while (qcount == QCAP)
            cnd_wait(&not_full, &cm);
        qbuf[(qhead + qcount) % QCAP] = id * PER + i + 1;
        qcount++;
        cnd_signal(&not_empty);
        mtx_unlock(&cm);
    }
    mtx_lock(&cm);
    if (--prod_left == 0)
        cnd_broadcast(&not_empty);
    mtx_unlock(&cm);
    return 0;
}

static long consumed_sum;
static int consumer(void *arg)
{
    (void)arg;
    for (;;) {
        mtx_lock(&cm);
        while (qcount == 0 && prod_left > 0)
            cnd_wait(&not_empty, &cm);
        if (qcount == 0) {
            mtx_unlock(&cm);
            return 0;
        }
        consumed_sum += qbuf[qhead];
        qhead = (qhead + 1) % QCAP;
        qcount--;
        cnd_signal(&not_full);
        mtx_unlock(&cm);
    }
}

static void test_cnd(void)
{
    printf("== cnd\n");
    thrd_t t[NW];
    check_thrd("mtx_init", mtx_init(&cm, mtx_plain), thrd_success);
    check_thrd("cnd_init", cnd_init(&cv), thrd_success);

    waiting = tokens = woke = 0;
    for (int i = 0; i < NW; i++)
        thrd_create(&t[i], token_waiter, NULL);
    wait_waiting(NW);
    for (int i = 0; i < NW; i++) {
        mtx_lock(&cm);
        tokens++;
        cnd_signal(&cv);
        mtx_unlock(&cm);
    }
    int bad = 0;
    for (int i = 0; i < NW; i++) {
        int res;
        thrd_join(t[i], &res);
        bad += res != 0;
    }
    printf("cnd_signal x%d: %d woke, thread errors %d\n", NW, woke, bad);
    failures += woke != NW || bad;

    waiting = woke = go = 0;
    for (int i = 0; i < NW; i++)
        thrd_create(&t[i], go_waiter, NULL);
    wait_waiting(NW);
    mtx_lock(&cm);
    go = 1;
    check_thrd("cnd_broadcast", cnd_broadcast(&cv), thrd_success);
    mtx_unlock(&cm);
    bad = 0;
    for (int i = 0; i < NW; i++) {
        int res;
        thrd_join(t[i], &res);
        bad += res != 0;
    }
    printf("cnd_broadcast: %d of %d woke, thread errors %d\n", woke, NW, bad);
    failures += woke != NW || bad;

    mtx_lock(&cm);
    int64_t t0 = mono_ms();
    struct timespec ts = in_ms(CLOCK_REALTIME, 50);
    check_thrd("cnd_timedwait 50 ms", cnd_timedwait(&cv, &cm, &ts), thrd_timedout);
    check_true("  ... waited >= ~50 ms", mono_ms() - t0 >= 45);
    check_thrd("  ... mutex held again: trylock by another thread", on_other(other_trylock, &cm),
          thrd_busy);
    ts.tv_sec = 0;
    ts.tv_nsec = 0;
    check_thrd("cnd_timedwait, deadline in the past", cnd_timedwait(&cv, &cm, &ts), thrd_timedout);
    mtx_unlock(&cm);

    /* producer / consumer: 3 producers, 3 consumers, signal + broadcast */
    cnd_init(&not_full);
    cnd_init(&not_empty);
    prod_left = NPROD;
    thrd_t p[NPROD], c[NPROD];
    for (int i = 0; i < NPROD; i++)
        thrd_create(&c[i], consumer, NULL);
    for (intptr_t i = 0; i < NPROD; i++)
        thrd_create(&p[i], producer, (void *)i);
    for (int i = 0; i < NPROD; i++)
        thrd_join(p[i], NULL);
    for (int i = 0; i < NPROD; i++)
        thrd_join(c[i], NULL);
    long n = (long)NPROD * PER;
    printf("mtx/cnd producer-consumer: sum %ld (want %ld)\n", consumed_sum, n * (n + 1) / 2);
    failures += consumed_sum != n * (n + 1) / 2;
    cnd_destroy(&not_full);
    cnd_destroy(&not_empty);
    cnd_destroy(&cv);
    mtx_destroy(&cm);
}

/* ---- call_once ---------------------------------------------------------- */

#define NONCE 16
static once_flag flag = ONCE_FLAG_INIT;
static atomic_int once_calls, arrived, saw;
static int once_value;

static void once_init(void)
{
    atomic_fetch_add(&once_calls, 1);
    for (int i = 0; i < 100; i++)
        thrd_yield();
    once_value = 42;
}

static int once_caller(void *arg)
{
    (void)arg;
    atomic_fetch_add(&arrived, 1);
    while (atomic_load(&arrived) < NONCE)
        thrd_yield();
    call_once(&flag, once_init);
    if (once_value == 42)
        atomic_fetch_add(&saw, 1);
    return 0;
}

static void test_call_once(void)
{
    printf("== call_once\n");
    thrd_t t[NONCE];
    for (int i = 0; i < NONCE; i++)
        thrd_create(&t[i], once_caller, NULL);
    for (int i = 0; i < NONCE; i++)
        thrd_join(t[i], NULL);
    call_once(&flag, once_init);
    printf("call_once from %d threads: init ran %d time(s), %d callers saw its result\n", NONCE,
           atomic_load(&once_calls), atomic_load(&saw));
    failures += atomic_load(&once_calls) != 1 || atomic_load(&saw) != NONCE;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_mtx();
    test_cnd();
    test_call_once();
    return report_failures();
}
