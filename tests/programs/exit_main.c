/* pthread_exit from main: the process lives on until the last thread ends,
 * then exits with status 0 and runs the atexit handlers exactly once. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NWORKERS 4

static atomic_int main_exiting;
static atomic_int turn;
static atomic_int atexit_calls;

static void on_exit_handler(void)
{
    int n = atomic_fetch_add(&atexit_calls, 1) + 1;
    printf("atexit handler: call %d, workers finished %d\n", n, atomic_load(&turn));
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    while (!atomic_load_explicit(&main_exiting, memory_order_acquire))
        sched_yield();
    /* Yield a while so main has really gone through pthread_exit. */
    for (int i = 0; i < 200; i++)
        sched_yield();
    while (atomic_load_explicit(&turn, memory_order_acquire) != id)
        sched_yield();
    printf("worker %d done after main exited\n", id);
    atomic_store_explicit(&turn, id + 1, memory_order_release);
    return NULL;
}

int main(void)
{
    atexit(on_exit_handler);
    printf("main starting %d workers\n", NWORKERS);
    for (int i = 0; i < NWORKERS; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)(intptr_t)i) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
        if (i % 2)
            pthread_detach(t);
    }
    printf("main calling pthread_exit\n");
    fflush(stdout);
    atomic_store_explicit(&main_exiting, 1, memory_order_release);
    pthread_exit(NULL);
}
