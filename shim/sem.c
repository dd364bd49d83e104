/* shim/sem.c - POSIX unnamed semaphores (sem_init ... sem_getvalue).
 *
 * Purpose
 * -------
 * glibc's sem_wait sleeps in futex(2), which blocks the M and, at
 * GOMAXPROCS=1, the whole program.  A process-private semaphore is only
 * ever touched by this process, so its waits can park the G on a gfutex
 * instead.  A process-shared one (sem_init with pshared != 0, and every
 * semaphore sem_open creates: sem_open/sem_close/sem_unlink are glibc's)
 * may have waiters and posters in other processes, which only the kernel
 * futex reaches: those calls go to glibc, and the ones that may block are
 * bracketed by g_block_enter/g_block_exit so that the P moves to another
 * M while this M sleeps in the kernel.
 *
 * Layout
 * ------
 * glibc 2.36, x86_64 (64-bit atomics), struct new_sem inside the 32 bytes
 * of sem_t; kept bit for bit, so a semaphore initialised by either side
 * (before gshim came up, or memory shared with a process that does not
 * preload us) means the same thing to both:
 *   data     value in bits 0..31 (SEM_VALUE_MASK), number of registered
 *            waiters in bits 32..63 (SEM_NWAITERS_SHIFT).
 *   private  0 for a process-private semaphore, 128 for a process-shared
 *            one (sem_init with pshared != 0, and sem_open's).  The name
 *            misleads: glibc stores its FUTEX_PRIVATE (= LLL_PRIVATE = 0)
 *            or FUTEX_SHARED (= LLL_SHARED = FUTEX_PRIVATE_FLAG, 128), the
 *            value it XORs into the futex op.  Checked against glibc 2.36:
 *            sem_init(&s, 0, 5) leaves private = 0, sem_init(&s, 1, 7)
 *            and sem_open leave 128.  private != 0 <=> shared, so a
 *            zero-filled sem_t is private, as for glibc.
 * The gfutex word is the value half: the low 32 bits, at offset 0 on a
 * little-endian machine.  gfutex.c reads it as a 32-bit atomic while this
 * file updates it inside 64-bit RMWs, exactly as glibc mixes futex(2) on
 * the low half with 64-bit CAS on data; x86_64 keeps a naturally aligned
 * 32-bit load coherent with the 64-bit locked RMWs that contain it.
 *
 * Invariants (private semaphores)
 * -------------------------------
 *  I1  A thread between sem_wait_slow's registration and its
 *      unregistration is counted in the high half; nobody else changes
 *      that count.
 *  I2  A waiter sleeps (gfutex_wait on the value word, expecting 0) only
 *      while the value is 0: gfutex checks the value under its bucket
 *      lock after enqueueing.
 *  I3  Every post that raises the value while the count it saw in the
 *      same RMW is non-zero wakes at least one sleeper (or, from a signal
 *      handler that interrupted the runtime, every sleeper, later).
 *  I4  A registered waiter that was woken either takes a token, goes back
 *      to sleep because the value is 0 again (someone else took the token
 *      it was woken for: no wake-up is owed), or - leaving without a
 *      token (cancelled, timed out) - hands the wake on if a token and
 *      another waiter remain.
 *
 * Protocol
 * --------
 *   post:   CAS data: value+1 (release), fail with EOVERFLOW at
 *           SEM_VALUE_MAX.  If the count seen by the CAS is non-zero: wake
 *           one (sem_wake).
 *   wait:   fast: CAS data: value-1 while value > 0 (acquire).
 *           slow: fetch_add count+1 (register).  Loop: while value > 0,
 *           CAS data: value-1 and count-1 together (acquire) -> done.
 *           Else gfutex_wait(value word, 0, deadline) and loop.  Timeout
 *           or cancellation: fetch_sub count-1, hand on (I4), leave.
 * No lost wake-up: value and count live in one word, so every post RMW
 * and every registration RMW are totally ordered.  If the post comes
 * first, the registering waiter's RMW returns value > 0 and it takes the
 * token instead of sleeping.  If the registration comes first, the post
 * sees count > 0 and calls gfutex_wake after its increment; the waiter
 * either has not checked the value inside gfutex_wait yet (it sees > 0
 * and does not sleep: I2) or is enqueued, and gfutex's own
 * enqueue/fence/check vs store/fence/peek protocol makes the wake find it.
 * Waking one instead of all is enough by I3 + I4: a post's wake goes to a
 * waiter gfutex_wake actually dequeued (timed-out nodes are skipped by the
 * state CAS in gfutex.c), and the only way that waiter can leave without
 * consuming is covered by the hand-on.  That way exists: gfutex_wait_intr
 * reports -EINTR if it sees the cancellation request after the wait, even
 * when it was woken, and gfutex_interrupt's wake-all reaches only waiters
 * still published.  (glibc 2.36 loses this wake: a post racing with the
 * cancellation of the waiter it woke can leave a second waiter asleep
 * with value 1.  Handing on costs nothing when nobody else waits.)
 *
 * Wakes from signal handlers
 * --------------------------
 * sem_post is async-signal-safe (POSIX), and programs post from handlers.
 * gfutex_wake takes a bucket lock and touches the P's run queue; if the
 * handler interrupted runtime code on this very thread (g->rtdepth > 0,
 * or a g0, which is always inside the runtime) that could self-deadlock.
 * sem_wake therefore wakes one directly exactly when gfutex_wake_async
 * itself would wake directly (a user G outside any runtime section, or a
 * thread that is not an M) and otherwise calls gfutex_wake_async, which
 * defers the wake to the end of the runtime section and then wakes every
 * sleeper: a rare thundering herd, and correct (the losers go back to
 * sleep).  Outside handlers, the common case, the condition always holds:
 * the shim never calls sem_post from inside a runtime section.  This
 * rests on core doing a deferred wake even when the interrupted G goes
 * on to park: it may be parking on this very semaphore.
 *
 * Orderings: the post's value increment is a release and the waiter's
 * decrement an acquire: what the poster wrote before sem_post is visible
 * to the thread whose sem_wait took that token (POSIX 4.12).  Count-only
 * updates are relaxed: they are RMWs on the same word as the value, so
 * the single modification order of data is all the protocol needs.
 *
 * Deviations and glibc details
 * ----------------------------
 * As glibc 2.36 (not only when it has to wait, which POSIX would allow):
 * sem_timedwait and sem_clockwait fail with EINVAL for a bad tv_nsec or
 * clock before looking at the value.  A CLOCK_REALTIME deadline is
 * converted once (shim_deadline).
 * A G blocked in sem_wait on a process-shared semaphore cannot be
 * cancelled until it returns: the kernel futex wait is glibc's, and
 * glibc's cancellation is not ours (cancellation is acted on at entry and
 * after the wait).  A private wait fails with EINTR when a handler runs in the
 * waiting thread (sem_wait restarts after an SA_RESTART handler,
 * sem_timedwait and sem_clockwait never do, as natively) (a signal sent to it with pthread_kill or tgkill wakes
 * the G to run it, and sigdelivered tells); a process-directed signal
 * runs its handler on whichever M the kernel picks, so the wait goes on.
 *
 * Rejected
 * --------
 *  - Waking all waiters on every post (what gfutex_wake_async alone would
 *    give): a thundering herd on every post of a busy semaphore.
 *  - A separate 32-bit waiter word next to the value (in pad): register
 *    and check would be two locations, needing a #StoreLoad fence on both
 *    sides for what one 64-bit RMW gives for free, and the layout would
 *    no longer be glibc's.
 *  - Always forwarding to glibc under g_block_enter: every contended wait
 *    would cost an M and a P handoff.
 *  - Spinning before parking: glibc does not for semaphores either, and a
 *    producer on the same P cannot run while we spin.
 */
#include <errno.h>
#include <limits.h>
#include <semaphore.h>
#include <time.h>
#include "shim.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sem.c: the value half of data must be at offset 0 (little endian)"
#endif

#define SEM_VALUE_MASK      0xffffffffull
#define SEM_NWAITERS_SHIFT  32
#define SEM_NWAITER         (1ull << SEM_NWAITERS_SHIFT)
#define SEM_SHARED          128   /* glibc's FUTEX_SHARED; 0 = private */

/* glibc's struct new_sem (x86_64).  Do not move: shared with glibc. */
struct gsem {
	_Atomic uint64_t data;   /* value | nwaiters << 32 (see essay) */
	int private;             /* 0 or SEM_SHARED; written by sem_init */
	int pad;
};

_Static_assert(sizeof(struct gsem) <= sizeof(sem_t), "sem_t too small");
_Static_assert(_Alignof(sem_t) >= _Alignof(uint64_t), "sem_t misaligned");

static inline struct gsem *gsem_of(sem_t *sem) { return (struct gsem *)sem; }

static inline bool sem_shared(const struct gsem *s) { return s->private != 0; }

/* The gfutex word: the value half of data. */
static inline _Atomic uint32_t *sem_word(struct gsem *s)
{
	return (_Atomic uint32_t *)(void *)&s->data;
}

static inline int sem_fail(int err)
{
	errno = err;
	return -1;
}

/* Take a token if there is one.  Any thread.  Pairs (acquire) with the
 * release of the sem_post that made it. */
static inline bool sem_take(struct gsem *s)
{
	uint64_t d = atomic_load_explicit(&s->data, memory_order_relaxed);

	while (d & SEM_VALUE_MASK)
		if (atomic_compare_exchange_weak_explicit(&s->data, &d, d - 1,
		        memory_order_acquire, memory_order_relaxed))
			return true;
	return false;
}

/* Wake one sleeper (all, later, if that is not safe now: essay, "Wakes
 * from signal handlers").  Any context, including signal handlers. */
static void sem_wake(struct gsem *s)
{
	g_t *g = getg();

	if (!g || (!g->is_g0 && g->rtdepth == 0))
		gfutex_wake(sem_word(s), 1);
	else
		gfutex_wake_async(sem_word(s));
}

/* Leave without a token (timeout, cancellation): unregister, and hand the
 * wake-up we may have been given on to another waiter (I4).  A spurious
 * wake at worst. */
static void sem_unregister(struct gsem *s)
{
	uint64_t d = atomic_fetch_sub_explicit(&s->data, SEM_NWAITER,
	                                       memory_order_relaxed) - SEM_NWAITER;

	if ((d & SEM_VALUE_MASK) && (d >> SEM_NWAITERS_SHIFT))
		sem_wake(s);
}

/* Slow path of the private waits: the value was 0.  Blocks the G (or the
 * OS thread if g is NULL).  deadline: CLOCK_MONOTONIC ns, -1 = none. */
static int sem_wait_slow(struct gsem *s, g_t *g, int64_t deadline)
{
	/* Register (I1).  Relaxed: ordered with every post by data's
	 * modification order; the returned value is checked below. */
	uint64_t d = atomic_fetch_add_explicit(&s->data, SEM_NWAITER,
	                                       memory_order_relaxed) + SEM_NWAITER;
	int r;

	if (g)
		g_sig_outcome_reset(g);
	for (;;) {
		/* Take a token and unregister in one step.  Acquire: pairs
		 * with the post's release. */
		while (d & SEM_VALUE_MASK)
			if (atomic_compare_exchange_weak_explicit(&s->data, &d,
			        d - 1 - SEM_NWAITER, memory_order_acquire,
			        memory_order_relaxed))
				return 0;
		g_wait_note(g, WK_SEM, (uintptr_t)s);
		r = cancel_gfutex_wait(g, sem_word(s), 0, deadline);
		if (r == -ETIMEDOUT) {
			sem_unregister(s);
			return sem_fail(ETIMEDOUT);
		}
		if (r == -ECANCELED) {
			sem_unregister(s);
			cancel_point(g);
			/* Not acted on after all: wait on. */
			atomic_fetch_add_explicit(&s->data, SEM_NWAITER,
			                          memory_order_relaxed);
		}
		/* A handler ran in this thread while it waited (pthread_kill
		 * wakes the G to run it): EINTR, unless it has SA_RESTART and
		 * the wait has no deadline - the kernel restarts glibc's
		 * untimed futex wait only (measured: a timed one says EINTR). */
		if (g && atomic_load_explicit(&g->sigdelivered, memory_order_relaxed) &&
		    g_sig_outcome(g, deadline < 0) == SIG_EINTR) {
			sem_unregister(s);
			return sem_fail(EINTR);
		}
		/* Woken, value changed, or spurious: look again. */
		d = atomic_load_explicit(&s->data, memory_order_relaxed);
	}
}

/* Validity checks glibc makes before it looks at the semaphore. */
static inline bool abstime_ok(clockid_t clk, const struct timespec *abst)
{
	return (clk == CLOCK_REALTIME || clk == CLOCK_MONOTONIC) &&
	       abst && abst->tv_nsec >= 0 && abst->tv_nsec < 1000000000;
}

static int sem_wait_private(struct gsem *s, g_t *g, clockid_t clk,
                            const struct timespec *abst)
{
	int64_t deadline = -1;
	int err;

	/* A cancellation point even when it does not block (POSIX "shall
	 * occur"; glibc tests at entry too). */
	if (g)
		cancel_point(g);
	/* Fast path. */
	if (sem_take(s))
		return 0;
	if (abst && (err = shim_deadline(clk, abst, &deadline)) != 0)
		return sem_fail(err);
	return sem_wait_slow(s, g, deadline);
}

/* A process-shared wait: glibc's, with the P handed off while this M
 * sleeps in the kernel (the G runs without a P in between).  abst NULL:
 * no timeout. */
static int sem_wait_shared(sem_t *sem, g_t *g, clockid_t clk,
                           const struct timespec *abst)
{
	int saved = errno, r;

	if (g)
		cancel_point(g);
	/* Fast path: no handoff when a token is there. */
	if (REAL(sem_trywait)(sem) == 0) {
		errno = saved;
		return 0;
	}
	errno = saved;
	g_block_enter();
	if (!abst)
		r = REAL(sem_wait)(sem);
	else if (clk == CLOCK_REALTIME)
		r = REAL(sem_timedwait)(sem, abst);
	else
		r = REAL(sem_clockwait)(sem, clk, abst);
	g_block_exit();
	/* A request that came while we slept in the kernel: act on it now,
	 * unless we got the token (then at the next cancellation point). */
	if (r != 0 && g)
		cancel_point(g);
	return r;
}

SHIM_EXPORT int sem_init(sem_t *sem, int pshared, unsigned int value)
{
	struct gsem *s = gsem_of(sem);

	if (value > SEM_VALUE_MAX)
		return sem_fail(EINVAL);
	atomic_store_explicit(&s->data, value, memory_order_relaxed);
	s->private = pshared ? SEM_SHARED : 0;
	s->pad = 0;
	return 0;
}

SHIM_EXPORT int sem_destroy(sem_t *sem)
{
	(void)sem;   /* glibc: nothing to free; waiters left are UB */
	return 0;
}

SHIM_EXPORT int sem_post(sem_t *sem)
{
	struct gsem *s = gsem_of(sem);
	uint64_t d;

	if (sem_shared(s)) {
		real_init();
		return REAL(sem_post)(sem);
	}
	/* Release: pairs with the acquire of the wait that takes the token
	 * (sem_take, sem_wait_slow). */
	d = atomic_load_explicit(&s->data, memory_order_relaxed);
	do {
		if ((d & SEM_VALUE_MASK) == SEM_VALUE_MAX)
			return sem_fail(EOVERFLOW);
	} while (!atomic_compare_exchange_weak_explicit(&s->data, &d, d + 1,
	             memory_order_release, memory_order_relaxed));
	if (d >> SEM_NWAITERS_SHIFT)
		sem_wake(s);
	return 0;
}

SHIM_EXPORT int sem_wait(sem_t *sem)
{
	struct gsem *s = gsem_of(sem);
	g_t *g = shim_self();

	if (sem_shared(s)) {
		real_init();
		return sem_wait_shared(sem, g, CLOCK_REALTIME, NULL);
	}
	return sem_wait_private(s, g, CLOCK_REALTIME, NULL);
}

SHIM_EXPORT int sem_timedwait(sem_t *sem, const struct timespec *abst)
{
	struct gsem *s = gsem_of(sem);
	g_t *g = shim_self();

	/* glibc checks tv_nsec first, even when it would not wait. */
	if (!abstime_ok(CLOCK_REALTIME, abst))
		return sem_fail(EINVAL);
	if (sem_shared(s)) {
		real_init();
		return sem_wait_shared(sem, g, CLOCK_REALTIME, abst);
	}
	return sem_wait_private(s, g, CLOCK_REALTIME, abst);
}

SHIM_EXPORT int sem_clockwait(sem_t *sem, clockid_t clk,
                              const struct timespec *abst)
{
	struct gsem *s = gsem_of(sem);
	g_t *g = shim_self();

	/* glibc checks the clock and tv_nsec first, even when it would not
	 * wait. */
	if (!abstime_ok(clk, abst))
		return sem_fail(EINVAL);
	if (sem_shared(s)) {
		real_init();
		return sem_wait_shared(sem, g, clk, abst);
	}
	return sem_wait_private(s, g, clk, abst);
}

SHIM_EXPORT int sem_trywait(sem_t *sem)
{
	struct gsem *s = gsem_of(sem);

	/* Never blocks, and the layout is glibc's: the same CAS serves
	 * shared semaphores too. */
	if (sem_take(s))
		return 0;
	return sem_fail(EAGAIN);
}

SHIM_EXPORT int sem_getvalue(sem_t *sem, int *sval)
{
	struct gsem *s = gsem_of(sem);

	/* glibc reports the value, never a negative waiter count. */
	*sval = (int)(atomic_load_explicit(&s->data, memory_order_relaxed) & SEM_VALUE_MASK);
	return 0;
}
