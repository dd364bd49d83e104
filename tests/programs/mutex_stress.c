/* Many threads hammering one mutex: 16 threads x 100,000 lock/inc/unlock
 * on a default mutex, the counter must come out exact; then 4 threads on
 * one recursive mutex taking it three deep (lock, trylock, lock) each
 * time; then 8 threads mixing lock, trylock and timedlock. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "prog.h"

#define NT 16
#define ITERS 100000
#define RT 4
#define RITERS 100000
#define MT 8
#define MITERS 20000

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t rm = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static long counter;       /* protected by m */
static long rcounter;      /* protected by rm */
static volatile int inside; /* threads inside rm's critical section */

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        if (pthread_mutex_lock(&m) != 0)
            return (void *)1;
        counter++;
        if (pthread_mutex_unlock(&m) != 0)
            return (void *)1;
    }
    return NULL;
}

static void *rhammer(void *arg)
{
    (void)arg;
    long bad = 0;
    for (int i = 0; i < RITERS; i++) {
        if (pthread_mutex_lock(&rm) != 0)
            return (void *)1;
        bad += inside != 0;
        inside = 1;
        if (pthread_mutex_trylock(&rm) != 0)
            return (void *)2;
        if (pthread_mutex_lock(&rm) != 0)
            return (void *)3;
        rcounter++;
        if ((i & 1023) == 0)
            sched_yield();   /* switch away three deep */
        pthread_mutex_unlock(&rm);
        pthread_mutex_unlock(&rm);
        bad += inside != 1;
        inside = 0;
        if (pthread_mutex_unlock(&rm) != 0)
            return (void *)4;
    }
    return bad ? (void *)5 : NULL;
}

static void *mixed(void *arg)
{
    intptr_t id = (intptr_t)arg;
    for (int i = 0; i < MITERS; i++) {
        int r;
        switch ((i + id) % 3) {
        case 0:
            r = pthread_mutex_lock(&m);
            break;
        case 1:
            while ((r = pthread_mutex_trylock(&m)) == EBUSY)
                sched_yield();
            break;
        default: {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 10;
            r = pthread_mutex_timedlock(&m, &ts);
            break;
        }
        }
        if (r != 0)
            return (void *)1;
        counter++;
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

static int run(void *(*fn)(void *), int n)
{
    pthread_t t[NT];
    int bad = 0;
    for (intptr_t i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, fn, (void *)i) != 0)
            return 100;
    for (int i = 0; i < n; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        bad += rv != NULL;
    }
    return bad;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);

    int bad = run(hammer, NT);
    printf("default mutex: %d threads x %d: counter %ld (want %ld), thread errors %d\n", NT,
           ITERS, counter, (long)NT * ITERS, bad);
    failures += bad || counter != (long)NT * ITERS;

    bad = run(rhammer, RT);
    printf("recursive mutex: %d threads x %d, 3 deep: counter %ld (want %ld), thread errors %d\n",
           RT, RITERS, rcounter, (long)RT * RITERS, bad);
    failures += bad || rcounter != (long)RT * RITERS;

    counter = 0;
    bad = run(mixed, MT);
    printf("lock/trylock/timedlock: %d threads x %d: counter %ld (want %ld), thread errors %d\n",
           MT, MITERS, counter, (long)MT * MITERS, bad);
    failures += bad || counter != (long)MT * MITERS;

    return report_failures();
}
