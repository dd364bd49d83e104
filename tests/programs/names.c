/* pthread_setname_np / pthread_getname_np for self and for another thread;
 * ERANGE for names longer than 15 characters and buffers under 16 bytes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "prog.h"

static atomic_int name_stage;
static char seen_by_thread[32];

static void *named_thread(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "worker-1");
    atomic_store(&name_stage, 1);
    while (atomic_load(&name_stage) != 2) /* main reads and renames us */
        sched_yield();
    pthread_getname_np(pthread_self(), seen_by_thread, sizeof seen_by_thread);
    atomic_store(&name_stage, 3);
    while (atomic_load(&name_stage) != 4)
        sched_yield();
    return NULL;
}

int main(void)
{
    char buf[32];
    int r;

    r = pthread_setname_np(pthread_self(), "main-thread");
    printf("set own name: %s\n", ename(r));
    memset(buf, 0, sizeof buf);
    r = pthread_getname_np(pthread_self(), buf, sizeof buf);
    printf("get own name: %s \"%s\"\n", ename(r), buf);

    r = pthread_setname_np(pthread_self(), "exactly15chars!");
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    printf("15-char name: %s \"%s\"\n", ename(r), buf);

    r = pthread_setname_np(pthread_self(), "this-name-is-too-long");
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    printf("too long name: %s, name still \"%s\"\n", ename(r), buf);

    char small[8];
    r = pthread_getname_np(pthread_self(), small, sizeof small);
    printf("get into 8-byte buffer: %s\n", ename(r));

    pthread_t t;
    if (pthread_create(&t, NULL, named_thread, NULL) != 0)
        return 2;
    while (atomic_load(&name_stage) != 1)
        sched_yield();
    memset(buf, 0, sizeof buf);
    r = pthread_getname_np(t, buf, sizeof buf);
    printf("get other thread's name: %s \"%s\"\n", ename(r), buf);
    r = pthread_setname_np(t, "renamed");
    printf("set other thread's name: %s\n", ename(r));
    r = pthread_setname_np(t, "another-name-too-long");
    printf("set other thread too long: %s\n", ename(r));
    atomic_store(&name_stage, 2);
    while (atomic_load(&name_stage) != 3)
        sched_yield();
    printf("thread sees its name: \"%s\"\n", seen_by_thread);
    memset(buf, 0, sizeof buf);
    pthread_getname_np(t, buf, sizeof buf);
    printf("main sees thread's name: \"%s\"\n", buf);
    r = pthread_getname_np(t, small, sizeof small);
    printf("get other into 8-byte buffer: %s\n", ename(r));
    atomic_store(&name_stage, 4);
    pthread_join(t, NULL);

    pthread_getname_np(pthread_self(), buf, sizeof buf);
    printf("main name unchanged: \"%s\"\n", buf);
    return 0;
}
