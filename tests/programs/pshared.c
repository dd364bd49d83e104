/* Process-shared objects used by two processes: main forks before any
 * thread exists, then each process runs 2 threads on objects in a
 * MAP_SHARED|MAP_ANONYMOUS mapping:
 *   - a PTHREAD_PROCESS_SHARED mutex + condvar: the 4 threads pass a turn
 *     round robin (parent, child, parent, child) 1,000 times each, each
 *     checking the value the previous one left;
 *   - a pshared barrier with 4 parties, 200 rounds, exactly one
 *     SERIAL_THREAD per round across both processes;
 *   - a pshared rwlock: writers and readers from both processes, a
 *     checked invariant;
 *   - an unnamed pshared semaphore pair: ping-pong 1,000 times between
 *     one thread of each process;
 *   - a pshared RECURSIVE mutex: held by one thread, another thread of the
 *     same process must get EBUSY from trylock and EPERM from unlock;
 *   - a named semaphore (sem_open with the pid in its name): the child
 *     posts 100 times, the parent takes 100; sem_unlink at the end.
 * Only the parent prints; the child reports through its exit status. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "prog.h"

#define TURNS 1000
#define BROUNDS 200
#define RWITERS 2000
#define PINGS 1000
#define NAMED 100

struct shared {
    pthread_mutex_t m;
    pthread_cond_t c;
    int turn;
    long value;
    pthread_barrier_t b;
    atomic_int serial[BROUNDS];
    pthread_rwlock_t rw;
    long rw_a, rw_b;
    atomic_int rw_writers, rw_readers;
    sem_t ping, pong;
    long sem_value;
    pthread_mutex_t rec;
    atomic_int rec_state;   /* per process: see rec_test */
    atomic_int errors[2][2];  /* [process][thread] */
    atomic_int rec_results[2]; /* [process]: trylock, unlock results ok */
};

static struct shared *sh;
static int proc;   /* 0 parent, 1 child */

static void err(int t, const char *what, long got, long want)
{
    atomic_fetch_add(&sh->errors[proc][t], 1);
    fprintf(stderr, "process %d thread %d: %s: got %ld, want %ld\n", proc, t, what, got, want);
}

static int wait_restart(sem_t *s)
{
    int r;
    while ((r = sem_wait(s)) == -1 && errno == EINTR)
        ;
    return r;
}

static atomic_int rec_flag[2];   /* per process (not shared): 1 held, 2 checked */

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    int k = t * 2 + proc;   /* turn order: P0T0, P1T0, P0T1, P1T1 */
    int r;

    if ((r = pthread_barrier_wait(&sh->b)) != 0 && r != PTHREAD_BARRIER_SERIAL_THREAD)
        err(t, "start barrier", r, 0);

    /* mutex + condvar round robin */
    for (int round = 0; round < TURNS; round++) {
        if ((r = pthread_mutex_lock(&sh->m)) != 0)
            err(t, "mutex_lock", r, 0);
        while (sh->turn != k)
            if ((r = pthread_cond_wait(&sh->c, &sh->m)) != 0) {
                err(t, "cond_wait", r, 0);
                break;
            }
        if (sh->value != (long)round * 4 + k)
            err(t, "value seen", sh->value, (long)round * 4 + k);
        sh->value++;
        sh->turn = (k + 1) % 4;
        pthread_cond_broadcast(&sh->c);
        if ((r = pthread_mutex_unlock(&sh->m)) != 0)
            err(t, "mutex_unlock", r, 0);
    }

    /* barrier rounds */
    for (int round = 0; round < BROUNDS; round++) {
        r = pthread_barrier_wait(&sh->b);
        if (r == PTHREAD_BARRIER_SERIAL_THREAD)
            atomic_fetch_add(&sh->serial[round], 1);
        else if (r != 0)
            err(t, "barrier_wait", r, 0);
    }

    /* rwlock */
    for (int i = 0; i < RWITERS; i++) {
        if (i % 4 == k % 4) {
            if ((r = pthread_rwlock_wrlock(&sh->rw)) != 0) {
                err(t, "wrlock", r, 0);
                continue;
            }
            if (atomic_fetch_add(&sh->rw_writers, 1) != 0 || atomic_load(&sh->rw_readers) != 0)
                err(t, "writer not alone", 0, 0);
            sh->rw_a++;
            if ((i & 63) == 0)
                sched_yield();
            sh->rw_b++;
            atomic_fetch_sub(&sh->rw_writers, 1);
        } else {
            if ((r = pthread_rwlock_rdlock(&sh->rw)) != 0) {
                err(t, "rdlock", r, 0);
                continue;
            }
            atomic_fetch_add(&sh->rw_readers, 1);
            if (atomic_load(&sh->rw_writers) != 0 || sh->rw_a != sh->rw_b)
                err(t, "reader saw a writer", 0, 0);
            atomic_fetch_sub(&sh->rw_readers, 1);
        }
        pthread_rwlock_unlock(&sh->rw);
    }

    /* unnamed pshared semaphores: thread 0 of each process */
    if (t == 0) {
        for (long j = 0; j < PINGS; j++) {
            if (proc == 0) {
                sh->sem_value = 2 * j;
                sem_post(&sh->ping);
                if (wait_restart(&sh->pong) != 0)
                    err(t, "sem_wait(pong)", errno, 0);
                if (sh->sem_value != 2 * j + 1)
                    err(t, "pong value", sh->sem_value, 2 * j + 1);
            } else {
                if (wait_restart(&sh->ping) != 0)
                    err(t, "sem_wait(ping)", errno, 0);
                if (sh->sem_value != 2 * j)
                    err(t, "ping value", sh->sem_value, 2 * j);
                sh->sem_value = 2 * j + 1;
                sem_post(&sh->pong);
            }
        }
    }

    /* pshared recursive mutex: owner identity between two threads of one
     * process (one process at a time: the mutex is shared) */
    if ((r = pthread_barrier_wait(&sh->b)) != 0 && r != PTHREAD_BARRIER_SERIAL_THREAD)
        err(t, "barrier", r, 0);
    for (int p = 0; p < 2; p++) {
        if (p == proc) {
            if (t == 0) {
                /* timed: if the other process's owner could not unlock
                 * it, fail instead of hanging */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 5;
                if ((r = pthread_mutex_timedlock(&sh->rec, &ts)) != 0)
                    err(t, "rec lock", r, 0);
                atomic_store(&rec_flag[proc], 1);
                while (atomic_load(&rec_flag[proc]) != 2)
                    sched_yield();
                if ((r = pthread_mutex_unlock(&sh->rec)) != 0)
                    err(t, "rec unlock by owner", r, 0);
            } else {
                while (atomic_load(&rec_flag[proc]) != 1)
                    sched_yield();
                int tr = pthread_mutex_trylock(&sh->rec);
                if (tr == 0)
                    pthread_mutex_unlock(&sh->rec);   /* undo the wrong lock */
                int ur = pthread_mutex_unlock(&sh->rec);
                if (tr != EBUSY)
                    fprintf(stderr, "process %d: pshared recursive mutex held by another "
                                    "thread: trylock %d, want EBUSY\n", proc, tr);
                if (ur != EPERM)
                    fprintf(stderr, "process %d: pshared recursive mutex held by another "
                                    "thread: unlock %d, want EPERM\n", proc, ur);
                if (tr == EBUSY && ur == EPERM)
                    atomic_fetch_add(&sh->rec_results[proc], 1);
                atomic_store(&rec_flag[proc], 2);
            }
        }
        if ((r = pthread_barrier_wait(&sh->b)) != 0 && r != PTHREAD_BARRIER_SERIAL_THREAD)
            err(t, "barrier", r, 0);
    }
    return NULL;
}

static int run_threads(void)
{
    pthread_t t[2];
    for (intptr_t i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0)
            return 1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    return atomic_load(&sh->errors[proc][0]) + atomic_load(&sh->errors[proc][1]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 2;

    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    int r = pthread_mutex_init(&sh->m, &ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    r |= pthread_mutex_init(&sh->rec, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    r |= pthread_cond_init(&sh->c, &ca);
    pthread_condattr_destroy(&ca);
    pthread_barrierattr_t ba;
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    r |= pthread_barrier_init(&sh->b, &ba, 4);
    pthread_barrierattr_destroy(&ba);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setpshared(&ra, PTHREAD_PROCESS_SHARED);
    r |= pthread_rwlock_init(&sh->rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    r |= sem_init(&sh->ping, 1, 0);
    r |= sem_init(&sh->pong, 1, 0);
    printf("pshared objects initialised: %s\n", r ? "NO" : "yes");
    if (r)
        return 1;

    char name[64];
    snprintf(name, sizeof name, "/gshim-pshared-test-%d", (int)getpid());
    sem_t *named = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    printf("sem_open(O_CREAT | O_EXCL): %s\n", named == SEM_FAILED ? strerror(errno) : "ok");
    if (named == SEM_FAILED)
        return 1;

    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        sem_unlink(name);
        return 1;
    }
    alarm(20);   /* both processes: a hang dies (SIGALRM) instead */
    if (child == 0) {
        proc = 1;
        int bad = run_threads();
        for (int i = 0; i < NAMED; i++)
            if (sem_post(named) != 0)
                bad++;
        sem_close(named);
        _exit(bad > 100 ? 100 : bad);
    }

    proc = 0;
    int bad = run_threads();
    int got = 0;
    for (int i = 0; i < NAMED; i++)
        got += wait_restart(named) == 0;
    int v = -1;
    sem_getvalue(named, &v);
    int status = 0;
    waitpid(child, &status, 0);
    int child_bad = WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);

    int serial_ok = 0;
    for (int i = 0; i < BROUNDS; i++)
        serial_ok += atomic_load(&sh->serial[i]) == 1;
    printf("child exited: %s\n", child_bad ? "with errors" : "cleanly");
    printf("errors: parent threads %d, child %s\n", bad, child_bad ? "non-zero" : "0");
    printf("mutex+cond round robin: final value %ld (want %d)\n", sh->value, 4 * TURNS);
    printf("barrier: rounds with exactly one SERIAL_THREAD %d of %d\n", serial_ok, BROUNDS);
    printf("rwlock: writes %ld / %ld (want %d)\n", sh->rw_a, sh->rw_b, 4 * (RWITERS / 4));
    printf("unnamed semaphores: final ping-pong value %ld (want %d)\n", sh->sem_value,
           2 * PINGS - 1);
    printf("pshared recursive mutex, other thread: trylock EBUSY and unlock EPERM: parent %s, "
           "child %s\n",
           atomic_load(&sh->rec_results[0]) ? "yes" : "NO", atomic_load(&sh->rec_results[1]) ? "yes" : "NO");
    printf("named semaphore: took %d of %d posts, value now %d\n", got, NAMED, v);
    int unl = sem_unlink(name);
    printf("sem_close + sem_unlink: %s\n", sem_close(named) == 0 && unl == 0 ? "ok" : "FAILED");

    failures = bad + (child_bad != 0) + (sh->value != 4 * TURNS) + (serial_ok != BROUNDS) +
                   (sh->rw_a != 4 * (RWITERS / 4)) + (sh->rw_b != sh->rw_a) +
                   (sh->sem_value != 2 * PINGS - 1) + !atomic_load(&sh->rec_results[0]) +
                   !atomic_load(&sh->rec_results[1]) + (got != NAMED) + (v != 0) + (unl != 0);
    return report_failures();
}
