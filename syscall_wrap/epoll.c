/* syscall_wrap/epoll.c - epoll_wait, epoll_pwait, epoll_pwait2.
 *
 * The protocol: ask the set without waiting; if it has nothing, park
 * on the epoll descriptor itself (it is readable when the set has
 * events) until it may have some or the timeout passes, then ask
 * again.  A signal mask or a zero timeout takes the plain call under
 * entersyscall.  EINTR after a handler, never restarted, as in the
 * kernel.
 */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include "park.h"

/* ---- epoll_wait: wait for the epoll descriptor itself ------------------------ */

static int plain_epoll(int ep, struct epoll_event *ev, int n, int t, const sigset_t *m)
{
	long r = sc_call_cp(SYS_epoll_pwait, ep, (long)ev, n, t, (long)m, 8);

	return (int)set_err(r);
}

/* epoll_pwait and epoll_pwait2 without a mask: ask the set without
 * waiting, park on its descriptor until it may have events or the
 * deadline (ns, -1 none) passes.  The events, 0 (timeout), -errno, or
 * -ENOSYS: make the plain call for the time that is left. */
static long epoll_parked(g_t *g, int ep, struct epoll_event *ev, int n, int64_t deadline)
{
	cancel_point(g);
	for (;;) {
		long r = arch_syscall6(SYS_epoll_pwait, ep, (long)ev, n, 0, 0, 8);
		int w;

		if (r != 0)
			return r;
		if (deadline >= 0 && os_nanotime() >= deadline)
			return 0;
		w = wait_ready(g, ep, POLLIN, deadline, false);
		if (w == -EAGAIN)
			return 0;   /* the timeout */
		if (w < 0)
			return w;   /* -EINTR, -ENOSYS */
	}
}

WRAP_EXPORT int epoll_pwait(int ep, struct epoll_event *ev, int n, int t, const sigset_t *mask)
{
	g_t *g = getcurg();
	int64_t deadline;
	long r;

	if (poller_off(g) || t == 0 || mask)
		return plain_epoll(ep, ev, n, t, mask);
	deadline = t > 0 ? os_nanotime() + (int64_t)t * 1000000 : -1;
	r = epoll_parked(g, ep, ev, n, deadline);
	if (r == -ENOSYS)
		return plain_epoll(ep, ev, n, deadline < 0 ? -1 :
		                   (int)((deadline - os_nanotime() + 999999) / 1000000), NULL);
	return (int)set_err(r);
}

WRAP_EXPORT int epoll_wait(int ep, struct epoll_event *ev, int n, int t)
{
	return epoll_pwait(ep, ev, n, t, NULL);
}

/* epoll_pwait2: a timespec timeout (glibc 2.35).  Parked as epoll_pwait;
 * with a mask or a zero timeout, the plain call. */
WRAP_EXPORT int epoll_pwait2(int ep, struct epoll_event *ev, int n, const struct timespec *ts,
                             const sigset_t *mask)
{
	g_t *g = getcurg();
	int64_t deadline;
	struct timespec c;
	long r;

	if (poller_off(g) || mask || !ts_valid(ts) || (ts && ts->tv_sec == 0 && ts->tv_nsec == 0)) {
		if (ts)
			c = *ts;
		return (int)set_err(sc_call_cp(SYS_epoll_pwait2, ep, (long)ev, n, ts ? (long)&c : 0,
		                               (long)mask, 8));
	}
	deadline = deadline_ts(ts);
	r = epoll_parked(g, ep, ev, n, deadline);
	if (r == -ENOSYS) {
		c = ts_left(deadline);
		r = sc_call_cp(SYS_epoll_pwait2, ep, (long)ev, n, deadline < 0 ? 0 : (long)&c, 0, 8);
	}
	return (int)set_err(r);
}
