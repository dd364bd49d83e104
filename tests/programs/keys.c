/* Thread-specific data: destructors at thread exit, repeated destructor
 * rounds, pthread_key_delete, per-thread isolation, delete + recreate.
 * Threads run one at a time so that destructor output is ordered. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "prog.h"


static pthread_key_t k_basic, k_again, k_twice, k_deleted, k_old, k_new;
static atomic_int basic_calls, basic_sum, again_calls, twice_calls, deleted_calls;

static void run(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    void *rv;
    CHECK(pthread_create(&t, NULL, fn, arg) == 0);
    CHECK(pthread_join(t, &rv) == 0);
    CHECK(rv == NULL);
}

static void dtor_basic(void *v)
{
    atomic_fetch_add(&basic_calls, 1);
    atomic_fetch_add(&basic_sum, *(int *)v);
    free(v);
    /* The value must already be cleared while the destructor runs. */
    if (pthread_getspecific(k_basic) != NULL)
        printf("FAIL: value not cleared before destructor\n");
}

/* Re-sets its value every time: called PTHREAD_DESTRUCTOR_ITERATIONS times. */
static void dtor_again(void *v)
{
    atomic_fetch_add(&again_calls, 1);
    pthread_setspecific(k_again, v);
}

/* Re-sets its value once: called twice. */
static void dtor_twice(void *v)
{
    if (atomic_fetch_add(&twice_calls, 1) == 0)
        pthread_setspecific(k_twice, v);
}

static void dtor_deleted(void *v)
{
    (void)v;
    atomic_fetch_add(&deleted_calls, 1);
}

static void *basic_thread(void *arg)
{
    int *mine = malloc(sizeof *mine);
    *mine = (int)(intptr_t)arg;
    if (pthread_getspecific(k_basic) != NULL)
        return (void *)1;
    if (pthread_setspecific(k_basic, mine) != 0)
        return (void *)2;
    for (int i = 0; i < 50; i++) {
        sched_yield();
        if (pthread_getspecific(k_basic) != mine)
            return (void *)3;
    }
    return NULL;
}

static void *null_thread(void *arg)
{
    (void)arg;
    int *v = malloc(sizeof *v);
    *v = 5;
    pthread_setspecific(k_basic, v);
    pthread_setspecific(k_basic, NULL); /* NULL value: no destructor call */
    free(v);
    return NULL;
}

static void *again_thread(void *arg)
{
    (void)arg;
    static int v;
    pthread_setspecific(k_again, &v);
    pthread_setspecific(k_twice, &v);
    return NULL;
}

static atomic_int key_stage;

static void *delete_thread(void *arg)
{
    (void)arg;
    static int v;
    pthread_setspecific(k_deleted, &v);
    pthread_setspecific(k_old, &v);
    atomic_store(&key_stage, 1);
    while (atomic_load(&key_stage) != 2)
        sched_yield();
    /* main deleted k_deleted and k_old, and created k_new */
    void *r = pthread_getspecific(k_new);
    atomic_store(&key_stage, 3);
    return r == NULL ? NULL : (void *)1;
}

/* Many threads at once, each keeping its own value across yields. */
static void *concurrent_thread(void *arg)
{
    intptr_t id = (intptr_t)arg;
    if (pthread_setspecific(k_old, (void *)(id + 1)) != 0)
        return (void *)1;
    for (int i = 0; i < 200; i++) {
        sched_yield();
        if (pthread_getspecific(k_old) != (void *)(id + 1))
            return (void *)2;
    }
    return NULL;
}

int main(void)
{
    static int main_val = 1000;

    CHECK(pthread_key_create(&k_basic, dtor_basic) == 0);
    CHECK(pthread_key_create(&k_again, dtor_again) == 0);
    CHECK(pthread_key_create(&k_twice, dtor_twice) == 0);
    CHECK(pthread_key_create(&k_deleted, dtor_deleted) == 0);
    CHECK(pthread_key_create(&k_old, NULL) == 0);

    CHECK(pthread_setspecific(k_basic, &main_val) == 0);
    for (int i = 1; i <= 5; i++)
        run(basic_thread, (void *)(intptr_t)i);
    printf("basic destructor calls: %d, sum of values: %d\n",
           atomic_load(&basic_calls), atomic_load(&basic_sum));
    printf("main value intact: %d\n", pthread_getspecific(k_basic) == &main_val);

    run(null_thread, NULL);
    printf("destructor calls after NULL value: %d\n", atomic_load(&basic_calls));

    run(again_thread, NULL);
    printf("re-setting destructor calls: %d (PTHREAD_DESTRUCTOR_ITERATIONS=%d)\n",
           atomic_load(&again_calls), PTHREAD_DESTRUCTOR_ITERATIONS);
    printf("re-set-once destructor calls: %d\n", atomic_load(&twice_calls));

    /* delete while a thread holds a value; recreate; no stale values */
    pthread_t t;
    void *rv;
    CHECK(pthread_create(&t, NULL, delete_thread, NULL) == 0);
    while (atomic_load(&key_stage) != 1)
        sched_yield();
    CHECK(pthread_key_delete(k_deleted) == 0);
    CHECK(pthread_key_delete(k_old) == 0);
    CHECK(pthread_key_create(&k_new, NULL) == 0);
    printf("main sees NULL in recreated key: %d\n", pthread_getspecific(k_new) == NULL);
    atomic_store(&key_stage, 2);
    CHECK(pthread_join(t, &rv) == 0);
    printf("thread sees NULL in recreated key: %d\n", rv == NULL);
    printf("destructor calls for deleted key: %d\n", atomic_load(&deleted_calls));

    /* many keys */
    enum { NKEYS = 100 };
    pthread_key_t many[NKEYS];
    int ok = 1;
    for (int i = 0; i < NKEYS; i++) {
        if (pthread_key_create(&many[i], NULL) != 0)
            ok = 0;
        else
            pthread_setspecific(many[i], (void *)(intptr_t)(i + 1));
    }
    for (int i = 0; i < NKEYS; i++)
        if (pthread_getspecific(many[i]) != (void *)(intptr_t)(i + 1))
            ok = 0;
    for (int i = 0; i < NKEYS; i++)
        pthread_key_delete(many[i]);
    printf("%d keys in one thread: %s\n", NKEYS, ok ? "ok" : "FAIL");

    /* concurrency: 16 threads, each its own value in the same key */
    CHECK(pthread_key_create(&k_old, NULL) == 0);
    pthread_t ts[16];
    for (intptr_t i = 0; i < 16; i++)
        CHECK(pthread_create(&ts[i], NULL, concurrent_thread, (void *)i) == 0);
    int bad = 0;
    for (int i = 0; i < 16; i++) {
        CHECK(pthread_join(ts[i], &rv) == 0);
        bad += rv != NULL;
    }
    printf("concurrent threads with wrong values: %d\n", bad);
    printf("main value still intact: %d\n", pthread_getspecific(k_basic) == &main_val);

    return report_failures();
}
