/* A thread with a default-size stack recurses without end. Natively the
 * process dies of SIGSEGV; under gshim it must die with
 * "gshim: fatal: stack overflow in thread ..." on stderr.
 *   stack_overflow [past-budget]
 * past-budget: first park vm.max_map_count/4 + 16 threads (64 KiB stacks,
 * default guard) so that gshim's budget of guarded mappings is spent and
 * the overflowing thread's stack is a chunk slot (arch/stack.c): its
 * guard is then guard markers, or on kernels before 6.13 the canary -
 * either way the same report. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int keep_going = 1;

static __attribute__((noinline)) long recurse(long depth)
{
    volatile char frame[512];
    frame[0] = (char)depth;
    frame[511] = (char)(depth >> 8);
    long r = keep_going ? recurse(depth + 1) : 0;
    return r + frame[0] + frame[511]; /* not a tail call */
}

static void *overflow(void *arg)
{
    (void)arg;
    return (void *)recurse(0);
}

static pthread_mutex_t park_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_c = PTHREAD_COND_INITIALIZER;

static void *park(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&park_m);
    for (;;)
        pthread_cond_wait(&park_c, &park_m);   /* until the process dies */
    return NULL;
}

/* Park enough threads to spend the guard budget; 0, or 2 if one cannot be
 * created (natively too: then the test cannot say anything). */
static int spend_guard_budget(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long maps = 65530, n;
    pthread_attr_t a;
    pthread_t t;

    if (f) {
        if (fscanf(f, "%ld", &maps) != 1)
            maps = 65530;
        fclose(f);
    }
    n = maps / 4 + 16;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    for (long i = 0; i < n; i++) {
        int e = pthread_create(&t, &a, park, NULL);
        if (e) {
            fprintf(stderr, "thread %ld of %ld: %s\n", i, n, strerror(e));
            return 2;
        }
    }
    printf("%ld threads parked\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    pthread_t t;
    if (argc > 1 && strcmp(argv[1], "past-budget") == 0 && spend_guard_budget())
        return 2;
    printf("starting thread that overflows its stack\n");
    fflush(stdout);
    if (pthread_create(&t, NULL, overflow, NULL) != 0)
        return 2;
    pthread_join(t, NULL);
    printf("ERROR: survived infinite recursion\n");
    return 0;
}
