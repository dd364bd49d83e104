/* shim/cond.c - condition variables that park G's.
 *
 * Protocol: a sequence word, as in musl's first condvar and Go's
 * sync.Cond (notifyList tickets, simplified).
 *   wait:   (mutex held) waiters++, s = seq, unlock mutex,
 *           gfutex_wait(&seq, s), waiters--, relock mutex
 *   signal: if waiters: seq++, wake one;  broadcast: seq++, wake all
 * No lost wake-up: a waiter reads seq while it still holds the mutex, and
 * a signaller that changed the predicate under the mutex bumps seq after
 * that point, so either gfutex_wait sees the new seq (returns at once) or
 * the waiter is already queued and gets woken.  waiters is incremented
 * under the mutex too, so "no waiters -> nothing to do" is safe for any
 * signaller that changed the predicate under the mutex (POSIX only
 * promises predictable behaviour to those).  Spurious wake-ups happen
 * (POSIX allows them): a signal between a waiter's unlock and its sleep
 * wakes that waiter early, and seq wraps after 2^32 signals.
 *
 * Layout in glibc's 48-byte pthread_cond_t: seq at offset 0, waiters at 4,
 * and the attribute bits where glibc keeps them (__wrefs: bit 0
 * process-shared, bit 1 CLOCK_MONOTONIC), so PTHREAD_COND_INITIALIZER
 * (zeros: private, CLOCK_REALTIME) needs no init call.
 *
 * Process-shared condvars are glibc's, called with the P handed off around
 * the waits; they must be used with process-shared mutexes (glibc's
 * wait re-locks the mutex with its own internal calls).
 *
 * Cancellation: wait is a cancellation point.  A cancelled waiter re-takes
 * the mutex before its cleanup handlers run, as POSIX requires.
 *
 * Rejected for now: requeueing broadcast waiters onto the mutex (glibc's
 * old FUTEX_CMP_REQUEUE) - woken waiters contend for the mutex instead;
 * gshim's parking is cheap enough that the herd costs little.
 */
#include <errno.h>
#include <string.h>
#include "shim.h"

enum { CV_SHARED = 1, CV_MONOTONIC = 2 };

struct cv {
	_Atomic uint32_t seq;
	_Atomic uint32_t waiters;
};
_Static_assert(sizeof(struct cv) <= 32, "cv overlay must stay clear of __wrefs");

static inline struct cv *cv_of(pthread_cond_t *c) { return (struct cv *)c; }
static inline unsigned cv_flags(pthread_cond_t *c)
{
	return __atomic_load_n(&c->__data.__wrefs, __ATOMIC_RELAXED);
}

SHIM_EXPORT int pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *attr)
{
	int pshared = PTHREAD_PROCESS_PRIVATE;
	clockid_t clk = CLOCK_REALTIME;

	shim_self();
	if (attr) {
		pthread_condattr_getpshared(attr, &pshared);
		pthread_condattr_getclock(attr, &clk);
	}
	if (pshared == PTHREAD_PROCESS_SHARED)
		return PSHARED(REAL(pthread_cond_init)(c, attr));
	memset(c, 0, sizeof *c);
	if (clk == CLOCK_MONOTONIC)
		c->__data.__wrefs = CV_MONOTONIC;
	return 0;
}

SHIM_EXPORT int pthread_cond_destroy(pthread_cond_t *c)
{
	struct cv *cv = cv_of(c);
	int spins;

	if (cv_flags(c) & CV_SHARED)
		return PSHARED(REAL(pthread_cond_destroy)(c));
	/* Woken waiters still touch the object (waiters--) before they
	 * re-take the mutex; wait for them, as glibc's destroy does.  A
	 * waiter still queued (nobody woke it) would keep it in use for good:
	 * EBUSY then, where glibc would block. */
	for (spins = 0; atomic_load_explicit(&cv->waiters, memory_order_acquire); spins++) {
		if (gfutex_queued(&cv->seq))
			return EBUSY;
		if (getcurg())
			g_yield();
		if (spins > 64)
			os_sched_yield();   /* let the kernel run the M's they are on */
	}
	return 0;
}

SHIM_EXPORT int pthread_cond_signal(pthread_cond_t *c)
{
	struct cv *cv = cv_of(c);

	if (cv_flags(c) & CV_SHARED)
		return PSHARED(REAL(pthread_cond_signal)(c));
	g_coop_yield(getcurg());   /* a pending preemption: safe here */
	if (atomic_load_explicit(&cv->waiters, memory_order_seq_cst) == 0)
		return 0;
	/* seq_cst: ordered before gfutex_wake's look at the bucket. */
	atomic_fetch_add_explicit(&cv->seq, 1, memory_order_seq_cst);
	gfutex_wake(&cv->seq, 1);
	return 0;
}

SHIM_EXPORT int pthread_cond_broadcast(pthread_cond_t *c)
{
	struct cv *cv = cv_of(c);

	if (cv_flags(c) & CV_SHARED)
		return PSHARED(REAL(pthread_cond_broadcast)(c));
	g_coop_yield(getcurg());   /* a pending preemption: safe here */
	if (atomic_load_explicit(&cv->waiters, memory_order_seq_cst) == 0)
		return 0;
	atomic_fetch_add_explicit(&cv->seq, 1, memory_order_seq_cst);
	gfutex_wake(&cv->seq, INT32_MAX);
	return 0;
}

/* deadline: CLOCK_MONOTONIC ns, < 0 = none. */
static int cond_wait(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline)
{
	struct cv *cv = cv_of(c);
	g_t *g = shim_self();
	uint32_t seq;
	int r, err;

	if (g)
		cancel_point(g);
	atomic_fetch_add_explicit(&cv->waiters, 1, memory_order_seq_cst);
	seq = atomic_load_explicit(&cv->seq, memory_order_seq_cst);
	mutex_cv_use(m, 1);
	err = mutex_unlock(m);
	if (err) {
		mutex_cv_use(m, -1);
		atomic_fetch_sub_explicit(&cv->waiters, 1, memory_order_release);
		return err;
	}
	/* Woken with no signal or broadcast since we began (a signal
	 * handler ran in this thread, which interrupts the park): wait
	 * again.  glibc's futex wait restarts after a handler, so its
	 * condvar never wakes spuriously for one (tst-eintr5), and programs
	 * that forgot the predicate loop rely on that. */
	do {
		g_wait_note(g, WK_COND, (uintptr_t)c);
		r = cancel_gfutex_wait(g, &cv->seq, seq, deadline);
	} while (r == 0 && atomic_load_explicit(&cv->seq, memory_order_acquire) == seq);
	/* Release: pairs with destroy's acquire load of waiters. */
	atomic_fetch_sub_explicit(&cv->waiters, 1, memory_order_release);
	err = mutex_relock(m);
	mutex_cv_use(m, -1);
	if (r == -ECANCELED)
		cancel_point(g);   /* mutex held, as POSIX wants for cleanup */
	if (err)
		return err;        /* EOWNERDEAD from a robust mutex */
	return r == -ETIMEDOUT ? ETIMEDOUT : 0;
}

SHIM_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	if (cv_flags(c) & CV_SHARED) {
		void *dummy[2];
		int r;
		mutex_pshared_cond_before(getcurg(), m, dummy);
		g_block_enter();
		r = PSHARED(REAL(pthread_cond_wait)(c, m));
		g_block_exit();
		mutex_pshared_cond_after(getcurg(), m, r);
		return r;
	}
	return cond_wait(c, m, -1);
}

SHIM_EXPORT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m,
                                       clockid_t clk, const struct timespec *abst)
{
	int64_t deadline;
	int err;

	if (cv_flags(c) & CV_SHARED) {
		void *dummy[2];
		mutex_pshared_cond_before(getcurg(), m, dummy);
		g_block_enter();
		err = PSHARED(REAL(pthread_cond_clockwait)(c, m, clk, abst));
		g_block_exit();
		mutex_pshared_cond_after(getcurg(), m, err);
		return err;
	}
	err = shim_deadline(clk, abst, &deadline);
	if (err)
		return err;
	return cond_wait(c, m, deadline);
}

SHIM_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                       const struct timespec *abst)
{
	int64_t deadline;
	int err;

	if (cv_flags(c) & CV_SHARED) {
		void *dummy[2];
		mutex_pshared_cond_before(getcurg(), m, dummy);
		g_block_enter();
		err = PSHARED(REAL(pthread_cond_timedwait)(c, m, abst));
		g_block_exit();
		mutex_pshared_cond_after(getcurg(), m, err);
		return err;
	}
	err = shim_deadline(cv_flags(c) & CV_MONOTONIC ? CLOCK_MONOTONIC : CLOCK_REALTIME,
	                    abst, &deadline);
	if (err)
		return err;
	return cond_wait(c, m, deadline);
}
