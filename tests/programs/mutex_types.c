/* Mutex types and their error paths, as glibc documents them:
 * NORMAL/DEFAULT, RECURSIVE, ERRORCHECK, ADAPTIVE_NP; the _NP static
 * initializers; trylock EBUSY; timedlock ETIMEDOUT/EINVAL; clocklock;
 * destroy EBUSY, destroy + re-init + reuse; mutexes memcpy'd from a static
 * initializer or zeroed before first use; priority protocol attributes and
 * the PRIO_PROTECT ceiling.  Every line printed is the same natively and
 * under gshim; the exit status is the number of failed checks. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "prog.h"

/* ---- a helper thread that holds a mutex until told to let go ---------- */

struct holder {
    pthread_t t;
    pthread_mutex_t *m;
    atomic_int state;  /* 0 starting, 1 holding, 2 release, 3 released */
    int lock_rc, unlock_rc;
};

static void *holder_fn(void *arg)
{
    struct holder *h = arg;
    h->lock_rc = pthread_mutex_lock(h->m);
    atomic_store(&h->state, 1);
    while (atomic_load(&h->state) != 2)
        sched_yield();
    h->unlock_rc = pthread_mutex_unlock(h->m);
    atomic_store(&h->state, 3);
    return NULL;
}

static void hold(struct holder *h, pthread_mutex_t *m)
{
    memset(h, 0, sizeof *h);
    h->m = m;
    if (pthread_create(&h->t, NULL, holder_fn, h) != 0) {
        printf("pthread_create failed\n");
        failures++;
        return;
    }
    while (atomic_load(&h->state) != 1)
        sched_yield();
}

static void release(struct holder *h)
{
    atomic_store(&h->state, 2);
    pthread_join(h->t, NULL);
    if (h->lock_rc || h->unlock_rc) {
        printf("holder: lock %s unlock %s   <-- WRONG\n", ename(h->lock_rc), ename(h->unlock_rc));
        failures++;
    }
}

/* ---- run one call on another thread ------------------------------------ */

struct other_call {
    int (*fn)(pthread_mutex_t *);
    pthread_mutex_t *m;
    int rc;
};

static void *other_fn(void *arg)
{
    struct other_call *c = arg;
    c->rc = c->fn(c->m);
    return NULL;
}

static int on_other_thread(int (*fn)(pthread_mutex_t *), pthread_mutex_t *m)
{
    struct other_call c = {fn, m, -1};
    pthread_t t;
    if (pthread_create(&t, NULL, other_fn, &c) != 0)
        return -1;
    pthread_join(t, NULL);
    return c.rc;
}

/* lock + unlock on another thread: 0 when the mutex was free */
static int lock_unlock(pthread_mutex_t *m)
{
    int r = pthread_mutex_lock(m);
    return r ? r : pthread_mutex_unlock(m);
}

/* ---- contention on a mutex of a given kind ----------------------------- */

#define CONT_THREADS 4
#define CONT_ITERS 20000
static long cont_counter;

static void *cont_fn(void *arg)
{
    pthread_mutex_t *m = arg;
    for (int i = 0; i < CONT_ITERS; i++) {
        if (pthread_mutex_lock(m) != 0)
            return (void *)1;
        cont_counter++;
        if ((i & 255) == 0)
            sched_yield();   /* sometimes switch away while holding it */
        pthread_mutex_unlock(m);
    }
    return NULL;
}

static void contend(const char *what, pthread_mutex_t *m)
{
    pthread_t t[CONT_THREADS];
    int bad = 0;
    cont_counter = 0;
    for (int i = 0; i < CONT_THREADS; i++)
        pthread_create(&t[i], NULL, cont_fn, m);
    for (int i = 0; i < CONT_THREADS; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        bad |= rv != NULL;
    }
    char buf[80];
    snprintf(buf, sizeof buf, "%s: %d threads x %d, counter exact", what, CONT_THREADS,
             CONT_ITERS);
    check_eq(buf, bad || cont_counter != (long)CONT_THREADS * CONT_ITERS ? EINVAL : 0, 0);
}

static void init_type(pthread_mutex_t *m, int type)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}

/* ---- sections ----------------------------------------------------------- */

static void test_normal(void)
{
    printf("== NORMAL / DEFAULT\n");
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    check_eq("static init: lock", pthread_mutex_lock(&m), 0);
    check_eq("trylock by the owner (normal)", pthread_mutex_trylock(&m), EBUSY);
    check_eq("trylock by another thread", on_other_thread(pthread_mutex_trylock, &m), EBUSY);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    check_eq("trylock when free", pthread_mutex_trylock(&m), 0);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    check_eq("another thread: lock + unlock", on_other_thread(lock_unlock, &m), 0);
    contend("default mutex", &m);
    check_eq("destroy", pthread_mutex_destroy(&m), 0);

    pthread_mutexattr_t a;
    int type = -1;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_gettype(&a, &type);
    check_eq("mutexattr default type is DEFAULT", type == PTHREAD_MUTEX_DEFAULT ? 0 : EINVAL, 0);
    check_eq("mutexattr_settype(NORMAL)", pthread_mutexattr_settype(&a, PTHREAD_MUTEX_NORMAL), 0);
    pthread_mutexattr_gettype(&a, &type);
    check_eq("gettype == NORMAL", type == PTHREAD_MUTEX_NORMAL ? 0 : EINVAL, 0);
    check_eq("mutexattr_settype(12345)", pthread_mutexattr_settype(&a, 12345), EINVAL);
    check_eq("init with NORMAL attr", pthread_mutex_init(&m, &a), 0);
    check_eq("lock", pthread_mutex_lock(&m), 0);
    check_eq("trylock by another thread", on_other_thread(pthread_mutex_trylock, &m), EBUSY);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    contend("normal mutex", &m);
    check_eq("destroy", pthread_mutex_destroy(&m), 0);
    pthread_mutexattr_destroy(&a);
}

static void test_recursive(void)
{
    printf("== RECURSIVE\n");
    pthread_mutex_t m;
    init_type(&m, PTHREAD_MUTEX_RECURSIVE);
    check_eq("lock 1", pthread_mutex_lock(&m), 0);
    check_eq("lock 2", pthread_mutex_lock(&m), 0);
    check_eq("lock 3", pthread_mutex_lock(&m), 0);
    check_eq("trylock by the owner (depth 4)", pthread_mutex_trylock(&m), 0);
    check_eq("trylock by another thread", on_other_thread(pthread_mutex_trylock, &m), EBUSY);
    check_eq("unlock by another thread", on_other_thread(pthread_mutex_unlock, &m), EPERM);
    check_eq("unlock 4", pthread_mutex_unlock(&m), 0);
    check_eq("unlock 3", pthread_mutex_unlock(&m), 0);
    check_eq("unlock 2", pthread_mutex_unlock(&m), 0);
    check_eq("still held: trylock by another thread",
          on_other_thread(pthread_mutex_trylock, &m), EBUSY);
    check_eq("unlock 1", pthread_mutex_unlock(&m), 0);
    check_eq("unlock when not held", pthread_mutex_unlock(&m), EPERM);
    check_eq("free: another thread lock + unlock", on_other_thread(lock_unlock, &m), 0);

    struct holder h;
    hold(&h, &m);
    check_eq("held by another thread: trylock", pthread_mutex_trylock(&m), EBUSY);
    check_eq("held by another thread: unlock", pthread_mutex_unlock(&m), EPERM);
    struct timespec ts = in_ms(CLOCK_REALTIME, 30);
    check_eq("held by another thread: timedlock", pthread_mutex_timedlock(&m, &ts), ETIMEDOUT);
    release(&h);
    contend("recursive mutex", &m);
    check_eq("destroy", pthread_mutex_destroy(&m), 0);

    pthread_mutex_t s = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    check_eq("RECURSIVE_MUTEX_INITIALIZER_NP: lock", pthread_mutex_lock(&s), 0);
    check_eq("RECURSIVE_MUTEX_INITIALIZER_NP: lock again", pthread_mutex_lock(&s), 0);
    check_eq("RECURSIVE_MUTEX_INITIALIZER_NP: other trylock",
          on_other_thread(pthread_mutex_trylock, &s), EBUSY);
    check_eq("RECURSIVE_MUTEX_INITIALIZER_NP: unlock", pthread_mutex_unlock(&s), 0);
    check_eq("RECURSIVE_MUTEX_INITIALIZER_NP: unlock", pthread_mutex_unlock(&s), 0);
    check_eq("RECURSIVE_MUTEX_INITIALIZER_NP: unlock again", pthread_mutex_unlock(&s), EPERM);
}

static void test_errorcheck(void)
{
    printf("== ERRORCHECK\n");
    pthread_mutex_t m;
    init_type(&m, PTHREAD_MUTEX_ERRORCHECK);
    check_eq("unlock when unlocked", pthread_mutex_unlock(&m), EPERM);
    check_eq("lock", pthread_mutex_lock(&m), 0);
    check_eq("relock by the owner", pthread_mutex_lock(&m), EDEADLK);
    check_eq("trylock by the owner", pthread_mutex_trylock(&m), EBUSY);
    struct timespec ts = in_ms(CLOCK_REALTIME, 1000);
    check_eq("timedlock by the owner", pthread_mutex_timedlock(&m, &ts), EDEADLK);
    check_eq("unlock by another thread", on_other_thread(pthread_mutex_unlock, &m), EPERM);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    check_eq("unlock again", pthread_mutex_unlock(&m), EPERM);

    struct holder h;
    hold(&h, &m);
    check_eq("held by another thread: unlock", pthread_mutex_unlock(&m), EPERM);
    check_eq("held by another thread: trylock", pthread_mutex_trylock(&m), EBUSY);
    release(&h);
    contend("errorcheck mutex", &m);
    check_eq("destroy", pthread_mutex_destroy(&m), 0);

    pthread_mutex_t s = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
    check_eq("ERRORCHECK_MUTEX_INITIALIZER_NP: unlock free", pthread_mutex_unlock(&s), EPERM);
    check_eq("ERRORCHECK_MUTEX_INITIALIZER_NP: lock", pthread_mutex_lock(&s), 0);
    check_eq("ERRORCHECK_MUTEX_INITIALIZER_NP: relock", pthread_mutex_lock(&s), EDEADLK);
    check_eq("ERRORCHECK_MUTEX_INITIALIZER_NP: unlock", pthread_mutex_unlock(&s), 0);
}

static void test_adaptive(void)
{
    printf("== ADAPTIVE_NP\n");
    pthread_mutex_t m;
    init_type(&m, PTHREAD_MUTEX_ADAPTIVE_NP);
    check_eq("lock", pthread_mutex_lock(&m), 0);
    check_eq("trylock by another thread", on_other_thread(pthread_mutex_trylock, &m), EBUSY);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    contend("adaptive mutex", &m);
    check_eq("destroy", pthread_mutex_destroy(&m), 0);

    pthread_mutex_t s = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
    check_eq("ADAPTIVE_MUTEX_INITIALIZER_NP: lock", pthread_mutex_lock(&s), 0);
    check_eq("ADAPTIVE_MUTEX_INITIALIZER_NP: other trylock",
          on_other_thread(pthread_mutex_trylock, &s), EBUSY);
    check_eq("ADAPTIVE_MUTEX_INITIALIZER_NP: unlock", pthread_mutex_unlock(&s), 0);
    contend("ADAPTIVE_MUTEX_INITIALIZER_NP", &s);
}

static void test_timed(void)
{
    printf("== timedlock / clocklock\n");
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    struct timespec ts = in_ms(CLOCK_REALTIME, 1000);
    check_eq("timedlock when free", pthread_mutex_timedlock(&m, &ts), 0);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    check_eq("lock", pthread_mutex_lock(&m), 0);
    ts = in_ms(CLOCK_REALTIME, 30);
    check_eq("timedlock by the owner (normal: no check, times out)",
          pthread_mutex_timedlock(&m, &ts), ETIMEDOUT);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);

    struct holder h;
    hold(&h, &m);
    int64_t t0 = mono_ms();
    ts = in_ms(CLOCK_REALTIME, 50);
    check_eq("timedlock held by another thread (50 ms)", pthread_mutex_timedlock(&m, &ts),
          ETIMEDOUT);
    check_eq("  ... waited at least ~50 ms", mono_ms() - t0 >= 45 ? 0 : EINVAL, 0);
    ts.tv_sec = 0;
    ts.tv_nsec = 0;
    check_eq("timedlock, deadline in the past", pthread_mutex_timedlock(&m, &ts), ETIMEDOUT);
    ts = in_ms(CLOCK_REALTIME, 50);
    ts.tv_nsec = -1;
    check_eq("timedlock, tv_nsec = -1, must wait", pthread_mutex_timedlock(&m, &ts), EINVAL);
    ts.tv_nsec = 1000000000L;
    check_eq("timedlock, tv_nsec = 1e9, must wait", pthread_mutex_timedlock(&m, &ts), EINVAL);
    t0 = mono_ms();
    ts = in_ms(CLOCK_MONOTONIC, 50);
    check_eq("clocklock MONOTONIC held by another thread",
          pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &ts), ETIMEDOUT);
    check_eq("  ... waited at least ~50 ms", mono_ms() - t0 >= 45 ? 0 : EINVAL, 0);
    ts = in_ms(CLOCK_REALTIME, 30);
    check_eq("clocklock REALTIME held by another thread",
          pthread_mutex_clocklock(&m, CLOCK_REALTIME, &ts), ETIMEDOUT);
    ts = in_ms(CLOCK_MONOTONIC, 30);
    check_eq("clocklock bad clockid (12345), must wait", pthread_mutex_clocklock(&m, 12345, &ts),
          EINVAL);
    check_eq("clocklock CLOCK_PROCESS_CPUTIME_ID, must wait",
          pthread_mutex_clocklock(&m, CLOCK_PROCESS_CPUTIME_ID, &ts), EINVAL);
    release(&h);

    /* A timed wait that succeeds: the holder lets go while we wait. */
    hold(&h, &m);
    atomic_store(&h.state, 2);   /* the holder releases soon */
    ts = in_ms(CLOCK_MONOTONIC, 5000);
    check_eq("clocklock MONOTONIC, released while waiting",
          pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &ts), 0);
    pthread_join(h.t, NULL);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    ts = in_ms(CLOCK_MONOTONIC, 1000);
    check_eq("clocklock MONOTONIC when free", pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &ts), 0);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    check_eq("clocklock bad clockid (12345), free", pthread_mutex_clocklock(&m, 12345, &ts), EINVAL);
}

static void test_lifecycle(void)
{
    printf("== destroy / re-init / memcpy / zeroed\n");
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    check_eq("lock", pthread_mutex_lock(&m), 0);
    check_eq("destroy while locked", pthread_mutex_destroy(&m), EBUSY);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    check_eq("destroy", pthread_mutex_destroy(&m), 0);
    init_type(&m, PTHREAD_MUTEX_ERRORCHECK);
    check_eq("re-init as ERRORCHECK: lock", pthread_mutex_lock(&m), 0);
    check_eq("re-init as ERRORCHECK: relock", pthread_mutex_lock(&m), EDEADLK);
    check_eq("re-init as ERRORCHECK: unlock", pthread_mutex_unlock(&m), 0);
    contend("re-initialised mutex", &m);
    check_eq("destroy", pthread_mutex_destroy(&m), 0);
    check_eq("init with NULL attr", pthread_mutex_init(&m, NULL), 0);
    check_eq("lock", pthread_mutex_lock(&m), 0);
    check_eq("unlock", pthread_mutex_unlock(&m), 0);
    check_eq("destroy", pthread_mutex_destroy(&m), 0);

    /* Repeated destroy + init of one object under contention between
     * rounds. */
    int bad = 0;
    for (int round = 0; round < 50; round++) {
        bad |= pthread_mutex_init(&m, NULL);
        bad |= on_other_thread(lock_unlock, &m);
        bad |= pthread_mutex_lock(&m);
        bad |= pthread_mutex_unlock(&m);
        bad |= pthread_mutex_destroy(&m);
    }
    check_eq("50 x init/use/destroy of one object", bad, 0);

    static const pthread_mutex_t templ_rec = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    static const pthread_mutex_t templ_err = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
    static const pthread_mutex_t templ_def = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_t c;
    memcpy(&c, &templ_rec, sizeof c);
    check_eq("memcpy'd RECURSIVE initializer: lock", pthread_mutex_lock(&c), 0);
    check_eq("memcpy'd RECURSIVE initializer: lock again", pthread_mutex_lock(&c), 0);
    check_eq("memcpy'd RECURSIVE initializer: unlock x2",
          pthread_mutex_unlock(&c) | pthread_mutex_unlock(&c), 0);
    memcpy(&c, &templ_err, sizeof c);
    check_eq("memcpy'd ERRORCHECK initializer: lock", pthread_mutex_lock(&c), 0);
    check_eq("memcpy'd ERRORCHECK initializer: relock", pthread_mutex_lock(&c), EDEADLK);
    check_eq("memcpy'd ERRORCHECK initializer: unlock", pthread_mutex_unlock(&c), 0);
    memcpy(&c, &templ_def, sizeof c);
    contend("memcpy'd default initializer", &c);

    /* Heap-like memory reused: a mutex zeroed with memset. */
    union {
        pthread_mutex_t m;
        char bytes[sizeof(pthread_mutex_t)];
    } z;
    memset(z.bytes, 0x5a, sizeof z.bytes);
    memset(&z.m, 0, sizeof z.m);
    check_eq("zeroed mutex: lock", pthread_mutex_lock(&z.m), 0);
    check_eq("zeroed mutex: other trylock", on_other_thread(pthread_mutex_trylock, &z.m), EBUSY);
    check_eq("zeroed mutex: unlock", pthread_mutex_unlock(&z.m), 0);
    contend("zeroed mutex", &z.m);
    check_eq("zeroed mutex: destroy", pthread_mutex_destroy(&z.m), 0);
}

static void test_prio(void)
{
    printf("== priority protocols\n");
    pthread_mutexattr_t a;
    pthread_mutex_t m;
    int v = -1;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_getprotocol(&a, &v);
    check_eq("default protocol is PRIO_NONE", v == PTHREAD_PRIO_NONE ? 0 : EINVAL, 0);
    check_eq("setprotocol(PRIO_INHERIT)", pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT), 0);
    pthread_mutexattr_getprotocol(&a, &v);
    check_eq("getprotocol == PRIO_INHERIT", v == PTHREAD_PRIO_INHERIT ? 0 : EINVAL, 0);
    check_eq("setprotocol(12345)", pthread_mutexattr_setprotocol(&a, 12345), EINVAL);
    check_eq("PRIO_INHERIT mutex: init", pthread_mutex_init(&m, &a), 0);
    check_eq("PRIO_INHERIT mutex: lock", pthread_mutex_lock(&m), 0);
    check_eq("PRIO_INHERIT mutex: other trylock", on_other_thread(pthread_mutex_trylock, &m), EBUSY);
    check_eq("PRIO_INHERIT mutex: unlock", pthread_mutex_unlock(&m), 0);
    contend("PRIO_INHERIT mutex", &m);
    check_eq("PRIO_INHERIT mutex: getprioceiling", pthread_mutex_getprioceiling(&m, &v), EINVAL);
    check_eq("PRIO_INHERIT mutex: destroy", pthread_mutex_destroy(&m), 0);

    check_eq("setprotocol(PRIO_PROTECT)", pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_PROTECT), 0);
    check_eq("attr setprioceiling(10)", pthread_mutexattr_setprioceiling(&a, 10), 0);
    v = -1;
    pthread_mutexattr_getprioceiling(&a, &v);
    check_eq("attr getprioceiling == 10", v == 10 ? 0 : EINVAL, 0);
    check_eq("PRIO_PROTECT mutex: init", pthread_mutex_init(&m, &a), 0);
    v = -1;
    check_eq("PRIO_PROTECT mutex: getprioceiling", pthread_mutex_getprioceiling(&m, &v), 0);
    check_eq("  ... ceiling == 10", v == 10 ? 0 : EINVAL, 0);
    int old = -1;
    check_eq("PRIO_PROTECT mutex: setprioceiling(20)", pthread_mutex_setprioceiling(&m, 20, &old), 0);
    check_eq("  ... old ceiling == 10", old == 10 ? 0 : EINVAL, 0);
    v = -1;
    pthread_mutex_getprioceiling(&m, &v);
    check_eq("  ... ceiling now 20", v == 20 ? 0 : EINVAL, 0);
    check_eq("PRIO_PROTECT mutex: setprioceiling(100000)",
          pthread_mutex_setprioceiling(&m, 100000, &old), EINVAL);
    check_eq("PRIO_PROTECT mutex: destroy", pthread_mutex_destroy(&m), 0);

    pthread_mutex_t plain = PTHREAD_MUTEX_INITIALIZER;
    check_eq("non-PRIO_PROTECT mutex: getprioceiling", pthread_mutex_getprioceiling(&plain, &v),
          EINVAL);
    check_eq("non-PRIO_PROTECT mutex: setprioceiling", pthread_mutex_setprioceiling(&plain, 10, &old),
          EINVAL);
    pthread_mutexattr_destroy(&a);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_normal();
    test_recursive();
    test_errorcheck();
    test_adaptive();
    test_timed();
    test_lifecycle();
    test_prio();
    return report_failures();
}
