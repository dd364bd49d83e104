/* syscall_wrap/sleep.c - sleeps park the G, not the M (Go's time.Sleep).
 *
 * A sleeping G waits on a gfutex word of its own with a deadline; the
 * timer (core/timer.c) readies it when the deadline passes, and the M runs
 * other G's meanwhile.  Sleeps are cancellation points.  A signal does not
 * cut a G's sleep short (no EINTR): handlers still run on the G's M when
 * the kernel delivers them, but the sleep goes on to its end, as with
 * SA_RESTART.  Clocks other than the wall and monotonic ones (CPU-time
 * clocks) and threads that are not G's use the real system call.
 */
#include <errno.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "shim/shim.h"

/* Park the calling G until deadline (CLOCK_MONOTONIC ns).  Acts on a
 * pending cancellation (does not return then). */
static void sleep_until(g_t *g, int64_t deadline)
{
	_Atomic uint32_t never = 0;

	cancel_point(g);
	while (os_nanotime() < deadline) {
		if (shim_wait_cancellable(g, &never, 0, deadline) == -ECANCELED)
			cancel_point(g);
	}
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

static long real_nanosleep(const struct timespec *req, struct timespec *rem)
{
	return syscall(SYS_nanosleep, req, rem);
}

SHIM_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
	g_t *g = shim_self();

	if (!g)
		return (int)real_nanosleep(req, rem);
	if (!valid_ts(req)) {
		errno = EINVAL;
		return -1;
	}
	sleep_until(g, os_nanotime() + ts_ns(req));
	return 0;
}

SHIM_EXPORT int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                                struct timespec *rem)
{
	g_t *g = shim_self();
	int64_t now, when;

	if (!g || (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC &&
	           clk != CLOCK_BOOTTIME && clk != CLOCK_TAI)) {
		long r = syscall(SYS_clock_nanosleep, clk, flags, req, rem);
		return r < 0 ? errno : 0;
	}
	if (!req || req->tv_nsec < 0 || req->tv_nsec >= 1000000000)
		return EINVAL;
	if (!(flags & TIMER_ABSTIME)) {
		if (req->tv_sec < 0)
			return 0;
		sleep_until(g, os_nanotime() + ts_ns(req));
		return 0;
	}
	/* Absolute: convert to a monotonic deadline once (a later jump of
	 * the wall clock does not move it; docs/compat.md). */
	if (req->tv_sec < 0)
		return 0;
	now = os_clock_ns(clk);
	when = ts_ns(req);
	if (when <= now)
		return 0;
	sleep_until(g, os_nanotime() + (when - now));
	return 0;
}

SHIM_EXPORT int usleep(useconds_t us)
{
	g_t *g = shim_self();

	if (!g) {
		struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };
		return (int)real_nanosleep(&ts, NULL);
	}
	sleep_until(g, os_nanotime() + (int64_t)us * 1000);
	return 0;
}

SHIM_EXPORT unsigned int sleep(unsigned int sec)
{
	g_t *g = shim_self();

	if (!g) {
		struct timespec ts = { sec, 0 }, rem = { 0, 0 };
		if (real_nanosleep(&ts, &rem) < 0)
			return (unsigned)rem.tv_sec + (rem.tv_nsec > 0);
		return 0;
	}
	sleep_until(g, os_nanotime() + (int64_t)sec * 1000000000);
	return 0;
}

SHIM_EXPORT int thrd_sleep(const struct timespec *dur, struct timespec *rem)
{
	int r = nanosleep(dur, rem);

	if (r == 0)
		return 0;
	return errno == EINTR ? -1 : -2;
}
