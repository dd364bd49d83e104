/* shim/c11_sync.c - C11 mtx_* and cnd_*.  glibc implements them with its
 * internal pthread calls, which would bypass gshim; here they go through
 * the interposed pthread functions, with glibc's result mapping. */
#include <errno.h>
#include <threads.h>
#include "shim.h"
#include "c11.h"

SHIM_EXPORT int mtx_init(mtx_t *mtx, int type)
{
	pthread_mutexattr_t attr;
	int err;

	switch (type) {
	case mtx_plain: case mtx_timed:
	case mtx_plain | mtx_recursive: case mtx_timed | mtx_recursive:
		break;
	default:
		return thrd_error;
	}
	pthread_mutexattr_init(&attr);
	if (type & mtx_recursive)
		pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	err = pthread_mutex_init((pthread_mutex_t *)mtx, &attr);
	pthread_mutexattr_destroy(&attr);
	return map_err(err);
}

SHIM_EXPORT int mtx_lock(mtx_t *mtx)
{
	return map_err(pthread_mutex_lock((pthread_mutex_t *)mtx));
}

SHIM_EXPORT int mtx_trylock(mtx_t *mtx)
{
	return map_err(pthread_mutex_trylock((pthread_mutex_t *)mtx));
}

SHIM_EXPORT int mtx_timedlock(mtx_t *restrict mtx, const struct timespec *restrict ts)
{
	return map_err(pthread_mutex_timedlock((pthread_mutex_t *)mtx, ts));
}

SHIM_EXPORT int mtx_unlock(mtx_t *mtx)
{
	return map_err(pthread_mutex_unlock((pthread_mutex_t *)mtx));
}

SHIM_EXPORT void mtx_destroy(mtx_t *mtx)
{
	pthread_mutex_destroy((pthread_mutex_t *)mtx);
}

SHIM_EXPORT int cnd_init(cnd_t *cond)
{
	return map_err(pthread_cond_init((pthread_cond_t *)cond, NULL));
}

SHIM_EXPORT int cnd_signal(cnd_t *cond)
{
	return map_err(pthread_cond_signal((pthread_cond_t *)cond));
}

SHIM_EXPORT int cnd_broadcast(cnd_t *cond)
{
	return map_err(pthread_cond_broadcast((pthread_cond_t *)cond));
}

SHIM_EXPORT int cnd_wait(cnd_t *cond, mtx_t *mtx)
{
	return map_err(pthread_cond_wait((pthread_cond_t *)cond, (pthread_mutex_t *)mtx));
}

SHIM_EXPORT int cnd_timedwait(cnd_t *restrict cond, mtx_t *restrict mtx,
                              const struct timespec *restrict ts)
{
	return map_err(pthread_cond_timedwait((pthread_cond_t *)cond,
	                                      (pthread_mutex_t *)mtx, ts));
}

SHIM_EXPORT void cnd_destroy(cnd_t *cond)
{
	pthread_cond_destroy((pthread_cond_t *)cond);
}
