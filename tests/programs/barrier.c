/* Barriers: 8 threads x 1,000 rounds, exactly one
 * PTHREAD_BARRIER_SERIAL_THREAD per round and nobody passes before all
 * arrived; count 0 -> EINVAL; a count-1 barrier; destroy + re-init with
 * another count; a barrier with 10,000 parties (10,000 threads, 64 KiB
 * stacks). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "prog.h"

/* pthread_barrier_wait's results by name */
static const char *bname(int r)
{
    return r == PTHREAD_BARRIER_SERIAL_THREAD ? "SERIAL_THREAD" : ename(r);
}

static void check_b(const char *what, int got, int want)
{
    check_named(what, got, want, bname);
}

/* ---- rounds ------------------------------------------------------------- */

#define NT 8
#define ROUNDS 1000
static pthread_barrier_t b;
static atomic_int serial[ROUNDS];
static int slot[NT];            /* written before, read after the barrier */
static atomic_int early, bad_rc;
static int nthreads;            /* parties in this pass */

static void *rounds(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        slot[id] = r;
        int rc = pthread_barrier_wait(&b);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
            atomic_fetch_add(&serial[r], 1);
        else if (rc != 0)
            atomic_fetch_add(&bad_rc, 1);
        for (int i = 0; i < nthreads; i++)   /* everybody wrote round r */
            if (__atomic_load_n(&slot[i], __ATOMIC_RELAXED) != r)
                atomic_fetch_add(&early, 1);
        rc = pthread_barrier_wait(&b);   /* nobody writes r+1 before all read */
        if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
            atomic_fetch_add(&bad_rc, 1);
    }
    return NULL;
}

/* ---- many parties -------------------------------------------------------- */

#define BIG 10000
static pthread_barrier_t bigb;
static atomic_int big_serial, big_zero, big_bad, big_arrived;
static atomic_int big_after;   /* threads past the barrier */
static atomic_int big_early;   /* passed while some had not arrived */

static void *big_party(void *arg)
{
    (void)arg;
    atomic_fetch_add(&big_arrived, 1);
    int rc = pthread_barrier_wait(&bigb);
    if (atomic_load(&big_arrived) != BIG)
        atomic_fetch_add(&big_early, 1);
    if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
        atomic_fetch_add(&big_serial, 1);
    else if (rc == 0)
        atomic_fetch_add(&big_zero, 1);
    else
        atomic_fetch_add(&big_bad, 1);
    atomic_fetch_add(&big_after, 1);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_barrier_t x;
    pthread_barrierattr_t a;
    int ps = -1;

    check_b("init count 0", pthread_barrier_init(&x, NULL, 0), EINVAL);
    check_b("barrierattr_init", pthread_barrierattr_init(&a), 0);
    pthread_barrierattr_getpshared(&a, &ps);
    check_b("barrierattr default pshared PRIVATE", ps == PTHREAD_PROCESS_PRIVATE ? 0 : EINVAL, 0);
    check_b("barrierattr_setpshared(12345)", pthread_barrierattr_setpshared(&a, 12345), EINVAL);
    check_b("init count 1 (with attr)", pthread_barrier_init(&x, &a, 1), 0);
    check_b("count-1 barrier: wait", pthread_barrier_wait(&x), PTHREAD_BARRIER_SERIAL_THREAD);
    check_b("count-1 barrier: wait again", pthread_barrier_wait(&x), PTHREAD_BARRIER_SERIAL_THREAD);
    check_b("destroy", pthread_barrier_destroy(&x), 0);
    pthread_barrierattr_destroy(&a);

    /* 8 threads x 1000 rounds, re-using one barrier; then destroy and
     * re-init the same memory with a different count and go again. */
    for (int pass = 0; pass < 2; pass++) {
        int n = pass == 0 ? NT : NT / 2;
        nthreads = n;
        check_b(pass == 0 ? "init count 8" : "re-init count 4", pthread_barrier_init(&b, NULL, n), 0);
        memset(serial, 0, sizeof serial);
        memset(slot, 0, sizeof slot);
        atomic_store(&early, 0);
        atomic_store(&bad_rc, 0);
        pthread_t t[NT];
        for (intptr_t i = 0; i < n; i++)
            pthread_create(&t[i], NULL, rounds, (void *)i);
        for (int i = 0; i < n; i++)
            pthread_join(t[i], NULL);
        int one = 0;
        for (int r = 0; r < ROUNDS; r++)
            one += atomic_load(&serial[r]) == 1;
        printf("%d threads x %d rounds: rounds with exactly one SERIAL_THREAD %d, bad returns %d,"
               " passed before all arrived %d\n",
               n, ROUNDS, one, atomic_load(&bad_rc), atomic_load(&early));
        failures += one != ROUNDS || atomic_load(&bad_rc) || atomic_load(&early);
        check_b("destroy", pthread_barrier_destroy(&b), 0);
    }

    /* 10,000 parties */
    check_b("init count 10000", pthread_barrier_init(&bigb, NULL, BIG), 0);
    pthread_attr_t ta;
    pthread_attr_init(&ta);
    pthread_attr_setstacksize(&ta, 64 * 1024);
    pthread_t *bt = calloc(BIG, sizeof *bt);
    int created = 0;
    for (; created < BIG; created++)
        if (pthread_create(&bt[created], &ta, big_party, NULL) != 0)
            break;
    printf("created %d of %d threads\n", created, BIG);
    if (created != BIG) {
        /* cannot complete the barrier: never reached on a sane system */
        printf("failures: %d\n", failures + 1);
        fflush(stdout);
        _exit(1);
    }
    for (int i = 0; i < BIG; i++)
        pthread_join(bt[i], NULL);
    printf("%d parties: SERIAL_THREAD %d, zero %d, other %d, passed early %d, passed %d\n", BIG,
           atomic_load(&big_serial), atomic_load(&big_zero), atomic_load(&big_bad),
           atomic_load(&big_early), atomic_load(&big_after));
    failures += atomic_load(&big_serial) != 1 || atomic_load(&big_zero) != BIG - 1 ||
                atomic_load(&big_bad) || atomic_load(&big_early);
    check_b("destroy", pthread_barrier_destroy(&bigb), 0);
    free(bt);
    pthread_attr_destroy(&ta);

    return report_failures();
}
