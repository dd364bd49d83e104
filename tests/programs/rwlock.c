/* Read-write locks: readers share, a writer excludes everybody;
 * tryrdlock/trywrlock EBUSY; timed and clock variants ETIMEDOUT and
 * EINVAL; EDEADLK for wrlock twice and rdlock while holding the write
 * lock; the writer-preferring kind (static initializer and
 * pthread_rwlockattr_setkind_np) blocks new readers while a writer waits,
 * the default kind does not; a stress of 8 readers and 4 writers with a
 * checked invariant. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "prog.h"

/* ---- a helper thread holding the lock for read or write ---------------- */

struct holder {
    pthread_t t;
    pthread_rwlock_t *rw;
    int write;
    atomic_int state;  /* 0 starting, 1 holding, 2 release */
    int rc;
};

static void *holder_fn(void *arg)
{
    struct holder *h = arg;
    h->rc = h->write ? pthread_rwlock_wrlock(h->rw) : pthread_rwlock_rdlock(h->rw);
    atomic_store(&h->state, 1);
    while (atomic_load(&h->state) != 2)
        sched_yield();
    if (h->rc == 0)
        h->rc = pthread_rwlock_unlock(h->rw);
    return NULL;
}

static void hold(struct holder *h, pthread_rwlock_t *rw, int write)
{
    h->rw = rw;
    h->write = write;
    h->rc = -1;
    atomic_store(&h->state, 0);
    pthread_create(&h->t, NULL, holder_fn, h);
    while (atomic_load(&h->state) != 1)
        sched_yield();
}

static void release(struct holder *h)
{
    atomic_store(&h->state, 2);
    pthread_join(h->t, NULL);
    if (h->rc != 0) {
        printf("holder: %s   <-- WRONG\n", ename(h->rc));
        failures++;
    }
}

/* ---- concurrent readers ------------------------------------------------- */

#define NR 4
static pthread_rwlock_t crw = PTHREAD_RWLOCK_INITIALIZER;
static atomic_int cinside, cmax;

static void *conc_reader(void *arg)
{
    (void)arg;
    if (pthread_rwlock_rdlock(&crw) != 0)
        return (void *)1;
    int n = atomic_fetch_add(&cinside, 1) + 1;
    int m = atomic_load(&cmax);
    while (n > m && !atomic_compare_exchange_weak(&cmax, &m, n))
        ;
    /* Stay inside until all readers are in, or 2 s went by. */
    int64_t end = mono_ms() + 2000;
    while (atomic_load(&cinside) < NR && mono_ms() < end)
        sched_yield();
    int64_t hold_until = mono_ms() + 20;
    while (mono_ms() < hold_until)
        sched_yield();
    atomic_fetch_sub(&cinside, 1);
    pthread_rwlock_unlock(&crw);
    return NULL;
}

static void test_readers_writer(void)
{
    printf("== readers share, writers exclude\n");
    pthread_t t[NR];
    for (int i = 0; i < NR; i++)
        pthread_create(&t[i], NULL, conc_reader, NULL);
    for (int i = 0; i < NR; i++)
        pthread_join(t[i], NULL);
    printf("concurrent readers: %s\n", atomic_load(&cmax) >= 2 ? "yes" : "NO   <-- WRONG");
    failures += atomic_load(&cmax) < 2;

    pthread_rwlock_t rw;
    check_eq("init", pthread_rwlock_init(&rw, NULL), 0);
    check_eq("rdlock", pthread_rwlock_rdlock(&rw), 0);
    check_eq("rdlock again (same thread, recursive read)", pthread_rwlock_rdlock(&rw), 0);
    check_eq("tryrdlock (same thread)", pthread_rwlock_tryrdlock(&rw), 0);
    check_eq("trywrlock while read-held", pthread_rwlock_trywrlock(&rw), EBUSY);
    struct timespec ts = in_ms(CLOCK_REALTIME, 30);
    check_eq("timedwrlock while read-held (by me)", pthread_rwlock_timedwrlock(&rw, &ts), ETIMEDOUT);
    check_eq("unlock x3", pthread_rwlock_unlock(&rw) ?: pthread_rwlock_unlock(&rw)
                            ?: pthread_rwlock_unlock(&rw), 0);
    check_eq("wrlock", pthread_rwlock_wrlock(&rw), 0);
    check_eq("wrlock again", pthread_rwlock_wrlock(&rw), EDEADLK);
    check_eq("rdlock while holding the write lock", pthread_rwlock_rdlock(&rw), EDEADLK);
    check_eq("tryrdlock while holding the write lock", pthread_rwlock_tryrdlock(&rw), EBUSY);
    check_eq("trywrlock while holding the write lock", pthread_rwlock_trywrlock(&rw), EBUSY);
    ts = in_ms(CLOCK_REALTIME, 30);
    check_eq("timedwrlock while holding the write lock", pthread_rwlock_timedwrlock(&rw, &ts),
          EDEADLK);
    check_eq("timedrdlock while holding the write lock", pthread_rwlock_timedrdlock(&rw, &ts),
          EDEADLK);
    check_eq("unlock", pthread_rwlock_unlock(&rw), 0);
    check_eq("trywrlock when free", pthread_rwlock_trywrlock(&rw), 0);
    check_eq("unlock", pthread_rwlock_unlock(&rw), 0);

    struct holder h;
    hold(&h, &rw, 1);
    printf("-- another thread holds the write lock\n");
    check_eq("tryrdlock", pthread_rwlock_tryrdlock(&rw), EBUSY);
    check_eq("trywrlock", pthread_rwlock_trywrlock(&rw), EBUSY);
    int64_t t0 = mono_ms();
    ts = in_ms(CLOCK_REALTIME, 50);
    check_eq("timedrdlock 50 ms", pthread_rwlock_timedrdlock(&rw, &ts), ETIMEDOUT);
    check_true("  ... waited >= ~50 ms", mono_ms() - t0 >= 45);
    t0 = mono_ms();
    ts = in_ms(CLOCK_REALTIME, 50);
    check_eq("timedwrlock 50 ms", pthread_rwlock_timedwrlock(&rw, &ts), ETIMEDOUT);
    check_true("  ... waited >= ~50 ms", mono_ms() - t0 >= 45);
    ts = in_ms(CLOCK_MONOTONIC, 30);
    check_eq("clockrdlock MONOTONIC 30 ms", pthread_rwlock_clockrdlock(&rw, CLOCK_MONOTONIC, &ts),
          ETIMEDOUT);
    check_eq("clockwrlock MONOTONIC 30 ms", pthread_rwlock_clockwrlock(&rw, CLOCK_MONOTONIC, &ts),
          ETIMEDOUT);
    ts = in_ms(CLOCK_REALTIME, 30);
    check_eq("clockwrlock REALTIME 30 ms", pthread_rwlock_clockwrlock(&rw, CLOCK_REALTIME, &ts),
          ETIMEDOUT);
    ts = in_ms(CLOCK_MONOTONIC, 30);
    check_eq("clockrdlock bad clockid 12345", pthread_rwlock_clockrdlock(&rw, 12345, &ts), EINVAL);
    check_eq("clockwrlock CLOCK_PROCESS_CPUTIME_ID",
          pthread_rwlock_clockwrlock(&rw, CLOCK_PROCESS_CPUTIME_ID, &ts), EINVAL);
    ts.tv_nsec = 1000000000L;
    check_eq("timedrdlock tv_nsec = 1e9", pthread_rwlock_timedrdlock(&rw, &ts), EINVAL);
    ts.tv_nsec = -1;
    check_eq("timedwrlock tv_nsec = -1", pthread_rwlock_timedwrlock(&rw, &ts), EINVAL);
    release(&h);

    hold(&h, &rw, 0);
    printf("-- another thread holds a read lock\n");
    check_eq("tryrdlock", pthread_rwlock_tryrdlock(&rw), 0);
    check_eq("unlock", pthread_rwlock_unlock(&rw), 0);
    check_eq("trywrlock", pthread_rwlock_trywrlock(&rw), EBUSY);
    t0 = mono_ms();
    ts = in_ms(CLOCK_REALTIME, 50);
    check_eq("timedwrlock 50 ms", pthread_rwlock_timedwrlock(&rw, &ts), ETIMEDOUT);
    check_true("  ... waited >= ~50 ms", mono_ms() - t0 >= 45);
    ts = in_ms(CLOCK_REALTIME, 1000);
    check_eq("timedrdlock", pthread_rwlock_timedrdlock(&rw, &ts), 0);
    check_eq("unlock", pthread_rwlock_unlock(&rw), 0);
    release(&h);

    /* a blocked writer gets the lock when the readers leave */
    hold(&h, &rw, 0);
    atomic_store(&h.state, 2);   /* the reader leaves soon */
    ts = in_ms(CLOCK_MONOTONIC, 5000);
    check_eq("clockwrlock, reader leaves while waiting",
          pthread_rwlock_clockwrlock(&rw, CLOCK_MONOTONIC, &ts), 0);
    pthread_join(h.t, NULL);
    check_eq("unlock", pthread_rwlock_unlock(&rw), 0);
    check_eq("destroy", pthread_rwlock_destroy(&rw), 0);
    check_eq("re-init", pthread_rwlock_init(&rw, NULL), 0);
    check_eq("wrlock + unlock after re-init",
          pthread_rwlock_wrlock(&rw) ?: pthread_rwlock_unlock(&rw), 0);
    check_eq("destroy", pthread_rwlock_destroy(&rw), 0);
}

/* ---- writer preference -------------------------------------------------- */

static atomic_int wp_writer_state;  /* 1 about to wrlock, 2 got it */
static void *wp_writer(void *arg)
{
    pthread_rwlock_t *rw = arg;
    atomic_store(&wp_writer_state, 1);
    int r = pthread_rwlock_wrlock(rw);
    atomic_store(&wp_writer_state, 2);
    if (r == 0)
        pthread_rwlock_unlock(rw);
    return (void *)(intptr_t)r;
}

/* A reader holds rw; a writer blocks; does a new tryrdlock get in? */
static void preference(const char *name, pthread_rwlock_t *rw, int writer_pref)
{
    struct holder h;
    pthread_t w;
    void *rv;
    hold(&h, rw, 0);
    atomic_store(&wp_writer_state, 0);
    pthread_create(&w, NULL, wp_writer, rw);
    while (atomic_load(&wp_writer_state) == 0)
        sched_yield();
    int r;
    if (writer_pref) {
        /* wait until the writer is queued: then new readers are refused */
        int64_t end = mono_ms() + 3000;
        while ((r = pthread_rwlock_tryrdlock(rw)) == 0 && mono_ms() < end) {
            pthread_rwlock_unlock(rw);
            sched_yield();
        }
        if (r == 0)
            pthread_rwlock_unlock(rw);
    } else {
        yield_for_ms(50);   /* the writer has long been waiting */
        r = pthread_rwlock_tryrdlock(rw);
        if (r == 0)
            pthread_rwlock_unlock(rw);
    }
    char buf[120];
    snprintf(buf, sizeof buf, "%s: tryrdlock while a writer waits", name);
    check_eq(buf, r, writer_pref ? EBUSY : 0);
    if (writer_pref) {
        struct timespec ts = in_ms(CLOCK_REALTIME, 30);
        snprintf(buf, sizeof buf, "%s: timedrdlock while a writer waits", name);
        check_eq(buf, pthread_rwlock_timedrdlock(rw, &ts), ETIMEDOUT);
    }
    snprintf(buf, sizeof buf, "%s: writer still waiting", name);
    check_true(buf, atomic_load(&wp_writer_state) == 1);
    release(&h);
    pthread_join(w, &rv);
    snprintf(buf, sizeof buf, "%s: writer's wrlock after the reader left", name);
    check_eq(buf, (int)(intptr_t)rv, 0);
}

static void test_writer_preference(void)
{
    printf("== writer preference\n");
    pthread_rwlockattr_t a;
    int kind = -1, ps = -1;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_getkind_np(&a, &kind);
    check_true("rwlockattr default kind is PREFER_READER",
               kind == PTHREAD_RWLOCK_PREFER_READER_NP);
    pthread_rwlockattr_getpshared(&a, &ps);
    check_true("rwlockattr default pshared is PRIVATE", ps == PTHREAD_PROCESS_PRIVATE);
    check_eq("setkind_np(12345)", pthread_rwlockattr_setkind_np(&a, 12345), EINVAL);
    check_eq("setkind_np(PREFER_WRITER_NONRECURSIVE)",
          pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP), 0);
    pthread_rwlockattr_getkind_np(&a, &kind);
    check_true("getkind_np == PREFER_WRITER_NONRECURSIVE",
               kind == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);

    pthread_rwlock_t def = PTHREAD_RWLOCK_INITIALIZER;
    preference("default (reader-preferring)", &def, 0);

    pthread_rwlock_t wp;
    pthread_rwlock_init(&wp, &a);
    preference("setkind_np writer-preferring", &wp, 1);
    pthread_rwlock_destroy(&wp);
    pthread_rwlockattr_destroy(&a);

    pthread_rwlock_t swp = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
    preference("WRITER_NONRECURSIVE_INITIALIZER_NP", &swp, 1);
}

/* ---- stress ------------------------------------------------------------- */

#define SR 8
#define SW 4
#define R_ITERS 30000
#define W_ITERS 10000
static pthread_rwlock_t srw = PTHREAD_RWLOCK_INITIALIZER;
static long sa, sb;              /* writers keep sa == sb */
static atomic_int readers_in, writers_in;
static atomic_long violations;

static void *s_reader(void *arg)
{
    (void)arg;
    for (int i = 0; i < R_ITERS; i++) {
        int r = (i & 7) == 0 ? pthread_rwlock_tryrdlock(&srw) : pthread_rwlock_rdlock(&srw);
        if (r == EBUSY)
            continue;
        if (r != 0)
            return (void *)1;
        atomic_fetch_add(&readers_in, 1);
        if (atomic_load(&writers_in) != 0)
            atomic_fetch_add(&violations, 1);
        long a = sa;
        if ((i & 511) == 0)
            sched_yield();
        if (a != sb)
            atomic_fetch_add(&violations, 1);
        atomic_fetch_sub(&readers_in, 1);
        pthread_rwlock_unlock(&srw);
    }
    return NULL;
}

static void *s_writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < W_ITERS; i++) {
        int r;
        if ((i & 15) == 0) {
            struct timespec ts = in_ms(CLOCK_REALTIME, 10000);
            r = pthread_rwlock_timedwrlock(&srw, &ts);
        } else {
            r = pthread_rwlock_wrlock(&srw);
        }
        if (r != 0)
            return (void *)1;
        if (atomic_fetch_add(&writers_in, 1) != 0 || atomic_load(&readers_in) != 0)
            atomic_fetch_add(&violations, 1);
        sa++;
        if ((i & 255) == 0)
            sched_yield();
        sb++;
        atomic_fetch_sub(&writers_in, 1);
        pthread_rwlock_unlock(&srw);
    }
    return NULL;
}

static void test_stress(void)
{
    printf("== stress\n");
    pthread_t r[SR], w[SW];
    int bad = 0;
    for (int i = 0; i < SR; i++)
        pthread_create(&r[i], NULL, s_reader, NULL);
    for (int i = 0; i < SW; i++)
        pthread_create(&w[i], NULL, s_writer, NULL);
    for (int i = 0; i < SR; i++) {
        void *rv;
        pthread_join(r[i], &rv);
        bad += rv != NULL;
    }
    for (int i = 0; i < SW; i++) {
        void *rv;
        pthread_join(w[i], &rv);
        bad += rv != NULL;
    }
    printf("%d readers x %d, %d writers x %d: counter %ld (want %ld), violations %ld, "
           "thread errors %d\n",
           SR, R_ITERS, SW, W_ITERS, sb, (long)SW * W_ITERS, atomic_load(&violations), bad);
    failures += bad || sa != (long)SW * W_ITERS || sb != sa || atomic_load(&violations);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_readers_writer();
    test_writer_preference();
    test_stress();
    return report_failures();
}
