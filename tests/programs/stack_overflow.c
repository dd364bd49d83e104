/* A thread with a default-size stack recurses without end. Natively the
 * process dies of SIGSEGV; under gshim it must die with
 * "gshim: fatal: stack overflow in thread ..." on stderr. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>

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

int main(void)
{
    pthread_t t;
    printf("starting thread that overflows its stack\n");
    fflush(stdout);
    if (pthread_create(&t, NULL, overflow, NULL) != 0)
        return 2;
    pthread_join(t, NULL);
    printf("ERROR: survived infinite recursion\n");
    return 0;
}
