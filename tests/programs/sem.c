/* POSIX unnamed semaphores: a counting producer/consumer (exact sum),
 * sem_trywait EAGAIN, sem_timedwait/sem_clockwait ETIMEDOUT and EINVAL,
 * sem_getvalue, sem_post EOVERFLOW at SEM_VALUE_MAX, sem_init EINVAL,
 * sem_post from a signal handler waking a thread in sem_wait (a
 * process-directed signal, and a SIGALRM while main itself waits), and
 * cancellation of a thread blocked in sem_wait (no token lost). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "prog.h"

static int value(sem_t *s)
{
    int v = -12345;
    sem_getvalue(s, &v);
    return v;
}

/* sem_wait, restarted after EINTR (a signal handler may interrupt it) */
static int wait_restart(sem_t *s)
{
    int r;
    while ((r = sem_wait(s)) == -1 && prog_errno() == EINTR)
        ;
    return r;
}

/* ---- basics ------------------------------------------------------------- */

static void test_basics(void)
{
    printf("== basics\n");
    sem_t s;
    check_call("sem_init(0)", sem_init(&s, 0, 0), 0);
    check_true("getvalue == 0", value(&s) == 0);
    check_call("trywait at 0", sem_trywait(&s), EAGAIN);
    check_call("post", sem_post(&s), 0);
    check_call("post", sem_post(&s), 0);
    check_true("getvalue == 2", value(&s) == 2);
    check_call("trywait", sem_trywait(&s), 0);
    check_call("wait", sem_wait(&s), 0);
    check_true("getvalue == 0", value(&s) == 0);

    int64_t t0 = mono_ms();
    struct timespec ts = in_ms(CLOCK_REALTIME, 50);
    check_call("timedwait 50 ms at 0", sem_timedwait(&s, &ts), ETIMEDOUT);
    check_true("  ... waited >= ~50 ms", mono_ms() - t0 >= 45);
    ts.tv_sec = 0;
    ts.tv_nsec = 0;
    check_call("timedwait, deadline in the past", sem_timedwait(&s, &ts), ETIMEDOUT);
    ts = in_ms(CLOCK_REALTIME, 50);
    ts.tv_nsec = 1000000000L;
    check_call("timedwait tv_nsec = 1e9 at 0", sem_timedwait(&s, &ts), EINVAL);
    ts.tv_nsec = -1;
    check_call("timedwait tv_nsec = -1 at 0", sem_timedwait(&s, &ts), EINVAL);
    t0 = mono_ms();
    ts = in_ms(CLOCK_MONOTONIC, 50);
    check_call("clockwait MONOTONIC 50 ms at 0", sem_clockwait(&s, CLOCK_MONOTONIC, &ts),
               ETIMEDOUT);
    check_true("  ... waited >= ~50 ms", mono_ms() - t0 >= 45);
    ts = in_ms(CLOCK_REALTIME, 30);
    check_call("clockwait REALTIME 30 ms at 0", sem_clockwait(&s, CLOCK_REALTIME, &ts), ETIMEDOUT);
    ts = in_ms(CLOCK_MONOTONIC, 30);
    check_call("clockwait bad clockid 12345 at 0", sem_clockwait(&s, 12345, &ts), EINVAL);
    check_true("getvalue == 0 after the failed waits", value(&s) == 0);
    sem_post(&s);
    ts = in_ms(CLOCK_REALTIME, 1000);
    check_call("timedwait at 1", sem_timedwait(&s, &ts), 0);
    sem_post(&s);
    ts = in_ms(CLOCK_MONOTONIC, 1000);
    check_call("clockwait MONOTONIC at 1", sem_clockwait(&s, CLOCK_MONOTONIC, &ts), 0);
    check_call("destroy", sem_destroy(&s), 0);

    check_call("sem_init(SEM_VALUE_MAX)", sem_init(&s, 0, SEM_VALUE_MAX), 0);
    check_true("getvalue == SEM_VALUE_MAX", value(&s) == SEM_VALUE_MAX);
    check_call("post at SEM_VALUE_MAX", sem_post(&s), EOVERFLOW);
    check_true("getvalue still SEM_VALUE_MAX", value(&s) == SEM_VALUE_MAX);
    check_call("trywait", sem_trywait(&s), 0);
    check_call("post back to SEM_VALUE_MAX", sem_post(&s), 0);
    check_call("destroy", sem_destroy(&s), 0);
    check_call("sem_init(SEM_VALUE_MAX + 1)", sem_init(&s, 0, (unsigned)SEM_VALUE_MAX + 1u),
               EINVAL);
    check_call("sem_init(5), re-using the memory", sem_init(&s, 0, 5), 0);
    check_true("getvalue == 5", value(&s) == 5);
    sem_destroy(&s);
}

/* ---- producer / consumer ------------------------------------------------ */

#define CAP 16
#define NP 3
#define NC 3
#define PER 30000
static sem_t empty_slots, full_slots;
static pthread_mutex_t qm = PTHREAD_MUTEX_INITIALIZER;
static long qbuf[CAP];
static int qhead, qtail;

static void *producer(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (long i = 0; i < PER; i++) {
        if (wait_restart(&empty_slots) != 0)
            return (void *)1;
        pthread_mutex_lock(&qm);
        qbuf[qtail] = id * PER + i + 1;
        qtail = (qtail + 1) % CAP;
        pthread_mutex_unlock(&qm);
        sem_post(&full_slots);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    long *sum = arg;
    for (long i = 0; i < PER; i++) {   /* NC == NP: each takes PER items */
        int r;
        if ((i & 3) == 0) {
            while ((r = sem_trywait(&full_slots)) == -1 && prog_errno() == EAGAIN)
                sched_yield();
        } else if ((i & 3) == 1) {
            struct timespec ts = in_ms(CLOCK_REALTIME, 10000);
            r = sem_timedwait(&full_slots, &ts);
        } else {
            r = wait_restart(&full_slots);
        }
        if (r != 0)
            return (void *)1;
        pthread_mutex_lock(&qm);
        *sum += qbuf[qhead];
        qhead = (qhead + 1) % CAP;
        pthread_mutex_unlock(&qm);
        sem_post(&empty_slots);
    }
    return NULL;
}

static void test_prodcons(void)
{
    printf("== producer / consumer\n");
    sem_init(&empty_slots, 0, CAP);
    sem_init(&full_slots, 0, 0);
    pthread_t p[NP], c[NC];
    long sums[NC] = {0};
    int bad = 0;
    for (int i = 0; i < NC; i++)
        pthread_create(&c[i], NULL, consumer, &sums[i]);
    for (intptr_t i = 0; i < NP; i++)
        pthread_create(&p[i], NULL, producer, (void *)i);
    long sum = 0;
    for (int i = 0; i < NP; i++) {
        void *rv;
        pthread_join(p[i], &rv);
        bad += rv != NULL;
    }
    for (int i = 0; i < NC; i++) {
        void *rv;
        pthread_join(c[i], &rv);
        bad += rv != NULL;
        sum += sums[i];
    }
    long n = (long)NP * PER;
    printf("%d producers, %d consumers, %ld items: sum %ld (want %ld), thread errors %d\n", NP, NC,
           n, sum, n * (n + 1) / 2, bad);
    failures += bad || sum != n * (n + 1) / 2;
    check_true("empty_slots back to capacity", value(&empty_slots) == CAP);
    check_true("full_slots back to 0", value(&full_slots) == 0);
    sem_destroy(&empty_slots);
    sem_destroy(&full_slots);
}

/* ---- sem_post from a signal handler ------------------------------------- */

static sem_t sig_sem;
/* Atomic: handlers for different signals may run at once on different
 * threads (natively too), and ++ on a volatile would lose counts. */
static atomic_int handler_runs, handler_post_failed;

static void post_handler(int sig)
{
    (void)sig;
    int saved = errno;
    /* Count before posting: the post may wake the checking thread at
     * once, on another CPU, if the handler runs in some other thread
     * (POSIX lets any thread that does not block it take a kill()). */
    atomic_fetch_add(&handler_runs, 1);
    if (sem_post(&sig_sem) != 0)
        atomic_store(&handler_post_failed, 1);
    errno = saved;
}

static atomic_int sig_waiter_started;
static void *sig_waiter(void *arg)
{
    (void)arg;
    atomic_store(&sig_waiter_started, 1);
    return (void *)(intptr_t)wait_restart(&sig_sem);
}

static void test_signal_post(void)
{
    printf("== sem_post from a signal handler\n");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = post_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    sem_init(&sig_sem, 0, 0);

    /* a thread waits; the process gets SIGUSR1; the handler posts */
    int ok = 0;
    for (int round = 0; round < 20; round++) {
        pthread_t t;
        void *rv;
        atomic_store(&sig_waiter_started, 0);
        pthread_create(&t, NULL, sig_waiter, NULL);
        while (!atomic_load(&sig_waiter_started))
            sched_yield();
        yield_for_ms(round & 1 ? 5 : 0);   /* let it block (or not yet) */
        kill(getpid(), SIGUSR1);
        pthread_join(t, &rv);
        ok += rv == NULL;
    }
    printf("kill(SIGUSR1) -> handler posts -> waiting thread wakes: %d of 20\n", ok);
    failures += ok != 20;

    /* main itself waits; SIGALRM from an interval timer posts */
    struct itimerval it = {{0, 0}, {0, 30000}};   /* once, after 30 ms */
    int64_t t0 = mono_ms();
    setitimer(ITIMER_REAL, &it, NULL);
    int r = wait_restart(&sig_sem);
    check_call("main's sem_wait, SIGALRM handler posts (30 ms)", r, 0);
    check_true("  ... woke after the timer, within 5 s",
               mono_ms() - t0 >= 25 && mono_ms() - t0 < 5000);
    check_true("handler ran 21 times, every post succeeded",
               atomic_load(&handler_runs) == 21 && !atomic_load(&handler_post_failed));
    check_true("getvalue == 0", value(&sig_sem) == 0);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGALRM, SIG_DFL);
    sem_destroy(&sig_sem);
}

/* ---- cancellation in sem_wait ------------------------------------------- */

static sem_t csem;
static atomic_int cstarted, cleanup_ran;

static void cleanup(void *arg)
{
    (void)arg;
    atomic_store(&cleanup_ran, 1);
}

static void *cancel_waiter(void *arg)
{
    (void)arg;
    pthread_cleanup_push(cleanup, NULL);
    atomic_store(&cstarted, 1);
    for (;;)
        sem_wait(&csem);   /* never posted while it lives */
    pthread_cleanup_pop(0);
    return NULL;
}

static void *plain_waiter(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)wait_restart(&csem);
}

static void test_cancel(void)
{
    printf("== cancellation in sem_wait\n");
    sem_init(&csem, 0, 0);
    pthread_t t, u;
    void *rv = NULL;
    pthread_create(&t, NULL, cancel_waiter, NULL);
    while (!atomic_load(&cstarted))
        sched_yield();
    yield_for_ms(20);   /* let it block in sem_wait */
    check_true("pthread_cancel == 0", pthread_cancel(t) == 0);
    check_true("join == 0", pthread_join(t, &rv) == 0);
    check_true("join result is PTHREAD_CANCELED", rv == PTHREAD_CANCELED);
    check_true("cleanup handler ran", atomic_load(&cleanup_ran));
    check_true("getvalue == 0 (the cancelled waiter took nothing)", value(&csem) == 0);
    /* the semaphore still works: a post reaches a new waiter */
    pthread_create(&u, NULL, plain_waiter, NULL);
    yield_for_ms(5);
    sem_post(&csem);
    pthread_join(u, &rv);
    check_true("a new waiter gets the next post", rv == NULL);
    sem_post(&csem);
    check_true("getvalue == 1 after one more post", value(&csem) == 1);
    sem_destroy(&csem);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_basics();
    test_prodcons();
    test_signal_post();
    test_cancel();
    return report_failures();
}
