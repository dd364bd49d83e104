/* The chain that deadlocked at GOMAXPROCS=1 while gshim's sync objects
 * were glibc's (each wait blocked the only M): thread A waits on a condvar
 * for a flag that thread B sets, after B itself waited on a semaphore that
 * main posts.  200 rounds, the two threads started in both orders; then a
 * longer chain where B, after the semaphore, also needs a mutex main holds,
 * a barrier with main and a write lock main's read lock delays. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include "prog.h"

#define ROUNDS 200

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;  /* main holds it a while */
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_barrier_t bar;
static sem_t s;
static int flag;
static long shared_value;

static int sem_wait_restart(sem_t *x)
{
    int r;
    while ((r = sem_wait(x)) == -1 && errno == EINTR)
        ;
    return r;
}

static void *thread_a(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    while (!flag)
        pthread_cond_wait(&c, &m);
    long v = shared_value;
    pthread_mutex_unlock(&m);
    return (void *)(intptr_t)(v == 42 ? 0 : 1);
}

static void *thread_b(void *arg)
{
    int variant = (int)(intptr_t)arg;
    if (sem_wait_restart(&s) != 0)
        return (void *)1;
    if (variant) {
        /* more links: a mutex main still holds, then a barrier with main,
         * then a write lock main's read lock delays */
        pthread_mutex_lock(&gate);
        pthread_mutex_unlock(&gate);
        pthread_barrier_wait(&bar);
        pthread_rwlock_wrlock(&rw);
        pthread_rwlock_unlock(&rw);
    }
    pthread_mutex_lock(&m);
    shared_value = 42;
    flag = 1;
    pthread_cond_signal(&c);
    pthread_mutex_unlock(&m);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    sem_init(&s, 0, 0);
    pthread_barrier_init(&bar, NULL, 2);
    for (int variant = 0; variant < 2; variant++) {
        int ok = 0;
        for (int round = 0; round < ROUNDS; round++) {
            pthread_t a, b;
            void *ra, *rb;
            flag = 0;
            shared_value = 0;
            if (variant)
                pthread_mutex_lock(&gate);
            if (round & 1) {
                pthread_create(&b, NULL, thread_b, (void *)(intptr_t)variant);
                pthread_create(&a, NULL, thread_a, NULL);
            } else {
                pthread_create(&a, NULL, thread_a, NULL);
                pthread_create(&b, NULL, thread_b, (void *)(intptr_t)variant);
            }
            for (int i = 0; i < round % 4; i++)
                sched_yield();   /* vary where A and B are when main posts */
            sem_post(&s);
            if (variant) {
                for (int i = 0; i < round % 3; i++)
                    sched_yield();
                pthread_rwlock_rdlock(&rw);   /* B's wrlock waits for this */
                pthread_mutex_unlock(&gate);
                pthread_barrier_wait(&bar);
                for (int i = 0; i < round % 3; i++)
                    sched_yield();
                pthread_rwlock_unlock(&rw);
            }
            pthread_join(a, &ra);
            pthread_join(b, &rb);
            ok += ra == NULL && rb == NULL;
        }
        printf("%s: %d of %d rounds completed correctly\n",
               variant ? "cond <- mutex <- barrier <- rwlock <- sem <- main"
                       : "A waits on cond <- B waits on sem <- main posts",
               ok, ROUNDS);
        failures += ok != ROUNDS;
    }
    pthread_barrier_destroy(&bar);
    sem_destroy(&s);
    return report_failures();
}
