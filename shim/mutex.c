/* shim/mutex.c - pthread mutexes that park G's: the private ones of
 * every kind (normal, recursive, errorcheck, adaptive; robust, PI, PP
 * as flags on those), and the entry points of all of them.  The
 * process-shared ones are glibc's code with gshim's owner fix-ups
 * (mutex_pshared.c); what both files share is in mutex.h.
 *
 * glibc's mutex waits on a kernel futex: the whole M would sleep, and at
 * GOMAXPROCS=1 the thread that holds the lock could never run to release
 * it.  Here a waiter parks on a gfutex; the M runs other G's.
 *
 * Layout.  The object is glibc's 40-byte pthread_mutex_t, in the
 * program's memory, with glibc's field meanings where they matter to
 * programs: all-zero is PTHREAD_MUTEX_INITIALIZER, `__kind` holds the type
 * (the _NP static initializers set it: 1 recursive, 2 errorcheck, 3
 * adaptive) and glibc's flag bits (16 robust, 32 prio-inherit, 64
 * prio-protect, 128 process-shared).  A private mutex then uses:
 *   __lock   the lock word, Drepper's mutex3: 0 free, 1 held, 2 held and
 *            maybe waiters (gfutex address)
 *   __owner  owner id of the holder (shim_owner_id), 0 when free; written
 *            only by the holder, so "__owner == me" is only ever true for
 *            the holder
 *   __count  recursion depth (recursive type)
 *   __nusers flags: MX_INCONSISTENT (robust, owner died); above it, the
 *            number of condvar waits using the mutex (MX_CVUSER each:
 *            destroy says EBUSY meanwhile, as glibc's __nusers makes it)
 *   __spins  priority ceiling (prio-protect; glibc keeps it in __lock)
 *   __list   the robust list of the holding thread
 * so objects can be zeroed, memcpy'd before first use, destroyed and
 * reused, exactly like glibc's.
 *
 * Process-shared mutexes (kind bit 128) are glibc's code: every call goes
 * to libc, and a lock that may block first hands the P to another M
 * (g_block_enter), because the M sleeps in the kernel.  glibc names
 * owners by kernel thread, so gshim keeps, per G, the owner-checked ones
 * it holds and fixes glibc's owner fields up around each call, and keeps
 * the robust ones on a process-wide kernel robust list
 * (mutex_pshared.c).
 *
 * Robust mutexes: each thread keeps the robust mutexes it holds on a list
 * (through __list); when a thread exits holding some, each is marked
 * inconsistent and released; the next locker gets EOWNERDEAD with the
 * lock held; pthread_mutex_consistent clears the mark; unlocking without
 * it makes the mutex not recoverable (ENOTRECOVERABLE for everyone).
 *
 * Priority protocols (PI, PP) are accepted and behave as normal mutexes:
 * G's have no kernel priority to inherit or raise (docs/compat.md); the PP
 * ceiling is kept and reported, and glibc's error codes are kept: a
 * thread whose priority (pthread_setschedparam's, remembered) is above the
 * ceiling gets EINVAL, the holder of an errorcheck kind EDEADLK.
 *
 * Rejected: a wait queue inside the object (glibc's size leaves no room
 * for a G list, and memory the program zeroes must keep working) - waiters
 * live in the gfutex hash table instead, like futex waiters in the kernel.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include "mutex.h"

static bool kind_valid(int kind)
{
	return kind >= 0 && (kind & ~(MX_TYPE_MASK | MX_ROBUST | MX_PRIO_INHERIT |
	                              MX_PRIO_PROTECT | MX_PSHARED | 256 | 512)) == 0;
}

/* ---- robust list -------------------------------------------------------- */

static void robust_push(struct thread *t, pthread_mutex_t *m)
{
	MX(m)->__list.__prev = NULL;
	MX(m)->__list.__next = (struct __pthread_internal_list *)t->robust;
	if (t->robust)
		MX(t->robust)->__list.__prev = (struct __pthread_internal_list *)m;
	t->robust = m;
}

static void release_word(pthread_mutex_t *m, int nwake)
{
	/* Release: the next holder sees everything done under the lock. */
	if (atomic_exchange_explicit(lockword(m), 0, memory_order_release) == 2)
		gfutex_wake(lockword(m), nwake);
}

/* The lock word is ours: record the holder as glibc does. */
static inline void owner_set(pthread_mutex_t *m, int id)
{
	__atomic_store_n(&MX(m)->__owner, id, __ATOMIC_RELAXED);
	MX(m)->__count = 1;
}

/* Forget the holder and release the word, waking one waiter. */
static inline void owner_clear_release(pthread_mutex_t *m)
{
	__atomic_store_n(&MX(m)->__owner, 0, __ATOMIC_RELAXED);
	MX(m)->__count = 0;
	release_word(m, 1);
}

/* A thread exits holding robust mutexes: mark each, release it. */
void mutex_robust_exit(struct thread *t)
{
	while (t->robust) {
		pthread_mutex_t *m = t->robust;

		robust_remove(t, m);
		__atomic_or_fetch(&MX(m)->__nusers, MX_INCONSISTENT, __ATOMIC_RELAXED);
		owner_clear_release(m);
	}
}

/* ---- lock ---------------------------------------------------------------- */

/* Take the lock word.  deadline < 0: forever. */
static int acquire_word(pthread_mutex_t *m, int64_t deadline, bool try_only,
                        const struct timespec *abst, clockid_t clk)
{
	_Atomic uint32_t *w = lockword(m);
	uint32_t c = 0;
	int i;

	if (atomic_compare_exchange_strong_explicit(w, &c, 1,
	        memory_order_acquire, memory_order_relaxed))
		return 0;
	if (try_only)
		return EBUSY;
	/* glibc validates the timeout only once it has to wait. */
	if (abst) {
		int err = shim_deadline(clk, abst, &deadline);
		if (err)
			return err;
	}
	/* Spin a little when another P may be about to release it. */
	if (sched_gomaxprocs() > 1) {
		for (i = 0; i < MX_SPIN; i++) {
			arch_relax();
			c = 0;
			if (atomic_load_explicit(w, memory_order_relaxed) == 0 &&
			    atomic_compare_exchange_weak_explicit(w, &c, 1,
			        memory_order_acquire, memory_order_relaxed))
				return 0;
		}
	}
	/* Park.  Whoever takes it from here marks it contended (2), so the
	 * unlock that follows wakes the next waiter. */
	while (atomic_exchange_explicit(w, 2, memory_order_acquire) != 0) {
		g_t *g = getcurg();
		int r;

		g_wait_note(g, WK_MUTEX, (uintptr_t)m);
		if (g && thread_of(g)->lock_cancellable) {
			/* Asynchronous cancellation (pthread_mutex_lock below):
			 * the wait is where glibc's signal would stop it. */
			r = cancel_gfutex_wait(g, w, 2, deadline);
			if (r == -ECANCELED) {
				thread_of(g)->lock_cancellable = false;
				cancel_point(g);
			}
		} else {
			r = gfutex_wait(w, 2, deadline);
		}
		if (r == -ETIMEDOUT) {
			c = 0;
			/* One last try: a timeout racing the release. */
			if (atomic_compare_exchange_strong_explicit(w, &c, 2,
			        memory_order_acquire, memory_order_relaxed))
				return 0;
			return ETIMEDOUT;
		}
	}
	return 0;
}

static int mutex_lock(pthread_mutex_t *m, bool try_only,
                      const struct timespec *abst, clockid_t clk)
{
	g_t *g = shim_self();
	int kind = kind_of(m), type = kind & MX_TYPE_MASK, id, err;

	if (!kind_valid(kind))
		return EINVAL;
	id = shim_owner_id(g);
	if (__atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) == id) {
		if (type == PTHREAD_MUTEX_RECURSIVE) {
			if (MX(m)->__count == UINT_MAX)
				return EAGAIN;
			MX(m)->__count++;
			return 0;
		}
		/* glibc: trylock says EBUSY, except for the robust and
		 * priority kinds (their own code paths say EDEADLK). */
		if (type == PTHREAD_MUTEX_ERRORCHECK)
			return try_only && !(kind & (MX_ROBUST | MX_PRIO_INHERIT |
			                             MX_PRIO_PROTECT)) ? EBUSY : EDEADLK;
		if (try_only)
			return EBUSY;
		/* NORMAL/ADAPTIVE: relocking deadlocks, as POSIX and glibc
		 * say (a timed lock times out). */
	}
	if ((kind & MX_ROBUST) &&
	    __atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) == MX_OWNER_NOTRECOVERABLE)
		return ENOTRECOVERABLE;
	/* glibc: a thread whose priority is above the ceiling may not take
	 * a priority-protect mutex.  The priority is the one the program set
	 * (pthread_setschedparam): G's have no kernel priority to raise. */
	if ((kind & MX_PRIO_PROTECT) && g && thread_of(g)->policy != SCHED_OTHER &&
	    thread_of(g)->param.sched_priority > MX(m)->__spins)
		return EINVAL;
	err = acquire_word(m, -1, try_only, abst, clk);
	if (err)
		return err;
	if (kind & MX_ROBUST) {
		if (__atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) == MX_OWNER_NOTRECOVERABLE) {
			release_word(m, INT32_MAX);
			return ENOTRECOVERABLE;
		}
		owner_set(m, id);
		if (g)
			robust_push(thread_of(g), m);
		if (__atomic_load_n(&MX(m)->__nusers, __ATOMIC_RELAXED) & MX_INCONSISTENT)
			return EOWNERDEAD;
		return 0;
	}
	owner_set(m, id);
	return 0;
}

/* cond.c: a condvar wait starts (delta 1) or ends (-1) using m. */
void mutex_cv_use(pthread_mutex_t *m, int delta)
{
	if (!(kind_of(m) & MX_PSHARED))
		__atomic_add_fetch(&MX(m)->__nusers, (unsigned)(delta * MX_CVUSER), __ATOMIC_RELAXED);
}

/* Used by cond.c to re-take the mutex after a wait. */
int mutex_relock(pthread_mutex_t *m)
{
	if (kind_of(m) & MX_PSHARED)
		return pshared_lock(m, false, CLOCK_REALTIME, NULL);
	return mutex_lock(m, false, NULL, CLOCK_REALTIME);
}

/* With asynchronous cancellation enabled a thread waiting for a mutex is
 * cancelled (POSIX calls locking unsafe then, but glibc acts anywhere and
 * its tst-cancel1 relies on it); a condvar's re-lock never is (cond.c:
 * the handlers need the mutex held). */
SHIM_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
	g_t *g = getcurg();
	uint32_t c = 0;
	int r;

	/* Fast path: a free default mutex (__kind 0: normal, private, not
	 * robust, no priority protocol, no elision) taken by a G - what
	 * mutex_lock would do for it, without the checks that cannot apply
	 * (a relock by the owner finds the word taken and goes the slow
	 * way, where it deadlocks as POSIX says). */
	if (__builtin_expect(g != NULL && kind_of(m) == 0, 1) &&
	    atomic_compare_exchange_strong_explicit(lockword(m), &c, 1,
	        memory_order_acquire, memory_order_relaxed)) {
		owner_set(m, g_fake_tid(g));
		return 0;
	}
	if (!g || !cancel_async_enabled(g))
		return mutex_relock(m);
	thread_of(g)->lock_cancellable = true;
	r = mutex_relock(m);
	thread_of(g)->lock_cancellable = false;
	return r;
}

SHIM_EXPORT int pthread_mutex_trylock(pthread_mutex_t *m)
{
	if (kind_of(m) & MX_PSHARED)
		return pshared_lock(m, true, CLOCK_REALTIME, NULL);
	return mutex_lock(m, true, NULL, CLOCK_REALTIME);
}

SHIM_EXPORT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clk,
                                        const struct timespec *abst)
{
	if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC)
		return EINVAL;
	if (kind_of(m) & MX_PSHARED)
		return pshared_lock(m, false, clk, abst);
	return mutex_lock(m, false, abst, clk);
}

SHIM_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abst)
{
	return pthread_mutex_clocklock(m, CLOCK_REALTIME, abst);
}

/* ---- unlock -------------------------------------------------------------- */

int mutex_unlock(pthread_mutex_t *m)
{
	g_t *g;
	int kind = kind_of(m), type = kind & MX_TYPE_MASK, id;

	if (kind == 0) {
		/* Default mutex: no owner check (glibc makes none), and the
		 * owner id is not even computed. */
		owner_clear_release(m);
		return 0;
	}
	if (kind & MX_PSHARED)
		return pshared_unlock(m);
	if (!kind_valid(kind))
		return EINVAL;
	g = getcurg();
	id = shim_owner_id(g);
	if (type != PTHREAD_MUTEX_NORMAL && type != PTHREAD_MUTEX_ADAPTIVE_NP) {
		if (__atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) != id)
			return EPERM;
		if (type == PTHREAD_MUTEX_RECURSIVE && --MX(m)->__count != 0)
			return 0;
	} else if ((kind & MX_ROBUST) &&
	           __atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) != id) {
		return EPERM;   /* robust mutexes always check the owner */
	}
	if (kind & MX_ROBUST) {
		if (g)
			robust_remove(thread_of(g), m);
		if (__atomic_load_n(&MX(m)->__nusers, __ATOMIC_RELAXED) & MX_INCONSISTENT) {
			/* Unlocked without pthread_mutex_consistent: dead for
			 * good; wake everybody to tell them. */
			__atomic_store_n(&MX(m)->__owner, MX_OWNER_NOTRECOVERABLE, __ATOMIC_RELAXED);
			MX(m)->__count = 0;
			release_word(m, INT32_MAX);
			return 0;
		}
	}
	owner_clear_release(m);
	return 0;
}

SHIM_EXPORT int pthread_mutex_unlock(pthread_mutex_t *m)
{
	int r = mutex_unlock(m);

	g_coop_yield(getcurg());   /* a pending preemption: now is safe */
	return r;
}

/* ---- init, destroy, the rest ---------------------------------------------- */

SHIM_EXPORT int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *attr)
{
	int err, protocol = PTHREAD_PRIO_NONE, ceiling = 0;

	real_init();   /* PSHARED calls below, maybe before our constructor */
	forget_held(m);
	/* glibc validates the attribute and encodes type, robustness,
	 * protocol and pshared in __kind exactly as programs expect. */
	int pshared = PTHREAD_PROCESS_PRIVATE;

	err = PSHARED(REAL(pthread_mutex_init)(m, attr));
	if (err)
		return err;
	if (attr)
		pthread_mutexattr_getpshared(attr, &pshared);
	if (pshared == PTHREAD_PROCESS_SHARED)
		return 0;
	/* glibc also sets the pshared bit on every robust mutex (the kernel's
	 * robust-list walk needs shared futexes); a private robust mutex is
	 * ours, with the robust list per G. */
	MX(m)->__kind &= ~MX_PSHARED;
	if (attr) {
		pthread_mutexattr_getprotocol(attr, &protocol);
		if (protocol == PTHREAD_PRIO_PROTECT)
			pthread_mutexattr_getprioceiling(attr, &ceiling);
	}
	/* Private: our lock word starts free (glibc keeps a PP ceiling in
	 * it; we keep it in __spins). */
	MX(m)->__lock = 0;
	MX(m)->__spins = (short)ceiling;
	MX(m)->__nusers = 0;
	return 0;
}

SHIM_EXPORT int pthread_mutex_destroy(pthread_mutex_t *m)
{
	int kind = kind_of(m);

	if (kind & MX_PSHARED)
		return PSHARED(REAL(pthread_mutex_destroy)(m));
	if (!kind_valid(kind))
		return EINVAL;
	/* Held, or in use by a condvar wait (glibc: __nusers) */
	if (!(kind & MX_ROBUST) &&
	    (atomic_load_explicit(lockword(m), memory_order_relaxed) ||
	     __atomic_load_n(&MX(m)->__nusers, __ATOMIC_RELAXED) >= MX_CVUSER))
		return EBUSY;
	/* Like glibc: a destroyed mutex is invalid until initialised again. */
	__atomic_store_n(&MX(m)->__kind, -1, __ATOMIC_RELAXED);
	return 0;
}

SHIM_EXPORT int pthread_mutex_consistent(pthread_mutex_t *m)
{
	int kind = kind_of(m);

	if (kind & MX_PSHARED)
		return PSHARED(REAL(pthread_mutex_consistent)(m));
	if (!(kind & MX_ROBUST) ||
	    !(__atomic_load_n(&MX(m)->__nusers, __ATOMIC_RELAXED) & MX_INCONSISTENT) ||
	    __atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) != shim_owner_id(getcurg()))
		return EINVAL;
	__atomic_and_fetch(&MX(m)->__nusers, ~(unsigned)MX_INCONSISTENT, __ATOMIC_RELAXED);
	return 0;
}

/* glibc's header redirects the _np name with an asm label: define it
 * under its own label. */
SHIM_EXPORT int gshim_mutex_consistent_np(pthread_mutex_t *m)
	__asm__("pthread_mutex_consistent_np");
int gshim_mutex_consistent_np(pthread_mutex_t *m)
{
	return pthread_mutex_consistent(m);
}

SHIM_EXPORT int pthread_mutex_getprioceiling(const pthread_mutex_t *m, int *ceiling)
{
	int kind = kind_of(m);

	if (kind & MX_PSHARED)
		return PSHARED(REAL(pthread_mutex_getprioceiling)(m, ceiling));
	if (!(kind & MX_PRIO_PROTECT))
		return EINVAL;
	*ceiling = m->__data.__spins;
	return 0;
}

SHIM_EXPORT int pthread_mutex_setprioceiling(pthread_mutex_t *m, int ceiling, int *old)
{
	int kind = kind_of(m), err;

	if (kind & MX_PSHARED)
		return PSHARED(REAL(pthread_mutex_setprioceiling)(m, ceiling, old));
	if (!(kind & MX_PRIO_PROTECT) ||
	    ceiling < sched_get_priority_min(SCHED_FIFO) ||
	    ceiling > sched_get_priority_max(SCHED_FIFO))
		return EINVAL;
	/* POSIX: lock, change, unlock.  glibc: a holder of the errorcheck
	 * kind gets EDEADLK, of the recursive kind changes it in place. */
	if (__atomic_load_n(&MX(m)->__owner, __ATOMIC_RELAXED) == shim_owner_id(getcurg())) {
		if ((kind & MX_TYPE_MASK) == PTHREAD_MUTEX_ERRORCHECK)
			return EDEADLK;
		if ((kind & MX_TYPE_MASK) == PTHREAD_MUTEX_RECURSIVE)
			err = EDEADLK;   /* held: no lock, no unlock */
		else
			err = mutex_lock(m, false, NULL, CLOCK_REALTIME);
	} else {
		err = mutex_lock(m, false, NULL, CLOCK_REALTIME);
	}
	if (err && err != EDEADLK)
		return err;
	*old = MX(m)->__spins;
	MX(m)->__spins = (short)ceiling;
	if (!err)
		mutex_unlock(m);
	return 0;
}
