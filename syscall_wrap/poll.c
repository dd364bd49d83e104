/* syscall_wrap/poll.c - poll, ppoll, select, pselect.
 *
 * The protocol: the kernel answers, the poller says when asking again
 * is worth it: ask with a zero timeout, park on every descriptor of
 * the set (at most NETPOLL_MANY) until one may be ready or the
 * deadline passes, ask again.  The rest take the plain call under
 * entersyscall (below).
 */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "park.h"

/* ---- poll and select ----------------------------------------------------------- */

/* The kernel answers (a poll or select with no timeout); the poller only
 * says when asking again may be worth it.  Sets of more than NETPOLL_MANY
 * descriptors (event loops), a signal mask to install (ppoll, pselect:
 * the kernel's atomic swap), GSHIM_IO=epoll with more than one descriptor
 * and invalid timeouts take the plain call.  Never restarted after a
 * handler (EINTR), as in the kernel. */

/* The plain calls, between entersyscall and exitsyscall (io.c's shape),
 * cancellation points while they block (sc_call_cp).  The kernel writes
 * the time left into the timespec it is given: ppoll and pselect give it
 * a copy, select converts it back into the timeval, as glibc does. */
static int plain_ppoll(struct pollfd *f, nfds_t n, const struct timespec *ts, const sigset_t *m)
{
	struct timespec c;

	if (ts)
		c = *ts;
	return (int)set_err(sc_call_cp(SYS_ppoll, (long)f, (long)n, ts ? (long)&c : 0, (long)m, 8, 0));
}

static int plain_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
                         const struct timespec *ts, const sigset_t *m)
{
	struct timespec c;
	struct { const sigset_t *set; size_t len; } data = { m, 8 };

	if (ts)
		c = *ts;
	return (int)set_err(sc_call_cp(SYS_pselect6, nfds, (long)rd, (long)wr, (long)ex,
	                               ts ? (long)&c : 0, m ? (long)&data : 0));
}

static int plain_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	struct timespec c;
	long r;

	if (tv) {
		/* glibc's normalization; the kernel refuses what is left. */
		int64_t ns = (int64_t)tv->tv_usec * 1000;

		c.tv_sec = tv->tv_sec;
		if (ns < 0 || ns >= 1000000000) {
			c.tv_sec += ns / 1000000000;
			ns %= 1000000000;
			if (ns < 0) {
				c.tv_sec--;
				ns += 1000000000;
			}
		}
		c.tv_nsec = ns;
	}
	r = sc_call_cp(SYS_pselect6, nfds, (long)rd, (long)wr, (long)ex, tv ? (long)&c : 0, 0);
	if (tv) {
		tv->tv_sec = c.tv_sec;
		tv->tv_usec = c.tv_nsec / 1000;
	}
	return (int)set_err(r);
}

/* Wait for fds until the deadline: 1 ask the kernel again, 0 timed out,
 * -EINTR, or -ENOSYS (make the plain call for the time that is left). */
static int poll_park(g_t *g, const int *fd, const uint32_t *ev, int n, int64_t deadline)
{
	int w;

	if (deadline >= 0 && os_nanotime() >= deadline)
		return 0;
	w = wait_fds(g, fd, ev, n, deadline, false);
	if (w == -EAGAIN)
		return 0;
	return w == 0 ? 1 : w;
}

/* ppoll without a mask; ts NULL: no timeout. */
static int do_poll(struct pollfd *f, nfds_t n, const struct timespec *ts)
{
	g_t *g = getcurg();
	int fd[NETPOLL_MANY], k = 0;
	uint32_t ev[NETPOLL_MANY];
	int64_t deadline;

	if (poller_off(g) || n > NETPOLL_MANY || !ts_valid(ts) ||
	    (ts && ts->tv_sec == 0 && ts->tv_nsec == 0))
		return plain_ppoll(f, n, ts, NULL);
	cancel_point(g);
	deadline = deadline_ts(ts);
	for (bool listed = false;;) {
		struct timespec zero = { 0, 0 }, left;
		long r = probe6(SYS_ppoll, (long)f, (long)n, (long)&zero, 0, 8, 0);
		int w;

		if (r != 0)
			return (int)set_err(r);   /* EFAULT for a bad array, too */
		/* The kernel has read and written the array: it is ours to
		 * read. */
		for (nfds_t i = 0; !listed && i < n; i++)
			if (f[i].fd >= 0) {
				fd[k] = f[i].fd;
				ev[k++] = (uint16_t)f[i].events;
			}
		listed = true;
		w = poll_park(g, fd, ev, k, deadline);
		if (w == 1)
			continue;
		if (w != -ENOSYS)
			return (int)set_err(w);
		left = ts_left(deadline);
		return plain_ppoll(f, n, deadline < 0 ? NULL : &left, NULL);
	}
}

WRAP_EXPORT int poll(struct pollfd *f, nfds_t n, int t)
{
	struct timespec ts = { t / 1000, (long)(t % 1000) * 1000000 };

	return do_poll(f, n, t < 0 ? NULL : &ts);
}

WRAP_EXPORT int ppoll(struct pollfd *f, nfds_t n, const struct timespec *ts, const sigset_t *m)
{
	if (m)
		return plain_ppoll(f, n, ts, m);
	return do_poll(f, n, ts);
}

/* The bytes of an fd_set the kernel reads for nfds: whole longs. */
static size_t fdset_bytes(int nfds)
{
	return (size_t)(nfds + 63) / 64 * 8;
}

/* Copy n bytes from the program's memory; false if it is not readable. */
static bool copy_in(void *dst, const void *src, size_t n)
{
	struct iovec l = { dst, n }, r = { (void *)src, n };

	return arch_syscall6(SYS_process_vm_readv, arch_syscall(SYS_getpid, 0, 0, 0),
	                     (long)&l, 1, (long)&r, 1, 0) == (long)n;
}

/* select/pselect without a mask; ts NULL: no timeout.  The sets are the
 * kernel's answer; on EINTR they are left as given, as the kernel does. */
static int do_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *ts,
                     int64_t *deadline_out)
{
	g_t *g = getcurg();
	fd_set save[3];
	fd_set *set[3] = { rd, wr, ex };
	int fd[NETPOLL_MANY], k = 0;
	uint32_t ev[NETPOLL_MANY];
	int64_t deadline = deadline_ts(ts);

	*deadline_out = deadline;
	/* Copied through the kernel: a bad pointer is the program's EFAULT
	 * (from the plain call), not our crash. */
	for (int s = 0; s < 3; s++)
		if (set[s] && nfds > 0 && !copy_in(&save[s], set[s], fdset_bytes(nfds)))
			return -ENOSYS;
	for (int i = 0; i < nfds; i++) {
		uint32_t e = (rd && FD_ISSET(i, &save[0]) ? POLLIN : 0) |
		             (wr && FD_ISSET(i, &save[1]) ? POLLOUT : 0) |
		             (ex && FD_ISSET(i, &save[2]) ? POLLPRI : 0);

		if (!e)
			continue;
		if (k == NETPOLL_MANY)
			return -ENOSYS;
		fd[k] = i;
		ev[k++] = e;
	}
	cancel_point(g);
	for (;;) {
		struct timespec zero = { 0, 0 };
		long r = probe6(SYS_pselect6, nfds, (long)rd, (long)wr, (long)ex,
		                (long)&zero, 0);
		int w;

		if (r != 0)
			return (int)r;
		w = poll_park(g, fd, ev, k, deadline);
		if (w == 0)
			return 0;   /* the sets say "none" already */
		for (int s = 0; s < 3; s++)
			if (set[s])
				memcpy(set[s], &save[s], fdset_bytes(nfds));
		if (w < 0)
			return w;   /* -EINTR, -ENOSYS */
	}
}

static bool select_args_ok(int nfds, g_t *g)
{
	return !poller_off(g) && nfds >= 0 && nfds <= FD_SETSIZE;
}

WRAP_EXPORT int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	struct timespec ts, left;
	int64_t deadline;
	int r;

	if (!select_args_ok(nfds, getcurg()) ||
	    (tv && (tv->tv_sec < 0 || tv->tv_usec < 0 || (tv->tv_sec == 0 && tv->tv_usec == 0))))
		return plain_select(nfds, rd, wr, ex, tv);
	if (tv) {
		/* The kernel normalizes microseconds >= 1e6; so do we. */
		ts.tv_sec = tv->tv_sec + tv->tv_usec / 1000000;
		ts.tv_nsec = (tv->tv_usec % 1000000) * 1000;
	}
	r = do_select(nfds, rd, wr, ex, tv ? &ts : NULL, &deadline);
	if (r == -ENOSYS) {
		struct timeval tl;

		if (tv) {
			left = ts_left(deadline);
			tl.tv_sec = left.tv_sec;
			tl.tv_usec = left.tv_nsec / 1000;
			*tv = tl;
		}
		return plain_select(nfds, rd, wr, ex, tv);
	}
	/* Linux writes the time not slept back to the timeval. */
	if (tv) {
		left = ts_left(deadline);
		tv->tv_sec = left.tv_sec;
		tv->tv_usec = left.tv_nsec / 1000;
	}
	return (int)set_err(r);
}

WRAP_EXPORT int pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *ts,
                        const sigset_t *m)
{
	int64_t deadline;
	int r;

	if (m || !select_args_ok(nfds, getcurg()) || !ts_valid(ts) ||
	    (ts && ts->tv_sec == 0 && ts->tv_nsec == 0))
		return plain_pselect(nfds, rd, wr, ex, ts, m);
	r = do_select(nfds, rd, wr, ex, ts, &deadline);
	if (r == -ENOSYS) {
		struct timespec left = ts_left(deadline);

		return plain_pselect(nfds, rd, wr, ex, ts ? &left : NULL, NULL);
	}
	return (int)set_err(r);
}
