/* core/netpoll_wait.c - the poller's waits: the slot table, submission
 * to the ring, parking a G until its descriptor is ready or its file
 * operation completes (netpoll_wait, netpoll_wait_many, netpoll_rw,
 * netpoll_sync).  Reaping, which fires the slots, is core/netpoll.c's;
 * the essay there says why G's wait here and not M's.
 *
 * Protocol and invariants.  A waiter lives on the waiting G's stack and is
 * reached only through a slot of a global table (the runtime's own pages,
 * a slot per live G reserved at thread creation; a wait that finds no
 * slot all the same - poll on many descriptors - makes the plain call),
 * named in the kernel request by a token (generation << 32 | index).  Firing (poller thread)
 * and cancelling (the G, after a timeout, a signal or pthread_cancel) both
 * happen under the table lock, and cancel bumps the generation: a late
 * completion or epoll event for a cancelled wait finds a stale token and
 * is dropped, so the poller never writes to a stack frame that has gone.
 * The G parks on a gfutex word in its waiter (gfutex_wait_intr), which
 * gives deadlines (SO_RCVTIMEO, poll timeouts) and interruption by
 * pthread_cancel and by signals (g_signal interrupts a parked G's wait, the
 * handler runs as it resumes, and the wrapper decides between EINTR and
 * restarting as the kernel would) for free.  Regular-file operations are
 * not interruptible (a native read from disk is not) and always wait for
 * their completion.
 *
 * Deferred submission.  A readiness wait's POLL_ADD (netpoll_wait, ring
 * mode) is queued in the SQ without io_uring_enter when the waiting G's P
 * has other G's to run (its M would not look for events now anyway) and
 * sysmon has promised to flush soon; the next io_uring_enter anyone makes
 * submits the batch.  Echo's G's each wait once per round trip: at
 * GOMAXPROCS=1 that was one io_uring_enter per wait, now about one per
 * ten.  Who flushes (sq_flush, or any submission, which takes the whole
 * SQ): find_runnable's and stopm_sleep's non-blocking reap (netpoll_poll)
 * - so an M whose local queue runs dry submits before it steals or
 * sleeps; the blocker, before it sleeps in the ring (netpoll_block); any
 * other request (a cancel, a file operation, a break); sqe_get when the
 * SQ is full; and sysmon's reap, every round.  The invariant: an SQE is
 * never left queued while its G waits and nobody will enter the ring.
 * Proof: the deferral is allowed only when sysmon_soon, read after the
 * SQE is queued and sqpend stored (both seq_cst, under sqlock), says
 * sysmon's current sleep ends within NETPOLL_NS; otherwise the submitter
 * submits at once, as before.  sysmon stores sysmon_soon = false, then
 * reads sqpend (round_ns: queued SQEs cap the round at NETPOLL_NS), then
 * stores whether its sleep is that short.  A deferrer that read true
 * read it from a store made after sysmon's look at sqpend of round i;
 * sysmon's round i sleep is short and its reap flushes; if that reap's
 * look came before this SQE's sqpend store, then round i+1's false store
 * comes after the deferrer's load (it read round i's true), so round
 * i+1's look at sqpend sees it (store sqpend < load soon < store false <
 * load sqpend) and that round is short too and flushes.  So every queued
 * SQE is submitted within NETPOLL_NS plus one sysmon round's work,
 * whatever the M's do (a G that spins for ever, a P stuck in a blocking
 * call, every M asleep).  sysmon not running (it could not be started,
 * or after fork before it is): sysmon_soon is false, nothing is deferred.
 * A failed submission leaves sqpend > 0 (the entries stay in the SQ):
 * sysmon retries every round.  After a loss (dead) queued entries are
 * dropped with sqpend, and refire wakes their G's as it wakes every
 * readiness waiter.  A cancel (timeout, signal) submits the SQ, its
 * POLL_ADD first.  The SQ lock: deferral and flush take sqlock as every
 * submission does; the blocker flushes before it takes its use of the
 * ring's number (a move holds sqlock while it waits for uses to end).
 * Only single POLL_ADDs are deferred: poll/select's many (their cancels
 * follow at once), file operations and the break are submitted at once.
 * epoll mode is unchanged (epoll_ctl is the wait's only call).
 *
 * Rejected: a waiter allocated per wait (malloc may not be usable from
 * every caller, and freeing it could race a late completion: the slot's
 * generation makes a late event harmless instead); a slot table that
 * grows on demand only (a wait that finds no memory would block its M:
 * netpoll_reserve takes room for one slot per G at thread creation).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include "internal.h"
#include "netpoll_int.h"


/* ---- slot table ---------------------------------------------------------- */

/* Double the slot table.  np.lock held.  The runtime's own pages, not
 * malloc (see os_grow); false if it cannot grow. */
static bool slots_grow(void)
{
	size_t len;
	struct slot *v = os_grow(np.v, np.vlen,
	                         sizeof *v * (np.cap ? 2 * (size_t)np.cap : 256), &len);

	if (!v || len / sizeof *v > UINT32_MAX / 2)
		return false;
	np.v = v;
	np.vlen = len;
	np.cap = (uint32_t)(len / sizeof *v);
	return true;
}

/* Thread creation: room for one waiting slot per live G (a G waits on
 * one descriptor at a time, except poll & co. on several), so that a
 * G's wait does not fall back to a blocking call - holding its M and,
 * with no M to spare, its P - just because memory ran out.  false: the
 * creation fails with EAGAIN. */
bool netpoll_reserve(uint64_t nslots)
{
	bool ok;

	if (__builtin_expect(__atomic_load_n(&np.cap, __ATOMIC_RELAXED) >= nslots, 1))
		return true;
	lock_acquire(&np.lock);
	ok = np.cap >= nslots || slots_grow();
	lock_release(&np.lock);
	return ok;
}

/* A slot for a waiter; its token (never 0), or 0 when the table cannot
 * grow (out of memory): the caller then makes the plain blocking call. */
static uint64_t slot_get(_Atomic uint32_t *done, int32_t *res, bool file)
{
	struct slot *s;
	uint64_t tok;
	uint32_t i;

	lock_acquire(&np.lock);
	if (np.freehead) {
		i = np.freehead - 1;
		np.freehead = np.v[i].nextfree;
	} else {
		if (np.n == np.cap && !slots_grow()) {
			/* Out of memory: the caller makes the plain call. */
			lock_release(&np.lock);
			return 0;
		}
		i = np.n++;
		np.v[i].gen = 1;
	}
	s = &np.v[i];
	s->done = done;
	s->res = res;
	s->file = file;
	s->dfd = -1;
	tok = (uint64_t)s->gen << 32 | i;
	atomic_fetch_add_explicit(&np.nwait, 1, memory_order_seq_cst);
	/* s is not ours after this: another thread's slots_grow may move
	 * the table (mremap) the moment the lock is free. */
	lock_release(&np.lock);
	return tok;
}

/* The G is done waiting (fired or not): the slot is free, and a late
 * event for this token is dropped.  true if it had fired. */
static bool slot_put(uint64_t tok)
{
	uint32_t i = (uint32_t)tok;
	bool fired;

	lock_acquire(&np.lock);
	fired = np.v[i].done == NULL;
	np.v[i].done = NULL;
	np.v[i].dfd = -1;
	np.v[i].gen++;
	np.v[i].nextfree = np.freehead;
	np.freehead = i + 1;
	atomic_fetch_sub_explicit(&np.nwait, 1, memory_order_relaxed);
	lock_release(&np.lock);
	return fired;
}

/* A reaper: an event for tok. */
void slot_fire(uint64_t tok, int32_t res)
{
	uint32_t i = (uint32_t)tok, gen = (uint32_t)(tok >> 32);
	_Atomic uint32_t *done = NULL;

	lock_acquire(&np.lock);
	if (i < np.n && np.v[i].gen == gen && np.v[i].done) {
		done = np.v[i].done;
		*np.v[i].res = res;
		np.v[i].done = NULL;
		atomic_store_explicit(done, 1, memory_order_release);
	}
	lock_release(&np.lock);
	if (done)
		gfutex_wake(done, 1);   /* a stale frame at worst: spurious wake */
}

/* ---- waiting --------------------------------------------------------------- */

/* Submit everything queued in the SQ (deferred POLL_ADDs too); sqlock
 * held.  sqpend: what the kernel has not taken (0 unless it failed). */
int uring_submit_locked(void)
{
	int r;

	do
		r = io_uring_submit(&np.ring);
	while (r == -EINTR);
	atomic_store_explicit(&np.sqpend, io_uring_sq_ready(&np.ring), memory_order_seq_cst);
	return r;
}

/* Submit the deferred SQEs, if any (see the essay: who flushes).  Any
 * thread, no G needed; not while holding a use (netpoll_block). */
void sq_flush(void)
{
	g_t *g;
	int r = 0;

	if (__builtin_expect(!atomic_load_explicit(&np.sqpend, memory_order_seq_cst), 1))
		return;
	g = rt_enter();
	lock_acquire(&np.sqlock);
	if (dead())
		atomic_store_explicit(&np.sqpend, 0, memory_order_relaxed);   /* refire wakes them */
	else if (atomic_load_explicit(&np.sqpend, memory_order_relaxed))
		r = uring_submit_locked();
	lock_release(&np.sqlock);
	rt_exit(g);
	if (fd_gone(r))
		lost(true);
}

bool netpoll_sq_pending(void)
{
	return atomic_load_explicit(&np.sqpend, memory_order_seq_cst) != 0;
}

void netpoll_sysmon_soon(bool soon)
{
	atomic_store_explicit(&np.sysmon_soon, soon, memory_order_seq_cst);
}

/* Worth deferring: the waiting G's P has other G's to run, so its M
 * will not look for events (and flush) at once anyway. */
static bool defer_worth(void)
{
	g_t *g = getcurg();
	m_t *m = g ? g->m : NULL;
	p_t *p = m ? m->p : NULL;

	return p && !runq_empty(p) &&
	       atomic_load_explicit(&np.sysmon_soon, memory_order_relaxed);
}

struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&np.ring);

	if (!sqe) {
		uring_submit_locked();
		sqe = io_uring_get_sqe(&np.ring);
	}
	return sqe;
}

static void prep(struct io_uring_sqe *sqe, const struct req *q, uint64_t tok)
{
	if (q->op == IORING_OP_ASYNC_CANCEL)
		io_uring_prep_cancel64(sqe, q->target, 0);
	else if (q->op == IORING_OP_NOP)
		io_uring_prep_nop(sqe);
	else if (q->op == IORING_OP_POLL_ADD)
		io_uring_prep_poll_add(sqe, q->fd, q->events);
	else if (q->op == IORING_OP_WRITEV)
		io_uring_prep_writev(sqe, q->fd, q->iov, (unsigned)q->cnt, (uint64_t)q->off);
	else if (q->op == IORING_OP_FSYNC)
		io_uring_prep_fsync(sqe, q->fd, q->events);
	else if (q->op == IORING_OP_SYNC_FILE_RANGE)
		io_uring_prep_sync_file_range(sqe, q->fd, (unsigned)q->len,
		                              (uint64_t)q->off, (int)q->events);
	else
		io_uring_prep_readv(sqe, q->fd, q->iov, (unsigned)q->cnt, (uint64_t)q->off);
	io_uring_sqe_set_data64(sqe, tok);
}

/* n requests, tok[i] naming q[i], in one system call when they fit.
 * <0: the ring is unusable now (the caller blocks instead); requests
 * already handed to the kernel then complete as stale tokens.  defer:
 * queue them without the system call if sysmon promises to flush within
 * NETPOLL_NS (the essay's invariant) - else submitted now. */
static int submit_n(const struct req *q, const uint64_t *tok, int n, bool defer)
{
	/* Inside the runtime while the lock is held: a G must not be
	 * preempted or lose its P in the middle (the lock would be held
	 * by a G that cannot run). */
	g_t *g = rt_enter();
	int r = 0;

	lock_acquire(&np.sqlock);
	if (dead())
		r = -ENOSYS;   /* lost: the number may be the program's */
	for (int i = 0; i < n && r >= 0; i++) {
		struct io_uring_sqe *sqe = sqe_get();

		if (!sqe) {
			r = -EBUSY;
			break;
		}
		prep(sqe, &q[i], tok[i]);
	}
	if (r >= 0 && defer) {
		/* seq_cst, store sqpend then load sysmon_soon; sysmon stores
		 * sysmon_soon = false then loads sqpend (the essay's proof). */
		atomic_store_explicit(&np.sqpend, io_uring_sq_ready(&np.ring), memory_order_seq_cst);
		defer = atomic_load_explicit(&np.sysmon_soon, memory_order_seq_cst);
	}
	if (r >= 0 && !defer)
		r = uring_submit_locked();
	lock_release(&np.sqlock);
	rt_exit(g);
	if (fd_gone(r))
		lost(true);
	return r;
}

int submit(const struct req *q, uint64_t tok)
{
	return submit_n(q, &tok, 1, false);
}


/* Park until *done is set (a slot fired), the deadline passes or *intr
 * is set: 0, -ETIMEDOUT, -EINTR, or -EAGAIN when woken for a signal
 * (the caller decides). */
static int park_wait(_Atomic uint32_t *done, int64_t deadline, _Atomic uint32_t *intr,
                     bool interruptible)
{
	int r = 0;
	g_t *g = getcurg();
	uint32_t kind = g ? g->waitkind : WK_NONE;   /* the caller's note */

	for (;;) {
		if (atomic_load_explicit(done, memory_order_acquire))
			return 0;
		if (g)
			g->waitkind = kind;   /* each gfutex_wait clears it */
		if (!interruptible) {
			gfutex_wait(done, 0, -1);
			continue;
		}
		r = gfutex_wait_intr(done, 0, deadline, intr);
		if (r == -ETIMEDOUT || r == -EINTR)
			break;
		if (r == 0 && !atomic_load_explicit(done, memory_order_acquire)) {
			r = -EAGAIN;   /* woken for a signal: the caller decides */
			break;
		}
	}
	return atomic_load_explicit(done, memory_order_acquire) ? 0 : r;
}

/* Park on one slot; the slot is freed on return. */
static int park(uint64_t tok, _Atomic uint32_t *done, int64_t deadline,
                _Atomic uint32_t *intr, bool interruptible)
{
	int r = park_wait(done, deadline, intr, interruptible);

	slot_put(tok);
	return atomic_load_explicit(done, memory_order_acquire) ? 0 : r;
}

/* poll/select: wait until any of n descriptors may be ready (one slot per
 * descriptor, all firing the same word), then cancel the others.  The
 * caller asks the kernel which are ready (a poll with no timeout): that
 * answer, not ours, is what the program sees. */
static int wait_many_held(const int *fd, const uint32_t *ev, int n, int64_t deadline,
                          _Atomic uint32_t *intr);
static int wait_one_held(int fd, uint32_t events, int64_t deadline, _Atomic uint32_t *intr);

/* The waits below leave requests in flight that name their stack frame
 * (done, res): a signal's handler runs only once they are cleaned up,
 * when the wait returns (g_sighold, rt.h), so cancellation or longjmp out
 * of the handler cannot skip the clean-up. */
int netpoll_wait_many(const int *fd, const uint32_t *ev, int n, int64_t deadline,
                      _Atomic uint32_t *intr)
{
	g_t *g = getcurg();
	int r;

	if (!g)
		return -ENOSYS;
	g_wait_note(g, WK_POLL, (uintptr_t)n);
	g_sighold_begin(g, false);
	r = wait_many_held(fd, ev, n, deadline, intr);
	g_sighold_end(g, false);
	return r;
}

int netpoll_wait(int fd, uint32_t events, int64_t deadline, _Atomic uint32_t *intr)
{
	g_t *g = getcurg();
	int r;

	if (!g)
		return -ENOSYS;
	g_wait_note(g, fd < 0 ? WK_SLEEP : (events & POLLOUT) && !(events & POLLIN) ?
	               WK_IO_WRITE : WK_IO_READ, (uintptr_t)fd);
	g_sighold_begin(g, false);
	r = wait_one_held(fd, events, deadline, intr);
	g_sighold_end(g, false);
	return r;
}

static int wait_many_held(const int *fd, const uint32_t *ev, int n, int64_t deadline,
                          _Atomic uint32_t *intr)
{
	_Atomic uint32_t done = 0;
	int32_t res[NETPOLL_MANY];
	uint64_t tok[NETPOLL_MANY];
	struct req q[NETPOLL_MANY];
	int k = 0, r;

	if (n > NETPOLL_MANY || netpoll_mode() != IO_URING || !getcurg())
		return -ENOSYS;
	if (n <= 0)
		return park_wait(&done, deadline, intr, true);   /* a sleep */
	for (int i = 0; i < n; i++) {
		tok[i] = slot_get(&done, &res[i], false);
		if (!tok[i]) {
			while (i-- > 0)
				slot_put(tok[i]);
			return -ENOSYS;
		}
		q[i] = (struct req){ .op = IORING_OP_POLL_ADD, .fd = fd[i], .events = ev[i] };
	}
	if (submit_n(q, tok, n, false) < 0) {
		for (int i = 0; i < n; i++)
			slot_put(tok[i]);
		return -ENOSYS;
	}
	r = park_wait(&done, deadline, intr, true);
	for (int i = 0; i < n; i++)
		if (!slot_put(tok[i]))
			q[k++] = (struct req){ .op = IORING_OP_ASYNC_CANCEL, .target = tok[i] };
	if (k) {
		uint64_t zero[NETPOLL_MANY] = { 0 };

		submit_n(q, zero, k, false);
	}
	/* One may have fired after the wait ended and before its slot was
	 * freed: ready, as park() says too. */
	return atomic_load_explicit(&done, memory_order_acquire) ? 0 : r;
}

static int wait_one_held(int fd, uint32_t events, int64_t deadline, _Atomic uint32_t *intr)
{
	_Atomic uint32_t done = 0;
	int32_t res = 0;
	uint64_t tok;
	int mode = netpoll_mode(), r;

	if (mode == IO_SYSCALL || !getcurg())
		return -ENOSYS;
	tok = slot_get(&done, &res, false);
	if (!tok)
		return -ENOSYS;   /* out of memory: the plain call */
	if (mode == IO_URING) {
		struct req q = { .op = IORING_OP_POLL_ADD, .fd = fd, .events = events };

		if (submit_n(&q, &tok, 1, defer_worth()) < 0) {
			slot_put(tok);
			return -ENOSYS;
		}
		r = park(tok, &done, deadline, intr, true);
		if (r == 0 && res < 0)
			return res == -ECANCELED ? -EAGAIN : -ENOSYS;
		if (r != 0) {
			struct req c = { .op = IORING_OP_ASYNC_CANCEL, .target = tok };

			submit(&c, 0);
		}
		return r;
	} else {
		struct epoll_event ev;
		int dfd;

		/* The dup is ours from its creation to its close (core/rtfd.c):
		 * a program's close-everything loop skips it, and a dup2 onto
		 * it moves it (netpoll_fd_moved) - hence kept in the slot. */
		rtfd_begin(true);
		dfd = dead() ? -ENOSYS : rtfd_dup_high(fd);
		if (dfd < 0) {
			rtfd_end();
			slot_put(tok);
			return dfd == -EBADF ? -EBADF : -ENOSYS;
		}
		ev.events = events | EPOLLONESHOT;
		ev.data.u64 = tok;
		r = (int)arch_syscall6(SYS_epoll_ctl, np.epfd, EPOLL_CTL_ADD, dfd, (long)&ev, 0, 0);
		if (r < 0) {
			rtfd_close(dfd);
			rtfd_end();
			slot_put(tok);
			if (r == -EBADF || r == -EINVAL)
				lost(true);   /* EPERM: not pollable (a regular file) */
			return -ENOSYS;
		}
		lock_acquire(&np.lock);
		np.v[(uint32_t)tok].dfd = dfd;
		np.v[(uint32_t)tok].ev = ev.events;
		lock_release(&np.lock);
		rtfd_end();
		r = park_wait(&done, deadline, intr, true);
		rtfd_begin(true);
		lock_acquire(&np.lock);
		dfd = np.v[(uint32_t)tok].dfd;
		np.v[(uint32_t)tok].dfd = -1;
		lock_release(&np.lock);
		if (dfd >= 0 && !dead())
			arch_syscall6(SYS_epoll_ctl, np.epfd, EPOLL_CTL_DEL, dfd, 0, 0, 0);
		if (dfd >= 0 && !(dead() && np.raw))
			rtfd_close(dfd);
		else
			rtfd_unmark(dfd);   /* may be the program's now: left alone */
		rtfd_end();
		slot_put(tok);
		return atomic_load_explicit(&done, memory_order_acquire) ? 0 : r;
	}
}

/* A file request: submit, park until it completes (not interruptible, as
 * the native call is not), its result. */
static ssize_t file_op(const struct req *q)
{
	_Atomic uint32_t done = 0;
	int32_t res = 0;
	uint64_t tok;

	if (netpoll_mode() != IO_URING || !getcurg())
		return -ENOSYS;
	g_wait_note(getcurg(), q->op == IORING_OP_WRITEV ? WK_IO_WRITE : WK_IO_READ,
	            (uintptr_t)q->fd);
	tok = slot_get(&done, &res, true);
	if (!tok)
		return -ENOSYS;
	if (submit(q, tok) < 0) {
		slot_put(tok);
		return -ENOSYS;
	}
	g_sighold_begin(getcurg(), true);
	park(tok, &done, -1, NULL, false);
	g_sighold_end(getcurg(), true);
	return res;
}

ssize_t netpoll_rw(bool write, int fd, const struct iovec *iov, int cnt, int64_t off)
{
	struct req q = { .op = write ? IORING_OP_WRITEV : IORING_OP_READV, .fd = fd,
	                 .iov = iov, .cnt = cnt, .off = off };

	return file_op(&q);
}

int netpoll_sync(int fd, bool datasync)
{
	struct req q = { .op = IORING_OP_FSYNC, .fd = fd,
	                 .events = datasync ? IORING_FSYNC_DATASYNC : 0 };

	return (int)file_op(&q);
}

int netpoll_sync_range(int fd, int64_t off, int64_t len, unsigned fl)
{
	struct req q = { .op = IORING_OP_SYNC_FILE_RANGE, .fd = fd, .off = off,
	                 .len = len, .events = fl };

	/* The request's length is 32 bits: longer ranges the plain way. */
	if (len < 0 || len > UINT32_MAX)
		return -ENOSYS;
	return (int)file_op(&q);
}
