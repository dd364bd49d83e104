/* syscall_wrap/rw.c - read, readv, pread(64), preadv(64), preadv2,
 * write, writev, pwrite(64), pwritev(64), pwritev2, parked on the poller
 * (park.h: the shape every family follows).
 *
 * The protocol: the call once with RWF_NOWAIT (one system call when it
 * need not wait); if it would, the probe says what the descriptor is
 * (getsockopt for its timeout, fstat when not a socket; nothing when
 * fd_hint has "a socket, no timeout" noted - see park.h for why a stale
 * note is harmless): a socket, pipe, FIFO or tty parks until ready and
 * tries again, a file
 * goes through io_uring, anything else (or a descriptor that refuses
 * RWF_NOWAIT, remembered in fd_hint) gets the plain call under
 * entersyscall.  Reads of files are completed to what a blocking read
 * returns (read_rest); blocking writes are completed as the kernel
 * completes them.
 */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "park.h"

/* fd_hint: what the calls learnt about a descriptor number.  The low
 * byte holds the notes, the rest a generation that every forgetting
 * (pio_fd_new) bumps: a probe that began before the number changed
 * meaning (a close, a setsockopt of its timeouts) cannot write its
 * stale answer after the forgetting (sock_note's compare-and-swap). */
enum {
	HINT_PLAIN_READ = 1, HINT_PLAIN_WRITE = 2,
	HINT_SOCK_RCV0 = 4,    /* a socket, SO_RCVTIMEO zero */
	HINT_SOCK_SND0 = 8,    /* a socket, SO_SNDTIMEO zero */
	HINT_SOCK = HINT_SOCK_RCV0 | HINT_SOCK_SND0,
	HINT_GEN = 256,
};
static _Atomic uint32_t fd_hint[HINT_FDS];

static inline uint32_t hint_get(int fd)
{
	return fd >= 0 && fd < HINT_FDS ?
	       atomic_load_explicit(&fd_hint[fd], memory_order_acquire) : 0;
}

static inline void hint_set(int fd, uint32_t bit)
{
	if (fd >= 0 && fd < HINT_FDS)
		atomic_fetch_or_explicit(&fd_hint[fd], bit, memory_order_relaxed);
}

void pio_fd_new(int fd)
{
	uint32_t v;

	if (fd < 0 || fd >= HINT_FDS)
		return;
	v = atomic_load_explicit(&fd_hint[fd], memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&fd_hint[fd], &v,
	                                              (v & ~(uint32_t)(HINT_GEN - 1)) + HINT_GEN,
	                                              memory_order_seq_cst, memory_order_relaxed))
		;
}

/* close_range/closefrom: the numbers lo..hi are free.  Only those with a
 * note are bumped: a probe racing the close of its own descriptor is the
 * program's race, and the number's next interposed creation bumps it
 * anyway; a close of every number up to HINT_FDS then touches no memory
 * it need not (the table's pages are mostly never written). */
void pio_fd_range_freed(unsigned lo, unsigned hi)
{
	for (unsigned fd = lo; fd <= hi && fd < HINT_FDS; fd++)
		if (atomic_load_explicit(&fd_hint[fd], memory_order_relaxed) & (HINT_GEN - 1))
			pio_fd_new((int)fd);
}

/* The socket timeout of fd for opt as a deadline (park.h's sock_timeout),
 * from the note when it says "a socket, no timeout" (*cached true), else
 * asked (getsockopt) and noted when that is the answer.  The note is
 * written only if the number's hint did not change since before the
 * question (pio_fd_new: a close, a new descriptor, a setsockopt). */
bool sock_timeout_noted(int fd, int opt, int64_t *deadline, bool *cached)
{
	uint32_t bit = opt == SO_RCVTIMEO ? HINT_SOCK_RCV0 : HINT_SOCK_SND0;
	uint32_t v = hint_get(fd);

	*cached = false;
	if (v & bit) {
		*deadline = -1;
		*cached = true;
		return true;
	}
	if (!sock_timeout(fd, opt, deadline))
		return false;
	if (*deadline < 0 && fd >= 0 && fd < HINT_FDS)
		atomic_compare_exchange_strong_explicit(&fd_hint[fd], &v, v | bit,
		                                        memory_order_seq_cst, memory_order_relaxed);
	return true;
}

/* A "socket" note that proved wrong (EAGAIN again after the poller said
 * ready: the number was reused behind our back): forget it. */
static void sock_forget(int fd)
{
	if (fd >= 0 && fd < HINT_FDS)
		atomic_fetch_and_explicit(&fd_hint[fd], ~(uint32_t)HINT_SOCK, memory_order_relaxed);
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

/* What fd is and its timeout for opt as a deadline, once per call: the
 * socket option first - it answers both for a socket, the common case,
 * in one system call, or none when fd_hint has it noted (*cached) - and
 * fstat only when fd is not one. */
static enum fdkind kind_probe(int fd, int opt, enum fdkind *kind, int64_t *deadline,
                              bool *cached)
{
	if (*kind == FD_UNKNOWN)
		*kind = sock_timeout_noted(fd, opt, deadline, cached) ? FD_SOCK : fd_kind(fd);
	return *kind;
}

/* EAGAIN again after a wait on a kind taken from the note: the note may
 * be stale (a regular file is always "ready" and would go round for
 * ever).  Forget it; the next kind_probe asks the kernel. */
static void kind_recheck(int fd, enum fdkind *kind, bool *cached)
{
	if (*cached) {
		sock_forget(fd);
		*kind = FD_UNKNOWN;
		*cached = false;
	}
}

/* ---- reads and writes ------------------------------------------------------ */

static ssize_t sys_rw2(bool wr, int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	return arch_syscall6(wr ? SYS_pwritev2 : SYS_preadv2, fd, (long)iov, cnt,
	                     (long)off, 0, fl);
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

	if (!wr && !(fl & RWF_NOWAIT) && getcurg() && netpoll_mode_peek() == IO_SYSCALL)
		return set_err(sc_call_twin(&c));
	return set_err(sc_call_cp(wr ? SYS_pwritev2 : SYS_preadv2, fd, (long)iov, cnt, (long)off,
	                          0, fl));
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
	bool cached = false, waited = false;
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
		if (waited || r == -EOPNOTSUPP)
			kind_recheck(fd, &kind, &cached);
		if (r == -EOPNOTSUPP) {
			if (fd_kind_once(fd, &kind) == FD_POLL)
				return ready_then_plain(g, false, fd, iov, cnt, off, fl);
			hint_set(fd, HINT_PLAIN_READ);
			return plain_rw(false, fd, iov, cnt, off, fl);
		}
		if (kind_probe(fd, SO_RCVTIMEO, &kind, &deadline, &cached) == FD_FILE) {
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
		waited = true;
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
	bool cached = false, waited = false;

	if (poller_off(g) || (fl & RWF_NOWAIT) ||
	    (hint_get(fd) & HINT_PLAIN_WRITE) || cnt > 64 || cnt < 0)
		return plain_rw(true, fd, iov0, cnt, off, fl);
	cancel_point(g);
	memcpy(v, iov0, sizeof *v * (size_t)cnt);
	want = iov_len(v, cnt);
	for (;;) {
		int w;

		r = sys_rw2(true, fd, v, cnt, off, fl | RWF_NOWAIT);
		if ((waited && r == -EAGAIN) || r == -EOPNOTSUPP)
			kind_recheck(fd, &kind, &cached);
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
		kind_probe(fd, SO_SNDTIMEO, &kind, &deadline, &cached);
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
		waited = true;
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
