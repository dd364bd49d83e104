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
 * Descriptors.  The ring, the epoll set, its break eventfd and each epoll
 * wait's private dup are numbers in the program's table, and programs
 * close numbers they never opened (close_range(3, ~0U), closefrom, /proc
 * loops) or dup2 onto them.  They are created, moved and closed only in
 * core/rtfd.c's transitions, marked there, and the program's closing
 * calls leave marked numbers alone; a dup2/dup3 onto one calls
 * netpoll_fd_moved first, which moves it to a new number.  Submitters
 * read the ring's number under sqlock, which the move holds; everyone
 * else who passes a number to the kernel outside a transition (the
 * blocker's sleep, epoll reaping, epoll breaks) holds a "use"
 * (use_begin/use_end, two counters and an epoch): the move publishes the
 * new number, flips the epoch, breaks the blocker through the new number
 * (the same ring or epoll set) and waits for the old epoch's users.  The
 * set keys entries by file and number, so the break eventfd gets a new
 * entry under its new number (the old one deleted after the wait), and
 * an epoll wait's dup is re-registered under its new number, its G
 * reading the number from its slot.  With no number left to move to (the table full), or after a
 * failure that says a number is no longer ours (a close by a raw system
 * call libc did not make), the poller is given up - lost(): one warning,
 * new waits get -ENOSYS (plain calls, as GSHIM_IO=syscall), waiters for
 * readiness are woken to retry, file operations in flight are reaped
 * from the ring's memory (the mapping keeps the ring alive).  The
 * blocker's sleep is bounded (1 s) for that case alone: a break that can
 * no longer reach it must not leave a P with a sleeping M for good.
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

struct slot {
	uint32_t gen;
	uint32_t nextfree;            /* free list link (index + 1) */
	_Atomic uint32_t *done;       /* waiter's word, NULL: free or fired */
	int32_t *res;
	bool file;                    /* a file operation: needs its completion */
	int dfd;                      /* epoll: the wait's private dup, -1
	                               * (read and written in rtfd transitions) */
	uint32_t ev;                  /* epoll: its events */
};

static struct {
	lock_t lock;                  /* slot table */
	struct slot *v;               /* os_grow pages, vlen bytes */
	size_t vlen;
	uint32_t n, cap, freehead;    /* freehead: index + 1, 0 = none */
	_Atomic uint32_t nwait;       /* slots in use: G's waiting */
	_Atomic int mode;             /* -1 not yet chosen, else IO_* */
	lock_t initlock;
	struct io_uring ring;
	lock_t sqlock;                /* SQ of the ring */
	_Atomic int cqbusy;           /* someone is consuming the CQ */
	_Atomic int blocker;          /* an idle M sleeps in the ring / epoll */
	_Atomic int dead;             /* lost: given up (see lost()) */
	bool raw;                     /* lost behind our back (set before dead) */
	_Atomic int refire;           /* lost: waiters for readiness to wake */
	_Atomic uint32_t epoch;       /* the numbers' users (use_begin), and */
	_Atomic uint32_t use[2];      /* a move's wait for the old ones */
	bool ext_arg;                 /* the ring takes a timeout */
	_Atomic int64_t lastpoll;     /* when an M last looked (Go's sched.lastpoll) */
	int epfd, brkfd;              /* epoll set, its break eventfd (never
	                               * read or written: see brk_arm) */
	int nev;                      /* epoll: events the blocker got */
	struct epoll_event ev[128];
} np = {
	.lock = LOCK_INIT(RANK_LEAF), .initlock = LOCK_INIT(RANK_LEAF),
	.sqlock = LOCK_INIT(RANK_LEAF), .mode = -1, .epfd = -1, .brkfd = -1,
};

static bool dead(void);
static bool fd_gone(long r);
static void lost(bool raw);

/* How long events may wait for an M before sysmon reaps them. */
#define NETPOLL_STALE_NS 1000000

/* Names a break in the ring / epoll set (tokens have a generation >= 1). */
#define BREAK_TOK 0xffffffffull

/* An epoll break: arm the eventfd's one-shot entry for EPOLLOUT, which an
 * eventfd always is - the entry fires once and disarms itself, like the
 * ring's NOP.  Nothing is written to the eventfd: were the number ever
 * the program's (a raw close, core/rtfd.c), the call would fail with
 * ENOENT (the set has no entry for that file) instead of putting 8 bytes
 * into the program's pipe.  0 or -errno. */
static long brk_arm(int epfd, int brkfd)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT, .data.u64 = BREAK_TOK };

	return arch_syscall6(SYS_epoll_ctl, epfd, EPOLL_CTL_MOD, brkfd, (long)&ev, 0, 0);
}

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
static void slot_fire(uint64_t tok, int32_t res)
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

int netpoll_mode(void)
{
	int mode = atomic_load_explicit(&np.mode, memory_order_acquire);

	if (__builtin_expect(mode >= 0, 1))
		return atomic_load_explicit(&np.dead, memory_order_relaxed) ? IO_SYSCALL : mode;
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

/* ---- waiting --------------------------------------------------------------- */

static int uring_submit_locked(void)
{
	int r;

	do
		r = io_uring_submit(&np.ring);
	while (r == -EINTR);
	return r;
}

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&np.ring);

	if (!sqe) {
		uring_submit_locked();
		sqe = io_uring_get_sqe(&np.ring);
	}
	return sqe;
}

/* One request to the ring, named by tok (0: its completion is ignored):
 * the poll of a wait, a file read/write, or the cancel of a wait.  <0:
 * the ring is unusable now (the caller blocks instead). */
struct req {
	int op, fd, cnt;
	uint32_t events;              /* POLL_ADD; FSYNC, SYNC_FILE_RANGE flags */
	const struct iovec *iov;
	int64_t off, len;
	uint64_t target;              /* ASYNC_CANCEL: the request's token */
};

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
 * already handed to the kernel then complete as stale tokens. */
static int submit_n(const struct req *q, const uint64_t *tok, int n)
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
	if (r >= 0)
		r = uring_submit_locked();
	lock_release(&np.sqlock);
	rt_exit(g);
	if (fd_gone(r))
		lost(true);
	return r;
}

static int submit(const struct req *q, uint64_t tok)
{
	return submit_n(q, &tok, 1);
}

/* ---- reaping: M's and sysmon ---------------------------------------------- */

/* Users of the ring's, the epoll set's or the break eventfd's number
 * outside a transition and outside sqlock (the blocker's sleep, epoll
 * reaping, break writes) hold a use while they may still pass the number
 * to the kernel.  A move (netpoll_fd_moved) publishes the new number,
 * flips the epoch and waits for the old epoch's users: a user that read
 * the old epoch is counted there, one that read the new epoch reads the
 * new number (seq_cst: publish -> flip; load epoch -> count -> load fd). */
static unsigned use_begin(void)
{
	unsigned e = atomic_load_explicit(&np.epoch, memory_order_seq_cst) & 1;

	atomic_fetch_add_explicit(&np.use[e], 1, memory_order_seq_cst);
	return e;
}

static void use_end(unsigned e)
{
	atomic_fetch_sub_explicit(&np.use[e], 1, memory_order_release);
}

static bool dead(void)
{
	return atomic_load_explicit(&np.dead, memory_order_acquire);
}

bool netpoll_waiting(void)
{
	return atomic_load_explicit(&np.nwait, memory_order_seq_cst) > 0 && !dead();
}

/* The poller is given up: the ring or the epoll set was closed or
 * replaced behind our back (raw: a system call libc did not make, so
 * core/rtfd.c did not see it, and the number may be the program's now),
 * or a program's dup2 onto it found no number left to move it to.  The
 * numbers are never used again: new waits get -ENOSYS (plain calls);
 * G's waiting for readiness are woken to retry (plainly) by the next
 * reaper, find_runnable or sysmon (refire: an M about to drop its P must
 * not ready G's onto it without counting them); file
 * operations already in the ring still complete there and are reaped
 * from its memory (the mapping keeps the ring alive) by find_runnable and
 * sysmon.  The numbers are unmarked, not closed. */
static void lost(bool raw)
{
	bool mine;

	if (atomic_load_explicit(&np.dead, memory_order_seq_cst))
		return;
	mine = rtfd_held();
	if (!mine)
		rtfd_begin(true);
	np.raw = raw;
	/* seq_cst: pairs with use_begin then dead() in the users. */
	if (atomic_exchange_explicit(&np.dead, 1, memory_order_seq_cst)) {
		if (!mine)
			rtfd_end();
		return;
	}
	rt_warn(raw ? "the program closed the I/O poller's descriptor without libc: "
	              "blocking calls hold a thread from now on" :
	              "no descriptor number left for the I/O poller: "
	              "blocking calls hold a thread from now on");
	if (atomic_load_explicit(&np.mode, memory_order_relaxed) == IO_URING) {
		rtfd_unmark(__atomic_load_n(&np.ring.ring_fd, __ATOMIC_RELAXED));
	} else {
		rtfd_unmark(__atomic_load_n(&np.epfd, __ATOMIC_RELAXED));
		rtfd_unmark(__atomic_load_n(&np.brkfd, __ATOMIC_RELAXED));
		/* The waits' dups went the same way, most likely: their numbers
		 * may be the program's now, whose closes must reach the kernel.
		 * Their G's find -1 and leave them alone. */
		lock_acquire(&np.lock);
		for (uint32_t i = 0; raw && i < np.n; i++)
			if (np.v[i].dfd >= 0) {
				rtfd_unmark(np.v[i].dfd);
				np.v[i].dfd = -1;
			}
		lock_release(&np.lock);
	}
	if (!mine)
		rtfd_end();
	/* Not readied from here: the caller may be an M about to give up its
	 * P (find_runnable's reap), which must not leave G's on it.  The
	 * next reaper does it and counts them (refire). */
	atomic_store_explicit(&np.refire, 1, memory_order_seq_cst);
	sysmon_kick();
}

/* After a loss: wake the G's waiting for readiness, to retry (plainly). */
static int refire(void)
{
	int n = 0;

	for (uint32_t i = 0;; i++) {
		uint64_t tok = 0;

		lock_acquire(&np.lock);
		if (i >= np.n) {
			lock_release(&np.lock);
			break;
		}
		if (np.v[i].done && !np.v[i].file)
			tok = (uint64_t)np.v[i].gen << 32 | i;
		lock_release(&np.lock);
		if (tok) {
			slot_fire(tok, -ECANCELED);   /* the wrapper asks again */
			n++;
		}
	}
	return n;
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

/* A failure that says the number is no longer our ring or epoll set. */
static bool fd_gone(long r)
{
	return r == -EBADF || r == -EOPNOTSUPP || r == -ENXIO;
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
	unsigned e = use_begin();

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

/* Park until *done is set (a slot fired), the deadline passes or *intr
 * is set: 0, -ETIMEDOUT, -EINTR, or -EAGAIN when woken for a signal
 * (the caller decides). */
static int park_wait(_Atomic uint32_t *done, int64_t deadline, _Atomic uint32_t *intr,
                     bool interruptible)
{
	int r = 0;

	for (;;) {
		if (atomic_load_explicit(done, memory_order_acquire))
			return 0;
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
	if (submit_n(q, tok, n) < 0) {
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

		submit_n(q, zero, k);
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

		if (submit(&q, tok) < 0) {
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

/* Wake the blocker through whatever number we hold now, also after a
 * loss (the mover's drain: the number is still ours until the program's
 * call replaces it). */
static void break_raw(void)
{
	if (atomic_load_explicit(&np.mode, memory_order_acquire) == IO_URING) {
		struct io_uring_sqe *sqe;

		lock_acquire(&np.sqlock);
		if ((sqe = sqe_get()) != NULL) {
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data64(sqe, BREAK_TOK);
			uring_submit_locked();
		}
		lock_release(&np.sqlock);
	} else {
		brk_arm(np.epfd, np.brkfd);
	}
}

/* After a move (or a loss): wait until the users that may hold the old
 * number are out (all: every user, for a loss).  The blocker sleeps on
 * it: the break (through the new number: the same ring or eventfd) wakes
 * it; netpoll_block's bound ends its sleep anyway. */
static void drain(bool all)
{
	unsigned old = atomic_fetch_add_explicit(&np.epoch, 1, memory_order_seq_cst) & 1;

	for (int i = 0;; i++) {
		if (!atomic_load_explicit(&np.use[old], memory_order_seq_cst) &&
		    (!all || !atomic_load_explicit(&np.use[old ^ 1], memory_order_seq_cst)))
			break;
		if (i % 1024 == 0)
			break_raw();
		arch_syscall(SYS_sched_yield, 0, 0, 0);
	}
}

/* An epoll wait's dup is about to be replaced: re-register the wait under
 * a new one (the set keys entries by file and number); its G reads the
 * number from the slot in its own transition.  No number left: the wait
 * is taken off the set and woken, to ask again (plainly, as the table is
 * full). */
static void dfd_moved(int fd)
{
	uint64_t wake = 0;

	lock_acquire(&np.lock);
	for (uint32_t i = 0; i < np.n; i++) {
		struct epoll_event ev;
		int h;

		if (np.v[i].dfd != fd)
			continue;
		ev.events = np.v[i].ev;
		ev.data.u64 = (uint64_t)np.v[i].gen << 32 | i;
		h = rtfd_dup_high(fd);
		if (!dead())
			arch_syscall6(SYS_epoll_ctl, np.epfd, EPOLL_CTL_DEL, fd, 0, 0, 0);
		if (h >= 0 && !dead())
			arch_syscall6(SYS_epoll_ctl, np.epfd, EPOLL_CTL_ADD, h, (long)&ev, 0, 0);
		else if (np.v[i].done)
			wake = ev.data.u64;
		np.v[i].dfd = h;   /* -1: nothing for the G to close */
		break;
	}
	lock_release(&np.lock);
	if (wake)
		slot_fire(wake, 0);
}

/* In a transition (core/rtfd.c), for a program's dup2/dup3 onto fd, one
 * of ours: move what fd is to another number, so that the program's call
 * replaces nothing the runtime still uses.  After return, fd may be
 * replaced.  If no number is left for the ring or the epoll set, the
 * poller is given up (lost). */
void netpoll_fd_moved(int fd)
{
	int mode = atomic_load_explicit(&np.mode, memory_order_acquire), h;

	if (mode == IO_URING && fd == __atomic_load_n(&np.ring.ring_fd, __ATOMIC_RELAXED)) {
		/* Submitters hold sqlock and read the number there. */
		lock_acquire(&np.sqlock);
		h = rtfd_dup_high(fd);
		if (h >= 0) {
			__atomic_store_n(&np.ring.ring_fd, h, __ATOMIC_SEQ_CST);
			__atomic_store_n(&np.ring.enter_ring_fd, h, __ATOMIC_SEQ_CST);
		}
		lock_release(&np.sqlock);
	} else if (mode == IO_EPOLL && fd == np.epfd) {
		h = rtfd_dup_high(fd);   /* the same set: its entries stay */
		if (h >= 0)
			__atomic_store_n(&np.epfd, h, __ATOMIC_SEQ_CST);
	} else if (mode == IO_EPOLL && fd == np.brkfd) {
		/* The set keys the entry by file and number: a new entry under
		 * the new number (armed: it wakes the blocker for the drain),
		 * and the old one taken out once nobody arms it any more. */
		struct epoll_event ev = { .events = EPOLLOUT | EPOLLONESHOT, .data.u64 = BREAK_TOK };

		h = rtfd_dup_high(fd);
		if (h >= 0 && arch_syscall6(SYS_epoll_ctl, np.epfd, EPOLL_CTL_ADD, h, (long)&ev, 0, 0) < 0) {
			rtfd_close(h);
			h = -1;
		}
		if (h >= 0) {
			__atomic_store_n(&np.brkfd, h, __ATOMIC_SEQ_CST);
			drain(false);
			arch_syscall6(SYS_epoll_ctl, np.epfd, EPOLL_CTL_DEL, fd, 0, 0, 0);
			return;
		}
	} else {
		dfd_moved(fd);
		return;
	}
	if (h < 0)
		lost(false);   /* the table is full: users of the old number drained below */
	drain(h < 0);
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
	atomic_store(&np.cqbusy, 0);
	atomic_store(&np.blocker, 0);
	atomic_store(&np.dead, 0);
	atomic_store(&np.refire, 0);
	atomic_store(&np.use[0], 0);
	atomic_store(&np.use[1], 0);
	atomic_store(&np.mode, -1);
}
