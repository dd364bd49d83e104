/* errno and __thread variables are per thread, across yields (which under
 * an M:N scheduler may move a thread to another kernel thread). The checks
 * re-read errno after each yield in the same function, so a compiler that
 * caches &errno (it is declared const) would expose a shared TLS block. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include "prog.h"

#define NTHREADS 8
#define YIELDS 2000

static __thread int tls_var;
static __thread int tls_array[16];
static atomic_int started;

static __attribute__((noinline)) int check_errno(int mine)
{
    int bad = 0;
    errno = mine;
    for (int i = 0; i < YIELDS; i++) {
        sched_yield();
        if (errno != mine)
            bad++;
        errno = mine; /* keep it set even if a yield clobbered it */
    }
    return bad;
}

static __attribute__((noinline)) int check_tls(int mine)
{
    int bad = 0;
    tls_var = mine;
    for (int j = 0; j < 16; j++)
        tls_array[j] = mine * 100 + j;
    for (int i = 0; i < YIELDS; i++) {
        sched_yield();
        if (tls_var != mine)
            bad++;
        for (int j = 0; j < 16; j++)
            if (tls_array[j] != mine * 100 + j)
                bad++;
    }
    return bad;
}

/* Result bits: which property broke. */
enum { BAD_FRESH = 1, BAD_ERRNO = 2, BAD_TLS = 4 };

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    intptr_t bad = 0;
#ifdef CHECK_TLS
    if (tls_var != 0 || tls_array[3] != 0) /* fresh thread: zeroed TLS */
        bad |= BAD_FRESH;
#endif
    atomic_fetch_add(&started, 1);
    while (atomic_load(&started) < NTHREADS) /* overlap all threads */
        sched_yield();
    if (check_errno(1000 + id))
        bad |= BAD_ERRNO;
#ifdef CHECK_TLS
    /* __thread per G needs a TCB per G (GSHIM_TLS=per-g, the thread
     * identity issue); shared-TLS mode fails this by design. */
    if (check_tls(id + 1))
        bad |= BAD_TLS;
#else
    (void)check_tls;
#endif
    /* errno from a failing call is this thread's */
    errno = 0;
    if (sched_setscheduler(-1, 0, NULL) != -1 || errno != EINVAL)
        bad |= BAD_ERRNO;
    return (void *)bad;
}

static const char *verdict(intptr_t bad, int bit)
{
    return bad & bit ? "CORRUPTED" : "ok";
}

int main(void)
{
    pthread_t t[NTHREADS];
    errno = 4242;
#ifdef CHECK_TLS
    tls_var = -7;
#endif
    for (intptr_t i = 0; i < NTHREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0)
            return 2;
    void *rv[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], &rv[i]);
    /* read before printf: stdio may set errno (isatty on a pipe) */
    int main_errno = errno, main_tls = -7;
#ifdef CHECK_TLS
    main_tls = tls_var;
#endif
    for (int i = 0; i < NTHREADS; i++) {
        intptr_t b = (intptr_t)rv[i];
        printf("thread %d: fresh __thread %s, errno %s, __thread %s\n", i,
               verdict(b, BAD_FRESH), verdict(b, BAD_ERRNO), verdict(b, BAD_TLS));
        failures += rv[i] != NULL;
    }
    printf("main: errno %s, __thread %s\n", main_errno == 4242 ? "ok" : "CORRUPTED",
           main_tls == -7 ? "ok" : "CORRUPTED");
    failures += main_errno != 4242 || main_tls != -7;
    return failures ? 1 : 0;
}
