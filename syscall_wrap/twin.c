/* syscall_wrap/twin.c - blocking calls that give their M back when M's
 * run short.
 *
 * A call that gshim cannot park (flock, a record-lock wait, a read with
 * GSHIM_IO=syscall) holds an M while it blocks, as a native thread holds
 * its kernel thread.  When no M can be created (RLIMIT_NPROC, pids.max,
 * GSHIM_MAXM), those M's may be exactly what the thread that would end
 * the calls needs: the lock's holder, the pipe's writer - runnable, with
 * no M (core/syscall.c, "Running out of M's").  So each such call has a
 * twin that never waits:
 *   flock(op)           -> flock(op | LOCK_NB)        EWOULDBLOCK: would wait
 *   fcntl(F_SETLKW)     -> fcntl(F_SETLK)             EAGAIN, EACCES
 *   fcntl(F_OFD_SETLKW) -> fcntl(F_OFD_SETLK)         EAGAIN
 *   read/write of a pipe, FIFO, tty or socket (no timeout) with
 *   GSHIM_IO=syscall    -> ppoll(fd, 0 timeout), then the call once ready
 * sc_call_twin makes the plain call while M's are plentiful - exact, and
 * free - but marks the G evictable: if sysmon finds runnable G's starving
 * for an M, it signals this M out of the call (as pthread_cancel does,
 * core/cancel.c), and the call goes on here with the twin.  While M's are
 * short (sched_mshort) calls start with the twin.  Between tries the G
 * parks on a timer, 100 us doubling to 10 ms, so it holds no M and costs
 * a try per park.
 *
 * The twin keeps the call's meaning: the same system call without the
 * wait, retried until it does not need to wait; signals during a park
 * end the call with EINTR or restart it as the kernel would have
 * (SA_RESTART: g_sig_outcome); cancellation acts during a park where
 * the call is a cancellation point.  What it changes is the queueing: a
 * lock waiter that polls is not in the kernel's queue and may lose the
 * lock to later waiters, and it sees a release up to 10 ms late; a
 * record-lock poller gets no EDEADLK.  That is why the twin is used only
 * while M's are short - then the alternative was a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include "wrap.h"

#define TWIN_MIN_NS 100000      /* first park between tries: 100 us */
#define TWIN_MAX_NS 10000000    /* longest: 10 ms, sysmon's longest round */

#define TWIN_EVICTED (-4097L)   /* the plain call was evicted */
#define TWIN_WAIT    (-4098L)   /* the twin would have had to wait */

/* The plain call, evictable: its result, or TWIN_EVICTED. */
static long twin_block(g_t *g, const struct sc_twin *c)
{
	g_t *sg;
	uint32_t ev;
	long r;

	atomic_store_explicit(&g->evict, 0, memory_order_relaxed);
	sg = sc_enter_nr(false, c->nr, c->a[0]);
	if (sg) {
		g->scsince = os_nanotime();
		/* Before the call (in_cp is set inside cancel_syscall2):
		 * sysmon signals only G's it sees evictable, and keeps
		 * signalling while they stay in the call. */
		atomic_store_explicit(&g->evictable, 1, memory_order_seq_cst);
	}
	r = cancel_syscall2(g, c->cancel, c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4],
	                     c->a[5]);
	atomic_store_explicit(&g->evictable, 0, memory_order_seq_cst);
	ev = atomic_exchange_explicit(&g->evict, 0, memory_order_acq_rel);
	sc_exit(sg);
	if (c->cancel)
		cancel_syscall_after(g, r);   /* acts if a cancellation cut it short */
	if (r == ARCH_CP_CANCELED)
		return ev ? TWIN_EVICTED : -EINTR;
	return r;
}

/* The twin: the result, or TWIN_WAIT. */
static long twin_try(g_t *g, const struct sc_twin *c)
{
	long r;

	if (c->tnr < 0) {
		struct pollfd p = { .fd = c->fd, .events = c->events };
		struct timespec zero = { 0, 0 };
		long fl;

		/* Not ready, and the call would wait for it: unless the
		 * descriptor is non-blocking (then the call's EAGAIN). */
		if (arch_syscall6(SYS_ppoll, (long)&p, 1, (long)&zero, 0, 8, 0) == 0 &&
		    ((fl = arch_syscall(SYS_fcntl, c->fd, F_GETFL, 0)) < 0 || !(fl & O_NONBLOCK)))
			return TWIN_WAIT;
		/* Ready (or an error the call will report): the call itself,
		 * which waits only if another thread took the data first. */
		r = twin_block(g, c);
		return r == TWIN_EVICTED ? TWIN_WAIT : r;
	}
	r = arch_syscall6(c->tnr, c->ta[0], c->ta[1], c->ta[2], c->ta[3], c->ta[4], c->ta[5]);
	if (r == -EAGAIN || (c->again2 && r == -c->again2))
		return TWIN_WAIT;
	return r;
}

/* Park between tries.  0: try again; -EINTR: a handler ended the call. */
static long twin_park(g_t *g, const struct sc_twin *c, int64_t *wait)
{
	_Atomic uint32_t word = 0;
	int64_t deadline = os_nanotime() + *wait;
	int r;

	g_sig_outcome_reset(g);
	r = c->cancel ? cancel_gfutex_wait(g, &word, 0, deadline) :
	                gfutex_wait(&word, 0, deadline);
	if (r == -ECANCELED)
		cancel_point(g);
	if (atomic_load_explicit(&g->sigdelivered, memory_order_relaxed) &&
	    g_sig_outcome(g, c->restart) == SIG_EINTR)
		return -EINTR;
	*wait = *wait * 2 > TWIN_MAX_NS ? TWIN_MAX_NS : *wait * 2;
	return 0;
}

/* A socket's timeout for the call (c->sockopt) as a deadline, -1 none. */
static int64_t twin_deadline(const struct sc_twin *c, int64_t start)
{
	struct timeval tv;
	socklen_t len = sizeof tv;

	if (!c->sockopt ||
	    arch_syscall6(SYS_getsockopt, c->fd, SOL_SOCKET, c->sockopt, (long)&tv, (long)&len, 0) != 0 ||
	    (tv.tv_sec == 0 && tv.tv_usec == 0))
		return -1;
	return start + (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
}

long sc_call_twin(const struct sc_twin *c)
{
	g_t *g = getcurg();
	int64_t wait = TWIN_MIN_NS, start = 0, deadline = -2;
	long r;

	/* Not a G, or already inside a call (a signal handler that
	 * interrupted one): the plain call, nothing to account. */
	if (!g || g->rtdepth != 0 ||
	    atomic_load_explicit(&g->status, memory_order_relaxed) != G_RUNNING) {
		r = cancel_syscall2(g, c->cancel, c->nr, c->a[0], c->a[1], c->a[2], c->a[3],
		                     c->a[4], c->a[5]);
		if (c->cancel)
			cancel_syscall_after(g, r);
		return r == ARCH_CP_CANCELED ? -EINTR : r;
	}
	if (c->cancel)
		cancel_point(g);
	if (c->sockopt)
		start = os_nanotime();
	for (;;) {
		r = sched_mshort() ? twin_try(g, c) : twin_block(g, c);
		if (r != TWIN_EVICTED && r != TWIN_WAIT)
			return r;
		/* A socket with a timeout: the twin ends where the call would
		 * have (looked up once, when the twin is first needed). */
		if (deadline == -2)
			deadline = twin_deadline(c, start);
		if (deadline >= 0 && os_nanotime() >= deadline)
			return -EAGAIN;
		if (deadline >= 0 && os_nanotime() + wait > deadline)
			wait = deadline - os_nanotime() > 0 ? deadline - os_nanotime() : 1;
		r = twin_park(g, c, &wait);
		if (r < 0)
			return r;
	}
}
