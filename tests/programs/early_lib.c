/* A library the test program links against: its constructor runs before
 * gshim's (the program's own dependencies are initialised before a
 * preloaded library), on the main thread, and uses the pthread API
 * there, as library constructors do (locks, keys, once, self).  What it
 * sets up must still hold after gshim has started (early_init checks). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC visibility push(default)
pthread_mutex_t early_rec;           /* recursive, held twice across init */
pthread_mutex_t early_ec;            /* errorcheck, held across init */
pthread_key_t early_key;
int early_key_value = 1234;
int early_once_runs;
pthread_once_t early_once = PTHREAD_ONCE_INIT;
int early_errors;
char *early_block;
#pragma GCC visibility pop

static void once_fn(void) { early_once_runs++; }

__attribute__((constructor)) static void early_ctor(void)
{
	pthread_mutexattr_t a;
	pthread_rwlock_t rw;
	pthread_cond_t c = PTHREAD_COND_INITIALIZER;
	pthread_attr_t at;
	sigset_t set;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	if (pthread_mutex_init(&early_rec, &a)) early_errors++;
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	if (pthread_mutex_init(&early_ec, &a)) early_errors++;
	pthread_mutexattr_destroy(&a);
	if (pthread_mutex_lock(&early_rec)) early_errors++;
	if (pthread_mutex_lock(&early_rec)) early_errors++;
	if (pthread_mutex_lock(&early_ec)) early_errors++;
	if (pthread_mutex_lock(&early_ec) != EDEADLK) early_errors++;
	if (pthread_key_create(&early_key, NULL)) early_errors++;
	if (pthread_setspecific(early_key, &early_key_value)) early_errors++;
	if (pthread_getspecific(early_key) != &early_key_value) early_errors++;
	if (pthread_once(&early_once, once_fn)) early_errors++;
	if (pthread_rwlock_init(&rw, NULL) || pthread_rwlock_rdlock(&rw) ||
	    pthread_rwlock_unlock(&rw) || pthread_rwlock_destroy(&rw))
		early_errors++;
	if (pthread_cond_signal(&c) || pthread_cond_broadcast(&c) || pthread_cond_destroy(&c))
		early_errors++;
	if (pthread_kill(pthread_self(), 0)) early_errors++;
	if (pthread_getattr_np(pthread_self(), &at)) early_errors++;
	else pthread_attr_destroy(&at);
	sigemptyset(&set);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL)) early_errors++;
	if (!pthread_equal(pthread_self(), pthread_self())) early_errors++;
	early_block = malloc(100);
	if (!early_block) early_errors++;
	else strcpy(early_block, "early");
}
