/* core/netpoll.c - the poller: G's wait for descriptors, not M's.
 *
 * Purpose.  A thread blocked in read() on a socket holds a kernel thread
 * natively.  Under gshim the G parks instead: the wrapper (syscall_wrap/
 * io.c) first tries the call without blocking (RWF_NOWAIT, MSG_DONTWAIT),
 * and only if it would block asks the poller to wake it when the
 * descriptor is ready (netpoll_wait), then tries again.  Regular files
 * cannot be "ready"; their reads and writes that would block go to
 * io_uring as real operations and the G parks until the completion
 * (netpoll_rw) - something Go's runtime does not do.
 *
 * Backends, chosen once at first use (GSHIM_IO, rt_cfg.io_mode):
 *   uring   one io_uring (liburing): IORING_OP_POLL_ADD for readiness,
 *           READV/WRITEV for files.  Falls back to epoll when the ring
 *           cannot be set up (io_uring_disabled sysctl, seccomp, memlock).
 *   epoll   one epoll set; each wait registers a private dup of the
 *           descriptor with EPOLLONESHOT (epoll keys entries by (file, fd):
 *           a dup lets two G's wait on one descriptor, and nobody else can
 *           close or reuse the number under us).  Files: plain calls.
 *   syscall no poller: netpoll_wait says -ENOSYS and callers block an M.
 * There is no poller thread (Go has none either).  Events are collected
 * ("reaped") by the M's themselves, as Go's findrunnable does:
 *   - find_runnable, with nothing local to run, reaps without blocking
 *     (netpoll_poll: for io_uring a look at the completion ring in shared
 *     memory, no system call) and runs the woken G's on its own P;
 *   - an M with nothing at all to do, while G's wait for events, sleeps in
 *     the ring / epoll_wait instead of on its futex (netpoll_block): one
 *     at a time, "the blocker".  The kernel wakes it straight from the
 *     event, it takes an idle P and runs the G - one thread wake-up per
 *     event, where a poller thread costs two (its own and the M's);
 *   - sysmon reaps without blocking when no M has looked for 1 ms (Go's
 *     lastpoll rule), for when every P is busy with G's that never run
 *     out of work (their G's are then urgent: core/preempt.c gives them
 *     the CPU within about 1 ms).
 * A blocker that wakes while every P is busy gives the role up (it could
 * not run the G's, and readying them from there would make each event a
 * second wake-up and an urgent G); the busy M's reap those events.
 * The blocker stays on the idle M list; startm, choosing it, breaks its
 * wait (netpoll_break: a NOP request, or arming a one-shot EPOLLOUT entry
 * for an eventfd in the epoll set - an eventfd is always writable, and
 * nothing is ever written to it).  A non-blocking reaper that happens to
 * consume a break issues it again if a blocker exists, so a break is
 * never lost.  The blocker role is taken (np.blocker) before the M shows
 * itself on the idle list, so a break can only be issued for a blocker
 * that exists.
 *
 * Reaping also submits what the waits left queued in the ring (deferred
 * POLL_ADDs: core/netpoll_wait.c says who and why it cannot hang).
 * The waits themselves - the slot table that names a waiter to the
 * kernel, submission to the ring, parking, file operations - are in
 * core/netpoll_wait.c, with their protocol and invariants; the poller's
 * own descriptor numbers (moves under the program's dup2, loss) in
 * core/netpoll_fd.c.  This file chooses the backend and reaps: sysmon's
 * and find_runnable's non-blocking looks, and the blocker.
 *
 * Rejected: per-P rings (each M would submit without the SQ lock, but
 * completions for a P's ring must still be reaped when that P is busy or
 * idle, which needs the same poller thread per ring or cross-P reaping;
 * with GOMAXPROCS small the lock is uncontended - see docs/benchmarks.md);
 * setting O_NONBLOCK on the program's descriptors as Go does (the flag
 * belongs to the open file description, shared with child processes and
 * visible through fcntl: a program and its children would see it);
 * io_uring READ on sockets and pipes (an armed read ignores SO_RCVTIMEO
 * and cannot be retried after a signal without losing data it consumed);
 * a dedicated poller thread (built first: every event then woke two
 * threads, the poller and an idle M, and echo ran at 40-60% of native);
 * reaping on a G's stack in the G-to-G switch path (a G parking on its
 * own wait word holds that gfutex bucket until the switch completes:
 * readying it from there would self-deadlock).
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


struct netpoll np = {
	.lock = LOCK_INIT(RANK_LEAF), .initlock = LOCK_INIT(RANK_LEAF),
	.sqlock = LOCK_INIT(RANK_LEAF), .mode = -1, .epfd = -1, .brkfd = -1,
};

/* How long events may wait for an M before sysmon reaps them. */
#define NETPOLL_STALE_NS 1000000

/* An epoll break: arm the eventfd's one-shot entry for EPOLLOUT, which an
 * eventfd always is - the entry fires once and disarms itself, like the
 * ring's NOP.  Nothing is written to the eventfd: were the number ever
 * the program's (a raw close, core/rtfd.c), the call would fail with
 * ENOENT (the set has no entry for that file) instead of putting 8 bytes
 * into the program's pipe.  0 or -errno. */
long brk_arm(int epfd, int brkfd)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT, .data.u64 = BREAK_TOK };

	return arch_syscall6(SYS_epoll_ctl, epfd, EPOLL_CTL_MOD, brkfd, (long)&ev, 0, 0);
}


static bool uring_setup(void)
{
	struct io_uring_params p = { .flags = IORING_SETUP_COOP_TASKRUN };

	/* COOP_TASKRUN (5.19): a completion's task work does not interrupt
	 * the submitting M with an IPI when it runs user code (it runs at
	 * its next kernel entry or tick; sleeping M's are still woken) -
	 * with two M's, that IPI was a third of echo's CPU time here. */
	if (io_uring_queue_init_params(256, &np.ring, &p) < 0) {
		memset(&p, 0, sizeof p);
		if (io_uring_queue_init_params(256, &np.ring, &p) < 0)
			return false;
	}
	/* Out of the program's way (the mappings stay valid), and marked
	 * ours (core/rtfd.c).  In a transition: no program close runs. */
	np.ring.ring_fd = np.ring.enter_ring_fd = rtfd_adopt(np.ring.ring_fd);
	/* POLL_ADD needs nothing special; file reads need the kernel to
	 * complete them asynchronously (5.6+: IORING_FEAT_NODROP etc. are
	 * not needed, but IORING_OP_POLL_ADD and READV must exist). */
	if (!(p.features & IORING_FEAT_NODROP)) {
		rtfd_unmark(np.ring.ring_fd);
		io_uring_queue_exit(&np.ring);
		return false;
	}
	np.ext_arg = p.features & IORING_FEAT_EXT_ARG;
	return true;
}

static bool epoll_setup(void)
{
	long fd = arch_syscall(SYS_epoll_create1, EPOLL_CLOEXEC, 0, 0);
	long bfd;
	/* Disarmed until a break arms it (netpoll_break). */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = BREAK_TOK };

	if (fd < 0)
		return false;
	fd = rtfd_adopt((int)fd);
	bfd = arch_syscall(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK, 0);
	if (bfd >= 0)
		bfd = rtfd_adopt((int)bfd);
	if (bfd < 0 || arch_syscall6(SYS_epoll_ctl, fd, EPOLL_CTL_ADD, bfd, (long)&ev, 0, 0) < 0) {
		rtfd_close((int)bfd);
		rtfd_close((int)fd);
		return false;
	}
	np.epfd = (int)fd;
	np.brkfd = (int)bfd;
	return true;
}

/* The mode set up (mode >= 0) as it stands now: IO_SYSCALL once lost. */
static inline int mode_in_effect(int mode)
{
	return atomic_load_explicit(&np.dead, memory_order_relaxed) ? IO_SYSCALL : mode;
}

int netpoll_mode_peek(void)
{
	int mode = atomic_load_explicit(&np.mode, memory_order_acquire);

	return mode < 0 ? rt_cfg.io_mode : mode_in_effect(mode);
}

int netpoll_mode(void)
{
	int mode = atomic_load_explicit(&np.mode, memory_order_acquire);

	if (__builtin_expect(mode >= 0, 1))
		return mode_in_effect(mode);
	lock_acquire(&np.initlock);
	mode = atomic_load_explicit(&np.mode, memory_order_relaxed);
	if (mode < 0) {
		mode = rt_cfg.io_mode;
		if (mode != IO_SYSCALL)
			rtfd_begin(true);   /* the new descriptors: see uring_setup */
		if (mode == IO_URING && !uring_setup())
			mode = IO_EPOLL;
		if (mode == IO_EPOLL && !epoll_setup())
			mode = IO_SYSCALL;
		if (rt_cfg.io_mode != IO_SYSCALL)
			rtfd_end();
		atomic_store_explicit(&np.mode, mode, memory_order_release);
	}
	lock_release(&np.initlock);
	return mode;
}

/* ---- reaping: M's and sysmon ---------------------------------------------- */

bool netpoll_waiting(void)
{
	return atomic_load_explicit(&np.nwait, memory_order_seq_cst) > 0 && !dead();
}

/* G's wait for events but no M sleeps in the poller for them (after a
 * loss: file operations wait in a ring only reaping can see). */
bool netpoll_unwatched(void)
{
	if (dead())
		return atomic_load_explicit(&np.nwait, memory_order_relaxed) > 0 ||
		       atomic_load_explicit(&np.refire, memory_order_relaxed);
	return netpoll_waiting() && !atomic_load_explicit(&np.blocker, memory_order_relaxed);
}

/* Wake the blocker (startm chose it).  Harmless when there is none: one
 * spurious wake-up of the next.  After a loss the blocker's sleep ends by
 * itself (netpoll_block's bound). */
void netpoll_break(void)
{
	int mode = atomic_load_explicit(&np.mode, memory_order_acquire);

	if (dead())
		return;
	if (mode == IO_URING) {
		struct req q = { .op = IORING_OP_NOP };

		submit(&q, BREAK_TOK);   /* failing: lost(), or the ring is full
		                          * of requests whose completions wake it */
	} else if (mode == IO_EPOLL) {
		unsigned e = use_begin();
		long r = dead() ? 0 : brk_arm(__atomic_load_n(&np.epfd, __ATOMIC_RELAXED),
		                              __atomic_load_n(&np.brkfd, __ATOMIC_RELAXED));

		use_end(e);
		if (r == -EBADF || r == -EINVAL || r == -ENOENT)
			lost(true);
	}
}

/* Consume the completion ring; cqbusy held.  Memory only: also after a
 * loss. */
static int uring_reap(bool blocker)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	int woke = 0;
	bool brk = false;

	io_uring_for_each_cqe(&np.ring, head, cqe) {
		uint64_t tok = io_uring_cqe_get_data64(cqe);

		if (tok == BREAK_TOK) {
			brk = true;
		} else if (tok) {
			slot_fire(tok, cqe->res);
			woke++;
		}
		n++;
	}
	io_uring_cq_advance(&np.ring, n);
	/* A break meant for the blocker, eaten by a reaper that looked just
	 * before the blocker came: give it back. */
	if (brk && !blocker && atomic_load_explicit(&np.blocker, memory_order_seq_cst))
		netpoll_break();
	return woke;
}

static void cq_lock(void)
{
	while (atomic_exchange_explicit(&np.cqbusy, 1, memory_order_acquire))
		arch_relax();
}

static void cq_unlock(void)
{
	atomic_store_explicit(&np.cqbusy, 0, memory_order_release);
}

/* Ready the G's whose events have arrived, without blocking: onto the
 * caller's P (find_runnable) or, without one (sysmon), the head of the
 * global queue.  Leaves everything to the blocker when there is one: it
 * is woken for the same events.  Never on a G's stack (see essay). */
int netpoll_poll(bool sysmon)
{
	int mode = atomic_load_explicit(&np.mode, memory_order_acquire), n = 0;

	if (mode == IO_URING)
		sq_flush();   /* deferred POLL_ADDs (core/netpoll_wait.c) */
	if (atomic_load_explicit(&np.refire, memory_order_relaxed) &&
	    atomic_exchange_explicit(&np.refire, 0, memory_order_acquire))
		n = refire();
	if (atomic_load_explicit(&np.nwait, memory_order_seq_cst) == 0 ||
	    atomic_load_explicit(&np.blocker, memory_order_seq_cst) ||
	    (dead() && mode != IO_URING))
		return n;
	/* sysmon only steps in when the M's have not looked for a while
	 * (Go: 10 ms): under load they reap in find_runnable, and sysmon's
	 * reaping would turn every event into an urgent G on the global
	 * queue. */
	if (sysmon) {
		int64_t now = os_nanotime();

		if (now - atomic_load_explicit(&np.lastpoll, memory_order_relaxed) < NETPOLL_STALE_NS)
			return n;
		atomic_store_explicit(&np.lastpoll, now, memory_order_relaxed);
	} else {
		atomic_store_explicit(&np.lastpoll, os_nanotime(), memory_order_relaxed);
	}
	if (mode == IO_URING) {
		if (!io_uring_cq_ready(&np.ring) ||
		    atomic_exchange_explicit(&np.cqbusy, 1, memory_order_acquire))
			return n;
		n += uring_reap(false);
		cq_unlock();
	} else if (mode == IO_EPOLL) {
		struct epoll_event ev[32];
		unsigned e = use_begin();
		long k = dead() ? 0 : arch_syscall6(SYS_epoll_wait, __atomic_load_n(&np.epfd, __ATOMIC_RELAXED),
		                                    (long)ev, 32, 0, 0, 0);

		use_end(e);
		if (k == -EBADF || k == -EINVAL)
			lost(true);
		for (long i = 0; i < k; i++)
			if (ev[i].data.u64 != BREAK_TOK) {
				slot_fire(ev[i].data.u64, (int32_t)ev[i].events);
				n++;
			} else if (atomic_load_explicit(&np.blocker, memory_order_seq_cst)) {
				netpoll_break();   /* the blocker's, eaten: give it back */
			}
	}
	return n;
}

/* An idle M (no P) becomes the blocker if G's wait and nobody else is.
 * Call before showing the M on the idle list; true: call netpoll_block
 * and then netpoll_block_done. */
bool netpoll_block_begin(void)
{
	int zero = 0;

	return netpoll_waiting() &&
	       atomic_compare_exchange_strong_explicit(&np.blocker, &zero, 1,
	               memory_order_seq_cst, memory_order_seq_cst);
}

/* How long the blocker sleeps at most: only a lost ring (netpoll_break
 * cannot reach it) needs the bound; one wake-up a second while idle is
 * noise next to sysmon's. */
#define BLOCK_MAX_S 1

/* Sleep in the kernel until an event or a break (or a signal handler)
 * arrives.  Consumes nothing: netpoll_block_done does, once the M knows
 * whether it has a P for the G's it wakes.  The number is held (a use)
 * while the M sleeps on it: a move breaks the sleep and waits. */
void netpoll_block(void)
{
	unsigned e;

	/* Deferred POLL_ADDs first, outside the use (a move takes sqlock
	 * and waits for the uses to end). */
	if (atomic_load_explicit(&np.mode, memory_order_acquire) == IO_URING)
		sq_flush();
	e = use_begin();

	if (dead()) {
		use_end(e);
		return;
	}
	if (atomic_load_explicit(&np.mode, memory_order_acquire) == IO_URING) {
		struct __kernel_timespec ts = { .tv_sec = BLOCK_MAX_S };
		struct io_uring_getevents_arg arg = { .sigmask_sz = _NSIG / 8, .ts = (uint64_t)&ts };
		int fd = __atomic_load_n(&np.ring.ring_fd, __ATOMIC_RELAXED);
		long r = 0;

		if (!io_uring_cq_ready(&np.ring))
			r = np.ext_arg ?
			    arch_syscall6(SYS_io_uring_enter, fd, 0, 1,
			                  IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
			                  (long)&arg, sizeof arg) :
			    arch_syscall6(SYS_io_uring_enter, fd, 0, 1, IORING_ENTER_GETEVENTS, 0, 8);
		use_end(e);
		if (fd_gone(r))
			lost(true);
		else if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME)
			rt_warn("io_uring wait failed");   /* spurious wake-up: go on */
	} else {
		long k = arch_syscall6(SYS_epoll_wait, __atomic_load_n(&np.epfd, __ATOMIC_RELAXED),
		                       (long)np.ev, 128, BLOCK_MAX_S * 1000, 0, 0);

		use_end(e);
		if (k == -EBADF || k == -EINVAL)
			lost(true);
		else if (k < 0 && k != -EINTR)
			rt_warn("epoll_wait failed");
		np.nev = k > 0 ? (int)k : 0;
	}
}

/* The blocker woke but cannot run anything (every P is busy): give the
 * role up.  io_uring completions stay in the ring for the M's that reap
 * it; epoll events were taken off the set already and are readied. */
void netpoll_block_abandon(void)
{
	if (atomic_load_explicit(&np.mode, memory_order_acquire) != IO_URING) {
		netpoll_block_done();
		return;
	}
	atomic_store_explicit(&np.blocker, 0, memory_order_seq_cst);
}

/* Ready what netpoll_block got (to the caller's P if it has one) and
 * give up the blocker role.  Returns the number of G's woken. */
int netpoll_block_done(void)
{
	int n = 0;

	if (atomic_load_explicit(&np.mode, memory_order_acquire) == IO_URING) {
		cq_lock();   /* a reaper that looked before we came may be in */
		n = uring_reap(true);
		cq_unlock();
	} else {
		for (int i = 0; i < np.nev; i++) {
			if (np.ev[i].data.u64 == BREAK_TOK) {
				;   /* one-shot: disarmed by its own firing */
			} else {
				slot_fire(np.ev[i].data.u64, (int32_t)np.ev[i].events);
				n++;
			}
		}
		np.nev = 0;
	}
	atomic_store_explicit(&np.lastpoll, os_nanotime(), memory_order_relaxed);
	atomic_store_explicit(&np.blocker, 0, memory_order_seq_cst);
	return n;
}

void netpoll_fork_child(void)
{
	int mode = atomic_load_explicit(&np.mode, memory_order_relaxed);

	/* The poller thread did not survive; the ring and the epoll set are
	 * the parent's too (shared after fork) and must not be used here.
	 * Waiters were other threads: gone. */
	/* The descriptors are closed already (rtfd_fork_child closes every
	 * marked number; after a loss they were not ours): unmapping the
	 * ring is all. */
	if (mode == IO_URING) {
		np.ring.ring_fd = np.ring.enter_ring_fd = -1;
		io_uring_queue_exit(&np.ring);
	}
	lock_init(&np.lock, RANK_LEAF);
	lock_init(&np.sqlock, RANK_LEAF);
	lock_init(&np.initlock, RANK_LEAF);
	np.n = 0;
	np.freehead = 0;
	np.epfd = np.brkfd = -1;
	np.nev = 0;
	atomic_store(&np.nwait, 0);
	atomic_store(&np.sqpend, 0);
	atomic_store(&np.sysmon_soon, 0);
	atomic_store(&np.cqbusy, 0);
	atomic_store(&np.blocker, 0);
	atomic_store(&np.dead, 0);
	atomic_store(&np.refire, 0);
	atomic_store(&np.use[0], 0);
	atomic_store(&np.use[1], 0);
	atomic_store(&np.mode, -1);
}
