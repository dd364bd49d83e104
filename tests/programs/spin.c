/* Spinlocks: 4 threads x 100,000 lock/inc/unlock, counter exact; trylock
 * EBUSY; then threads that sched_yield() while holding the lock, which at
 * GOMAXPROCS=1 only finishes if a spinning waiter gives the processor
 * back to the holder (spin briefly, then yield); then a holder that spins
 * on plain work for a while (preemption, not a yield, must get it off). */
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

#define NT 4
#define ITERS 100000
#define YITERS 50
#define BUSY_ROUNDS 4

static pthread_spinlock_t sl;
static long counter;
static volatile int inside;
static atomic_long violations;

static void *plain(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        if ((i & 15) == 0) {
            int r;
            while ((r = pthread_spin_trylock(&sl)) == EBUSY)
                ;
            if (r != 0)
                return (void *)1;
        } else if (pthread_spin_lock(&sl) != 0) {
            return (void *)1;
        }
        counter++;
        pthread_spin_unlock(&sl);
    }
    return NULL;
}

static void *yielder(void *arg)
{
    (void)arg;
    for (int i = 0; i < YITERS; i++) {
        pthread_spin_lock(&sl);
        if (inside++)
            atomic_fetch_add(&violations, 1);
        sched_yield();   /* let the waiters spin on the held lock */
        counter++;
        inside--;
        pthread_spin_unlock(&sl);
    }
    return NULL;
}

static void *busy_holder(void *arg)
{
    (void)arg;
    for (int i = 0; i < BUSY_ROUNDS; i++) {
        pthread_spin_lock(&sl);
        if (inside++)
            atomic_fetch_add(&violations, 1);
        int64_t end = mono_ms() + 15;   /* hold it ~15 ms, no yield */
        while (mono_ms() < end)
            ;
        counter++;
        inside--;
        pthread_spin_unlock(&sl);
    }
    return NULL;
}

static int run(void *(*fn)(void *), int n)
{
    pthread_t t[NT];
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, fn, NULL) != 0)
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

    int r = pthread_spin_init(&sl, PTHREAD_PROCESS_PRIVATE);
    printf("spin_init: %d\n", r);
    failures += r != 0;
    r = pthread_spin_lock(&sl);
    int t = pthread_spin_trylock(&sl);
    printf("lock: %d, trylock while held: %s\n", r, t == EBUSY ? "EBUSY" : "WRONG");
    failures += r != 0 || t != EBUSY;
    pthread_spin_unlock(&sl);
    t = pthread_spin_trylock(&sl);
    printf("trylock when free: %d\n", t);
    failures += t != 0;
    pthread_spin_unlock(&sl);

    int bad = run(plain, NT);
    printf("%d threads x %d: counter %ld (want %ld), thread errors %d\n", NT, ITERS, counter,
           (long)NT * ITERS, bad);
    failures += bad || counter != (long)NT * ITERS;

    counter = 0;
    bad = run(yielder, NT);
    printf("%d threads x %d, yielding while holding: counter %ld (want %ld), violations %ld\n", NT,
           YITERS, counter, (long)NT * YITERS, atomic_load(&violations));
    failures += bad || counter != (long)NT * YITERS || atomic_load(&violations);

    counter = 0;
    bad = run(busy_holder, NT);
    printf("%d threads x %d, holding ~15 ms without yielding: counter %ld (want %ld), "
           "violations %ld\n",
           NT, BUSY_ROUNDS, counter, (long)NT * BUSY_ROUNDS, atomic_load(&violations));
    failures += bad || counter != (long)NT * BUSY_ROUNDS || atomic_load(&violations);

    r = pthread_spin_destroy(&sl);
    printf("spin_destroy: %d\n", r);
    failures += r != 0;
    r = pthread_spin_init(&sl, PTHREAD_PROCESS_SHARED);
    printf("spin_init(PROCESS_SHARED): %d\n", r);
    failures += r != 0;
    pthread_spin_destroy(&sl);

    return report_failures();
}
