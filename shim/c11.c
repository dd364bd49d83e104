/* shim/c11.c - C11 threads.  glibc's thrd_* call its pthread internals
 * directly (not through the interposable symbols), so each needs its own
 * entry here.  Result mapping follows glibc's thrd_err_map. */
#include <errno.h>
#include <stdint.h>
#include <threads.h>
#include "shim.h"
#include "c11.h"

SHIM_EXPORT int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
	pthread_t t;
	int err;

	/* thrd_start_t returns int; glibc calls it through the pthread
	 * signature as well and keeps the int in the pointer-sized result. */
	err = pthread_create(&t, NULL, (void *(*)(void *))(void (*)(void))fn, arg);
	if (err == 0)
		*thr = (thrd_t)t;
	return map_err(err);
}

SHIM_EXPORT int thrd_join(thrd_t thr, int *res)
{
	void *ret;
	int err = pthread_join((pthread_t)thr, &ret);

	if (err == 0 && res)
		*res = (int)(intptr_t)ret;
	return map_err(err);
}

SHIM_EXPORT int thrd_detach(thrd_t thr)
{
	return map_err(pthread_detach((pthread_t)thr));
}

SHIM_EXPORT _Noreturn void thrd_exit(int res)
{
	pthread_exit((void *)(intptr_t)res);
}

SHIM_EXPORT thrd_t thrd_current(void)
{
	return (thrd_t)pthread_self();
}

SHIM_EXPORT int thrd_equal(thrd_t a, thrd_t b)
{
	return a == b;
}

SHIM_EXPORT void thrd_yield(void)
{
	rt_sched_yield();
}

/* tss_* are thin wrappers over keys in glibc too, but call the internal
 * names; route them to ours so C11 and pthread TSS agree. */
SHIM_EXPORT int tss_create(tss_t *key, tss_dtor_t dtor)
{
	pthread_key_t k;
	int err = pthread_key_create(&k, dtor);

	if (err == 0)
		*key = (tss_t)k;
	return map_err(err);
}

SHIM_EXPORT void tss_delete(tss_t key)
{
	pthread_key_delete((pthread_key_t)key);
}

SHIM_EXPORT void *tss_get(tss_t key)
{
	return pthread_getspecific((pthread_key_t)key);
}

SHIM_EXPORT int tss_set(tss_t key, void *val)
{
	return map_err(pthread_setspecific((pthread_key_t)key, val));
}
