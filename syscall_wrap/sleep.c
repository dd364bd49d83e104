/* syscall_wrap/sleep.c - sleeps park the G, not the M (Go's time.Sleep).
 *
 * A sleeping G waits on a gfutex word of its own with a deadline; the
 * timer (core/timer.c) readies it when the deadline passes, and the M runs
 * other G's meanwhile.  Sleeps are cancellation points.  A handler of a
 * signal sent to the thread (pthread_kill, raise), or of a process-directed
 * one the runtime's signal thread gave to this sleeper (core/signal.c),
 * ends the sleep with EINTR and the time left, as POSIX says.  Clocks
 * other than the wall and monotonic ones (CPU-time
 * clocks) and threads that are not G's use the real system call.
 */
#include <errno.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "wrap.h"

/* Threads that are not G's (created by libc behind our back: SIGEV_THREAD
 * timers) sleep in libc's own functions (REAL), which are glibc
 * cancellation points for them (tst-cancel28).  Timespecs are checked and
 * converted by core/rt.h's rt_ts_ok, rt_ts_ns and rt_ns_ts. */
WRAP_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
	g_t *g = getcurg();
	int64_t left;

	if (!g)
		return REAL(nanosleep)(req, rem);
	if (!rt_ts_ok(req) || req->tv_sec < 0) {
		errno = EINVAL;
		return -1;
	}
	left = cancel_sleep_until(g, os_nanotime() + rt_ts_ns(req));
	if (left) {
		if (rem)
			*rem = rt_ns_ts(left);
		errno = EINTR;
		return -1;
	}
	return 0;
}

WRAP_EXPORT int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                                struct timespec *rem)
{
	g_t *g = getcurg();
	int64_t now, when, left;

	if (!g)
		return REAL(clock_nanosleep)(clk, flags, req, rem);
	if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC &&
	    clk != CLOCK_BOOTTIME && clk != CLOCK_TAI) {
		long r = syscall(SYS_clock_nanosleep, clk, flags, req, rem);
		return r < 0 ? errno : 0;
	}
	if (!rt_ts_ok(req))
		return EINVAL;
	if (!(flags & TIMER_ABSTIME)) {
		if (req->tv_sec < 0)
			return 0;
		left = cancel_sleep_until(g, os_nanotime() + rt_ts_ns(req));
		if (left && rem)
			*rem = rt_ns_ts(left);
		return left ? EINTR : 0;
	}
	/* Absolute: convert to a monotonic deadline once (a later jump of
	 * the wall clock does not move it; docs/compat.md). */
	if (req->tv_sec < 0)
		return 0;
	now = os_clock_ns(clk);
	when = rt_ts_ns(req);
	if (when <= now)
		return 0;
	return cancel_sleep_until(g, os_nanotime() + (when - now)) ? EINTR : 0;
}

WRAP_EXPORT int usleep(useconds_t us)
{
	g_t *g = getcurg();

	if (!g)
		return REAL(usleep)(us);
	if (cancel_sleep_until(g, os_nanotime() + (int64_t)us * 1000)) {
		errno = EINTR;
		return -1;
	}
	return 0;
}

WRAP_EXPORT unsigned int sleep(unsigned int sec)
{
	g_t *g = getcurg();
	int64_t left;

	if (!g)
		return REAL(sleep)(sec);
	left = cancel_sleep_until(g, os_nanotime() + (int64_t)sec * RT_NS_PER_S);
	return (unsigned)(left / RT_NS_PER_S);   /* whole seconds left, as glibc */
}

WRAP_EXPORT int thrd_sleep(const struct timespec *dur, struct timespec *rem)
{
	int r = nanosleep(dur, rem);

	if (r == 0)
		return 0;
	return errno == EINTR ? -1 : -2;
}
