/* pthread_once from many threads at once: the init routine runs exactly
 * once, and every caller returns only after it completed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include "prog.h"

#define NTHREADS 32
#define ROUNDS 8

static pthread_once_t once[ROUNDS];
static atomic_int init_calls[ROUNDS];
static atomic_int value[ROUNDS];
static atomic_int arrived[ROUNDS];
static atomic_int saw_value[ROUNDS];
static int cur_round;

static void init_routine(void)
{
    int r = cur_round;
    atomic_fetch_add(&init_calls[r], 1);
    /* Be slow, so other callers really have to wait for us. */
    for (int i = 0; i < 200; i++)
        sched_yield();
    atomic_store_explicit(&value[r], 42 + r, memory_order_relaxed);
}

static void *caller(void *arg)
{
    int r = (int)(intptr_t)arg;
    atomic_fetch_add(&arrived[r], 1);
    while (atomic_load(&arrived[r]) < NTHREADS) /* start together */
        sched_yield();
    if (pthread_once(&once[r], init_routine) != 0)
        return (void *)1;
    if (atomic_load_explicit(&value[r], memory_order_relaxed) == 42 + r)
        atomic_fetch_add(&saw_value[r], 1);
    /* A second call never runs init again. */
    pthread_once(&once[r], init_routine);
    return NULL;
}

int main(void)
{
    for (int r = 0; r < ROUNDS; r++) {
        pthread_once_t fresh = PTHREAD_ONCE_INIT;
        once[r] = fresh;
        cur_round = r;
        pthread_t t[NTHREADS];
        for (int i = 0; i < NTHREADS; i++)
            if (pthread_create(&t[i], NULL, caller, (void *)(intptr_t)r) != 0)
                return 2;
        for (int i = 0; i < NTHREADS; i++) {
            void *rv;
            pthread_join(t[i], &rv);
            failures += rv != NULL;
        }
        printf("round %d: init calls %d, callers that saw the value %d/%d\n", r,
               atomic_load(&init_calls[r]), atomic_load(&saw_value[r]), NTHREADS);
        if (atomic_load(&init_calls[r]) != 1 || atomic_load(&saw_value[r]) != NTHREADS)
            failures++;
    }
    return report_failures();
}
