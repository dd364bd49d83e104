/* Deferred cancellation with cleanup handlers: a thread looping on
 * pthread_testcancel is cancelled, its cleanup handlers run innermost
 * first, key destructors run, join returns PTHREAD_CANCELED; disabled
 * cancellation is held until enabled; bad arguments get EINVAL. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

static atomic_int running, ready_disabled, cancel_sent;
static pthread_key_t key;
static char order[16];
static int norder;

static void cleanup(void *arg) { order[norder++] = *(const char *)arg; }
static void dtor(void *v) { (void)v; order[norder++] = 'K'; }

static void *looper(void *arg)
{
    (void)arg;
    pthread_setspecific(key, (void *)1);
    pthread_cleanup_push(cleanup, "A");
    pthread_cleanup_push(cleanup, "B");
    atomic_store(&running, 1);
    for (;;) {
        pthread_testcancel();
        sched_yield();
    }
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *disabled(void *arg)
{
    int old, spins = 0;
    (void)arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    atomic_store(&ready_disabled, 1);
    while (!atomic_load(&cancel_sent) || spins < 200) { /* cancelled, but disabled */
        pthread_testcancel();
        sched_yield();
        spins++;
    }
    printf("disabled region finished: %s spins, old state %s\n", spins >= 200 ? ">=200" : "?",
           old == PTHREAD_CANCEL_ENABLE ? "enable" : "disable");
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    pthread_testcancel();
    printf("not reached\n");
    return NULL;
}

static void *popper(void *arg)
{
    (void)arg;
    pthread_cleanup_push(cleanup, "P");
    pthread_cleanup_pop(1);   /* runs it, no cancel */
    return (void *)7;
}

int main(void)
{
    pthread_t t;
    void *ret;
    int old, err;

    pthread_key_create(&key, dtor);
    pthread_create(&t, NULL, looper, NULL);
    while (!atomic_load(&running))
        sched_yield();
    printf("cancel: %d\n", pthread_cancel(t));
    err = pthread_join(t, &ret);
    printf("join: %d, canceled: %d\n", err, ret == PTHREAD_CANCELED);
    order[norder] = 0;
    printf("cleanup order: %s\n", order);

    norder = 0;
    pthread_create(&t, NULL, disabled, NULL);
    while (!atomic_load(&ready_disabled))
        sched_yield();
    pthread_cancel(t);
    atomic_store(&cancel_sent, 1);
    err = pthread_join(t, &ret);
    printf("join: %d, canceled: %d\n", err, ret == PTHREAD_CANCELED);

    pthread_create(&t, NULL, popper, NULL);
    pthread_join(t, &ret);
    order[norder] = 0;
    printf("pop(1) ran: %s, ret %ld\n", order, (long)ret);

    printf("bad state: %s\n", pthread_setcancelstate(42, &old) == EINVAL ? "EINVAL" : "?");
    printf("bad type: %s\n", pthread_setcanceltype(42, &old) == EINVAL ? "EINVAL" : "?");
    return 0;
}
