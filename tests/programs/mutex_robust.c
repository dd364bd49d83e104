/* Robust mutexes: a thread that ends holding one leaves it to the next
 * locker with EOWNERDEAD; pthread_mutex_consistent makes it usable again;
 * unlocking without it makes it ENOTRECOVERABLE for good.  Also: a waiter
 * blocked in lock while the owner dies, trylock on a dead owner's mutex,
 * pthread_exit with several robust mutexes held, robust recursive and
 * errorcheck kinds, consistent on a non-robust or consistent mutex. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "prog.h"

/* Both calls, in order (the operands of | are unordered in C): 0 when
 * both returned 0, else the first error. */
#define SEQ2(a, b) ({ int r_ = (a); int s_ = (b); r_ ? r_ : s_; })
#define SEQ4(a, b, c, d) SEQ2(SEQ2(a, b), SEQ2(c, d))

static void init_robust(pthread_mutex_t *m, int type)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}

/* A thread that locks the mutexes in arg (NULL-terminated) and ends. */
static atomic_int dier_locked, dier_go;
static void *dier(void *arg)
{
    pthread_mutex_t **ms = arg;
    for (int i = 0; ms[i]; i++)
        if (pthread_mutex_lock(ms[i]) != 0)
            return (void *)1;
    atomic_store(&dier_locked, 1);
    while (!atomic_load(&dier_go))
        sched_yield();
    if (ms[0] && ms[1])
        pthread_exit(NULL);   /* the pthread_exit path */
    return NULL;              /* the return path */
}

static void die_holding(pthread_mutex_t *a, pthread_mutex_t *b)
{
    pthread_mutex_t *ms[3] = {a, b, NULL};
    pthread_t t;
    atomic_store(&dier_locked, 0);
    atomic_store(&dier_go, 1);
    pthread_create(&t, NULL, dier, ms);
    pthread_join(t, NULL);
}

/* Waiter that blocks in lock while the owner dies. */
struct wait_res {
    pthread_mutex_t *m;
    int rc, consistent_rc, unlock_rc;
};
static void *waiter(void *arg)
{
    struct wait_res *w = arg;
    w->rc = pthread_mutex_lock(w->m);
    if (w->rc == EOWNERDEAD)
        w->consistent_rc = pthread_mutex_consistent(w->m);
    w->unlock_rc = pthread_mutex_unlock(w->m);
    return NULL;
}

static void *do_lock(void *arg)
{
    return (void *)(long)pthread_mutex_lock(arg);
}

static void *do_trylock(void *arg)
{
    return (void *)(long)pthread_mutex_trylock(arg);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(20);   /* a lost owner death hangs: die (SIGALRM) rather than wait */
    pthread_mutexattr_t a;
    int v = -1;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_getrobust(&a, &v);
    check_eq("mutexattr default robustness is STALLED", v == PTHREAD_MUTEX_STALLED ? 0 : EINVAL, 0);
    check_eq("setrobust(ROBUST)", pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST), 0);
    pthread_mutexattr_getrobust(&a, &v);
    check_eq("getrobust == ROBUST", v == PTHREAD_MUTEX_ROBUST ? 0 : EINVAL, 0);
    check_eq("setrobust(12345)", pthread_mutexattr_setrobust(&a, 12345), EINVAL);
    pthread_mutexattr_destroy(&a);

    printf("== scenario 1: owner dies, consistent, reuse\n");
    pthread_mutex_t m;
    init_robust(&m, PTHREAD_MUTEX_NORMAL);
    check_eq("lock + unlock while healthy", SEQ2(pthread_mutex_lock(&m), pthread_mutex_unlock(&m)), 0);
    check_eq("consistent on a consistent robust mutex", pthread_mutex_consistent(&m), EINVAL);
    die_holding(&m, NULL);
    {
        /* timed, so that a missed owner death shows as ETIMEDOUT */
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 3;
        check_eq("timedlock (3 s) after the owner ended", pthread_mutex_timedlock(&m, &dl),
              EOWNERDEAD);
    }
    check_eq("consistent", pthread_mutex_consistent(&m), 0);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    check_eq("lock again", pthread_mutex_lock(&m), 0);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    check_eq("another thread: trylock", (int)(long)({
              pthread_t t; void *r; pthread_create(&t, NULL, do_trylock, &m);
              pthread_join(t, &r); r; }), 0);
    /* do_trylock left it locked by a thread that ended: dead again */
    check_eq("trylock after that thread ended", pthread_mutex_trylock(&m), EOWNERDEAD);
    check_eq("consistent", pthread_mutex_consistent(&m), 0);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    check_eq("destroy", pthread_mutex_destroy(&m), 0);

    printf("== scenario 2: EOWNERDEAD, unlock without consistent\n");
    init_robust(&m, PTHREAD_MUTEX_NORMAL);
    die_holding(&m, NULL);
    check_eq("lock after the owner ended", pthread_mutex_lock(&m), EOWNERDEAD);
    check_eq("unlock without consistent", pthread_mutex_unlock(&m), 0);
    check_eq("lock", pthread_mutex_lock(&m), ENOTRECOVERABLE);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    check_eq("timedlock", pthread_mutex_timedlock(&m, &ts), ENOTRECOVERABLE);
    check_eq("another thread: lock", (int)(long)({
              pthread_t t; void *r; pthread_create(&t, NULL, do_lock, &m);
              pthread_join(t, &r); r; }), ENOTRECOVERABLE);
    /* Last: glibc 2.36's trylock returns ENOTRECOVERABLE but leaves the
     * lock word taken (its "oldval == id" test after a successful CAS),
     * so nothing after it may depend on the word. */
    check_eq("trylock", pthread_mutex_trylock(&m), ENOTRECOVERABLE);
    check_eq("destroy", pthread_mutex_destroy(&m), 0);
    check_eq("re-init, lock", (init_robust(&m, PTHREAD_MUTEX_NORMAL), pthread_mutex_lock(&m)), 0);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    pthread_mutex_destroy(&m);

    printf("== scenario 3: a waiter blocked in lock when the owner dies\n");
    init_robust(&m, PTHREAD_MUTEX_NORMAL);
    {
        pthread_mutex_t *ms[2] = {&m, NULL};
        pthread_t d, w;
        struct wait_res wr = {&m, -1, -1, -1};
        atomic_store(&dier_locked, 0);
        atomic_store(&dier_go, 0);
        pthread_create(&d, NULL, dier, ms);
        while (!atomic_load(&dier_locked))
            sched_yield();
        pthread_create(&w, NULL, waiter, &wr);
        for (int i = 0; i < 100; i++)   /* let the waiter block (or not) */
            sched_yield();
        atomic_store(&dier_go, 1);
        pthread_join(d, NULL);
        pthread_join(w, NULL);
        check_eq("waiter's lock", wr.rc, EOWNERDEAD);
        check_eq("waiter's consistent", wr.consistent_rc, 0);
        check_eq("waiter's unlock", wr.unlock_rc, 0);
        check_eq("lock afterwards", pthread_mutex_lock(&m), 0);
        check_eq("unlock", pthread_mutex_unlock(&m), 0);
    }
    pthread_mutex_destroy(&m);

    printf("== scenario 4: pthread_exit holding two robust mutexes\n");
    pthread_mutex_t m1, m2;
    init_robust(&m1, PTHREAD_MUTEX_NORMAL);
    init_robust(&m2, PTHREAD_MUTEX_NORMAL);
    die_holding(&m1, &m2);
    check_eq("first: lock", pthread_mutex_lock(&m1), EOWNERDEAD);
    check_eq("second: lock", pthread_mutex_lock(&m2), EOWNERDEAD);
    check_eq("second: consistent", pthread_mutex_consistent(&m2), 0);
    check_eq("first: consistent", pthread_mutex_consistent(&m1), 0);
    check_eq("first: unlock", pthread_mutex_unlock(&m1), 0);
    check_eq("second: unlock", pthread_mutex_unlock(&m2), 0);
    check_eq("both: lock + unlock",
          SEQ4(pthread_mutex_lock(&m1), pthread_mutex_lock(&m2), pthread_mutex_unlock(&m2),
               pthread_mutex_unlock(&m1)), 0);

    printf("== robust RECURSIVE and ERRORCHECK\n");
    pthread_mutex_t r, e;
    init_robust(&r, PTHREAD_MUTEX_RECURSIVE);
    check_eq("recursive: lock x2", SEQ2(pthread_mutex_lock(&r), pthread_mutex_lock(&r)), 0);
    check_eq("recursive: unlock x2", SEQ2(pthread_mutex_unlock(&r), pthread_mutex_unlock(&r)), 0);
    check_eq("recursive: unlock when free", pthread_mutex_unlock(&r), EPERM);
    die_holding(&r, NULL);
    check_eq("recursive: lock after owner ended", pthread_mutex_lock(&r), EOWNERDEAD);
    check_eq("recursive: consistent", pthread_mutex_consistent(&r), 0);
    check_eq("recursive: lock again (depth 2)", pthread_mutex_lock(&r), 0);
    check_eq("recursive: unlock x2", SEQ2(pthread_mutex_unlock(&r), pthread_mutex_unlock(&r)), 0);
    check_eq("recursive: unlock when free", pthread_mutex_unlock(&r), EPERM);
    init_robust(&e, PTHREAD_MUTEX_ERRORCHECK);
    check_eq("errorcheck: lock", pthread_mutex_lock(&e), 0);
    check_eq("errorcheck: relock", pthread_mutex_lock(&e), EDEADLK);
    check_eq("errorcheck: trylock by the owner", pthread_mutex_trylock(&e), EDEADLK);
    check_eq("errorcheck: unlock", pthread_mutex_unlock(&e), 0);
    check_eq("errorcheck: unlock again", pthread_mutex_unlock(&e), EPERM);
    die_holding(&e, NULL);
    check_eq("errorcheck: lock after owner ended", pthread_mutex_lock(&e), EOWNERDEAD);
    check_eq("errorcheck: relock while inconsistent", pthread_mutex_lock(&e), EDEADLK);
    check_eq("errorcheck: consistent", pthread_mutex_consistent(&e), 0);
    check_eq("errorcheck: unlock", pthread_mutex_unlock(&e), 0);

    printf("== non-robust\n");
    pthread_mutex_t plain = PTHREAD_MUTEX_INITIALIZER;
    check_eq("consistent on a non-robust mutex (free)", pthread_mutex_consistent(&plain), EINVAL);
    pthread_mutex_lock(&plain);
    check_eq("consistent on a non-robust mutex (held)", pthread_mutex_consistent(&plain), EINVAL);
    pthread_mutex_unlock(&plain);

    return report_failures();
}
