/* core/rtfd.c - the runtime's own descriptors, and the program's calls
 * that close or replace descriptor numbers.
 *
 * Purpose.  gshim keeps descriptors of its own in the program's table: the
 * io_uring ring, or the epoll set and its break eventfd, the private dup
 * each epoll wait registers, and for a moment the /proc file sysmon reads
 * a thread's state from.  Programs close descriptors they never opened:
 * daemons and shells call close_range(3, ~0U) or closefrom(3), or close
 * every number listed in /proc/self/fd, and then open descriptors or dup2
 * onto numbers of their choosing.  Had such a call closed one of ours and
 * the program reused the number, the runtime would read, write, poll or
 * close the program's descriptor (before this file it aborted instead:
 * "cannot wake the M waiting for I/O events").
 *
 * Rules, as the program sees them:
 *   - a close of one of our numbers (close, close_range, closefrom, the
 *     same through syscall()) reports success and leaves ours open:
 *     natively the number would not be open at all.  close_range is split
 *     around our numbers;
 *   - dup2/dup3 onto one of our numbers gives the program that number: the
 *     runtime first moves its descriptor to another number
 *     (netpoll_fd_moved: a new number published, users of the old one
 *     drained), then the program's call replaces the old one;
 *   - open, socket, pipe, accept, F_DUPFD take the lowest free number, so
 *     they never land on ours; ours stay at the top of the range
 *     (os_fd_dup_high), so those calls return what they would natively.
 *
 * Protocol.  A number changes hands only in a "transition": the runtime
 * creating, moving or closing one of its descriptors (or using a
 * transient one), or a program call that closes or replaces numbers.
 * The two kinds exclude each other through a Dekker pair on trans and
 * pcall, so a program's close never runs while the runtime holds a
 * descriptor that is not (yet, or any more) marked in the map:
 *
 *   runtime  lock; trans++; [seq_cst] wait until pcall == 0;
 *            work, marking/unmarking; trans--; unlock
 *   program  pcall++; [seq_cst] if trans: pcall--, wait until trans == 0,
 *            again; look at the map, make the call around our numbers;
 *            pcall--
 *
 * The map cannot change while pcall > 0, so program calls need no lock
 * and run in parallel, blocking closes included.  The runtime waits only
 * for program calls already past their check; new ones back off while a
 * transition runs (transitions are short: a dup, an epoll_ctl, a close of
 * a private dup, an open/read/close of a /proc file).  sysmon never
 * waits: its /proc read takes no lock (it marks nothing) and, with a
 * program call in flight, is skipped.  A program call made from a signal
 * handler that interrupted a transition
 * on the same M passes straight through (waiting would deadlock; the
 * handler closes its own numbers).  A program call decrements pcall
 * before it may wait for a P (sc_exit), since the transition holder may
 * hold the P it waits for.  The one program call that needs more is
 * dup2/dup3 onto one of our numbers: it becomes a transition itself.
 *
 * CLOSE_RANGE_UNSHARE is dropped: a G has no table of its own, and an
 * unshared M's table would be seen by every G that runs there later.
 *
 * Lock order: the poller's initlock, then rtfd.lock, then the poller's
 * sqlock and slot table lock (netpoll_fd_moved runs in a transition).
 *
 * A vfork child shares our memory but has its own table: its calls go
 * straight to the kernel past the map (exec closes ours there).  fork
 * holds the lock (and waits out sysmon's read), so no transition is half
 * done in the child, which then closes every marked number (descriptors
 * of the parent's waits would otherwise keep the program's sockets open
 * there); all of ours are close-on-exec.
 *
 * Not seen: system calls made without libc (inline assembly, a static
 * runtime linked into the program).  A ring lost that way is noticed when
 * a call on it fails, and the poller degrades to plain blocking calls
 * (core/netpoll_fd.c, "lost").  The poller never reads or writes its
 * descriptors (the epoll break arms an entry instead of writing to the
 * eventfd), so a number that became the program's sees at worst a failed
 * io_uring_enter or epoll_ctl - unless the program's own io_uring or
 * epoll set landed on that very number before the failure showed.
 *
 * Rejected:
 *   - letting the close happen and re-creating the ring afterwards: an M
 *     may have read the number just before, and would then submit to,
 *     write to or epoll_ctl on whatever the program opened there next -
 *     a pipe (8 bytes of eventfd counter in the program's data) or its
 *     own io_uring or epoll set;
 *   - refusing the close with EBADF: right for a number the program never
 *     had, but close-everything loops that check the result report it;
 *   - refusing dup2 onto our numbers, or giving a different number:
 *     programs that dup2 onto a fixed number rely on getting it;
 *   - checking identity (fstat, inode compare) before each use: a system
 *     call per submit, and still racy between the check and the use;
 *   - one lock around every program close: closes may block (NFS flush,
 *     tty drain, SO_LINGER) and would then serialise the program's closes;
 *   - moving ours away on close too (so the number really is free after
 *     the program's close): close_range(3, ~0U) leaves nowhere to go, and
 *     one rule for every close is simpler; only a number the program names
 *     (dup2/dup3) must become its own;
 *   - a ring per M (a lost ring would cost one M): as many descriptors to
 *     protect, and the poller is one ring for other reasons (netpoll.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include "internal.h"

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Descriptor numbers the map covers (the kernel's default nr_open); the
 * runtime refuses a number above it (os_fd_dup_high rarely goes past
 * RLIMIT_NOFILE - 64 + a few). */
#define RTFD_MAX (1 << 20)

static struct {
	lock_t lock;                  /* serialises transitions */
	_Atomic int trans;            /* transitions running: the locked one,
	                               * and sysmon's /proc reads (no lock) */
	_Atomic int pcall;            /* program calls past their check */
	_Atomic(void *) holder;       /* the transition's thread pointer */
	g_t *holder_g;                /* its rt_enter (lock) */
	g_t *fork_g;                  /* rtfd_fork_prepare's rt_enter (lock) */
	_Atomic int top;              /* highest number ever marked, + 1 */
	_Atomic int count;            /* numbers marked */
	int pid;                      /* ours; a vfork child has another */
	_Atomic uint64_t map[RTFD_MAX / 64];   /* written in transitions */
} rtfd = { .lock = LOCK_INIT(RANK_LEAF) };

bool rtfd_is(int fd)
{
	return fd >= 0 && fd < RTFD_MAX &&
	       (atomic_load_explicit(&rtfd.map[fd / 64], memory_order_relaxed) >> (fd % 64) & 1);
}

/* In a transition. */
void rtfd_mark(int fd)
{
	if (fd < 0 || fd >= RTFD_MAX)
		rt_fatal("rtfd_mark: number out of range");
	atomic_fetch_or_explicit(&rtfd.map[fd / 64], 1ull << (fd % 64), memory_order_relaxed);
	atomic_fetch_add_explicit(&rtfd.count, 1, memory_order_relaxed);
	if (fd + 1 > atomic_load_explicit(&rtfd.top, memory_order_relaxed))
		atomic_store_explicit(&rtfd.top, fd + 1, memory_order_relaxed);
}

/* In a transition. */
void rtfd_unmark(int fd)
{
	if (!rtfd_is(fd))
		return;
	atomic_fetch_and_explicit(&rtfd.map[fd / 64], ~(1ull << (fd % 64)), memory_order_relaxed);
	atomic_fetch_sub_explicit(&rtfd.count, 1, memory_order_relaxed);
}

/* Who runs: the thread pointer names the G (per-g TLS) or the thread,
 * and a signal handler runs on the one it interrupted. */
static inline void *self(void)
{
	return __builtin_thread_pointer();
}

static int pid_now(void)
{
	return (int)arch_syscall(SYS_getpid, 0, 0, 0);
}

/* Start a transition.  wait: until program calls in flight are done
 * (they are never waiting for us); else false at once if there is one
 * (or another transition runs).  Any thread; the G stays inside the
 * runtime (no preemption, keeps its P) until rtfd_end. */
bool rtfd_begin(bool wait)
{
	g_t *g = rt_enter();

	if (wait)
		lock_acquire(&rtfd.lock);
	else if (!lock_try(&rtfd.lock)) {
		rt_exit(g);
		return false;
	}
	/* The holder before trans: a handler that interrupts us below and
	 * closes a number must pass through, not wait for us. */
	atomic_store_explicit(&rtfd.holder, self(), memory_order_relaxed);
	/* seq_cst: pairs with the program's pcall++ then load of trans. */
	atomic_fetch_add_explicit(&rtfd.trans, 1, memory_order_seq_cst);
	while (atomic_load_explicit(&rtfd.pcall, memory_order_seq_cst) != 0) {
		if (!wait) {
			atomic_fetch_sub_explicit(&rtfd.trans, 1, memory_order_seq_cst);
			atomic_store_explicit(&rtfd.holder, NULL, memory_order_relaxed);
			lock_release(&rtfd.lock);
			rt_exit(g);
			return false;
		}
		arch_syscall(SYS_sched_yield, 0, 0, 0);
	}
	rtfd.holder_g = g;
	if (!rtfd.pid)
		rtfd.pid = pid_now();
	return true;
}

void rtfd_end(void)
{
	g_t *g = rtfd.holder_g;

	atomic_store_explicit(&rtfd.holder, NULL, memory_order_relaxed);
	rtfd.holder_g = NULL;
	atomic_fetch_sub_explicit(&rtfd.trans, 1, memory_order_seq_cst);
	lock_release(&rtfd.lock);
	rt_exit(g);
}

bool rtfd_held(void)
{
	return atomic_load_explicit(&rtfd.trans, memory_order_relaxed) &&
	       atomic_load_explicit(&rtfd.holder, memory_order_relaxed) == self();
}

/* In a transition: a marked close-on-exec duplicate of fd at the top of
 * the range, or -errno. */
int rtfd_dup_high(int fd)
{
	int h = os_fd_dup_high(fd);

	if (h < 0)
		return h;
	if (h >= RTFD_MAX) {
		arch_syscall(SYS_close, h, 0, 0);
		return -EMFILE;
	}
	rtfd_mark(h);
	return h;
}

/* In a transition: fd (just created, unmarked) moved to the top and
 * marked; fd itself, marked, if it cannot move. */
int rtfd_adopt(int fd)
{
	int h = rtfd_dup_high(fd);

	if (h < 0) {
		if (fd >= RTFD_MAX)
			return fd;   /* cannot happen: the kernel's nr_open */
		rtfd_mark(fd);
		return fd;
	}
	arch_syscall(SYS_close, fd, 0, 0);
	return h;
}

/* In a transition: unmark and close one of ours. */
void rtfd_close(int fd)
{
	if (fd < 0)
		return;
	rtfd_unmark(fd);
	arch_syscall(SYS_close, fd, 0, 0);
}

/* sysmon and preemption: a thread's state letter from /proc (0: unknown,
 * also when a program call that closes numbers is in flight).  The file
 * is open only inside the transition; it marks nothing, so it needs no
 * lock (sysmon must not wait behind an M's transition), only the Dekker
 * pair with the program's calls. */
char rtfd_thread_state(pid_t tid)
{
	char c = 0;

	atomic_fetch_add_explicit(&rtfd.trans, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&rtfd.pcall, memory_order_seq_cst) == 0)
		c = os_thread_state(tid);
	atomic_fetch_sub_explicit(&rtfd.trans, 1, memory_order_seq_cst);
	return c;
}

/* ---- the program's calls ------------------------------------------------ */

/* A program call is about to close or replace numbers: wait out a
 * transition, then hold the map still (pcall).  false: pass straight
 * through (a handler inside our own transition on this M, or a vfork
 * child), no rtfd_pcall_end. */
static bool pcall_begin(void)
{
	for (;;) {
		atomic_fetch_add_explicit(&rtfd.pcall, 1, memory_order_seq_cst);
		if (!atomic_load_explicit(&rtfd.trans, memory_order_seq_cst))
			break;
		atomic_fetch_sub_explicit(&rtfd.pcall, 1, memory_order_seq_cst);
		if (atomic_load_explicit(&rtfd.holder, memory_order_relaxed) == self())
			return false;
		while (atomic_load_explicit(&rtfd.trans, memory_order_seq_cst))
			arch_syscall(SYS_sched_yield, 0, 0, 0);
	}
	return true;
}

static void pcall_end(void)
{
	atomic_fetch_sub_explicit(&rtfd.pcall, 1, memory_order_seq_cst);
}

/* Nothing of ours anywhere: the common case costs two loads. */
static inline bool none(void)
{
	return atomic_load_explicit(&rtfd.count, memory_order_relaxed) == 0;
}

/* The next of our numbers in [lo, hi], or -1. */
static int next_ours(unsigned lo, unsigned hi)
{
	unsigned top = (unsigned)atomic_load_explicit(&rtfd.top, memory_order_relaxed);

	if (hi >= top)
		hi = top ? top - 1 : 0;
	for (unsigned fd = lo; fd <= hi && top; ) {
		uint64_t w = atomic_load_explicit(&rtfd.map[fd / 64], memory_order_relaxed) >> (fd % 64);

		if (w)
			return fd + (unsigned)__builtin_ctzll(w) <= hi ?
			       (int)(fd + (unsigned)__builtin_ctzll(w)) : -1;
		fd = (fd | 63) + 1;
	}
	return -1;
}

/* Program close(fd) between these two.  rtfd_close_begin: 1 = make the
 * kernel call, then rtfd_close_end; 0 = one of ours: report success, no
 * call, no end. */
int rtfd_close_begin(int fd)
{
	if (!pcall_begin())
		return 2;   /* straight through, no end */
	if (rtfd_is(fd)) {
		pcall_end();
		return 0;
	}
	return 1;
}

void rtfd_close_end(int r)
{
	if (r == 1)
		pcall_end();
}

/* Program close_range(lo, hi, flags): the kernel's answer for the
 * numbers that are not ours (0 or -errno).  CLOSE_RANGE_CLOEXEC is harmless
 * to ours (they have it) and goes in one call. */
long rtfd_close_range(unsigned lo, unsigned hi, unsigned flags)
{
	long r = 0;
	bool through;

	/* A G has no descriptor table of its own: unsharing would give the
	 * M one, and every G that runs there later would use it. */
	flags &= ~CLOSE_RANGE_UNSHARE;
	if (lo > hi || (flags & CLOSE_RANGE_CLOEXEC))
		return arch_syscall(SYS_close_range, lo, hi, flags);
	through = !pcall_begin();
	/* Marked numbers imply rtfd.pid is set (the first transition). */
	if (through || none() || pid_now() != rtfd.pid) {
		r = arch_syscall(SYS_close_range, lo, hi, flags);
	} else {
		unsigned from = lo;

		for (;;) {
			int o = next_ours(from, hi);
			unsigned to = o < 0 ? hi : (unsigned)o - 1;

			if (o < 0 || (unsigned)o > from) {
				r = arch_syscall(SYS_close_range, from, to, flags);
				if (r < 0)
					break;
			}
			if (o < 0 || (unsigned)o == hi)
				break;
			from = (unsigned)o + 1;
		}
	}
	if (!through)
		pcall_end();
	return r;
}

/* Program dup3(old, new, flags) (dup2 is call without dup3's checks):
 * call's answer, new or -errno. */
long rtfd_dup3(int old, int new, long (*call)(int, int, int), int flags)
{
	long r;
	bool moved = false;

	if (!pcall_begin())
		return call(old, new, flags);
	if (old == new || !rtfd_is(new) || pid_now() != rtfd.pid) {
		r = call(old, new, flags);
		pcall_end();
		return r;
	}
	pcall_end();
	/* Onto one of ours: the answers that change nothing first, then
	 * move ours, as a transition, and make the call inside it. */
	if (flags & ~O_CLOEXEC)
		return -EINVAL;
	if (arch_syscall(SYS_fcntl, old, F_GETFD, 0) < 0)
		return -EBADF;
	rtfd_begin(true);
	if (rtfd_is(new)) {
		netpoll_fd_moved(new);
		rtfd_unmark(new);
		moved = true;
	}
	r = call(old, new, flags);
	if (r < 0 && moved)
		arch_syscall(SYS_close, new, 0, 0);   /* our old number, unused now */
	rtfd_end();
	return r;
}

/* fork: no transition may be half done (a dup not yet marked, or
 * unmarked and not yet closed, or sysmon's /proc file, would stay open in
 * the child).  The lock stops the locked ones; for sysmon's, the fork
 * counts as a program call (it then skips its read) and waits for those
 * in flight.  Program calls in flight do not matter: they create nothing
 * of ours. */
void rtfd_fork_prepare(void)
{
	g_t *g = rt_enter();

	lock_acquire(&rtfd.lock);
	atomic_fetch_add_explicit(&rtfd.pcall, 1, memory_order_seq_cst);
	while (atomic_load_explicit(&rtfd.trans, memory_order_seq_cst) != 0)
		arch_syscall(SYS_sched_yield, 0, 0, 0);
	rtfd.fork_g = g;
}

void rtfd_fork_parent(void)
{
	g_t *g = rtfd.fork_g;

	rtfd.fork_g = NULL;
	atomic_fetch_sub_explicit(&rtfd.pcall, 1, memory_order_seq_cst);
	lock_release(&rtfd.lock);
	rt_exit(g);
}

/* First thing in the child, before the poller's reset (which closes its
 * ring and epoll set itself). */
void rtfd_fork_child(void)
{
	int top = atomic_load_explicit(&rtfd.top, memory_order_relaxed);
	g_t *g = rtfd.fork_g;

	/* One thread left, nothing in flight: every marked number is a
	 * descriptor of the parent's runtime (the poller's, its waits'
	 * dups): the child's poller starts afresh if it needs one. */
	for (int fd = next_ours(0, (unsigned)top); fd >= 0; fd = next_ours((unsigned)fd + 1, (unsigned)top)) {
		rtfd_unmark(fd);
		arch_syscall(SYS_close, fd, 0, 0);
	}
	lock_init(&rtfd.lock, RANK_LEAF);
	atomic_store(&rtfd.trans, 0);
	atomic_store(&rtfd.pcall, 0);
	atomic_store(&rtfd.holder, NULL);
	rtfd.holder_g = NULL;
	rtfd.fork_g = NULL;
	rtfd.pid = pid_now();
	/* rtfd_fork_prepare's rt_enter, without rt_exit's deferred work:
	 * the child's scheduler is not reset yet. */
	if (g)
		g->rtdepth--;
}
