/* shim/join.c - pthread_join and its _np variants, pthread_detach. */
#include <errno.h>
#include <time.h>
#include "shim.h"

/* g has a cancellation request it will act on (enabled): it may be
 * joining us, but it will not be for long. */
static bool target_ending(g_t *g)
{
	return atomic_load_explicit(&g->cancel_req, memory_order_acquire) && cancel_state_enabled(g);
}

/* pthread_join and the timed variants are cancellation points: at entry
 * and while they wait (the request interrupts the wait; the target stays
 * joinable, as in glibc). */
static int join_cancellable(g_t *g, void **ret, int64_t deadline)
{
	g_t *self = getcurg();
	_Atomic uint32_t *intr = NULL;
	int err;

	if (self) {
		cancel_point(self);
		intr = cancel_intr(self);
	}
	err = g_join(g, ret, deadline, target_ending(g) ? GJOIN_ENDING : 0, intr);
	if (self && (err == ETIMEDOUT || err == ECANCELED))
		cancel_point(self);
	return err;
}

/* A handle whose thread is gone: glibc says ESRCH after a join (EBUSY
 * from tryjoin) and EINVAL after a detached thread's exit. */
static int stale(pthread_t t, int joined_err)
{
	return g_stale_joined((void *)t) ? joined_err : EINVAL;
}

SHIM_EXPORT int pthread_join(pthread_t t, void **ret)
{
	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? stale(t, ESRCH) : REAL(pthread_join)(t, ret);
	return join_cancellable((g_t *)t, ret, -1);
}

SHIM_EXPORT int pthread_tryjoin_np(pthread_t t, void **ret)
{
	/* glibc's tryjoin looks at the thread's tid first: a joined
	 * thread's is -1, "still running" (EBUSY). */
	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? stale(t, EBUSY) : REAL(pthread_tryjoin_np)(t, ret);
	return g_join((g_t *)t, ret, -1, GJOIN_TRY, NULL);
}

SHIM_EXPORT int pthread_clockjoin_np(pthread_t t, void **ret, clockid_t clk,
                                     const struct timespec *abst)
{
	int64_t deadline;
	int err;

	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? stale(t, ESRCH) : REAL(pthread_clockjoin_np)(t, ret, clk, abst);
	/* glibc: a NULL abstime waits forever. */
	if (!abst) {
		if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC)
			return EINVAL;
		return join_cancellable((g_t *)t, ret, -1);
	}
	err = shim_deadline(clk, abst, &deadline);
	if (err)
		return err;
	return join_cancellable((g_t *)t, ret, deadline);
}

SHIM_EXPORT int pthread_timedjoin_np(pthread_t t, void **ret,
                                     const struct timespec *abst)
{
	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? stale(t, ESRCH) : REAL(pthread_timedjoin_np)(t, ret, abst);
	return pthread_clockjoin_np(t, ret, CLOCK_REALTIME, abst);
}

SHIM_EXPORT int pthread_detach(pthread_t t)
{
	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? stale(t, ESRCH) : REAL(pthread_detach)(t);
	return g_detach((g_t *)t);
}
