/* Thread attributes: stack size (proved by using most of the stack), guard
 * size, user-supplied stacks, detached state, pthread_getattr_np in threads
 * and on the main thread, EINVAL for stacks below PTHREAD_STACK_MIN. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "prog.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

struct req {
    size_t use_bytes;    /* bytes of stack to dirty */
    size_t min_size;     /* getattr_np must report at least this */
    size_t min_guard;    /* ... and at least this guard size */
    char *user_lo;       /* user stack, if any: getattr range must be inside */
    size_t user_size;
    int want_detached;
    atomic_int done;
    int result;          /* 0 = ok, else which check failed */
};

/* Dirty `n` bytes of this frame's stack, one byte per 256, so the memory
 * really is used; noinline so the array lives in its own frame. */
static __attribute__((noinline)) int use_stack(size_t n)
{
    volatile char *buf = __builtin_alloca(n);
    for (size_t i = 0; i < n; i += 256)
        buf[i] = (char)i;
    int sum = 0;
    for (size_t i = 0; i < n; i += 4096)
        sum += buf[i];
    return sum;
}

static int check_self(struct req *q)
{
    char local;
    pthread_attr_t a;
    void *lo;
    size_t size, guard;
    int detach;

    if (pthread_getattr_np(pthread_self(), &a) != 0)
        return 1;
    pthread_attr_getstack(&a, &lo, &size);
    pthread_attr_getguardsize(&a, &guard);
    pthread_attr_getdetachstate(&a, &detach);
    pthread_attr_destroy(&a);
    if (!((char *)lo <= &local && &local < (char *)lo + size))
        return 2;
    if (size < q->min_size)
        return 3;
    if (guard < q->min_guard)
        return 4;
    if (q->user_lo && ((char *)lo < q->user_lo ||
                       (char *)lo + size > q->user_lo + q->user_size ||
                       &local < q->user_lo || &local >= q->user_lo + q->user_size))
        return 5;
    if ((detach == PTHREAD_CREATE_DETACHED) != q->want_detached)
        return 6;
    if (q->use_bytes)
        use_stack(q->use_bytes);
    return 0;
}

static void *thread_fn(void *arg)
{
    struct req *q = arg;
    q->result = check_self(q);
    atomic_store_explicit(&q->done, 1, memory_order_release);
    return NULL;
}

static int run(const char *what, pthread_attr_t *a, struct req *q)
{
    pthread_t t;
    int r = pthread_create(&t, a, thread_fn, q);
    if (r != 0) {
        printf("%s: pthread_create %s\n", what, ename(r));
        return 1;
    }
    if (q->want_detached) {
        r = pthread_join(t, NULL);
        printf("%s: join %s\n", what, ename(r));
        while (!atomic_load_explicit(&q->done, memory_order_acquire))
            sched_yield();
    } else {
        pthread_join(t, NULL);
    }
    printf("%s: %s", what, q->result ? "FAIL" : "ok");
    if (q->result)
        printf(" (check %d)", q->result);
    printf("\n");
    return q->result != 0;
}

int main(void)
{
    pthread_attr_t a;
    size_t v;

    /* 64 KiB stack, 40 KiB of it used */
    pthread_attr_init(&a);
    printf("setstacksize 64k: %s\n", ename(pthread_attr_setstacksize(&a, 64 * KiB)));
    pthread_attr_getstacksize(&a, &v);
    printf("getstacksize: %zu\n", v);
    struct req q1 = { .use_bytes = 40 * KiB, .min_size = 64 * KiB };
    failures += run("64 KiB stack, 40 KiB used", &a, &q1);
    pthread_attr_destroy(&a);

    /* 16 MiB stack, 12 MiB used: more than the usual 8 MiB default */
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 16 * MiB);
    struct req q2 = { .use_bytes = 12 * MiB, .min_size = 16 * MiB };
    failures += run("16 MiB stack, 12 MiB used", &a, &q2);
    pthread_attr_destroy(&a);

    /* guard size */
    pthread_attr_init(&a);
    printf("setguardsize 64k: %s\n", ename(pthread_attr_setguardsize(&a, 64 * KiB)));
    pthread_attr_getguardsize(&a, &v);
    printf("getguardsize: %zu\n", v);
    pthread_attr_setstacksize(&a, 256 * KiB);
    struct req q3 = { .use_bytes = 128 * KiB, .min_size = 256 * KiB, .min_guard = 64 * KiB };
    failures += run("256 KiB stack with 64 KiB guard", &a, &q3);
    pthread_attr_destroy(&a);

    /* user-supplied stack */
    size_t ustack_size = 256 * KiB;
    char *ustack = mmap(NULL, ustack_size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ustack == MAP_FAILED)
        return 2;
    pthread_attr_init(&a);
    printf("setstack: %s\n", ename(pthread_attr_setstack(&a, ustack, ustack_size)));
    struct req q4 = { .use_bytes = 64 * KiB, .min_size = 128 * KiB,
                      .user_lo = ustack, .user_size = ustack_size };
    failures += run("user stack", &a, &q4);
    pthread_attr_destroy(&a);
    munmap(ustack, ustack_size);

    /* detached via attribute */
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int ds;
    pthread_attr_getdetachstate(&a, &ds);
    printf("getdetachstate: %s\n", ds == PTHREAD_CREATE_DETACHED ? "detached" : "joinable");
    struct req q5 = { .want_detached = 1 };
    failures += run("detached thread", &a, &q5);
    pthread_attr_destroy(&a);

    /* default attributes */
    struct req q6 = { .use_bytes = 64 * KiB, .min_size = 64 * KiB };
    failures += run("default attributes", NULL, &q6);

    /* the main thread */
    struct req q7 = { .min_size = 64 * KiB };
    int r = check_self(&q7);
    printf("main thread getattr_np: %s\n", r ? "FAIL" : "ok");
    failures += r != 0;

    /* invalid sizes */
    pthread_attr_init(&a);
    printf("setstacksize below PTHREAD_STACK_MIN: %s\n",
           ename(pthread_attr_setstacksize(&a, PTHREAD_STACK_MIN - 1)));
    printf("setstacksize 1 KiB: %s\n", ename(pthread_attr_setstacksize(&a, 1 * KiB)));
    printf("setstacksize PTHREAD_STACK_MIN: %s\n",
           ename(pthread_attr_setstacksize(&a, PTHREAD_STACK_MIN)));
    static char tiny[1024];
    printf("setstack 1 KiB: %s\n", ename(pthread_attr_setstack(&a, tiny, sizeof tiny)));
    pthread_attr_destroy(&a);

    return report_failures();
}
