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

static void ns_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

static bool valid_ts(const struct timespec *ts)
{
	return ts && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000 && ts->tv_sec >= 0;
}

static int64_t ts_ns(const struct timespec *ts)
{
	if (ts->tv_sec > INT64_MAX / 1000000000 - 1)
		return INT64_MAX / 2;
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* Threads that are not G's (created by libc behind our back: SIGEV_THREAD
 * timers) sleep in libc's own functions, which are glibc cancellation
 * points for them (tst-cancel28). */

WRAP_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
	g_t *g = getcurg();
	int64_t left;

	if (!g)
		return REAL(nanosleep)(req, rem);
	if (!valid_ts(req)) {
		errno = EINVAL;
		return -1;
	}
	left = cancel_sleep_until(g, os_nanotime() + ts_ns(req));
	if (left) {
		if (rem)
			ns_ts(left, rem);
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
	if (!req || req->tv_nsec < 0 || req->tv_nsec >= 1000000000)
		return EINVAL;
	if (!(flags & TIMER_ABSTIME)) {
		if (req->tv_sec < 0)
			return 0;
		left = cancel_sleep_until(g, os_nanotime() + ts_ns(req));
		if (left && rem)
			ns_ts(left, rem);
		return left ? EINTR : 0;
	}
	/* Absolute: convert to a monotonic deadline once (a later jump of
	 * the wall clock does not move it; docs/compat.md). */
	if (req->tv_sec < 0)
		return 0;
	now = os_clock_ns(clk);
	when = ts_ns(req);
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
	left = cancel_sleep_until(g, os_nanotime() + (int64_t)sec * 1000000000);
	return (unsigned)(left / 1000000000);   /* whole seconds left, as glibc */
}

WRAP_EXPORT int thrd_sleep(const struct timespec *dur, struct timespec *rem)
{
	int r = nanosleep(dur, rem);

	if (r == 0)
		return 0;
	return errno == EINTR ? -1 : -2;
}
