/* syscall_wrap/fdclose.c - close, close_range, closefrom, dup, dup2,
 * dup3 (and the same numbers through syscall(), io_var.c).
 *
 * The protocol: not the poller's - these go through core/rtfd.c, so
 * the runtime's own descriptors are never closed or replaced under it,
 * and each resets fd_hint (rw.c) for the numbers it frees or fills
 * (dup only does that: its new number cannot be one of the runtime's).
 * close is a cancellation point, also while it blocks.
 */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "park.h"

/* ---- descriptor numbers that change meaning ------------------------------------
 *
 * close, close_range, closefrom, dup2 and dup3 (and the same numbers
 * through syscall()) go through core/rtfd.c: a close of one of the
 * runtime's own descriptors (the ring, the epoll set, a wait's dup)
 * reports success and leaves it open; a dup2/dup3 onto one moves the
 * runtime's descriptor away first.  See the essay there.  Each also
 * forgets what fd_hint knew about the numbers. */


/* close(2), -errno or 0.  cp: as a cancellation point (close itself),
 * acted on while it blocks too (NFS flush, SO_LINGER, a tty draining);
 * not for syscall() and closefrom, which glibc does not make one. */
long pio_close(int fd, bool cp)
{
	g_t *cur = cp ? getcurg() : NULL, *g;
	long r = 0;
	int how;

	pio_fd_new(fd);
	g = sc_enter(cp);
	how = rtfd_close_begin(fd);
	if (how)
		r = cancel_syscall(cur, SYS_close, fd, 0, 0, 0, 0, 0);
	/* Before sc_exit, which may wait for a P that a transition's holder
	 * has (core/rtfd.c), and before a cancellation unwinds. */
	rtfd_close_end(how);
	sc_exit(g);
	cancel_syscall_after(cur, r);
	return r == ARCH_CP_CANCELED ? -EINTR : r;
}

long pio_close_range(unsigned lo, unsigned hi, unsigned fl)
{
	long r = rtfd_close_range(lo, hi, fl);

	if (lo <= hi)
		pio_fd_range_freed(lo, hi);
	return r;
}

static long sys_dup2(int old, int new, int fl)
{
	(void)fl;
	return arch_syscall(SYS_dup2, old, new, 0);
}

static long sys_dup3(int old, int new, int fl)
{
	return arch_syscall(SYS_dup3, old, new, fl);
}

long pio_dup3(int old, int new, int fl, bool dup2)
{
	long r = rtfd_dup3(old, new, dup2 ? sys_dup2 : sys_dup3, fl);

	if (r >= 0)
		pio_fd_new((int)r);
	return r;
}

WRAP_EXPORT int close(int fd)
{
	return (int)set_err(pio_close(fd, true));
}

WRAP_EXPORT int close_range(unsigned int lo, unsigned int hi, int fl)
{
	return (int)set_err(pio_close_range(lo, hi, (unsigned)fl));
}

/* glibc's: close_range(lo, ~0U, 0), else every open number from
 * /proc/self/fd, else abort.  The second here is the numbers up to the
 * descriptor limit, one by one (through rtfd as well). */
WRAP_EXPORT void closefrom(int lo)
{
	struct rlimit rl;
	unsigned from = lo < 0 ? 0 : (unsigned)lo;

	if (pio_close_range(from, ~0U, 0) != -ENOSYS)
		return;
	if (arch_syscall(SYS_getrlimit, RLIMIT_NOFILE, (long)&rl, 0) != 0 || rl.rlim_cur == RLIM_INFINITY)
		rl.rlim_cur = 1u << 20;
	for (unsigned fd = from; fd < rl.rlim_cur; fd++)
		if (arch_syscall(SYS_fcntl, (long)fd, F_GETFD, 0) >= 0)
			pio_close((int)fd, false);
}

/* dup: a new number (not one of the runtime's, which are open): a thin
 * pass-through for fd_hint. */
WRAP_EXPORT int dup(int old)
{
	long r = arch_syscall(SYS_dup, old, 0, 0);

	pio_fd_new((int)r);
	return (int)set_err(r);
}

WRAP_EXPORT int dup2(int old, int new)
{
	return (int)set_err(pio_dup3(old, new, 0, true));
}

WRAP_EXPORT int dup3(int old, int new, int fl)
{
	return (int)set_err(pio_dup3(old, new, fl, false));
}
