/* syscall_wrap/pio.c - reads, writes, accepts and epoll waits that park
 * the G instead of blocking an M (the poller, core/netpoll.c).
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
 * What the program sees is what the kernel would have given it: partial
 * reads; full writes on blocking descriptors (the rest is written after
 * each wait, as the kernel does), partial only when a signal or a timeout
 * cuts them short; EAGAIN after SO_RCVTIMEO; EINTR when a signal handler
 * ran during the wait and the handler lacks SA_RESTART, or the call is
 * one the kernel never restarts (timed socket calls, epoll_wait); the
 * restart otherwise.  Cancellation acts while parked, as in glibc.
 *
 * close, close_range, closefrom, dup2 and dup3 are here too (at the
 * end): they must not close or replace the poller's own descriptors
 * (core/rtfd.c), and they reset fd_hint for the numbers they free.
 */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "wrap.h"

#define HINT_FDS 65536
enum { HINT_PLAIN_READ = 1, HINT_PLAIN_WRITE = 2 };
static _Atomic uint8_t fd_hint[HINT_FDS];

/* Parking only pays when another thread can run meanwhile: a program
 * with one thread (a shell, most command-line tools) makes the plain call
 * and never starts the poller. */
static inline bool poller_off(g_t *g)
{
	return !g || rt_cfg.io_mode == IO_SYSCALL ||
	       g_live_count() <= 1;
}

static inline uint8_t hint_get(int fd)
{
	return fd >= 0 && fd < HINT_FDS ?
	       atomic_load_explicit(&fd_hint[fd], memory_order_relaxed) : 0;
}

static inline void hint_set(int fd, uint8_t bit)
{
	if (fd >= 0 && fd < HINT_FDS)
		atomic_fetch_or_explicit(&fd_hint[fd], bit, memory_order_relaxed);
}

void pio_fd_new(int fd)
{
	if (fd >= 0 && fd < HINT_FDS)
		atomic_store_explicit(&fd_hint[fd], 0, memory_order_relaxed);
}

enum fdkind { FD_UNKNOWN = -1, FD_OTHER, FD_POLL, FD_FILE, FD_SOCK };

static enum fdkind fd_kind(int fd)
{
	struct stat st;

	if (arch_syscall(SYS_fstat, fd, (long)&st, 0) != 0)
		return FD_OTHER;
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
		return FD_FILE;
	if (S_ISSOCK(st.st_mode))
		return FD_SOCK;
	if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))
		return FD_POLL;
	return FD_OTHER;
}

/* fd_kind once per call: a descriptor does not change kind while a call
 * waits on it (O_NONBLOCK can, and is looked at after every wait, as the
 * kernel's own wait loops do). */
static enum fdkind fd_kind_once(int fd, enum fdkind *kind)
{
	if (*kind == FD_UNKNOWN)
		*kind = fd_kind(fd);
	return *kind;
}

static bool fd_nonblock(int fd)
{
	long fl = arch_syscall(SYS_fcntl, fd, F_GETFL, 0);

	return fl >= 0 && (fl & O_NONBLOCK);
}

/* Socket timeout (SO_RCVTIMEO / SO_SNDTIMEO) as a deadline in *deadline,
 * -1: none.  false (and -1) if fd is not a socket. */
static bool sock_timeout(int fd, int opt, int64_t *deadline)
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

static int64_t sock_deadline(int fd, int opt)
{
	int64_t deadline;

	sock_timeout(fd, opt, &deadline);
	return deadline;
}

/* What fd is and its timeout for opt as a deadline, once per call: the
 * socket option first - it answers both for a socket, the common case,
 * in one system call - and fstat only when fd is not one. */
static enum fdkind kind_probe(int fd, int opt, enum fdkind *kind, int64_t *deadline)
{
	if (*kind == FD_UNKNOWN)
		*kind = sock_timeout(fd, opt, deadline) ? FD_SOCK : fd_kind(fd);
	return *kind;
}

/* Park g until one of fd[0..n) may be ready for its ev[i] (n == 1: any
 * poller; more, or none: io_uring only).  0: try again; <0: -errno to
 * return (-EAGAIN timeout, -EINTR signal), or -ENOSYS: use the plain
 * call. */
static int wait_fds(g_t *g, const int *fd, const uint32_t *ev, int n, int64_t deadline,
                    bool restartable)
{
	_Atomic uint32_t *intr = cancel_intr(g);
	int r;

	g_sig_outcome_reset(g);
	for (;;) {
		r = n == 1 ? netpoll_wait(fd[0], ev[0], deadline, intr) :
		             netpoll_wait_many(fd, ev, n, deadline, intr);
		if (r == -EINTR) {
			cancel_point(g);   /* acts on the cancellation */
			continue;
		}
		if (r == -ETIMEDOUT)
			return -EAGAIN;
		if (r == -EAGAIN) {   /* woken for a signal */
			switch (g_sig_outcome(g, restartable)) {
			case SIG_NONE: continue;
			case SIG_EINTR: return -EINTR;
			default: return 0;   /* restart: try the call again */
			}
		}
		return r;
	}
}

static int wait_ready(g_t *g, int fd, uint32_t ev, int64_t deadline, bool restartable)
{
	return wait_fds(g, &fd, &ev, 1, deadline, restartable);
}

/* ---- reads and writes ------------------------------------------------------ */

/* A readiness probe with a zero timeout: the wrapper's own look, not the
 * program's wait.  A signal can still cut it short (ERESTARTNOHAND:
 * SIGURG preempting this G lands anywhere in its code), and that is no
 * reason for the program's call to say EINTR: look again.  (A program's
 * handler that lands in this instant-long probe is not reported as EINTR
 * either; the preemption signal is far more frequent there.) */
static long probe6(long nr, long a, long b, long c, long d, long e, long f)
{
	long r;

	do
		r = arch_syscall6(nr, a, b, c, d, e, f);
	while (r == -EINTR);
	return r;
}

static ssize_t sys_rw2(bool wr, int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	return arch_syscall6(wr ? SYS_pwritev2 : SYS_preadv2, fd, (long)iov, cnt,
	                     (long)off, 0, fl);
}

static ssize_t iov_len(const struct iovec *iov, int cnt)
{
	size_t n = 0;

	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return (ssize_t)n;
}

/* The plain call: preadv2/pwritev2 with the program's flags, which is
 * read/readv/pread/preadv in one (off -1: the file position).  With
 * GSHIM_IO=syscall a blocking read has a twin (twin.c: ppoll without
 * waiting, then the read) for when M's run short: the reader may be
 * what holds the M its writer needs.  (Writes keep their M: an evicted
 * write to a pipe would come back short.) */
static ssize_t plain_rw(bool wr, int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	struct sc_twin c = {
		.nr = SYS_preadv2, .a = { fd, (long)iov, cnt, (long)off, 0, fl },
		.tnr = -1, .fd = fd, .events = POLLIN, .sockopt = SO_RCVTIMEO,
		.cancel = true, .restart = true,
	};

	if (!wr && rt_cfg.io_mode == IO_SYSCALL && !(fl & RWF_NOWAIT) && getcurg())
		return set_err(sc_call_twin(&c));
	return set_err(sc_call_cp(wr ? SYS_pwritev2 : SYS_preadv2, fd, (long)iov, cnt, (long)off,
	                          0, fl));
}

/* Advance a private copy of an iovec array by n bytes. */
static int iov_advance(struct iovec *v, int cnt, size_t n)
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

/* A pollable descriptor that refuses RWF_NOWAIT (a FIFO opened by name,
 * a tty): park until the poller says it is ready, then make the plain
 * call - which holds the M, as any plain call, only if another reader or
 * writer got there first. */
static ssize_t ready_then_plain(g_t *g, bool wr, int fd, const struct iovec *iov, int cnt,
                                off_t off, int fl)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = wr ? POLLOUT : POLLIN };
		struct timespec zero = { 0, 0 };
		int w;

		if (probe6(SYS_ppoll, (long)&p, 1, (long)&zero, 0, 8, 0) != 0 ||
		    fd_nonblock(fd))
			break;
		w = wait_ready(g, fd, (uint32_t)p.events, -1, true);
		if (w == -ENOSYS)
			break;
		if (w < 0)
			return set_err(w);
	}
	return plain_rw(wr, fd, iov, cnt, off, fl);
}

/* A RWF_NOWAIT read of a regular file stops where the page cache does:
 * a short count the program would never see natively (a blocking read of
 * a file is short only at end of file).  Read the rest the blocking way -
 * through io_uring when it is there - and return the sum. */
static ssize_t read_rest(int fd, const struct iovec *iov0, int cnt, off_t off, int fl,
                         ssize_t got)
{
	struct iovec v[64];
	ssize_t want = iov_len(iov0, cnt), r;
	size_t skip = (size_t)got;   /* into iov0[i] */
	int i = 0, k;

	if (fd_kind(fd) != FD_FILE)
		return got;   /* sockets, pipes: short reads are the norm */
	while (got < want) {
		off_t o = off >= 0 ? off + got : -1;

		/* The next (up to) 64 buffers from where the data stopped. */
		while (i < cnt && skip >= iov0[i].iov_len) {
			skip -= iov0[i].iov_len;
			i++;
		}
		for (k = 0; k < 64 && i + k < cnt; k++)
			v[k] = iov0[i + k];
		v[0].iov_base = (char *)v[0].iov_base + skip;
		v[0].iov_len -= skip;
		r = netpoll_rw(false, fd, v, k, o);
		if (r == -ENOSYS)
			r = sys_rw2(false, fd, v, k, o, fl);
		if (r <= 0)
			break;   /* end of file, or an error after data: the data */
		got += r;
		skip += (size_t)r;
	}
	return got;
}

/* read, readv, pread, preadv, preadv2 without RWF_NOWAIT. */
static ssize_t do_read(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	g_t *g = getcurg();
	int64_t deadline = -2;   /* not looked up yet */
	enum fdkind kind = FD_UNKNOWN;
	ssize_t r;

	if (poller_off(g) || (fl & RWF_NOWAIT) ||
	    (hint_get(fd) & HINT_PLAIN_READ))
		return plain_rw(false, fd, iov, cnt, off, fl);
	cancel_point(g);
	for (;;) {
		int w;

		r = sys_rw2(false, fd, iov, cnt, off, fl | RWF_NOWAIT);
		if (r > 0 && r < iov_len(iov, cnt))
			return read_rest(fd, iov, cnt, off, fl, r);
		if (r >= 0 || (r != -EAGAIN && r != -EOPNOTSUPP))
			return set_err(r);
		if (r == -EOPNOTSUPP) {
			if (fd_kind_once(fd, &kind) == FD_POLL)
				return ready_then_plain(g, false, fd, iov, cnt, off, fl);
			hint_set(fd, HINT_PLAIN_READ);
			return plain_rw(false, fd, iov, cnt, off, fl);
		}
		if (kind_probe(fd, SO_RCVTIMEO, &kind, &deadline) == FD_FILE) {
			r = netpoll_rw(false, fd, iov, cnt, off);
			if (r == -ENOSYS)
				return plain_rw(false, fd, iov, cnt, off, fl);
			return set_err(r);
		}
		if (kind == FD_OTHER)
			return plain_rw(false, fd, iov, cnt, off, fl);
		if (fd_nonblock(fd))
			return set_err(-EAGAIN);
		w = wait_ready(g, fd, POLLIN, deadline, deadline < 0);
		if (w == -ENOSYS)
			return plain_rw(false, fd, iov, cnt, off, fl);
		if (w < 0)
			return set_err(w);
	}
}

/* write, writev, pwrite, pwritev, pwritev2 without RWF_NOWAIT. */
static ssize_t do_write(int fd, const struct iovec *iov0, int cnt, off_t off, int fl)
{
	g_t *g = getcurg();
	struct iovec vbuf[64], *v = vbuf;
	ssize_t total = 0, want, r;
	int64_t deadline = -2;   /* not looked up yet */
	enum fdkind kind = FD_UNKNOWN;

	if (poller_off(g) || (fl & RWF_NOWAIT) ||
	    (hint_get(fd) & HINT_PLAIN_WRITE) || cnt > 64 || cnt < 0)
		return plain_rw(true, fd, iov0, cnt, off, fl);
	cancel_point(g);
	memcpy(v, iov0, sizeof *v * (size_t)cnt);
	want = iov_len(v, cnt);
	for (;;) {
		int w;

		r = sys_rw2(true, fd, v, cnt, off, fl | RWF_NOWAIT);
		if (r == -EOPNOTSUPP && total == 0) {
			if (fd_kind_once(fd, &kind) == FD_POLL)
				return ready_then_plain(g, true, fd, v, cnt, off, fl);
			hint_set(fd, HINT_PLAIN_WRITE);
			return plain_rw(true, fd, v, cnt, off, fl);
		}
		if (r >= 0) {
			total += r;
			if (total >= want || r == 0)
				return total;
			cnt = iov_advance(v, cnt, (size_t)r);
			if (off >= 0)
				off += r;
		} else if (r != -EAGAIN) {
			return total ? total : set_err(r);
		}
		/* Would block (or wrote part): wait for room. */
		kind_probe(fd, SO_SNDTIMEO, &kind, &deadline);
		if (kind == FD_FILE && r == -EAGAIN) {
			/* The file system would have to wait (allocation,
			 * writeback throttling, O_DIRECT): io_uring writes
			 * while the G is parked.  Short: go round again. */
			r = netpoll_rw(true, fd, v, cnt, off);
			if (r == -ENOSYS) {
				r = plain_rw(true, fd, v, cnt, off, fl);
				return r < 0 ? (total ? total : -1) : total + r;
			}
			if (r <= 0)
				return r < 0 && !total ? set_err(r) : total;
			total += r;
			if (total >= want)
				return total;
			cnt = iov_advance(v, cnt, (size_t)r);
			if (off >= 0)
				off += r;
			continue;
		}
		if (kind == FD_FILE || kind == FD_OTHER) {
			r = plain_rw(true, fd, v, cnt, off, fl);
			return r < 0 ? (total ? total : -1) : total + r;
		}
		if (fd_nonblock(fd))
			return total ? total : set_err(-EAGAIN);
		w = wait_ready(g, fd, POLLOUT, deadline, deadline < 0);
		if (w == -ENOSYS) {
			r = plain_rw(true, fd, v, cnt, off, fl);
			return r < 0 ? (total ? total : -1) : total + r;
		}
		if (w < 0)
			return total ? total : set_err(w);
	}
}

WRAP_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	struct iovec v = { buf, n };
	return do_read(fd, &v, 1, -1, 0);
}

WRAP_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	return do_read(fd, iov, cnt, -1, 0);
}

WRAP_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	struct iovec v = { (void *)buf, n };
	return do_write(fd, &v, 1, -1, 0);
}

WRAP_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	return do_write(fd, iov, cnt, -1, 0);
}

/* Positional calls with a negative offset: EINVAL from the kernel, as
 * natively (preadv2 would take -1 as "the file position"). */
#define POS_CHECK(off) do { if ((off) < 0) { errno = EINVAL; return -1; } } while (0)

WRAP_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off64_t off)
{
	struct iovec v = { buf, n };
	POS_CHECK(off);
	return do_read(fd, &v, 1, off, 0);
}

WRAP_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	return pread64(fd, buf, n, off);
}

WRAP_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	struct iovec v = { (void *)buf, n };
	POS_CHECK(off);
	return do_write(fd, &v, 1, off, 0);
}

WRAP_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite64(fd, buf, n, off);
}

WRAP_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	POS_CHECK(off);
	return do_read(fd, iov, cnt, off, 0);
}

WRAP_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return preadv64(fd, iov, cnt, off);
}

WRAP_EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	POS_CHECK(off);
	return do_write(fd, iov, cnt, off, 0);
}

WRAP_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev64(fd, iov, cnt, off);
}

WRAP_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	if (off < -1) {
		errno = EINVAL;
		return -1;
	}
	return do_read(fd, iov, cnt, off, fl);
}

WRAP_EXPORT ssize_t preadv64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int fl)
{
	return preadv2(fd, iov, cnt, off, fl);
}

WRAP_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	if (off < -1) {
		errno = EINVAL;
		return -1;
	}
	return do_write(fd, iov, cnt, off, fl);
}

WRAP_EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int fl)
{
	return pwritev2(fd, iov, cnt, off, fl);
}

/* ---- syncs --------------------------------------------------------------------- */

/* fsync, fdatasync, sync_file_range wait for the disk: through io_uring
 * the G parks and its M runs others.  Not interruptible, as natively. */
enum sync_kind { SYNC_FULL, SYNC_DATA, SYNC_RANGE };

static int do_sync(enum sync_kind k, int fd, off64_t off, off64_t n, unsigned fl)
{
	g_t *g = getcurg();
	long r;

	if (!poller_off(g)) {
		cancel_point(g);
		r = k == SYNC_RANGE ? netpoll_sync_range(fd, off, n, fl) :
		                      netpoll_sync(fd, k == SYNC_DATA);
		/* EINVAL from io_uring for a descriptor the kernel would
		 * take (a pipe, a socket, a bad range): let it say so. */
		if (r != -ENOSYS && r != -EINVAL)
			return (int)set_err(r);
	}
	r = k == SYNC_RANGE ? sc_call_cp(SYS_sync_file_range, fd, off, n, fl, 0, 0) :
	    sc_call_cp(k == SYNC_DATA ? SYS_fdatasync : SYS_fsync, fd, 0, 0, 0, 0, 0);
	return (int)set_err(r);
}

WRAP_EXPORT int fsync(int fd)
{
	return do_sync(SYNC_FULL, fd, 0, 0, 0);
}

WRAP_EXPORT int fdatasync(int fd)
{
	return do_sync(SYNC_DATA, fd, 0, 0, 0);
}

WRAP_EXPORT int sync_file_range(int fd, off64_t off, off64_t n, unsigned int fl)
{
	return do_sync(SYNC_RANGE, fd, off, n, fl);
}

/* ---- sockets ------------------------------------------------------------------ */

static ssize_t sys_recvmsg(int fd, struct msghdr *m, int fl)
{
	return arch_syscall(SYS_recvmsg, fd, (long)m, fl);
}

static ssize_t sys_sendmsg(int fd, const struct msghdr *m, int fl)
{
	return arch_syscall(SYS_sendmsg, fd, (long)m, fl);
}

static ssize_t plain_msg(bool send, int fd, struct msghdr *m, int fl)
{
	ssize_t r = sc_call_cp(send ? SYS_sendmsg : SYS_recvmsg, fd, (long)m, fl, 0, 0, 0);

	return set_err(r);
}

/* recv, recvfrom, recvmsg: MSG_DONTWAIT first; MSG_WAITALL gathers. */
static ssize_t do_recvmsg(int fd, struct msghdr *m, int fl)
{
	g_t *g = getcurg();
	struct iovec vbuf[64], *orig = m->msg_iov;
	size_t origcnt = m->msg_iovlen;
	ssize_t total = 0, want, r;
	int64_t deadline = -2;

	if (poller_off(g) || (fl & MSG_DONTWAIT) || m->msg_iovlen > 64)
		return plain_msg(false, fd, m, fl);
	cancel_point(g);
	want = iov_len(m->msg_iov, (int)m->msg_iovlen);
	for (;;) {
		int w;

		r = sys_recvmsg(fd, m, fl | MSG_DONTWAIT);
		if (r == -ENOTSOCK)
			return plain_msg(false, fd, m, fl);
		if (r >= 0) {
			total += r;
			if (!(fl & MSG_WAITALL) || r == 0 || total >= want || (fl & MSG_PEEK))
				break;
			/* MSG_WAITALL: the rest, into a private iovec copy. */
			if (m->msg_iov == orig) {
				memcpy(vbuf, orig, sizeof *vbuf * origcnt);
				m->msg_iov = vbuf;
			}
			m->msg_iovlen = (size_t)iov_advance(m->msg_iov, (int)m->msg_iovlen, (size_t)r);
		} else if (r != -EAGAIN) {
			if (!total) {
				m->msg_iov = orig;
				m->msg_iovlen = origcnt;
				return set_err(r);
			}
			break;
		}
		if (fd_nonblock(fd)) {
			if (total)
				break;
			m->msg_iov = orig;
			m->msg_iovlen = origcnt;
			return set_err(-EAGAIN);
		}
		if (deadline == -2)
			deadline = sock_deadline(fd, SO_RCVTIMEO);
		w = wait_ready(g, fd, POLLIN, deadline, deadline < 0);
		if (w == -ENOSYS) {
			r = plain_msg(false, fd, m, fl);
			if (r < 0 && !total) {
				m->msg_iov = orig;
				m->msg_iovlen = origcnt;
				return -1;
			}
			total += r > 0 ? r : 0;
			break;
		}
		if (w < 0) {
			if (total)
				break;
			m->msg_iov = orig;
			m->msg_iovlen = origcnt;
			return set_err(w);
		}
	}
	m->msg_iov = orig;
	m->msg_iovlen = origcnt;
	return total;
}

/* send, sendto, sendmsg: MSG_DONTWAIT first; a stream socket's rest is
 * sent after each wait, as a blocking send does. */
static ssize_t do_sendmsg(int fd, const struct msghdr *m0, int fl)
{
	g_t *g = getcurg();
	struct msghdr m;
	struct iovec vbuf[64];
	ssize_t total = 0, want, r;
	int64_t deadline = -2;

	if (poller_off(g) || (fl & MSG_DONTWAIT) || m0->msg_iovlen > 64)
		return plain_msg(true, fd, (struct msghdr *)m0, fl);
	cancel_point(g);
	m = *m0;
	memcpy(vbuf, m0->msg_iov, sizeof *vbuf * m0->msg_iovlen);
	m.msg_iov = vbuf;
	want = iov_len(vbuf, (int)m.msg_iovlen);
	for (;;) {
		int w;

		r = sys_sendmsg(fd, &m, fl | MSG_DONTWAIT);
		if (r == -ENOTSOCK)
			return plain_msg(true, fd, &m, fl);
		if (r >= 0) {
			total += r;
			if (total >= want)
				return total;
			m.msg_iovlen = (size_t)iov_advance(vbuf, (int)m.msg_iovlen, (size_t)r);
			m.msg_control = NULL;   /* ancillary data went with the first part */
			m.msg_controllen = 0;
		} else if (r != -EAGAIN) {
			return total ? total : set_err(r);
		}
		if (fd_nonblock(fd))
			return total ? total : set_err(-EAGAIN);
		if (deadline == -2)
			deadline = sock_deadline(fd, SO_SNDTIMEO);
		w = wait_ready(g, fd, POLLOUT, deadline, deadline < 0);
		if (w == -ENOSYS) {
			r = plain_msg(true, fd, &m, fl);
			return r < 0 ? (total ? total : -1) : total + r;
		}
		if (w < 0)
			return total ? total : set_err(w);
	}
}

WRAP_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int fl)
{
	return do_recvmsg(fd, msg, fl);
}

WRAP_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int fl, struct sockaddr *a, socklen_t *al)
{
	struct iovec v = { buf, n };
	struct msghdr m = { .msg_name = a, .msg_namelen = a && al ? *al : 0,
	                    .msg_iov = &v, .msg_iovlen = 1 };
	ssize_t r = do_recvmsg(fd, &m, fl);

	if (r >= 0 && a && al)
		*al = m.msg_namelen;
	return r;
}

WRAP_EXPORT ssize_t recv(int fd, void *buf, size_t n, int fl)
{
	return recvfrom(fd, buf, n, fl, NULL, NULL);
}

WRAP_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int fl)
{
	return do_sendmsg(fd, msg, fl);
}

WRAP_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int fl,
                           const struct sockaddr *a, socklen_t al)
{
	struct iovec v = { (void *)buf, n };
	struct msghdr m = { .msg_name = (void *)a, .msg_namelen = al,
	                    .msg_iov = &v, .msg_iovlen = 1 };

	return do_sendmsg(fd, &m, fl);
}

WRAP_EXPORT ssize_t send(int fd, const void *buf, size_t n, int fl)
{
	return sendto(fd, buf, n, fl, NULL, 0);
}

static int plain_accept(int fd, struct sockaddr *a, socklen_t *al, int fl)
{
	long r = sc_call_cp(SYS_accept4, fd, (long)a, (long)al, fl, 0, 0);

	if (r >= 0)
		pio_fd_new((int)r);
	return (int)set_err(r);
}

/* accept has no per-call "don't wait": ask poll first (a listening socket
 * is rarely hot enough for the extra call to matter). */
WRAP_EXPORT int accept4(int fd, struct sockaddr *a, socklen_t *al, int fl)
{
	g_t *g = getcurg();

	if (poller_off(g))
		return plain_accept(fd, a, al, fl);
	cancel_point(g);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long n = probe6(SYS_poll, (long)&p, 1, 0, 0, 0, 0);
		int64_t deadline;
		int w;

		if (n != 0 || fd_nonblock(fd))
			return plain_accept(fd, a, al, fl);
		deadline = sock_deadline(fd, SO_RCVTIMEO);
		w = wait_ready(g, fd, POLLIN, deadline, deadline < 0);
		if (w == -ENOSYS)
			return plain_accept(fd, a, al, fl);
		if (w < 0)
			return (int)set_err(w);
	}
}

WRAP_EXPORT int accept(int fd, struct sockaddr *a, socklen_t *al)
{
	return accept4(fd, a, al, 0);
}

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

static int64_t deadline_ts(const struct timespec *ts)
{
	return ts ? os_nanotime() + (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec : -1;
}

static bool ts_valid(const struct timespec *ts)
{
	return !ts || (ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000 &&
	               ts->tv_sec < INT64_MAX / 1000000000 / 2);
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

static struct timespec ts_left(int64_t deadline)
{
	int64_t left = deadline - os_nanotime();

	if (left < 0)
		left = 0;
	return (struct timespec){ left / 1000000000, left % 1000000000 };
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

/* ---- _FORTIFY_SOURCE entries ---------------------------------------------------- */

/* Programs built with _FORTIFY_SOURCE (Debian's default) call these
 * instead of read, recv, poll ... when the buffer size is known; glibc's
 * versions check the size and call its internal __read etc., past every
 * wrapper.  Same checks, then the wrappers. */
extern void __chk_fail(void) __attribute__((noreturn));

WRAP_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return read(fd, buf, n);
}

WRAP_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return pread64(fd, buf, n, off);
}

WRAP_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return pread64(fd, buf, n, off);
}

WRAP_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int fl)
{
	if (n > buflen)
		__chk_fail();
	return recv(fd, buf, n, fl);
}

WRAP_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int fl,
                                   struct sockaddr *a, socklen_t *al)
{
	if (n > buflen)
		__chk_fail();
	return recvfrom(fd, buf, n, fl, a, al);
}

WRAP_EXPORT int __poll_chk(struct pollfd *f, nfds_t n, int t, size_t flen)
{
	if (flen / sizeof *f < n)
		__chk_fail();
	return poll(f, n, t);
}

WRAP_EXPORT int __ppoll_chk(struct pollfd *f, nfds_t n, const struct timespec *ts,
                            const sigset_t *m, size_t flen)
{
	if (flen / sizeof *f < n)
		__chk_fail();
	return ppoll(f, n, ts, m);
}

/* ---- descriptor numbers that change meaning ------------------------------------
 *
 * close, close_range, closefrom, dup2 and dup3 (and the same numbers
 * through syscall()) go through core/rtfd.c: a close of one of the
 * runtime's own descriptors (the ring, the epoll set, a wait's dup)
 * reports success and leaves it open; a dup2/dup3 onto one moves the
 * runtime's descriptor away first.  See the essay there.  Each also
 * forgets what fd_hint knew about the numbers. */

static void hints_forget(unsigned lo, unsigned hi)
{
	for (unsigned fd = lo; fd <= hi && fd < HINT_FDS; fd++)
		pio_fd_new((int)fd);
}

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
		hints_forget(lo, hi);
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

WRAP_EXPORT int dup2(int old, int new)
{
	return (int)set_err(pio_dup3(old, new, 0, true));
}

WRAP_EXPORT int dup3(int old, int new, int fl)
{
	return (int)set_err(pio_dup3(old, new, fl, false));
}
