/* shim/join.c - pthread_join and its _np variants, pthread_detach. */
#include <errno.h>
#include <time.h>
#include "shim.h"

/* pthread_join and the timed variants are cancellation points: checked
 * on entry and after the wait (not during it yet; docs/compat.md). */
static int join_cancellable(g_t *g, void **ret, int64_t deadline)
{
	g_t *self = getcurg();
	int err;

	if (self)
		cancel_point(self);
	err = g_join(g, ret, deadline, false);
	if (self && err == ETIMEDOUT)
		cancel_point(self);
	return err;
}

SHIM_EXPORT int pthread_join(pthread_t t, void **ret)
{
	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? shim_stale_join_err(t) : real_pthread_join(t, ret);
	return join_cancellable((g_t *)t, ret, -1);
}

SHIM_EXPORT int pthread_tryjoin_np(pthread_t t, void **ret)
{
	/* glibc's tryjoin looks at the thread's tid first: a joined
	 * thread's is -1, "still running" (EBUSY). */
	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? (g_was_joined((void *)t) ? EBUSY : EINVAL)
		                          : real_pthread_tryjoin_np(t, ret);
	return g_join((g_t *)t, ret, -1, true);
}

SHIM_EXPORT int pthread_clockjoin_np(pthread_t t, void **ret, clockid_t clk,
                                     const struct timespec *abst)
{
	int64_t deadline;
	int err;

	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? shim_stale_join_err(t) : real_pthread_clockjoin_np(t, ret, clk, abst);
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
		return shim_is_stale_g(t) ? shim_stale_join_err(t) : real_pthread_timedjoin_np(t, ret, abst);
	return pthread_clockjoin_np(t, ret, CLOCK_REALTIME, abst);
}

SHIM_EXPORT int pthread_detach(pthread_t t)
{
	if (!shim_is_g(t))
		return shim_is_stale_g(t) ? shim_stale_join_err(t) : real_pthread_detach(t);
	return g_detach((g_t *)t);
}
