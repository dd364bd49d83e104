/* Two threads lock two mutexes in opposite orders: with
 * GSHIM_DEBUG=deadlock=1 gshim must report "all threads are asleep" and
 * exit 2 instead of hanging (run.sh mode deadlock). */
#include <pthread.h>
#include <stdio.h>
static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER;

static void *t1(void *x) { pthread_mutex_lock(&b); sched_yield(); pthread_mutex_lock(&a); return x; }
int main(void) { pthread_t t; pthread_mutex_lock(&a); pthread_create(&t, 0, t1, 0); sched_yield(); sched_yield(); pthread_mutex_lock(&b); puts("no"); return 0; }
