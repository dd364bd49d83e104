/* C11 <threads.h>: thrd_create/join with a result, thrd_detach,
 * thrd_current/thrd_equal, thrd_yield, thrd_exit, call_once, tss_*. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <threads.h>
#include "prog.h"


static int square(void *arg)
{
    int n = (int)(intptr_t)arg;
    thrd_yield();
    return n * n;
}

static atomic_int detached_ran;
static int detached_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        thrd_yield();
    atomic_store(&detached_ran, 1);
    return 0;
}

static volatile int really_exit = 1;
static void deep_exit(int d)
{
    if (d == 0) {
        if (really_exit)
            thrd_exit(77);
        return;
    }
    deep_exit(d - 1);
}
static int exit_fn(void *arg)
{
    (void)arg;
    deep_exit(5);
    return 1;
}

static thrd_t seen_current;
static int current_fn(void *arg)
{
    (void)arg;
    seen_current = thrd_current();
    return thrd_equal(seen_current, thrd_current()) ? 0 : 1;
}

static once_flag flag = ONCE_FLAG_INIT;
static atomic_int once_calls;
static atomic_int once_value;
static void once_init(void)
{
    atomic_fetch_add(&once_calls, 1);
    for (int i = 0; i < 50; i++)
        thrd_yield();
    atomic_store(&once_value, 1234);
}
static int once_fn(void *arg)
{
    (void)arg;
    call_once(&flag, once_init);
    return atomic_load(&once_value) == 1234 ? 0 : 1;
}

static tss_t key;
static atomic_int tss_dtor_calls, tss_dtor_sum;
static void tss_dtor(void *v)
{
    atomic_fetch_add(&tss_dtor_calls, 1);
    atomic_fetch_add(&tss_dtor_sum, *(int *)v);
    free(v);
}
static int tss_fn(void *arg)
{
    int id = (int)(intptr_t)arg;
    if (tss_get(key) != NULL)
        return 1;
    int *v = malloc(sizeof *v);
    *v = id;
    if (tss_set(key, v) != thrd_success)
        return 2;
    for (int i = 0; i < 50; i++) {
        thrd_yield();
        if (tss_get(key) != v)
            return 3;
    }
    return 0;
}

int main(void)
{
    thrd_t t[8];
    int res;

    for (int i = 0; i < 8; i++)
        CHECK(thrd_create(&t[i], square, (void *)(intptr_t)i) == thrd_success);
    printf("results:");
    for (int i = 0; i < 8; i++) {
        CHECK(thrd_join(t[i], &res) == thrd_success);
        printf(" %d", res);
    }
    printf("\n");

    CHECK(thrd_create(&t[0], detached_fn, NULL) == thrd_success);
    CHECK(thrd_detach(t[0]) == thrd_success);
    while (!atomic_load(&detached_ran))
        thrd_yield();
    printf("detached thread ran\n");

    CHECK(thrd_create(&t[0], exit_fn, NULL) == thrd_success);
    CHECK(thrd_join(t[0], &res) == thrd_success);
    printf("thrd_exit value: %d\n", res);

    CHECK(thrd_create(&t[0], current_fn, NULL) == thrd_success);
    thrd_t created = t[0];
    CHECK(thrd_join(t[0], &res) == thrd_success);
    printf("thrd_current stable in thread: %d\n", res == 0);
    printf("thrd_equal(created, its thrd_current): %d\n", thrd_equal(created, seen_current) != 0);
    printf("thrd_equal(main, created): %d\n", thrd_equal(thrd_current(), created) != 0);

    for (int i = 0; i < 8; i++)
        CHECK(thrd_create(&t[i], once_fn, NULL) == thrd_success);
    int bad = 0;
    for (int i = 0; i < 8; i++) {
        CHECK(thrd_join(t[i], &res) == thrd_success);
        bad += res;
    }
    printf("call_once: init calls %d, callers without the value %d\n",
           atomic_load(&once_calls), bad);

    CHECK(tss_create(&key, tss_dtor) == thrd_success);
    static int main_v = 99;
    CHECK(tss_set(key, &main_v) == thrd_success);
    for (int i = 0; i < 8; i++)
        CHECK(thrd_create(&t[i], tss_fn, (void *)(intptr_t)(i + 1)) == thrd_success);
    bad = 0;
    for (int i = 0; i < 8; i++) {
        CHECK(thrd_join(t[i], &res) == thrd_success);
        bad += res != 0;
    }
    printf("tss: bad threads %d, destructor calls %d, sum %d, main value intact %d\n", bad,
           atomic_load(&tss_dtor_calls), atomic_load(&tss_dtor_sum), tss_get(key) == &main_v);
    tss_delete(key);

    return report_failures();
}
