/* syscall_wrap/park.h - what the poller's families share: the calls
 * that park the G instead of blocking an M (the poller, core/netpoll.c).
 * One file per family, each including this header:
 *   rw.c      read, write and their vector and positional forms
 *   socket.c  recv/recvfrom/recvmsg, send/sendto/sendmsg, accept/accept4
 *   epoll.c   epoll_wait, epoll_pwait, epoll_pwait2
 *   poll.c    poll, ppoll, select, pselect
 *   sync.c    fsync, fdatasync, sync_file_range (io_uring)
 *   fortify.c __read_chk and the other _FORTIFY_SOURCE entries
 *   fdclose.c close, close_range, closefrom, dup2, dup3 (core/rtfd.c)
 *   park.c    wait_fds: the park itself, and what its outcomes mean
 *
 * Shape of every call: try it without blocking (preadv2/pwritev2 with
 * RWF_NOWAIT, MSG_DONTWAIT for socket calls): done if it did not need to
 * wait - one system call, as natively.  If it would block, look at the
 * descriptor once (fstat, F_GETFL):
 *   - the program set O_NONBLOCK (or passed MSG_DONTWAIT): EAGAIN, as
 *     natively;
 *   - a socket, pipe, FIFO or character device: park until the poller
 *     says it is ready (deadline: SO_RCVTIMEO/SO_SNDTIMEO for sockets),
 *     then try again;
 *   - a regular file or block device (a read that misses the page cache):
 *     the read goes to io_uring and the G parks until it completes;
 *   - anything else, or no poller (GSHIM_IO=syscall): the plain blocking
 *     call between entersyscall and exitsyscall (io.c's shape); with
 *     GSHIM_IO=syscall a read gives its M back when M's run short
 *     (twin.c).
 * Pollable descriptors that refuse RWF_NOWAIT (FIFOs opened by name,
 * ttys) park until ready and then make the plain call.  Other descriptors
 * that refuse it (buffered writes on ext4, /proc files) get the plain
 * call at once; the descriptor number is noted
 * (fd_hint) so the next call skips the probe.  A stale note (the number
 * was closed inside libc and reused) only costs the parking: the plain
 * call is right for every kind of descriptor.
 *
 * fd_hint also notes "a socket whose SO_RCVTIMEO (SO_SNDTIMEO) is zero"
 * when the probe finds one, so that the next wait on that number skips
 * the getsockopt (one system call per wait; echo's round trip is a read
 * and a write).  Only that answer is noted - a socket with a timeout is
 * asked every time, so a noted deadline is never wrong while the note is
 * current.  It is forgotten (the number's generation bumped) by every
 * interposed call that frees, fills or replaces the number: close,
 * close_range, closefrom, dup, dup2, dup3, fcntl F_DUPFD(_CLOEXEC),
 * accept/accept4, socket, socketpair, open/openat/creat (and close,
 * close_range, dup2, dup3, setsockopt through syscall()); and by
 * setsockopt at SOL_SOCKET, after the kernel has the new value - a probe
 * that asked before compares-and-swaps against the old generation and
 * writes nothing.  Numbers created by calls not interposed (pipe,
 * eventfd, epoll_create, ...) take the lowest free number, which an
 * interposed close freed and forgot; only a number both closed and
 * reused where gshim cannot see (inside libc: fclose/fopen, or a raw
 * system call) can carry a stale note, and that is harmless for every
 * kind but one: a wait parks until the poller says ready, and a second
 * EAGAIN after that drops the note and asks the kernel (a regular file
 * is always "ready": without the re-probe its read would go round for
 * ever; a pipe, FIFO or tty waits as it would have; anything else gets
 * its plain call after the re-probe).  The one case a stale note gets
 * wrong: the new descriptor is a socket whose timeout was also set where
 * gshim cannot see (created, given SO_RCVTIMEO and its number reused all
 * inside libc or by raw system calls) - its read then waits for data
 * without the timeout.  O_NONBLOCK is not noted: it belongs to the open
 * file description and changes under fcntl(F_SETFL), ioctl(FIONBIO),
 * SOCK_NONBLOCK, accept4, in another process sharing the description,
 * or on a number gshim never saw created; F_GETFL after each EAGAIN is
 * the only exact answer, so every wait still asks it.
 *
 * What the program sees is what the kernel would have given it: partial
 * reads; full writes on blocking descriptors (the rest is written after
 * each wait, as the kernel does), partial only when a signal or a timeout
 * cuts them short; EAGAIN after SO_RCVTIMEO; EINTR when a signal handler
 * ran during the wait and the handler lacks SA_RESTART, or the call is
 * one the kernel never restarts (timed socket calls, epoll_wait); the
 * restart otherwise.  Cancellation acts while parked, as in glibc.
 *
 * close, close_range, closefrom, dup, dup2 and dup3 are a family too
 * (fdclose.c): they must not close or replace the poller's own descriptors
 * (core/rtfd.c), and they reset fd_hint for the numbers they free or
 * fill; socket, socketpair and setsockopt (socket.c) and open & co.,
 * fcntl F_DUPFD (io_var.c) are thin pass-throughs that reset it too.
 */
#ifndef GSHIM_SYSCALL_WRAP_PARK_H
#define GSHIM_SYSCALL_WRAP_PARK_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include "wrap.h"

/* fd_hint's size (rw.c): descriptor numbers it knows about. */
#define HINT_FDS 65536

/* Parking only pays when another thread can run meanwhile: a program
 * with one thread (a shell, most command-line tools) makes the plain call
 * and never starts the poller. */
static inline bool poller_off(g_t *g)
{
	return !g || g_live_count() <= 1 || netpoll_mode_peek() == IO_SYSCALL;
}
static inline bool fd_nonblock(int fd)
{
	long fl = arch_syscall(SYS_fcntl, fd, F_GETFL, 0);

	return fl >= 0 && (fl & O_NONBLOCK);
}

/* Socket timeout (SO_RCVTIMEO / SO_SNDTIMEO) as a deadline in *deadline,
 * -1: none.  false (and -1) if fd is not a socket. */
static inline bool sock_timeout(int fd, int opt, int64_t *deadline)
{
	struct timeval tv;
	socklen_t len = sizeof tv;

	*deadline = -1;
	if (arch_syscall6(SYS_getsockopt, fd, SOL_SOCKET, opt, (long)&tv, (long)&len, 0) != 0)
		return false;
	if (tv.tv_sec != 0 || tv.tv_usec != 0)
		*deadline = os_nanotime() + (int64_t)tv.tv_sec * 1000000000 +
		            (int64_t)tv.tv_usec * 1000;
	return true;
}


/* A readiness probe with a zero timeout: the wrapper's own look, not the
 * program's wait.  A signal can still cut it short (ERESTARTNOHAND:
 * SIGURG preempting this G lands anywhere in its code), and that is no
 * reason for the program's call to say EINTR: look again.  (A program's
 * handler that lands in this instant-long probe is not reported as EINTR
 * either; the preemption signal is far more frequent there.) */
static inline long probe6(long nr, long a, long b, long c, long d, long e, long f)
{
	long r;

	do
		r = arch_syscall6(nr, a, b, c, d, e, f);
	while (r == -EINTR);
	return r;
}

static inline ssize_t iov_len(const struct iovec *iov, int cnt)
{
	size_t n = 0;

	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return (ssize_t)n;
}

/* Advance a private copy of an iovec array by n bytes. */
static inline int iov_advance(struct iovec *v, int cnt, size_t n)
{
	int i = 0;

	while (i < cnt && n >= v[i].iov_len) {
		n -= v[i].iov_len;
		i++;
	}
	if (i < cnt) {
		v[i].iov_base = (char *)v[i].iov_base + n;
		v[i].iov_len -= n;
	}
	memmove(v, v + i, sizeof *v * (size_t)(cnt - i));
	return cnt - i;
}

static inline int64_t deadline_ts(const struct timespec *ts)
{
	return ts ? os_nanotime() + rt_ts_ns(ts) : -1;
}

/* The poll family's timeouts: NULL (none) or a non-negative timespec
 * small enough that a deadline built from it cannot overflow. */
static inline bool ts_valid(const struct timespec *ts)
{
	return !ts || (rt_ts_ok(ts) && ts->tv_sec >= 0 &&
	               ts->tv_sec < INT64_MAX / RT_NS_PER_S / 2);
}

static inline struct timespec ts_left(int64_t deadline)
{
	int64_t left = deadline - os_nanotime();

	return rt_ns_ts(left < 0 ? 0 : left);
}

/* park.c: park g until one of fd[0..n) may be ready for its ev[i];
 * 0: try again, <0: -errno to return, or -ENOSYS: the plain call. */
int wait_fds(g_t *g, const int *fd, const uint32_t *ev, int n, int64_t deadline,
             bool restartable);

static inline int wait_ready(g_t *g, int fd, uint32_t ev, int64_t deadline, bool restartable)
{
	return wait_fds(g, &fd, &ev, 1, deadline, restartable);
}

/* rw.c: a new descriptor number (accept, socket, open, dup & co.), a
 * freed one (close) or a socket whose timeouts change (setsockopt):
 * fd_hint forgets what it knew about it. */
void pio_fd_new(int fd);
void pio_fd_range_freed(unsigned lo, unsigned hi);   /* close_range */

/* rw.c: sock_timeout, answered from fd_hint when it has "a socket with
 * no timeout for opt" noted (*cached true), else asked and noted. */
bool sock_timeout_noted(int fd, int opt, int64_t *deadline, bool *cached);

#endif
